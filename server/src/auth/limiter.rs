//! Failed sign-in callbacks counted per client address: after [`MAX_FAILURES`]
//! within [`WINDOW`], further callbacks from that address are refused until the
//! oldest failure leaves the window. The address is the TCP peer (Timebox does not
//! trust `X-Forwarded-For`; behind a proxy, limit at the proxy too).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 10;
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Addresses remembered at most; the quietest are forgotten first.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Default)]
pub struct FailureLimiter {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl FailureLimiter {
    /// Whether `addr` may try a callback now.
    pub fn allows(&self, addr: IpAddr) -> bool {
        self.allows_at(addr, Instant::now())
    }

    /// Counts one failed callback from `addr`.
    pub fn record_failure(&self, addr: IpAddr) {
        self.record_at(addr, Instant::now());
    }

    fn allows_at(&self, addr: IpAddr, now: Instant) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&addr) {
            None => true,
            Some(times) => {
                prune(times, now);
                times.len() < MAX_FAILURES
            }
        }
    }

    fn record_at(&self, addr: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            if map.len() >= MAX_ADDRESSES {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(a, _)| *a)
                {
                    map.remove(&oldest);
                }
            }
        }
        let times = map.entry(addr).or_default();
        prune(times, now);
        times.push_back(now);
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_too_many_failures_then_forgives() {
        let limiter = FailureLimiter::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(limiter.allows_at(a, t0), "failure {i}");
            limiter.record_at(a, t0);
        }
        assert!(!limiter.allows_at(a, t0));
        assert!(limiter.allows_at(b, t0), "other addresses are not affected");
        assert!(limiter.allows_at(a, t0 + WINDOW), "the window moved on");
    }
}
