//! What may be asked for (`/api/v1/request-options`, `/api/v1/other-paths`) and the
//! admin's views of the catalog, the reaper and the policies; the audit log and its
//! verification on demand.

use super::extract::{ApiState, CurrentCaller, QueryParams};
use crate::web::error::{ApiResult, Refusals};
use app::api::backend::Backend;
use app::api::{
    AdminStatus, AuditPage, AuditQuery, CatalogStatus, OtherPath, PoliciesView, PolicyQuery,
    RequestOptions, VerificationView,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// Accounts, permission sets and what the caller may ask for.
#[utoipa::path(get, path = "/api/v1/request-options", tag = "catalog",
    description = "Requesters and admins.",
    responses((status = 200, description = "the options", body = RequestOptions), Refusals))]
pub async fn request_options(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<Json<RequestOptions>> {
    Ok(Json(s.dashboard.request_options(&c).await?))
}

// Missing values are the backend's to refuse (after the caller is checked).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OtherPathsQuery {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    permission_set: String,
}

/// Other ways the caller already reaches an access.
#[utoipa::path(get, path = "/api/v1/other-paths", tag = "catalog", params(OtherPathsQuery),
    responses((status = 200, description = "group or standing assignments", body = Vec<OtherPath>), Refusals))]
pub async fn other_paths(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    QueryParams(q): QueryParams<OtherPathsQuery>,
) -> ApiResult<Json<Vec<OtherPath>>> {
    Ok(Json(
        s.dashboard
            .other_paths(&c, &q.account_id, &q.permission_set)
            .await?,
    ))
}

/// Catalog, reaper health, drift reports (admins).
#[utoipa::path(get, path = "/api/v1/admin/status", tag = "admin",
    responses((status = 200, description = "the status", body = AdminStatus), Refusals))]
pub async fn admin_status(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<Json<AdminStatus>> {
    Ok(Json(s.dashboard.admin_status(&c).await?))
}

/// The audit log, newest first, filtered, with the chain's latest signed checkpoint
/// (auditors and admins). Page with `before` = the previous page's `next`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "a page of the audit log", body = AuditPage), Refusals))]
pub async fn audit_log(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    Ok(Json(s.dashboard.audit_log(&c, q).await?))
}

/// Verify the whole audit record in the background (auditors and admins): every
/// event, link and signed checkpoint, then every grant row against its events. One
/// at a time (`verification_running` while one is queued or running); poll `GET` for
/// its progress and result.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 202, description = "the verification, queued", body = VerificationView), Refusals))]
pub async fn verify_audit(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<(StatusCode, Json<VerificationView>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(s.dashboard.verify_audit(&c).await?),
    ))
}

/// The last verification asked for, with its progress or result (auditors and
/// admins); `null` when none was ever asked for.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "the last verification", body = Option<VerificationView>), Refusals))]
pub async fn audit_verification(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<Json<Option<VerificationView>>> {
    Ok(Json(s.dashboard.audit_verification(&c).await?))
}

/// Re-read the catalog from Identity Center now (admins).
#[utoipa::path(post, path = "/api/v1/admin/catalog/sync", tag = "admin",
    responses((status = 200, description = "the catalog's state", body = CatalogStatus), Refusals))]
pub async fn sync_catalog(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<Json<CatalogStatus>> {
    Ok(Json(s.dashboard.sync_catalog(&c).await?))
}

/// The policies in force, the file's reload status, and who can request what,
/// approved by whom (admins).
#[utoipa::path(get, path = "/api/v1/admin/policies", tag = "admin", params(PolicyQuery),
    responses((status = 200, description = "policies and the answer", body = PoliciesView), Refusals))]
pub async fn policies(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    QueryParams(q): QueryParams<PolicyQuery>,
) -> ApiResult<Json<PoliciesView>> {
    Ok(Json(s.dashboard.policies(&c, q).await?))
}
