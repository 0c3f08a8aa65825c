//! The job runner: every background job (the reaper, its evidence step, the
//! notification worker) is a [`Job`] whose pass runs every `interval` until the stop
//! signal, then finishes what is in flight. Jobs must be idempotent: a pass may run
//! twice, on two replicas, or after a crash, and come to the same result — shared
//! work is claimed with a [`Leases`] lease and every retry waits a [`Backoff`].
//!
//! `lib.rs::run` starts the jobs explicitly on a [`Runner`] and stops them on graceful
//! shutdown, all within `server.shutdown_grace`. Every pass is counted and timed per
//! job kind (`timebox_job_passes_total`, `timebox_job_failures_total`,
//! `timebox_job_pass_seconds`).
//!
//! A new job: a struct holding its [`Leases`] (the kind names it) and settings with an
//! interval and a backoff base and cap; `impl Job` (`leases`, `interval`, `run_once`
//! calling its public `pass`); a `Services` method that builds it; one
//! `jobs.start(...)` line in `lib.rs::run`.

pub mod backoff;
pub mod lease;

pub use backoff::Backoff;
pub use lease::Leases;

use crate::metrics::Metrics;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why a pass failed: the job's own error, for the log.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// A background job: one pass at a time, every [`Job::interval`].
#[async_trait]
pub trait Job: Send + Sync + std::fmt::Debug + 'static {
    /// The job's leases. Their kind names the job in logs and in the `job` label of
    /// the job metrics; their owner names this process.
    fn leases(&self) -> &Leases;

    /// How long the runner waits after a pass before the next one.
    fn interval(&self) -> Duration;

    /// Called once when the runner starts the job (e.g. to log its configuration).
    fn started(&self) {}

    /// One pass. An error is logged and counted; the next pass comes after the
    /// interval as usual (passes resume from the database, so nothing is lost). The
    /// job is shared (`Arc`) so that a pass may leave tasks running that outlive it.
    async fn run_once(self: Arc<Self>) -> Result<(), JobError>;

    /// Waits for work a pass left running in the background, once the stop signal
    /// came (the reaper's per-target tasks). Nothing by default.
    async fn drain(&self) {}
}

/// Runs `job` until `stop` turns true (or its sender is gone), then lets it drain.
pub async fn run(job: Arc<dyn Job>, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let kind = job.leases().kind();
    tracing::info!(job = kind, owner = job.leases().owner(), interval = ?job.interval(), "job started");
    job.started();
    loop {
        let started = Instant::now();
        let outcome = job.clone().run_once().await;
        metrics
            .job_pass_seconds
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        metrics.job_passes.with_label_values(&[kind]).inc();
        if let Err(e) = outcome {
            metrics.job_failures.with_label_values(&[kind]).inc();
            tracing::error!(job = kind, error = %e, "job pass failed; trying again next interval");
        }
        tokio::select! {
            () = tokio::time::sleep(job.interval()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    job.drain().await;
    tracing::info!(job = kind, "job stopped");
}

/// Sends the stop signal to every job of a [`Runner`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Stopper(Arc<watch::Sender<bool>>);

impl Stopper {
    /// Tells every job to stop after its current pass (idempotent).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// The jobs of one server process: started one by one, stopped together.
#[derive(Debug)]
pub struct Runner {
    metrics: Arc<Metrics>,
    stop: Stopper,
    running: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Runner {
    /// A runner with no jobs yet; every pass of its jobs is recorded in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            stop: Stopper(Arc::new(watch::channel(false).0)),
            running: Vec::new(),
        }
    }

    /// Starts `job` on its own task.
    pub fn start(&mut self, job: Arc<dyn Job>) {
        let kind = job.leases().kind();
        let task = tokio::spawn(run(job, self.metrics.clone(), self.stop_signal()));
        self.running.push((kind, task));
    }

    /// The stop signal, for other background tasks that stop with the jobs.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.0.subscribe()
    }

    /// What sends the stop signal (e.g. from the shutdown future).
    pub fn stopper(&self) -> Stopper {
        self.stop.clone()
    }

    /// Sends the stop signal and waits for the jobs to finish what they are doing, at
    /// most `grace` in all; a job still working then is left (it resumes from the
    /// database at the next start).
    pub async fn shutdown(self, grace: Duration) {
        self.stop.stop();
        let deadline = tokio::time::Instant::now() + grace;
        for (kind, task) in self.running {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(
                    job = kind,
                    "the job was still working after the shutdown grace period; it resumes from the database at the next start"
                );
            }
        }
    }
}

/// A `std` duration as a `chrono` one (saturating: a huge setting means "never").
pub(crate) fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A `chrono` duration as a `std` one (a negative one is zero).
pub(crate) fn to_std(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting {
        leases: Leases,
        passes: AtomicUsize,
        drained: AtomicUsize,
    }

    #[async_trait]
    impl Job for Counting {
        fn leases(&self) -> &Leases {
            &self.leases
        }
        fn interval(&self) -> Duration {
            Duration::from_millis(5)
        }
        async fn run_once(self: Arc<Self>) -> Result<(), JobError> {
            let n = self.passes.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 1 {
                return Err("every other pass fails".into());
            }
            Ok(())
        }
        async fn drain(&self) {
            self.drained.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_job_passes_until_stopped_then_drains_once() {
        let metrics = Arc::new(Metrics::new());
        let job = Arc::new(Counting {
            leases: lease::tests::leases("counting").await,
            passes: AtomicUsize::new(0),
            drained: AtomicUsize::new(0),
        });
        let mut runner = Runner::new(metrics.clone());
        runner.start(job.clone());
        while job.passes.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        runner.shutdown(Duration::from_secs(5)).await;
        let passes = job.passes.load(Ordering::SeqCst);
        assert_eq!(job.drained.load(Ordering::SeqCst), 1);
        let counted = metrics.job_passes.with_label_values(&["counting"]).get();
        assert_eq!(counted, passes as u64, "every pass is counted");
        let failed = metrics.job_failures.with_label_values(&["counting"]).get();
        assert_eq!(failed, (passes / 2) as u64, "every failed pass is counted");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            job.passes.load(Ordering::SeqCst),
            passes,
            "no pass after the stop"
        );
    }
}
