//! The Leptos app: server-rendered pages, the server functions (`/api/<name>`) and
//! the hydration assets. Pages and server functions find the same request context:
//! the backend, the viewer and this response's CSP nonce.

use crate::auth::guard::CspNonce;
use crate::auth::Auth;
use crate::config::Config;
use app::api::backend::SharedBackend;
use app::domain::Caller;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, LeptosRoutes};

/// State of the pages: the sign-in (for the viewer), the dashboard's backend (built
/// once, shared by pages, server functions and `/api/v1`), and Leptos's options.
#[derive(Debug, Clone, axum::extract::FromRef)]
pub struct PageState {
    pub auth: Auth,
    pub backend: SharedBackend,
    pub leptos_options: LeptosOptions,
}

impl PageState {
    pub fn new(auth: Auth, backend: SharedBackend, config: &Config) -> Self {
        Self {
            auth,
            backend,
            leptos_options: leptos_options(config),
        }
    }
}

pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("timebox")
        .site_root(config.server.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.server.bind)
        .build()
}

/// The pages, the server functions and (as the fallback) the static files.
pub fn router(state: PageState) -> Router {
    let context = (state.auth.clone(), state.backend.clone());
    let options = state.leptos_options.clone();
    Router::new()
        .route("/api/{*fn_name}", post(server_functions))
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            move || provide_request_context(&context.0, &context.1),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<PageState, _>(shell))
        .with_state(state)
}

/// What every page and server function finds in its Leptos context: the backend,
/// the viewer (the caller resolved for this request) and this response's CSP nonce.
fn provide_request_context(auth: &Auth, backend: &SharedBackend) {
    provide_context(backend.clone());
    let parts = use_context::<axum::http::request::Parts>();
    let caller = parts
        .as_ref()
        .and_then(|p| p.extensions.get::<Caller>().cloned())
        .unwrap_or(Caller::Anonymous);
    provide_context(auth.viewer(&caller));
    provide_context(caller);
    if let Some(CspNonce(nonce)) = parts.as_ref().and_then(|p| p.extensions.get::<CspNonce>()) {
        // The same nonce as the Content-Security-Policy header of this response.
        provide_context(leptos::nonce::Nonce::from_value(nonce.clone()));
    }
}

/// Leptos server functions (`/api/<name>`), with the same context as the pages.
async fn server_functions(
    State(auth): State<Auth>,
    State(backend): State<SharedBackend>,
    request: Request<Body>,
) -> Response {
    leptos_axum::handle_server_fns_with_context(
        move || provide_request_context(&auth, &backend),
        request,
    )
    .await
    .into_response()
}
