//! [`IdentityCenter`] over the official AWS SDK. Clients are injected
//! ([`SdkIdentityCenter::new`]) or built from configuration
//! ([`SdkIdentityCenter::from_config`]): region, credentials and endpoints come from
//! the SDK's default chain (including `AWS_ENDPOINT_URL*`), and every endpoint can be
//! overridden in `[aws]`. Precedence is the SDK's: a per-service key (set on the
//! service's builder) beats `aws.endpoint_url` (set in code on the shared loader, so
//! it counts as client configuration), which beats `AWS_ENDPOINT_URL_<SERVICE>`,
//! which beats `AWS_ENDPOINT_URL`.
//!
//! The SDK's own retries are turned off: the reaper retries with persisted backoff,
//! so a retry survives a restart and every failure is counted and visible.

use super::{
    Assignment, IcError, IcErrorKind, IdentityCenter, IdentityError, Instance, Operation,
    OperationStatus, PermissionSetInfo, UserContact, UserMatch,
};
use crate::config::{AwsConfig, IdentityCenterConfig};
use crate::metrics::Metrics;
use crate::store::{CatalogNode, NodeKind};
use async_trait::async_trait;
use aws_sdk_ssoadmin::config::http::HttpResponse;
use aws_sdk_ssoadmin::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssoadmin::types::{PrincipalType, StatusValues, TargetType};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};

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
    metrics: Arc<Metrics>,
    /// The earliest moment the next call may start (`aws.max_calls_per_second`).
    next_slot: Mutex<Instant>,
    min_gap: Option<Duration>,
}

/// Turns any SDK error into an [`IcError`], classifying it once.
pub(crate) fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> IcError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, code, message) = match &err {
        SdkError::TimeoutError(_) => (IcErrorKind::Retryable, "Timeout".to_owned(), String::new()),
        SdkError::DispatchFailure(d) => (
            IcErrorKind::Retryable,
            "DispatchFailure".to_owned(),
            format!("{d:?}"),
        ),
        SdkError::ResponseError(_) => (
            IcErrorKind::Retryable,
            "ResponseError".to_owned(),
            "the response could not be read".to_owned(),
        ),
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("Unknown").to_owned();
            let message = ctx.err().message().unwrap_or_default().to_owned();
            let kind = match code.as_str() {
                "ThrottlingException"
                | "TooManyRequestsException"
                | "ConflictException"
                | "InternalServerException"
                | "ServiceUnavailableException"
                | "ConcurrentModificationException" => IcErrorKind::Retryable,
                "ResourceNotFoundException" => IcErrorKind::NotFound,
                _ if status >= 500 || status == 429 => IcErrorKind::Retryable,
                _ => IcErrorKind::Permanent,
            };
            (kind, code, message)
        }
        _ => (
            IcErrorKind::Permanent,
            "ConstructionFailure".to_owned(),
            format!("{err}"),
        ),
    };
    IcError {
        operation,
        kind,
        code,
        message,
    }
}

fn status_of(status: Option<&StatusValues>, failure_reason: Option<&str>) -> OperationStatus {
    match status {
        Some(StatusValues::Succeeded) => OperationStatus::Succeeded,
        Some(StatusValues::Failed) => {
            OperationStatus::Failed(failure_reason.unwrap_or("no reason given").to_owned())
        }
        // IN_PROGRESS, a value this SDK does not know, or none: not success.
        _ => OperationStatus::InProgress,
    }
}

fn missing(operation: &'static str, what: &str) -> IcError {
    IcError {
        operation,
        kind: IcErrorKind::Permanent,
        code: "MissingField".to_owned(),
        message: format!("the answer has no {what}"),
    }
}

impl SdkIdentityCenter {
    pub fn new(
        clients: Clients,
        instance_arn: Option<String>,
        identity_store_id: Option<String>,
        metrics: Arc<Metrics>,
        max_calls_per_second: Option<u32>,
    ) -> Self {
        Self {
            clients,
            configured: (instance_arn, identity_store_id),
            instance: OnceCell::new(),
            metrics,
            next_slot: Mutex::new(Instant::now()),
            min_gap: max_calls_per_second
                .filter(|n| *n > 0)
                .map(|n| Duration::from_secs_f64(1.0 / f64::from(n))),
        }
    }

    /// Builds the clients from the SDK's default chain and `[aws]`/`[identity_center]`.
    pub async fn from_config(
        aws: &AwsConfig,
        ic: &IdentityCenterConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let region = aws_config::meta::region::RegionProviderChain::first_try(
            ic.region.clone().map(aws_config::Region::new),
        )
        .or_default_provider()
        .or_else("us-east-1");
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(aws.call_timeout)
                    .build(),
            );
        if let Some(url) = &aws.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let shared = loader.load().await;
        let mut sso = aws_sdk_ssoadmin::config::Builder::from(&shared);
        if let Some(url) = &aws.sso_admin_endpoint_url {
            sso = sso.endpoint_url(url);
        }
        let mut ids = aws_sdk_identitystore::config::Builder::from(&shared);
        if let Some(url) = &aws.identity_store_endpoint_url {
            ids = ids.endpoint_url(url);
        }
        let mut orgs = aws_sdk_organizations::config::Builder::from(&shared);
        if let Some(url) = &aws.organizations_endpoint_url {
            orgs = orgs.endpoint_url(url);
        }
        let clients = Clients {
            sso_admin: aws_sdk_ssoadmin::Client::from_conf(sso.build()),
            identity_store: aws_sdk_identitystore::Client::from_conf(ids.build()),
            organizations: aws_sdk_organizations::Client::from_conf(orgs.build()),
        };
        Self::new(
            clients,
            ic.instance_arn.clone(),
            ic.identity_store_id.clone(),
            metrics,
            aws.max_calls_per_second,
        )
    }

    /// Waits for this call's slot under the rate limit.
    async fn pace(&self) {
        let Some(gap) = self.min_gap else { return };
        let wait = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + gap;
            slot.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Paces, times and counts one call.
    async fn call<T, F>(&self, operation: &'static str, f: F) -> Result<T, IcError>
    where
        F: std::future::Future<Output = Result<T, IcError>>,
    {
        self.pace().await;
        let started = Instant::now();
        let result = f.await;
        self.metrics
            .aws_call_seconds
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.metrics
                .aws_call_errors
                .with_label_values(&[operation, &e.code])
                .inc();
            tracing::warn!(operation, code = %e.code, kind = e.kind.as_str(), message = %e.message, "AWS call failed");
        }
        result
    }

    async fn instance_arn(&self) -> Result<String, IcError> {
        Ok(self.instance().await?.instance_arn)
    }

    async fn identity_store_id(&self) -> Result<String, IcError> {
        Ok(self.instance().await?.identity_store_id)
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
            .get_or_try_init(|| async {
                let out = self
                    .call("ListInstances", async {
                        self.clients
                            .sso_admin
                            .list_instances()
                            .send()
                            .await
                            .map_err(|e| classify("ListInstances", e))
                    })
                    .await?;
                let wanted = self.configured.0.as_deref();
                let found = out
                    .instances()
                    .iter()
                    .find(|i| wanted.is_none() || i.instance_arn() == wanted)
                    .ok_or_else(|| IcError {
                        operation: "ListInstances",
                        kind: IcErrorKind::Permanent,
                        code: "NoInstance".to_owned(),
                        message: "no IAM Identity Center instance is visible with these \
                                  credentials; set identity_center.instance_arn"
                            .to_owned(),
                    })?;
                Ok(Instance {
                    instance_arn: found
                        .instance_arn()
                        .ok_or_else(|| missing("ListInstances", "InstanceArn"))?
                        .to_owned(),
                    identity_store_id: self
                        .configured
                        .1
                        .clone()
                        .or_else(|| found.identity_store_id().map(str::to_owned))
                        .ok_or_else(|| missing("ListInstances", "IdentityStoreId"))?,
                })
            })
            .await
            .cloned()
    }

    async fn list_permission_sets(&self) -> Result<Vec<PermissionSetInfo>, IcError> {
        let instance_arn = self.instance_arn().await?;
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListPermissionSets", async {
                    self.clients
                        .sso_admin
                        .list_permission_sets()
                        .instance_arn(&instance_arn)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListPermissionSets", e))
                })
                .await?;
            arns.extend(out.permission_sets().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let mut sets = Vec::with_capacity(arns.len());
        for arn in arns {
            sets.push(self.describe_permission_set(&arn).await?);
        }
        Ok(sets)
    }

    async fn describe_permission_set(&self, arn: &str) -> Result<PermissionSetInfo, IcError> {
        let instance_arn = self.instance_arn().await?;
        let out = self
            .call("DescribePermissionSet", async {
                self.clients
                    .sso_admin
                    .describe_permission_set()
                    .instance_arn(&instance_arn)
                    .permission_set_arn(arn)
                    .send()
                    .await
                    .map_err(|e| classify("DescribePermissionSet", e))
            })
            .await?;
        let ps = out
            .permission_set()
            .ok_or_else(|| missing("DescribePermissionSet", "PermissionSet"))?;
        Ok(PermissionSetInfo {
            arn: arn.to_owned(),
            name: ps
                .name()
                .ok_or_else(|| missing("DescribePermissionSet", "Name"))?
                .to_owned(),
            description: ps.description().map(str::to_owned),
            session_duration: ps.session_duration().map(str::to_owned),
        })
    }

    async fn organization_tree(&self) -> Result<Vec<CatalogNode>, IcError> {
        let orgs = &self.clients.organizations;
        let roots = self
            .call("ListRoots", async {
                orgs.list_roots()
                    .send()
                    .await
                    .map_err(|e| classify("ListRoots", e))
            })
            .await?;
        let mut nodes = Vec::new();
        let mut parents: Vec<String> = Vec::new();
        for r in roots.roots() {
            let Some(id) = r.id() else { continue };
            nodes.push(CatalogNode {
                id: id.to_owned(),
                kind: NodeKind::Root,
                name: r.name().unwrap_or("Root").to_owned(),
                parent_id: None,
            });
            parents.push(id.to_owned());
        }
        while let Some(parent) = parents.pop() {
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .call("ListOrganizationalUnitsForParent", async {
                        orgs.list_organizational_units_for_parent()
                            .parent_id(&parent)
                            .set_next_token(token.clone())
                            .send()
                            .await
                            .map_err(|e| classify("ListOrganizationalUnitsForParent", e))
                    })
                    .await?;
                for ou in out.organizational_units() {
                    let Some(id) = ou.id() else { continue };
                    nodes.push(CatalogNode {
                        id: id.to_owned(),
                        kind: NodeKind::Ou,
                        name: ou.name().unwrap_or(id).to_owned(),
                        parent_id: Some(parent.clone()),
                    });
                    parents.push(id.to_owned());
                }
                token = out.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .call("ListAccountsForParent", async {
                        orgs.list_accounts_for_parent()
                            .parent_id(&parent)
                            .set_next_token(token.clone())
                            .send()
                            .await
                            .map_err(|e| classify("ListAccountsForParent", e))
                    })
                    .await?;
                for a in out.accounts() {
                    let Some(id) = a.id() else { continue };
                    nodes.push(CatalogNode {
                        id: id.to_owned(),
                        kind: NodeKind::Account,
                        name: a.name().unwrap_or(id).to_owned(),
                        parent_id: Some(parent.clone()),
                    });
                }
                token = out.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(nodes)
    }

    async fn find_user(&self, by: UserMatch, value: &str) -> Result<String, IdentityError> {
        let store_id = self.identity_store_id().await?;
        let ids = &self.clients.identity_store;
        let by_name = by.as_str();
        if by == UserMatch::UserName {
            // userName is unique in an identity store: one GetUserId call.
            let attribute = aws_sdk_identitystore::types::UniqueAttribute::builder()
                .attribute_path("userName")
                .attribute_value(aws_smithy_types::Document::String(value.to_owned()))
                .build()
                .map_err(|e| IcError {
                    operation: "GetUserId",
                    kind: IcErrorKind::Permanent,
                    code: "ConstructionFailure".to_owned(),
                    message: e.to_string(),
                })?;
            let out = self
                .call("GetUserId", async {
                    ids.get_user_id()
                        .identity_store_id(&store_id)
                        .alternate_identifier(
                            aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(
                                attribute,
                            ),
                        )
                        .send()
                        .await
                        .map_err(|e| classify("GetUserId", e))
                })
                .await;
            return match out {
                Ok(o) => Ok(o.user_id().to_owned()),
                Err(e) if e.kind == IcErrorKind::NotFound => Err(IdentityError::NoMatch {
                    by: by_name,
                    value: value.to_owned(),
                }),
                Err(e) => Err(e.into()),
            };
        }
        // An email need not be unique: every user is read and the matches counted.
        let mut matches = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListUsers", async {
                    ids.list_users()
                        .identity_store_id(&store_id)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListUsers", e))
                })
                .await?;
            for u in out.users() {
                let hit = u
                    .emails()
                    .iter()
                    .any(|e| e.value().is_some_and(|v| v.eq_ignore_ascii_case(value)));
                if hit {
                    matches.push(u.user_id().to_owned());
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        match matches.len() {
            0 => Err(IdentityError::NoMatch {
                by: by_name,
                value: value.to_owned(),
            }),
            1 => Ok(matches.remove(0)),
            count => Err(IdentityError::Ambiguous {
                by: by_name,
                value: value.to_owned(),
                count,
            }),
        }
    }

    async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, IcError> {
        let store_id = self.identity_store_id().await?;
        let mut groups = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListGroupMembershipsForMember", async {
                    self.clients
                        .identity_store
                        .list_group_memberships_for_member()
                        .identity_store_id(&store_id)
                        .member_id(aws_sdk_identitystore::types::MemberId::UserId(
                            user_id.to_owned(),
                        ))
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListGroupMembershipsForMember", e))
                })
                .await?;
            groups.extend(
                out.group_memberships()
                    .iter()
                    .filter_map(|m| m.group_id().map(str::to_owned)),
            );
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(groups)
    }

    async fn create_assignment(&self, a: &Assignment) -> Result<Operation, IcError> {
        let instance_arn = self.instance_arn().await?;
        let out = self
            .call("CreateAccountAssignment", async {
                self.clients
                    .sso_admin
                    .create_account_assignment()
                    .instance_arn(&instance_arn)
                    .target_id(&a.account_id)
                    .target_type(TargetType::AwsAccount)
                    .permission_set_arn(&a.permission_set_arn)
                    .principal_type(PrincipalType::User)
                    .principal_id(&a.principal_id)
                    .send()
                    .await
                    .map_err(|e| classify("CreateAccountAssignment", e))
            })
            .await?;
        let s = out
            .account_assignment_creation_status()
            .ok_or_else(|| missing("CreateAccountAssignment", "status"))?;
        Ok(Operation {
            request_id: s
                .request_id()
                .ok_or_else(|| missing("CreateAccountAssignment", "RequestId"))?
                .to_owned(),
            status: status_of(s.status(), s.failure_reason()),
        })
    }

    async fn creation_status(&self, request_id: &str) -> Result<OperationStatus, IcError> {
        let instance_arn = self.instance_arn().await?;
        let out = self
            .call("DescribeAccountAssignmentCreationStatus", async {
                self.clients
                    .sso_admin
                    .describe_account_assignment_creation_status()
                    .instance_arn(&instance_arn)
                    .account_assignment_creation_request_id(request_id)
                    .send()
                    .await
                    .map_err(|e| classify("DescribeAccountAssignmentCreationStatus", e))
            })
            .await?;
        let s = out
            .account_assignment_creation_status()
            .ok_or_else(|| missing("DescribeAccountAssignmentCreationStatus", "status"))?;
        Ok(status_of(s.status(), s.failure_reason()))
    }

    async fn delete_assignment(&self, a: &Assignment) -> Result<Operation, IcError> {
        let instance_arn = self.instance_arn().await?;
        let out = self
            .call("DeleteAccountAssignment", async {
                self.clients
                    .sso_admin
                    .delete_account_assignment()
                    .instance_arn(&instance_arn)
                    .target_id(&a.account_id)
                    .target_type(TargetType::AwsAccount)
                    .permission_set_arn(&a.permission_set_arn)
                    .principal_type(PrincipalType::User)
                    .principal_id(&a.principal_id)
                    .send()
                    .await
                    .map_err(|e| classify("DeleteAccountAssignment", e))
            })
            .await?;
        let s = out
            .account_assignment_deletion_status()
            .ok_or_else(|| missing("DeleteAccountAssignment", "status"))?;
        Ok(Operation {
            request_id: s
                .request_id()
                .ok_or_else(|| missing("DeleteAccountAssignment", "RequestId"))?
                .to_owned(),
            status: status_of(s.status(), s.failure_reason()),
        })
    }

    async fn deletion_status(&self, request_id: &str) -> Result<OperationStatus, IcError> {
        let instance_arn = self.instance_arn().await?;
        let out = self
            .call("DescribeAccountAssignmentDeletionStatus", async {
                self.clients
                    .sso_admin
                    .describe_account_assignment_deletion_status()
                    .instance_arn(&instance_arn)
                    .account_assignment_deletion_request_id(request_id)
                    .send()
                    .await
                    .map_err(|e| classify("DescribeAccountAssignmentDeletionStatus", e))
            })
            .await?;
        let s = out
            .account_assignment_deletion_status()
            .ok_or_else(|| missing("DescribeAccountAssignmentDeletionStatus", "status"))?;
        Ok(status_of(s.status(), s.failure_reason()))
    }

    async fn list_assignments(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<Assignment>, IcError> {
        let instance_arn = self.instance_arn().await?;
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListAccountAssignments", async {
                    self.clients
                        .sso_admin
                        .list_account_assignments()
                        .instance_arn(&instance_arn)
                        .account_id(account_id)
                        .permission_set_arn(permission_set_arn)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListAccountAssignments", e))
                })
                .await?;
            for a in out.account_assignments() {
                all.push(Assignment {
                    account_id: a.account_id().unwrap_or(account_id).to_owned(),
                    permission_set_arn: a
                        .permission_set_arn()
                        .unwrap_or(permission_set_arn)
                        .to_owned(),
                    principal_type: a
                        .principal_type()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    principal_id: a.principal_id().unwrap_or_default().to_owned(),
                });
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(all)
    }

    // --- notifications: recipients --------------------------------------------

    async fn group_members(&self, display_name: &str) -> Result<Vec<String>, IcError> {
        let store_id = self.identity_store_id().await?;
        let ids = &self.clients.identity_store;
        let attribute = aws_sdk_identitystore::types::UniqueAttribute::builder()
            .attribute_path("displayName")
            .attribute_value(aws_smithy_types::Document::String(display_name.to_owned()))
            .build()
            .map_err(|e| IcError {
                operation: "GetGroupId",
                kind: IcErrorKind::Permanent,
                code: "ConstructionFailure".to_owned(),
                message: e.to_string(),
            })?;
        let group = self
            .call("GetGroupId", async {
                ids.get_group_id()
                    .identity_store_id(&store_id)
                    .alternate_identifier(
                        aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(
                            attribute,
                        ),
                    )
                    .send()
                    .await
                    .map_err(|e| classify("GetGroupId", e))
            })
            .await?
            .group_id()
            .to_owned();
        let mut users = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListGroupMemberships", async {
                    ids.list_group_memberships()
                        .identity_store_id(&store_id)
                        .group_id(&group)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListGroupMemberships", e))
                })
                .await?;
            users.extend(
                out.group_memberships()
                    .iter()
                    .filter_map(|m| m.member_id())
                    .filter_map(|m| m.as_user_id().ok())
                    .cloned(),
            );
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(users)
    }

    async fn user_contact(&self, user_id: &str) -> Result<UserContact, IcError> {
        let store_id = self.identity_store_id().await?;
        let out = self
            .call("DescribeUser", async {
                self.clients
                    .identity_store
                    .describe_user()
                    .identity_store_id(&store_id)
                    .user_id(user_id)
                    .send()
                    .await
                    .map_err(|e| classify("DescribeUser", e))
            })
            .await?;
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
}
