//! Housekeeping, at the start of every pass: the catalog refreshed when it is older
//! than `identity_center.catalog_refresh`, pending requests settled, drift reconciled
//! every `reconcile_every` passes, and the grant counts for `/metrics`.

use super::{Reaper, ReaperError};
use crate::identity_center::catalog;
use crate::jobs::to_std;
use chrono::{DateTime, Utc};

impl Reaper {
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
