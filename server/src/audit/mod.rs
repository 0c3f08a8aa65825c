//! The auditor's proof over the hash-chained log (`store::audit`): signed checkpoints
//! (checkpoint.rs), the job that writes and publishes them (job.rs, sinks.rs), the
//! whole-chain verification behind `timebox audit verify` (verify.rs, with every
//! grant row checked against its events in rows.rs), the same run on demand from the
//! dashboard (on_demand.rs), and the proof of one grant for its page and pack
//! (grant.rs). Uses the store; nothing in the store uses it.

pub mod checkpoint;
pub mod grant;
pub mod job;
pub mod on_demand;
pub mod rows;
pub mod sinks;
pub mod verify;

pub use checkpoint::{CheckpointSigner, KeyError, SignedCheckpoint};
pub use job::{CheckpointJob, CheckpointPass, CheckpointSettings};
pub use on_demand::VerificationJob;
pub use sinks::{CheckpointSink, FileSink, LogSink};
pub use verify::{
    verify, verify_database, verify_with_progress, CheckpointSource, Progress, VerifyError,
    VerifyReport,
};

use crate::config::AuditConfig;
use std::sync::Arc;

/// The sinks `[audit]` configures: the file when `checkpoint_file` is set, and the log.
pub fn sinks_from_config(c: &AuditConfig) -> Vec<Arc<dyn CheckpointSink>> {
    let mut sinks: Vec<Arc<dyn CheckpointSink>> = Vec::new();
    if let Some(path) = &c.checkpoint_file {
        sinks.push(Arc::new(FileSink { path: path.clone() }));
    }
    sinks.push(Arc::new(LogSink));
    sinks
}
