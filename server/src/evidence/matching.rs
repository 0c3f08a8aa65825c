//! Which CloudTrail events belong to a grant (DESIGN §3). Matching is exact, never a
//! pattern: the account, `userIdentity.type = AssumedRole`, a session issuer named
//! `AWSReservedSSO_<PermissionSetName>_<hash>`, and a principal id whose session name
//! (after the `:`) is the person's user name. So `bob` never matches `bobby`, and
//! `Admin` never matches `AdminRO` or `Admin_RO`.
//!
//! Both sources (LookupEvents and CloudTrail Lake) turn what AWS returns into a
//! [`TrailRecord`] and keep only the records [`MatchTarget::matches`] accepts.

use app::domain::ActivityEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The person, account and permission set a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchTarget {
    pub account_id: String,
    pub permission_set: String,
    /// The Identity Center user name: the role session name IAM Identity Center uses.
    pub user_name: String,
}

/// The fields of one CloudTrail record that matching and storage need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrailRecord {
    pub event_id: String,
    pub event_time: Option<DateTime<Utc>>,
    pub event_name: String,
    pub event_source: String,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub read_only: Option<bool>,
    pub resources: Vec<String>,
    pub recipient_account_id: Option<String>,
    /// `userIdentity.type`.
    pub identity_type: Option<String>,
    /// `userIdentity.accountId`.
    pub identity_account_id: Option<String>,
    /// `userIdentity.principalId`.
    pub principal_id: Option<String>,
    /// `userIdentity.sessionContext.sessionIssuer.userName` (the role's name).
    pub issuer_user_name: Option<String>,
    pub issuer_arn: Option<String>,
    /// `userIdentity.sessionContext.attributes.creationDate`.
    pub session_created_at: Option<DateTime<Utc>>,
}

impl MatchTarget {
    /// `AWSReservedSSO_<PermissionSetName>_`: every role Identity Center makes for the
    /// permission set starts so, followed by a hash.
    pub fn role_name_prefix(&self) -> String {
        format!("AWSReservedSSO_{}_", self.permission_set)
    }

    /// Whether `role_name` is the permission set's role: the prefix, then only the
    /// hash (letters and digits). A longer permission-set name that merely starts
    /// with this one (`Admin_RO` for `Admin`) leaves an `_` in the rest, so it does
    /// not match.
    pub fn is_permission_set_role(&self, role_name: &str) -> bool {
        role_name
            .strip_prefix(&self.role_name_prefix())
            .is_some_and(|hash| !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_alphanumeric()))
    }

    pub fn matches(&self, r: &TrailRecord) -> bool {
        let account = r
            .identity_account_id
            .as_deref()
            .or(r.recipient_account_id.as_deref());
        if account != Some(self.account_id.as_str()) {
            return false;
        }
        if r.identity_type.as_deref() != Some("AssumedRole") {
            return false;
        }
        if !r
            .issuer_user_name
            .as_deref()
            .is_some_and(|n| self.is_permission_set_role(n))
        {
            return false;
        }
        // `<role id>:<session name>`: the role id has no colon, the session name is
        // compared whole and exactly: it is the identity store's `UserName` as
        // resolved and recorded when the request was made, spelt as Identity Center
        // spells it.
        r.principal_id
            .as_deref()
            .and_then(|p| p.split_once(':'))
            .is_some_and(|(_, session)| session == self.user_name)
    }
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses CloudTrail's time stamps (`2026-11-28T05:00:00Z`, Lake's
/// `2026-11-28 05:00:00.000`).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    None
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "TRUE" | "True" => Some(true),
        "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl TrailRecord {
    /// From the JSON of one CloudTrail record (LookupEvents' `CloudTrailEvent`).
    pub fn from_json(json: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let resources = v
            .get("resources")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|r| text(r, &["ARN"]).or_else(|| text(r, &["arn"])))
                    .collect()
            })
            .unwrap_or_default();
        Ok(TrailRecord {
            event_id: text(&v, &["eventID"]).ok_or("no eventID")?,
            event_time: text(&v, &["eventTime"]).and_then(|t| parse_time(&t)),
            event_name: text(&v, &["eventName"]).unwrap_or_default(),
            event_source: text(&v, &["eventSource"]).unwrap_or_default(),
            aws_region: text(&v, &["awsRegion"]),
            source_ip: text(&v, &["sourceIPAddress"]),
            user_agent: text(&v, &["userAgent"]),
            error_code: text(&v, &["errorCode"]),
            read_only: text(&v, &["readOnly"]).and_then(|b| parse_bool(&b)),
            resources,
            recipient_account_id: text(&v, &["recipientAccountId"]),
            identity_type: text(&v, &["userIdentity", "type"]),
            identity_account_id: text(&v, &["userIdentity", "accountId"]),
            principal_id: text(&v, &["userIdentity", "principalId"]),
            issuer_user_name: text(
                &v,
                &[
                    "userIdentity",
                    "sessionContext",
                    "sessionIssuer",
                    "userName",
                ],
            ),
            issuer_arn: text(
                &v,
                &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
            ),
            session_created_at: text(
                &v,
                &[
                    "userIdentity",
                    "sessionContext",
                    "attributes",
                    "creationDate",
                ],
            )
            .and_then(|t| parse_time(&t)),
        })
    }

    /// The stored form; `None` without an event time.
    pub fn into_event(self) -> Option<ActivityEvent> {
        Some(ActivityEvent {
            event_id: self.event_id,
            event_time: self.event_time?,
            event_name: self.event_name,
            event_source: self.event_source,
            aws_region: self.aws_region,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            error_code: self.error_code,
            read_only: self.read_only,
            resources: self.resources,
            principal_id: self.principal_id,
            session_issuer_arn: self.issuer_arn,
            session_created_at: self.session_created_at,
        })
    }
}

/// Builds a CloudTrail record for tests and the demo double's expectations.
#[cfg(test)]
pub(crate) fn record_json(
    id: &str,
    account: &str,
    role: &str,
    session: &str,
    identity_type: &str,
) -> String {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": identity_type,
            "principalId": format!("AROAEXAMPLEROLEID:{session}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEROLEID",
                    "arn": format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}"),
                    "accountId": account,
                    "userName": role
                },
                "attributes": { "creationDate": "2026-11-28T04:05:00Z", "mfaAuthenticated": "false" }
            }
        },
        "eventTime": "2026-11-28T04:10:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15.0",
        "eventID": id,
        "readOnly": true,
        "resources": [{ "ARN": "arn:aws:s3:::example-bucket", "accountId": account, "type": "AWS::S3::Bucket" }],
        "eventType": "AwsApiCall",
        "recipientAccountId": account
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";

    fn target(user: &str, ps: &str) -> MatchTarget {
        MatchTarget {
            account_id: ACCOUNT.into(),
            permission_set: ps.into(),
            user_name: user.into(),
        }
    }

    fn rec(account: &str, role: &str, session: &str) -> TrailRecord {
        TrailRecord::from_json(&record_json("e1", account, role, session, "AssumedRole")).unwrap()
    }

    const ADMIN_ROLE: &str = "AWSReservedSSO_Admin_0123456789abcdef";

    #[test]
    fn the_grants_own_activity_matches() {
        let r = rec(ACCOUNT, ADMIN_ROLE, "bob");
        assert!(target("bob", "Admin").matches(&r));
        let e = r.into_event().unwrap();
        assert_eq!(e.event_name, "ListBuckets");
        assert_eq!(e.read_only, Some(true));
        assert_eq!(e.resources, vec!["arn:aws:s3:::example-bucket"]);
        assert_eq!(e.principal_id.as_deref(), Some("AROAEXAMPLEROLEID:bob"));
        assert!(e.session_created_at.is_some());
    }

    #[test]
    fn bob_never_matches_bobby_and_the_reverse() {
        assert!(!target("bob", "Admin").matches(&rec(ACCOUNT, ADMIN_ROLE, "bobby")));
        assert!(!target("bobby", "Admin").matches(&rec(ACCOUNT, ADMIN_ROLE, "bob")));
        // A session name that merely ends with the user name.
        assert!(!target("bob", "Admin").matches(&rec(ACCOUNT, ADMIN_ROLE, "xbob")));
        // Case matters: the session name is compared exactly.
        assert!(!target("bob", "Admin").matches(&rec(ACCOUNT, ADMIN_ROLE, "Bob")));
    }

    #[test]
    fn admin_never_matches_adminro_or_admin_ro() {
        let t = target("bob", "Admin");
        assert!(!t.matches(&rec(
            ACCOUNT,
            "AWSReservedSSO_AdminRO_0123456789abcdef",
            "bob"
        )));
        assert!(!t.matches(&rec(
            ACCOUNT,
            "AWSReservedSSO_Admin_RO_0123456789abcdef",
            "bob"
        )));
        assert!(!t.matches(&rec(ACCOUNT, "AWSReservedSSO_Admin_", "bob")));
        assert!(target("bob", "AdminRO").matches(&rec(
            ACCOUNT,
            "AWSReservedSSO_AdminRO_0123456789abcdef",
            "bob"
        )));
        assert!(target("bob", "Admin_RO").matches(&rec(
            ACCOUNT,
            "AWSReservedSSO_Admin_RO_0123456789abcdef",
            "bob"
        )));
    }

    #[test]
    fn another_account_or_permission_set_or_identity_type_does_not_match() {
        let t = target("bob", "Admin");
        assert!(!t.matches(&rec("444455556666", ADMIN_ROLE, "bob")));
        assert!(!t.matches(&rec(
            ACCOUNT,
            "AWSReservedSSO_ReadOnly_0123456789abcdef",
            "bob"
        )));
        // Not from Identity Center at all.
        assert!(!t.matches(&rec(ACCOUNT, "Admin_0123456789abcdef", "bob")));
        let user =
            TrailRecord::from_json(&record_json("e2", ACCOUNT, ADMIN_ROLE, "bob", "IAMUser"))
                .unwrap();
        assert!(!t.matches(&user));
    }

    #[test]
    fn times_in_both_sources_formats_parse() {
        assert!(parse_time("2026-11-28T04:10:00Z").is_some());
        assert!(parse_time("2026-11-28 04:10:00.000").is_some());
        assert!(parse_time("yesterday").is_none());
        assert!(TrailRecord::from_json("{").is_err());
        assert!(TrailRecord::from_json("{}").is_err(), "no eventID");
    }
}
