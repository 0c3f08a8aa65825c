//! The JSON API, `/api/v1/…`: the dashboard's operations for automation and a
//! command-line client, described by the OpenAPI document at
//! `/api/v1/openapi.json`, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they exchange. Every handler resolves the caller (the
//! session cookie, as for the pages) and calls one [`app::api::backend::Backend`]
//! method, so the API is guarded by exactly the checks the pages are. Errors are
//! `{ "error": { "code", "message", "field"? } }` (`crate::web::error`).
//!
//! State-changing calls (POST) must carry `Origin: <server.public_url>` like the
//! browser does (the cross-site check in [`crate::auth::guard`]).
//!
//! By resource: [`grants`] (the history, one grant, the steps on it), [`export`],
//! [`inbox`] (the inbox, active now, live events), [`catalog`] (request options,
//! the admin's views); [`extract`] holds the state and the extractors.

pub mod catalog;
pub mod export;
pub mod extract;
pub mod grants;
pub mod inbox;

pub use extract::ApiState;

use crate::web::error::ApiFailure;
use app::api::{ApiError, ErrorCode};
use app::domain::Caller;
use axum::extract::State;
use axum::{Json, Router};
use extract::CurrentCaller;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The API's routes, each registered with its documentation (so the router and the
/// document cannot disagree).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .routes(routes!(me))
        .routes(routes!(catalog::request_options))
        .routes(routes!(catalog::other_paths))
        .routes(routes!(grants::list_grants, grants::create_grant))
        .routes(routes!(export::export))
        .routes(routes!(grants::read_grant))
        .routes(routes!(grants::approve))
        .routes(routes!(grants::deny))
        .routes(routes!(grants::cancel))
        .routes(routes!(grants::revoke))
        .routes(routes!(grants::extend))
        .routes(routes!(grants::review))
        .routes(routes!(inbox::inbox))
        .routes(routes!(inbox::active))
        .routes(routes!(catalog::admin_status))
        .routes(routes!(catalog::audit_log))
        .routes(routes!(catalog::verify_audit, catalog::audit_verification))
        .routes(routes!(catalog::sync_catalog))
        .routes(routes!(catalog::policies))
        .routes(routes!(inbox::events))
}

/// The API on its state, with a JSON 404 for any other `/api/v1/…` path.
pub fn router(state: ApiState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .with_state(state)
}

async fn not_found() -> ApiFailure {
    ApiFailure(ApiError::new(
        ErrorCode::NotFound,
        "no such API route; see /api/v1/openapi.json",
    ))
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "caller",
    responses((status = 200, description = "the caller", body = Caller)))]
async fn me(CurrentCaller(caller): CurrentCaller) -> Json<Caller> {
    Json(caller)
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "caller",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
async fn openapi(State(s): State<ApiState>) -> Json<utoipa::openapi::OpenApi> {
    Json(s.openapi.as_ref().clone())
}
