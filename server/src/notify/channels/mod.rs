//! The channels a notification can take: each lays a [`Message`] out in its receiver's
//! format and sends it once. Retrying is the worker's business, not the channel's.

pub mod email;
pub mod slack;
pub mod webhook;

use super::message::Message;
use super::NotificationKind;
use crate::store::Delivery;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How long one send may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a send failed. The message never contains a secret (webhook URLs are removed
/// from HTTP errors).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// Retrying cannot help (an address the server refuses for good): give up now.
    pub permanent: bool,
    /// The receiver asked to wait this long (HTTP 429 `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
            retry_after: None,
        }
    }
}

/// One way of reaching people.
#[async_trait]
pub trait Channel: Send + Sync + std::fmt::Debug + 'static {
    /// `slack`, `email`, `webhook`: the outbox's `channel` column and the metrics label.
    fn name(&self) -> &'static str;
    /// Whether this channel carries events of `kind`.
    fn wants(&self, kind: NotificationKind) -> bool;
    /// True when each person gets their own delivery (email); false when the channel
    /// is one destination for everybody (Slack, webhook).
    fn per_person(&self) -> bool;
    /// Sends `message` for `delivery` at `now`.
    async fn send(
        &self,
        message: &Message,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError>;
}

/// `events` from configuration: empty means every event.
pub(crate) fn wanted(events: &[NotificationKind], kind: NotificationKind) -> bool {
    events.is_empty() || events.contains(&kind)
}

/// The HTTP client of the Slack and webhook channels: rustls, a timeout, and no
/// redirects (a redirect would carry a signed body, or a secret URL's answer,
/// somewhere else).
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("timebox/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Turns an HTTP answer into the outcome of a send.
pub(crate) async fn http_outcome(
    result: Result<reqwest::Response, reqwest::Error>,
) -> Result<(), DeliveryError> {
    let response = match result {
        Ok(r) => r,
        // `without_url`: the URL may be a secret (Slack's webhook URL is).
        Err(e) => return Err(DeliveryError::retry(e.without_url().to_string())),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(DeliveryError {
        message: format!("the receiver answered {status}: {body}"),
        permanent: false,
        retry_after,
    })
}

/// The configured channels.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    pub list: Vec<Arc<dyn Channel>>,
}

impl Channels {
    /// Builds every channel configured in `[notify.*]`.
    pub fn from_config(c: &crate::config::Config) -> Result<Self, ChannelError> {
        let mut list: Vec<Arc<dyn Channel>> = Vec::new();
        if let Some(s) = &c.notify.slack {
            list.push(Arc::new(slack::SlackChannel::new(s.clone())?));
        }
        if let Some(e) = &c.notify.email {
            list.push(Arc::new(email::EmailChannel::new(e.clone())?));
        }
        if let Some(w) = &c.notify.webhook {
            list.push(Arc::new(webhook::WebhookChannel::new(w.clone())?));
        }
        Ok(Self { list })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.list.iter().find(|c| c.name() == name)
    }
}

/// A channel could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot build the HTTP client for notifications: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot set up SMTP for notify.email: {0}; check notify.email.smtp_host and notify.email.tls")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("notify.email.from is not a valid sender: {0}")]
    From(#[from] lettre::address::AddressError),
}
