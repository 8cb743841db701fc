//! The LINE client against a mock LINE API on loopback: the per-endpoint rate limits, and a
//! 429's pause, which hold back only the endpoint they belong to.

#[path = "support/line_setup.rs"]
mod line_setup;
mod support;

use std::time::{Duration, Instant};

use line_setup::{config, setup, REPLY};
use linebotd::line::{text, LineClient, LineError};
use serde_json::json;
use support::mock_line::MockLine;
use uuid::Uuid;

#[tokio::test]
async fn rate_limit_spaces_requests_out() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.rate_limit_per_sec = 10;
    let client = LineClient::new(cfg).expect("client");
    for i in 0..13 {
        client
            .push("U1", &[text("x")], Uuid::new_v4(), false)
            .await
            .unwrap_or_else(|e| panic!("push {i}: {e}"));
    }
    assert!(mock.wait_for(13, Duration::from_secs(5)).await);
    let reqs = mock.recorded();
    // A burst of 10, then one every 100 ms.
    let spread = reqs[12].received_at - reqs[0].received_at;
    assert!(spread >= Duration::from_millis(250), "{spread:?}");
}

#[tokio::test]
async fn loading_has_its_own_rate_limit() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.rate_limit_per_sec = 1;
    cfg.loading_rate_limit_per_sec = 100;
    let client = LineClient::new(cfg).expect("client");
    client.profile("U1").await.expect("uses the general burst");
    let t0 = Instant::now();
    for _ in 0..5 {
        client.loading("U1", 5).await.expect("loading");
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    client
        .profile("U2")
        .await
        .expect("waits for a general token");
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
}

/// A profile request for each of `n` users, all sent at once.
fn profiles(client: &LineClient, n: usize) -> Vec<tokio::task::JoinHandle<Result<(), LineError>>> {
    (0..n)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.profile(&format!("U{i}")).await.map(|_| ()) })
        })
        .collect()
}

#[tokio::test]
async fn a_busy_endpoint_does_not_slow_another() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.rate_limit_per_sec = 20;
    let client = LineClient::new(cfg).expect("client");
    // 60 profiles at 20/s: a burst of 20, then the rest queue for about two seconds.
    let queued = profiles(&client, 60);
    assert!(mock.wait_for(20, Duration::from_secs(5)).await);
    let t0 = Instant::now();
    client
        .reply("tok", &[text("quick")], false)
        .await
        .expect("reply");
    client
        .push("U1", &[text("quick")], Uuid::new_v4(), false)
        .await
        .expect("push");
    let took = t0.elapsed();
    // Behind profile's queue they would take about two seconds.
    assert!(
        took < Duration::from_millis(800),
        "reply and push took {took:?}"
    );
    let profiles_so_far = mock.recorded().len() - 2;
    assert!(profiles_so_far < 60, "profile was not saturated");
    for p in queued {
        p.await.expect("task").expect("profile");
    }
    let reqs = mock.recorded();
    let spread = reqs[reqs.len() - 1].received_at - reqs[0].received_at;
    assert!(
        spread >= Duration::from_millis(1500),
        "profile limited: {spread:?}"
    );
}

#[tokio::test]
async fn a_429_holds_back_every_caller_of_that_endpoint_only() {
    let (mock, client) = setup().await;
    mock.fail_next(REPLY, 429, 1);
    mock.set_retry_after(REPLY, 1);
    let err = client
        .reply("t1", &[text("x")], false)
        .await
        .expect_err("429");
    assert_eq!(err.status(), Some(429));
    // Another caller's reply waits out LINE's Retry-After; a profile does not.
    let t0 = Instant::now();
    let other = client.clone();
    let waiting = tokio::spawn(async move { other.reply("t2", &[text("y")], false).await });
    client.profile("U1").await.expect("profile");
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    waiting.await.expect("task").expect("reply after the pause");
    let replies = mock.requests_to(REPLY);
    assert_eq!(replies.len(), 2);
    let gap = replies[1].received_at - replies[0].received_at;
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
}

#[tokio::test]
async fn narrowcast_by_path_keeps_lines_hourly_limit() {
    const NARROWCAST: &str = "/v2/bot/message/narrowcast";
    let (mock, client) = setup().await;
    mock.respond(NARROWCAST, 202, json!({}));
    let body = json!({"messages": [{"type": "text", "text": "sale"}]});
    for i in 0..60 {
        client
            .post(NARROWCAST, &body)
            .await
            .unwrap_or_else(|e| panic!("narrowcast {i}: {e}"));
    }
    // The 61st would wait a minute for its token, longer than a script may wait: it fails at
    // once, unsent, and says why.
    let t0 = Instant::now();
    let err = client.post(NARROWCAST, &body).await.expect_err("61st");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        matches!(err, LineError::RateLimited { endpoint: "narrowcast", wait } if wait > Duration::from_secs(50)),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert_eq!(mock.requests_to(NARROWCAST).len(), 60);
    client
        .push("U1", &[text("still fine")], Uuid::new_v4(), false)
        .await
        .expect("push has its own bucket");
}
