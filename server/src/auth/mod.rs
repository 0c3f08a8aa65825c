//! Timebox's front door: OpenID Connect sign-in, the browser session, the caller
//! resolved once per request, and the checks every request passes.
//!
//! - [`oidc`]: the provider (discovery, authorization-code flow with PKCE, ID-token
//!   verification, end-session URL), over an HTTP client that never follows redirects;
//! - [`session`]: tower-sessions on a store in Timebox's own database; what a session
//!   holds (a pending sign-in, then the signed-in person);
//! - [`caller`]: resolves the session into an [`app::domain::Caller`] once per request;
//! - [`limiter`]: failed callbacks counted per client address;
//! - [`guard`]: the cross-site check on state-changing requests and the security
//!   headers (nonce-based CSP) on every response.
//!
//! Rule: tokens, codes, state, nonces, cookies and secrets are never logged; handlers
//! are `#[tracing::instrument(skip_all)]` and log only reason codes.

pub mod caller;
pub mod guard;
pub mod limiter;
pub mod oidc;
pub mod session;

use crate::clock::Clock;
use crate::config::Config;
use app::domain::AccessPolicy;
use std::sync::Arc;

/// Why the sign-in machinery could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthStartError {
    #[error("cannot prepare the session store in the database {url}: {source}")]
    SessionStore { url: String, source: sqlx::Error },
    #[error("cannot build the HTTP client for the OpenID provider: {0}")]
    HttpClient(reqwest::Error),
    #[error("oidc.issuer {0:?} is not a usable issuer URL")]
    Issuer(String),
}

/// Everything sign-in needs, shared by the routes and the middleware.
#[derive(Debug, Clone)]
pub struct Auth {
    /// `None` when `[oidc]` is not configured: nobody can sign in.
    pub oidc: Option<Arc<oidc::Oidc>>,
    pub sessions: session::DbSessionStore,
    pub limiter: Arc<limiter::FailureLimiter>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// One group refresh at a time (a refresh token may be single-use).
    pub refreshing: Arc<tokio::sync::Mutex<()>>,
    /// One replica at a time refreshes a session ([`Auth::with_refresh_leases`]);
    /// `None`: this process is the only one.
    pub refresh_leases: Option<crate::jobs::Leases>,
}

impl Auth {
    /// Prepares the session store (its table lives in Timebox's database, so sessions
    /// survive a restart) and the OpenID provider client. The provider itself is
    /// contacted lazily, at the first sign-in, so Timebox starts while it is down.
    pub async fn start(config: Arc<Config>, clock: Arc<dyn Clock>) -> Result<Self, AuthStartError> {
        let sessions =
            session::DbSessionStore::connect(&config.database, &config.session, clock.clone())
                .await?;
        let oidc = match &config.oidc {
            Some(settings) => Some(Arc::new(oidc::Oidc::new(settings.clone(), clock.clone())?)),
            None => None,
        };
        Ok(Self {
            oidc,
            sessions,
            limiter: Arc::new(limiter::FailureLimiter::default()),
            config,
            clock,
            refreshing: Arc::default(),
            refresh_leases: None,
        })
    }

    /// Replicas sharing the database refresh a session one at a time, under leases
    /// in that database (`session-refresh|<digest of the session id>`): the others
    /// wait for the re-check to land in the session rather than spend the same
    /// refresh token, which a provider that rotates them answers by ending the
    /// session.
    #[must_use]
    pub fn with_refresh_leases(mut self, leases: crate::jobs::Leases) -> Self {
        self.refresh_leases = Some(leases);
        self
    }

    /// The configuration-dependent part of the authorization rules.
    pub fn policy(&self) -> AccessPolicy {
        AccessPolicy {
            approvers_need_mfa: self
                .config
                .oidc
                .as_ref()
                .is_some_and(|o| o.approvers_need_mfa),
        }
    }
}
