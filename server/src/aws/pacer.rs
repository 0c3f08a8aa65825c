//! The one call pacer: calls that share a [`Pacer`] start at most `n` per second,
//! in the order they asked. A call takes its slot when it starts, not when it
//! queues, so a caller that gives up while waiting costs the others nothing.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces the start of calls at least `1/n` seconds apart (a token bucket holding one
/// token). Share one with `Arc` between everything that counts against one limit.
///
/// Waiters queue on a fair lock and hold it while they wait for their moment, so they
/// start first come, first served. A later priority (for revocations, say) becomes an
/// argument of [`Pacer::acquire`]; the slot is already taken only at the start, so a
/// reserved share can be given without renumbering queued calls.
#[derive(Debug)]
pub struct Pacer {
    /// `None`: no limit.
    gap: Option<Duration>,
    /// The earliest moment the next call may start.
    next_start: Mutex<Instant>,
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
        Self {
            gap: calls_per_second
                .filter(|n| *n > 0)
                .map(|n| Duration::from_secs_f64(1.0 / f64::from(n))),
            next_start: Mutex::new(Instant::now()),
        }
    }

    /// Waits until a call may start, and takes that slot as it returns. Dropping the
    /// future while it waits takes nothing.
    pub async fn acquire(&self) {
        let Some(gap) = self.gap else { return };
        let mut next_start = self.next_start.lock().await;
        tokio::time::sleep_until(*next_start).await;
        *next_start = Instant::now() + gap;
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
