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
//! Wiring it into the reaper (the Organizations calls, the leases, the recorded
//! `sessions_closed_at` and the closed window) is the next part of issue 13.

use app::domain::GrantId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The most characters AWS Organizations accepts in a service control policy.
pub const SCP_MAX_CHARS: usize = 5_120;
/// The most service control policies one target (an account) may have attached.
pub const MAX_SCPS_PER_TARGET: usize = 5;

/// One revoked grant's sessions to refuse in its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDeny {
    pub grant: GrantId,
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

/// What one statement denies: the permission set's role sessions, issued before a
/// time or all of them.
type Condition = (String, Option<DateTime<Utc>>);

/// The documents for the `denies` of `account` that still stand at `now`, in at most
/// `slots` policies (clamped to [`MAX_SCPS_PER_TARGET`]). Deterministic: the same
/// denies give the same text, so an unchanged policy is not rewritten.
pub fn pack(account: &str, denies: &[SessionDeny], now: DateTime<Utc>, slots: usize) -> Packed {
    let slots = slots.clamp(1, MAX_SCPS_PER_TARGET);
    // One group per condition, each user once (their grants all placed with them).
    let mut groups: BTreeMap<Condition, BTreeMap<String, Vec<GrantId>>> = BTreeMap::new();
    for d in denies.iter().filter(|d| d.until > now) {
        groups
            .entry((d.permission_set.clone(), d.issued_before))
            .or_default()
            .entry(d.user_id.clone())
            .or_default()
            .push(d.grant);
    }
    let mut documents: Vec<Vec<Value>> = vec![Vec::new(); slots];
    let mut packed = Packed::default();
    for (n, ((permission_set, before), users)) in groups.into_iter().enumerate() {
        // Users are added one by one to the statement being filled; a full
        // statement is placed, and the rest start another.
        let mut pending: Vec<(String, Vec<GrantId>)> = users.into_iter().collect();
        let mut part = 0;
        while !pending.is_empty() {
            let sid = format!("TimeboxClose{n}x{part}");
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
    packed.documents = documents
        .into_iter()
        .filter(|statements| !statements.is_empty())
        .map(|statements| document(&statements))
        .collect();
    packed.placed.sort_unstable();
    packed.overflow.sort_unstable();
    packed
}

/// Whether `statement` can join `statements` within [`SCP_MAX_CHARS`].
fn fits(statements: &[Value], statement: &Value) -> bool {
    let mut all = statements.to_vec();
    all.push(statement.clone());
    document(&all).chars().count() <= SCP_MAX_CHARS
}

/// A policy document of `statements`, as written to AWS (minified).
fn document(statements: &[Value]) -> String {
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
        let p = pack("111122223333", std::slice::from_ref(&d), at(10), 1);
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
        let p = pack("111122223333", &[d], at(12), 1);
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
            "111122223333",
            &[a.clone(), b.clone(), c.clone(), over.clone()],
            at(10),
            1,
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
            pack("111122223333", &[b, a, c], at(10), 1).documents,
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
        let one = pack("111122223333", &many, at(10), 1);
        assert_eq!(one.documents.len(), 1);
        assert!(one.documents[0].chars().count() <= SCP_MAX_CHARS);
        assert!(!one.overflow.is_empty(), "400 users do not fit in one SCP");
        assert_eq!(one.placed.len() + one.overflow.len(), 400);
        let three = pack("111122223333", &many, at(10), 3);
        assert_eq!(three.documents.len(), 3);
        assert!(three
            .documents
            .iter()
            .all(|d| d.chars().count() <= SCP_MAX_CHARS));
        assert!(three.placed.len() > 2 * one.placed.len());
        // Never more slots than AWS allows an account.
        let all = pack("111122223333", &many, at(10), 99);
        assert!(all.documents.len() <= MAX_SCPS_PER_TARGET);
        assert!(all.overflow.is_empty(), "{} left", all.overflow.len());
    }
}
