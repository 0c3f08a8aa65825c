//! The cached Identity Center catalog: permission sets and the organisation tree
//! (types in `app::domain::catalog`), replaced whole by each sync.

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{CatalogNode, CatalogPermissionSet, NodeKind};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

#[async_trait]
pub trait Catalog {
    /// Replaces the cached catalog with a fresh sync, in one transaction.
    async fn replace_catalog(
        &self,
        permission_sets: &[CatalogPermissionSet],
        nodes: &[CatalogNode],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn catalog_permission_sets(&self) -> Result<Vec<CatalogPermissionSet>, StoreError>;

    async fn catalog_nodes(&self) -> Result<Vec<CatalogNode>, StoreError>;

    /// When the catalog was last synced, `None` before the first sync.
    async fn catalog_synced_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Records the organisation's management account with the last sync (`None`:
    /// it could not be read).
    async fn set_management_account(&self, account: Option<&str>) -> Result<(), StoreError>;

    /// The management account the last sync read, if any.
    async fn management_account(&self) -> Result<Option<String>, StoreError>;
}

macro_rules! impl_catalog {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl Catalog for $store {
            async fn replace_catalog(
                &self,
                permission_sets: &[CatalogPermissionSet],
                nodes: &[CatalogNode],
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let at = at.trunc_subsecs(6);
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM catalog_permission_sets")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM catalog_nodes").execute(&mut *tx).await?;
                for p in permission_sets {
                    sqlx::query(
                        "INSERT INTO catalog_permission_sets \
                         (arn, name, description, session_duration_seconds, synced_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&p.arn)
                    .bind(&p.name)
                    .bind(&p.description)
                    .bind(p.session_duration_seconds)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                for n in nodes {
                    sqlx::query(
                        "INSERT INTO catalog_nodes (id, kind, name, parent_id, synced_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&n.id)
                    .bind(n.kind.as_str())
                    .bind(&n.name)
                    .bind(&n.parent_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO catalog_sync (id, last_synced_at) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET last_synced_at = excluded.last_synced_at",
                )
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn catalog_permission_sets(
                &self,
            ) -> Result<Vec<CatalogPermissionSet>, StoreError> {
                let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
                    "SELECT arn, name, description, session_duration_seconds \
                     FROM catalog_permission_sets ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(arn, name, description, session_duration_seconds)| {
                        CatalogPermissionSet {
                            arn,
                            name,
                            description,
                            session_duration_seconds,
                        }
                    })
                    .collect())
            }

            async fn catalog_nodes(&self) -> Result<Vec<CatalogNode>, StoreError> {
                let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
                    "SELECT id, kind, name, parent_id FROM catalog_nodes ORDER BY kind, name, id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, kind, name, parent_id)| {
                        Ok(CatalogNode {
                            kind: NodeKind::parse(&kind).ok_or_else(|| {
                                StoreError::Corrupt(format!("catalog node {id}: kind {kind:?}"))
                            })?,
                            id,
                            name,
                            parent_id,
                        })
                    })
                    .collect()
            }

            async fn catalog_synced_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
                let row: Option<(DateTime<Utc>,)> =
                    sqlx::query_as("SELECT last_synced_at FROM catalog_sync WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(t,)| t))
            }

            async fn set_management_account(
                &self,
                account: Option<&str>,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE catalog_sync SET management_account = $1 WHERE id = 1")
                    .bind(account)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn management_account(&self) -> Result<Option<String>, StoreError> {
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT management_account FROM catalog_sync WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.and_then(|(a,)| a))
            }
        }
    };
}

impl_catalog!(SqliteStore, sqlx::Sqlite);
impl_catalog!(PostgresStore, sqlx::Postgres);
