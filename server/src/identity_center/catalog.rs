//! The catalog: permission sets (with their `SessionDuration`), accounts and the OU
//! tree, read from Identity Center and cached in the database with the time of the
//! last sync. Pages read the cache; the reaper refreshes it on an interval and
//! [`sync`] can be called on demand.

use super::{IcError, IdentityCenter};
use crate::store::{CatalogPermissionSet, Store, StoreError};
use app::domain::SessionDuration;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Aws(#[from] IcError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one sync found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub permission_sets: usize,
    pub accounts: usize,
    pub organizational_units: usize,
    pub at: DateTime<Utc>,
}

/// Reads the whole catalog from AWS and replaces the cached one in one transaction.
/// A permission set whose `SessionDuration` is missing or unreadable is cached with
/// the AWS default of one hour, and said so in the log.
pub async fn sync(
    ic: &dyn IdentityCenter,
    store: &dyn Store,
    at: DateTime<Utc>,
) -> Result<SyncReport, CatalogError> {
    let sets = ic.list_permission_sets().await?;
    let nodes = ic.organization_tree().await?;
    let cached: Vec<CatalogPermissionSet> = sets
        .into_iter()
        .map(|p| {
            let session = p
                .session_duration
                .as_deref()
                .map(SessionDuration::parse)
                .transpose();
            let session_duration_seconds = match session {
                Ok(Some(d)) => d.seconds(),
                Ok(None) => {
                    tracing::warn!(permission_set = %p.name, "no SessionDuration; AWS's default PT1H is assumed");
                    3600
                }
                Err(e) => {
                    tracing::warn!(permission_set = %p.name, error = %e, "unreadable SessionDuration; AWS's default PT1H is assumed");
                    3600
                }
            };
            CatalogPermissionSet {
                arn: p.arn,
                name: p.name,
                description: p.description,
                session_duration_seconds,
            }
        })
        .collect();
    store.replace_catalog(&cached, &nodes, at).await?;
    let management = match ic.management_account().await {
        Ok(account) => account,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the organisation's management account");
            None
        }
    };
    store.set_management_account(management.as_deref()).await?;
    let count = |k| nodes.iter().filter(|n| n.kind == k).count();
    let report = SyncReport {
        permission_sets: cached.len(),
        accounts: count(crate::store::NodeKind::Account),
        organizational_units: count(crate::store::NodeKind::Ou),
        at,
    };
    tracing::info!(
        permission_sets = report.permission_sets,
        accounts = report.accounts,
        organizational_units = report.organizational_units,
        "catalog synced"
    );
    Ok(report)
}

/// The cached permission set called `name`, if the catalog has it.
pub async fn permission_set_by_name(
    store: &dyn Store,
    name: &str,
) -> Result<Option<CatalogPermissionSet>, StoreError> {
    Ok(store
        .catalog_permission_sets()
        .await?
        .into_iter()
        .find(|p| p.name == name))
}
