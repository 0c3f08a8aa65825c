//! Leases on named targets: which replica works on what (the job runner's claim).

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

#[async_trait]
pub trait TargetLeases {
    /// Takes (or renews) the lease on `target` for `owner` until `until`, if it is
    /// free, expired at `now`, or already `owner`'s. True when `owner` holds it.
    async fn lease_target(
        &self,
        target: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives the lease back (only if `owner` still holds it).
    async fn release_target(&self, target: &str, owner: &str) -> Result<(), StoreError>;
}

macro_rules! impl_leases {
    ($store:ty) => {
        #[async_trait]
        impl TargetLeases for $store {
            async fn lease_target(
                &self,
                target: &str,
                owner: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                // One statement, so two replicas cannot both see the lease as free.
                let done = sqlx::query(
                    "INSERT INTO target_leases (target, owner, lease_until) VALUES ($1, $2, $3) \
                     ON CONFLICT (target) DO UPDATE \
                     SET owner = excluded.owner, lease_until = excluded.lease_until \
                     WHERE target_leases.owner = excluded.owner \
                        OR target_leases.lease_until < $4",
                )
                .bind(target)
                .bind(owner)
                .bind(until.trunc_subsecs(6))
                .bind(now.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_target(&self, target: &str, owner: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM target_leases WHERE target = $1 AND owner = $2")
                    .bind(target)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

impl_leases!(SqliteStore);
impl_leases!(PostgresStore);
