//! `GET /api/v1/grants/export`: the filtered history as CSV or JSON, streamed.

use super::extract::{ApiState, CurrentCaller, QueryParams};
use crate::web::error::{ApiResult, Refusals};
use app::api::backend::Backend;
use app::api::{ApiError, HistoryQuery};
use app::domain::{Caller, Grant};
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (the default) or `json`.
    #[serde(default)]
    #[param(value_type = Option<ExportFormat>)]
    format: Option<String>,
}

/// The formats of the export.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

/// Rows read per page while exporting.
const EXPORT_PAGE: u32 = 500;

/// The filtered history as CSV or JSON (auditors, approvers, admins).
///
/// Streamed page by page (keyset), so an export of a million grants never holds
/// them all in memory.
#[utoipa::path(get, path = "/api/v1/grants/export", tag = "grants", params(ExportQuery, HistoryQuery),
    responses((status = 200, description = "the export, streamed",
        content((String = "text/csv"), (Vec<Grant> = "application/json"))), Refusals))]
pub async fn export(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    QueryParams(q): QueryParams<ExportQuery>,
    QueryParams(history): QueryParams<HistoryQuery>,
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

pub const CSV_HEADER: &str = "id,requester,account_id,permission_set,state,created_at,activated_at,ends_at,revoked_at,real_end,duration_minutes,approvals_required,ticket,justification,failure_reason,sessions_close,sessions_closed_at,worst_case_end\r\n";

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
        g.sessions_close
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        t(g.sessions_closed_at),
        t(g.windows()
            .and_then(Result::ok)
            .filter(|w| w.is_final)
            .map(|w| w.worst_case_end)),
    ];
    crate::csv::line(&cells)
}
