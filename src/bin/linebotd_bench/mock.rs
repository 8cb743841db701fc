//! A fast mock LINE API for the benchmark: answers 200 `{}` to everything, counts calls per path
//! with atomics, and records which request's reply arrived in a bitmap (no JSON parsing, no
//! locks on the hot path), so "every acknowledged event was replied to" can be checked exactly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

/// The path every `reply` goes to.
pub const REPLY_PATH: &str = "/v2/bot/message/reply";
/// Request numbers are written into reply tokens as `rt-<n>`.
const TOKEN_MARK: &[u8] = b"\"replyToken\":\"rt-";

/// Counters shared between the mock's handler and the benchmark.
pub struct MockState {
    started: Instant,
    replies: AtomicU64,
    /// Replies whose token did not carry a request number (should stay 0).
    unmatched: AtomicU64,
    /// Nanoseconds since `started` of the latest reply.
    last_reply_ns: AtomicU64,
    other_paths: Mutex<HashMap<String, u64>>,
    /// One bit per request number: its reply arrived.
    seen: Vec<AtomicU64>,
    /// Replies to a request number seen before (LINE would reject a reused token).
    duplicates: AtomicU64,
    /// While set, reply bodies are searched for `needle`; the first hit stores its time.
    watching: AtomicBool,
    needle: Mutex<Vec<u8>>,
    needle_seen: Mutex<Option<Instant>>,
}

impl MockState {
    fn new(capacity: u64) -> Self {
        Self {
            started: Instant::now(),
            replies: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            last_reply_ns: AtomicU64::new(0),
            other_paths: Mutex::new(HashMap::new()),
            seen: (0..capacity.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            duplicates: AtomicU64::new(0),
            watching: AtomicBool::new(false),
            needle: Mutex::new(Vec::new()),
            needle_seen: Mutex::new(None),
        }
    }

    pub fn replies(&self) -> u64 {
        self.replies.load(Ordering::Acquire)
    }

    pub fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Acquire)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Acquire)
    }

    /// When the latest reply arrived.
    pub fn last_reply_at(&self) -> Instant {
        self.started + std::time::Duration::from_nanos(self.last_reply_ns.load(Ordering::Acquire))
    }

    /// Whether the reply to request `n` arrived.
    pub fn replied(&self, n: u64) -> bool {
        self.seen
            .get((n / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (n % 64)) != 0)
    }

    /// Calls to paths other than reply (should be none for the echo bot).
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

    fn record_reply(&self, body: &[u8]) {
        let at = self.started.elapsed().as_nanos() as u64;
        self.last_reply_ns.fetch_max(at, Ordering::AcqRel);
        match request_number(body) {
            Some(n) if (n / 64) < self.seen.len() as u64 => {
                let bit = 1 << (n % 64);
                let before = self.seen[(n / 64) as usize].fetch_or(bit, Ordering::AcqRel);
                if before & bit != 0 {
                    self.duplicates.fetch_add(1, Ordering::AcqRel);
                }
            }
            _ => {
                self.unmatched.fetch_add(1, Ordering::AcqRel);
            }
        }
        if self.watching.load(Ordering::Acquire) {
            let needle = lock(&self.needle);
            if find(body, &needle).is_some() {
                lock(&self.needle_seen).get_or_insert_with(Instant::now);
            }
        }
        // Counted last, so a reader that sees the count also sees the bit.
        self.replies.fetch_add(1, Ordering::AcqRel);
    }
}

/// A running mock: its base URL and counters.
pub struct Mock {
    pub url: String,
    pub state: Arc<MockState>,
}

/// Starts the mock on 127.0.0.1 with room to track `capacity` request numbers.
pub async fn start(capacity: u64) -> std::io::Result<Mock> {
    let state = Arc::new(MockState::new(capacity));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = Router::new().fallback(handle).with_state(state.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("mock LINE API stopped: {e}");
        }
    });
    Ok(Mock { url, state })
}

async fn handle(State(state): State<Arc<MockState>>, uri: Uri, body: Bytes) -> impl IntoResponse {
    if uri.path() == REPLY_PATH {
        state.record_reply(&body);
    } else {
        *lock(&state.other_paths)
            .entry(uri.path().to_owned())
            .or_default() += 1;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
}

/// The request number in a reply body's `"replyToken":"rt-<n>"`.
fn request_number(body: &[u8]) -> Option<u64> {
    let start = find(body, TOKEN_MARK)? + TOKEN_MARK.len();
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
mod tests {
    use super::*;

    #[test]
    fn reads_request_number_from_reply_body() {
        let body = br#"{"messages":[{"type":"text","text":"hi"}],"notificationDisabled":false,"replyToken":"rt-1234"}"#;
        assert_eq!(request_number(body), Some(1234));
        assert_eq!(request_number(br#"{"replyToken":"other"}"#), None);
    }
}
