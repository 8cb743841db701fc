//! `POST /callback` through the router (no socket) and through the real binary.

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use linebotd::pipeline::webhook::{self, Event, EventSink, SinkError, WebhookState};
use tower::ServiceExt;

const SECRET: &str = "test_secret";

#[derive(Default)]
struct RecordingSink {
    events: Mutex<Vec<Event>>,
    fail: bool,
}

impl EventSink for RecordingSink {
    fn accept(
        &self,
        events: Vec<Event>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SinkError>> + Send + '_>>
    {
        Box::pin(async move {
            if self.fail {
                return Err(SinkError("disk full".into()));
            }
            self.events.lock().unwrap().extend(events);
            Ok(())
        })
    }
}

fn app(sink: Arc<RecordingSink>) -> axum::Router {
    let state = WebhookState {
        channel_secret: SECRET.as_bytes().into(),
        max_body: 64 * 1024,
        sink,
        shutting_down: Arc::new(AtomicBool::new(false)),
        on_outcome: None,
    };
    webhook::router(state, "/callback")
}

fn signed(body: &str) -> Request<Body> {
    Request::post("/callback")
        .header(
            "X-Line-Signature",
            webhook::sign(SECRET.as_bytes(), body.as_bytes()),
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn send(sink: &Arc<RecordingSink>, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app(sink.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn accepts_signed_events_and_hands_them_over() {
    let sink = Arc::new(RecordingSink::default());
    let body = include_str!("fixtures/all_events.json");
    let (status, _) = send(&sink, signed(body)).await;
    assert_eq!(status, StatusCode::OK);
    let events = sink.events.lock().unwrap();
    assert_eq!(events.len(), 26);
    assert_eq!(events[0].kind, "message");
    assert_eq!(events[0].json()["message"]["text"], "@All \u{1F928} hello");
}

#[tokio::test]
async fn header_name_is_case_insensitive() {
    let sink = Arc::new(RecordingSink::default());
    let body = r#"{"events":[{"type":"follow","source":{"type":"user","userId":"U1"}}]}"#;
    let req = Request::post("/callback")
        .header(
            "x-line-signature",
            webhook::sign(SECRET.as_bytes(), body.as_bytes()),
        )
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&sink, req).await.0, StatusCode::OK);
    assert_eq!(sink.events.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn missing_signature_is_401_and_nothing_is_stored() {
    let sink = Arc::new(RecordingSink::default());
    let req = Request::post("/callback")
        .body(Body::from(r#"{"events":[{"type":"follow"}]}"#))
        .unwrap();
    let (status, body) = send(&sink, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid signature");
    assert!(sink.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rejects_body_signed_with_other_secret() {
    let sink = Arc::new(RecordingSink::default());
    let body = r#"{"events":[{"type":"follow"}]}"#;
    let req = Request::post("/callback")
        .header("X-Line-Signature", webhook::sign(b"other", body.as_bytes()))
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&sink, req).await.0, StatusCode::UNAUTHORIZED);
    assert!(sink.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn oversized_body_is_413() {
    let sink = Arc::new(RecordingSink::default());
    let body = format!(r#"{{"events":[],"pad":"{}"}}"#, "x".repeat(70_000));
    assert_eq!(
        send(&sink, signed(&body)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Without a Content-Length (chunked), the limit still holds while reading.
    let stream = futures_stream(body.clone());
    let req = Request::post("/callback")
        .header(
            "X-Line-Signature",
            webhook::sign(SECRET.as_bytes(), body.as_bytes()),
        )
        .body(stream)
        .unwrap();
    assert_eq!(send(&sink, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(sink.events.lock().unwrap().is_empty());
}

fn futures_stream(body: String) -> Body {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .into_bytes()
        .chunks(1000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn signed_invalid_json_or_missing_events_is_400() {
    let sink = Arc::new(RecordingSink::default());
    assert_eq!(
        send(&sink, signed("{not json")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&sink, signed(r#"{"destination":"U"}"#)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&sink, signed(r#"{"events":[{"no_type":1}]}"#)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert!(sink.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn verify_button_body_is_200() {
    let sink = Arc::new(RecordingSink::default());
    let (status, _) = send(&sink, signed(r#"{"destination":"Uxxx","events":[]}"#)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn sink_failure_is_503_so_line_redelivers() {
    let sink = Arc::new(RecordingSink {
        fail: true,
        ..Default::default()
    });
    let body = r#"{"events":[{"type":"follow"}]}"#;
    assert_eq!(
        send(&sink, signed(body)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn healthz_is_200() {
    let sink = Arc::new(RecordingSink::default());
    let resp = app(sink)
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn parses_every_event_type_in_the_spec_and_unknown_ones() {
    let body = webhook::parse_body(include_bytes!("fixtures/all_events.json")).unwrap();
    let kinds: Vec<&str> = body.events.iter().map(|e| e.kind.as_str()).collect();
    let mut expected: Vec<&str> = vec!["message"; 6];
    expected.insert(0, "message");
    expected.extend(
        webhook::event::KNOWN_EVENT_TYPES
            .iter()
            .filter(|t| **t != "message"),
    );
    expected.push("fooBar");
    assert_eq!(kinds, expected);
    let msg_types: Vec<String> = body.events[..7]
        .iter()
        .map(|e| e.json()["message"]["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        msg_types,
        ["text", "image", "video", "audio", "file", "location", "sticker"]
    );

    let first = &body.events[0];
    assert_eq!(
        first.webhook_event_id.as_deref(),
        Some("01H00000000000000000000001")
    );
    assert_eq!(first.reply_token.as_deref(), Some("rt-text"));
    assert_eq!(first.mode.as_deref(), Some("active"));
    assert_eq!(first.timestamp, Some(1462629479859));
    assert_eq!(first.conversation_key(), "U4af4980629");
    assert_eq!(body.events[1].conversation_key(), "Ca56f94637c");
    assert_eq!(body.events[2].conversation_key(), "Ra8dbf4673c");
    let postback = body.events.iter().find(|e| e.kind == "postback").unwrap();
    assert!(postback.is_redelivery);
    assert_eq!(postback.json()["postback"]["data"], "action=buy&itemid=111");
    let unknown = body.events.last().unwrap();
    assert_eq!(unknown.json()["fooBar"]["anything"][2], 3);
    assert_eq!(unknown.mode.as_deref(), Some("standby"));
}

#[tokio::test]
async fn real_binary_accepts_signed_and_rejects_unsigned_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = support::daemon::Daemon::spawn(support::daemon::run_command(
        dir.path(),
        "http://127.0.0.1:9",
    ));
    let client = reqwest::Client::new();
    let url = daemon.url("/callback");
    let body = support::daemon::text_event_body("01HREAL", "U1", "hi");
    assert_eq!(
        support::daemon::post_signed(&client, &url, &body).await,
        200
    );
    let bad = client
        .post(&url)
        .header("x-line-signature", "AAAA")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let health = client.get(daemon.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        daemon
            .stderr
            .wait_for("status=401", Duration::from_secs(5))
            .is_some(),
        "request log line: {}",
        daemon.stderr.text()
    );
}

#[test]
fn missing_secret_is_one_clear_line_and_exit_2() {
    let out = std::process::Command::new(support::daemon::bin())
        .arg("run")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: CHANNEL_SECRET is not set: export it or put channel_secret in linebotd.toml"
    );
}
