//! The SQLite and PostgreSQL implementations of [`Store`]. They share every statement:
//! the SQL below is written once and expanded for each backend by `impl_store!`
//! (placeholders are `$n`, which both accept; times bind as `DateTime<Utc>`, which
//! SQLite stores as RFC 3339 text and PostgreSQL as `timestamptz`).

use super::audit::{self, AuditEvent, ChainVerification, ChainVerifier, NewAuditEvent};
use super::{
    ActivityCursor, Approval, CatalogNode, CatalogPermissionSet, Change, Cursor, Decision,
    Delivery, DeliveryStatus, GrantAws, GrantEvidence, GrantFilter, GrantPatch, NewDelivery,
    NewNotification, NodeKind, NotificationEventRecord, OutboxStats, PolicyStamp, Review, Store,
    StoreError,
};
use app::domain::{
    AccountId, ActivityEvent, Grant, GrantDuration, GrantId, GrantRequest, GrantState, IpHistory,
    Justification, PermissionSetName, PersonId, PortalSession, SessionDuration, TicketRef,
};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// How many audit events verification reads at a time.
const VERIFY_PAGE: u32 = 1000;

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    requester: String,
    account_id: String,
    permission_set: String,
    justification: String,
    ticket: Option<String>,
    duration_minutes: i64,
    requested_start: Option<DateTime<Utc>>,
    approvals_required: i64,
    state: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    activated_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    permission_set_session_seconds: Option<i64>,
    portal_session_seconds: Option<i64>,
    real_end: Option<DateTime<Utc>>,
    failure_reason: Option<String>,
    version: i64,
    policy: Option<String>,
    break_glass: bool,
    expires_at: Option<DateTime<Utc>>,
    review_required: bool,
    reviewed_by: Option<String>,
    reviewed_at: Option<DateTime<Utc>>,
    review_comment: Option<String>,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    /// Rows are parsed again on the way out: a value that no longer parses is reported
    /// as corruption instead of flowing on as if it were valid.
    fn try_from(r: GrantRow) -> Result<Self, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("grant {}: {what}: {e}", r.id))
        };
        Ok(Grant {
            id: GrantId::parse(&r.id).map_err(|e| bad("id", &e))?,
            request: GrantRequest {
                requester: PersonId::parse(&r.requester).map_err(|e| bad("requester", &e))?,
                account_id: AccountId::parse(&r.account_id).map_err(|e| bad("account", &e))?,
                permission_set: PermissionSetName::parse(&r.permission_set)
                    .map_err(|e| bad("permission set", &e))?,
                justification: Justification::parse_with_min(&r.justification, 1)
                    .map_err(|e| bad("justification", &e))?,
                ticket: r
                    .ticket
                    .as_deref()
                    .map(TicketRef::parse)
                    .transpose()
                    .map_err(|e| bad("ticket", &e))?,
                duration: GrantDuration::from_minutes(r.duration_minutes, None)
                    .map_err(|e| bad("duration", &e))?,
                requested_start: r.requested_start,
                approvals_required: u32::try_from(r.approvals_required)
                    .map_err(|e| bad("approvals_required", &e))?,
            },
            state: GrantState::parse(&r.state)
                .ok_or_else(|| bad("state", &format!("unknown state {:?}", r.state)))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
            activated_at: r.activated_at,
            ends_at: r.ends_at,
            revoked_at: r.revoked_at,
            permission_set_session: r
                .permission_set_session_seconds
                .map(|s| SessionDuration::from_duration(chrono::Duration::seconds(s)))
                .transpose()
                .map_err(|e| bad("permission_set_session", &e))?,
            portal_session: r
                .portal_session_seconds
                .map(PortalSession::from_seconds)
                .transpose()
                .map_err(|e| bad("portal_session", &e))?,
            real_end: r.real_end,
            failure_reason: r.failure_reason,
            version: r.version,
            policy: r.policy,
            break_glass: r.break_glass,
            expires_at: r.expires_at,
            review_required: r.review_required,
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
            review_comment: r.review_comment,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ApprovalRow {
    grant_id: String,
    approver: String,
    decision: String,
    comment: Option<String>,
    decided_at: DateTime<Utc>,
}

impl TryFrom<ApprovalRow> for Approval {
    type Error = StoreError;
    fn try_from(r: ApprovalRow) -> Result<Self, StoreError> {
        Ok(Approval {
            grant_id: GrantId::parse(&r.grant_id)
                .map_err(|e| StoreError::Corrupt(format!("approval: {e}")))?,
            approver: r.approver,
            decision: match r.decision.as_str() {
                "approve" => Decision::Approve,
                "deny" => Decision::Deny,
                other => return Err(StoreError::Corrupt(format!("decision {other:?}"))),
            },
            comment: r.comment,
            decided_at: r.decided_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    grant_id: Option<String>,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    from_state: Option<String>,
    to_state: Option<String>,
    reason: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            seq: r.seq,
            grant_id: r.grant_id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            from_state: r.from_state,
            to_state: r.to_state,
            reason: r.reason,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The SQLite store: a file, created and migrated at first start.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets readers proceed while the reaper writes; writers queue on the
            // busy timeout instead of failing at once.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests that inspect or tamper with rows directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The PostgreSQL store, for several replicas sharing one database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        // The migrator takes an advisory lock, so replicas starting together are safe.
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

const GRANT_COLUMNS: &str = "id, requester, account_id, permission_set, justification, ticket, \
    duration_minutes, requested_start, approvals_required, state, created_at, updated_at, \
    activated_at, ends_at, revoked_at, permission_set_session_seconds, portal_session_seconds, \
    real_end, failure_reason, version, policy, break_glass, expires_at, review_required, \
    reviewed_by, reviewed_at, review_comment";

const AUDIT_COLUMNS: &str =
    "seq, grant_id, at, actor, action, from_state, to_state, reason, details, prev_hash, hash";
// --- evidence (issue 6) -----------------------------------------------------------

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

#[derive(sqlx::FromRow)]
struct EvidenceRow {
    collections: i64,
    last_collected_at: Option<DateTime<Utc>>,
    window_close_collected_at: Option<DateTime<Utc>>,
    final_collected_at: Option<DateTime<Utc>>,
    next_collection_at: Option<DateTime<Utc>>,
    attempts: i64,
    last_error: Option<String>,
    summary: Option<String>,
    role_arn: Option<String>,
    investigation_id: Option<String>,
    investigation_status: Option<String>,
    investigation: Option<String>,
}

impl From<EvidenceRow> for GrantEvidence {
    fn from(r: EvidenceRow) -> Self {
        GrantEvidence {
            collections: r.collections,
            last_collected_at: r.last_collected_at,
            window_close_collected_at: r.window_close_collected_at,
            final_collected_at: r.final_collected_at,
            next_collection_at: r.next_collection_at,
            attempts: r.attempts,
            last_error: r.last_error,
            summary: r.summary,
            role_arn: r.role_arn,
            investigation_id: r.investigation_id,
            investigation_status: r.investigation_status,
            investigation: r.investigation,
        }
    }
}

const EVIDENCE_COLUMNS: &str = "collections, last_collected_at, window_close_collected_at, \
    final_collected_at, next_collection_at, attempts, last_error, summary, role_arn, \
    investigation_id, investigation_status, investigation";

macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Appends one event inside `tx`. Updating the head row first takes the
            /// write lock (SQLite) or the row lock (PostgreSQL), so concurrent appends
            /// are serialised and each sees the previous hash.
            async fn append_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                event: NewAuditEvent,
            ) -> Result<AuditEvent, StoreError> {
                let event = event.normalized();
                let (seq, prev_hash): (i64, String) = sqlx::query_as(
                    "UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 \
                     RETURNING last_seq, last_hash",
                )
                .fetch_one(&mut **tx)
                .await?;
                let sealed = audit::seal(&event, seq, &prev_hash);
                sqlx::query(&format!(
                    "INSERT INTO audit_events ({AUDIT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(sealed.seq)
                .bind(&sealed.grant_id)
                .bind(sealed.at)
                .bind(&sealed.actor)
                .bind(&sealed.action)
                .bind(&sealed.from_state)
                .bind(&sealed.to_state)
                .bind(&sealed.reason)
                .bind(&sealed.details)
                .bind(&sealed.prev_hash)
                .bind(&sealed.hash)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1")
                    .bind(&sealed.hash)
                    .execute(&mut **tx)
                    .await?;
                Ok(sealed)
            }

            /// Writes notification events inside `tx`; an event whose dedupe key is
            /// already stored is skipped. Returns how many were new.
            async fn notifications_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[NewNotification],
            ) -> Result<u64, StoreError> {
                let mut inserted = 0;
                for n in events {
                    let at = n.at.trunc_subsecs(6);
                    inserted += sqlx::query(
                        "INSERT INTO notification_events \
                         (id, dedupe_key, kind, grant_id, details, created_at, fan_out_after) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6) \
                         ON CONFLICT (dedupe_key) DO NOTHING",
                    )
                    .bind(n.id.to_string())
                    .bind(&n.dedupe_key)
                    .bind(n.kind.as_str())
                    .bind(n.grant_id.map(|g| g.to_string()))
                    .bind(n.details.to_string())
                    .bind(at)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                }
                Ok(inserted)
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_grant(
                &self,
                id: GrantId,
                request: &GrantRequest,
                at: DateTime<Utc>,
                event: NewAuditEvent,
                notifications: Vec<NewNotification>,
            ) -> Result<Grant, StoreError> {
                let at = at.trunc_subsecs(6);
                let mut tx = self.pool.begin().await?;
                let row: GrantRow = sqlx::query_as(&format!(
                    "INSERT INTO grants (id, requester, account_id, permission_set, \
                     justification, ticket, duration_minutes, requested_start, \
                     approvals_required, state, created_at, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 0) \
                     RETURNING {GRANT_COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(request.requester.as_str())
                .bind(request.account_id.as_str())
                .bind(request.permission_set.as_str())
                .bind(request.justification.as_str())
                .bind(request.ticket.as_ref().map(|t| t.as_str().to_owned()))
                .bind(request.duration.minutes())
                .bind(request.requested_start.map(|t| t.trunc_subsecs(6)))
                .bind(i64::from(request.approvals_required))
                .bind(GrantState::Pending.as_str())
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
                Self::append_in(&mut tx, event).await?;
                Self::notifications_in(&mut tx, &notifications).await?;
                tx.commit().await?;
                Grant::try_from(row)
            }

            async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
                let row: Option<GrantRow> =
                    sqlx::query_as(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(Grant::try_from).transpose()
            }

            async fn approvals(&self, id: GrantId) -> Result<Vec<Approval>, StoreError> {
                let rows: Vec<ApprovalRow> = sqlx::query_as(
                    "SELECT grant_id, approver, decision, comment, decided_at FROM approvals \
                     WHERE grant_id = $1 ORDER BY decided_at, approver",
                )
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Approval::try_from).collect()
            }

            async fn apply(&self, change: Change) -> Result<Grant, StoreError> {
                let at = change.at.trunc_subsecs(6);
                let GrantPatch {
                    activated_at,
                    ends_at,
                    revoked_at,
                    permission_set_session_seconds,
                    portal_session_seconds,
                    real_end,
                    failure_reason,
                } = change.patch;
                let trunc = |t: Option<DateTime<Utc>>| t.map(|t| t.trunc_subsecs(6));
                let mut tx = self.pool.begin().await?;
                // The conditional update is the claim: it is the first statement, so it
                // also takes the write lock before anything is read.
                let row: Option<GrantRow> = sqlx::query_as(&format!(
                    "UPDATE grants SET state = $1, version = version + 1, updated_at = $2, \
                     activated_at = COALESCE($3, activated_at), \
                     ends_at = COALESCE($4, ends_at), \
                     revoked_at = COALESCE($5, revoked_at), \
                     permission_set_session_seconds = COALESCE($6, permission_set_session_seconds), \
                     portal_session_seconds = COALESCE($7, portal_session_seconds), \
                     real_end = COALESCE($8, real_end), \
                     failure_reason = COALESCE($9, failure_reason) \
                     WHERE id = $10 AND version = $11 AND state = $12 \
                     RETURNING {GRANT_COLUMNS}"
                ))
                .bind(change.to.as_str())
                .bind(at)
                .bind(trunc(activated_at))
                .bind(trunc(ends_at))
                .bind(trunc(revoked_at))
                .bind(permission_set_session_seconds)
                .bind(portal_session_seconds)
                .bind(trunc(real_end))
                .bind(failure_reason)
                .bind(change.grant_id.to_string())
                .bind(change.expected_version)
                .bind(change.from.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return match self.get_grant(change.grant_id).await? {
                        None => Err(StoreError::NotFound(change.grant_id)),
                        Some(_) => Err(StoreError::Conflict {
                            expected: change.expected_version,
                        }),
                    };
                };
                if let Some(d) = &change.decision {
                    let inserted = sqlx::query(
                        "INSERT INTO approvals (grant_id, approver, decision, comment, decided_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(change.grant_id.to_string())
                    .bind(&d.approver)
                    .bind(d.decision.as_str())
                    .bind(&d.comment)
                    .bind(d.decided_at.trunc_subsecs(6))
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => {
                            tx.rollback().await?;
                            return Err(StoreError::DuplicateDecision(d.approver.clone()));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Self::append_in(&mut tx, change.event).await?;
                Self::notifications_in(&mut tx, &change.notifications).await?;
                tx.commit().await?;
                Grant::try_from(row)
            }

            async fn list_grants(
                &self,
                filter: &GrantFilter,
                after: Option<Cursor>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE 1 = 1"
                ));
                if let Some(v) = &filter.requester {
                    qb.push(" AND requester = ").push_bind(v.clone());
                }
                if let Some(v) = &filter.account_id {
                    qb.push(" AND account_id = ").push_bind(v.clone());
                }
                if let Some(v) = &filter.permission_set {
                    qb.push(" AND permission_set = ").push_bind(v.clone());
                }
                if !filter.states.is_empty() {
                    qb.push(" AND state IN (");
                    let mut sep = qb.separated(", ");
                    for s in &filter.states {
                        sep.push_bind(s.as_str());
                    }
                    qb.push(")");
                }
                if let Some(v) = filter.created_from {
                    qb.push(" AND created_at >= ").push_bind(v);
                }
                if let Some(v) = filter.created_to {
                    qb.push(" AND created_at <= ").push_bind(v);
                }
                if let Some(c) = after {
                    qb.push(" AND (created_at < ")
                        .push_bind(c.created_at)
                        .push(" OR (created_at = ")
                        .push_bind(c.created_at)
                        .push(" AND id < ")
                        .push_bind(c.id.to_string())
                        .push("))");
                }
                qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 1000)));
                let rows: Vec<GrantRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(Grant::try_from).collect()
            }

            async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
                let mut tx = self.pool.begin().await?;
                let sealed = Self::append_in(&mut tx, event).await?;
                tx.commit().await?;
                Ok(sealed)
            }

            async fn audit_events(
                &self,
                grant: Option<GrantId>,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let limit = i64::from(limit.clamp(1, 10_000));
                let rows: Vec<AuditRow> = match grant {
                    Some(g) => {
                        sqlx::query_as(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit_events \
                             WHERE grant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                        ))
                        .bind(g.to_string())
                        .bind(after_seq)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query_as(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit_events \
                             WHERE seq > $1 ORDER BY seq LIMIT $2"
                        ))
                        .bind(after_seq)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }

            async fn verify_audit_chain(&self) -> Result<ChainVerification, StoreError> {
                // Read the head first: events appended while we walk are after it and
                // are not part of this verification.
                let (head_seq, head_hash): (i64, String) =
                    sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                let mut verifier = ChainVerifier::default();
                let mut after = 0;
                'pages: loop {
                    let page = self.audit_events(None, after, VERIFY_PAGE).await?;
                    let Some(last) = page.last() else { break };
                    after = last.seq;
                    for e in page.iter().take_while(|e| e.seq <= head_seq) {
                        if !verifier.check(e) {
                            break 'pages;
                        }
                    }
                    if after >= head_seq {
                        break;
                    }
                }
                Ok(verifier.finish(head_seq, &head_hash))
            }

            async fn recent_audit_events(
                &self,
                actions: &[&str],
                limit: u32,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                if actions.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE action IN ("
                ));
                let mut sep = qb.separated(", ");
                for a in actions {
                    sep.push_bind(a.to_string());
                }
                qb.push(") ORDER BY seq DESC LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 1000)));
                let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }

            async fn replace_catalog(
                &self,
                permission_sets: &[CatalogPermissionSet],
                nodes: &[CatalogNode],
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let at = at.trunc_subsecs(6);
                let mut tx = self.pool.begin().await?;
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

            async fn reaper_due(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let columns = GRANT_COLUMNS
                    .split(", ")
                    .map(|c| format!("grants.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ");
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
                let (n,): (i64,) =
                    sqlx::query_as(&format!("SELECT COUNT(*) {REAPER_DUE_WHERE}"))
                        .bind(now.trunc_subsecs(6))
                        .fetch_one(&self.pool)
                        .await?;
                Ok(n)
            }

            async fn grant_counts(&self) -> Result<Vec<(GrantState, i64)>, StoreError> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM grants GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter()
                    .map(|(s, n)| {
                        GrantState::parse(&s)
                            .map(|st| (st, n))
                            .ok_or_else(|| StoreError::Corrupt(format!("grant state {s:?}")))
                    })
                    .collect()
            }

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
                let trunc = |t: Option<DateTime<Utc>>| t.map(|t| t.trunc_subsecs(6));
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
                .bind(trunc(w.create_started_at))
                .bind(&w.create_request_id)
                .bind(trunc(w.delete_started_at))
                .bind(&w.delete_request_id)
                .bind(&w.shared_with)
                .bind(w.attempts)
                .bind(trunc(w.next_attempt_at))
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
                    GRANT_AWS_COLUMNS
                        .split(", ")
                        .map(|c| format!("grant_aws.{}", c.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
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

            // --- policy (issue 7) ---------------------------------------------------

            async fn create_policy_grant(
                &self,
                id: GrantId,
                request: &GrantRequest,
                stamp: &PolicyStamp,
                at: DateTime<Utc>,
                event: NewAuditEvent,
                notifications: Vec<NewNotification>,
            ) -> Result<Grant, StoreError> {
                let at = at.trunc_subsecs(6);
                let mut tx = self.pool.begin().await?;
                if let Some(cap) = stamp.max_active_per_user {
                    // The lock row first: on PostgreSQL it holds the requester's row lock
                    // until commit, on SQLite it takes the write lock, so the count below
                    // cannot be raced by the same person's other request.
                    sqlx::query(
                        "INSERT INTO requester_locks (requester, last_request_at) VALUES ($1, $2) \
                         ON CONFLICT (requester) DO UPDATE SET last_request_at = excluded.last_request_at",
                    )
                    .bind(request.requester.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    let (active,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM grants WHERE requester = $1 AND policy = $2 \
                         AND state IN ('pending', 'approved', 'provisioning', 'active')",
                    )
                    .bind(request.requester.as_str())
                    .bind(&stamp.policy)
                    .fetch_one(&mut *tx)
                    .await?;
                    if active >= i64::from(cap) {
                        tx.rollback().await?;
                        return Err(StoreError::CapReached { active });
                    }
                }
                let row: GrantRow = sqlx::query_as(&format!(
                    "INSERT INTO grants (id, requester, account_id, permission_set, \
                     justification, ticket, duration_minutes, requested_start, \
                     approvals_required, state, created_at, updated_at, version, \
                     policy, break_glass, expires_at, review_required) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 0, \
                     $12, $13, $14, $15) \
                     RETURNING {GRANT_COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(request.requester.as_str())
                .bind(request.account_id.as_str())
                .bind(request.permission_set.as_str())
                .bind(request.justification.as_str())
                .bind(request.ticket.as_ref().map(|t| t.as_str().to_owned()))
                .bind(request.duration.minutes())
                .bind(request.requested_start.map(|t| t.trunc_subsecs(6)))
                .bind(i64::from(request.approvals_required))
                .bind(GrantState::Pending.as_str())
                .bind(at)
                .bind(&stamp.policy)
                .bind(stamp.break_glass)
                .bind(stamp.expires_at.map(|t| t.trunc_subsecs(6)))
                .bind(stamp.review_required)
                .fetch_one(&mut *tx)
                .await?;
                Self::append_in(&mut tx, event).await?;
                Self::notifications_in(&mut tx, &notifications).await?;
                tx.commit().await?;
                Grant::try_from(row)
            }

            async fn pending_due(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE state = 'pending' \
                     AND ((expires_at IS NOT NULL AND expires_at <= $1) OR approvals_required = 0) \
                     ORDER BY created_at, id LIMIT $2"
                ))
                .bind(now.trunc_subsecs(6))
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Grant::try_from).collect()
            }

            async fn record_review(
                &self,
                id: GrantId,
                review: &Review,
                event: NewAuditEvent,
            ) -> Result<Grant, StoreError> {
                let at = review.at.trunc_subsecs(6);
                let mut tx = self.pool.begin().await?;
                // Conditional, so two reviewers racing record one review.
                let row: Option<GrantRow> = sqlx::query_as(&format!(
                    "UPDATE grants SET reviewed_by = $1, reviewed_at = $2, review_comment = $3, \
                     version = version + 1, updated_at = $2 \
                     WHERE id = $4 AND review_required AND reviewed_at IS NULL \
                     RETURNING {GRANT_COLUMNS}"
                ))
                .bind(&review.reviewer)
                .bind(at)
                .bind(&review.comment)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return match self.get_grant(id).await? {
                        None => Err(StoreError::NotFound(id)),
                        Some(_) => Err(StoreError::NoReviewOwed(id)),
                    };
                };
                Self::append_in(&mut tx, event).await?;
                tx.commit().await?;
                Grant::try_from(row)
            }

            // --- evidence (issue 6) ------------------------------------------------

            async fn insert_activity(
                &self,
                grant: GrantId,
                events: &[ActivityEvent],
            ) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin().await?;
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
                let row: Option<EvidenceRow> = sqlx::query_as(&format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM grant_evidence WHERE grant_id = $1"
                ))
                .bind(grant.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(GrantEvidence::from))
            }

            async fn save_grant_evidence(
                &self,
                grant: GrantId,
                e: &GrantEvidence,
            ) -> Result<(), StoreError> {
                let trunc = |t: Option<DateTime<Utc>>| t.map(|t| t.trunc_subsecs(6));
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
                .bind(trunc(e.last_collected_at))
                .bind(trunc(e.window_close_collected_at))
                .bind(trunc(e.final_collected_at))
                .bind(trunc(e.next_collection_at))
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
                let columns = GRANT_COLUMNS
                    .split(", ")
                    .map(|c| format!("grants.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ");
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

            // --- notifications: the outbox ---------------------------------------

            async fn enqueue_notifications(
                &self,
                events: &[NewNotification],
            ) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin().await?;
                let inserted = Self::notifications_in(&mut tx, events).await?;
                tx.commit().await?;
                Ok(inserted)
            }

            async fn notification_events_to_fan_out(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<NotificationEventRecord>, StoreError> {
                let rows: Vec<NotificationEventRow> = sqlx::query_as(&format!(
                    "SELECT {NOTIFICATION_EVENT_COLUMNS} FROM notification_events \
                     WHERE fanned_out_at IS NULL AND fan_out_after <= $1 \
                     ORDER BY created_at, id LIMIT $2"
                ))
                .bind(now.trunc_subsecs(6))
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(NotificationEventRecord::try_from).collect()
            }

            async fn notification_event(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<NotificationEventRecord>, StoreError> {
                let row: Option<NotificationEventRow> = sqlx::query_as(&format!(
                    "SELECT {NOTIFICATION_EVENT_COLUMNS} FROM notification_events WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(NotificationEventRecord::try_from).transpose()
            }

            async fn fan_out_notification(
                &self,
                event: uuid::Uuid,
                deliveries: &[NewDelivery],
                at: DateTime<Utc>,
                complete: bool,
            ) -> Result<(), StoreError> {
                let at = at.trunc_subsecs(6);
                let mut tx = self.pool.begin().await?;
                for d in deliveries {
                    sqlx::query(
                        "INSERT INTO notification_deliveries \
                         (id, event_id, channel, recipient, state, attempts, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
                         ON CONFLICT (event_id, channel, recipient) DO NOTHING",
                    )
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(event.to_string())
                    .bind(&d.channel)
                    .bind(&d.recipient)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                if complete {
                    sqlx::query(
                        "UPDATE notification_events SET fanned_out_at = $1, fan_out_error = NULL \
                         WHERE id = $2 AND fanned_out_at IS NULL",
                    )
                    .bind(at)
                    .bind(event.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn notification_fan_out_failed(
                &self,
                event: uuid::Uuid,
                retry_at: DateTime<Utc>,
                error: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE notification_events SET fan_out_after = $1, fan_out_error = $2 \
                     WHERE id = $3 AND fanned_out_at IS NULL",
                )
                .bind(retry_at.trunc_subsecs(6))
                .bind(error)
                .bind(event.to_string())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_deliveries(
                &self,
                owner: &str,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Delivery>, StoreError> {
                // The conditions are repeated outside the subquery: on PostgreSQL a
                // row another claimer updated first is re-checked against them (and
                // skipped), and SKIP LOCKED keeps claimers from waiting on each other.
                let rows: Vec<(String, String, String, String, i64, DateTime<Utc>)> =
                    sqlx::query_as(&format!(
                        "UPDATE notification_deliveries SET lease_owner = $1, lease_until = $2 \
                         WHERE id IN (SELECT id FROM notification_deliveries \
                             WHERE state = 'pending' AND next_attempt_at <= $3 \
                             AND (lease_until IS NULL OR lease_until < $3) \
                             ORDER BY next_attempt_at, id LIMIT $4{}) \
                         AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3) \
                         RETURNING id, event_id, channel, recipient, attempts, created_at",
                        <$store as OutboxDialect>::CLAIM_LOCK
                    ))
                    .bind(owner)
                    .bind(lease_until.trunc_subsecs(6))
                    .bind(now.trunc_subsecs(6))
                    .bind(i64::from(limit.clamp(1, 1000)))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter()
                    .map(|(id, event_id, channel, recipient, attempts, created_at)| {
                        Ok(Delivery {
                            id: parse_uuid("delivery id", &id)?,
                            event_id: parse_uuid("delivery event id", &event_id)?,
                            channel,
                            recipient,
                            attempts,
                            created_at,
                        })
                    })
                    .collect()
            }

            async fn mark_delivered(
                &self,
                id: uuid::Uuid,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                // Whoever holds the lease now: the receiver took it, so it must never
                // be sent again.
                sqlx::query(
                    "UPDATE notification_deliveries SET state = 'delivered', delivered_at = $1, \
                     lease_owner = NULL, lease_until = NULL, last_error = NULL \
                     WHERE id = $2 AND state = 'pending'",
                )
                .bind(at.trunc_subsecs(6))
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn record_delivery_failure(
                &self,
                id: uuid::Uuid,
                owner: &str,
                next_attempt_at: DateTime<Utc>,
                error: &str,
                abandon: bool,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE notification_deliveries SET attempts = attempts + 1, \
                     next_attempt_at = $1, last_error = $2, lease_owner = NULL, \
                     lease_until = NULL, state = $3 \
                     WHERE id = $4 AND state = 'pending' AND lease_owner = $5",
                )
                .bind(next_attempt_at.trunc_subsecs(6))
                .bind(error)
                .bind(if abandon { "abandoned" } else { "pending" })
                .bind(id.to_string())
                .bind(owner)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
                let (pending_deliveries,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM notification_deliveries WHERE state = 'pending'",
                )
                .fetch_one(&self.pool)
                .await?;
                let (unfanned_events,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM notification_events WHERE fanned_out_at IS NULL",
                )
                .fetch_one(&self.pool)
                .await?;
                let oldest_delivery: Option<(DateTime<Utc>,)> = sqlx::query_as(
                    "SELECT created_at FROM notification_deliveries WHERE state = 'pending' \
                     ORDER BY created_at LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                let oldest_event: Option<(DateTime<Utc>,)> = sqlx::query_as(
                    "SELECT created_at FROM notification_events WHERE fanned_out_at IS NULL \
                     ORDER BY created_at LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                let oldest_undelivered = match (oldest_delivery, oldest_event) {
                    (Some((a,)), Some((b,))) => Some(a.min(b)),
                    (Some((a,)), None) | (None, Some((a,))) => Some(a),
                    (None, None) => None,
                };
                Ok(OutboxStats {
                    pending_deliveries,
                    unfanned_events,
                    oldest_undelivered,
                })
            }

            async fn grant_deliveries(
                &self,
                grant: GrantId,
            ) -> Result<Vec<DeliveryStatus>, StoreError> {
                let rows: Vec<DeliveryStatusRow> = sqlx::query_as(
                    "SELECT d.id, d.event_id, e.kind, d.channel, d.recipient, d.state, \
                     d.attempts, d.next_attempt_at, d.last_error, d.delivered_at \
                     FROM notification_deliveries d \
                     JOIN notification_events e ON e.id = d.event_id \
                     WHERE e.grant_id = $1 \
                     ORDER BY e.created_at, d.created_at, d.channel, d.recipient",
                )
                .bind(grant.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(DeliveryStatus::try_from).collect()
            }

            async fn grants_ending_between(
                &self,
                after: DateTime<Utc>,
                until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants \
                     WHERE state = 'active' AND ends_at > $1 AND ends_at <= $2 \
                     ORDER BY ends_at, id LIMIT $3"
                ))
                .bind(after.trunc_subsecs(6))
                .bind(until.trunc_subsecs(6))
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Grant::try_from).collect()
            }
        }
    };
}

// --- notifications: the outbox ------------------------------------------------------

/// What differs between the backends in the outbox's SQL.
trait OutboxDialect {
    /// Appended to the claim's subquery.
    const CLAIM_LOCK: &'static str;
}

impl OutboxDialect for SqliteStore {
    // SQLite has one writer at a time: the UPDATE is atomic as it stands.
    const CLAIM_LOCK: &'static str = "";
}

impl OutboxDialect for PostgresStore {
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
}

const NOTIFICATION_EVENT_COLUMNS: &str = "id, kind, grant_id, details, created_at, fanned_out_at";

#[derive(sqlx::FromRow)]
struct NotificationEventRow {
    id: String,
    kind: String,
    grant_id: Option<String>,
    details: String,
    created_at: DateTime<Utc>,
    fanned_out_at: Option<DateTime<Utc>>,
}

impl TryFrom<NotificationEventRow> for NotificationEventRecord {
    type Error = StoreError;
    fn try_from(r: NotificationEventRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("notification event {}: {what}", r.id));
        Ok(NotificationEventRecord {
            id: parse_uuid("notification event id", &r.id)?,
            kind: crate::notify::NotificationKind::parse(&r.kind)
                .ok_or_else(|| bad(&format!("unknown kind {:?}", r.kind)))?,
            grant_id: r
                .grant_id
                .as_deref()
                .map(GrantId::parse)
                .transpose()
                .map_err(|e| bad(&e.to_string()))?,
            details: serde_json::from_str(&r.details).map_err(|e| bad(&e.to_string()))?,
            created_at: r.created_at,
            fanned_out_at: r.fanned_out_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryStatusRow {
    id: String,
    event_id: String,
    kind: String,
    channel: String,
    recipient: String,
    state: String,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryStatusRow> for DeliveryStatus {
    type Error = StoreError;
    fn try_from(r: DeliveryStatusRow) -> Result<Self, StoreError> {
        Ok(DeliveryStatus {
            id: parse_uuid("delivery id", &r.id)?,
            event_id: parse_uuid("delivery event id", &r.event_id)?,
            kind: r.kind,
            channel: r.channel,
            recipient: r.recipient,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
        })
    }
}

fn parse_uuid(what: &str, s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("{what} {s:?}: {e}")))
}

impl_store!(SqliteStore, sqlx::Sqlite);
impl_store!(PostgresStore, sqlx::Postgres);
