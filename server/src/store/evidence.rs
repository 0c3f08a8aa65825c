//! Each grant's evidence: its CloudTrail activity (paged by keyset) and its
//! bookkeeping row (collection schedule, summary, investigation).

use super::grants::{GrantRow, GRANT_COLUMNS};
use super::sql::{micros, qualified, PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{ActivityEvent, Grant, GrantId, IpHistory};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

/// Keyset position in a grant's activity: the last event of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ActivityCursor {
    pub event_time: DateTime<Utc>,
    pub event_id: String,
}

impl ActivityCursor {
    pub fn after(e: &ActivityEvent) -> Self {
        Self {
            event_time: e.event_time,
            event_id: e.event_id.clone(),
        }
    }
}

/// The evidence bookkeeping of one grant: the collection schedule, what the activity
/// says (`summary`, JSON of [`app::domain::EvidenceSummary`]) and the investigation
/// (`investigation`, JSON of [`app::domain::InvestigationSummary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantEvidence {
    pub collections: i64,
    pub last_collected_at: Option<DateTime<Utc>>,
    /// Collected once the real window had closed.
    pub window_close_collected_at: Option<DateTime<Utc>>,
    /// Collected once the real window plus CloudTrail's delivery delay had passed.
    pub final_collected_at: Option<DateTime<Utc>>,
    pub next_collection_at: Option<DateTime<Utc>>,
    /// Failed attempts in a row, and the last failure.
    pub attempts: i64,
    pub last_error: Option<String>,
    pub summary: Option<String>,
    /// The `AWSReservedSSO_…` role ARN, once resolved.
    pub role_arn: Option<String>,
    /// Written right after `StartInvestigation` answers, before it is polled.
    pub investigation_id: Option<String>,
    pub investigation_status: Option<String>,
    pub investigation: Option<String>,
}

#[async_trait]
pub trait Evidence {
    /// Stores a page of a grant's events; an event already stored for the grant (same
    /// `event_id`) is skipped. Returns how many were new.
    async fn insert_activity(
        &self,
        grant: GrantId,
        events: &[ActivityEvent],
    ) -> Result<u64, StoreError>;

    /// At most `limit` of a grant's events in `(event_time, event_id)` order, after
    /// `after` (keyset pagination: no page reads the rows before it).
    async fn activity_page(
        &self,
        grant: GrantId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<ActivityEvent>, StoreError>;

    async fn grant_evidence(&self, grant: GrantId) -> Result<Option<GrantEvidence>, StoreError>;

    /// The grants created since `since` that were activated, of each of `accesses`
    /// (requester, account, permission set), with their evidence summaries: what the
    /// inbox says of each request's recent use, for all its requests in one query
    /// per [`super::approvals::IDS_PER_QUERY`] accesses.
    async fn recent_uses(
        &self,
        accesses: &[(String, String, String)],
        since: DateTime<Utc>,
    ) -> Result<Vec<RecentUseRow>, StoreError>;

    /// Writes the whole row (insert or replace).
    async fn save_grant_evidence(
        &self,
        grant: GrantId,
        row: &GrantEvidence,
    ) -> Result<(), StoreError>;

    /// Active and revoked grants whose evidence is due at `now`: never collected, past
    /// `next_collection_at`, or revoked since the last collection. Oldest first.
    async fn evidence_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Grant>, StoreError>;

    /// What `requester`'s other grants' activity before `before` says about `ips`:
    /// whether there is any such activity, and which of `ips` it used.
    async fn source_ip_history(
        &self,
        requester: &str,
        exclude: GrantId,
        ips: &[String],
        before: DateTime<Utc>,
    ) -> Result<IpHistory, StoreError>;
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    event_id: String,
    event_time: DateTime<Utc>,
    event_name: String,
    event_source: String,
    aws_region: Option<String>,
    source_ip: Option<String>,
    user_agent: Option<String>,
    error_code: Option<String>,
    read_only: Option<bool>,
    resources: String,
    principal_id: Option<String>,
    session_issuer_arn: Option<String>,
    session_created_at: Option<DateTime<Utc>>,
}

impl TryFrom<ActivityRow> for ActivityEvent {
    type Error = StoreError;
    fn try_from(r: ActivityRow) -> Result<Self, StoreError> {
        let resources: Vec<String> = serde_json::from_str(&r.resources)
            .map_err(|e| StoreError::Corrupt(format!("activity {}: resources: {e}", r.event_id)))?;
        Ok(ActivityEvent {
            event_id: r.event_id,
            event_time: r.event_time,
            event_name: r.event_name,
            event_source: r.event_source,
            aws_region: r.aws_region,
            source_ip: r.source_ip,
            user_agent: r.user_agent,
            error_code: r.error_code,
            read_only: r.read_only,
            resources,
            principal_id: r.principal_id,
            session_issuer_arn: r.session_issuer_arn,
            session_created_at: r.session_created_at,
        })
    }
}

const ACTIVITY_COLUMNS: &str = "event_id, event_time, event_name, event_source, aws_region, \
    source_ip, user_agent, error_code, read_only, resources, principal_id, session_issuer_arn, \
    session_created_at";

const EVIDENCE_COLUMNS: &str = "collections, last_collected_at, window_close_collected_at, \
    final_collected_at, next_collection_at, attempts, last_error, summary, role_arn, \
    investigation_id, investigation_status, investigation";

/// One grant as [`Evidence::recent_uses`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecentUseRow {
    pub id: String,
    pub requester: String,
    pub account_id: String,
    pub permission_set: String,
    pub activated: bool,
    /// The evidence summary (JSON), once collected.
    pub summary: Option<String>,
}

macro_rules! impl_evidence {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl Evidence for $store {
            async fn insert_activity(
                &self,
                grant: GrantId,
                events: &[ActivityEvent],
            ) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                let mut inserted = 0;
                for e in events {
                    let resources = serde_json::to_string(&e.resources)
                        .map_err(|err| StoreError::Corrupt(format!("resources: {err}")))?;
                    let done = sqlx::query(&format!(
                        "INSERT INTO grant_activity (grant_id, {ACTIVITY_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                         ON CONFLICT (grant_id, event_id) DO NOTHING"
                    ))
                    .bind(grant.to_string())
                    .bind(&e.event_id)
                    .bind(e.event_time.trunc_subsecs(6))
                    .bind(&e.event_name)
                    .bind(&e.event_source)
                    .bind(&e.aws_region)
                    .bind(&e.source_ip)
                    .bind(&e.user_agent)
                    .bind(&e.error_code)
                    .bind(e.read_only)
                    .bind(resources)
                    .bind(&e.principal_id)
                    .bind(&e.session_issuer_arn)
                    .bind(e.session_created_at.map(|t| t.trunc_subsecs(6)))
                    .execute(&mut *tx)
                    .await?;
                    inserted += done.rows_affected();
                }
                tx.commit().await?;
                Ok(inserted)
            }

            async fn activity_page(
                &self,
                grant: GrantId,
                after: Option<&ActivityCursor>,
                limit: u32,
            ) -> Result<Vec<ActivityEvent>, StoreError> {
                let limit = i64::from(limit.clamp(1, 1000));
                let rows: Vec<ActivityRow> = match after {
                    Some(c) => {
                        sqlx::query_as(&format!(
                            "SELECT {ACTIVITY_COLUMNS} FROM grant_activity WHERE grant_id = $1 \
                             AND (event_time > $2 OR (event_time = $2 AND event_id > $3)) \
                             ORDER BY event_time, event_id LIMIT $4"
                        ))
                        .bind(grant.to_string())
                        .bind(c.event_time.trunc_subsecs(6))
                        .bind(&c.event_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query_as(&format!(
                            "SELECT {ACTIVITY_COLUMNS} FROM grant_activity WHERE grant_id = $1 \
                             ORDER BY event_time, event_id LIMIT $2"
                        ))
                        .bind(grant.to_string())
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                rows.into_iter().map(ActivityEvent::try_from).collect()
            }

            async fn grant_evidence(
                &self,
                grant: GrantId,
            ) -> Result<Option<GrantEvidence>, StoreError> {
                let row: Option<GrantEvidence> = sqlx::query_as(&format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM grant_evidence WHERE grant_id = $1"
                ))
                .bind(grant.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            async fn recent_uses(
                &self,
                accesses: &[(String, String, String)],
                since: DateTime<Utc>,
            ) -> Result<Vec<RecentUseRow>, StoreError> {
                let mut out = Vec::new();
                for chunk in accesses.chunks(super::approvals::IDS_PER_QUERY) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT g.id, g.requester, g.account_id, g.permission_set, \
                         g.activated_at IS NOT NULL AS activated, e.summary \
                         FROM grants g LEFT JOIN grant_evidence e ON e.grant_id = g.id \
                         WHERE g.activated_at IS NOT NULL AND g.created_at >= ",
                    );
                    qb.push_bind(since)
                        .push(" AND (g.requester, g.account_id, g.permission_set) IN (VALUES ");
                    let mut sep = qb.separated(", ");
                    for (requester, account, permission_set) in chunk {
                        sep.push("(")
                            .push_bind_unseparated(requester.clone())
                            .push_unseparated(", ")
                            .push_bind_unseparated(account.clone())
                            .push_unseparated(", ")
                            .push_bind_unseparated(permission_set.clone())
                            .push_unseparated(")");
                    }
                    qb.push(")");
                    out.extend(qb.build_query_as::<RecentUseRow>().fetch_all(&self.pool).await?);
                }
                Ok(out)
            }

            async fn save_grant_evidence(
                &self,
                grant: GrantId,
                e: &GrantEvidence,
            ) -> Result<(), StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO grant_evidence (grant_id, {EVIDENCE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (grant_id) DO UPDATE SET \
                     collections = excluded.collections, \
                     last_collected_at = excluded.last_collected_at, \
                     window_close_collected_at = excluded.window_close_collected_at, \
                     final_collected_at = excluded.final_collected_at, \
                     next_collection_at = excluded.next_collection_at, \
                     attempts = excluded.attempts, \
                     last_error = excluded.last_error, \
                     summary = excluded.summary, \
                     role_arn = excluded.role_arn, \
                     investigation_id = excluded.investigation_id, \
                     investigation_status = excluded.investigation_status, \
                     investigation = excluded.investigation"
                ))
                .bind(grant.to_string())
                .bind(e.collections)
                .bind(micros(e.last_collected_at))
                .bind(micros(e.window_close_collected_at))
                .bind(micros(e.final_collected_at))
                .bind(micros(e.next_collection_at))
                .bind(e.attempts)
                .bind(&e.last_error)
                .bind(&e.summary)
                .bind(&e.role_arn)
                .bind(&e.investigation_id)
                .bind(&e.investigation_status)
                .bind(&e.investigation)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn evidence_due(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let columns = qualified("grants", GRANT_COLUMNS);
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {columns} FROM grants \
                     LEFT JOIN grant_evidence e ON e.grant_id = grants.id \
                     WHERE grants.state IN ('active', 'revoked') \
                     AND grants.activated_at IS NOT NULL \
                     AND (e.grant_id IS NULL OR e.next_collection_at IS NULL \
                       OR e.next_collection_at <= $1 \
                       OR (grants.state = 'revoked' AND (e.last_collected_at IS NULL \
                           OR e.last_collected_at < grants.revoked_at))) \
                     ORDER BY grants.activated_at, grants.id LIMIT $2"
                ))
                .bind(now.trunc_subsecs(6))
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Grant::try_from).collect()
            }

            async fn source_ip_history(
                &self,
                requester: &str,
                exclude: GrantId,
                ips: &[String],
                before: DateTime<Utc>,
            ) -> Result<IpHistory, StoreError> {
                let before = before.trunc_subsecs(6);
                let any: Option<(String,)> = sqlx::query_as(
                    "SELECT a.grant_id FROM grant_activity a JOIN grants g ON g.id = a.grant_id \
                     WHERE g.requester = $1 AND a.grant_id <> $2 AND a.event_time < $3 LIMIT 1",
                )
                .bind(requester)
                .bind(exclude.to_string())
                .bind(before)
                .fetch_optional(&self.pool)
                .await?;
                let mut history = IpHistory {
                    has_history: any.is_some(),
                    known: Default::default(),
                };
                if !history.has_history || ips.is_empty() {
                    return Ok(history);
                }
                for chunk in ips.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT DISTINCT a.source_ip FROM grant_activity a \
                         JOIN grants g ON g.id = a.grant_id WHERE g.requester = ",
                    );
                    qb.push_bind(requester)
                        .push(" AND a.grant_id <> ")
                        .push_bind(exclude.to_string())
                        .push(" AND a.event_time < ")
                        .push_bind(before)
                        .push(" AND a.source_ip IN (");
                    let mut sep = qb.separated(", ");
                    for ip in chunk {
                        sep.push_bind(ip.clone());
                    }
                    qb.push(")");
                    let rows: Vec<(Option<String>,)> =
                        qb.build_query_as().fetch_all(&self.pool).await?;
                    history.known.extend(rows.into_iter().filter_map(|(ip,)| ip));
                }
                Ok(history)
            }
        }
    };
}

impl_evidence!(SqliteStore, sqlx::Sqlite);
impl_evidence!(PostgresStore, sqlx::Postgres);
