//! The ceiling to compare with: the benchmark's load against a bare axum handler in this
//! process, no daemon behind it.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::report::Scenario;
use crate::{daemon, load, MAX_REQUESTS, WEBHOOK_PATH};

/// The same load against a bare axum handler in this process: the ceiling of HTTP here.
pub async fn baseline_run(scenario: &Scenario, connections: usize) -> Result<f64, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("baseline bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("baseline address: {e}"))?;
    let app = axum::Router::new().route(
        WEBHOOK_PATH,
        axum::routing::post(|_body: axum::body::Bytes| async { "{}" }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let target = load::Target {
        addrs: vec![addr.to_string()],
        path: WEBHOOK_PATH.into(),
        secret: daemon::SECRET.as_bytes().into(),
    };
    eprintln!(
        "-- {connections} connections, {} s against a bare axum handler",
        scenario.seconds
    );
    let plan = Arc::new(load::Plan {
        connections,
        duration: Duration::from_secs(scenario.seconds),
        max_requests: MAX_REQUESTS,
        users: scenario.users,
        rate_per_s: scenario.rate_per_s,
        backlog: None,
    });
    let load = load::run(&target, plan, Arc::new(AtomicU64::new(0))).await;
    server.abort();
    Ok(load.acked.len() as f64 / load.window.as_secs_f64().max(1e-9))
}
