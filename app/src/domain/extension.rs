//! Extensions as one access: a grant and the grants that extend it form a chain that
//! is shown, and ends, as one continuous access. An extension's time counts from the
//! end of the access it extends when that access is still running at its
//! activation (never earlier), otherwise from its own activation (a new grant).

use super::grant::{Grant, GrantId};
use super::lifecycle::GrantState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One grant of a chain, as the pages show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChainLink {
    pub id: GrantId,
    pub state: GrantState,
    /// The grant this one extends (`None` for the first).
    pub extends: Option<GrantId>,
    pub duration_minutes: i64,
    pub activated_at: Option<DateTime<Utc>>,
    /// When its access ends (or ended): the planned end, or the revocation when that
    /// came first.
    pub ends_at: Option<DateTime<Utc>>,
    pub real_end: Option<DateTime<Utc>>,
}

/// A grant with its extensions (or the grant it extends), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccessChain {
    pub links: Vec<ChainLink>,
    /// The first activation of the chain.
    pub starts_at: Option<DateTime<Utc>>,
    /// The end of the access the chain gives (the latest end of a grant that was
    /// active).
    pub ends_at: Option<DateTime<Utc>>,
    /// The latest real-window end among its grants.
    pub real_end: Option<DateTime<Utc>>,
    /// Whether the access ran without a gap from its start to its end (each extension
    /// activated before the access it extends ended).
    pub continuous: bool,
}

impl AccessChain {
    /// The chain of `grants` (oldest first; one grant alone is no chain: `None`).
    pub fn of(grants: &[Grant]) -> Option<AccessChain> {
        if grants.len() < 2 {
            return None;
        }
        let links: Vec<ChainLink> = grants
            .iter()
            .map(|g| ChainLink {
                id: g.id,
                state: g.state,
                extends: g.request.extends,
                duration_minutes: g.request.duration.minutes(),
                activated_at: g.activated_at,
                ends_at: match (g.ends_at, g.revoked_at) {
                    (Some(e), Some(r)) => Some(e.min(r)),
                    (e, _) => e,
                },
                real_end: g.real_end,
            })
            .collect();
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = links
            .iter()
            .filter_map(|l| Some((l.activated_at?, l.ends_at?)))
            .collect();
        spans.sort();
        // Continuous when each span starts before the access so far has ended.
        let mut reach: Option<DateTime<Utc>> = None;
        let mut continuous = true;
        for (start, end) in &spans {
            if reach.is_some_and(|r| *start > r) {
                continuous = false;
            }
            reach = Some(reach.map_or(*end, |r| r.max(*end)));
        }
        Some(AccessChain {
            starts_at: spans.first().map(|s| s.0),
            ends_at: spans.iter().map(|s| s.1).max(),
            real_end: links.iter().filter_map(|l| l.real_end).max(),
            continuous,
            links,
        })
    }

    /// Whether any grant of the chain is still live (to be decided, to start, active).
    pub fn is_live(&self) -> bool {
        self.links.iter().any(|l| {
            matches!(
                l.state,
                GrantState::Pending
                    | GrantState::Approved
                    | GrantState::Provisioning
                    | GrantState::Active
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields::{
        AccountId, GrantDuration, Justification, PermissionSetName, PersonId,
    };
    use crate::domain::grant::GrantRequest;
    use chrono::{Duration, TimeZone};

    fn grant(n: u128, extends: Option<u128>, active: (i64, i64), state: GrantState) -> Grant {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let request = GrantRequest {
            requester: PersonId::parse("alice").unwrap(),
            account_id: AccountId::parse("111122223333").unwrap(),
            permission_set: PermissionSetName::parse("AdministratorAccess").unwrap(),
            justification: Justification::parse("fix the outage in prod").unwrap(),
            ticket: None,
            duration: GrantDuration::from_minutes(60, None).unwrap(),
            requested_start: None,
            approvals_required: 1,
            extends: extends.map(|e| GrantId(uuid::Uuid::from_u128(e))),
        };
        Grant {
            state,
            activated_at: Some(t0 + Duration::minutes(active.0)),
            ends_at: Some(t0 + Duration::minutes(active.1)),
            real_end: Some(t0 + Duration::minutes(active.1 + 60)),
            ..Grant::requested(
                GrantId(uuid::Uuid::from_u128(n)),
                request,
                t0 + Duration::minutes(active.0 - 1),
            )
        }
    }

    #[test]
    fn one_grant_is_no_chain() {
        assert_eq!(
            AccessChain::of(&[grant(1, None, (0, 60), GrantState::Active)]),
            None
        );
    }

    #[test]
    fn an_extension_inside_the_access_continues_it() {
        let c = AccessChain::of(&[
            grant(1, None, (0, 60), GrantState::Revoked),
            grant(2, Some(1), (30, 120), GrantState::Active),
            grant(3, Some(2), (100, 180), GrantState::Active),
        ])
        .unwrap();
        assert!(c.continuous);
        assert_eq!(c.ends_at, c.links[2].ends_at);
        assert_eq!(c.starts_at, c.links[0].activated_at);
        assert_eq!(c.real_end, c.links[2].real_end);
        assert!(c.is_live());
    }

    #[test]
    fn an_extension_after_the_end_leaves_a_gap() {
        let c = AccessChain::of(&[
            grant(1, None, (0, 60), GrantState::Revoked),
            grant(2, Some(1), (90, 150), GrantState::Revoked),
        ])
        .unwrap();
        assert!(!c.continuous);
        assert!(!c.is_live());
    }

    #[test]
    fn an_early_end_counts_as_the_end() {
        let mut first = grant(1, None, (0, 60), GrantState::Revoked);
        first.revoked_at = first.activated_at.map(|a| a + Duration::minutes(10));
        let c = AccessChain::of(&[first, grant(2, Some(1), (30, 90), GrantState::Active)]).unwrap();
        assert!(!c.continuous, "the extension started after the early end");
    }
}
