//! Evidence: each grant's CloudTrail activity and its Amazon Detective investigation
//! (DESIGN §1 and §3).
//!
//! - [`ActivitySource`] is the one way activity is read: [`cloudtrail::CloudTrailLookup`]
//!   (`LookupEvents` in each member account through an assumed read-only role) or
//!   [`lake::LakeSource`] (CloudTrail Lake). Both keep only what
//!   [`matching::MatchTarget::matches`] accepts, and hand events over page by page.
//! - [`detective::Investigations`] starts and reads Detective investigations.
//! - [`collect::Collector`] is the reaper's evidence step: when to collect, storing,
//!   summarising, investigating, and closing the grant.
//! - [`pack`] renders the evidence pack, [`routes`] serves it; people read evidence
//!   through the reader's handle (`crate::services::Reader`).

pub mod cloudtrail;
pub mod collect;
pub mod detective;
pub mod lake;
pub mod matching;
pub mod pack;
pub mod routes;

use crate::identity_center::IcError;
use crate::store::StoreError;
use app::domain::ActivityEvent;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub use matching::{MatchTarget, TrailRecord};

/// Why evidence could not be collected or read.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// An AWS call failed (classified like every other AWS call).
    #[error(transparent)]
    Aws(#[from] IcError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A CloudTrail Lake query ended without results.
    #[error("the CloudTrail Lake query {query_id} ended {status}: {reason}")]
    Query {
        query_id: String,
        status: String,
        reason: String,
    },
    /// An answer Timebox cannot use (a missing field, a value it refuses to put in SQL).
    #[error("{0}")]
    Invalid(String),
}

impl EvidenceError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            EvidenceError::Aws(e) => e.is_retryable(),
            EvidenceError::Store(_) | EvidenceError::Query { .. } => true,
            EvidenceError::Invalid(_) => false,
        }
    }
}

/// What to read: one person's sessions of one permission set in one account, between
/// `start` and `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    pub target: MatchTarget,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Counts from one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectStats {
    pub pages: u64,
    /// Records AWS returned.
    pub seen: u64,
    /// Records that matched exactly and were handed to the sink.
    pub matched: u64,
}

/// Receives matching events a page at a time (the collector stores each page).
#[async_trait]
pub trait ActivitySink: Send {
    async fn accept(&mut self, events: Vec<ActivityEvent>) -> Result<(), EvidenceError>;
}

/// Where activity comes from, selected by `evidence.source`.
#[async_trait]
pub trait ActivitySource: Send + Sync + std::fmt::Debug + 'static {
    /// `cloudtrail` or `lake`, for messages and the evidence pack.
    fn name(&self) -> &'static str;

    /// Reads the activity `query` asks for and hands every page of exactly matching
    /// events to `sink`. Collecting the same range twice hands over the same events
    /// (the store keeps each once).
    async fn collect(
        &self,
        query: &ActivityQuery,
        sink: &mut dyn ActivitySink,
    ) -> Result<CollectStats, EvidenceError>;

    /// The ARN of the permission set's `AWSReservedSSO_…` role in `account`, when the
    /// activity did not name it (`iam:ListRoles` under
    /// `/aws-reserved/sso.amazonaws.com/`). `None` when this source cannot tell.
    async fn find_role_arn(
        &self,
        _account_id: &str,
        _target: &MatchTarget,
    ) -> Result<Option<String>, EvidenceError> {
        Ok(None)
    }
}

/// The activity source and Detective client `[evidence]` and `[aws]` ask for; `None`
/// when `evidence.source = "none"`. Builds clients only: nothing is called until the
/// reaper's first pass.
pub async fn from_config(
    config: &crate::config::Config,
    metrics: Arc<crate::metrics::Metrics>,
) -> Option<(
    Arc<dyn ActivitySource>,
    Option<Arc<dyn detective::Investigations>>,
)> {
    use crate::config::EvidenceSource;
    let ev = &config.evidence;
    let aws = &config.aws;
    if ev.source == EvidenceSource::None {
        return None;
    }
    let first_region = ev
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| "us-east-1".to_owned());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(first_region.clone()))
        // The collector retries with persisted backoff; CloudTrail throttling is
        // retried per page in `cloudtrail`.
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
    let source: Arc<dyn ActivitySource> = match ev.source {
        EvidenceSource::Lake => {
            let region = ev
                .lake_region
                .clone()
                .or_else(|| {
                    ev.event_data_store
                        .as_deref()
                        .filter(|a| a.starts_with("arn:"))
                        .and_then(|a| a.split(':').nth(3))
                        .map(str::to_owned)
                })
                .unwrap_or(first_region);
            let mut b = aws_sdk_cloudtrail::config::Builder::from(&shared)
                .region(aws_config::Region::new(region));
            if let Some(url) = &aws.cloudtrail_endpoint_url {
                b = b.endpoint_url(url);
            }
            Arc::new(lake::LakeSource::new(
                aws_sdk_cloudtrail::Client::from_conf(b.build()),
                ev.event_data_store.as_deref().unwrap_or_default(),
                metrics.clone(),
            ))
        }
        _ => Arc::new(cloudtrail::CloudTrailLookup::new(
            Arc::new(cloudtrail::AssumedRoleClients::new(
                shared.clone(),
                ev.role_name.clone(),
                aws.sts_endpoint_url.clone(),
                aws.cloudtrail_endpoint_url.clone(),
                aws.iam_endpoint_url.clone(),
            )),
            ev.regions.clone(),
            ev.requests_per_second,
            metrics.clone(),
        )),
    };
    let detective = ev.detective_graph_arn.clone().map(|graph| {
        let region = ev.detective_region().unwrap_or("us-east-1").to_owned();
        let mut b = aws_sdk_detective::config::Builder::from(&shared)
            .region(aws_config::Region::new(region));
        if let Some(url) = &aws.detective_endpoint_url {
            b = b.endpoint_url(url);
        }
        Arc::new(detective::SdkDetective::new(
            aws_sdk_detective::Client::from_conf(b.build()),
            graph,
            metrics.clone(),
        )) as Arc<dyn detective::Investigations>
    });
    Some((source, detective))
}
