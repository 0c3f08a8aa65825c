//! The one rule over a target (user, account, permission set): from the database's view
//! of the target's grants, which of them hold the assignment, which still need it,
//! whether Timebox made it or it was standing, and whether a delete is pending or in
//! flight. Provisioning asks [`provide`]; revocation asks [`release`]. Both run under
//! the target's lease, so the view cannot change under them except by people moving a
//! grant's state (which only ever adds a revocation the reaper has not acted on yet).

use crate::store::GrantAws;
use app::domain::{Grant, GrantId, GrantState};

/// `grant_aws.shared_with` of a grant that rides on a standing assignment.
pub(super) const STANDING: &str = r#"{"standing_assignment":true}"#;

/// Another grant of the same target, with its AWS bookkeeping.
#[derive(Debug, Clone)]
pub(super) struct Sibling {
    pub grant: Grant,
    pub aws: GrantAws,
}

/// What one sibling means for the assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// It holds the assignment and keeps it (active, or activating on a shared one).
    Holds { standing: bool },
    /// It holds the assignment, is being revoked, and its delete has not been sent:
    /// the delete can still be called off.
    DeletePending { standing: bool },
    /// A create or delete of it is in flight (or may have been sent before a crash):
    /// whether the assignment exists depends on its outcome.
    Settling(&'static str),
    /// It holds nothing.
    Nothing,
}

fn is_standing(w: &GrantAws) -> bool {
    w.shared_with.as_deref() == Some(STANDING)
}

fn hold(s: &Sibling) -> Hold {
    let w = &s.aws;
    let standing = is_standing(w);
    match s.grant.state {
        GrantState::Active => Hold::Holds { standing },
        GrantState::Revoking => {
            if w.delete_started_at.is_some() || w.delete_request_id.is_some() {
                Hold::Settling("its DeleteAccountAssignment is in flight")
            } else if s.grant.activated_at.is_some() {
                Hold::DeletePending { standing }
            } else if w.create_started_at.is_some() {
                Hold::Settling("its CreateAccountAssignment may have been sent")
            } else {
                Hold::Nothing
            }
        }
        GrantState::Provisioning => {
            if w.create_started_at.is_some() || w.create_request_id.is_some() {
                Hold::Settling("its CreateAccountAssignment is in flight")
            } else if w.shared_with.is_some() {
                Hold::Holds { standing }
            } else {
                Hold::Nothing
            }
        }
        _ => Hold::Nothing,
    }
}

/// What a grant being provisioned does about the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Provide {
    /// Other grants hold it: ride on it. `taken_over` are revoking grants whose
    /// delete had not been sent: their revocation keeps the assignment for this one.
    /// `standing` when it is an assignment Timebox did not make.
    Share {
        with: Vec<GrantId>,
        taken_over: Vec<GrantId>,
        standing: bool,
    },
    /// Wait for `grant`'s create or delete to finish; then decide again.
    Wait { grant: GrantId, why: &'static str },
    /// No grant holds it: look in AWS (adopt after a crash, or find it standing), and
    /// create it when absent.
    Create,
}

/// What a grant being revoked does about the assignment (before its delete is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Release {
    /// A standing assignment: Timebox does not remove access it did not give.
    KeepStanding,
    /// Other grants still need it.
    Keep { for_grants: Vec<GrantId> },
    /// Nobody else needs it: delete it.
    Delete,
}

/// The rule for provisioning, over the other grants of the target.
pub(super) fn provide(siblings: &[Sibling]) -> Provide {
    let mut with = Vec::new();
    let mut taken_over = Vec::new();
    let mut standing = false;
    for s in siblings {
        match hold(s) {
            Hold::Settling(why) => {
                return Provide::Wait {
                    grant: s.grant.id,
                    why,
                }
            }
            Hold::Holds { standing: st } => {
                standing |= st;
                with.push(s.grant.id);
            }
            Hold::DeletePending { standing: st } => {
                standing |= st;
                with.push(s.grant.id);
                taken_over.push(s.grant.id);
            }
            Hold::Nothing => {}
        }
    }
    if with.is_empty() {
        Provide::Create
    } else {
        Provide::Share {
            with,
            taken_over,
            standing,
        }
    }
}

/// The rule for revocation: `me` is the revoked grant's bookkeeping.
pub(super) fn release(me: &GrantAws, siblings: &[Sibling]) -> Release {
    if is_standing(me) {
        return Release::KeepStanding;
    }
    // Those who keep it: active grants, and provisioning ones already sharing or
    // creating it (a revoking one is letting it go).
    let for_grants: Vec<GrantId> = siblings
        .iter()
        .filter(|s| s.grant.state != GrantState::Revoking && hold(s) != Hold::Nothing)
        .map(|s| s.grant.id)
        .collect();
    if for_grants.is_empty() {
        Release::Delete
    } else {
        Release::Keep { for_grants }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::{
        AccountId, GrantDuration, GrantRequest, Justification, PermissionSetName, PersonId,
    };
    use chrono::{TimeZone, Utc};

    fn grant(state: GrantState, activated: bool) -> Grant {
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let request = GrantRequest {
            requester: PersonId::parse("alice").unwrap(),
            account_id: AccountId::parse("111111111111").unwrap(),
            permission_set: PermissionSetName::parse("AdministratorAccess").unwrap(),
            justification: Justification::parse_with_min("INC-1", 1).unwrap(),
            ticket: None,
            duration: GrantDuration::from_minutes(60, None).unwrap(),
            requested_start: None,
            approvals_required: 0,
            extends: None,
        };
        Grant {
            state,
            activated_at: activated.then_some(now),
            version: 1,
            ..Grant::requested(GrantId(uuid::Uuid::new_v4()), request, now)
        }
    }

    fn sib(state: GrantState, activated: bool, aws: GrantAws) -> Sibling {
        Sibling {
            grant: grant(state, activated),
            aws,
        }
    }

    fn created() -> GrantAws {
        GrantAws {
            create_started_at: Some(Utc::now()),
            create_request_id: Some("r1".into()),
            ..GrantAws::default()
        }
    }

    #[test]
    fn nobody_holds_it_then_create() {
        assert_eq!(provide(&[]), Provide::Create);
        let failed = sib(GrantState::Failed, false, created());
        let revoked = sib(GrantState::Revoked, true, created());
        assert_eq!(provide(&[failed, revoked]), Provide::Create);
    }

    #[test]
    fn an_active_holder_is_shared_and_its_standing_inherited() {
        let a = sib(GrantState::Active, true, created());
        let Provide::Share {
            with,
            taken_over,
            standing,
        } = provide(std::slice::from_ref(&a))
        else {
            panic!("share")
        };
        assert_eq!(
            (with, taken_over, standing),
            (vec![a.grant.id], vec![], false)
        );
        let s = sib(
            GrantState::Active,
            true,
            GrantAws {
                shared_with: Some(STANDING.into()),
                ..GrantAws::default()
            },
        );
        assert!(matches!(
            provide(&[s]),
            Provide::Share { standing: true, .. }
        ));
    }

    #[test]
    fn a_revoking_holder_whose_delete_is_not_sent_is_taken_over() {
        let r = sib(GrantState::Revoking, true, created());
        assert_eq!(
            provide(std::slice::from_ref(&r)),
            Provide::Share {
                with: vec![r.grant.id],
                taken_over: vec![r.grant.id],
                standing: false
            }
        );
    }

    #[test]
    fn a_delete_or_create_in_flight_is_waited_for() {
        let mut w = created();
        w.delete_started_at = Some(Utc::now());
        let deleting = sib(GrantState::Revoking, true, w.clone());
        assert!(matches!(provide(&[deleting]), Provide::Wait { .. }));
        // Sent before a crash, request id never stored: still in flight.
        w.delete_request_id = None;
        let maybe = sib(GrantState::Revoking, true, w);
        assert!(matches!(provide(&[maybe]), Provide::Wait { .. }));
        let creating = sib(GrantState::Provisioning, false, created());
        assert!(matches!(provide(&[creating]), Provide::Wait { .. }));
        // Even beside an active holder: the delete's outcome decides.
        let a = sib(GrantState::Active, true, created());
        let mut w = created();
        w.delete_request_id = Some("d1".into());
        let deleting = sib(GrantState::Revoking, true, w);
        assert!(matches!(provide(&[a, deleting]), Provide::Wait { .. }));
    }

    #[test]
    fn a_revoked_grant_that_never_held_it_is_ignored() {
        let r = sib(GrantState::Revoking, false, GrantAws::default());
        assert_eq!(provide(&[r]), Provide::Create);
    }

    #[test]
    fn release_keeps_for_those_who_need_it() {
        let me = created();
        assert_eq!(release(&me, &[]), Release::Delete);
        let a = sib(GrantState::Active, true, GrantAws::default());
        assert_eq!(
            release(&me, std::slice::from_ref(&a)),
            Release::Keep {
                for_grants: vec![a.grant.id]
            }
        );
        let creating = sib(GrantState::Provisioning, false, created());
        assert!(matches!(release(&me, &[creating]), Release::Keep { .. }));
        let sharing = sib(
            GrantState::Provisioning,
            false,
            GrantAws {
                shared_with: Some("[]".into()),
                ..GrantAws::default()
            },
        );
        assert!(matches!(release(&me, &[sharing]), Release::Keep { .. }));
        // A provisioning grant that has not decided yet will decide after this one.
        let undecided = sib(GrantState::Provisioning, false, GrantAws::default());
        assert_eq!(release(&me, &[undecided]), Release::Delete);
        // Another revoking grant does not need it.
        let other = sib(GrantState::Revoking, true, created());
        assert_eq!(release(&me, &[other]), Release::Delete);
        let standing = GrantAws {
            shared_with: Some(STANDING.into()),
            ..GrantAws::default()
        };
        assert_eq!(release(&standing, &[]), Release::KeepStanding);
    }
}
