//! Session lengths. A permission set's `SessionDuration` comes from AWS as an ISO-8601
//! duration (`PT1H`, `PT8H30M`, `PT12H`); the access-portal session is configuration,
//! because no API returns it. Both are stored with a grant at activation so that a later
//! change of either does not rewrite history.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionDurationError {
    #[error("{input:?} is not an ISO-8601 duration: {why} (expected e.g. PT1H, PT8H30M, PT12H)")]
    Malformed { input: String, why: &'static str },
    #[error("{input:?} is outside the permission-set session range PT1H..PT12H")]
    OutOfRange { input: String },
}

/// Parses the subset of ISO-8601 durations AWS uses: `P[nD][T[nH][nM][nS]]`, in that
/// order, each part at most once, integers only (fractions are not produced by AWS and
/// are refused rather than rounded).
pub fn parse_iso8601(input: &str) -> Result<Duration, SessionDurationError> {
    let malformed = |why| SessionDurationError::Malformed {
        input: input.chars().take(40).collect(),
        why,
    };
    let rest = input
        .strip_prefix('P')
        .ok_or_else(|| malformed("it must start with P"))?;
    if rest.is_empty() {
        return Err(malformed("it has no parts after P"));
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return Err(malformed("T must be followed by hours, minutes or seconds"));
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    // Units in the order they must appear, with their length in seconds.
    let mut parse_units = |s: &str, units: &[(char, i64)]| -> Result<(), SessionDurationError> {
        let mut next_unit = 0;
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if c == '.' || c == ',' {
                return Err(malformed("fractions are not supported"));
            }
            let pos = units[next_unit..]
                .iter()
                .position(|(u, _)| *u == c)
                .ok_or_else(|| malformed("unknown, repeated or out-of-order unit"))?;
            if num.is_empty() {
                return Err(malformed("a unit without a number"));
            }
            let n: i64 = num.parse().map_err(|_| malformed("number too large"))?;
            let secs = units[next_unit + pos].1;
            total = n
                .checked_mul(secs)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| malformed("number too large"))?;
            next_unit += pos + 1;
            num.clear();
            parts += 1;
        }
        if !num.is_empty() {
            return Err(malformed("a number without a unit"));
        }
        Ok(())
    };
    parse_units(date, &[('D', 86_400)])?;
    if let Some(t) = time {
        parse_units(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if parts == 0 {
        return Err(malformed("it has no parts"));
    }
    Ok(Duration::seconds(total))
}

/// Formats a duration the way AWS writes `SessionDuration`: `PT1H`, `PT8H30M`.
pub fn format_iso8601(d: Duration) -> String {
    let total = d.num_seconds().max(0);
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || total == 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// A permission set's session duration: how long one console/CLI session lasts once
/// the user clicks the permission set in the portal. AWS allows 1 h to 12 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct SessionDuration(i64);

impl SessionDuration {
    pub const MIN_SECONDS: i64 = 3600;
    pub const MAX_SECONDS: i64 = 12 * 3600;

    pub fn parse(input: &str) -> Result<Self, SessionDurationError> {
        let d = parse_iso8601(input.trim())?;
        Self::from_duration(d).map_err(|_| SessionDurationError::OutOfRange {
            input: input.trim().to_owned(),
        })
    }

    pub fn from_duration(d: Duration) -> Result<Self, SessionDurationError> {
        let s = d.num_seconds();
        if !(Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&s) {
            return Err(SessionDurationError::OutOfRange {
                input: format_iso8601(d),
            });
        }
        Ok(Self(s))
    }

    pub fn as_duration(self) -> Duration {
        Duration::seconds(self.0)
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SessionDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_iso8601(self.as_duration()))
    }
}

impl From<SessionDuration> for String {
    fn from(d: SessionDuration) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for SessionDuration {
    type Error = SessionDurationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

/// The Identity Center instance's access-portal session length: 15 minutes to 90 days,
/// 8 hours by default (IAM Identity Center user guide, "Configure the duration of the
/// AWS access portal and IAM Identity Center integrated applications sessions"; the
/// 7-day ceiling of earlier years was raised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(value_type = i64))]
#[serde(try_from = "i64", into = "i64")]
pub struct PortalSession(i64);

impl PortalSession {
    pub const MIN_SECONDS: i64 = 15 * 60;
    pub const MAX_SECONDS: i64 = 90 * 86_400;
    pub const DEFAULT: PortalSession = PortalSession(8 * 3600);

    pub fn from_seconds(s: i64) -> Result<Self, String> {
        if (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&s) {
            Ok(Self(s))
        } else {
            Err(format!(
                "the access-portal session must be between 15m and 90d (got {})",
                format_human(Duration::seconds(s))
            ))
        }
    }

    pub fn as_duration(self) -> Duration {
        Duration::seconds(self.0)
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl From<PortalSession> for i64 {
    fn from(p: PortalSession) -> i64 {
        p.0
    }
}

impl TryFrom<i64> for PortalSession {
    type Error = String;
    fn try_from(s: i64) -> Result<Self, String> {
        Self::from_seconds(s)
    }
}

/// `8h`, `1h 30m`, `2d 4h`, `15m`: for people, not for AWS.
pub fn format_human(d: Duration) -> String {
    let total = d.num_seconds();
    let sign = if total < 0 { "-" } else { "" };
    let t = total.unsigned_abs();
    let (days, h, m, s) = (t / 86_400, (t % 86_400) / 3600, (t % 3600) / 60, t % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    format!("{sign}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_aws_returns() {
        assert_eq!(parse_iso8601("PT1H").unwrap(), Duration::hours(1));
        assert_eq!(
            parse_iso8601("PT8H30M").unwrap(),
            Duration::hours(8) + Duration::minutes(30)
        );
        assert_eq!(parse_iso8601("PT12H").unwrap(), Duration::hours(12));
        assert_eq!(parse_iso8601("PT90M").unwrap(), Duration::minutes(90));
        assert_eq!(parse_iso8601("P1DT2H").unwrap(), Duration::hours(26));
        assert_eq!(parse_iso8601("PT3600S").unwrap(), Duration::hours(1));
    }

    #[test]
    fn refuses_malformed_with_a_reason() {
        for (bad, why) in [
            ("", "start with P"),
            ("1H", "start with P"),
            ("P", "no parts"),
            ("PT", "must be followed"),
            ("PT1", "without a unit"),
            ("PTH", "without a number"),
            ("PT1M1H", "out-of-order"),
            ("PT1H1H", "out-of-order"),
            ("PT1.5H", "fractions"),
            ("PT1X", "unknown"),
            ("pt1h", "start with P"),
            ("PT99999999999999999999H", "too large"),
        ] {
            let e = parse_iso8601(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn session_duration_range() {
        assert_eq!(SessionDuration::parse("PT1H").unwrap().seconds(), 3600);
        assert_eq!(SessionDuration::parse("PT12H").unwrap().seconds(), 43_200);
        assert!(matches!(
            SessionDuration::parse("PT30M"),
            Err(SessionDurationError::OutOfRange { .. })
        ));
        assert!(matches!(
            SessionDuration::parse("PT13H"),
            Err(SessionDurationError::OutOfRange { .. })
        ));
        assert_eq!(
            SessionDuration::parse("PT8H30M").unwrap().to_string(),
            "PT8H30M"
        );
    }

    #[test]
    fn portal_session_range() {
        assert!(PortalSession::from_seconds(15 * 60).is_ok());
        assert!(PortalSession::from_seconds(7 * 86_400).is_ok());
        assert!(PortalSession::from_seconds(30 * 86_400).is_ok());
        assert!(PortalSession::from_seconds(90 * 86_400).is_ok());
        assert!(PortalSession::from_seconds(5 * 60).is_err());
        assert!(PortalSession::from_seconds(14 * 60).is_err());
        assert!(PortalSession::from_seconds(90 * 86_400 + 1).is_err());
        assert!(PortalSession::from_seconds(91 * 86_400).is_err());
        assert_eq!(PortalSession::DEFAULT.seconds(), 8 * 3600);
    }

    #[test]
    fn human_format() {
        assert_eq!(format_human(Duration::hours(8)), "8h");
        assert_eq!(format_human(Duration::minutes(90)), "1h 30m");
        assert_eq!(format_human(Duration::hours(50)), "2d 2h");
        assert_eq!(format_human(Duration::zero()), "0s");
    }
}
