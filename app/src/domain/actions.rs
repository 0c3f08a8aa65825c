//! What a viewer may do with one grant now, and why not: the one rule the grant page
//! shows and the server enforces. An action is allowed when the caller's roles allow
//! it on this grant ([`authorize`]), the grant's deciding policy names them where it
//! must (decisions, an approver's review), and the lifecycle allows it from the
//! grant's state ([`decide`]); the first "no" is the refusal. Only then, where
//! configured, is a recent MFA sign-in asked for ([`Operation::needs_recent_mfa`]):
//! the form is shown to a person who must step up, and acting tells them to.

use super::access::{authorize, authorize_role, AccessPolicy, Caller, Denied, Operation};
use super::fields::PersonId;
use super::grant::Grant;
use super::lifecycle::{
    decide, Action, Actor, GrantState, Refusal, RevokeCause, Role, TransitionCtx,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Something a person does to one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantAction {
    Approve,
    Deny,
    /// Withdraw a request before it starts.
    Cancel,
    /// End an active grant now: "I'm done" on one's own, a revoke on someone else's.
    EndEarly,
    /// Ask for more time: a new request for the same access that overlaps.
    Extend,
    /// Record the review of a break-glass use.
    Review,
}

impl GrantAction {
    pub const ALL: [GrantAction; 6] = [
        GrantAction::Approve,
        GrantAction::Deny,
        GrantAction::Cancel,
        GrantAction::EndEarly,
        GrantAction::Extend,
        GrantAction::Review,
    ];

    /// The operation that authorizes it.
    pub fn operation(self) -> Operation {
        match self {
            GrantAction::Approve => Operation::ApproveGrant,
            GrantAction::Deny => Operation::DenyGrant,
            GrantAction::Cancel => Operation::CancelGrant,
            GrantAction::EndEarly => Operation::RevokeGrantEarly,
            GrantAction::Extend => Operation::RequestGrant,
            GrantAction::Review => Operation::ReviewGrant,
        }
    }

    /// The lifecycle step it takes, for those that move the grant.
    pub fn lifecycle(self) -> Option<Action> {
        match self {
            GrantAction::Approve => Some(Action::Approve),
            GrantAction::Deny => Some(Action::Deny),
            GrantAction::Cancel => Some(Action::Cancel),
            GrantAction::EndEarly => Some(Action::Revoke(RevokeCause::Early)),
            GrantAction::Extend | GrantAction::Review => None,
        }
    }
}

impl fmt::Display for GrantAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrantAction::Approve => "approve",
            GrantAction::Deny => "deny",
            GrantAction::Cancel => "cancel",
            GrantAction::EndEarly => "end early",
            GrantAction::Extend => "extend",
            GrantAction::Review => "review",
        })
    }
}

/// One decision recorded on the grant so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DecisionSoFar {
    pub by: PersonId,
    /// `true` for an approval, `false` for a denial.
    pub approved: bool,
}

/// What the server knows beside the grant itself.
#[derive(Debug, Clone, Copy)]
pub struct ActionCtx<'a> {
    pub policy: &'a AccessPolicy,
    /// The decisions recorded so far.
    pub decisions: &'a [DecisionSoFar],
    /// Whether the grant's deciding policy names the caller as an approver (by
    /// `user:` or `group:`).
    pub named_by_policy: bool,
    /// The approvers that policy names, for the refusal's message (empty when the
    /// policy is no longer in the file).
    pub approvers: &'a [String],
}

/// Why an action is refused. `Display` is the message shown to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ActionRefusal {
    /// The caller may not do this to this grant.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The grant's state (or the quorum) does not allow it.
    #[error(transparent)]
    Lifecycle(#[from] Refusal),
    #[error(
        "this grant owes no review: it is not a break-glass grant, or it was reviewed already"
    )]
    NoReviewOwed,
}

impl ActionRefusal {
    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            ActionRefusal::Denied(d) => d.code(),
            ActionRefusal::Lifecycle(r) => r.code(),
            ActionRefusal::NoReviewOwed => "no_review_owed",
        }
    }
}

/// What a viewer may do with a grant now: the buttons of the grant page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GrantActions {
    /// Approve or deny (approving may still ask for an MFA sign-in).
    pub can_decide: bool,
    pub can_cancel: bool,
    /// "I'm done" on one's own active grant.
    pub can_finish: bool,
    pub can_extend: bool,
    /// End someone else's active grant now.
    pub can_revoke: bool,
    /// Record the review a break-glass grant owes.
    pub can_review: bool,
}

impl GrantActions {
    /// Each action [`check`]ed for `caller` on `grant`.
    pub fn for_viewer(caller: &Caller, grant: &Grant, ctx: &ActionCtx<'_>) -> Self {
        // A form whose action needs a step-up to MFA is shown: acting then says so,
        // with the link to sign in again.
        let may = |action| {
            matches!(
                check(caller, grant, ctx, action),
                Ok(()) | Err(ActionRefusal::Denied(Denied::MfaRequired))
            )
        };
        let mine = is_requester(caller, grant);
        Self {
            can_decide: may(GrantAction::Deny),
            can_cancel: may(GrantAction::Cancel),
            can_finish: mine && may(GrantAction::EndEarly),
            can_extend: may(GrantAction::Extend),
            can_revoke: !mine && may(GrantAction::EndEarly),
            can_review: may(GrantAction::Review),
        }
    }
}

/// Whether `caller` is the grant's requester.
pub fn is_requester(caller: &Caller, grant: &Grant) -> bool {
    matches!(caller, Caller::Person { id, .. } if *id == grant.request.requester)
}

/// Whether `caller` may take `action` on `grant` now, and if not, why. A missing MFA
/// step-up ([`Denied::MfaRequired`]) is the answer only when nothing else refuses.
pub fn check(
    caller: &Caller,
    grant: &Grant,
    ctx: &ActionCtx<'_>,
    action: GrantAction,
) -> Result<(), ActionRefusal> {
    allowed_but_for_mfa(caller, grant, ctx, action)?;
    authorize(
        ctx.policy,
        caller,
        action.operation(),
        Some(&grant.request.requester),
    )?;
    Ok(())
}

/// [`check`] without its last step, the MFA sign-in.
fn allowed_but_for_mfa(
    caller: &Caller,
    grant: &Grant,
    ctx: &ActionCtx<'_>,
    action: GrantAction,
) -> Result<(), ActionRefusal> {
    let Caller::Person { id, roles, .. } = caller else {
        return Err(Denied::SignInRequired.into());
    };
    let requester = &grant.request.requester;
    let not_named = || Denied::NotAnApprover {
        policy: grant.policy.clone(),
        approvers: ctx.approvers.to_vec(),
    };
    match action {
        GrantAction::Extend => {
            if id != requester {
                return Err(Denied::Forbidden {
                    why: "only the grant's requester can ask to extend it".into(),
                }
                .into());
            }
            if !matches!(grant.state, GrantState::Active | GrantState::Approved) {
                return Err(Refusal::WrongState {
                    action: "extend".into(),
                    state: grant.state,
                }
                .into());
            }
            authorize_role(caller, Operation::RequestGrant, None)?;
            Ok(())
        }
        GrantAction::Review => {
            authorize_role(caller, Operation::ReviewGrant, Some(requester))?;
            let answers_for_all = roles.contains(Role::Auditor) || roles.contains(Role::Admin);
            if !answers_for_all && !ctx.named_by_policy {
                return Err(not_named().into());
            }
            if !grant.awaits_review() {
                return Err(ActionRefusal::NoReviewOwed);
            }
            Ok(())
        }
        GrantAction::Approve | GrantAction::Deny | GrantAction::Cancel | GrantAction::EndEarly => {
            authorize_role(caller, action.operation(), Some(requester))?;
            let decision = matches!(action, GrantAction::Approve | GrantAction::Deny);
            if decision && !ctx.named_by_policy {
                return Err(not_named().into());
            }
            let approved: Vec<PersonId> = ctx
                .decisions
                .iter()
                .filter(|d| d.approved)
                .map(|d| d.by.clone())
                .collect();
            if let Some(step) = action.lifecycle() {
                let actor = Actor::Person {
                    id: id.clone(),
                    roles: *roles,
                };
                decide(
                    &TransitionCtx {
                        state: grant.state,
                        requester,
                        approvals_required: grant.request.approvals_required,
                        approvers_so_far: &approved,
                    },
                    step,
                    &actor,
                )?;
            }
            // One decision per person: a denial after one's own approval is refused
            // as the store would refuse it.
            if decision && ctx.decisions.iter().any(|d| d.by == *id) {
                return Err(Refusal::AlreadyApproved {
                    approver: id.to_string(),
                }
                .into());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::grant::tests::sample;
    use crate::domain::RoleSet;

    fn person(id: &str, roles: &[Role], mfa: bool) -> Caller {
        Caller::Person {
            id: PersonId::parse(id).expect("id"),
            name: id.to_owned(),
            roles: RoleSet::of(roles),
            mfa,
            groups: Vec::new(),
        }
    }

    fn grant(state: GrantState, break_glass: bool) -> Grant {
        Grant {
            break_glass,
            review_required: break_glass,
            ..sample(state)
        }
    }

    /// The callers of the table. The requester holds every role: owning the grant
    /// must still stop them from deciding or reviewing it.
    fn who(name: &str) -> Caller {
        match name {
            "anonymous" => Caller::Anonymous,
            "requester" => person("rita", &[Role::Requester], true),
            "approver" => person("arno", &[Role::Approver], true),
            "auditor" => person("audrey", &[Role::Auditor], true),
            "admin" => person("ada", &[Role::Admin], true),
            "owner" => person(
                "owen",
                &[Role::Requester, Role::Approver, Role::Auditor, Role::Admin],
                true,
            ),
            other => panic!("no caller {other}"),
        }
    }

    const WHO: [&str; 6] = [
        "anonymous",
        "requester",
        "approver",
        "auditor",
        "admin",
        "owner",
    ];

    /// Which buttons each caller sees on a grant of owen's in each state, named by
    /// the policy (`named`) or not: d decide, c cancel, f finish, x extend, r
    /// revoke, v review. Columns as [`WHO`].
    #[rustfmt::skip]
    const TABLE: &[(GrantState, bool, bool, [&str; 6])] = &[
        (GrantState::Pending, false, true, ["", "", "d", "", "dc", "c"]),
        (GrantState::Pending, false, false, ["", "", "", "", "c", "c"]),
        (GrantState::Approved, false, true, ["", "", "", "", "c", "cx"]),
        (GrantState::Active, false, true, ["", "", "r", "", "r", "fx"]),
        (GrantState::Active, true, true, ["", "", "rv", "v", "rv", "fx"]),
        (GrantState::Active, true, false, ["", "", "r", "v", "rv", "fx"]),
        (GrantState::Revoked, true, false, ["", "", "", "v", "v", ""]),
        (GrantState::Denied, false, true, ["", "", "", "", "", ""]),
    ];

    fn buttons(a: GrantActions) -> String {
        [
            (a.can_decide, 'd'),
            (a.can_cancel, 'c'),
            (a.can_finish, 'f'),
            (a.can_extend, 'x'),
            (a.can_revoke, 'r'),
            (a.can_review, 'v'),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
        .collect()
    }

    #[test]
    fn every_caller_sees_the_buttons_the_rule_allows() {
        let policy = AccessPolicy::default();
        let approvers = vec!["user:arno".to_owned()];
        for (state, break_glass, named, row) in TABLE {
            let g = grant(*state, *break_glass);
            let ctx = ActionCtx {
                policy: &policy,
                decisions: &[],
                named_by_policy: *named,
                approvers: &approvers,
            };
            for (name, expected) in WHO.iter().zip(row) {
                let got = buttons(GrantActions::for_viewer(&who(name), &g, &ctx));
                assert_eq!(
                    got, *expected,
                    "{name} on a {state} grant (break-glass {break_glass}, named {named})"
                );
            }
        }
    }

    #[test]
    fn each_button_matches_the_refusal_the_server_gives() {
        let policy = AccessPolicy::default();
        let g = grant(GrantState::Pending, false);
        let ctx = ActionCtx {
            policy: &policy,
            decisions: &[],
            named_by_policy: false,
            approvers: &[],
        };
        // The owner may never decide their own request, whatever their roles.
        assert_eq!(
            check(&who("owner"), &g, &ctx, GrantAction::Approve),
            Err(ActionRefusal::Denied(Denied::OwnRequest))
        );
        // An approver the policy does not name is told who is.
        let named = vec!["group:leads".to_owned()];
        let ctx = ActionCtx {
            approvers: &named,
            ..ctx
        };
        let refusal = check(&who("approver"), &g, &ctx, GrantAction::Deny).expect_err("not named");
        assert_eq!(refusal.code(), "not_an_approver");
        assert!(refusal.to_string().contains("group:leads"), "{refusal}");
        // The lifecycle's refusal for the wrong state.
        let active = grant(GrantState::Active, false);
        assert_eq!(
            check(&who("admin"), &active, &ctx, GrantAction::Cancel)
                .expect_err("active")
                .code(),
            "wrong_state"
        );
        assert_eq!(
            check(&Caller::Anonymous, &g, &ctx, GrantAction::Cancel),
            Err(ActionRefusal::Denied(Denied::SignInRequired))
        );
        assert_eq!(
            check(&who("requester"), &active, &ctx, GrantAction::Extend)
                .expect_err("not hers")
                .code(),
            "forbidden"
        );
        assert_eq!(
            check(&who("owner"), &g, &ctx, GrantAction::Extend)
                .expect_err("pending")
                .code(),
            "wrong_state"
        );
        assert_eq!(
            check(&who("auditor"), &active, &ctx, GrantAction::Review),
            Err(ActionRefusal::NoReviewOwed)
        );
    }

    #[test]
    fn a_decision_is_taken_once_and_approving_may_need_mfa() {
        let policy = AccessPolicy {
            approvers_need_mfa: true,
        };
        let g = grant(GrantState::Pending, false);
        let arno = PersonId::parse("arno").expect("id");
        let decided = [DecisionSoFar {
            by: arno,
            approved: true,
        }];
        let ctx = ActionCtx {
            policy: &policy,
            decisions: &decided,
            named_by_policy: true,
            approvers: &[],
        };
        for action in [GrantAction::Approve, GrantAction::Deny] {
            assert_eq!(
                check(&who("approver"), &g, &ctx, action)
                    .expect_err("decided")
                    .code(),
                "already_approved",
                "{action}"
            );
        }
        assert!(!GrantActions::for_viewer(&who("approver"), &g, &ctx).can_decide);
        let fresh = ActionCtx {
            decisions: &[],
            ..ctx
        };
        let without_mfa = person("arno", &[Role::Approver], false);
        assert_eq!(
            check(&without_mfa, &g, &fresh, GrantAction::Approve),
            Err(ActionRefusal::Denied(Denied::MfaRequired))
        );
        // The form is still shown: approving then says MFA is needed.
        assert!(GrantActions::for_viewer(&without_mfa, &g, &fresh).can_decide);
        // Denying needs it too, and so does ending someone else's grant; one's own
        // "I'm done" does not.
        assert_eq!(
            check(&without_mfa, &g, &fresh, GrantAction::Deny),
            Err(ActionRefusal::Denied(Denied::MfaRequired))
        );
        let active = grant(GrantState::Active, false);
        assert_eq!(
            check(&without_mfa, &active, &fresh, GrantAction::EndEarly),
            Err(ActionRefusal::Denied(Denied::MfaRequired))
        );
        assert!(GrantActions::for_viewer(&without_mfa, &active, &fresh).can_revoke);
        let owner = person(g.request.requester.as_str(), &[Role::Requester], false);
        assert_eq!(
            check(&owner, &active, &fresh, GrantAction::EndEarly),
            Ok(())
        );
        // Another refusal comes first: no MFA prompt for a decision already taken.
        assert_eq!(
            check(&without_mfa, &g, &ctx, GrantAction::Deny)
                .expect_err("decided")
                .code(),
            "already_approved"
        );
        assert!(!GrantActions::for_viewer(&without_mfa, &g, &ctx).can_decide);
    }

    #[test]
    fn every_action_has_an_operation() {
        for action in GrantAction::ALL {
            assert!(
                action.operation() == Operation::RequestGrant
                    || action.operation().concerns_a_grant(),
                "{action}"
            );
        }
    }
}
