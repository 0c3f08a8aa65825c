//! What became of the role sessions a revoked grant gave out.
//!
//! Deleting an account assignment stops new sessions, but the role sessions already
//! issued live on for the permission set's session length, and a portal session
//! opened before the end can mint one until it expires: that is the tail of the real
//! window. Timebox closes it with AWS's documented `Deny` on the user's Identity
//! Store id (a service control policy on the account, or the permission set's inline
//! policy). A grant records which of these happened, or why neither could, so the
//! page and the evidence pack show the closed window or the worst case with its
//! reason (docs/sessions.md).

use serde::{Deserialize, Serialize};

/// How a revoked grant's sessions were closed, or why they were not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionsClose {
    /// The deny is to be written by the reaper's next session pass.
    Pending,
    /// The deny stands in a service control policy Timebox owns on the account.
    ClosedScp,
    /// The deny stands in the permission set's inline policy (the fallback).
    ClosedInline,
    /// `[revocation] close_sessions = "off"`.
    Off,
    /// The management account is not governed by SCPs.
    ManagementAccount,
    /// AWS refused Timebox the Organizations (or inline-policy) calls.
    NoPermission,
    /// The account's policy slots are full and no fallback is configured.
    OverBudget,
    /// Timebox's policy on the account was changed by someone else: reported, not
    /// overwritten.
    HandEdited,
    /// The assignment was kept (another grant, or a standing assignment, still gives
    /// the same access): denying the sessions would end that access too.
    AssignmentKept,
    /// The grant never had an assignment in AWS: no session to close.
    NotProvisioned,
}

impl SessionsClose {
    pub const ALL: [SessionsClose; 10] = [
        SessionsClose::Pending,
        SessionsClose::ClosedScp,
        SessionsClose::ClosedInline,
        SessionsClose::Off,
        SessionsClose::ManagementAccount,
        SessionsClose::NoPermission,
        SessionsClose::OverBudget,
        SessionsClose::HandEdited,
        SessionsClose::AssignmentKept,
        SessionsClose::NotProvisioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionsClose::Pending => "pending",
            SessionsClose::ClosedScp => "closed_scp",
            SessionsClose::ClosedInline => "closed_inline",
            SessionsClose::Off => "off",
            SessionsClose::ManagementAccount => "management_account",
            SessionsClose::NoPermission => "no_permission",
            SessionsClose::OverBudget => "over_budget",
            SessionsClose::HandEdited => "hand_edited",
            SessionsClose::AssignmentKept => "assignment_kept",
            SessionsClose::NotProvisioned => "not_provisioned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A deny carrying the grant's sessions stands.
    pub fn is_closed(self) -> bool {
        matches!(self, SessionsClose::ClosedScp | SessionsClose::ClosedInline)
    }

    /// The session pass still works on the grant while its tail lasts: the deny is
    /// to be written, stands (and must be narrowed or removed), or could not be
    /// written this time and is tried again.
    pub fn is_worked_on(self) -> bool {
        matches!(
            self,
            SessionsClose::Pending
                | SessionsClose::ClosedScp
                | SessionsClose::ClosedInline
                | SessionsClose::NoPermission
                | SessionsClose::OverBudget
                | SessionsClose::HandEdited
        )
    }

    /// In words, for the grant page, the history and the evidence pack.
    pub fn describe(self) -> &'static str {
        match self {
            SessionsClose::Pending => "closing the sessions: the deny is being written",
            SessionsClose::ClosedScp => {
                "sessions closed by a Deny in Timebox's service control policy on the account"
            }
            SessionsClose::ClosedInline => {
                "sessions closed by a Deny in the permission set's inline policy"
            }
            SessionsClose::Off => {
                "sessions not closed: closing sessions is turned off ([revocation] close_sessions = \"off\")"
            }
            SessionsClose::ManagementAccount => {
                "sessions not closed: the management account is not governed by service control policies"
            }
            SessionsClose::NoPermission => {
                "sessions not closed: AWS refused Timebox the policy calls (see docs/sessions.md for the permissions)"
            }
            SessionsClose::OverBudget => {
                "sessions not closed: the account's policy slots are full and no fallback is configured"
            }
            SessionsClose::HandEdited => {
                "sessions not closed: Timebox's policy on the account was edited by hand, and Timebox does not overwrite it"
            }
            SessionsClose::AssignmentKept => {
                "sessions not closed: the assignment stays for other access of the same person"
            }
            SessionsClose::NotProvisioned => "no sessions: the grant never had an assignment",
        }
    }
}

impl std::fmt::Display for SessionsClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_and_says_why() {
        for c in SessionsClose::ALL {
            assert_eq!(SessionsClose::parse(c.as_str()), Some(c));
            assert!(!c.describe().is_empty());
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert_eq!(SessionsClose::parse("closed"), None);
        assert!(SessionsClose::ClosedScp.is_closed() && SessionsClose::ClosedInline.is_closed());
        assert!(!SessionsClose::ManagementAccount.is_worked_on());
        assert!(SessionsClose::OverBudget.is_worked_on());
    }
}
