//! The three windows of a grant (DESIGN §1), computed by one pure function shared by
//! the server (stored at activation and at revocation) and the browser (the request
//! form's preview).
//!
//! - granted: activation → revocation (deletion SUCCEEDED), or the planned end while
//!   the grant is still active;
//! - real (worst case): activation → revocation + portal session + permission-set
//!   session, because a portal session opened just before the end keeps listing the
//!   permission set, and a click then yields a full permission-set session;
//! - observed: first → last activity seen in CloudTrail.
//!
//! Evidence may narrow the real window: when the last credential issuance is known and
//! the evidence covers the whole tail, no session can outlive
//! `max(revoked_at, last_issuance + permission_set_session)`.

use super::session_duration::{format_human, PortalSession, SessionDuration};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A closed interval of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn contains_instant(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t <= self.end
    }

    pub fn length(&self) -> chrono::Duration {
        self.end - self.start
    }
}

/// What CloudTrail showed for the grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Observed {
    pub first_activity: DateTime<Utc>,
    pub last_activity: DateTime<Utc>,
    /// The last `GetRoleCredentials`/federation event seen, if any.
    pub last_credential_issuance: Option<DateTime<Utc>>,
    /// True once evidence was collected after the real window closed (plus delivery
    /// delay): only then can the absence of a later issuance narrow the window.
    pub covers_tail: bool,
}

/// Inputs to [`Windows::compute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WindowInputs {
    /// When the assignment's creation SUCCEEDED (or, in a preview, the planned start).
    pub activated_at: DateTime<Utc>,
    /// When the deletion SUCCEEDED, or `None` while the grant is still active.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The planned end (activation + granted duration), used while `revoked_at` is unknown.
    pub planned_end: DateTime<Utc>,
    pub portal_session: PortalSession,
    pub permission_set_session: SessionDuration,
    pub observed: Option<Observed>,
    /// When the deny that ends the grant's sessions took effect (the policy update
    /// carrying it succeeded), if it did: the real window then ends there instead
    /// of at the worst case.
    #[serde(default)]
    pub sessions_closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the grant is recorded as revoked before it was activated")]
    RevokedBeforeActivated,
    #[error("the planned end is before the activation")]
    EndsBeforeActivation,
    #[error("the first observed activity is after the last")]
    ObservedOutOfOrder,
}

/// The windows of one grant, side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Windows {
    pub granted: Interval,
    /// The real window: to the worst case (revocation + portal session +
    /// permission-set session), or to `max(revocation, sessions closed)` once the
    /// deny closed the sessions.
    pub real: Interval,
    /// The worst case without the deny: the end an auditor must assume when the
    /// sessions were not closed.
    pub worst_case_end: DateTime<Utc>,
    /// When the deny closed the grant's sessions, if it did.
    pub sessions_closed_at: Option<DateTime<Utc>>,
    /// `granted.end .. real.end`: sessions opened before the end can live on here.
    pub tail: Interval,
    pub observed: Option<Interval>,
    /// The narrower end the evidence supports, when it supports one.
    pub evidence_bound: Option<DateTime<Utc>>,
    /// `false` while the grant is active: `granted.end` is the plan, not a fact.
    pub is_final: bool,
    pub portal_session: PortalSession,
    pub permission_set_session: SessionDuration,
}

impl Windows {
    pub fn compute(i: &WindowInputs) -> Result<Self, WindowError> {
        let end = match i.revoked_at {
            Some(r) if r < i.activated_at => return Err(WindowError::RevokedBeforeActivated),
            Some(r) => r,
            None if i.planned_end < i.activated_at => {
                return Err(WindowError::EndsBeforeActivation)
            }
            None => i.planned_end,
        };
        let granted = Interval {
            start: i.activated_at,
            end,
        };
        let worst_case_end =
            end + i.portal_session.as_duration() + i.permission_set_session.as_duration();
        // A deny only closes what a revocation left open.
        let sessions_closed_at = i.sessions_closed_at.filter(|_| i.revoked_at.is_some());
        let real_end =
            sessions_closed_at.map_or(worst_case_end, |c| c.max(end).min(worst_case_end));
        let real = Interval {
            start: i.activated_at,
            end: real_end,
        };
        let observed = match i.observed {
            Some(o) if o.first_activity > o.last_activity => {
                return Err(WindowError::ObservedOutOfOrder)
            }
            Some(o) => Some(Interval {
                start: o.first_activity,
                end: o.last_activity,
            }),
            None => None,
        };
        let evidence_bound = match (i.revoked_at, i.observed) {
            (Some(revoked), Some(o)) if o.covers_tail => o.last_credential_issuance.map(|t| {
                (t + i.permission_set_session.as_duration())
                    .max(revoked)
                    .min(real_end)
            }),
            _ => None,
        };
        Ok(Self {
            granted,
            real,
            tail: Interval {
                start: end,
                end: real_end,
            },
            observed,
            evidence_bound,
            worst_case_end,
            sessions_closed_at,
            is_final: i.revoked_at.is_some(),
            portal_session: i.portal_session,
            permission_set_session: i.permission_set_session,
        })
    }

    /// The end to report: the evidence bound where there is one, else the worst case.
    pub fn effective_end(&self) -> DateTime<Utc> {
        self.evidence_bound.unwrap_or(self.real.end)
    }

    /// Activity at `t` falls after revocation, inside the tail.
    pub fn is_after_revocation(&self, t: DateTime<Utc>) -> bool {
        self.is_final && t > self.granted.end
    }

    /// Activity at `t` falls after the deny closed the sessions and within the worst
    /// case: it should have been refused.
    pub fn is_after_sessions_closed(&self, t: DateTime<Utc>) -> bool {
        self.sessions_closed_at
            .is_some_and(|c| t > c && t <= self.worst_case_end)
    }

    /// Until when activity is the grant's to collect and judge: the worst case, so
    /// that calls after a deny are seen (refused, or the proof it failed).
    pub fn watched_until(&self) -> DateTime<Utc> {
        self.worst_case_end.max(self.real.end)
    }

    /// "Why" in words, for the grant page and the request form.
    pub fn explanation(&self) -> String {
        if let Some(closed) = self.sessions_closed_at {
            return format!(
                "the sessions were closed at {}: a Deny on the user's Identity Store id refuses every session of this access issued before it; without it they could have lasted until {}",
                closed.format("%Y-%m-%d %H:%M UTC"),
                self.worst_case_end.format("%Y-%m-%d %H:%M UTC"),
            );
        }
        format!(
            "sessions opened before {} can last until {}, because the access-portal session is {} and this permission set's session is {}",
            self.granted.end.format("%Y-%m-%d %H:%M UTC"),
            self.real.end.format("%Y-%m-%d %H:%M UTC"),
            format_human(self.portal_session.as_duration()),
            format_human(self.permission_set_session.as_duration()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    fn inputs(revoked: Option<DateTime<Utc>>) -> WindowInputs {
        WindowInputs {
            activated_at: t(4, 0),
            revoked_at: revoked,
            planned_end: t(5, 0),
            portal_session: PortalSession::DEFAULT,
            permission_set_session: SessionDuration::parse("PT1H").unwrap(),
            observed: None,
            sessions_closed_at: None,
        }
    }

    /// The deny closes the tail: the real window ends when it took effect, the worst
    /// case is kept beside it; before revocation a closing time means nothing.
    #[test]
    fn closed_sessions_end_the_real_window_there() {
        let mut i = inputs(Some(t(5, 0)));
        i.sessions_closed_at = Some(t(5, 1));
        let w = Windows::compute(&i).unwrap();
        assert_eq!(w.real.end, t(5, 1));
        assert_eq!(w.tail.end, t(5, 1));
        assert_eq!(w.worst_case_end, t(14, 0));
        assert_eq!(w.sessions_closed_at, Some(t(5, 1)));
        assert!(w.explanation().contains("closed at 2026-11-28 05:01 UTC"));
        assert!(w.explanation().contains("until 2026-11-28 14:00 UTC"));
        // Never later than the worst case, never before the revocation.
        i.sessions_closed_at = Some(t(20, 0));
        assert_eq!(Windows::compute(&i).unwrap().real.end, t(14, 0));
        i.sessions_closed_at = Some(t(4, 30));
        assert_eq!(Windows::compute(&i).unwrap().real.end, t(5, 0));
        let mut active = inputs(None);
        active.sessions_closed_at = Some(t(4, 30));
        let w = Windows::compute(&active).unwrap();
        assert_eq!(w.real.end, w.worst_case_end);
        assert_eq!(w.sessions_closed_at, None);
    }

    /// AWS's worked example: portal 8 h, permission-set session 1 h, grant 1 h →
    /// a potential window of access of 10 hours.
    #[test]
    fn aws_worked_example_is_ten_hours() {
        let w = Windows::compute(&inputs(Some(t(5, 0)))).unwrap();
        assert_eq!(w.granted.length(), Duration::hours(1));
        assert_eq!(w.real.length(), Duration::hours(10));
        assert_eq!(w.real.end, t(14, 0));
        assert_eq!(w.tail.length(), Duration::hours(9));
        assert!(w.is_final);
        assert!(w.explanation().contains("8h"));
        assert!(w.explanation().contains("1h"));
    }

    /// A 30-day access-portal session (Identity Center allows up to 90 days): the
    /// tail is 30 days plus the permission-set session.
    #[test]
    fn a_thirty_day_portal_session_gives_a_thirty_day_tail() {
        let mut i = inputs(Some(t(5, 0)));
        i.portal_session = PortalSession::from_seconds(30 * 86_400).unwrap();
        let w = Windows::compute(&i).unwrap();
        assert_eq!(
            w.real.end,
            t(5, 0) + Duration::days(30) + Duration::hours(1)
        );
        assert_eq!(w.tail.length(), Duration::days(30) + Duration::hours(1));
        assert!(w.explanation().contains("30d"), "{}", w.explanation());
    }

    #[test]
    fn revocation_time_not_plan_drives_the_final_window() {
        // The deletion SUCCEEDED 7 minutes late: the real window moves with it.
        let w = Windows::compute(&inputs(Some(t(5, 7)))).unwrap();
        assert_eq!(w.granted.end, t(5, 7));
        assert_eq!(w.real.end, t(14, 7));
    }

    #[test]
    fn provisional_window_uses_the_planned_end() {
        let w = Windows::compute(&inputs(None)).unwrap();
        assert!(!w.is_final);
        assert_eq!(w.real.end, t(14, 0));
        assert!(!w.is_after_revocation(t(6, 0)));
    }

    #[test]
    fn inconsistent_inputs_are_refused() {
        assert_eq!(
            Windows::compute(&inputs(Some(t(3, 0)))),
            Err(WindowError::RevokedBeforeActivated)
        );
        let mut i = inputs(None);
        i.planned_end = t(3, 0);
        assert_eq!(Windows::compute(&i), Err(WindowError::EndsBeforeActivation));
        let mut i = inputs(Some(t(5, 0)));
        i.observed = Some(Observed {
            first_activity: t(5, 0),
            last_activity: t(4, 30),
            last_credential_issuance: None,
            covers_tail: true,
        });
        assert_eq!(Windows::compute(&i), Err(WindowError::ObservedOutOfOrder));
    }

    #[test]
    fn evidence_narrows_only_when_it_covers_the_tail() {
        let mut i = inputs(Some(t(5, 0)));
        let o = Observed {
            first_activity: t(4, 10),
            last_activity: t(5, 20),
            last_credential_issuance: Some(t(4, 50)),
            covers_tail: false,
        };
        i.observed = Some(o);
        let w = Windows::compute(&i).unwrap();
        assert_eq!(w.evidence_bound, None);
        assert_eq!(w.effective_end(), t(14, 0));
        assert!(w.is_after_revocation(t(5, 20)));

        i.observed = Some(Observed {
            covers_tail: true,
            ..o
        });
        let w = Windows::compute(&i).unwrap();
        assert_eq!(w.evidence_bound, Some(t(5, 50)));
        assert_eq!(w.effective_end(), t(5, 50));
        assert_eq!(w.observed.unwrap().start, t(4, 10));
    }

    fn arb_inputs() -> impl Strategy<Value = WindowInputs> {
        (
            0i64..10_000_000,
            1i64..(12 * 60),
            proptest::option::of(0i64..(24 * 60)),
            (15 * 60)..=(90 * 86_400i64),
            3600i64..=43_200,
            proptest::option::of((0i64..100_000, 0i64..100_000, any::<bool>(), any::<bool>())),
        )
            .prop_map(|(start, dur_min, revoke_after, portal, ps, obs)| {
                let activated_at = Utc.timestamp_opt(1_700_000_000 + start, 0).unwrap();
                let planned_end = activated_at + Duration::minutes(dur_min);
                WindowInputs {
                    activated_at,
                    revoked_at: revoke_after.map(|m| activated_at + Duration::minutes(m)),
                    planned_end,
                    portal_session: PortalSession::from_seconds(portal).unwrap(),
                    permission_set_session: SessionDuration::from_duration(Duration::seconds(ps))
                        .unwrap(),
                    observed: obs.map(|(a, b, issued, covers)| {
                        let first = activated_at + Duration::seconds(a.min(b));
                        let last = activated_at + Duration::seconds(a.max(b));
                        Observed {
                            first_activity: first,
                            last_activity: last,
                            last_credential_issuance: issued.then_some(first),
                            covers_tail: covers,
                        }
                    }),
                    sessions_closed_at: None,
                }
            })
    }

    proptest! {
        #[test]
        fn real_window_contains_granted_and_never_ends_before_it(i in arb_inputs()) {
            let w = Windows::compute(&i).unwrap();
            prop_assert!(w.real.contains(&w.granted));
            prop_assert!(w.real.end >= w.granted.end);
            prop_assert_eq!(w.real.start, w.granted.start);
            prop_assert_eq!(w.tail.start, w.granted.end);
            prop_assert_eq!(w.tail.end, w.real.end);
            let eff = w.effective_end();
            prop_assert!(eff >= w.granted.end && eff <= w.real.end);
        }

        #[test]
        fn real_end_grows_with_each_session_length(i in arb_inputs()) {
            let w = Windows::compute(&i).unwrap();
            prop_assert_eq!(
                w.real.end - w.granted.end,
                i.portal_session.as_duration() + i.permission_set_session.as_duration()
            );
        }
    }
}
