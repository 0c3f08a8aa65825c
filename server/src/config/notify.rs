//! `[notify]` and its channels `[notify.slack]`, `[notify.email]`, `[notify.webhook]`
//! (sub-sections, each read by its own `read`).
//!
//! Every channel is optional and configured on its own: a channel is on when its
//! address is set (`webhook_url`, `smtp_host`, `url`). Secrets (the Slack webhook URL,
//! the SMTP password, the webhook signing key) are [`Secret`]s and may come from files.

use std::time::Duration;

use figment::value::Value;

use super::kit::{
    days, expect_str, http_url, mins, one_of, parse_list, secs, whole_number, Keys, Problem, Secret,
};
use app::domain::NotificationKind;

/// `[notify]`: the outbox worker and its channels.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// How often the worker looks for work (1s..=10m). Default 5s.
    pub interval: Duration,
    /// How long a delivery is retried before it is given up (1m..=30d). Default 3d.
    pub retry_for: Duration,
    /// How long before a grant's end "ending soon" is sent (1m..=24h). Default 10m.
    pub ending_soon: Duration,
    pub slack: Option<SlackConfig>,
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// `[notify.slack]`: a Slack incoming webhook (channel-wide).
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// `https://hooks.slack.com/services/…`; a secret (anyone holding it can post).
    pub webhook_url: Secret,
    /// The events sent here; empty means every event.
    pub events: Vec<NotificationKind>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required); port 587 by default.
    StartTls,
    /// TLS from the first byte ("SMTPS"); port 465 by default.
    Tls,
    /// No encryption: only for a mail catcher on this machine; port 25 by default.
    None,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// `[notify.email]`: email over SMTP.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// SMTP credentials; both or neither.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The sender, such as `Timebox <timebox@example.com>`.
    pub from: String,
    /// Always told about new requests (besides the approvers found in the identity
    /// store), and about break-glass use.
    pub approvers_to: Vec<String>,
    /// Told about break-glass use, failing revocations, activity after revocation and
    /// severe investigations (besides the auditors found in the identity store).
    pub auditors_to: Vec<String>,
    /// The events sent by email; empty means every event.
    pub events: Vec<NotificationKind>,
}

/// `[notify.webhook]`: a signed JSON webhook (SIEMs, chat bots).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// The HMAC-SHA256 signing key.
    pub secret: Secret,
    /// The events sent here; empty means every event.
    pub events: Vec<NotificationKind>,
}

fn parse_events(value: &Value) -> Result<Vec<NotificationKind>, Problem> {
    let names = parse_list(value, "\"new_request\", \"break_glass_used\"")?;
    let all: Vec<&str> = NotificationKind::ALL.iter().map(|k| k.as_str()).collect();
    names
        .iter()
        .map(|n| {
            NotificationKind::parse(n).ok_or_else(|| {
                Problem::new(
                    "not a list of events",
                    format!("{n:?} is not an event"),
                    format!("use only {}", all.join(", ")),
                )
            })
        })
        .collect()
}

fn parse_addresses(value: &Value) -> Result<Vec<String>, Problem> {
    let list = parse_list(value, "\"oncall-leads@example.com\"")?;
    for a in &list {
        if a.parse::<lettre::Address>().is_err() {
            return Err(Problem::new(
                "not a list of email addresses",
                format!("{a:?} is not an email address"),
                "write addresses such as [\"oncall-leads@example.com\"]",
            ));
        }
    }
    Ok(list)
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The events a channel sends; empty (the default) means every event.
fn events(keys: &mut Keys<'_, '_>) -> Vec<NotificationKind> {
    keys.value("events", Vec::new(), parse_events)
}

impl NotifyConfig {
    /// Whether any channel is configured.
    pub fn any_channel(&self) -> bool {
        self.slack.is_some() || self.email.is_some() || self.webhook.is_some()
    }

    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        let interval = keys.duration(
            "interval",
            secs(5),
            secs(1)..=mins(10),
            "the notification worker's interval",
            "pick how often the outbox is looked at, such as \"5s\"",
        );
        let retry_for = keys.duration(
            "retry_for",
            days(3),
            mins(1)..=days(30),
            "the retry period",
            "pick how long a failing delivery is retried before it is given up, such as \"3d\"",
        );
        let ending_soon = keys.duration(
            "ending_soon",
            mins(10),
            mins(1)..=days(1),
            "the ending-soon notice",
            "pick how long before a grant's end its requester is told, such as \"10m\"",
        );
        NotifyConfig {
            interval,
            retry_for,
            ending_soon,
            slack: keys.section("slack", SlackConfig::read),
            email: keys.section("email", EmailConfig::read),
            webhook: keys.section("webhook", WebhookConfig::read),
        }
    }
}

impl SlackConfig {
    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let url = keys.secret("webhook_url", "webhook_url_file");
        let events = events(keys);
        let url = url?;
        match url::Url::parse(url.expose()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                keys.invalid(
                    "webhook_url",
                    "[redacted]".to_owned(),
                    Problem::new(
                        "not an http(s) URL",
                        "it must be the incoming webhook's address",
                        "copy the Webhook URL from your Slack app's Incoming Webhooks page \
                         (https://hooks.slack.com/services/…)",
                    ),
                );
                return None;
            }
        }
        Some(SlackConfig {
            webhook_url: url,
            events,
        })
    }
}

impl EmailConfig {
    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let host = keys.optional("smtp_host", "\"smtp.example.com\"", |_| Ok(()));
        let port = keys.value("smtp_port", None, |v| {
            if matches!(v, Value::String(_, s) if s.trim().is_empty()) {
                return Ok(None);
            }
            match whole_number(v).and_then(|n| u16::try_from(n).ok()) {
                Some(p) if p > 0 => Ok(Some(p)),
                _ => Err(Problem::new(
                    "not a port",
                    "it must be a number from 1 to 65535",
                    "set the SMTP server's port, such as 587",
                )),
            }
        });
        let tls = keys.value("tls", SmtpTls::StartTls, |v| {
            let text = expect_str(v, "\"starttls\"")?;
            let text = if text.trim().is_empty() {
                "starttls"
            } else {
                text
            };
            let all = [SmtpTls::StartTls, SmtpTls::Tls, SmtpTls::None];
            one_of(text, &all, SmtpTls::as_str).ok_or_else(|| {
                Problem::new(
                    "not a TLS mode",
                    "it must be starttls, tls or none",
                    "use \"starttls\" (port 587), \"tls\" (port 465) or, for a mail catcher on \
                     this machine only, \"none\"",
                )
            })
        });
        let username = keys.optional("username", "\"timebox\"", |_| Ok(()));
        let password = keys.secret("password", "password_file");
        let from = keys.optional("from", "\"Timebox <timebox@example.com>\"", |s| {
            s.parse::<lettre::message::Mailbox>()
                .map(|_| ())
                .map_err(|e| {
                    Problem::new(
                        "not a sender address",
                        e.to_string(),
                        "write an address such as \"Timebox <timebox@example.com>\"",
                    )
                })
        });
        let approvers_to = keys.value("approvers_to", Vec::new(), parse_addresses);
        let auditors_to = keys.value("auditors_to", Vec::new(), parse_addresses);
        let events = events(keys);

        let host = host?;
        let Some(from) = from else {
            keys.inconsistent(
                "from",
                "is missing, but notify.email.smtp_host is set",
                "set notify.email.from to the sender address, such as \
                 \"Timebox <timebox@example.com>\"",
            );
            return None;
        };
        if username.is_some() != password.is_some() {
            keys.inconsistent(
                "username",
                "and notify.email.password (or password_file) must be set together",
                "set both for a server that needs a login, or neither",
            );
        }
        if tls == SmtpTls::None && password.is_some() && !is_loopback_host(&host) {
            keys.inconsistent(
                "tls",
                format!(
                    "is \"none\" with a password for {host}: the password would cross the \
                     network in clear"
                ),
                "use tls = \"starttls\" or \"tls\"; \"none\" is for a mail catcher on this \
                 machine",
            );
        }
        Some(EmailConfig {
            smtp_port: port.unwrap_or(tls.default_port()),
            smtp_host: host,
            tls,
            username,
            password,
            from,
            approvers_to,
            auditors_to,
            events,
        })
    }
}

const WEBHOOK_EXAMPLE: &str = "\"https://siem.example.com/timebox\"";

impl WebhookConfig {
    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let url = keys.optional("url", WEBHOOK_EXAMPLE, |s| {
            http_url(
                s,
                WEBHOOK_EXAMPLE,
                "the address that receives Timebox's signed events",
            )
        });
        let secret = keys.secret("secret", "secret_file");
        let events = events(keys);
        let url = url?;
        let secret = signing_secret(keys, secret, "secret", "url")?;
        Some(WebhookConfig {
            url,
            secret,
            events,
        })
    }
}

/// The HMAC signing key of a signed webhook whose address (`url_key`) is set: the
/// one rule for `[notify.webhook]` and the audit checkpoint webhook. Missing is an
/// error naming both keys, shorter than 16 characters is refused; never shown.
pub(super) fn signing_secret(
    keys: &mut Keys<'_, '_>,
    secret: Option<Secret>,
    secret_key: &'static str,
    url_key: &str,
) -> Option<Secret> {
    let Some(secret) = secret else {
        let url = keys.dotted(url_key);
        let dotted = keys.dotted(secret_key);
        keys.inconsistent(
            secret_key,
            format!("is missing, but {url} is set"),
            format!(
                "set {dotted} (or {secret_key}_file) to a random key shared with the \
                 receiver, such as the output of `openssl rand -hex 32`; every request is \
                 signed with it"
            ),
        );
        return None;
    };
    if secret.expose().len() < 16 {
        keys.invalid(
            secret_key,
            "[redacted]".to_owned(),
            Problem::new(
                "too short",
                "a signing key needs at least 16 characters",
                "use a random key such as the output of `openssl rand -hex 32`",
            ),
        );
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{from_toml, with_env};
    use super::SmtpTls;
    use app::domain::NotificationKind;

    fn message(toml: &str) -> String {
        from_toml(toml).expect_err("refused").to_string()
    }

    #[test]
    fn channels_are_off_by_default() {
        let c = from_toml("").expect("valid");
        assert!(!c.notify.any_channel());
        assert_eq!(c.notify.ending_soon, std::time::Duration::from_secs(600));
    }

    #[test]
    fn email_is_checked() {
        let c = from_toml(
            "[notify.email]\nsmtp_host = \"smtp.example.com\"\nfrom = \"Timebox <t@example.com>\"\n\
             approvers_to = [\"a@example.com\"]\nevents = [\"new_request\"]\n",
        )
        .expect("valid");
        let e = c.notify.email.expect("on");
        assert_eq!((e.tls, e.smtp_port), (SmtpTls::StartTls, 587));
        assert_eq!(e.events, [NotificationKind::NewRequest]);

        let c = from_toml(
            "[notify.email]\nsmtp_host = \"h\"\nfrom = \"t@example.com\"\ntls = \"tls\"\n",
        )
        .expect("valid");
        assert_eq!(c.notify.email.expect("on").smtp_port, 465);
        // A port written as a TOML integer (signed to the TOML parser) is a port.
        let c = from_toml(
            "[notify.email]\nsmtp_host = \"h\"\nfrom = \"t@example.com\"\nsmtp_port = 2525\n",
        )
        .expect("valid");
        assert_eq!(c.notify.email.expect("on").smtp_port, 2525);

        let m = message("[notify.email]\nsmtp_host = \"smtp.example.com\"\n");
        assert!(m.contains("notify.email.from is missing"), "{m}");
        let m =
            message("[notify.email]\nsmtp_host = \"h\"\nfrom = \"t@example.com\"\ntls = \"ssl\"\n");
        assert!(
            m.contains("notify.email.tls = \"ssl\" is not a TLS mode"),
            "{m}"
        );
        let m = message(
            "[notify.email]\nsmtp_host = \"h\"\nfrom = \"t@example.com\"\napprovers_to = [\"nope\"]\n",
        );
        assert!(m.contains("\"nope\" is not an email address"), "{m}");
        let m = message(
            "[notify.email]\nsmtp_host = \"smtp.example.com\"\nfrom = \"t@example.com\"\ntls = \"none\"\n\
             username = \"u\"\npassword = \"hunter2\"\n",
        );
        assert!(m.contains("in clear"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        let m = message(
            "[notify.email]\nsmtp_host = \"h\"\nfrom = \"t@example.com\"\nusername = \"u\"\n",
        );
        assert!(m.contains("must be set together"), "{m}");
        let m = message("[notify.email]\nevents = [\"sometimes\"]\n");
        assert!(m.contains("\"sometimes\" is not an event"), "{m}");
    }

    #[test]
    fn webhook_needs_a_secret() {
        let m = message("[notify.webhook]\nurl = \"https://siem.example.com/x\"\n");
        assert!(m.contains("notify.webhook.secret is missing"), "{m}");
        let m =
            message("[notify.webhook]\nurl = \"https://siem.example.com/x\"\nsecret = \"short\"\n");
        assert!(m.contains("too short"), "{m}");
        assert!(!m.contains("short\""), "the secret is not shown: {m}");
        from_toml(
            "[notify.webhook]\nurl = \"https://siem.example.com/x\"\nsecret = \"0123456789abcdef\"\n",
        )
        .expect("valid");
    }

    #[test]
    fn slack_url_is_a_secret_and_checked() {
        let m = message("[notify.slack]\nwebhook_url = \"hooks.slack.com/services/SECRET\"\n");
        assert!(
            m.contains("notify.slack.webhook_url = [redacted] is not an http(s) URL"),
            "{m}"
        );
        assert!(!m.contains("SECRET"), "{m}");
        let c = with_env(
            "",
            &[
                (
                    "TIMEBOX_NOTIFY__SLACK__WEBHOOK_URL",
                    "https://hooks.slack.com/services/T/B/X",
                ),
                (
                    "TIMEBOX_NOTIFY__SLACK__EVENTS",
                    "new_request, break_glass_used",
                ),
            ],
        )
        .expect("valid");
        let s = c.notify.slack.expect("on");
        assert_eq!(s.events.len(), 2);
        assert!(!format!("{s:?}").contains("hooks.slack.com"));
    }
}
