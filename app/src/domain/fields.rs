//! Parse, don't validate: every value a person or AWS hands us is turned into one of
//! these newtypes once, at the boundary, with an error that names the field and says
//! what is wrong. Past the boundary, code trusts them.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a field was refused. `field` is the form/API field name; the message is safe
/// to show to the person who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(value_type = String))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, FieldError> {
                Self::parse(&s)
            }
        }
    };
}

string_newtype!(
    /// A 12-digit AWS account id, e.g. `111122223333`.
    AccountId
);

impl AccountId {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError::new("account_id", "is required"));
        }
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                "account_id",
                format!("must be exactly 12 digits (got {:?})", truncate(s, 40)),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A permission set's name as IAM Identity Center accepts it: 1–32 characters of
    /// `[A-Za-z0-9+=,.@-_]`. It is part of the `AWSReservedSSO_<name>_<hash>` role name.
    PermissionSetName
);

impl PermissionSetName {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError::new("permission_set", "is required"));
        }
        if s.chars().count() > 32 {
            return Err(FieldError::new(
                "permission_set",
                "must be at most 32 characters (Identity Center's limit)",
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@-_".contains(*c)))
        {
            return Err(FieldError::new(
                "permission_set",
                format!("may only contain letters, digits and + = , . @ - _ (found {bad:?})"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// `arn:aws:sso:::permissionSet/ssoins-<16 hex>/ps-<16 hex>` (the partition may be
    /// `aws-cn` or `aws-us-gov`).
    PermissionSetArn
);

impl PermissionSetArn {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let err = || {
            FieldError::new(
                "permission_set_arn",
                "must look like arn:aws:sso:::permissionSet/ssoins-<id>/ps-<id>",
            )
        };
        let rest = s.strip_prefix("arn:").ok_or_else(err)?;
        let (partition, rest) = rest.split_once(':').ok_or_else(err)?;
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(FieldError::new(
                "permission_set_arn",
                format!("unknown partition {partition:?}"),
            ));
        }
        let rest = rest.strip_prefix("sso:::permissionSet/").ok_or_else(err)?;
        let (instance, ps) = rest.split_once('/').ok_or_else(err)?;
        let id_ok = |id: &str, prefix: &str| {
            id.strip_prefix(prefix).is_some_and(|h| {
                (1..=64).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        };
        if !id_ok(instance, "ssoins-") || !id_ok(ps, "ps-") {
            return Err(err());
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// An Identity Store `userName` (1–128 characters, no control characters or
    /// surrounding spaces). CloudTrail's principal id ends with `:<userName>`.
    UserName
);

impl UserName {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError::new("user_name", "is required"));
        }
        if s.chars().count() > 128 {
            return Err(FieldError::new(
                "user_name",
                "must be at most 128 characters",
            ));
        }
        if has_control(s) || s.contains(char::is_whitespace) {
            return Err(FieldError::new(
                "user_name",
                "must not contain spaces or control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A dashboard person: the stable subject the sign-in provider gives us.
    PersonId
);

impl PersonId {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError::new("person", "is required"));
        }
        if s.len() > 255 || has_control(s) {
            return Err(FieldError::new(
                "person",
                "must be at most 255 bytes without control characters",
            ));
        }
        // An email-shaped id (an `email`, `upn` or `preferred_username` claim) is
        // compared case-insensitively everywhere: matching, self-approval, leases and
        // policies all see one spelling. Opaque ids (Entra's pairwise `sub`) keep
        // their case, which is significant.
        if s.contains('@') {
            return Ok(Self(s.to_lowercase()));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Characters that change how the text around them reads without being seen:
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
/// and zero-width characters (U+200B–U+200D, U+2060, U+FEFF). A justification with
/// U+202E can read backwards in an approver's inbox; text people decide on has none.
fn is_hidden_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// Checks text a person typed for others to read: trimmed, between `min` and `max`
/// characters, no control characters but line breaks and tabs, no hidden formatting
/// ([`is_hidden_formatting`]). The error names `field`.
fn free_text(
    field: &'static str,
    input: &str,
    min: usize,
    max: usize,
) -> Result<String, FieldError> {
    let s = input.trim();
    let n = s.chars().count();
    let min = min.max(1);
    if n == 0 {
        return Err(FieldError::new(field, "is required"));
    }
    if n < min {
        return Err(FieldError::new(
            field,
            format!("must be at least {min} characters (has {n})"),
        ));
    }
    if n > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters (has {n})"),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    if let Some(c) = s.chars().find(|c| is_hidden_formatting(*c)) {
        return Err(FieldError::new(
            field,
            format!(
                "must not contain invisible or text-direction characters (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(s.to_owned())
}

string_newtype!(
    /// Why the access is needed. Trimmed; between [`Justification::MIN_CHARS`] (or the
    /// policy's own minimum) and [`Justification::MAX_CHARS`] characters; no control
    /// characters except line breaks and tabs, no invisible or text-direction ones.
    Justification
);

impl Justification {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        Self::parse_with_min(input, Self::MIN_CHARS)
    }

    /// Policy may ask for a longer justification than the global minimum.
    pub fn parse_with_min(input: &str, min_chars: usize) -> Result<Self, FieldError> {
        free_text("justification", input, min_chars, Self::MAX_CHARS).map(Self)
    }
}

/// A short free text a person adds to a decision, with the same checks as a
/// justification ([`free_text`]) and at most `MAX_CHARS` characters. Blank means
/// "none" ([`Comment::parse_optional`]).
macro_rules! note_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        string_newtype!($(#[$meta])* $name);

        impl $name {
            pub const MAX_CHARS: usize = 1000;

            pub fn parse(input: &str) -> Result<Self, FieldError> {
                free_text($field, input, 1, Self::MAX_CHARS).map(Self)
            }

            /// `None` for no text or only spaces.
            pub fn parse_optional(input: Option<&str>) -> Result<Option<Self>, FieldError> {
                match input.map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(s) => Self::parse(s).map(Some),
                }
            }
        }
    };
}

note_newtype!(
    /// An approver's comment on approving or denying a request (field `comment`).
    Comment,
    "comment"
);

note_newtype!(
    /// Why a request is withdrawn or a grant is ended early (field `reason`).
    Reason,
    "reason"
);

note_newtype!(
    /// What the review of a break-glass use found (field `comment`).
    ReviewComment,
    "comment"
);

string_newtype!(
    /// A change or incident ticket, e.g. `INC-1234` or `CHG0012345`: 1–64 characters
    /// of letters, digits and `-_./#:`.
    TicketRef
);

impl TicketRef {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError::new("ticket", "is empty"));
        }
        if s.chars().count() > 64 {
            return Err(FieldError::new("ticket", "must be at most 64 characters"));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_./#:".contains(*c)))
        {
            return Err(FieldError::new(
                "ticket",
                format!("may only contain letters, digits and - _ . / # : (found {bad:?})"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// How long the assignment is granted for, counted from activation. Positive, whole
/// minutes, at most the applicable maximum (policy's `max_duration`, never above
/// [`GrantDuration::ABSOLUTE_MAX`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(value_type = i64))]
#[serde(try_from = "i64", into = "i64")]
pub struct GrantDuration(i64);

impl GrantDuration {
    /// Twelve hours: beyond that a "just-in-time" grant is standing access.
    pub const ABSOLUTE_MAX_MINUTES: i64 = 12 * 60;

    pub fn from_minutes(minutes: i64, max: Option<GrantDuration>) -> Result<Self, FieldError> {
        let max_minutes = max.map_or(Self::ABSOLUTE_MAX_MINUTES, |m| {
            m.0.min(Self::ABSOLUTE_MAX_MINUTES)
        });
        if minutes <= 0 {
            return Err(FieldError::new("duration", "must be positive"));
        }
        if minutes > max_minutes {
            return Err(FieldError::new(
                "duration",
                format!(
                    "must be at most {} (asked for {})",
                    fmt_minutes(max_minutes),
                    fmt_minutes(minutes)
                ),
            ));
        }
        Ok(Self(minutes))
    }

    /// Parses `90` (minutes), `90m`, `2h`, `1h30m`.
    pub fn parse(input: &str, max: Option<GrantDuration>) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError::new("duration", "is required"));
        }
        let bad = || {
            FieldError::new(
                "duration",
                format!(
                    "{:?} is not a duration; write e.g. 30m, 2h or 1h30m",
                    truncate(s, 20)
                ),
            )
        };
        if let Ok(m) = s.parse::<i64>() {
            return Self::from_minutes(m, max);
        }
        let mut minutes: i64 = 0;
        let mut num = String::new();
        let mut seen_h = false;
        let mut seen_m = false;
        for c in s.chars() {
            match c {
                '0'..='9' => num.push(c),
                'h' | 'H' if !seen_h && !seen_m && !num.is_empty() => {
                    let n: i64 = num.parse().map_err(|_| bad())?;
                    minutes = n.checked_mul(60).ok_or_else(bad)?;
                    num.clear();
                    seen_h = true;
                }
                'm' | 'M' if !seen_m && !num.is_empty() => {
                    let n: i64 = num.parse().map_err(|_| bad())?;
                    minutes = minutes.checked_add(n).ok_or_else(bad)?;
                    num.clear();
                    seen_m = true;
                }
                _ => return Err(bad()),
            }
        }
        if !num.is_empty() || !(seen_h || seen_m) {
            return Err(bad());
        }
        Self::from_minutes(minutes, max)
    }

    pub fn minutes(self) -> i64 {
        self.0
    }

    pub fn as_duration(self) -> Duration {
        Duration::minutes(self.0)
    }
}

impl From<GrantDuration> for i64 {
    fn from(d: GrantDuration) -> i64 {
        d.0
    }
}

impl TryFrom<i64> for GrantDuration {
    type Error = FieldError;
    fn try_from(m: i64) -> Result<Self, FieldError> {
        Self::from_minutes(m, None)
    }
}

impl fmt::Display for GrantDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_minutes(self.0))
    }
}

/// `90` → `1h 30m`, `60` → `1h`, `15` → `15m`.
pub fn fmt_minutes(m: i64) -> String {
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_needs_twelve_digits() {
        assert_eq!(
            AccountId::parse(" 111122223333 ").unwrap().as_str(),
            "111122223333"
        );
        for bad in [
            "",
            "11112222333",
            "1111222233334",
            "11112222333a",
            "1111-2222-3333",
        ] {
            let e = AccountId::parse(bad).unwrap_err();
            assert_eq!(e.field, "account_id", "{bad:?}");
        }
        assert!(AccountId::parse("12345")
            .unwrap_err()
            .message
            .contains("12 digits"));
    }

    #[test]
    fn permission_set_name_follows_identity_center_rules() {
        assert!(PermissionSetName::parse("AdministratorAccess").is_ok());
        assert!(PermissionSetName::parse("EC2.Admin+ro@x_y-z").is_ok());
        assert!(PermissionSetName::parse("Admin Access").is_err());
        assert!(PermissionSetName::parse(&"a".repeat(33)).is_err());
        assert!(PermissionSetName::parse(&"a".repeat(32)).is_ok());
        assert!(PermissionSetName::parse("")
            .unwrap_err()
            .message
            .contains("required"));
    }

    #[test]
    fn permission_set_arn_shape() {
        let ok = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef";
        assert_eq!(PermissionSetArn::parse(ok).unwrap().as_str(), ok);
        assert!(PermissionSetArn::parse(
            "arn:aws-us-gov:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef"
        )
        .is_ok());
        for bad in [
            "",
            "arn:aws:iam::111122223333:role/x",
            "arn:aws:sso:::permissionSet/ssoins-1234/ps-",
            "arn:aws:sso:::permissionSet/ps-1234/ssoins-1234",
            "arn:evil:sso:::permissionSet/ssoins-1234/ps-1234",
            "arn:aws:sso:::permissionSet/ssoins-12/ps-12/extra",
        ] {
            assert!(PermissionSetArn::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_name_rejects_spaces_and_controls() {
        assert!(UserName::parse("alice@example.com").is_ok());
        assert!(UserName::parse("ali ce").is_err());
        assert!(UserName::parse("alice\u{7}").is_err());
        assert!(UserName::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn justification_is_trimmed_and_bounded() {
        let j = Justification::parse("  rotate the leaked key INC-1  ").unwrap();
        assert_eq!(j.as_str(), "rotate the leaked key INC-1");
        assert!(Justification::parse("   ")
            .unwrap_err()
            .message
            .contains("required"));
        let e = Justification::parse("too short").unwrap_err();
        assert!(e.message.contains("at least 10"), "{e}");
        assert!(Justification::parse(&"x".repeat(2001)).is_err());
        assert!(Justification::parse("line one\nline two is fine").is_ok());
        assert!(Justification::parse("bell \u{7} is not fine at all").is_err());
        assert!(Justification::parse_with_min("short but ok", 5).is_ok());
        assert!(Justification::parse_with_min("needs thirty characters", 30).is_err());
    }

    #[test]
    fn free_text_refuses_hidden_formatting_and_controls() {
        // A right-to-left override makes "txt.exe" read as "exe.txt".
        let e = Justification::parse("need the \u{202E}exe.txt file now").unwrap_err();
        assert_eq!(e.field, "justification");
        assert!(e.message.contains("U+202E"), "{e}");
        for hidden in [
            '\u{202A}', '\u{202D}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{2060}',
            '\u{FEFF}',
        ] {
            let text = format!("looks fine{hidden} but is not");
            assert!(Justification::parse(&text).is_err(), "{hidden:?}");
            assert_eq!(Comment::parse(&text).unwrap_err().field, "comment");
            assert_eq!(Reason::parse(&text).unwrap_err().field, "reason");
            assert_eq!(ReviewComment::parse(&text).unwrap_err().field, "comment");
        }
        assert!(Comment::parse("nul \u{0} inside")
            .unwrap_err()
            .message
            .contains("control"));
        assert!(Reason::parse("escape \u{1b}[31m red").is_err());
        // Ordinary text, accents, other scripts and line breaks are fine.
        assert!(Comment::parse("ok für heute, line one\nline two\tdone — 好").is_ok());
        assert!(Justification::parse("ليس مشكلة: عربي مع English").is_ok());
    }

    #[test]
    fn notes_are_bounded_and_blank_means_none() {
        assert_eq!(Comment::parse_optional(None), Ok(None));
        assert_eq!(Comment::parse_optional(Some("   ")), Ok(None));
        assert_eq!(
            Reason::parse_optional(Some("  the requester is done "))
                .unwrap()
                .unwrap()
                .as_str(),
            "the requester is done"
        );
        assert!(Comment::parse(&"x".repeat(Comment::MAX_CHARS)).is_ok());
        let e = Comment::parse(&"x".repeat(Comment::MAX_CHARS + 1)).unwrap_err();
        assert_eq!(e.field, "comment");
        assert!(e.message.contains("at most 1000"), "{e}");
        // Two MiB are refused by their length, not stored.
        assert!(ReviewComment::parse(&"y".repeat(2 << 20)).is_err());
        let e: Result<Reason, _> = serde_json::from_str("\"bidi \\u202e here\"");
        assert!(e.is_err());
    }

    #[test]
    fn ticket_ref() {
        assert!(TicketRef::parse("INC-1234").is_ok());
        assert!(TicketRef::parse("CHG0012345").is_ok());
        assert!(TicketRef::parse("JIRA OPS-1").is_err());
        assert!(TicketRef::parse("").is_err());
    }

    #[test]
    fn grant_duration_is_positive_and_capped() {
        assert_eq!(GrantDuration::parse("90", None).unwrap().minutes(), 90);
        assert_eq!(GrantDuration::parse("1h30m", None).unwrap().minutes(), 90);
        assert_eq!(GrantDuration::parse("2h", None).unwrap().minutes(), 120);
        assert_eq!(GrantDuration::parse("45m", None).unwrap().minutes(), 45);
        assert!(GrantDuration::parse("0", None)
            .unwrap_err()
            .message
            .contains("positive"));
        assert!(GrantDuration::parse("-5", None).is_err());
        assert!(GrantDuration::parse("13h", None).is_err());
        let max = GrantDuration::from_minutes(240, None).unwrap();
        let e = GrantDuration::parse("5h", Some(max)).unwrap_err();
        assert!(e.message.contains("at most 4h"), "{e}");
        for bad in ["h", "1x", "1m2h", "1h1h", "99999999999999999999h", "1.5h"] {
            assert!(GrantDuration::parse(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let ok: Result<AccountId, _> = serde_json::from_str("\"111122223333\"");
        assert!(ok.is_ok());
        let bad: Result<AccountId, _> = serde_json::from_str("\"1111\"");
        assert!(bad.is_err());
    }
}
