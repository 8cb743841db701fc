//! Client-side rate limiting: a token bucket per endpoint class, so a busy bot slows itself down
//! instead of collecting 429s from LINE.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket refilled at `rate` tokens a second, holding at most one second's worth.
///
/// A caller that finds no token takes one on credit (the count goes negative) and sleeps until
/// its token would have arrived; callers are thus served in arrival order with one sleep each.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `per_sec` of 0 turns limiting off.
    pub fn new(per_sec: u32) -> Self {
        Self {
            rate: f64::from(per_sec),
            state: Mutex::new(State {
                tokens: f64::from(per_sec),
                last: Instant::now(),
            }),
        }
    }

    /// Takes a token; returns how long the caller must wait before using it.
    pub fn reserve(&self, now: Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        // A poisoned lock only means another caller panicked mid-update of two numbers; the
        // numbers are still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate).min(self.rate);
        s.last = now.max(s.last);
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.rate)
        }
    }

    /// Waits (asleep) until a token is available.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_of_rate_passes_then_callers_wait_in_turn() {
        let b = TokenBucket::new(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        let w1 = b.reserve(t0);
        let w2 = b.reserve(t0);
        assert!((w1.as_secs_f64() - 0.1).abs() < 1e-6, "{w1:?}");
        assert!((w2.as_secs_f64() - 0.2).abs() < 1e-6, "{w2:?}");
    }

    #[test]
    fn refills_with_time() {
        let b = TokenBucket::new(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            b.reserve(t0);
        }
        assert_eq!(b.reserve(t0 + Duration::from_millis(100)), Duration::ZERO);
        assert!(b.reserve(t0 + Duration::from_millis(100)) > Duration::ZERO);
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let b = TokenBucket::new(0);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
    }

    #[tokio::test]
    async fn acquire_sleeps_instead_of_spinning() {
        let b = TokenBucket::new(20);
        let t0 = Instant::now();
        for _ in 0..22 {
            b.acquire().await;
        }
        // Two tokens beyond the burst at 20/s: about 100 ms.
        assert!(
            t0.elapsed() >= Duration::from_millis(90),
            "{:?}",
            t0.elapsed()
        );
    }
}
