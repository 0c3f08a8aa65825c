//! Activity from CloudTrail's `LookupEvents`, read in each member account and region
//! through a read-only role Timebox assumes there (STS `AssumeRole`).
//!
//! CloudTrail allows 2 `LookupEvents` calls per second per account and region: calls
//! are paced per (account, region) at `evidence.requests_per_second`, and a throttled
//! page is retried a few times with growing delays before the collection is left to
//! the reaper's backoff. The lookup is coarse (one attribute: the user name, which
//! CloudTrail sets to the role session name); [`MatchTarget::matches`] then keeps the
//! exact matches.

use super::{
    ActivityQuery, ActivitySink, ActivitySource, CollectStats, EvidenceError, MatchTarget,
};
use crate::identity_center::sdk::classify;
use crate::identity_center::{IcError, IcErrorKind};
use crate::metrics::Metrics;
use async_trait::async_trait;
use aws_sdk_cloudtrail::config::SharedCredentialsProvider;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Gives the CloudTrail (and IAM) client for one member account and region.
#[async_trait]
pub trait AccountClients: Send + Sync + std::fmt::Debug + 'static {
    async fn cloudtrail(&self, account_id: &str, region: &str) -> aws_sdk_cloudtrail::Client;
    /// IAM in `account_id`, for `ListRoles`; `None` when not available.
    async fn iam(&self, account_id: &str) -> Option<aws_sdk_iam::Client>;
}

/// Clients that call with the credentials of `arn:aws:iam::<account>:role/<role_name>`,
/// assumed through STS (credentials are cached and refreshed by the SDK).
#[derive(Debug)]
pub struct AssumedRoleClients {
    shared: aws_config::SdkConfig,
    sts: aws_config::SdkConfig,
    role_name: String,
    cloudtrail_endpoint_url: Option<String>,
    iam_endpoint_url: Option<String>,
    providers: Mutex<HashMap<String, SharedCredentialsProvider>>,
    cloudtrail: Mutex<HashMap<(String, String), aws_sdk_cloudtrail::Client>>,
}

impl AssumedRoleClients {
    pub fn new(
        shared: aws_config::SdkConfig,
        role_name: String,
        sts_endpoint_url: Option<String>,
        cloudtrail_endpoint_url: Option<String>,
        iam_endpoint_url: Option<String>,
    ) -> Self {
        let sts = match sts_endpoint_url {
            Some(url) => shared.to_builder().endpoint_url(url).build(),
            None => shared.clone(),
        };
        Self {
            shared,
            sts,
            role_name,
            cloudtrail_endpoint_url,
            iam_endpoint_url,
            providers: Mutex::new(HashMap::new()),
            cloudtrail: Mutex::new(HashMap::new()),
        }
    }

    /// The ARN of the role assumed in `account_id`.
    pub fn role_arn(&self, account_id: &str) -> String {
        format!("arn:aws:iam::{account_id}:role/{}", self.role_name)
    }

    async fn credentials(&self, account_id: &str) -> SharedCredentialsProvider {
        let mut providers = self.providers.lock().await;
        if let Some(p) = providers.get(account_id) {
            return p.clone();
        }
        let provider = aws_config::sts::AssumeRoleProvider::builder(self.role_arn(account_id))
            .session_name("timebox-evidence")
            .configure(&self.sts)
            .build()
            .await;
        let provider = SharedCredentialsProvider::new(provider);
        providers.insert(account_id.to_owned(), provider.clone());
        provider
    }
}

#[async_trait]
impl AccountClients for AssumedRoleClients {
    async fn cloudtrail(&self, account_id: &str, region: &str) -> aws_sdk_cloudtrail::Client {
        let key = (account_id.to_owned(), region.to_owned());
        if let Some(c) = self.cloudtrail.lock().await.get(&key) {
            return c.clone();
        }
        let creds = self.credentials(account_id).await;
        let mut b = aws_sdk_cloudtrail::config::Builder::from(&self.shared)
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(creds);
        if let Some(url) = &self.cloudtrail_endpoint_url {
            b = b.endpoint_url(url);
        }
        let client = aws_sdk_cloudtrail::Client::from_conf(b.build());
        self.cloudtrail.lock().await.insert(key, client.clone());
        client
    }

    async fn iam(&self, account_id: &str) -> Option<aws_sdk_iam::Client> {
        let creds = self.credentials(account_id).await;
        let mut b = aws_sdk_iam::config::Builder::from(&self.shared).credentials_provider(creds);
        if let Some(url) = &self.iam_endpoint_url {
            b = b.endpoint_url(url);
        }
        Some(aws_sdk_iam::Client::from_conf(b.build()))
    }
}

/// The same clients for every account (tests inject `aws-smithy-mocks` clients here).
#[derive(Debug, Clone)]
pub struct FixedClients {
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub iam: Option<aws_sdk_iam::Client>,
}

#[async_trait]
impl AccountClients for FixedClients {
    async fn cloudtrail(&self, _: &str, _: &str) -> aws_sdk_cloudtrail::Client {
        self.cloudtrail.clone()
    }
    async fn iam(&self, _: &str) -> Option<aws_sdk_iam::Client> {
        self.iam.clone()
    }
}

/// Spaces calls per key (account + region) at least `gap` apart.
#[derive(Debug)]
pub struct Pacer {
    gap: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    pub fn per_second(n: u32) -> Self {
        Self {
            gap: Duration::from_secs_f64(1.0 / f64::from(n.max(1))),
            next: Mutex::new(HashMap::new()),
        }
    }

    pub async fn wait(&self, key: &str) {
        let wait = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.get(key).copied().unwrap_or(now).max(now);
            next.insert(key.to_owned(), slot + self.gap);
            slot.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// How a throttled page is retried inside one collection.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleRetry {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for ThrottleRetry {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_delay: Duration::from_secs(1),
        }
    }
}

/// [`ActivitySource`] over `LookupEvents`.
#[derive(Debug)]
pub struct CloudTrailLookup {
    clients: Arc<dyn AccountClients>,
    regions: Vec<String>,
    pacer: Pacer,
    retry: ThrottleRetry,
    metrics: Arc<Metrics>,
}

/// `LookupEvents` returns at most 50 events a page.
const PAGE_SIZE: i32 = 50;
const SSO_ROLE_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

impl CloudTrailLookup {
    pub fn new(
        clients: Arc<dyn AccountClients>,
        regions: Vec<String>,
        requests_per_second: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            clients,
            regions,
            pacer: Pacer::per_second(requests_per_second),
            retry: ThrottleRetry::default(),
            metrics,
        }
    }

    pub fn with_retry(mut self, retry: ThrottleRetry) -> Self {
        self.retry = retry;
        self
    }

    async fn timed<T, F>(&self, operation: &'static str, f: F) -> Result<T, IcError>
    where
        F: std::future::Future<Output = Result<T, IcError>>,
    {
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

    async fn page(
        &self,
        client: &aws_sdk_cloudtrail::Client,
        key: &str,
        query: &ActivityQuery,
        token: Option<String>,
    ) -> Result<aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput, IcError> {
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::Username)
            .attribute_value(&query.target.user_name)
            .build()
            .map_err(|e| IcError {
                operation: "LookupEvents",
                kind: IcErrorKind::Permanent,
                code: "ConstructionFailure".into(),
                message: e.to_string(),
            })?;
        let mut delay = self.retry.first_delay;
        let mut attempt = 0;
        loop {
            self.pacer.wait(key).await;
            let request = client
                .lookup_events()
                .lookup_attributes(attribute.clone())
                .start_time(aws_smithy_types::DateTime::from_secs(
                    query.start.timestamp(),
                ))
                .end_time(aws_smithy_types::DateTime::from_secs(query.end.timestamp()))
                .max_results(PAGE_SIZE)
                .set_next_token(token.clone());
            let result = self
                .timed("LookupEvents", async {
                    request
                        .send()
                        .await
                        .map_err(|e| classify("LookupEvents", e))
                })
                .await;
            match result {
                Err(e) if e.kind == IcErrorKind::Retryable && attempt + 1 < self.retry.attempts => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl ActivitySource for CloudTrailLookup {
    fn name(&self) -> &'static str {
        "cloudtrail"
    }

    async fn collect(
        &self,
        query: &ActivityQuery,
        sink: &mut dyn ActivitySink,
    ) -> Result<CollectStats, EvidenceError> {
        let mut stats = CollectStats::default();
        let account = &query.target.account_id;
        for region in &self.regions {
            let client = self.clients.cloudtrail(account, region).await;
            let key = format!("{account}|{region}");
            let mut token = None;
            loop {
                let out = self.page(&client, &key, query, token.take()).await?;
                stats.pages += 1;
                let mut matched = Vec::new();
                for e in out.events() {
                    stats.seen += 1;
                    let Some(json) = e.cloud_trail_event() else {
                        continue;
                    };
                    let record = match super::TrailRecord::from_json(json) {
                        Ok(r) => r,
                        Err(why) => {
                            tracing::warn!(event_id = ?e.event_id(), why, "skipped an unreadable CloudTrail record");
                            continue;
                        }
                    };
                    if query.target.matches(&record) {
                        if let Some(ev) = record.into_event() {
                            matched.push(ev);
                        }
                    }
                }
                stats.matched += matched.len() as u64;
                if !matched.is_empty() {
                    sink.accept(matched).await?;
                }
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(stats)
    }

    async fn find_role_arn(
        &self,
        account_id: &str,
        target: &MatchTarget,
    ) -> Result<Option<String>, EvidenceError> {
        let Some(iam) = self.clients.iam(account_id).await else {
            return Ok(None);
        };
        let mut marker = None;
        loop {
            let out = self
                .timed("ListRoles", async {
                    iam.list_roles()
                        .path_prefix(SSO_ROLE_PATH)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListRoles", e))
                })
                .await?;
            if let Some(role) = out
                .roles()
                .iter()
                .find(|r| target.is_permission_set_role(r.role_name()))
            {
                return Ok(Some(role.arn().to_owned()));
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(None),
            }
        }
    }
}
