//! What the evidence of a grant says (DESIGN §1 and §3): the CloudTrail activity that
//! matched the grant, what it adds up to, and the Amazon Detective investigation of the
//! role. Pure and wasm-safe, so the grant page and its timeline render the same
//! values the server stored and exports.
//!
//! The summary is built by streaming events through [`SummaryBuilder`], page by page:
//! a grant's events are never all held in memory.

use super::window::{Interval, Observed, Windows};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One CloudTrail event that matched a grant (account, `AssumedRole`, the permission
/// set's `AWSReservedSSO_<name>_` role, and the user's session name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActivityEvent {
    /// CloudTrail's `eventID`: stored once per grant, however often it is collected.
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub event_name: String,
    pub event_source: String,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    /// `readOnly`, when CloudTrail says.
    pub read_only: Option<bool>,
    /// Resource names (ARNs or names) the event names.
    pub resources: Vec<String>,
    /// `userIdentity.principalId`: `<role id>:<session name>`.
    pub principal_id: Option<String>,
    /// `userIdentity.sessionContext.sessionIssuer.arn`: the `AWSReservedSSO_…` role.
    pub session_issuer_arn: Option<String>,
    /// `userIdentity.sessionContext.attributes.creationDate`: when the credentials
    /// behind this call were issued.
    pub session_created_at: Option<DateTime<Utc>>,
}

/// Error codes that mean "not allowed" rather than "went wrong".
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "Client.UnauthorizedOperation",
    "UnauthorizedAccess",
    "Client.UnauthorizedAccess",
    "AuthorizationError",
    "AuthorizationErrorException",
];

impl ActivityEvent {
    pub fn is_error(&self) -> bool {
        self.error_code.as_deref().is_some_and(|c| !c.is_empty())
    }

    pub fn is_access_denied(&self) -> bool {
        self.error_code
            .as_deref()
            .is_some_and(|c| ACCESS_DENIED_CODES.contains(&c))
    }

    /// The role's principal id (`AROA…`), the part of `principal_id` before `:`.
    pub fn role_principal_id(&self) -> Option<&str> {
        self.principal_id
            .as_deref()
            .and_then(|p| p.split_once(':'))
            .map(|(role, _)| role)
    }
}

/// Something in the activity an auditor should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ActivityFlag {
    /// Activity after the assignment was deleted, inside the tail: a session opened
    /// before the end was still used.
    AfterRevocation {
        count: u64,
        first_at: DateTime<Utc>,
        last_at: DateTime<Utc>,
    },
    /// Activity from an address this person had not used in any earlier grant.
    NewSourceIp { ip: String, first_at: DateTime<Utc> },
    /// Activity of this person, account and permission set outside the real window of
    /// this grant and of every other grant for the same access: another path (a
    /// standing or group assignment) was used.
    NoMatchingGrantWindow {
        count: u64,
        first_at: DateTime<Utc>,
        last_at: DateTime<Utc>,
    },
    /// Calls that succeeded after the deny closed the grant's sessions: the deny did
    /// not work. Critical.
    AfterSessionsClosed {
        count: u64,
        first_at: DateTime<Utc>,
        last_at: DateTime<Utc>,
    },
}

impl ActivityFlag {
    /// A short title for a badge.
    pub fn title(&self) -> &'static str {
        match self {
            ActivityFlag::AfterRevocation { .. } => "activity after revocation",
            ActivityFlag::NewSourceIp { .. } => "activity from a new IP address",
            ActivityFlag::NoMatchingGrantWindow { .. } => "activity with no matching grant window",
            ActivityFlag::AfterSessionsClosed { .. } => {
                "critical: calls succeeded after the sessions were closed"
            }
        }
    }

    /// The flag in plain words.
    pub fn describe(&self) -> String {
        let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        match self {
            ActivityFlag::AfterRevocation {
                count,
                first_at,
                last_at,
            } => format!(
                "{count} call(s) between {} and {} came after the assignment was deleted: \
                 a session opened before the end was still in use",
                at(first_at),
                at(last_at)
            ),
            ActivityFlag::NewSourceIp { ip, first_at } => format!(
                "{ip} (first at {}) was not seen in any earlier grant of this person",
                at(first_at)
            ),
            ActivityFlag::NoMatchingGrantWindow {
                count,
                first_at,
                last_at,
            } => format!(
                "{count} call(s) between {} and {} fall outside the real window of every \
                 grant for this access: it was reached another way",
                at(first_at),
                at(last_at)
            ),
            ActivityFlag::AfterSessionsClosed {
                count,
                first_at,
                last_at,
            } => format!(
                "{count} call(s) between {} and {} succeeded after the sessions were closed: \
                 the deny did not take effect; check the policy on the account now",
                at(first_at),
                at(last_at)
            ),
        }
    }
}

/// What the activity of one grant adds up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EvidenceSummary {
    pub event_count: u64,
    pub error_count: u64,
    pub access_denied_count: u64,
    /// The observed window.
    pub first_activity: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    /// The latest credential issuance seen (`sessionContext.attributes.creationDate`).
    pub last_credential_issuance: Option<DateTime<Utc>>,
    /// Distinct source addresses, sorted (at most [`MAX_LISTED_IPS`]).
    pub source_ips: Vec<String>,
    pub distinct_source_ips: u64,
    pub flags: Vec<ActivityFlag>,
    /// The `AWSReservedSSO_…` role the activity used, from CloudTrail.
    pub role_arn: Option<String>,
    /// `<role id>:<session name>` of this person's sessions (Detective's role-session id).
    pub role_session_id: Option<String>,
    /// How many times activity was collected, and the last time.
    pub collections: u32,
    pub collected_at: Option<DateTime<Utc>>,
    /// True once activity was collected after the real window closed plus CloudTrail's
    /// delivery delay: only then is the absence of later activity meaningful.
    pub covers_tail: bool,
    /// Calls refused (`AccessDenied`) after the deny closed the sessions: the proof
    /// that it works.
    #[serde(default)]
    pub refused_after_close: u64,
    /// SHA-256 (hex) over the stored events the summary was made from, each as its
    /// JSON line in collection order: recorded in the audit chain, so the stored
    /// activity can be checked against it later.
    #[serde(default)]
    pub events_sha256: Option<String>,
}

/// How many distinct addresses a summary lists by name.
pub const MAX_LISTED_IPS: usize = 50;

impl EvidenceSummary {
    /// The observed window for [`super::WindowInputs::observed`].
    pub fn observed(&self) -> Option<Observed> {
        Some(Observed {
            first_activity: self.first_activity?,
            last_activity: self.last_activity?,
            last_credential_issuance: self.last_credential_issuance,
            covers_tail: self.covers_tail,
        })
    }

    pub fn has_flag_after_revocation(&self) -> bool {
        self.flags
            .iter()
            .any(|f| matches!(f, ActivityFlag::AfterRevocation { .. }))
    }
}

/// What is known of this person's earlier addresses, for the "new IP" flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpHistory {
    /// The person has activity in an earlier grant (without any, every address is new
    /// and flagging them all would be noise).
    pub has_history: bool,
    /// Addresses of this grant already seen in an earlier grant.
    pub known: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl Span {
    fn add(span: &mut Option<Span>, t: DateTime<Utc>) {
        match span {
            Some(s) => {
                s.count += 1;
                s.first = s.first.min(t);
                s.last = s.last.max(t);
            }
            None => {
                *span = Some(Span {
                    count: 1,
                    first: t,
                    last: t,
                })
            }
        }
    }
}

/// Accumulates a grant's events, in any order, into an [`EvidenceSummary`].
#[derive(Debug, Clone)]
pub struct SummaryBuilder {
    windows: Windows,
    /// Real windows of the other grants for the same person, account and permission set.
    other_windows: Vec<Interval>,
    summary: EvidenceSummary,
    ips: BTreeMap<String, DateTime<Utc>>,
    after_revocation: Option<Span>,
    outside: Option<Span>,
    after_close: Option<Span>,
}

impl SummaryBuilder {
    pub fn new(windows: Windows, other_windows: Vec<Interval>) -> Self {
        Self {
            windows,
            other_windows,
            summary: EvidenceSummary::default(),
            ips: BTreeMap::new(),
            after_revocation: None,
            outside: None,
            after_close: None,
        }
    }

    pub fn push(&mut self, e: &ActivityEvent) {
        let s = &mut self.summary;
        s.event_count += 1;
        if e.is_error() {
            s.error_count += 1;
        }
        if e.is_access_denied() {
            s.access_denied_count += 1;
        }
        let t = e.event_time;
        s.first_activity = Some(s.first_activity.map_or(t, |f| f.min(t)));
        s.last_activity = Some(s.last_activity.map_or(t, |l| l.max(t)));
        if let Some(c) = e.session_created_at {
            s.last_credential_issuance = Some(s.last_credential_issuance.map_or(c, |l| l.max(c)));
        }
        if s.role_arn.is_none() {
            s.role_arn.clone_from(&e.session_issuer_arn);
        }
        if s.role_session_id.is_none() {
            s.role_session_id.clone_from(&e.principal_id);
        }
        if let Some(ip) = &e.source_ip {
            let first = self.ips.entry(ip.clone()).or_insert(t);
            *first = (*first).min(t);
        }
        if self.windows.is_after_sessions_closed(t) {
            // The deny's proof (refused) or its failure (a call that went through).
            if e.is_access_denied() {
                s.refused_after_close += 1;
            } else {
                Span::add(&mut self.after_close, t);
            }
            return;
        }
        let in_real = self.windows.real.contains_instant(t);
        if in_real && self.windows.is_after_revocation(t) {
            Span::add(&mut self.after_revocation, t);
        }
        if !in_real && !self.other_windows.iter().any(|w| w.contains_instant(t)) {
            Span::add(&mut self.outside, t);
        }
    }

    /// Distinct source addresses seen so far (to look up in the person's history).
    pub fn source_ips(&self) -> impl Iterator<Item = &str> {
        self.ips.keys().map(String::as_str)
    }

    pub fn finish(self, history: &IpHistory) -> EvidenceSummary {
        let mut s = self.summary;
        s.distinct_source_ips = self.ips.len() as u64;
        s.source_ips = self.ips.keys().take(MAX_LISTED_IPS).cloned().collect();
        if let Some(a) = self.after_revocation {
            s.flags.push(ActivityFlag::AfterRevocation {
                count: a.count,
                first_at: a.first,
                last_at: a.last,
            });
        }
        if history.has_history {
            for (ip, first_at) in &self.ips {
                if !history.known.contains(ip) {
                    s.flags.push(ActivityFlag::NewSourceIp {
                        ip: ip.clone(),
                        first_at: *first_at,
                    });
                }
            }
        }
        if let Some(o) = self.outside {
            s.flags.push(ActivityFlag::NoMatchingGrantWindow {
                count: o.count,
                first_at: o.first,
                last_at: o.last,
            });
        }
        if let Some(c) = self.after_close {
            s.flags.push(ActivityFlag::AfterSessionsClosed {
                count: c.count,
                first_at: c.first,
                last_at: c.last,
            });
        }
        s
    }
}

/// Detective's severity of an investigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvestigationSeverity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl InvestigationSeverity {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "INFORMATIONAL" => Self::Informational,
            "LOW" => Self::Low,
            "MEDIUM" => Self::Medium,
            "HIGH" => Self::High,
            "CRITICAL" => Self::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "INFORMATIONAL",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }
}

/// Where an investigation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvestigationStatus {
    Running,
    Failed,
    Successful,
}

impl InvestigationStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => Self::Running,
            "FAILED" => Self::Failed,
            "SUCCESSFUL" => Self::Successful,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Failed => "FAILED",
            Self::Successful => "SUCCESSFUL",
        }
    }
}

/// One indicator of compromise Detective reported (`ListIndicators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Indicator {
    /// Detective's `IndicatorType`, such as `TTP_OBSERVED` or `IMPOSSIBLE_TRAVEL`.
    pub kind: String,
    /// The indicator in plain words.
    pub summary: String,
    /// The fields Detective gave, by name.
    pub details: Vec<(String, String)>,
}

impl Indicator {
    /// A human title for Detective's indicator type.
    pub fn title(&self) -> &str {
        match self.kind.as_str() {
            "TTP_OBSERVED" => "MITRE ATT&CK tactic, technique or procedure observed",
            "IMPOSSIBLE_TRAVEL" => "impossible travel",
            "FLAGGED_IP_ADDRESS" => "flagged IP address",
            "NEW_GEOLOCATION" => "new geolocation",
            "NEW_ASO" => "new autonomous system (ASN)",
            "NEW_USER_AGENT" => "new user agent",
            "RELATED_FINDING" => "related finding",
            "RELATED_FINDING_GROUP" => "related finding group",
            other => other,
        }
    }
}

/// Links into the Detective console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConsoleLinks {
    /// The investigation report.
    pub investigation: String,
    /// The role's profile for the window (everyone holding the permission set).
    pub role: Option<String>,
    /// This person's role session for the window.
    pub role_session: Option<String>,
}

impl ConsoleLinks {
    /// Detective's documented profile URL format:
    /// `https://console.aws.amazon.com/detective/home?region=R#entities/<type>/<id>?scopeStart=<epoch>&scopeEnd=<epoch>`,
    /// where a role session's id is `<role principal id>:<session name>`.
    pub fn build(
        region: &str,
        investigation_id: &str,
        role_session_id: Option<&str>,
        scope: Interval,
    ) -> Self {
        let base = format!(
            "https://console.aws.amazon.com/detective/home?region={}",
            url_component(region)
        );
        let scope_q = format!(
            "scopeStart={}&scopeEnd={}",
            scope.start.timestamp(),
            scope.end.timestamp()
        );
        let role_id = role_session_id
            .and_then(|s| s.split_once(':'))
            .map(|(r, _)| r);
        Self {
            investigation: format!("{base}#investigations/{}", url_component(investigation_id)),
            role: role_id
                .map(|r| format!("{base}#entities/AwsRole/{}?{scope_q}", url_component(r))),
            role_session: role_session_id.map(|s| {
                format!(
                    "{base}#entities/AwsRoleSession/{}?{scope_q}",
                    url_component(s)
                )
            }),
        }
    }
}

/// Percent-encodes everything but unreserved characters and `:` (kept readable in ids).
fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Detective investigation of a grant's role, scoped to its real window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvestigationSummary {
    pub investigation_id: String,
    pub graph_arn: String,
    /// The `AWSReservedSSO_<permission set>_<hash>` role investigated.
    pub entity_arn: String,
    pub status: InvestigationStatus,
    pub severity: Option<InvestigationSeverity>,
    /// `ACTIVE` or `ARCHIVED`.
    pub state: Option<String>,
    pub scope: Interval,
    pub started_at: DateTime<Utc>,
    pub indicators: Vec<Indicator>,
    pub links: ConsoleLinks,
    /// Said next to the investigation: the role is not this person's alone.
    pub shared_role_note: String,
}

impl InvestigationSummary {
    /// The sentence shown with every investigation.
    pub fn shared_role_note(permission_set: &str, account_id: &str) -> String {
        format!(
            "Detective investigates the role, and the role is shared by everyone who holds \
             the permission set {permission_set} in account {account_id}: its findings may \
             come from other people's sessions. The role-session link shows this person's \
             sessions only."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PortalSession, SessionDuration, WindowInputs};
    use chrono::{Duration, TimeZone};

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    fn windows() -> Windows {
        // Active 04:00–05:00, portal 8h, session 1h: the real window ends at 14:00.
        Windows::compute(&WindowInputs {
            activated_at: t(4, 0),
            revoked_at: Some(t(5, 0)),
            planned_end: t(5, 0),
            portal_session: PortalSession::DEFAULT,
            permission_set_session: SessionDuration::parse("PT1H").unwrap(),
            observed: None,
            sessions_closed_at: None,
        })
        .unwrap()
    }

    fn event(id: &str, at: DateTime<Utc>, ip: &str, error: Option<&str>) -> ActivityEvent {
        ActivityEvent {
            event_id: id.into(),
            event_time: at,
            event_name: "ListBuckets".into(),
            event_source: "s3.amazonaws.com".into(),
            aws_region: Some("us-east-1".into()),
            source_ip: Some(ip.into()),
            user_agent: Some("aws-cli/2".into()),
            error_code: error.map(Into::into),
            read_only: Some(true),
            resources: vec![],
            principal_id: Some("AROAEXAMPLE:bob".into()),
            session_issuer_arn: Some(
                "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef".into(),
            ),
            session_created_at: Some(at - Duration::minutes(1)),
        }
    }

    /// After the deny closed the sessions, a refused call is its proof and a call
    /// that went through is the critical flag; neither counts as "another path".
    #[test]
    fn calls_after_the_sessions_were_closed_are_refused_or_critical() {
        let closed = Windows::compute(&WindowInputs {
            activated_at: t(4, 0),
            revoked_at: Some(t(5, 0)),
            planned_end: t(5, 0),
            portal_session: PortalSession::DEFAULT,
            permission_set_session: SessionDuration::parse("PT1H").unwrap(),
            observed: None,
            sessions_closed_at: Some(t(5, 1)),
        })
        .unwrap();
        let mut b = SummaryBuilder::new(closed, vec![]);
        b.push(&event("1", t(4, 30), "192.0.2.1", None));
        b.push(&event("2", t(6, 0), "192.0.2.1", Some("AccessDenied")));
        b.push(&event("3", t(7, 0), "192.0.2.1", Some("AccessDenied")));
        let s = b.clone().finish(&IpHistory::default());
        assert_eq!(s.refused_after_close, 2);
        assert!(
            s.flags.is_empty(),
            "refused calls are the proof: {:?}",
            s.flags
        );
        b.push(&event("4", t(8, 0), "192.0.2.1", None));
        let s = b.finish(&IpHistory::default());
        assert_eq!(
            s.flags,
            vec![ActivityFlag::AfterSessionsClosed {
                count: 1,
                first_at: t(8, 0),
                last_at: t(8, 0),
            }]
        );
        assert!(s.flags[0].title().starts_with("critical"));
    }

    #[test]
    fn counts_errors_denials_ips_and_the_observed_window() {
        let mut b = SummaryBuilder::new(windows(), vec![]);
        b.push(&event("2", t(4, 30), "198.51.100.7", Some("AccessDenied")));
        b.push(&event("1", t(4, 10), "192.0.2.1", None));
        b.push(&event(
            "3",
            t(4, 40),
            "192.0.2.1",
            Some("ThrottlingException"),
        ));
        let s = b.finish(&IpHistory::default());
        assert_eq!(s.event_count, 3);
        assert_eq!(s.error_count, 2);
        assert_eq!(s.access_denied_count, 1);
        assert_eq!(s.first_activity, Some(t(4, 10)));
        assert_eq!(s.last_activity, Some(t(4, 40)));
        assert_eq!(s.last_credential_issuance, Some(t(4, 39)));
        assert_eq!(s.source_ips, vec!["192.0.2.1", "198.51.100.7"]);
        assert_eq!(s.distinct_source_ips, 2);
        assert!(
            s.flags.is_empty(),
            "no history, nothing late: {:?}",
            s.flags
        );
        assert_eq!(s.role_session_id.as_deref(), Some("AROAEXAMPLE:bob"));
    }

    #[test]
    fn flags_activity_after_revocation_inside_the_tail() {
        let mut b = SummaryBuilder::new(windows(), vec![]);
        b.push(&event("1", t(4, 50), "192.0.2.1", None));
        b.push(&event("2", t(5, 20), "192.0.2.1", None));
        b.push(&event("3", t(6, 0), "192.0.2.1", None));
        let s = b.finish(&IpHistory::default());
        assert!(s.has_flag_after_revocation());
        assert_eq!(
            s.flags,
            vec![ActivityFlag::AfterRevocation {
                count: 2,
                first_at: t(5, 20),
                last_at: t(6, 0)
            }]
        );
    }

    #[test]
    fn flags_new_addresses_only_when_the_person_has_history() {
        let mut b = SummaryBuilder::new(windows(), vec![]);
        b.push(&event("1", t(4, 10), "192.0.2.1", None));
        b.push(&event("2", t(4, 20), "203.0.113.9", None));
        let history = IpHistory {
            has_history: true,
            known: ["192.0.2.1".to_owned()].into_iter().collect(),
        };
        let s = b.clone().finish(&history);
        assert_eq!(
            s.flags,
            vec![ActivityFlag::NewSourceIp {
                ip: "203.0.113.9".into(),
                first_at: t(4, 20)
            }]
        );
        assert!(b.finish(&IpHistory::default()).flags.is_empty());
    }

    #[test]
    fn flags_activity_outside_every_grant_window() {
        let other = Interval {
            start: t(1, 0),
            end: t(3, 30),
        };
        let mut b = SummaryBuilder::new(windows(), vec![other]);
        b.push(&event("1", t(3, 0), "192.0.2.1", None)); // another grant's window
        b.push(&event("2", t(3, 45), "192.0.2.1", None)); // no grant's window
        b.push(&event("3", t(4, 5), "192.0.2.1", None)); // this grant
        let s = b.finish(&IpHistory::default());
        assert_eq!(
            s.flags,
            vec![ActivityFlag::NoMatchingGrantWindow {
                count: 1,
                first_at: t(3, 45),
                last_at: t(3, 45)
            }]
        );
        assert!(s.flags[0].describe().contains("another way"));
    }

    #[test]
    fn the_observed_window_feeds_the_window_function() {
        let mut b = SummaryBuilder::new(windows(), vec![]);
        b.push(&event("1", t(4, 10), "192.0.2.1", None));
        let mut s = b.finish(&IpHistory::default());
        s.covers_tail = true;
        let w = Windows::compute(&WindowInputs {
            activated_at: t(4, 0),
            revoked_at: Some(t(5, 0)),
            planned_end: t(5, 0),
            portal_session: PortalSession::DEFAULT,
            permission_set_session: SessionDuration::parse("PT1H").unwrap(),
            observed: s.observed(),
            sessions_closed_at: None,
        })
        .unwrap();
        // Last issuance 04:09 + 1h session: nothing can outlive 05:09.
        assert_eq!(w.evidence_bound, Some(t(5, 9)));
    }

    #[test]
    fn console_links_follow_detectives_documented_format() {
        let scope = Interval {
            start: Utc.timestamp_opt(1_552_867_200, 0).unwrap(),
            end: Utc.timestamp_opt(1_552_910_400, 0).unwrap(),
        };
        let l = ConsoleLinks::build(
            "us-east-1",
            "000000000000000000001",
            Some("AROAEXAMPLE:bob@example.com"),
            scope,
        );
        assert_eq!(
            l.role_session.as_deref(),
            Some("https://console.aws.amazon.com/detective/home?region=us-east-1#entities/AwsRoleSession/AROAEXAMPLE:bob%40example.com?scopeStart=1552867200&scopeEnd=1552910400")
        );
        assert_eq!(
            l.role.as_deref(),
            Some("https://console.aws.amazon.com/detective/home?region=us-east-1#entities/AwsRole/AROAEXAMPLE?scopeStart=1552867200&scopeEnd=1552910400")
        );
        assert!(l
            .investigation
            .ends_with("#investigations/000000000000000000001"));
        let none = ConsoleLinks::build("us-east-1", "1", None, scope);
        assert_eq!(none.role_session, None);
    }

    #[test]
    fn severity_and_status_round_trip() {
        for s in ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"] {
            assert_eq!(InvestigationSeverity::parse(s).unwrap().as_str(), s);
        }
        for s in ["RUNNING", "FAILED", "SUCCESSFUL"] {
            assert_eq!(InvestigationStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(InvestigationSeverity::parse("high"), None);
    }
}
