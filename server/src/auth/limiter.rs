//! Failed sign-ins counted per client address: after [`MAX_FAILURES`] within
//! [`WINDOW`], that address starts no new sign-in (`/auth/login` answers 429) until
//! the oldest failure leaves the window. A sign-in already started is always
//! finished: a callback whose state matches its sign-in is never limited.
//!
//! Only real failures count: a callback for a sign-in that this browser started and
//! that then failed (wrong state, refused by the provider, a code that does not
//! exchange, an invalid ID token). A callback with no sign-in in progress costs
//! nothing and counts nothing, so nobody can spend another person's attempts with
//! forged callbacks. The address is the TCP peer, or, when the peer is one of
//! `server.trusted_proxies`, the client named in `X-Forwarded-For`
//! ([`client_address`]): people behind one proxy are counted apart.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The client's address: the TCP `peer`, unless it is a trusted proxy, in which case
/// the right-most address of `X-Forwarded-For` that is not a trusted proxy (the
/// left-most entries are the client's own word and are not believed).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            // An entry that is not an address: stop at the last one believed.
            Err(_) => return client,
        }
    }
    client
}

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

    #[test]
    fn the_client_address_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = [10, 0, 0, 5].into();
        let inner: IpAddr = [10, 0, 0, 6].into();
        let client: IpAddr = [203, 0, 113, 7].into();
        let trusted = [proxy, inner];
        // Not from a proxy: the peer, whatever the header says.
        assert_eq!(
            client_address(client, Some("198.51.100.1"), &trusted),
            client
        );
        assert_eq!(client_address(proxy, None, &trusted), proxy);
        assert_eq!(client_address(proxy, Some("203.0.113.7"), &trusted), client);
        // The client's own prefix is not believed; the proxies' hops are skipped.
        assert_eq!(
            client_address(proxy, Some("1.2.3.4, 203.0.113.7, 10.0.0.6"), &trusted),
            client
        );
        assert_eq!(
            client_address(proxy, Some("junk, 10.0.0.6"), &trusted),
            inner
        );
    }
}
