//! What a notification is about and who is told: the kinds of events Timebox
//! announces and the groups of people each kind is for. Stored in the outbox by
//! their `as_str` names, which never change.

use serde::Serialize;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A request waits for approval (to its approvers).
    NewRequest,
    /// A request was approved or denied (to the requester).
    Decision,
    /// The access is in place (to the requester).
    GrantActive,
    /// The grant ends within `notify.ending_soon` (to the requester).
    EndingSoon,
    /// The access was removed (to the requester).
    Revoked,
    /// Removing the access keeps failing (to approvers and auditors).
    RevocationFailing,
    /// A break-glass grant was used (to every approver and auditor).
    BreakGlassUsed,
    /// CloudTrail shows activity after the revocation (to auditors).
    ActivityAfterRevocation,
    /// Amazon Detective rated an investigation high or critical (to auditors).
    InvestigationSevere,
    /// The drift pass found Identity Center different from Timebox's record (to
    /// admins).
    Drift,
    /// The access could not be given: provisioning failed, or the requester no longer
    /// had the entitlement when a later start came (to the requester and approvers).
    ProvisionFailed,
    /// A revoked grant's sessions could not be closed: the worst case stands (to
    /// admins and auditors).
    SessionsNotClosed,
    /// A call succeeded after the grant's sessions were closed: the deny did not
    /// work (critical, to auditors and admins).
    ActivityAfterSessionsClosed,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 13] = [
        NotificationKind::NewRequest,
        NotificationKind::Decision,
        NotificationKind::GrantActive,
        NotificationKind::EndingSoon,
        NotificationKind::Revoked,
        NotificationKind::RevocationFailing,
        NotificationKind::BreakGlassUsed,
        NotificationKind::ActivityAfterRevocation,
        NotificationKind::InvestigationSevere,
        NotificationKind::Drift,
        NotificationKind::ProvisionFailed,
        NotificationKind::SessionsNotClosed,
        NotificationKind::ActivityAfterSessionsClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::NewRequest => "new_request",
            NotificationKind::Decision => "decision",
            NotificationKind::GrantActive => "grant_active",
            NotificationKind::EndingSoon => "ending_soon",
            NotificationKind::Revoked => "revoked",
            NotificationKind::RevocationFailing => "revocation_failing",
            NotificationKind::BreakGlassUsed => "break_glass_used",
            NotificationKind::ActivityAfterRevocation => "activity_after_revocation",
            NotificationKind::InvestigationSevere => "investigation_severe",
            NotificationKind::Drift => "drift",
            NotificationKind::ProvisionFailed => "provision_failed",
            NotificationKind::SessionsNotClosed => "sessions_not_closed",
            NotificationKind::ActivityAfterSessionsClosed => "activity_after_sessions_closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Who is told, by email (Slack and the webhook are channel-wide).
    pub fn audience(self) -> &'static [Audience] {
        match self {
            NotificationKind::NewRequest => &[Audience::ApproversOfGrant],
            NotificationKind::Decision
            | NotificationKind::GrantActive
            | NotificationKind::EndingSoon
            | NotificationKind::Revoked => &[Audience::Requester],
            NotificationKind::RevocationFailing => {
                &[Audience::ApproversOfGrant, Audience::Auditors]
            }
            NotificationKind::BreakGlassUsed => &[Audience::AllApprovers, Audience::Auditors],
            NotificationKind::ActivityAfterRevocation | NotificationKind::InvestigationSevere => {
                &[Audience::Auditors]
            }
            NotificationKind::Drift => &[Audience::Admins],
            NotificationKind::ProvisionFailed => &[Audience::Requester, Audience::ApproversOfGrant],
            NotificationKind::SessionsNotClosed | NotificationKind::ActivityAfterSessionsClosed => {
                &[Audience::Admins, Audience::Auditors]
            }
        }
    }
}

/// A group of people an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Requester,
    /// Those who may decide this grant (never its requester).
    ApproversOfGrant,
    /// Every approver.
    AllApprovers,
    Auditors,
    /// The members of the admin groups.
    Admins,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(k.as_str()), Some(k));
            assert!(!k.audience().is_empty());
        }
        assert_eq!(NotificationKind::parse("nope"), None);
    }
}
