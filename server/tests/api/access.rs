//! Every operation people can call, through the role-scoped handles the server
//! functions and API routes use, picked as the dashboard's backend picks them, as
//! each kind of caller, on a real database. A new `Operation` fails to compile here
//! until it is dispatched, and fails the test until it has a row. Each handle's
//! operations are checked against the same authorization table, and a refusal is
//! counted.

use crate::helpers::TestDb;
use crate::store_suite::request;
use app::api::HistoryQuery;
use app::domain::{
    authorize, AccessPolicy, Caller, Denied, GrantId, GrantState, Operation, PersonId,
    ReviewComment, Role, RoleSet,
};
use std::sync::Arc;
use timebox_server::clock::SystemClock;
use timebox_server::services::grants::GrantService;
use timebox_server::services::{Access, AccessError, HANDLES};
use timebox_server::store::GrantPatch;

#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Requester,
    Approver,
    Auditor,
    Admin,
    OwnRequester,
}
const WHO: [Who; 6] = [
    Who::Anonymous,
    Who::Requester,
    Who::Approver,
    Who::Auditor,
    Who::Admin,
    Who::OwnRequester,
];

fn caller(who: Who) -> Caller {
    let person = |id: &str, roles: &[Role]| Caller::Person {
        id: PersonId::parse(id).unwrap(),
        name: id.to_owned(),
        roles: RoleSet::of(roles),
        mfa: true,
        groups: Vec::new(),
    };
    match who {
        Who::Anonymous => Caller::Anonymous,
        Who::Requester => person("rita", &[Role::Requester]),
        Who::Approver => person("arno", &[Role::Approver]),
        Who::Auditor => person("audrey", &[Role::Auditor]),
        Who::Admin => person("ada", &[Role::Admin]),
        // Owns the grant and holds every role: owning it must still stop them from
        // deciding it.
        Who::OwnRequester => person(
            "owen",
            &[Role::Requester, Role::Approver, Role::Auditor, Role::Admin],
        ),
    }
}

/// Y allowed, N forbidden, S sign-in required, O own request. Columns: anonymous,
/// requester, approver, auditor, admin, own requester.
const TABLE: &[(Operation, [char; 6])] = &[
    (Operation::RequestGrant, ['S', 'Y', 'N', 'N', 'Y', 'Y']),
    (Operation::ApproveGrant, ['S', 'N', 'Y', 'N', 'Y', 'O']),
    (Operation::DenyGrant, ['S', 'N', 'Y', 'N', 'Y', 'O']),
    (Operation::CancelGrant, ['S', 'N', 'N', 'N', 'Y', 'Y']),
    (Operation::RevokeGrantEarly, ['S', 'N', 'Y', 'N', 'Y', 'Y']),
    (Operation::ReadGrant, ['S', 'N', 'Y', 'Y', 'Y', 'Y']),
    (Operation::ListOwnGrants, ['S', 'Y', 'Y', 'Y', 'Y', 'Y']),
    (Operation::ListAllGrants, ['S', 'N', 'Y', 'Y', 'Y', 'Y']),
    (Operation::ReadAuditLog, ['S', 'N', 'N', 'Y', 'Y', 'Y']),
    (Operation::VerifyAuditChain, ['S', 'N', 'N', 'Y', 'Y', 'Y']),
    (Operation::ListActiveGrants, ['S', 'Y', 'Y', 'Y', 'Y', 'Y']),
    (Operation::ReadInbox, ['S', 'N', 'Y', 'N', 'Y', 'Y']),
    (Operation::ReadAdminStatus, ['S', 'N', 'N', 'N', 'Y', 'Y']),
    (Operation::SyncCatalog, ['S', 'N', 'N', 'N', 'Y', 'Y']),
    (Operation::ReviewGrant, ['S', 'N', 'Y', 'Y', 'Y', 'O']),
];

fn answer<T>(r: Result<T, AccessError>) -> char {
    match r {
        Ok(_) => 'Y',
        Err(AccessError::Denied(Denied::Forbidden { .. })) => 'N',
        Err(AccessError::Denied(Denied::SignInRequired)) => 'S',
        Err(AccessError::Denied(Denied::OwnRequest)) => 'O',
        Err(AccessError::Denied(Denied::MfaRequired)) => 'M',
        Err(AccessError::Denied(Denied::NotAnApprover { .. })) => 'P',
        Err(e) => panic!("authorized, but the service failed: {e}"),
    }
}

/// A grant requested by owen, in the state the operation starts from.
async fn owens_grant(service: &GrantService, op: Operation) -> GrantId {
    if op == Operation::ReviewGrant {
        return service
            .submit(request("owen", 1), &[], true)
            .await
            .unwrap()
            .id;
    }
    let grant = service.request(request("owen", 1), &[]).await.unwrap();
    if op == Operation::RevokeGrantEarly {
        // Walk it to `active` as the system would.
        let system = app::domain::Actor::System;
        let approver = app::domain::Actor::Person {
            id: PersonId::parse("someone-else").unwrap(),
            roles: RoleSet::of(&[Role::Approver]),
        };
        for (action, actor) in [
            (app::domain::Action::Approve, &approver),
            (app::domain::Action::StartProvisioning, &system),
            (app::domain::Action::ProvisionSucceeded, &system),
        ] {
            service
                .act(
                    grant.id,
                    action,
                    actor,
                    None,
                    GrantPatch::default(),
                    serde_json::json!({}),
                )
                .await
                .unwrap();
        }
        assert_eq!(
            service
                .store()
                .get_grant(grant.id)
                .await
                .unwrap()
                .unwrap()
                .state,
            GrantState::Active
        );
    }
    grant.id
}

/// Calls `op` as `who` through the handle the dashboard's backend picks for them.
async fn call(access: &Access, service: &GrantService, op: Operation, who: Who) -> char {
    let c = caller(who);
    let me = match &c {
        Caller::Person { id, .. } => id.to_string(),
        Caller::Anonymous => "nobody".into(),
    };
    let holds = |roles: &[Role]| roles.iter().any(|r| c.roles().contains(*r));
    match op {
        Operation::RequestGrant => {
            answer(async { access.requester(&c, op)?.ask(request(&me, 1)).await }.await)
        }
        Operation::ApproveGrant => {
            let id = owens_grant(service, op).await;
            answer(async { access.approver(&c, op)?.approve(id, None).await }.await)
        }
        Operation::DenyGrant => {
            let id = owens_grant(service, op).await;
            answer(async { access.approver(&c, op)?.deny(id, None).await }.await)
        }
        Operation::CancelGrant => {
            let id = owens_grant(service, op).await;
            answer(
                async {
                    if holds(&[Role::Admin]) {
                        access.admin(&c, op)?.cancel(id, None).await
                    } else {
                        access.requester(&c, op)?.cancel(id, None).await
                    }
                }
                .await,
            )
        }
        Operation::RevokeGrantEarly => {
            let id = owens_grant(service, op).await;
            answer(
                async {
                    if holds(&[Role::Approver, Role::Admin]) {
                        access.approver(&c, op)?.revoke(id, None).await
                    } else {
                        access.requester(&c, op)?.finish(id, None).await
                    }
                }
                .await,
            )
        }
        Operation::ReadGrant => {
            let id = owens_grant(service, op).await;
            answer(async { access.reader(&c, op)?.read(id).await }.await)
        }
        Operation::ListOwnGrants => {
            answer(async { access.reader(&c, op)?.my_grants().await }.await)
        }
        Operation::ListAllGrants => answer(
            async {
                access
                    .reader(&c, op)?
                    .history(HistoryQuery::default())
                    .await
            }
            .await,
        ),
        Operation::ReadAuditLog => {
            answer(async { access.auditor(&c, op)?.audit_log(0).await }.await)
        }
        Operation::VerifyAuditChain => {
            // Queued for the first caller allowed; open for the next ones (still allowed).
            answer(
                match async { access.auditor(&c, op)?.verify_audit().await }.await {
                    Err(AccessError::Grant(
                        timebox_server::services::grants::GrantError::Store(
                            timebox_server::store::StoreError::VerificationOpen(_),
                        ),
                    )) => Ok(()),
                    other => other.map(|_| ()),
                },
            )
        }
        Operation::ListActiveGrants => {
            answer(async { access.reader(&c, op)?.active_now().await }.await)
        }
        Operation::ReadInbox => answer(async { access.approver(&c, op)?.inbox().await }.await),
        Operation::ReadAdminStatus => answer(async { access.admin(&c, op)?.status().await }.await),
        // Syncing would ask Identity Center: holding the admin's handle for it is
        // what the table is about.
        Operation::SyncCatalog => answer(access.admin(&c, op).map(|_| ())),
        Operation::ReviewGrant => {
            let id = owens_grant(service, op).await;
            let comment = ReviewComment::parse("looked at it").ok();
            answer(
                async {
                    if holds(&[Role::Auditor, Role::Admin]) {
                        access.auditor(&c, op)?.review(id, comment).await
                    } else {
                        access.approver(&c, op)?.review(id, comment).await
                    }
                }
                .await,
            )
        }
    }
}

#[tokio::test]
async fn every_operation_for_every_caller_through_the_handles() {
    let db = TestDb::sqlite().await;
    let service = crate::helpers::grant_service(db.store(), Arc::new(SystemClock));
    let access = crate::helpers::access(service.clone(), AccessPolicy::default()).await;
    for op in Operation::ALL {
        let row = TABLE
            .iter()
            .find(|(o, _)| *o == op)
            .unwrap_or_else(|| panic!("no row for {op} in the authorization table"));
        for (who, expected) in WHO.iter().zip(row.1) {
            assert_eq!(
                call(&access, &service, op, *who).await,
                expected,
                "{op} by {who:?}"
            );
        }
    }
    assert_eq!(TABLE.len(), Operation::ALL.len());
}

#[tokio::test]
async fn approving_without_mfa_is_refused_when_required() {
    let db = TestDb::sqlite().await;
    let service = crate::helpers::grant_service(db.store(), Arc::new(SystemClock));
    let access = crate::helpers::access(
        service.clone(),
        AccessPolicy {
            approvers_need_mfa: true,
        },
    )
    .await;
    let op = Operation::ApproveGrant;
    let id = owens_grant(&service, Operation::ApproveGrant).await;
    let without = Caller::Person {
        id: PersonId::parse("arno").unwrap(),
        name: "Arno".into(),
        roles: RoleSet::of(&[Role::Approver]),
        mfa: false,
        groups: Vec::new(),
    };
    let err = access
        .approver(&without, op)
        .unwrap()
        .approve(id, None)
        .await
        .expect_err("no MFA");
    assert!(err.to_string().contains("sign in again with MFA"), "{err}");
    // Denying needs it too (the approver's handle is still given: the inbox and the
    // forms are shown, and acting asks for the step-up).
    let err = access
        .approver(&without, Operation::DenyGrant)
        .unwrap()
        .deny(id, None)
        .await
        .expect_err("no MFA");
    assert!(
        matches!(err, AccessError::Denied(Denied::MfaRequired)),
        "{err:?}"
    );
    assert!(access.approver(&without, Operation::ReadInbox).is_ok());
    assert_eq!(
        service.store().get_grant(id).await.unwrap().unwrap().state,
        GrantState::Pending
    );
    // So does an admin change: syncing the catalog.
    let ada = Caller::Person {
        id: PersonId::parse("ada").unwrap(),
        name: "Ada".into(),
        roles: RoleSet::of(&[Role::Admin]),
        mfa: false,
        groups: Vec::new(),
    };
    assert!(matches!(
        access.admin(&ada, Operation::SyncCatalog),
        Err(AccessError::Denied(Denied::MfaRequired))
    ));
    assert!(access.admin(&ada, Operation::ReadAdminStatus).is_ok());
    let with = match without {
        Caller::Person {
            id,
            name,
            roles,
            groups,
            ..
        } => Caller::Person {
            id,
            name,
            roles,
            mfa: true,
            groups,
        },
        Caller::Anonymous => unreachable!(),
    };
    let applied = access
        .approver(&with, op)
        .unwrap()
        .approve(id, None)
        .await
        .expect("approved with MFA");
    assert_eq!(applied.grant.state, GrantState::Approved);

    // Someone else's request for yourself is refused even for a requester.
    let rita = Caller::Person {
        id: PersonId::parse("rita").unwrap(),
        name: "Rita".into(),
        roles: RoleSet::of(&[Role::Requester]),
        mfa: false,
        groups: Vec::new(),
    };
    assert!(matches!(
        access
            .requester(&rita, Operation::RequestGrant)
            .unwrap()
            .ask(request("owen", 1))
            .await,
        Err(AccessError::Denied(Denied::Forbidden { .. }))
    ));
}

/// The operations a person holding only `role` may perform: on someone else's grant
/// or on their own.
fn allowed_to(role: Role) -> Vec<Operation> {
    let policy = AccessPolicy::default();
    let me = Caller::Person {
        id: PersonId::parse("solo").unwrap(),
        name: "Solo".into(),
        roles: RoleSet::of(&[role]),
        mfa: true,
        groups: Vec::new(),
    };
    let own = PersonId::parse("solo").unwrap();
    let other = PersonId::parse("someone-else").unwrap();
    Operation::ALL
        .into_iter()
        .filter(|op| {
            authorize(&policy, &me, *op, Some(&other)).is_ok()
                || authorize(&policy, &me, *op, Some(&own)).is_ok()
        })
        .collect()
}

/// Operations that change something.
const MUTATIONS: [Operation; 7] = [
    Operation::RequestGrant,
    Operation::ApproveGrant,
    Operation::DenyGrant,
    Operation::CancelGrant,
    Operation::RevokeGrantEarly,
    Operation::SyncCatalog,
    Operation::ReviewGrant,
];

#[test]
fn each_handle_offers_exactly_what_its_role_may_do() {
    let offered = |name: &str| {
        HANDLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ops)| *ops)
            .unwrap_or_else(|| panic!("no handle {name}"))
    };
    // The table's column of each single-role caller, and authorize on the caller's
    // own grants: a role handle offers exactly those operations.
    for (name, role, column) in [
        ("requester", Role::Requester, 1),
        ("approver", Role::Approver, 2),
        ("auditor", Role::Auditor, 3),
        ("admin", Role::Admin, 4),
    ] {
        let ops = offered(name);
        for op in Operation::ALL {
            assert_eq!(
                ops.contains(&op),
                allowed_to(role).contains(&op),
                "the {name}'s handle and authorize disagree on {op}"
            );
            let row = TABLE.iter().find(|(o, _)| *o == op).expect("a row");
            if row.1[column] == 'Y' {
                assert!(ops.contains(&op), "the table allows {op} to the {name}");
            }
        }
    }
    // The auditor's one write is the review; the requester's are their own grants.
    let writes = |name| -> Vec<Operation> {
        MUTATIONS
            .into_iter()
            .filter(|op| offered(name).contains(op))
            .collect()
    };
    assert_eq!(writes("auditor"), [Operation::ReviewGrant]);
    assert_eq!(
        writes("requester"),
        [
            Operation::RequestGrant,
            Operation::CancelGrant,
            Operation::RevokeGrantEarly
        ]
    );
    // The reader only reads, and what it reads some role may read.
    for op in offered("reader") {
        assert!(
            !MUTATIONS.contains(op),
            "the reader's {op} changes something"
        );
        assert!(Role::ALL.into_iter().any(|r| allowed_to(r).contains(op)));
    }
}

#[tokio::test]
async fn a_handle_is_not_handed_out_for_an_operation_it_does_not_offer() {
    let db = TestDb::sqlite().await;
    let service = crate::helpers::grant_service(db.store(), Arc::new(SystemClock));
    let access = crate::helpers::access(service, AccessPolicy::default()).await;
    // owen holds every role; his auditor's handle still cannot be had for approving.
    let owen = caller(Who::OwnRequester);
    assert!(matches!(
        access.auditor(&owen, Operation::ApproveGrant),
        Err(AccessError::Denied(Denied::Forbidden { .. }))
    ));
    assert!(access.auditor(&owen, Operation::ReviewGrant).is_ok());
    assert!(matches!(
        access.requester(&caller(Who::Auditor), Operation::CancelGrant),
        Err(AccessError::Denied(Denied::Forbidden { .. }))
    ));
}

#[tokio::test]
async fn a_crafted_self_approval_is_refused_logged_and_counted() {
    let db = TestDb::sqlite().await;
    let service = crate::helpers::grant_service(db.store(), Arc::new(SystemClock));
    let (access, metrics) =
        crate::helpers::access_with_metrics(service.clone(), AccessPolicy::default()).await;
    let id = owens_grant(&service, Operation::ApproveGrant).await;
    let owen = caller(Who::OwnRequester);
    let counted = || {
        metrics
            .refusals
            .with_label_values(&["approve_grant", "own_request"])
            .get()
    };
    assert_eq!(counted(), 0);
    let refused = access
        .approver(&owen, Operation::ApproveGrant)
        .unwrap()
        .approve(id, None)
        .await;
    assert!(matches!(
        refused,
        Err(AccessError::Denied(Denied::OwnRequest))
    ));
    assert_eq!(counted(), 1);
    assert!(metrics
        .render()
        .contains("timebox_refusals_total{operation=\"approve_grant\",reason=\"own_request\"} 1"));
    assert_eq!(
        service.store().get_grant(id).await.unwrap().unwrap().state,
        GrantState::Pending
    );
}
