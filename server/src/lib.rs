//! The Timebox server: configuration, storage, the grant service and the axum +
//! Leptos front door. `main.rs` only parses arguments and calls [`run`].
//!
//! Layout (one module per outside thing, one per job):
//! - [`config`]: typed configuration, validated at start-up;
//! - [`auth`]: OpenID Connect sign-in, sessions, the per-request caller, and the
//!   cross-site and header checks every request passes;
//! - [`store`]: the repository trait and its SQLite/PostgreSQL backends;
//! - [`grants`]: the grant service (lifecycle decisions + stored changes);
//! - [`access`]: the grant service as people reach it, behind `authorize`;
//! - [`clock`]: the injected clock;
//! - [`http`]: routes, health checks and the Leptos handler;
//! - [`telemetry`]: structured logs.

pub mod access;
pub mod auth;
pub mod clock;
pub mod config;
pub mod grants;
pub mod http;
pub mod store;
pub mod telemetry;

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
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// Everything the request handlers share.
#[derive(Debug, Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Arc<dyn store::Store>,
    pub clock: Arc<dyn Clock>,
    pub grants: grants::GrantService,
    /// Sign-in, sessions and the caller of each request.
    pub auth: auth::Auth,
    /// The grant operations people may call, each checked against the caller.
    pub access: access::GuardedGrants,
}

impl Services {
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
        let grants = grants::GrantService::new(store.clone(), clock.clone());
        let config = Arc::new(config);
        let auth = auth::Auth::start(config.clone(), clock.clone()).await?;
        let access = access::GuardedGrants::new(grants.clone(), auth.policy());
        Ok(Self {
            config,
            store,
            clock,
            grants,
            auth,
            access,
        })
    }
}

/// Binds, serves until `shutdown` resolves, then drains in-flight requests for at most
/// `server.shutdown_grace`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let addr = config.server.bind;
    let services = Services::start(config, Arc::new(SystemClock)).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    serve(services, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and read the address).
pub async fn serve(
    services: Services,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let grace = services.config.server.shutdown_grace;
    // Expired sessions are purged in the background for as long as the server runs.
    let purge = services
        .auth
        .sessions
        .spawn_purge(std::time::Duration::from_secs(5 * 60));
    let router = http::router(services)
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

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
