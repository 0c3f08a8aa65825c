//! What every handler of the JSON API shares: its state and the extractors whose
//! rejection is the API's error (a JSON body, a query string). The caller comes from
//! [`crate::auth::caller::CurrentCaller`].

use crate::services::{Access, Dashboard};
use crate::web::error::{bad_json, bad_query, ApiFailure};
use axum::extract::{FromRequest, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::Json;
use std::sync::Arc;

pub use crate::auth::caller::CurrentCaller;

/// What the API routes share.
#[derive(Clone)]
pub struct ApiState {
    pub dashboard: Dashboard,
    /// For the live event stream.
    pub access: Access,
    /// The document served at `/api/v1/openapi.json`.
    pub openapi: Arc<utoipa::openapi::OpenApi>,
    /// The session store: the event stream ends when its session does.
    pub sessions: crate::auth::session::DbSessionStore,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("dashboard", &self.dashboard)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// A JSON body whose rejection is an [`app::api::ApiError`] (400, with serde's
/// reason).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiFailure;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<T>::from_request(req, state)
            .await
            .map_err(bad_json)?;
        Ok(JsonBody(v))
    }
}

/// Query parameters whose rejection is an [`app::api::ApiError`].
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(v) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(bad_query)?;
        Ok(QueryParams(v))
    }
}
