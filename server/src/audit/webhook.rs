//! `audit.checkpoint_webhook_url`: each checkpoint POSTed as its JSON line, signed
//! exactly as the notification webhook signs (one signing function,
//! `notify::channels::webhook::signature`), over the notification channels' one HTTP
//! send path (no redirects, a timeout). Headers:
//! - `X-Timebox-Timestamp`: Unix seconds when the request was signed;
//! - `X-Timebox-Signature`: `sha256=` + hex(HMAC-SHA256(secret, timestamp + "." + body));
//! - `X-Timebox-Checkpoint-Seq` and `Idempotency-Key` (`audit-checkpoint-<seq>`): a
//!   checkpoint sent again (after a crash, or a failed attempt) carries the same key.
//!
//! Any answer but 2xx is a failure: the job counts it and sends again next pass.

use super::checkpoint::SignedCheckpoint;
use super::sinks::{CheckpointSink, SinkError};
use crate::clock::Clock;
use crate::config::CheckpointWebhookConfig;
use crate::notify::channels::{http_client, post_json, webhook::signature};
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug)]
pub struct WebhookSink {
    config: CheckpointWebhookConfig,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl WebhookSink {
    pub fn new(
        config: CheckpointWebhookConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            config,
            client: http_client()?,
            clock,
        })
    }
}

#[async_trait]
impl CheckpointSink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn publish(&self, c: &SignedCheckpoint) -> Result<(), SinkError> {
        let body = c.to_json_line().into_bytes();
        let timestamp = self.clock.now().timestamp();
        let signed = signature(self.config.secret.expose().as_bytes(), timestamp, &body);
        let request = self
            .client
            .post(&self.config.url)
            .header("X-Timebox-Timestamp", timestamp.to_string())
            .header("X-Timebox-Signature", format!("sha256={signed}"))
            .header("X-Timebox-Checkpoint-Seq", c.seq.to_string())
            .header("Idempotency-Key", format!("audit-checkpoint-{}", c.seq));
        post_json(request, body)
            .await
            .map_err(|e| SinkError::Webhook { message: e.message })
    }
}
