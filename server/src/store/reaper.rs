//! The reaper's side of the store: the queue of grants it has work for, and each
//! grant's AWS bookkeeping (`grant_aws`), written before the AWS call it enables is
//! relied on so that a restart resumes from it.

use super::grants::{GrantRow, Grants, GRANT_COLUMNS};
use super::sql::{micros, qualified, PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{Grant, GrantId, GrantState};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

/// The reaper's AWS bookkeeping for one grant. Every field is written before the
/// AWS call it enables is relied on, so a restart resumes from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantAws {
    pub grant_id: Option<GrantId>,
    /// The Identity Store user id of the requester.
    pub principal_id: Option<String>,
    pub permission_set_arn: Option<String>,
    /// Set just before `CreateAccountAssignment` is sent.
    pub create_started_at: Option<DateTime<Utc>>,
    pub create_request_id: Option<String>,
    /// Set just before `DeleteAccountAssignment` is sent.
    pub delete_started_at: Option<DateTime<Utc>>,
    pub delete_request_id: Option<String>,
    /// The grant shares its assignment with these other grants (JSON list of ids).
    pub shared_with: Option<String>,
    /// Failed attempts of the current step.
    pub attempts: i64,
    /// Retry not before this time (backoff).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Other ways to the same access found at activation (JSON).
    pub other_paths: Option<String>,
}

#[async_trait]
pub trait ReaperQueue {
    /// Grants the reaper has something to do for at `now`: approved and due,
    /// provisioning, active past their end, revoking; skipping those backing off.
    /// Oldest deadline first.
    async fn reaper_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Grant>, StoreError>;

    /// How many grants [`Store::reaper_due`] would return without a limit.
    async fn reaper_queue_depth(&self, now: DateTime<Utc>) -> Result<i64, StoreError>;

    async fn grant_aws(&self, id: GrantId) -> Result<Option<GrantAws>, StoreError>;

    /// Writes the whole row (insert or replace).
    async fn save_grant_aws(&self, id: GrantId, row: &GrantAws) -> Result<(), StoreError>;

    /// Every grant's AWS row whose grant is in one of `states`.
    async fn grant_aws_in_states(
        &self,
        states: &[GrantState],
    ) -> Result<Vec<(Grant, GrantAws)>, StoreError>;

    /// The newest grant for which Timebox sent `CreateAccountAssignment` of
    /// `permission_set_arn` in `account_id` to `principal_id`: whether an assignment
    /// found in AWS is one Timebox made (an indexed lookup, whatever the history).
    async fn grant_that_made(
        &self,
        account_id: &str,
        permission_set_arn: &str,
        principal_id: &str,
    ) -> Result<Option<(Grant, GrantAws)>, StoreError>;
}

#[derive(sqlx::FromRow)]
struct GrantAwsRow {
    grant_id: String,
    principal_id: Option<String>,
    permission_set_arn: Option<String>,
    create_started_at: Option<DateTime<Utc>>,
    create_request_id: Option<String>,
    delete_started_at: Option<DateTime<Utc>>,
    delete_request_id: Option<String>,
    shared_with: Option<String>,
    attempts: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    other_paths: Option<String>,
}

impl TryFrom<GrantAwsRow> for GrantAws {
    type Error = StoreError;
    fn try_from(r: GrantAwsRow) -> Result<Self, StoreError> {
        Ok(GrantAws {
            grant_id: Some(
                GrantId::parse(&r.grant_id)
                    .map_err(|e| StoreError::Corrupt(format!("grant_aws: {e}")))?,
            ),
            principal_id: r.principal_id,
            permission_set_arn: r.permission_set_arn,
            create_started_at: r.create_started_at,
            create_request_id: r.create_request_id,
            delete_started_at: r.delete_started_at,
            delete_request_id: r.delete_request_id,
            shared_with: r.shared_with,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            other_paths: r.other_paths,
        })
    }
}

const GRANT_AWS_COLUMNS: &str = "grant_id, principal_id, permission_set_arn, create_started_at, \
    create_request_id, delete_started_at, delete_request_id, shared_with, attempts, \
    next_attempt_at, last_error, other_paths";

/// The grants the reaper must look at (shared by `reaper_due` and `reaper_queue_depth`;
/// `$1` is now).
const REAPER_DUE_WHERE: &str = "FROM grants LEFT JOIN grant_aws ON grant_aws.grant_id = grants.id \
    WHERE (grant_aws.next_attempt_at IS NULL OR grant_aws.next_attempt_at <= $1) \
    AND ((state = 'approved' AND (requested_start IS NULL OR requested_start <= $1)) \
      OR state IN ('provisioning', 'revoking') \
      OR (state = 'active' AND ends_at <= $1))";

macro_rules! impl_reaper_queue {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl ReaperQueue for $store {
            async fn reaper_due(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let columns = qualified("grants", GRANT_COLUMNS);
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {columns} {REAPER_DUE_WHERE} \
                     ORDER BY COALESCE(ends_at, requested_start, created_at), id LIMIT $2"
                ))
                .bind(now.trunc_subsecs(6))
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Grant::try_from).collect()
            }

            async fn reaper_queue_depth(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
                let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {REAPER_DUE_WHERE}"))
                    .bind(now.trunc_subsecs(6))
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }

            async fn grant_aws(&self, id: GrantId) -> Result<Option<GrantAws>, StoreError> {
                let row: Option<GrantAwsRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_AWS_COLUMNS} FROM grant_aws WHERE grant_id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(GrantAws::try_from).transpose()
            }

            async fn save_grant_aws(&self, id: GrantId, w: &GrantAws) -> Result<(), StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO grant_aws ({GRANT_AWS_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (grant_id) DO UPDATE SET \
                     principal_id = excluded.principal_id, \
                     permission_set_arn = excluded.permission_set_arn, \
                     create_started_at = excluded.create_started_at, \
                     create_request_id = excluded.create_request_id, \
                     delete_started_at = excluded.delete_started_at, \
                     delete_request_id = excluded.delete_request_id, \
                     shared_with = excluded.shared_with, \
                     attempts = excluded.attempts, \
                     next_attempt_at = excluded.next_attempt_at, \
                     last_error = excluded.last_error, \
                     other_paths = excluded.other_paths"
                ))
                .bind(id.to_string())
                .bind(&w.principal_id)
                .bind(&w.permission_set_arn)
                .bind(micros(w.create_started_at))
                .bind(&w.create_request_id)
                .bind(micros(w.delete_started_at))
                .bind(&w.delete_request_id)
                .bind(&w.shared_with)
                .bind(w.attempts)
                .bind(micros(w.next_attempt_at))
                .bind(&w.last_error)
                .bind(&w.other_paths)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn grant_aws_in_states(
                &self,
                states: &[GrantState],
            ) -> Result<Vec<(Grant, GrantAws)>, StoreError> {
                if states.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM grant_aws JOIN grants ON grants.id = grant_aws.grant_id \
                     WHERE grants.state IN (",
                    qualified("grant_aws", GRANT_AWS_COLUMNS)
                ));
                let mut sep = qb.separated(", ");
                for s in states {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
                let rows: Vec<GrantAwsRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let w = GrantAws::try_from(row)?;
                    let Some(id) = w.grant_id else { continue };
                    if let Some(g) = self.get_grant(id).await? {
                        out.push((g, w));
                    }
                }
                Ok(out)
            }

            async fn grant_that_made(
                &self,
                account_id: &str,
                permission_set_arn: &str,
                principal_id: &str,
            ) -> Result<Option<(Grant, GrantAws)>, StoreError> {
                let row: Option<GrantAwsRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM grant_aws JOIN grants ON grants.id = grant_aws.grant_id \
                     WHERE grant_aws.principal_id = $1 AND grant_aws.permission_set_arn = $2 \
                     AND grants.account_id = $3 AND grant_aws.create_started_at IS NOT NULL \
                     ORDER BY grants.created_at DESC, grants.id DESC LIMIT 1",
                    qualified("grant_aws", GRANT_AWS_COLUMNS)
                ))
                .bind(principal_id)
                .bind(permission_set_arn)
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(w) = row.map(GrantAws::try_from).transpose()? else {
                    return Ok(None);
                };
                let Some(id) = w.grant_id else {
                    return Ok(None);
                };
                Ok(self.get_grant(id).await?.map(|g| (g, w)))
            }
        }
    };
}

impl_reaper_queue!(SqliteStore, sqlx::Sqlite);
impl_reaper_queue!(PostgresStore, sqlx::Postgres);
