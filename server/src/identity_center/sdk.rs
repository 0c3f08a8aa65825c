//! [`IdentityCenter`] over the official AWS SDK (sso-admin, identitystore,
//! organizations). This file says what each operation asks and what its answer
//! means; the AWS kit ([`crate::aws`]) builds the clients and makes every call
//! (pacing at `aws.max_calls_per_second`, timeout, metrics, logging, error
//! classification, the SDK's paginators).
//!
//! Clients are injected ([`SdkIdentityCenter::new`]: the emulator, `aws-smithy-mocks`)
//! or built from configuration ([`SdkIdentityCenter::from_config`]).

mod policies;

use super::{
    Assignment, GroupInfo, IcError, IcErrorKind, IdentityCenter, IdentityError, IdentityUser,
    Instance, Operation, OperationStatus, PermissionSetInfo, UserContact, UserKey, UserMatch,
};
use crate::aws::{AwsSetup, Calls, Pacer, Priority};
use crate::config::{AwsConfig, IdentityCenterConfig};
use crate::metrics::Metrics;
use crate::store::{CatalogNode, NodeKind};
use async_trait::async_trait;
use aws_sdk_identitystore::types::{AlternateIdentifier, ExternalId, MemberId, UniqueAttribute};
use aws_sdk_ssoadmin::types::{
    AccountAssignmentOperationStatus, PrincipalType, StatusValues, TargetType,
};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The SDK clients Identity Center needs.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sso_admin: aws_sdk_ssoadmin::Client,
    pub identity_store: aws_sdk_identitystore::Client,
    pub organizations: aws_sdk_organizations::Client,
}

#[derive(Debug)]
pub struct SdkIdentityCenter {
    clients: Clients,
    /// Configured values win over discovery.
    configured: (Option<String>, Option<String>),
    instance: OnceCell<Instance>,
    aws: Calls,
}

/// `CreateAccountAssignment` and `DeleteAccountAssignment` name an assignment with
/// the same six fields.
macro_rules! assignment {
    ($request:expr, $instance_arn:expr, $a:expr) => {
        $request
            .instance_arn($instance_arn)
            .target_id(&$a.account_id)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&$a.permission_set_arn)
            .principal_type(PrincipalType::User)
            .principal_id(&$a.principal_id)
    };
}

/// The status of an asynchronous assignment creation or deletion, as every one of
/// the four assignment operations answers it.
fn status_of(
    operation: &'static str,
    s: Option<&AccountAssignmentOperationStatus>,
) -> Result<OperationStatus, IcError> {
    let s = s.ok_or_else(|| IcError::missing(operation, "status"))?;
    Ok(match s.status() {
        Some(StatusValues::Succeeded) => OperationStatus::Succeeded,
        Some(StatusValues::Failed) => {
            OperationStatus::Failed(s.failure_reason().unwrap_or("no reason given").to_owned())
        }
        // IN_PROGRESS, a value this SDK does not know, or none: not success.
        _ => OperationStatus::InProgress,
    })
}

/// The answer to a creation or a deletion: its request id and status.
fn operation_of(
    operation: &'static str,
    s: Option<&AccountAssignmentOperationStatus>,
) -> Result<Operation, IcError> {
    let s = s.ok_or_else(|| IcError::missing(operation, "status"))?;
    Ok(Operation {
        request_id: s
            .request_id()
            .ok_or_else(|| IcError::missing(operation, "RequestId"))?
            .to_owned(),
        status: status_of(operation, Some(s))?,
    })
}

/// Looks an identity-store object up by a unique attribute (`userName`,
/// `displayName`).
fn unique(
    operation: &'static str,
    path: &str,
    value: &str,
) -> Result<AlternateIdentifier, IcError> {
    let attribute = UniqueAttribute::builder()
        .attribute_path(path)
        .attribute_value(aws_smithy_types::Document::String(value.to_owned()))
        .build()
        .map_err(|e| IcError::invalid_request(operation, e))?;
    Ok(AlternateIdentifier::UniqueAttribute(attribute))
}

/// An organisation node from an id and a name (`None` when AWS gave no id).
fn node(
    kind: NodeKind,
    id: Option<String>,
    name: Option<String>,
    parent_id: Option<&str>,
) -> Option<CatalogNode> {
    let id = id?;
    let name = name.unwrap_or_else(|| match kind {
        NodeKind::Root => "Root".to_owned(),
        _ => id.clone(),
    });
    Some(CatalogNode {
        id,
        kind,
        name,
        parent_id: parent_id.map(str::to_owned),
    })
}

impl SdkIdentityCenter {
    /// An email need not be unique: every user is read and the matches counted.
    async fn find_user_by_email(
        &self,
        store_id: &str,
        value: &str,
        no_match: impl Fn() -> IdentityError,
    ) -> Result<IdentityUser, IdentityError> {
        const LIST: &str = "ListUsers";
        let request = self
            .clients
            .identity_store
            .list_users()
            .identity_store_id(store_id);
        let mut matches = self
            .aws
            .pages(LIST, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| {
                p.users
                    .into_iter()
                    .filter(|u| {
                        u.emails()
                            .iter()
                            .any(|e| e.value().is_some_and(|v| v.eq_ignore_ascii_case(value)))
                    })
                    .map(|u| IdentityUser {
                        user_name: u.user_name.clone().unwrap_or_else(|| u.user_id.clone()),
                        user_id: u.user_id,
                    })
            })
            .await?;
        match matches.len() {
            0 => Err(no_match()),
            1 => Ok(matches.remove(0)),
            count => Err(IdentityError::Ambiguous {
                by: UserMatch::Email.as_str(),
                value: value.to_owned(),
                count,
            }),
        }
    }

    /// Over `clients`; `aws` says how calls are paced, timed out and counted.
    pub fn new(
        clients: Clients,
        instance_arn: Option<String>,
        identity_store_id: Option<String>,
        aws: Calls,
    ) -> Self {
        Self {
            clients,
            configured: (instance_arn, identity_store_id),
            instance: OnceCell::new(),
            aws,
        }
    }

    /// Builds the clients with the AWS kit's loader (`[aws]`, and
    /// `identity_center.region` first); every call shares one pacer at
    /// `aws.max_calls_per_second`.
    pub async fn from_config(
        aws: &AwsConfig,
        ic: &IdentityCenterConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let setup = AwsSetup::load(aws, ic.region.clone()).await;
        let clients = Clients {
            sso_admin: setup.sso_admin(),
            identity_store: setup.identity_store(),
            organizations: setup.organizations(),
        };
        let calls = setup
            .calls(metrics)
            .paced(Arc::new(Pacer::limit(aws.max_calls_per_second)));
        Self::new(
            clients,
            ic.instance_arn.clone(),
            ic.identity_store_id.clone(),
            calls,
        )
    }

    async fn instance_arn(&self) -> Result<String, IcError> {
        Ok(self.instance().await?.instance_arn)
    }

    async fn identity_store_id(&self) -> Result<String, IcError> {
        Ok(self.instance().await?.identity_store_id)
    }

    async fn discover_instance(&self) -> Result<Instance, IcError> {
        const OP: &str = "ListInstances";
        let request = self.clients.sso_admin.list_instances();
        let instances = self
            .aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.instances.unwrap_or_default())
            .await?;
        let wanted = self.configured.0.as_deref();
        let found = instances
            .iter()
            .find(|i| wanted.is_none() || i.instance_arn() == wanted)
            .ok_or_else(|| IcError {
                operation: OP,
                kind: IcErrorKind::Permanent,
                code: "NoInstance".to_owned(),
                message: "no IAM Identity Center instance is visible with these \
                          credentials; set identity_center.instance_arn"
                    .to_owned(),
            })?;
        Ok(Instance {
            instance_arn: found
                .instance_arn()
                .ok_or_else(|| IcError::missing(OP, "InstanceArn"))?
                .to_owned(),
            identity_store_id: self
                .configured
                .1
                .clone()
                .or_else(|| found.identity_store_id().map(str::to_owned))
                .ok_or_else(|| IcError::missing(OP, "IdentityStoreId"))?,
        })
    }

    /// The OUs and accounts directly under `parent`, appended to `nodes`; the OUs'
    /// ids are pushed on `parents` to be walked next.
    async fn children(
        &self,
        parent: &str,
        nodes: &mut Vec<CatalogNode>,
        parents: &mut Vec<String>,
    ) -> Result<(), IcError> {
        let orgs = &self.clients.organizations;
        const OUS: &str = "ListOrganizationalUnitsForParent";
        let request = orgs
            .list_organizational_units_for_parent()
            .parent_id(parent);
        let ous = self
            .aws
            .pages(OUS, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.organizational_units.unwrap_or_default())
            .await?;
        for ou in ous {
            if let Some(n) = node(NodeKind::Ou, ou.id, ou.name, Some(parent)) {
                parents.push(n.id.clone());
                nodes.push(n);
            }
        }
        const ACCOUNTS: &str = "ListAccountsForParent";
        let request = orgs.list_accounts_for_parent().parent_id(parent);
        let accounts = self
            .aws
            .pages(ACCOUNTS, request.into_paginator().send(), |p| {
                p.next_token()
            })
            .collect(|p| p.accounts.unwrap_or_default())
            .await?;
        nodes.extend(
            accounts
                .into_iter()
                .filter_map(|a| node(NodeKind::Account, a.id, a.name, Some(parent))),
        );
        Ok(())
    }
}

#[async_trait]
impl IdentityCenter for SdkIdentityCenter {
    async fn instance(&self) -> Result<Instance, IcError> {
        if let (Some(arn), Some(store)) = &self.configured {
            return Ok(Instance {
                instance_arn: arn.clone(),
                identity_store_id: store.clone(),
            });
        }
        self.instance
            .get_or_try_init(|| self.discover_instance())
            .await
            .cloned()
    }

    async fn list_permission_sets(&self) -> Result<Vec<PermissionSetInfo>, IcError> {
        let instance_arn = self.instance_arn().await?;
        const OP: &str = "ListPermissionSets";
        let request = self
            .clients
            .sso_admin
            .list_permission_sets()
            .instance_arn(&instance_arn);
        let arns = self
            .aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.permission_sets.unwrap_or_default())
            .await?;
        let mut sets = Vec::with_capacity(arns.len());
        for arn in arns {
            sets.push(self.describe_permission_set(&arn).await?);
        }
        Ok(sets)
    }

    async fn describe_permission_set(&self, arn: &str) -> Result<PermissionSetInfo, IcError> {
        const OP: &str = "DescribePermissionSet";
        let instance_arn = self.instance_arn().await?;
        let request = self
            .clients
            .sso_admin
            .describe_permission_set()
            .instance_arn(&instance_arn)
            .permission_set_arn(arn);
        let out = self.aws.call(OP, request.send()).await?;
        let ps = out
            .permission_set()
            .ok_or_else(|| IcError::missing(OP, "PermissionSet"))?;
        Ok(PermissionSetInfo {
            arn: arn.to_owned(),
            name: ps
                .name()
                .ok_or_else(|| IcError::missing(OP, "Name"))?
                .to_owned(),
            description: ps.description().map(str::to_owned),
            session_duration: ps.session_duration().map(str::to_owned),
        })
    }

    async fn organization_tree(&self) -> Result<Vec<CatalogNode>, IcError> {
        const OP: &str = "ListRoots";
        let request = self.clients.organizations.list_roots();
        let roots = self
            .aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.roots.unwrap_or_default())
            .await?;
        let mut nodes: Vec<CatalogNode> = roots
            .into_iter()
            .filter_map(|r| node(NodeKind::Root, r.id, r.name, None))
            .collect();
        let mut parents: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        while let Some(parent) = parents.pop() {
            self.children(&parent, &mut nodes, &mut parents).await?;
        }
        Ok(nodes)
    }

    async fn find_user(&self, by: &UserKey, value: &str) -> Result<IdentityUser, IdentityError> {
        let store_id = self.identity_store_id().await?;
        let ids = &self.clients.identity_store;
        let by_name = by.as_str();
        let no_match = || IdentityError::NoMatch {
            by: by_name,
            value: value.to_owned(),
        };
        const GET: &str = "GetUserId";
        let identifier = match by {
            // userName is unique in an identity store: one GetUserId call.
            UserKey::UserName => unique(GET, "userName", value)?,
            UserKey::ExternalId { issuer } => AlternateIdentifier::ExternalId(
                ExternalId::builder()
                    .issuer(issuer)
                    .id(value)
                    .build()
                    .map_err(|e| IcError::invalid_request(GET, e))?,
            ),
            UserKey::Email => return self.find_user_by_email(&store_id, value, no_match).await,
        };
        let request = ids
            .get_user_id()
            .identity_store_id(&store_id)
            .alternate_identifier(identifier);
        let user_id = match self.aws.call(GET, request.send()).await {
            Ok(o) => o.user_id,
            Err(e) if e.kind == IcErrorKind::NotFound => return Err(no_match()),
            Err(e) => return Err(e.into()),
        };
        let user_name = match by {
            UserKey::UserName => value.to_owned(),
            _ => self.user_contact(&user_id).await?.user_name,
        };
        Ok(IdentityUser { user_id, user_name })
    }

    async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, IcError> {
        let store_id = self.identity_store_id().await?;
        const OP: &str = "ListGroupMembershipsForMember";
        let request = self
            .clients
            .identity_store
            .list_group_memberships_for_member()
            .identity_store_id(&store_id)
            .member_id(MemberId::UserId(user_id.to_owned()));
        self.aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.group_memberships.into_iter().filter_map(|m| m.group_id))
            .await
    }

    async fn describe_group(&self, group_id: &str) -> Result<GroupInfo, IcError> {
        let store_id = self.identity_store_id().await?;
        let request = self
            .clients
            .identity_store
            .describe_group()
            .identity_store_id(&store_id)
            .group_id(group_id);
        let out = self.aws.call("DescribeGroup", request.send()).await?;
        Ok(GroupInfo {
            group_id: out.group_id().to_owned(),
            display_name: out.display_name().map(str::to_owned),
            external_ids: out
                .external_ids()
                .iter()
                .map(|e| e.id().to_owned())
                .collect(),
        })
    }

    async fn create_assignment(&self, a: &Assignment) -> Result<Operation, IcError> {
        const OP: &str = "CreateAccountAssignment";
        let instance_arn = self.instance_arn().await?;
        let request = assignment!(
            self.clients.sso_admin.create_account_assignment(),
            &instance_arn,
            a
        );
        let out = self.aws.call(OP, request.send()).await?;
        operation_of(OP, out.account_assignment_creation_status())
    }

    async fn creation_status(&self, request_id: &str) -> Result<OperationStatus, IcError> {
        const OP: &str = "DescribeAccountAssignmentCreationStatus";
        let instance_arn = self.instance_arn().await?;
        let request = self
            .clients
            .sso_admin
            .describe_account_assignment_creation_status()
            .instance_arn(&instance_arn)
            .account_assignment_creation_request_id(request_id);
        let out = self.aws.call(OP, request.send()).await?;
        status_of(OP, out.account_assignment_creation_status())
    }

    async fn delete_assignment(&self, a: &Assignment) -> Result<Operation, IcError> {
        const OP: &str = "DeleteAccountAssignment";
        let instance_arn = self.instance_arn().await?;
        let request = assignment!(
            self.clients.sso_admin.delete_account_assignment(),
            &instance_arn,
            a
        );
        let out = self
            .aws
            .with_priority(Priority::First)
            .call(OP, request.send())
            .await?;
        operation_of(OP, out.account_assignment_deletion_status())
    }

    async fn deletion_status(&self, request_id: &str) -> Result<OperationStatus, IcError> {
        const OP: &str = "DescribeAccountAssignmentDeletionStatus";
        let instance_arn = self.instance_arn().await?;
        let request = self
            .clients
            .sso_admin
            .describe_account_assignment_deletion_status()
            .instance_arn(&instance_arn)
            .account_assignment_deletion_request_id(request_id);
        let out = self
            .aws
            .with_priority(Priority::First)
            .call(OP, request.send())
            .await?;
        status_of(OP, out.account_assignment_deletion_status())
    }

    async fn list_assignments(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<Assignment>, IcError> {
        let instance_arn = self.instance_arn().await?;
        const OP: &str = "ListAccountAssignments";
        let request = self
            .clients
            .sso_admin
            .list_account_assignments()
            .instance_arn(&instance_arn)
            .account_id(account_id)
            .permission_set_arn(permission_set_arn);
        self.aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| {
                p.account_assignments
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| Assignment {
                        account_id: a.account_id.unwrap_or_else(|| account_id.to_owned()),
                        permission_set_arn: a
                            .permission_set_arn
                            .unwrap_or_else(|| permission_set_arn.to_owned()),
                        principal_type: a
                            .principal_type
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                        principal_id: a.principal_id.unwrap_or_default(),
                    })
            })
            .await
    }

    // --- notifications: recipients --------------------------------------------

    async fn group_members(&self, display_name: &str) -> Result<Vec<String>, IcError> {
        const GET: &str = "GetGroupId";
        let store_id = self.identity_store_id().await?;
        let ids = &self.clients.identity_store;
        let request = ids
            .get_group_id()
            .identity_store_id(&store_id)
            .alternate_identifier(unique(GET, "displayName", display_name)?);
        let group = self.aws.call(GET, request.send()).await?.group_id;
        const LIST: &str = "ListGroupMemberships";
        let request = ids
            .list_group_memberships()
            .identity_store_id(&store_id)
            .group_id(&group);
        self.aws
            .pages(LIST, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| {
                p.group_memberships
                    .into_iter()
                    .filter_map(|m| match m.member_id {
                        Some(MemberId::UserId(id)) => Some(id),
                        _ => None,
                    })
            })
            .await
    }

    async fn user_contact(&self, user_id: &str) -> Result<UserContact, IcError> {
        let store_id = self.identity_store_id().await?;
        let request = self
            .clients
            .identity_store
            .describe_user()
            .identity_store_id(&store_id)
            .user_id(user_id);
        let out = self.aws.call("DescribeUser", request.send()).await?;
        let mut emails: Vec<(bool, String)> = out
            .emails()
            .iter()
            .filter_map(|e| e.value().map(|v| (!e.primary(), v.to_owned())))
            .collect();
        // Primary first (false sorts before true), then as listed.
        emails.sort_by_key(|(not_primary, _)| *not_primary);
        Ok(UserContact {
            user_name: out.user_name().unwrap_or(user_id).to_owned(),
            emails: emails.into_iter().map(|(_, v)| v).collect(),
        })
    }

    async fn management_account(&self) -> Result<Option<String>, IcError> {
        crate::identity_center::policies::SessionPolicies::management_account(self)
            .await
            .map(Some)
    }
}
