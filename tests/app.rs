//! The daemon's whole HTTP surface, built with `daemon::app` and driven with `oneshot`: no port,
//! no process. A signed webhook is stored and handled by the scripts; the others are answered
//! by status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use linebotd::cli::Settings;
use linebotd::config::Config;
use linebotd::daemon::{app, start_pipeline};
use linebotd::pipeline::webhook::sign;
use tower::ServiceExt;

const SECRET: &str = "app-test-secret";

fn config(scripts: &std::path::Path) -> Config {
    let settings = Settings {
        channel_secret: Some(SECRET.into()),
        channel_access_token: Some("token".into()),
        scripts: Some(scripts.to_owned()),
        store: Some(":memory:".into()),
        // Never called: the script only stores what it saw.
        line_api_base: Some("http://127.0.0.1:9".into()),
        no_watch: true,
        ..Settings::default()
    };
    Config::load(&settings, None).expect("config")
}

fn webhook(body: &str, signature: Option<String>) -> Request<Body> {
    let mut request = Request::post("/callback").header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("x-line-signature", signature);
    }
    request.body(Body::from(body.to_owned())).expect("request")
}

/// `body` signed with the channel secret, as LINE sends it.
fn signed(body: &str) -> Request<Body> {
    webhook(body, Some(sign(SECRET.as_bytes(), body.as_bytes())))
}

async fn text(response: axum::response::Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_takes_signed_webhooks_to_the_scripts_and_answers_the_rest() {
    let dir = tempfile::tempdir().expect("scripts dir");
    std::fs::write(
        dir.path().join("seen.rhai"),
        r#"fn on_message(e) { store_set("seen", e.message.text); }"#,
    )
    .expect("script");
    let config = config(dir.path());
    let pipeline = start_pipeline(&config).await.expect("pipeline");
    let shutting_down = Arc::new(AtomicBool::new(false));
    let router = app(&config, &pipeline, shutting_down.clone());

    let body = serde_json::json!({"destination": "Ubot", "events": [{
        "type": "message", "mode": "active", "timestamp": 1_700_000_000_000_i64,
        "webhookEventId": "01APPTEST", "deliveryContext": {"isRedelivery": false},
        "replyToken": "rt", "source": {"type": "user", "userId": "U1"},
        "message": {"id": "m1", "type": "text", "quoteToken": "q", "text": "hello"}
    }]})
    .to_string();

    let unsigned = router.clone().oneshot(webhook(&body, None)).await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged = router
        .clone()
        .oneshot(webhook(&body, Some(sign(b"other", body.as_bytes()))))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let accepted = router.clone().oneshot(signed(&body)).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = pipeline.bot.store.clone();
    loop {
        if store.kv_get("seen").expect("kv") == Some(serde_json::json!("hello")) {
            break;
        }
        assert!(Instant::now() < deadline, "the handler never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let get = |path: &str| Request::get(path).body(Body::empty()).expect("request");
    let health = router.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = router.clone().oneshot(get("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let metrics = text(router.clone().oneshot(get("/metrics")).await.unwrap()).await;
    assert!(
        metrics.contains("linebotd_webhooks_total{outcome=\"bad_signature\"}"),
        "{metrics}"
    );
    // The browser console is `dev`'s alone: `run` serves neither it nor its API.
    for path in ["/", "/console.js", "/api/log"] {
        let answer = router.clone().oneshot(get(path)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }

    shutting_down.store(true, Ordering::SeqCst);
    let refused = router.clone().oneshot(signed(&body)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let not_ready = router.oneshot(get("/readyz")).await.unwrap();
    assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
