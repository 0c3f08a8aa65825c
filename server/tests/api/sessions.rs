//! Closing revoked grants' sessions, against the emulator: the service control
//! policies (and the inline fallback) are read back from moto after each step and
//! their statements checked — a grant ended, a later grant of the same access (the
//! deny narrows), the tail over (the deny gone), three users in one account (one
//! statement), no room on the account (reported, or the inline fallback), an edit by
//! hand (reported, not overwritten), a crash between the deletion and the policy
//! write, a crash between creating the policy and recording it, the management
//! account, and two replicas.

use crate::helpers::TestDb;
use crate::moto::Moto;
use crate::reaper::{approved_grant, finish_early, rig, settings, Rig};
use app::domain::{Grant, GrantState, SessionsClose};
use aws_sdk_organizations::types::PolicyType;
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;
use timebox_server::clock::Clock;
use timebox_server::config::CloseSessions;
use timebox_server::metrics::Metrics;
use timebox_server::reaper::{Reaper, SessionCloser};
use timebox_server::store::{PolicyKind, Store};

/// The rig's reaper again, closing sessions in `mode` with `slots` policy slots.
async fn closing(r: &Rig, mode: CloseSessions, slots: usize, inline_fallback: bool) -> Reaper {
    closing_on(r, r.grants.clone(), mode, slots, inline_fallback).await
}

async fn closing_on(
    r: &Rig,
    grants: timebox_server::services::grants::GrantService,
    mode: CloseSessions,
    slots: usize,
    inline_fallback: bool,
) -> Reaper {
    let metrics = Arc::new(Metrics::new());
    let ic = r.moto.identity_center(metrics.clone()).await;
    Reaper::new(
        grants,
        ic.clone(),
        Arc::new(r.clock.clone()),
        metrics,
        settings(),
    )
    .with_sessions(SessionCloser::new(mode, true, slots, inline_fallback, ic))
}

/// The SCPs attached to `account` that Timebox owns: (name, parsed text).
async fn timebox_scps(moto: &Moto, account: &str) -> Vec<(String, Value)> {
    let orgs = moto.clients().await.organizations;
    let attached = orgs
        .list_policies_for_target()
        .target_id(account)
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .expect("list policies for target");
    let mut out = Vec::new();
    for p in attached.policies() {
        let name = p.name().unwrap_or_default().to_owned();
        if !name.starts_with("timebox-sessions-") {
            continue;
        }
        let described = orgs
            .describe_policy()
            .policy_id(p.id().unwrap())
            .send()
            .await
            .expect("describe policy");
        let text = described.policy().and_then(|p| p.content()).unwrap();
        out.push((name, serde_json::from_str(text).expect("policy JSON")));
    }
    out
}

/// Every SCP in the organisation named like Timebox's (attached or not).
async fn all_timebox_scps(moto: &Moto) -> Vec<String> {
    let orgs = moto.clients().await.organizations;
    let all = orgs
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .expect("list policies");
    all.policies()
        .iter()
        .filter_map(|p| p.name())
        .filter(|n| n.starts_with("timebox-sessions-"))
        .map(str::to_owned)
        .collect()
}

fn statements(policy: &Value) -> Vec<Value> {
    policy["Statement"].as_array().cloned().unwrap_or_default()
}

fn users_of(statement: &Value) -> Vec<String> {
    let mut users: Vec<String> = statement["Condition"]["StringEquals"]["identitystore:userId"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

async fn get(store: &Arc<dyn Store>, g: &Grant) -> Grant {
    store.get_grant(g.id).await.unwrap().unwrap()
}

async fn count_events(store: &Arc<dyn Store>, g: &Grant, action: &str) -> usize {
    store
        .audit_events(Some(g.id), 0, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

/// "I'm done" on an active grant closes its sessions in the same pass: the SCP on the
/// account denies her Identity Store id on that permission set's roles only, the real
/// window ends when the policy was written, the worst case is kept beside it; once
/// the tail is over the policy is detached and deleted.
async fn a_finished_grant_closes_its_sessions_until_the_tail_is_over(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let prod = r.org.accounts[0].clone();
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 60).await;
    reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &g).await.state, GrantState::Active);
    assert!(
        timebox_scps(&r.moto, &prod).await.is_empty(),
        "nothing to deny yet"
    );
    r.clock.advance(Duration::minutes(10));
    finish_early(&r.grants, &g, "alice").await;
    reaper.tick().await.unwrap();

    let done = get(&r.store, &g).await;
    assert_eq!(done.state, GrantState::Revoked);
    assert_eq!(done.sessions_close, Some(SessionsClose::ClosedScp));
    let closed_at = done.sessions_closed_at.expect("sessions closed");
    let revoked_at = done.revoked_at.unwrap();
    assert!(closed_at >= revoked_at);
    let w = done.windows().unwrap().unwrap();
    assert_eq!(w.real.end, closed_at, "the real window ends at the deny");
    assert_eq!(
        w.worst_case_end,
        revoked_at + Duration::hours(8) + Duration::hours(2),
        "portal 8h + AdministratorAccess's 2h, kept beside it"
    );
    assert_eq!(done.real_end, Some(closed_at));
    assert_eq!(count_events(&r.store, &g, "sessions_closed").await, 1);

    let scps = timebox_scps(&r.moto, &prod).await;
    assert_eq!(scps.len(), 1, "{scps:?}");
    assert_eq!(scps[0].0, format!("timebox-sessions-{prod}-0"));
    let all = statements(&scps[0].1);
    assert_eq!(all.len(), 1);
    let s = &all[0];
    assert_eq!(s["Effect"], "Deny");
    assert_eq!(s["Action"], "*");
    assert_eq!(users_of(s), vec![r.org.user("alice")]);
    assert_eq!(
        s["Condition"]["ArnLike"]["aws:PrincipalArn"],
        format!("arn:aws:iam::{prod}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_AdministratorAccess_*"),
        "her ReadOnlyAccess sessions in the same account are another role: not denied"
    );
    assert!(s["Condition"].get("DateLessThan").is_none());
    // Other accounts untouched.
    assert!(timebox_scps(&r.moto, &r.org.accounts[1]).await.is_empty());

    // A pass with nothing new writes nothing.
    let again = reaper.close_sessions().await.unwrap();
    assert_eq!(again.writes, 0);
    assert!(again.closed.is_empty());

    // The tail over: the deny goes, the policy with it.
    r.clock.advance(Duration::hours(10) + Duration::minutes(1));
    let after = reaper.close_sessions().await.unwrap();
    assert_eq!(after.writes, 1);
    assert!(timebox_scps(&r.moto, &prod).await.is_empty());
    assert!(
        all_timebox_scps(&r.moto).await.is_empty(),
        "deleted, not only detached"
    );
    assert!(r
        .store
        .session_policies(PolicyKind::Scp, &prod)
        .await
        .unwrap()
        .is_empty());
    // The grant keeps its closed window.
    assert_eq!(get(&r.store, &g).await.sessions_closed_at, Some(closed_at));
}

/// Her next grant of the same access activates while the first grant's deny stands:
/// the statement narrows to sessions issued before that activation, so the new
/// grant's sessions work. A grant for another permission set is never in the deny.
async fn a_later_grant_narrows_the_deny_to_older_sessions(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let prod = r.org.accounts[0].clone();
    let first = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 30).await;
    let other = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 120).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    assert_eq!(
        get(&r.store, &first).await.sessions_close,
        Some(SessionsClose::ClosedScp)
    );
    assert_eq!(get(&r.store, &other).await.state, GrantState::Active);

    r.clock.advance(Duration::minutes(5));
    let second = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 30).await;
    reaper.tick().await.unwrap();
    let second = get(&r.store, &second).await;
    assert_eq!(second.state, GrantState::Active);
    let activated = second.activated_at.unwrap();

    let scps = timebox_scps(&r.moto, &prod).await;
    let all = statements(&scps[0].1);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        activated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "only sessions issued before the next grant's activation"
    );
    let text = scps[0].1.to_string();
    assert!(
        !text.contains("ReadOnlyAccess"),
        "the other permission set keeps working: {text}"
    );
}

/// Three people revoked in one account: one statement lists all three.
async fn three_users_in_one_account_share_one_statement(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let prod = r.org.accounts[0].clone();
    let mut grants = Vec::new();
    for who in ["alice", "bob", "carol"] {
        grants.push(approved_grant(&r.grants, who, &prod, "AdministratorAccess", 30).await);
    }
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    let scps = timebox_scps(&r.moto, &prod).await;
    assert_eq!(scps.len(), 1);
    let all = statements(&scps[0].1);
    assert_eq!(all.len(), 1, "packed: {all:?}");
    let mut expected: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| r.org.user(u))
        .collect();
    expected.sort();
    assert_eq!(users_of(&all[0]), expected);
    for g in &grants {
        assert_eq!(
            get(&r.store, g).await.sessions_close,
            Some(SessionsClose::ClosedScp)
        );
    }
}

/// Fills the account's five SCP places with other policies (FullAWSAccess is one).
async fn fill_the_account(moto: &Moto, account: &str) {
    let orgs = moto.clients().await.organizations;
    for i in 0..4 {
        let p = orgs
            .create_policy()
            .name(format!("guardrail-{account}-{i}"))
            .description("someone else's")
            .content(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"account:CloseAccount","Resource":"*"}]}"#)
            .r#type(PolicyType::ServiceControlPolicy)
            .send()
            .await
            .expect("create policy");
        let id = p.policy().unwrap().policy_summary().unwrap().id().unwrap();
        orgs.attach_policy()
            .policy_id(id)
            .target_id(account)
            .send()
            .await
            .expect("attach");
    }
}

/// No room for Timebox's SCP on the account: without the fallback the grant says
/// its sessions were not closed (audit event, notification) and the worst case
/// stands; with it the deny goes into the permission set's inline policy, whose own
/// statements are kept.
async fn no_room_is_reported_or_falls_back_to_the_inline_policy(db: &TestDb) {
    let r = rig(db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let staging = r.org.accounts[1].clone();
    fill_the_account(&r.moto, &prod).await;
    fill_the_account(&r.moto, &staging).await;

    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 30).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    let over = get(&r.store, &g).await;
    assert_eq!(over.sessions_close, Some(SessionsClose::OverBudget));
    assert_eq!(over.sessions_closed_at, None);
    let w = over.windows().unwrap().unwrap();
    assert_eq!(w.real.end, w.worst_case_end, "the worst case stands");
    assert_eq!(count_events(&r.store, &g, "sessions_not_closed").await, 1);
    let told = r
        .store
        .notification_events_to_fan_out(r.clock.now() + Duration::days(1), 1000)
        .await
        .unwrap();
    assert!(
        told.iter().any(|n| n.grant_id == Some(g.id)
            && n.kind == app::domain::NotificationKind::SessionsNotClosed),
        "{told:?}"
    );
    assert!(timebox_scps(&r.moto, &prod).await.is_empty());

    // The fallback: the permission set's inline policy carries the deny.
    let admin = r.org.permission_set("AdministratorAccess");
    let sso = r.moto.clients().await.sso_admin;
    let own = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadLogs","Effect":"Allow","Action":"logs:Get*","Resource":"*"}]}"#;
    sso.put_inline_policy_to_permission_set()
        .instance_arn(&r.org.instance_arn)
        .permission_set_arn(&admin)
        .inline_policy(own)
        .send()
        .await
        .unwrap();
    let fallback = closing(&r, CloseSessions::Scp, 1, true).await;
    let g2 = approved_grant(&r.grants, "bob", &staging, "AdministratorAccess", 30).await;
    fallback.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    fallback.tick().await.unwrap();
    let inline = get(&r.store, &g2).await;
    assert_eq!(inline.sessions_close, Some(SessionsClose::ClosedInline));
    assert!(inline.sessions_closed_at.is_some());
    let read = sso
        .get_inline_policy_for_permission_set()
        .instance_arn(&r.org.instance_arn)
        .permission_set_arn(&admin)
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(read.inline_policy().unwrap()).unwrap();
    let all = statements(&doc);
    assert_eq!(all[0]["Sid"], "ReadLogs", "its own statement kept first");
    let denies: Vec<&Value> = all.iter().skip(1).collect();
    assert!(denies.iter().any(|s| users_of(s) == vec![r.org.user("bob")]
        && s["Condition"]["ArnLike"]["aws:PrincipalArn"]
            .as_str()
            .unwrap()
            .contains(&format!("arn:aws:iam::{staging}:role/"))));
    // Alice's over-budget grant was retried with the fallback too.
    assert_eq!(
        get(&r.store, &g).await.sessions_close,
        Some(SessionsClose::ClosedInline)
    );

    // The tail over: the inline policy is its own statement again.
    r.clock.advance(Duration::hours(11));
    fallback.close_sessions().await.unwrap();
    let read = sso
        .get_inline_policy_for_permission_set()
        .instance_arn(&r.org.instance_arn)
        .permission_set_arn(&admin)
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(read.inline_policy().unwrap()).unwrap();
    assert_eq!(statements(&doc).len(), 1);
    assert_eq!(statements(&doc)[0]["Sid"], "ReadLogs");
}

/// Someone edits Timebox's SCP by hand: the next write is refused, reported once
/// (audit event), the grant it would have carried says why, and the edit stays.
async fn a_hand_edited_policy_is_reported_not_overwritten(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let prod = r.org.accounts[0].clone();
    let a = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 30).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    let orgs = r.moto.clients().await.organizations;
    let stored = r
        .store
        .session_policies(PolicyKind::Scp, &prod)
        .await
        .unwrap();
    let edited = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Mine","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
    orgs.update_policy()
        .policy_id(&stored[0].policy_id)
        .content(edited)
        .send()
        .await
        .unwrap();

    let b = approved_grant(&r.grants, "bob", &prod, "AdministratorAccess", 30).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    assert_eq!(
        get(&r.store, &b).await.sessions_close,
        Some(SessionsClose::HandEdited)
    );
    assert_eq!(
        get(&r.store, &a).await.sessions_close,
        Some(SessionsClose::ClosedScp)
    );
    let scps = timebox_scps(&r.moto, &prod).await;
    assert_eq!(statements(&scps[0].1)[0]["Sid"], "Mine", "the edit stays");
    reaper.close_sessions().await.unwrap();
    let all = r.store.audit_events(None, 0, 1000).await.unwrap();
    assert_eq!(
        all.iter()
            .filter(|e| e.action == "session_policy_edited")
            .count(),
        1,
        "reported once"
    );
}

/// A crash after the assignment was deleted and before the policy was written:
/// the grant is recorded `pending` with its revocation, and the next process closes
/// its sessions once. A crash after creating the policy and before recording it: the
/// policy is found by its name and adopted, not created twice.
async fn a_crash_before_the_policy_write_is_finished_once_after_restart(db: &TestDb) {
    let r = rig(db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let first = closing(&r, CloseSessions::Scp, 1, false).await;
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 30).await;
    first.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    // The grants' pass only, then the process "dies" before its session pass.
    first.work(r.clock.now()).await.unwrap();
    drop(first);
    let pending = get(&r.store, &g).await;
    assert_eq!(pending.state, GrantState::Revoked);
    assert_eq!(pending.sessions_close, Some(SessionsClose::Pending));
    assert!(timebox_scps(&r.moto, &prod).await.is_empty());

    // Meanwhile the policy was created under its name by the dead process (its
    // CreatePolicy answered, the row was never stored).
    let orgs = r.moto.clients().await.organizations;
    orgs.create_policy()
        .name(format!("timebox-sessions-{prod}-0"))
        .description("Timebox")
        .content(r#"{"Version":"2012-10-17","Statement":[{"Sid":"TimeboxClose0x0","Effect":"Deny","Action":"*","Resource":"*"}]}"#)
        .r#type(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();

    let second = closing(&r, CloseSessions::Scp, 1, false).await;
    second.tick().await.unwrap();
    second.tick().await.unwrap();
    let done = get(&r.store, &g).await;
    assert_eq!(done.sessions_close, Some(SessionsClose::ClosedScp));
    assert_eq!(
        count_events(&r.store, &g, "sessions_closed").await,
        1,
        "once"
    );
    assert_eq!(
        all_timebox_scps(&r.moto).await.len(),
        1,
        "adopted, not created twice"
    );
    let scps = timebox_scps(&r.moto, &prod).await;
    assert_eq!(
        users_of(&statements(&scps[0].1)[0]),
        vec![r.org.user("alice")]
    );
}

/// The management account is not governed by SCPs: the grant says so and no policy
/// is written.
async fn the_management_account_says_its_sessions_stay_open(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let orgs = r.moto.clients().await.organizations;
    let management = orgs
        .describe_organization()
        .send()
        .await
        .unwrap()
        .organization()
        .unwrap()
        .master_account_id()
        .unwrap()
        .to_owned();
    let g = approved_grant(&r.grants, "alice", &management, "AdministratorAccess", 30).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    let done = get(&r.store, &g).await;
    assert_eq!(done.state, GrantState::Revoked);
    assert_eq!(done.sessions_close, Some(SessionsClose::ManagementAccount));
    assert!(all_timebox_scps(&r.moto).await.is_empty());
    let w = done.windows().unwrap().unwrap();
    assert_eq!(w.real.end, w.worst_case_end);
}

/// `close_sessions = "inline"`: the deny goes into the permission set's inline
/// policy from the start, and leaves it after the tail.
async fn inline_mode_uses_the_permission_sets_policy(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Inline, 1, false).await;
    let prod = r.org.accounts[0].clone();
    let g = approved_grant(&r.grants, "carol", &prod, "ReadOnlyAccess", 30).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    assert_eq!(
        get(&r.store, &g).await.sessions_close,
        Some(SessionsClose::ClosedInline)
    );
    assert!(all_timebox_scps(&r.moto).await.is_empty());
    let sso = r.moto.clients().await.sso_admin;
    let ro = r.org.permission_set("ReadOnlyAccess");
    let read = sso
        .get_inline_policy_for_permission_set()
        .instance_arn(&r.org.instance_arn)
        .permission_set_arn(&ro)
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(read.inline_policy().unwrap()).unwrap();
    assert_eq!(users_of(&statements(&doc)[0]), vec![r.org.user("carol")]);
    r.clock.advance(Duration::hours(10));
    reaper.close_sessions().await.unwrap();
    let read = sso
        .get_inline_policy_for_permission_set()
        .instance_arn(&r.org.instance_arn)
        .permission_set_arn(&ro)
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(read.inline_policy().unwrap_or("{}")).unwrap_or_default();
    assert!(statements(&doc).is_empty(), "{doc}");
}

/// Drift removes an assignment Timebox made that someone recreated after the grant
/// ended: sessions issued from it are denied for a whole tail from the removal, so the
/// statement outlives the grant's own tail.
async fn a_leftover_removed_by_drift_keeps_its_sessions_denied(db: &TestDb) {
    let r = rig(db, &[]).await;
    let reaper = closing(&r, CloseSessions::Scp, 1, false).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 30).await;
    reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    reaper.tick().await.unwrap();
    let first = get(&r.store, &g).await;
    assert_eq!(first.sessions_close, Some(SessionsClose::ClosedScp));
    // Nine hours on (the grant's own tail ends at 10 h), the assignment is back.
    r.clock.advance(Duration::hours(9));
    crate::moto::assign(
        &r.moto,
        &r.org,
        &prod,
        &admin,
        aws_sdk_ssoadmin::types::PrincipalType::User,
        &r.org.user("alice"),
    )
    .await;
    assert_eq!(reaper.reconcile().await.unwrap(), 1, "removed");
    // Past the grant's own tail, the statement still stands.
    r.clock.advance(Duration::hours(2));
    reaper.close_sessions().await.unwrap();
    let scps = timebox_scps(&r.moto, &prod).await;
    assert_eq!(scps.len(), 1, "still denied after the original tail");
    assert_eq!(
        users_of(&statements(&scps[0].1)[0]),
        vec![r.org.user("alice")]
    );
    assert_eq!(
        get(&r.store, &g).await.sessions_closed_at,
        first.sessions_closed_at,
        "the closing time is kept"
    );
    // A whole tail after the removal, it goes.
    r.clock.advance(Duration::hours(9));
    reaper.close_sessions().await.unwrap();
    assert!(timebox_scps(&r.moto, &prod).await.is_empty());
}

crate::on_both_backends!(
    a_leftover_removed_by_drift_keeps_its_sessions_denied,
    a_finished_grant_closes_its_sessions_until_the_tail_is_over,
    a_later_grant_narrows_the_deny_to_older_sessions,
    three_users_in_one_account_share_one_statement,
    no_room_is_reported_or_falls_back_to_the_inline_policy,
    a_hand_edited_policy_is_reported_not_overwritten,
    a_crash_before_the_policy_write_is_finished_once_after_restart,
    the_management_account_says_its_sessions_stay_open,
    inline_mode_uses_the_permission_sets_policy,
);

/// Two replicas (two pools on one PostgreSQL database) close the same revocations
/// at the same time: one policy on the account, one `sessions_closed` per grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_write_each_policy_once() {
    let db = TestDb::postgres().await;
    let users: Vec<String> = (0..6).map(|i| format!("user{i:02}")).collect();
    let r = rig(&db, &users).await;
    let prod = r.org.accounts[0].clone();
    let one = closing(&r, CloseSessions::Scp, 1, false).await;
    let store2: Arc<dyn Store> = Arc::new(
        timebox_server::store::PostgresStore::connect(db.url(), 5)
            .await
            .unwrap(),
    );
    let grants2 = crate::helpers::grant_service(store2, Arc::new(r.clock.clone()));
    let two = closing_on(&r, grants2, CloseSessions::Scp, 1, false).await;
    let mut grants = Vec::new();
    for u in &users {
        grants.push(approved_grant(&r.grants, u, &prod, "AdministratorAccess", 30).await);
    }
    one.tick().await.unwrap();
    r.clock.advance(Duration::minutes(31));
    for _ in 0..3 {
        let (a, b) = tokio::join!(one.tick(), two.tick());
        a.unwrap();
        b.unwrap();
    }
    assert_eq!(all_timebox_scps(&r.moto).await.len(), 1);
    let scps = timebox_scps(&r.moto, &prod).await;
    let all = statements(&scps[0].1);
    let mut expected: Vec<String> = users.iter().map(|u| r.org.user(u)).collect();
    expected.sort();
    assert_eq!(users_of(&all[0]), expected);
    for g in &grants {
        assert_eq!(count_events(&r.store, g, "sessions_closed").await, 1);
    }
    db.drop_database().await;
}

/// The server's loop (`Reaper::run`): a revocation's sessions are closed by the
/// session pass its target task starts, well within a reaper interval of the
/// revocation (the interval here is 1 s; the pass is not waited for by a tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_loop_closes_sessions_right_after_the_revocation() {
    let db = TestDb::sqlite().await;
    let r = rig(&db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let reaper = Arc::new(closing(&r, CloseSessions::Scp, 1, false).await);
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 60).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(reaper.run(stopped));
    let wait = |check: fn(&Grant) -> bool| {
        let store = r.store.clone();
        async move {
            // Up to 30 s: a loaded machine is slow, a broken pass never gets there.
            for _ in 0..600 {
                let now = store.get_grant(g.id).await.unwrap().unwrap();
                if check(&now) {
                    return now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("the grant never got there");
        }
    };
    wait(|g| g.state == GrantState::Active).await;
    finish_early(&r.grants, &g, "alice").await;
    let closed = wait(|g| g.sessions_closed_at.is_some()).await;
    assert_eq!(closed.sessions_close, Some(SessionsClose::ClosedScp));
    assert!(closed.sessions_closed_at >= closed.revoked_at);
    assert_eq!(timebox_scps(&r.moto, &prod).await.len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), handle)
        .await
        .expect("the reaper stops on shutdown")
        .unwrap();
}
