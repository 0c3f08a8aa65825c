//! The one error policy of the web layer. Each layer has its own error
//! (`FieldError`, `Denied`, `Refusal`, `PolicyRefusal`, `GrantError`, `StoreError`,
//! `AccessError`, axum's rejections); this module alone turns each into an
//! [`ApiError`] — an [`ErrorCode`] (which fixes the HTTP status) and a message that is
//! safe to show:
//!
//! - denials, lifecycle and policy refusals and wrong fields keep their code and
//!   their message (they are written for the person who asked);
//! - storage failures are logged here, once, with their detail, and reach the caller
//!   as `internal` without it;
//! - Identity Center failures were logged where they happened and reach the caller
//!   as `unavailable`;
//! - a body or query string that cannot be read is `bad_request` with serde's reason.
//!
//! Every route answers an error as [`ApiFailure`]: `{ "error": ApiError }` with the
//! code's status. The sign-in routes answer people with a page instead (`super::auth`).

use crate::services::{AccessError, GrantError};
use crate::store::StoreError;
use app::api::{ApiError, ErrorCode};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// The body of every error response: `{ "error": { "code", "message", "field"? } }`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// The refusals every route of the API may answer, for the OpenAPI document: each
/// status with the codes that carry it ([`ErrorCode::status`]).
#[derive(Debug, utoipa::IntoResponses)]
pub enum Refusals {
    /// `bad_request`: the body or query string is not valid.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `sign_in_required`: sign in first.
    #[response(status = 401)]
    SignInRequired(ErrorBody),
    /// `forbidden`, `own_request`, `self_decision`, `mfa_required`,
    /// `not_an_approver`, `no_policy_file`: the caller's roles do not allow this (or
    /// it is their own request, or MFA is needed).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// `not_found`: no such grant.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `wrong_state`, `already_approved`, `conflict`, `cap_reached`,
    /// `no_review_owed`: the grant is not in a state that allows this.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// `invalid_field`, `no_policy`, `duration_too_long`, `ticket_required`,
    /// `ticket_mismatch`, `justification_too_short`: a field is wrong; `field` names it.
    #[response(status = 422)]
    InvalidField(ErrorBody),
    /// `busy`, `unavailable`: try again in a moment.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// `internal`: the server failed; the detail was logged.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// An [`ApiError`] as an HTTP response.
#[derive(Debug)]
pub struct ApiFailure(pub ApiError);

impl<E: Into<ApiError>> From<E> for ApiFailure {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error: self.0 })).into_response()
    }
}

/// What a handler of the JSON API answers.
pub type ApiResult<T> = Result<T, ApiFailure>;

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Denied(d) => ApiError::new((&d).into(), d.to_string()),
            AccessError::Field(f) => f.into(),
            AccessError::Unavailable(message) => ApiError::new(ErrorCode::Unavailable, message),
            AccessError::UnknownIdentity(message) => {
                ApiError::new(ErrorCode::UnknownIdentity, message)
            }
            AccessError::TooMany(message) => ApiError::new(ErrorCode::TooManyRequests, message),
            AccessError::Grant(e) => e.into(),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::NotFound(id) => {
                ApiError::new(ErrorCode::NotFound, format!("there is no grant {id}"))
            }
            GrantError::Refused(r) => ApiError::new((&r).into(), r.to_string()),
            e @ GrantError::Busy => ApiError::new(ErrorCode::Busy, e.to_string()),
            GrantError::Store(StoreError::VerificationOpen(id)) => ApiError::new(
                ErrorCode::VerificationRunning,
                format!("a verification of the audit chain is already queued or running ({id}); its result will be on the Audit page"),
            ),
            GrantError::Store(s) => storage_failed(&s),
            GrantError::Policy(r) => ApiError {
                code: (&r).into(),
                message: r.to_string(),
                field: r.field().map(str::to_owned),
            },
            e @ GrantError::NoReviewOwed(_) => {
                ApiError::new(ErrorCode::NoReviewOwed, e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        GrantError::from(e).into()
    }
}

/// The database failed: the detail is logged here, once, and not shown.
fn storage_failed(e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "storage failed while serving a request");
    ApiError::new(
        ErrorCode::Internal,
        "the database failed; the error was logged",
    )
}

/// A JSON body that cannot be read.
pub fn bad_json(e: JsonRejection) -> ApiFailure {
    ApiFailure(match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::BadRequest,
            "send the body as JSON with Content-Type: application/json",
        ),
        other => ApiError::new(
            ErrorCode::BadRequest,
            format!("the JSON body is not valid: {}", other.body_text()),
        ),
    })
}

/// A query string that cannot be read.
pub fn bad_query(e: QueryRejection) -> ApiFailure {
    ApiFailure(ApiError::new(
        ErrorCode::BadRequest,
        format!("the query string is not valid: {}", e.body_text()),
    ))
}

/// A failure past the services (serialising a response): logged, shown as `internal`.
pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiFailure {
    tracing::error!(error = %error, "{what}");
    ApiFailure(ApiError::new(
        ErrorCode::Internal,
        format!("{what}; try again"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::{Denied, GrantId};

    #[test]
    fn each_layer_maps_to_its_status() {
        let cases: [(ApiError, u16); 4] = [
            (AccessError::Denied(Denied::SignInRequired).into(), 401),
            (AccessError::Denied(Denied::MfaRequired).into(), 403),
            (GrantError::NotFound(GrantId(uuid::Uuid::nil())).into(), 404),
            (GrantError::Busy.into(), 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }
}
