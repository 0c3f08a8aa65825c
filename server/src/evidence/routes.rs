//! `GET /grants/{id}/evidence.json` and `GET /grants/{id}/evidence.html`: the evidence
//! pack of one grant, for callers allowed to read that grant
//! ([`Operation::ReadGrant`](app::domain::Operation::ReadGrant)). Refusals use the
//! API's error shape `{ "error": { "code", "message" } }`: 401 before sign-in, 403
//! for someone else's grant without an auditor or admin role, 404 for no such grant.

use super::pack::{self, PackHeader};
use crate::services::{Access, AccessError, GrantError};
use crate::store::Store;
use app::domain::{Caller, Denied, GrantId, Operation};
use axum::body::Body;
use axum::extract::{MatchedPath, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use std::sync::Arc;

/// The evidence routes, merged into [`crate::http::router`].
pub fn router() -> Router<Access> {
    Router::new()
        .route("/grants/{id}/evidence.json", get(evidence))
        .route("/grants/{id}/evidence.html", get(evidence))
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

/// The pack's header, and the store its events stream from.
async fn prepare(
    access: &Access,
    caller: &Caller,
    id: &str,
) -> Result<(PackHeader, Arc<dyn Store>), Response> {
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
    let source = pack.await.map_err(|e| refusal(&e))?;
    let header = pack::header(
        source.store.as_ref(),
        source.source,
        source.grant,
        source.generated_for,
        source.now,
    )
    .await
    .map_err(|e| refusal(&AccessError::from(e)))?;
    Ok((header, source.store))
}

/// Both files of the pack: the route says which.
async fn evidence(
    State(access): State<Access>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
    route: MatchedPath,
) -> Response {
    let caller = caller.map_or(Caller::Anonymous, |Extension(c)| c);
    let (header, store) = match prepare(&access, &caller, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (content_type, body) = if route.as_str().ends_with(".json") {
        match pack::json_stream(store, &header) {
            Ok(stream) => ("application/json", Body::from_stream(stream)),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an evidence pack");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the evidence pack could not be made; try again",
                );
            }
        }
    } else {
        (
            "text/html; charset=utf-8",
            Body::from_stream(pack::html_stream(store, &header)),
        )
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
