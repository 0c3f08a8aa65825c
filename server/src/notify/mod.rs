//! Notifications that reach people: Slack, email and a signed webhook, fed by an
//! outbox so that nothing is lost.
//!
//! Rules:
//! - **An event is written with the change that causes it**: a state change carries its
//!   notifications in [`crate::store::Change::notifications`] (and a new request in
//!   `create_policy_grant`), so they commit or roll back together. Events that are not state
//!   changes ("ending in 10 minutes", "revocation failing", evidence findings) go
//!   through [`enqueue`], which is idempotent: each event has a dedupe key and is
//!   stored at most once.
//! - **One delivery per (event, channel, recipient)**, written when the worker fans the
//!   event out (recipients come from the identity store, which is never asked inside a
//!   database transaction), and retried on its own with capped, jittered backoff.
//! - **A delivered row is never sent again.** Every delivery carries the event id and
//!   its own id (the idempotency key); the one remaining duplicate is a crash after the
//!   receiver accepted and before the row was marked (see docs/operations.md).

pub mod channels;
pub mod message;
pub mod recipients;
pub mod worker;

use crate::store::{NewNotification, Store, StoreError};
use app::domain::{Action, Actor, Grant, GrantId, GrantState, Outcome};
use chrono::{DateTime, Utc};

pub use app::domain::notification::{Audience, NotificationKind};
pub use recipients::{DirectoryRecipients, Recipient, RecipientError, Recipients};
pub use worker::{NotifyWorker, WorkerSettings};

/// The recipient of a channel-wide delivery (Slack, webhook).
pub const CHANNEL_WIDE: &str = "*";

/// An event that is not a lifecycle transition, for [`enqueue`]. The evidence work
/// ("activity after revocation", Detective findings), the break-glass policy and the
/// reaper ("revocation failing") call it.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationEvent {
    /// The grant ends at `ends_at`, soon. One per grant and end (an extended grant is
    /// announced again for its new end).
    EndingSoon { ends_at: DateTime<Utc> },
    /// Revocation failed `attempts` times so far; `error` is AWS's last answer. One per
    /// grant.
    RevocationFailing { attempts: i64, error: String },
    /// A break-glass grant was approved automatically and is being provisioned. One
    /// per grant.
    BreakGlassUsed,
    /// CloudTrail shows `events` calls by this grant's role session after its
    /// revocation, the first at `first_at`. One per grant.
    ActivityAfterRevocation {
        first_at: DateTime<Utc>,
        last_at: DateTime<Utc>,
        events: u64,
    },
    /// A Detective investigation of this grant's role rated high or critical. One per
    /// investigation.
    InvestigationSevere {
        investigation_id: String,
        severity: String,
    },
    /// The grant's sessions could not be closed (`outcome`, in words `why`). One
    /// per grant and outcome.
    SessionsNotClosed { outcome: String, why: String },
    /// `events` calls succeeded after the sessions were closed at `closed_at`, the
    /// first at `first_at`. One per grant.
    ActivityAfterSessionsClosed {
        closed_at: DateTime<Utc>,
        first_at: DateTime<Utc>,
        events: u64,
    },
}

impl NotificationEvent {
    pub fn kind(&self) -> NotificationKind {
        match self {
            NotificationEvent::EndingSoon { .. } => NotificationKind::EndingSoon,
            NotificationEvent::RevocationFailing { .. } => NotificationKind::RevocationFailing,
            NotificationEvent::BreakGlassUsed => NotificationKind::BreakGlassUsed,
            NotificationEvent::ActivityAfterRevocation { .. } => {
                NotificationKind::ActivityAfterRevocation
            }
            NotificationEvent::InvestigationSevere { .. } => NotificationKind::InvestigationSevere,
            NotificationEvent::SessionsNotClosed { .. } => NotificationKind::SessionsNotClosed,
            NotificationEvent::ActivityAfterSessionsClosed { .. } => {
                NotificationKind::ActivityAfterSessionsClosed
            }
        }
    }

    /// The event as an outbox row for `grant`.
    pub fn into_notification(self, grant: GrantId, at: DateTime<Utc>) -> NewNotification {
        let kind = self.kind();
        let (key, details) = match self {
            NotificationEvent::EndingSoon { ends_at } => (
                format!("ending_soon:{grant}:{}", ends_at.timestamp()),
                serde_json::json!({ "ends_at": ends_at }),
            ),
            NotificationEvent::RevocationFailing { attempts, error } => (
                format!("revocation_failing:{grant}"),
                serde_json::json!({ "attempts": attempts, "error": error }),
            ),
            NotificationEvent::BreakGlassUsed => {
                (format!("break_glass_used:{grant}"), serde_json::json!({}))
            }
            NotificationEvent::ActivityAfterRevocation {
                first_at,
                last_at,
                events,
            } => (
                format!("activity_after_revocation:{grant}"),
                serde_json::json!({ "first_at": first_at, "last_at": last_at, "events": events }),
            ),
            NotificationEvent::InvestigationSevere {
                investigation_id,
                severity,
            } => (
                format!("investigation_severe:{grant}:{investigation_id}"),
                serde_json::json!({ "investigation_id": investigation_id, "severity": severity }),
            ),
            NotificationEvent::SessionsNotClosed { outcome, why } => (
                format!("sessions_not_closed:{grant}:{outcome}"),
                serde_json::json!({ "outcome": outcome, "why": why }),
            ),
            NotificationEvent::ActivityAfterSessionsClosed {
                closed_at,
                first_at,
                events,
            } => (
                format!("activity_after_sessions_closed:{grant}"),
                serde_json::json!({ "closed_at": closed_at, "first_at": first_at, "events": events }),
            ),
        };
        NewNotification {
            id: uuid::Uuid::new_v4(),
            dedupe_key: key,
            kind,
            grant_id: Some(grant),
            details,
            at,
        }
    }
}

/// Puts `event` about `grant` in the outbox (its own transaction). Idempotent: an
/// event already enqueued is not enqueued again. True when it was new.
pub async fn enqueue(
    store: &dyn Store,
    grant: GrantId,
    event: NotificationEvent,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = store
        .enqueue_notifications(&[event.into_notification(grant, at)])
        .await?;
    Ok(n > 0)
}

/// Puts a drift finding in the outbox, for the admins (Slack and the webhook carry
/// it too). `key` identifies the finding: the same finding is told once.
pub async fn enqueue_drift(
    store: &dyn Store,
    grant: Option<GrantId>,
    key: String,
    details: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = store
        .enqueue_notifications(&[NewNotification {
            id: uuid::Uuid::new_v4(),
            dedupe_key: format!("drift:{key}"),
            kind: NotificationKind::Drift,
            grant_id: grant,
            details,
            at,
        }])
        .await?;
    Ok(n > 0)
}

/// The notification a new request causes (none when it needs no approval: the
/// policy approves it at once and the decision is announced instead).
pub fn for_new_request(
    grant: GrantId,
    approvals_required: u32,
    at: DateTime<Utc>,
) -> Vec<NewNotification> {
    if approvals_required == 0 {
        return Vec::new();
    }
    vec![NewNotification {
        id: uuid::Uuid::new_v4(),
        dedupe_key: format!("new_request:{grant}"),
        kind: NotificationKind::NewRequest,
        grant_id: Some(grant),
        details: serde_json::json!({}),
        at,
    }]
}

/// The notifications a lifecycle step causes: `grant` is the grant before the step,
/// which moves it to `to` (version `grant.version + 1`).
pub fn for_transition(
    grant: &Grant,
    action: Action,
    outcome: &Outcome,
    to: GrantState,
    actor: &Actor,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Vec<NewNotification> {
    if matches!(outcome, Outcome::ApprovalRecorded(_)) {
        // The quorum is not reached yet: nothing changed for the requester.
        return Vec::new();
    }
    let (kind, details) = match (action, to) {
        (Action::Approve | Action::AutoApprove, GrantState::Approved) => (
            NotificationKind::Decision,
            serde_json::json!({
                "decision": "approved",
                "by": actor.audit_name(),
                "automatic": action == Action::AutoApprove,
                "comment": reason,
            }),
        ),
        (Action::Deny, GrantState::Denied) => (
            NotificationKind::Decision,
            serde_json::json!({ "decision": "denied", "by": actor.audit_name(), "comment": reason }),
        ),
        (Action::ProvisionSucceeded, GrantState::Active) => {
            (NotificationKind::GrantActive, serde_json::json!({}))
        }
        (Action::RevokeSucceeded, GrantState::Revoked) => (
            NotificationKind::Revoked,
            serde_json::json!({ "reason": reason }),
        ),
        (Action::ProvisionFailed, GrantState::Failed) => (
            NotificationKind::ProvisionFailed,
            serde_json::json!({ "reason": reason }),
        ),
        _ => return Vec::new(),
    };
    vec![NewNotification {
        id: uuid::Uuid::new_v4(),
        // The version the change creates: a step is stored once, so is its event.
        dedupe_key: format!("{}:{}:v{}", kind.as_str(), grant.id, grant.version + 1),
        kind,
        grant_id: Some(grant.id),
        details,
        at,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keys_make_enqueue_idempotent() {
        let g = GrantId(uuid::Uuid::new_v4());
        let at = Utc::now();
        let a = NotificationEvent::RevocationFailing {
            attempts: 3,
            error: "x".into(),
        }
        .into_notification(g, at);
        let b = NotificationEvent::RevocationFailing {
            attempts: 4,
            error: "y".into(),
        }
        .into_notification(g, at);
        assert_eq!(a.dedupe_key, b.dedupe_key, "one alert per grant");
        assert_ne!(a.id, b.id);
        let end1 = NotificationEvent::EndingSoon { ends_at: at }.into_notification(g, at);
        let end2 = NotificationEvent::EndingSoon {
            ends_at: at + chrono::Duration::hours(1),
        }
        .into_notification(g, at);
        assert_ne!(
            end1.dedupe_key, end2.dedupe_key,
            "an extension is announced again"
        );
        assert!(for_new_request(g, 0, at).is_empty());
        assert_eq!(for_new_request(g, 1, at).len(), 1);
    }
}
