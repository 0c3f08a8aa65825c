//! Revocation: the assignment deleted (or kept, when another grant of the same target
//! still covers it or it was a standing assignment), then the grant `revoked` with its
//! real window final. A revocation is never given up.

use super::target::{self, Release};
use super::{Polled, Reaper, ReaperError, Step};
use crate::identity_center::{Assignment, IcErrorKind};
use crate::jobs::to_std;
use crate::store::{GrantAws, GrantPatch};
use app::domain::{Action, Actor, Grant, GrantState, WindowInputs, Windows};

impl Reaper {
    pub(super) async fn revoke(&self, target: &str, g: Grant) -> Result<Step, ReaperError> {
        let mut w = self.store.grant_aws(g.id).await?.unwrap_or_default();
        let (Some(principal_id), Some(ps_arn)) =
            (w.principal_id.clone(), w.permission_set_arn.clone())
        else {
            // Never provisioned in AWS (no principal resolved): nothing to delete.
            return self
                .revoked(g, w, serde_json::json!({ "assignment": "none" }))
                .await;
        };
        let assignment = Assignment {
            account_id: g.request.account_id.to_string(),
            permission_set_arn: ps_arn,
            principal_type: "USER".into(),
            principal_id,
        };
        // A delete sent before a crash whose request id was never stored is sent again
        // (it may already have removed the assignment): the decision to delete stands.
        if w.delete_request_id.is_none() && w.delete_started_at.is_none() {
            let siblings = self.siblings(&g).await?;
            match target::release(&w, &siblings) {
                Release::KeepStanding => {
                    return self
                        .revoked(
                            g,
                            w,
                            serde_json::json!({ "assignment": "standing_kept",
                                "why": "the user held this assignment before the grant; Timebox does not remove access it did not give" }),
                        )
                        .await;
                }
                Release::Keep { for_grants } => {
                    let ids: Vec<String> = for_grants.iter().map(ToString::to_string).collect();
                    return self
                        .revoked(
                            g,
                            w,
                            serde_json::json!({ "assignment": "kept", "kept_for": ids }),
                        )
                        .await;
                }
                Release::Delete => {}
            }
        }
        if w.delete_request_id.is_none() {
            if !self.hold(target).await? {
                return Ok(Step::Nothing);
            }
            if !self.outstanding.take(g.id) {
                return super::no_slot(self, &g, &mut w).await;
            }
            let now = self.clock.now();
            if w.delete_started_at.is_none() {
                if let (Some(end), GrantState::Revoking) = (g.ends_at, g.state) {
                    if end <= now {
                        self.metrics
                            .reaper_lag
                            .observe(to_std(now - end).as_secs_f64());
                    }
                }
            }
            w.delete_started_at = Some(now);
            self.store.save_grant_aws(g.id, &w).await?;
            let sent = self.ic.delete_assignment(&assignment).await;
            if sent.is_err() {
                self.outstanding.release(g.id);
            }
            match sent {
                Ok(op) => {
                    w.delete_request_id = Some(op.request_id);
                    self.store.save_grant_aws(g.id, &w).await?;
                }
                // Already gone (removed by hand, or deleted just before a crash).
                Err(e) if e.kind == IcErrorKind::NotFound => {
                    return self
                        .revoked(g, w, serde_json::json!({ "assignment": "already_absent" }))
                        .await;
                }
                Err(e) => return self.retry_aws(&g, w, "revoke", &e).await,
            }
        }
        let Some(request_id) = w.delete_request_id.clone() else {
            return Ok(Step::Nothing);
        };
        match self.poll(target, &g, &mut w, &request_id, true).await? {
            Polled::Succeeded => {
                self.revoked(
                    g,
                    w,
                    serde_json::json!({ "assignment": "deleted", "request_id": request_id }),
                )
                .await
            }
            Polled::Waiting => Ok(Step::Waiting),
            Polled::Failed(reason) => {
                // Revocation is never given up: send a new delete after the backoff.
                w.delete_request_id = None;
                w.delete_started_at = None;
                self.retry_later(
                    &g,
                    w,
                    "revoke",
                    &format!("DeleteAccountAssignment FAILED: {reason}"),
                    "aws_failed",
                )
                .await
            }
            Polled::Unreachable(e) => self.retry_aws(&g, w, "revoke", &e).await,
        }
    }

    /// The assignment is gone (or kept for another grant): `revoked_at` is now, and the
    /// real window is final.
    async fn revoked(
        &self,
        g: Grant,
        mut w: GrantAws,
        details: serde_json::Value,
    ) -> Result<Step, ReaperError> {
        w.next_attempt_at = None;
        w.last_error = None;
        w.attempts = 0;
        self.store.save_grant_aws(g.id, &w).await?;
        let revoked_at = self.clock.now();
        let real_end = match (
            g.activated_at,
            g.ends_at,
            g.portal_session,
            g.permission_set_session,
        ) {
            (
                Some(activated_at),
                Some(planned_end),
                Some(portal_session),
                Some(permission_set_session),
            ) => Windows::compute(&WindowInputs {
                activated_at,
                revoked_at: Some(revoked_at.max(activated_at)),
                planned_end,
                portal_session,
                permission_set_session,
                observed: None,
                sessions_closed_at: None,
            })
            .ok()
            .map(|w| w.real.end),
            _ => None,
        };
        let (sessions_close, sessions_until) = self
            .sessions_at_revocation(&g, &details, revoked_at, real_end)
            .await;
        self.grants
            .act(
                g.id,
                Action::RevokeSucceeded,
                &Actor::System,
                None,
                GrantPatch {
                    revoked_at: Some(revoked_at),
                    real_end,
                    sessions_close: Some(sessions_close),
                    sessions_until,
                    ..GrantPatch::default()
                },
                details,
            )
            .await?;
        Ok(Step::Revoked)
    }
}
