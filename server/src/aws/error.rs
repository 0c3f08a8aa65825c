//! The one classification of AWS failures: every SDK error becomes an [`AwsError`]
//! with the operation, a [`AwsErrorKind`] (may trying again help?), AWS's code and
//! message. Callers decide by kind, never by matching message text.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::time::Duration;

/// What kind of failure an AWS call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Throttling, `ConflictException`, 5xx, timeouts, connection failures: try again.
    Retryable,
    /// The thing asked about does not exist.
    NotFound,
    /// Anything else (access denied, validation): retrying will not help.
    Permanent,
}

impl AwsErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AwsErrorKind::Retryable => "retryable",
            AwsErrorKind::NotFound => "not_found",
            AwsErrorKind::Permanent => "permanent",
        }
    }
}

/// A failed AWS call, classified once by [`classify`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed ({code}): {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    /// AWS's error code (`ThrottlingException`, …) or a transport class (`Timeout`,
    /// `DispatchFailure`, …).
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn is_retryable(&self) -> bool {
        self.kind == AwsErrorKind::Retryable
    }

    /// AWS refused the caller the operation (missing permission, an SCP, or an
    /// organisation feature that is not enabled).
    pub fn is_access_denied(&self) -> bool {
        ACCESS_DENIED_CODES.contains(&self.code.as_str())
    }

    /// No answer within `after` (counted like the SDK's own timeout).
    pub fn timeout(operation: &'static str, after: Duration) -> Self {
        Self {
            operation,
            kind: AwsErrorKind::Retryable,
            code: "Timeout".to_owned(),
            message: format!("no answer within {after:?}"),
        }
    }

    /// A request Timebox could not build (a builder refused a value).
    pub fn invalid_request(operation: &'static str, why: impl std::fmt::Display) -> Self {
        Self {
            operation,
            kind: AwsErrorKind::Permanent,
            code: "ConstructionFailure".to_owned(),
            message: why.to_string(),
        }
    }

    /// An answer without a field Timebox needs.
    pub fn missing(operation: &'static str, what: &str) -> Self {
        Self {
            operation,
            kind: AwsErrorKind::Permanent,
            code: "MissingField".to_owned(),
            message: format!("the answer has no {what}"),
        }
    }
}

/// AWS codes that mean "not now" whatever the HTTP status. `Throttling` is the
/// query-protocol services' (IAM, STS) name for `ThrottlingException`.
/// Codes that mean "not allowed", whatever the service.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "AWSOrganizationsNotInUseException",
    "PolicyTypeNotEnabledException",
    "UnauthorizedOperation",
];

/// Codes that mean "no such thing": most services' one, and S3's (a missing key,
/// version, bucket or Object Lock configuration; `NotFound` is HeadObject's bodiless
/// 404).
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchVersion",
    "NoSuchBucket",
    "NotFound",
    "ObjectLockConfigurationNotFoundError",
    "NoSuchObjectLockConfiguration",
];

const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ConflictException",
    "InternalServerException",
    "ServiceUnavailableException",
    "ConcurrentModificationException",
];

/// Turns any SDK error into an [`AwsError`].
pub fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, code, message) = match &err {
        SdkError::TimeoutError(_) => (AwsErrorKind::Retryable, "Timeout".to_owned(), String::new()),
        SdkError::DispatchFailure(d) => (
            AwsErrorKind::Retryable,
            "DispatchFailure".to_owned(),
            format!("{d:?}"),
        ),
        SdkError::ResponseError(_) => (
            AwsErrorKind::Retryable,
            "ResponseError".to_owned(),
            "the response could not be read".to_owned(),
        ),
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("Unknown").to_owned();
            let message = ctx.err().message().unwrap_or_default().to_owned();
            let kind = if RETRYABLE_CODES.contains(&code.as_str()) {
                AwsErrorKind::Retryable
            } else if NOT_FOUND_CODES.contains(&code.as_str()) {
                AwsErrorKind::NotFound
            } else if status >= 500 || status == 429 {
                AwsErrorKind::Retryable
            } else {
                AwsErrorKind::Permanent
            };
            (kind, code, message)
        }
        _ => (
            AwsErrorKind::Permanent,
            "ConstructionFailure".to_owned(),
            format!("{err}"),
        ),
    };
    AwsError {
        operation,
        kind,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssoadmin::error::ErrorMetadata;
    use aws_sdk_ssoadmin::operation::delete_account_assignment::DeleteAccountAssignmentError;
    use aws_smithy_types::body::SdkBody;

    fn service(status: u16, code: Option<&str>) -> AwsError {
        let mut meta = ErrorMetadata::builder().message("said AWS");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let err = DeleteAccountAssignmentError::generic(meta.build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        classify("DeleteAccountAssignment", SdkError::service_error(err, raw))
    }

    #[test]
    fn codes_and_statuses_decide_the_kind() {
        for code in [
            "ThrottlingException",
            "ConflictException",
            "TooManyRequestsException",
        ] {
            assert_eq!(
                service(400, Some(code)).kind,
                AwsErrorKind::Retryable,
                "{code}"
            );
        }
        assert_eq!(service(503, None).kind, AwsErrorKind::Retryable);
        assert_eq!(service(429, Some("SlowDown")).kind, AwsErrorKind::Retryable);
        let missing = service(400, Some("ResourceNotFoundException"));
        assert_eq!(missing.kind, AwsErrorKind::NotFound);
        assert_eq!(service(404, Some("NoSuchKey")).kind, AwsErrorKind::NotFound);
        let denied = service(403, Some("AccessDeniedException"));
        assert_eq!(denied.kind, AwsErrorKind::Permanent);
        assert_eq!(denied.code, "AccessDeniedException");
        assert_eq!(denied.message, "said AWS");
        assert_eq!(
            denied.to_string(),
            "DeleteAccountAssignment failed (AccessDeniedException): said AWS"
        );
        assert_eq!(service(400, None).code, "Unknown");
    }

    #[test]
    fn transport_failures_are_retryable() {
        let timeout: SdkError<DeleteAccountAssignmentError, HttpResponse> =
            SdkError::timeout_error("slow");
        let e = classify("DeleteAccountAssignment", timeout);
        assert_eq!(
            (e.kind, e.code.as_str()),
            (AwsErrorKind::Retryable, "Timeout")
        );
        assert!(AwsError::timeout("X", Duration::from_secs(1)).is_retryable());
        assert!(!AwsError::missing("X", "Name").is_retryable());
    }
}
