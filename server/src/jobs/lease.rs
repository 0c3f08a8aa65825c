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
    kind: &'static str,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    owner: String,
    ttl: Duration,
}

impl Leases {
    /// Leases for a job of `kind`, each lasting `ttl` from when it is taken or renewed.
    pub fn new(
        kind: &'static str,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Self {
        Self {
            kind,
            store,
            clock,
            owner: format!("{kind}-{}", uuid::Uuid::new_v4()),
            ttl,
        }
    }

    /// The kind of job holding these leases (`reaper`, `evidence`, `notify`).
    pub fn kind(&self) -> &'static str {
        self.kind
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Leases of `kind` on an in-memory store, for a minute.
    pub(in crate::jobs) async fn leases(kind: &'static str) -> Leases {
        let store = crate::store::connect("sqlite::memory:", 1)
            .await
            .expect("in-memory store");
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        Leases::new(kind, store, clock, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_lease_is_held_by_one_owner_until_released() {
        let a = leases("test").await;
        let b = Leases::new("test", a.store.clone(), a.clock.clone(), a.ttl);
        assert_ne!(a.owner(), b.owner());
        assert!(a.hold("t").await.expect("hold"));
        assert!(a.hold("t").await.expect("renew"), "the holder renews");
        assert!(!b.hold("t").await.expect("hold"), "one holder at a time");
        let ran = b
            .while_held("t", async { Ok::<_, StoreError>(()) })
            .await
            .expect("while held");
        assert_eq!(ran, None, "not run while another holds the lease");
        a.release("t").await.expect("release");
        let ran = b
            .while_held("t", async { Ok::<_, StoreError>(7) })
            .await
            .expect("while held");
        assert_eq!(ran, Some(7));
        assert!(a.hold("t").await.expect("hold"), "released after the work");
    }
}
