//! What an audit event records as its action. The names are stored (and hashed)
//! as text and never change: a lifecycle step is recorded under its
//! [`Action`] name, the other events under their own. Also: where a verification
//! of the whole chain asked for on demand stands.

use super::lifecycle::Action;
use serde::{Deserialize, Serialize};

/// The action of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A new request (`request`).
    Request,
    /// A step of the lifecycle, under the action's own name (`approve`, `expire`, …).
    Step(Action),
    /// A break-glass grant was reviewed (`review`).
    Review,
    /// An assignment Timebox made outlived its grant and was removed (`drift_removed`).
    DriftRemoved,
    /// An assignment of a managed permission set that Timebox did not make
    /// (`drift_unmanaged`).
    DriftUnmanaged,
    /// An active grant's assignment was gone and was created again (`drift_recreated`).
    DriftRecreated,
    /// A group assignment gives the grant's user the same access (`drift_group_path`).
    DriftGroupPath,
    /// The deny closing a revoked grant's sessions took effect (`sessions_closed`).
    SessionsClosed,
    /// A revoked grant's sessions could not be closed, and why (`sessions_not_closed`).
    SessionsNotClosed,
    /// A policy Timebox owns was changed by someone else (`session_policy_edited`).
    SessionPolicyEdited,
    /// A policy file was put in force, with its SHA-256 (`policy_loaded`).
    PolicyLoaded,
    /// A grant's evidence was summarised: counts, flags, investigation, and the
    /// digest of the stored events (`evidence_summarized`).
    EvidenceSummarized,
}

impl AuditAction {
    /// The drift reports, newest first on the status page.
    pub const DRIFT: [AuditAction; 4] = [
        AuditAction::DriftRemoved,
        AuditAction::DriftUnmanaged,
        AuditAction::DriftRecreated,
        AuditAction::DriftGroupPath,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Request => "request",
            AuditAction::Step(action) => action.as_str(),
            AuditAction::Review => "review",
            AuditAction::DriftRemoved => "drift_removed",
            AuditAction::DriftUnmanaged => "drift_unmanaged",
            AuditAction::DriftRecreated => "drift_recreated",
            AuditAction::DriftGroupPath => "drift_group_path",
            AuditAction::SessionsClosed => "sessions_closed",
            AuditAction::SessionsNotClosed => "sessions_not_closed",
            AuditAction::SessionPolicyEdited => "session_policy_edited",
            AuditAction::PolicyLoaded => "policy_loaded",
            AuditAction::EvidenceSummarized => "evidence_summarized",
        }
    }

    /// Every action Timebox records.
    pub fn all() -> impl Iterator<Item = AuditAction> {
        [
            AuditAction::Request,
            AuditAction::Review,
            AuditAction::DriftRemoved,
            AuditAction::DriftUnmanaged,
            AuditAction::DriftRecreated,
            AuditAction::DriftGroupPath,
            AuditAction::SessionsClosed,
            AuditAction::SessionsNotClosed,
            AuditAction::SessionPolicyEdited,
            AuditAction::PolicyLoaded,
            AuditAction::EvidenceSummarized,
        ]
        .into_iter()
        .chain(Action::ALL.into_iter().map(AuditAction::Step))
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::all().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a whole-chain verification asked for on demand stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    /// Asked for; the `audit-verify` job starts it within seconds.
    Queued,
    Running,
    /// Everything held.
    Passed,
    /// Something does not hold: `first_broken_seq` and `problem` say what.
    Failed,
    /// It could not be checked (the database could not be read); nothing is known.
    Error,
}

impl VerificationState {
    pub const ALL: [VerificationState; 5] = [
        VerificationState::Queued,
        VerificationState::Running,
        VerificationState::Passed,
        VerificationState::Failed,
        VerificationState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationState::Queued => "queued",
            VerificationState::Running => "running",
            VerificationState::Passed => "passed",
            VerificationState::Failed => "failed",
            VerificationState::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Queued or running: another cannot be asked for.
    pub fn is_open(self) -> bool {
        matches!(self, VerificationState::Queued | VerificationState::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_do_not_collide() {
        let all: Vec<AuditAction> = AuditAction::all().collect();
        for a in &all {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        let mut names: Vec<&str> = all.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
