//! `[audit]`: signed checkpoints of the audit chain (docs/audit.md): the Ed25519 key
//! that signs them, how often one is written, and the append-only file they are
//! published to besides the log. The key file itself is read at start-up by
//! `crate::audit::checkpoint`, never here, so its content never reaches a message.

use std::path::PathBuf;
use std::time::Duration;

use super::kit::{hours, mins, whole_number, Keys, Problem};

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
}

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
        }
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
}
