//! A grant as the rest of Timebox sees it: the request, its state, and the facts the
//! reaper recorded (activation, revocation, session lengths, the real window's end).

use super::fields::{
    AccountId, GrantDuration, Justification, PermissionSetName, PersonId, TicketRef,
};
use super::lifecycle::GrantState;
use super::session_duration::{PortalSession, SessionDuration};
use super::window::{WindowError, WindowInputs, Windows};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A grant's identifier (UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Grant {
    /// A break-glass use that nobody has reviewed yet.
    pub fn awaits_review(&self) -> bool {
        self.review_required && self.reviewed_at.is_none()
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
        }))
    }
}
