//! `[notify]` and its channels `[notify.slack]`, `[notify.email]`, `[notify.webhook]`,
//! kept apart from the other sections so the notification work owns them in one place.
//!
//! Every channel is optional and configured on its own: a channel is on when its
//! address is set (`webhook_url`, `smtp_host`, `url`). Secrets (the Slack webhook URL,
//! the SMTP password, the webhook signing key) are [`Secret`]s and may come from files.

use super::{duration_in, expect_str, resolve_secret, Checker, ConfigError, Problem, Secret};
use crate::notify::NotificationKind;
use figment::value::Value;
use serde::Deserialize;
use std::time::Duration;

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

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            retry_for: Duration::from_secs(3 * 86_400),
            ending_soon: Duration::from_secs(10 * 60),
            slack: None,
            email: None,
            webhook: None,
        }
    }
}

impl NotifyConfig {
    /// Whether any channel is configured.
    pub fn any_channel(&self) -> bool {
        self.slack.is_some() || self.email.is_some() || self.webhook.is_some()
    }
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

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawNotify {
    interval: Option<Value>,
    retry_for: Option<Value>,
    ending_soon: Option<Value>,
    slack: RawSlack,
    email: RawEmail,
    webhook: RawWebhook,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSlack {
    webhook_url: Option<Value>,
    webhook_url_file: Option<Value>,
    events: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawEmail {
    smtp_host: Option<Value>,
    smtp_port: Option<Value>,
    tls: Option<Value>,
    username: Option<Value>,
    password: Option<Value>,
    password_file: Option<Value>,
    from: Option<Value>,
    approvers_to: Option<Value>,
    auditors_to: Option<Value>,
    events: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawWebhook {
    url: Option<Value>,
    secret: Option<Value>,
    secret_file: Option<Value>,
    events: Option<Value>,
}

pub(super) const NOTIFY_KEYS: &[&str] = &["interval", "retry_for", "ending_soon"];
pub(super) const SLACK_KEYS: &[&str] = &["webhook_url", "webhook_url_file", "events"];
pub(super) const EMAIL_KEYS: &[&str] = &[
    "smtp_host",
    "smtp_port",
    "tls",
    "username",
    "password",
    "password_file",
    "from",
    "approvers_to",
    "auditors_to",
    "events",
];
pub(super) const WEBHOOK_KEYS: &[&str] = &["url", "secret", "secret_file", "events"];

fn parse_events(value: &Value) -> Result<Vec<NotificationKind>, Problem> {
    let names = super::auth::parse_list(value, "\"new_request\", \"break_glass_used\"")?;
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
    let list = super::auth::parse_list(value, "\"oncall-leads@example.com\"")?;
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

impl Checker<'_> {
    fn secret(
        &mut self,
        section: &str,
        key: &str,
        raw: Option<Value>,
        file: Option<Value>,
    ) -> Option<Secret> {
        let inline = self.secret_text(&format!("{section}.{key}"), raw);
        let file = self.path(&format!("{section}.{key}_file"), file);
        match resolve_secret(section, key, inline, file) {
            Ok(s) => s,
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    fn events(&mut self, key: &str, raw: Option<Value>) -> Vec<NotificationKind> {
        self.value(key, raw, Vec::new(), parse_events)
    }

    pub(super) fn notify(&mut self, raw: RawNotify) -> NotifyConfig {
        let d = NotifyConfig::default();
        let interval = self.value("notify.interval", raw.interval, d.interval, |v| {
            duration_in(
                v,
                "\"5s\"",
                (Duration::from_secs(1), Duration::from_secs(600)),
                "the notification worker's interval",
                "pick how often the outbox is looked at, such as \"5s\"",
            )
        });
        let retry_for = self.value("notify.retry_for", raw.retry_for, d.retry_for, |v| {
            duration_in(
                v,
                "\"3d\"",
                (Duration::from_secs(60), Duration::from_secs(30 * 86_400)),
                "the retry period",
                "pick how long a failing delivery is retried before it is given up, such as \"3d\"",
            )
        });
        let ending_soon = self.value("notify.ending_soon", raw.ending_soon, d.ending_soon, |v| {
            duration_in(
                v,
                "\"10m\"",
                (Duration::from_secs(60), Duration::from_secs(86_400)),
                "the ending-soon notice",
                "pick how long before a grant's end its requester is told, such as \"10m\"",
            )
        });
        NotifyConfig {
            interval,
            retry_for,
            ending_soon,
            slack: self.slack(raw.slack),
            email: self.email(raw.email),
            webhook: self.webhook(raw.webhook),
        }
    }

    fn slack(&mut self, raw: RawSlack) -> Option<SlackConfig> {
        let url = self.secret(
            "notify.slack",
            "webhook_url",
            raw.webhook_url,
            raw.webhook_url_file,
        );
        let events = self.events("notify.slack.events", raw.events);
        let url = url?;
        match url::Url::parse(url.expose()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                self.invalid(
                    "notify.slack.webhook_url",
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

    fn email(&mut self, raw: RawEmail) -> Option<EmailConfig> {
        let host = self.optional(
            "notify.email.smtp_host",
            raw.smtp_host,
            "\"smtp.example.com\"",
            |_| Ok(()),
        );
        let tls = self.value(
            "notify.email.tls",
            raw.tls,
            SmtpTls::StartTls,
            |v| match expect_str(v, "\"starttls\"")?.trim() {
                "" | "starttls" => Ok(SmtpTls::StartTls),
                "tls" => Ok(SmtpTls::Tls),
                "none" => Ok(SmtpTls::None),
                _ => Err(Problem::new(
                    "not a TLS mode",
                    "it must be starttls, tls or none",
                    "use \"starttls\" (port 587), \"tls\" (port 465) or, for a mail catcher on \
                     this machine only, \"none\"",
                )),
            },
        );
        let port = self.value("notify.email.smtp_port", raw.smtp_port, None, |v| {
            let n = match v {
                Value::Num(_, n) => n.to_u128().and_then(|n| u16::try_from(n).ok()),
                Value::String(_, s) if s.trim().is_empty() => return Ok(None),
                Value::String(_, s) => s.trim().parse::<u16>().ok(),
                _ => None,
            };
            match n {
                Some(p) if p > 0 => Ok(Some(p)),
                _ => Err(Problem::new(
                    "not a port",
                    "it must be a number from 1 to 65535",
                    "set the SMTP server's port, such as 587",
                )),
            }
        });
        let username = self.optional("notify.email.username", raw.username, "\"timebox\"", |_| {
            Ok(())
        });
        let password = self.secret("notify.email", "password", raw.password, raw.password_file);
        let from = self.optional(
            "notify.email.from",
            raw.from,
            "\"Timebox <timebox@example.com>\"",
            |s| {
                s.parse::<lettre::message::Mailbox>()
                    .map(|_| ())
                    .map_err(|e| {
                        Problem::new(
                            "not a sender address",
                            e.to_string(),
                            "write an address such as \"Timebox <timebox@example.com>\"",
                        )
                    })
            },
        );
        let approvers_to = self.value(
            "notify.email.approvers_to",
            raw.approvers_to,
            Vec::new(),
            parse_addresses,
        );
        let auditors_to = self.value(
            "notify.email.auditors_to",
            raw.auditors_to,
            Vec::new(),
            parse_addresses,
        );
        let events = self.events("notify.email.events", raw.events);

        let host = host?;
        let Some(from) = from else {
            self.errors.push(ConfigError::Inconsistent {
                key: "notify.email.from".to_owned(),
                detail: "is missing, but notify.email.smtp_host is set".to_owned(),
                fix: "set notify.email.from to the sender address, such as \
                      \"Timebox <timebox@example.com>\""
                    .to_owned(),
            });
            return None;
        };
        if username.is_some() != password.is_some() {
            self.errors.push(ConfigError::Inconsistent {
                key: "notify.email.username".to_owned(),
                detail: "and notify.email.password (or password_file) must be set together"
                    .to_owned(),
                fix: "set both for a server that needs a login, or neither".to_owned(),
            });
        }
        if tls == SmtpTls::None && password.is_some() && !is_loopback_host(&host) {
            self.errors.push(ConfigError::Inconsistent {
                key: "notify.email.tls".to_owned(),
                detail: format!(
                    "is \"none\" with a password for {host}: the password would cross the \
                     network in clear"
                ),
                fix: "use tls = \"starttls\" or \"tls\"; \"none\" is for a mail catcher on this \
                      machine"
                    .to_owned(),
            });
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

    fn webhook(&mut self, raw: RawWebhook) -> Option<WebhookConfig> {
        let url = self.value("notify.webhook.url", raw.url, None, |v| {
            if expect_str(v, "\"https://siem.example.com/timebox\"")?
                .trim()
                .is_empty()
            {
                return Ok(None);
            }
            super::auth::parse_http_url(
                v,
                "\"https://siem.example.com/timebox\"",
                "the address that receives Timebox's signed events",
            )
            .map(Some)
        });
        let secret = self.secret("notify.webhook", "secret", raw.secret, raw.secret_file);
        let events = self.events("notify.webhook.events", raw.events);
        let url = url?;
        let Some(secret) = secret else {
            self.errors.push(ConfigError::Inconsistent {
                key: "notify.webhook.secret".to_owned(),
                detail: "is missing, but notify.webhook.url is set".to_owned(),
                fix: "set notify.webhook.secret (or secret_file) to a random key shared with \
                      the receiver, such as the output of `openssl rand -hex 32`; every request \
                      is signed with it"
                    .to_owned(),
            });
            return None;
        };
        if secret.expose().len() < 16 {
            self.invalid(
                "notify.webhook.secret",
                "[redacted]".to_owned(),
                Problem::new(
                    "too short",
                    "a signing key needs at least 16 characters",
                    "use a random key such as the output of `openssl rand -hex 32`",
                ),
            );
        }
        Some(WebhookConfig {
            url,
            secret,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load_from, Config, ConfigError, EnvOverrides};
    use super::SmtpTls;
    use crate::notify::NotificationKind;
    use figment::providers::{Format, Toml};
    use figment::Figment;

    fn from_toml(toml: &str) -> Result<Config, ConfigError> {
        load_from(Figment::from(Toml::string(toml)))
    }

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
        let c = load_from(
            Figment::from(Toml::string("")).merge(EnvOverrides::from_vars([
                (
                    "TIMEBOX_NOTIFY__SLACK__WEBHOOK_URL",
                    "https://hooks.slack.com/services/T/B/X",
                ),
                (
                    "TIMEBOX_NOTIFY__SLACK__EVENTS",
                    "new_request, break_glass_used",
                ),
            ])),
        )
        .expect("valid");
        let s = c.notify.slack.expect("on");
        assert_eq!(s.events.len(), 2);
        assert!(!format!("{s:?}").contains("hooks.slack.com"));
    }
}
