//! The grant service as people reach it: every method takes the resolved
//! [`Caller`], asks [`authorize`] first, and only then calls the service or the store.
//! Server functions and API routes call these methods, never the service directly; the
//! reaper, acting as [`Actor::System`](app::domain::Actor), uses the service itself.

use crate::grants::{Applied, GrantError, GrantService};
use crate::store::{AuditEvent, ChainVerification, Cursor, GrantFilter, GrantPatch};
use app::domain::{
    authorize, AccessPolicy, Action, Caller, Denied, Grant, GrantId, GrantRequest, GrantState,
    Operation, PersonId, RevokeCause, Role,
};

/// How many rows a list returns at most.
const PAGE: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Grant(#[from] GrantError),
}

impl From<crate::store::StoreError> for AccessError {
    fn from(e: crate::store::StoreError) -> Self {
        AccessError::Grant(e.into())
    }
}

/// [`GrantService`] behind [`authorize`].
#[derive(Debug, Clone)]
pub struct GuardedGrants {
    grants: GrantService,
    policy: AccessPolicy,
}

impl GuardedGrants {
    pub fn new(grants: GrantService, policy: AccessPolicy) -> Self {
        Self { grants, policy }
    }

    /// Whether `caller` may perform `op` (on a grant of `requester`), for the
    /// dashboard's queries that are not grant actions.
    pub fn allow(
        &self,
        caller: &Caller,
        op: Operation,
        requester: Option<&PersonId>,
    ) -> Result<(), Denied> {
        self.check(caller, op, requester)
    }

    fn check(
        &self,
        caller: &Caller,
        op: Operation,
        requester: Option<&PersonId>,
    ) -> Result<(), Denied> {
        authorize(&self.policy, caller, op, requester)
    }

    /// Asks for a grant, for the caller themself, as the policy allows it (see
    /// [`GrantService::request`]).
    pub async fn request(
        &self,
        caller: &Caller,
        request: GrantRequest,
    ) -> Result<Grant, AccessError> {
        self.check_own_request(caller, &request)?;
        Ok(self.grants.request(request, caller.groups()).await?)
    }

    /// Asks for break-glass access, for the caller themself (see
    /// [`GrantService::request_break_glass`]).
    pub async fn request_break_glass(
        &self,
        caller: &Caller,
        request: GrantRequest,
    ) -> Result<Grant, AccessError> {
        self.check_own_request(caller, &request)?;
        Ok(self
            .grants
            .request_break_glass(request, caller.groups())
            .await?)
    }

    fn check_own_request(&self, caller: &Caller, request: &GrantRequest) -> Result<(), Denied> {
        self.check(caller, Operation::RequestGrant, None)?;
        if Some(&request.requester) != caller_id(caller) {
            return Err(Denied::Forbidden {
                why: "you can only ask for access for yourself".into(),
            });
        }
        Ok(())
    }

    /// Whether the grant's deciding policy names the caller as an approver (by
    /// `user:` or `group:`).
    fn named_by_policy(&self, caller: &Caller, grant: &Grant) -> bool {
        match caller {
            Caller::Person { id, groups, .. } => {
                self.grants
                    .policy()
                    .names_approver(grant.policy.as_deref(), id.as_str(), groups)
            }
            Caller::Anonymous => false,
        }
    }

    fn not_named(&self, grant: &Grant) -> Denied {
        let approvers = grant
            .policy
            .as_deref()
            .and_then(|name| {
                self.grants
                    .policy()
                    .current()
                    .get(name)
                    .map(|p| p.approvers.iter().map(ToString::to_string).collect())
            })
            .unwrap_or_default();
        Denied::NotAnApprover {
            policy: grant.policy.clone(),
            approvers,
        }
    }

    /// Whether `caller` may approve or deny `grant` now: it is pending, the caller's
    /// roles allow deciding, it is not their own request, and the deciding policy
    /// names them as an approver. (Approving may still need an MFA sign-in.)
    pub fn may_decide(&self, caller: &Caller, grant: &Grant) -> bool {
        grant.state == GrantState::Pending
            && self
                .check(caller, Operation::DenyGrant, Some(&grant.request.requester))
                .is_ok()
            && self.named_by_policy(caller, grant)
    }

    /// The pending requests `caller` may decide, oldest first. Empty for someone who
    /// decides nothing.
    pub async fn inbox(&self, caller: &Caller) -> Result<Vec<Grant>, AccessError> {
        if !caller.is_signed_in() {
            return Err(Denied::SignInRequired.into());
        }
        let roles = caller.roles();
        if !(roles.contains(Role::Approver) || roles.contains(Role::Admin)) {
            return Ok(Vec::new());
        }
        let filter = GrantFilter {
            states: vec![GrantState::Pending],
            ..GrantFilter::default()
        };
        let mut out = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = self
                .grants
                .store()
                .list_grants(&filter, after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor {
                created_at: last.created_at,
                id: last.id,
            });
            let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            out.extend(page.into_iter().filter(|g| self.may_decide(caller, g)));
            if !full {
                break;
            }
        }
        out.sort_by_key(|g| (g.created_at, g.id));
        Ok(out)
    }

    /// Records the review of a break-glass grant: by an auditor or admin, or an
    /// approver the grant's policy names; never by its requester.
    pub async fn review(
        &self,
        caller: &Caller,
        id: GrantId,
        comment: Option<String>,
    ) -> Result<Grant, AccessError> {
        if caller.roles().is_empty() {
            self.check(caller, Operation::ReviewGrant, None)?;
        }
        let grant = self
            .grants
            .store()
            .get_grant(id)
            .await?
            .ok_or(GrantError::NotFound(id))?;
        self.check(
            caller,
            Operation::ReviewGrant,
            Some(&grant.request.requester),
        )?;
        let roles = caller.roles();
        let may_review = roles.contains(Role::Auditor)
            || roles.contains(Role::Admin)
            || self.named_by_policy(caller, &grant);
        if !may_review {
            return Err(self.not_named(&grant).into());
        }
        let who = caller_id(caller).ok_or(Denied::SignInRequired)?;
        Ok(self.grants.review(id, who, comment).await?)
    }

    async fn decide(
        &self,
        caller: &Caller,
        op: Operation,
        action: Action,
        id: GrantId,
        reason: Option<String>,
    ) -> Result<Applied, AccessError> {
        // Refuse a caller who could never do this before saying whether the grant
        // exists.
        if caller.roles().is_empty() {
            self.check(caller, op, None)?;
        }
        let grant = self
            .grants
            .store()
            .get_grant(id)
            .await?
            .ok_or(GrantError::NotFound(id))?;
        let requester = grant.request.requester.clone();
        self.check(caller, op, Some(&requester))?;
        if matches!(action, Action::Approve | Action::Deny) && !self.named_by_policy(caller, &grant)
        {
            return Err(self.not_named(&grant).into());
        }
        let actor = caller.actor().ok_or(Denied::SignInRequired)?;
        Ok(self
            .grants
            .act(
                id,
                action,
                &actor,
                reason,
                GrantPatch::default(),
                serde_json::json!({}),
            )
            .await?)
    }

    pub async fn approve(
        &self,
        caller: &Caller,
        id: GrantId,
        comment: Option<String>,
    ) -> Result<Applied, AccessError> {
        self.decide(
            caller,
            Operation::ApproveGrant,
            Action::Approve,
            id,
            comment,
        )
        .await
    }

    pub async fn deny(
        &self,
        caller: &Caller,
        id: GrantId,
        reason: Option<String>,
    ) -> Result<Applied, AccessError> {
        self.decide(caller, Operation::DenyGrant, Action::Deny, id, reason)
            .await
    }

    pub async fn cancel(
        &self,
        caller: &Caller,
        id: GrantId,
        reason: Option<String>,
    ) -> Result<Applied, AccessError> {
        self.decide(caller, Operation::CancelGrant, Action::Cancel, id, reason)
            .await
    }

    pub async fn revoke_early(
        &self,
        caller: &Caller,
        id: GrantId,
        reason: Option<String>,
    ) -> Result<Applied, AccessError> {
        self.decide(
            caller,
            Operation::RevokeGrantEarly,
            Action::Revoke(RevokeCause::Early),
            id,
            reason,
        )
        .await
    }

    pub async fn read(&self, caller: &Caller, id: GrantId) -> Result<Grant, AccessError> {
        // Refuse before saying whether the grant exists.
        if caller.roles().is_empty() {
            self.check(caller, Operation::ReadGrant, None)?;
        }
        let grant = self
            .grants
            .store()
            .get_grant(id)
            .await?
            .ok_or(GrantError::NotFound(id))?;
        self.check(caller, Operation::ReadGrant, Some(&grant.request.requester))?;
        Ok(grant)
    }

    pub async fn list_own(&self, caller: &Caller) -> Result<Vec<Grant>, AccessError> {
        self.check(caller, Operation::ListOwnGrants, None)?;
        let filter = GrantFilter {
            requester: caller_id(caller).map(|id| id.to_string()),
            ..GrantFilter::default()
        };
        Ok(self.grants.store().list_grants(&filter, None, PAGE).await?)
    }

    pub async fn list_all(&self, caller: &Caller) -> Result<Vec<Grant>, AccessError> {
        self.check(caller, Operation::ListAllGrants, None)?;
        Ok(self
            .grants
            .store()
            .list_grants(&GrantFilter::default(), None, PAGE)
            .await?)
    }

    pub async fn audit_log(
        &self,
        caller: &Caller,
        after_seq: i64,
    ) -> Result<Vec<AuditEvent>, AccessError> {
        self.check(caller, Operation::ReadAuditLog, None)?;
        Ok(self
            .grants
            .store()
            .audit_events(None, after_seq, PAGE)
            .await?)
    }

    pub async fn verify_audit(&self, caller: &Caller) -> Result<ChainVerification, AccessError> {
        self.check(caller, Operation::VerifyAuditChain, None)?;
        Ok(self.grants.store().verify_audit_chain().await?)
    }
}

fn caller_id(caller: &Caller) -> Option<&PersonId> {
    match caller {
        Caller::Person { id, .. } => Some(id),
        Caller::Anonymous => None,
    }
}
