//! Closing revoked grants' sessions: the denies that stand (derived from the grants,
//! so a crash loses nothing), the policies Timebox owns to carry them with the text
//! it last wrote to each, and the recorded outcome per grant with its audit event.

use super::audit::NewAuditEvent;
use super::grants::{GrantRow, GRANT_COLUMNS};
use super::projection;
use super::sql::{micros, PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{Grant, GrantId, SessionsClose};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

/// A revoked grant whose sessions the session pass works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRow {
    pub grant: GrantId,
    pub account_id: String,
    pub permission_set: String,
    /// The Identity Store user id the assignment was for.
    pub user_id: Option<String>,
    pub permission_set_arn: Option<String>,
    pub revoked_at: DateTime<Utc>,
    /// The deny stands until then (revocation + portal + permission-set session).
    pub until: DateTime<Utc>,
    pub close: SessionsClose,
    pub closed_at: Option<DateTime<Utc>>,
    /// The activation of the same person's next grant of the same access, if one
    /// activated since this grant's revocation.
    pub next_activated_at: Option<DateTime<Utc>>,
}

/// Where a policy Timebox owns lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A service control policy attached to an account (`target`: the account id).
    Scp,
    /// The Timebox statements of a permission set's inline policy (`target`: its ARN).
    Inline,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Scp => "scp",
            PolicyKind::Inline => "inline",
        }
    }
}

/// A policy Timebox owns, with the text it last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub slot: i64,
    pub policy_id: String,
    pub content: String,
    pub written_at: DateTime<Utc>,
}

/// The outcome for one grant, recorded with its audit event.
#[derive(Debug, Clone)]
pub struct SessionsOutcome {
    pub grant: GrantId,
    pub close: SessionsClose,
    /// Set once, when the deny first took effect.
    pub closed_at: Option<DateTime<Utc>>,
    /// The real window's end that follows (`max(revoked_at, closed_at)`).
    pub real_end: Option<DateTime<Utc>>,
    /// The deny must stand at least until then (never shortened).
    pub until: Option<DateTime<Utc>>,
    pub event: NewAuditEvent,
}

#[async_trait]
pub trait SessionCloses {
    /// Revoked grants whose deny is still to be written, stands, or failed, and
    /// whose tail lasts beyond `now`; with the next activation of the same access.
    async fn session_denies(&self, now: DateTime<Utc>) -> Result<Vec<DenyRow>, StoreError>;

    /// The policies of `kind` Timebox owns for `target`, by slot.
    async fn session_policies(
        &self,
        kind: PolicyKind,
        target: &str,
    ) -> Result<Vec<StoredPolicy>, StoreError>;

    /// Every target with a policy of `kind` stored.
    async fn session_policy_targets(&self, kind: PolicyKind) -> Result<Vec<String>, StoreError>;

    /// Records the text Timebox wrote to a policy slot (insert or replace).
    async fn save_session_policy(
        &self,
        kind: PolicyKind,
        target: &str,
        policy: &StoredPolicy,
    ) -> Result<(), StoreError>;

    /// Forgets a slot whose policy was deleted.
    async fn delete_session_policy(
        &self,
        kind: PolicyKind,
        target: &str,
        slot: i64,
    ) -> Result<(), StoreError>;

    /// Records `outcome` and its audit event in one transaction, when it changes
    /// the grant (another state, or the first closing time); false when the grant
    /// already says so. `sessions_closed_at` is never moved once set.
    async fn record_sessions(&self, outcome: SessionsOutcome) -> Result<bool, StoreError>;
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    account_id: String,
    permission_set: String,
    principal_id: Option<String>,
    permission_set_arn: Option<String>,
    revoked_at: DateTime<Utc>,
    sessions_until: DateTime<Utc>,
    sessions_close: String,
    sessions_closed_at: Option<DateTime<Utc>>,
    next_activated_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for DenyRow {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(DenyRow {
            grant: GrantId::parse(&r.id)
                .map_err(|e| StoreError::Corrupt(format!("grant {}: id: {e}", r.id)))?,
            close: SessionsClose::parse(&r.sessions_close).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "grant {}: sessions_close: unknown value {:?}",
                    r.id, r.sessions_close
                ))
            })?,
            account_id: r.account_id,
            permission_set: r.permission_set,
            user_id: r.principal_id,
            permission_set_arn: r.permission_set_arn,
            revoked_at: r.revoked_at,
            until: r.sessions_until,
            closed_at: r.sessions_closed_at,
            next_activated_at: r.next_activated_at,
        })
    }
}

/// The states the pass works on, as SQL literals (from the domain's one list).
fn worked_on() -> String {
    SessionsClose::ALL
        .into_iter()
        .filter(|c| c.is_worked_on())
        .map(|c| format!("'{}'", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_session_closes {
    ($store:ty) => {
        #[async_trait]
        impl SessionCloses for $store {
            async fn session_denies(
                &self,
                now: DateTime<Utc>,
            ) -> Result<Vec<DenyRow>, StoreError> {
                let rows: Vec<Row> = sqlx::query_as(&format!(
                    "SELECT g.id, g.account_id, g.permission_set, a.principal_id, \
                     a.permission_set_arn, g.revoked_at, g.sessions_until, g.sessions_close, \
                     g.sessions_closed_at, \
                     (SELECT MIN(n.activated_at) FROM grants n WHERE n.requester = g.requester \
                       AND n.account_id = g.account_id AND n.permission_set = g.permission_set \
                       AND n.id <> g.id AND n.activated_at >= g.revoked_at) AS next_activated_at \
                     FROM grants g LEFT JOIN grant_aws a ON a.grant_id = g.id \
                     WHERE g.sessions_until > $1 AND g.revoked_at IS NOT NULL \
                     AND g.sessions_close IN ({}) \
                     ORDER BY g.account_id, g.revoked_at, g.id",
                    worked_on()
                ))
                .bind(now.trunc_subsecs(6))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(DenyRow::try_from).collect()
            }

            async fn session_policies(
                &self,
                kind: PolicyKind,
                target: &str,
            ) -> Result<Vec<StoredPolicy>, StoreError> {
                let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT slot, policy_id, content, written_at FROM session_policies \
                     WHERE kind = $1 AND target = $2 ORDER BY slot",
                )
                .bind(kind.as_str())
                .bind(target)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(slot, policy_id, content, written_at)| StoredPolicy {
                        slot,
                        policy_id,
                        content,
                        written_at,
                    })
                    .collect())
            }

            async fn session_policy_targets(
                &self,
                kind: PolicyKind,
            ) -> Result<Vec<String>, StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT DISTINCT target FROM session_policies WHERE kind = $1 ORDER BY target",
                )
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(t,)| t).collect())
            }

            async fn save_session_policy(
                &self,
                kind: PolicyKind,
                target: &str,
                policy: &StoredPolicy,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO session_policies (kind, target, slot, policy_id, content, written_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, target, slot) DO UPDATE \
                     SET policy_id = excluded.policy_id, content = excluded.content, \
                     written_at = excluded.written_at",
                )
                .bind(kind.as_str())
                .bind(target)
                .bind(policy.slot)
                .bind(&policy.policy_id)
                .bind(&policy.content)
                .bind(policy.written_at.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_session_policy(
                &self,
                kind: PolicyKind,
                target: &str,
                slot: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "DELETE FROM session_policies WHERE kind = $1 AND target = $2 AND slot = $3",
                )
                .bind(kind.as_str())
                .bind(target)
                .bind(slot)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn record_sessions(&self, outcome: SessionsOutcome) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let at = outcome.event.at.trunc_subsecs(6);
                let row: Option<GrantRow> = sqlx::query_as(&format!(
                    "UPDATE grants SET sessions_close = $1, \
                     sessions_closed_at = COALESCE(sessions_closed_at, $2), \
                     real_end = CASE WHEN sessions_closed_at IS NULL AND $2 IS NOT NULL \
                       THEN COALESCE($3, real_end) ELSE real_end END, \
                     sessions_until = CASE WHEN $6 IS NOT NULL AND \
                       (sessions_until IS NULL OR sessions_until < $6) THEN $6 \
                       ELSE sessions_until END, \
                     version = version + 1, updated_at = $4 \
                     WHERE id = $5 AND (sessions_close IS NULL OR sessions_close <> $1 \
                       OR (sessions_closed_at IS NULL AND $2 IS NOT NULL) \
                       OR ($6 IS NOT NULL AND (sessions_until IS NULL OR sessions_until < $6))) \
                     RETURNING {GRANT_COLUMNS}"
                ))
                .bind(outcome.close.as_str())
                .bind(micros(outcome.closed_at))
                .bind(micros(outcome.real_end))
                .bind(at)
                .bind(outcome.grant.to_string())
                .bind(micros(outcome.until))
                .fetch_optional(&mut *tx)
                .await?;
                let changed = row.is_some();
                if let Some(row) = row {
                    let grant = Grant::try_from(row)?;
                    let event = NewAuditEvent {
                        details: projection::with_set(
                            outcome.event.details,
                            projection::set_of(
                                &grant,
                                ["sessions_close", "sessions_closed_at", "real_end"],
                            ),
                        ),
                        ..outcome.event
                    };
                    Self::append_in(&mut tx, event).await?;
                }
                tx.commit().await?;
                Ok(changed)
            }
        }
    };
}

impl_session_closes!(SqliteStore);
impl_session_closes!(PostgresStore);
