//! The grant service as people reach it: every method takes the resolved
//! [`Caller`], asks [`authorize`] first, and only then calls the service or the store.
//! Server functions and API routes call these methods, never the service directly; the
//! reaper, acting as [`Actor::System`](app::domain::Actor), uses the service itself.

use crate::grants::{Applied, GrantError, GrantService};
use crate::store::{AuditEvent, ChainVerification, GrantFilter, GrantPatch};
use app::domain::{
    authorize, AccessPolicy, Action, Caller, Denied, Grant, GrantId, GrantRequest, Operation,
    PersonId, RevokeCause,
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

    async fn requester_of(&self, id: GrantId) -> Result<PersonId, AccessError> {
        let grant = self
            .grants
            .store()
            .get_grant(id)
            .await?
            .ok_or(GrantError::NotFound(id))?;
        Ok(grant.request.requester)
    }

    /// Asks for a grant, for the caller themself.
    pub async fn request(
        &self,
        caller: &Caller,
        request: GrantRequest,
    ) -> Result<Grant, AccessError> {
        self.check(caller, Operation::RequestGrant, None)?;
        if Some(&request.requester) != caller_id(caller) {
            return Err(Denied::Forbidden {
                why: "you can only ask for access for yourself".into(),
            }
            .into());
        }
        Ok(self.grants.request(request).await?)
    }

    async fn decide(
        &self,
        caller: &Caller,
        op: Operation,
        action: Action,
        id: GrantId,
        reason: Option<String>,
    ) -> Result<Applied, AccessError> {
        let requester = self.requester_of(id).await?;
        self.check(caller, op, Some(&requester))?;
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
