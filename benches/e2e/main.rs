//! `linebotd-bench`: the project's end-to-end benchmark, all on 127.0.0.1.
//!
//! For each connection count it starts a mock LINE API in this process (answering every call at
//! once, or after `--line-latency-ms`, like LINE: single-use reply tokens, 409 on a push whose
//! retry key was accepted, profiles), the real release `linebotd` with the chosen script and a
//! fresh store, drives signed text webhooks from `--users` users over keep-alive connections for
//! a fixed time, waits (bounded) for every event's answer to reach the mock, then measures how
//! long a saved script takes to go live. With `--store postgres://…` the daemon runs on that
//! database (emptied first) instead of a SQLite file; `--instances N` then starts N daemons on
//! it, each on its own port, and the load generator's connections go to them in turn, so each
//! user's webhooks land on every instance, as behind a load balancer. The mock sees every
//! instance's calls; the daemon CPU and peak memory reported are the instances' sums. It prints what it ran, a Markdown table with DESIGN.md's
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
//! cargo bench --bench e2e -- --store postgres://postgres@127.0.0.1:5432/bench
//! cargo bench --bench e2e -- --line-latency-ms 100 --connections 64 \
//!     --store postgres://postgres@127.0.0.1:5432/bench --instances 2
//! cargo bench --bench e2e -- --smoke   # what CI runs
//! ```

// `cargo test --benches` and `clippy --all-targets` build this with `cfg(test)` but, as
// `harness = false`, drop its `#[test]` functions: the test modules' helpers look unused here.
// Those tests run from `unit_tests.rs`.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod baseline;
mod cpu;
mod daemon;
mod load;
mod mock;
mod report;
mod run;

use std::process::ExitCode;

use clap::Parser;

use baseline::baseline_run;
use daemon::Script;
use load::{MAX_REQUESTS, WEBHOOK_PATH};
use report::Scenario;
use run::daemon_run;

/// Longest the mock may be told to wait before answering.
const MAX_LATENCY_MS: u64 = 10_000;
/// With a latency, the default offered rate: more than LINE's 2,000 replies/s, so the reply
/// target is reachable, without the burst of an unpaced start.
const LATENCY_RATE: f64 = 2_500.0;
/// With a latency, the default backlog cap is this many unanswered events per user.
const BACKLOG_PER_USER: u64 = 4;
/// Most daemons one run may start.
const MAX_INSTANCES: u64 = 16;

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
    /// The daemon's store: a `postgres://` URL measures the PostgreSQL back end instead of a
    /// fresh SQLite file. Its database is emptied before each run (`DROP SCHEMA public
    /// CASCADE`): give the benchmark a database of its own.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Daemons to start on the `--store` database, each on its own port; the connections go to
    /// them in turn, as behind a load balancer. Above 1 needs a `postgres://` store.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_INSTANCES))]
    instances: u64,
    /// Also load two ceilings in this process: a bare axum handler (HTTP alone) and a bare
    /// relay that sends one reqwest reply per webhook to an instant mock (what any bot on these
    /// crates could deliver on this machine, without a store or a script).
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
    /// A PostgreSQL URL, or `None` for a fresh SQLite file per run.
    store: Option<String>,
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
                instances: self.instances as usize,
            },
            script,
            connections,
            store: self.store.clone(),
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
    daemon::check_instances(args.instances as usize, args.store.as_deref())?;
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
                run.baseline = Some(baseline_run(&leg.scenario, connections).await?);
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
