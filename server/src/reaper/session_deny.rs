//! Closing the sessions a revoked grant gave out (issue 13, first part: the policy
//! text). Deleting an account assignment stops new sessions, but role sessions
//! already issued live on for the permission set's session length. AWS's documented
//! way to end them ("Revoke active IAM role sessions created by permission sets", IAM
//! Identity Center user guide) is a `Deny` on everything for the user's Identity Store
//! id, best as a service control policy on the member account. This module turns the
//! denies that stand in one account into the text of the SCPs Timebox owns there,
//! within AWS's limits: a policy is at most [`SCP_MAX_CHARS`] characters and an
//! account takes at most [`MAX_SCPS_PER_TARGET`] SCPs, of which Timebox uses a
//! configured number of slots.
//!
//! Each deny narrows itself to the grant's permission set (`aws:PrincipalArn` like
//! its `AWSReservedSSO_<name>_*` role), so the user's other access in the account is
//! untouched, and once the same user's next grant of the same access activates, to
//! the sessions issued before that activation (`aws:TokenIssueTime`), so a later
//! grant is never blocked. Denies whose condition is the same share one statement
//! listing their users. A deny whose tail is over is dropped.
//!
//! The same packing serves the inline-policy fallback ([`INLINE_MAX_CHARS`], one
//! document, the permission set's own statements kept first). The session pass
//! (`sessions.rs`) writes what this computes.

use app::domain::GrantId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The most characters AWS Organizations accepts in a service control policy.
pub const SCP_MAX_CHARS: usize = 5_120;
/// The most service control policies one target (an account) may have attached.
pub const MAX_SCPS_PER_TARGET: usize = 5;
/// The most characters IAM Identity Center accepts in a permission set's inline
/// policy.
pub const INLINE_MAX_CHARS: usize = 32_768;
/// Every statement Timebox writes has a `Sid` starting with this: how its own
/// statements are told from anyone else's in a policy.
pub const SID_PREFIX: &str = "TimeboxClose";

/// One revoked grant's sessions to refuse in its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDeny {
    pub grant: GrantId,
    /// The account whose role sessions are denied.
    pub account: String,
    /// The Identity Store `UserId` the grant was for.
    pub user_id: String,
    /// The permission set's name (its roles are `AWSReservedSSO_<name>_<suffix>`).
    pub permission_set: String,
    /// Refuse only sessions issued before this: the activation of the same user's
    /// next grant of the same access. `None`: every session of that role.
    pub issued_before: Option<DateTime<Utc>>,
    /// When the tail is over (revocation + portal session + permission-set
    /// session): no session of the grant can exist any more, the deny goes.
    pub until: DateTime<Utc>,
}

/// The SCPs of one account: the documents to write, in slot order, and which grants
/// they carry and which did not fit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packed {
    /// Each slot's policy text (minified JSON, at most [`SCP_MAX_CHARS`]).
    pub documents: Vec<String>,
    /// The grants whose deny is in one of the documents.
    pub placed: Vec<GrantId>,
    /// The grants whose deny fits in none of the slots: their sessions stay open
    /// until their tail ends, and that must be said (or the inline fallback used).
    pub overflow: Vec<GrantId>,
}

/// What one statement denies: one account's role sessions of a permission set,
/// issued before a time or all of them.
type Condition = (String, String, Option<DateTime<Utc>>);

/// Where the documents go: how many, how long each, and statements that must stay
/// first in the first one (another author's, in a permission set's inline policy).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub slots: usize,
    pub max_chars: usize,
    pub keep: Vec<Value>,
}

impl Limits {
    /// Service control policies on one account: at most `slots` of them (clamped to
    /// [`MAX_SCPS_PER_TARGET`]).
    pub fn scp(slots: usize) -> Self {
        Self {
            slots: slots.clamp(1, MAX_SCPS_PER_TARGET),
            max_chars: SCP_MAX_CHARS,
            keep: Vec::new(),
        }
    }

    /// A permission set's inline policy, keeping its other statements `keep`.
    pub fn inline(keep: Vec<Value>) -> Self {
        Self {
            slots: 1,
            max_chars: INLINE_MAX_CHARS,
            keep,
        }
    }
}

/// The documents for the `denies` that still stand at `now`, within `limits`.
/// Deterministic: the same denies give the same text, so an unchanged policy is not
/// rewritten. With `keep` statements and no deny, the one document is `keep` alone.
pub fn pack(denies: &[SessionDeny], now: DateTime<Utc>, limits: &Limits) -> Packed {
    let slots = limits.slots.max(1);
    // One group per condition, each user once (their grants all placed with them).
    let mut groups: BTreeMap<Condition, BTreeMap<String, Vec<GrantId>>> = BTreeMap::new();
    for d in denies.iter().filter(|d| d.until > now) {
        groups
            .entry((d.account.clone(), d.permission_set.clone(), d.issued_before))
            .or_default()
            .entry(d.user_id.clone())
            .or_default()
            .push(d.grant);
    }
    let mut documents: Vec<Vec<Value>> = vec![Vec::new(); slots];
    documents[0] = limits.keep.clone();
    let fits = |statements: &[Value], statement: &Value| {
        let mut all = statements.to_vec();
        all.push(statement.clone());
        document(&all).chars().count() <= limits.max_chars
    };
    let mut packed = Packed::default();
    for (n, ((account, permission_set, before), users)) in groups.into_iter().enumerate() {
        let account = account.as_str();
        // Users are added one by one to the statement being filled; a full
        // statement is placed, and the rest start another.
        let mut pending: Vec<(String, Vec<GrantId>)> = users.into_iter().collect();
        let mut part = 0;
        while !pending.is_empty() {
            let sid = format!("{SID_PREFIX}{n}x{part}");
            part += 1;
            let Some(slot) = (0..slots).find(|&s| {
                fits(
                    &documents[s],
                    &statement(&sid, account, &permission_set, before, &[&pending[0].0]),
                )
            }) else {
                packed
                    .overflow
                    .extend(pending.drain(..).flat_map(|(_, grants)| grants));
                break;
            };
            let mut taken = 1;
            while taken < pending.len() {
                let ids: Vec<&str> = pending[..=taken].iter().map(|(u, _)| u.as_str()).collect();
                if !fits(
                    &documents[slot],
                    &statement(&sid, account, &permission_set, before, &ids),
                ) {
                    break;
                }
                taken += 1;
            }
            let ids: Vec<&str> = pending[..taken].iter().map(|(u, _)| u.as_str()).collect();
            documents[slot].push(statement(&sid, account, &permission_set, before, &ids));
            packed
                .placed
                .extend(pending.drain(..taken).flat_map(|(_, grants)| grants));
        }
    }
    let keep = limits.keep.len();
    packed.documents = documents
        .into_iter()
        .enumerate()
        .filter(|(slot, statements)| statements.len() > if *slot == 0 { keep } else { 0 })
        .map(|(_, statements)| document(&statements))
        .collect();
    if packed.documents.is_empty() && keep > 0 {
        packed.documents.push(document(&limits.keep));
    }
    packed.placed.sort_unstable();
    packed.overflow.sort_unstable();
    packed
}

/// A policy document of `statements`, as written to AWS (minified).
pub fn document(statements: &[Value]) -> String {
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// `Deny *` for the role sessions of `permission_set` in `account` whose Identity
/// Store user is one of `users`, issued before `before` when given.
fn statement(
    sid: &str,
    account: &str,
    permission_set: &str,
    before: Option<DateTime<Utc>>,
    users: &[&str],
) -> Value {
    let mut condition = json!({
        "StringEquals": { "identitystore:userId": users },
        "ArnLike": {
            "aws:PrincipalArn": format!(
                "arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_{permission_set}_*"
            )
        },
    });
    if let Some(t) = before {
        condition["DateLessThan"] =
            json!({ "aws:TokenIssueTime": t.to_rfc3339_opts(SecondsFormat::Secs, true) });
    }
    json!({
        "Sid": sid,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": condition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, 0, 0).unwrap()
    }

    fn deny(user: &str, ps: &str, before: Option<DateTime<Utc>>) -> SessionDeny {
        SessionDeny {
            grant: GrantId(uuid::Uuid::new_v4()),
            account: "111122223333".to_owned(),
            user_id: user.to_owned(),
            permission_set: ps.to_owned(),
            issued_before: before,
            until: at(20),
        }
    }

    fn statements(doc: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(doc).expect("JSON");
        assert_eq!(v["Version"], "2012-10-17");
        v["Statement"].as_array().expect("statements").clone()
    }

    #[test]
    fn a_deny_names_the_user_and_only_that_permission_sets_roles() {
        let d = deny("u-rita", "AdministratorAccess", None);
        let p = pack(std::slice::from_ref(&d), at(10), &Limits::scp(1));
        assert_eq!(p.placed, vec![d.grant]);
        assert!(p.overflow.is_empty());
        let s = &statements(&p.documents[0])[0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Action"], "*");
        assert_eq!(
            s["Condition"]["StringEquals"]["identitystore:userId"],
            json!(["u-rita"])
        );
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:PrincipalArn"],
            "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_AdministratorAccess_*"
        );
        // Her ReadOnlyAccess sessions in the same account are another role: untouched.
        assert!(!p.documents[0].contains("ReadOnlyAccess"));
        assert!(s["Condition"].get("DateLessThan").is_none());
    }

    #[test]
    fn a_later_grant_narrows_the_deny_to_older_sessions() {
        let d = deny("u-rita", "AdministratorAccess", Some(at(12)));
        let p = pack(&[d], at(12), &Limits::scp(1));
        let s = &statements(&p.documents[0])[0];
        assert_eq!(
            s["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-12-04T12:00:00Z"
        );
    }

    #[test]
    fn denies_with_one_condition_share_a_statement_and_the_tail_ends_them() {
        let a = deny("u-ada", "AdministratorAccess", None);
        let b = deny("u-bob", "AdministratorAccess", None);
        let c = deny("u-cy", "DatabaseAdmin", None);
        let mut over = deny("u-old", "AdministratorAccess", None);
        over.until = at(9);
        let p = pack(
            &[a.clone(), b.clone(), c.clone(), over.clone()],
            at(10),
            &Limits::scp(1),
        );
        assert_eq!(p.documents.len(), 1);
        let all = statements(&p.documents[0]);
        assert_eq!(all.len(), 2, "one statement per permission set");
        assert_eq!(
            all[0]["Condition"]["StringEquals"]["identitystore:userId"],
            json!(["u-ada", "u-bob"])
        );
        assert!(!p.documents[0].contains("u-old"), "its tail is over");
        assert!(!p.placed.contains(&over.grant) && !p.overflow.contains(&over.grant));
        // The same denies give the same text.
        assert_eq!(
            pack(&[b, a, c], at(10), &Limits::scp(1)).documents,
            p.documents
        );
    }

    #[test]
    fn many_users_fill_the_slots_within_the_limit_and_the_rest_is_overflow() {
        let many: Vec<SessionDeny> = (0..400)
            .map(|i| {
                deny(
                    &format!("90676{i:05}-0123-4567-89ab-cdef01234567"),
                    "AdministratorAccess",
                    None,
                )
            })
            .collect();
        let one = pack(&many, at(10), &Limits::scp(1));
        assert_eq!(one.documents.len(), 1);
        assert!(one.documents[0].chars().count() <= SCP_MAX_CHARS);
        assert!(!one.overflow.is_empty(), "400 users do not fit in one SCP");
        assert_eq!(one.placed.len() + one.overflow.len(), 400);
        let three = pack(&many, at(10), &Limits::scp(3));
        assert_eq!(three.documents.len(), 3);
        assert!(three
            .documents
            .iter()
            .all(|d| d.chars().count() <= SCP_MAX_CHARS));
        assert!(three.placed.len() > 2 * one.placed.len());
        // Never more slots than AWS allows an account.
        let all = pack(&many, at(10), &Limits::scp(99));
        assert!(all.documents.len() <= MAX_SCPS_PER_TARGET);
        assert!(all.overflow.is_empty(), "{} left", all.overflow.len());
    }

    #[test]
    fn the_inline_policy_keeps_its_own_statements_first() {
        let own =
            json!({"Sid": "ReadLogs", "Effect": "Allow", "Action": "logs:Get*", "Resource": "*"});
        let limits = Limits::inline(vec![own.clone()]);
        let mut d = deny("u-rita", "AdministratorAccess", None);
        d.account = "444455556666".to_owned();
        let p = pack(std::slice::from_ref(&d), at(10), &limits);
        let all = statements(&p.documents[0]);
        assert_eq!(all[0], own);
        assert!(all[1]["Sid"].as_str().unwrap().starts_with(SID_PREFIX));
        assert!(p.documents[0].contains("arn:aws:iam::444455556666:role/"));
        // The tail over: the policy is its own statements again.
        let p = pack(&[d], at(21), &limits);
        assert_eq!(p.documents, vec![document(&[own])]);
        assert!(p.placed.is_empty());
    }
}
