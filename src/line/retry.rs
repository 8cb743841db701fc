//! When and how long to wait before sending a failed LINE request again: one policy for the
//! client's own retries and for the outbox's, whose next attempt is stored. Pure functions of
//! the attempt number, so a schedule survives a restart and the rules are tested without a clock.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};

/// Longest `Retry-After` taken as it is. LINE asks for seconds to minutes; a larger value is a
/// broken answer, and read as this so a waiting caller or stored delivery is not lost for ever.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How many times, and how patiently, a request is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 means no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each later one.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts, jitter included (a `Retry-After` may be longer).
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

    /// The wait after failed attempt number `attempt` (1 for the first): the backoff, or LINE's
    /// `Retry-After` when that is longer. LINE knows when it will take requests again; the
    /// backoff still applies to a shorter one, so a `Retry-After: 0` cannot make a busy loop.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = backoff(self, attempt);
        match retry_after {
            Some(after) => after.min(MAX_RETRY_AFTER).max(backoff),
            None => backoff,
        }
    }
}

/// The backoff after failed attempt number `attempt` (1 for the first): exponential, capped,
/// with "equal jitter" — half the wait fixed, half random — so many clients that failed together
/// do not come back together, yet none retries at once.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    // backon's jitter adds up to one more delay ([d, 2d)), and it caps before adding it. Built
    // from half of each bound it gives [d/2, d] with d = initial × 2^(attempt-1), capped: equal
    // jitter that never passes `max_backoff`. backon yields delays one after another; the
    // `nth` makes it a function of the attempt, which is what a stored schedule needs. The cap
    // is reached within 64 doublings of any `Duration`, so later attempts stop there.
    let half_cap = policy.max_backoff / 2;
    let mut delays = ExponentialBuilder::new()
        .with_min_delay((policy.initial_backoff / 2).min(half_cap))
        .with_max_delay(half_cap)
        .with_factor(2.0)
        .without_max_times()
        .with_jitter()
        .build();
    let step = attempt.clamp(1, 64) - 1;
    delays
        .nth(step as usize)
        .unwrap_or(half_cap)
        .min(policy.max_backoff)
}

/// Reads a `Retry-After` header: delay-seconds, or an HTTP date (relative to `now`). `None`
/// for anything unreadable, so the normal backoff applies. At most [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    // A date already past means "now".
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
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

    /// The least and the most `backoff` gave for `attempt` over many draws.
    fn range(p: &RetryPolicy, attempt: u32) -> (Duration, Duration) {
        let draws: Vec<Duration> = (0..2_000).map(|_| backoff(p, attempt)).collect();
        let least = draws.iter().min().copied().unwrap_or_default();
        let most = draws.iter().max().copied().unwrap_or_default();
        (least, most)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_with_equal_jitter() {
        let p = policy();
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800)] {
            let (least, most) = range(&p, attempt);
            assert!(least >= ms(full / 2), "attempt {attempt}: {least:?}");
            assert!(most <= ms(full), "attempt {attempt}: {most:?}");
            // Spread over the whole band, not a fixed point: clients that failed together
            // come back apart.
            assert!(
                most - least > ms(full / 4),
                "attempt {attempt}: {least:?}..{most:?}"
            );
        }
    }

    #[test]
    fn backoff_never_passes_the_cap_and_keeps_its_jitter_there() {
        let p = policy();
        for attempt in [5, 6, 40, 1_000, u32::MAX] {
            let (least, most) = range(&p, attempt);
            assert!(least >= ms(500) && most <= ms(1_000), "{least:?}..{most:?}");
            assert!(
                most - least > ms(250),
                "no jitter at the cap: {least:?}..{most:?}"
            );
        }
        // Attempt 0 (nothing failed yet) waits like the first.
        assert!(backoff(&p, 0) <= ms(100));
    }

    #[test]
    fn an_initial_wait_above_the_cap_is_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_secs(5),
            ..policy()
        };
        let (least, most) = range(&p, 1);
        assert!(least >= ms(500) && most <= ms(1_000), "{least:?}..{most:?}");
    }

    #[test]
    fn retry_after_wins_when_longer_than_the_backoff() {
        let p = policy();
        // Longer than any backoff of this policy, even past its cap.
        assert_eq!(p.wait(1, Some(ms(1_500))), ms(1_500));
        assert_eq!(
            p.wait(40, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        // Shorter: the backoff still applies.
        for _ in 0..200 {
            let w = p.wait(3, Some(Duration::ZERO));
            assert!(w >= ms(200) && w <= ms(400), "{w:?}");
        }
        // None: the backoff alone.
        let w = p.wait(2, None);
        assert!(w >= ms(100) && w <= ms(200), "{w:?}");
        // A broken answer does not park the request for ever.
        assert_eq!(p.wait(1, Some(Duration::MAX)), MAX_RETRY_AFTER);
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
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
    }
}
