//! Signed checkpoints of the audit chain, as stored: one row per sequence number
//! (the primary key, so two replicas cannot write two), and one row per sink a
//! checkpoint was published to. Signing and checking are `crate::audit`'s; this file
//! only keeps the rows.

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

/// A checkpoint as stored: the chain's `hash` at `seq`, holding `events` events,
/// signed at `at` by `public_key` (hex) with `signature` (hex).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub events: i64,
    pub public_key: String,
    pub signature: String,
}

/// Where a checkpoint was published.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Publication {
    pub sink: String,
    pub published_at: DateTime<Utc>,
}

#[async_trait]
pub trait AuditCheckpoints {
    /// Stores `checkpoint` unless one is stored for its sequence already; true when
    /// this call stored it.
    async fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool, StoreError>;

    /// The checkpoint with the highest sequence number.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The newest checkpoints, newest first, at most `limit`.
    async fn recent_checkpoints(&self, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError>;

    /// Checkpoints after `after_seq` in sequence order, at most `limit`.
    async fn checkpoints(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError>;

    /// The oldest checkpoints not yet published to `sink`, at most `limit`.
    async fn unpublished_checkpoints(
        &self,
        sink: &str,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError>;

    /// Records that the checkpoint at `seq` was published to `sink` (idempotent).
    async fn mark_checkpoint_published(
        &self,
        seq: i64,
        sink: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Where the checkpoint at `seq` was published, by sink name.
    async fn checkpoint_publications(&self, seq: i64) -> Result<Vec<Publication>, StoreError>;
}

const CHECKPOINT_COLUMNS: &str = "seq, hash, at, events, public_key, signature";

macro_rules! impl_checkpoints {
    ($store:ty) => {
        #[async_trait]
        impl AuditCheckpoints for $store {
            async fn record_checkpoint(&self, c: &StoredCheckpoint) -> Result<bool, StoreError> {
                let done = sqlx::query(&format!(
                    "INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (seq) DO NOTHING"
                ))
                .bind(c.seq)
                .bind(&c.hash)
                .bind(c.at.trunc_subsecs(6))
                .bind(c.events)
                .bind(&c.public_key)
                .bind(&c.signature)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn recent_checkpoints(
                &self,
                limit: u32,
            ) -> Result<Vec<StoredCheckpoint>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT $1"
                ))
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn checkpoints(
                &self,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<StoredCheckpoint>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints \
                     WHERE seq > $1 ORDER BY seq LIMIT $2"
                ))
                .bind(after_seq)
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn unpublished_checkpoints(
                &self,
                sink: &str,
                limit: u32,
            ) -> Result<Vec<StoredCheckpoint>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints c \
                     WHERE NOT EXISTS (SELECT 1 FROM audit_checkpoint_publications p \
                                       WHERE p.seq = c.seq AND p.sink = $1) \
                     ORDER BY seq LIMIT $2"
                ))
                .bind(sink)
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn mark_checkpoint_published(
                &self,
                seq: i64,
                sink: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_checkpoint_publications (seq, sink, published_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (seq, sink) DO NOTHING",
                )
                .bind(seq)
                .bind(sink)
                .bind(at.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn checkpoint_publications(
                &self,
                seq: i64,
            ) -> Result<Vec<Publication>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT sink, published_at FROM audit_checkpoint_publications \
                     WHERE seq = $1 ORDER BY sink",
                )
                .bind(seq)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

impl_checkpoints!(SqliteStore);
impl_checkpoints!(PostgresStore);
