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
    TrailRecord,
};
use crate::aws::{AwsError, AwsSetup, Calls, Pacer};
use async_trait::async_trait;
use aws_sdk_cloudtrail::config::SharedCredentialsProvider;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
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
    setup: AwsSetup,
    role_name: String,
    providers: Mutex<HashMap<String, SharedCredentialsProvider>>,
    cloudtrail: Mutex<HashMap<(String, String), aws_sdk_cloudtrail::Client>>,
}

impl AssumedRoleClients {
    /// `setup` gives the base credentials (those allowed to assume the role) and the
    /// STS, CloudTrail and IAM endpoints.
    pub fn new(setup: AwsSetup, role_name: String) -> Self {
        Self {
            setup,
            role_name,
            providers: Mutex::new(HashMap::new()),
            cloudtrail: Mutex::new(HashMap::new()),
        }
    }

    /// The ARN of the role assumed in `account_id`.
    pub fn role_arn(&self, account_id: &str) -> String {
        format!("arn:aws:iam::{account_id}:role/{}", self.role_name)
    }

    async fn in_account(&self, account_id: &str) -> AwsSetup {
        let mut providers = self.providers.lock().await;
        let credentials = match providers.get(account_id) {
            Some(p) => p.clone(),
            None => {
                let p = self
                    .setup
                    .assume_role(self.role_arn(account_id), "timebox-evidence")
                    .await;
                providers.insert(account_id.to_owned(), p.clone());
                p
            }
        };
        self.setup.with_credentials(credentials)
    }
}

#[async_trait]
impl AccountClients for AssumedRoleClients {
    async fn cloudtrail(&self, account_id: &str, region: &str) -> aws_sdk_cloudtrail::Client {
        let key = (account_id.to_owned(), region.to_owned());
        if let Some(c) = self.cloudtrail.lock().await.get(&key) {
            return c.clone();
        }
        let client = self
            .in_account(account_id)
            .await
            .in_region(region)
            .cloudtrail();
        self.cloudtrail.lock().await.insert(key, client.clone());
        client
    }

    async fn iam(&self, account_id: &str) -> Option<aws_sdk_iam::Client> {
        Some(self.in_account(account_id).await.iam())
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
    requests_per_second: u32,
    /// One pacer per (account, region): CloudTrail's limit is per account and region.
    pacers: Mutex<HashMap<(String, String), Arc<Pacer>>>,
    retry: ThrottleRetry,
    aws: Calls,
}

/// `LookupEvents` returns at most 50 events a page.
const PAGE_SIZE: i32 = 50;
const SSO_ROLE_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

impl CloudTrailLookup {
    /// `LookupEvents` calls are paced at `requests_per_second` per account and region;
    /// `aws` gives the timeout and the metrics.
    pub fn new(
        clients: Arc<dyn AccountClients>,
        regions: Vec<String>,
        requests_per_second: u32,
        aws: Calls,
    ) -> Self {
        Self {
            clients,
            regions,
            requests_per_second: requests_per_second.max(1),
            pacers: Mutex::new(HashMap::new()),
            retry: ThrottleRetry::default(),
            aws,
        }
    }

    pub fn with_retry(mut self, retry: ThrottleRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Calls paced for `LookupEvents` in `account` and `region`.
    async fn paced(&self, account: &str, region: &str) -> Calls {
        let mut pacers = self.pacers.lock().await;
        let pacer = pacers
            .entry((account.to_owned(), region.to_owned()))
            .or_insert_with(|| Arc::new(Pacer::per_second(self.requests_per_second)));
        self.aws.paced(pacer.clone())
    }

    /// Every page of `query`'s events in one region, each handed to `sink` once. A
    /// throttled page is asked again (a new paginator from that page's token) up to
    /// `retry.attempts` times, with doubling delays.
    async fn collect_region(
        &self,
        region: &str,
        query: &ActivityQuery,
        sink: &mut dyn ActivitySink,
        stats: &mut CollectStats,
    ) -> Result<(), EvidenceError> {
        const OP: &str = "LookupEvents";
        let account = &query.target.account_id;
        let client = self.clients.cloudtrail(account, region).await;
        let aws = self.paced(account, region).await;
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::Username)
            .attribute_value(&query.target.user_name)
            .build()
            .map_err(|e| AwsError::invalid_request(OP, e))?;
        let request = client
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(aws_smithy_types::DateTime::from_secs(
                query.start.timestamp(),
            ))
            .end_time(aws_smithy_types::DateTime::from_secs(query.end.timestamp()))
            .max_results(PAGE_SIZE);
        // The token of the page to ask for next (none: the first).
        let mut resume: Option<String> = None;
        let (mut attempt, mut delay) = (0, self.retry.first_delay);
        loop {
            let paginator = request
                .clone()
                .set_next_token(resume.clone())
                .into_paginator();
            let mut pages = aws.pages(OP, paginator.send(), |p| p.next_token());
            loop {
                match pages.next().await {
                    Ok(Some(page)) => {
                        (attempt, delay) = (0, self.retry.first_delay);
                        resume = page.next_token().map(str::to_owned);
                        let matched = stats.page(&query.target, page.events().iter().map(read));
                        if !matched.is_empty() {
                            sink.accept(matched).await?;
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) if e.is_retryable() && attempt + 1 < self.retry.attempts => {
                        attempt += 1;
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// The CloudTrail record inside one `LookupEvents` event.
fn read(e: &aws_sdk_cloudtrail::types::Event) -> Option<TrailRecord> {
    TrailRecord::from_json(e.cloud_trail_event()?)
        .inspect_err(|why| {
            tracing::warn!(event_id = ?e.event_id(), why, "skipped an unreadable CloudTrail record");
        })
        .ok()
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
        for region in &self.regions {
            self.collect_region(region, query, sink, &mut stats).await?;
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
        let request = iam.list_roles().path_prefix(SSO_ROLE_PATH);
        // IAM pages with a marker, valid only while the answer is truncated.
        let mut pages = self
            .aws
            .pages("ListRoles", request.into_paginator().send(), |p| {
                p.marker().filter(|_| p.is_truncated())
            });
        while let Some(page) = pages.next().await? {
            if let Some(role) = page
                .roles()
                .iter()
                .find(|r| target.is_permission_set_role(r.role_name()))
            {
                return Ok(Some(role.arn().to_owned()));
            }
        }
        Ok(None)
    }
}
