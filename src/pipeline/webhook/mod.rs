//! The HTTP front door: `POST /callback` (path configurable) and the health endpoints.
//!
//! The handler verifies the signature on the raw bytes before parsing, hands the events to an
//! [`EventSink`] (the durable inbox) and answers at once: LINE times out after 2 s, so no script
//! ever runs before the answer.

pub mod body;
pub mod conn;
pub mod event;
pub mod server;
pub mod signature;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub use body::{BodyTimeout, DeadlineBody};
pub use conn::ClientLimits;
pub use event::{handler_name, parse_body, Event, ParseError, Source, WebhookBody};
pub use signature::{sign, verify, SignatureError};

/// Why accepted events could not be taken in; the webhook answers 503 so LINE redelivers.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where verified events go. Returns once they are safe (stored), not once they are handled.
pub trait EventSink: Send + Sync + 'static {
    fn accept(
        &self,
        events: Vec<Event>,
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>>;
}

/// What the webhook saw, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    BadSignature,
    TooLarge,
    BadJson,
    /// The body did not arrive within the body read timeout.
    SlowBody,
    /// Every event was a redelivery already taken in. Never returned by the handler itself:
    /// only the sink knows, so the daemon's sink reports it.
    Duplicate,
    Unavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::BadSignature => "bad_signature",
            Self::TooLarge => "too_large",
            Self::BadJson => "bad_json",
            Self::SlowBody => "slow_body",
            Self::Duplicate => "duplicate",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Called once per webhook request with its outcome and the number of events it carried.
pub type OutcomeHook = Arc<dyn Fn(Outcome, usize) + Send + Sync>;

/// Everything the webhook handler needs.
#[derive(Clone)]
pub struct WebhookState {
    pub channel_secret: Arc<[u8]>,
    pub max_body: usize,
    pub sink: Arc<dyn EventSink>,
    /// Set on shutdown: new webhooks get 503 so LINE redelivers them later.
    pub shutting_down: Arc<AtomicBool>,
    pub on_outcome: Option<OutcomeHook>,
}

/// The router for the webhook path and `/healthz`. Other routes are merged in by the daemon.
pub fn router(state: WebhookState, webhook_path: &str) -> Router {
    Router::new()
        .route(webhook_path, post(callback))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
        .layer(middleware::from_fn(log_request))
}

async fn callback(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let (outcome, events, response) = handle(&state, &headers, request.into_body()).await;
    if let Some(hook) = &state.on_outcome {
        hook(outcome, events);
    }
    response
}

async fn handle(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Body,
) -> (Outcome, usize, Response) {
    if state.shutting_down.load(Ordering::Relaxed) {
        return (
            Outcome::Unavailable,
            0,
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down, retry later",
            ),
        );
    }
    let too_large = || {
        (
            Outcome::TooLarge,
            0,
            error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        )
    };
    let declared_len = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > state.max_body as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, state.max_body).await {
        Ok(b) => b,
        Err(e) if caused_by::<http_body_util::LengthLimitError>(&e) => return too_large(),
        Err(e) if caused_by::<BodyTimeout>(&e) => {
            tracing::debug!(error = %e, "webhook body too slow");
            let mut response = error(StatusCode::REQUEST_TIMEOUT, &e.to_string());
            // The rest of the body may still come: the connection cannot carry another request.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return (Outcome::SlowBody, 0, response);
        }
        Err(e) => {
            tracing::debug!(error = %e, "webhook body could not be read");
            return (
                Outcome::BadJson,
                0,
                error(StatusCode::BAD_REQUEST, "body could not be read"),
            );
        }
    };
    // HeaderMap lookups are case-insensitive, as HTTP header names are.
    let signature = headers.get("x-line-signature").map(|v| v.as_bytes());
    if let Err(reason) = signature::verify(&state.channel_secret, &bytes, signature) {
        tracing::debug!(%reason, "webhook rejected");
        return (
            Outcome::BadSignature,
            0,
            error(StatusCode::UNAUTHORIZED, "invalid signature"),
        );
    }
    let body = match parse_body(&bytes) {
        Ok(body) => body,
        Err(reason) => {
            tracing::debug!(%reason, "signed webhook body rejected");
            return (
                Outcome::BadJson,
                0,
                error(StatusCode::BAD_REQUEST, &reason.to_string()),
            );
        }
    };
    if body.events.is_empty() {
        return (Outcome::Accepted, 0, ok());
    }
    let count = body.events.len();
    match state.sink.accept(body.events).await {
        Ok(()) => (Outcome::Accepted, count, ok()),
        Err(e) => {
            tracing::warn!(error = %e, "could not take in webhook events; answering 503 so LINE redelivers");
            (
                Outcome::Unavailable,
                0,
                error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable"),
            )
        }
    }
}

fn caused_by<T: std::error::Error + 'static>(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<T>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn ok() -> Response {
    // The same two bytes every time: no JSON serialiser needed.
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn log_request(request: Request, next: Next) -> Response {
    // Most deployments log at info, but a busy one may not: then this costs nothing.
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;
    use tower::ServiceExt;

    use super::*;

    struct NoSink;

    impl EventSink for NoSink {
        fn accept(
            &self,
            _: Vec<Event>,
        ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
            Box::pin(async { panic!("a body that never arrived was stored") })
        }
    }

    #[tokio::test]
    async fn body_past_its_deadline_gets_408_and_closes_the_connection() {
        let state = WebhookState {
            channel_secret: b"secret".as_slice().into(),
            max_body: 64 * 1024,
            sink: Arc::new(NoSink),
            shutting_down: Arc::default(),
            on_outcome: None,
        };
        let first = Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(
            bytes::Bytes::from_static(b"{\"events\":["),
        ));
        let trickle = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        let timeout = Duration::from_millis(100);
        let body = DeadlineBody::new(
            http_body_util::StreamBody::new(trickle),
            tokio::time::Instant::now() + timeout,
            timeout,
        );
        let request = Request::post("/callback")
            .header("x-line-signature", "c2ln")
            .body(Body::new(body))
            .unwrap();
        let response = router(state, "/callback").oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()["connection"], "close");
    }
}
