//! The one SDK configuration loader: region, credentials (the SDK's default chain, or a
//! role assumed through STS), endpoints, the call timeout and no SDK retries. Every
//! AWS client Timebox uses is built here, from `[aws]`.
//!
//! Endpoint precedence is the SDK's: a per-service key (`aws.sso_admin_endpoint_url`,
//! …, set on the service's builder) beats `aws.endpoint_url` (set in code on the
//! shared loader, so it counts as client configuration), which beats
//! `AWS_ENDPOINT_URL_<SERVICE>`, which beats `AWS_ENDPOINT_URL`.
//!
//! The SDK's own retries are off: Timebox retries with its state in the database
//! (the reaper's and the collector's backoff), so a retry survives a restart and
//! every failure is counted and visible.

use super::Calls;
use crate::config::AwsConfig;
use crate::metrics::Metrics;
use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
// Every SDK re-exports this same type.
use aws_sdk_cloudtrail::config::SharedCredentialsProvider;
use std::sync::Arc;

/// The loaded SDK configuration and `[aws]`'s endpoints; makes clients. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AwsSetup {
    shared: SdkConfig,
    aws: AwsConfig,
}

/// A client of `$sdk` from `$shared`, with `$endpoint` (a per-service override) when set.
macro_rules! client {
    ($sdk:ident, $shared:expr, $endpoint:expr) => {{
        let mut config = $sdk::config::Builder::from($shared);
        if let Some(url) = $endpoint {
            config = config.endpoint_url(url);
        }
        $sdk::Client::from_conf(config.build())
    }};
}

impl AwsSetup {
    /// Loads the SDK's default chain (environment, profile, instance role) with
    /// `region` first when given, else the chain's region, else `us-east-1`.
    /// Nothing is called: credentials are resolved at the first request.
    pub async fn load(aws: &AwsConfig, region: Option<String>) -> Self {
        let region = RegionProviderChain::first_try(region.map(Region::new))
            .or_default_provider()
            .or_else("us-east-1");
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
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
        Self::new(loader.load().await, aws)
    }

    /// Over a configuration loaded elsewhere (tests: the emulator's), with `aws`'s
    /// per-service endpoints.
    pub fn new(shared: SdkConfig, aws: &AwsConfig) -> Self {
        Self {
            shared,
            aws: aws.clone(),
        }
    }

    /// The same in `region`.
    pub fn in_region(&self, region: &str) -> Self {
        Self {
            shared: self
                .shared
                .to_builder()
                .region(Region::new(region.to_owned()))
                .build(),
            aws: self.aws.clone(),
        }
    }

    /// The same, calling with `credentials`.
    pub fn with_credentials(&self, credentials: SharedCredentialsProvider) -> Self {
        Self {
            shared: self
                .shared
                .to_builder()
                .credentials_provider(credentials)
                .build(),
            aws: self.aws.clone(),
        }
    }

    /// Credentials of `role_arn`, assumed through STS (`aws.sts_endpoint_url`) with
    /// this setup's credentials; the SDK caches and refreshes them.
    pub async fn assume_role(
        &self,
        role_arn: String,
        session_name: &str,
    ) -> SharedCredentialsProvider {
        let sts = match &self.aws.sts_endpoint_url {
            Some(url) => self.shared.to_builder().endpoint_url(url).build(),
            None => self.shared.clone(),
        };
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(session_name)
            .configure(&sts)
            .build()
            .await;
        SharedCredentialsProvider::new(provider)
    }

    /// How calls are made: `aws.call_timeout`, counted in `metrics`, unpaced (pace
    /// them with [`Calls::paced`]).
    pub fn calls(&self, metrics: Arc<Metrics>) -> Calls {
        Calls::new(metrics).with_timeout(self.aws.call_timeout)
    }

    pub fn sso_admin(&self) -> aws_sdk_ssoadmin::Client {
        client!(
            aws_sdk_ssoadmin,
            &self.shared,
            &self.aws.sso_admin_endpoint_url
        )
    }

    pub fn identity_store(&self) -> aws_sdk_identitystore::Client {
        client!(
            aws_sdk_identitystore,
            &self.shared,
            &self.aws.identity_store_endpoint_url
        )
    }

    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        client!(
            aws_sdk_organizations,
            &self.shared,
            &self.aws.organizations_endpoint_url
        )
    }

    pub fn cloudtrail(&self) -> aws_sdk_cloudtrail::Client {
        client!(
            aws_sdk_cloudtrail,
            &self.shared,
            &self.aws.cloudtrail_endpoint_url
        )
    }

    pub fn detective(&self) -> aws_sdk_detective::Client {
        client!(
            aws_sdk_detective,
            &self.shared,
            &self.aws.detective_endpoint_url
        )
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        client!(aws_sdk_iam, &self.shared, &self.aws.iam_endpoint_url)
    }

    /// S3 (the audit checkpoints' bucket), `aws.s3_endpoint_url` first. With any
    /// endpoint override, buckets are addressed path-style (`host/bucket/key`): an
    /// emulator or a private endpoint has no per-bucket host names.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut config = aws_sdk_s3::config::Builder::from(&self.shared);
        if let Some(url) = &self.aws.s3_endpoint_url {
            config = config.endpoint_url(url);
        }
        let overridden = self.aws.s3_endpoint_url.is_some()
            || self.aws.endpoint_url.is_some()
            || self.shared.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(config.force_path_style(overridden).build())
    }
}
