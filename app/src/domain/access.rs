//! Who may do what: the resolved [`Caller`], every [`Operation`] Timebox offers, and
//! [`authorize`], the one function that answers. Pure, so the server refuses with it
//! and the UI uses the same answer to decide which sections to show.
//!
//! The lifecycle ([`super::decide`]) still checks the grant's state and the quorum;
//! this layer answers the earlier question "may this caller ask at all?".

use super::fields::PersonId;
use super::lifecycle::{Actor, Role, RoleSet};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The person behind a request, resolved once per request from the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Caller {
    /// Nobody is signed in.
    Anonymous,
    /// A signed-in person.
    Person {
        id: PersonId,
        /// What to call them on a page (their name, else their id).
        name: String,
        roles: RoleSet,
        /// Whether this sign-in used multi-factor authentication (configured `amr` /
        /// `acr` values).
        mfa: bool,
        /// The groups of the ID token's groups claim, as the provider named them; the
        /// policy file's `group:<name>` entries match them.
        #[serde(default)]
        groups: Vec<String>,
    },
}

impl Caller {
    /// The lifecycle's view of this caller; `None` for an anonymous visitor.
    pub fn actor(&self) -> Option<Actor> {
        match self {
            Caller::Anonymous => None,
            Caller::Person { id, roles, .. } => Some(Actor::Person {
                id: id.clone(),
                roles: *roles,
            }),
        }
    }

    pub fn roles(&self) -> RoleSet {
        match self {
            Caller::Anonymous => RoleSet::empty(),
            Caller::Person { roles, .. } => *roles,
        }
    }

    /// The person's groups (none for an anonymous visitor).
    pub fn groups(&self) -> &[String] {
        match self {
            Caller::Anonymous => &[],
            Caller::Person { groups, .. } => groups,
        }
    }

    pub fn is_signed_in(&self) -> bool {
        matches!(self, Caller::Person { .. })
    }

    /// The same person holding no role, no group and no MFA: while their groups
    /// cannot be confirmed, they may do nothing a role allows.
    #[must_use]
    pub fn without_roles(self) -> Caller {
        match self {
            Caller::Person { id, name, .. } => Caller::Person {
                id,
                name,
                roles: RoleSet::empty(),
                mfa: false,
                groups: Vec::new(),
            },
            Caller::Anonymous => Caller::Anonymous,
        }
    }
}

/// Every operation the server offers to people (the reaper acts as
/// [`Actor::System`] and is not a caller). A new operation needs a row in the
/// authorization table test, which iterates [`Operation::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Ask for a grant.
    RequestGrant,
    /// Approve someone else's pending request.
    ApproveGrant,
    /// Deny someone else's pending request.
    DenyGrant,
    /// Withdraw a request before it starts.
    CancelGrant,
    /// End an active grant before its end.
    RevokeGrantEarly,
    /// Read one grant with its history.
    ReadGrant,
    /// List one's own grants.
    ListOwnGrants,
    /// List everybody's grants.
    ListAllGrants,
    /// Read the audit log.
    ReadAuditLog,
    /// Check the audit log's hash chain.
    VerifyAuditChain,
    /// See the grants that are active now or still in their tail (everyone).
    ListActiveGrants,
    /// See the pending requests one may decide.
    ReadInbox,
    /// See the catalog, the reaper's health and drift reports.
    ReadAdminStatus,
    /// Re-read the catalog from Identity Center now.
    SyncCatalog,
    /// Record the review of someone else's break-glass grant.
    ReviewGrant,
}

impl Operation {
    pub const ALL: [Operation; 15] = [
        Operation::RequestGrant,
        Operation::ApproveGrant,
        Operation::DenyGrant,
        Operation::CancelGrant,
        Operation::RevokeGrantEarly,
        Operation::ReadGrant,
        Operation::ListOwnGrants,
        Operation::ListAllGrants,
        Operation::ReadAuditLog,
        Operation::VerifyAuditChain,
        Operation::ListActiveGrants,
        Operation::ReadInbox,
        Operation::ReadAdminStatus,
        Operation::SyncCatalog,
        Operation::ReviewGrant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::RequestGrant => "request_grant",
            Operation::ApproveGrant => "approve_grant",
            Operation::DenyGrant => "deny_grant",
            Operation::CancelGrant => "cancel_grant",
            Operation::RevokeGrantEarly => "revoke_grant_early",
            Operation::ReadGrant => "read_grant",
            Operation::ListOwnGrants => "list_own_grants",
            Operation::ListAllGrants => "list_all_grants",
            Operation::ReadAuditLog => "read_audit_log",
            Operation::VerifyAuditChain => "verify_audit_chain",
            Operation::ListActiveGrants => "list_active_grants",
            Operation::ReadInbox => "read_inbox",
            Operation::ReadAdminStatus => "read_admin_status",
            Operation::SyncCatalog => "sync_catalog",
            Operation::ReviewGrant => "review_grant",
        }
    }

    /// Whether the answer depends on whose grant it is ([`authorize`] then needs
    /// the grant's requester).
    pub fn concerns_a_grant(self) -> bool {
        matches!(
            self,
            Operation::ApproveGrant
                | Operation::DenyGrant
                | Operation::CancelGrant
                | Operation::RevokeGrantEarly
                | Operation::ReadGrant
                | Operation::ReviewGrant
        )
    }

    /// Whether, where [`AccessPolicy::approvers_need_mfa`] is set, the operation needs a
    /// recent MFA sign-in: deciding a request, and every change to someone else's
    /// grant or to what Timebox knows (an admin's or approver's power). `own` says
    /// whether the grant concerned is the caller's (their own cancel and "I'm done"
    /// need none). Break-glass, a request, needs it too ([`Denied::MfaRequired`]).
    pub fn needs_recent_mfa(self, own: bool) -> bool {
        match self {
            Operation::ApproveGrant | Operation::DenyGrant | Operation::SyncCatalog => true,
            Operation::CancelGrant | Operation::RevokeGrantEarly => !own,
            Operation::RequestGrant
            | Operation::ReadGrant
            | Operation::ListOwnGrants
            | Operation::ListAllGrants
            | Operation::ReadAuditLog
            | Operation::VerifyAuditChain
            | Operation::ListActiveGrants
            | Operation::ReadInbox
            | Operation::ReadAdminStatus
            | Operation::ReviewGrant => false,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings that change the answer (from the server's configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccessPolicy {
    /// Approving needs a sign-in with MFA.
    pub approvers_need_mfa: bool,
}

/// Why [`authorize`] said no. `Display` is the message shown to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Denied {
    #[error("sign in first")]
    SignInRequired,
    #[error("your roles do not allow this: {why}")]
    Forbidden { why: String },
    #[error("a requester can never approve or deny their own request")]
    OwnRequest,
    #[error(
        "approving, denying, break-glass and changes to other people's grants need a recent \
         sign-in with multi-factor authentication (MFA): sign in again with MFA, then try again"
    )]
    MfaRequired,
    /// Only the people the grant's deciding policy names may approve, deny or review it.
    #[error("{}", not_an_approver(.policy.as_deref(), .approvers))]
    NotAnApprover {
        policy: Option<String>,
        approvers: Vec<String>,
    },
}

fn not_an_approver(policy: Option<&str>, approvers: &[String]) -> String {
    match (policy, approvers) {
        (Some(p), []) => format!(
            "policy {p:?} that decided this request is no longer in the policy file, so nobody              may decide it; it expires, or an admin cancels it"
        ),
        (Some(p), names) => format!(
            "policy {p:?} names who decides this request ({}), and you are not one of them",
            names.join(", ")
        ),
        (None, _) => "this request was made before policies and names no approvers; it                       expires, or an admin cancels it"
            .to_owned(),
    }
}

impl Denied {
    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::SignInRequired => "sign_in_required",
            Denied::Forbidden { .. } => "forbidden",
            Denied::OwnRequest => "own_request",
            Denied::MfaRequired => "mfa_required",
            Denied::NotAnApprover { .. } => "not_an_approver",
        }
    }
}

/// Whether `caller` may perform `op`. `grant_requester` is the requester of the grant
/// concerned (for operations where [`Operation::concerns_a_grant`]); without it, the
/// caller is treated as someone else's. Where the policy asks for it, operations that
/// [need a recent MFA sign-in](Operation::needs_recent_mfa) are refused with
/// [`Denied::MfaRequired`] to a caller whose roles allow them but whose sign-in has
/// no (recent) MFA.
pub fn authorize(
    policy: &AccessPolicy,
    caller: &Caller,
    op: Operation,
    grant_requester: Option<&PersonId>,
) -> Result<(), Denied> {
    authorize_role(caller, op, grant_requester)?;
    let Caller::Person { id, mfa, .. } = caller else {
        return Err(Denied::SignInRequired);
    };
    let own = grant_requester.is_some_and(|r| r == id);
    if policy.approvers_need_mfa && op.needs_recent_mfa(own) && !mfa {
        return Err(Denied::MfaRequired);
    }
    Ok(())
}

/// Whether `caller`'s roles allow `op`, whatever their sign-in: [`authorize`] without
/// the MFA step. The pages use it to show a form to a person who must step up first
/// (the action then asks for MFA), the handles to decide who holds them.
pub fn authorize_role(
    caller: &Caller,
    op: Operation,
    grant_requester: Option<&PersonId>,
) -> Result<(), Denied> {
    let Caller::Person { id, roles, .. } = caller else {
        return Err(Denied::SignInRequired);
    };
    let has = |r: Role| roles.contains(r);
    let own = grant_requester.is_some_and(|r| r == id);
    let forbidden = |why: &str| {
        Err(Denied::Forbidden {
            why: why.to_owned(),
        })
    };
    match op {
        Operation::RequestGrant => {
            if has(Role::Requester) || has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only requesters ask for access")
            }
        }
        Operation::ApproveGrant | Operation::DenyGrant => {
            if !(has(Role::Approver) || has(Role::Admin)) {
                return forbidden("only approvers and admins decide requests");
            }
            if own {
                return Err(Denied::OwnRequest);
            }
            Ok(())
        }
        Operation::CancelGrant => {
            if (own && has(Role::Requester)) || has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only the requester or an admin can cancel a request")
            }
        }
        Operation::RevokeGrantEarly => {
            if (own && has(Role::Requester)) || has(Role::Approver) || has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only the requester, an approver or an admin can end a grant early")
            }
        }
        Operation::ReadGrant => {
            if (own && !roles.is_empty())
                || has(Role::Approver)
                || has(Role::Auditor)
                || has(Role::Admin)
            {
                Ok(())
            } else {
                forbidden("only the requester, approvers, auditors and admins see a grant")
            }
        }
        Operation::ListOwnGrants => {
            if roles.is_empty() {
                forbidden("you hold no Timebox role; ask an admin to add you to a group")
            } else {
                Ok(())
            }
        }
        Operation::ListAllGrants => {
            if has(Role::Approver) || has(Role::Auditor) || has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only approvers, auditors and admins see everybody's grants")
            }
        }
        Operation::ReviewGrant => {
            if !(has(Role::Approver) || has(Role::Auditor) || has(Role::Admin)) {
                return forbidden("only approvers, auditors and admins review break-glass use");
            }
            if own {
                return Err(Denied::OwnRequest);
            }
            Ok(())
        }
        Operation::ReadAuditLog | Operation::VerifyAuditChain => {
            if has(Role::Auditor) || has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only auditors and admins read the audit log")
            }
        }
        Operation::ListActiveGrants => {
            if roles.is_empty() {
                forbidden("you have no Timebox role yet; ask an admin to add you to a group")
            } else {
                Ok(())
            }
        }
        Operation::ReadInbox => {
            if has(Role::Approver) || has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only approvers and admins have an inbox of requests")
            }
        }
        Operation::ReadAdminStatus | Operation::SyncCatalog => {
            if has(Role::Admin) {
                Ok(())
            } else {
                forbidden("only admins see and run the catalog and the reaper")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The callers of the table: anonymous, one per role, and the grant's own
    /// requester.
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

    fn caller(who: Who, mfa: bool) -> Caller {
        let person = |id: &str, roles: &[Role]| Caller::Person {
            id: PersonId::parse(id).expect("id"),
            name: id.to_owned(),
            roles: RoleSet::of(roles),
            mfa,
            groups: Vec::new(),
        };
        match who {
            Who::Anonymous => Caller::Anonymous,
            Who::Requester => person("rita", &[Role::Requester]),
            Who::Approver => person("arno", &[Role::Approver]),
            Who::Auditor => person("audrey", &[Role::Auditor]),
            Who::Admin => person("ada", &[Role::Admin]),
            // The grant's requester holds every role: owning the request must still
            // stop them from deciding it.
            Who::OwnRequester => person(
                "owen",
                &[Role::Requester, Role::Approver, Role::Auditor, Role::Admin],
            ),
        }
    }

    /// Expected answers: Y allowed, N forbidden, S sign-in required, O own request.
    /// Columns: anonymous, requester, approver, auditor, admin, own requester.
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

    fn answer(r: Result<(), Denied>) -> char {
        match r {
            Ok(()) => 'Y',
            Err(Denied::Forbidden { .. }) => 'N',
            Err(Denied::SignInRequired) => 'S',
            Err(Denied::OwnRequest) => 'O',
            Err(Denied::MfaRequired) => 'M',
            Err(Denied::NotAnApprover { .. }) => 'P',
        }
    }

    #[test]
    fn every_operation_for_every_caller() {
        let policy = AccessPolicy::default();
        let owner = PersonId::parse("owen").expect("id");
        for op in Operation::ALL {
            let row = TABLE
                .iter()
                .find(|(o, _)| *o == op)
                .unwrap_or_else(|| panic!("no row for {op} in the authorization table"));
            for (who, expected) in WHO.iter().zip(row.1) {
                let got = answer(authorize(&policy, &caller(*who, true), op, Some(&owner)));
                assert_eq!(got, expected, "{op} by {who:?}");
            }
        }
        assert_eq!(TABLE.len(), Operation::ALL.len(), "one row per operation");
    }

    #[test]
    fn approving_needs_mfa_when_configured() {
        let policy = AccessPolicy {
            approvers_need_mfa: true,
        };
        let other = PersonId::parse("someone-else").expect("id");
        for who in [Who::Approver, Who::Admin] {
            let without = authorize(
                &policy,
                &caller(who, false),
                Operation::ApproveGrant,
                Some(&other),
            );
            assert_eq!(without, Err(Denied::MfaRequired));
            assert!(without
                .expect_err("refused")
                .to_string()
                .contains("sign in again with MFA"));
            assert_eq!(
                authorize(
                    &policy,
                    &caller(who, true),
                    Operation::ApproveGrant,
                    Some(&other)
                ),
                Ok(())
            );
            // Denying, syncing the catalog and ending someone else's grant need it
            // too; one's own cancel and "I'm done" do not.
            let admin_only = [Operation::SyncCatalog];
            for op in [
                Operation::DenyGrant,
                Operation::SyncCatalog,
                Operation::RevokeGrantEarly,
            ]
            .into_iter()
            .filter(|op| matches!(who, Who::Admin) || !admin_only.contains(op))
            {
                assert_eq!(
                    authorize(&policy, &caller(who, false), op, Some(&other)),
                    Err(Denied::MfaRequired),
                    "{op} by {who:?}"
                );
                assert_eq!(
                    authorize_role(&caller(who, false), op, Some(&other)),
                    Ok(()),
                    "{op} by {who:?}: the roles allow it"
                );
            }
        }
        let own = caller(Who::OwnRequester, false);
        let owen = PersonId::parse("owen").expect("id");
        for op in [Operation::CancelGrant, Operation::RevokeGrantEarly] {
            assert_eq!(
                authorize(&policy, &own, op, Some(&owen)),
                Ok(()),
                "own {op}"
            );
        }
        // A role that does not allow it is told so, not asked for MFA.
        assert!(matches!(
            authorize(
                &policy,
                &caller(Who::Requester, false),
                Operation::DenyGrant,
                Some(&other)
            ),
            Err(Denied::Forbidden { .. })
        ));
    }

    /// With MFA required and no MFA, the table is the same except where an operation
    /// needs a recent MFA sign-in.
    #[test]
    fn without_mfa_only_the_operations_that_need_it_change() {
        let policy = AccessPolicy {
            approvers_need_mfa: true,
        };
        let owner = PersonId::parse("owen").expect("id");
        for (op, row) in TABLE {
            for (who, expected) in WHO.iter().zip(row) {
                let got = answer(authorize(&policy, &caller(*who, false), *op, Some(&owner)));
                let own = matches!(who, Who::OwnRequester);
                let want = if *expected == 'Y' && op.needs_recent_mfa(own) {
                    'M'
                } else {
                    *expected
                };
                assert_eq!(got, want, "{op} by {who:?}");
            }
        }
    }

    #[test]
    fn operation_names_are_distinct() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
    }
}
