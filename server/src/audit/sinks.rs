//! Where checkpoints are published, outside the database: an append-only local file
//! (one JSON line each), the log (one `info` line each), an S3 bucket under Object
//! Lock (s3.rs) and a signed webhook (webhook.rs). Each sink has a stable name,
//! recorded with every checkpoint it received.

use super::checkpoint::SignedCheckpoint;
use async_trait::async_trait;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// A place checkpoints are published to. Publishing the same checkpoint twice must
/// be harmless (a crash between publishing and recording it repeats it).
#[async_trait]
pub trait CheckpointSink: Send + Sync + std::fmt::Debug {
    /// The sink's name, as recorded in `audit_checkpoint_publications`.
    fn name(&self) -> &'static str;

    async fn publish(&self, checkpoint: &SignedCheckpoint) -> Result<(), SinkError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot append to {path}: {source}; check that the directory exists and Timebox may write there")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot publish to {object}: {source}; check that the bucket exists with Object Lock and that Timebox's role has the permissions in docs/operations.md")]
    S3 {
        object: String,
        source: crate::aws::AwsError,
    },
    #[error("{object} already exists with other content: a checkpoint object is never overwritten. Find out who wrote it (it may be another Timebox installation using the same prefix: give each its own audit.checkpoint_s3 prefix)")]
    S3Conflict { object: String },
    #[error("the checkpoint webhook failed: {message}")]
    Webhook { message: String },
}

/// `audit.checkpoint_file`: opened in append mode for each checkpoint, written in
/// one write and synced, so a line is never half there after a crash of Timebox.
#[derive(Debug, Clone)]
pub struct FileSink {
    pub path: PathBuf,
}

#[async_trait]
impl CheckpointSink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn publish(&self, checkpoint: &SignedCheckpoint) -> Result<(), SinkError> {
        let failed = |source| SinkError::File {
            path: self.path.clone(),
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(failed)?;
        let line = format!("{}\n", checkpoint.to_json_line());
        file.write_all(line.as_bytes()).await.map_err(failed)?;
        file.sync_data().await.map_err(failed)
    }
}

/// The log: an `info` line with the checkpoint (never the key), for log collectors
/// that ship lines off the machine.
#[derive(Debug, Clone, Copy)]
pub struct LogSink;

#[async_trait]
impl CheckpointSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn publish(&self, c: &SignedCheckpoint) -> Result<(), SinkError> {
        tracing::info!(
            seq = c.seq,
            hash = %c.hash,
            events = c.events,
            at = %c.at,
            public_key = %c.public_key,
            signature = %c.signature,
            checkpoint = %c.to_json_line(),
            "audit checkpoint"
        );
        Ok(())
    }
}
