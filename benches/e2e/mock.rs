//! The mock LINE API of the benchmark. It answers every call after a fixed latency (an async
//! sleep, so thousands of delayed calls wait at once without holding a thread), and behaves like
//! LINE where the benchmark's figures depend on it:
//!
//! - `POST /v2/bot/message/reply`: a reply token works once; a second use, or a token the
//!   benchmark never sent, answers 400 `{"message":"Invalid reply token"}`.
//! - `POST /v2/bot/message/push`: a push whose `X-Line-Retry-Key` was already accepted answers
//!   409. Every push in the benchmark is a fallback push (the daemon's answer when a reply
//!   failed): it is counted apart from the replies.
//! - `GET /v2/bot/profile/{userId}`: a JSON profile.
//! - Anything else: 200 `{}`, counted per path (the benchmark's scripts call nothing else).
//!
//! Which webhook event an answer belongs to is read without parsing JSON: the reply token is
//! `rt-<n>` and the user's text carries `#n=<n>`, `n` being the request number. One bit per
//! request number records that the event was answered (by a reply or a fallback push), so "every
//! acknowledged event was answered exactly once" is checked exactly, without locks on the hot
//! path.

mod server;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

pub use server::{start, Mock, Options};

pub const REPLY_PATH: &str = "/v2/bot/message/reply";
pub const PUSH_PATH: &str = "/v2/bot/message/push";
pub const PROFILE_PREFIX: &str = "/v2/bot/profile/";
/// Request numbers are written into reply tokens as `rt-<n>`…
const TOKEN_MARK: &[u8] = b"\"replyToken\":\"rt-";
/// …and into the user's text as `#n=<n>` (which a fallback push carries back).
pub const TEXT_MARK: &str = "#n=";
/// Per-second counts of reply calls are kept for this long (later calls count in the last second).
const SECONDS_TRACKED: usize = 3600;

const SENT: &str = r#"{"sentMessages":[{"id":"100000000000000001","quoteToken":"bench"}]}"#;
const INVALID_TOKEN: &str = r#"{"message":"Invalid reply token"}"#;
const RETRY_KEY_ACCEPTED: &str = r#"{"message":"The retry key is already accepted"}"#;

/// One bit per request number.
struct Bitmap(Vec<AtomicU64>);

impl Bitmap {
    fn new(capacity: u64) -> Self {
        Self(
            (0..capacity.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }

    /// Sets bit `n`: whether it was set before, or `None` when `n` is out of range.
    fn set(&self, n: u64) -> Option<bool> {
        let word = self.0.get(usize::try_from(n / 64).ok()?)?;
        let bit = 1 << (n % 64);
        Some(word.fetch_or(bit, Ordering::AcqRel) & bit != 0)
    }

    fn get(&self, n: u64) -> bool {
        usize::try_from(n / 64)
            .ok()
            .and_then(|i| self.0.get(i))
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (n % 64)) != 0)
    }
}

/// Counters shared between the mock's handler and the benchmark.
pub struct MockState {
    started: Instant,
    latency: Duration,
    /// Replies accepted (200).
    replies: AtomicU64,
    /// Pushes accepted (200): the daemon's fallback when a reply failed.
    pushes: AtomicU64,
    /// Pushes answered 409 because their retry key had been accepted before.
    push_conflicts: AtomicU64,
    /// Replies answered 400 because their token had been used before.
    reused_tokens: AtomicU64,
    /// Replies whose token the benchmark never sent, and pushes without a request number
    /// (both should stay 0).
    unmatched: AtomicU64,
    profiles: AtomicU64,
    /// Distinct events answered (by a reply or a push), and events answered more than once.
    answered: AtomicU64,
    answered_twice: AtomicU64,
    /// Nanoseconds since `started` of the latest accepted reply.
    last_reply_ns: AtomicU64,
    tokens_used: Bitmap,
    answered_bits: Bitmap,
    retry_keys: Mutex<HashSet<String>>,
    /// Reply calls by the second (since `started`) they arrived in.
    reply_calls_per_second: Vec<AtomicU64>,
    other_paths: Mutex<HashMap<String, u64>>,
    /// Wakes one waiter per answered event when `notify` is set (the load generator's backlog
    /// cap).
    pub answered_changed: Notify,
    notify: bool,
    /// While set, reply bodies are searched for `needle` on arrival; the first hit stores its
    /// time.
    watching: AtomicBool,
    needle: Mutex<Vec<u8>>,
    needle_seen: Mutex<Option<Instant>>,
}

impl MockState {
    fn new(options: &Options) -> Self {
        Self {
            started: Instant::now(),
            latency: options.latency,
            replies: AtomicU64::new(0),
            pushes: AtomicU64::new(0),
            push_conflicts: AtomicU64::new(0),
            reused_tokens: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            profiles: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            answered_twice: AtomicU64::new(0),
            last_reply_ns: AtomicU64::new(0),
            tokens_used: Bitmap::new(options.capacity),
            answered_bits: Bitmap::new(options.capacity),
            retry_keys: Mutex::new(HashSet::new()),
            reply_calls_per_second: (0..SECONDS_TRACKED).map(|_| AtomicU64::new(0)).collect(),
            other_paths: Mutex::new(HashMap::new()),
            answered_changed: Notify::new(),
            notify: options.notify_answers,
            watching: AtomicBool::new(false),
            needle: Mutex::new(Vec::new()),
            needle_seen: Mutex::new(None),
        }
    }

    pub fn replies(&self) -> u64 {
        self.replies.load(Ordering::Acquire)
    }

    /// Accepted pushes; in the benchmark's scripts every one is a fallback push.
    pub fn fallback_pushes(&self) -> u64 {
        self.pushes.load(Ordering::Acquire)
    }

    pub fn push_conflicts(&self) -> u64 {
        self.push_conflicts.load(Ordering::Acquire)
    }

    pub fn reused_tokens(&self) -> u64 {
        self.reused_tokens.load(Ordering::Acquire)
    }

    pub fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Acquire)
    }

    pub fn profiles(&self) -> u64 {
        self.profiles.load(Ordering::Acquire)
    }

    /// Distinct events answered by a reply or a push.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Acquire)
    }

    /// Events answered more than once (a user would see the answer twice).
    pub fn answered_twice(&self) -> u64 {
        self.answered_twice.load(Ordering::Acquire)
    }

    /// Whether the event of request `n` was answered.
    pub fn was_answered(&self, n: u64) -> bool {
        self.answered_bits.get(n)
    }

    /// When the latest accepted reply was answered.
    pub fn last_reply_at(&self) -> Instant {
        self.started + Duration::from_nanos(self.last_reply_ns.load(Ordering::Acquire))
    }

    /// The most reply calls that arrived within one second (counted from the mock's start).
    pub fn busiest_second_replies(&self) -> u64 {
        self.reply_calls_per_second
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    /// Calls to paths other than reply, push and profile (none for the benchmark's scripts).
    pub fn other_paths(&self) -> HashMap<String, u64> {
        lock(&self.other_paths).clone()
    }

    /// Starts looking for `needle` in reply bodies; `needle_seen` answers when it arrived.
    pub fn watch_for(&self, needle: &str) {
        *lock(&self.needle) = needle.as_bytes().to_vec();
        *lock(&self.needle_seen) = None;
        self.watching.store(true, Ordering::Release);
    }

    pub fn needle_seen(&self) -> Option<Instant> {
        *lock(&self.needle_seen)
    }

    pub fn stop_watching(&self) {
        self.watching.store(false, Ordering::Release);
    }

    fn since_start_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// On arrival, before the latency: LINE's rate limits count arrivals, and a saved script is
    /// live when the daemon sends its reply, whatever the round trip.
    fn reply_arrived(&self, body: &[u8]) {
        let second = (self.since_start_ns() / 1_000_000_000) as usize;
        self.reply_calls_per_second[second.min(SECONDS_TRACKED - 1)]
            .fetch_add(1, Ordering::Relaxed);
        if self.watching.load(Ordering::Acquire) {
            let needle = lock(&self.needle);
            if find(body, &needle).is_some() {
                lock(&self.needle_seen).get_or_insert_with(Instant::now);
            }
        }
    }

    /// After the latency: LINE's answer to a reply.
    fn reply(&self, body: &[u8]) -> Response {
        let Some(n) = number_after(body, TOKEN_MARK) else {
            self.unmatched.fetch_add(1, Ordering::AcqRel);
            return json(StatusCode::BAD_REQUEST, INVALID_TOKEN);
        };
        match self.tokens_used.set(n) {
            Some(false) => {}
            Some(true) => {
                self.reused_tokens.fetch_add(1, Ordering::AcqRel);
                return json(StatusCode::BAD_REQUEST, INVALID_TOKEN);
            }
            None => {
                self.unmatched.fetch_add(1, Ordering::AcqRel);
                return json(StatusCode::BAD_REQUEST, INVALID_TOKEN);
            }
        }
        self.last_reply_ns
            .fetch_max(self.since_start_ns(), Ordering::AcqRel);
        self.record_answer(n);
        // Counted after the answer bit, so a reader that sees the count also sees the bit.
        self.replies.fetch_add(1, Ordering::AcqRel);
        self.answered_changed();
        json(StatusCode::OK, SENT)
    }

    /// After the latency: LINE's answer to a push.
    fn push(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        if let Some(key) = headers.get("x-line-retry-key") {
            let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
            if !lock(&self.retry_keys).insert(key) {
                self.push_conflicts.fetch_add(1, Ordering::AcqRel);
                let mut answer = json(StatusCode::CONFLICT, RETRY_KEY_ACCEPTED);
                answer.headers_mut().insert(
                    "x-line-accepted-request-id",
                    header::HeaderValue::from_static("bench-accepted"),
                );
                return answer;
            }
        }
        match number_after(body, TEXT_MARK.as_bytes()) {
            Some(n) => self.record_answer(n),
            None => {
                self.unmatched.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.pushes.fetch_add(1, Ordering::AcqRel);
        self.answered_changed();
        json(StatusCode::OK, SENT)
    }

    fn record_answer(&self, n: u64) {
        match self.answered_bits.set(n) {
            Some(false) => {
                self.answered.fetch_add(1, Ordering::AcqRel);
            }
            Some(true) => {
                self.answered_twice.fetch_add(1, Ordering::AcqRel);
            }
            None => {
                self.unmatched.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn answered_changed(&self) {
        if self.notify {
            // One answer makes room for one webhook: one waiter is enough (a waiter that drops
            // its wake-up without using it passes it on).
            self.answered_changed.notify_one();
        }
    }
}

fn json(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// The decimal number right after `mark` in `body`.
fn number_after(body: &[u8], mark: &[u8]) -> Option<u64> {
    let start = find(body, mark)? + mark.len();
    let digits = body[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&body[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
