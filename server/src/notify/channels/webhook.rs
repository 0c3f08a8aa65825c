//! The generic webhook: a JSON body signed with HMAC-SHA256, for SIEMs and chat bots.
//!
//! Headers (see docs/operations.md for verifying them):
//! - `X-Timebox-Timestamp`: Unix seconds when the request was signed;
//! - `X-Timebox-Signature`: `sha256=` + hex(HMAC-SHA256(secret, timestamp + "." + body));
//! - `X-Timebox-Event-Id`: the event (the same for every channel and recipient);
//! - `X-Timebox-Delivery-Id` and `Idempotency-Key`: this delivery; a retry of the same
//!   delivery carries the same id, so a receiver can drop what it has already seen.

use super::{http_client, post_json, Attempt, Channel, ChannelError, DeliveryError, Profile};
use crate::config::WebhookConfig;
use crate::notify::message::Message;
use crate::store::Delivery;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

#[derive(Debug)]
pub struct WebhookChannel {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookChannel {
    pub fn new(config: WebhookConfig) -> Result<Self, ChannelError> {
        Ok(Self {
            config,
            client: http_client()?,
        })
    }
}

/// `hex(HMAC-SHA256(secret, timestamp + "." + body))`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The JSON body for `m`.
pub fn payload(m: &Message, delivery: &Delivery) -> Value {
    let grant = m.grant.as_ref().map(|g| {
        json!({
            "id": g.id,
            "state": g.state.as_str(),
            "requester": g.request.requester,
            "account_id": g.request.account_id,
            "permission_set": g.request.permission_set,
            "justification": g.request.justification,
            "ticket": g.request.ticket,
            "duration_minutes": g.request.duration.minutes(),
            "requested_start": g.request.requested_start,
            "created_at": g.created_at,
            "activated_at": g.activated_at,
            "ends_at": g.ends_at,
            "revoked_at": g.revoked_at,
            "real_end": g.real_end,
        })
    });
    json!({
        "event_id": m.event_id,
        "delivery_id": delivery.id,
        "kind": m.kind.as_str(),
        "occurred_at": m.occurred_at,
        "title": m.title,
        "summary": m.summary,
        "url": m.link,
        "grant": grant,
        "real_window": m.window.as_ref().map(|w| json!({
            "start": w.start,
            "end": w.end,
            "preview": w.preview,
            "explanation": w.why,
        })),
        "details": m.details,
    })
}

#[async_trait]
impl Channel for WebhookChannel {
    fn profile(&self) -> Profile<'_> {
        Profile::shared("webhook", &self.config.events)
    }

    async fn send(&self, attempt: Attempt<'_>) -> Result<(), DeliveryError> {
        let body = payload(attempt.message, attempt.delivery)
            .to_string()
            .into_bytes();
        let timestamp = attempt.now.timestamp();
        let signature = signature(self.config.secret.expose().as_bytes(), timestamp, &body);
        let request = self
            .client
            .post(&self.config.url)
            .header("X-Timebox-Timestamp", timestamp.to_string())
            .header("X-Timebox-Signature", format!("sha256={signature}"))
            .header("X-Timebox-Event-Id", attempt.message.event_id.to_string())
            .header("X-Timebox-Delivery-Id", attempt.delivery.id.to_string())
            .header("Idempotency-Key", attempt.delivery.id.to_string());
        post_json(request, body).await
    }
}

#[cfg(test)]
mod tests {
    /// RFC 4231 test case 2 checks the HMAC itself; this checks the framing.
    #[test]
    fn signs_timestamp_dot_body() {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let a = super::signature(b"k", 1700000000, b"{}");
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"k").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(a, hex::encode(mac.finalize().into_bytes()));
        assert_ne!(a, super::signature(b"k", 1700000001, b"{}"));
    }
}
