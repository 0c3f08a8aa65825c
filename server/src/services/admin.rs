//! The admin's handle: the catalog, the reaper's health and drift, the policies in
//! force, the catalog sync on request, and withdrawing anyone's request. An admin
//! holds every other role's handle too ([`Admin::requester`], [`Admin::approver`],
//! [`Admin::auditor`], [`Admin::reader`]); the rule still never lets them decide
//! their own request.

use super::access::{role_handle, AccessError, Acted, Handle};
use super::{status, Approver, Auditor, Requester};
use app::api::{AdminStatus, CatalogStatus, PoliciesView, PolicyQuery};
use app::domain::{GrantAction, GrantId, Operation, Reason};

role_handle!(
    /// Acts for an admin.
    Admin,
    admin,
    holders: ReadAdminStatus,
    offers: &Operation::ALL
);

impl<'a> Admin<'a> {
    pub fn requester(&self) -> Requester<'a> {
        Requester::new(self.p)
    }

    pub fn approver(&self) -> Approver<'a> {
        Approver::new(self.p)
    }

    pub fn auditor(&self) -> Auditor<'a> {
        Auditor::new(self.p)
    }

    /// The catalog, the reaper's health, drift reports and the active grants.
    pub async fn status(&self) -> Result<AdminStatus, AccessError> {
        self.p.allow(Operation::ReadAdminStatus)?;
        status::admin_status(self.p.core).await
    }

    /// Re-reads the catalog from Identity Center now.
    pub async fn sync_catalog(&self) -> Result<CatalogStatus, AccessError> {
        self.p.allow(Operation::SyncCatalog)?;
        status::sync_catalog(self.p.core).await
    }

    /// The policies in force and "who can request what, approved by whom".
    pub async fn policies(&self, query: PolicyQuery) -> Result<PoliciesView, AccessError> {
        self.p.allow(Operation::ReadAdminStatus)?;
        status::policies(self.p.core, query).await
    }

    /// Withdraws anyone's request before it starts.
    pub async fn cancel(&self, id: GrantId, reason: Option<Reason>) -> Acted {
        self.p.act(id, GrantAction::Cancel, false, reason).await
    }
}
