//! Prometheus metrics, served on `/metrics`: the reaper's lag and queue depth, AWS
//! call latencies and errors, grants by state, background job passes. One registry
//! per server (no global), handed to whoever records.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Seconds from a grant's end to the reaper's `DeleteAccountAssignment` call.
    pub reaper_lag: Histogram,
    /// Grants the reaper has something to do for, at the last tick.
    pub reaper_queue_depth: IntGauge,
    /// Steps that failed, by step and kind of failure.
    pub reaper_failures: IntCounterVec,
    /// AWS call latency by operation.
    pub aws_call_seconds: HistogramVec,
    /// AWS call errors by operation and error code.
    pub aws_call_errors: IntCounterVec,
    /// Grants by state, refreshed by the reaper.
    pub grants_by_state: IntGaugeVec,
    // --- background jobs (`crate::jobs`), by job kind ------------------------------
    /// Passes run.
    pub job_passes: IntCounterVec,
    /// Passes that failed.
    pub job_failures: IntCounterVec,
    /// How long a pass took.
    pub job_pass_seconds: HistogramVec,
    // --- notifications ------------------------------------------------------------
    /// Deliveries accepted by their receiver, by channel.
    pub notifications_delivered: IntCounterVec,
    /// Failed delivery attempts (each retry counts), by channel.
    pub notifications_failed: IntCounterVec,
    /// Deliveries given up, by channel.
    pub notifications_abandoned: IntCounterVec,
    /// Pending deliveries plus events not fanned out yet.
    pub notification_outbox_depth: IntGauge,
    /// Age of the oldest undelivered notification, in seconds (0 when none).
    pub notification_oldest_undelivered: Gauge,
    /// Refused operations, by operation and reason code (every refusal is also
    /// logged with the caller and the grant).
    pub refusals: IntCounterVec,
    /// Drift findings, by kind (`removed`, `recreated`, `unmanaged`, `group_path`).
    pub drift_findings: IntCounterVec,
    /// What became of revoked grants' sessions, by outcome (`closed_scp`,
    /// `closed_inline`, `over_budget`, `no_permission`, `hand_edited`, …).
    pub sessions_outcomes: IntCounterVec,
    /// Denies standing in the policies Timebox owns, at the last session pass.
    pub session_denies: IntGauge,
    // --- audit checkpoints (`crate::audit`) -----------------------------------------
    /// Checkpoints signed and stored by this server.
    pub audit_checkpoints: prometheus::IntCounter,
    /// Failed attempts to publish a checkpoint, by sink (each retry counts).
    pub audit_checkpoint_publish_failures: IntCounterVec,
}

impl Metrics {
    /// Registers every metric. The names and labels are fixed, so registration can
    /// only fail on a programming error: that is a start-up invariant.
    #[expect(
        clippy::expect_used,
        reason = "fixed metric definitions: a start-up invariant"
    )]
    pub fn new() -> Self {
        let registry = Registry::new();
        let reaper_lag = Histogram::with_opts(
            HistogramOpts::new(
                "timebox_reaper_lag_seconds",
                "Seconds from a grant's end to the reaper's DeleteAccountAssignment call",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 300.0,
            ]),
        )
        .expect("metric");
        let reaper_queue_depth = IntGauge::new(
            "timebox_reaper_queue_depth",
            "Grants the reaper has work for (due, provisioning, revoking)",
        )
        .expect("metric");
        let reaper_failures = IntCounterVec::new(
            Opts::new(
                "timebox_reaper_failures_total",
                "Reaper steps that failed, by step and kind",
            ),
            &["step", "kind"],
        )
        .expect("metric");
        let aws_call_seconds = HistogramVec::new(
            HistogramOpts::new("timebox_aws_call_seconds", "AWS API call latency").buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["operation"],
        )
        .expect("metric");
        let aws_call_errors = IntCounterVec::new(
            Opts::new("timebox_aws_call_errors_total", "AWS API call errors"),
            &["operation", "code"],
        )
        .expect("metric");
        let grants_by_state =
            IntGaugeVec::new(Opts::new("timebox_grants", "Grants by state"), &["state"])
                .expect("metric");
        let job_passes = IntCounterVec::new(
            Opts::new("timebox_job_passes_total", "Background job passes, by job"),
            &["job"],
        )
        .expect("metric");
        let job_failures = IntCounterVec::new(
            Opts::new(
                "timebox_job_failures_total",
                "Background job passes that failed, by job",
            ),
            &["job"],
        )
        .expect("metric");
        let job_pass_seconds = HistogramVec::new(
            HistogramOpts::new("timebox_job_pass_seconds", "Background job pass duration").buckets(
                vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
            &["job"],
        )
        .expect("metric");
        let notifications_delivered = IntCounterVec::new(
            Opts::new(
                "timebox_notifications_delivered_total",
                "Notifications accepted by their receiver, by channel",
            ),
            &["channel"],
        )
        .expect("metric");
        let notifications_failed = IntCounterVec::new(
            Opts::new(
                "timebox_notifications_failed_total",
                "Failed notification delivery attempts, by channel",
            ),
            &["channel"],
        )
        .expect("metric");
        let notifications_abandoned = IntCounterVec::new(
            Opts::new(
                "timebox_notifications_abandoned_total",
                "Notifications given up after notify.retry_for or a permanent refusal, by channel",
            ),
            &["channel"],
        )
        .expect("metric");
        let notification_outbox_depth = IntGauge::new(
            "timebox_notification_outbox_depth",
            "Pending notification deliveries plus events not fanned out yet",
        )
        .expect("metric");
        let notification_oldest_undelivered = Gauge::new(
            "timebox_notification_oldest_undelivered_seconds",
            "Age of the oldest undelivered notification (0 when none)",
        )
        .expect("metric");
        let refusals = IntCounterVec::new(
            Opts::new(
                "timebox_refusals_total",
                "Operations refused to a caller, by operation and reason",
            ),
            &["operation", "reason"],
        )
        .expect("metric");
        let drift_findings = IntCounterVec::new(
            Opts::new(
                "timebox_drift_findings_total",
                "Differences between Identity Center and Timebox found by the drift pass, by kind",
            ),
            &["kind"],
        )
        .expect("metric");
        let sessions_outcomes = IntCounterVec::new(
            Opts::new(
                "timebox_sessions_outcomes_total",
                "Revoked grants' sessions closed, or why not, by outcome",
            ),
            &["outcome"],
        )
        .expect("metric");
        let session_denies = IntGauge::new(
            "timebox_session_denies",
            "Revoked grants whose sessions are being denied, at the last session pass",
        )
        .expect("metric");
        let audit_checkpoints = prometheus::IntCounter::new(
            "timebox_audit_checkpoints_total",
            "Signed audit checkpoints written by this server",
        )
        .expect("metric");
        let audit_checkpoint_publish_failures = IntCounterVec::new(
            Opts::new(
                "timebox_audit_checkpoint_publish_failures_total",
                "Failed attempts to publish an audit checkpoint, by sink (retried next pass)",
            ),
            &["sink"],
        )
        .expect("metric");
        for c in [
            Box::new(drift_findings.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(audit_checkpoints.clone()),
            Box::new(audit_checkpoint_publish_failures.clone()),
            Box::new(sessions_outcomes.clone()),
            Box::new(session_denies.clone()),
            Box::new(reaper_lag.clone()),
            Box::new(reaper_queue_depth.clone()),
            Box::new(reaper_failures.clone()),
            Box::new(aws_call_seconds.clone()),
            Box::new(aws_call_errors.clone()),
            Box::new(grants_by_state.clone()),
            Box::new(job_passes.clone()),
            Box::new(job_failures.clone()),
            Box::new(job_pass_seconds.clone()),
            Box::new(notifications_delivered.clone()),
            Box::new(notifications_failed.clone()),
            Box::new(notifications_abandoned.clone()),
            Box::new(notification_outbox_depth.clone()),
            Box::new(notification_oldest_undelivered.clone()),
            Box::new(refusals.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            reaper_lag,
            reaper_queue_depth,
            reaper_failures,
            aws_call_seconds,
            aws_call_errors,
            grants_by_state,
            job_passes,
            job_failures,
            job_pass_seconds,
            notifications_delivered,
            notifications_failed,
            notifications_abandoned,
            notification_outbox_depth,
            notification_oldest_undelivered,
            refusals,
            drift_findings,
            sessions_outcomes,
            session_denies,
            audit_checkpoints,
            audit_checkpoint_publish_failures,
        }
    }

    /// Sets `timebox_grants{state}` for every state (zero for those with no grants,
    /// so a state that empties does not keep its last count).
    pub fn set_grant_counts(&self, counts: &[(app::domain::GrantState, i64)]) {
        for state in app::domain::GrantState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            self.grants_by_state
                .with_label_values(&[state.as_str()])
                .set(n);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which `new`
        // cannot produce; an empty page is the safe answer if it ever did.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
