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
//! - [`pack`] renders the evidence pack (`crate::web::evidence` serves it); people read evidence
//!   through the reader's handle (`crate::services::Reader`).

pub mod cloudtrail;
pub mod collect;
pub mod detective;
pub mod lake;
pub mod matching;
pub mod pack;

use crate::aws::{AwsError, AwsSetup};
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
    Aws(#[from] AwsError),
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

impl CollectStats {
    /// Counts one page of `records` (`None`: one Timebox could not read, logged by
    /// the caller) and keeps the events that [`MatchTarget::matches`] accepts.
    pub(crate) fn page(
        &mut self,
        target: &MatchTarget,
        records: impl IntoIterator<Item = Option<TrailRecord>>,
    ) -> Vec<ActivityEvent> {
        self.pages += 1;
        let mut matched = Vec::new();
        for record in records {
            self.seen += 1;
            if let Some(event) = record
                .filter(|r| target.matches(r))
                .and_then(TrailRecord::into_event)
            {
                matched.push(event);
            }
        }
        self.matched += matched.len() as u64;
        matched
    }
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
/// when `evidence.source = "none"`. Builds clients only (with the AWS kit's loader,
/// in the first of `evidence.regions`): nothing is called until the reaper's first
/// pass. These calls are not paced by `aws.max_calls_per_second` (that bounds
/// Identity Center); `LookupEvents` has its own pace per account and region.
pub async fn from_config(
    config: &crate::config::Config,
    metrics: Arc<crate::metrics::Metrics>,
) -> Option<(
    Arc<dyn ActivitySource>,
    Option<Arc<dyn detective::Investigations>>,
)> {
    use crate::config::EvidenceSource;
    let ev = &config.evidence;
    if ev.source == EvidenceSource::None {
        return None;
    }
    let first_region = ev
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| "us-east-1".to_owned());
    let setup = AwsSetup::load(&config.aws, Some(first_region.clone())).await;
    let calls = setup.calls(metrics);
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
            Arc::new(lake::LakeSource::new(
                setup.in_region(&region).cloudtrail(),
                ev.event_data_store.as_deref().unwrap_or_default(),
                calls.clone(),
            ))
        }
        _ => Arc::new(cloudtrail::CloudTrailLookup::new(
            Arc::new(cloudtrail::AssumedRoleClients::new(
                setup.clone(),
                ev.role_name.clone(),
            )),
            ev.regions.clone(),
            ev.requests_per_second,
            calls.clone(),
        )),
    };
    let detective = ev.detective_graph_arn.clone().map(|graph| {
        let region = ev.detective_region().unwrap_or("us-east-1");
        Arc::new(detective::SdkDetective::new(
            setup.in_region(region).detective(),
            graph,
            calls,
        )) as Arc<dyn detective::Investigations>
    });
    Some((source, detective))
}
