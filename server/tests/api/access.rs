//! Every operation people can call, through the service the server functions and API
//! routes use (`Services::access`), as each kind of caller, on a real database. A new
//! `Operation` fails to compile here until it is dispatched, and fails the test until
//! it has a row.

use crate::helpers::TestDb;
use crate::store_suite::request;
use app::domain::{
    AccessPolicy, Caller, Denied, GrantId, GrantState, Operation, PersonId, Role, RoleSet,
};
use std::sync::Arc;
use timebox_server::access::{AccessError, GuardedGrants};
use timebox_server::clock::SystemClock;
use timebox_server::grants::GrantService;
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
        Err(AccessError::Grant(e)) => panic!("authorized, but the service failed: {e}"),
    }
}

/// A grant requested by owen, in the state the operation starts from.
async fn owens_grant(service: &GrantService, op: Operation) -> GrantId {
    if op == Operation::ReviewGrant {
        return service
            .request_break_glass(request("owen", 1), &[])
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

async fn call(access: &GuardedGrants, service: &GrantService, op: Operation, who: Who) -> char {
    let c = caller(who);
    let me = match &c {
        Caller::Person { id, .. } => id.to_string(),
        Caller::Anonymous => "nobody".into(),
    };
    match op {
        Operation::RequestGrant => answer(access.request(&c, request(&me, 1)).await),
        Operation::ApproveGrant => {
            let id = owens_grant(service, op).await;
            answer(access.approve(&c, id, None).await)
        }
        Operation::DenyGrant => {
            let id = owens_grant(service, op).await;
            answer(access.deny(&c, id, None).await)
        }
        Operation::CancelGrant => {
            let id = owens_grant(service, op).await;
            answer(access.cancel(&c, id, None).await)
        }
        Operation::RevokeGrantEarly => {
            let id = owens_grant(service, op).await;
            answer(access.revoke_early(&c, id, None).await)
        }
        Operation::ReadGrant => {
            let id = owens_grant(service, op).await;
            answer(access.read(&c, id).await)
        }
        Operation::ListOwnGrants => answer(access.list_own(&c).await),
        Operation::ListAllGrants => answer(access.list_all(&c).await),
        Operation::ReadAuditLog => answer(access.audit_log(&c, 0).await),
        Operation::VerifyAuditChain => answer(access.verify_audit(&c).await),
        // Dashboard queries: the dashboard asks `allow` before reading (the HTTP
        // tests in api_v1.rs call the routes themselves).
        Operation::ListActiveGrants
        | Operation::ReadInbox
        | Operation::ReadAdminStatus
        | Operation::SyncCatalog => answer(access.allow(&c, op, None).map_err(AccessError::from)),
        Operation::ReviewGrant => {
            let id = owens_grant(service, op).await;
            answer(access.review(&c, id, Some("looked at it".into())).await)
        }
    }
}

#[tokio::test]
async fn every_operation_for_every_caller_through_the_service() {
    let db = TestDb::sqlite().await;
    let service = crate::helpers::grant_service(db.store(), Arc::new(SystemClock));
    let access = GuardedGrants::new(service.clone(), AccessPolicy::default());
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
    let access = GuardedGrants::new(
        service.clone(),
        AccessPolicy {
            approvers_need_mfa: true,
        },
    );
    let id = owens_grant(&service, Operation::ApproveGrant).await;
    let without = Caller::Person {
        id: PersonId::parse("arno").unwrap(),
        name: "Arno".into(),
        roles: RoleSet::of(&[Role::Approver]),
        mfa: false,
        groups: Vec::new(),
    };
    let err = access
        .approve(&without, id, None)
        .await
        .expect_err("no MFA");
    assert!(err.to_string().contains("sign in again with MFA"), "{err}");
    assert_eq!(
        service.store().get_grant(id).await.unwrap().unwrap().state,
        GrantState::Pending
    );
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
        .approve(&with, id, None)
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
        access.request(&rita, request("owen", 1)).await,
        Err(AccessError::Denied(Denied::Forbidden { .. }))
    ));
}
