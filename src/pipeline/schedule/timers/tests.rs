use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;

use super::*;

/// Records which timers ran, in order, and when.
#[derive(Default)]
struct Probe {
    ran: Mutex<Vec<(String, i64)>>,
}

impl Probe {
    fn ids(&self) -> Vec<String> {
        self.ran
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn probe_fire(probe: &Arc<Probe>, outcome: Fired) -> FireFn {
    let probe = Arc::clone(probe);
    Arc::new(move |t: Timer| {
        let (probe, outcome) = (Arc::clone(&probe), outcome.clone());
        Box::pin(async move {
            probe.ran.lock().unwrap().push((t.id, now_ms()));
            outcome
        })
    })
}

fn timer(id: &str, due_ms: i64) -> Timer {
    Timer {
        id: id.to_owned(),
        script: "t.rhai".to_owned(),
        function: "ring".to_owned(),
        data: json!(null),
        due_ms,
        created_ms: now_ms(),
    }
}

fn start(timers: &Arc<Timers>, fire: FireFn) -> TimerLoop {
    timers.start(fire, Duration::from_secs(60), Duration::from_secs(30), 4)
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

fn store() -> Arc<dyn Store> {
    crate::store::open(":memory:").unwrap()
}

#[tokio::test]
async fn fires_each_timer_at_its_time_earliest_first() {
    let (timers, probe) = (Timers::new(store()), Arc::new(Probe::default()));
    let now = now_ms();
    timers.add(&timer("second", now + 500)).unwrap();
    timers.add(&timer("first", now + 250)).unwrap();
    let _loop = start(&timers, probe_fire(&probe, Fired::Ran));
    assert!(wait_until(Duration::from_secs(5), || probe.ids().len() == 2).await);
    assert_eq!(probe.ids(), ["first", "second"]);
    let ran = probe.ran.lock().unwrap().clone();
    assert!(ran[0].1 >= now + 250, "ran early: {ran:?}");
    assert!(ran[1].1 >= now + 500, "ran early: {ran:?}");
    assert!(
        wait_until(Duration::from_secs(2), || timers
            .pending(10)
            .unwrap()
            .is_empty())
        .await
    );
    // Done: nothing runs twice.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(probe.ids().len(), 2);
}

#[tokio::test]
async fn a_timer_cancelled_before_its_time_never_runs() {
    let (timers, probe) = (Timers::new(store()), Arc::new(Probe::default()));
    let now = now_ms();
    timers.add(&timer("cancelled", now + 200)).unwrap();
    timers.add(&timer("kept", now + 400)).unwrap();
    let _loop = start(&timers, probe_fire(&probe, Fired::Ran));
    assert!(timers.cancel("cancelled").unwrap());
    assert!(wait_until(Duration::from_secs(5), || !probe.ids().is_empty()).await);
    assert_eq!(probe.ids(), ["kept"]);
}

#[tokio::test]
async fn a_timer_added_while_the_loop_sleeps_wakes_it() {
    let (timers, probe) = (Timers::new(store()), Arc::new(Probe::default()));
    // Nothing pending: the loop sleeps its longest (a minute).
    let _loop = start(&timers, probe_fire(&probe, Fired::Ran));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    timers.add(&timer("soon", now_ms() + 100)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || !probe.ids().is_empty()).await);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(probe.ids(), ["soon"]);
}

#[tokio::test]
async fn a_timer_later_than_the_grace_period_is_dropped_not_run() {
    let (timers, probe) = (Timers::new(store()), Arc::new(Probe::default()));
    let now = now_ms();
    timers.add(&timer("stale", now - 120_000)).unwrap();
    timers.add(&timer("recent", now - 1_000)).unwrap();
    let _loop = start(&timers, probe_fire(&probe, Fired::Ran));
    assert!(wait_until(Duration::from_secs(5), || !probe.ids().is_empty()).await);
    assert!(
        wait_until(Duration::from_secs(2), || timers
            .pending(10)
            .unwrap()
            .is_empty())
        .await
    );
    assert_eq!(probe.ids(), ["recent"]);
}

#[tokio::test]
async fn a_failing_timer_is_done_and_not_retried() {
    let (timers, probe) = (Timers::new(store()), Arc::new(Probe::default()));
    timers.add(&timer("boom", now_ms())).unwrap();
    let fire = probe_fire(&probe, Fired::Failed("script threw".into()));
    let _loop = start(&timers, fire);
    assert!(
        wait_until(Duration::from_secs(5), || timers
            .pending(10)
            .unwrap()
            .is_empty())
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(probe.ids(), ["boom"]);
}
