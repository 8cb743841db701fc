//! A mock LINE Messaging API on 127.0.0.1 for integration tests: records every request and
//! behaves like LINE where tests depend on it (reply tokens work once, retry keys deduplicate,
//! profiles 404 on demand), and can be scripted to fail, stall or rate-limit.
#![allow(dead_code)] // each test file uses a different part of it

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::Value;

use behaviour::{decide, take_delay};

mod behaviour;

/// One request as the mock received it.
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
    /// The status the mock answered with.
    pub status: u16,
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
}

/// What `GET /v2/bot/message/{id}/content` answers for one message.
#[derive(Clone, Debug)]
pub enum MockContent {
    Ready {
        content_type: String,
        bytes: Vec<u8>,
    },
    NotReady,
}

#[derive(Default)]
pub(crate) struct Script {
    /// path → statuses still to answer, one per request.
    pub(crate) failures: HashMap<String, VecDeque<u16>>,
    /// path → Retry-After seconds sent with scripted failures.
    pub(crate) retry_after: HashMap<String, u64>,
    /// path → (delay, how many more requests; None = all).
    pub(crate) delays: HashMap<String, (Duration, Option<u32>)>,
    /// path → canned (status, body) answered instead of the built-in behaviour.
    pub(crate) canned: HashMap<String, (u16, Value)>,
    pub(crate) used_reply_tokens: HashSet<String>,
    pub(crate) accepted_retry_keys: HashSet<String>,
    pub(crate) missing_profiles: HashSet<String>,
    pub(crate) profiles: HashMap<String, Value>,
    pub(crate) content: HashMap<String, MockContent>,
    pub(crate) required_token: Option<String>,
}

struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Mutex<Script>,
    arrived: tokio::sync::Notify,
    next_id: Mutex<u64>,
}

/// A running mock LINE API. Clones share the same server and records.
#[derive(Clone)]
pub struct MockLine {
    shared: Arc<Shared>,
    /// Every request received, in arrival order.
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    url: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock already failed; keep serving the others.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MockLine {
    /// Starts the mock on 127.0.0.1 with a free port; it runs until the test's runtime ends.
    pub async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            requests: requests.clone(),
            script: Mutex::new(Script::default()),
            arrived: tokio::sync::Notify::new(),
            next_id: Mutex::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock LINE");
        let addr = listener.local_addr().expect("mock address");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            shared,
            requests,
            url: format!("http://{addr}"),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`; use it for both the API and the data API.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A snapshot of every request so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        lock(&self.requests).clone()
    }

    /// Requests to `path` (any status).
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Requests to `path` that the mock answered with a 2xx.
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

    /// Forgets the recorded requests (not the scripted behaviour, tokens or keys).
    pub fn clear(&self) {
        lock(&self.requests).clear();
    }

    /// Answers the next `n` requests to `path` with `status` and a LINE-style error body.
    pub fn fail_next(&self, path: &str, status: u16, n: usize) {
        let mut s = lock(&self.shared.script);
        let queue = s.failures.entry(path.to_owned()).or_default();
        queue.extend(std::iter::repeat(status).take(n));
    }

    /// Sends `Retry-After: secs` with every scripted failure on `path`.
    pub fn set_retry_after(&self, path: &str, secs: u64) {
        lock(&self.shared.script)
            .retry_after
            .insert(path.to_owned(), secs);
    }

    /// Delays every answer on `path` (the request is recorded and acted on first, like a LINE
    /// that got the request but answered too late).
    pub fn set_delay(&self, path: &str, delay: Duration) {
        lock(&self.shared.script)
            .delays
            .insert(path.to_owned(), (delay, None));
    }

    /// Delays only the next `n` answers on `path`.
    pub fn delay_next(&self, path: &str, delay: Duration, n: u32) {
        lock(&self.shared.script)
            .delays
            .insert(path.to_owned(), (delay, Some(n)));
    }

    /// Ends scripted failures and canned answers on `path`: LINE has recovered.
    pub fn heal(&self, path: &str) {
        let mut s = lock(&self.shared.script);
        s.failures.remove(path);
        s.canned.remove(path);
    }

    /// Answers every request to `path` with `status` and `body` instead of the built-in
    /// behaviour (scripted failures still come first).
    pub fn respond(&self, path: &str, status: u16, body: Value) {
        lock(&self.shared.script)
            .canned
            .insert(path.to_owned(), (status, body));
    }

    /// Makes `GET /v2/bot/profile/{user_id}` (and member profiles of that user) answer 404.
    pub fn set_profile_missing(&self, user_id: &str) {
        lock(&self.shared.script)
            .missing_profiles
            .insert(user_id.to_owned());
    }

    /// The profile returned for `user_id` instead of the generated one.
    pub fn set_profile(&self, user_id: &str, profile: Value) {
        lock(&self.shared.script)
            .profiles
            .insert(user_id.to_owned(), profile);
    }

    /// What the data API serves for `message_id` (default: 200 with `content of {id}`).
    pub fn set_content(&self, message_id: &str, content: MockContent) {
        lock(&self.shared.script)
            .content
            .insert(message_id.to_owned(), content);
    }

    /// Answers 401 to requests whose `Authorization` is not `Bearer {token}`.
    pub fn require_token(&self, token: &str) {
        lock(&self.shared.script).required_token = Some(token.to_owned());
    }

    /// Waits until at least `count` requests have arrived, or `deadline` passed; true if they did.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.shared.arrived.notified();
            tokio::pin!(notified);
            // Registered before checking, so an arrival between check and wait is not missed.
            notified.as_mut().enable();
            if lock(&self.requests).len() >= count {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return lock(&self.requests).len() >= count;
            }
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut header_map: HashMap<String, String> = HashMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let received_at = Instant::now();

    // Decide (and change state) before any delay: LINE acts on a request even if its answer
    // comes too late for the client.
    let (answer, delay) = {
        let mut s = lock(&shared.script);
        let delay = take_delay(&mut s, &path);
        (
            decide(&mut s, &method, &path, &header_map, &json_body),
            delay,
        )
    };
    let request_id = {
        let mut n = lock(&shared.next_id);
        *n += 1;
        format!("mock-{:012x}", *n)
    };
    lock(&shared.requests).push(Recorded {
        method: method.to_string(),
        path,
        query: uri.query().map(str::to_owned),
        headers: header_map,
        body: json_body,
        raw_body: body.to_vec(),
        received_at,
        status: answer.status,
    });
    shared.arrived.notify_waiters();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    answer.into_response_with(request_id)
}
