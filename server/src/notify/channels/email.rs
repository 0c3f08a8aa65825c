//! Email over SMTP (lettre, rustls): one message per recipient, plain text and HTML,
//! with the link to the grant page (where approvers approve).
//!
//! Every message carries `Message-ID: <delivery-id@sender-domain>` (a retry of the
//! same delivery has the same id, so mail systems can drop the duplicate) and the
//! `X-Timebox-Event-Id` / `X-Timebox-Delivery-Id` headers.

use super::{Attempt, Channel, ChannelError, DeliveryError, Profile, SEND_TIMEOUT};
use crate::config::{EmailConfig, SmtpTls};
use crate::html::escape;
use crate::notify::message::Message;
use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub struct EmailChannel {
    config: EmailConfig,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("smtp_host", &self.config.smtp_host)
            .field("smtp_port", &self.config.smtp_port)
            .field("tls", &self.config.tls.as_str())
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    pub fn new(config: EmailConfig) -> Result<Self, ChannelError> {
        let from: Mailbox = config.from.parse()?;
        let builder = match config.tls {
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.smtp_host)?,
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host)
            }
        };
        let mut builder = builder.port(config.smtp_port).timeout(Some(SEND_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            config,
        })
    }
}

/// The plain-text body.
pub fn text_body(m: &Message) -> String {
    let mut out = format!("{}\n\n{}\n\n", m.title, m.summary);
    if let Some(link) = &m.link {
        out.push_str(&format!("{}: {link}\n\n", m.link_label));
    }
    for (label, value) in &m.facts {
        out.push_str(&format!("{label}: {value}\n"));
    }
    if let Some(w) = m.window_line() {
        out.push_str(&format!("\n{w}\n"));
    }
    out.push_str(&format!(
        "\n-- \nTimebox · {} · event {}\n",
        m.kind.as_str(),
        m.event_id
    ));
    out
}

/// The HTML body.
pub fn html_body(m: &Message) -> String {
    let mut rows = String::new();
    for (label, value) in &m.facts {
        rows.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        ));
    }
    let link = m
        .link
        .as_ref()
        .map(|l| {
            format!(
                "<p><a href=\"{}\" style=\"display:inline-block;padding:8px 14px;background:#1f6feb;color:#fff;text-decoration:none;border-radius:4px\">{}</a></p>",
                escape(l),
                escape(m.link_label)
            )
        })
        .unwrap_or_default();
    let window = m
        .window_line()
        .map(|w| format!("<p>{}</p>", escape(&w)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <h2>{}</h2><p>{}</p>{link}<table>{rows}</table>{window}\
         <p style=\"color:#666;font-size:small\">Timebox · {} · event {}</p></body></html>",
        escape(&m.title),
        escape(&m.summary),
        m.kind.as_str(),
        m.event_id
    )
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

#[async_trait]
impl Channel for EmailChannel {
    fn profile(&self) -> Profile<'_> {
        Profile::per_person("email", &self.config.events)
    }

    async fn send(&self, attempt: Attempt<'_>) -> Result<(), DeliveryError> {
        let Attempt {
            message, delivery, ..
        } = attempt;
        let to: Mailbox = delivery.recipient.parse().map_err(|e| {
            DeliveryError::permanent(format!(
                "{:?} is not an email address: {e}",
                delivery.recipient
            ))
        })?;
        let domain = self.from.email.domain().to_owned();
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.title)
            .message_id(Some(format!("<{}@{domain}>", delivery.id)))
            .raw_header(header("X-Timebox-Event-Id", message.event_id.to_string()))
            .raw_header(header("X-Timebox-Delivery-Id", delivery.id.to_string()))
            .multipart(MultiPart::alternative_plain_html(
                text_body(message),
                html_body(message),
            ))
            .map_err(|e| {
                DeliveryError::permanent(format!("the message could not be built: {e}"))
            })?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!(
                "the SMTP server refused the message for good: {e}"
            ))),
            Err(e) => Err(DeliveryError::retry(format!("SMTP: {e}"))),
        }
    }
}
