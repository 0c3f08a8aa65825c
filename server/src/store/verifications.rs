//! Whole-chain verifications asked for on demand (the Audit page, `POST
//! /api/v1/audit/verify`), as stored: who asked and when, how far the `audit-verify`
//! job is, and the result. At most one is open (queued or running) at a time: the
//! unique `open_slot` refuses a second however many replicas are asked at once.

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::VerificationState;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

/// A verification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVerification {
    pub id: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub state: VerificationState,
    pub started_at: Option<DateTime<Utc>>,
    /// The last time the job running it reported progress.
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub head_seq: i64,
    pub events_verified: i64,
    pub grants_checked: i64,
    pub checkpoints_verified: i64,
    pub first_broken_seq: Option<i64>,
    pub problem: Option<String>,
    pub summary: Option<String>,
}

/// How far a running verification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerificationProgress {
    pub head_seq: i64,
    pub events_verified: i64,
    pub grants_checked: i64,
}

/// How a verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationResult {
    pub state: VerificationState,
    pub progress: VerificationProgress,
    pub checkpoints_verified: i64,
    pub first_broken_seq: Option<i64>,
    pub problem: Option<String>,
    pub summary: String,
}

#[async_trait]
pub trait AuditVerifications {
    /// Queues a verification asked for by `by`; [`StoreError::VerificationOpen`] with
    /// the open one's id when one is queued or running already.
    async fn request_verification(
        &self,
        id: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<StoredVerification, StoreError>;

    /// The queued or running verification, if any.
    async fn open_verification(&self) -> Result<Option<StoredVerification>, StoreError>;

    /// The most recently asked-for verification.
    async fn latest_verification(&self) -> Result<Option<StoredVerification>, StoreError>;

    /// Marks `id` running from `at` (again, when a replica that ran it stopped).
    async fn start_verification(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Records how far `id` is, at `at`.
    async fn verification_progress(
        &self,
        id: &str,
        progress: VerificationProgress,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records the result of `id` and closes it.
    async fn finish_verification(
        &self,
        id: &str,
        result: &VerificationResult,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

const COLUMNS: &str = "id, requested_by, requested_at, state, started_at, heartbeat_at, \
     finished_at, head_seq, events_verified, grants_checked, checkpoints_verified, \
     first_broken_seq, problem, summary";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    state: String,
    started_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    head_seq: i64,
    events_verified: i64,
    grants_checked: i64,
    checkpoints_verified: i64,
    first_broken_seq: Option<i64>,
    problem: Option<String>,
    summary: Option<String>,
}

impl TryFrom<Row> for StoredVerification {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            state: VerificationState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("verification state {:?}", r.state)))?,
            id: r.id,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            started_at: r.started_at,
            heartbeat_at: r.heartbeat_at,
            finished_at: r.finished_at,
            head_seq: r.head_seq,
            events_verified: r.events_verified,
            grants_checked: r.grants_checked,
            checkpoints_verified: r.checkpoints_verified,
            first_broken_seq: r.first_broken_seq,
            problem: r.problem,
            summary: r.summary,
        })
    }
}

macro_rules! impl_verifications {
    ($store:ty) => {
        #[async_trait]
        impl AuditVerifications for $store {
            async fn request_verification(
                &self,
                id: &str,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<StoredVerification, StoreError> {
                let inserted: Result<Row, sqlx::Error> = sqlx::query_as(&format!(
                    "INSERT INTO audit_verifications (id, requested_by, requested_at, state, open_slot) \
                     VALUES ($1, $2, $3, 'queued', 1) RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(by)
                .bind(at.trunc_subsecs(6))
                .fetch_one(&self.pool)
                .await;
                match inserted {
                    Ok(row) => row.try_into(),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        let open = self.open_verification().await?;
                        Err(StoreError::VerificationOpen(
                            open.map(|v| v.id).unwrap_or_default(),
                        ))
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn open_verification(&self) -> Result<Option<StoredVerification>, StoreError> {
                let row: Option<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM audit_verifications WHERE open_slot = 1"
                ))
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn latest_verification(
                &self,
            ) -> Result<Option<StoredVerification>, StoreError> {
                let row: Option<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM audit_verifications \
                     ORDER BY requested_at DESC, id DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn start_verification(
                &self,
                id: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE audit_verifications SET state = 'running', started_at = $2, \
                     heartbeat_at = $2, head_seq = 0, events_verified = 0, grants_checked = 0 \
                     WHERE id = $1 AND open_slot = 1",
                )
                .bind(id)
                .bind(at.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn verification_progress(
                &self,
                id: &str,
                p: VerificationProgress,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE audit_verifications SET head_seq = $2, events_verified = $3, \
                     grants_checked = $4, heartbeat_at = $5 WHERE id = $1 AND open_slot = 1",
                )
                .bind(id)
                .bind(p.head_seq)
                .bind(p.events_verified)
                .bind(p.grants_checked)
                .bind(at.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn finish_verification(
                &self,
                id: &str,
                r: &VerificationResult,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE audit_verifications SET state = $2, head_seq = $3, \
                     events_verified = $4, grants_checked = $5, checkpoints_verified = $6, \
                     first_broken_seq = $7, problem = $8, summary = $9, finished_at = $10, \
                     heartbeat_at = $10, open_slot = NULL WHERE id = $1 AND open_slot = 1",
                )
                .bind(id)
                .bind(r.state.as_str())
                .bind(r.progress.head_seq)
                .bind(r.progress.events_verified)
                .bind(r.progress.grants_checked)
                .bind(r.checkpoints_verified)
                .bind(r.first_broken_seq)
                .bind(&r.problem)
                .bind(&r.summary)
                .bind(at.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

impl_verifications!(SqliteStore);
impl_verifications!(PostgresStore);
