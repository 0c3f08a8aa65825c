//! The grant service: the one place that turns a person's or the reaper's intent into
//! a lifecycle decision ([`app::domain::decide`]) and a stored change. Server
//! functions, API handlers and the reaper call it; it never talks HTTP.

use crate::clock::Clock;
use crate::store::{Approval, Change, Decision, GrantPatch, NewAuditEvent, Store, StoreError};
use app::domain::{
    decide, Action, Actor, Grant, GrantId, GrantRequest, GrantState, Outcome, PersonId, Refusal,
};
use std::sync::Arc;
use uuid::Uuid;

/// How many times a change is re-read and re-decided after losing a race.
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("no grant {0}")]
    NotFound(GrantId),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the grant kept changing while this was tried; try again")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => GrantError::NotFound(id),
            other => GrantError::Store(other),
        }
    }
}

/// What an action did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub grant: Grant,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct GrantService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl GrantService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Records a new pending request.
    pub async fn request(&self, request: GrantRequest) -> Result<Grant, GrantError> {
        let now = self.clock.now();
        let id = GrantId(Uuid::new_v4());
        let event = NewAuditEvent {
            grant_id: Some(id),
            at: now,
            actor: request.requester.to_string(),
            action: "request".into(),
            from_state: None,
            to_state: Some(GrantState::Pending),
            reason: Some(request.justification.to_string()),
            details: serde_json::json!({
                "account_id": request.account_id,
                "permission_set": request.permission_set,
                "duration_minutes": request.duration.minutes(),
                "ticket": request.ticket,
                "requested_start": request.requested_start,
                "approvals_required": request.approvals_required,
            }),
        };
        let notifications = crate::notify::for_new_request(id, request.approvals_required, now);
        Ok(self
            .store
            .create_grant(id, &request, now, event, notifications)
            .await?)
    }

    /// Takes `action` on grant `id` as `actor`, re-reading and re-deciding if another
    /// writer changed the grant in between.
    pub async fn act(
        &self,
        id: GrantId,
        action: Action,
        actor: &Actor,
        reason: Option<String>,
        patch: GrantPatch,
        details: serde_json::Value,
    ) -> Result<Applied, GrantError> {
        for _ in 0..CONFLICT_RETRIES {
            let grant = self
                .store
                .get_grant(id)
                .await?
                .ok_or(GrantError::NotFound(id))?;
            let approvals = self.store.approvals(id).await?;
            let approvers: Vec<PersonId> = approvals
                .iter()
                .filter(|a| a.decision == Decision::Approve)
                .filter_map(|a| PersonId::parse(&a.approver).ok())
                .collect();
            let outcome = decide(
                &app::domain::TransitionCtx {
                    state: grant.state,
                    requester: &grant.request.requester,
                    approvals_required: grant.request.approvals_required,
                    approvers_so_far: &approvers,
                },
                action,
                actor,
            )?;
            let now = self.clock.now();
            let to = match outcome {
                Outcome::Transition { to, .. } => to,
                Outcome::ApprovalRecorded(_) => grant.state,
            };
            let decision = match (action, actor) {
                (Action::Approve | Action::Deny, Actor::Person { id: who, .. }) => Some(Approval {
                    grant_id: id,
                    approver: who.to_string(),
                    decision: if action == Action::Approve {
                        Decision::Approve
                    } else {
                        Decision::Deny
                    },
                    comment: reason.clone(),
                    decided_at: now,
                }),
                _ => None,
            };
            let mut details = details.clone();
            if let (Outcome::ApprovalRecorded(p), Some(obj)) = (outcome, details.as_object_mut()) {
                obj.insert(
                    "approvals".into(),
                    serde_json::json!({"have": p.have, "required": p.required}),
                );
            }
            let notifications = crate::notify::for_transition(
                &grant,
                action,
                &outcome,
                to,
                actor,
                reason.as_deref(),
                now,
            );
            let change = Change {
                notifications,
                grant_id: id,
                expected_version: grant.version,
                from: grant.state,
                to,
                at: now,
                patch: patch.clone(),
                decision,
                event: NewAuditEvent {
                    grant_id: Some(id),
                    at: now,
                    actor: actor.audit_name().to_owned(),
                    action: action.as_str().to_owned(),
                    from_state: Some(grant.state),
                    to_state: Some(to),
                    reason: reason.clone(),
                    details: if details.is_null() {
                        serde_json::json!({})
                    } else {
                        details
                    },
                },
            };
            match self.store.apply(change).await {
                Ok(grant) => return Ok(Applied { grant, outcome }),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::DuplicateDecision(who)) => {
                    return Err(GrantError::Refused(Refusal::AlreadyApproved {
                        approver: who,
                    }))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(GrantError::Busy)
    }
}
