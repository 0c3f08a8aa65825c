//! Other paths known before the decision: the ways the requester already reaches
//! the same access (a group assignment, a standing direct assignment) are looked up
//! when the request is made, stored on the grant and shown to the approvers in the
//! inbox, on the pending grant's page and in the notification, with display names
//! (groups and accounts).

use crate::helpers::TestDb;
use crate::moto::assign;
use crate::reaper::request;
use crate::timing::{rig, Rig};
use app::domain::{Caller, GrantState, NotificationKind, Operation, PersonId, Role, RoleSet};
use std::sync::Arc;
use timebox_server::clock::Clock;
use timebox_server::metrics::Metrics;
use timebox_server::services::access::{Access, AccessParts};

/// A signed-in person holding `roles` (with MFA).
pub fn person(id: &str, roles: &[Role]) -> Caller {
    Caller::Person {
        id: PersonId::parse(id).unwrap(),
        name: id.to_owned(),
        roles: RoleSet::of(roles),
        mfa: true,
        groups: Vec::new(),
    }
}

/// The role handles over the rig's grants, asking the rig's emulator.
pub async fn access(r: &Rig) -> Access {
    let metrics = Arc::new(Metrics::new());
    Access::new(AccessParts {
        grants: r.grants.clone(),
        policy: app::domain::AccessPolicy::default(),
        config: Arc::new(timebox_server::config::Config::default()),
        identity_center: r.moto.identity_center(metrics.clone()).await,
        metrics,
        checkpoint_key: None,
    })
}

/// Alice's group reaches AdministratorAccess in prod, and Bob holds it directly
/// (standing): both requests carry that, the inbox, the pending page and the
/// notification say so by name; Carol, with no other path, is shown none.
async fn other_paths_are_known_before_the_decision(db: &TestDb) {
    let r = rig(db).await;
    let prod = r.org.accounts[0].clone();
    let admin = r.org.permission_set("AdministratorAccess");
    timebox_server::identity_center::catalog::sync(
        r.slow.as_ref(),
        r.store.as_ref(),
        r.clock.now(),
    )
    .await
    .unwrap();
    use aws_sdk_ssoadmin::types::PrincipalType;
    assign(
        &r.moto,
        &r.org,
        &prod,
        &admin,
        PrincipalType::Group,
        &r.org.sre_group,
    )
    .await;
    assign(
        &r.moto,
        &r.org,
        &prod,
        &admin,
        PrincipalType::User,
        &r.org.user("bob"),
    )
    .await;
    let access = access(&r).await;

    let ask = |who: &str| {
        let access = &access;
        let who = who.to_owned();
        let prod = prod.clone();
        async move {
            let caller = person(&who, &[Role::Requester]);
            access
                .requester(&caller, Operation::RequestGrant)
                .unwrap()
                .ask(request(&who, &prod, "AdministratorAccess", 60))
                .await
                .unwrap()
        }
    };
    let alice = ask("alice").await;
    assert_eq!(alice.state, GrantState::Pending);
    let paths = alice.paths_at_request.clone().expect("looked up");
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(paths[0].principal_type, "GROUP");
    assert_eq!(paths[0].principal, "sre", "the group's display name");
    assert_eq!(paths[0].principal_id, r.org.sre_group);
    let bob = ask("bob").await;
    let bob_paths = bob.paths_at_request.clone().unwrap();
    assert!(
        bob_paths.iter().any(|p| p.principal_type == "USER"),
        "a standing direct assignment is another path: {bob_paths:?}"
    );
    let carol = ask("carol").await;
    assert_eq!(carol.paths_at_request, Some(Vec::new()));

    // The inbox of an approver the policy names, with the account's name.
    let arno = person("arno", &[Role::Approver]);
    let items = access
        .approver(&arno, Operation::ReadInbox)
        .unwrap()
        .inbox_items()
        .await
        .unwrap();
    let item = items.iter().find(|i| i.grant.id == alice.id).unwrap();
    assert_eq!(item.grant.paths_at_request, Some(paths.clone()));
    assert_eq!(item.account_name.as_deref(), Some("prod"));

    // The pending grant's page.
    let detail = access
        .reader(&arno, Operation::ReadGrant)
        .unwrap()
        .detail(alice.id)
        .await
        .unwrap();
    assert_eq!(detail.other_paths, paths);
    assert_eq!(detail.account_name.as_deref(), Some("prod"));

    // The notification to the approvers.
    let events = r
        .store
        .notification_events_to_fan_out(r.clock.now() + chrono::Duration::days(1), 100)
        .await
        .unwrap();
    let event = events
        .iter()
        .find(|e| e.grant_id == Some(alice.id) && e.kind == NotificationKind::NewRequest)
        .unwrap();
    let message = timebox_server::notify::message::Message::render(
        event,
        Some(&alice),
        None,
        "https://timebox.example",
    );
    assert!(
        message
            .summary
            .contains("already reaches this access through group sre"),
        "{}",
        message.summary
    );
    // The worker names the account from the catalog.
    let mut named = message.clone();
    named.name_account(&prod, "prod");
    assert!(
        named.summary.contains(&format!("prod ({prod})")),
        "{}",
        named.summary
    );
    assert!(named.title.ends_with("in prod"), "{}", named.title);
    let audit = r.actions(&alice).await;
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "request" && d.contains("\"other_paths\"") && d.contains("sre")),
        "{audit:?}"
    );
}

crate::on_both_backends!(other_paths_are_known_before_the_decision);
