//! Micro-benchmarks of the per-webhook hot paths: `cargo bench --bench hot_paths`.
//!
//! - `verify_signature_1kib`: HMAC-SHA256 + constant-time compare of a 1 KiB body, as the
//!   webhook does before anything else.
//! - `parse_body_one_text_event`: `parse_body` of a typical one-event text webhook.
//! - `dispatch_echo_reply_to_mock`: `Runtime::dispatch` of one text event through an echo script
//!   whose `reply` really goes over HTTP to a mock LINE API on 127.0.0.1. This is the daemon's
//!   real per-event path (event → Rhai map, handler lookup, Rhai call under the limits, message
//!   building, the LINE client with its rate limiter and the handler thread's own blocking
//!   connection, one loopback round trip),
//!   so it is the number to compare with the end-to-end benchmark. The client's rate limiter
//!   (LINE's 2,000 requests/s) is turned off here, or it alone would set the pace.
//! - `rhai_call_build_reply`: `Runtime::call` of a handler that only builds the reply message,
//!   without sending: the cost of the script engine itself, without the network.

use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use linebotd::config::Limits;
use linebotd::line::{LineClient, LineConfig};
use linebotd::pipeline::outbox::Outbox;
use linebotd::pipeline::script::{host, Host, Runtime};
use linebotd::pipeline::webhook::{parse_body, sign, verify, Event};

const SECRET: &[u8] = b"bench_channel_secret";

fn text_event_json(id: u64) -> String {
    format!(
        concat!(
            r#"{{"destination":"Ubench","events":[{{"type":"message","mode":"active","#,
            r#""timestamp":1700000000000,"webhookEventId":"01BENCH{id:020}","#,
            r#""deliveryContext":{{"isRedelivery":false}},"replyToken":"rt-{id}","#,
            r#""source":{{"type":"user","userId":"Ubenchuser{id:06}"}},"#,
            r#""message":{{"id":"m{id}","type":"text","quoteToken":"q","text":"hello"}}}}]}}"#
        ),
        id = id
    )
}

fn signature(c: &mut Criterion) {
    let body = vec![b'x'; 1024];
    let sig = sign(SECRET, &body);
    let mut group = c.benchmark_group("webhook");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verify_signature_1kib", |b| {
        b.iter(|| verify(SECRET, std::hint::black_box(&body), Some(sig.as_bytes())))
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let body = text_event_json(1);
    c.bench_function("webhook/parse_body_one_text_event", |b| {
        b.iter(|| parse_body(std::hint::black_box(body.as_bytes())))
    });
}

/// A LINE API stand-in that answers every call with 200 `{}`.
async fn start_mock() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock LINE");
    let addr = listener.local_addr().expect("mock address");
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            "{}",
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn scripts_runtime(
    tokio_rt: &tokio::runtime::Runtime,
    script: &str,
) -> (Runtime, tempfile::TempDir) {
    let addr = tokio_rt.block_on(start_mock());
    let base = format!("http://{addr}");
    let store = linebotd::store::open(":memory:").expect("in-memory store");
    let mut config = LineConfig::new(base.clone(), base, "token");
    // Off, so iterations measure the work and not LINE's 2,000/s pacing.
    config.rate_limit_per_sec = 0;
    let line = LineClient::new(config).expect("LINE client");
    let host = Arc::new(Host {
        line,
        tokio: tokio_rt.handle().clone(),
        reply_fallback_push: false,
        store: store.clone(),
        outbox: Outbox::new(store.clone()),
        timers: linebotd::pipeline::schedule::Timers::new(store),
        on_log: None,
        web: Arc::new(linebotd::pipeline::script::web::Web::fake(
            Default::default(),
        )),
        on_dispatched: Default::default(),
        on_fallback: Default::default(),
    });
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("echo.rhai"), script).expect("write script");
    let runtime = Runtime::new(dir.path(), Limits::default(), host).expect("runtime");
    assert!(
        runtime.scripts().errors.is_empty(),
        "bench script failed to load"
    );
    (runtime, dir)
}

fn dispatch(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (runtime, _dir) = scripts_runtime(
        &tokio_rt,
        "fn on_message(event) { reply(event, \"echo: \" + event.message.text); }\n\
         fn build(event) { text(\"echo: \" + event.message.text) }\n",
    );
    let body = parse_body(text_event_json(1).as_bytes()).expect("parse");
    let event: Arc<Event> = Arc::new(body.events.into_iter().next().expect("one event"));

    // Called from this (non-runtime) thread, as a handler thread calls it: `reply` waits on the
    // shared runtime's client.
    c.bench_function("script/dispatch_echo_reply_to_mock", |b| {
        b.iter(|| {
            let done = runtime.dispatch(event.clone(), Default::default());
            assert!(done.errors.is_empty(), "{:?}", done.errors);
        })
    });

    let set = runtime.scripts();
    let script = set.scripts[0].clone();
    c.bench_function("script/rhai_call_build_reply", |b| {
        b.iter(|| {
            let arg = host::from_json_text(event.raw.get());
            runtime
                .call(&script, "build", vec![arg], Some(event.clone()), "k".into())
                .expect("build runs")
        })
    });
}

/// The metrics one echo webhook records: the request, the event, the handler (count and
/// duration) and its LINE call (count and duration), on the process-wide registry.
fn metrics(c: &mut Criterion) {
    let m = linebotd::ops::metrics::global();
    c.bench_function("metrics/one_echo_webhook", |b| {
        b.iter(|| {
            m.webhooks.inc(&["accepted"]);
            m.events.inc(&["message"]);
            m.handler_runs.inc(&["echo.rhai", "on_message", "ok"]);
            m.handler_duration
                .observe(&["echo.rhai", "on_message"], 0.000_2);
            m.line_calls.inc(&["reply", "200"]);
            m.line_duration.observe(&["reply"], 0.000_1);
        })
    });
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = signature, parsing, dispatch, metrics
}
criterion_main!(hot_paths);
