//! Checks every request passes, outermost first:
//!
//! - [`security_headers`]: a fresh CSP nonce per request (Leptos puts it on the
//!   hydration scripts) and the headers that keep the pages from being framed,
//!   sniffed or leaking their address; HSTS when `server.public_url` is https.
//! - [`refuse_cross_site`]: a request that can change something (any method but GET,
//!   HEAD, OPTIONS) must come from Timebox's own pages: its `Origin` (or, when a
//!   browser sends none, its `Referer`) must be `server.public_url`'s origin.
//!   SameSite=Lax cookies already keep the session off cross-site POSTs; this check
//!   also covers same-site attackers and browsers without SameSite.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The per-request CSP nonce, in the request's extensions for Leptos.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// What the two checks need to know.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// `scheme://host[:port]` of `server.public_url`.
    pub origin: String,
    /// Whether to send `Strict-Transport-Security`.
    pub hsts: bool,
    /// Origins forms may post to besides Timebox (the provider, for signing out).
    pub form_targets: Vec<String>,
}

impl GuardSettings {
    pub fn new(public_url: &str, form_targets: Vec<String>) -> Self {
        let origin = url::Url::parse(public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| public_url.trim_end_matches('/').to_owned());
        Self {
            hsts: origin.starts_with("https://"),
            origin,
            form_targets,
        }
    }

    fn csp(&self, nonce: &str) -> String {
        let mut form_action = String::from("'self'");
        for target in &self.form_targets {
            form_action.push(' ');
            form_action.push_str(target);
        }
        // 'wasm-unsafe-eval' lets the hydration bundle compile its WebAssembly; no
        // other script runs unless it carries this response's nonce. Style
        // attributes are allowed (the window preview sizes its bar with one); style
        // sheets from Timebox itself, <style> elements only with the nonce (the
        // evidence pack embeds its stylesheet).
        format!(
            "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
             manifest-src 'self'; base-uri 'none'; form-action {form_action}; \
             frame-ancestors 'none'"
        )
    }
}

/// Adds the security headers to every response (pages, assets, errors, API).
pub async fn security_headers(
    State(settings): State<Arc<GuardSettings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = leptos::nonce::Nonce::new().to_string();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&settings.csp(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if settings.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Refuses state-changing requests that do not come from Timebox's own origin.
pub async fn refuse_cross_site(
    State(settings): State<Arc<GuardSettings>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let same_origin = match origin {
        Some(origin) => origin == settings.origin,
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .is_some_and(|r| r.origin().ascii_serialization() == settings.origin),
    };
    if same_origin {
        return next.run(request).await;
    }
    tracing::warn!(
        method = %request.method(),
        path = request.uri().path(),
        origin = origin.unwrap_or("(none)"),
        "refused a state-changing request from another origin"
    );
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": {
                "code": "cross_site_request",
                "message": "this request did not come from Timebox's own pages; reload Timebox and try again"
            }
        })),
    )
        .into_response()
}
