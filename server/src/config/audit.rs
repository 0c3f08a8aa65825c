//! `[audit]`: signed checkpoints of the audit chain (docs/audit.md): the Ed25519 key
//! that signs them, how often one is written, and the sinks they are published to
//! besides the log (an append-only file, an S3 bucket under Object Lock, a signed
//! webhook). The key file itself is read at start-up by `crate::audit::checkpoint`,
//! never here, so its content never reaches a message.

use std::path::PathBuf;
use std::time::Duration;

use super::kit::{expect_str, hours, http_url, mins, whole_number, Keys, Problem, Secret};
use super::notify::signing_secret;

/// Where checkpoints are written in S3: `s3://bucket/prefix`, parsed once. Each
/// checkpoint is the object [`S3Location::key_for`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's top level.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket` or `s3://bucket/prefix` (a trailing `/` is ignored).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let rest = text
            .trim()
            .strip_prefix("s3://")
            .ok_or("it must start with s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let named_right = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !bucket.contains("..");
        if !named_right {
            return Err("the bucket name must be 3 to 63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit");
        }
        let prefix = prefix.trim_matches('/');
        if prefix.len() > 900 || prefix.contains("//") || prefix.chars().any(char::is_control) {
            return Err("the prefix must be at most 900 characters without empty parts (//) or control characters");
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The object of the checkpoint at `seq`: `<prefix>/<seq, 20 digits>.json`, so
    /// that the keys sort in sequence order.
    pub fn key_for(&self, seq: i64) -> String {
        format!("{}{seq:020}.json", self.list_prefix())
    }

    /// What every checkpoint's key starts with: `prefix/`, or nothing.
    pub fn list_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// The sequence number a checkpoint key names, if it is one.
    pub fn seq_of(&self, key: &str) -> Option<i64> {
        let name = key
            .strip_prefix(&self.list_prefix())?
            .strip_suffix(".json")?;
        if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        name.parse().ok()
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// The signed webhook checkpoints are POSTed to.
#[derive(Debug, Clone)]
pub struct CheckpointWebhookConfig {
    pub url: String,
    /// The HMAC-SHA256 signing key (signed as `[notify.webhook]` signs).
    pub secret: Secret,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The Ed25519 signing key: a file holding the 32-byte seed as 64 hex digits
    /// (`timebox audit keygen --out FILE` writes one). `None`: no checkpoints are
    /// written (start-up says so), and the chain is only as safe as the database.
    pub signing_key_file: Option<PathBuf>,
    /// A checkpoint once the chain has grown by this many events, 1..=10,000,000.
    /// Default 1000.
    pub checkpoint_every: u64,
    /// A checkpoint at least this often while events are appended, 10s..=24h.
    /// Default 15m.
    pub checkpoint_interval: Duration,
    /// An append-only local file each checkpoint is written to as one JSON line.
    /// `None`: the log is the only sink.
    pub checkpoint_file: Option<PathBuf>,
    /// An S3 bucket with Object Lock: each checkpoint one object, locked in
    /// compliance mode. `None`: no S3 sink.
    pub checkpoint_s3: Option<S3Location>,
    /// The bucket's region; `None`: the SDK's default chain (then `us-east-1`).
    pub checkpoint_s3_region: Option<String>,
    /// How long each checkpoint object is locked, 1..=36500 days. Default 2557 (7 years).
    pub checkpoint_s3_retention_days: u32,
    /// A receiver each checkpoint is POSTed to, signed. `None`: no webhook sink.
    pub checkpoint_webhook: Option<CheckpointWebhookConfig>,
}

const S3_EXAMPLE: &str = "\"s3://audit-checkpoints/timebox\"";
const WEBHOOK_EXAMPLE: &str = "\"https://siem.example.com/timebox/checkpoints\"";

impl AuditConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        Self {
            signing_key_file: keys
                .optional("signing_key_file", "\"/etc/timebox/audit.key\"", |_| Ok(()))
                .map(PathBuf::from),
            checkpoint_every: keys.value("checkpoint_every", 1000, |v| {
                whole_number(v)
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| (1..=10_000_000).contains(n))
                    .ok_or_else(|| {
                        Problem::new(
                            "not a number of events from 1 to 10000000",
                            "a checkpoint is written each time the chain grows by this many events",
                            "use 1000 unless the auditor wants them closer or further apart",
                        )
                    })
            }),
            checkpoint_interval: keys.duration(
                "checkpoint_interval",
                mins(15),
                Duration::from_secs(10)..=hours(24),
                "the checkpoint interval",
                "pick how long new events may wait for a checkpoint, such as \"15m\"",
            ),
            checkpoint_file: keys
                .optional(
                    "checkpoint_file",
                    "\"/var/lib/timebox/checkpoints.jsonl\"",
                    |_| Ok(()),
                )
                .map(PathBuf::from),
            checkpoint_s3: keys
                .value("checkpoint_s3", None, |v| {
                    let text = expect_str(v, S3_EXAMPLE)?.trim();
                    if text.is_empty() {
                        return Ok(None);
                    }
                    S3Location::parse(text).map(Some).map_err(|why| {
                        Problem::new(
                            "not an S3 location",
                            why,
                            format!("write the bucket (with Object Lock enabled) and an optional prefix, such as {S3_EXAMPLE}"),
                        )
                    })
                }),
            checkpoint_s3_region: keys.optional("checkpoint_s3_region", "\"eu-west-1\"", |s| {
                let ok = s.split('-').count() >= 3
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if ok {
                    return Ok(());
                }
                Err(Problem::new(
                    "not an AWS region code",
                    "it names the bucket's region",
                    "write a region code such as \"eu-west-1\", or remove the key to use the SDK's region",
                ))
            }),
            checkpoint_s3_retention_days: keys.value("checkpoint_s3_retention_days", 2557, |v| {
                whole_number(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=36_500).contains(n))
                    .ok_or_else(|| {
                        Problem::new(
                            "not a number of days from 1 to 36500",
                            "each checkpoint object is locked (compliance mode) for this long; nobody can shorten it",
                            "use 2557 (7 years) or what your retention policy requires",
                        )
                    })
            }),
            checkpoint_webhook: Self::webhook(keys),
        }
    }

    /// `checkpoint_webhook_url` with its signing key; asks for every key first.
    fn webhook(keys: &mut Keys<'_, '_>) -> Option<CheckpointWebhookConfig> {
        let url = keys.optional("checkpoint_webhook_url", WEBHOOK_EXAMPLE, |s| {
            http_url(
                s,
                WEBHOOK_EXAMPLE,
                "the address that receives Timebox's signed checkpoints",
            )
        });
        let secret = keys.secret(
            "checkpoint_webhook_secret",
            "checkpoint_webhook_secret_file",
        );
        let url = url?;
        let secret = signing_secret(
            keys,
            secret,
            "checkpoint_webhook_secret",
            "checkpoint_webhook_url",
        )?;
        Some(CheckpointWebhookConfig { url, secret })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, message, with_env};
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c = with_env("", &[]).unwrap();
        assert_eq!(c.audit.signing_key_file, None);
        assert_eq!(c.audit.checkpoint_every, 1000);
        assert_eq!(c.audit.checkpoint_interval, mins(15));
        assert_eq!(c.audit.checkpoint_file, None);
        let m = message(with_env(
            "",
            &[
                ("TIMEBOX_AUDIT__CHECKPOINT_EVERY", "0"),
                ("TIMEBOX_AUDIT__CHECKPOINT_INTERVAL", "1s"),
            ],
        ));
        assert_contains(
            &m,
            "audit.checkpoint_every = \"0\" is not a number of events from 1 to 10000000",
        );
        assert_contains(&m, "audit.checkpoint_interval");
        let c = with_env(
            "[audit]\nsigning_key_file = \"/k\"\ncheckpoint_file = \"/c.jsonl\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.audit.signing_key_file, Some(PathBuf::from("/k")));
        assert_eq!(c.audit.checkpoint_file, Some(PathBuf::from("/c.jsonl")));
    }

    #[test]
    fn s3_and_webhook_sinks() {
        let c = with_env("", &[]).unwrap();
        assert_eq!(c.audit.checkpoint_s3, None);
        assert_eq!(c.audit.checkpoint_s3_retention_days, 2557);
        assert!(c.audit.checkpoint_webhook.is_none());
        let c = with_env(
            "[audit]\ncheckpoint_s3 = \"s3://audit-checkpoints/timebox/prod/\"\n\
             checkpoint_s3_region = \"eu-west-1\"\ncheckpoint_s3_retention_days = 30\n\
             checkpoint_webhook_url = \"https://siem.example.com/c\"\n",
            &[(
                "TIMEBOX_AUDIT__CHECKPOINT_WEBHOOK_SECRET",
                "0123456789abcdef",
            )],
        )
        .unwrap();
        let s3 = c.audit.checkpoint_s3.unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("audit-checkpoints", "timebox/prod")
        );
        assert_eq!(s3.key_for(42), "timebox/prod/00000000000000000042.json");
        assert_eq!(
            s3.seq_of("timebox/prod/00000000000000000042.json"),
            Some(42)
        );
        assert_eq!(s3.seq_of("timebox/prod/42.json"), None);
        assert_eq!(s3.seq_of("timebox/other/00000000000000000042.json"), None);
        assert_eq!(s3.to_string(), "s3://audit-checkpoints/timebox/prod");
        assert_eq!(c.audit.checkpoint_s3_region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.audit.checkpoint_s3_retention_days, 30);
        let w = c.audit.checkpoint_webhook.unwrap();
        assert_eq!(w.url, "https://siem.example.com/c");
        assert!(!format!("{w:?}").contains("0123456789abcdef"));
        let bare = S3Location::parse("s3://bucket").unwrap();
        assert_eq!(bare.key_for(1), "00000000000000000001.json");

        let m = message(with_env(
            "[audit]\ncheckpoint_s3 = \"https://bucket.s3.amazonaws.com\"\n\
             checkpoint_s3_retention_days = 0\ncheckpoint_webhook_url = \"siem\"\n",
            &[],
        ));
        assert_contains(&m, "audit.checkpoint_s3 = \"https://bucket.s3.amazonaws.com\" is not an S3 location: it must start with s3://");
        assert_contains(
            &m,
            "audit.checkpoint_s3_retention_days = 0 is not a number of days from 1 to 36500",
        );
        assert_contains(
            &m,
            "audit.checkpoint_webhook_url = \"siem\" is not an http(s) URL",
        );
        for bad in [
            "s3://Bucket/x",
            "s3://ab",
            "s3://-bucket",
            "s3://bucket/a//b",
            "s3://",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
        let m = message(with_env(
            "[audit]\ncheckpoint_webhook_url = \"https://siem.example.com/c\"\n",
            &[],
        ));
        assert_contains(
            &m,
            "audit.checkpoint_webhook_secret is missing, but audit.checkpoint_webhook_url is set",
        );
        let m = message(with_env(
            "[audit]\ncheckpoint_webhook_url = \"https://siem.example.com/c\"\ncheckpoint_webhook_secret = \"shorty\"\n",
            &[],
        ));
        assert_contains(&m, "too short");
        assert!(!m.contains("shorty"), "{m}");
    }
}
