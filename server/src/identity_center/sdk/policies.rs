//! [`SessionPolicies`] over the SDK: Organizations for the service control policies,
//! sso-admin for the inline-policy fallback. Answers that mean "already so"
//! (attached, detached, deleted) are success, so every step can be repeated after a
//! crash.

use super::SdkIdentityCenter;
use crate::identity_center::policies::{PolicyRef, SessionPolicies};
use crate::identity_center::{IcError, IcErrorKind};
use async_trait::async_trait;
use aws_sdk_organizations::types::PolicyType;
use aws_sdk_ssoadmin::types::{ProvisionTargetType, StatusValues};
use std::time::Duration;

/// How long `put_inline_policy` waits for the provisioning to finish.
const PROVISION_WAIT: Duration = Duration::from_secs(60);

/// `Ok` for an error whose code says the wanted state holds already.
fn already(result: Result<(), IcError>, codes: &[&str]) -> Result<(), IcError> {
    match result {
        Err(e) if codes.contains(&e.code.as_str()) => Ok(()),
        other => other,
    }
}

/// The policies of a listing, by id and name.
fn refs(
    operation: &'static str,
    found: Vec<aws_sdk_organizations::types::PolicySummary>,
) -> Result<Vec<PolicyRef>, IcError> {
    found
        .into_iter()
        .map(|p| {
            Ok(PolicyRef {
                id: p.id.ok_or_else(|| IcError::missing(operation, "Id"))?,
                name: p.name.unwrap_or_default(),
            })
        })
        .collect()
}

#[async_trait]
impl SessionPolicies for SdkIdentityCenter {
    async fn management_account(&self) -> Result<String, IcError> {
        const OP: &str = "DescribeOrganization";
        let request = self.clients.organizations.describe_organization();
        let out = self.aws.call(OP, request.send()).await?;
        out.organization
            .and_then(|o| o.master_account_id)
            .ok_or_else(|| IcError::missing(OP, "MasterAccountId"))
    }

    async fn check_scp_access(&self) -> Result<(), IcError> {
        self.management_account().await?;
        const OP: &str = "ListPolicies";
        let request = self
            .clients
            .organizations
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .max_results(1);
        self.aws.call(OP, request.send()).await?;
        Ok(())
    }

    async fn attached_scps(&self, account: &str) -> Result<Vec<PolicyRef>, IcError> {
        const OP: &str = "ListPoliciesForTarget";
        let request = self
            .clients
            .organizations
            .list_policies_for_target()
            .target_id(account)
            .filter(PolicyType::ServiceControlPolicy);
        let found = self
            .aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.policies.unwrap_or_default())
            .await?;
        refs(OP, found)
    }

    async fn find_scp(&self, name: &str) -> Result<Option<PolicyRef>, IcError> {
        const OP: &str = "ListPolicies";
        let request = self
            .clients
            .organizations
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy);
        let found = self
            .aws
            .pages(OP, request.into_paginator().send(), |p| p.next_token())
            .collect(|p| p.policies.unwrap_or_default())
            .await?;
        Ok(refs(OP, found)?.into_iter().find(|p| p.name == name))
    }

    async fn scp_content(&self, id: &str) -> Result<String, IcError> {
        const OP: &str = "DescribePolicy";
        let request = self.clients.organizations.describe_policy().policy_id(id);
        match self.aws.call(OP, request.send()).await {
            Ok(out) => out
                .policy
                .and_then(|p| p.content)
                .ok_or_else(|| IcError::missing(OP, "Content")),
            Err(e) if e.code == "PolicyNotFoundException" => Err(IcError {
                kind: IcErrorKind::NotFound,
                ..e
            }),
            Err(e) => Err(e),
        }
    }

    async fn create_scp(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, IcError> {
        const OP: &str = "CreatePolicy";
        let request = self
            .clients
            .organizations
            .create_policy()
            .name(name)
            .description(description)
            .content(content)
            .r#type(PolicyType::ServiceControlPolicy);
        let out = self.aws.call(OP, request.send()).await?;
        out.policy
            .and_then(|p| p.policy_summary)
            .and_then(|s| s.id)
            .ok_or_else(|| IcError::missing(OP, "PolicySummary.Id"))
    }

    async fn update_scp(&self, id: &str, content: &str) -> Result<(), IcError> {
        const OP: &str = "UpdatePolicy";
        let request = self
            .clients
            .organizations
            .update_policy()
            .policy_id(id)
            .content(content);
        self.aws.call(OP, request.send()).await?;
        Ok(())
    }

    async fn attach_scp(&self, id: &str, account: &str) -> Result<(), IcError> {
        const OP: &str = "AttachPolicy";
        let request = self
            .clients
            .organizations
            .attach_policy()
            .policy_id(id)
            .target_id(account);
        already(
            self.aws.call(OP, request.send()).await.map(|_| ()),
            &["DuplicatePolicyAttachmentException"],
        )
    }

    async fn detach_scp(&self, id: &str, account: &str) -> Result<(), IcError> {
        const OP: &str = "DetachPolicy";
        let request = self
            .clients
            .organizations
            .detach_policy()
            .policy_id(id)
            .target_id(account);
        already(
            self.aws.call(OP, request.send()).await.map(|_| ()),
            &["PolicyNotAttachedException", "PolicyNotFoundException"],
        )
    }

    async fn delete_scp(&self, id: &str) -> Result<(), IcError> {
        const OP: &str = "DeletePolicy";
        let request = self.clients.organizations.delete_policy().policy_id(id);
        already(
            self.aws.call(OP, request.send()).await.map(|_| ()),
            &["PolicyNotFoundException"],
        )
    }

    async fn inline_policy(&self, permission_set_arn: &str) -> Result<Option<String>, IcError> {
        const OP: &str = "GetInlinePolicyForPermissionSet";
        let instance_arn = self.instance_arn().await?;
        let request = self
            .clients
            .sso_admin
            .get_inline_policy_for_permission_set()
            .instance_arn(&instance_arn)
            .permission_set_arn(permission_set_arn);
        let out = self.aws.call(OP, request.send()).await?;
        Ok(out.inline_policy.filter(|p| !p.trim().is_empty()))
    }

    async fn put_inline_policy(
        &self,
        permission_set_arn: &str,
        document: &str,
    ) -> Result<(), IcError> {
        const PUT: &str = "PutInlinePolicyToPermissionSet";
        let instance_arn = self.instance_arn().await?;
        let request = self
            .clients
            .sso_admin
            .put_inline_policy_to_permission_set()
            .instance_arn(&instance_arn)
            .permission_set_arn(permission_set_arn)
            .inline_policy(document);
        self.aws.call(PUT, request.send()).await?;
        const PROVISION: &str = "ProvisionPermissionSet";
        let request = self
            .clients
            .sso_admin
            .provision_permission_set()
            .instance_arn(&instance_arn)
            .permission_set_arn(permission_set_arn)
            .target_type(ProvisionTargetType::AllProvisionedAccounts);
        let out = self.aws.call(PROVISION, request.send()).await?;
        let status = out
            .permission_set_provisioning_status
            .ok_or_else(|| IcError::missing(PROVISION, "PermissionSetProvisioningStatus"))?;
        let request_id = status.request_id.clone();
        let mut status = (status.status, status.failure_reason);
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match status {
                (Some(StatusValues::Succeeded), _) => return Ok(()),
                (Some(StatusValues::Failed), reason) => {
                    return Err(IcError {
                        operation: PROVISION,
                        kind: IcErrorKind::Retryable,
                        code: "ProvisioningFailed".to_owned(),
                        message: reason.unwrap_or_else(|| "no reason given".to_owned()),
                    })
                }
                _ if started.elapsed() > PROVISION_WAIT => {
                    return Err(IcError::timeout(PROVISION, PROVISION_WAIT))
                }
                _ => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            const STATUS: &str = "DescribePermissionSetProvisioningStatus";
            let request = self
                .clients
                .sso_admin
                .describe_permission_set_provisioning_status()
                .instance_arn(&instance_arn)
                .provision_permission_set_request_id(
                    request_id
                        .clone()
                        .ok_or_else(|| IcError::missing(PROVISION, "RequestId"))?,
                );
            let out = self.aws.call(STATUS, request.send()).await?;
            let s = out
                .permission_set_provisioning_status
                .ok_or_else(|| IcError::missing(STATUS, "PermissionSetProvisioningStatus"))?;
            status = (s.status, s.failure_reason);
        }
    }
}
