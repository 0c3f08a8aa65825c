//! Housekeeping, at the start of every pass: the catalog refreshed when it is older
//! than `identity_center.catalog_refresh`, pending requests settled, drift reconciled
//! every `reconcile_every` passes, and the grant counts for `/metrics`.

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

    /// Catalog refresh when due, pending requests settled, drift every few passes,
    /// grant counts. Returns (expired, auto-approved).
    pub(super) async fn housekeeping(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), ReaperError> {
        let tick_no = {
            let mut t = self.ticks.lock().unwrap_or_else(|p| p.into_inner());
            *t = t.wrapping_add(1);
            *t
        };
        let stale = match self.store.catalog_synced_at().await? {
            None => true,
            Some(at) => to_std(now - at) >= self.settings.catalog_refresh,
        };
        if stale {
            match catalog::sync(self.ic.as_ref(), self.store.as_ref(), now).await {
                Ok(_) => {
                    if let Err(e) = self.grants.policy().recheck_catalog().await {
                        tracing::warn!(error = %e, "could not check the policy against the new catalog");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catalog sync failed; the cached catalog is kept")
                }
            }
        }
        let settled = self.settle_pending(now).await?;
        self.forget_finished_requests().await?;
        if self.settings.reconcile_every > 0 && tick_no % self.settings.reconcile_every == 0 {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "drift reconciliation failed");
            }
        }
        self.metrics
            .set_grant_counts(&self.store.grant_counts().await?);
        Ok(settled)
    }
}
