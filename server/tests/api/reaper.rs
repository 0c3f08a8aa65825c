//! The reaper against the AWS emulator: the whole lifecycle through the real SDK,
//! overlapping grants, early revocation, identity mapping errors, drift, and two
//! reapers on one PostgreSQL database.

use crate::helpers::TestDb;
use crate::moto::{seed, user_assignments, Moto, Org};
use app::domain::{
    AccountId, Action, Actor, Grant, GrantDuration, GrantRequest, GrantState, Justification,
    PermissionSetName, PersonId, PortalSession, RevokeCause, RoleSet,
};
use aws_sdk_ssoadmin::types::PrincipalType::{Group, User};
use chrono::{Duration, TimeZone, Utc};
use std::sync::Arc;
use timebox_server::clock::ManualClock;
use timebox_server::identity_center::{IdentityCenter, UserKey};
use timebox_server::metrics::Metrics;
use timebox_server::reaper::{Reaper, ReaperSettings};
use timebox_server::services::grants::GrantService;
use timebox_server::store::{GrantPatch, Store};

pub fn settings() -> ReaperSettings {
    ReaperSettings {
        interval: std::time::Duration::from_secs(1),
        lease: std::time::Duration::from_secs(10),
        batch: 1000,
        concurrency: 8,
        poll_initial: std::time::Duration::from_millis(10),
        poll_max: std::time::Duration::from_millis(50),
        poll_budget: std::time::Duration::from_secs(2),
        backoff_base: std::time::Duration::from_secs(1),
        backoff_cap: std::time::Duration::from_secs(10),
        provision_attempts: 3,
        portal_session: PortalSession::DEFAULT,
        user_match: UserKey::UserName,
        catalog_refresh: std::time::Duration::from_secs(3600),
        reconcile_every: 0,
        max_in_flight: timebox_server::reaper::AWS_MAX_IN_FLIGHT,
    }
}

pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A request by `requester` for `minutes` of `permission_set` in `account`.
pub fn request(requester: &str, account: &str, permission_set: &str, minutes: i64) -> GrantRequest {
    GrantRequest {
        requester: PersonId::parse(requester).unwrap(),
        account_id: AccountId::parse(account).unwrap(),
        permission_set: PermissionSetName::parse(permission_set).unwrap(),
        justification: Justification::parse("INC-42: the checkout service is down").unwrap(),
        ticket: None,
        duration: GrantDuration::from_minutes(minutes, None).unwrap(),
        requested_start: None,
        approvals_required: 0,
        extends: None,
    }
}

/// A pending request for `requester`, approved by policy at once.
pub async fn approved_grant(
    grants: &GrantService,
    requester: &str,
    account: &str,
    permission_set: &str,
    minutes: i64,
) -> Grant {
    let g = grants
        .request(request(requester, account, permission_set, minutes), &[])
        .await
        .unwrap();
    if g.state == GrantState::Approved {
        // The test policy approves this permission set automatically.
        return g;
    }
    grants
        .act(
            g.id,
            Action::AutoApprove,
            &Actor::System,
            None,
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap()
        .grant
}

/// "I'm done": `who` ends their grant `g` early.
pub async fn finish_early(grants: &GrantService, g: &Grant, who: &str) {
    let me = Actor::Person {
        id: PersonId::parse(who).unwrap(),
        roles: RoleSet::empty(),
    };
    grants
        .act(
            g.id,
            Action::Revoke(RevokeCause::Early),
            &me,
            Some("I'm done".into()),
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap();
}

pub struct Rig {
    pub moto: Moto,
    pub org: Org,
    pub clock: ManualClock,
    pub grants: GrantService,
    pub store: Arc<dyn Store>,
    pub reaper: Reaper,
    pub ic: Arc<dyn IdentityCenter>,
}

pub async fn rig(db: &TestDb, extra_users: &[String]) -> Rig {
    let moto = Moto::start().await;
    let org = seed(&moto, extra_users).await;
    let clock = ManualClock::new(start_time());
    let store = db.store();
    let grants = crate::helpers::grant_service(store.clone(), Arc::new(clock.clone()));
    let metrics = Arc::new(Metrics::new());
    let ic: Arc<dyn IdentityCenter> = moto.identity_center(metrics.clone()).await;
    let reaper = Reaper::new(
        grants.clone(),
        ic.clone(),
        Arc::new(clock.clone()),
        metrics,
        settings(),
    );
    Rig {
        moto,
        org,
        clock,
        grants,
        store,
        reaper,
        ic,
    }
}

async fn get(store: &Arc<dyn Store>, g: &Grant) -> Grant {
    store.get_grant(g.id).await.unwrap().unwrap()
}

async fn lifecycle_against_the_emulator(db: &TestDb) {
    let r = rig(db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let alice = r.org.user("alice");
    // A standing group assignment: another path to the same access.
    crate::moto::assign(&r.moto, &r.org, &prod, &admin, Group, &r.org.sre_group).await;

    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 60).await;
    assert!(user_assignments(&r.moto, &r.org, &prod, &admin)
        .await
        .is_empty());

    let report = r.reaper.tick().await.unwrap();
    assert_eq!(report.activated, 1, "{report:?}");
    // The catalog was synced on the way, with its time.
    assert_eq!(
        r.store.catalog_synced_at().await.unwrap(),
        Some(start_time())
    );
    let sets = r.store.catalog_permission_sets().await.unwrap();
    assert_eq!(sets.len(), 2);
    assert!(sets
        .iter()
        .any(|p| p.name == "AdministratorAccess" && p.session_duration_seconds == 7200));
    let nodes = r.store.catalog_nodes().await.unwrap();
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n.kind == timebox_server::store::NodeKind::Account)
            .count(),
        3 + 1,
        "three seeded accounts and the management account"
    );
    assert!(nodes
        .iter()
        .any(|n| n.id == prod && n.parent_id.as_deref() == Some(r.org.ou_workloads.as_str())));

    let active = get(&r.store, &g).await;
    assert_eq!(active.state, GrantState::Active);
    assert_eq!(active.activated_at, Some(start_time()));
    assert_eq!(active.ends_at, Some(start_time() + Duration::hours(1)));
    assert_eq!(active.permission_set_session.unwrap().seconds(), 7200);
    assert_eq!(active.portal_session.unwrap().seconds(), 8 * 3600);
    // Provisional real end: planned end + portal session + permission-set session.
    assert_eq!(
        active.real_end,
        Some(start_time() + Duration::hours(1 + 8 + 2))
    );
    assert_eq!(
        user_assignments(&r.moto, &r.org, &prod, &admin).await,
        vec![alice.clone()]
    );
    let w = r.store.grant_aws(g.id).await.unwrap().unwrap();
    assert!(w.create_request_id.is_some());
    assert_eq!(w.principal_id.as_deref(), Some(alice.as_str()));
    let other: serde_json::Value = serde_json::from_str(w.other_paths.as_deref().unwrap()).unwrap();
    assert_eq!(
        other[0]["principal_id"],
        r.org.sre_group.as_str(),
        "{other}"
    );
    assert_eq!(
        other[0]["principal"], "sre",
        "named by its display name: {other}"
    );

    // Nothing to do before the end.
    r.clock.advance(Duration::minutes(59));
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &g).await.state, GrantState::Active);
    assert_eq!(
        user_assignments(&r.moto, &r.org, &prod, &admin).await.len(),
        1
    );

    r.clock.advance(Duration::minutes(1));
    let report = r.reaper.tick().await.unwrap();
    assert_eq!(report.revoked, 1, "{report:?}");
    let revoked = get(&r.store, &g).await;
    assert_eq!(revoked.state, GrantState::Revoked);
    assert_eq!(revoked.revoked_at, Some(start_time() + Duration::hours(1)));
    assert_eq!(
        revoked.real_end,
        Some(start_time() + Duration::hours(1 + 8 + 2))
    );
    assert!(user_assignments(&r.moto, &r.org, &prod, &admin)
        .await
        .is_empty());

    // Every transition is in the verified audit chain.
    let actions: Vec<String> = r
        .store
        .audit_events(Some(g.id), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "request",
            "auto_approve",
            "start_provisioning",
            "provision_succeeded",
            "revoke_end_reached",
            "revoke_succeeded"
        ]
    );
    assert!(crate::helpers::chain_of(r.store.as_ref()).await.is_intact());
}

async fn overlapping_grants_share_one_assignment(db: &TestDb) {
    let r = rig(db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let bob = r.org.user("bob");
    let first = approved_grant(&r.grants, "bob", &prod, "AdministratorAccess", 60).await;
    r.reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(30));
    let second = approved_grant(&r.grants, "bob", &prod, "AdministratorAccess", 120).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &first).await.state, GrantState::Active);
    assert_eq!(get(&r.store, &second).await.state, GrantState::Active);
    assert_eq!(
        user_assignments(&r.moto, &r.org, &prod, &admin).await,
        vec![bob.clone()],
        "one shared assignment"
    );

    // The first ends: the assignment stays for the second.
    r.clock.advance(Duration::minutes(31));
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &first).await.state, GrantState::Revoked);
    assert_eq!(get(&r.store, &second).await.state, GrantState::Active);
    assert_eq!(
        user_assignments(&r.moto, &r.org, &prod, &admin).await,
        vec![bob.clone()],
        "kept for the second grant"
    );

    // The second ends: now it goes.
    r.clock.advance(Duration::minutes(90));
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &second).await.state, GrantState::Revoked);
    assert!(user_assignments(&r.moto, &r.org, &prod, &admin)
        .await
        .is_empty());
}

async fn early_revoke_by_the_requester(db: &TestDb) {
    let r = rig(db, &[]).await;
    let staging = r.org.accounts[1].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let g = approved_grant(&r.grants, "carol", &staging, "ReadOnlyAccess", 240).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(
        user_assignments(&r.moto, &r.org, &staging, &ro).await.len(),
        1
    );
    r.clock.advance(Duration::minutes(10));
    finish_early(&r.grants, &g, "carol").await;
    r.reaper.tick().await.unwrap();
    let done = get(&r.store, &g).await;
    assert_eq!(done.state, GrantState::Revoked);
    assert_eq!(done.revoked_at, Some(start_time() + Duration::minutes(10)));
    // Final real end counts from the revocation, not the planned end.
    assert_eq!(
        done.real_end,
        Some(start_time() + Duration::minutes(10) + Duration::hours(8 + 1))
    );
    assert!(user_assignments(&r.moto, &r.org, &staging, &ro)
        .await
        .is_empty());
}

async fn unknown_user_fails_with_a_clear_reason(db: &TestDb) {
    let r = rig(db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let g = approved_grant(&r.grants, "mallory", &prod, "ReadOnlyAccess", 60).await;
    r.reaper.tick().await.unwrap();
    let failed = get(&r.store, &g).await;
    assert_eq!(failed.state, GrantState::Failed);
    let reason = failed.failure_reason.unwrap();
    assert!(
        reason.contains("no identity-store user has user_name \"mallory\""),
        "{reason}"
    );

    let g = approved_grant(&r.grants, "alice", &prod, "NoSuchSet", 60).await;
    r.reaper.tick().await.unwrap();
    let failed = get(&r.store, &g).await;
    assert_eq!(failed.state, GrantState::Failed);
    assert!(failed
        .failure_reason
        .unwrap()
        .contains("\"NoSuchSet\" is not in IAM Identity Center"));
}

async fn email_matching_refuses_ambiguity(db: &TestDb) {
    let r = rig(db, &[]).await;
    let clients = r.moto.clients().await;
    // A second user with alice's address.
    clients
        .identity_store
        .create_user()
        .identity_store_id(&r.org.identity_store_id)
        .user_name("alice2")
        .display_name("alice2")
        .name(
            aws_sdk_identitystore::types::Name::builder()
                .given_name("a")
                .family_name("b")
                .build(),
        )
        .emails(
            aws_sdk_identitystore::types::Email::builder()
                .value("alice@example.com")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let err =
        r.ic.find_user(&UserKey::Email, "alice@example.com")
            .await
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("2 identity-store users have email"),
        "{err}"
    );
    assert_eq!(
        r.ic.find_user(&UserKey::Email, "bob@example.com")
            .await
            .unwrap()
            .user_id,
        r.org.user("bob")
    );
    let err =
        r.ic.find_user(&UserKey::Email, "nobody@example.com")
            .await
            .unwrap_err();
    assert!(err.to_string().contains("no identity-store user"), "{err}");
}

async fn drift_is_removed_or_reported(db: &TestDb) {
    let r = rig(db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 60).await;
    r.reaper.tick().await.unwrap();
    r.clock.advance(Duration::hours(2));
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &g).await.state, GrantState::Revoked);
    // Someone puts alice's assignment back by hand, and gives carol one directly.
    for user in [r.org.user("alice"), r.org.user("carol")] {
        crate::moto::assign(&r.moto, &r.org, &prod, &admin, User, &user).await;
    }
    assert_eq!(r.reaper.reconcile().await.unwrap(), 2);
    // Timebox's leftover is gone; carol's standing assignment is only reported.
    assert_eq!(
        user_assignments(&r.moto, &r.org, &prod, &admin).await,
        vec![r.org.user("carol")]
    );
    let events = r.store.audit_events(None, 0, 1000).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "drift_removed" && e.grant_id == Some(g.id.to_string())));
    assert!(events
        .iter()
        .any(|e| e.action == "drift_unmanaged" && e.details.contains(&r.org.user("carol"))));
    // Reported once per process, not at every pass.
    assert_eq!(r.reaper.reconcile().await.unwrap(), 1);
    let again = r.store.audit_events(None, 0, 1000).await.unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|e| e.action == "drift_unmanaged")
            .count(),
        1
    );
}

crate::on_both_backends!(
    lifecycle_against_the_emulator,
    overlapping_grants_share_one_assignment,
    early_revoke_by_the_requester,
    unknown_user_fails_with_a_clear_reason,
    email_matching_refuses_ambiguity,
    drift_is_removed_or_reported,
    a_standing_assignment_is_used_and_never_removed,
);

/// Two reapers (two pools, as two replicas would have) on one PostgreSQL database,
/// ticking at the same time: every grant is provisioned once and revoked once. moto
/// accepts duplicate assignments, so a double create would show in its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_act_exactly_once() {
    let db = TestDb::postgres().await;
    let users: Vec<String> = (0..12).map(|i| format!("user{i:02}")).collect();
    let r = rig(&db, &users).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let mut ids = Vec::new();
    for u in &users {
        ids.push(
            approved_grant(&r.grants, u, &prod, "AdministratorAccess", 30)
                .await
                .id,
        );
    }
    // The second replica: its own pool on the same database, its own reaper.
    let store2: Arc<dyn Store> = Arc::new(
        timebox_server::store::PostgresStore::connect(db.url(), 5)
            .await
            .unwrap(),
    );
    let grants2 = crate::helpers::grant_service(store2, Arc::new(r.clock.clone()));
    let ic2: Arc<dyn IdentityCenter> = r.moto.identity_center(Arc::new(Metrics::new())).await;
    let reaper2 = Reaper::new(
        grants2,
        ic2,
        Arc::new(r.clock.clone()),
        Arc::new(Metrics::new()),
        settings(),
    );
    for _ in 0..3 {
        let (a, b) = tokio::join!(r.reaper.tick(), reaper2.tick());
        a.unwrap();
        b.unwrap();
    }
    let mut assigned = user_assignments(&r.moto, &r.org, &prod, &admin).await;
    assigned.sort();
    let mut expected: Vec<String> = users.iter().map(|u| r.org.user(u)).collect();
    expected.sort();
    assert_eq!(assigned, expected, "each user exactly once");
    r.clock.advance(Duration::minutes(31));
    for _ in 0..3 {
        let (a, b) = tokio::join!(r.reaper.tick(), reaper2.tick());
        a.unwrap();
        b.unwrap();
    }
    assert!(user_assignments(&r.moto, &r.org, &prod, &admin)
        .await
        .is_empty());
    for id in ids {
        let events = r.store.audit_events(Some(id), 0, 100).await.unwrap();
        let count = |a: &str| events.iter().filter(|e| e.action == a).count();
        assert_eq!(count("provision_succeeded"), 1);
        assert_eq!(count("revoke_succeeded"), 1);
        assert_eq!(
            r.store.get_grant(id).await.unwrap().unwrap().state,
            GrantState::Revoked
        );
    }
    db.drop_database().await;
}

/// The server's loop (`Reaper::run`, a task per target) provisions and revokes in the
/// background and stops when told to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_works_in_the_background_and_stops_on_shutdown() {
    let db = TestDb::sqlite().await;
    let r = rig(&db, &[]).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let g = approved_grant(&r.grants, "alice", &prod, "AdministratorAccess", 60).await;
    let reaper = Arc::new(Reaper::new(
        r.grants.clone(),
        r.ic.clone(),
        Arc::new(r.clock.clone()),
        Arc::new(Metrics::new()),
        settings(),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(reaper.run(stopped));
    let wait_for = |state: GrantState| {
        let store = r.store.clone();
        async move {
            // Up to 30 s: a loaded machine is slow, a broken reaper never gets there.
            for _ in 0..600 {
                if store.get_grant(g.id).await.unwrap().unwrap().state == state {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("the grant never became {state}");
        }
    };
    wait_for(GrantState::Active).await;
    assert_eq!(
        user_assignments(&r.moto, &r.org, &prod, &admin).await.len(),
        1
    );
    r.clock.advance(Duration::minutes(61));
    wait_for(GrantState::Revoked).await;
    assert!(user_assignments(&r.moto, &r.org, &prod, &admin)
        .await
        .is_empty());
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), handle)
        .await
        .expect("the reaper stops on shutdown")
        .unwrap();
}

/// A user who already holds the assignment directly (standing access): the grant uses
/// it and says so, nothing is created, and the end of the grant does not remove
/// access Timebox did not give.
async fn a_standing_assignment_is_used_and_never_removed(db: &TestDb) {
    let r = rig(db, &[]).await;
    let sandbox = r.org.accounts[2].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let carol = r.org.user("carol");
    crate::moto::assign(&r.moto, &r.org, &sandbox, &ro, User, &carol).await;
    let g = approved_grant(&r.grants, "carol", &sandbox, "ReadOnlyAccess", 30).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &g).await.state, GrantState::Active);
    assert_eq!(
        user_assignments(&r.moto, &r.org, &sandbox, &ro).await,
        vec![carol.clone()],
        "nothing created"
    );
    let events = r.store.audit_events(Some(g.id), 0, 100).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "provision_succeeded" && e.details.contains("\"standing\"")));
    r.clock.advance(Duration::minutes(31));
    r.reaper.tick().await.unwrap();
    assert_eq!(get(&r.store, &g).await.state, GrantState::Revoked);
    assert_eq!(
        user_assignments(&r.moto, &r.org, &sandbox, &ro).await,
        vec![carol],
        "standing access kept"
    );
}
