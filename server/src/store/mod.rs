//! Storage: one repository trait, two backends (SQLite by default, PostgreSQL for
//! several replicas), one set of SQL (see `backend.rs`) and one test suite.
//!
//! Rules:
//! - every multi-row change is one transaction;
//! - a state change is a conditional update on the grant's `version`, so two replicas
//!   (or a retry after a crash) cannot both apply it: the loser gets
//!   [`StoreError::Conflict`] and re-reads;
//! - every lifecycle change appends one event to the hash-chained audit log in the
//!   same transaction.

pub mod audit;
mod backend;

use app::domain::{ActivityEvent, Grant, GrantId, GrantRequest, GrantState, IpHistory};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

pub use audit::{AuditEvent, BrokenLink, ChainVerification, NewAuditEvent};
pub use backend::{PostgresStore, SqliteStore};

/// Errors from storage. Database details are logged where they happen and never
/// shown to a user; the API maps these to status codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the grant changed since it was read (expected version {expected})")]
    Conflict { expected: i64 },
    #[error("no grant {0}")]
    NotFound(GrantId),
    #[error("{0} has already decided this request")]
    DuplicateDecision(String),
    #[error("a stored row is not valid: {0}")]
    Corrupt(String),
    #[error("the database URL {0:?} is neither sqlite: nor postgres://")]
    UnsupportedUrl(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    // --- policy (issue 7) ---
    #[error("the requester already has {active} live grants under this policy")]
    CapReached { active: i64 },
    #[error("grant {0} owes no review (it is not break-glass, or it was reviewed already)")]
    NoReviewOwed(GrantId),
}

/// A decision recorded on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub grant_id: GrantId,
    pub approver: String,
    pub decision: Decision,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
}

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
}

/// Keyset position: the `(created_at, id)` of the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: GrantId,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a new pending request, its `requested` audit event and the notifications
    /// it causes, in one transaction.
    async fn create_grant(
        &self,
        id: GrantId,
        request: &GrantRequest,
        at: DateTime<Utc>,
        event: NewAuditEvent,
        notifications: Vec<NewNotification>,
    ) -> Result<Grant, StoreError>;

    async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;

    async fn approvals(&self, id: GrantId) -> Result<Vec<Approval>, StoreError>;

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

    /// Appends an event that is not tied to a state change (e.g. a configuration
    /// reload, a drift report).
    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError>;

    /// Events in chain order after `after_seq`, at most `limit`; only those of one
    /// grant when `grant` is given.
    async fn audit_events(
        &self,
        grant: Option<GrantId>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Walks the whole chain page by page and reports the first broken link.
    async fn verify_audit_chain(&self) -> Result<ChainVerification, StoreError>;

    /// The newest events whose action is one of `actions` (drift reports, …).
    async fn recent_audit_events(
        &self,
        actions: &[&str],
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    // --- the Identity Center catalog -------------------------------------------

    /// Replaces the cached catalog with a fresh sync, in one transaction.
    async fn replace_catalog(
        &self,
        permission_sets: &[CatalogPermissionSet],
        nodes: &[CatalogNode],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn catalog_permission_sets(&self) -> Result<Vec<CatalogPermissionSet>, StoreError>;

    async fn catalog_nodes(&self) -> Result<Vec<CatalogNode>, StoreError>;

    /// When the catalog was last synced, `None` before the first sync.
    async fn catalog_synced_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    // --- the reaper's work -----------------------------------------------------

    /// Grants the reaper has something to do for at `now`: approved and due,
    /// provisioning, active past their end, revoking; skipping those backing off.
    /// Oldest deadline first.
    async fn reaper_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Grant>, StoreError>;

    /// How many grants [`Store::reaper_due`] would return without a limit.
    async fn reaper_queue_depth(&self, now: DateTime<Utc>) -> Result<i64, StoreError>;

    /// Grants per state, for metrics.
    async fn grant_counts(&self) -> Result<Vec<(GrantState, i64)>, StoreError>;

    /// Takes (or renews) the lease on `target` for `owner` until `until`, if it is
    /// free, expired at `now`, or already `owner`'s. True when `owner` holds it.
    async fn lease_target(
        &self,
        target: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives the lease back (only if `owner` still holds it).
    async fn release_target(&self, target: &str, owner: &str) -> Result<(), StoreError>;

    async fn grant_aws(&self, id: GrantId) -> Result<Option<GrantAws>, StoreError>;

    /// Writes the whole row (insert or replace).
    async fn save_grant_aws(&self, id: GrantId, row: &GrantAws) -> Result<(), StoreError>;

    /// Every grant's AWS row whose grant is in one of `states`.
    async fn grant_aws_in_states(
        &self,
        states: &[GrantState],
    ) -> Result<Vec<(Grant, GrantAws)>, StoreError>;

    // --- notifications: the outbox (server/src/notify) -------------------------
    //
    // Events are written with the change that causes them (`Change::notifications`,
    // `create_grant`) or by `enqueue_notifications`; the worker fans each event out
    // into one delivery per (channel, recipient) and delivers those with a lease.

    /// Writes events that are not part of a state change. An event whose
    /// `dedupe_key` is already stored is skipped, so enqueueing is idempotent.
    /// Returns how many were new.
    async fn enqueue_notifications(&self, events: &[NewNotification]) -> Result<u64, StoreError>;

    /// Events not yet fanned out whose `fan_out_after` has come, oldest first.
    async fn notification_events_to_fan_out(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationEventRecord>, StoreError>;

    async fn notification_event(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<NotificationEventRecord>, StoreError>;

    /// Writes the deliveries of `event` (an existing (event, channel, recipient) is
    /// kept as it is) and, when `complete`, marks the event fanned out, in one
    /// transaction. An incomplete fan-out (some recipients could not be resolved) is
    /// done again later; the rows already written are not duplicated.
    async fn fan_out_notification(
        &self,
        event: uuid::Uuid,
        deliveries: &[NewDelivery],
        at: DateTime<Utc>,
        complete: bool,
    ) -> Result<(), StoreError>;

    /// Recipients could not be resolved: try the fan-out again after `retry_at`.
    async fn notification_fan_out_failed(
        &self,
        event: uuid::Uuid,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` pending deliveries that are due at `now` and not leased
    /// by someone else, leasing them to `owner` until `lease_until` (one conditional
    /// update; `FOR UPDATE SKIP LOCKED` on PostgreSQL).
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// The delivery was accepted by its receiver: it is never sent again.
    async fn mark_delivered(&self, id: uuid::Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// A failed attempt by `owner`: retried at `next_attempt_at`, or given up
    /// (`abandon`). Does nothing if the delivery is no longer pending.
    async fn record_delivery_failure(
        &self,
        id: uuid::Uuid,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        abandon: bool,
    ) -> Result<(), StoreError>;

    /// Pending deliveries, events not fanned out yet, and the oldest of either.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// Every delivery of the events of one grant, oldest first (for the grant page,
    /// operators and tests).
    async fn grant_deliveries(&self, grant: GrantId) -> Result<Vec<DeliveryStatus>, StoreError>;

    /// Active grants whose end falls in `(after, until]`, soonest first.
    async fn grants_ending_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError>;

    // --- policy (issue 7): requests under a policy, pending expiry, reviews ------

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

    /// Pending grants the reaper settles at `now`: those past `expires_at` (to
    /// expire) and those that need no approval (approved automatically; normally done
    /// at request time, this catches a crash in between). Oldest first.
    async fn pending_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Grant>, StoreError>;

    /// Records the review of a grant that owes one (`review_required` and not yet
    /// reviewed) and its audit event, in one transaction; otherwise
    /// [`StoreError::NoReviewOwed`] (or `NotFound`) and nothing is written.
    async fn record_review(
        &self,
        id: GrantId,
        review: &Review,
        event: NewAuditEvent,
    ) -> Result<Grant, StoreError>;

    // --- evidence (issue 6): each grant's activity and investigation ------------
    // Kept together at the end of the trait (and of `impl_store!`) so the other
    // sections merge cleanly.

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

// --- notifications: the outbox ------------------------------------------------------

/// An event to tell people about, as it is written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The event id every delivery carries (receivers deduplicate on it).
    pub id: uuid::Uuid,
    /// At most one event per key is ever stored.
    pub dedupe_key: String,
    pub kind: crate::notify::NotificationKind,
    pub grant_id: Option<GrantId>,
    /// What happened, beyond the grant itself (who decided, the error, …).
    pub details: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationEventRecord {
    pub id: uuid::Uuid,
    pub kind: crate::notify::NotificationKind,
    pub grant_id: Option<GrantId>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub fanned_out_at: Option<DateTime<Utc>>,
}

/// One delivery to write when an event is fanned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub channel: String,
    /// An email address, or [`crate::notify::CHANNEL_WIDE`].
    pub recipient: String,
}

/// A claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: uuid::Uuid,
    pub event_id: uuid::Uuid,
    pub channel: String,
    pub recipient: String,
    /// Failed attempts so far.
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    pub id: uuid::Uuid,
    pub event_id: uuid::Uuid,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    /// `pending`, `delivered` or `abandoned`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The outbox at a glance, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending_deliveries: i64,
    pub unfanned_events: i64,
    /// The creation time of the oldest pending delivery or unfanned event.
    pub oldest_undelivered: Option<DateTime<Utc>>,
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
}

/// The review of a break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub reviewer: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// A permission set as the catalog caches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogPermissionSet {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// `SessionDuration`, in seconds.
    pub session_duration_seconds: i64,
}

/// What a node of the organisation tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Root,
    Ou,
    Account,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Root => "root",
            NodeKind::Ou => "ou",
            NodeKind::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [NodeKind::Root, NodeKind::Ou, NodeKind::Account]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One root, organisational unit or account, with its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogNode {
    pub id: String,
    pub kind: NodeKind,
    pub name: String,
    pub parent_id: Option<String>,
}

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

/// Opens the store named by `url`, creating (SQLite) and migrating it.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme_end], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
