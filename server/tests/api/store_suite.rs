//! The repository contract, run against SQLite and PostgreSQL alike.

use crate::helpers::TestDb;
use app::domain::{
    AccountId, Action, Actor, GrantDuration, GrantId, GrantRequest, GrantState, Justification,
    Outcome, PermissionSetName, PersonId, Refusal, RevokeCause, Role, RoleSet, TicketRef,
};
use chrono::{Duration, TimeZone, Utc};
use std::sync::Arc;
use timebox_server::clock::ManualClock;
use timebox_server::services::grants::{GrantError, GrantService};
use timebox_server::store::{
    AuditEvent, Change, Cursor, GrantFilter, GrantPatch, NewAuditEvent, Store, StoreError,
};

crate::on_both_backends!(
    a_request_is_stored_with_its_audit_event,
    the_whole_lifecycle_writes_one_event_per_transition,
    a_quorum_needs_distinct_approvers,
    self_approval_is_refused_and_changes_nothing,
    a_stale_version_is_a_conflict_and_changes_nothing,
    a_failed_multi_row_change_is_rolled_back_whole,
    racing_approvers_move_the_grant_exactly_once,
    listing_filters_and_pages_by_keyset,
    the_audit_log_refuses_updates_and_deletes,
    an_edited_audit_event_is_detected,
    a_deleted_audit_event_is_detected,
    deleting_the_newest_audit_events_is_detected,
    a_grant_check_sees_its_events_and_their_neighbours,
    concurrent_appends_keep_the_chain_intact,
    migrations_run_once_and_reopen_cleanly,
);

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap())
}

fn service(db: &TestDb, clock: &ManualClock) -> GrantService {
    crate::helpers::grant_service(db.store(), Arc::new(clock.clone()))
}

fn person(id: &str, roles: &[Role]) -> Actor {
    Actor::Person {
        id: PersonId::parse(id).unwrap(),
        roles: RoleSet::of(roles),
    }
}

/// A request that [`crate::helpers::TEST_POLICY`] approves with `approvals` approvals
/// (0, 1 or 2): the policy picks the number by permission set.
pub fn request(requester: &str, approvals: u32) -> GrantRequest {
    let permission_set = match approvals {
        0 => "ReadOnlyAccess",
        1 => "EC2AdminAccess",
        2 => "QuorumAccess",
        n => panic!("the test policy has no policy for {n} approvals"),
    };
    GrantRequest {
        requester: PersonId::parse(requester).unwrap(),
        account_id: AccountId::parse("111122223333").unwrap(),
        permission_set: PermissionSetName::parse(permission_set).unwrap(),
        justification: Justification::parse("restart the stuck fleet, INC-42").unwrap(),
        ticket: Some(TicketRef::parse("INC-42").unwrap()),
        duration: GrantDuration::from_minutes(60, None).unwrap(),
        requested_start: None,
        approvals_required: approvals,
        extends: None,
    }
}

async fn event_count(db: &TestDb) -> usize {
    db.store()
        .audit_events(None, 0, 10_000)
        .await
        .unwrap()
        .len()
}

async fn a_request_is_stored_with_its_audit_event(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 1), &[]).await.unwrap();
    assert_eq!(g.state, GrantState::Pending);
    assert_eq!(g.version, 0);
    let back = db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(back, g);
    assert_eq!(back.request.ticket.as_ref().unwrap().as_str(), "INC-42");
    assert_eq!(back.created_at, clock.now_for_test());
    let events = db.store().audit_events(Some(g.id), 0, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "request");
    assert_eq!(events[0].actor, "alice");
    assert_eq!(events[0].to_state.as_deref(), Some("pending"));
    assert!(db
        .store()
        .get_grant(GrantId(uuid::Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
}

async fn the_whole_lifecycle_writes_one_event_per_transition(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 1), &[]).await.unwrap();
    let none = serde_json::json!({});
    let bob = person("bob", &[Role::Approver]);
    let sys = Actor::System;

    clock.advance(Duration::minutes(5));
    let a = svc
        .act(
            g.id,
            Action::Approve,
            &bob,
            Some("ok".into()),
            GrantPatch::default(),
            none.clone(),
        )
        .await
        .unwrap();
    assert_eq!(a.grant.state, GrantState::Approved);
    svc.act(
        g.id,
        Action::StartProvisioning,
        &sys,
        None,
        GrantPatch::default(),
        none.clone(),
    )
    .await
    .unwrap();
    clock.advance(Duration::seconds(3));
    let activated_at = clock.now_for_test();
    let active = svc
        .act(
            g.id,
            Action::ProvisionSucceeded,
            &sys,
            None,
            GrantPatch {
                activated_at: Some(activated_at),
                ends_at: Some(activated_at + Duration::hours(1)),
                permission_set_session_seconds: Some(3600),
                portal_session_seconds: Some(8 * 3600),
                real_end: Some(activated_at + Duration::hours(10)),
                ..GrantPatch::default()
            },
            serde_json::json!({"request_id": "req-1"}),
        )
        .await
        .unwrap()
        .grant;
    assert_eq!(active.state, GrantState::Active);
    let w = active.windows().unwrap().unwrap();
    assert!(!w.is_final);
    assert_eq!(w.real.length(), Duration::hours(10));

    clock.advance(Duration::hours(1));
    svc.act(
        g.id,
        Action::Revoke(RevokeCause::EndReached),
        &sys,
        None,
        GrantPatch::default(),
        none.clone(),
    )
    .await
    .unwrap();
    clock.advance(Duration::seconds(2));
    let revoked_at = clock.now_for_test();
    let revoked = svc
        .act(
            g.id,
            Action::RevokeSucceeded,
            &sys,
            None,
            GrantPatch {
                revoked_at: Some(revoked_at),
                real_end: Some(revoked_at + Duration::hours(9)),
                ..GrantPatch::default()
            },
            none.clone(),
        )
        .await
        .unwrap()
        .grant;
    let w = revoked.windows().unwrap().unwrap();
    assert!(w.is_final);
    assert_eq!(w.granted.end, revoked_at);
    assert_eq!(w.real.end, revoked.real_end.unwrap());
    svc.act(g.id, Action::Close, &sys, None, GrantPatch::default(), none)
        .await
        .unwrap();

    let events = db.store().audit_events(Some(g.id), 0, 100).await.unwrap();
    let path: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.from_state.clone().unwrap_or_default(),
                e.to_state.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        path,
        [
            ("", "pending"),
            ("pending", "approved"),
            ("approved", "provisioning"),
            ("provisioning", "active"),
            ("active", "revoking"),
            ("revoking", "revoked"),
            ("revoked", "closed"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(events[1].actor, "bob");
    assert_eq!(events[1].reason.as_deref(), Some("ok"));
    let activation: serde_json::Value = serde_json::from_str(&events[3].details).unwrap();
    assert_eq!(activation["request_id"], "req-1");
    assert_eq!(
        activation["set"]["activated_at"],
        activated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "the event records the facts it set: {activation}"
    );
    let final_grant = db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(final_grant.state, GrantState::Closed);
    assert_eq!(final_grant.version, 6);
    let approvals = db.store().approvals(g.id).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].approver, "bob");
    assert!(crate::helpers::chain_of(db.store().as_ref())
        .await
        .is_intact());
}

async fn a_quorum_needs_distinct_approvers(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 2), &[]).await.unwrap();
    let none = || serde_json::json!({});
    let first = svc
        .act(
            g.id,
            Action::Approve,
            &person("bob", &[Role::Approver]),
            None,
            GrantPatch::default(),
            none(),
        )
        .await
        .unwrap();
    assert!(
        matches!(first.outcome, Outcome::ApprovalRecorded(p) if p.have == 1 && p.required == 2)
    );
    assert_eq!(first.grant.state, GrantState::Pending);
    let again = svc
        .act(
            g.id,
            Action::Approve,
            &person("bob", &[Role::Approver]),
            None,
            GrantPatch::default(),
            none(),
        )
        .await;
    assert!(
        matches!(
            again,
            Err(GrantError::Refused(Refusal::AlreadyApproved { .. }))
        ),
        "{again:?}"
    );
    let second = svc
        .act(
            g.id,
            Action::Approve,
            &person("carol", &[Role::Admin]),
            None,
            GrantPatch::default(),
            none(),
        )
        .await
        .unwrap();
    assert_eq!(second.grant.state, GrantState::Approved);
    assert_eq!(db.store().approvals(g.id).await.unwrap().len(), 2);
    // request + approval recorded + approval that reached the quorum
    assert_eq!(event_count(db).await, 3);
}

async fn self_approval_is_refused_and_changes_nothing(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 1), &[]).await.unwrap();
    let me = person("alice", &[Role::Requester, Role::Approver, Role::Admin]);
    for action in [Action::Approve, Action::Deny] {
        let r = svc
            .act(
                g.id,
                action,
                &me,
                None,
                GrantPatch::default(),
                serde_json::json!({}),
            )
            .await;
        assert!(
            matches!(r, Err(GrantError::Refused(Refusal::SelfDecision))),
            "{r:?}"
        );
    }
    let auditor = person("dave", &[Role::Auditor]);
    let r = svc
        .act(
            g.id,
            Action::Approve,
            &auditor,
            None,
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await;
    assert!(
        matches!(r, Err(GrantError::Refused(Refusal::WrongActor { .. }))),
        "{r:?}"
    );
    let r = svc
        .act(
            g.id,
            Action::Close,
            &Actor::System,
            None,
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await;
    assert!(
        matches!(r, Err(GrantError::Refused(Refusal::WrongState { .. }))),
        "{r:?}"
    );
    let after = db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(after, g);
    assert!(db.store().approvals(g.id).await.unwrap().is_empty());
    assert_eq!(event_count(db).await, 1);
}

fn change(g: &app::domain::Grant, expected_version: i64, to: GrantState) -> Change {
    let at = g.created_at + Duration::minutes(1);
    Change {
        grant_id: g.id,
        expected_version,
        from: g.state,
        to,
        at,
        patch: GrantPatch::default(),
        decision: None,
        event: NewAuditEvent {
            grant_id: Some(g.id),
            at,
            actor: "timebox".into(),
            // Any step: the suite checks what is stored, not the name.
            action: app::domain::AuditAction::Step(app::domain::Action::Approve),
            from_state: Some(g.state),
            to_state: Some(to),
            reason: None,
            details: serde_json::json!({}),
        },
        notifications: Vec::new(),
    }
}

async fn a_stale_version_is_a_conflict_and_changes_nothing(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 1), &[]).await.unwrap();
    let store = db.store();
    store
        .apply(change(&g, 0, GrantState::Cancelled))
        .await
        .unwrap();
    let r = store.apply(change(&g, 0, GrantState::Denied)).await;
    assert!(
        matches!(r, Err(StoreError::Conflict { expected: 0 })),
        "{r:?}"
    );
    let now = store.get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(now.state, GrantState::Cancelled);
    assert_eq!(now.version, 1);
    assert_eq!(event_count(db).await, 2);
    let mut missing = change(&g, 0, GrantState::Denied);
    missing.grant_id = GrantId(uuid::Uuid::new_v4());
    assert!(matches!(
        store.apply(missing).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_failed_multi_row_change_is_rolled_back_whole(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 2), &[]).await.unwrap();
    // A decision row for bob already exists (written behind the service's back), so
    // the approval insert fails after the grant update inside the same transaction.
    db.exec(&format!(
        "INSERT INTO approvals (grant_id, approver, decision, comment, decided_at) \
         VALUES ('{}', 'bob', 'approve', NULL, '2026-11-28T09:00:00+00:00')",
        g.id
    ))
    .await;
    let mut c = change(&g, 0, GrantState::Approved);
    c.decision = Some(timebox_server::store::Approval {
        grant_id: g.id,
        approver: "bob".into(),
        decision: timebox_server::store::Decision::Approve,
        comment: None,
        decided_at: c.at,
    });
    let r = db.store().apply(c).await;
    assert!(
        matches!(r, Err(StoreError::DuplicateDecision(ref who)) if who == "bob"),
        "{r:?}"
    );
    let after = db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(
        after.state,
        GrantState::Pending,
        "the grant update was rolled back"
    );
    assert_eq!(after.version, 0);
    assert_eq!(event_count(db).await, 1, "no audit event was kept");
    assert!(crate::helpers::chain_of(db.store().as_ref())
        .await
        .is_intact());
}

async fn racing_approvers_move_the_grant_exactly_once(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let g = svc.request(request("alice", 1), &[]).await.unwrap();
    let mut tasks = Vec::new();
    for who in ["bob", "carol", "erin", "frank"] {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            svc.act(
                g.id,
                Action::Approve,
                &person(who, &[Role::Approver]),
                None,
                GrantPatch::default(),
                serde_json::json!({}),
            )
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => {
                assert_eq!(a.grant.state, GrantState::Approved);
                won += 1;
            }
            Err(GrantError::Refused(Refusal::WrongState { state, .. })) => {
                assert_eq!(state, GrantState::Approved)
            }
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.store().approvals(g.id).await.unwrap().len(), 1);
    let events = db.store().audit_events(Some(g.id), 0, 100).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(crate::helpers::chain_of(db.store().as_ref())
        .await
        .is_intact());
}

async fn listing_filters_and_pages_by_keyset(db: &TestDb) {
    let clock = clock();
    let svc = service(db, &clock);
    let mut ids = Vec::new();
    for i in 0..7 {
        clock.advance(Duration::seconds(1));
        let who = if i % 2 == 0 { "alice" } else { "bob" };
        ids.push(svc.request(request(who, 1), &[]).await.unwrap());
    }
    // Two grants in the same instant: the id breaks the tie, nothing is skipped.
    ids.push(svc.request(request("alice", 1), &[]).await.unwrap());
    let store = db.store();
    let all = GrantFilter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_grants(&all, cursor, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|g| Cursor {
            created_at: g.created_at,
            id: g.id,
        });
        seen.extend(page.into_iter().map(|g| g.id));
    }
    assert_eq!(seen.len(), 8);
    let mut expected: Vec<_> = ids.iter().map(|g| (g.created_at, g.id)).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        seen,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );

    let alice = GrantFilter {
        requester: Some("alice".into()),
        ..GrantFilter::default()
    };
    assert_eq!(store.list_grants(&alice, None, 100).await.unwrap().len(), 5);
    store
        .apply(change(&ids[0], 0, GrantState::Cancelled))
        .await
        .unwrap();
    let cancelled = GrantFilter {
        states: vec![GrantState::Cancelled, GrantState::Denied],
        account_id: Some("111122223333".into()),
        permission_set: Some("EC2AdminAccess".into()),
        ..GrantFilter::default()
    };
    let found = store.list_grants(&cancelled, None, 100).await.unwrap();
    assert_eq!(
        found.iter().map(|g| g.id).collect::<Vec<_>>(),
        vec![ids[0].id]
    );
    let other_account = GrantFilter {
        account_id: Some("999988887777".into()),
        ..GrantFilter::default()
    };
    assert!(store
        .list_grants(&other_account, None, 100)
        .await
        .unwrap()
        .is_empty());
}

async fn seed_events(db: &TestDb, n: usize) {
    let clock = clock();
    let svc = service(db, &clock);
    for _ in 0..n {
        clock.advance(Duration::seconds(1));
        svc.request(request("alice", 1), &[]).await.unwrap();
    }
}

async fn the_audit_log_refuses_updates_and_deletes(db: &TestDb) {
    seed_events(db, 2).await;
    let e = db
        .try_exec("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
        .await;
    assert!(e.unwrap_err().contains("append-only"));
    let e = db.try_exec("DELETE FROM audit_events WHERE seq = 2").await;
    assert!(e.unwrap_err().contains("append-only"));
    assert!(crate::helpers::chain_of(db.store().as_ref())
        .await
        .is_intact());
}

async fn an_edited_audit_event_is_detected(db: &TestDb) {
    seed_events(db, 5).await;
    let before = crate::helpers::chain_of(db.store().as_ref()).await;
    assert!(before.is_intact());
    assert_eq!(before.events_verified, 5);
    db.disable_append_only_guard().await;
    assert_eq!(
        db.exec("UPDATE audit_events SET reason = 'nothing happened here' WHERE seq = 3")
            .await,
        1
    );
    let after = crate::helpers::chain_of(db.store().as_ref()).await;
    let broken = after.first_broken.expect("the edit is detected");
    assert_eq!(broken.seq, 3);
    assert!(broken.problem.contains("edited"), "{}", broken.problem);
}

async fn a_deleted_audit_event_is_detected(db: &TestDb) {
    seed_events(db, 5).await;
    db.disable_append_only_guard().await;
    assert_eq!(db.exec("DELETE FROM audit_events WHERE seq = 2").await, 1);
    let broken = crate::helpers::chain_of(db.store().as_ref())
        .await
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.problem.contains("missing"), "{}", broken.problem);
}

async fn deleting_the_newest_audit_events_is_detected(db: &TestDb) {
    seed_events(db, 5).await;
    db.disable_append_only_guard().await;
    assert_eq!(db.exec("DELETE FROM audit_events WHERE seq >= 4").await, 2);
    let broken = crate::helpers::chain_of(db.store().as_ref())
        .await
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 4);
}

/// The grant page's check of the chain (the store's one verifier, from the event
/// before the grant's first to the head or the next checkpoint): the grant's own
/// edited event, and a replaced neighbour that no longer points at it.
async fn grant_check(store: &dyn Store, events: &[AuditEvent]) -> (bool, Option<String>) {
    let (chain, _) = timebox_server::audit::grant::chain_around(store, events, None)
        .await
        .unwrap();
    let events_verify = events
        .iter()
        .all(|e| timebox_server::store::audit::recompute(e) == e.hash);
    let problem = chain
        .first_broken
        .map(|b| format!("event {}: {}", b.seq, b.problem));
    (events_verify, problem)
}

async fn a_grant_check_sees_its_events_and_their_neighbours(db: &TestDb) {
    seed_events(db, 3).await;
    let store = db.store();
    let all = store.audit_events(None, 0, 10).await.unwrap();
    let second = all[1].clone();
    let grant = GrantId::parse(second.grant_id.as_deref().unwrap()).unwrap();
    let events = store.audit_events(Some(grant), 0, 10).await.unwrap();
    let (events_verify, problem) = grant_check(store.as_ref(), &events).await;
    assert_eq!(problem, None);
    assert!(events_verify);
    assert_eq!(events.len(), 1);

    db.disable_append_only_guard().await;
    assert_eq!(
        db.exec("UPDATE audit_events SET prev_hash = 'x' WHERE seq = 3")
            .await,
        1
    );
    let (events_verify, problem) = grant_check(store.as_ref(), &events).await;
    assert!(events_verify, "the grant's own event is intact");
    assert!(problem.unwrap().starts_with("event 3:"));

    assert_eq!(
        db.exec("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
            .await,
        1
    );
    let events = store.audit_events(Some(grant), 0, 10).await.unwrap();
    let (events_verify, problem) = grant_check(store.as_ref(), &events).await;
    assert!(!events_verify);
    assert!(problem.unwrap().contains("edited"));
}

async fn concurrent_appends_keep_the_chain_intact(db: &TestDb) {
    let store: Arc<dyn Store> = db.store();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_audit(NewAuditEvent {
                    grant_id: None,
                    at: Utc::now(),
                    actor: format!("writer-{i}"),
                    // An event not tied to a state change.
                    action: app::domain::AuditAction::DriftUnmanaged,
                    from_state: None,
                    to_state: None,
                    reason: None,
                    details: serde_json::json!({ "i": i }),
                })
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let v = crate::helpers::chain_of(store.as_ref()).await;
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.head_seq, 24);
    let seqs: Vec<i64> = store
        .audit_events(None, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=24).collect::<Vec<_>>());
}

async fn migrations_run_once_and_reopen_cleanly(db: &TestDb) {
    seed_events(db, 1).await;
    // A second start (or a second replica) runs the migrator again: nothing changes.
    let again = timebox_server::store::connect(db.url(), 2).await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(again.audit_events(None, 0, 10).await.unwrap().len(), 1);
    assert!(crate::helpers::chain_of(again.as_ref()).await.is_intact());
}

/// Reads a [`ManualClock`] the way the store truncates times (to microseconds).
trait NowForTest {
    fn now_for_test(&self) -> chrono::DateTime<Utc>;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> chrono::DateTime<Utc> {
        use chrono::SubsecRound;
        timebox_server::clock::Clock::now(self).trunc_subsecs(6)
    }
}
