//! The grant row as a projection of its events (issue 14, points 1 and 5): a grant
//! taken through its whole lifecycle, then its row edited by raw SQL without an
//! event, as someone with database access would. The grant's page and pack
//! (`audit::grant::prove`) and `timebox audit verify` name the field; the chain
//! itself still holds, so nothing but the projection could see it.

use crate::helpers::TestDb;
use crate::store_suite::request;
use app::domain::{Action, Actor, GrantId, PersonId, RevokeCause, Role, RoleSet};
use chrono::{Duration, TimeZone, Utc};
use std::sync::Arc;
use timebox_server::audit::{grant::prove, verify, CheckpointSource};
use timebox_server::clock::ManualClock;
use timebox_server::store::GrantPatch;

crate::on_both_backends!(
    an_untouched_grant_matches_its_events,
    a_row_edited_without_an_event_is_named,
    the_command_names_the_edited_grant,
);

/// Alice's grant, approved by Bob, active for an hour, revoked and closed.
async fn lived_grant(db: &TestDb) -> GrantId {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap());
    let svc = crate::helpers::grant_service(db.store(), Arc::new(clock.clone()));
    let none = serde_json::json!({});
    let bob = Actor::Person {
        id: PersonId::parse("bob").unwrap(),
        roles: RoleSet::of(&[Role::Approver]),
    };
    let g = svc.request(request("alice", 1), &[]).await.unwrap();
    let step = |action, actor: Actor, patch| {
        let svc = &svc;
        let none = none.clone();
        async move {
            svc.act(g.id, action, &actor, None, patch, none)
                .await
                .unwrap()
        }
    };
    clock.advance(Duration::minutes(5));
    step(Action::Approve, bob, GrantPatch::default()).await;
    step(
        Action::StartProvisioning,
        Actor::System,
        GrantPatch::default(),
    )
    .await;
    clock.advance(Duration::seconds(3));
    let activated_at = timebox_server::clock::Clock::now(&clock);
    step(
        Action::ProvisionSucceeded,
        Actor::System,
        GrantPatch {
            activated_at: Some(activated_at),
            ends_at: Some(activated_at + Duration::hours(1)),
            permission_set_session_seconds: Some(3600),
            portal_session_seconds: Some(8 * 3600),
            real_end: Some(activated_at + Duration::hours(10)),
            ..GrantPatch::default()
        },
    )
    .await;
    clock.advance(Duration::hours(1));
    step(
        Action::Revoke(RevokeCause::EndReached),
        Actor::System,
        GrantPatch::default(),
    )
    .await;
    let revoked_at = timebox_server::clock::Clock::now(&clock);
    step(
        Action::RevokeSucceeded,
        Actor::System,
        GrantPatch {
            revoked_at: Some(revoked_at),
            real_end: Some(revoked_at + Duration::hours(1)),
            ..GrantPatch::default()
        },
    )
    .await;
    g.id
}

async fn proof_of(db: &TestDb, id: GrantId) -> timebox_server::audit::grant::GrantProof {
    let store = db.store();
    let grant = store.get_grant(id).await.unwrap().unwrap();
    let events = store.audit_events(Some(id), 0, 100).await.unwrap();
    prove(store.as_ref(), &grant, &events, None).await.unwrap()
}

async fn an_untouched_grant_matches_its_events(db: &TestDb) {
    let id = lived_grant(db).await;
    let proof = proof_of(db, id).await;
    assert!(proof.holds(), "{:?}", proof.problem());
    assert!(proof.row.complete);
    assert!(
        proof.verdict().starts_with("verified"),
        "{}",
        proof.verdict()
    );
    let report = verify(db.store().as_ref(), &CheckpointSource::Nothing, None)
        .await
        .unwrap();
    assert!(report.is_intact(), "{}", report.summary());
    assert_eq!(report.grants_checked, 1);
    assert_eq!(report.grants_partial, 0);
    assert!(report.summary().contains("1 grant rows match their events"));
}

async fn a_row_edited_without_an_event_is_named(db: &TestDb) {
    let id = lived_grant(db).await;
    // The access moved an hour later, as if it had been granted longer.
    assert_eq!(
        db.exec(&format!(
            "UPDATE grants SET ends_at = real_end, revoked_at = real_end WHERE id = '{id}'"
        ))
        .await,
        1
    );
    let proof = proof_of(db, id).await;
    assert!(
        proof.events_verify && proof.covered_by_intact_chain,
        "the chain holds"
    );
    assert!(!proof.holds());
    let problem = proof.problem().unwrap();
    assert!(
        problem.contains("changed without an audit event: ends_at is"),
        "{problem}"
    );
    assert!(problem.contains("and 1 more field"), "{problem}");
    assert!(proof.verdict().starts_with("NOT verified"));

    let report = verify(db.store().as_ref(), &CheckpointSource::Nothing, None)
        .await
        .unwrap();
    assert!(report.first_broken.is_none(), "the chain itself holds");
    assert!(!report.is_intact());
    let bad = report.bad_grant.clone().unwrap();
    assert_eq!(bad.grant, id.to_string());
    assert!(bad.problem.contains("ends_at"), "{}", bad.problem);

    // Another account, the state moved back: each named.
    let fresh = lived_grant(db).await;
    db.exec(&format!(
        "UPDATE grants SET account_id = '999999999999' WHERE id = '{fresh}'"
    ))
    .await;
    let problem = proof_of(db, fresh).await.problem().unwrap();
    assert!(
        problem.contains(
            "account_id is \"999999999999\" in the row, but its events give \"111122223333\""
        ),
        "{problem}"
    );
    let third = lived_grant(db).await;
    db.exec(&format!(
        "UPDATE grants SET state = 'active' WHERE id = '{third}'"
    ))
    .await;
    let problem = proof_of(db, third).await.problem().unwrap();
    assert!(
        problem.contains("state is \"active\" in the row, but its events give \"revoked\""),
        "{problem}"
    );
}

async fn the_command_names_the_edited_grant(db: &TestDb) {
    let id = lived_grant(db).await;
    let run = || {
        let (code, out, _) = crate::audit_proof::audit_command("verify", db, &[]);
        (code, out)
    };
    let (code, out) = run();
    assert_eq!(code, Some(0), "{out}");
    db.exec(&format!(
        "UPDATE grants SET justification = 'nothing to see' WHERE id = '{id}'"
    ))
    .await;
    let (code, out) = run();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("does NOT verify: grant {id}: the grant's row was changed without an audit event: justification")),
        "{out}"
    );
}
