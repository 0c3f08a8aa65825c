//! Routes: health checks, sign-in (`/auth/…`), server functions (`/api/…`), then the
//! Leptos app (server-rendered pages, hydration assets). No business rule lives here:
//! handlers call one service method and map the result.
//!
//! Every request passes, outermost first: tracing, the security headers (with a CSP
//! nonce), the cross-site check on state-changing methods, the session, and the
//! caller's resolution (see [`crate::auth`]).

use crate::auth::caller::resolve_caller;
use crate::auth::guard::{refuse_cross_site, security_headers, CspNonce, GuardSettings};
use crate::Services;
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

/// State for the routes: the services, the dashboard's backend (built once, shared by
/// pages, server functions and `/api/v1`), and Leptos's options for the page handlers.
#[derive(Debug, Clone, axum::extract::FromRef)]
pub struct AppState {
    pub services: Services,
    pub backend: SharedBackend,
    pub leptos_options: LeptosOptions,
}

pub fn leptos_options(services: &Services) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("timebox")
        .site_root(services.config.server.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(services.config.server.bind)
        .build()
}

pub fn router(services: Services) -> Router {
    let leptos_options = leptos_options(&services);
    let routes = generate_route_list(App);
    let dashboard = crate::dashboard::Dashboard::new(services.clone());
    let backend: SharedBackend = Arc::new(dashboard.clone());
    let state = AppState {
        services: services.clone(),
        backend: backend.clone(),
        leptos_options: leptos_options.clone(),
    };
    let context = (services.clone(), backend);
    let auth = services.auth.clone();
    let guard = Arc::new(GuardSettings::new(
        &services.config.server.public_url,
        auth.oidc.iter().map(|o| o.issuer_origin()).collect(),
    ));
    let sessions = auth.sessions.layer(&services.config.session);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/{*fn_name}", post(server_functions))
        .route("/metrics", get(metrics))
        .merge(crate::evidence::routes::router())
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
        .merge(crate::api_v1::router(services.clone(), dashboard))
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

/// What every page and server function finds in its Leptos context: the services,
/// the viewer (the caller resolved for this request) and this response's CSP nonce.
fn provide_request_context(services: &Services, backend: &SharedBackend) {
    provide_context(services.clone());
    provide_context(backend.clone());
    let parts = use_context::<axum::http::request::Parts>();
    let caller = parts
        .as_ref()
        .and_then(|p| p.extensions.get::<Caller>().cloned())
        .unwrap_or(Caller::Anonymous);
    provide_context(services.auth.viewer(&caller));
    provide_context(caller);
    if let Some(CspNonce(nonce)) = parts.as_ref().and_then(|p| p.extensions.get::<CspNonce>()) {
        // The same nonce as the Content-Security-Policy header of this response.
        provide_context(leptos::nonce::Nonce::from_value(nonce.clone()));
    }
}

/// Leptos server functions (`/api/<name>`), with the same context as the pages.
async fn server_functions(
    State(services): State<Services>,
    State(backend): State<SharedBackend>,
    request: Request<Body>,
) -> Response {
    leptos_axum::handle_server_fns_with_context(
        move || provide_request_context(&services, &backend),
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
async fn readyz(State(services): State<Services>) -> Response {
    match services.store.ping().await {
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
async fn metrics(State(services): State<Services>) -> Response {
    match services.store.grant_counts().await {
        Ok(counts) => services.metrics.set_grant_counts(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count grants for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        services.metrics.render(),
    )
        .into_response()
}
