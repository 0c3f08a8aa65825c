//! The auditor's proof over the hash-chained log (`store::audit`): signed checkpoints
//! (checkpoint.rs), the job that writes and publishes them (job.rs) to the sinks
//! (sinks.rs: the file and the log; s3.rs: a bucket under Object Lock; webhook.rs),
//! the whole-chain verification behind `timebox audit verify` (verify.rs, with every
//! grant row checked against its events in rows.rs), the same run on demand from the
//! dashboard (on_demand.rs), and the proof of one grant for its page and pack
//! (grant.rs). Uses the store; nothing in the store uses it.

pub mod checkpoint;
pub mod export;
pub mod grant;
pub mod job;
pub mod on_demand;
pub mod rows;
pub mod s3;
pub mod sinks;
pub mod verify;
pub mod webhook;

pub use checkpoint::{CheckpointSigner, KeyError, SignedCheckpoint};
pub use job::{CheckpointJob, CheckpointPass, CheckpointSettings};
pub use on_demand::VerificationJob;
pub use s3::{S3Checkpoints, S3SetupError, S3Sink};
pub use sinks::{CheckpointSink, FileSink, LogSink, SinkError};
pub use verify::{
    verify, verify_database, verify_with_progress, CheckpointSource, Progress, VerifyError,
    VerifyReport,
};
pub use webhook::WebhookSink;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use std::sync::Arc;

/// A configured sink that cannot work: start-up stops with the fix.
#[derive(Debug, thiserror::Error)]
pub enum SinkSetupError {
    #[error(transparent)]
    S3(#[from] S3SetupError),
    #[error("audit.checkpoint_webhook_url: cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The sinks `[audit]` configures: the file when `checkpoint_file` is set, the S3
/// bucket when `checkpoint_s3` is (its Object Lock checked first), the webhook when
/// `checkpoint_webhook_url` is, and always the log.
pub async fn sinks_from_config(
    c: &Config,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
) -> Result<Vec<Arc<dyn CheckpointSink>>, SinkSetupError> {
    let audit = &c.audit;
    let mut sinks: Vec<Arc<dyn CheckpointSink>> = Vec::new();
    if let Some(path) = &audit.checkpoint_file {
        sinks.push(Arc::new(FileSink { path: path.clone() }));
    }
    if let Some(location) = &audit.checkpoint_s3 {
        let bucket = S3Checkpoints::from_config(
            &c.aws,
            audit.checkpoint_s3_region.clone(),
            location.clone(),
            metrics,
        )
        .await;
        bucket.check_lock().await?;
        sinks.push(Arc::new(S3Sink::new(
            bucket,
            audit.checkpoint_s3_retention_days,
            clock.clone(),
        )));
    }
    if let Some(webhook) = &audit.checkpoint_webhook {
        sinks.push(Arc::new(WebhookSink::new(webhook.clone(), clock)?));
    }
    sinks.push(Arc::new(LogSink));
    Ok(sinks)
}
