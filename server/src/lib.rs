//! The Timebox server: configuration, storage, the grant service and the axum +
//! Leptos front door. `main.rs` only parses arguments and calls [`run`].
//!
//! Layout (one module per outside thing, one per job):
//! - [`config`]: typed configuration, validated at start-up;
//! - [`auth`]: OpenID Connect sign-in, sessions, the per-request caller, and the
//!   cross-site and header checks every request passes;
//! - [`store`]: the repository trait and its SQLite/PostgreSQL backends;
//! - [`services`]: what people may do, as role-scoped handles (a requester's,
//!   approver's, auditor's, admin's) over the grant service, and the dashboard's
//!   backend over them;
//! - [`clock`]: the injected clock;
//! - [`web`]: every HTTP route (pages, server functions, the JSON API and its
//!   OpenAPI document, sign-in, the evidence pack, health) and the one error mapping;
//! - [`aws`]: the AWS kit (clients, paced and instrumented calls, one error
//!   classification) every AWS caller uses;
//! - [`identity_center`]: IAM Identity Center behind a trait, over the AWS SDK;
//! - [`jobs`]: the job runner every background job runs on (leases, backoff,
//!   graceful stop, metrics per job);
//! - [`reaper`]: the background job that provisions, revokes and reconciles;
//! - [`evidence`]: each grant's CloudTrail activity, its Detective investigation
//!   and the evidence pack;
//! - [`notify`]: notifications (Slack, email, signed webhook) through an outbox;
//! - [`metrics`]: the Prometheus registry;
//! - [`policy`]: the policy file (who may ask for what, approved by whom), reloaded
//!   on SIGHUP and on change;
//! - [`telemetry`]: structured logs;
//! - [`audit`]: signed checkpoints of the audit chain, their job and sinks, and the
//!   whole-chain verification behind `timebox audit verify`.

// The Leptos pages are deeply nested view types; laying them out needs more than
// the default depth.
#![recursion_limit = "256"]

pub mod audit;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod csv;
pub mod evidence;
pub mod html;
pub mod identity_center;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod reaper;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod web;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot open the database {url}: {source}")]
    Store {
        url: String,
        source: store::StoreError,
    },
    #[error("cannot listen on {addr}: {source}; set server.bind (TIMEBOX_SERVER__BIND) to a free address")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] auth::AuthStartError),
    #[error(transparent)]
    Policy(#[from] policy::PolicyLoadError),
    #[error(transparent)]
    Notify(#[from] notify::channels::ChannelError),
    #[error("audit.signing_key_file: {0}")]
    AuditKey(#[from] audit::KeyError),
    #[error(transparent)]
    AuditSink(#[from] audit::SinkSetupError),
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
    #[error("revocation.close_sessions = \"scp\" but Timebox may not manage service control policies: {0}. Give Timebox's role the Organizations permissions in docs/operations.md (on the management account or a delegated administrator, with SCPs enabled), or set revocation.close_sessions = \"inline\" or \"off\"")]
    SessionPolicies(identity_center::IcError),
}

/// Timebox wired at start-up. Only start-up code sees its parts: the routes receive
/// [`web::Web`] (the handle factory, sign-in, health, configuration), and each job
/// the parts it works with.
#[derive(Debug, Clone)]
pub struct Wiring {
    config: Arc<Config>,
    store: Arc<dyn store::Store>,
    clock: Arc<dyn Clock>,
    grants: services::GrantService,
    /// Sign-in, sessions and the caller of each request.
    auth: auth::Auth,
    /// The role-scoped handles people act through.
    access: services::Access,
    metrics: Arc<metrics::Metrics>,
    identity_center: Arc<dyn identity_center::IdentityCenter>,
    /// The calls that close revoked grants' sessions (SCPs, inline policies).
    session_policies: Arc<dyn identity_center::policies::SessionPolicies>,
    /// The configured notification channels.
    channels: notify::channels::Channels,
    /// The policy file in force: entitlements, "who can request what", reload status.
    policy: policy::PolicyService,
    /// Where the reaper collects activity and starts investigations; `None` when
    /// `evidence.source = "none"`.
    evidence_sources: Option<EvidenceSources>,
    /// Signs audit checkpoints; `None` without `audit.signing_key_file`.
    checkpoint_signer: Option<audit::CheckpointSigner>,
    /// Where checkpoints are published (built, and the S3 bucket checked, only with
    /// a signing key).
    checkpoint_sinks: Vec<Arc<dyn audit::CheckpointSink>>,
}

/// The activity source and the Detective client the reaper's evidence step uses.
#[derive(Debug, Clone)]
pub struct EvidenceSources {
    pub activity: Arc<dyn evidence::ActivitySource>,
    pub detective: Option<Arc<dyn evidence::detective::Investigations>>,
}

impl Wiring {
    /// Opens (and migrates) the database and wires the services.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        // The URL may carry a password (inline or from database.password[_file]):
        // only its redacted form is ever logged or shown.
        let redacted = config.database.redacted_url();
        let store = store::connect(
            config.database.connect_url().expose(),
            config.database.max_connections,
        )
        .await
        .map_err(|source| StartError::Store {
            url: redacted.clone(),
            source,
        })?;
        tracing::info!(database = %redacted, "database ready");
        let policy =
            policy::PolicyService::start(&config.policy, store.clone(), clock.clone()).await?;
        let grants = services::GrantService::new(store.clone(), clock.clone(), policy.clone());
        let config = Arc::new(config);
        let auth = auth::Auth::start(config.clone(), clock.clone())
            .await?
            .with_refresh_leases(jobs::Leases::new(
                "session-refresh",
                store.clone(),
                clock.clone(),
                std::time::Duration::from_secs(30),
            ));
        let metrics = Arc::new(metrics::Metrics::new());
        // Builds the clients only (region, credentials and endpoints from the chain
        // and `[aws]`); nothing is called until the reaper's first tick.
        let identity_center = Arc::new(
            identity_center::sdk::SdkIdentityCenter::from_config(
                &config.aws,
                &config.identity_center,
                metrics.clone(),
            )
            .await,
        );
        if config.reaper.enabled
            && config.revocation.close_sessions == Some(config::CloseSessions::Scp)
        {
            // Asked for explicitly: without the permissions, start-up stops with the fix.
            use identity_center::policies::SessionPolicies;
            identity_center
                .check_scp_access()
                .await
                .map_err(StartError::SessionPolicies)?;
        }
        let session_policies: Arc<dyn identity_center::policies::SessionPolicies> =
            identity_center.clone();
        let evidence_sources =
            evidence::from_config(&config, metrics.clone())
                .await
                .map(|(activity, detective)| EvidenceSources {
                    activity,
                    detective,
                });
        let checkpoint_signer = match &config.audit.signing_key_file {
            Some(path) => Some(audit::CheckpointSigner::from_file(path)?),
            None => None,
        };
        let access = services::Access::new(services::AccessParts {
            grants: grants.clone(),
            policy: auth.policy(),
            config: config.clone(),
            identity_center: identity_center.clone(),
            metrics: metrics.clone(),
            checkpoint_key: checkpoint_signer.as_ref().map(|s| s.verifying_key()),
        });
        let channels = notify::channels::Channels::from_config(&config)?;
        let checkpoint_sinks = match checkpoint_signer {
            Some(_) => audit::sinks_from_config(&config, clock.clone(), metrics.clone()).await?,
            None => Vec::new(),
        };
        Ok(Self {
            checkpoint_signer,
            checkpoint_sinks,
            config,
            store,
            clock,
            grants,
            auth,
            access,
            metrics,
            identity_center,
            session_policies,
            policy,
            evidence_sources,
            channels,
        })
    }

    /// The handle factory (for start-up code that drives the services directly, such
    /// as a benchmark).
    pub fn access(&self) -> services::Access {
        self.access.clone()
    }

    /// What the routes need: the handle factory, sign-in, health and configuration.
    pub fn web(&self) -> web::Web {
        web::Web {
            access: self.access.clone(),
            auth: self.auth.clone(),
            health: web::Health::new(self.store.clone(), self.metrics.clone()),
            config: self.config.clone(),
        }
    }

    /// The reaper over these services.
    pub fn reaper(&self) -> reaper::Reaper {
        let reaper = reaper::Reaper::new(
            self.grants.clone(),
            self.identity_center.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            reaper::ReaperSettings::from_config(&self.config),
        );
        let r = &self.config.revocation;
        let reaper = match r.close_sessions {
            Some(config::CloseSessions::Off) => reaper,
            mode => reaper.with_sessions(reaper::SessionCloser::new(
                mode.unwrap_or(config::CloseSessions::Scp),
                mode.is_some(),
                r.policy_slots,
                r.inline_fallback,
                self.session_policies.clone(),
            )),
        };
        match &self.evidence_sources {
            Some(s) => reaper.with_evidence(evidence::collect::Collector::new(
                self.grants.clone(),
                s.activity.clone(),
                s.detective.clone(),
                self.clock.clone(),
                self.metrics.clone(),
                evidence::collect::EvidenceSettings::from_config(&self.config),
            )),
            None => reaper,
        }
    }
}

impl Wiring {
    /// The notification worker over these services: recipients from configuration
    /// and the identity store.
    pub fn notify_worker(&self) -> notify::NotifyWorker {
        notify::NotifyWorker::new(
            self.store.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            self.channels.clone(),
            Arc::new(notify::DirectoryRecipients::from_config(
                &self.config,
                self.identity_center.clone(),
            )),
            notify::WorkerSettings::from_config(&self.config),
        )
    }
}

impl Wiring {
    /// The audit checkpoint job, when a signing key is configured.
    pub fn checkpoint_job(&self) -> Option<audit::CheckpointJob> {
        let signer = self.checkpoint_signer.clone()?;
        Some(audit::CheckpointJob::new(
            self.store.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            signer,
            self.checkpoint_sinks.clone(),
            audit::CheckpointSettings::from_config(&self.config.audit),
        ))
    }

    /// The job that runs the whole-chain verifications auditors ask for. It checks
    /// the checkpoints where the database's writers cannot change them: the S3
    /// bucket when one is configured, else the checkpoint file, else (only the log
    /// is outside) the database's own rows, each against the server's key.
    pub async fn verification_job(&self) -> audit::VerificationJob {
        let a = &self.config.audit;
        let source = match (
            &self.checkpoint_signer,
            &a.checkpoint_s3,
            &a.checkpoint_file,
        ) {
            (None, _, _) => audit::CheckpointSource::Nothing,
            (Some(_), Some(location), _) => audit::CheckpointSource::S3(
                audit::S3Checkpoints::from_config(
                    &self.config.aws,
                    a.checkpoint_s3_region.clone(),
                    location.clone(),
                    self.metrics.clone(),
                )
                .await,
            ),
            (Some(_), None, Some(path)) => audit::CheckpointSource::File(path.clone()),
            (Some(_), None, None) => audit::CheckpointSource::Database,
        };
        audit::VerificationJob::new(
            self.store.clone(),
            self.clock.clone(),
            self.checkpoint_signer.as_ref().map(|s| s.verifying_key()),
            source,
        )
    }
}

/// Binds, starts the jobs on the job runner — the reaper and its evidence step
/// (unless `reaper.enabled = false`), the notification worker, the audit
/// checkpoint job (with a signing key) and the on-demand verification job — serves until
/// `shutdown` resolves, then drains in-flight requests for at most
/// `server.shutdown_grace` and lets the jobs finish their current pass (at most
/// `server.shutdown_grace` too).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let addr = config.server.bind;
    let services = Wiring::start(config, Arc::new(SystemClock)).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let grace = services.config.server.shutdown_grace;
    let mut jobs = jobs::Runner::new(services.metrics.clone());
    let policy_watcher = services.policy.spawn_watcher(jobs.stop_signal());
    if services.config.reaper.enabled {
        let reaper = Arc::new(services.reaper());
        // Evidence runs beside the assignments, never in front of them: a pass paced
        // at CloudTrail's 2 calls per second must not delay a revocation.
        if let Some(evidence) = reaper.evidence() {
            jobs.start(evidence);
        }
        jobs.start(reaper);
    }
    // The worker runs even without channels: it records every event as fanned out
    // (to nobody), so turning a channel on later does not flood it with old events.
    jobs.start(Arc::new(services.notify_worker()));
    match services.checkpoint_job() {
        Some(job) => jobs.start(Arc::new(job)),
        None => tracing::warn!(
            "no audit.signing_key_file: no audit checkpoints are signed, so anyone who can write to the database can rewrite the audit chain unnoticed (docs/audit.md)"
        ),
    }
    jobs.start(Arc::new(services.verification_job().await));
    let stopper = jobs.stopper();
    let result = serve(services, listener, async move {
        shutdown.await;
        stopper.stop();
    })
    .await;
    policy_watcher.abort();
    jobs.shutdown(grace).await;
    result
}

/// Serves on an already bound listener (tests bind port 0 and read the address).
pub async fn serve(
    services: Wiring,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let grace = services.config.server.shutdown_grace;
    // Expired sessions are purged in the background for as long as the server runs.
    let purge = services
        .auth
        .sessions
        .spawn_purge(std::time::Duration::from_secs(5 * 60));
    let router = web::router(services.web())
        // The client address is needed to rate-limit failed sign-ins.
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let local = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(addr = %local, "Timebox is listening on http://{local}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_rx_for_serve = stop_rx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(grace = ?grace, "shutting down: no new connections, draining requests");
        let _ = stop_tx.send(true);
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = stop_rx_for_serve.wait_for(|stop| *stop).await;
    });
    let mut stop_rx = stop_rx;
    let deadline = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        res = server.into_future() => res.map_err(StartError::Serve),
        () = deadline => {
            tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
            Ok(())
        }
    };
    purge.abort();
    result
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives while the
/// server is still starting (migrations, the first job passes) is a graceful stop
/// once serving begins, never the default kill.
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(term) => {},
            () = wait(interrupt) => {},
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
