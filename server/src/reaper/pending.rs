//! Pending requests nobody needs to decide any more: expired past `expires_at`, or
//! needing no approval (normally approved at request time; this catches a crash in
//! between).

use super::{Reaper, ReaperError};
use crate::services::grants::GrantError;
use crate::store::GrantPatch;
use app::domain::{Action, Actor};
use chrono::{DateTime, Utc};

impl Reaper {
    /// Expires pending requests past their `expires_at` and approves those that need
    /// no approval (`Action::Expire` / `Action::AutoApprove` by the system).
    /// Idempotent: a grant another replica (or an approver) moved first is refused by
    /// the lifecycle as in the wrong state, and skipped.
    pub async fn settle_pending(&self, now: DateTime<Utc>) -> Result<(usize, usize), ReaperError> {
        let mut expired = 0;
        let mut approved = 0;
        for g in self.store.pending_due(now, self.settings.batch).await? {
            let (action, reason) = if g.request.approvals_required == 0 {
                (
                    Action::AutoApprove,
                    format!(
                        "policy {:?} needs no approval",
                        g.policy.as_deref().unwrap_or("?")
                    ),
                )
            } else {
                (
                    Action::Expire,
                    format!(
                        "nobody decided the request before {}",
                        g.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                    ),
                )
            };
            match self
                .grants
                .act(
                    g.id,
                    action,
                    &Actor::System,
                    Some(reason),
                    GrantPatch::default(),
                    serde_json::json!({"policy": g.policy}),
                )
                .await
            {
                Ok(_) if action == Action::Expire => expired += 1,
                Ok(_) => approved += 1,
                Err(GrantError::Refused(app::domain::Refusal::WrongState { .. }))
                | Err(GrantError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(grant = %g.id, error = %e, "could not settle a pending request");
                }
            }
        }
        Ok((expired, approved))
    }
}
