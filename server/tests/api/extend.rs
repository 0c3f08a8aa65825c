//! Extensions and the entitlement re-check, against the emulator with the real
//! reaper: an approved extension moves the access end to the current end plus the
//! extra time (approved before the end), is a new grant when approved after the end,
//! leaves the original end when denied, chains twice; "I'm done" ends the access as
//! one; a later start is given only to a requester still entitled to it.

use crate::helpers::TestDb;
use crate::reaper::{request, start_time};
use crate::timing::{rig, rig_under, Rig};
use app::domain::{AccessChain, Action, Actor, Caller, Grant, GrantState, PersonId, Role, RoleSet};
use chrono::Duration;
use timebox_server::clock::Clock;
use timebox_server::store::GrantPatch;

/// `who` asks to extend `of` by `minutes` (the policy decides it like any request).
async fn extension(r: &Rig, of: &Grant, permission_set: &str, minutes: i64) -> Grant {
    r.grants
        .request(
            app::domain::GrantRequest {
                extends: Some(of.id),
                ..request(
                    of.request.requester.as_str(),
                    of.request.account_id.as_str(),
                    permission_set,
                    minutes,
                )
            },
            &[],
        )
        .await
        .unwrap()
}

/// Arno (an approver the test policy names) decides `g`.
async fn decide(r: &Rig, g: &Grant, approve: bool) -> Grant {
    let arno = Actor::Person {
        id: PersonId::parse("arno").unwrap(),
        roles: RoleSet::of(&[Role::Approver]),
    };
    let action = if approve {
        Action::Approve
    } else {
        Action::Deny
    };
    r.grants
        .act(
            g.id,
            action,
            &arno,
            Some("looked at it".into()),
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap()
        .grant
}

async fn chain(r: &Rig, g: &Grant) -> AccessChain {
    let grants = timebox_server::services::extensions::chain(r.store.as_ref(), g)
        .await
        .unwrap();
    AccessChain::of(&grants).expect("a chain")
}

/// Approved while the access runs: the extension activates on the same assignment
/// and ends at the original end plus its time; the original's end keeps the
/// assignment for it; nothing is left after the extension's end.
async fn an_extension_approved_before_the_end(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let alice = r.org.user("alice");
    let first = r.active_grant("alice", "AdministratorAccess", 60).await;
    let end = first.ends_at.unwrap();
    assert_eq!(end, start_time() + Duration::minutes(60));

    r.clock.advance(Duration::minutes(40));
    let ext = extension(&r, &first, "AdministratorAccess", 30).await;
    assert_eq!(ext.state, GrantState::Pending);
    assert_eq!(ext.request.extends, Some(first.id));
    r.clock.advance(Duration::minutes(5));
    decide(&r, &ext, true).await;
    r.reaper.tick().await.unwrap();
    let ext = r.get(&ext).await;
    assert_eq!(ext.state, GrantState::Active);
    assert_eq!(
        ext.ends_at,
        Some(end + Duration::minutes(30)),
        "current end + extra, not approval + extra"
    );
    assert_eq!(r.assignments(&prod, &admin).await, vec![alice.clone()]);
    let c = chain(&r, &first).await;
    assert!(c.continuous);
    assert_eq!(c.ends_at, Some(end + Duration::minutes(30)));
    assert!(c.real_end.unwrap() > end + Duration::minutes(30));

    // The original's end: the assignment stays for the extension.
    r.clock.advance(Duration::minutes(16));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Revoked);
    assert_eq!(r.get(&ext).await.state, GrantState::Active);
    assert_eq!(r.assignments(&prod, &admin).await, vec![alice.clone()]);
    // Still there a minute before the new end, gone after it.
    r.clock.advance(Duration::minutes(28));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.assignments(&prod, &admin).await, vec![alice.clone()]);
    r.ends_leaving_nothing(&ext, 2, &prod, &admin).await;
}

/// Approved after the access ended: a new grant from its own activation; the
/// original stays revoked (no resurrection).
async fn an_extension_approved_after_the_end(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let first = r.active_grant("alice", "AdministratorAccess", 60).await;
    r.clock.advance(Duration::minutes(50));
    let ext = extension(&r, &first, "AdministratorAccess", 30).await;
    r.clock.advance(Duration::minutes(11));
    r.reaper.tick().await.unwrap();
    let revoked = r.get(&first).await;
    assert_eq!(revoked.state, GrantState::Revoked);
    assert!(r.assignments(&prod, &admin).await.is_empty());

    r.clock.advance(Duration::minutes(9));
    decide(&r, &ext, true).await;
    r.reaper.tick().await.unwrap();
    let ext = r.get(&ext).await;
    assert_eq!(ext.state, GrantState::Active);
    let approved_at = start_time() + Duration::minutes(70);
    assert_eq!(ext.activated_at, Some(approved_at));
    assert_eq!(ext.ends_at, Some(approved_at + Duration::minutes(30)));
    assert_eq!(
        r.get(&first).await,
        revoked,
        "the original is not resurrected"
    );
    assert_eq!(r.assignments(&prod, &admin).await.len(), 1);
    assert!(!chain(&r, &ext).await.continuous, "a gap between the two");
    r.ends_leaving_nothing(&ext, 30, &prod, &admin).await;
}

/// Denied: the original end stands.
async fn an_extension_denied(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let first = r.active_grant("alice", "AdministratorAccess", 60).await;
    let end = r.get(&first).await.ends_at;
    r.clock.advance(Duration::minutes(30));
    let ext = extension(&r, &first, "AdministratorAccess", 30).await;
    assert_eq!(decide(&r, &ext, false).await.state, GrantState::Denied);
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.ends_at, end);
    r.clock.advance(Duration::minutes(29));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Active);
    r.ends_leaving_nothing(&first, 1, &prod, &admin).await;
    assert_eq!(r.get(&ext).await.state, GrantState::Denied);
}

/// Two extensions, the second of the first: each counts from the end before it.
async fn two_extensions(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let alice = r.org.user("alice");
    // ReadOnlyAccess is approved automatically: each extension is approved at once.
    let first = r.active_grant("alice", "ReadOnlyAccess", 60).await;
    r.clock.advance(Duration::minutes(10));
    let one = extension(&r, &first, "ReadOnlyAccess", 30).await;
    assert_eq!(one.state, GrantState::Approved);
    r.reaper.tick().await.unwrap();
    r.clock.advance(Duration::minutes(10));
    let two = extension(&r, &r.get(&one).await, "ReadOnlyAccess", 20).await;
    r.reaper.tick().await.unwrap();
    let t0 = start_time();
    assert_eq!(r.get(&one).await.ends_at, Some(t0 + Duration::minutes(90)));
    assert_eq!(r.get(&two).await.ends_at, Some(t0 + Duration::minutes(110)));
    let c = chain(&r, &first).await;
    assert_eq!(c.links.len(), 3);
    assert!(c.continuous);
    assert_eq!(c.ends_at, Some(t0 + Duration::minutes(110)));

    for (at, gone) in [(61, &first), (91, &one)] {
        r.clock.set(t0 + Duration::minutes(at));
        r.reaper.tick().await.unwrap();
        assert_eq!(r.get(gone).await.state, GrantState::Revoked);
        assert_eq!(r.assignments(&prod, &ro).await, vec![alice.clone()]);
    }
    r.clock.set(t0 + Duration::minutes(110));
    r.ends_leaving_nothing(&two, 1, &prod, &ro).await;
}

/// An extension of a grant approved for a later start waits for that start, then
/// runs on from the grant's end (it never starts first).
async fn an_extension_of_a_later_start(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let start = start_time() + Duration::hours(1);
    let first = r
        .grants
        .request(
            app::domain::GrantRequest {
                requested_start: Some(start),
                ..request("alice", &prod, "ReadOnlyAccess", 60)
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(first.state, GrantState::Approved);
    let ext = extension(&r, &first, "ReadOnlyAccess", 30).await;
    assert_eq!(ext.state, GrantState::Approved);
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&ext).await.state, GrantState::Approved, "held back");
    assert!(r.assignments(&prod, &ro).await.is_empty());
    r.clock.advance(Duration::hours(1));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Active);
    let ext = r.get(&ext).await;
    assert_eq!(ext.state, GrantState::Active);
    assert_eq!(ext.ends_at, Some(start + Duration::minutes(90)));
    assert_eq!(r.assignments(&prod, &ro).await.len(), 1);
}

/// "I'm done" on the original ends its active extension too: the access ends as
/// one and nothing is left.
async fn done_ends_the_extended_access(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let ro = r.org.permission_set("ReadOnlyAccess");
    let first = r.active_grant("alice", "ReadOnlyAccess", 60).await;
    r.clock.advance(Duration::minutes(10));
    let ext = extension(&r, &first, "ReadOnlyAccess", 30).await;
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&ext).await.state, GrantState::Active);

    let (access, _) =
        crate::helpers::access_with_metrics(r.grants.clone(), app::domain::AccessPolicy::default())
            .await;
    let alice = Caller::Person {
        id: PersonId::parse("alice").unwrap(),
        name: "Alice".into(),
        roles: RoleSet::of(&[Role::Requester]),
        mfa: false,
        groups: Vec::new(),
    };
    access
        .requester(&alice, app::domain::Operation::RevokeGrantEarly)
        .unwrap()
        .finish(first.id, None)
        .await
        .unwrap();
    assert_eq!(r.get(&ext).await.state, GrantState::Revoking);
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&first).await.state, GrantState::Revoked);
    assert_eq!(r.get(&ext).await.state, GrantState::Revoked);
    assert!(r.assignments(&prod, &ro).await.is_empty());
    let events = r.actions(&ext).await;
    assert!(
        events
            .iter()
            .any(|(_, d)| d.contains(&first.id.to_string())),
        "the extension's end names the grant whose end ended it: {events:?}"
    );
}

const GROUP_POLICY: &str = r#"
[[policy]]
name = "sre-admin"
requesters = ["group:sre"]
accounts = ["*"]
permission_sets = ["AdministratorAccess"]
max_duration = "4h"
approval = "auto"
"#;

/// A later start is given only to a requester still entitled to it: removed from
/// the group the policy names before the start, the grant fails with the reason,
/// recorded and notified, and nothing is assigned.
async fn a_later_start_rechecks_the_entitlement(db: &TestDb) {
    let r = rig_under(db, crate::reaper::settings(), &[], GROUP_POLICY).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    let start = start_time() + Duration::hours(1);
    let ask = |who: &str| app::domain::GrantRequest {
        requested_start: Some(start),
        ..request(who, &prod, "AdministratorAccess", 30)
    };
    let groups = ["sre".to_owned()];
    let kept = r.grants.request(ask("alice"), &groups).await.unwrap();
    let dropped = r.grants.request(ask("bob"), &groups).await.unwrap();
    assert_eq!(dropped.state, GrantState::Approved);

    // Bob leaves the group in the identity store before the start.
    let ids = r.moto.clients().await.identity_store;
    let store_id = r.org.identity_store_id.clone();
    let memberships = ids
        .list_group_memberships()
        .identity_store_id(&store_id)
        .group_id(&r.org.sre_group)
        .send()
        .await
        .unwrap();
    let bob = r.org.user("bob");
    for m in memberships.group_memberships() {
        if matches!(m.member_id(), Some(aws_sdk_identitystore::types::MemberId::UserId(u)) if *u == bob)
        {
            ids.delete_group_membership()
                .identity_store_id(&store_id)
                .membership_id(m.membership_id())
                .send()
                .await
                .unwrap();
        }
    }
    r.clock.advance(Duration::hours(1));
    r.reaper.tick().await.unwrap();
    assert_eq!(r.get(&kept).await.state, GrantState::Active);
    let failed = r.get(&dropped).await;
    assert_eq!(failed.state, GrantState::Failed);
    let why = failed.failure_reason.unwrap();
    assert!(why.contains("no longer entitled"), "{why}");
    assert_eq!(
        r.assignments(&prod, &admin).await,
        vec![r.org.user("alice")]
    );
    let events = r.actions(&dropped).await;
    assert!(events.iter().any(|(a, _)| a == "provision_failed"));
    let queued = r
        .store
        .notification_events_to_fan_out(r.clock.now() + Duration::days(1), 100)
        .await
        .unwrap();
    assert!(
        queued.iter().any(|n| n.grant_id == Some(failed.id)
            && n.kind == app::domain::NotificationKind::ProvisionFailed),
        "{queued:?}"
    );
}

crate::on_both_backends!(
    an_extension_approved_before_the_end,
    an_extension_approved_after_the_end,
    an_extension_denied,
    two_extensions,
    an_extension_of_a_later_start,
    done_ends_the_extended_access,
    a_later_start_rechecks_the_entitlement,
);
