//! The one error of the JSON API and of the server functions: an [`ErrorCode`]
//! (machine-readable, stable, serialized as its snake_case name), a message for
//! people, and the field at fault. On the wire of `/api/v1` it is
//! `{ "error": { "code", "message", "field"? } }`; in a server function's `Err`, this
//! struct. The server maps every layer's error to it in one place
//! (`server/src/web/error.rs`).

use crate::domain::{Denied, FieldError, PolicyRefusal, Refusal};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares [`ErrorCode`] from one table: variant, wire name, HTTP status.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal => $status:literal,)*) => {
        /// What went wrong, for programs: each code has one wire name and one HTTP
        /// status ([`ErrorCode::status`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $code)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire name (`sign_in_required`, …).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status the JSON API answers with.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }
        }

        /// The schema lists the wire names (what the JSON carries), from the same table;
        /// a derive would list the variants' Rust names.
        #[cfg(feature = "ssr")]
        impl utoipa::PartialSchema for ErrorCode {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(
                        "What went wrong, for programs: each code has one HTTP status.",
                    ))
                    .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
                    .into()
            }
        }

        #[cfg(feature = "ssr")]
        impl utoipa::ToSchema for ErrorCode {}
    };
}

error_codes! {
    /// The body or the query string cannot be read.
    BadRequest = "bad_request" => 400,
    /// A field is wrong; `field` names it.
    InvalidField = "invalid_field" => 422,
    SignInRequired = "sign_in_required" => 401,
    /// The caller's roles do not allow this.
    Forbidden = "forbidden" => 403,
    /// The caller asked to act on their own request as its approver.
    OwnRequest = "own_request" => 403,
    /// A requester can never approve or deny their own request.
    SelfDecision = "self_decision" => 403,
    /// The signed-in person maps to no IAM Identity Center user (`oidc.person_claim`,
    /// `identity_center.user_match`): nothing was stored.
    UnknownIdentity = "unknown_identity" => 422,
    /// Sign in again with multi-factor authentication.
    MfaRequired = "mfa_required" => 403,
    /// The grant's policy does not name the caller as an approver.
    NotAnApprover = "not_an_approver" => 403,
    /// No policy file is in force, so nothing can be requested.
    NoPolicyFile = "no_policy_file" => 403,
    NotFound = "not_found" => 404,
    /// The grant is not in a state that allows this.
    WrongState = "wrong_state" => 409,
    AlreadyApproved = "already_approved" => 409,
    Conflict = "conflict" => 409,
    /// The policy's cap on live grants per person is reached.
    CapReached = "cap_reached" => 409,
    /// The grant owes no review (not break-glass, or already reviewed).
    NoReviewOwed = "no_review_owed" => 409,
    /// A verification of the audit chain is already queued or running (one at a time).
    VerificationRunning = "verification_running" => 409,
    /// No policy allows this permission set in this account for the caller.
    NoPolicy = "no_policy" => 422,
    DurationTooLong = "duration_too_long" => 422,
    TicketRequired = "ticket_required" => 422,
    TicketMismatch = "ticket_mismatch" => 422,
    JustificationTooShort = "justification_too_short" => 422,
    /// The caller asked too often; `message` says when to try again.
    TooManyRequests = "too_many_requests" => 429,
    /// Too many writers at once; try again.
    Busy = "busy" => 503,
    /// Identity Center cannot be asked now.
    Unavailable = "unavailable" => 503,
    /// The database does not answer (`/readyz`).
    DatabaseUnreachable = "database_unreachable" => 503,
    /// The server failed; the detail was logged, not shown.
    Internal = "internal" => 500,
    /// The browser could not reach the server function (made in the browser).
    RequestFailed = "request_failed" => 500,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = ();

    /// The code of a wire name.
    fn from_str(s: &str) -> Result<Self, ()> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}

impl From<&Denied> for ErrorCode {
    fn from(d: &Denied) -> Self {
        match d {
            Denied::SignInRequired => ErrorCode::SignInRequired,
            Denied::Forbidden { .. } => ErrorCode::Forbidden,
            Denied::OwnRequest => ErrorCode::OwnRequest,
            Denied::MfaRequired => ErrorCode::MfaRequired,
            Denied::NotAnApprover { .. } => ErrorCode::NotAnApprover,
        }
    }
}

impl From<&Refusal> for ErrorCode {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::WrongState { .. } => ErrorCode::WrongState,
            Refusal::WrongActor { .. } => ErrorCode::Forbidden,
            Refusal::SelfDecision => ErrorCode::SelfDecision,
            Refusal::AlreadyApproved { .. } => ErrorCode::AlreadyApproved,
        }
    }
}

impl From<&PolicyRefusal> for ErrorCode {
    fn from(r: &PolicyRefusal) -> Self {
        match r {
            PolicyRefusal::NoPolicyFile => ErrorCode::NoPolicyFile,
            PolicyRefusal::NoPolicy { .. } => ErrorCode::NoPolicy,
            PolicyRefusal::DurationTooLong { .. } => ErrorCode::DurationTooLong,
            PolicyRefusal::TicketRequired { .. } => ErrorCode::TicketRequired,
            PolicyRefusal::TicketMismatch { .. } => ErrorCode::TicketMismatch,
            PolicyRefusal::JustificationTooShort { .. } => ErrorCode::JustificationTooShort,
            PolicyRefusal::CapReached { .. } => ErrorCode::CapReached,
        }
    }
}

/// The error body's content: `{ "code", "message", "field"? }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub code: ErrorCode,
    /// For people: what went wrong and, where possible, what to do.
    pub message: String,
    /// The form field or JSON key at fault, for `invalid_field` and the policy's
    /// refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// `invalid_field`, naming the field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(ErrorCode::InvalidField, message)
        }
    }

    /// The HTTP status the JSON API answers with.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::field(e.field, e.message)
    }
}

impl leptos::server_fn::error::FromServerFnError for ApiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        ApiError::new(ErrorCode::RequestFailed, value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_to_statuses() {
        for (code, status) in [
            ("bad_request", 400),
            ("invalid_field", 422),
            ("duration_too_long", 422),
            ("sign_in_required", 401),
            ("own_request", 403),
            ("not_an_approver", 403),
            ("not_found", 404),
            ("wrong_state", 409),
            ("cap_reached", 409),
            ("busy", 503),
            ("internal", 500),
        ] {
            let code: ErrorCode = code.parse().expect("a code");
            assert_eq!(ApiError::new(code, "x").status(), status, "{code}");
        }
    }

    #[test]
    fn codes_keep_their_wire_names_and_the_domain_codes() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
        }
        let denied = Denied::MfaRequired;
        assert_eq!(ErrorCode::from(&denied).as_str(), denied.code());
        assert_eq!(
            ErrorCode::from(&Refusal::SelfDecision).as_str(),
            Refusal::SelfDecision.code()
        );
        let cap = PolicyRefusal::NoPolicyFile;
        assert_eq!(ErrorCode::from(&cap).as_str(), cap.code());
    }
}
