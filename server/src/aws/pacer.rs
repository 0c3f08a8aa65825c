//! The one call pacer: calls that share a [`Pacer`] start at most `n` per second. A
//! call takes its slot when it starts, not when it queues, so a caller that gives up
//! while waiting costs the others nothing.
//!
//! Two classes share the budget: [`Priority::First`] (revocations and their status
//! polls) and [`Priority::Normal`] (everything else). While a first-class call
//! waits, no normal call starts: a revocation waits at most one gap, however many
//! request-path lookups are queued, and has the whole rate when it needs it; normal
//! calls have the whole rate when no revocation does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Which class a call is paced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Ending access: `DeleteAccountAssignment` and its status polls.
    First,
    #[default]
    Normal,
}

/// Spaces the start of calls at least `1/n` seconds apart (a token bucket holding one
/// token). Share one with `Arc` between everything that counts against one limit.
///
/// Waiters of a class queue on a fair lock and hold it while they wait for their
/// moment, so within a class they start first come, first served.
#[derive(Debug)]
pub struct Pacer {
    /// `None`: no limit.
    gap: Option<Duration>,
    /// The earliest moment the next call may start.
    next_start: std::sync::Mutex<Instant>,
    first_queue: Mutex<()>,
    normal_queue: Mutex<()>,
    /// First-class calls waiting: while any is, normal calls do not start.
    first_waiting: AtomicUsize,
}

/// Counts a waiting first-class call while it lives (a dropped future included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pacer {
    /// No limit: [`Pacer::acquire`] returns at once.
    pub fn unlimited() -> Self {
        Self::limit(None)
    }

    /// At most `calls` starts per second (`0`: no limit).
    pub fn per_second(calls: u32) -> Self {
        Self::limit(Some(calls))
    }

    /// `None` or `Some(0)`: no limit (as `aws.max_calls_per_second` says it).
    pub fn limit(calls_per_second: Option<u32>) -> Self {
        let gap = calls_per_second
            .filter(|n| *n > 0)
            .map(|n| Duration::from_secs_f64(1.0 / f64::from(n)));
        Self {
            gap,
            next_start: std::sync::Mutex::new(Instant::now()),
            first_queue: Mutex::new(()),
            normal_queue: Mutex::new(()),
            first_waiting: AtomicUsize::new(0),
        }
    }

    /// Waits until a normal call may start, and takes that slot as it returns.
    /// Dropping the future while it waits takes nothing.
    pub async fn acquire(&self) {
        self.acquire_as(Priority::Normal).await;
    }

    /// Waits until a call of `priority` may start, and takes that slot as it
    /// returns. Dropping the future while it waits takes nothing.
    pub async fn acquire_as(&self, priority: Priority) {
        let Some(gap) = self.gap else { return };
        let first = priority == Priority::First;
        let _waiting = first.then(|| {
            self.first_waiting.fetch_add(1, Ordering::SeqCst);
            Waiting(&self.first_waiting)
        });
        let _queue = if first {
            self.first_queue.lock().await
        } else {
            self.normal_queue.lock().await
        };
        loop {
            let now = Instant::now();
            let at = {
                let mut next = self.next_start.lock().unwrap_or_else(|p| p.into_inner());
                let at = *next;
                let yield_to_first = !first && self.first_waiting.load(Ordering::SeqCst) > 0;
                if at <= now && !yield_to_first {
                    *next = now + gap;
                    return;
                }
                if yield_to_first {
                    at.max(now + gap)
                } else {
                    at
                }
            };
            tokio::time::sleep_until(at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn starts_are_spaced() {
        let pacer = Pacer::per_second(50);
        let started = Instant::now();
        for _ in 0..4 {
            pacer.acquire().await;
        }
        // The first starts at once, the next three 20 ms apart.
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[tokio::test]
    async fn no_limit_never_waits() {
        for pacer in [Pacer::unlimited(), Pacer::per_second(0), Pacer::limit(None)] {
            let started = Instant::now();
            for _ in 0..100 {
                pacer.acquire().await;
            }
            assert!(started.elapsed() < Duration::from_millis(50));
        }
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_takes_no_slot() {
        let pacer = Arc::new(Pacer::per_second(5));
        pacer.acquire().await;
        let started = Instant::now();
        // Gives up after 50 ms of the 200 ms wait.
        let gave_up = tokio::time::timeout(Duration::from_millis(50), pacer.acquire()).await;
        assert!(gave_up.is_err());
        pacer.acquire().await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(190) && waited < Duration::from_millis(350),
            "{waited:?}: one slot, not two"
        );
    }

    /// A revocation arriving behind a queue of normal calls starts next, not last.
    #[tokio::test]
    async fn first_class_calls_go_ahead_of_waiting_normal_calls() {
        let pacer = Arc::new(Pacer::per_second(20));
        pacer.acquire().await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (pacer, order) = (pacer.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                pacer.acquire().await;
                order.lock().unwrap().push(i);
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (p, o) = (pacer.clone(), order.clone());
        let first = tokio::spawn(async move {
            p.acquire_as(Priority::First).await;
            o.lock().unwrap().push(99);
        });
        first.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let at = order.iter().position(|i| *i == 99).unwrap();
        assert!(at <= 1, "the revocation started {at}th: {order:?}");
    }

    #[tokio::test]
    async fn waiters_start_in_order() {
        let pacer = Arc::new(Pacer::per_second(100));
        pacer.acquire().await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (pacer, order) = (pacer.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                pacer.acquire().await;
                order.lock().unwrap().push(i);
            }));
            // Let each one queue before the next.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }
}
