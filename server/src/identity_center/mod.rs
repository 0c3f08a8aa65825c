//! IAM Identity Center, behind one trait. The reaper, the catalog sync and identity
//! mapping only see [`IdentityCenter`]; [`sdk::SdkIdentityCenter`] implements it over
//! the official AWS SDK (sso-admin, identitystore, organizations), with injected
//! clients so tests point it at the emulator or at `aws-smithy-mocks`.
//!
//! Errors are classified once, by the AWS kit ([`crate::aws::classify`]):
//! [`IcError::is_retryable`] says whether trying again later can help (throttling,
//! `ConflictException`, 5xx, timeouts).

pub mod catalog;
pub mod policies;
pub mod sdk;

use async_trait::async_trait;

/// The Identity Center instance Timebox works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub instance_arn: String,
    pub identity_store_id: String,
}

/// One account assignment: who, where, what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub account_id: String,
    pub permission_set_arn: String,
    /// `USER` or `GROUP`.
    pub principal_type: String,
    pub principal_id: String,
}

/// A permission set as `DescribePermissionSet` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSetInfo {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// ISO-8601, such as `PT1H`.
    pub session_duration: Option<String>,
}

/// The status of an asynchronous assignment creation or deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    InProgress,
    Succeeded,
    Failed(String),
}

/// The answer to `CreateAccountAssignment` / `DeleteAccountAssignment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub request_id: String,
    pub status: OperationStatus,
}

/// How a dashboard person is looked up in the identity store (a configuration value).
pub use crate::config::UserMatch;
/// The Identity Center user a person maps to.
pub use app::domain::IdentityUser;

/// How a person id is looked up in the identity store, with what the lookup needs
/// (`identity_center.user_match`, and the external ids' issuer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    UserName,
    Email,
    ExternalId { issuer: String },
}

impl UserKey {
    /// What the configuration says; `None` only for `external_id` without an issuer,
    /// which the configuration refuses.
    pub fn from_config(c: &crate::config::IdentityCenterConfig) -> UserKey {
        match c.user_match {
            UserMatch::UserName => UserKey::UserName,
            UserMatch::Email => UserKey::Email,
            UserMatch::ExternalId => UserKey::ExternalId {
                issuer: c.external_id_issuer.clone().unwrap_or_default(),
            },
        }
    }

    /// The configuration's spelling (`user_name`, `email`, `external_id`).
    pub fn as_str(&self) -> &'static str {
        match self {
            UserKey::UserName => UserMatch::UserName.as_str(),
            UserKey::Email => UserMatch::Email.as_str(),
            UserKey::ExternalId { .. } => UserMatch::ExternalId.as_str(),
        }
    }
}

/// A group as the identity store describes it: its display name and the ids its
/// source directory gave it (SCIM from Entra ID sets the group's object id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub group_id: String,
    pub display_name: Option<String>,
    pub external_ids: Vec<String>,
}

impl GroupInfo {
    /// The names a policy's `group:` entry may use for this group: its display name
    /// and its external ids.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.display_name
            .as_deref()
            .into_iter()
            .chain(self.external_ids.iter().map(String::as_str))
    }
}

/// A person's name and addresses in the identity store (for notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContact {
    pub user_name: String,
    /// Primary first.
    pub emails: Vec<String>,
}

/// An Identity Center call's failure: the AWS kit's one error type, under the name
/// Identity Center's callers (the reaper, the dashboard, notifications) know it by.
pub use crate::aws::{AwsError as IcError, AwsErrorKind as IcErrorKind};

/// Why a dashboard person could not be mapped to an identity-store user.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    #[error("no identity-store user has {by} {value:?}; check the user exists in IAM Identity Center, and that identity_center.user_match and oidc.person_claim name the same attribute")]
    NoMatch { by: &'static str, value: String },
    #[error(
        "{count} identity-store users have {by} {value:?}; make it unique or match by user_name"
    )]
    Ambiguous {
        by: &'static str,
        value: String,
        count: usize,
    },
    #[error(transparent)]
    Aws(#[from] IcError),
}

/// The Identity Center operations Timebox needs.
#[async_trait]
pub trait IdentityCenter: Send + Sync + std::fmt::Debug + 'static {
    /// The configured instance, or the one `ListInstances` returns (cached).
    async fn instance(&self) -> Result<Instance, IcError>;

    async fn list_permission_sets(&self) -> Result<Vec<PermissionSetInfo>, IcError>;

    async fn describe_permission_set(&self, arn: &str) -> Result<PermissionSetInfo, IcError>;

    /// The organisation tree: roots, OUs and accounts with their parents.
    async fn organization_tree(&self) -> Result<Vec<crate::store::CatalogNode>, IcError>;

    /// The identity-store user (id and `UserName`) whose `by` attribute is `value`.
    async fn find_user(&self, by: &UserKey, value: &str) -> Result<IdentityUser, IdentityError>;

    /// The groups the user is a direct member of.
    async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, IcError>;

    /// A group's display name and external ids (`DescribeGroup`).
    async fn describe_group(&self, group_id: &str) -> Result<GroupInfo, IcError>;

    async fn create_assignment(&self, a: &Assignment) -> Result<Operation, IcError>;

    async fn creation_status(&self, request_id: &str) -> Result<OperationStatus, IcError>;

    async fn delete_assignment(&self, a: &Assignment) -> Result<Operation, IcError>;

    async fn deletion_status(&self, request_id: &str) -> Result<OperationStatus, IcError>;

    /// Every assignment of `permission_set_arn` in `account_id` (users and groups).
    async fn list_assignments(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<Assignment>, IcError>;

    // --- notifications: recipients --------------------------------------------

    /// The user ids of the members of the group whose display name is `display_name`;
    /// a `NotFound` error when there is no such group.
    async fn group_members(&self, display_name: &str) -> Result<Vec<String>, IcError>;

    /// A user's userName and email addresses (`DescribeUser`).
    async fn user_contact(&self, user_id: &str) -> Result<UserContact, IcError>;

    /// The organisation's management account, which service control policies do not
    /// govern (`None` when this adapter cannot tell).
    async fn management_account(&self) -> Result<Option<String>, IcError> {
        Ok(None)
    }
}

/// The other paths to an access in `assignments` (one permission set in one
/// account): group assignments of the user's `groups`, named by their display names
/// (the id when the name cannot be read), and, when `direct` holds, the user's own
/// direct assignment (a standing one, not made by a grant) named `user_name`.
pub async fn other_paths(
    ic: &dyn IdentityCenter,
    assignments: &[Assignment],
    groups: &[String],
    user_id: &str,
    user_name: &str,
    direct: bool,
) -> Vec<app::domain::OtherPath> {
    let mut paths = Vec::new();
    for a in assignments {
        let principal = if a.principal_type == "GROUP" && groups.contains(&a.principal_id) {
            match ic.describe_group(&a.principal_id).await {
                Ok(g) => g.display_name.unwrap_or_else(|| a.principal_id.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "other paths: cannot read a group's name");
                    a.principal_id.clone()
                }
            }
        } else if direct && a.principal_type == "USER" && a.principal_id == user_id {
            user_name.to_owned()
        } else {
            continue;
        };
        paths.push(app::domain::OtherPath {
            principal_type: a.principal_type.clone(),
            principal,
            principal_id: a.principal_id.clone(),
        });
    }
    paths
}
