//! The LINE Messaging API as the integration tests see it: `linebotd::dev::fakeline::FakeLine`
//! (the one imitation of LINE, shared with `dev`, `simulate` and `test`) on 127.0.0.1, with
//! test-side failure injection (statuses, 429s with `Retry-After`, stalls, a required token) and
//! conveniences for reading what it received.
#![allow(dead_code)] // each test file uses a different part of it

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linebotd::dev::fakeline::{FakeLine, Received};
use serde_json::Value;

use faults::Scripted;

mod faults;

/// What `GET /v2/bot/message/{id}/content` answers for one message.
pub use linebotd::dev::fakeline::Content as MockContent;

/// One request as LINE received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased; repeated headers joined with ", ".
    pub headers: HashMap<String, String>,
    /// The body as JSON; `Value::Null` when empty or not JSON (see `raw_body`).
    pub body: Value,
    pub raw_body: Vec<u8>,
    pub received_at: Instant,
    /// The status LINE answered with.
    pub status: u16,
    /// The `x-line-request-id` LINE answered with.
    pub request_id: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn retry_key(&self) -> Option<&str> {
        self.header("x-line-retry-key")
    }

    fn from(r: Received) -> Self {
        let mut headers: HashMap<String, String> = HashMap::new();
        for (name, value) in &r.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        Self {
            method: r.call.method,
            path: r.call.path,
            query: r.query,
            headers,
            body: serde_json::from_slice(&r.raw_body).unwrap_or(Value::Null),
            raw_body: r.raw_body.to_vec(),
            received_at: r.received_at,
            status: r.call.status,
            request_id: r.request_id,
        }
    }
}

/// A running fake LINE API. Clones share the same server and records; it stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct MockLine {
    fake: Arc<FakeLine>,
    script: Arc<Scripted>,
    /// Calls before this position were forgotten by [`MockLine::clear`].
    cleared: Arc<AtomicUsize>,
}

impl MockLine {
    /// Starts the fake on 127.0.0.1 with a free port.
    pub async fn start() -> Self {
        let script = Arc::new(Scripted::default());
        let fake = FakeLine::start_with(script.clone())
            .await
            .expect("start the fake LINE API");
        // The daemon's webhooks do not pass through the fake, and the tests' ids are short
        // stand-ins ("U1"): every id exists and every user is a friend.
        fake.know_everyone();
        Self {
            fake: Arc::new(fake),
            script,
            cleared: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`; use it for both the API and the data API.
    pub fn url(&self) -> String {
        self.fake.url()
    }

    /// A snapshot of every request so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        let from = self.cleared.load(Ordering::SeqCst);
        let received = self.fake.calls().received_after(from);
        received.into_iter().map(Recorded::from).collect()
    }

    /// Requests to `path` (any status).
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Requests to `path` that LINE answered with a 2xx.
    pub fn accepted(&self, path: &str) -> Vec<Recorded> {
        self.requests_to(path)
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// The first message's text of each accepted request to `path`, in arrival order.
    pub fn texts(&self, path: &str) -> Vec<String> {
        self.accepted(path)
            .iter()
            .map(|r| {
                r.body["messages"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// Forgets the recorded requests (not the scripted failures, nor what LINE remembers:
    /// used reply tokens, accepted retry keys).
    pub fn clear(&self) {
        self.cleared
            .store(self.fake.calls().len(), Ordering::SeqCst);
    }

    /// Answers the next `n` requests to `path` with `status` and a LINE-style error body.
    pub fn fail_next(&self, path: &str, status: u16, n: usize) {
        let mut s = self.script.lock();
        let queue = s.failures.entry(path.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(status, n));
    }

    /// Sends `Retry-After: secs` with every scripted failure on `path`.
    pub fn set_retry_after(&self, path: &str, secs: u64) {
        self.script.lock().retry_after.insert(path.to_owned(), secs);
    }

    /// Delays every answer on `path` (the request is recorded and acted on first, like a LINE
    /// that got the request but answered too late).
    pub fn set_delay(&self, path: &str, delay: Duration) {
        self.script
            .lock()
            .delays
            .insert(path.to_owned(), (delay, None));
    }

    /// Delays only the next `n` answers on `path`.
    pub fn delay_next(&self, path: &str, delay: Duration, n: u32) {
        self.script
            .lock()
            .delays
            .insert(path.to_owned(), (delay, Some(n)));
    }

    /// Ends scripted failures and canned answers on `path`: LINE has recovered.
    pub fn heal(&self, path: &str) {
        let mut s = self.script.lock();
        s.failures.remove(path);
        s.canned.remove(path);
    }

    /// Answers every request to `path` with `status` and `body` instead of LINE's answer
    /// (scripted failures still come first).
    pub fn respond(&self, path: &str, status: u16, body: Value) {
        self.script
            .lock()
            .canned
            .insert(path.to_owned(), (status, body));
    }

    /// Answers 401 to requests whose `Authorization` is not `Bearer {token}`.
    pub fn require_token(&self, token: &str) {
        self.script.lock().required_token = Some(token.to_owned());
    }

    /// Makes `GET /v2/bot/profile/{user_id}` (and member profiles of that user) answer 404.
    pub fn set_profile_missing(&self, user_id: &str) {
        self.fake.set_profile_missing(user_id);
    }

    /// The profile returned for `user_id` instead of the generated one.
    pub fn set_profile(&self, user_id: &str, profile: Value) {
        self.fake.set_profile(user_id, profile);
    }

    /// What the data API serves for `message_id` (default: 200 with `content of {id}`).
    pub fn set_content(&self, message_id: &str, content: MockContent) {
        self.fake.set_content(message_id, content);
    }

    /// Waits until at least `count` requests have arrived, or `deadline` passed; true if they did.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> bool {
        let Some(last) = count.checked_sub(1) else {
            return true;
        };
        let at = self.cleared.load(Ordering::SeqCst) + last;
        !self.fake.calls().wait_after(at, deadline).await.is_empty()
    }
}
