//! The ceilings to compare with, measured under the benchmark's own load in this process, no
//! daemon behind them:
//! - a bare axum handler that answers every webhook at once (the ceiling of HTTP here);
//! - a bare relay: an axum handler that answers at once and sends one reply per webhook to a
//!   fresh instant mock through one shared reqwest client, on a runtime of its own with as many
//!   workers as the daemon's, without a signature check, a store or a script. What any bot
//!   built on these crates could deliver on this machine, with the load generator and the mock
//!   beside it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::load::{self, MAX_REQUESTS, WEBHOOK_PATH};
use crate::report::Scenario;
use crate::{daemon, mock};

/// Longest wait for the relay's replies to drain after the load stops.
const DRAIN: Duration = Duration::from_secs(30);

/// What the ceilings did under one run's load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ceilings {
    /// Webhooks acknowledged per second by the bare handler.
    pub bare_per_s: f64,
    /// Replies the bare relay delivered per second, from the start of the load to its last
    /// reply.
    pub relay_replies_per_s: f64,
}

/// Both ceilings, one after the other, under `scenario`'s load at `connections`.
pub async fn baseline_run(scenario: &Scenario, connections: usize) -> Result<Ceilings, String> {
    let bare_per_s = bare_run(scenario, connections).await?;
    let relay_replies_per_s = relay_run(scenario, connections).await?;
    Ok(Ceilings {
        bare_per_s,
        relay_replies_per_s,
    })
}

fn plan(scenario: &Scenario, connections: usize) -> Arc<load::Plan> {
    Arc::new(load::Plan {
        connections,
        duration: Duration::from_secs(scenario.seconds),
        max_requests: MAX_REQUESTS,
        users: scenario.users,
        rate_per_s: scenario.rate_per_s,
        backlog: None,
    })
}

fn target(addr: std::net::SocketAddr) -> load::Target {
    load::Target {
        addrs: vec![addr.to_string()],
        path: WEBHOOK_PATH.into(),
        secret: daemon::SECRET.as_bytes().into(),
    }
}

/// The same load against a bare axum handler in this process: the ceiling of HTTP here.
async fn bare_run(scenario: &Scenario, connections: usize) -> Result<f64, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("baseline bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("baseline address: {e}"))?;
    let app = axum::Router::new().route(
        WEBHOOK_PATH,
        axum::routing::post(|_body: Bytes| async { "{}" }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    eprintln!(
        "-- {connections} connections, {} s against a bare axum handler",
        scenario.seconds
    );
    let load = load::run(
        &target(addr),
        plan(scenario, connections),
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    server.abort();
    Ok(load.acked.len() as f64 / load.window.as_secs_f64().max(1e-9))
}

/// The reply the echo script sends, built from the webhook's first event.
fn echo_reply(body: &[u8]) -> Option<serde_json::Value> {
    let webhook: serde_json::Value = serde_json::from_slice(body).ok()?;
    let event = webhook.get("events")?.get(0)?;
    let token = event.get("replyToken")?.as_str()?;
    let text = event.get("message")?.get("text")?.as_str()?;
    Some(serde_json::json!({
        "replyToken": token,
        "messages": [{"type": "text", "text": format!("echo: {text}")}],
    }))
}

/// The same load against the bare relay; its replies per second until the last one.
async fn relay_run(scenario: &Scenario, connections: usize) -> Result<f64, String> {
    let mock = mock::start(&mock::Options {
        latency: Duration::ZERO,
        capacity: MAX_REQUESTS,
        notify_answers: false,
    })
    .await
    .map_err(|e| format!("relay: cannot start the mock LINE API: {e}"))?;
    // Its own runtime, as the daemon has, so its wake-ups cross threads as the daemon's do.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-relay")
        .build()
        .map_err(|e| format!("relay runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("relay client: {e}"))?;
    let reply_url = format!("{}/v2/bot/message/reply", mock.url);
    let failed = Arc::new(AtomicU64::new(0));
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("relay bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("relay listener: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("relay address: {e}"))?;
    let relay_failed = failed.clone();
    let app = axum::Router::new().route(
        WEBHOOK_PATH,
        axum::routing::post(move |body: Bytes| {
            let (client, url, failed) = (client.clone(), reply_url.clone(), relay_failed.clone());
            async move {
                let Some(reply) = echo_reply(&body) else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return "{}";
                };
                tokio::spawn(async move {
                    let sent = client
                        .post(url)
                        .bearer_auth(daemon::TOKEN)
                        .json(&reply)
                        .send()
                        .await;
                    if !sent.is_ok_and(|r| r.status().is_success()) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                });
                "{}"
            }
        }),
    );
    let server = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app).await
    });
    eprintln!(
        "-- {connections} connections, {} s against a bare relay (one reqwest reply per webhook)",
        scenario.seconds
    );
    let started = Instant::now();
    let load = load::run(
        &target(addr),
        plan(scenario, connections),
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    let acked = load.acked.len() as u64;
    let deadline = Instant::now() + DRAIN;
    while mock.state.answered() < acked && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.abort();
    runtime.shutdown_background();
    let (answered, failed) = (mock.state.answered(), failed.load(Ordering::Relaxed));
    if answered < acked || failed > 0 {
        return Err(format!(
            "the bare relay answered {answered} of {acked} webhooks ({failed} replies failed)"
        ));
    }
    let last = mock
        .state
        .last_reply_at()
        .saturating_duration_since(started);
    Ok(mock.state.replies() as f64 / last.as_secs_f64().max(load.window.as_secs_f64()).max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_echoes_the_generators_webhook() {
        let body = load::text_event_body(7, 512, &load::event_text("hi", 7));
        let reply = echo_reply(body.as_bytes()).expect("a reply");
        assert_eq!(reply["replyToken"], "rt-7");
        assert_eq!(
            reply["messages"][0]["text"],
            format!("echo: {}", load::event_text("hi", 7))
        );
        assert!(echo_reply(b"{\"events\":[]}").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_relay_answers_every_webhook_through_the_mock() {
        let scenario = Scenario {
            latency_ms: 0,
            script: "echo",
            users: 16,
            seconds: 1,
            rate_limit_off: true,
            rate_per_s: 0.0,
            max_backlog: 0,
            instances: 1,
        };
        // Fails unless every acknowledged webhook's reply reached the mock.
        let per_s = relay_run(&scenario, 2).await.expect("relay run");
        assert!(per_s > 0.0, "{per_s}");
    }
}
