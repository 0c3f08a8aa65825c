//! The notification worker: a job on the job runner (`crate::jobs`), started by `run`
//! beside the reaper, on every replica.
//!
//! A pass:
//! 1. enqueues "ending soon" for active grants that end within `notify.ending_soon`
//!    (idempotent: one event per grant and end);
//! 2. fans out events not fanned out yet: one delivery per (channel, recipient),
//!    recipients resolved now (outside any transaction); if the directory cannot be
//!    asked, the fan-out is tried again later, and the deliveries already written stay;
//! 3. claims due deliveries with a lease and sends each once; success marks the row
//!    delivered (never sent again), failure schedules the next attempt with capped,
//!    jittered exponential backoff ([`crate::jobs::Backoff`]), until `notify.retry_for`
//!    has passed since the delivery was created, when it is abandoned (counted and
//!    logged).
//!
//! Logs name the channel, event kind, event and delivery ids and the recipient; never
//! a webhook URL, a password or a signing key.

use super::channels::{Attempt, Channels, DeliveryError, SEND_TIMEOUT};
use super::message::{Message, WindowText};
use super::recipients::{resolve, Recipients};
use super::{NotificationEvent, CHANNEL_WIDE};
use crate::clock::Clock;
use crate::jobs::{to_chrono, Backoff, Job, JobError, Leases};
use crate::metrics::Metrics;
use crate::store::{Delivery, NewDelivery, NotificationEventRecord, Store, StoreError};
use app::domain::{Grant, PortalSession, SessionDuration};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Tunables; [`WorkerSettings::from_config`] gives the server's.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub interval: Duration,
    /// How long a claimed delivery is reserved for this worker: longer than a send.
    pub lease: Duration,
    /// Deliveries claimed per pass.
    pub batch: u32,
    /// Deliveries sent at once.
    pub concurrency: usize,
    /// Retry backoff: base and cap (full jitter, at least the base).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A delivery still failing this long after it was created is abandoned.
    pub retry_for: Duration,
    /// "Ending soon" is sent this long before a grant's end.
    pub ending_soon: Duration,
    /// For links to grant pages.
    pub public_url: String,
    /// For the real-window preview of requests.
    pub portal_session: PortalSession,
}

impl WorkerSettings {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            interval: c.notify.interval,
            lease: SEND_TIMEOUT * 4,
            batch: 100,
            concurrency: 8,
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(15 * 60),
            retry_for: c.notify.retry_for,
            ending_soon: c.notify.ending_soon,
            public_url: c.server.public_url.clone(),
            portal_session: c.identity_center.portal_session,
        }
    }
}

/// What one pass did, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub ending_soon_enqueued: u64,
    pub fanned_out: usize,
    pub fan_out_failed: usize,
    pub delivered: usize,
    pub failed: usize,
    pub abandoned: usize,
}

enum Sent {
    Delivered,
    Failed,
    Abandoned,
}

/// The notification job.
#[derive(Debug)]
pub struct NotifyWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    channels: Channels,
    recipients: Arc<dyn Recipients>,
    settings: WorkerSettings,
    /// This replica's claims on deliveries (`Store::claim_deliveries`).
    leases: Leases,
}

impl NotifyWorker {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        channels: Channels,
        recipients: Arc<dyn Recipients>,
        settings: WorkerSettings,
    ) -> Self {
        Self {
            leases: Leases::new("notify", store.clone(), clock.clone(), settings.lease),
            store,
            clock,
            metrics,
            channels,
            recipients,
            settings,
        }
    }

    /// Passes every `interval` until `stop` turns true; the pass in progress finishes.
    pub async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let metrics = self.metrics.clone();
        crate::jobs::run(self, metrics, stop).await;
    }

    /// One pass: ending-soon scan, fan-out, deliveries, metrics.
    pub async fn pass(&self) -> Result<PassReport, StoreError> {
        let mut report = PassReport {
            ending_soon_enqueued: self.scan_ending_soon().await?,
            ..PassReport::default()
        };
        self.fan_out(&mut report).await?;
        self.deliver(&mut report).await?;
        self.update_metrics().await?;
        Ok(report)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.settings.backoff_base, self.settings.backoff_cap)
    }

    async fn scan_ending_soon(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let until = now + to_chrono(self.settings.ending_soon);
        let mut enqueued = 0;
        for g in self.store.grants_ending_between(now, until, 1000).await? {
            let Some(ends_at) = g.ends_at else { continue };
            if super::enqueue(
                self.store.as_ref(),
                g.id,
                NotificationEvent::EndingSoon { ends_at },
                now,
            )
            .await?
            {
                enqueued += 1;
            }
        }
        Ok(enqueued)
    }

    async fn fan_out(&self, report: &mut PassReport) -> Result<(), StoreError> {
        let now = self.clock.now();
        for event in self.store.notification_events_to_fan_out(now, 100).await? {
            let grant = match event.grant_id {
                Some(id) => self.store.get_grant(id).await?,
                None => None,
            };
            let mut deliveries = Vec::new();
            let mut failure = None;
            for channel in self.channels.list.iter().filter(|c| c.wants(event.kind)) {
                if !channel.per_person() {
                    deliveries.push(NewDelivery {
                        channel: channel.name().to_owned(),
                        recipient: CHANNEL_WIDE.to_owned(),
                    });
                    continue;
                }
                match resolve(
                    self.recipients.as_ref(),
                    event.kind.audience(),
                    grant.as_ref(),
                )
                .await
                {
                    Ok(people) => {
                        if people.is_empty() {
                            tracing::warn!(event = %event.id, kind = event.kind.as_str(), channel = channel.name(), "nobody to send this event to on this channel");
                        }
                        deliveries.extend(people.into_iter().map(|r| NewDelivery {
                            channel: channel.name().to_owned(),
                            recipient: r.email,
                        }));
                    }
                    Err(e) => failure = Some(e.to_string()),
                }
            }
            let age = now - event.created_at;
            match failure {
                Some(error) if age < to_chrono(self.settings.retry_for) => {
                    // Keep what could be resolved (channel-wide deliveries go out now)
                    // and try the rest again: later by the event's age, capped.
                    self.store
                        .fan_out_notification(event.id, &deliveries, now, false)
                        .await?;
                    let wait = self.backoff().clamp(age);
                    self.store
                        .notification_fan_out_failed(event.id, now + wait, &error)
                        .await?;
                    tracing::warn!(event = %event.id, kind = event.kind.as_str(), error = %error, retry_in = ?wait.to_std().unwrap_or_default(), "recipients could not be resolved; trying again later");
                    report.fan_out_failed += 1;
                }
                failure => {
                    if let Some(error) = failure {
                        tracing::error!(event = %event.id, kind = event.kind.as_str(), error = %error, "recipients could not be resolved for notify.retry_for; sending to those found");
                    }
                    self.store
                        .fan_out_notification(event.id, &deliveries, now, true)
                        .await?;
                    report.fanned_out += 1;
                }
            }
        }
        Ok(())
    }

    async fn deliver(&self, report: &mut PassReport) -> Result<(), StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_deliveries(
                self.leases.owner(),
                now,
                self.leases.until(now),
                self.settings.batch,
            )
            .await?;
        let results: Vec<Result<Sent, StoreError>> =
            futures_util::stream::iter(claimed.into_iter().map(|d| self.deliver_one(d)))
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        for r in results {
            match r? {
                Sent::Delivered => report.delivered += 1,
                Sent::Failed => report.failed += 1,
                Sent::Abandoned => report.abandoned += 1,
            }
        }
        Ok(())
    }

    /// The grant's real window, or for a request not active yet its preview from the
    /// requested duration, the portal session and the permission set's session
    /// duration in the catalog.
    async fn window(&self, grant: &Grant, now: DateTime<Utc>) -> Option<WindowText> {
        // A preview needs the permission set's session as synced.
        let session = if grant.awaits_start() {
            crate::identity_center::catalog::permission_set_by_name(
                self.store.as_ref(),
                grant.request.permission_set.as_str(),
            )
            .await
            .ok()
            .flatten()
            .and_then(|ps| {
                SessionDuration::from_duration(chrono::Duration::seconds(
                    ps.session_duration_seconds,
                ))
                .ok()
            })
        } else {
            None
        };
        grant
            .windows_or_preview(now, Some(self.settings.portal_session), session)
            .map(|w| WindowText::new(&w.windows, w.preview))
    }

    async fn render(
        &self,
        event: &NotificationEventRecord,
        now: DateTime<Utc>,
    ) -> Result<Message, StoreError> {
        let grant = match event.grant_id {
            Some(id) => self.store.get_grant(id).await?,
            None => None,
        };
        let window = match &grant {
            Some(g) => self.window(g, now).await,
            None => None,
        };
        let mut message = Message::render(event, grant.as_ref(), window, &self.settings.public_url);
        if let Some(g) = &grant {
            let id = g.request.account_id.as_str();
            let nodes = self.store.catalog_nodes().await?;
            if let Some(account) = nodes.iter().find(|n| n.id == id) {
                message.name_account(id, &account.name);
            }
        }
        Ok(message)
    }

    async fn deliver_one(&self, d: Delivery) -> Result<Sent, StoreError> {
        let now = self.clock.now();
        let outcome = match (
            self.channels.get(&d.channel),
            self.store.notification_event(d.event_id).await?,
        ) {
            (Some(channel), Some(event)) => {
                let message = self.render(&event, now).await?;
                // The channels time out on their own; this bounds a stuck connection
                // so the lease is never outlived.
                match tokio::time::timeout(
                    SEND_TIMEOUT + Duration::from_secs(5),
                    channel.send(Attempt {
                        message: &message,
                        delivery: &d,
                        now,
                    }),
                )
                .await
                {
                    Ok(r) => r.map(|()| event.kind),
                    Err(_) => Err(DeliveryError::retry("the send timed out")),
                }
            }
            (None, _) => Err(DeliveryError::retry(format!(
                "the channel {:?} is not configured (any more)",
                d.channel
            ))),
            (_, None) => Err(DeliveryError::permanent("the event is missing")),
        };
        match outcome {
            Ok(kind) => {
                self.store.mark_delivered(d.id, self.clock.now()).await?;
                self.metrics
                    .notifications_delivered
                    .with_label_values(&[d.channel.as_str()])
                    .inc();
                tracing::info!(channel = %d.channel, kind = kind.as_str(), event = %d.event_id, delivery = %d.id, recipient = %d.recipient, "notification delivered");
                Ok(Sent::Delivered)
            }
            Err(e) => {
                let attempts = d.attempts + 1;
                let expired = now - d.created_at >= to_chrono(self.settings.retry_for);
                let abandon = e.permanent || expired;
                let wait = self
                    .backoff()
                    .delay(attempts)
                    .max(e.retry_after.map(to_chrono).unwrap_or_default());
                self.store
                    .record_delivery_failure(
                        d.id,
                        self.leases.owner(),
                        now + wait,
                        &e.message,
                        abandon,
                    )
                    .await?;
                self.metrics
                    .notifications_failed
                    .with_label_values(&[d.channel.as_str()])
                    .inc();
                if abandon {
                    self.metrics
                        .notifications_abandoned
                        .with_label_values(&[d.channel.as_str()])
                        .inc();
                    tracing::error!(channel = %d.channel, event = %d.event_id, delivery = %d.id, recipient = %d.recipient, attempts, error = %e, "notification given up");
                    Ok(Sent::Abandoned)
                } else {
                    tracing::warn!(channel = %d.channel, event = %d.event_id, delivery = %d.id, recipient = %d.recipient, attempts, retry_in = ?wait.to_std().unwrap_or_default(), error = %e, "notification failed; will retry");
                    Ok(Sent::Failed)
                }
            }
        }
    }

    async fn update_metrics(&self) -> Result<(), StoreError> {
        let stats = self.store.outbox_stats().await?;
        self.metrics
            .notification_outbox_depth
            .set(stats.pending_deliveries + stats.unfanned_events);
        let oldest = stats
            .oldest_undelivered
            .map(|t| (self.clock.now() - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        self.metrics.notification_oldest_undelivered.set(oldest);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Job for NotifyWorker {
    fn leases(&self) -> &Leases {
        &self.leases
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    fn started(&self) {
        let names: Vec<&str> = self.channels.list.iter().map(|c| c.name()).collect();
        tracing::info!(channels = ?names, "notification channels");
    }

    async fn run_once(self: Arc<Self>) -> Result<(), JobError> {
        self.pass().await?;
        Ok(())
    }
}
