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
//!   (capped); provisioning fails the grant after a few attempts, revocation retries
//!   forever. Every failure is stored on the grant's AWS row, counted and logged.

use crate::clock::Clock;
use crate::identity_center::{
    catalog, Assignment, IcError, IdentityCenter, IdentityError, OperationStatus, UserMatch,
};
use crate::metrics::Metrics;
use crate::services::grants::{GrantError, GrantService};
use crate::store::{GrantAws, GrantFilter, GrantPatch, NewAuditEvent, Store, StoreError};
use app::domain::{
    Action, Actor, Grant, GrantState, PortalSession, RevokeCause, SessionDuration, WindowInputs,
    Windows,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    pub user_match: UserMatch,
    pub catalog_refresh: Duration,
    /// Drift is reconciled every this many ticks.
    pub reconcile_every: u32,
}

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
            user_match: c.identity_center.user_match,
            catalog_refresh: c.identity_center.catalog_refresh,
            reconcile_every: 20,
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
    /// This replica's lease-owner name.
    owner: String,
    /// Drift already reported by this process (reports are not repeated every pass).
    reported: Mutex<HashSet<String>>,
    ticks: Mutex<u32>,
    /// Targets a task of [`Reaper::run`] is working on.
    in_flight: Mutex<HashSet<String>>,
    /// The evidence step (`None` when `evidence.source = "none"`).
    evidence: Option<Arc<crate::evidence::collect::Collector>>,
    /// An evidence pass of [`Reaper::run`] is still going.
    evidence_busy: Arc<std::sync::atomic::AtomicBool>,
}

enum Step {
    Activated,
    Revoked,
    Failed,
    Retry,
    Waiting,
    Nothing,
}

/// Failed revocation attempts after which people are told (once per grant).
pub const REVOCATION_ALERT_AFTER: i64 = 3;

/// `grant_aws.shared_with` of a grant that rides on a standing assignment.
const STANDING: &str = r#"{"standing_assignment":true}"#;

fn target_key(g: &Grant) -> String {
    format!(
        "{}|{}|{}",
        g.request.requester, g.request.account_id, g.request.permission_set
    )
}

fn to_std(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or_default()
}

impl Reaper {
    pub fn new(
        grants: GrantService,
        ic: Arc<dyn IdentityCenter>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: ReaperSettings,
    ) -> Self {
        Self {
            store: grants.store().clone(),
            grants,
            ic,
            clock,
            metrics,
            settings,
            owner: format!("reaper-{}", uuid::Uuid::new_v4()),
            reported: Mutex::new(HashSet::new()),
            ticks: Mutex::new(0),
            in_flight: Mutex::new(HashSet::new()),
            evidence: None,
            evidence_busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Adds the evidence step: every pass also collects activity for active and
    /// revoked grants, starts their investigations and closes them when the tail is
    /// over (see [`crate::evidence::collect`]).
    pub fn with_evidence(mut self, collector: crate::evidence::collect::Collector) -> Self {
        self.evidence = Some(Arc::new(collector));
        self
    }

    /// One evidence pass, waited for ([`Reaper::tick`]); `None` without evidence.
    pub async fn evidence_pass(
        &self,
    ) -> Option<
        Result<crate::evidence::collect::EvidenceReport, crate::evidence::collect::CollectError>,
    > {
        match &self.evidence {
            Some(c) => Some(c.pass().await),
            None => None,
        }
    }

    /// Runs until `stop` turns true, then waits for the targets in flight.
    ///
    /// Unlike [`Reaper::tick`], a pass does not wait for its targets: each is worked
    /// on by its own task (at most `concurrency` at once) and the next pass starts
    /// after `interval`, skipping targets still in flight. So one slow target (a long
    /// poll, a throttled API) never delays the revocations behind it.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(owner = %self.owner, interval = ?self.settings.interval, "reaper started");
        let permits = Arc::new(tokio::sync::Semaphore::new(
            self.settings.concurrency.max(1),
        ));
        loop {
            if let Err(e) = self.clone().dispatch(&permits).await {
                tracing::error!(error = %e, "reaper pass failed; trying again next interval");
                self.metrics
                    .reaper_failures
                    .with_label_values(&["tick", "error"])
                    .inc();
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        // Every permit back means every spawned target is done.
        let all = u32::try_from(self.settings.concurrency.max(1)).unwrap_or(u32::MAX);
        let _ = permits.acquire_many(all).await;
        tracing::info!("reaper stopped");
    }

    /// One pass of [`Reaper::run`]: housekeeping, then a task per due target.
    async fn dispatch(
        self: Arc<Self>,
        permits: &Arc<tokio::sync::Semaphore>,
    ) -> Result<(), ReaperError> {
        let now = self.clock.now();
        self.housekeeping(now).await?;
        self.metrics
            .reaper_queue_depth
            .set(self.store.reaper_queue_depth(now).await?);
        // Evidence runs beside the assignments, never in front of them: a pass paced at
        // CloudTrail's 2 calls per second must not delay a revocation.
        if let Some(collector) = self.evidence.clone() {
            use std::sync::atomic::Ordering;
            if !self.evidence_busy.swap(true, Ordering::AcqRel) {
                let busy = self.evidence_busy.clone();
                tokio::spawn(async move {
                    if let Err(e) = collector.pass().await {
                        tracing::error!(error = %e, "evidence pass failed");
                    }
                    busy.store(false, Ordering::Release);
                });
            }
        }
        for (target, grants) in self.due_by_target(now).await? {
            let fresh = self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(target.clone());
            if !fresh {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.work_target(&target, grants).await {
                    tracing::error!(error = %e, "reaper step failed");
                }
                me.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&target);
                drop(permit);
            });
        }
        Ok(())
    }

    /// Catalog refresh when due, pending requests settled, drift every few passes,
    /// grant counts. Returns (expired, auto-approved).
    async fn housekeeping(&self, now: DateTime<Utc>) -> Result<(usize, usize), ReaperError> {
        let tick_no = {
            let mut t = self.ticks.lock().unwrap_or_else(|p| p.into_inner());
            *t = t.wrapping_add(1);
            *t
        };
        let stale = match self.store.catalog_synced_at().await? {
            None => true,
            Some(at) => to_std(now - at) >= self.settings.catalog_refresh,
        };
        if stale {
            match catalog::sync(self.ic.as_ref(), self.store.as_ref(), now).await {
                Ok(_) => {
                    if let Err(e) = self.grants.policy().recheck_catalog().await {
                        tracing::warn!(error = %e, "could not check the policy against the new catalog");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catalog sync failed; the cached catalog is kept")
                }
            }
        }
        let settled = self.settle_pending(now).await?;
        if self.settings.reconcile_every > 0 && tick_no % self.settings.reconcile_every == 0 {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "drift reconciliation failed");
            }
        }
        self.metrics
            .set_grant_counts(&self.store.grant_counts().await?);
        Ok(settled)
    }

    /// Expires pending requests past their `expires_at` and approves those that need
    /// no approval (`Action::Expire` / `Action::AutoApprove` by the system).
    /// Idempotent: a grant another replica (or an approver) moved first is refused by
    /// the lifecycle as in the wrong state, and skipped.
    pub async fn settle_pending(&self, now: DateTime<Utc>) -> Result<(usize, usize), ReaperError> {
        let mut expired = 0;
        let mut approved = 0;
        for g in self.store.pending_due(now, self.settings.batch).await? {
            let (action, reason) = if g.request.approvals_required == 0 {
                (
                    Action::AutoApprove,
                    format!(
                        "policy {:?} needs no approval",
                        g.policy.as_deref().unwrap_or("?")
                    ),
                )
            } else {
                (
                    Action::Expire,
                    format!(
                        "nobody decided the request before {}",
                        g.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                    ),
                )
            };
            match self
                .grants
                .act(
                    g.id,
                    action,
                    &Actor::System,
                    Some(reason),
                    GrantPatch::default(),
                    serde_json::json!({"policy": g.policy}),
                )
                .await
            {
                Ok(_) if action == Action::Expire => expired += 1,
                Ok(_) => approved += 1,
                Err(GrantError::Refused(app::domain::Refusal::WrongState { .. }))
                | Err(GrantError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(grant = %g.id, error = %e, "could not settle a pending request");
                }
            }
        }
        Ok((expired, approved))
    }

    /// One pass that waits for everything it started: catalog refresh when due, every
    /// due grant, drift every few passes. Tests drive the reaper with it.
    pub async fn tick(&self) -> Result<TickReport, ReaperError> {
        let now = self.clock.now();
        let (expired, auto_approved) = self.housekeeping(now).await?;
        let mut report = self.work(now).await?;
        report.expired = expired;
        report.auto_approved = auto_approved;
        if let Some(Err(e)) = self.evidence_pass().await {
            tracing::error!(error = %e, "evidence pass failed");
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
                            Step::Waiting | Step::Nothing => {}
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

    async fn hold(&self, target: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or_default();
        self.store
            .lease_target(target, &self.owner, now, until)
            .await
    }

    async fn work_target(
        &self,
        target: &str,
        grants: Vec<Grant>,
    ) -> Result<Vec<Step>, ReaperError> {
        if !self.hold(target).await? {
            return Ok(Vec::new());
        }
        let mut steps = Vec::with_capacity(grants.len());
        let mut outcome = Ok(());
        for g in grants {
            match self.work_grant(target, g).await {
                Ok(s) => steps.push(s),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        self.store.release_target(target, &self.owner).await?;
        outcome.map(|()| {
            if steps.is_empty() {
                vec![Step::Nothing]
            } else {
                steps
            }
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

    /// Other grants of the same target in `states`.
    async fn siblings(&self, g: &Grant, states: &[GrantState]) -> Result<Vec<Grant>, StoreError> {
        let filter = GrantFilter {
            requester: Some(g.request.requester.to_string()),
            account_id: Some(g.request.account_id.to_string()),
            permission_set: Some(g.request.permission_set.to_string()),
            states: states.to_vec(),
            ..GrantFilter::default()
        };
        Ok(self
            .store
            .list_grants(&filter, None, 1000)
            .await?
            .into_iter()
            .filter(|o| o.id != g.id)
            .collect())
    }

    fn backoff(&self, attempts: i64) -> chrono::Duration {
        let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
        let ceiling = self
            .settings
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.settings.backoff_cap);
        // Full jitter: a uniformly random delay up to the ceiling, at least the base,
        // so replicas retrying the same throttled API spread out.
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let base = u64::try_from(self.settings.backoff_base.as_millis()).unwrap_or(0);
        let pick = fastrand::u64(base.min(millis)..=millis);
        chrono::Duration::milliseconds(i64::try_from(pick).unwrap_or(i64::MAX))
    }

    /// Records a failed step and schedules the retry.
    async fn retry_later(
        &self,
        g: &Grant,
        mut w: GrantAws,
        step: &'static str,
        error: &str,
        kind: &'static str,
    ) -> Result<Step, ReaperError> {
        w.attempts += 1;
        w.next_attempt_at = Some(self.clock.now() + self.backoff(w.attempts));
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

    async fn fail_provisioning(
        &self,
        g: &Grant,
        mut w: GrantAws,
        reason: String,
    ) -> Result<Step, ReaperError> {
        w.last_error = Some(reason.clone());
        w.next_attempt_at = None;
        self.store.save_grant_aws(g.id, &w).await?;
        self.metrics
            .reaper_failures
            .with_label_values(&["provision", "failed"])
            .inc();
        tracing::error!(grant = %g.id, reason = %reason, "provisioning failed");
        self.grants
            .act(
                g.id,
                Action::ProvisionFailed,
                &Actor::System,
                Some(reason.clone()),
                GrantPatch {
                    failure_reason: Some(reason),
                    ..GrantPatch::default()
                },
                serde_json::json!({ "attempts": w.attempts }),
            )
            .await?;
        Ok(Step::Failed)
    }

    /// Polls a status until it is final or the tick's polling budget is spent.
    /// The lease is renewed before every status call; losing it ends polling (the new
    /// holder resumes from the stored request id).
    async fn poll(
        &self,
        target: &str,
        request_id: &str,
        deletion: bool,
    ) -> Result<OperationStatus, ReaperError> {
        let started = std::time::Instant::now();
        let mut delay = self.settings.poll_initial;
        loop {
            if !self.hold(target).await? {
                return Ok(OperationStatus::InProgress);
            }
            let status = if deletion {
                self.ic.deletion_status(request_id).await
            } else {
                self.ic.creation_status(request_id).await
            }
            .map_err(ReaperError::Aws)?;
            if status != OperationStatus::InProgress
                || started.elapsed() + delay > self.settings.poll_budget
            {
                return Ok(status);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.settings.poll_max);
        }
    }

    async fn provision(&self, target: &str, g: Grant) -> Result<Step, ReaperError> {
        let mut w = self.store.grant_aws(g.id).await?.unwrap_or_default();
        let attempts_left = w.attempts < self.settings.provision_attempts;
        let grant = &g;
        let retry_or_fail = |w: GrantAws, e: &IcError| {
            let e = e.clone();
            async move {
                if e.is_retryable() && w.attempts + 1 < self.settings.provision_attempts {
                    self.retry_later(grant, w, "provision", &e.to_string(), "aws")
                        .await
                } else {
                    self.fail_provisioning(grant, w, e.to_string()).await
                }
            }
        };
        if !attempts_left {
            let reason = w
                .last_error
                .clone()
                .unwrap_or_else(|| "too many failed attempts".into());
            return self.fail_provisioning(&g, w, reason).await;
        }
        // Who and what, resolved once and kept.
        if w.principal_id.is_none() {
            match self
                .ic
                .find_user(self.settings.user_match, g.request.requester.as_str())
                .await
            {
                Ok(id) => w.principal_id = Some(id),
                Err(IdentityError::Aws(e)) => return retry_or_fail(w, &e).await,
                Err(e) => return self.fail_provisioning(&g, w, e.to_string()).await,
            }
        }
        if w.permission_set_arn.is_none() {
            let name = g.request.permission_set.as_str();
            let mut found = catalog::permission_set_by_name(self.store.as_ref(), name).await?;
            if found.is_none() {
                // The catalog may be older than the permission set: refresh once. If
                // AWS could not be asked, that is not "the set does not exist".
                match catalog::sync(self.ic.as_ref(), self.store.as_ref(), self.clock.now()).await {
                    Ok(_) => {}
                    Err(catalog::CatalogError::Aws(e)) => return retry_or_fail(w, &e).await,
                    Err(catalog::CatalogError::Store(e)) => return Err(e.into()),
                }
                found = catalog::permission_set_by_name(self.store.as_ref(), name).await?;
            }
            match found {
                Some(p) => w.permission_set_arn = Some(p.arn),
                None => {
                    return self
                        .fail_provisioning(
                            &g,
                            w,
                            format!("the permission set {name:?} is not in IAM Identity Center"),
                        )
                        .await
                }
            }
        }
        let (Some(principal_id), Some(ps_arn)) =
            (w.principal_id.clone(), w.permission_set_arn.clone())
        else {
            return Ok(Step::Nothing);
        };
        let assignment = Assignment {
            account_id: g.request.account_id.to_string(),
            permission_set_arn: ps_arn.clone(),
            principal_type: "USER".into(),
            principal_id: principal_id.clone(),
        };
        self.store.save_grant_aws(g.id, &w).await?;

        if w.create_request_id.is_none() && w.shared_with.is_none() {
            let holders = self.siblings(&g, &[GrantState::Active]).await?;
            if !holders.is_empty() {
                // Another active grant holds the assignment: share it (and if that one
                // rides on a standing assignment, so does this one).
                let mut standing = false;
                for h in &holders {
                    if let Some(hw) = self.store.grant_aws(h.id).await? {
                        standing |= hw.shared_with.as_deref() == Some(STANDING);
                    }
                }
                let ids: Vec<String> = holders.iter().map(|h| h.id.to_string()).collect();
                w.shared_with = Some(if standing {
                    STANDING.to_owned()
                } else {
                    serde_json::json!(ids).to_string()
                });
                self.store.save_grant_aws(g.id, &w).await?;
                return self.activate(g, w, &assignment, "shared").await;
            }
            // Does the user already hold this assignment? After a crash between
            // sending a create and storing its answer, that is ours: adopt it. Before
            // any create, it is a standing assignment Timebox did not make: use it for
            // the grant, record it, and never delete it.
            match self
                .ic
                .list_assignments(&assignment.account_id, &ps_arn)
                .await
            {
                Ok(list) => {
                    let present = list
                        .iter()
                        .any(|a| a.principal_type == "USER" && a.principal_id == principal_id);
                    if present && w.create_started_at.is_some() {
                        return self.activate(g, w, &assignment, "adopted").await;
                    }
                    if present {
                        w.shared_with = Some(STANDING.to_owned());
                        self.store.save_grant_aws(g.id, &w).await?;
                        return self.activate(g, w, &assignment, "standing").await;
                    }
                }
                Err(e) => return retry_or_fail(w, &e).await,
            }
            if !self.hold(target).await? {
                return Ok(Step::Nothing);
            }
            w.create_started_at = Some(self.clock.now());
            self.store.save_grant_aws(g.id, &w).await?;
            match self.ic.create_assignment(&assignment).await {
                Ok(op) => {
                    w.create_request_id = Some(op.request_id);
                    self.store.save_grant_aws(g.id, &w).await?;
                }
                Err(e) => return retry_or_fail(w, &e).await,
            }
        }
        let Some(request_id) = w.create_request_id.clone() else {
            return self.activate(g, w, &assignment, "shared").await;
        };
        match self.poll(target, &request_id, false).await {
            Ok(OperationStatus::Succeeded) => self.activate(g, w, &assignment, "created").await,
            Ok(OperationStatus::InProgress) => {
                w.next_attempt_at = Some(self.clock.now());
                self.store.save_grant_aws(g.id, &w).await?;
                Ok(Step::Waiting)
            }
            Ok(OperationStatus::Failed(reason)) => {
                // FAILED is final for this request; a new request may succeed (AWS
                // reports transient internal failures this way), a few times.
                w.create_request_id = None;
                w.create_started_at = None;
                let reason = format!("CreateAccountAssignment FAILED: {reason}");
                if w.attempts + 1 < self.settings.provision_attempts {
                    self.retry_later(&g, w, "provision", &reason, "aws_failed")
                        .await
                } else {
                    w.attempts += 1;
                    self.fail_provisioning(&g, w, reason).await
                }
            }
            Err(ReaperError::Aws(e)) => retry_or_fail(w, &e).await,
            Err(e) => Err(e),
        }
    }

    /// Provisioning SUCCEEDED (or the assignment is shared/adopted): the grant becomes
    /// active now, with the permission set's session duration read now.
    async fn activate(
        &self,
        g: Grant,
        mut w: GrantAws,
        assignment: &Assignment,
        how: &'static str,
    ) -> Result<Step, ReaperError> {
        let ps = match self
            .ic
            .describe_permission_set(&assignment.permission_set_arn)
            .await
        {
            Ok(ps) => ps,
            Err(e) => {
                return self
                    .retry_later(&g, w, "activate", &e.to_string(), "aws")
                    .await
            }
        };
        // No or an unreadable SessionDuration means AWS's default, one hour.
        let session = ps
            .session_duration
            .as_deref()
            .and_then(|s| SessionDuration::parse(s).ok())
            .or_else(|| SessionDuration::parse("PT1H").ok());
        let Some(session) = session else {
            return self
                .retry_later(&g, w, "activate", "no session duration", "internal")
                .await;
        };
        let other_paths = self.other_paths(assignment).await;
        w.other_paths = other_paths.clone();
        w.next_attempt_at = None;
        w.last_error = None;
        w.attempts = 0;
        self.store.save_grant_aws(g.id, &w).await?;
        let activated_at = self.clock.now();
        let ends_at = activated_at + g.request.duration.as_duration();
        let real_end = Windows::compute(&WindowInputs {
            activated_at,
            revoked_at: None,
            planned_end: ends_at,
            portal_session: self.settings.portal_session,
            permission_set_session: session,
            observed: None,
        })
        .ok()
        .map(|w| w.real.end);
        self.grants
            .act(
                g.id,
                Action::ProvisionSucceeded,
                &Actor::System,
                None,
                GrantPatch {
                    activated_at: Some(activated_at),
                    ends_at: Some(ends_at),
                    permission_set_session_seconds: Some(session.seconds()),
                    portal_session_seconds: Some(self.settings.portal_session.seconds()),
                    real_end,
                    ..GrantPatch::default()
                },
                serde_json::json!({
                    "assignment": how,
                    "request_id": w.create_request_id,
                    "principal_id": assignment.principal_id,
                    "permission_set_arn": assignment.permission_set_arn,
                    "shared_with": w.shared_with,
                    "other_paths": other_paths.and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok()),
                }),
            )
            .await?;
        Ok(Step::Activated)
    }

    /// Group assignments of the same permission set in the same account that include
    /// the user: other paths to the same access. `None` when they could not be read
    /// (logged; the grant still activates).
    async fn other_paths(&self, a: &Assignment) -> Option<String> {
        let groups = match self.ic.user_groups(&a.principal_id).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read group memberships for other-path detection");
                return None;
            }
        };
        let list = match self
            .ic
            .list_assignments(&a.account_id, &a.permission_set_arn)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list assignments for other-path detection");
                return None;
            }
        };
        let paths: Vec<serde_json::Value> = list
            .iter()
            .filter(|x| x.principal_type == "GROUP" && groups.contains(&x.principal_id))
            .map(|x| serde_json::json!({ "principal_type": "GROUP", "principal_id": x.principal_id }))
            .collect();
        Some(serde_json::Value::Array(paths).to_string())
    }

    async fn revoke(&self, target: &str, g: Grant) -> Result<Step, ReaperError> {
        let mut w = self.store.grant_aws(g.id).await?.unwrap_or_default();
        let (Some(principal_id), Some(ps_arn)) =
            (w.principal_id.clone(), w.permission_set_arn.clone())
        else {
            // Never provisioned in AWS (no principal resolved): nothing to delete.
            return self
                .revoked(g, w, serde_json::json!({ "assignment": "none" }))
                .await;
        };
        let assignment = Assignment {
            account_id: g.request.account_id.to_string(),
            permission_set_arn: ps_arn,
            principal_type: "USER".into(),
            principal_id,
        };
        if w.delete_request_id.is_none() && w.shared_with.as_deref() == Some(STANDING) {
            return self
                .revoked(
                    g,
                    w,
                    serde_json::json!({ "assignment": "standing_kept",
                        "why": "the user held this assignment before the grant; Timebox does not remove access it did not give" }),
                )
                .await;
        }
        if w.delete_request_id.is_none() {
            let still_needed = self
                .siblings(&g, &[GrantState::Provisioning, GrantState::Active])
                .await?;
            if !still_needed.is_empty() {
                let ids: Vec<String> = still_needed.iter().map(|s| s.id.to_string()).collect();
                return self
                    .revoked(
                        g,
                        w,
                        serde_json::json!({ "assignment": "kept", "kept_for": ids }),
                    )
                    .await;
            }
            if !self.hold(target).await? {
                return Ok(Step::Nothing);
            }
            let now = self.clock.now();
            if w.delete_started_at.is_none() {
                if let (Some(end), GrantState::Revoking) = (g.ends_at, g.state) {
                    if end <= now {
                        self.metrics
                            .reaper_lag
                            .observe(to_std(now - end).as_secs_f64());
                    }
                }
            }
            w.delete_started_at = Some(now);
            self.store.save_grant_aws(g.id, &w).await?;
            match self.ic.delete_assignment(&assignment).await {
                Ok(op) => {
                    w.delete_request_id = Some(op.request_id);
                    self.store.save_grant_aws(g.id, &w).await?;
                }
                // Already gone (removed by hand, or deleted just before a crash).
                Err(e) if e.kind == crate::identity_center::IcErrorKind::NotFound => {
                    return self
                        .revoked(g, w, serde_json::json!({ "assignment": "already_absent" }))
                        .await;
                }
                Err(e) => {
                    let kind = if e.is_retryable() {
                        "aws"
                    } else {
                        "aws_permanent"
                    };
                    return self
                        .retry_later(&g, w, "revoke", &e.to_string(), kind)
                        .await;
                }
            }
        }
        let Some(request_id) = w.delete_request_id.clone() else {
            return Ok(Step::Nothing);
        };
        match self.poll(target, &request_id, true).await {
            Ok(OperationStatus::Succeeded) => {
                self.revoked(
                    g,
                    w,
                    serde_json::json!({ "assignment": "deleted", "request_id": request_id }),
                )
                .await
            }
            Ok(OperationStatus::InProgress) => {
                w.next_attempt_at = Some(self.clock.now());
                self.store.save_grant_aws(g.id, &w).await?;
                Ok(Step::Waiting)
            }
            Ok(OperationStatus::Failed(reason)) => {
                // Revocation is never given up: send a new delete after the backoff.
                w.delete_request_id = None;
                w.delete_started_at = None;
                self.retry_later(
                    &g,
                    w,
                    "revoke",
                    &format!("DeleteAccountAssignment FAILED: {reason}"),
                    "aws_failed",
                )
                .await
            }
            Err(ReaperError::Aws(e)) => {
                let kind = if e.is_retryable() {
                    "aws"
                } else {
                    "aws_permanent"
                };
                self.retry_later(&g, w, "revoke", &e.to_string(), kind)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// The assignment is gone (or kept for another grant): `revoked_at` is now, and the
    /// real window is final.
    async fn revoked(
        &self,
        g: Grant,
        mut w: GrantAws,
        details: serde_json::Value,
    ) -> Result<Step, ReaperError> {
        w.next_attempt_at = None;
        w.last_error = None;
        w.attempts = 0;
        self.store.save_grant_aws(g.id, &w).await?;
        let revoked_at = self.clock.now();
        let real_end = match (
            g.activated_at,
            g.ends_at,
            g.portal_session,
            g.permission_set_session,
        ) {
            (
                Some(activated_at),
                Some(planned_end),
                Some(portal_session),
                Some(permission_set_session),
            ) => Windows::compute(&WindowInputs {
                activated_at,
                revoked_at: Some(revoked_at.max(activated_at)),
                planned_end,
                portal_session,
                permission_set_session,
                observed: None,
            })
            .ok()
            .map(|w| w.real.end),
            _ => None,
        };
        self.grants
            .act(
                g.id,
                Action::RevokeSucceeded,
                &Actor::System,
                None,
                GrantPatch {
                    revoked_at: Some(revoked_at),
                    real_end,
                    ..GrantPatch::default()
                },
                details,
            )
            .await?;
        Ok(Step::Revoked)
    }

    /// Compares Identity Center's assignments for the permission sets and accounts
    /// Timebox has granted with the database: an assignment Timebox made that should
    /// be gone is removed and reported; a user assignment Timebox did not make is
    /// reported (once per process), not removed. Returns the number of findings.
    pub async fn reconcile(&self) -> Result<usize, ReaperError> {
        let rows = self.store.grant_aws_in_states(&GrantState::ALL).await?;
        // (account, permission set) → principals that should hold it / Timebox made.
        let mut should: BTreeMap<(String, String), HashSet<String>> = BTreeMap::new();
        let mut made: BTreeMap<(String, String), Vec<(Grant, GrantAws)>> = BTreeMap::new();
        for (g, w) in rows {
            let (Some(p), Some(arn)) = (w.principal_id.clone(), w.permission_set_arn.clone())
            else {
                continue;
            };
            let key = (g.request.account_id.to_string(), arn);
            let entry = should.entry(key.clone()).or_default();
            if g.state.may_hold_assignment() {
                entry.insert(p);
            }
            if w.create_request_id.is_some() || w.create_started_at.is_some() {
                made.entry(key).or_default().push((g, w));
            }
        }
        let mut findings = 0;
        for ((account, arn), holders) in &should {
            let list = self.ic.list_assignments(account, arn).await?;
            for a in list.iter().filter(|a| a.principal_type == "USER") {
                if holders.contains(&a.principal_id) {
                    continue;
                }
                let ours = made.get(&(account.clone(), arn.clone())).and_then(|v| {
                    v.iter()
                        .find(|(_, w)| w.principal_id.as_deref() == Some(a.principal_id.as_str()))
                });
                findings += 1;
                if let Some((g, _)) = ours {
                    let removed = match self.ic.delete_assignment(a).await {
                        Ok(_) => true,
                        Err(e) if e.kind == crate::identity_center::IcErrorKind::NotFound => true,
                        Err(e) => {
                            tracing::warn!(error = %e, "drift: cannot remove a leftover assignment");
                            false
                        }
                    };
                    tracing::warn!(grant = %g.id, account, permission_set_arn = arn, removed, "drift: an assignment Timebox made should be gone");
                    self.store
                        .append_audit(NewAuditEvent {
                            grant_id: Some(g.id),
                            at: self.clock.now(),
                            actor: "timebox".into(),
                            action: "drift_removed".into(),
                            from_state: None,
                            to_state: None,
                            reason: Some("an assignment Timebox made was still present after its grant ended".into()),
                            details: serde_json::json!({
                                "account_id": account,
                                "permission_set_arn": arn,
                                "principal_id": a.principal_id,
                                "removed": removed,
                            }),
                        })
                        .await?;
                } else {
                    let key = format!("{account}|{arn}|{}", a.principal_id);
                    let first = self
                        .reported
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key);
                    if first {
                        tracing::warn!(account, permission_set_arn = arn, principal_id = %a.principal_id, "drift: an assignment Timebox did not make (reported, not removed)");
                        self.store
                            .append_audit(NewAuditEvent {
                                grant_id: None,
                                at: self.clock.now(),
                                actor: "timebox".into(),
                                action: "drift_unmanaged".into(),
                                from_state: None,
                                to_state: None,
                                reason: Some("a user assignment of a managed permission set that Timebox did not make".into()),
                                details: serde_json::json!({
                                    "account_id": account,
                                    "permission_set_arn": arn,
                                    "principal_id": a.principal_id,
                                }),
                            })
                            .await?;
                    }
                }
            }
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct NoAws;

    #[async_trait::async_trait]
    impl IdentityCenter for NoAws {
        async fn instance(&self) -> Result<crate::identity_center::Instance, IcError> {
            Err(none())
        }
        async fn list_permission_sets(
            &self,
        ) -> Result<Vec<crate::identity_center::PermissionSetInfo>, IcError> {
            Err(none())
        }
        async fn describe_permission_set(
            &self,
            _: &str,
        ) -> Result<crate::identity_center::PermissionSetInfo, IcError> {
            Err(none())
        }
        async fn organization_tree(&self) -> Result<Vec<crate::store::CatalogNode>, IcError> {
            Err(none())
        }
        async fn find_user(&self, _: UserMatch, _: &str) -> Result<String, IdentityError> {
            Err(IdentityError::Aws(none()))
        }
        async fn user_groups(&self, _: &str) -> Result<Vec<String>, IcError> {
            Err(none())
        }
        async fn create_assignment(
            &self,
            _: &Assignment,
        ) -> Result<crate::identity_center::Operation, IcError> {
            Err(none())
        }
        async fn creation_status(&self, _: &str) -> Result<OperationStatus, IcError> {
            Err(none())
        }
        async fn delete_assignment(
            &self,
            _: &Assignment,
        ) -> Result<crate::identity_center::Operation, IcError> {
            Err(none())
        }
        async fn deletion_status(&self, _: &str) -> Result<OperationStatus, IcError> {
            Err(none())
        }
        async fn list_assignments(&self, _: &str, _: &str) -> Result<Vec<Assignment>, IcError> {
            Err(none())
        }
        async fn group_members(&self, _: &str) -> Result<Vec<String>, IcError> {
            Err(none())
        }
        async fn user_contact(
            &self,
            _: &str,
        ) -> Result<crate::identity_center::UserContact, IcError> {
            Err(none())
        }
    }

    fn none() -> IcError {
        IcError {
            operation: "test",
            kind: crate::identity_center::IcErrorKind::Permanent,
            code: "NoAws".into(),
            message: String::new(),
        }
    }

    async fn reaper() -> Reaper {
        let store = crate::store::connect("sqlite::memory:", 1)
            .await
            .expect("in-memory store");
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let mut settings = ReaperSettings::from_config(&crate::config::Config::default());
        settings.backoff_base = Duration::from_secs(1);
        settings.backoff_cap = Duration::from_secs(60);
        let policy = crate::policy::PolicyService::from_text(
            "[[policy]]\nname = \"any\"\nrequesters = [\"*\"]\naccounts = [\"*\"]\n\
             permission_sets = [\"*\"]\nmax_duration = \"12h\"\napproval = \"auto\"\n",
            store.clone(),
            clock.clone(),
        )
        .expect("test policy");
        Reaper::new(
            GrantService::new(store, clock.clone(), policy),
            Arc::new(NoAws),
            clock,
            Arc::new(Metrics::new()),
            settings,
        )
    }

    #[tokio::test]
    async fn backoff_grows_is_jittered_and_capped() {
        let r = reaper().await;
        for attempts in 0..40 {
            let ceiling = (1i64 << attempts.min(20)).min(60) * 1000;
            for _ in 0..20 {
                let d = r.backoff(attempts).num_milliseconds();
                assert!(d >= 1000, "at least the base: {d}");
                assert!(d <= ceiling, "attempt {attempts}: {d} > {ceiling}");
            }
        }
        // Jitter: the same attempt does not always give the same delay.
        let delays: HashSet<i64> = (0..50).map(|_| r.backoff(6).num_milliseconds()).collect();
        assert!(delays.len() > 1);
    }

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
