//! Routes: health checks, then the Leptos app (server-rendered pages, hydration assets).
//! No business rule lives here: handlers call one service method and map the result.

use crate::Services;
use app::{shell, App};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde_json::json;

/// State for the routes: the services, and Leptos's options for the page handlers.
#[derive(Debug, Clone, axum::extract::FromRef)]
pub struct AppState {
    pub services: Services,
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
    let state = AppState {
        services: services.clone(),
        leptos_options: leptos_options.clone(),
    };
    let context_services = services.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_services.clone()),
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
