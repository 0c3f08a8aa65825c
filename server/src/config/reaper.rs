//! `[reaper]`: the background job that ends expired access: how often it runs, and
//! whether it runs at all.

use std::time::Duration;

use super::kit::{mins, parse_bool, secs, Keys};

/// `[reaper]`: the background task that ends expired access.
#[derive(Debug, Clone)]
pub struct ReaperConfig {
    /// How often it runs, 1s..=10m. Default 15s.
    pub interval: Duration,
    /// Whether it runs at all. Default true.
    pub enabled: bool,
}

impl ReaperConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        Self {
            interval: keys.duration(
                "interval",
                secs(15),
                secs(1)..=mins(10),
                "the reaper interval",
                "pick how often expired access is looked for, such as \"15s\"; access ends \
                 at most this long after its deadline",
            ),
            enabled: keys.value("enabled", true, parse_bool),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, message, with_env};

    #[test]
    fn reaper_enabled_is_a_switch() {
        let m = message(with_env("", &[("TIMEBOX_REAPER__ENABLED", "yes")]));
        assert_contains(&m, "reaper.enabled = \"yes\" is not true or false");
    }
}
