//! The notification outbox: events written with the change that causes them
//! (`Change::notifications`, `create_policy_grant`) or by `enqueue_notifications`;
//! the worker fans each event out into one delivery per (channel, recipient) and
//! delivers those with a lease.

use super::sql::{parse_uuid, Dialect, PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{GrantId, NotificationKind};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

/// An event to tell people about, as it is written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The event id every delivery carries (receivers deduplicate on it).
    pub id: uuid::Uuid,
    /// At most one event per key is ever stored.
    pub dedupe_key: String,
    pub kind: NotificationKind,
    pub grant_id: Option<GrantId>,
    /// What happened, beyond the grant itself (who decided, the error, …).
    pub details: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationEventRecord {
    pub id: uuid::Uuid,
    pub kind: NotificationKind,
    pub grant_id: Option<GrantId>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub fanned_out_at: Option<DateTime<Utc>>,
}

/// One delivery to write when an event is fanned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub channel: String,
    /// An email address, or `notify::CHANNEL_WIDE` (`*`).
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
    pub kind: NotificationKind,
    pub channel: String,
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Where one delivery is (stored as `pending`, `delivered`, `abandoned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; retried at `next_attempt_at`.
    Pending,
    /// The receiver accepted it: never sent again.
    Delivered,
    /// Given up after the retry period.
    Abandoned,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Abandoned,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// The outbox at a glance, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending_deliveries: i64,
    pub unfanned_events: i64,
    /// The creation time of the oldest pending delivery or unfanned event.
    pub oldest_undelivered: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Outbox {
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
            kind: NotificationKind::parse(&r.kind)
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
            kind: NotificationKind::parse(&r.kind).ok_or_else(|| {
                StoreError::Corrupt(format!("delivery {}: kind {:?}", r.id, r.kind))
            })?,
            channel: r.channel,
            recipient: r.recipient,
            state: DeliveryState::parse(&r.state).ok_or_else(|| {
                StoreError::Corrupt(format!("delivery {}: state {:?}", r.id, r.state))
            })?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
        })
    }
}

macro_rules! impl_outbox {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Writes notification events inside `tx`; an event whose dedupe key is
            /// already stored is skipped. Returns how many were new.
            pub(super) async fn notifications_in(
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
        impl Outbox for $store {
            async fn enqueue_notifications(
                &self,
                events: &[NewNotification],
            ) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
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
                let mut tx = self.write_tx().await?;
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
                        <$store as Dialect>::CLAIM_LOCK
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
                .bind(if abandon {
                    DeliveryState::Abandoned
                } else {
                    DeliveryState::Pending
                }
                .as_str())
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
        }
    };
}

impl_outbox!(SqliteStore, sqlx::Sqlite);
impl_outbox!(PostgresStore, sqlx::Postgres);
