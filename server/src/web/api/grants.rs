//! Grants: the history and one's own (`GET /api/v1/grants`), asking for one
//! (`POST`), one grant's page, and the steps people take on a grant (approve, deny,
//! cancel, revoke, review, extend).

use super::extract::{ApiState, CurrentCaller, JsonBody, QueryParams};
use crate::web::error::{ApiResult, Refusals};
use app::api::backend::Backend;
use app::api::{given, GrantDetail, HistoryPage, HistoryQuery, RequestForm};
use app::domain::Grant;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

// The history's filters and these are read from the same query string by two
// extractors (serde's `flatten` cannot read numbers from a query string).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// `true`: the caller's own grants (any signed-in role); otherwise the history.
    #[serde(default)]
    mine: bool,
}

/// The history (approvers, auditors, admins) or, with mine=true, the caller's own
/// grants.
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants", params(MineQuery, HistoryQuery),
    responses((status = 200, description = "one page, newest first", body = HistoryPage), Refusals))]
pub async fn list_grants(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    QueryParams(m): QueryParams<MineQuery>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    if m.mine {
        let grants = s.dashboard.my_grants(&c).await?;
        return Ok(Json(HistoryPage { grants, next: None }));
    }
    Ok(Json(s.dashboard.history(&c, q).await?))
}

/// Ask for a grant.
#[utoipa::path(post, path = "/api/v1/grants", tag = "grants",
    description = "Requesters and admins, for themselves.", request_body = RequestForm,
    responses((status = 201, description = "the pending (or auto-approved) grant", body = Grant), Refusals))]
pub async fn create_grant(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    JsonBody(form): JsonBody<RequestForm>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let grant = s.dashboard.request_grant(&c, form).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// A grant with its approvals, audit trail and chain check.
#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "grants", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "the grant", body = GrantDetail), Refusals))]
pub async fn read_grant(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantDetail>> {
    Ok(Json(s.dashboard.grant(&c, &id).await?))
}

/// The optional comment (or reason) of a step on a grant.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Comment {
    #[serde(default, alias = "reason")]
    comment: Option<String>,
}

/// Declares a step on a grant that takes an optional comment and answers the grant
/// after the change: the handler, documented.
macro_rules! comment_step {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $who:literal,
     |$d:ident, $c:ident, $id:ident, $comment:ident| $call:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "grants", description = $who,
            params(("id" = uuid::Uuid, Path)), request_body(content = Comment, description = "optional"),
            responses((status = 200, description = "the grant after the change", body = Grant), Refusals))]
        pub async fn $name(
            State(s): State<ApiState>,
            CurrentCaller($c): CurrentCaller,
            Path($id): Path<String>,
            JsonBody(b): JsonBody<Comment>,
        ) -> ApiResult<Json<Grant>> {
            let ($d, $comment) = (&s.dashboard, given(b.comment));
            Ok(Json($call.await?))
        }
    };
}

comment_step!(
    /// Approve a pending request.
    approve, "/api/v1/grants/{id}/approve",
    "Approvers and admins, never the requester; MFA when configured.",
    |d, c, id, comment| d.decide(&c, &id, true, comment)
);
comment_step!(
    /// Deny a pending request.
    deny, "/api/v1/grants/{id}/deny", "Approvers and admins, never the requester.",
    |d, c, id, comment| d.decide(&c, &id, false, comment)
);
comment_step!(
    /// Withdraw a request before it starts.
    cancel, "/api/v1/grants/{id}/cancel", "The requester, or an admin.",
    |d, c, id, comment| d.cancel(&c, &id, comment)
);
comment_step!(
    /// End an active grant now.
    revoke, "/api/v1/grants/{id}/revoke",
    "The requester (\"I'm done\"), approvers and admins.",
    |d, c, id, comment| d.revoke(&c, &id, comment)
);
comment_step!(
    /// Record the review of a break-glass grant.
    review, "/api/v1/grants/{id}/review",
    "Approvers named by its policy, auditors and admins; never its requester.",
    |d, c, id, comment| d.review(&c, &id, comment)
);

// Missing values read as empty: the backend checks the caller first, then names
// the wrong field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// `1h`, `90m`, `1h30m`.
    #[serde(default)]
    #[schema(examples("1h"))]
    duration: String,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    ticket: String,
}

/// Ask for more time on one's own approved or active grant.
#[utoipa::path(post, path = "/api/v1/grants/{id}/extend", tag = "grants",
    params(("id" = uuid::Uuid, Path)), request_body = Extension,
    responses((status = 201, description = "the extension request", body = Grant), Refusals))]
pub async fn extend(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Extension>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let grant = s
        .dashboard
        .extend(&c, &id, b.duration, b.justification, b.ticket)
        .await?;
    Ok((StatusCode::CREATED, Json(grant)))
}
