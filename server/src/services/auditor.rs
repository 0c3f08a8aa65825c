//! The auditor's handle: the audit log and its hash-chain check, and the review of
//! break-glass use (the one write the role may do). Everybody's grants, their
//! evidence and the history through its [`reader`](Auditor::reader). It has no
//! method that decides, cancels, ends or asks for access, so code holding it
//! cannot:
//!
//! ```compile_fail,E0599
//! # async fn f(access: &timebox_server::services::Access, caller: &app::domain::Caller, id: app::domain::GrantId) {
//! let auditor = access.auditor(caller, app::domain::Operation::ReadAuditLog).unwrap();
//! let _ = auditor.approve(id, None).await;
//! # }
//! ```
//!
//! ```compile_fail,E0599
//! # async fn f(access: &timebox_server::services::Access, caller: &app::domain::Caller, id: app::domain::GrantId) {
//! let auditor = access.auditor(caller, app::domain::Operation::ReadAuditLog).unwrap();
//! let _ = auditor.cancel(id, None).await;
//! # }
//! ```
//!
//! ```compile_fail,E0599
//! # async fn f(access: &timebox_server::services::Access, caller: &app::domain::Caller, id: app::domain::GrantId) {
//! let auditor = access.auditor(caller, app::domain::Operation::ReadAuditLog).unwrap();
//! let _ = auditor.revoke(id, None).await;
//! # }
//! ```
//!
//! while the review compiles:
//!
//! ```no_run
//! # async fn f(access: &timebox_server::services::Access, caller: &app::domain::Caller, id: app::domain::GrantId) {
//! let auditor = access.auditor(caller, app::domain::Operation::ReviewGrant).unwrap();
//! let _ = auditor.review(id, None).await;
//! # }
//! ```

use super::access::{role_handle, AccessError, Answer};
use crate::store::AuditEvent;
use app::domain::{Grant, GrantId, Operation, ReviewComment};

/// Audit events one call returns at most.
const PAGE: u32 = 200;

role_handle!(
    /// Acts for a person who audits (auditors and admins).
    Auditor,
    auditor,
    holders: ReadAuditLog,
    offers: &[
        Operation::ReadAuditLog,
        Operation::VerifyAuditChain,
        Operation::ReviewGrant,
        Operation::ReadGrant,
        Operation::ListOwnGrants,
        Operation::ListAllGrants,
        Operation::ListActiveGrants,
    ]
);

impl Auditor<'_> {
    /// The audit log after `after_seq`, oldest first, a page at a time.
    pub async fn audit_log(&self, after_seq: i64) -> Result<Vec<AuditEvent>, AccessError> {
        self.p.allow(Operation::ReadAuditLog)?;
        Ok(self
            .p
            .core
            .store()
            .audit_events(None, after_seq, PAGE)
            .await?)
    }

    /// A filtered page of the audit log, newest first, with the latest checkpoint.
    pub async fn audit_page(&self, q: app::api::AuditQuery) -> Answer<app::api::AuditPage> {
        self.p.allow(Operation::ReadAuditLog)?;
        super::audit_log::page(self.p.core, q).await
    }

    /// Asks for a verification of the whole audit record (every event, link and
    /// checkpoint, then every grant row against its events), run in the background.
    pub async fn verify_audit(&self) -> Answer<app::api::VerificationView> {
        self.p.allow(Operation::VerifyAuditChain)?;
        super::audit_log::request_verification(self.p.core, self.p.id.as_str()).await
    }

    /// The last verification asked for.
    pub async fn audit_verification(&self) -> Answer<Option<app::api::VerificationView>> {
        self.p.allow(Operation::ReadAuditLog)?;
        super::audit_log::latest_verification(self.p.core).await
    }

    /// Records the review of someone else's break-glass grant.
    pub async fn review(&self, id: GrantId, comment: Option<ReviewComment>) -> Answer<Grant> {
        self.p.review(id, comment).await
    }
}
