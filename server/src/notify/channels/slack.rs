//! Slack incoming webhook: one message per event in the channel the webhook posts to.
//!
//! The body follows Slack's documented webhook payload: `text` (the fallback shown in
//! notifications, required with blocks) plus Block Kit `blocks` — a `header`
//! (plain_text, at most 150 characters), `section`s in `mrkdwn` (text at most 3000
//! characters, at most 10 `fields` of at most 2000), an `actions` block with a link
//! `button` to the grant page, and a `context` line with the event and delivery ids.
//! Text from people (justification, ticket) is escaped (`&`, `<`, `>`), so a
//! justification cannot ping `<!channel>` or forge a link.

use super::{http_client, post_json, Attempt, Channel, ChannelError, DeliveryError, Profile};
use crate::config::SlackConfig;
use crate::notify::message::Message;
use crate::store::Delivery;
use async_trait::async_trait;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct SlackChannel {
    config: SlackConfig,
    client: reqwest::Client,
}

impl SlackChannel {
    pub fn new(config: SlackConfig) -> Result<Self, ChannelError> {
        Ok(Self {
            config,
            client: http_client()?,
        })
    }
}

/// Slack's three control characters in mrkdwn.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The webhook body for `m`.
pub fn payload(m: &Message, delivery: &Delivery) -> Value {
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": { "type": "plain_text", "text": cut(&m.title, 150), "emoji": true }
        }),
        json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": cut(&escape(&m.summary), 3000) }
        }),
    ];
    if !m.facts.is_empty() {
        let fields: Vec<Value> = m
            .facts
            .iter()
            .take(10)
            .map(|(label, value)| {
                json!({ "type": "mrkdwn", "text": cut(&format!("*{label}*\n{}", escape(value)), 2000) })
            })
            .collect();
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if let Some(w) = &m.window {
        let head = if w.preview {
            "Real window if approved now (worst case)"
        } else {
            "Real window (worst case)"
        };
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": cut(&format!("*{head}*\n{}\n_{}_", escape(&w.range), escape(&w.why)), 3000) }
        }));
    }
    if let Some(link) = &m.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": m.link_label },
                "url": link,
                "action_id": "open_grant",
            }]
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": format!("Timebox · {} · event {} · delivery {}", m.kind.as_str(), m.event_id, delivery.id),
        }]
    }));
    let text = match &m.link {
        Some(link) => format!("{} <{}|{}>", escape(&m.title), link, m.link_label),
        None => escape(&m.title),
    };
    json!({ "text": text, "blocks": blocks })
}

#[async_trait]
impl Channel for SlackChannel {
    fn profile(&self) -> Profile<'_> {
        Profile::shared("slack", &self.config.events)
    }

    async fn send(&self, attempt: Attempt<'_>) -> Result<(), DeliveryError> {
        let url = self.config.webhook_url.expose();
        let body = payload(attempt.message, attempt.delivery).to_string();
        post_json(self.client.post(url), body).await
    }
}
