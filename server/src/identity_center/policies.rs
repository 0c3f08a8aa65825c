//! The AWS calls that close revoked grants' sessions: service control policies
//! (AWS Organizations, on the management account or a delegated administrator) and,
//! as the fallback, a permission set's inline policy (IAM Identity Center). The
//! session pass ([`crate::reaper`]) only sees [`SessionPolicies`];
//! [`super::sdk::SdkIdentityCenter`] implements it over the SDK.

use super::IcError;
use async_trait::async_trait;

/// A service control policy, by id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    pub id: String,
    pub name: String,
}

#[async_trait]
pub trait SessionPolicies: Send + Sync + std::fmt::Debug + 'static {
    /// The organisation's management account (`DescribeOrganization`), which SCPs
    /// do not govern.
    async fn management_account(&self) -> Result<String, IcError>;

    /// Whether Timebox may manage SCPs: the organisation answers and its policies of
    /// type `SERVICE_CONTROL_POLICY` can be listed (checked at start-up).
    async fn check_scp_access(&self) -> Result<(), IcError>;

    /// The SCPs attached directly to `account` (`ListPoliciesForTarget`).
    async fn attached_scps(&self, account: &str) -> Result<Vec<PolicyRef>, IcError>;

    /// The SCP named `name`, if there is one (`ListPolicies`).
    async fn find_scp(&self, name: &str) -> Result<Option<PolicyRef>, IcError>;

    /// A policy's text (`DescribePolicy`); `NotFound` when it was deleted.
    async fn scp_content(&self, id: &str) -> Result<String, IcError>;

    /// Creates an SCP and answers its id; a `DuplicatePolicyException` error when
    /// one has that name.
    async fn create_scp(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, IcError>;

    async fn update_scp(&self, id: &str, content: &str) -> Result<(), IcError>;

    /// Attaches; already attached is success.
    async fn attach_scp(&self, id: &str, account: &str) -> Result<(), IcError>;

    /// Detaches; not attached is success.
    async fn detach_scp(&self, id: &str, account: &str) -> Result<(), IcError>;

    /// Deletes; already gone is success.
    async fn delete_scp(&self, id: &str) -> Result<(), IcError>;

    /// A permission set's inline policy (`None`: it has none).
    async fn inline_policy(&self, permission_set_arn: &str) -> Result<Option<String>, IcError>;

    /// Replaces it, then provisions the permission set to every account it is
    /// provisioned to (`ProvisionPermissionSet`, `ALL_PROVISIONED_ACCOUNTS`) and waits
    /// for that to succeed: the new text applies to the roles already there.
    async fn put_inline_policy(
        &self,
        permission_set_arn: &str,
        document: &str,
    ) -> Result<(), IcError>;
}
