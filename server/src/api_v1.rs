//! The JSON API, `/api/v1/…`: the dashboard's operations for automation and a
//! command-line client, described by the OpenAPI document at
//! `/api/v1/openapi.json`. Every handler resolves the caller (the session cookie,
//! as for the pages) and calls one [`Backend`] method, so the API is guarded by
//! exactly the checks the pages are. Errors are
//! `{ "error": { "code", "message", "field"? } }` with a 4xx status for every bad
//! input; see [`ApiError::status`].
//!
//! State-changing calls (POST) must carry `Origin: <server.public_url>` like the
//! browser does (the cross-site check in [`crate::auth::guard`]).

use crate::services::{Access, Dashboard, GrantChange};
use app::api::backend::Backend;
use app::api::{given, ApiError, HistoryQuery, RequestForm};
use app::domain::{authorize, Caller, Grant, Operation};
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;

/// What the API routes share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub dashboard: Dashboard,
    /// For the live event stream.
    pub access: Access,
    pub public_url: String,
}

/// An [`ApiError`] as an HTTP response.
#[derive(Debug)]
pub struct ApiFailure(pub ApiError);

impl From<ApiError> for ApiFailure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "error": self.0 }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiFailure>;

/// The request's caller, as the session layer resolved it.
#[derive(Debug)]
pub struct Who(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Who(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Anonymous)))
    }
}

/// A JSON body whose rejection is an [`ApiError`] (400, with serde's reason).
#[derive(Debug)]
pub struct Body_<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body_<T> {
    type Rejection = ApiFailure;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body_(v)),
            Err(e) => Err(ApiFailure(json_rejection(e))),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            "bad_request",
            "send the body as JSON with Content-Type: application/json",
        ),
        other => ApiError::new(
            "bad_request",
            format!("the JSON body is not valid: {}", other.body_text()),
        ),
    }
}

/// Query parameters whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => Err(ApiFailure(query_rejection(e))),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::new(
        "bad_request",
        format!("the query string is not valid: {}", e.body_text()),
    )
}

pub fn router(access: Access, dashboard: Dashboard, public_url: String) -> Router {
    let state = ApiState {
        dashboard,
        access,
        public_url,
    };
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route("/api/v1/request-options", get(request_options))
        .route("/api/v1/other-paths", get(other_paths))
        .route("/api/v1/grants", get(list_grants).post(create_grant))
        .route("/api/v1/grants/export", get(export))
        .route("/api/v1/grants/{id}", get(read_grant))
        .route("/api/v1/grants/{id}/approve", post(approve))
        .route("/api/v1/grants/{id}/deny", post(deny))
        .route("/api/v1/grants/{id}/cancel", post(cancel))
        .route("/api/v1/grants/{id}/revoke", post(revoke))
        .route("/api/v1/grants/{id}/extend", post(extend))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/active", get(active))
        .route("/api/v1/admin/status", get(admin_status))
        .route("/api/v1/admin/catalog/sync", post(sync_catalog))
        .route("/api/v1/admin/policies", get(policies))
        .route("/api/v1/grants/{id}/review", post(review))
        .route("/api/v1/events", get(events))
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .with_state(state)
}

async fn not_found() -> ApiFailure {
    ApiFailure(ApiError::new(
        "not_found",
        "no such API route; see /api/v1/openapi.json",
    ))
}

async fn me(Who(caller): Who) -> Json<Caller> {
    Json(caller)
}

async fn request_options(State(s): State<ApiState>, Who(c): Who) -> ApiResult<Response> {
    Ok(Json(s.dashboard.request_options(&c).await?).into_response())
}

// Missing values are the backend's to refuse (after the caller is checked).
#[derive(Debug, Deserialize)]
struct OtherPathsQuery {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    permission_set: String,
}

async fn other_paths(
    State(s): State<ApiState>,
    Who(c): Who,
    Params(q): Params<OtherPathsQuery>,
) -> ApiResult<Response> {
    Ok(Json(
        s.dashboard
            .other_paths(&c, &q.account_id, &q.permission_set)
            .await?,
    )
    .into_response())
}

// The history's filters and these are read from the same query string by two
// extractors (serde's `flatten` cannot read numbers from a query string).
#[derive(Debug, Deserialize)]
struct MineQuery {
    /// `true`: the caller's own grants (any signed-in role); otherwise the history.
    #[serde(default)]
    mine: bool,
}

async fn list_grants(
    State(s): State<ApiState>,
    Who(c): Who,
    Params(m): Params<MineQuery>,
    Params(q): Params<HistoryQuery>,
) -> ApiResult<Response> {
    if m.mine {
        let grants = s.dashboard.my_grants(&c).await?;
        return Ok(Json(json!({ "grants": grants, "next": null })).into_response());
    }
    Ok(Json(s.dashboard.history(&c, q).await?).into_response())
}

async fn create_grant(
    State(s): State<ApiState>,
    Who(c): Who,
    Body_(form): Body_<RequestForm>,
) -> ApiResult<Response> {
    let grant = s.dashboard.request_grant(&c, form).await?;
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

async fn read_grant(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.dashboard.grant(&c, &id).await?).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comment {
    #[serde(default, alias = "reason")]
    comment: Option<String>,
}

async fn approve(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
    Body_(b): Body_<Comment>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(
        s.dashboard.decide(&c, &id, true, given(b.comment)).await?,
    ))
}

async fn deny(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
    Body_(b): Body_<Comment>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(
        s.dashboard.decide(&c, &id, false, given(b.comment)).await?,
    ))
}

async fn cancel(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
    Body_(b): Body_<Comment>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(s.dashboard.cancel(&c, &id, given(b.comment)).await?))
}

async fn revoke(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
    Body_(b): Body_<Comment>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(s.dashboard.revoke(&c, &id, given(b.comment)).await?))
}

// Missing values read as empty: the backend checks the caller first, then names
// the wrong field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extension {
    #[serde(default)]
    duration: String,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    ticket: String,
}

async fn extend(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
    Body_(b): Body_<Extension>,
) -> ApiResult<Response> {
    let grant = s
        .dashboard
        .extend(&c, &id, b.duration, b.justification, b.ticket)
        .await?;
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

async fn inbox(State(s): State<ApiState>, Who(c): Who) -> ApiResult<Response> {
    Ok(Json(s.dashboard.inbox(&c).await?).into_response())
}

async fn active(State(s): State<ApiState>, Who(c): Who) -> ApiResult<Response> {
    Ok(Json(s.dashboard.active_now(&c).await?).into_response())
}

async fn admin_status(State(s): State<ApiState>, Who(c): Who) -> ApiResult<Response> {
    Ok(Json(s.dashboard.admin_status(&c).await?).into_response())
}

async fn policies(
    State(s): State<ApiState>,
    Who(c): Who,
    Params(q): Params<app::api::PolicyQuery>,
) -> ApiResult<Response> {
    Ok(Json(s.dashboard.policies(&c, q).await?).into_response())
}

async fn review(
    State(s): State<ApiState>,
    Who(c): Who,
    Path(id): Path<String>,
    Body_(b): Body_<Comment>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(s.dashboard.review(&c, &id, given(b.comment)).await?))
}

async fn sync_catalog(State(s): State<ApiState>, Who(c): Who) -> ApiResult<Response> {
    Ok(Json(s.dashboard.sync_catalog(&c).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// Rows read per page while exporting.
const EXPORT_PAGE: u32 = 500;

/// The filtered history as CSV or JSON, streamed page by page (keyset), so an
/// export of a million grants never holds them all in memory.
async fn export(
    State(s): State<ApiState>,
    Who(c): Who,
    Params(q): Params<ExportQuery>,
    Params(history): Params<HistoryQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref().unwrap_or("csv") {
        "csv" => true,
        "json" => false,
        _ => return Err(ApiError::field("format", "must be csv or json").into()),
    };
    // Check the caller and the filters once, before the response starts.
    let mut first = history;
    first.cursor.clear();
    first.limit = Some(EXPORT_PAGE);
    let page = s.dashboard.history(&c, first.clone()).await?;
    tracing::info!(caller = ?caller_name(&c), csv, "history export");

    enum Phase {
        Start(app::api::HistoryPage),
        Next(String),
        Done,
    }
    let dashboard = s.dashboard.clone();
    let stream =
        futures_util::stream::unfold((Phase::Start(page), true), move |(phase, first_chunk)| {
            let dashboard = dashboard.clone();
            let c = c.clone();
            let base = first.clone();
            async move {
                let page = match phase {
                    Phase::Done => return None,
                    Phase::Start(p) => p,
                    Phase::Next(cursor) => {
                        let mut q = base;
                        q.cursor = cursor;
                        match dashboard.history(&c, q).await {
                            Ok(p) => p,
                            Err(e) => {
                                // Headers are sent; end the body visibly broken
                                // rather than pretending the export is complete.
                                tracing::error!(error = %e, "export stopped");
                                return Some((
                                    Err::<String, std::io::Error>(std::io::Error::other(e.message)),
                                    (Phase::Done, false),
                                ));
                            }
                        }
                    }
                };
                let mut chunk = String::new();
                if csv {
                    if first_chunk {
                        chunk.push_str(CSV_HEADER);
                    }
                    for g in &page.grants {
                        chunk.push_str(&csv_row(g));
                    }
                } else {
                    if first_chunk {
                        chunk.push('[');
                    }
                    for (i, g) in page.grants.iter().enumerate() {
                        if !(first_chunk && i == 0) {
                            chunk.push(',');
                        }
                        chunk.push_str(&serde_json::to_string(g).unwrap_or_default());
                    }
                    if page.next.is_none() {
                        chunk.push(']');
                    }
                }
                let next = match page.next {
                    Some(n) => Phase::Next(n),
                    None => Phase::Done,
                };
                Some((Ok(chunk), (next, false)))
            }
        });
    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", "timebox-grants.csv")
    } else {
        ("application/json", "timebox-grants.json")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn caller_name(c: &Caller) -> Option<&str> {
    match c {
        Caller::Person { id, .. } => Some(id.as_str()),
        Caller::Anonymous => None,
    }
}

pub const CSV_HEADER: &str = "id,requester,account_id,permission_set,state,created_at,activated_at,ends_at,revoked_at,real_end,duration_minutes,approvals_required,ticket,justification,failure_reason\r\n";

/// One CSV record (RFC 4180). Cells that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, CR) are prefixed with `'`.
pub fn csv_row(g: &Grant) -> String {
    let t =
        |v: Option<chrono::DateTime<chrono::Utc>>| v.map(|t| t.to_rfc3339()).unwrap_or_default();
    let cells = [
        g.id.to_string(),
        g.request.requester.to_string(),
        g.request.account_id.to_string(),
        g.request.permission_set.to_string(),
        g.state.as_str().to_owned(),
        g.created_at.to_rfc3339(),
        t(g.activated_at),
        t(g.ends_at),
        t(g.revoked_at),
        t(g.real_end),
        g.request.duration.minutes().to_string(),
        g.request.approvals_required.to_string(),
        g.request
            .ticket
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default(),
        g.request.justification.to_string(),
        g.failure_reason.clone().unwrap_or_default(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Live updates for the dashboard: a server-sent event `grant` with
/// `{ "id", "state", "version" }` whenever a grant the caller may see changes. The
/// page then re-reads what it shows. Anonymous callers are refused.
async fn events(State(s): State<ApiState>, Who(c): Who) -> ApiResult<Response> {
    if !c.is_signed_in() {
        return Err(ApiError::new("sign_in_required", "sign in first").into());
    }
    let policy = s.access.policy();
    let rx = s.access.subscribe();
    let stream = futures_util::stream::unfold((rx, c, policy), |(mut rx, c, policy)| async move {
        loop {
            match rx.recv().await {
                Ok(change) => {
                    if visible(&policy, &c, &change) {
                        let event = Event::default()
                            .event("grant")
                            .json_data(&change)
                            .unwrap_or_else(|_| Event::default().event("reload"));
                        return Some((Ok::<Event, Infallible>(event), (rx, c, policy)));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind: tell the page to re-read everything.
                    return Some((
                        Ok(Event::default().event("reload").data("{}")),
                        (rx, c, policy),
                    ));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Whether `c` may see this change: their own grant, or one they may read.
fn visible(policy: &app::domain::AccessPolicy, c: &Caller, change: &GrantChange) -> bool {
    authorize(policy, c, Operation::ReadGrant, Some(&change.requester)).is_ok()
        || matches!(c, Caller::Person { id, .. } if *id == change.requester)
}

/// The OpenAPI 3.1 document of this API.
async fn openapi(State(s): State<ApiState>) -> Json<serde_json::Value> {
    Json(openapi_document(&s.public_url))
}

/// Filters shared by the history and its export.
fn history_parameters() -> serde_json::Value {
    let p = |name: &str, description: &str| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } });
    json!([
        p("user", "the requester's id"),
        p("account", "a 12-digit account id"),
        p("permission_set", "a permission set name"),
        p("state", "pending, approved, provisioning, active, revoking, revoked, closed, denied, cancelled, expired or failed"),
        p("from", "created at or after (YYYY-MM-DD or RFC 3339, UTC)"),
        p("to", "created at or before (YYYY-MM-DD, inclusive, or RFC 3339)"),
        p("text", "words in the justification (case-insensitive, literal)"),
        p("cursor", "the `next` of the previous page"),
        { "name": "limit", "in": "query", "required": false, "description": "rows per page, 1-500 (default 50)", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } }
    ])
}

pub fn openapi_document(public_url: &str) -> serde_json::Value {
    let err = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let errors = json!({
        "400": err("the body or query string is not valid"),
        "401": err("sign in first"),
        "403": err("the caller's roles do not allow this (or it is their own request, or MFA is needed)"),
        "404": err("no such grant"),
        "409": err("the grant is not in a state that allows this"),
        "422": err("a field is wrong; `field` names it")
    });
    let ok = |d: &str, schema: serde_json::Value| json!({ "description": d, "content": { "application/json": { "schema": schema } } });
    let with_errors = |mut responses: serde_json::Value| {
        if let (Some(r), Some(e)) = (responses.as_object_mut(), errors.as_object()) {
            for (k, v) in e {
                r.insert(k.clone(), v.clone());
            }
        }
        responses
    };
    let id_param = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }]);
    let grant = json!({ "$ref": "#/components/schemas/Grant" });
    let comment_body = json!({ "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Comment" } } } });
    let action = |summary: &str, who: &str| {
        json!({ "post": {
            "summary": summary, "description": who, "parameters": id_param,
            "requestBody": comment_body,
            "responses": with_errors(json!({ "200": ok("the grant after the change", grant.clone()) }))
        }})
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Timebox API",
            "version": "1",
            "description": "Just-in-time access to AWS through IAM Identity Center. Authenticate with the session cookie of a sign-in (/auth/login); state-changing calls must send `Origin` equal to the server's public URL. Every call is checked against the caller's roles exactly as the dashboard is."
        },
        "servers": [{ "url": public_url }],
        "paths": {
            "/api/v1/me": { "get": { "summary": "Who the caller is", "responses": { "200": ok("the caller", json!({ "type": "object" })) } } },
            "/api/v1/request-options": { "get": { "summary": "Accounts, permission sets and what the caller may ask for", "description": "Requesters and admins.", "responses": with_errors(json!({ "200": ok("the options", json!({ "type": "object" })) })) } },
            "/api/v1/other-paths": { "get": { "summary": "Other ways the caller already reaches an access", "parameters": [
                { "name": "account_id", "in": "query", "required": true, "schema": { "type": "string" } },
                { "name": "permission_set", "in": "query", "required": true, "schema": { "type": "string" } }
            ], "responses": with_errors(json!({ "200": ok("group or standing assignments", json!({ "type": "array" })) })) } },
            "/api/v1/grants": {
                "get": { "summary": "The history (approvers, auditors, admins) or, with mine=true, the caller's own grants", "parameters": serde_json::Value::Array({
                    let mut v = vec![json!({ "name": "mine", "in": "query", "required": false, "schema": { "type": "boolean" } })];
                    v.extend(history_parameters().as_array().cloned().unwrap_or_default());
                    v
                }), "responses": with_errors(json!({ "200": ok("one page, newest first", json!({ "$ref": "#/components/schemas/Page" })) })) },
                "post": { "summary": "Ask for a grant", "description": "Requesters and admins, for themselves.", "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RequestForm" } } } },
                    "responses": with_errors(json!({ "201": ok("the pending (or auto-approved) grant", grant.clone()) })) }
            },
            "/api/v1/grants/export": { "get": { "summary": "The filtered history as CSV or JSON (auditors, approvers, admins)", "parameters": serde_json::Value::Array({
                let mut v = vec![json!({ "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["csv", "json"] } })];
                v.extend(history_parameters().as_array().cloned().unwrap_or_default());
                v
            }), "responses": with_errors(json!({ "200": { "description": "the export, streamed", "content": { "text/csv": {}, "application/json": {} } } })) } },
            "/api/v1/grants/{id}": { "get": { "summary": "A grant with its approvals, audit trail and chain check", "parameters": id_param, "responses": with_errors(json!({ "200": ok("the grant", json!({ "type": "object" })) })) } },
            "/api/v1/grants/{id}/approve": action("Approve a pending request", "Approvers and admins, never the requester; MFA when configured."),
            "/api/v1/grants/{id}/deny": action("Deny a pending request", "Approvers and admins, never the requester."),
            "/api/v1/grants/{id}/cancel": action("Withdraw a request before it starts", "The requester, or an admin."),
            "/api/v1/grants/{id}/revoke": action("End an active grant now", "The requester (\"I'm done\"), approvers and admins."),
            "/api/v1/grants/{id}/review": action("Record the review of a break-glass grant", "Approvers named by its policy, auditors and admins; never its requester."),
            "/api/v1/grants/{id}/extend": { "post": { "summary": "Ask for more time on one's own approved or active grant", "parameters": id_param,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["duration", "justification"], "properties": {
                    "duration": { "type": "string", "examples": ["1h"] }, "justification": { "type": "string" }, "ticket": { "type": "string" } } } } } },
                "responses": with_errors(json!({ "201": ok("the extension request", grant.clone()) })) } },
            "/api/v1/inbox": { "get": { "summary": "Pending requests the caller may decide", "responses": with_errors(json!({ "200": ok("oldest first", json!({ "type": "array" })) })) } },
            "/api/v1/active": { "get": { "summary": "Grants active now and revoked grants still in their tail", "responses": with_errors(json!({ "200": ok("active first, then tails", json!({ "type": "array" })) })) } },
            "/api/v1/admin/status": { "get": { "summary": "Catalog, reaper health, drift reports (admins)", "responses": with_errors(json!({ "200": ok("the status", json!({ "type": "object" })) })) } },
            "/api/v1/admin/policies": { "get": { "summary": "The policies in force, the file's reload status, and who can request what, approved by whom (admins)", "parameters": [
                { "name": "user", "in": "query", "required": false, "description": "user:<id>, group:<name> or a person id", "schema": { "type": "string" } },
                { "name": "account", "in": "query", "required": false, "schema": { "type": "string" } },
                { "name": "permission_set", "in": "query", "required": false, "schema": { "type": "string" } }
            ], "responses": with_errors(json!({ "200": ok("policies and the answer", json!({ "type": "object" })) })) } },
            "/api/v1/admin/catalog/sync": { "post": { "summary": "Re-read the catalog from Identity Center now (admins)", "responses": with_errors(json!({ "200": ok("the catalog's state", json!({ "type": "object" })) })) } },
            "/api/v1/events": { "get": { "summary": "Server-sent events: `grant` {id, state, version} when a grant the caller may see changes; `reload` when the page should re-read", "responses": with_errors(json!({ "200": { "description": "an event stream", "content": { "text/event-stream": {} } } })) } },
            "/api/v1/openapi.json": { "get": { "summary": "This document", "responses": { "200": ok("OpenAPI 3.1", json!({ "type": "object" })) } } }
        },
        "components": {
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string", "description": "invalid_field, bad_request, sign_in_required, forbidden, own_request, self_decision, mfa_required, not_found, wrong_state, already_approved, conflict, busy, unavailable, internal" },
                    "message": { "type": "string" },
                    "field": { "type": "string" } } } } },
                "RequestForm": { "type": "object", "required": ["account_id", "permission_set", "duration", "justification"], "properties": {
                    "account_id": { "type": "string", "pattern": "^[0-9]{12}$" },
                    "permission_set": { "type": "string" },
                    "duration": { "type": "string", "examples": ["1h", "90m", "1h30m"] },
                    "start_at": { "type": "string", "format": "date-time", "description": "empty: as soon as approved" },
                    "justification": { "type": "string" },
                    "ticket": { "type": "string" } } },
                "Grant": { "type": "object", "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "state": { "type": "string" },
                    "request": { "type": "object" },
                    "created_at": { "type": "string", "format": "date-time" },
                    "activated_at": { "type": ["string", "null"], "format": "date-time" },
                    "ends_at": { "type": ["string", "null"], "format": "date-time" },
                    "revoked_at": { "type": ["string", "null"], "format": "date-time" },
                    "real_end": { "type": ["string", "null"], "format": "date-time", "description": "revoked_at (or the planned end) + portal session + permission-set session" } } },
                "Comment": { "type": "object", "properties": { "comment": { "type": "string" } } },
                "Page": { "type": "object", "properties": { "grants": { "type": "array", "items": { "$ref": "#/components/schemas/Grant" } }, "next": { "type": ["string", "null"] } } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1+1"), "'-1+1");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn the_document_lists_every_route() {
        let doc = openapi_document("http://127.0.0.1:3000");
        let paths = doc["paths"].as_object().expect("paths");
        for p in [
            "/api/v1/me",
            "/api/v1/grants",
            "/api/v1/grants/export",
            "/api/v1/grants/{id}",
            "/api/v1/grants/{id}/approve",
            "/api/v1/grants/{id}/deny",
            "/api/v1/grants/{id}/cancel",
            "/api/v1/grants/{id}/revoke",
            "/api/v1/grants/{id}/extend",
            "/api/v1/grants/{id}/review",
            "/api/v1/admin/policies",
            "/api/v1/inbox",
            "/api/v1/active",
            "/api/v1/admin/status",
            "/api/v1/admin/catalog/sync",
            "/api/v1/events",
            "/api/v1/request-options",
            "/api/v1/other-paths",
            "/api/v1/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented");
        }
        assert_eq!(paths.len(), 19, "a documented path has no route here");
    }
}
