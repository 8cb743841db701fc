//! The mock's HTTP side: the axum server on 127.0.0.1 that waits out the latency and hands each
//! call to [`MockState`] for LINE's answer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;

use super::{json, lock, MockState, PROFILE_PREFIX, PUSH_PATH, REPLY_PATH};

/// How the mock behaves.
pub struct Options {
    /// How long every call waits before its answer.
    pub latency: Duration,
    /// Request numbers tracked (one bit each, twice).
    pub capacity: u64,
    /// Wake `answered_changed` waiters after every answered event.
    pub notify_answers: bool,
}

/// A running mock: its base URL and counters.
pub struct Mock {
    pub url: String,
    pub state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the mock on 127.0.0.1.
pub async fn start(options: &Options) -> std::io::Result<Mock> {
    let state = Arc::new(MockState::new(options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = Router::new().fallback(handle).with_state(state.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("mock LINE API stopped: {e}");
        }
    });
    Ok(Mock { url, state, server })
}

async fn handle(
    State(state): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let is_reply = method == Method::POST && path == REPLY_PATH;
    if is_reply {
        state.reply_arrived(&body);
    }
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    if is_reply {
        state.reply(&body)
    } else if method == Method::POST && path == PUSH_PATH {
        state.push(&headers, &body)
    } else if method == Method::GET && path.starts_with(PROFILE_PREFIX) {
        state.profiles.fetch_add(1, Ordering::Relaxed);
        let user = &path[PROFILE_PREFIX.len()..];
        let profile = serde_json::json!({
            "userId": user,
            "displayName": format!("Bench {}", user.trim_start_matches("Ubenchuser")),
            "pictureUrl": "https://profile.line-scdn.net/bench",
            "statusMessage": "benchmarking",
            "language": "en",
        });
        json(StatusCode::OK, profile.to_string())
    } else {
        *lock(&state.other_paths)
            .entry(format!("{method} {path}"))
            .or_default() += 1;
        json(StatusCode::OK, "{}")
    }
}
