//! Approvers' decisions on a grant (written by [`super::Grants::apply`] with the
//! state change they cause, read here).

use super::sql::{is_unique_violation, PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{Decision, GrantId};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub grant_id: GrantId,
    pub approver: String,
    pub decision: Decision,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
}

#[async_trait]
pub trait Approvals {
    async fn approvals(&self, id: GrantId) -> Result<Vec<Approval>, StoreError>;

    /// The decisions on each of `ids` (the inbox's grants), in one query per
    /// [`IDS_PER_QUERY`] grants, each grant's in decision order.
    async fn approvals_of(&self, ids: &[GrantId]) -> Result<Vec<Approval>, StoreError>;
}

/// Grants per query of a bulk read (bound parameters stay far below both backends'
/// limits).
pub const IDS_PER_QUERY: usize = 500;

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
            decision: Decision::parse(&r.decision)
                .ok_or_else(|| StoreError::Corrupt(format!("decision {:?}", r.decision)))?,
            comment: r.comment,
            decided_at: r.decided_at,
        })
    }
}

macro_rules! impl_approvals {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Records one decision inside `tx`; a second decision by the same person
            /// is [`StoreError::DuplicateDecision`].
            pub(super) async fn approval_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                grant: GrantId,
                d: &Approval,
            ) -> Result<(), StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO approvals (grant_id, approver, decision, comment, decided_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(grant.to_string())
                .bind(&d.approver)
                .bind(d.decision.as_str())
                .bind(&d.comment)
                .bind(d.decided_at.trunc_subsecs(6))
                .execute(&mut **tx)
                .await;
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => {
                        Err(StoreError::DuplicateDecision(d.approver.clone()))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }

        #[async_trait]
        impl Approvals for $store {
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

            async fn approvals_of(&self, ids: &[GrantId]) -> Result<Vec<Approval>, StoreError> {
                let mut out = Vec::new();
                for chunk in ids.chunks(IDS_PER_QUERY) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT grant_id, approver, decision, comment, decided_at FROM approvals \
                         WHERE grant_id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.to_string());
                    }
                    qb.push(") ORDER BY grant_id, decided_at, approver");
                    let rows: Vec<ApprovalRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                    for r in rows {
                        out.push(Approval::try_from(r)?);
                    }
                }
                Ok(out)
            }
        }
    };
}

impl_approvals!(SqliteStore, sqlx::Sqlite);
impl_approvals!(PostgresStore, sqlx::Postgres);
