//! The grant service: the one place that turns a person's or the reaper's intent into
//! a lifecycle decision ([`app::domain::decide`]) and a stored change. The role
//! handles ([`super::Access`]) call it after checking the caller; the reaper and the
//! evidence collector call it as [`Actor::System`]. It never talks HTTP.

use crate::clock::Clock;
use crate::policy::{PolicyDecisionError, PolicyService};
use crate::store::{
    Approval, Change, Decision, GrantPatch, NewAuditEvent, PolicyStamp, Review, Store, StoreError,
};
use app::domain::{
    decide, Action, Actor, AuditAction, Grant, GrantId, GrantRequest, GrantState, Outcome,
    PersonId, PolicyRefusal, Refusal,
};
use std::sync::Arc;
use uuid::Uuid;

/// What was looked up when a request was made, recorded with it.
#[derive(Debug, Clone, Default)]
pub struct FoundAtRequest {
    /// The requester's Identity Center user (`None`: Identity Center could not be
    /// asked; the reaper resolves it at provisioning).
    pub identity: Option<app::domain::IdentityUser>,
    /// The other paths to the same access (`None`: not looked up).
    pub paths: Option<Vec<app::domain::OtherPath>>,
}

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
    /// The policy does not allow the request as asked.
    #[error(transparent)]
    Policy(#[from] PolicyRefusal),
    #[error("grant {0} owes no review: it is not a break-glass grant, or it was reviewed already")]
    NoReviewOwed(GrantId),
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => GrantError::NotFound(id),
            StoreError::NoReviewOwed(id) => GrantError::NoReviewOwed(id),
            other => GrantError::Store(other),
        }
    }
}

impl From<PolicyDecisionError> for GrantError {
    fn from(e: PolicyDecisionError) -> Self {
        match e {
            PolicyDecisionError::Refused(r) => GrantError::Policy(r),
            PolicyDecisionError::Store(s) => s.into(),
        }
    }
}

/// What an action did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub grant: Grant,
    pub outcome: Outcome,
}

/// A grant changed (sent after the change is stored). The dashboard's live updates
/// (`/api/v1/events`) listen to these.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct GrantChange {
    pub id: GrantId,
    pub state: GrantState,
    pub version: i64,
    #[serde(skip)]
    pub requester: PersonId,
}

impl GrantChange {
    fn of(g: &Grant) -> Self {
        Self {
            id: g.id,
            state: g.state,
            version: g.version,
            requester: g.request.requester.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrantService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: PolicyService,
    changes: tokio::sync::broadcast::Sender<GrantChange>,
}

impl GrantService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, policy: PolicyService) -> Self {
        // Listeners that fall this far behind miss changes and are told to reload.
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        Self {
            store,
            clock,
            policy,
            changes,
        }
    }

    /// Changes made through this service (this process only; other replicas'
    /// changes reach listeners through [`GrantService::announce`]).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<GrantChange> {
        self.changes.subscribe()
    }

    /// Tells listeners about a change (no listener is not an error).
    pub fn announce(&self, grant: &Grant) {
        let _ = self.changes.send(GrantChange::of(grant));
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The injected clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The policy in force (requests are held to it).
    pub fn policy(&self) -> &PolicyService {
        &self.policy
    }

    /// Records a new request as the policy decides it ([`GrantService::submit`]
    /// without break-glass).
    pub async fn request(
        &self,
        request: GrantRequest,
        groups: &[String],
    ) -> Result<Grant, GrantError> {
        self.submit(request, groups, false).await
    }

    /// Records a new request as the policy decides it: the deciding policy (see
    /// docs/policy.md) sets `approvals_required` (any value given is replaced), the
    /// pending request's expiry and the per-person cap; a request it does not allow is
    /// refused with [`GrantError::Policy`] naming the field. A policy with automatic
    /// approval approves the request in the same call (`auto_approve` by the system).
    /// `groups` are the requester's groups (from their sign-in).
    ///
    /// With `break_glass`, only break-glass policies apply; the grant is approved at
    /// once, starts now (any requested start is dropped), and owes a review
    /// afterwards.
    pub async fn submit(
        &self,
        request: GrantRequest,
        groups: &[String],
        break_glass: bool,
    ) -> Result<Grant, GrantError> {
        self.submit_with(request, groups, break_glass, FoundAtRequest::default())
            .await
    }

    /// [`GrantService::submit`], recording what was `found` when the request was made:
    /// the requester's Identity Center user, and the other ways they already reach
    /// the same access (shown to approvers); both are kept in the request's audit
    /// event.
    pub async fn submit_with(
        &self,
        mut request: GrantRequest,
        groups: &[String],
        break_glass: bool,
        found: FoundAtRequest,
    ) -> Result<Grant, GrantError> {
        let decided = self.policy.decide(&request, groups, break_glass).await?;
        let rule = &decided.policy.rule;
        request.approvals_required = rule.approval.approvals_required();
        if break_glass {
            request.requested_start = None;
        }
        let now = self.clock.now();
        let id = GrantId(Uuid::new_v4());
        let stamp = PolicyStamp {
            policy: rule.name.clone(),
            break_glass,
            expires_at: Some(now + chrono::Duration::minutes(i64::from(rule.pending_ttl_minutes))),
            review_required: break_glass,
            max_active_per_user: rule.max_active_per_user,
            paths: found.paths,
            identity: found.identity,
        };
        let event = NewAuditEvent {
            grant_id: Some(id),
            at: now,
            actor: request.requester.to_string(),
            action: AuditAction::Request,
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
                "policy": rule.name,
                "policy_file_sha256": decided.file_sha256,
                "break_glass": break_glass,
                "expires_at": stamp.expires_at,
                "extends": request.extends,
                "other_paths": stamp.paths,
                "identity": stamp.identity,
            }),
        };
        let grant = match self
            .store
            .create_policy_grant(id, &request, &stamp, now, event, {
                let mut n = crate::notify::for_new_request(id, request.approvals_required, now);
                if break_glass {
                    n.push(
                        crate::notify::NotificationEvent::BreakGlassUsed.into_notification(id, now),
                    );
                }
                n
            })
            .await
        {
            Ok(g) => g,
            Err(StoreError::CapReached { active }) => {
                return Err(PolicyRefusal::CapReached {
                    policy: rule.name.clone(),
                    cap: rule.max_active_per_user.unwrap_or_default(),
                    active: u32::try_from(active).unwrap_or(u32::MAX),
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        self.announce(&grant);
        if request.approvals_required > 0 {
            return Ok(grant);
        }
        let why = if break_glass {
            format!("break-glass under policy {:?}", rule.name)
        } else {
            format!("policy {:?} approves automatically", rule.name)
        };
        match self
            .act(
                id,
                Action::AutoApprove,
                &Actor::System,
                Some(why),
                GrantPatch::default(),
                serde_json::json!({"policy": rule.name, "break_glass": break_glass}),
            )
            .await
        {
            Ok(applied) => Ok(applied.grant),
            Err(e) => {
                // Recorded, not lost: the reaper approves pending grants that need no
                // approval at its next pass.
                tracing::warn!(grant = %id, error = %e, "automatic approval deferred to the reaper");
                Ok(grant)
            }
        }
    }

    /// Records `reviewer`'s review of a break-glass grant (once; never by its
    /// requester). Authorization is the caller's (the role handles of [`super::Access`]).
    pub async fn review(
        &self,
        id: GrantId,
        reviewer: &PersonId,
        comment: Option<String>,
    ) -> Result<Grant, GrantError> {
        let grant = self
            .store
            .get_grant(id)
            .await?
            .ok_or(GrantError::NotFound(id))?;
        if &grant.request.requester == reviewer {
            return Err(GrantError::Refused(Refusal::SelfDecision));
        }
        if !grant.awaits_review() {
            return Err(GrantError::NoReviewOwed(id));
        }
        let now = self.clock.now();
        let event = NewAuditEvent {
            grant_id: Some(id),
            at: now,
            actor: reviewer.to_string(),
            action: AuditAction::Review,
            from_state: None,
            to_state: None,
            reason: comment.clone(),
            details: serde_json::json!({"policy": grant.policy, "break_glass": grant.break_glass}),
        };
        Ok(self
            .store
            .record_review(
                id,
                &Review {
                    reviewer: reviewer.to_string(),
                    at: now,
                    comment,
                },
                event,
            )
            .await
            .inspect(|g| self.announce(g))?)
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
                    action: AuditAction::Step(action),
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
                Ok(grant) => {
                    self.announce(&grant);
                    return Ok(Applied { grant, outcome });
                }
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
