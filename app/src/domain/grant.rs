//! A grant as the rest of Timebox sees it: the request, its state, and the facts the
//! reaper recorded (activation, revocation, session lengths, the real window's end).

use super::fields::{
    AccountId, GrantDuration, Justification, PermissionSetName, PersonId, TicketRef,
};
use super::lifecycle::GrantState;
use super::session_duration::{PortalSession, SessionDuration};
use super::sessions::SessionsClose;
use super::window::{WindowError, WindowInputs, Windows};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A grant's identifier (UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct GrantId(pub Uuid);

impl GrantId {
    pub fn parse(s: &str) -> Result<Self, super::FieldError> {
        Uuid::parse_str(s.trim())
            .map(GrantId)
            .map_err(|_| super::FieldError {
                field: "grant_id",
                message: "is not a grant id (a UUID)".into(),
            })
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a requester asks for, already parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GrantRequest {
    pub requester: PersonId,
    pub account_id: AccountId,
    pub permission_set: PermissionSetName,
    pub justification: Justification,
    pub ticket: Option<TicketRef>,
    pub duration: GrantDuration,
    /// `None`: start as soon as approved.
    pub requested_start: Option<DateTime<Utc>>,
    /// Distinct approvals the matching policy requires (0 = automatic approval).
    pub approvals_required: u32,
    /// The grant this request extends: once approved, the access runs on to the end
    /// of the access it extends plus `duration` (never earlier); see
    /// docs/architecture.md, "Extensions".
    #[serde(default)]
    pub extends: Option<GrantId>,
}

/// Another way the requester already reaches the same access (a group assignment,
/// or a standing direct assignment Timebox did not make).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OtherPath {
    /// `USER` (a standing direct assignment) or `GROUP`.
    pub principal_type: String,
    /// The group's display name when known, else its id.
    pub principal: String,
    /// The identity-store id of the group or user.
    #[serde(default)]
    pub principal_id: String,
}

impl OtherPath {
    /// How the pages and notifications say it: "group sre", "a standing direct
    /// assignment".
    pub fn describe(&self) -> String {
        if self.principal_type == "USER" {
            "a standing direct assignment (not made by Timebox)".to_owned()
        } else {
            format!("group {}", self.principal)
        }
    }
}

/// The IAM Identity Center user a request was made for, resolved from the signed-in
/// person when the request was sent (`identity_center.user_match`) and kept: the
/// reaper assigns this `UserId`, and evidence matches CloudTrail's role-session name
/// against this `UserName` (Identity Center names role sessions after it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IdentityUser {
    pub user_id: String,
    pub user_name: String,
}

/// A grant's windows, and whether they are a preview of a grant still to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantWindows {
    pub windows: Windows,
    pub preview: bool,
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: GrantId,
    pub request: GrantRequest,
    pub state: GrantState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Assignment creation SUCCEEDED.
    pub activated_at: Option<DateTime<Utc>>,
    /// `activated_at + duration` (extended grants move it later, never earlier).
    pub ends_at: Option<DateTime<Utc>>,
    /// Assignment deletion SUCCEEDED.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Read from `DescribePermissionSet` at activation and kept.
    pub permission_set_session: Option<SessionDuration>,
    /// The configured portal session at activation, kept.
    pub portal_session: Option<PortalSession>,
    /// The real window's end: provisional at activation, final at revocation.
    pub real_end: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    /// Incremented on every change; conditional updates compare it.
    pub version: i64,
    /// The policy that decided the request (`None` for grants stored before policies).
    #[serde(default)]
    pub policy: Option<String>,
    /// Asked for as break-glass: approved at once, reviewed afterwards.
    #[serde(default)]
    pub break_glass: bool,
    /// A request still pending at this time expires (the policy's `pending_ttl`).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// A review is owed (break-glass); see `reviewed_*`.
    #[serde(default)]
    pub review_required: bool,
    #[serde(default)]
    pub reviewed_by: Option<String>,
    #[serde(default)]
    pub reviewed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub review_comment: Option<String>,
    /// The other paths to the same access found when the request was made (`None`:
    /// not looked up, or Identity Center could not be asked), shown to approvers.
    #[serde(default)]
    pub paths_at_request: Option<Vec<OtherPath>>,
    /// The Identity Center user resolved at request time (`None` for grants stored
    /// before it was recorded, or when Identity Center could not be asked then: the
    /// reaper resolves it at provisioning).
    #[serde(default)]
    pub identity: Option<IdentityUser>,
    /// What became of the sessions the grant gave out once revoked (`None` before
    /// revocation, and for grants revoked before Timebox recorded it).
    #[serde(default)]
    pub sessions_close: Option<SessionsClose>,
    /// When the deny carrying the grant's sessions took effect (the policy update
    /// succeeded): the real window ends at `max(revoked_at, sessions_closed_at)`.
    #[serde(default)]
    pub sessions_closed_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// A grant as a request is first stored: pending, version 0, nothing decided,
    /// provisioned or reviewed yet.
    pub fn requested(id: GrantId, request: GrantRequest, at: DateTime<Utc>) -> Grant {
        Grant {
            id,
            request,
            state: GrantState::Pending,
            created_at: at,
            updated_at: at,
            activated_at: None,
            ends_at: None,
            revoked_at: None,
            permission_set_session: None,
            portal_session: None,
            real_end: None,
            failure_reason: None,
            version: 0,
            policy: None,
            break_glass: false,
            expires_at: None,
            review_required: false,
            reviewed_by: None,
            reviewed_at: None,
            review_comment: None,
            paths_at_request: None,
            identity: None,
            sessions_close: None,
            sessions_closed_at: None,
        }
    }

    /// The Identity Center `UserName` CloudTrail names this grant's role sessions
    /// after: the one resolved at request time, else the person id (grants stored
    /// before it was recorded, where the two were the same).
    pub fn user_name(&self) -> &str {
        self.identity
            .as_ref()
            .map_or(self.request.requester.as_str(), |u| u.user_name.as_str())
    }

    /// A break-glass use that nobody has reviewed yet.
    pub fn awaits_review(&self) -> bool {
        self.review_required && self.reviewed_at.is_none()
    }

    /// Whether the grant has still to start: pending or approved, never active yet.
    /// Its windows are then a preview ([`Grant::windows_or_preview`]).
    pub fn awaits_start(&self) -> bool {
        self.activated_at.is_none()
            && matches!(self.state, GrantState::Pending | GrantState::Approved)
    }

    /// The windows as far as they are known: the stored ones once the grant has been
    /// active; for a grant still to start, a preview as if it started at its
    /// requested start (or `now`, if that has passed) with `portal_session` and the
    /// permission set's session as synced; otherwise `None`. The grant page and the
    /// notifications show the same preview.
    pub fn windows_or_preview(
        &self,
        now: DateTime<Utc>,
        portal_session: Option<PortalSession>,
        permission_set_session: Option<SessionDuration>,
    ) -> Option<GrantWindows> {
        if let Some(Ok(windows)) = self.windows() {
            return Some(GrantWindows {
                windows,
                preview: false,
            });
        }
        if !self.awaits_start() {
            return None;
        }
        let start = self.request.requested_start.map_or(now, |s| s.max(now));
        Windows::compute(&WindowInputs {
            activated_at: start,
            revoked_at: None,
            planned_end: start + self.request.duration.as_duration(),
            portal_session: portal_session?,
            permission_set_session: permission_set_session?,
            observed: None,
            sessions_closed_at: None,
        })
        .ok()
        .map(|windows| GrantWindows {
            windows,
            preview: true,
        })
    }

    /// The windows, once the grant has been active. `None` before activation.
    pub fn windows(&self) -> Option<Result<Windows, WindowError>> {
        let activated_at = self.activated_at?;
        let ends_at = self.ends_at?;
        Some(Windows::compute(&WindowInputs {
            activated_at,
            revoked_at: self.revoked_at,
            planned_end: ends_at,
            portal_session: self.portal_session?,
            permission_set_session: self.permission_set_session?,
            observed: None,
            sessions_closed_at: self.sessions_closed_at,
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// 2026-11-28 09:00 UTC, the tests' "now".
    pub(crate) fn nine() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0)
            .single()
            .expect("time")
    }

    /// owen's one-hour request for AdministratorAccess under policy `prod`, in
    /// `state`, created at [`nine`].
    pub(crate) fn sample(state: GrantState) -> Grant {
        let request = GrantRequest {
            requester: PersonId::parse("owen").expect("id"),
            account_id: AccountId::parse("111122223333").expect("account"),
            permission_set: PermissionSetName::parse("AdministratorAccess").expect("ps"),
            justification: Justification::parse("rotate the leaked key").expect("why"),
            ticket: None,
            duration: GrantDuration::from_minutes(60, None).expect("duration"),
            requested_start: None,
            approvals_required: 1,
            extends: None,
        };
        Grant {
            state,
            version: 1,
            policy: Some("prod".into()),
            ..Grant::requested(GrantId(Uuid::nil()), request, nine())
        }
    }

    #[test]
    fn a_request_still_to_start_previews_its_windows() {
        let portal = PortalSession::from_seconds(8 * 3600).ok();
        let session = SessionDuration::from_duration(chrono::Duration::hours(1)).ok();
        let now = nine();
        let g = sample(GrantState::Pending);
        let w = g.windows_or_preview(now, portal, session).expect("preview");
        assert!(w.preview);
        assert_eq!(w.windows.granted.start, now);
        // portal 8h + session 1h + grant 1h
        assert_eq!(w.windows.real.end, now + chrono::Duration::hours(10));
        // A requested start is kept; one that has passed starts now.
        let later = now + chrono::Duration::hours(2);
        let mut asked = sample(GrantState::Approved);
        asked.request.requested_start = Some(later);
        let w = asked
            .windows_or_preview(now, portal, session)
            .expect("preview");
        assert_eq!(w.windows.granted.start, later);
        asked.request.requested_start = Some(now - chrono::Duration::hours(2));
        let w = asked
            .windows_or_preview(now, portal, session)
            .expect("preview");
        assert_eq!(w.windows.granted.start, now);
        // Without the permission set's session there is nothing to preview.
        assert_eq!(g.windows_or_preview(now, portal, None), None);
        // A grant that will not start has no preview.
        for state in [
            GrantState::Denied,
            GrantState::Cancelled,
            GrantState::Expired,
        ] {
            assert_eq!(sample(state).windows_or_preview(now, portal, session), None);
        }
    }

    #[test]
    fn an_active_grant_shows_its_stored_windows() {
        let now = nine();
        let mut g = sample(GrantState::Active);
        g.activated_at = Some(now);
        g.ends_at = Some(now + chrono::Duration::hours(1));
        g.portal_session = PortalSession::from_seconds(3600).ok();
        g.permission_set_session = SessionDuration::from_duration(chrono::Duration::hours(2)).ok();
        // The stored sessions count, not the ones passed for a preview.
        let w = g
            .windows_or_preview(now + chrono::Duration::minutes(5), None, None)
            .expect("stored");
        assert!(!w.preview);
        assert_eq!(w.windows.real.end, now + chrono::Duration::hours(4));
    }
}
