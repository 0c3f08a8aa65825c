//! Policy as the pages see it: the rules of the policy file (who may ask for which
//! permission set in which accounts, approved by whom), what one person may ask for
//! ([`Entitlement`]), the "who can request what, approved by whom" rows
//! ([`ExplainRow`]), why a request was refused ([`PolicyRefusal`]) and the state of the
//! last reload ([`ReloadStatus`]).
//!
//! Parsing, validation and resolution live in the server (`server/src/policy/`); these
//! types carry their results and compile to wasm so the dashboard can render them.

use super::fields::fmt_minutes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a request under a policy is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ApprovalRule {
    /// `approval = "auto"` (and every break-glass policy): approved by Timebox itself
    /// at once.
    Auto,
    /// `count` distinct people among `approvers` (as written: `group:x`, `user:y`).
    Required { count: u32, approvers: Vec<String> },
}

impl ApprovalRule {
    /// Distinct approvals needed (0 for automatic approval).
    pub fn approvals_required(&self) -> u32 {
        match self {
            ApprovalRule::Auto => 0,
            ApprovalRule::Required { count, .. } => *count,
        }
    }
}

impl fmt::Display for ApprovalRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApprovalRule::Auto => f.write_str("approved automatically"),
            ApprovalRule::Required { count, approvers } => write!(
                f,
                "{count} approval{} from {}",
                if *count == 1 { "" } else { "s" },
                approvers.join(", ")
            ),
        }
    }
}

/// Whether a ticket must be given, and what it must look like.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TicketRule {
    pub required: bool,
    /// A regular expression the whole ticket must match (`ticket_pattern`).
    pub pattern: Option<String>,
}

/// One policy of the file, as written (after validation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Policy {
    pub name: String,
    /// `group:x`, `user:y` or `*` (anyone with the requester role).
    pub requesters: Vec<String>,
    /// Account ids, OU ids (`ou-…`, covering nested OUs and their accounts), root ids
    /// (`r-…`) or `*`.
    pub accounts: Vec<String>,
    /// Permission set names or `*`.
    pub permission_sets: Vec<String>,
    pub max_duration_minutes: u32,
    pub approval: ApprovalRule,
    pub ticket: TicketRule,
    /// Minimum justification length in characters.
    pub min_justification: u32,
    /// A request nobody decides within this time expires.
    pub pending_ttl_minutes: u32,
    /// At most this many live grants (pending, approved, provisioning, active) per
    /// person under this policy.
    pub max_active_per_user: Option<u32>,
    /// No approval, starts at once, reviewed afterwards; only used when the requester
    /// explicitly asks for break-glass access.
    pub break_glass: bool,
    /// Break-glass only: who may review the use afterwards besides auditors and
    /// admins (as written), from `approvers`.
    pub reviewers: Vec<String>,
}

/// Something one person may ask for: one permission set in one account, and the
/// terms of the policy that decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Entitlement {
    pub policy: String,
    pub account_id: String,
    /// The account's name in the synced catalog (its id when the catalog lacks it).
    pub account_name: String,
    pub permission_set: String,
    pub max_duration_minutes: u32,
    pub approval: ApprovalRule,
    pub ticket: TicketRule,
    pub min_justification: u32,
    pub pending_ttl_minutes: u32,
    pub max_active_per_user: Option<u32>,
    pub break_glass: bool,
}

/// One answer to "who can request what, approved by whom".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ExplainRow {
    pub policy: String,
    /// As written in the policy.
    pub requesters: Vec<String>,
    pub account_id: String,
    pub account_name: String,
    /// The entry of `accounts` that covers this account (`111122223333`,
    /// `ou-ab12-cdef3456`, `*`).
    pub via: String,
    pub permission_set: String,
    pub max_duration_minutes: u32,
    pub approval: ApprovalRule,
    pub ticket: TicketRule,
    pub break_glass: bool,
    /// Another policy decides this (account, permission set) for some of these
    /// requesters because it is more specific (see docs/policy.md); its name.
    pub overridden_by: Vec<String>,
}

/// The policy file's state, for the admin page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReloadStatus {
    /// The file in use; `None` when `policy.file` is not configured (nobody may ask
    /// for access).
    pub file: Option<String>,
    /// When the policy in force was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// How many policies are in force.
    pub policies: usize,
    /// The last reload attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Why the last reload was refused (the previous policy stays in force); `None`
    /// when it succeeded.
    pub last_error: Option<String>,
    /// References the synced catalog does not know (a permission set, account or OU
    /// that does not exist, or not yet). Such an entry matches nothing until the
    /// catalog has it. Checked at start-up and after every catalog sync.
    pub catalog_problems: Vec<String>,
}

/// Why a request was refused by the policy. `Display` is the message for the person;
/// [`PolicyRefusal::field`] names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PolicyRefusal {
    #[error("no policy file is configured, so nobody may ask for access; an administrator sets policy.file")]
    NoPolicyFile,
    #[error("{}", no_policy_message(.account_id, .permission_set, *.break_glass, .covering, *.catalog_synced))]
    NoPolicy {
        account_id: String,
        permission_set: String,
        break_glass: bool,
        /// Policies that cover this account and permission set but not this person:
        /// `(name, requesters as written)`.
        covering: Vec<(String, Vec<String>)>,
        /// Whether the catalog (needed to resolve OUs) has been synced.
        catalog_synced: bool,
    },
    #[error("duration: policy {policy:?} allows at most {} (asked for {})", fmt_minutes(i64::from(*.max_minutes)), fmt_minutes(*.asked_minutes))]
    DurationTooLong {
        policy: String,
        max_minutes: u32,
        asked_minutes: i64,
    },
    #[error("ticket: policy {policy:?} requires a ticket reference")]
    TicketRequired { policy: String },
    #[error(
        "ticket: {ticket:?} does not match the pattern {pattern:?} that policy {policy:?} requires"
    )]
    TicketMismatch {
        policy: String,
        ticket: String,
        pattern: String,
    },
    #[error("justification: policy {policy:?} asks for at least {min} characters (has {has})")]
    JustificationTooShort { policy: String, min: u32, has: u32 },
    #[error("policy {policy:?} allows at most {cap} live grant{} per person and you have {active}; wait for one to end or cancel one", if *.cap == 1 { "" } else { "s" })]
    CapReached {
        policy: String,
        cap: u32,
        active: u32,
    },
}

fn no_policy_message(
    account_id: &str,
    permission_set: &str,
    break_glass: bool,
    covering: &[(String, Vec<String>)],
    catalog_synced: bool,
) -> String {
    let what = if break_glass {
        "break-glass access to"
    } else {
        "access to"
    };
    let mut m = format!(
        "account_id/permission_set: no policy lets you ask for {what} {permission_set} in account {account_id}"
    );
    if covering.is_empty() {
        m.push_str(if break_glass {
            "; no break-glass policy covers them"
        } else {
            "; no policy covers them"
        });
    } else {
        m.push_str("; it is covered by ");
        let parts: Vec<String> = covering
            .iter()
            .map(|(name, who)| format!("policy {name:?} for {}", who.join(", ")))
            .collect();
        m.push_str(&parts.join("; "));
        m.push_str(", which you are not");
    }
    if !catalog_synced {
        m.push_str(" (the catalog has not been synced yet, so policies naming OUs cannot apply)");
    }
    m
}

impl PolicyRefusal {
    /// The request field at fault (`None` when it is not one field).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PolicyRefusal::NoPolicyFile | PolicyRefusal::CapReached { .. } => None,
            PolicyRefusal::NoPolicy { .. } => Some("permission_set"),
            PolicyRefusal::DurationTooLong { .. } => Some("duration"),
            PolicyRefusal::TicketRequired { .. } | PolicyRefusal::TicketMismatch { .. } => {
                Some("ticket")
            }
            PolicyRefusal::JustificationTooShort { .. } => Some("justification"),
        }
    }

    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyRefusal::NoPolicyFile => "no_policy_file",
            PolicyRefusal::NoPolicy { .. } => "no_policy",
            PolicyRefusal::DurationTooLong { .. } => "duration_too_long",
            PolicyRefusal::TicketRequired { .. } => "ticket_required",
            PolicyRefusal::TicketMismatch { .. } => "ticket_mismatch",
            PolicyRefusal::JustificationTooShort { .. } => "justification_too_short",
            PolicyRefusal::CapReached { .. } => "cap_reached",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field_and_the_policy() {
        let r = PolicyRefusal::DurationTooLong {
            policy: "ec2".into(),
            max_minutes: 240,
            asked_minutes: 300,
        };
        assert_eq!(r.field(), Some("duration"));
        assert_eq!(
            r.to_string(),
            "duration: policy \"ec2\" allows at most 4h (asked for 5h)"
        );
        let none = PolicyRefusal::NoPolicy {
            account_id: "111122223333".into(),
            permission_set: "Admin".into(),
            break_glass: false,
            covering: vec![("oncall".into(), vec!["group:sre".into()])],
            catalog_synced: true,
        };
        assert_eq!(
            none.to_string(),
            "account_id/permission_set: no policy lets you ask for access to Admin in account \
             111122223333; it is covered by policy \"oncall\" for group:sre, which you are not"
        );
        let cap = PolicyRefusal::CapReached {
            policy: "p".into(),
            cap: 1,
            active: 1,
        };
        assert!(cap.to_string().contains("at most 1 live grant per person"));
    }

    #[test]
    fn approval_rule_reads_well() {
        assert_eq!(ApprovalRule::Auto.approvals_required(), 0);
        let r = ApprovalRule::Required {
            count: 2,
            approvers: vec!["group:leads".into(), "user:mia".into()],
        };
        assert_eq!(r.approvals_required(), 2);
        assert_eq!(r.to_string(), "2 approvals from group:leads, user:mia");
    }
}
