//! Drift: Identity Center's assignments compared with the database. What Timebox made
//! and should be gone is removed and reported; what it did not make is reported, never
//! removed.

use super::{Reaper, ReaperError};
use crate::identity_center::IcErrorKind;
use crate::store::{GrantAws, NewAuditEvent, StoreError};
use app::domain::{AuditAction, Grant, GrantId, GrantState};
use std::collections::{BTreeMap, HashSet};

impl Reaper {
    /// Compares Identity Center's assignments for the permission sets and accounts
    /// Timebox has granted with the database: an assignment Timebox made that should
    /// be gone is removed and reported; a user assignment Timebox did not make is
    /// reported (once per process), not removed. Returns the number of findings.
    pub async fn reconcile(&self) -> Result<usize, ReaperError> {
        let rows = self.store.grant_aws_in_states(&GrantState::ALL).await?;
        // (account, permission set) → principals that should hold it / Timebox made.
        let mut should: BTreeMap<(String, String), HashSet<String>> = BTreeMap::new();
        let mut made: BTreeMap<(String, String), Vec<(Grant, GrantAws)>> = BTreeMap::new();
        for (g, w) in rows {
            let (Some(p), Some(arn)) = (w.principal_id.clone(), w.permission_set_arn.clone())
            else {
                continue;
            };
            let key = (g.request.account_id.to_string(), arn);
            let entry = should.entry(key.clone()).or_default();
            if g.state.may_hold_assignment() {
                entry.insert(p);
            }
            if w.create_request_id.is_some() || w.create_started_at.is_some() {
                made.entry(key).or_default().push((g, w));
            }
        }
        let mut findings = 0;
        for ((account, arn), holders) in &should {
            let list = self.ic.list_assignments(account, arn).await?;
            for a in list.iter().filter(|a| a.principal_type == "USER") {
                if holders.contains(&a.principal_id) {
                    continue;
                }
                let ours = made.get(&(account.clone(), arn.clone())).and_then(|v| {
                    v.iter()
                        .find(|(_, w)| w.principal_id.as_deref() == Some(a.principal_id.as_str()))
                });
                findings += 1;
                if let Some((g, _)) = ours {
                    let removed = match self.ic.delete_assignment(a).await {
                        Ok(_) => true,
                        Err(e) if e.kind == IcErrorKind::NotFound => true,
                        Err(e) => {
                            tracing::warn!(error = %e, "drift: cannot remove a leftover assignment");
                            false
                        }
                    };
                    tracing::warn!(grant = %g.id, account, permission_set_arn = arn, removed, "drift: an assignment Timebox made should be gone");
                    self.audit_drift(
                        Some(g.id),
                        AuditAction::DriftRemoved,
                        "an assignment Timebox made was still present after its grant ended",
                        serde_json::json!({
                            "account_id": account,
                            "permission_set_arn": arn,
                            "principal_id": a.principal_id,
                            "removed": removed,
                        }),
                    )
                    .await?;
                } else {
                    let key = format!("{account}|{arn}|{}", a.principal_id);
                    let first = self
                        .reported
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key);
                    if first {
                        tracing::warn!(account, permission_set_arn = arn, principal_id = %a.principal_id, "drift: an assignment Timebox did not make (reported, not removed)");
                        self.audit_drift(
                            None,
                            AuditAction::DriftUnmanaged,
                            "a user assignment of a managed permission set that Timebox did not make",
                            serde_json::json!({
                                "account_id": account,
                                "permission_set_arn": arn,
                                "principal_id": a.principal_id,
                            }),
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(findings)
    }

    /// Records a drift finding in the audit log, as Timebox itself.
    async fn audit_drift(
        &self,
        grant_id: Option<GrantId>,
        action: AuditAction,
        reason: &str,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store
            .append_audit(NewAuditEvent {
                grant_id,
                at: self.clock.now(),
                actor: "timebox".into(),
                action,
                from_state: None,
                to_state: None,
                reason: Some(reason.into()),
                details,
            })
            .await?;
        Ok(())
    }
}
