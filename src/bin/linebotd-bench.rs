//! `linebotd-bench`: the project's end-to-end benchmark, all on 127.0.0.1.
//!
//! For each connection count it starts a fast mock LINE API in this process, the real release
//! `linebotd` with an echo script and a fresh store, drives signed text webhooks over keep-alive
//! connections for a fixed time, waits (bounded) for every reply to reach the mock, then
//! measures how long a saved script takes to go live. It prints a Markdown table.
//!
//! Under `cargo run` it first builds the release daemon, so one command measures the current
//! source.
//!
//! ```text
//! cargo run --release --bin linebotd-bench -- --seconds 10 --connections 8,64 --baseline
//! cargo run --release --bin linebotd-bench -- --smoke   # what CI runs
//! ```

#[path = "linebotd_bench/cpu.rs"]
mod cpu;
#[path = "linebotd_bench/daemon.rs"]
mod daemon;
#[path = "linebotd_bench/load.rs"]
mod load;
#[path = "linebotd_bench/mock.rs"]
mod mock;
#[path = "linebotd_bench/report.rs"]
mod report;

use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use daemon::{Daemon, MemoryProbe};
use report::RunReport;

/// Most webhooks one run may send: bounds the run (and the mock's bitmap) whatever the speed.
const MAX_REQUESTS: u64 = 8_000_000;
/// Longest wait for replies to drain after the load stops.
const DRAIN: Duration = Duration::from_secs(30);
/// Longest wait for one saved script to show in a reply.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);
const WEBHOOK_PATH: &str = "/callback";

/// End-to-end benchmark of the release `linebotd` binary against an in-process mock LINE API.
#[derive(Parser, Debug)]
#[command(name = "linebotd-bench")]
struct Args {
    /// Seconds of load per connection count.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive connections; one run per value.
    #[arg(long, value_delimiter = ',', default_values_t = vec![8, 64])]
    connections: Vec<usize>,
    /// Script saves timed per run (median reported).
    #[arg(long, default_value_t = 10)]
    reload_saves: usize,
    /// Also load a bare axum handler in this process (the ceiling on this machine).
    #[arg(long)]
    baseline: bool,
    /// CI check: 2 s, 4 connections, 3 saves; fails if a request failed or a reply is missing.
    #[arg(long)]
    smoke: bool,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.smoke {
        args.seconds = 2;
        args.connections = vec![4];
        args.reload_saves = 3;
    }
    args.connections.retain(|&c| c > 0);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("linebotd-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("linebotd-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything; `Ok(false)` when a correctness check failed.
async fn bench(args: &Args) -> Result<bool, String> {
    if cfg!(debug_assertions) {
        eprintln!(
            "linebotd-bench: warning: this benchmark was built without --release, so its load \
             generator and mock are slow and the figures understate the daemon"
        );
    }
    let bin = daemon::binary()?;
    eprintln!(
        "linebotd-bench: {} ({} CPUs, load average {})",
        bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    );
    let mut runs = Vec::new();
    let mut ok = true;
    for &connections in &args.connections {
        let (mut run, run_ok) = daemon_run(&bin, args, connections).await?;
        if args.baseline {
            run.baseline_per_s = Some(baseline_run(args, connections).await?);
        }
        ok &= run_ok;
        runs.push(run);
    }
    println!("\n{}", report::markdown(&runs));
    println!("Command: `{}`", command_line(args));
    if !ok {
        eprintln!("linebotd-bench: FAILED (see the messages above)");
    }
    Ok(ok)
}

fn command_line(args: &Args) -> String {
    let mut cmd = String::from("cargo run --release --bin linebotd-bench --");
    if args.smoke {
        cmd.push_str(" --smoke");
    } else {
        let conns: Vec<String> = args.connections.iter().map(ToString::to_string).collect();
        cmd.push_str(&format!(
            " --seconds {} --connections {}",
            args.seconds,
            conns.join(",")
        ));
        if args.reload_saves != 10 {
            cmd.push_str(&format!(" --reload-saves {}", args.reload_saves));
        }
    }
    if args.baseline {
        cmd.push_str(" --baseline");
    }
    cmd
}

/// One connection count against a fresh daemon and a fresh mock.
async fn daemon_run(
    bin: &std::path::Path,
    args: &Args,
    connections: usize,
) -> Result<(RunReport, bool), String> {
    let mock = mock::start(MAX_REQUESTS)
        .await
        .map_err(|e| format!("cannot start the mock LINE API: {e}"))?;
    let mut daemon = Daemon::start(bin, &mock.url, &connections.to_string())?;
    let memory = MemoryProbe::start(daemon.pid());
    let target = load::Target {
        addr: daemon.addr.clone(),
        path: WEBHOOK_PATH.into(),
        secret: daemon::SECRET.as_bytes().into(),
    };
    eprintln!(
        "-- {connections} connections, {} s against linebotd at {}",
        args.seconds, daemon.addr
    );
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = (
        cpu::process(daemon.pid()),
        cpu::process(std::process::id()),
        cpu::Machine::now(),
    );
    let started = Instant::now();
    let load = load::run(
        &target,
        connections,
        Duration::from_secs(args.seconds),
        MAX_REQUESTS,
        next.clone(),
    )
    .await;
    let replies_in_window = mock.state.replies();
    let acked = load.acked.len() as u64;
    let cpu_after = (
        cpu::process(daemon.pid()),
        cpu::process(std::process::id()),
        cpu::Machine::now(),
    );

    // Drain: every acknowledged event's reply, or give up after DRAIN.
    let drain_deadline = Instant::now() + DRAIN;
    while mock.state.replies() < acked && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut missing = load
        .acked
        .iter()
        .filter(|&&n| !mock.state.replied(n))
        .count() as u64;
    if missing > 0 && Instant::now() < drain_deadline {
        // Counts can reach `acked` with duplicates while some reply is still missing.
        tokio::time::sleep(Duration::from_millis(500)).await;
        missing = load
            .acked
            .iter()
            .filter(|&&n| !mock.state.replied(n))
            .count() as u64;
    }
    let replies_total = mock.state.replies();
    let last_reply = mock
        .state
        .last_reply_at()
        .saturating_duration_since(started);

    let mut latencies = load.latencies_us;
    latencies.sort_unstable();
    let secs = load.window.as_secs_f64().max(1e-9);
    let mut run = RunReport {
        connections,
        acked,
        failed: load.failed,
        acked_per_s: acked as f64 / secs,
        replies_in_window_per_s: replies_in_window as f64 / secs,
        replies_total_per_s: replies_total as f64 / last_reply.as_secs_f64().max(secs),
        replied: acked - missing,
        duplicate_replies: mock.state.duplicates(),
        p50_us: load::quantile(&latencies, 0.50),
        p90_us: load::quantile(&latencies, 0.90),
        p99_us: load::quantile(&latencies, 0.99),
        max_us: latencies.last().copied().unwrap_or(0),
        daemon_cpu_us: cpu::per_event_us(cpu_before.0, cpu_after.0, acked),
        bench_cpu_us: cpu::per_event_us(cpu_before.1, cpu_after.1, acked),
        stolen_percent: cpu_after
            .2
            .zip(cpu_before.2)
            .and_then(|(a, b)| a.stolen_since(&b)),
        ..RunReport::default()
    };
    eprintln!(
        "   {acked} acknowledged in {:.2} s, {} failed, {replies_total} replies ({missing} missing) by {:.2} s",
        load.window.as_secs_f64(),
        load.failed,
        last_reply.as_secs_f64()
    );

    let reloads = reload_latencies(&daemon, &mock, &target, &next, args.reload_saves).await;
    run.reloads_tried = args.reload_saves;
    run.reloads_seen = reloads.len();
    run.reload_median = median(reloads);
    run.peak_rss_kb = memory.peak_kb();

    let mut ok = true;
    let mut fail = |why: String| {
        eprintln!("   FAIL: {why}");
        ok = false;
    };
    if acked == 0 {
        fail("no webhook was acknowledged".into());
    }
    if load.failed > 0 {
        fail(format!(
            "{} request(s) failed; first: {}",
            load.failed,
            load.first_error.as_deref().unwrap_or("?")
        ));
    }
    if missing > 0 {
        fail(format!(
            "{missing} acknowledged event(s) never got their reply within {} s",
            DRAIN.as_secs()
        ));
    }
    if run.duplicate_replies > 0 || mock.state.unmatched() > 0 {
        fail(format!(
            "{} duplicate and {} unrecognised replies",
            run.duplicate_replies,
            mock.state.unmatched()
        ));
    }
    if run.reloads_seen < run.reloads_tried {
        fail(format!(
            "{} of {} saved scripts never showed within {} s",
            run.reloads_tried - run.reloads_seen,
            run.reloads_tried,
            RELOAD_TIMEOUT.as_secs()
        ));
    }
    let others = mock.state.other_paths();
    if !others.is_empty() {
        fail(format!("unexpected LINE calls besides reply: {others:?}"));
    }
    if !daemon.alive() {
        fail(format!("linebotd exited; its log:\n{}", daemon.log_text()));
    }
    let log = daemon.log_text();
    let noisy: Vec<&str> = log.lines().filter(|l| !l.contains(" INFO ")).collect();
    if !noisy.is_empty() {
        eprintln!(
            "   linebotd logged {} warning/error line(s); first ones:\n{}",
            noisy.len(),
            noisy[..noisy.len().min(5)].join("\n")
        );
    }
    Ok((run, ok))
}

/// Saves the script `saves` times, each with a new reply prefix, and measures the time from
/// the save to the first reply carrying it (probing with a webhook every ~5 ms).
async fn reload_latencies(
    daemon: &Daemon,
    mock: &mock::Mock,
    target: &load::Target,
    next: &AtomicU64,
    saves: usize,
) -> Vec<Duration> {
    let mut seen = Vec::new();
    let Ok(mut sender) = load::connect(&target.addr).await else {
        eprintln!("   cannot connect for reload probes");
        return seen;
    };
    for i in 0..saves {
        // Settle after the previous save so each one is its own reload.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let prefix = format!("reload {i}: ");
        mock.state.watch_for(&prefix);
        let saved = Instant::now();
        if let Err(e) = daemon.save_script(&prefix) {
            eprintln!("   cannot save the script: {e}");
            break;
        }
        while saved.elapsed() < RELOAD_TIMEOUT {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n >= MAX_REQUESTS {
                break;
            }
            let body = load::text_event_body(n, "probe");
            let signature = linebotd::webhook::sign(&target.secret, body.as_bytes());
            let request = hyper::Request::post(target.path.as_str())
                .header(hyper::header::HOST, target.addr.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header("x-line-signature", signature)
                .body(http_body_util::Full::new(axum::body::Bytes::from(body)));
            if let Ok(request) = request {
                let _ = load::send(&mut sender, request).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            if let Some(at) = mock.state.needle_seen() {
                seen.push(at.saturating_duration_since(saved));
                break;
            }
        }
        mock.state.stop_watching();
    }
    seen
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort_unstable();
    v.get(v.len().checked_sub(1)? / 2).copied()
}

/// The same load against a bare axum handler in this process: the ceiling of HTTP here.
async fn baseline_run(args: &Args, connections: usize) -> Result<f64, String> {
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
        addr: addr.to_string(),
        path: WEBHOOK_PATH.into(),
        secret: daemon::SECRET.as_bytes().into(),
    };
    eprintln!(
        "-- {connections} connections, {} s against a bare axum handler",
        args.seconds
    );
    let load = load::run(
        &target,
        connections,
        Duration::from_secs(args.seconds),
        MAX_REQUESTS,
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    server.abort();
    Ok(load.acked.len() as f64 / load.window.as_secs_f64().max(1e-9))
}
