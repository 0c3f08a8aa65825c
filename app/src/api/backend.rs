//! The backend the pages and the JSON API call, defined here and implemented by the
//! server crate (over its grant service, store and Identity Center adapter), so this
//! crate never depends on sqlx or the AWS SDK. Every method takes the caller and
//! refuses what the caller may not do: server functions and `/api/v1` routes are
//! thin adapters over these methods, so both are guarded by the same checks.

use super::dto::*;
use super::ApiError;
use crate::domain::{Caller, Grant};
use std::sync::Arc;

#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Accounts, permission sets and what the policy lets the caller ask for.
    async fn request_options(&self, caller: &Caller) -> Result<RequestOptions, ApiError>;

    /// Other ways the caller already reaches this access (group or standing
    /// assignments), asked of Identity Center now.
    async fn other_paths(
        &self,
        caller: &Caller,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<OtherPath>, ApiError>;

    async fn request_grant(&self, caller: &Caller, form: RequestForm) -> Result<Grant, ApiError>;

    async fn my_grants(&self, caller: &Caller) -> Result<Vec<Grant>, ApiError>;

    async fn grant(&self, caller: &Caller, id: &str) -> Result<GrantDetail, ApiError>;

    /// Withdraws a request before it starts (the requester, or an admin).
    async fn cancel(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
    ) -> Result<Grant, ApiError>;

    /// Ends an active grant early ("I'm done" by the requester; an approver's or an
    /// admin's revoke).
    async fn revoke(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
    ) -> Result<Grant, ApiError>;

    /// Asks for more time on an active (or approved) grant: a new request for the
    /// same account and permission set that starts now and overlaps, decided like
    /// any request; the running grant is never cut short.
    async fn extend(
        &self,
        caller: &Caller,
        id: &str,
        duration: String,
        justification: String,
        ticket: String,
    ) -> Result<Grant, ApiError>;

    async fn decide(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Grant, ApiError>;

    async fn inbox(&self, caller: &Caller) -> Result<Vec<InboxItem>, ApiError>;

    async fn active_now(&self, caller: &Caller) -> Result<Vec<ActiveItem>, ApiError>;

    async fn history(&self, caller: &Caller, query: HistoryQuery) -> Result<HistoryPage, ApiError>;

    async fn admin_status(&self, caller: &Caller) -> Result<AdminStatus, ApiError>;

    /// A filtered page of the audit log, newest first (auditors and admins).
    async fn audit_log(&self, caller: &Caller, query: AuditQuery) -> Result<AuditPage, ApiError>;

    /// Asks for a verification of the whole audit chain, run in the background, one
    /// at a time (auditors and admins).
    async fn verify_audit(&self, caller: &Caller) -> Result<VerificationView, ApiError>;

    /// The last verification asked for (auditors and admins).
    async fn audit_verification(
        &self,
        caller: &Caller,
    ) -> Result<Option<VerificationView>, ApiError>;

    async fn sync_catalog(&self, caller: &Caller) -> Result<CatalogStatus, ApiError>;

    /// The effective policies and "who can request what, approved by whom" (admins).
    async fn policies(&self, caller: &Caller, query: PolicyQuery)
        -> Result<PoliciesView, ApiError>;

    /// Records the review of a break-glass grant (approvers, auditors, admins; never
    /// its requester).
    async fn review(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
    ) -> Result<Grant, ApiError>;
}

/// How the server hands the backend to pages and server functions (as context).
pub type SharedBackend = Arc<dyn Backend>;
