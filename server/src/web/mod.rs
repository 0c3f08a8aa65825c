//! The web layer: every HTTP route, assembled here from one sub-router per concern,
//! each on its own state type (none of them imports this module):
//!
//! - [`pages`]: the Leptos pages (server-rendered, hydrated) and the server
//!   functions (`/api/<name>`), on [`pages::PageState`];
//! - [`api`]: the JSON API (`/api/v1/…`) and its OpenAPI document, on
//!   [`api::ApiState`];
//! - [`auth`]: `/auth/login`, `/auth/callback`, `/auth/logout`, on [`Auth`];
//! - [`evidence`]: the evidence pack of a grant, on [`Access`];
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`, on [`health::Health`];
//! - [`error`]: the one mapping from every layer's error to a status code, an
//!   [`app::api::ErrorCode`] and a safe message.
//!
//! No business rule lives here: handlers call one service method and map the result.
//! Every request passes, outermost first: tracing, the security headers (with a CSP
//! nonce), the cross-site check on state-changing methods, the session, and the
//! caller's resolution (see [`crate::auth`]).

pub mod api;
pub mod auth;
pub mod error;
pub mod evidence;
pub mod health;
pub mod pages;

use crate::auth::caller::resolve_caller;
use crate::auth::guard::{refuse_cross_site, security_headers, GuardSettings};
use crate::auth::Auth;
use crate::config::Config;
use crate::services::{Access, Dashboard};
use app::api::backend::SharedBackend;
use axum::body::Body;
use axum::Router;
use std::sync::Arc;
use utoipa::openapi::OpenApi;
use utoipa::OpenApi as _;

pub use health::Health;

/// What the routes are given at start-up (and nothing else).
#[derive(Debug, Clone)]
pub struct Web {
    /// The role-scoped handles: the dashboard's backend, the JSON API and the
    /// evidence routes act through them.
    pub access: Access,
    /// Sign-in, sessions and the caller of each request.
    pub auth: Auth,
    /// `/readyz` and `/metrics`.
    pub health: Health,
    pub config: Arc<Config>,
}

/// The OpenAPI 3.1 document of the JSON API and the evidence routes, generated from
/// the handlers' annotations and the types they exchange.
pub fn openapi_document(public_url: &str) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(api::routes().split_for_parts().1);
    doc.merge(evidence::routes().split_for_parts().1);
    doc.servers = Some(vec![utoipa::openapi::Server::new(public_url)]);
    doc
}

/// The document's title, description and shared components.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Timebox API",
        version = "1",
        description = "Just-in-time access to AWS through IAM Identity Center. Authenticate with the session cookie of a sign-in (/auth/login); state-changing calls must send `Origin` equal to the server's public URL. Every call is checked against the caller's roles exactly as the dashboard is."
    ),
    components(schemas(error::ErrorBody, app::api::ErrorCode))
)]
struct ApiDoc;

/// Every route, with the layers every request passes.
pub fn router(web: Web) -> Router {
    let Web {
        access,
        auth,
        health,
        config,
    } = web;
    let dashboard = Dashboard::new(access.clone());
    let backend: SharedBackend = Arc::new(dashboard.clone());
    let guard = Arc::new(GuardSettings::new(
        &config.server.public_url,
        auth.oidc.iter().map(|o| o.issuer_origin()).collect(),
    ));
    let sessions = auth.sessions.layer(&config.session);
    let api = api::router(api::ApiState {
        dashboard,
        access: access.clone(),
        openapi: Arc::new(openapi_document(&config.server.public_url)),
        sessions: auth.sessions.clone(),
    });
    health::router(health)
        .merge(pages::router(pages::PageState::new(
            auth.clone(),
            backend,
            &config,
        )))
        .merge(evidence::router(access.clone()))
        .merge(api)
        .merge(auth::router(auth.clone(), access.clone()))
        .layer(axum::middleware::from_fn_with_state(auth, resolve_caller))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            security_headers,
        ))
        .layer(
            // The path only: a query string can hold a sign-in code or state.
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<Body>| {
                    tracing::debug_span!(
                        "request",
                        method = %request.method(),
                        path = request.uri().path()
                    )
                },
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each documented path with its methods.
    fn documented() -> Vec<(String, Vec<String>)> {
        let doc = serde_json::to_value(openapi_document("http://127.0.0.1:3000")).expect("json");
        let paths = doc["paths"].as_object().expect("paths").clone();
        paths
            .into_iter()
            .map(|(p, item)| {
                let methods = item
                    .as_object()
                    .map_or(vec![], |m| m.keys().cloned().collect());
                (p, methods)
            })
            .collect()
    }

    #[test]
    fn the_document_lists_every_route() {
        let doc = serde_json::to_value(openapi_document("http://127.0.0.1:3000")).expect("json");
        assert_eq!(doc["openapi"], "3.1.0");
        let all = doc["paths"].as_object().expect("paths");
        // The JSON API's paths; the evidence routes are checked below.
        let paths: serde_json::Map<String, serde_json::Value> = all
            .iter()
            .filter(|(p, _)| p.starts_with("/api/v1/"))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect();
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
            "/api/v1/audit",
            "/api/v1/audit/verify",
            "/api/v1/admin/catalog/sync",
            "/api/v1/events",
            "/api/v1/request-options",
            "/api/v1/other-paths",
            "/api/v1/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented");
        }
        assert_eq!(paths.len(), 21, "a documented path has no route here");
    }

    /// The routes the server answers, method and path, as a reader of `router`
    /// would list them. The router is built from the same registrations as the
    /// document (`api::routes`, `evidence::routes`), so a route added there is
    /// documented; this table catches one added, removed or renamed without the
    /// document following.
    const ROUTES: &[(&str, &str)] = &[
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/request-options"),
        ("get", "/api/v1/other-paths"),
        ("get", "/api/v1/grants"),
        ("post", "/api/v1/grants"),
        ("get", "/api/v1/grants/export"),
        ("get", "/api/v1/grants/{id}"),
        ("post", "/api/v1/grants/{id}/approve"),
        ("post", "/api/v1/grants/{id}/deny"),
        ("post", "/api/v1/grants/{id}/cancel"),
        ("post", "/api/v1/grants/{id}/revoke"),
        ("post", "/api/v1/grants/{id}/extend"),
        ("post", "/api/v1/grants/{id}/review"),
        ("get", "/api/v1/inbox"),
        ("get", "/api/v1/active"),
        ("get", "/api/v1/admin/status"),
        ("get", "/api/v1/audit"),
        ("post", "/api/v1/audit/verify"),
        ("get", "/api/v1/audit/verify"),
        ("post", "/api/v1/admin/catalog/sync"),
        ("get", "/api/v1/admin/policies"),
        ("get", "/api/v1/events"),
        ("get", "/grants/{id}/evidence.json"),
        ("get", "/grants/{id}/evidence.html"),
    ];

    #[test]
    fn the_router_and_the_document_agree() {
        let mut documented: Vec<(String, String)> = documented()
            .into_iter()
            .flat_map(|(p, ms)| ms.into_iter().map(move |m| (m, p.clone())))
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routes.sort();
        assert_eq!(routes, documented);
    }

    #[test]
    fn every_error_code_and_the_error_body_are_described() {
        let doc = serde_json::to_value(openapi_document("http://127.0.0.1:3000")).expect("json");
        let schemas = &doc["components"]["schemas"];
        // A documented variant makes utoipa write `oneOf` (one `enum` per variant, with
        // its description) instead of one `enum`: gather the codes from every `enum`.
        fn enums<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        match (k.as_str(), v) {
                            ("enum", serde_json::Value::Array(a)) => {
                                out.extend(a.iter().filter_map(|c| c.as_str()))
                            }
                            _ => enums(v, out),
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| enums(v, out)),
                _ => {}
            }
        }
        let mut codes = Vec::new();
        enums(&schemas["ErrorCode"], &mut codes);
        assert!(!codes.is_empty(), "no ErrorCode schema");
        for code in app::api::ErrorCode::ALL {
            assert!(codes.contains(&code.as_str()), "{code} is not documented");
        }
        assert!(schemas["ErrorBody"].is_object());
        for schema in [
            "Grant",
            "RequestForm",
            "GrantDetail",
            "HistoryPage",
            "Caller",
        ] {
            assert!(schemas[schema].is_object(), "no schema {schema}");
        }
        // Every documented operation says what it answers.
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("operations") {
                assert!(
                    ["200", "201", "202"]
                        .iter()
                        .any(|code| op["responses"][code].is_object()),
                    "{method} {path} has no success response"
                );
            }
        }
    }
}
