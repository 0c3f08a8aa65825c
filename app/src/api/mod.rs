//! The contract between the browser and the server: data the pages receive
//! ([`dto`]), the one error ([`error`]), the [`backend`] trait the server implements, and the server functions —
//! adapters of one line each that take the caller and the backend from the request's
//! context and call one backend method.

#[cfg(feature = "ssr")]
pub mod backend;
pub mod dto;
pub mod error;

pub use dto::*;
pub use error::{ApiError, ErrorCode};

use crate::domain::{AccessPolicy, Caller, Grant};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Who is looking at the page, as the server resolved it for this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Viewer {
    pub caller: Caller,
    /// The rules that depend on configuration (MFA for approvers).
    pub policy: AccessPolicy,
    /// Whether sign-in is configured (`[oidc]`); without it nobody can sign in.
    pub sign_in_available: bool,
}

impl Default for Viewer {
    fn default() -> Self {
        Self {
            caller: Caller::Anonymous,
            policy: AccessPolicy::default(),
            sign_in_available: false,
        }
    }
}

/// The signed-in person and their roles. The server provides [`Viewer`] as context
/// for every request (pages and server functions alike).
#[server(endpoint = "viewer")]
pub async fn current_viewer() -> Result<Viewer, ServerFnError> {
    Ok(use_context::<Viewer>().unwrap_or_default())
}

/// The caller and the backend the server put into this request's context.
#[cfg(feature = "ssr")]
fn ctx() -> Result<(Caller, backend::SharedBackend), ApiError> {
    let caller = use_context::<Caller>().unwrap_or(Caller::Anonymous);
    let backend = use_context::<backend::SharedBackend>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the server is not ready"))?;
    Ok((caller, backend))
}

/// `Some(text)` trimmed, unless blank (optional comments and reasons, from a form
/// or the JSON API).
#[cfg(feature = "ssr")]
pub fn given(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

#[server(endpoint = "request_options")]
pub async fn get_request_options() -> Result<RequestOptions, ApiError> {
    let (caller, backend) = ctx()?;
    backend.request_options(&caller).await
}

#[server(endpoint = "other_paths")]
pub async fn other_paths(
    account_id: String,
    permission_set: String,
) -> Result<Vec<OtherPath>, ApiError> {
    let (caller, backend) = ctx()?;
    backend
        .other_paths(&caller, &account_id, &permission_set)
        .await
}

#[server(endpoint = "request_grant")]
pub async fn request_grant(form: RequestForm) -> Result<Grant, ApiError> {
    let (caller, backend) = ctx()?;
    backend.request_grant(&caller, form).await
}

#[server(endpoint = "my_grants")]
pub async fn my_grants() -> Result<Vec<Grant>, ApiError> {
    let (caller, backend) = ctx()?;
    backend.my_grants(&caller).await
}

#[server(endpoint = "grant_detail")]
pub async fn get_grant_detail(id: String) -> Result<GrantDetail, ApiError> {
    let (caller, backend) = ctx()?;
    backend.grant(&caller, &id).await
}

#[server(endpoint = "cancel_grant")]
pub async fn cancel_grant(id: String, reason: Option<String>) -> Result<Grant, ApiError> {
    let (caller, backend) = ctx()?;
    backend.cancel(&caller, &id, given(reason)).await
}

#[server(endpoint = "revoke_grant")]
pub async fn revoke_grant(id: String, reason: Option<String>) -> Result<Grant, ApiError> {
    let (caller, backend) = ctx()?;
    backend.revoke(&caller, &id, given(reason)).await
}

#[server(endpoint = "extend_grant")]
pub async fn extend_grant(
    id: String,
    duration: String,
    justification: String,
    ticket: Option<String>,
) -> Result<Grant, ApiError> {
    let (caller, backend) = ctx()?;
    backend
        .extend(
            &caller,
            &id,
            duration,
            justification,
            ticket.unwrap_or_default(),
        )
        .await
}

/// `decision` is `approve` or `deny`.
#[server(endpoint = "decide_grant")]
pub async fn decide_grant(
    id: String,
    decision: String,
    comment: Option<String>,
) -> Result<Grant, ApiError> {
    let (caller, backend) = ctx()?;
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(ApiError::field("decision", "is neither approve nor deny")),
    };
    backend.decide(&caller, &id, approve, given(comment)).await
}

#[server(endpoint = "inbox")]
pub async fn inbox() -> Result<Vec<InboxItem>, ApiError> {
    let (caller, backend) = ctx()?;
    backend.inbox(&caller).await
}

#[server(endpoint = "active_now")]
pub async fn active_now() -> Result<Vec<ActiveItem>, ApiError> {
    let (caller, backend) = ctx()?;
    backend.active_now(&caller).await
}

#[server(endpoint = "history")]
pub async fn history(query: HistoryQuery) -> Result<HistoryPage, ApiError> {
    let (caller, backend) = ctx()?;
    backend.history(&caller, query).await
}

#[server(endpoint = "audit_log")]
pub async fn audit_log(query: AuditQuery) -> Result<AuditPage, ApiError> {
    let (caller, backend) = ctx()?;
    backend.audit_log(&caller, query).await
}

#[server(endpoint = "verify_audit")]
pub async fn verify_audit() -> Result<VerificationView, ApiError> {
    let (caller, backend) = ctx()?;
    backend.verify_audit(&caller).await
}

#[server(endpoint = "audit_verification")]
pub async fn audit_verification() -> Result<Option<VerificationView>, ApiError> {
    let (caller, backend) = ctx()?;
    backend.audit_verification(&caller).await
}

#[server(endpoint = "admin_status")]
pub async fn get_admin_status() -> Result<AdminStatus, ApiError> {
    let (caller, backend) = ctx()?;
    backend.admin_status(&caller).await
}

#[server(endpoint = "sync_catalog")]
pub async fn sync_catalog() -> Result<CatalogStatus, ApiError> {
    let (caller, backend) = ctx()?;
    backend.sync_catalog(&caller).await
}

#[server(endpoint = "policies")]
pub async fn get_policies(query: PolicyQuery) -> Result<PoliciesView, ApiError> {
    let (caller, backend) = ctx()?;
    backend.policies(&caller, query).await
}

#[server(endpoint = "review_grant")]
pub async fn review_grant(id: String, comment: Option<String>) -> Result<Grant, ApiError> {
    let (caller, backend) = ctx()?;
    backend.review(&caller, &id, given(comment)).await
}
