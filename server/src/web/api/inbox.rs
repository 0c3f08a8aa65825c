//! What needs the caller now: the approver's inbox, the grants active now, and the
//! live event stream the dashboard re-reads on.

use super::extract::{ApiState, CurrentCaller};
use crate::services::GrantChange;
use crate::web::error::{ApiResult, Refusals};
use app::api::backend::Backend;
use app::api::{ActiveItem, ApiError, ErrorCode, InboxItem};
use app::domain::{authorize, Caller, Operation};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::convert::Infallible;

/// Pending requests the caller may decide.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "grants",
    responses((status = 200, description = "oldest first", body = Vec<InboxItem>), Refusals))]
pub async fn inbox(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<Json<Vec<InboxItem>>> {
    Ok(Json(s.dashboard.inbox(&c).await?))
}

/// Grants active now and revoked grants still in their tail.
#[utoipa::path(get, path = "/api/v1/active", tag = "grants",
    responses((status = 200, description = "active first, then tails", body = Vec<ActiveItem>), Refusals))]
pub async fn active(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
) -> ApiResult<Json<Vec<ActiveItem>>> {
    Ok(Json(s.dashboard.active_now(&c).await?))
}

/// Live updates for the dashboard: a server-sent event `grant` with
/// `{ "id", "state", "version" }` whenever a grant the caller may see changes. The
/// page then re-reads what it shows. Anonymous callers are refused.
#[utoipa::path(get, path = "/api/v1/events", tag = "live",
    summary = "Server-sent events: `grant` {id, state, version} when a grant the caller may see changes; `reload` when the page should re-read",
    responses((status = 200, description = "an event stream", content_type = "text/event-stream", body = GrantChange), Refusals))]
pub async fn events(
    State(s): State<ApiState>,
    CurrentCaller(c): CurrentCaller,
    session: tower_sessions::Session,
) -> ApiResult<Response> {
    if !c.is_signed_in() {
        return Err(ApiError::new(ErrorCode::SignInRequired, "sign in first").into());
    }
    let policy = s.access.policy();
    let rx = s.access.subscribe();
    // The stream lives no longer than its session: it is looked up every
    // SESSION_CHECK, and the stream ends once it is gone (logout, timeout).
    let alive = SessionAlive {
        store: s.sessions.clone(),
        id: session.id(),
        tick: tokio::time::interval(SESSION_CHECK),
    };
    let state = (rx, c, policy, alive);
    let stream = futures_util::stream::unfold(state, |(mut rx, c, policy, mut alive)| async move {
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                ended = alive.ended() => {
                    if ended {
                        return None;
                    }
                    continue;
                }
            };
            match received {
                Ok(change) => {
                    if visible(&policy, &c, &change) {
                        let event = Event::default()
                            .event("grant")
                            .json_data(&change)
                            .unwrap_or_else(|_| Event::default().event("reload"));
                        return Some((Ok::<Event, Infallible>(event), (rx, c, policy, alive)));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind: tell the page to re-read everything.
                    return Some((
                        Ok(Event::default().event("reload").data("{}")),
                        (rx, c, policy, alive),
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

/// How often a live event stream checks that its session still exists.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// The session a live event stream belongs to.
struct SessionAlive {
    store: crate::auth::session::DbSessionStore,
    id: Option<tower_sessions::session::Id>,
    tick: tokio::time::Interval,
}

impl SessionAlive {
    /// Waits for the next check; whether the session has ended (deleted, expired,
    /// signed out). A store that cannot be read ends nothing.
    async fn ended(&mut self) -> bool {
        self.tick.tick().await;
        let Some(id) = self.id else {
            return true;
        };
        match self.store.person(&id).await {
            Ok(person) => person.is_none(),
            Err(e) => {
                tracing::warn!(error = %e, "could not check a live stream's session");
                false
            }
        }
    }
}

/// Whether `c` may see this change: their own grant, or one they may read.
fn visible(policy: &app::domain::AccessPolicy, c: &Caller, change: &GrantChange) -> bool {
    authorize(policy, c, Operation::ReadGrant, Some(&change.requester)).is_ok()
        || matches!(c, Caller::Person { id, .. } if *id == change.requester)
}
