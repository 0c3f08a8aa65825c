//! The grant lifecycle (DESIGN §2) as one pure state machine.
//!
//! ```text
//! pending ──approve (quorum)──> approved ──start──> provisioning ──SUCCEEDED──> active
//!   │ deny / cancel / TTL                               │ FAILED → failed
//!   v                                                   v
//! denied | cancelled | expired      active ──end / early revoke──> revoking ──SUCCEEDED──> revoked ──> closed
//! ```
//!
//! [`decide`] is the only place that says whether an actor may take an action from a
//! state. Storage applies the outcome with a conditional update on the `from` state, so
//! two replicas racing on the same grant cannot both move it.

use super::fields::PersonId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every state a grant can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Pending,
    Approved,
    Provisioning,
    Active,
    Revoking,
    Revoked,
    Closed,
    Denied,
    Cancelled,
    Expired,
    Failed,
}

impl GrantState {
    pub const ALL: [GrantState; 11] = [
        GrantState::Pending,
        GrantState::Approved,
        GrantState::Provisioning,
        GrantState::Active,
        GrantState::Revoking,
        GrantState::Revoked,
        GrantState::Closed,
        GrantState::Denied,
        GrantState::Cancelled,
        GrantState::Expired,
        GrantState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Approved => "approved",
            GrantState::Provisioning => "provisioning",
            GrantState::Active => "active",
            GrantState::Revoking => "revoking",
            GrantState::Revoked => "revoked",
            GrantState::Closed => "closed",
            GrantState::Denied => "denied",
            GrantState::Cancelled => "cancelled",
            GrantState::Expired => "expired",
            GrantState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No transition leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            GrantState::Closed
                | GrantState::Denied
                | GrantState::Cancelled
                | GrantState::Expired
                | GrantState::Failed
        )
    }

    /// An AWS assignment may exist for the grant in this state.
    pub fn may_hold_assignment(self) -> bool {
        matches!(
            self,
            GrantState::Provisioning | GrantState::Active | GrantState::Revoking
        )
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person may do in Timebox. A person can hold several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Requester,
    Approver,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Requester, Role::Approver, Role::Auditor, Role::Admin];

    fn bit(self) -> u8 {
        match self {
            Role::Requester => 1,
            Role::Approver => 2,
            Role::Auditor => 4,
            Role::Admin => 8,
        }
    }
}

/// A small set of [`Role`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RoleSet(u8);

impl RoleSet {
    pub const fn empty() -> Self {
        Self(0)
    }

    pub fn of(roles: &[Role]) -> Self {
        roles.iter().fold(Self(0), |s, r| s.with(*r))
    }

    #[must_use]
    pub fn with(self, r: Role) -> Self {
        Self(self.0 | r.bit())
    }

    pub fn contains(self, r: Role) -> bool {
        self.0 & r.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    fn may_decide(self) -> bool {
        self.contains(Role::Approver) || self.contains(Role::Admin)
    }
}

/// Who asks for a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Actor {
    /// A signed-in person with their roles, resolved once per request.
    Person { id: PersonId, roles: RoleSet },
    /// Timebox itself: the reaper and the policy engine (automatic approval).
    System,
}

impl Actor {
    /// The name written into the audit log.
    pub fn audit_name(&self) -> &str {
        match self {
            Actor::Person { id, .. } => id.as_str(),
            Actor::System => "timebox",
        }
    }
}

/// Why an active grant is being revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RevokeCause {
    /// The granted duration, counted from activation, is over.
    EndReached,
    /// Someone ended it early ("I'm done", an approver, an admin).
    Early,
}

/// Every action the lifecycle knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Approve,
    /// Approval by policy (`approval = "auto"` or break-glass), taken by the system.
    AutoApprove,
    Deny,
    Cancel,
    Expire,
    StartProvisioning,
    ProvisionSucceeded,
    ProvisionFailed,
    Revoke(RevokeCause),
    RevokeSucceeded,
    Close,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Approve,
        Action::AutoApprove,
        Action::Deny,
        Action::Cancel,
        Action::Expire,
        Action::StartProvisioning,
        Action::ProvisionSucceeded,
        Action::ProvisionFailed,
        Action::Revoke(RevokeCause::EndReached),
        Action::Revoke(RevokeCause::Early),
        Action::RevokeSucceeded,
        Action::Close,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::AutoApprove => "auto_approve",
            Action::Deny => "deny",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
            Action::StartProvisioning => "start_provisioning",
            Action::ProvisionSucceeded => "provision_succeeded",
            Action::ProvisionFailed => "provision_failed",
            Action::Revoke(RevokeCause::EndReached) => "revoke_end_reached",
            Action::Revoke(RevokeCause::Early) => "revoke_early",
            Action::RevokeSucceeded => "revoke_succeeded",
            Action::Close => "close",
        }
    }

    /// The state this action leaves from and the state it leads to. (`Approve` leads
    /// to `approved` only when the quorum is reached.)
    pub fn edge(self) -> (GrantState, GrantState) {
        use GrantState::*;
        match self {
            Action::Approve | Action::AutoApprove => (Pending, Approved),
            Action::Deny => (Pending, Denied),
            Action::Cancel => (Pending, Cancelled),
            Action::Expire => (Pending, Expired),
            Action::StartProvisioning => (Approved, Provisioning),
            Action::ProvisionSucceeded => (Provisioning, Active),
            Action::ProvisionFailed => (Provisioning, Failed),
            Action::Revoke(_) => (Active, Revoking),
            Action::RevokeSucceeded => (Revoking, Revoked),
            Action::Close => (Revoked, Closed),
        }
    }

    /// States the action may be taken from. Only `Cancel` has two: a request that
    /// was approved but whose start time has not come can still be withdrawn.
    fn source_states(self) -> &'static [GrantState] {
        use GrantState::*;
        match self {
            Action::Cancel => &[Pending, Approved],
            Action::Approve | Action::AutoApprove | Action::Deny | Action::Expire => &[Pending],
            Action::StartProvisioning => &[Approved],
            Action::ProvisionSucceeded | Action::ProvisionFailed => &[Provisioning],
            Action::Revoke(_) => &[Active],
            Action::RevokeSucceeded => &[Revoking],
            Action::Close => &[Revoked],
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`decide`] needs to know about the grant.
#[derive(Debug, Clone, Copy)]
pub struct TransitionCtx<'a> {
    pub state: GrantState,
    pub requester: &'a PersonId,
    /// Distinct approvals the policy requires (at least 1 for `Approve`).
    pub approvals_required: u32,
    /// People who have approved so far (each at most once).
    pub approvers_so_far: &'a [PersonId],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApprovalProgress {
    pub have: u32,
    pub required: u32,
}

/// What an allowed action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The grant moves `from` → `to`.
    Transition { from: GrantState, to: GrantState },
    /// An approval is recorded, the quorum is not reached yet; the grant stays pending.
    ApprovalRecorded(ApprovalProgress),
}

/// Why an action is refused. Each variant is one class of refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Refusal {
    #[error("cannot {action} a grant that is {state}")]
    WrongState { action: String, state: GrantState },
    #[error("{who} may not {action}: {why}")]
    WrongActor {
        action: String,
        who: String,
        why: String,
    },
    #[error("a requester can never approve or deny their own request")]
    SelfDecision,
    #[error("{approver} has already approved this request; a quorum counts distinct people")]
    AlreadyApproved { approver: String },
}

impl Refusal {
    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::WrongState { .. } => "wrong_state",
            Refusal::WrongActor { .. } => "forbidden",
            Refusal::SelfDecision => "self_decision",
            Refusal::AlreadyApproved { .. } => "already_approved",
        }
    }
}

/// Decides whether `actor` may take `action` on a grant described by `ctx`, and what
/// happens if so. Pure: the caller stores the outcome.
pub fn decide(ctx: &TransitionCtx<'_>, action: Action, actor: &Actor) -> Result<Outcome, Refusal> {
    if !action.source_states().contains(&ctx.state) {
        return Err(Refusal::WrongState {
            action: action.as_str().to_owned(),
            state: ctx.state,
        });
    }
    let wrong_actor = |why: &str| Refusal::WrongActor {
        action: action.as_str().to_owned(),
        who: actor.audit_name().to_owned(),
        why: why.to_owned(),
    };
    let to = |to| Outcome::Transition {
        from: ctx.state,
        to,
    };
    let (_, target) = action.edge();
    match (action, actor) {
        (Action::Approve, Actor::Person { id, roles }) => {
            if id == ctx.requester {
                return Err(Refusal::SelfDecision);
            }
            if !roles.may_decide() {
                return Err(wrong_actor("only approvers and admins decide requests"));
            }
            if ctx.approvers_so_far.contains(id) {
                return Err(Refusal::AlreadyApproved {
                    approver: id.to_string(),
                });
            }
            let mut distinct: Vec<&PersonId> = ctx
                .approvers_so_far
                .iter()
                .filter(|p| *p != ctx.requester)
                .collect();
            distinct.sort();
            distinct.dedup();
            let have = u32::try_from(distinct.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let required = ctx.approvals_required.max(1);
            if have >= required {
                Ok(to(target))
            } else {
                Ok(Outcome::ApprovalRecorded(ApprovalProgress {
                    have,
                    required,
                }))
            }
        }
        (Action::Deny, Actor::Person { id, roles }) => {
            if id == ctx.requester {
                return Err(Refusal::SelfDecision);
            }
            if !roles.may_decide() {
                return Err(wrong_actor("only approvers and admins decide requests"));
            }
            Ok(to(target))
        }
        (Action::Cancel, Actor::Person { id, roles }) => {
            if id == ctx.requester || roles.contains(Role::Admin) {
                Ok(to(target))
            } else {
                Err(wrong_actor(
                    "only the requester or an admin can cancel a request",
                ))
            }
        }
        (Action::Revoke(RevokeCause::Early), Actor::Person { id, roles }) => {
            if id == ctx.requester || roles.may_decide() {
                Ok(to(target))
            } else {
                Err(wrong_actor(
                    "only the requester, an approver or an admin can end a grant early",
                ))
            }
        }
        (Action::Revoke(RevokeCause::Early), Actor::System) => Ok(to(target)),
        (
            Action::AutoApprove
            | Action::Expire
            | Action::StartProvisioning
            | Action::ProvisionSucceeded
            | Action::ProvisionFailed
            | Action::Revoke(RevokeCause::EndReached)
            | Action::RevokeSucceeded
            | Action::Close,
            Actor::System,
        ) => Ok(to(target)),
        (_, Actor::System) => Err(wrong_actor("this decision belongs to a person")),
        (_, Actor::Person { .. }) => Err(wrong_actor("only Timebox itself takes this step")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, roles: &[Role]) -> Actor {
        Actor::Person {
            id: PersonId::parse(id).unwrap(),
            roles: RoleSet::of(roles),
        }
    }

    fn ctx<'a>(
        state: GrantState,
        requester: &'a PersonId,
        so_far: &'a [PersonId],
    ) -> TransitionCtx<'a> {
        TransitionCtx {
            state,
            requester,
            approvals_required: 2,
            approvers_so_far: so_far,
        }
    }

    /// Someone allowed to take each action, when it is taken from the right state.
    fn allowed_actor(action: Action) -> Actor {
        match action {
            Action::Approve | Action::Deny => person("bob", &[Role::Approver]),
            Action::Cancel => person("alice", &[Role::Requester]),
            Action::Revoke(RevokeCause::Early) => person("alice", &[Role::Requester]),
            _ => Actor::System,
        }
    }

    #[test]
    fn every_allowed_edge_leads_where_the_diagram_says() {
        let alice = PersonId::parse("alice").unwrap();
        let carol = PersonId::parse("carol").unwrap();
        let so_far = [carol];
        for action in Action::ALL {
            for from in action.source_states() {
                let out = decide(&ctx(*from, &alice, &so_far), action, &allowed_actor(action));
                let expected_to = if matches!(action, Action::Cancel) {
                    GrantState::Cancelled
                } else {
                    action.edge().1
                };
                assert_eq!(
                    out,
                    Ok(Outcome::Transition {
                        from: *from,
                        to: expected_to
                    }),
                    "{action} from {from}"
                );
            }
        }
    }

    /// Refusal class 1: the wrong state, for every (state, action) pair not in the
    /// diagram, whoever asks.
    #[test]
    fn every_other_state_action_pair_is_refused_as_wrong_state() {
        let alice = PersonId::parse("alice").unwrap();
        let mut refused = 0;
        for state in GrantState::ALL {
            for action in Action::ALL {
                if action.source_states().contains(&state) {
                    continue;
                }
                let out = decide(&ctx(state, &alice, &[]), action, &allowed_actor(action));
                assert_eq!(
                    out,
                    Err(Refusal::WrongState {
                        action: action.as_str().into(),
                        state
                    })
                );
                refused += 1;
            }
        }
        // 11 states × 12 actions, minus the 12 allowed pairs (cancel has two).
        assert_eq!(refused, 11 * 12 - 13);
        // Terminal states refuse everything.
        for state in GrantState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for action in Action::ALL {
                assert!(decide(&ctx(state, &alice, &[]), action, &Actor::System).is_err());
            }
        }
    }

    /// Refusal class 2: the wrong actor.
    #[test]
    fn wrong_actors_are_refused() {
        let alice = PersonId::parse("alice").unwrap();
        let c = |s| ctx(s, &alice, &[]);
        let auditor = person("dave", &[Role::Auditor]);
        let requester = person("erin", &[Role::Requester]);
        let admin = person("root", &[Role::Admin]);
        let is_wrong_actor =
            |r: Result<Outcome, Refusal>| matches!(r, Err(Refusal::WrongActor { .. }));

        // Auditors are read-only; other requesters cannot decide.
        for who in [&auditor, &requester] {
            assert!(is_wrong_actor(decide(
                &c(GrantState::Pending),
                Action::Approve,
                who
            )));
            assert!(is_wrong_actor(decide(
                &c(GrantState::Pending),
                Action::Deny,
                who
            )));
            assert!(is_wrong_actor(decide(
                &c(GrantState::Pending),
                Action::Cancel,
                who
            )));
            assert!(is_wrong_actor(decide(
                &c(GrantState::Active),
                Action::Revoke(RevokeCause::Early),
                who
            )));
        }
        // The system's steps are not a person's, not even an admin's.
        for action in [
            Action::AutoApprove,
            Action::Expire,
            Action::StartProvisioning,
            Action::ProvisionSucceeded,
            Action::ProvisionFailed,
            Action::Revoke(RevokeCause::EndReached),
            Action::RevokeSucceeded,
            Action::Close,
        ] {
            let from = action.source_states()[0];
            assert!(
                is_wrong_actor(decide(&c(from,), action, &admin)),
                "{action}"
            );
        }
        // A person's decisions are not the system's.
        for action in [Action::Approve, Action::Deny, Action::Cancel] {
            assert!(is_wrong_actor(decide(
                &c(GrantState::Pending),
                action,
                &Actor::System
            )));
        }
        // Admins may cancel, approvers and admins may end a grant early.
        assert!(decide(&c(GrantState::Pending), Action::Cancel, &admin).is_ok());
        assert!(decide(
            &c(GrantState::Active),
            Action::Revoke(RevokeCause::Early),
            &person("bob", &[Role::Approver])
        )
        .is_ok());
    }

    /// Refusal class 3: self-approval, even for an admin or an approver.
    #[test]
    fn a_requester_never_decides_their_own_request() {
        let alice = PersonId::parse("alice").unwrap();
        let me = person("alice", &[Role::Requester, Role::Approver, Role::Admin]);
        for action in [Action::Approve, Action::Deny] {
            assert_eq!(
                decide(&ctx(GrantState::Pending, &alice, &[]), action, &me),
                Err(Refusal::SelfDecision)
            );
        }
        // But they can cancel it and end it early.
        assert!(decide(&ctx(GrantState::Pending, &alice, &[]), Action::Cancel, &me).is_ok());
    }

    #[test]
    fn quorum_counts_distinct_people() {
        let alice = PersonId::parse("alice").unwrap();
        let bob = PersonId::parse("bob").unwrap();
        let approver = |id| person(id, &[Role::Approver]);

        // First of two approvals is recorded, the grant stays pending.
        assert_eq!(
            decide(
                &ctx(GrantState::Pending, &alice, &[]),
                Action::Approve,
                &approver("bob")
            ),
            Ok(Outcome::ApprovalRecorded(ApprovalProgress {
                have: 1,
                required: 2
            }))
        );
        // The same person again does not count twice.
        let so_far = [bob.clone()];
        assert_eq!(
            decide(
                &ctx(GrantState::Pending, &alice, &so_far),
                Action::Approve,
                &approver("bob")
            ),
            Err(Refusal::AlreadyApproved {
                approver: "bob".into()
            })
        );
        // Duplicated or self rows in storage do not inflate the count.
        let so_far = [bob.clone(), bob.clone(), alice.clone()];
        assert_eq!(
            decide(
                &ctx(GrantState::Pending, &alice, &so_far),
                Action::Approve,
                &approver("carol")
            ),
            Ok(Outcome::Transition {
                from: GrantState::Pending,
                to: GrantState::Approved
            })
        );
        // One required: the first approval decides.
        let one = TransitionCtx {
            approvals_required: 1,
            ..ctx(GrantState::Pending, &alice, &[])
        };
        assert!(matches!(
            decide(&one, Action::Approve, &approver("bob")),
            Ok(Outcome::Transition { .. })
        ));
        // Zero is read as one: an approval action always needs somebody.
        let zero = TransitionCtx {
            approvals_required: 0,
            ..one
        };
        assert!(matches!(
            decide(&zero, Action::Approve, &approver("bob")),
            Ok(Outcome::Transition { .. })
        ));
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in GrantState::ALL {
            assert_eq!(GrantState::parse(s.as_str()), Some(s));
        }
        assert_eq!(GrantState::parse("bogus"), None);
    }
}
