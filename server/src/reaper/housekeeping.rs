//! Housekeeping, at the start of every pass: pending requests settled, finished
//! requests' slots freed, the grant counts for `/metrics`; and the slow part — the
//! catalog refreshed when it is older than `identity_center.catalog_refresh` (after a
//! failure, tried again a minute later, not every pass) and drift reconciled every
//! `reconcile_every` passes. In the server's loop the slow part runs beside the pass
//! (one at a time), so its Identity Center calls never hold back the revocations the
//! pass hands out.

use super::{Reaper, ReaperError};
use crate::identity_center::catalog;
use crate::jobs::to_std;
use app::domain::{GrantId, GrantState};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

impl Reaper {
    /// Frees the request slots of grants whose request another replica finished (or
    /// that moved on): a slot is held only while the database shows the request
    /// outstanding.
    async fn forget_finished_requests(&self) -> Result<(), ReaperError> {
        if self.outstanding.is_empty() {
            return Ok(());
        }
        let read_at = std::time::Instant::now();
        let rows = self
            .store
            .grant_aws_in_states(&[GrantState::Provisioning, GrantState::Revoking])
            .await?;
        let still: HashSet<GrantId> = rows
            .into_iter()
            .filter(|(g, w)| match g.state {
                GrantState::Provisioning => w.create_started_at.is_some(),
                _ => w.delete_started_at.is_some(),
            })
            .map(|(g, _)| g.id)
            .collect();
        self.outstanding.retain(&still, read_at);
        Ok(())
    }

    /// Pending requests settled, finished requests forgotten, grant counts. Returns
    /// (expired, auto-approved) and whether drift is due this pass.
    pub(super) async fn housekeeping(
        &self,
        now: DateTime<Utc>,
    ) -> Result<((usize, usize), bool), ReaperError> {
        let tick_no = {
            let mut t = self.ticks.lock().unwrap_or_else(|p| p.into_inner());
            *t = t.wrapping_add(1);
            *t
        };
        let settled = self.settle_pending(now).await?;
        self.forget_finished_requests().await?;
        self.metrics
            .set_grant_counts(&self.store.grant_counts().await?);
        let drift_due =
            self.settings.reconcile_every > 0 && tick_no % self.settings.reconcile_every == 0;
        Ok((settled, drift_due))
    }

    /// The slow part: the catalog refreshed when stale (not again within
    /// [`CATALOG_RETRY`] of a failed attempt), then drift when due.
    pub(super) async fn slow_housekeeping(
        &self,
        now: DateTime<Utc>,
        drift_due: bool,
    ) -> Result<(), ReaperError> {
        let stale = match self.store.catalog_synced_at().await? {
            None => true,
            Some(at) => to_std(now - at) >= self.settings.catalog_refresh,
        };
        let retry_due = {
            let failed = self
                .catalog_failed_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            failed.is_none_or(|at| to_std(now - at) >= CATALOG_RETRY)
        };
        if stale && retry_due {
            match catalog::sync(self.ic.as_ref(), self.store.as_ref(), now).await {
                Ok(_) => {
                    *self
                        .catalog_failed_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = None;
                    if let Err(e) = self.grants.policy().recheck_catalog().await {
                        tracing::warn!(error = %e, "could not check the policy against the new catalog");
                    }
                }
                Err(e) => {
                    *self
                        .catalog_failed_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(now);
                    tracing::warn!(error = %e, "catalog sync failed; the cached catalog is kept, tried again in a minute")
                }
            }
        }
        if drift_due {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "drift reconciliation failed");
            }
        }
        Ok(())
    }
}

/// After a failed catalog sync, the next attempt waits this long (a sync is a dozen
/// Identity Center calls; tried every pass it would take the budget revocations need).
pub const CATALOG_RETRY: std::time::Duration = std::time::Duration::from_secs(60);
