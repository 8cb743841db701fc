//! An in-process fake of the LINE Messaging API for `simulate`, `test` and `dev`: it records
//! every call in order and answers the way LINE does closely enough for a bot to run unchanged.
//!
//! What it imitates: 200 `{}` with an `x-line-request-id`; a reply token works once (LINE
//! answers 400 "Invalid reply token" on a second use, which exercises the push fallback);
//! profiles of any user; 202 for the loading animation. Nothing is ever delivered anywhere.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, Notify};

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
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The chat a reply goes to, when the reply token was announced with
    /// [`FakeLine::expect_reply_token`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Call {
    /// True when the fake accepted the call (a 2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The messages of a reply, push, multicast or broadcast; empty for other calls.
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

#[derive(Default)]
struct Record {
    calls: Vec<Call>,
    /// Reply tokens already used. Any other token is accepted once, like a fresh one.
    used_tokens: HashSet<String>,
    /// Reply token → the chat it answers, for summaries.
    token_chats: HashMap<String, String>,
}

struct Recorder {
    record: Mutex<Record>,
    added: Notify,
    tx: broadcast::Sender<Call>,
}

/// The running fake. Dropping it stops its server.
pub struct FakeLine {
    addr: SocketAddr,
    shared: Arc<Recorder>,
    _stop: oneshot::Sender<()>,
}

/// Cheap handle on the record, for routes and tasks that outlive a borrow of the fake.
#[derive(Clone)]
pub struct Calls(Arc<Recorder>);

impl FakeLine {
    /// Serves on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, _) = broadcast::channel(1024);
        let shared = Arc::new(Recorder {
            record: Mutex::new(Record::default()),
            added: Notify::new(),
            tx,
        });
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The base URL to give the LINE client (both the API and the data API).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Calls {
        Calls(self.shared.clone())
    }

    /// Remembers which chat a reply token belongs to, so summaries can say who a reply went to.
    pub fn expect_reply_token(&self, token: &str, chat: &str) {
        self.calls().expect_reply_token(token, chat);
    }
}

impl Calls {
    /// Every call so far, in order.
    pub fn all(&self) -> Vec<Call> {
        self.after(0)
    }

    /// The calls from position `n` on.
    pub fn after(&self, n: usize) -> Vec<Call> {
        let record = self.0.record.lock().unwrap_or_else(|p| p.into_inner());
        record
            .calls
            .get(n..)
            .map(<[Call]>::to_vec)
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .calls
            .len()
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
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so a call recorded in between is not missed.
            let added = self.0.added.notified();
            let calls = self.after(n);
            if !calls.is_empty() {
                return calls;
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return Vec::new();
            }
        }
    }

    pub fn expect_reply_token(&self, token: &str, chat: &str) {
        let mut record = self.0.record.lock().unwrap_or_else(|p| p.into_inner());
        record.token_chats.insert(token.to_owned(), chat.to_owned());
    }

    /// `GET /dev/calls?after=N&wait_ms=M`: the calls from position N on as a JSON array,
    /// waiting up to M ms (default 0, at most 30 s) for one to arrive.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/dev/calls", get(list_calls))
            .with_state(self.clone())
    }

    fn add(&self, method: &Method, uri: &Uri, body: Value, status: u16) -> Call {
        let mut record = self.0.record.lock().unwrap_or_else(|p| p.into_inner());
        let to = body
            .get("replyToken")
            .and_then(Value::as_str)
            .and_then(|t| record.token_chats.get(t).cloned());
        let call = Call {
            index: record.calls.len(),
            method: method.to_string(),
            path: uri.path().to_owned(),
            body,
            status,
            at_ms: crate::store::now_ms(),
            to,
        };
        record.calls.push(call.clone());
        drop(record);
        self.0.added.notify_waiters();
        let _ = self.0.tx.send(call.clone());
        call
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

/// Answers one request like LINE would, and records it.
async fn answer(
    State(shared): State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let json_body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let path = uri.path();
    let (status, answer) = if method == Method::POST && path == "/v2/bot/message/reply" {
        reply_answer(&shared, &json_body)
    } else if method == Method::POST && path.starts_with("/v2/bot/chat/loading") {
        (StatusCode::ACCEPTED, json!({}))
    } else if method == Method::GET && path.starts_with("/v2/bot/profile/") {
        let user = path.trim_start_matches("/v2/bot/profile/");
        (
            StatusCode::OK,
            json!({"userId": user, "displayName": format!("Dev User {user}"), "language": "en"}),
        )
    } else if path.starts_with("/v2/bot/message/") && method == Method::POST {
        (
            StatusCode::OK,
            json!({"sentMessages": sent_messages(&json_body)}),
        )
    } else {
        (StatusCode::OK, json!({}))
    };
    Calls(shared).add(&method, &uri, json_body, status.as_u16());
    let mut response = (status, Json(answer)).into_response();
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-line-request-id", id);
    }
    response
}

fn reply_answer(shared: &Recorder, body: &Value) -> (StatusCode, Value) {
    let token = body.get("replyToken").and_then(Value::as_str).unwrap_or("");
    let mut record = shared.record.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = !token.is_empty() && record.used_tokens.insert(token.to_owned());
    if fresh {
        (StatusCode::OK, json!({"sentMessages": sent_messages(body)}))
    } else {
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid reply token"}),
        )
    }
}

/// LINE answers sends with one id per message.
fn sent_messages(body: &Value) -> Vec<Value> {
    let count = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    (0..count)
        .map(|_| json!({"id": fastrand::u64(10u64.pow(17)..10u64.pow(18)).to_string()}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(url: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn a_reply_token_works_once_and_every_call_is_recorded() {
        let fake = FakeLine::start().await.expect("fake");
        let url = format!("{}/v2/bot/message/reply", fake.url());
        let body = json!({"replyToken": "t1", "messages": [{"type": "text", "text": "hi"}]});
        assert_eq!(post(&url, body.clone()).await.0, 200);
        let (status, answer) = post(&url, body).await;
        assert_eq!(status, 400);
        assert_eq!(answer["message"], "Invalid reply token");
        let calls = fake.calls().all();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].index, calls[0].status), (0, 200));
        assert_eq!(calls[1].status, 400);
        assert_eq!(calls[0].messages()[0]["text"], "hi");
    }

    #[tokio::test]
    async fn profiles_loading_and_waiting_for_calls() {
        let fake = FakeLine::start().await.expect("fake");
        let calls = fake.calls();
        let mut rx = calls.subscribe();
        let profile: Value = reqwest::get(format!("{}/v2/bot/profile/U1", fake.url()))
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            profile,
            json!({"userId": "U1", "displayName": "Dev User U1", "language": "en"})
        );
        let loading = format!("{}/v2/bot/chat/loading/start", fake.url());
        assert_eq!(post(&loading, json!({"chatId": "U1"})).await.0, 202);
        assert_eq!(rx.recv().await.expect("first").path, "/v2/bot/profile/U1");
        assert_eq!(calls.wait_after(1, Duration::from_secs(5)).await.len(), 1);
        assert!(calls
            .wait_after(2, Duration::from_millis(10))
            .await
            .is_empty());
    }
}
