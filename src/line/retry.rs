//! When and how long to wait before sending a failed LINE request again: pure functions, so the
//! timing rules are tested without a clock.

use std::time::{Duration, SystemTime};

/// How many times, and how patiently, a request is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 means no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each later one.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (before jitter).
    pub max_backoff: Duration,
    /// Give up rather than start waiting past this much time since the first attempt.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_total: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A copy bounded by `attempts` and `total`, for calls whose caller is waiting on them.
    pub fn capped(&self, attempts: u32, total: Duration) -> Self {
        Self {
            max_attempts: self.max_attempts.min(attempts),
            max_total: self.max_total.min(total),
            ..self.clone()
        }
    }
}

/// The wait after failed attempt number `attempt` (1 for the first): exponential, capped, with
/// "equal jitter" — half the wait is fixed, half random — so many clients that failed together
/// do not come back together, yet none retries at once. `rand01` is a number in `[0, 1)`.
pub fn backoff(policy: &RetryPolicy, attempt: u32, rand01: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(31);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    let half = base / 2;
    half + half.mul_f64(rand01.clamp(0.0, 1.0))
}

/// Reads a `Retry-After` header: delay-seconds, or an HTTP date (relative to `now`). `None`
/// for anything unreadable, so the normal backoff applies.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    // A date already past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_total: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = policy();
        // rand01 = 1.0 gives the full (un-jittered) wait, 0.0 half of it.
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(&p, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(&p, 5, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 40, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_half_and_full_wait() {
        let p = policy();
        for _ in 0..1000 {
            let d = backoff(&p, 3, fastrand::f64());
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
    }

    #[test]
    fn capped_policy_takes_the_smaller_bounds() {
        let p = policy().capped(3, Duration::from_secs(20));
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.max_total, Duration::from_secs(20));
        assert_eq!(p.initial_backoff, Duration::from_millis(100));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
