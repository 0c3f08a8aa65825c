//! Leases: how a job claims shared work so that one replica acts on it at a time.
//! Each job holds its leases under one owner name per process (`<kind>-<uuid>`) for a
//! fixed time to live, renewed by taking the lease again; a crashed owner's leases
//! simply run out and the next holder resumes from the database.

use crate::clock::Clock;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// One job's leases: on keyed targets (`Store::lease_target`, e.g. the reaper's
/// assignment targets and `evidence|<grant>`) and on claimed rows (the outbox's
/// `Store::claim_deliveries`), all under [`Leases::owner`].
#[derive(Debug, Clone)]
pub struct Leases {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    owner: String,
    ttl: Duration,
}

impl Leases {
    /// Leases for a job of `kind`, each lasting `ttl` from when it is taken or renewed.
    pub fn new(kind: &str, store: Arc<dyn Store>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            owner: format!("{kind}-{}", uuid::Uuid::new_v4()),
            ttl,
        }
    }

    /// The owner name this process holds its leases under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When a lease taken at `now` runs out.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + super::to_chrono(self.ttl)
    }

    /// Takes the lease on `key`, or renews it when this owner holds it already. False
    /// when another owner holds it (one conditional statement: two replicas cannot
    /// both win).
    pub async fn hold(&self, key: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        self.store
            .lease_target(key, &self.owner, now, self.until(now))
            .await
    }

    /// Gives the lease on `key` up (a no-op when another owner holds it).
    pub async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.store.release_target(key, &self.owner).await
    }

    /// Runs `work` holding the lease on `key` and releases it after, whatever the work
    /// came to; `None` (and `work` never started) when another owner holds it.
    pub async fn while_held<T, E: From<StoreError>>(
        &self,
        key: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<Option<T>, E> {
        if !self.hold(key).await? {
            return Ok(None);
        }
        let outcome = work.await;
        self.release(key).await?;
        outcome.map(Some)
    }
}
