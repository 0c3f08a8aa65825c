//! Access ends when it should, under real timing: the emulator behind an Identity
//! Center that is as slow as AWS can be. moto carries out a create or delete at once
//! and answers SUCCEEDED; [`Slow`] holds them back (the assignment stays as it was,
//! the status answers IN_PROGRESS) until the test lets them through, and can pause a
//! `ListAccountAssignments` while the test does something else.
//!
//! Every test checks the emulator's assignments, not Timebox's word.

use crate::helpers::TestDb;
use crate::moto::{seed, user_assignments, Moto, Org};
use crate::reaper::{approved_grant, finish_early, settings, start_time};
use app::domain::{Grant, GrantState, PortalSession};
use async_trait::async_trait;
use chrono::Duration;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use timebox_server::clock::{Clock, ManualClock};
use timebox_server::identity_center::{
    Assignment, GroupInfo, IcError, IdentityCenter, IdentityError, IdentityUser, Instance,
    Operation, OperationStatus, PermissionSetInfo, UserContact, UserKey,
};
use timebox_server::metrics::Metrics;
use timebox_server::reaper::{Reaper, ReaperSettings};
use timebox_server::services::grants::GrantService;
use timebox_server::store::{CatalogNode, Store};
use tokio::sync::Notify;

/// A create or delete accepted but not carried out yet.
#[derive(Debug)]
struct Held {
    delete: bool,
    assignment: Assignment,
    /// The emulator's request id once carried out.
    real: Option<String>,
}

/// moto, as slow as AWS: see the module documentation.
#[derive(Debug)]
pub struct Slow {
    inner: Arc<dyn IdentityCenter>,
    hold_creates: AtomicBool,
    hold_deletes: AtomicBool,
    ops: Mutex<HashMap<String, Held>>,
    next: Mutex<u32>,
    /// Most requests outstanding at once (sent, not yet answered SUCCEEDED).
    pub max_outstanding: Mutex<usize>,
    pause_list: AtomicBool,
    pub listing: Notify,
    pub go: Notify,
}

impl Slow {
    pub fn new(inner: Arc<dyn IdentityCenter>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hold_creates: AtomicBool::new(false),
            hold_deletes: AtomicBool::new(false),
            ops: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
            max_outstanding: Mutex::new(0),
            pause_list: AtomicBool::new(false),
            listing: Notify::new(),
            go: Notify::new(),
        })
    }

    pub fn hold_creates(&self, on: bool) {
        self.hold_creates.store(on, Ordering::SeqCst);
    }

    pub fn hold_deletes(&self, on: bool) {
        self.hold_deletes.store(on, Ordering::SeqCst);
    }

    /// The next `ListAccountAssignments` signals `listing` and waits for `go`.
    pub fn pause_next_list(&self) {
        self.pause_list.store(true, Ordering::SeqCst);
    }

    fn outstanding(&self) -> usize {
        self.ops
            .lock()
            .unwrap()
            .values()
            .filter(|h| h.real.is_none())
            .count()
    }

    /// Carries out every held request (creates and deletes, in order of arrival).
    pub async fn release(&self) {
        let held: Vec<(String, bool, Assignment)> = {
            let ops = self.ops.lock().unwrap();
            let mut v: Vec<_> = ops
                .iter()
                .filter(|(_, h)| h.real.is_none())
                .map(|(k, h)| (k.clone(), h.delete, h.assignment.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        for (id, delete, a) in held {
            let op = if delete {
                self.inner.delete_assignment(&a).await.unwrap()
            } else {
                self.inner.create_assignment(&a).await.unwrap()
            };
            self.ops.lock().unwrap().get_mut(&id).unwrap().real = Some(op.request_id);
        }
    }

    fn accept(&self, delete: bool, a: &Assignment) -> Operation {
        let id = {
            let mut n = self.next.lock().unwrap();
            *n += 1;
            format!("slow-{:06}", *n)
        };
        self.ops.lock().unwrap().insert(
            id.clone(),
            Held {
                delete,
                assignment: a.clone(),
                real: None,
            },
        );
        let out = self.outstanding();
        let mut max = self.max_outstanding.lock().unwrap();
        *max = (*max).max(out);
        Operation {
            request_id: id,
            status: OperationStatus::InProgress,
        }
    }

    async fn status(&self, request_id: &str, delete: bool) -> Result<OperationStatus, IcError> {
        let real = {
            let ops = self.ops.lock().unwrap();
            match ops.get(request_id) {
                None => None,
                Some(h) => match &h.real {
                    None => return Ok(OperationStatus::InProgress),
                    Some(r) => Some(r.clone()),
                },
            }
        };
        let id = real.unwrap_or_else(|| request_id.to_owned());
        if delete {
            self.inner.deletion_status(&id).await
        } else {
            self.inner.creation_status(&id).await
        }
    }
}

#[async_trait]
impl IdentityCenter for Slow {
    async fn instance(&self) -> Result<Instance, IcError> {
        self.inner.instance().await
    }
    async fn list_permission_sets(&self) -> Result<Vec<PermissionSetInfo>, IcError> {
        self.inner.list_permission_sets().await
    }
    async fn describe_permission_set(&self, arn: &str) -> Result<PermissionSetInfo, IcError> {
        self.inner.describe_permission_set(arn).await
    }
    async fn organization_tree(&self) -> Result<Vec<CatalogNode>, IcError> {
        self.inner.organization_tree().await
    }
    async fn find_user(&self, by: &UserKey, value: &str) -> Result<IdentityUser, IdentityError> {
        self.inner.find_user(by, value).await
    }
    async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, IcError> {
        self.inner.user_groups(user_id).await
    }
    async fn describe_group(&self, group_id: &str) -> Result<GroupInfo, IcError> {
        self.inner.describe_group(group_id).await
    }
    async fn create_assignment(&self, a: &Assignment) -> Result<Operation, IcError> {
        if self.hold_creates.load(Ordering::SeqCst) {
            return Ok(self.accept(false, a));
        }
        self.inner.create_assignment(a).await
    }
    async fn creation_status(&self, request_id: &str) -> Result<OperationStatus, IcError> {
        self.status(request_id, false).await
    }
    async fn delete_assignment(&self, a: &Assignment) -> Result<Operation, IcError> {
        if self.hold_deletes.load(Ordering::SeqCst) {
            return Ok(self.accept(true, a));
        }
        self.inner.delete_assignment(a).await
    }
    async fn deletion_status(&self, request_id: &str) -> Result<OperationStatus, IcError> {
        self.status(request_id, true).await
    }
    async fn list_assignments(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<Assignment>, IcError> {
        if self.pause_list.swap(false, Ordering::SeqCst) {
            self.listing.notify_one();
            self.go.notified().await;
        }
        self.inner
            .list_assignments(account_id, permission_set_arn)
            .await
    }
    async fn group_members(&self, display_name: &str) -> Result<Vec<String>, IcError> {
        self.inner.group_members(display_name).await
    }
    async fn user_contact(&self, user_id: &str) -> Result<UserContact, IcError> {
        self.inner.user_contact(user_id).await
    }
}

pub struct Rig {
    pub moto: Moto,
    pub org: Org,
    pub clock: ManualClock,
    pub grants: GrantService,
    pub store: Arc<dyn Store>,
    pub reaper: Reaper,
    pub slow: Arc<Slow>,
}

pub async fn rig_with(db: &TestDb, s: ReaperSettings, extra_users: &[String]) -> Rig {
    rig_under(db, s, extra_users, crate::helpers::TEST_POLICY).await
}

/// A rig whose requests are decided by `policy` (a policy file's text).
pub async fn rig_under(
    db: &TestDb,
    s: ReaperSettings,
    extra_users: &[String],
    policy: &str,
) -> Rig {
    let moto = Moto::start().await;
    let org = seed(&moto, extra_users).await;
    let clock = ManualClock::new(start_time());
    let store = db.store();
    let policy = timebox_server::policy::PolicyService::from_text(
        policy,
        store.clone(),
        Arc::new(clock.clone()),
    )
    .expect("the rig's policy is valid");
    let grants = GrantService::new(store.clone(), Arc::new(clock.clone()), policy);
    let metrics = Arc::new(Metrics::new());
    let slow = Slow::new(moto.identity_center(metrics.clone()).await);
    let reaper = Reaper::new(
        grants.clone(),
        slow.clone(),
        Arc::new(clock.clone()),
        metrics,
        s,
    );
    Rig {
        moto,
        org,
        clock,
        grants,
        store,
        reaper,
        slow,
    }
}

pub async fn rig(db: &TestDb) -> Rig {
    rig_with(db, settings(), &[]).await
}

impl Rig {
    /// `who`'s grant of `permission_set` in the first account for `minutes`,
    /// approved and made active by a reaper pass.
    pub async fn active_grant(&self, who: &str, permission_set: &str, minutes: i64) -> Grant {
        let account = self.org.accounts[0].clone();
        let g = approved_grant(&self.grants, who, &account, permission_set, minutes).await;
        self.reaper.tick().await.unwrap();
        let g = self.get(&g).await;
        assert_eq!(g.state, GrantState::Active);
        g
    }

    pub async fn get(&self, g: &Grant) -> Grant {
        self.store.get_grant(g.id).await.unwrap().unwrap()
    }

    pub async fn assignments(&self, account: &str, ps: &str) -> Vec<String> {
        user_assignments(&self.moto, &self.org, account, ps).await
    }

    /// "I'm done": the requester ends their grant early.
    pub async fn done(&self, g: &Grant, who: &str) {
        finish_early(&self.grants, g, who).await;
    }

    /// `minutes` later the reaper has revoked `g` and no user holds `ps` in
    /// `account` any more.
    pub async fn ends_leaving_nothing(&self, g: &Grant, minutes: i64, account: &str, ps: &str) {
        self.clock.advance(Duration::minutes(minutes));
        self.reaper.tick().await.unwrap();
        assert_eq!(self.get(g).await.state, GrantState::Revoked);
        assert!(
            self.assignments(account, ps).await.is_empty(),
            "nothing outlives the grant"
        );
    }

    pub async fn actions(&self, g: &Grant) -> Vec<(String, String)> {
        self.store
            .audit_events(Some(g.id), 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.details))
            .collect()
    }
}

/// "I'm done", then at once an automatically approved request for the same access,
/// before the reaper has sent the first grant's delete: the new grant takes the
/// assignment over (it is never taken for a standing one), the first grant's
/// revocation keeps it, and at the end of the second grant nothing is left.
async fn done_then_the_same_access_at_once(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let alice = r.org.user("alice");
    let first = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 60).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Active);
    assert_eq!(r.assignments(&prod, &ro).await, vec![alice.clone()]);

    r.clock.advance(Duration::minutes(10));
    r.done(&first, "alice").await;
    let second = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 30).await;
    assert_eq!(second.state, GrantState::Approved);
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Revoked);
    let s = r.get(&second).await;
    assert_eq!(s.state, GrantState::Active);
    assert_eq!(
        r.assignments(&prod, &ro).await,
        vec![alice.clone()],
        "the second grant holds a real assignment, created once"
    );
    let provisioned = r.actions(&second).await;
    let (_, details) = provisioned
        .iter()
        .find(|(a, _)| a == "provision_succeeded")
        .expect("provisioned");
    assert!(details.contains("\"taken_over\""), "{details}");
    assert!(!details.contains("standing"), "{details}");
    let revoked = r.actions(&first).await;
    assert!(revoked.iter().any(|(a, d)| a == "revoke_succeeded"
        && d.contains("\"kept\"")
        && d.contains(&second.id.to_string())));

    // The second grant's end removes the assignment: nothing is left.
    r.ends_leaving_nothing(&second, 31, &prod, &ro).await;
}

/// "I'm done" whose delete is already in flight (AWS has not finished it) when the
/// same access is approved again: the new grant waits for the delete, then creates
/// the assignment again; it is never shown active with no assignment behind it.
async fn a_sibling_whose_delete_is_in_flight(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let alice = r.org.user("alice");
    let first = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 60).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(r.assignments(&prod, &ro).await, vec![alice.clone()]);

    r.slow.hold_deletes(true);
    r.done(&first, "alice").await;
    r.reaper.tick().await.unwrap();
    assert_eq!(
        r.get(&first).await.state,
        GrantState::Revoking,
        "delete in flight"
    );
    assert_eq!(
        r.assignments(&prod, &ro).await,
        vec![alice.clone()],
        "not carried out yet"
    );

    let second = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 30).await;
    r.reaper.tick().await.unwrap();
    assert_ne!(
        r.get(&second).await.state,
        GrantState::Active,
        "not active on an assignment that is being deleted"
    );

    // AWS finishes the delete: the assignment is gone, then created for the second.
    r.slow.hold_deletes(false);
    r.slow.release().await;
    assert!(r.assignments(&prod, &ro).await.is_empty());
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Revoked);
    let s = r.get(&second).await;
    assert_eq!(s.state, GrantState::Active);
    assert_eq!(r.assignments(&prod, &ro).await, vec![alice.clone()]);
    let w = r.store.grant_aws(second.id).await.unwrap().unwrap();
    assert!(w.create_request_id.is_some(), "created, not shared: {w:?}");
    assert!(w.shared_with.is_none(), "{w:?}");
    r.ends_leaving_nothing(&second, 31, &prod, &ro).await;
}

/// The drift pass lists Identity Center (slow) after reading the database; a grant
/// provisioned in between must keep its new assignment, even though an earlier grant
/// of the same target made one that ended (so the assignment looks like Timebox's
/// leftover).
async fn drift_racing_a_provisioning(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let alice = r.org.user("alice");
    let old = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 30).await;
    r.reaper.tick().await.unwrap();
    r.ends_leaving_nothing(&old, 31, &prod, &ro).await;

    r.slow.pause_next_list();
    let new = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 60).await;
    let (findings, ()) = tokio::join!(async { r.reaper.reconcile().await.unwrap() }, async {
        // The drift pass has read the database and is listing Identity Center.
        r.slow.listing.notified().await;
        r.reaper.tick().await.unwrap();
        assert_eq!(r.get(&new).await.state, GrantState::Active);
        r.slow.go.notify_one();
    });
    assert_eq!(
        findings, 0,
        "nothing to find: the assignment is the new grant's"
    );
    assert_eq!(
        r.assignments(&prod, &ro).await,
        vec![alice.clone()],
        "the new grant's assignment survives the drift pass"
    );
    assert!(!r
        .actions(&old)
        .await
        .iter()
        .any(|(a, _)| a.starts_with("drift")));
}

/// An active grant whose assignment someone removed by hand: the drift pass creates it
/// again, records it on the grant and tells the admins; at the end it is removed.
async fn drift_recreates_a_vanished_assignment(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let alice = r.org.user("alice");
    let g = approved_grant(&r.grants, "alice", &prod, "ReadOnlyAccess", 60).await;
    r.reaper.tick().await.unwrap();
    let sso = r.moto.clients().await.sso_admin;
    sso.delete_account_assignment()
        .instance_arn(&r.org.instance_arn)
        .target_id(&prod)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(&ro)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id(&alice)
        .send()
        .await
        .unwrap();
    assert!(r.assignments(&prod, &ro).await.is_empty());

    assert_eq!(r.reaper.reconcile().await.unwrap(), 1);
    assert_eq!(r.assignments(&prod, &ro).await, vec![alice.clone()]);
    assert!(r
        .actions(&g)
        .await
        .iter()
        .any(|(a, d)| a == "drift_recreated" && d.contains(&alice)));
    let outbox = r
        .store
        .notification_events_to_fan_out(r.clock.now() + Duration::days(1), 100)
        .await
        .unwrap();
    assert!(
        outbox
            .iter()
            .any(|e| e.kind == app::domain::NotificationKind::Drift && e.grant_id == Some(g.id)),
        "the admins are told"
    );
    // A second pass finds nothing more.
    assert_eq!(r.reaper.reconcile().await.unwrap(), 0);
    r.ends_leaving_nothing(&g, 61, &prod, &ro).await;
}

/// The end counts from activation: AWS answers IN_PROGRESS for seven minutes, and
/// the grant ends `duration` after it became active, not after its approval.
async fn end_counted_from_a_late_activation(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    r.slow.hold_creates(true);
    let g = approved_grant(&r.grants, "bob", &prod, "ReadOnlyAccess", 60).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&g).await.state, GrantState::Provisioning);
    assert!(
        r.assignments(&prod, &ro).await.is_empty(),
        "not carried out yet"
    );
    r.clock.advance(Duration::minutes(7));
    r.slow.hold_creates(false);
    r.slow.release().await;
    r.reaper.tick().await.unwrap();
    let active = r.get(&g).await;
    assert_eq!(active.state, GrantState::Active);
    assert_eq!(
        active.activated_at,
        Some(start_time() + Duration::minutes(7))
    );
    assert_eq!(
        active.ends_at,
        Some(start_time() + Duration::minutes(7) + Duration::minutes(60))
    );
    // Still active a minute after approval + duration; gone after activation + duration.
    r.clock.advance(Duration::minutes(54));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&g).await.state, GrantState::Active);
    assert_eq!(r.assignments(&prod, &ro).await.len(), 1);
    r.ends_leaving_nothing(&g, 6, &prod, &ro).await;
}

/// A scheduled start is held back until its time, then provisioned; its end counts
/// from then.
async fn a_scheduled_start_is_held_back(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let start = start_time() + Duration::hours(2);
    let g = r
        .grants
        .request(
            app::domain::GrantRequest {
                requested_start: Some(start),
                ..crate::reaper::request("carol", &prod, "ReadOnlyAccess", 30)
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Approved);
    r.reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(119));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&g).await.state, GrantState::Approved, "held back");
    assert!(r.assignments(&prod, &ro).await.is_empty());
    r.clock.advance(Duration::minutes(1));
    r.reaper.tick().await.unwrap();
    let active = r.get(&g).await;
    assert_eq!(active.state, GrantState::Active);
    assert_eq!(active.activated_at, Some(start));
    assert_eq!(active.ends_at, Some(start + Duration::minutes(30)));
    assert_eq!(r.assignments(&prod, &ro).await.len(), 1);
}

/// A 30-day access-portal session (Identity Center allows 15 minutes to 90 days):
/// the real window runs 30 days and the permission-set session past the end.
async fn a_thirty_day_portal_session(db: &TestDb) {
    let r = rig_with(
        db,
        ReaperSettings {
            portal_session: PortalSession::from_seconds(30 * 86_400).unwrap(),
            ..settings()
        },
        &[],
    )
    .await;
    let prod = r.org.accounts[0].clone();
    let g = approved_grant(&r.grants, "carol", &prod, "AdministratorAccess", 60).await;
    r.reaper.tick().await.unwrap();
    let active = r.get(&g).await;
    assert_eq!(active.portal_session.unwrap().seconds(), 30 * 86_400);
    assert_eq!(
        active.real_end,
        Some(start_time() + Duration::hours(1) + Duration::days(30) + Duration::hours(2)),
        "planned end + 30 days + the 2-hour permission-set session"
    );
}

/// Identity Center allows 15 asynchronous assignment requests outstanding: twenty
/// grants approved at once while AWS is slow are sent 15 at a time, and all of them
/// become active.
async fn at_most_fifteen_requests_in_flight(db: &TestDb) {
    let users: Vec<String> = (0..20).map(|i| format!("user{i:02}")).collect();
    let r = rig_with(db, settings(), &users).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    r.slow.hold_creates(true);
    let mut grants = Vec::new();
    for u in &users {
        grants.push(approved_grant(&r.grants, u, &prod, "ReadOnlyAccess", 60).await);
    }
    r.reaper.tick().await.unwrap();
    assert_eq!(*r.slow.max_outstanding.lock().unwrap(), 15);
    let mut sent = 0;
    for g in &grants {
        let w = r.store.grant_aws(g.id).await.unwrap().unwrap_or_default();
        sent += usize::from(w.create_request_id.is_some());
    }
    assert_eq!(sent, 15, "five wait for a free slot");
    for _ in 0..4 {
        r.slow.release().await;
        r.reaper.tick().await.unwrap();
    }
    assert!(*r.slow.max_outstanding.lock().unwrap() <= 15);
    for g in &grants {
        assert_eq!(
            r.get(g).await.state,
            GrantState::Active,
            "{}",
            g.request.requester
        );
    }
    assert_eq!(r.assignments(&prod, &ro).await.len(), 20);
}

crate::on_both_backends!(
    at_most_fifteen_requests_in_flight,
    done_then_the_same_access_at_once,
    a_sibling_whose_delete_is_in_flight,
    drift_racing_a_provisioning,
    drift_recreates_a_vanished_assignment,
    end_counted_from_a_late_activation,
    a_scheduled_start_is_held_back,
    a_thirty_day_portal_session,
);
