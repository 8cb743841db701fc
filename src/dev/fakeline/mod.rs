//! An in-process fake of the LINE Messaging API, the one imitation of LINE: `simulate`, `test`
//! and `dev` run bots against it, and the integration tests layer failure injection on it. It
//! records every call in order and answers the way LINE does closely enough for a bot to run
//! unchanged. Nothing is ever delivered anywhere.
//!
//! What it imitates (see `line.rs`): an `x-line-request-id` on every answer; LINE's 400 with
//! `details` for a reply, push, multicast, broadcast or narrowcast LINE would refuse (see
//! `validate.rs`: a made-up message type, an empty text, an `http://` image, six messages, a
//! `to` that is not an id); a reply token works once (a second use is LINE's 400 "Invalid reply
//! token", which exercises the push fallback); a retry key is accepted once (a reuse is a 409
//! naming the accepted request); profiles of the users the channel heard from (events passed to
//! [`FakeLine::saw_event`], and the local tools' own user), a 404 for anyone else or for a user
//! who unfollowed; message content, or a 202 while it is not ready; the bot's info; 202 for the
//! loading animation and narrowcasts; 404 for a path LINE does not serve.
//!
//! What it does not do on its own: fail. [`FakeLine::fail_next`] arms one failure (`line_fails`
//! in `linebotd test`); [`Faults`] is the hook through which the integration tests make it
//! answer 5xx, 429 with `Retry-After`, 401, or late.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

mod fail;
mod line;
mod record;
#[cfg(test)]
mod tests;
mod validate;

pub use fail::ArmError;
pub use line::{Content, BOT_USER_ID};
pub use record::{Call, Calls, Received};

use fail::Armed;
use line::World;
use record::Recorder;

/// Failure injection, consulted for every request before LINE's behaviour (so a request it
/// fails uses up no reply token and no retry key).
pub trait Faults: Send + Sync + 'static {
    fn inject(&self, request: &Incoming<'_>) -> Fault;
}

/// A request as [`Faults`] sees it.
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The body as JSON; `null` when empty or not JSON.
    pub body: &'a Value,
}

/// What [`Faults`] does to one request.
#[derive(Default)]
pub struct Fault {
    /// Answered instead of LINE's answer.
    pub answer: Option<Answer>,
    /// How long the answer is held back. The request is acted on and recorded first, like a
    /// LINE that did the work but answered too late for the client.
    pub stall: Option<Duration>,
}

/// One answer of the fake: a status and a JSON (or, for content, binary) body.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    body: Body,
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Body::Json(body),
            headers: Vec::new(),
        }
    }

    /// A 200 with `bytes` as `content_type`.
    pub fn bytes(content_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            status: 200,
            body: Body::Bytes {
                content_type: content_type.to_owned(),
                bytes,
            },
            headers: Vec::new(),
        }
    }

    /// Adds a header; a name or value that is not valid HTTP is left out.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.push((n, v));
        }
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The JSON body; `None` for binary content.
    pub fn json_body(&self) -> Option<&Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            Body::Bytes { .. } => None,
        }
    }

    fn into_response(self, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            Body::Json(v) => (status, Json(v)).into_response(),
            Body::Bytes {
                content_type,
                bytes,
            } => (status, [("content-type", content_type)], bytes).into_response(),
        };
        let headers = response.headers_mut();
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-line-request-id", id);
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

struct Shared {
    recorder: Arc<Recorder>,
    world: Mutex<World>,
    armed: Mutex<Armed>,
    faults: Option<Arc<dyn Faults>>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        // A handler that panicked holding the lock left no half-made change: each is one insert.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn armed(&self) -> MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake. Dropping it stops its server.
pub struct FakeLine {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl FakeLine {
    /// Serves on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        Self::serve(None).await
    }

    /// Serves on a free port of 127.0.0.1, asking `faults` about every request first.
    pub async fn start_with(faults: Arc<dyn Faults>) -> std::io::Result<Self> {
        Self::serve(Some(faults)).await
    }

    async fn serve(faults: Option<Arc<dyn Faults>>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            recorder: Arc::new(Recorder::new()),
            world: Mutex::new(World::default()),
            armed: Mutex::default(),
            faults,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
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
        Calls(self.shared.recorder.clone())
    }

    /// Remembers which chat a reply token belongs to, so summaries can say who a reply went to.
    pub fn expect_reply_token(&self, token: &str, chat: &str) {
        self.calls().expect_reply_token(token, chat);
    }

    /// The profile LINE returns for `user_id` (and for them as a group or room member) instead
    /// of the generated one.
    pub fn set_profile(&self, user_id: &str, profile: Value) {
        self.shared.world().set_profile(user_id, Some(profile));
    }

    /// Makes `user_id` someone who is not a friend of the bot: their profile is a 404.
    pub fn set_profile_missing(&self, user_id: &str) {
        self.shared.world().set_profile(user_id, None);
    }

    /// Learns from an event the bot was sent: whoever it came from is a friend (their profile
    /// exists, their id is a valid recipient whatever its shape), and an unfollow blocks.
    pub fn saw_event(&self, event: &Value) {
        self.shared.world().saw_event(event);
    }

    /// Makes `user_id` a friend of the bot, as if they had followed it: `dev` tells it the
    /// followers its store remembers at start, so a restart does not make strangers of them
    /// (their profile would be a 404).
    pub fn befriend(&self, user_id: &str) {
        self.shared.world().befriend(user_id);
    }

    /// Every id exists and every user is a friend with a generated profile, as before the fake
    /// knew who its friends were. For the daemon's integration tests, whose webhooks never pass
    /// through the fake and whose ids are short stand-ins.
    pub fn know_everyone(&self) {
        self.shared.world().open();
    }

    /// Makes the next call to `endpoint` ("reply", "push", "multicast", "broadcast",
    /// "narrowcast", "profile", "loading", or a path) answer `status` with LINE's error body
    /// `{"message": message}`. Failures armed for one endpoint answer in the order armed.
    pub fn fail_next(&self, endpoint: &str, status: i64, message: &str) -> Result<(), ArmError> {
        self.shared.armed().arm(endpoint, status, message)
    }

    /// What the data API serves for `message_id` (by default `content of {id}` as
    /// `application/octet-stream`).
    pub fn set_content(&self, message_id: &str, content: Content) {
        self.shared.world().set_content(message_id, content);
    }
}

/// Answers one request like LINE would (unless [`Faults`] says otherwise), and records it.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let received_at = Instant::now();
    let body = if raw_body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw_body).unwrap_or(Value::Null)
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let path = uri.path();
    let incoming = Incoming {
        method: &method,
        path,
        headers: &headers,
        body: &body,
    };
    let fault = match &shared.faults {
        Some(faults) => faults.inject(&incoming),
        None => Fault::default(),
    };
    let armed = || shared.armed().take(path);
    let answer = match fault.answer.or_else(armed) {
        Some(answer) => answer,
        None => line::answer(
            &mut shared.world(),
            &method,
            path,
            &headers,
            &body,
            &request_id,
        ),
    };
    // `/dev/calls` has always shown a body that is not JSON as text.
    let shown = match (&body, raw_body.is_empty()) {
        (Value::Null, false) => Value::String(String::from_utf8_lossy(&raw_body).into_owned()),
        _ => body,
    };
    shared.recorder.add(Received {
        call: Call {
            index: 0,
            method: method.to_string(),
            path: path.to_owned(),
            body: shown,
            status: answer.status,
            error: (!(200..300).contains(&answer.status))
                .then(|| answer.json_body().cloned())
                .flatten(),
            at_ms: 0,
            to: None,
        },
        query: uri.query().map(str::to_owned),
        headers,
        raw_body,
        received_at,
        request_id: request_id.clone(),
    });
    if let Some(stall) = fault.stall {
        tokio::time::sleep(stall).await;
    }
    answer.into_response(&request_id)
}
