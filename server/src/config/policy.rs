//! `[policy]`: where the policy file is (docs/policy.md) and how often it is checked
//! for changes. The file itself is read by `crate::policy`.

use std::path::PathBuf;
use std::time::Duration;

use super::kit::{mins, secs, Keys};

/// `[policy]`: the policy file (docs/policy.md).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// The policy file. `None`: nobody may ask for access (start-up logs a warning).
    pub file: Option<PathBuf>,
    /// How often the file's modification time is checked for a reload, 1s..=10m.
    /// Default 5s. (SIGHUP reloads at once.)
    pub poll_interval: Duration,
}

impl PolicyConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        Self {
            file: keys
                .optional("file", "\"/etc/timebox/policy.toml\"", |_| Ok(()))
                .map(PathBuf::from),
            poll_interval: keys.duration(
                "poll_interval",
                secs(5),
                secs(1)..=mins(10),
                "the policy file poll interval",
                "pick how often the policy file is checked for changes, such as \"5s\" \
                 (SIGHUP reloads it at once)",
            ),
        }
    }
}
