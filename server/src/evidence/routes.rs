//! `GET /grants/{id}/evidence.json` and `GET /grants/{id}/evidence.html`: the evidence
//! pack of one grant, for callers allowed to read that grant
//! ([`Operation::ReadGrant`](app::domain::Operation::ReadGrant)). Refusals use the
//! API's error shape `{ "error": { "code", "message" } }`: 401 before sign-in, 403
//! for someone else's grant without an auditor or admin role, 404 for no such grant.

use super::pack;
use crate::access::AccessError;
use crate::grants::GrantError;
use crate::http::AppState;
use crate::Services;
use app::domain::{Caller, Denied, GrantId};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};

/// The evidence routes, merged into [`crate::http::router`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/grants/{id}/evidence.json", get(evidence_json))
        .route("/grants/{id}/evidence.html", get(evidence_html))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn refusal(e: &AccessError) -> Response {
    match e {
        AccessError::Denied(d @ Denied::SignInRequired) => {
            error(StatusCode::UNAUTHORIZED, d.code(), &d.to_string())
        }
        AccessError::Denied(d) => error(StatusCode::FORBIDDEN, d.code(), &d.to_string()),
        AccessError::Grant(GrantError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "not_found", "no such grant")
        }
        AccessError::Grant(other) => {
            tracing::error!(error = %other, "cannot read the grant for an evidence pack");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the evidence pack could not be made; try again",
            )
        }
    }
}

async fn prepare(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<pack::PackHeader, Response> {
    let id = match GrantId::parse(id) {
        Ok(id) => id,
        // Anonymous callers learn nothing, not even that the id is malformed.
        Err(_) if !caller.is_signed_in() => {
            return Err(refusal(&AccessError::Denied(Denied::SignInRequired)))
        }
        Err(_) => return Err(error(StatusCode::NOT_FOUND, "not_found", "no such grant")),
    };
    let grant = services
        .evidence
        .access()
        .read(caller, id)
        .await
        .map_err(|e| refusal(&e))?;
    let generated_for = match caller {
        Caller::Person { id, name, .. } => format!("{name} ({id})"),
        Caller::Anonymous => "anonymous".to_owned(),
    };
    pack::header(
        services.store.as_ref(),
        services.evidence.source(),
        grant,
        generated_for,
        services.clock.now(),
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "cannot gather an evidence pack");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the evidence pack could not be made; try again",
        )
    })
}

fn caller_of(caller: Option<Extension<Caller>>) -> Caller {
    caller.map_or(Caller::Anonymous, |Extension(c)| c)
}

async fn evidence_json(
    State(services): State<Services>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_of(caller);
    let header = match prepare(&services, &caller, &id).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    match pack::json_stream(services.store.clone(), &header) {
        Ok(stream) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            Body::from_stream(stream),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise an evidence pack");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the evidence pack could not be made; try again",
            )
        }
    }
}

async fn evidence_html(
    State(services): State<Services>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_of(caller);
    let header = match prepare(&services, &caller, &id).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(pack::html_stream(services.store.clone(), &header)),
    )
        .into_response()
}
