//! `GET /grants/{id}/evidence.json` and `GET /grants/{id}/evidence.html`: the evidence
//! pack of one grant, for callers allowed to read that grant
//! ([`Operation::ReadGrant`](app::domain::Operation::ReadGrant)). Refusals use the
//! API's error shape `{ "error": { "code", "message" } }`: 401 before sign-in, 403
//! for someone else's grant without an auditor or admin role, 404 for no such grant.

use crate::services::evidence::EvidencePack;
use crate::services::{Access, AccessError, GrantError};
use app::domain::{Caller, Denied, GrantId, Operation};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};

/// The evidence routes, merged into [`crate::http::router`].
pub fn router() -> Router<Access> {
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
        other => {
            tracing::error!(error = %other, "cannot gather an evidence pack");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the evidence pack could not be made; try again",
            )
        }
    }
}

async fn prepare(access: &Access, caller: &Caller, id: &str) -> Result<EvidencePack, Response> {
    let id = match GrantId::parse(id) {
        Ok(id) => id,
        // Anonymous callers learn nothing, not even that the id is malformed.
        Err(_) if !caller.is_signed_in() => {
            return Err(refusal(&AccessError::Denied(Denied::SignInRequired)))
        }
        Err(_) => return Err(error(StatusCode::NOT_FOUND, "not_found", "no such grant")),
    };
    let pack = async {
        access
            .reader(caller, Operation::ReadGrant)?
            .evidence_pack(id)
            .await
    };
    pack.await.map_err(|e| refusal(&e))
}

fn caller_of(caller: Option<Extension<Caller>>) -> Caller {
    caller.map_or(Caller::Anonymous, |Extension(c)| c)
}

async fn evidence_json(
    State(access): State<Access>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_of(caller);
    let pack = match prepare(&access, &caller, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match pack.json() {
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
    State(access): State<Access>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_of(caller);
    let pack = match prepare(&access, &caller, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(pack.html()),
    )
        .into_response()
}
