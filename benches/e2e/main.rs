//! `linebotd-bench`: the project's end-to-end benchmark, all on 127.0.0.1.
//!
//! For each connection count it starts a mock LINE API in this process (answering every call at
//! once, or after `--line-latency-ms`, like LINE: single-use reply tokens, 409 on a push whose
//! retry key was accepted, profiles), the real release `linebotd` with the chosen script and a
//! fresh store, drives signed text webhooks from `--users` users over keep-alive connections for
//! a fixed time, waits (bounded) for every event's answer to reach the mock, then measures how
//! long a saved script takes to go live. It prints what it ran, a Markdown table with DESIGN.md's
//! targets beside the figures, and the command line.
//!
//! With the instant mock (the default) the daemon runs with its client-side LINE rate limits off;
//! with a latency it runs in its default configuration, limits included. Replies and fallback
//! pushes (the daemon's push when a reply failed) are counted apart. The generator never waits
//! for a reply, only for the 200; with a latency it offers 2,500 webhooks/s by default (`--rate`)
//! and holds back while 4 × users events are unanswered (`--max-backlog`), so the answers drain
//! in bounded time.
//!
//! It is a bench target (`harness = false`) rather than a binary, so `cargo install` installs
//! only `linebotd`. `cargo bench` builds the `linebotd` binary with the same optimised profile
//! before this one, so one command measures the current source.
//!
//! ```text
//! cargo bench --bench e2e -- --seconds 10 --connections 8,64 --baseline
//! cargo bench --bench e2e -- --line-latency-ms 100 --seconds 10 --connections 64
//! cargo bench --bench e2e -- --line-latency-ms 100 --script profile --connections 64
//! cargo bench --bench e2e -- --line-latency-ms 1000 --users 512 --connections 64
//! cargo bench --bench e2e -- --smoke   # what CI runs
//! ```

// `cargo test --benches` and `clippy --all-targets` build this with `cfg(test)` but, as
// `harness = false`, drop its `#[test]` functions: the test modules' helpers look unused here.
// Those tests run from `unit_tests.rs`.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod cpu;
mod daemon;
mod load;
mod mock;
mod report;

use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use daemon::{Daemon, MemoryProbe, Script};
use report::{RunReport, Scenario};

/// Most webhooks one run may send: bounds the run (and the mock's bitmaps) whatever the speed.
const MAX_REQUESTS: u64 = 8_000_000;
/// Longest wait for answers to drain after the load stops.
const DRAIN: Duration = Duration::from_secs(30);
/// Longest wait for one saved script to show in a reply.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the mock may be told to wait before answering.
const MAX_LATENCY_MS: u64 = 10_000;
/// With a latency, the default offered rate: more than LINE's 2,000 replies/s, so the reply
/// target is reachable, without the burst of an unpaced start.
const LATENCY_RATE: f64 = 2_500.0;
/// With a latency, the default backlog cap is this many unanswered events per user.
const BACKLOG_PER_USER: u64 = 4;
const WEBHOOK_PATH: &str = "/callback";

/// End-to-end benchmark of the release `linebotd` binary against an in-process mock LINE API.
#[derive(Parser, Debug)]
#[command(name = "linebotd-bench", bin_name = "cargo bench --bench e2e --")]
struct Args {
    /// Seconds of load per connection count.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive connections; one run per value.
    #[arg(long, value_delimiter = ',', default_values_t = vec![8, 64])]
    connections: Vec<usize>,
    /// The mock LINE API answers every call after this many milliseconds. Above 0 the daemon
    /// runs in its default configuration, LINE rate limits included; at 0 they are off.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_LATENCY_MS))]
    line_latency_ms: u64,
    /// The bot: `echo` replies once; `profile` fetches the sender's profile, then replies once.
    #[arg(long, value_enum, default_value_t = Script::Echo)]
    script: Script,
    /// Distinct LINE users (conversations) the webhooks come from, round-robin.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    users: u64,
    /// Offered webhooks a second in all, evenly spaced; 0 sends each connection's next webhook
    /// as soon as the last one's 200 arrives. Default: 0 with the instant mock, 2,500 (a quarter
    /// above LINE's 2,000/s reply limit) with a latency.
    #[arg(long)]
    rate: Option<f64>,
    /// The load generator waits while this many acknowledged events are still unanswered, so
    /// the answers drain in bounded time; 0 turns the cap off. Default: off with the instant
    /// mock, 4 × users with a latency.
    #[arg(long)]
    max_backlog: Option<u64>,
    /// Script saves timed per run (median reported).
    #[arg(long, default_value_t = 10)]
    reload_saves: usize,
    /// Also load a bare axum handler in this process (the ceiling on this machine).
    #[arg(long)]
    baseline: bool,
    /// CI check: two legs of 2 s at 4 connections, instant mock (3 saves) and 100 ms (1 save);
    /// fails if a request failed or an event went unanswered or was answered twice.
    #[arg(long)]
    smoke: bool,
    /// Added by `cargo bench` to every bench's arguments; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One table: a scenario and the connection counts to run it at.
struct Leg {
    scenario: Scenario,
    script: Script,
    connections: Vec<usize>,
    reload_saves: usize,
}

impl Args {
    fn legs(&self) -> Vec<Leg> {
        if self.smoke {
            return vec![
                self.leg(0, Script::Echo, 2, vec![4], 3),
                self.leg(100, Script::Echo, 2, vec![4], 1),
            ];
        }
        let connections = self
            .connections
            .iter()
            .copied()
            .filter(|&c| c > 0)
            .collect();
        vec![self.leg(
            self.line_latency_ms,
            self.script,
            self.seconds,
            connections,
            self.reload_saves,
        )]
    }

    fn leg(
        &self,
        latency_ms: u64,
        script: Script,
        seconds: u64,
        connections: Vec<usize>,
        reload_saves: usize,
    ) -> Leg {
        let (default_rate, default_backlog) = if latency_ms == 0 {
            (0.0, 0)
        } else {
            (LATENCY_RATE, BACKLOG_PER_USER * self.users)
        };
        let rate = self.rate.unwrap_or(default_rate);
        Leg {
            scenario: Scenario {
                latency_ms,
                script: script.name(),
                users: self.users,
                seconds,
                rate_limit_off: latency_ms == 0,
                rate_per_s: if rate.is_finite() { rate.max(0.0) } else { 0.0 },
                max_backlog: self.max_backlog.unwrap_or(default_backlog),
            },
            script,
            connections,
            reload_saves,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    let machine = format!(
        "{} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    );
    eprintln!("linebotd-bench: {} ({machine})", bin.display());
    let revision = daemon::source_revision();
    let mut ok = true;
    let mut tables = Vec::new();
    for leg in args.legs() {
        let mut runs = Vec::new();
        for &connections in &leg.connections {
            let (mut run, run_ok) = daemon_run(&bin, &leg, connections).await?;
            if args.baseline {
                run.baseline_per_s = Some(baseline_run(&leg.scenario, connections).await?);
            }
            ok &= run_ok;
            runs.push(run);
        }
        tables.push(format!(
            "{}\n\n{}",
            leg.scenario.describe(),
            report::markdown(&leg.scenario, &runs)
        ));
    }
    println!();
    if let Some(revision) = revision {
        println!("Daemon source measured: {revision} ({machine} at the start).\n");
    }
    println!("{}", tables.join("\n"));
    println!("Command: `{}`", command_line());
    if !ok {
        eprintln!("linebotd-bench: FAILED (see the messages above)");
    }
    Ok(ok)
}

/// The command that produced the tables, as `cargo bench` would take it.
fn command_line() -> String {
    let mut cmd = String::from("cargo bench --bench e2e --");
    for arg in std::env::args().skip(1).filter(|arg| arg != "--bench") {
        cmd.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            cmd.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            cmd.push_str(&arg);
        }
    }
    cmd
}

/// One connection count against a fresh daemon and a fresh mock.
async fn daemon_run(
    bin: &std::path::Path,
    leg: &Leg,
    connections: usize,
) -> Result<(RunReport, bool), String> {
    let scenario = &leg.scenario;
    let mock = mock::start(&mock::Options {
        latency: Duration::from_millis(scenario.latency_ms),
        capacity: MAX_REQUESTS,
        notify_answers: scenario.max_backlog > 0,
    })
    .await
    .map_err(|e| format!("cannot start the mock LINE API: {e}"))?;
    let script = leg.script;
    let tag = format!("{}ms-{connections}", scenario.latency_ms);
    let mut daemon = Daemon::start(
        bin,
        &daemon::Settings {
            line_api: &mock.url,
            tag: &tag,
            script,
            rate_limit_off: scenario.rate_limit_off,
        },
    )?;
    let memory = MemoryProbe::start(daemon.pid());
    let target = load::Target {
        addr: daemon.addr.clone(),
        path: WEBHOOK_PATH.into(),
        secret: daemon::SECRET.as_bytes().into(),
    };
    eprintln!(
        "-- {connections} connections, {} s, script {}, {} users, LINE latency {} ms, against \
         linebotd at {}",
        scenario.seconds, scenario.script, scenario.users, scenario.latency_ms, daemon.addr
    );
    let next = Arc::new(AtomicU64::new(0));
    let plan = Arc::new(load::Plan {
        connections,
        duration: Duration::from_secs(scenario.seconds),
        max_requests: MAX_REQUESTS,
        users: scenario.users,
        rate_per_s: scenario.rate_per_s,
        backlog: (scenario.max_backlog > 0).then(|| load::Backlog {
            max: scenario.max_backlog,
            mock: mock.state.clone(),
        }),
    });
    let cpu_before = (
        cpu::process(daemon.pid()),
        cpu::process(std::process::id()),
        cpu::Machine::now(),
    );
    let started = Instant::now();
    let load = load::run(&target, plan, next.clone()).await;
    let replies_in_window = mock.state.replies();
    let acked = load.acked.len() as u64;

    // Drain: every acknowledged event's answer, or give up after DRAIN.
    let drain_deadline = Instant::now() + DRAIN;
    while mock.state.answered() < acked && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_after = (
        cpu::process(daemon.pid()),
        cpu::process(std::process::id()),
        cpu::Machine::now(),
    );
    // A late second answer (a push after a reply) would still show here.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let missing = load
        .acked
        .iter()
        .filter(|&&n| !mock.state.was_answered(n))
        .count() as u64;
    let replies = mock.state.replies();
    let last_reply = mock
        .state
        .last_reply_at()
        .saturating_duration_since(started);
    let answered = acked - missing;

    let mut latencies = load.latencies_us;
    latencies.sort_unstable();
    let secs = load.window.as_secs_f64().max(1e-9);
    let mut run = RunReport {
        connections,
        acked,
        failed: load.failed,
        acked_per_s: acked as f64 / secs,
        replies_in_window_per_s: replies_in_window as f64 / secs,
        replies_total_per_s: replies as f64 / last_reply.as_secs_f64().max(secs),
        replies,
        fallback_pushes: mock.state.fallback_pushes(),
        push_conflicts: mock.state.push_conflicts(),
        reused_tokens: mock.state.reused_tokens(),
        profiles: mock.state.profiles(),
        answered,
        answered_twice: mock.state.answered_twice(),
        busiest_second_replies: mock.state.busiest_second_replies(),
        p50_us: load::quantile(&latencies, 0.50),
        p90_us: load::quantile(&latencies, 0.90),
        p99_us: load::quantile(&latencies, 0.99),
        max_us: latencies.last().copied().unwrap_or(0),
        daemon_cpu_us: cpu::per_event_us(cpu_before.0, cpu_after.0, answered),
        bench_cpu_us: cpu::per_event_us(cpu_before.1, cpu_after.1, answered),
        stolen_percent: cpu_after
            .2
            .zip(cpu_before.2)
            .and_then(|(a, b)| a.stolen_since(&b)),
        held_back_percent: 100.0 * load.held_back.as_secs_f64()
            / (secs * connections as f64).max(1e-9),
        ..RunReport::default()
    };
    eprintln!(
        "   {acked} acknowledged in {:.2} s, {} failed; {replies} replies (last at {:.2} s), {} \
         fallback pushes, {missing} events unanswered",
        load.window.as_secs_f64(),
        load.failed,
        last_reply.as_secs_f64(),
        run.fallback_pushes,
    );

    let reloads = reload_latencies(
        &daemon,
        &mock,
        &target,
        &next,
        scenario.users,
        leg.reload_saves,
    )
    .await;
    run.reloads_tried = leg.reload_saves;
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
            "{missing} acknowledged event(s) got neither a reply nor a push within {} s",
            DRAIN.as_secs()
        ));
    }
    if mock.state.answered_twice() > 0 || mock.state.unmatched() > 0 {
        fail(format!(
            "{} event(s) answered twice, {} unrecognised reply token(s) or push(es)",
            mock.state.answered_twice(),
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
        fail(format!("unexpected LINE calls: {others:?}"));
    }
    if script == Script::Echo && run.profiles > 0 {
        fail(format!(
            "the echo script asked for {} profile(s)",
            run.profiles
        ));
    }
    if !daemon.alive() {
        fail(format!("linebotd exited; its log:\n{}", daemon.log_text()));
    }
    let log = daemon.log_text();
    let noisy: Vec<&str> = log.lines().filter(|l| !l.contains(" INFO ")).collect();
    if !noisy.is_empty() {
        eprintln!(
            "   linebotd logged {} warning/error line(s){}; first ones:\n{}",
            noisy.len(),
            if noisy.len() >= 999 { " or more" } else { "" },
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
    users: u64,
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
            let body = load::text_event_body(n, users, &load::event_text("probe", n));
            let signature = linebotd::pipeline::webhook::sign(&target.secret, body.as_bytes());
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
async fn baseline_run(scenario: &Scenario, connections: usize) -> Result<f64, String> {
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
