//! The one retry backoff every job uses: exponential in the attempts, capped, with full
//! jitter (a uniformly random delay between the base and the ceiling), so replicas
//! retrying the same throttled API or the same receiver spread out.

use std::time::Duration;

/// A backoff schedule: `base · 2^attempts`, at most `cap`, jittered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The shortest delay, and the first ceiling.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

/// Doublings past this change nothing for any sane cap and would overflow.
const MAX_DOUBLINGS: u32 = 20;

impl Backoff {
    /// A schedule from `base` doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The delay before the next try after `attempts` failed ones: uniformly random
    /// between the base and `min(base · 2^attempts, cap)` (at least the base).
    pub fn delay(&self, attempts: i64) -> chrono::Duration {
        let doublings =
            u32::try_from(attempts.clamp(0, i64::from(MAX_DOUBLINGS))).unwrap_or(MAX_DOUBLINGS);
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.cap);
        let ceiling = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let base = u64::try_from(self.base.as_millis()).unwrap_or(0);
        let pick = fastrand::u64(base.min(ceiling)..=ceiling);
        chrono::Duration::milliseconds(i64::try_from(pick).unwrap_or(i64::MAX))
    }

    /// `d` held between the base and the cap (a schedule that grows some other way,
    /// such as by an event's age).
    pub fn clamp(&self, d: chrono::Duration) -> chrono::Duration {
        d.max(super::to_chrono(self.base))
            .min(super::to_chrono(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The reaper's schedule (base 1 s) and the notification worker's (base 2 s),
    /// both capped at 60 s.
    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        for base in [1i64, 2] {
            let b = Backoff::new(
                Duration::from_secs(base.unsigned_abs()),
                Duration::from_secs(60),
            );
            for attempts in 0..40 {
                let ceiling = (base << attempts.min(20)).min(60) * 1000;
                for _ in 0..20 {
                    let d = b.delay(attempts).num_milliseconds();
                    assert!(d >= base * 1000, "at least the base: {d}");
                    assert!(d <= ceiling, "attempt {attempts}: {d} > {ceiling}");
                }
            }
            // Jitter: the same attempt does not always give the same delay.
            for attempts in [5, 6] {
                let delays: HashSet<i64> = (0..50)
                    .map(|_| b.delay(attempts).num_milliseconds())
                    .collect();
                assert!(delays.len() > 1, "jittered");
            }
        }
    }

    #[test]
    fn clamp_holds_a_delay_between_base_and_cap() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(b.clamp(chrono::Duration::seconds(1)).num_seconds(), 5);
        assert_eq!(b.clamp(chrono::Duration::seconds(30)).num_seconds(), 30);
        assert_eq!(b.clamp(chrono::Duration::hours(3)).num_seconds(), 60);
    }
}
