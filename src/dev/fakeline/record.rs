//! The fake's record of every call, in order: read whole, from a position on, by long poll
//! (`GET /dev/calls`) or as a stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, Notify};

/// Longest a `GET /dev/calls` long poll waits for a new call.
const MAX_LONG_POLL: Duration = Duration::from_secs(30);

/// One request the bot made to the fake LINE API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Position in the record, from 0.
    pub index: usize,
    pub method: String,
    pub path: String,
    /// The JSON body (`null` for requests without one).
    pub body: Value,
    /// The status the fake answered with.
    pub status: u16,
    /// LINE's error body (`{"message", "details"}`) when it refused the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The chat a reply goes to, when the reply token was announced with
    /// [`super::FakeLine::expect_reply_token`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Call {
    /// True when the fake accepted the call (a 2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Why LINE refused the call, as one line (`400 The request body has 1 error(s)
    /// [messages[0].text: May not be empty]`); `None` when it was accepted.
    pub fn refusal(&self) -> Option<String> {
        if self.accepted() {
            return None;
        }
        let error = self.error.as_ref();
        let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
        let details: Vec<String> = error
            .and_then(|e| e.get("details"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| {
                let field = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
                match field("property") {
                    "" => field("message").to_owned(),
                    property => format!("{property}: {}", field("message")),
                }
            })
            .collect();
        let mut line = self.status.to_string();
        if let Some(message) = message {
            line.push(' ');
            line.push_str(message);
        }
        if !details.is_empty() {
            line.push_str(&format!(" [{}]", details.join("; ")));
        }
        Some(line)
    }

    /// The messages of a reply, push, multicast, broadcast or narrowcast; empty for other calls.
    pub fn messages(&self) -> &[Value] {
        if !self.path.starts_with("/v2/bot/message/") {
            return &[];
        }
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// A call with what `/dev/calls` leaves out: the headers (the access token is among them), the
/// exact bytes, a monotonic arrival time and the request id the fake answered with.
#[derive(Debug, Clone)]
pub struct Received {
    pub call: Call,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub raw_body: Bytes,
    pub received_at: Instant,
    /// The `x-line-request-id` of the answer.
    pub request_id: String,
}

#[derive(Default)]
struct Record {
    received: Vec<Received>,
    /// Reply token → the chat it answers, for summaries.
    token_chats: HashMap<String, String>,
}

pub(super) struct Recorder {
    record: Mutex<Record>,
    added: Notify,
    tx: broadcast::Sender<Call>,
}

/// Cheap handle on the record, for routes and tasks that outlive a borrow of the fake.
#[derive(Clone)]
pub struct Calls(pub(super) Arc<Recorder>);

impl Recorder {
    pub(super) fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            record: Mutex::new(Record::default()),
            added: Notify::new(),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        // A thread that panicked holding the lock cannot leave the record half-written.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a request (its `call.index`, `at_ms` and `to` are filled in here).
    pub(super) fn add(&self, mut received: Received) {
        let mut record = self.lock();
        received.call.index = record.received.len();
        received.call.at_ms = crate::store::now_ms();
        received.call.to = received
            .call
            .body
            .get("replyToken")
            .and_then(Value::as_str)
            .and_then(|t| record.token_chats.get(t).cloned());
        let call = received.call.clone();
        record.received.push(received);
        drop(record);
        self.added.notify_waiters();
        let _ = self.tx.send(call);
    }
}

impl Calls {
    /// Every call so far, in order.
    pub fn all(&self) -> Vec<Call> {
        self.after(0)
    }

    /// The calls from position `n` on.
    pub fn after(&self, n: usize) -> Vec<Call> {
        let record = self.0.lock();
        let received = record.received.get(n..).unwrap_or_default();
        received.iter().map(|r| r.call.clone()).collect()
    }

    /// The calls from position `n` on, with their headers, bytes and arrival times.
    pub fn received_after(&self, n: usize) -> Vec<Received> {
        let record = self.0.lock();
        record
            .received
            .get(n..)
            .map(<[Received]>::to_vec)
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.lock().received.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every new call as it is recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<Call> {
        self.0.tx.subscribe()
    }

    /// The calls from position `n` on, waiting up to `timeout` for at least one.
    pub async fn wait_after(&self, n: usize, timeout: Duration) -> Vec<Call> {
        crate::dev::notes::wait_for_some(&self.0.added, timeout, || self.after(n)).await
    }

    pub fn expect_reply_token(&self, token: &str, chat: &str) {
        let mut record = self.0.lock();
        record.token_chats.insert(token.to_owned(), chat.to_owned());
    }

    /// `GET /dev/calls?after=N&wait_ms=M`: the calls from position N on as a JSON array,
    /// waiting up to M ms (default 0, at most 30 s) for one to arrive.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/dev/calls", get(list_calls))
            .with_state(self.clone())
    }
}

#[derive(Deserialize)]
struct CallsQuery {
    #[serde(default)]
    after: usize,
    #[serde(default)]
    wait_ms: u64,
}

async fn list_calls(State(calls): State<Calls>, Query(q): Query<CallsQuery>) -> Json<Vec<Call>> {
    let wait = Duration::from_millis(q.wait_ms).min(MAX_LONG_POLL);
    Json(calls.wait_after(q.after, wait).await)
}
