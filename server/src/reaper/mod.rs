//! The reaper: the background job that provisions approved grants, revokes grants at
//! their end (or at once after an early revoke), refreshes the catalog and reconciles
//! drift. It runs inside the server, on every replica.
//!
//! Rules it keeps:
//! - **One actor per assignment.** Work is grouped by target (user, account,
//!   permission set) and a replica acts on a target only while it holds that target's
//!   lease (`Store::lease_target`, one conditional statement). Lifecycle moves go
//!   through [`GrantService::act`], whose conditional update on the grant's version
//!   makes a second mover lose.
//! - **Resume from the database.** The AWS request id is stored before its status is
//!   polled, and the moment a create/delete is about to be sent is stored before it is
//!   sent; after a crash the next holder polls the stored request, or (when the crash
//!   fell between sending and storing) looks the assignment up instead of creating it
//!   twice.
//! - **Shared assignments.** Two grants for the same target share one AWS assignment:
//!   provisioning while another grant is active creates nothing, and revoking while
//!   another grant still covers the target deletes nothing.
//! - **Never give up a revocation.** Failed steps back off exponentially with jitter
//!   (capped, [`crate::jobs::Backoff`]); provisioning fails the grant after a few
//!   attempts, revocation retries forever. Every failure is stored on the grant's AWS
//!   row, counted and logged.
//!
//! This file holds the job itself (settings, the pass, the per-target work and what
//! the steps share); each pass has a file of its own: `provision.rs` (provisioning,
//! activation, other paths), `revoke.rs`, `drift.rs` (reconciliation), `pending.rs`
//! (settling pending requests) and `housekeeping.rs` (catalog refresh, the drift
//! schedule, grant counts).

mod drift;
mod housekeeping;
mod pending;
mod provision;
mod revoke;
pub mod session_deny;
mod sessions;
mod target;

use crate::clock::Clock;
use crate::identity_center::{catalog, IcError, IdentityCenter, OperationStatus, UserKey};
use crate::jobs::{self, Backoff, Job, JobError, Leases};
use crate::metrics::Metrics;
use crate::services::grants::{GrantError, GrantService};
use crate::store::{GrantAws, GrantFilter, GrantPatch, Store, StoreError};
use app::domain::{Action, Actor, Grant, GrantId, GrantState, PortalSession, RevokeCause};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// Tunables; [`ReaperSettings::from_config`] gives the server's.
#[derive(Debug, Clone)]
pub struct ReaperSettings {
    pub interval: Duration,
    /// How long a target lease lasts; renewed before every AWS mutation.
    pub lease: Duration,
    /// Grants looked at per tick.
    pub batch: u32,
    /// Targets worked on at once.
    pub concurrency: usize,
    /// Status polling: first delay, cap, and how long one tick polls before leaving
    /// the rest to the next tick.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    pub poll_budget: Duration,
    /// Retry backoff after a failed step: base and cap (full jitter).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Attempts before a provisioning is given up (`failed`); revocation never is.
    pub provision_attempts: i64,
    pub portal_session: PortalSession,
    pub user_match: UserKey,
    pub catalog_refresh: Duration,
    /// Drift is reconciled every this many ticks.
    pub reconcile_every: u32,
    /// Asynchronous create/delete requests outstanding at once (sent, not yet final).
    /// Identity Center allows 15 per instance ("IAM Identity Center quotas"); deletes
    /// are counted with creates.
    pub max_in_flight: usize,
}

/// Identity Center's limit of outstanding asynchronous assignment requests.
pub const AWS_MAX_IN_FLIGHT: usize = 15;

impl ReaperSettings {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            interval: c.reaper.interval,
            // Long enough for one step (calls are bounded by aws.call_timeout and the
            // lease is renewed while polling), short enough that a crashed replica's
            // targets are picked up again within seconds.
            lease: (c.reaper.interval * 4)
                .max(c.aws.call_timeout * 2)
                .max(Duration::from_secs(10)),
            batch: 2000,
            concurrency: 16,
            poll_initial: Duration::from_millis(200),
            poll_max: Duration::from_secs(5),
            poll_budget: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            provision_attempts: 5,
            portal_session: c.identity_center.portal_session,
            user_match: UserKey::from_config(&c.identity_center),
            catalog_refresh: c.identity_center.catalog_refresh,
            reconcile_every: 20,
            max_in_flight: AWS_MAX_IN_FLIGHT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error(transparent)]
    Aws(#[from] IcError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
}

/// What one tick did, for tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub due: usize,
    pub activated: usize,
    pub revoked: usize,
    pub failed: usize,
    pub retried: usize,
    pub skipped_leased: usize,
    /// Pending requests that expired (nobody decided before `expires_at`).
    pub expired: usize,
    /// Pending requests that needed no approval, approved here (normally done at
    /// request time; this catches a crash in between).
    pub auto_approved: usize,
}

#[derive(Debug)]
pub struct Reaper {
    grants: GrantService,
    store: Arc<dyn Store>,
    ic: Arc<dyn IdentityCenter>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: ReaperSettings,
    /// This replica's target leases.
    leases: Leases,
    /// Drift already reported by this process (reports are not repeated every pass).
    reported: Mutex<HashSet<String>>,
    ticks: Mutex<u32>,
    /// Targets a task of [`Reaper::run`] is working on.
    in_flight: Mutex<HashSet<String>>,
    /// One per target task of [`Reaper::run`] (at most `concurrency` at once).
    permits: Arc<Semaphore>,
    /// The evidence step (`None` when `evidence.source = "none"`).
    evidence: Option<Arc<dyn Job>>,
    /// Grants with a create or delete request outstanding in AWS.
    outstanding: Outstanding,
    /// When the last catalog sync failed (the next waits `CATALOG_RETRY`).
    catalog_failed_at: Mutex<Option<DateTime<Utc>>>,
    /// The slow housekeeping of [`Reaper::run`] is running (one at a time).
    slow_running: Arc<std::sync::atomic::AtomicBool>,
    /// Closing revoked grants' sessions (`None`: `close_sessions = "off"`).
    sessions: Option<Arc<SessionCloser>>,
    /// The session pass of [`Reaper::run`] is running (one at a time).
    sessions_running: Arc<std::sync::atomic::AtomicBool>,
    /// A session pass was asked for since the running one started.
    sessions_again: Arc<std::sync::atomic::AtomicBool>,
}

/// The grants whose create or delete request is outstanding (sent, not final), at
/// most `limit` of them: a request is sent only when a slot is free. A request
/// stored before a restart takes its slot when it is next polled.
#[derive(Debug)]
struct Outstanding {
    limit: usize,
    /// Each grant holding a slot, with when it took it.
    grants: Mutex<HashMap<GrantId, std::time::Instant>>,
}

impl Outstanding {
    fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            grants: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GrantId, std::time::Instant>> {
        self.grants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for `id` (true when it holds one already).
    fn take(&self, id: GrantId) -> bool {
        let mut g = self.lock();
        if g.contains_key(&id) {
            return true;
        }
        if g.len() >= self.limit {
            return false;
        }
        g.insert(id, std::time::Instant::now());
        true
    }

    /// Counts a request found outstanding (polled after a restart), whatever the limit.
    fn mark(&self, id: GrantId) {
        self.lock()
            .entry(id)
            .or_insert_with(std::time::Instant::now);
    }

    fn release(&self, id: GrantId) {
        self.lock().remove(&id);
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Frees the slots taken before `read_at` whose grant is not in `still` (the
    /// requests the database showed outstanding when read at `read_at`).
    fn retain(&self, still: &HashSet<GrantId>, read_at: std::time::Instant) {
        self.lock()
            .retain(|id, taken| *taken >= read_at || still.contains(id));
    }
}

/// What one grant's step came to.
enum Step {
    Activated,
    Revoked,
    Failed,
    Retry,
    Waiting,
    /// Waiting for another grant of the same target (its create or delete is in
    /// flight); worked on again after the target's other grants.
    Blocked,
    Nothing,
}

/// What polling a stored create/delete request came to.
enum Polled {
    Succeeded,
    /// Still running; stored as due again, for the next tick.
    Waiting,
    /// AWS ended the request as FAILED, for this reason.
    Failed(String),
    /// AWS could not be asked.
    Unreachable(IcError),
}

/// Waits for a free request slot: due again at once, nothing sent.
async fn no_slot(reaper: &Reaper, g: &Grant, w: &mut GrantAws) -> Result<Step, ReaperError> {
    w.next_attempt_at = Some(reaper.clock.now());
    reaper.store.save_grant_aws(g.id, w).await?;
    reaper
        .metrics
        .reaper_failures
        .with_label_values(&["send", "in_flight_limit"])
        .inc();
    Ok(Step::Waiting)
}

/// Failed revocation attempts after which people are told (once per grant).
pub const REVOCATION_ALERT_AFTER: i64 = 3;

pub use sessions::{SessionCloser, SessionReport};
use target::{Sibling, STANDING};

fn target_key(g: &Grant) -> String {
    format!(
        "{}|{}|{}",
        g.request.requester, g.request.account_id, g.request.permission_set
    )
}

impl Reaper {
    pub fn new(
        grants: GrantService,
        ic: Arc<dyn IdentityCenter>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: ReaperSettings,
    ) -> Self {
        let store = grants.store().clone();
        Self {
            leases: Leases::new("reaper", store.clone(), clock.clone(), settings.lease),
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            outstanding: Outstanding::new(settings.max_in_flight),
            store,
            grants,
            ic,
            clock,
            metrics,
            settings,
            reported: Mutex::new(HashSet::new()),
            ticks: Mutex::new(0),
            in_flight: Mutex::new(HashSet::new()),
            evidence: None,
            catalog_failed_at: Mutex::new(None),
            slow_running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            sessions: None,
            sessions_running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            sessions_again: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Closes revoked grants' sessions with `closer` (without one, grants record
    /// that closing sessions is off). [`Reaper::tick`] runs the session pass after
    /// the grants; [`Reaper::run`] beside each pass, one at a time.
    pub fn with_sessions(mut self, closer: SessionCloser) -> Self {
        self.sessions = Some(Arc::new(closer));
        self
    }

    /// Adds the evidence step (a [`crate::evidence::collect::Collector`]): it collects
    /// activity for active and revoked grants, starts their investigations and closes
    /// them when the tail is over. [`Reaper::tick`] waits for it; [`Reaper::run`] and
    /// the server run it as a job of its own beside the reaper.
    pub fn with_evidence(mut self, evidence: impl Job) -> Self {
        self.evidence = Some(Arc::new(evidence));
        self
    }

    /// The evidence step, for the server to start on its job runner.
    pub fn evidence(&self) -> Option<Arc<dyn Job>> {
        self.evidence.clone()
    }

    /// Runs until `stop` turns true, then waits for the targets in flight; the
    /// evidence step, if any, runs beside it as its own job.
    ///
    /// Unlike [`Reaper::tick`], a pass does not wait for its targets: each is worked
    /// on by its own task (at most `concurrency` at once) and the next pass starts
    /// after `interval`, skipping targets still in flight. So one slow target (a long
    /// poll, a throttled API) never delays the revocations behind it, and evidence
    /// (paced at CloudTrail's 2 calls per second) never runs in front of them.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        if let Some(closer) = self.sessions.clone() {
            // Whether closing sessions works here is said at start-up (a warning
            // with the fix when Organizations refuses), not at the first revocation.
            tokio::spawn(async move {
                closer.enabled().await;
            });
        }
        let metrics = self.metrics.clone();
        let evidence = self.evidence.clone();
        let reaper = jobs::run(self, metrics.clone(), stop.clone());
        match evidence {
            Some(evidence) => {
                tokio::join!(reaper, jobs::run(evidence, metrics, stop));
            }
            None => reaper.await,
        }
    }

    /// One pass of [`Reaper::run`]: housekeeping, then a task per due target. The
    /// slow housekeeping (catalog, drift) runs beside the pass, one at a time, so its
    /// Identity Center calls never hold back the revocations handed out here.
    async fn dispatch(self: Arc<Self>) -> Result<(), ReaperError> {
        let now = self.clock.now();
        let (_, drift_due) = self.housekeeping(now).await?;
        use std::sync::atomic::Ordering;
        if self
            .slow_running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.slow_housekeeping(now, drift_due).await {
                    tracing::error!(error = %e, "reaper housekeeping failed");
                }
                me.slow_running.store(false, Ordering::SeqCst);
            });
        }
        self.kick_sessions();
        self.metrics
            .reaper_queue_depth
            .set(self.store.reaper_queue_depth(now).await?);
        for (target, grants) in self.due_by_target(now).await? {
            if !self.claim(&target) {
                continue;
            }
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            tokio::spawn(async move {
                match me.work_target(&target, grants).await {
                    // A revocation's sessions are closed at once, not a pass later.
                    Ok(steps) if steps.iter().any(|s| matches!(s, Step::Revoked)) => {
                        me.kick_sessions();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "reaper step failed"),
                }
                me.unclaim(&target);
                drop(permit);
            });
        }
        Ok(())
    }

    /// Runs the session pass beside the other work, one at a time: a kick while one
    /// runs makes it run once more after (it may have read the grants before the
    /// revocation that kicked it).
    fn kick_sessions(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.sessions.is_none() {
            return;
        }
        self.sessions_again.store(true, Ordering::SeqCst);
        if self
            .sessions_running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            while me.sessions_again.swap(false, Ordering::SeqCst) {
                if let Err(e) = me.close_sessions().await {
                    tracing::error!(error = %e, "session pass failed");
                }
            }
            me.sessions_running.store(false, Ordering::SeqCst);
            // A kick between the last check and the release runs now.
            if me.sessions_again.load(Ordering::SeqCst) {
                me.kick_sessions();
            }
        });
    }

    /// One pass that waits for everything it started: catalog refresh when due, every
    /// due grant, drift every few passes. Tests drive the reaper with it.
    pub async fn tick(&self) -> Result<TickReport, ReaperError> {
        let now = self.clock.now();
        let ((expired, auto_approved), drift_due) = self.housekeeping(now).await?;
        self.slow_housekeeping(now, drift_due).await?;
        let mut report = self.work(now).await?;
        self.close_sessions().await?;
        report.expired = expired;
        report.auto_approved = auto_approved;
        if let Some(evidence) = self.evidence.clone() {
            if let Err(e) = evidence.run_once().await {
                tracing::error!(error = %e, "evidence pass failed");
            }
        }
        Ok(report)
    }

    async fn due_by_target(
        &self,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Vec<Grant>>, ReaperError> {
        let due = self.store.reaper_due(now, self.settings.batch).await?;
        let mut by_target: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        for g in due {
            by_target.entry(target_key(&g)).or_default().push(g);
        }
        Ok(by_target)
    }

    /// Acts on every grant that is due at `now`.
    pub async fn work(&self, now: DateTime<Utc>) -> Result<TickReport, ReaperError> {
        self.metrics
            .reaper_queue_depth
            .set(self.store.reaper_queue_depth(now).await?);
        let by_target = self.due_by_target(now).await?;
        let mut report = TickReport {
            due: by_target.values().map(Vec::len).sum(),
            ..TickReport::default()
        };
        let results: Vec<Result<Vec<Step>, ReaperError>> = futures_util::stream::iter(
            by_target
                .into_iter()
                .map(|(target, grants)| async move { self.work_target(&target, grants).await }),
        )
        .buffer_unordered(self.settings.concurrency.max(1))
        .collect()
        .await;
        for r in results {
            match r {
                Ok(steps) if steps.is_empty() => report.skipped_leased += 1,
                Ok(steps) => {
                    for s in steps {
                        match s {
                            Step::Activated => report.activated += 1,
                            Step::Revoked => report.revoked += 1,
                            Step::Failed => report.failed += 1,
                            Step::Retry => report.retried += 1,
                            Step::Waiting | Step::Blocked | Step::Nothing => {}
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reaper step failed");
                }
            }
        }
        Ok(report)
    }

    /// Claims `target` for one task of this replica; false when one works on it.
    fn claim(&self, target: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(target.to_owned())
    }

    fn unclaim(&self, target: &str) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(target);
    }

    /// Takes or renews this replica's lease on `target`; false when another holds it.
    async fn hold(&self, target: &str) -> Result<bool, StoreError> {
        self.leases.hold(target).await
    }

    /// Works on one target's due grants under its lease: grants to provision first
    /// (so one can take over an assignment whose delete has not been sent), then the
    /// rest; a grant that waited for a sibling's create or delete is tried once more
    /// after them, so a delete that finished in this pass is followed by the create.
    async fn work_target(
        &self,
        target: &str,
        mut grants: Vec<Grant>,
    ) -> Result<Vec<Step>, ReaperError> {
        grants.sort_by_key(|g| !matches!(g.state, GrantState::Approved | GrantState::Provisioning));
        let work = async {
            let mut steps = Vec::with_capacity(grants.len());
            let mut blocked = Vec::new();
            for g in grants {
                match self.work_grant(target, g.clone()).await? {
                    Step::Blocked => blocked.push(g),
                    step => steps.push(step),
                }
            }
            for g in blocked {
                steps.push(self.work_grant(target, g).await?);
            }
            Ok::<_, ReaperError>(steps)
        };
        Ok(match self.leases.while_held(target, work).await? {
            None => Vec::new(),
            Some(steps) if steps.is_empty() => vec![Step::Nothing],
            Some(steps) => steps,
        })
    }

    async fn work_grant(&self, target: &str, g: Grant) -> Result<Step, ReaperError> {
        // Re-read under the lease: another replica may have moved it since the query.
        let Some(g) = self.store.get_grant(g.id).await? else {
            return Ok(Step::Nothing);
        };
        let now = self.clock.now();
        match g.state {
            GrantState::Approved => {
                if g.request.requested_start.is_some_and(|s| s > now) {
                    return Ok(Step::Nothing);
                }
                if self.extension_waits(&g).await? {
                    return Ok(Step::Blocked);
                }
                let moved = self
                    .grants
                    .act(
                        g.id,
                        Action::StartProvisioning,
                        &Actor::System,
                        None,
                        GrantPatch::default(),
                        serde_json::json!({}),
                    )
                    .await?;
                self.provision(target, moved.grant).await
            }
            GrantState::Provisioning => self.provision(target, g).await,
            GrantState::Active => {
                if g.ends_at.is_none_or(|e| e > now) {
                    return Ok(Step::Nothing);
                }
                let moved = self
                    .grants
                    .act(
                        g.id,
                        Action::Revoke(RevokeCause::EndReached),
                        &Actor::System,
                        Some("the granted time is over".into()),
                        GrantPatch::default(),
                        serde_json::json!({ "ends_at": g.ends_at }),
                    )
                    .await?;
                self.revoke(target, moved.grant).await
            }
            GrantState::Revoking => self.revoke(target, g).await,
            _ => Ok(Step::Nothing),
        }
    }

    /// The other grants of `g`'s target that may hold its assignment, with their AWS
    /// bookkeeping: the database's view [`target::provide`] and [`target::release`]
    /// decide on.
    async fn siblings(&self, g: &Grant) -> Result<Vec<Sibling>, StoreError> {
        let filter = GrantFilter {
            requester: Some(g.request.requester.to_string()),
            account_id: Some(g.request.account_id.to_string()),
            permission_set: Some(g.request.permission_set.to_string()),
            states: vec![
                GrantState::Provisioning,
                GrantState::Active,
                GrantState::Revoking,
            ],
            ..GrantFilter::default()
        };
        let mut out = Vec::new();
        for grant in self.store.list_grants(&filter, None, 1000).await? {
            if grant.id == g.id {
                continue;
            }
            let aws = self.store.grant_aws(grant.id).await?.unwrap_or_default();
            out.push(Sibling { grant, aws });
        }
        Ok(out)
    }

    /// Records a failed step and schedules the retry after the backoff.
    async fn retry_later(
        &self,
        g: &Grant,
        mut w: GrantAws,
        step: &'static str,
        error: &str,
        kind: &'static str,
    ) -> Result<Step, ReaperError> {
        w.attempts += 1;
        let backoff = Backoff::new(self.settings.backoff_base, self.settings.backoff_cap);
        w.next_attempt_at = Some(self.clock.now() + backoff.delay(w.attempts));
        w.last_error = Some(error.to_owned());
        self.store.save_grant_aws(g.id, &w).await?;
        self.metrics
            .reaper_failures
            .with_label_values(&[step, kind])
            .inc();
        tracing::warn!(grant = %g.id, step, attempts = w.attempts, next_attempt_at = ?w.next_attempt_at, error, "reaper step failed; will retry");
        if step == "revoke" && w.attempts >= REVOCATION_ALERT_AFTER {
            // Tell people once (the event is deduplicated per grant); a failure to
            // enqueue must not stop the revocation from being retried.
            let event = crate::notify::NotificationEvent::RevocationFailing {
                attempts: w.attempts,
                error: error.to_owned(),
            };
            if let Err(e) =
                crate::notify::enqueue(self.store.as_ref(), g.id, event, self.clock.now()).await
            {
                tracing::error!(grant = %g.id, error = %e, "cannot enqueue the revocation-failing notification");
            }
        }
        Ok(Step::Retry)
    }

    /// [`Reaper::retry_later`] for an AWS error, counted as `aws` when AWS may answer
    /// differently next time and `aws_permanent` when not.
    async fn retry_aws(
        &self,
        g: &Grant,
        w: GrantAws,
        step: &'static str,
        e: &IcError,
    ) -> Result<Step, ReaperError> {
        let kind = if e.is_retryable() {
            "aws"
        } else {
            "aws_permanent"
        };
        self.retry_later(g, w, step, &e.to_string(), kind).await
    }

    /// Polls a stored create/delete request until it is final or the tick's polling
    /// budget is spent; a request still running is stored as due again at once.
    /// The lease is renewed before every status call; losing it ends polling (the new
    /// holder resumes from the stored request id).
    async fn poll(
        &self,
        target: &str,
        g: &Grant,
        w: &mut GrantAws,
        request_id: &str,
        deletion: bool,
    ) -> Result<Polled, ReaperError> {
        self.outstanding.mark(g.id);
        let started = std::time::Instant::now();
        let mut delay = self.settings.poll_initial;
        let status = loop {
            if !self.hold(target).await? {
                break OperationStatus::InProgress;
            }
            let status = match if deletion {
                self.ic.deletion_status(request_id).await
            } else {
                self.ic.creation_status(request_id).await
            } {
                Ok(status) => status,
                Err(e) => return Ok(Polled::Unreachable(e)),
            };
            if status != OperationStatus::InProgress
                || started.elapsed() + delay > self.settings.poll_budget
            {
                break status;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.settings.poll_max);
        };
        if status != OperationStatus::InProgress {
            self.outstanding.release(g.id);
        }
        match status {
            OperationStatus::Succeeded => Ok(Polled::Succeeded),
            OperationStatus::Failed(reason) => Ok(Polled::Failed(reason)),
            OperationStatus::InProgress => {
                w.next_attempt_at = Some(self.clock.now());
                self.store.save_grant_aws(g.id, w).await?;
                Ok(Polled::Waiting)
            }
        }
    }
}

#[async_trait]
impl Job for Reaper {
    fn leases(&self) -> &Leases {
        &self.leases
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    async fn run_once(self: Arc<Self>) -> Result<(), JobError> {
        let metrics = self.metrics.clone();
        self.dispatch().await.map_err(|e| {
            metrics
                .reaper_failures
                .with_label_values(&["tick", "error"])
                .inc();
            e.into()
        })
    }

    async fn drain(&self) {
        // Every permit back means every spawned target is done.
        let all = u32::try_from(self.settings.concurrency.max(1)).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_outlives_a_call_and_the_interval() {
        let mut c = crate::config::Config::default();
        c.reaper.interval = Duration::from_secs(1);
        assert_eq!(
            ReaperSettings::from_config(&c).lease,
            Duration::from_secs(20),
            "2 × the default 10s call timeout"
        );
        c.reaper.interval = Duration::from_secs(60);
        assert_eq!(
            ReaperSettings::from_config(&c).lease,
            Duration::from_secs(240)
        );
    }
}
