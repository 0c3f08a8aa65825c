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

/// One attempt at a delivery: what is sent, to whom, and when (the webhook signs
/// the time; a retry is a new attempt of the same delivery).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The laid-out notification.
    pub message: &'a Message,
    /// The outbox row: its id and, for a per-person channel, its recipient.
    pub delivery: &'a Delivery,
    /// When the attempt is made.
    pub now: DateTime<Utc>,
}

/// What the worker needs to know of a channel besides how to send, read from the
/// channel's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    /// `slack`, `email`, `webhook`: the outbox's `channel` column and the metrics label.
    pub name: &'static str,
    /// True when each person gets their own delivery (email); false when the channel
    /// is one destination for everybody (Slack, webhook).
    pub per_person: bool,
    /// The events from configuration: empty means every event.
    pub events: &'a [NotificationKind],
}

impl<'a> Profile<'a> {
    /// A channel that is one destination for everybody.
    pub fn shared(name: &'static str, events: &'a [NotificationKind]) -> Self {
        Self {
            name,
            per_person: false,
            events,
        }
    }

    /// A channel where each person gets their own delivery.
    pub fn per_person(name: &'static str, events: &'a [NotificationKind]) -> Self {
        Self {
            name,
            per_person: true,
            events,
        }
    }
}

/// One way of reaching people.
#[async_trait]
pub trait Channel: Send + Sync + std::fmt::Debug + 'static {
    /// The channel's name, audience and events.
    fn profile(&self) -> Profile<'_>;
    /// `slack`, `email`, `webhook`: the outbox's `channel` column and the metrics label.
    fn name(&self) -> &'static str {
        self.profile().name
    }
    /// Whether this channel carries events of `kind`.
    fn wants(&self, kind: NotificationKind) -> bool {
        let events = self.profile().events;
        events.is_empty() || events.contains(&kind)
    }
    /// True when each person gets their own delivery (email); false when the channel
    /// is one destination for everybody (Slack, webhook).
    fn per_person(&self) -> bool {
        self.profile().per_person
    }
    /// Makes one `attempt`.
    async fn send(&self, attempt: Attempt<'_>) -> Result<(), DeliveryError>;
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

/// POSTs `body` as JSON with `request` (URL and any extra headers already set) and
/// turns the answer into the outcome of a send: the one HTTP send path of the Slack
/// and webhook channels.
pub(crate) async fn post_json(
    request: reqwest::RequestBuilder,
    body: impl Into<reqwest::Body>,
) -> Result<(), DeliveryError> {
    let result = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
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
