//! `/healthz` (the process is up), `/readyz` (the database answers) and `/metrics`
//! (Prometheus), for load balancers and monitoring; no sign-in.

use crate::metrics::Metrics;
use crate::store::Store;
use app::api::{ApiError, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

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

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
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
            let error = ApiError::new(
                ErrorCode::DatabaseUnreachable,
                "the database does not answer",
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not_ready", "error": error })),
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
