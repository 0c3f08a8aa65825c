//! Routes: health checks, sign-in (`/auth/…`), server functions (`/api/…`), then the
//! Leptos app (server-rendered pages, hydration assets). No business rule lives here:
//! handlers call one service method and map the result.
//!
//! Every request passes, outermost first: tracing, the security headers (with a CSP
//! nonce), the cross-site check on state-changing methods, the session, and the
//! caller's resolution (see [`crate::auth`]).

use crate::auth::caller::resolve_caller;
use crate::auth::guard::{refuse_cross_site, security_headers, CspNonce, GuardSettings};
use crate::auth::Auth;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::services::{Access, Dashboard};
use crate::store::Store;
use app::api::backend::SharedBackend;
use app::domain::Caller;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde_json::json;
use std::sync::Arc;

/// What the routes are given at start-up (and nothing else).
#[derive(Debug, Clone)]
pub struct Web {
    /// The role-scoped handles: the dashboard's backend, the JSON API and the
    /// evidence routes act through them.
    pub access: Access,
    /// Sign-in, sessions and the caller of each request.
    pub auth: Auth,
    /// `/readyz` and `/metrics`.
    pub health: Health,
    pub config: Arc<Config>,
}

/// What the health checks and the metrics page read.
#[derive(Debug, Clone)]
pub struct Health {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Health {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { store, metrics }
    }
}

/// State for the routes: the sign-in (for the Leptos context), the dashboard's backend
/// (built once, shared by pages, server functions and `/api/v1`), the health checks,
/// and Leptos's options for the page handlers.
#[derive(Debug, Clone, axum::extract::FromRef)]
pub struct AppState {
    pub auth: Auth,
    pub backend: SharedBackend,
    pub health: Health,
    pub leptos_options: LeptosOptions,
}

pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("timebox")
        .site_root(config.server.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.server.bind)
        .build()
}

pub fn router(web: Web) -> Router {
    let Web {
        access,
        auth,
        health,
        config,
    } = web;
    let leptos_options = leptos_options(&config);
    let routes = generate_route_list(App);
    let dashboard = Dashboard::new(access.clone());
    let backend: SharedBackend = Arc::new(dashboard.clone());
    let state = AppState {
        auth: auth.clone(),
        backend: backend.clone(),
        health,
        leptos_options: leptos_options.clone(),
    };
    let context = (auth.clone(), backend);
    let guard = Arc::new(GuardSettings::new(
        &config.server.public_url,
        auth.oidc.iter().map(|o| o.issuer_origin()).collect(),
    ));
    let sessions = auth.sessions.layer(&config.session);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/{*fn_name}", post(server_functions))
        .route("/metrics", get(metrics))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_request_context(&context.0, &context.1),
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
        .merge(crate::evidence::routes::router().with_state(access.clone()))
        .merge(crate::api_v1::router(
            access,
            dashboard,
            config.server.public_url.clone(),
        ))
        .merge(crate::auth::routes::router().with_state(auth.clone()))
        .layer(axum::middleware::from_fn_with_state(auth, resolve_caller))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            security_headers,
        ))
        .layer(
            // The path only: a query string can hold a sign-in code or state.
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<Body>| {
                    tracing::debug_span!(
                        "request",
                        method = %request.method(),
                        path = request.uri().path()
                    )
                },
            ),
        )
}

/// What every page and server function finds in its Leptos context: the backend,
/// the viewer (the caller resolved for this request) and this response's CSP nonce.
fn provide_request_context(auth: &Auth, backend: &SharedBackend) {
    provide_context(backend.clone());
    let parts = use_context::<axum::http::request::Parts>();
    let caller = parts
        .as_ref()
        .and_then(|p| p.extensions.get::<Caller>().cloned())
        .unwrap_or(Caller::Anonymous);
    provide_context(auth.viewer(&caller));
    provide_context(caller);
    if let Some(CspNonce(nonce)) = parts.as_ref().and_then(|p| p.extensions.get::<CspNonce>()) {
        // The same nonce as the Content-Security-Policy header of this response.
        provide_context(leptos::nonce::Nonce::from_value(nonce.clone()));
    }
}

/// Leptos server functions (`/api/<name>`), with the same context as the pages.
async fn server_functions(
    State(auth): State<Auth>,
    State(backend): State<SharedBackend>,
    request: Request<Body>,
) -> Response {
    leptos_axum::handle_server_fns_with_context(
        move || provide_request_context(&auth, &backend),
        request,
    )
    .await
    .into_response()
}

/// The process is up and serving.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The database answers. 503 with the reason otherwise, so a load balancer stops
/// sending traffic to this replica.
async fn readyz(State(health): State<Health>) -> Response {
    match health.store.ping().await {
        Ok(()) => Json(json!({ "status": "ready", "database": "ok" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "not_ready",
                    "error": { "code": "database_unreachable", "message": "the database does not answer" }
                })),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics. Grants by state are counted at scrape time, so they are right
/// even on a replica whose reaper is off.
async fn metrics(State(health): State<Health>) -> Response {
    match health.store.grant_counts().await {
        Ok(counts) => health.metrics.set_grant_counts(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count grants for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        health.metrics.render(),
    )
        .into_response()
}
