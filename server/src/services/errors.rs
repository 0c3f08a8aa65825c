//! One mapping from what the services refuse or fail with to the API's error:
//! denials, lifecycle refusals and wrong fields keep their stable code and message;
//! storage failures are logged here once, with their detail, and reach the caller as
//! `internal` without it; Identity Center failures were logged where they happened
//! and reach the caller as `unavailable`.

use super::access::AccessError;
use super::grants::GrantError;
use app::api::ApiError;

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Denied(d) => ApiError::new(d.code(), d.to_string()),
            AccessError::Field(f) => f.into(),
            AccessError::Unavailable(message) => ApiError::new("unavailable", message),
            AccessError::Grant(GrantError::NotFound(id)) => {
                ApiError::new("not_found", format!("there is no grant {id}"))
            }
            AccessError::Grant(GrantError::Refused(r)) => ApiError::new(r.code(), r.to_string()),
            AccessError::Grant(e @ GrantError::Busy) => ApiError::new("busy", e.to_string()),
            AccessError::Grant(GrantError::Store(s)) => {
                tracing::error!(error = %s, "storage failed while serving a request");
                ApiError::new("internal", "the database failed; the error was logged")
            }
            AccessError::Grant(GrantError::Policy(r)) => ApiError {
                code: r.code().to_owned(),
                message: r.to_string(),
                field: r.field().map(str::to_owned),
            },
            AccessError::Grant(e @ GrantError::NoReviewOwed(_)) => {
                ApiError::new("no_review_owed", e.to_string())
            }
        }
    }
}
