//! `/auth/login` (start a sign-in), `/auth/callback` (the provider's answer) and
//! `/auth/logout` (POST: end the session, then the provider's where it offers it).
//! Handlers log reason codes and the client address, never codes, tokens, state or
//! nonce values.

use crate::auth::limiter::client_address;
use crate::auth::oidc::LoginError;
use crate::auth::session::{PendingLogin, SignedIn, LOGIN_KEY, PERSON_KEY};
use crate::auth::Auth;
use crate::html::escape;
use crate::services::Access;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use tower_sessions::Session;

/// The three routes, on [`Auth`] state (the OIDC client, the sessions, the limiter
/// live in [`crate::auth`]); the callback also asks `access` whether the person maps
/// to an Identity Store user.
pub fn router(auth: Auth, access: Access) -> Router {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback).layer(Extension(access)))
        .route("/auth/logout", post(logout))
        .with_state(auth)
}

#[derive(Debug, Deserialize)]
struct LoginParams {
    return_to: Option<String>,
    /// `1`: sign in again with multi-factor authentication.
    mfa: Option<String>,
}

/// A local path, or `/`: never another site (no open redirect).
fn local_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The client's address (see [`client_address`]).
fn client_of(auth: &Auth, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    client_address(
        peer.ip(),
        headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
        &auth.config.server.trusted_proxies,
    )
}

#[tracing::instrument(skip_all, fields(client))]
async fn login(
    State(auth): State<Auth>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Query(params): Query<LoginParams>,
) -> Response {
    let client = client_of(&auth, peer, &headers);
    tracing::Span::current().record("client", tracing::field::display(client));
    // An address whose sign-ins keep failing starts no new one for a while; a
    // sign-in already started is always finished (see auth::limiter).
    if !auth.limiter.allows(client) {
        tracing::warn!("sign-in refused: too many failed sign-ins from this address");
        return too_many_failures();
    }
    let Some(oidc) = auth.oidc.clone() else {
        return page(
            StatusCode::NOT_FOUND,
            "Sign-in is not configured",
            "This Timebox has no [oidc] section in its configuration, so nobody can sign in.",
        );
    };
    let return_to = local_path(params.return_to.as_deref());
    let mfa = params.mfa.as_deref() == Some("1");
    match oidc.begin(return_to, mfa).await {
        Ok((url, pending)) => {
            if let Err(e) = session.insert(LOGIN_KEY, pending).await {
                tracing::error!(error = %e, "could not store the sign-in in the session");
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "Timebox could not remember this sign-in. Try again in a moment.",
                );
            }
            Redirect::to(url.as_str()).into_response()
        }
        Err(e) => {
            tracing::error!(reason = e.code(), error = %e, "cannot start a sign-in");
            page(
                StatusCode::BAD_GATEWAY,
                "Sign-in is unavailable",
                "The sign-in provider cannot be reached. Try again in a moment.",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[tracing::instrument(skip_all, fields(client))]
async fn callback(
    State(auth): State<Auth>,
    Extension(access): Extension<Access>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Query(params): Query<CallbackParams>,
) -> Response {
    let client = client_of(&auth, peer, &headers);
    tracing::Span::current().record("client", tracing::field::display(client));
    match complete(&auth, &session, params).await {
        Ok((person, return_to)) => {
            // A new session id at sign-in: an id planted before (session fixation)
            // is worth nothing afterwards.
            if let Err(e) = session.cycle_id().await {
                tracing::error!(error = %e, "could not rotate the session id");
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "Timebox could not start your session. Try again.",
                );
            }
            tracing::info!(
                subject = %person.subject,
                groups = ?person.groups,
                amr = ?person.amr,
                "signed in"
            );
            let id = app::domain::PersonId::parse(&person.subject).ok();
            if let (Some(id), Some(name)) = (&id, &person.name) {
                access.saw_person(id, name).await;
            }
            if let Err(e) = session.insert(PERSON_KEY, person).await {
                tracing::error!(error = %e, "could not store the signed-in person");
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "Timebox could not start your session. Try again.",
                );
            }
            let notice = match &id {
                Some(id) => access.sign_in_notice(id).await,
                None => None,
            };
            match notice {
                Some(notice) => signed_in_but(&notice, &return_to),
                None => Redirect::to(&return_to).into_response(),
            }
        }
        Err(e) => {
            // Only a sign-in that was started and failed counts (see auth::limiter).
            if e.counts_against_client() && !matches!(e, LoginError::NoLoginInProgress) {
                auth.limiter.record_failure(client);
            }
            tracing::warn!(reason = e.code(), detail = %e, "sign-in callback refused");
            page(
                match e {
                    LoginError::Discovery(_) => StatusCode::BAD_GATEWAY,
                    // Who the provider says this is cannot be used here: the page says
                    // what the administrator must set.
                    LoginError::MissingPersonClaim(_) | LoginError::GroupOverage => {
                        StatusCode::FORBIDDEN
                    }
                    _ => StatusCode::BAD_REQUEST,
                },
                "Sign-in failed",
                &format!("{e}."),
            )
        }
    }
}

/// The callback's checks, in order: a sign-in must be in progress in this session
/// (taken out, so a state is used once), the state must match, the provider must
/// have signed the person in, and the code must yield a valid ID token.
async fn complete(
    auth: &Auth,
    session: &Session,
    params: CallbackParams,
) -> Result<(SignedIn, String), LoginError> {
    let oidc = auth
        .oidc
        .as_ref()
        .ok_or(LoginError::Discovery("sign-in is not configured".into()))?;
    let pending: PendingLogin = session
        .remove(LOGIN_KEY)
        .await
        .ok()
        .flatten()
        .ok_or(LoginError::NoLoginInProgress)?;
    let state = params.state.ok_or(LoginError::Malformed("no state"))?;
    if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
        return Err(LoginError::StateMismatch);
    }
    if let Some(error) = params.error {
        // The provider's error code is a short token from a fixed list; keep only
        // safe characters so nothing odd reaches the page or the log.
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(LoginError::ProviderRefused(error));
    }
    let code = params.code.ok_or(LoginError::Malformed("no code"))?;
    let return_to = pending.return_to.clone();
    let person = oidc.finish(pending, code).await?;
    Ok((person, return_to))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[tracing::instrument(skip_all)]
async fn logout(State(auth): State<Auth>, session: Session) -> Response {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "could not end a session");
    }
    let home = format!("{}/", auth.config.server.public_url);
    if let Some(oidc) = &auth.oidc {
        if let Some(url) = oidc.end_session_url(&home).await {
            return Redirect::to(url.as_str()).into_response();
        }
    }
    Redirect::to("/").into_response()
}

fn too_many_failures() -> Response {
    page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed sign-ins",
        "Too many sign-ins from your address failed. Wait a few minutes, then try again.",
    )
}

/// The page a person sees when they are signed in but Timebox cannot find them in
/// IAM Identity Center: what is wrong and what the administrator must set, then on
/// to where they were going.
fn signed_in_but(notice: &str, return_to: &str) -> Response {
    shell(
        StatusCode::OK,
        "Signed in, but not found in IAM Identity Center",
        &format!(
            "<p class=\"error\" data-testid=\"identity-notice\">{m}.</p>\
             <p>You can decide requests and read the history as your roles allow, but you \
             cannot ask for access until this is fixed.</p>\
             <p><a href=\"{to}\" data-testid=\"continue\">Continue</a></p>",
            m = escape(&capitalised(notice)),
            to = escape(return_to),
        ),
    )
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A small self-contained page for sign-in outcomes that are not the app.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    shell(
        status,
        title,
        &format!(
            "<p data-testid=\"auth-message\">{m}</p>\
             <p><a href=\"/auth/login\">Sign in again</a> · <a href=\"/\">Start page</a></p>",
            m = escape(message)
        ),
    )
}

/// The document around the sign-in pages: `title` and the (already escaped) `body`.
fn shell(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Timebox</title>\
         <link rel=\"stylesheet\" href=\"/pkg/timebox.css\"></head><body><main id=\"main\">\
         <section class=\"empty\"><h1>{t}</h1>{body}</section></main></body></html>",
        t = escape(title),
    );
    (status, Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_local() {
        assert_eq!(local_path(Some("/grants?x=1")), "/grants?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
