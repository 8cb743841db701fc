//! One connection count against fresh daemons (one, or `--instances` on one PostgreSQL
//! database) and a fresh mock: the load, the drain, the correctness checks, and how long a
//! saved script takes to go live. With several instances the daemon CPU and peak memory are
//! their sums.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::daemon::{self, Daemon, MemoryProbe, Script};
use crate::report::RunReport;
use crate::{cpu, load, mock, Leg, MAX_REQUESTS, WEBHOOK_PATH};

/// Longest wait for answers to drain after the load stops.
const DRAIN: Duration = Duration::from_secs(30);
/// Longest wait for one saved script to show in a reply.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection count against fresh daemons and a fresh mock.
pub async fn daemon_run(
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
    if let Some(url) = &leg.store {
        empty_database(url).await?;
    }
    let settings = daemon::Settings {
        line_api: &mock.url,
        tag: &tag,
        script,
        rate_limit_off: scenario.rate_limit_off,
        store: leg.store.as_deref(),
    };
    // One after another: each waits until it listens (the first one creates the tables).
    let mut daemons = (0..scenario.instances)
        .map(|_| Daemon::start(bin, &settings))
        .collect::<Result<Vec<_>, _>>()?;
    let memory: Vec<_> = daemons
        .iter()
        .map(|d| MemoryProbe::start(d.pid()))
        .collect();
    let daemons_cpu = |daemons: &[Daemon]| -> Option<Duration> {
        daemons.iter().map(|d| cpu::process(d.pid())).sum()
    };
    let target = load::Target {
        addrs: daemons.iter().map(|d| d.addr.clone()).collect(),
        path: WEBHOOK_PATH.into(),
        secret: daemon::SECRET.as_bytes().into(),
    };
    eprintln!(
        "-- {connections} connections, {} s, script {}, {} users, LINE latency {} ms, against \
         linebotd at {}",
        scenario.seconds,
        scenario.script,
        scenario.users,
        scenario.latency_ms,
        target.addrs.join(", ")
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
        daemons_cpu(&daemons),
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
        daemons_cpu(&daemons),
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
        &daemons,
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
    run.peak_rss_kb = memory.iter().map(MemoryProbe::peak_kb).sum();

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
    for daemon in &mut daemons {
        if !daemon.alive() {
            fail(format!("linebotd exited; its log:\n{}", daemon.log_text()));
        }
    }
    let log = daemons
        .iter()
        .map(Daemon::log_text)
        .collect::<Vec<_>>()
        .join("\n");
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

/// Saves the script `saves` times, each with a new reply prefix (in every instance's folder, as a
/// deploy would), and measures the time from the save to the first reply carrying it (probing
/// the first instance with a webhook every ~5 ms).
async fn reload_latencies(
    daemons: &[Daemon],
    mock: &mock::Mock,
    target: &load::Target,
    next: &AtomicU64,
    users: u64,
    saves: usize,
) -> Vec<Duration> {
    let mut seen = Vec::new();
    let addr = target.addr(0);
    let Ok(mut sender) = load::connect(addr).await else {
        eprintln!("   cannot connect for reload probes");
        return seen;
    };
    for i in 0..saves {
        // Settle after the previous save so each one is its own reload.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let prefix = format!("reload {i}: ");
        mock.state.watch_for(&prefix);
        let saved = Instant::now();
        if let Some(e) = daemons.iter().find_map(|d| d.save_script(&prefix).err()) {
            eprintln!("   cannot save the script: {e}");
            break;
        }
        while saved.elapsed() < RELOAD_TIMEOUT {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n >= MAX_REQUESTS {
                break;
            }
            let body = load::text_event_body(n, users, &load::event_text("probe", n));
            if let Ok(request) = target.webhook(addr, body) {
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

/// A fresh store for a PostgreSQL run: everything in the database's `public` schema goes, and
/// the daemon creates its tables anew.
async fn empty_database(url: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let driver = tokio::spawn(connection);
    let emptied = client
        .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .await
        .map_err(|e| format!("cannot empty the benchmark's database: {e}"));
    drop(client);
    let _ = driver.await;
    emptied
}
