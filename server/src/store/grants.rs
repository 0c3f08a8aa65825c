//! Grants and their lifecycle: a new request under its policy (with the per-person
//! cap), the conditional state change ([`Grants::apply`], which also writes the
//! decision, the audit event and the notifications in one transaction), the review
//! of a break-glass grant, and the lists and counts read above.

use super::approvals::Approval;
use super::audit::NewAuditEvent;
use super::outbox::NewNotification;
use super::projection;
use super::search::{self, Plan, SearchWords};
use super::sql::{micros, Dialect, PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{
    AccountId, Grant, GrantDuration, GrantId, GrantRequest, GrantState, IdentityUser,
    Justification, PermissionSetName, PersonId, PortalSession, SessionDuration, SessionsClose,
    TicketRef,
};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

/// Facts to record with a state change. `None` leaves a column as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantPatch {
    pub activated_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub permission_set_session_seconds: Option<i64>,
    pub portal_session_seconds: Option<i64>,
    pub real_end: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    /// The Identity Center user, when the reaper resolved it (a request recorded
    /// while Identity Center could not be asked); never replaces a recorded one.
    pub identity: Option<IdentityUser>,
    /// At revocation: what is to become of the grant's sessions, and until when a
    /// deny closing them must stand.
    pub sessions_close: Option<SessionsClose>,
    pub sessions_until: Option<DateTime<Utc>>,
}

impl GrantPatch {
    /// The facts of the row this patch writes (`store::projection`), with the state
    /// every change writes.
    fn touched(&self) -> Vec<&'static str> {
        let mut names = vec!["state"];
        let fields: [(bool, &[&'static str]); 9] = [
            (self.activated_at.is_some(), &["activated_at"]),
            (self.ends_at.is_some(), &["ends_at"]),
            (self.revoked_at.is_some(), &["revoked_at"]),
            (
                self.permission_set_session_seconds.is_some(),
                &["permission_set_session_seconds"],
            ),
            (
                self.portal_session_seconds.is_some(),
                &["portal_session_seconds"],
            ),
            (self.real_end.is_some(), &["real_end"]),
            (self.failure_reason.is_some(), &["failure_reason"]),
            (
                self.identity.is_some(),
                &["identity_user_id", "identity_user_name"],
            ),
            (self.sessions_close.is_some(), &["sessions_close"]),
        ];
        for (set, fact) in fields {
            if set {
                names.extend_from_slice(fact);
            }
        }
        names
    }
}

/// A change to apply atomically: the grant moves from `expected_version` (and state
/// `from`) to `to`, optionally recording a decision, and one audit event is appended.
#[derive(Debug, Clone)]
pub struct Change {
    pub grant_id: GrantId,
    pub expected_version: i64,
    pub from: GrantState,
    /// Equal to `from` when only an approval is recorded (quorum not reached).
    pub to: GrantState,
    pub at: DateTime<Utc>,
    pub patch: GrantPatch,
    pub decision: Option<Approval>,
    pub event: NewAuditEvent,
    /// Notifications the change causes, written to the outbox in the same transaction
    /// (so a committed change is always announced, and a rolled-back one never is).
    pub notifications: Vec<NewNotification>,
}

/// Filters for listing grants. All given filters must match.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub requester: Option<String>,
    pub account_id: Option<String>,
    pub permission_set: Option<String>,
    pub states: Vec<GrantState>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created at or before.
    pub created_to: Option<DateTime<Utc>>,
    /// Words the justification must have (`store::search`).
    pub words: Option<SearchWords>,
}

/// Keyset position: the `(created_at, id)` of the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: GrantId,
}

/// What the deciding policy records on a new grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyStamp {
    /// The deciding policy's name.
    pub policy: String,
    pub break_glass: bool,
    /// When the request expires if still pending.
    pub expires_at: Option<DateTime<Utc>>,
    pub review_required: bool,
    /// The policy's per-person cap on live grants, checked in the same transaction.
    pub max_active_per_user: Option<u32>,
    /// The other paths to the same access found at request time (`None`: not
    /// looked up).
    pub paths: Option<Vec<app::domain::OtherPath>>,
    /// The requester's Identity Center user, resolved at request time.
    pub identity: Option<app::domain::IdentityUser>,
}

/// The review of a break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub reviewer: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

#[async_trait]
pub trait Grants {
    /// Stores a new pending request with what its deciding policy records
    /// ([`PolicyStamp`]) and its audit event, in one transaction. With
    /// `stamp.max_active_per_user`, the requester's row in `requester_locks` is written
    /// first (serialising their requests on both backends), then their live grants
    /// (pending, approved, provisioning, active) under the same policy are counted;
    /// at the cap, nothing is written and [`StoreError::CapReached`] says how many.
    async fn create_policy_grant(
        &self,
        id: GrantId,
        request: &GrantRequest,
        stamp: &PolicyStamp,
        at: DateTime<Utc>,
        event: NewAuditEvent,
        notifications: Vec<NewNotification>,
    ) -> Result<Grant, StoreError>;

    async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;

    /// Grants in id order, `limit` after `after`: the whole table, page by page, for
    /// checking every row against its events (`timebox audit verify`).
    async fn grants_by_id(
        &self,
        after: Option<GrantId>,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError>;

    /// Applies `change` if the grant is still at `expected_version`; otherwise
    /// [`StoreError::Conflict`] and nothing is written.
    async fn apply(&self, change: Change) -> Result<Grant, StoreError>;

    /// Newest first, `limit` rows after `after`.
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError>;

    /// Records the review of a grant that owes one (`review_required` and not yet
    /// reviewed) and its audit event, in one transaction; otherwise
    /// [`StoreError::NoReviewOwed`] (or `NotFound`) and nothing is written.
    async fn record_review(
        &self,
        id: GrantId,
        review: &Review,
        event: NewAuditEvent,
    ) -> Result<Grant, StoreError>;

    /// Pending grants the reaper settles at `now`: those past `expires_at` (to
    /// expire) and those that need no approval (approved automatically; normally done
    /// at request time, this catches a crash in between). Oldest first.
    async fn pending_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Grant>, StoreError>;

    /// Active grants whose end falls in `(after, until]`, soonest first.
    async fn grants_ending_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError>;

    /// The grants that extend `id` (their `extends` names it), oldest first.
    async fn extensions_of(&self, id: GrantId) -> Result<Vec<Grant>, StoreError>;

    /// Grants per state, for metrics.
    async fn grant_counts(&self) -> Result<Vec<(GrantState, i64)>, StoreError>;
}

pub(super) const GRANT_COLUMNS: &str =
    "id, requester, account_id, permission_set, justification, ticket, \
    duration_minutes, requested_start, approvals_required, state, created_at, updated_at, \
    activated_at, ends_at, revoked_at, permission_set_session_seconds, portal_session_seconds, \
    real_end, failure_reason, version, policy, break_glass, expires_at, review_required, \
    reviewed_by, reviewed_at, review_comment, extends, request_paths, identity_user_id, \
    identity_user_name, sessions_close, sessions_closed_at";

#[derive(sqlx::FromRow)]
pub(super) struct GrantRow {
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
    extends: Option<String>,
    request_paths: Option<String>,
    identity_user_id: Option<String>,
    identity_user_name: Option<String>,
    sessions_close: Option<String>,
    sessions_closed_at: Option<DateTime<Utc>>,
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
                extends: r
                    .extends
                    .as_deref()
                    .map(GrantId::parse)
                    .transpose()
                    .map_err(|e| bad("extends", &e))?,
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
            paths_at_request: r
                .request_paths
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| bad("request_paths", &e))?,
            identity: match (r.identity_user_id, r.identity_user_name) {
                (Some(user_id), Some(user_name)) => Some(IdentityUser { user_id, user_name }),
                (None, None) => None,
                _ => {
                    return Err(bad(
                        "identity",
                        &"a user id without a user name, or the reverse",
                    ))
                }
            },
            sessions_close: r
                .sessions_close
                .as_deref()
                .map(|s| {
                    SessionsClose::parse(s)
                        .ok_or_else(|| bad("sessions_close", &format!("unknown value {s:?}")))
                })
                .transpose()?,
            sessions_closed_at: r.sessions_closed_at,
        })
    }
}

macro_rules! impl_grants {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl Grants for $store {
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
                let mut tx = self.write_tx().await?;
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
                     policy, break_glass, expires_at, review_required, extends, \
                     request_paths, identity_user_id, identity_user_name) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 0, \
                     $12, $13, $14, $15, $16, $17, $18, $19) \
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
                .bind(request.extends.map(|g| g.to_string()))
                .bind(
                    stamp
                        .paths
                        .as_ref()
                        .map(|p| serde_json::to_string(p).unwrap_or_else(|_| "[]".into())),
                )
                .bind(stamp.identity.as_ref().map(|u| u.user_id.clone()))
                .bind(stamp.identity.as_ref().map(|u| u.user_name.clone()))
                .fetch_one(&mut *tx)
                .await?;
                let grant = Grant::try_from(row)?;
                let event = NewAuditEvent {
                    details: projection::with_set(event.details, projection::all_facts(&grant)),
                    ..event
                };
                Self::append_in(&mut tx, event).await?;
                Self::notifications_in(&mut tx, &notifications).await?;
                tx.commit().await?;
                Ok(grant)
            }

            async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
                let row: Option<GrantRow> =
                    sqlx::query_as(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(Grant::try_from).transpose()
            }

            async fn grants_by_id(
                &self,
                after: Option<GrantId>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .bind(after.map_or_else(String::new, |g| g.to_string()))
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Grant::try_from).collect()
            }

            async fn apply(&self, change: Change) -> Result<Grant, StoreError> {
                let at = change.at.trunc_subsecs(6);
                let touched = change.patch.touched();
                let GrantPatch {
                    activated_at,
                    ends_at,
                    revoked_at,
                    permission_set_session_seconds,
                    portal_session_seconds,
                    real_end,
                    failure_reason,
                    identity,
                    sessions_close,
                    sessions_until,
                } = change.patch;
                let mut tx = self.write_tx().await?;
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
                     failure_reason = COALESCE($9, failure_reason), \
                     identity_user_id = COALESCE(identity_user_id, $13), \
                     identity_user_name = CASE WHEN identity_user_id IS NULL AND $13 IS NOT NULL \
                       THEN $14 ELSE identity_user_name END, \
                     sessions_close = COALESCE($15, sessions_close), \
                     sessions_until = COALESCE($16, sessions_until) \
                     WHERE id = $10 AND version = $11 AND state = $12 \
                     RETURNING {GRANT_COLUMNS}"
                ))
                .bind(change.to.as_str())
                .bind(at)
                .bind(micros(activated_at))
                .bind(micros(ends_at))
                .bind(micros(revoked_at))
                .bind(permission_set_session_seconds)
                .bind(portal_session_seconds)
                .bind(micros(real_end))
                .bind(failure_reason)
                .bind(change.grant_id.to_string())
                .bind(change.expected_version)
                .bind(change.from.as_str())
                .bind(identity.as_ref().map(|u| u.user_id.clone()))
                .bind(identity.map(|u| u.user_name))
                .bind(sessions_close.map(SessionsClose::as_str))
                .bind(micros(sessions_until))
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
                    if let Err(e) = Self::approval_in(&mut tx, change.grant_id, d).await {
                        tx.rollback().await?;
                        return Err(e);
                    }
                }
                let grant = Grant::try_from(row)?;
                let event = NewAuditEvent {
                    details: projection::with_set(
                        change.event.details,
                        projection::set_of(&grant, touched),
                    ),
                    ..change.event
                };
                Self::append_in(&mut tx, event).await?;
                Self::notifications_in(&mut tx, &change.notifications).await?;
                tx.commit().await?;
                Ok(grant)
            }

            async fn list_grants(
                &self,
                filter: &GrantFilter,
                after: Option<Cursor>,
                limit: u32,
            ) -> Result<Vec<Grant>, StoreError> {
                // Words first: their plan decides the query's shape (`store::search`).
                let backend = <$store as Dialect>::SEARCH;
                let plan = match &filter.words {
                    Some(words) => Some(self.word_plan(words).await?),
                    None => None,
                };
                let fenced = plan.is_some_and(|p| search::fenced(backend, p));
                let mut qb = sqlx::QueryBuilder::<$db>::new(if fenced {
                    format!(
                        "SELECT {GRANT_COLUMNS} FROM (SELECT {GRANT_COLUMNS} FROM grants \
                         WHERE 1 = 1"
                    )
                } else {
                    format!("SELECT {GRANT_COLUMNS} FROM grants WHERE 1 = 1")
                });
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
                if let (Some(words), Some(plan)) = (&filter.words, plan) {
                    let (open, close) = search::condition(backend, plan);
                    qb.push(open)
                        .push_bind(words.query(backend))
                        .push(close);
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
                if fenced {
                    // The planner may not merge it: the few matches are read through
                    // the index, then sorted here.
                    qb.push(" OFFSET 0) AS grants");
                }
                qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 1000)));
                let rows: Vec<GrantRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(Grant::try_from).collect()
            }

            async fn record_review(
                &self,
                id: GrantId,
                review: &Review,
                event: NewAuditEvent,
            ) -> Result<Grant, StoreError> {
                let at = review.at.trunc_subsecs(6);
                let mut tx = self.write_tx().await?;
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
                let grant = Grant::try_from(row)?;
                let event = NewAuditEvent {
                    details: projection::with_set(
                        event.details,
                        projection::set_of(&grant, ["reviewed_by", "reviewed_at", "review_comment"]),
                    ),
                    ..event
                };
                Self::append_in(&mut tx, event).await?;
                tx.commit().await?;
                Ok(grant)
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

            async fn extensions_of(&self, id: GrantId) -> Result<Vec<Grant>, StoreError> {
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE extends = $1 \
                     ORDER BY created_at, id LIMIT 1000"
                ))
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Grant::try_from).collect()
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
        }
    };
}

impl_grants!(SqliteStore, sqlx::Sqlite);
impl_grants!(PostgresStore, sqlx::Postgres);

/// The plan for a history search's words by counting up to `RARE_AT_MOST` + 1 of
/// their matches through the backend's full-text index.
macro_rules! impl_count_plan {
    ($store:ty) => {
        impl $store {
            async fn count_plan(&self, words: &SearchWords) -> Result<Plan, StoreError> {
                let backend = <$store as Dialect>::SEARCH;
                let n: i64 = sqlx::query_scalar(&search::count_sql(backend))
                    .bind(words.query(backend))
                    .bind(search::RARE_AT_MOST + 1)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(Plan::for_matches(n))
            }
        }
    };
}

impl_count_plan!(SqliteStore);
impl_count_plan!(PostgresStore);

impl SqliteStore {
    /// The plan for `words`, by counting (SQLite keeps no statistics of what FTS5
    /// holds).
    pub(super) async fn word_plan(&self, words: &SearchWords) -> Result<Plan, StoreError> {
        self.count_plan(words).await
    }
}

impl PostgresStore {
    /// The plan for `words`: from the GIN index's statistics when they decide it
    /// (no read of the index: a common word's count cost 36 ms at a million grants),
    /// else by counting.
    pub(super) async fn word_plan(&self, words: &SearchWords) -> Result<Plan, StoreError> {
        let stats: Option<(Vec<String>, Vec<f32>, f64)> = sqlx::query_as(search::POSTGRES_STATS)
            .fetch_optional(&self.pool)
            .await?;
        match stats
            .and_then(|(elems, freqs, rows)| search::WordStats { elems, freqs, rows }.plan(words))
        {
            Some(plan) => Ok(plan),
            None => self.count_plan(words).await,
        }
    }
}
