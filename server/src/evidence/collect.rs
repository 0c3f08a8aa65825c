//! The evidence job: when and how a grant's evidence is collected, then the grant
//! closed. It runs on the job runner beside the reaper (never in front of its
//! revocations); [`crate::reaper::Reaper::tick`] waits for one pass.
//!
//! Timing (DESIGN §2, `revoked ──tail over, evidence collected──> closed`):
//! - while the grant is **active**, every `evidence.collect_interval`;
//! - once right after **revocation**, then every interval during the **tail**;
//! - once when the **real window closes** (`real.end`; for a grant whose sessions
//!   were closed, the worst case it would have had, [`Windows::watched_until`], so
//!   calls after the deny are seen: refused, or the proof it failed);
//! - a **final** time after CloudTrail's delivery delay (that end + `delivery_delay`),
//!   then the grant is `closed` (once its Detective investigation, if any, has
//!   finished, or an hour later at most).
//!
//! Every step is idempotent and resumes from the database: events are stored once per
//! (grant, event id), each phase is recorded in `grant_evidence` after it succeeded,
//! the investigation id is stored as soon as Detective answers, and a grant is worked
//! on by one replica at a time (a lease on `evidence|<grant id>`). Failures back off
//! exponentially with jitter ([`crate::jobs::Backoff`], capped) and are stored on the
//! row.

use super::detective::Investigations;
use super::{ActivityQuery, ActivitySink, ActivitySource, EvidenceError, MatchTarget};
use crate::clock::Clock;
use crate::jobs::{to_std, Backoff, Job, JobError, Leases};
use crate::metrics::Metrics;
use crate::services::grants::GrantService;
use crate::store::{ActivityCursor, GrantEvidence, GrantPatch, NewAuditEvent, Store, StoreError};
use app::domain::{
    Action, ActivityEvent, Actor, AuditAction, ConsoleLinks, EvidenceSummary, Grant, GrantId,
    GrantState, Interval, InvestigationStatus, InvestigationSummary, SummaryBuilder, Windows,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// Tunables; [`EvidenceSettings::from_config`] gives the server's.
#[derive(Debug, Clone)]
pub struct EvidenceSettings {
    /// How often a pass looks for grants whose evidence is due (the reaper's interval).
    pub interval: std::time::Duration,
    pub collect_interval: Duration,
    pub delivery_delay: Duration,
    /// How far before activation and after the real window activity is read, so that
    /// activity outside every grant window can be seen.
    pub lookaround: Duration,
    /// How long the grant waits for a running investigation after the final
    /// collection before it is closed anyway.
    pub investigation_wait: Duration,
    /// How often a running investigation is polled.
    pub investigation_poll: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Grants looked at per pass.
    pub batch: u32,
    /// Events read per page when summarising.
    pub page: u32,
    pub lease: Duration,
}

impl EvidenceSettings {
    pub fn from_config(c: &crate::config::Config) -> Self {
        let d = |s: std::time::Duration| Duration::from_std(s).unwrap_or(Duration::minutes(5));
        Self {
            interval: c.reaper.interval,
            collect_interval: d(c.evidence.collect_interval),
            delivery_delay: d(c.evidence.delivery_delay),
            lookaround: Duration::hours(1),
            investigation_wait: Duration::hours(1),
            investigation_poll: Duration::seconds(30).min(d(c.evidence.collect_interval)),
            backoff_base: Duration::seconds(30),
            backoff_cap: Duration::minutes(30),
            batch: 200,
            page: 500,
            lease: Duration::minutes(10),
        }
    }
}

/// Which collection is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The grant is active.
    Active,
    /// Revoked, inside the tail.
    Tail,
    /// The real window has closed.
    WindowClosed,
    /// The real window plus the delivery delay has passed: the last collection.
    Final,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Active => "active",
            Phase::Tail => "tail",
            Phase::WindowClosed => "window_closed",
            Phase::Final => "final",
        }
    }
}

/// The collection due for `g` at `now`, if any. Pure: the schedule, tested alone.
pub fn due_phase(
    g: &Grant,
    windows: &Windows,
    ev: &GrantEvidence,
    now: DateTime<Utc>,
    s: &EvidenceSettings,
) -> Option<Phase> {
    match g.state {
        GrantState::Active => {
            let due = ev.next_collection_at.is_none_or(|t| t <= now);
            due.then_some(Phase::Active)
        }
        GrantState::Revoked => {
            if ev.final_collected_at.is_some() {
                return None;
            }
            let real_end = windows.watched_until();
            if now >= real_end + s.delivery_delay {
                return Some(Phase::Final);
            }
            if now >= real_end {
                return ev
                    .window_close_collected_at
                    .is_none()
                    .then_some(Phase::WindowClosed);
            }
            let revoked_since = match (ev.last_collected_at, g.revoked_at) {
                (Some(last), Some(revoked)) => last < revoked,
                _ => true,
            };
            let due = revoked_since || ev.next_collection_at.is_none_or(|t| t <= now);
            due.then_some(Phase::Tail)
        }
        _ => None,
    }
}

/// When the next collection after `phase` (done at `now`) is due.
pub fn next_collection(
    phase: Phase,
    windows: &Windows,
    now: DateTime<Utc>,
    s: &EvidenceSettings,
) -> Option<DateTime<Utc>> {
    let real_end = windows.watched_until();
    match phase {
        Phase::Active => Some(now + s.collect_interval),
        Phase::Tail => Some((now + s.collect_interval).min(real_end)),
        Phase::WindowClosed => Some(real_end + s.delivery_delay),
        Phase::Final => None,
    }
}

pub(crate) fn parse_summary(id: GrantId, json: Option<&str>) -> Option<EvidenceSummary> {
    parse_stored(id, json, "evidence summary")
}

pub(crate) fn parse_investigation(id: GrantId, json: Option<&str>) -> Option<InvestigationSummary> {
    parse_stored(id, json, "investigation")
}

/// A JSON column of `grant_evidence`; `None` when empty, or unreadable (logged: the
/// page shows no summary rather than failing).
fn parse_stored<T: serde::de::DeserializeOwned>(
    id: GrantId,
    json: Option<&str>,
    what: &str,
) -> Option<T> {
    match serde_json::from_str(json?) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(grant = %id, error = %e, "stored {what} is unreadable");
            None
        }
    }
}

/// What one pass did, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvidenceReport {
    pub collected: usize,
    pub new_events: u64,
    pub investigations_started: usize,
    pub closed: usize,
    pub failed: usize,
}

/// Stores each page the source hands over.
struct StoreSink<'a> {
    store: &'a dyn Store,
    grant: GrantId,
    inserted: u64,
}

#[async_trait]
impl ActivitySink for StoreSink<'_> {
    async fn accept(&mut self, events: Vec<ActivityEvent>) -> Result<(), EvidenceError> {
        self.inserted += self.store.insert_activity(self.grant, &events).await?;
        Ok(())
    }
}

/// Why an evidence pass (or one grant's step) failed: the store or a lifecycle move,
/// as for every reaper step. AWS failures never end a pass: they are stored on the
/// grant's evidence row and retried after the backoff.
pub type CollectError = crate::reaper::ReaperError;

/// The evidence job (the reaper's evidence step).
#[derive(Debug)]
pub struct Collector {
    grants: GrantService,
    store: Arc<dyn Store>,
    source: Arc<dyn ActivitySource>,
    detective: Option<Arc<dyn Investigations>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: EvidenceSettings,
    /// This replica's `evidence|<grant>` leases.
    leases: Leases,
}

impl Collector {
    pub fn new(
        grants: GrantService,
        source: Arc<dyn ActivitySource>,
        detective: Option<Arc<dyn Investigations>>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: EvidenceSettings,
    ) -> Self {
        let store = grants.store().clone();
        Self {
            leases: Leases::new(
                "evidence",
                store.clone(),
                clock.clone(),
                to_std(settings.lease),
            ),
            store,
            grants,
            source,
            detective,
            clock,
            metrics,
            settings,
        }
    }

    pub fn settings(&self) -> &EvidenceSettings {
        &self.settings
    }

    /// Works on every grant whose evidence is due, one after the other (collections
    /// are paced per account anyway).
    pub async fn pass(&self) -> Result<EvidenceReport, CollectError> {
        let now = self.clock.now();
        let due = self.store.evidence_due(now, self.settings.batch).await?;
        let mut report = EvidenceReport::default();
        for g in due {
            if let Err(e) = self.work_grant(g.id, &mut report).await {
                report.failed += 1;
                tracing::error!(grant = %g.id, error = %e, "evidence step failed");
            }
        }
        Ok(report)
    }

    async fn work_grant(
        &self,
        id: GrantId,
        report: &mut EvidenceReport,
    ) -> Result<(), CollectError> {
        let key = format!("evidence|{id}");
        self.leases
            .while_held(&key, self.work_leased(id, report))
            .await
            .map(|_| ())
    }

    async fn work_leased(
        &self,
        id: GrantId,
        report: &mut EvidenceReport,
    ) -> Result<(), CollectError> {
        // Re-read under the lease: another replica may have moved it.
        let Some(g) = self.store.get_grant(id).await? else {
            return Ok(());
        };
        let Some(Ok(windows)) = g.windows() else {
            return Ok(());
        };
        let mut ev = self.store.grant_evidence(id).await?.unwrap_or_default();
        let now = self.clock.now();

        if let Some(phase) = due_phase(&g, &windows, &ev, now, &self.settings) {
            match self.collect(&g, &windows, &ev, phase, now).await {
                Ok((summary, inserted)) => {
                    report.collected += 1;
                    report.new_events += inserted;
                    ev.collections += 1;
                    ev.last_collected_at = Some(now);
                    match phase {
                        Phase::WindowClosed => ev.window_close_collected_at = Some(now),
                        Phase::Final => {
                            ev.window_close_collected_at.get_or_insert(now);
                            ev.final_collected_at = Some(now);
                        }
                        Phase::Active | Phase::Tail => {}
                    }
                    if ev.role_arn.is_none() {
                        ev.role_arn.clone_from(&summary.role_arn);
                    }
                    ev.summary = serde_json::to_string(&summary).ok();
                    ev.next_collection_at = next_collection(phase, &windows, now, &self.settings);
                    ev.attempts = 0;
                    ev.last_error = None;
                    self.store.save_grant_evidence(id, &ev).await?;
                    tracing::info!(grant = %id, phase = phase.as_str(), new_events = inserted, total = summary.event_count, "evidence collected");
                    if phase == Phase::Final {
                        self.store
                            .append_audit(NewAuditEvent {
                                grant_id: Some(id),
                                at: now,
                                actor: "timebox".to_owned(),
                                action: AuditAction::EvidenceSummarized,
                                from_state: None,
                                to_state: None,
                                reason: None,
                                details: chained_facts(id, &summary, &ev),
                            })
                            .await?;
                    }
                }
                Err(e) => {
                    self.failed(id, &mut ev, "collect", &e).await?;
                    report.failed += 1;
                    return Ok(());
                }
            }
        }

        if g.state == GrantState::Revoked {
            if let Some(detective) = self.detective.clone() {
                match self
                    .investigate(&g, &windows, &mut ev, detective.as_ref())
                    .await
                {
                    Ok(started) => {
                        if started {
                            report.investigations_started += 1;
                        }
                    }
                    Err(e) => {
                        self.failed(id, &mut ev, "investigate", &e).await?;
                        report.failed += 1;
                        return Ok(());
                    }
                }
            }
            if self.ready_to_close(&ev, now) {
                let summary = parse_summary(id, ev.summary.as_deref()).unwrap_or_default();
                self.grants
                    .act(
                        id,
                        Action::Close,
                        &Actor::System,
                        Some("the tail is over and the evidence is collected".into()),
                        GrantPatch::default(),
                        chained_facts(id, &summary, &ev),
                    )
                    .await?;
                report.closed += 1;
            }
        }
        Ok(())
    }

    fn ready_to_close(&self, ev: &GrantEvidence, now: DateTime<Utc>) -> bool {
        let Some(final_at) = ev.final_collected_at else {
            return false;
        };
        let running =
            ev.investigation_status.as_deref() == Some(InvestigationStatus::Running.as_str());
        !running || now >= final_at + self.settings.investigation_wait
    }

    async fn failed(
        &self,
        id: GrantId,
        ev: &mut GrantEvidence,
        step: &'static str,
        e: &EvidenceError,
    ) -> Result<(), StoreError> {
        ev.attempts += 1;
        let backoff = Backoff::new(
            to_std(self.settings.backoff_base),
            to_std(self.settings.backoff_cap),
        );
        ev.next_collection_at = Some(self.clock.now() + backoff.delay(ev.attempts));
        ev.last_error = Some(e.to_string());
        self.store.save_grant_evidence(id, ev).await?;
        let kind = if e.is_retryable() { "aws" } else { "permanent" };
        self.metrics
            .reaper_failures
            .with_label_values(&[
                if step == "collect" {
                    "evidence"
                } else {
                    "investigate"
                },
                kind,
            ])
            .inc();
        tracing::warn!(grant = %id, step, attempts = ev.attempts, next = ?ev.next_collection_at, error = %e, "evidence step failed; will retry");
        Ok(())
    }

    /// Reads the range for `phase`, stores it, and summarises everything stored.
    async fn collect(
        &self,
        g: &Grant,
        windows: &Windows,
        ev: &GrantEvidence,
        phase: Phase,
        now: DateTime<Utc>,
    ) -> Result<(EvidenceSummary, u64), EvidenceError> {
        let target = MatchTarget {
            account_id: g.request.account_id.to_string(),
            permission_set: g.request.permission_set.to_string(),
            user_name: g.user_name().to_owned(),
        };
        let start = windows.real.start - self.settings.lookaround;
        let end = (windows.watched_until() + self.settings.lookaround).min(now);
        let query = ActivityQuery {
            target,
            start,
            end: end.max(start),
        };
        let mut sink = StoreSink {
            store: self.store.as_ref(),
            grant: g.id,
            inserted: 0,
        };
        let stats = self.source.collect(&query, &mut sink).await?;
        tracing::debug!(grant = %g.id, pages = stats.pages, seen = stats.seen, matched = stats.matched, "activity read");
        let mut summary = self.summarise(g, windows).await?;
        summary.collections = u32::try_from(ev.collections + 1).unwrap_or(u32::MAX);
        summary.collected_at = Some(now);
        summary.covers_tail = phase == Phase::Final;
        // Tell people as soon as a session is seen in use after revocation (once per
        // grant: the outbox drops a repeated event).
        if let Some(app::domain::ActivityFlag::AfterRevocation {
            count,
            first_at,
            last_at,
        }) = summary
            .flags
            .iter()
            .find(|f| matches!(f, app::domain::ActivityFlag::AfterRevocation { .. }))
        {
            crate::notify::enqueue(
                self.store.as_ref(),
                g.id,
                crate::notify::NotificationEvent::ActivityAfterRevocation {
                    first_at: *first_at,
                    last_at: *last_at,
                    events: *count,
                },
                now,
            )
            .await?;
        }
        // A call that went through after the deny: the deny did not work. Critical,
        // told at once (once per grant).
        if let (
            Some(app::domain::ActivityFlag::AfterSessionsClosed {
                count, first_at, ..
            }),
            Some(closed_at),
        ) = (
            summary
                .flags
                .iter()
                .find(|f| matches!(f, app::domain::ActivityFlag::AfterSessionsClosed { .. })),
            windows.sessions_closed_at,
        ) {
            tracing::error!(grant = %g.id, calls = count, "calls succeeded after the grant's sessions were closed");
            crate::notify::enqueue(
                self.store.as_ref(),
                g.id,
                crate::notify::NotificationEvent::ActivityAfterSessionsClosed {
                    closed_at,
                    first_at: *first_at,
                    events: *count,
                },
                now,
            )
            .await?;
        }
        Ok((summary, sink.inserted))
    }

    /// Streams the grant's stored events, page by page, into a summary.
    pub async fn summarise(
        &self,
        g: &Grant,
        windows: &Windows,
    ) -> Result<EvidenceSummary, EvidenceError> {
        summarise(self.store.as_ref(), g, windows, self.settings.page).await
    }

    /// Starts the investigation when due, polls a running one. True when one was
    /// started now.
    async fn investigate(
        &self,
        g: &Grant,
        windows: &Windows,
        ev: &mut GrantEvidence,
        detective: &dyn Investigations,
    ) -> Result<bool, EvidenceError> {
        let now = self.clock.now();
        let summary = parse_summary(g.id, ev.summary.as_deref()).unwrap_or_default();
        let current = parse_investigation(g.id, ev.investigation.as_deref());
        // The scope is the real window, up to now: Detective cannot look ahead.
        let scope = Interval {
            start: windows.real.start,
            end: windows.real.end.min(now),
        };
        let restart_for_full_window = ev.final_collected_at.is_some()
            && current.as_ref().is_some_and(|c| {
                c.scope.end < windows.real.end && c.status != InvestigationStatus::Running
            });
        let mut started = false;
        if ev.investigation_id.is_none() || restart_for_full_window {
            let role_arn = match ev.role_arn.clone().or(summary.role_arn.clone()) {
                Some(a) => Some(a),
                None => {
                    let target = MatchTarget {
                        account_id: g.request.account_id.to_string(),
                        permission_set: g.request.permission_set.to_string(),
                        user_name: g.user_name().to_owned(),
                    };
                    self.source
                        .find_role_arn(g.request.account_id.as_str(), &target)
                        .await?
                }
            };
            let Some(role_arn) = role_arn else {
                // No activity named the role and IAM could not be asked: nothing to
                // investigate (the pack says so).
                return Ok(false);
            };
            ev.role_arn = Some(role_arn.clone());
            let id = detective.start(&role_arn, scope).await?;
            let inv = InvestigationSummary {
                investigation_id: id.clone(),
                graph_arn: detective.graph_arn().to_owned(),
                entity_arn: role_arn,
                status: InvestigationStatus::Running,
                severity: None,
                state: None,
                scope,
                started_at: now,
                indicators: Vec::new(),
                links: ConsoleLinks::build(
                    detective.region(),
                    &id,
                    summary.role_session_id.as_deref(),
                    scope,
                ),
                shared_role_note: InvestigationSummary::shared_role_note(
                    g.request.permission_set.as_str(),
                    g.request.account_id.as_str(),
                ),
            };
            // Stored before it is polled: a restart polls this one instead of
            // starting another.
            ev.investigation_id = Some(id);
            ev.investigation_status = Some(InvestigationStatus::Running.as_str().to_owned());
            ev.investigation = serde_json::to_string(&inv).ok();
            ev.next_collection_at = Some(
                ev.next_collection_at
                    .map_or(now + self.settings.investigation_poll, |n| {
                        n.min(now + self.settings.investigation_poll)
                    }),
            );
            self.store.save_grant_evidence(g.id, ev).await?;
            started = true;
        }
        let running =
            ev.investigation_status.as_deref() == Some(InvestigationStatus::Running.as_str());
        if let (true, Some(id)) = (running, ev.investigation_id.clone()) {
            let state = detective.get(&id).await?;
            let mut inv =
                parse_investigation(g.id, ev.investigation.as_deref()).ok_or_else(|| {
                    EvidenceError::Invalid("the stored investigation is unreadable".into())
                })?;
            inv.status = state.status;
            inv.severity = state.severity;
            inv.state = state.state;
            if state.status == InvestigationStatus::Successful {
                inv.indicators = detective.indicators(&id).await?;
            }
            if inv.links.role_session.is_none() {
                inv.links = ConsoleLinks::build(
                    detective.region(),
                    &id,
                    summary.role_session_id.as_deref(),
                    inv.scope,
                );
            }
            ev.investigation_status = Some(state.status.as_str().to_owned());
            ev.investigation = serde_json::to_string(&inv).ok();
            if state.status == InvestigationStatus::Running {
                let poll = now + self.settings.investigation_poll;
                ev.next_collection_at = Some(ev.next_collection_at.map_or(poll, |n| n.min(poll)));
            } else {
                tracing::info!(grant = %g.id, investigation = %id, status = state.status.as_str(), severity = ?state.severity, "Detective investigation finished");
                if let Some(sev) = state.severity.filter(|s| {
                    matches!(
                        s,
                        app::domain::InvestigationSeverity::High
                            | app::domain::InvestigationSeverity::Critical
                    )
                }) {
                    // Before the state is saved: a crash in between enqueues again, and
                    // the outbox keeps one event per investigation.
                    crate::notify::enqueue(
                        self.store.as_ref(),
                        g.id,
                        crate::notify::NotificationEvent::InvestigationSevere {
                            investigation_id: id.clone(),
                            severity: sev.as_str().to_owned(),
                        },
                        now,
                    )
                    .await?;
                }
                // Back to the collection schedule.
                if ev.final_collected_at.is_none() {
                    ev.next_collection_at = Some(
                        ev.last_collected_at
                            .map_or(now, |l| l + self.settings.collect_interval)
                            .min(windows.watched_until().max(now)),
                    );
                }
            }
            self.store.save_grant_evidence(g.id, ev).await?;
        }
        Ok(started)
    }
}

#[async_trait]
impl Job for Collector {
    fn leases(&self) -> &Leases {
        &self.leases
    }

    fn interval(&self) -> std::time::Duration {
        self.settings.interval
    }

    async fn run_once(self: Arc<Self>) -> Result<(), JobError> {
        self.pass().await?;
        Ok(())
    }
}

/// Streams `g`'s stored events, page by page, into a summary (the history of source
/// addresses is read from the person's other grants).
pub async fn summarise(
    store: &dyn Store,
    g: &Grant,
    windows: &Windows,
    page: u32,
) -> Result<EvidenceSummary, EvidenceError> {
    // Other grants for the same access: activity inside their real windows is theirs.
    let filter = crate::store::GrantFilter {
        requester: Some(g.request.requester.to_string()),
        account_id: Some(g.request.account_id.to_string()),
        permission_set: Some(g.request.permission_set.to_string()),
        ..crate::store::GrantFilter::default()
    };
    let others: Vec<Interval> = store
        .list_grants(&filter, None, 1000)
        .await?
        .into_iter()
        .filter(|o| o.id != g.id)
        .filter_map(|o| o.windows().and_then(Result::ok))
        .map(|w| w.real)
        .collect();
    let mut builder = SummaryBuilder::new(*windows, others);
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    let mut after: Option<ActivityCursor> = None;
    loop {
        let events = store.activity_page(g.id, after.as_ref(), page).await?;
        let Some(last) = events.last() else { break };
        after = Some(ActivityCursor::after(last));
        for e in &events {
            builder.push(e);
            // A struct of strings, times and lists always serialises.
            let line = serde_json::to_string(e).unwrap_or_default();
            sha2::Digest::update(&mut digest, line.as_bytes());
            sha2::Digest::update(&mut digest, b"\n");
        }
        if events.len() < page as usize {
            break;
        }
    }
    let ips: Vec<String> = builder.source_ips().map(str::to_owned).collect();
    let history = store
        .source_ip_history(g.request.requester.as_str(), g.id, &ips, windows.real.start)
        .await?;
    let mut summary = builder.finish(&history);
    summary.events_sha256 = Some(hex::encode(sha2::Digest::finalize(digest)));
    Ok(summary)
}

/// The facts of a summary the audit chain records (`evidence_summarized`, and the
/// grant's close).
fn chained_facts(id: GrantId, summary: &EvidenceSummary, ev: &GrantEvidence) -> serde_json::Value {
    let investigation = parse_investigation(id, ev.investigation.as_deref());
    serde_json::json!({
        "events": summary.event_count,
        "errors": summary.error_count,
        "access_denied": summary.access_denied_count,
        "refused_after_close": summary.refused_after_close,
        "first_activity": summary.first_activity,
        "last_activity": summary.last_activity,
        "flags": summary.flags.iter().map(|f| f.title()).collect::<Vec<_>>(),
        "events_sha256": summary.events_sha256,
        "investigation_id": ev.investigation_id,
        "investigation_status": ev.investigation_status,
        "investigation_severity": investigation.and_then(|i| i.severity),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::{
        AccountId, GrantDuration, GrantRequest, Justification, PermissionSetName, PersonId,
        PortalSession, SessionDuration,
    };
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    fn settings() -> EvidenceSettings {
        EvidenceSettings::from_config(&crate::config::Config::default())
    }

    fn grant(state: GrantState, revoked: Option<DateTime<Utc>>) -> Grant {
        let request = GrantRequest {
            requester: PersonId::parse("bob").unwrap(),
            account_id: AccountId::parse("111122223333").unwrap(),
            permission_set: PermissionSetName::parse("Admin").unwrap(),
            justification: Justification::parse_with_min("x", 1).unwrap(),
            ticket: None,
            duration: GrantDuration::from_minutes(60, None).unwrap(),
            requested_start: None,
            approvals_required: 0,
            extends: None,
        };
        Grant {
            state,
            activated_at: Some(t(4, 0)),
            ends_at: Some(t(5, 0)),
            revoked_at: revoked,
            permission_set_session: Some(SessionDuration::parse("PT1H").unwrap()),
            portal_session: Some(PortalSession::DEFAULT),
            version: 1,
            ..Grant::requested(GrantId(uuid::Uuid::new_v4()), request, t(3, 0))
        }
    }

    #[test]
    fn the_schedule_follows_the_grant() {
        let s = settings();
        let active = grant(GrantState::Active, None);
        let w = active.windows().unwrap().unwrap();
        let mut ev = GrantEvidence::default();
        assert_eq!(
            due_phase(&active, &w, &ev, t(4, 1), &s),
            Some(Phase::Active)
        );
        ev.last_collected_at = Some(t(4, 1));
        ev.next_collection_at = next_collection(Phase::Active, &w, t(4, 1), &s);
        assert_eq!(ev.next_collection_at, Some(t(4, 6)));
        assert_eq!(due_phase(&active, &w, &ev, t(4, 3), &s), None);
        assert_eq!(
            due_phase(&active, &w, &ev, t(4, 6), &s),
            Some(Phase::Active)
        );

        // Revoked at 05:00: collected at once, though the next collection was later.
        let revoked = grant(GrantState::Revoked, Some(t(5, 0)));
        let w = revoked.windows().unwrap().unwrap();
        assert_eq!(w.real.end, t(14, 0));
        ev.last_collected_at = Some(t(4, 58));
        ev.next_collection_at = Some(t(5, 3));
        assert_eq!(due_phase(&revoked, &w, &ev, t(5, 1), &s), Some(Phase::Tail));
        ev.last_collected_at = Some(t(5, 1));
        ev.next_collection_at = next_collection(Phase::Tail, &w, t(5, 1), &s);
        assert_eq!(due_phase(&revoked, &w, &ev, t(5, 2), &s), None);
        // The tail's collections never skip past the real window's end.
        assert_eq!(
            next_collection(Phase::Tail, &w, t(13, 58), &s),
            Some(t(14, 0))
        );
        // The window closes at 14:00, the final collection is 20 minutes later.
        assert_eq!(
            due_phase(&revoked, &w, &ev, t(14, 0), &s),
            Some(Phase::WindowClosed)
        );
        ev.window_close_collected_at = Some(t(14, 0));
        ev.next_collection_at = next_collection(Phase::WindowClosed, &w, t(14, 0), &s);
        assert_eq!(ev.next_collection_at, Some(t(14, 20)));
        assert_eq!(due_phase(&revoked, &w, &ev, t(14, 10), &s), None);
        assert_eq!(
            due_phase(&revoked, &w, &ev, t(14, 20), &s),
            Some(Phase::Final)
        );
        ev.final_collected_at = Some(t(14, 20));
        assert_eq!(due_phase(&revoked, &w, &ev, t(15, 0), &s), None);
        assert_eq!(next_collection(Phase::Final, &w, t(14, 20), &s), None);
        // Other states have no evidence schedule.
        assert_eq!(
            due_phase(
                &grant(GrantState::Closed, Some(t(5, 0))),
                &w,
                &GrantEvidence::default(),
                t(15, 0),
                &s
            ),
            None
        );
    }

    #[test]
    fn a_reaper_that_was_down_goes_straight_to_the_final_collection() {
        let s = settings();
        let revoked = grant(GrantState::Revoked, Some(t(5, 0)));
        let w = revoked.windows().unwrap().unwrap();
        let ev = GrantEvidence::default();
        assert_eq!(
            due_phase(&revoked, &w, &ev, t(16, 0), &s),
            Some(Phase::Final)
        );
    }
}
