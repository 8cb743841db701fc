//! Client-side rate limiting: a token bucket per LINE endpoint (see `limits.rs`), so a busy
//! bot slows itself down instead of collecting 429s, and one busy endpoint never holds up
//! another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::limits::{Rate, LIMITS};

/// A token bucket refilled at `count` tokens per window. A per-second bucket holds at most a
/// twentieth of a second's worth, so no second ever sees more than about 5 % above the limit
/// (a bucket holding a whole second's worth let twice the limit through in the first second);
/// longer windows (60 an hour) hold their whole allowance, as LINE counts them.
///
/// A caller that finds no token takes one on credit (the count goes negative) and sleeps until
/// its token would have arrived; callers are thus served in arrival order with one sleep each.
/// [`pause_until`](Self::pause_until) holds every caller back until a moment LINE named.
#[derive(Debug)]
pub struct TokenBucket {
    /// Tokens a second; 0 means no limit.
    rate: f64,
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    /// When `tokens` was counted; later than now while the bucket is paused.
    last: Instant,
}

impl TokenBucket {
    /// `per_sec` requests a second; 0 turns limiting off.
    pub fn new(per_sec: u32) -> Self {
        Self::per_window(per_sec, Duration::from_secs(1))
    }

    /// `count` requests per `per` (60 an hour…); a `count` of 0 or an empty window turns
    /// limiting off.
    pub fn per_window(count: u32, per: Duration) -> Self {
        let rate = if per.is_zero() {
            0.0
        } else {
            f64::from(count) / per.as_secs_f64()
        };
        let capacity = if per <= Duration::from_secs(1) {
            (f64::from(count) * per.as_secs_f64() / 20.0).max(1.0)
        } else {
            f64::from(count)
        };
        Self {
            rate,
            capacity,
            state: Mutex::new(State {
                tokens: capacity,
                last: Instant::now(),
            }),
        }
    }

    /// Takes a token; returns how long the caller must wait before using it.
    pub fn reserve(&self, now: Instant) -> Duration {
        match self.try_reserve(now, Duration::MAX) {
            Ok(wait) | Err(wait) => wait,
        }
    }

    /// Takes a token if it is usable within `max_wait`, and returns the wait; otherwise takes
    /// nothing and returns the wait it would have been.
    pub fn try_reserve(&self, now: Instant, max_wait: Duration) -> Result<Duration, Duration> {
        if self.rate <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let mut s = self.lock();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        let tokens = (s.tokens + elapsed * self.rate).min(self.capacity) - 1.0;
        let from = s.last.max(now);
        let mut wait = from.saturating_duration_since(now);
        if tokens < 0.0 {
            wait += Duration::from_secs_f64(-tokens / self.rate);
        }
        if wait > max_wait {
            return Err(wait);
        }
        s.tokens = tokens;
        s.last = from;
        Ok(wait)
    }

    /// Holds every caller back until `at` (LINE answered 429): then one request goes, and the
    /// rest follow at the bucket's rate rather than all at once. Earlier pauses that end later
    /// stand.
    pub fn pause_until(&self, at: Instant) {
        if self.rate <= 0.0 {
            return;
        }
        let mut s = self.lock();
        if at > s.last {
            s.last = at;
            // Debts of callers queued before the pause are forgotten: they take a new place in
            // line when they wake (see `acquire_within`).
            s.tokens = 1.0_f64.min(self.capacity);
        }
    }

    /// Waits (asleep) until a token is available.
    pub async fn acquire(&self) {
        let _ = self.acquire_within(Duration::MAX).await;
    }

    /// Waits (asleep) for a token, unless that takes longer than `max_wait`: then returns the
    /// wait at once and takes nothing. A pause that begins while the caller sleeps sends it to
    /// the back of the line after the pause.
    pub async fn acquire_within(&self, max_wait: Duration) -> Result<(), Duration> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            let left = max_wait.saturating_sub(now.saturating_duration_since(started));
            let wait = self.try_reserve(now, left)?;
            if wait.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
            if self.lock().last <= Instant::now() {
                return Ok(());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another caller panicked mid-update of two numbers; the
        // numbers are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The buckets of one client: one per row of LINE's table, and one per method for the
/// endpoints the table does not name.
#[derive(Debug)]
pub(super) struct Limiter {
    buckets: HashMap<&'static str, TokenBucket>,
    unlimited: TokenBucket,
}

/// Buckets for `get`/`post`/`put`/`delete` calls to endpoints the table does not name.
const OTHER: [&str; 4] = ["get", "post", "put", "delete"];

impl Limiter {
    /// `standard_per_sec` is the limit of LINE's 2,000/s class (0: no limits at all);
    /// `loading_per_sec` the loading animation's.
    pub fn new(standard_per_sec: u32, loading_per_sec: u32) -> Self {
        let bucket = |rate: Rate| match rate.effective(standard_per_sec, loading_per_sec) {
            Some((count, per)) => TokenBucket::per_window(count, per),
            None => TokenBucket::new(0),
        };
        let mut buckets: HashMap<&'static str, TokenBucket> =
            LIMITS.iter().map(|l| (l.name, bucket(l.rate))).collect();
        for name in OTHER {
            buckets.insert(name, bucket(Rate::Standard));
        }
        Self {
            buckets,
            unlimited: TokenBucket::new(0),
        }
    }

    /// The bucket named `name` (a row of `LIMITS`, or one of `OTHER`).
    pub fn bucket(&self, name: &str) -> &TokenBucket {
        // Every name a `Request` carries comes from the table or `OTHER`; a test checks it.
        self.buckets.get(name).unwrap_or(&self.unlimited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_burst_passes_then_callers_wait_in_turn() {
        let b = TokenBucket::new(2000);
        let t0 = Instant::now();
        // A twentieth of a second's worth at once, then one every 0.5 ms.
        for _ in 0..100 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        let w1 = b.reserve(t0);
        let w2 = b.reserve(t0);
        assert!((w1.as_secs_f64() - 0.0005).abs() < 1e-9, "{w1:?}");
        assert!((w2.as_secs_f64() - 0.001).abs() < 1e-9, "{w2:?}");
    }

    #[test]
    fn no_second_sees_much_more_than_the_limit() {
        let b = TokenBucket::new(2000);
        let t0 = Instant::now();
        let within_a_second = (0..3000)
            .take_while(|_| b.reserve(t0) < Duration::from_secs(1))
            .count();
        assert!(
            (2000..=2100).contains(&within_a_second),
            "{within_a_second} calls in the first second"
        );
    }

    #[test]
    fn refills_with_time() {
        let b = TokenBucket::new(20);
        let t0 = Instant::now();
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert!(b.reserve(t0) > Duration::ZERO);
        assert_eq!(b.reserve(t0 + Duration::from_millis(150)), Duration::ZERO);
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let b = TokenBucket::new(0);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
    }

    #[test]
    fn hourly_limit_allows_the_hours_count_then_one_a_minute() {
        let b = TokenBucket::per_window(60, Duration::from_secs(3600));
        let t0 = Instant::now();
        for _ in 0..60 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        let next = b.reserve(t0);
        assert!((next.as_secs_f64() - 60.0).abs() < 1e-6, "{next:?}");
    }

    #[test]
    fn a_wait_too_long_takes_no_token() {
        let b = TokenBucket::per_window(1, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(b.try_reserve(t0, Duration::ZERO), Ok(Duration::ZERO));
        let refused = b.try_reserve(t0, Duration::from_secs(5)).err();
        assert!(
            refused.is_some_and(|w| w > Duration::from_secs(59)),
            "{refused:?}"
        );
        // Refusing took nothing: the next caller's wait is the same, not a minute longer.
        assert_eq!(b.try_reserve(t0, Duration::MAX).ok(), refused);
    }

    #[test]
    fn a_pause_holds_callers_until_it_ends_then_paces_them() {
        let b = TokenBucket::new(10);
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(2);
        b.pause_until(end);
        assert_eq!(b.reserve(t0), Duration::from_secs(2));
        let second = b.reserve(t0 + Duration::from_secs(1));
        assert!((second.as_secs_f64() - 1.1).abs() < 1e-6, "{second:?}");
        // A shorter pause does not cut a longer one short.
        b.pause_until(t0 + Duration::from_millis(500));
        assert!(b.reserve(t0) > Duration::from_secs(2));
        // An unlimited bucket is never paused.
        let off = TokenBucket::new(0);
        off.pause_until(end);
        assert_eq!(off.reserve(t0), Duration::ZERO);
    }

    #[tokio::test]
    async fn acquire_sleeps_instead_of_spinning() {
        let b = TokenBucket::new(20);
        let t0 = Instant::now();
        for _ in 0..22 {
            b.acquire().await;
        }
        assert!(t0.elapsed() <= Duration::from_millis(1_500));
        // 21 tokens beyond the burst of one at 20/s: about a second.
        assert!(
            t0.elapsed() >= Duration::from_millis(1_000),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn each_endpoint_has_its_own_bucket() {
        let limits = Limiter::new(1, 100);
        let t0 = Instant::now();
        assert_eq!(limits.bucket("profile").reserve(t0), Duration::ZERO);
        assert!(limits.bucket("profile").reserve(t0) > Duration::ZERO);
        for name in ["reply", "push", "get", "post", "put", "delete", "loading"] {
            assert_eq!(limits.bucket(name).reserve(t0), Duration::ZERO, "{name}");
        }
        let off = Limiter::new(0, 100);
        for _ in 0..1000 {
            assert_eq!(off.bucket("broadcast").reserve(t0), Duration::ZERO);
        }
    }
}
