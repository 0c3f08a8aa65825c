//! `GET /grants/{id}/evidence.json` and `GET /grants/{id}/evidence.html`: the evidence
//! pack of one grant, for callers allowed to read that grant
//! ([`Operation::ReadGrant`](app::domain::Operation::ReadGrant)). Refusals are the
//! API's errors (`crate::web::error`): 401 before sign-in, 403 for someone else's
//! grant without an auditor or admin role, 404 for no such grant.

use crate::auth::caller::CurrentCaller;
use crate::auth::guard::CspNonce;
use crate::evidence::pack::{self, PackHeader};
use crate::services::{Access, AccessError};
use crate::store::Store;
use crate::web::error::{internal, ApiFailure, Refusals};
use app::api::{ApiError, ErrorCode};
use app::domain::{Caller, Denied, GrantId, Operation};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The evidence routes with their documentation.
pub fn routes() -> OpenApiRouter<Access> {
    OpenApiRouter::new()
        .routes(routes!(evidence_json))
        .routes(routes!(evidence_html))
}

/// The evidence routes on the handle factory.
pub fn router(access: Access) -> Router {
    routes().split_for_parts().0.with_state(access)
}

/// The pack's header, and the store its events stream from.
async fn prepare(
    access: &Access,
    caller: &Caller,
    id: &str,
) -> Result<(PackHeader, Arc<dyn Store>), ApiFailure> {
    let id = match GrantId::parse(id) {
        Ok(id) => id,
        // Anonymous callers learn nothing, not even that the id is malformed; others
        // learn that there is no such grant.
        Err(_) if !caller.is_signed_in() => {
            return Err(AccessError::Denied(Denied::SignInRequired).into())
        }
        Err(_) => return Err(ApiError::new(ErrorCode::NotFound, "no such grant").into()),
    };
    let source = access
        .reader(caller, Operation::ReadGrant)?
        .evidence_pack(id)
        .await?;
    let header = pack::header(
        source.store.as_ref(),
        source.source,
        source.grant,
        source.generated_for,
        source.now,
        source.checkpoint_key.as_ref(),
    )
    .await?;
    Ok((header, source.store))
}

/// The files of the pack are never cached.
fn pack_response(content_type: &'static str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The evidence pack of a grant as one JSON document, its events streamed.
#[utoipa::path(get, path = "/grants/{id}/evidence.json", tag = "evidence",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "the evidence pack (format timebox-evidence-pack/1)",
        content_type = "application/json", body = Object), Refusals))]
async fn evidence_json(
    State(access): State<Access>,
    CurrentCaller(caller): CurrentCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    let (header, store) = prepare(&access, &caller, &id).await?;
    let stream = pack::json_stream(store, &header)
        .map_err(|e| internal("the evidence pack could not be made", &e))?;
    Ok(pack_response("application/json", Body::from_stream(stream)))
}

/// The evidence pack of a grant as a printable HTML page.
#[utoipa::path(get, path = "/grants/{id}/evidence.html", tag = "evidence",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "the evidence pack, printable", content_type = "text/html"),
        Refusals))]
async fn evidence_html(
    State(access): State<Access>,
    CurrentCaller(caller): CurrentCaller,
    Path(id): Path<String>,
    nonce: Option<Extension<CspNonce>>,
) -> Result<Response, ApiFailure> {
    let (header, store) = prepare(&access, &caller, &id).await?;
    let nonce = nonce.map(|Extension(CspNonce(n))| n).unwrap_or_default();
    Ok(pack_response(
        "text/html; charset=utf-8",
        Body::from_stream(pack::html_stream(store, &header, &nonce)),
    ))
}
