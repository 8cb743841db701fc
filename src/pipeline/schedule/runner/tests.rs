use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use chrono::Timelike;
use chrono_tz::Tz;

use super::*;

/// Records how often each function ran and the most runs that overlapped.
#[derive(Default)]
struct Probe {
    calls: Mutex<HashMap<String, u64>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

impl Probe {
    fn count(&self, call: &str) -> u64 {
        lock(&self.calls).get(call).copied().unwrap_or(0)
    }
}

fn probe_run(probe: &Arc<Probe>, takes: Duration) -> RunFn {
    let probe = Arc::clone(probe);
    Arc::new(move |s: Schedule| {
        let probe = Arc::clone(&probe);
        Box::pin(async move {
            *lock(&probe.calls).entry(s.call.clone()).or_default() += 1;
            let now = probe.active.fetch_add(1, Ordering::SeqCst) + 1;
            probe.max_active.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(takes).await;
            probe.active.fetch_sub(1, Ordering::SeqCst);
        })
    })
}

fn every_second(call: &str) -> Schedule {
    Schedule::new("t.rhai", 0, "* * * * * *", call, Tz::UTC).unwrap()
}

/// A daily schedule whose time of day was `ago` before now, so its latest occurrence is a
/// moment ago and the next is tomorrow: any run within the test is a make-up run.
fn daily_at_ago(ago: chrono::Duration) -> (Schedule, DateTime<Utc>) {
    let at = Utc::now() - ago;
    let cron = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    let schedule = Schedule::new("t.rhai", 0, &cron, "daily", Tz::UTC).unwrap();
    let missed = schedule.latest_at_or_before(Utc::now()).unwrap();
    (schedule, missed)
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

const GRACE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn fires_repeatedly_and_records_the_scheduled_time() {
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last.clone(), GRACE);
    scheduler.replace("t.rhai", vec![every_second("tick")]);

    assert!(wait_until(Duration::from_secs(4), || probe.count("tick") >= 2).await);
    assert!(scheduler.runs() >= 2);
    assert_eq!(scheduler.skipped(), 0);
    // The persisted time is the scheduled whole second, not the moment the run started.
    let at = last.get("t.rhai#0:tick").unwrap();
    assert_eq!(at % 1000, 0);
    let (_, next) = &scheduler.list()[0];
    assert!(next.unwrap() > Utc::now() - chrono::Duration::seconds(1));
}

#[tokio::test]
async fn replace_changes_what_runs() {
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last, GRACE);
    scheduler.replace("t.rhai", vec![every_second("a")]);
    assert!(wait_until(Duration::from_secs(3), || probe.count("a") >= 1).await);

    scheduler.replace("t.rhai", vec![every_second("b")]);
    let a_at_replace = probe.count("a");
    assert!(wait_until(Duration::from_secs(4), || probe.count("b") >= 2).await);
    // At most a run that was already started when replace() returned.
    assert!(probe.count("a") <= a_at_replace + 1);
    let calls: Vec<String> = scheduler.list().into_iter().map(|(s, _)| s.call).collect();
    assert_eq!(calls, vec!["b"]);
}

#[tokio::test]
async fn replace_with_empty_stops_and_leaves_other_scripts() {
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last, GRACE);
    let other = Schedule::new("other.rhai", 0, "0 0 1 1 *", "yearly", Tz::UTC).unwrap();
    scheduler.replace("other.rhai", vec![other.clone()]);
    scheduler.replace("t.rhai", vec![every_second("a")]);
    assert!(wait_until(Duration::from_secs(3), || probe.count("a") >= 1).await);

    scheduler.replace("t.rhai", vec![]);
    let a_at_replace = probe.count("a");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(probe.count("a") <= a_at_replace + 1);
    let left: Vec<Schedule> = scheduler.list().into_iter().map(|(s, _)| s).collect();
    assert_eq!(left, vec![other]);
}

#[tokio::test]
async fn slow_run_is_skipped_not_stacked() {
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let takes = Duration::from_millis(2500);
    let scheduler = Scheduler::start(probe_run(&probe, takes), last, GRACE);
    scheduler.replace("t.rhai", vec![every_second("slow")]);

    let done = wait_until(Duration::from_secs(7), || {
        scheduler.runs() >= 2 && scheduler.skipped() >= 2
    })
    .await;
    assert!(done, "stats: {:?}", scheduler.stats());
    assert_eq!(probe.max_active.load(Ordering::SeqCst), 1);
    // Reloading the same key mid-run keeps the in-flight state: still no overlap.
    scheduler.replace("t.rhai", vec![every_second("slow")]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(probe.max_active.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missed_run_within_grace_is_made_up_once() {
    let (schedule, missed) = daily_at_ago(chrono::Duration::seconds(2));
    let key = schedule.key();
    let last = Arc::new(MemoryLastRuns::default());
    last.claim(
        &key,
        (missed - chrono::Duration::days(1)).timestamp_millis(),
    );

    let probe = Arc::new(Probe::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last.clone(), GRACE);
    scheduler.replace("t.rhai", vec![schedule.clone()]);
    assert!(wait_until(Duration::from_secs(2), || probe.count("daily") == 1).await);
    assert_eq!(last.get(&key), Some(missed.timestamp_millis()));

    // Reloading, or restarting with the same persisted state, does not make it up again.
    scheduler.replace("t.rhai", vec![schedule.clone()]);
    let restarted = Scheduler::start(probe_run(&probe, Duration::ZERO), last, GRACE);
    restarted.replace("t.rhai", vec![schedule]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(probe.count("daily"), 1);
    assert_eq!(scheduler.runs() + restarted.runs(), 1);
}

#[tokio::test]
async fn missed_run_older_than_grace_is_not_made_up() {
    let (schedule, missed) = daily_at_ago(chrono::Duration::seconds(3));
    let last = Arc::new(MemoryLastRuns::default());
    last.claim(
        &schedule.key(),
        (missed - chrono::Duration::days(1)).timestamp_millis(),
    );

    let probe = Arc::new(Probe::default());
    let grace = Duration::from_secs(1);
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last, grace);
    scheduler.replace("t.rhai", vec![schedule]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(probe.count("daily"), 0);
    let (_, next) = &scheduler.list()[0];
    assert_eq!(*next, Some(missed + chrono::Duration::days(1)));
}

#[tokio::test]
async fn new_schedule_does_not_make_up() {
    let (schedule, missed) = daily_at_ago(chrono::Duration::seconds(2));
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last, GRACE);
    scheduler.replace("t.rhai", vec![schedule]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(probe.count("daily"), 0);
    let (_, next) = &scheduler.list()[0];
    assert_eq!(*next, Some(missed + chrono::Duration::days(1)));
}

#[tokio::test]
async fn shutdown_stops_firing() {
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::ZERO), last, GRACE);
    scheduler.replace("t.rhai", vec![every_second("tick")]);
    assert!(wait_until(Duration::from_secs(3), || probe.count("tick") >= 1).await);
    scheduler.shutdown();
    let at_shutdown = probe.count("tick");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(probe.count("tick") <= at_shutdown + 1);
}

#[tokio::test]
async fn removing_and_re_adding_mid_run_does_not_overlap() {
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let scheduler = Scheduler::start(probe_run(&probe, Duration::from_millis(2500)), last, GRACE);
    scheduler.replace("t.rhai", vec![every_second("slow")]);
    assert!(wait_until(Duration::from_secs(3), || probe.count("slow") == 1).await);

    // An editor saving by delete + create: the script vanishes, then comes back.
    scheduler.replace("t.rhai", vec![]);
    scheduler.replace("t.rhai", vec![every_second("slow")]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(probe.max_active.load(Ordering::SeqCst), 1);
    assert!(scheduler.skipped() >= 1);
}

#[tokio::test]
async fn schedulers_sharing_last_runs_fire_each_due_time_once_between_them() {
    // Three instances on one store: each second runs once in all, not once per instance.
    let probe = Arc::new(Probe::default());
    let last = Arc::new(MemoryLastRuns::default());
    let schedulers: Vec<Scheduler> = (0..3)
        .map(|_| {
            let s = Scheduler::start(probe_run(&probe, Duration::ZERO), last.clone(), GRACE);
            s.replace("t.rhai", vec![every_second("tick")]);
            s
        })
        .collect();
    let started = Instant::now();
    assert!(wait_until(Duration::from_secs(6), || probe.count("tick") >= 3).await);
    let runs: u64 = schedulers.iter().map(Scheduler::runs).sum();
    let seconds = started.elapsed().as_secs() + 1;
    assert!(
        runs <= seconds,
        "{runs} runs in about {seconds} s between three schedulers"
    );
    assert_eq!(runs, probe.count("tick"));
}
