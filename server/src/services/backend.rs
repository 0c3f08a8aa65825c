//! The dashboard's backend: [`app::api::backend::Backend`] over the role handles.
//! Pages, server functions and the `/api/v1` routes all call these methods; each
//! parses what the caller typed into domain values, picks the handle the caller's
//! role gives for the operation, and calls one of its methods.

use super::Access;
use app::api::backend::Backend;
use app::api::*;
use app::domain::{Caller, Comment, Grant, GrantId, Operation, Reason, ReviewComment, Role};

#[derive(Debug, Clone)]
pub struct Dashboard {
    access: Access,
}

impl Dashboard {
    pub fn new(access: Access) -> Self {
        Self { access }
    }
}

/// Whether `caller` holds any of `roles` (which handle serves them).
fn holds(caller: &Caller, roles: &[Role]) -> bool {
    roles.iter().any(|r| caller.roles().contains(*r))
}

#[async_trait::async_trait]
impl Backend for Dashboard {
    async fn request_options(&self, caller: &Caller) -> Result<RequestOptions, ApiError> {
        let requester = self.access.requester(caller, Operation::RequestGrant)?;
        Ok(requester.request_options().await?)
    }

    async fn other_paths(
        &self,
        caller: &Caller,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<OtherPath>, ApiError> {
        let requester = self.access.requester(caller, Operation::RequestGrant)?;
        Ok(requester.other_paths(account_id, permission_set).await?)
    }

    async fn request_grant(&self, caller: &Caller, form: RequestForm) -> Result<Grant, ApiError> {
        let requester = self.access.requester(caller, Operation::RequestGrant)?;
        Ok(requester.request(form).await?)
    }

    async fn my_grants(&self, caller: &Caller) -> Result<Vec<Grant>, ApiError> {
        let reader = self.access.reader(caller, Operation::ListOwnGrants)?;
        Ok(reader.my_grants().await?)
    }

    async fn grant(&self, caller: &Caller, id: &str) -> Result<GrantDetail, ApiError> {
        let id = GrantId::parse(id)?;
        let reader = self.access.reader(caller, Operation::ReadGrant)?;
        Ok(reader.detail(id).await?)
    }

    async fn cancel(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        let op = Operation::CancelGrant;
        let applied = if holds(caller, &[Role::Admin]) {
            let admin = self.access.admin(caller, op)?;
            admin
                .cancel(id, Reason::parse_optional(reason.as_deref())?)
                .await
        } else {
            let requester = self.access.requester(caller, op)?;
            requester
                .cancel(id, Reason::parse_optional(reason.as_deref())?)
                .await
        };
        Ok(applied?.grant)
    }

    async fn revoke(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        let op = Operation::RevokeGrantEarly;
        let applied = if holds(caller, &[Role::Approver, Role::Admin]) {
            let approver = self.access.approver(caller, op)?;
            approver
                .revoke(id, Reason::parse_optional(reason.as_deref())?)
                .await
        } else {
            let requester = self.access.requester(caller, op)?;
            requester
                .finish(id, Reason::parse_optional(reason.as_deref())?)
                .await
        };
        Ok(applied?.grant)
    }

    async fn extend(
        &self,
        caller: &Caller,
        id: &str,
        duration: String,
        justification: String,
        ticket: String,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        let requester = self.access.requester(caller, Operation::RequestGrant)?;
        Ok(requester
            .extend(id, duration, justification, ticket)
            .await?)
    }

    async fn decide(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        let op = if approve {
            Operation::ApproveGrant
        } else {
            Operation::DenyGrant
        };
        let approver = self.access.approver(caller, op)?;
        let comment = Comment::parse_optional(comment.as_deref())?;
        let applied = if approve {
            approver.approve(id, comment).await
        } else {
            approver.deny(id, comment).await
        };
        Ok(applied?.grant)
    }

    async fn inbox(&self, caller: &Caller) -> Result<Vec<InboxItem>, ApiError> {
        let approver = self.access.approver(caller, Operation::ReadInbox)?;
        Ok(approver.inbox_items().await?)
    }

    async fn active_now(&self, caller: &Caller) -> Result<Vec<ActiveItem>, ApiError> {
        let reader = self.access.reader(caller, Operation::ListActiveGrants)?;
        Ok(reader.active_now().await?)
    }

    async fn history(&self, caller: &Caller, query: HistoryQuery) -> Result<HistoryPage, ApiError> {
        let reader = self.access.reader(caller, Operation::ListAllGrants)?;
        Ok(reader.history(query).await?)
    }

    async fn admin_status(&self, caller: &Caller) -> Result<AdminStatus, ApiError> {
        let admin = self.access.admin(caller, Operation::ReadAdminStatus)?;
        Ok(admin.status().await?)
    }

    async fn audit_log(&self, caller: &Caller, query: AuditQuery) -> Result<AuditPage, ApiError> {
        let auditor = self.access.auditor(caller, Operation::ReadAuditLog)?;
        Ok(auditor.audit_page(query).await?)
    }

    async fn verify_audit(&self, caller: &Caller) -> Result<VerificationView, ApiError> {
        let auditor = self.access.auditor(caller, Operation::VerifyAuditChain)?;
        Ok(auditor.verify_audit().await?)
    }

    async fn audit_verification(
        &self,
        caller: &Caller,
    ) -> Result<Option<VerificationView>, ApiError> {
        let auditor = self.access.auditor(caller, Operation::ReadAuditLog)?;
        Ok(auditor.audit_verification().await?)
    }

    async fn sync_catalog(&self, caller: &Caller) -> Result<CatalogStatus, ApiError> {
        let admin = self.access.admin(caller, Operation::SyncCatalog)?;
        Ok(admin.sync_catalog().await?)
    }

    async fn policies(
        &self,
        caller: &Caller,
        query: PolicyQuery,
    ) -> Result<PoliciesView, ApiError> {
        let admin = self.access.admin(caller, Operation::ReadAdminStatus)?;
        Ok(admin.policies(query).await?)
    }

    async fn review(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        let op = Operation::ReviewGrant;
        let comment = || ReviewComment::parse_optional(comment.as_deref());
        let reviewed = if holds(caller, &[Role::Auditor, Role::Admin]) {
            let auditor = self.access.auditor(caller, op)?;
            auditor.review(id, comment()?).await
        } else {
            let approver = self.access.approver(caller, op)?;
            approver.review(id, comment()?).await
        };
        Ok(reviewed?)
    }
}
