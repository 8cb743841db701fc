//! One-off timers (`later`) through the real binary: they survive `kill -9`, run once after a
//! restart, are dropped when due longer ago than the grace period or when their function is
//! gone, and `linebotd schedules` lists the pending ones.

#[path = "support/durable_daemon.rs"]
mod durable_daemon;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use durable_daemon::{start, PUSH, WAIT};
use support::daemon::{eventually, say, Daemon, Scripts};
use support::mock_line::MockLine;

const REPLY: &str = "/v2/bot/message/reply";

/// Sets a timer 2 s ahead that pushes "ring <text>" back, and replies with the timer's id.
const REMINDER: &str = r#"
fn on_message(e) {
    let id = later(2, "remind", #{ to: e.source.userId, text: "ring " + e.message.text });
    reply(e, id);
}
fn remind(data) { push(data.to, data.text); }
"#;

/// `linebotd schedules` for `scripts` reading the store `db`: its stdout.
fn schedules(scripts: &Scripts, db: &Path) -> String {
    let out = std::process::Command::new(support::daemon::bin())
        .args(["schedules", "--scripts"])
        .arg(scripts.path())
        .arg("--store")
        .arg(db)
        .env_remove("LINEBOTD_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends a message that sets a timer, and kills the daemon (SIGKILL) before the timer is due;
/// returns the timer's id.
async fn set_timer_then_kill(d: &mut Daemon, mock: &MockLine, text: &str) -> String {
    let asked = Instant::now();
    assert_eq!(say(d, "E1", "U1", text).await, 200);
    assert!(
        eventually(WAIT, || mock.texts(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2) && mock.texts(PUSH).is_empty(),
        "the timer was due before the kill; nothing was tested"
    );
    mock.texts(REPLY)[0].clone()
}

#[tokio::test]
async fn a_timer_survives_kill_9_and_runs_once_after_restart() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("reminder.rhai", REMINDER)]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let mut d = start(&scripts, &mock, &db);
    let id = set_timer_then_kill(&mut d, &mock, "milk").await;

    let listed = schedules(&scripts, &db);
    assert!(
        listed.contains(&id) && listed.contains("reminder.rhai") && listed.contains("remind(data)"),
        "{listed}"
    );

    let d2 = start(&scripts, &mock, &db);
    assert!(
        eventually(WAIT, || !mock.texts(PUSH).is_empty()).await,
        "the timer never ran after the restart:\n{}",
        d2.stderr.text()
    );
    assert!(
        eventually(WAIT, || schedules(&scripts, &db)
            .contains("no pending timers"))
        .await,
        "{}",
        schedules(&scripts, &db)
    );
    assert_eq!(mock.texts(PUSH), ["ring milk"]);
    let push = &mock.accepted(PUSH)[0];
    assert_eq!(push.body["to"], "U1");
    assert!(push.retry_key().is_some());
}

/// `linebotd_timer_runs_total` for `reminder.rhai` and `outcome` on the daemon's /metrics.
async fn timer_runs(d: &Daemon, outcome: &str) -> f64 {
    let text = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series =
        format!("linebotd_timer_runs_total{{script=\"reminder.rhai\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Waits until `timer_runs(d, outcome)` is `want`; false if it never is.
async fn timer_runs_reach(d: &Daemon, outcome: &str, want: f64) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if timer_runs(d, outcome).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A timer of `REMINDER` as the daemon stores it, due at `due_ms`.
fn stored_timer(id: &str, text: &str, due_ms: i64) -> linebotd::store::Timer {
    linebotd::store::Timer {
        id: id.to_owned(),
        script: "reminder.rhai".to_owned(),
        function: "remind".to_owned(),
        data: serde_json::json!({ "to": "U1", "text": text }),
        due_ms,
        created_ms: due_ms - 1_000,
    }
}

#[tokio::test]
async fn at_start_a_missed_timer_runs_if_younger_than_the_grace_period_else_is_dropped() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("reminder.rhai", REMINDER)]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    // What a daemon that went down leaves behind: timers that fell due while it was down, one
    // 5 s ago and one 2 hours ago (the grace period is 600 s by default).
    {
        let store = linebotd::store::open(&db.display().to_string()).unwrap();
        let now = linebotd::store::now_ms();
        for timer in [
            stored_timer("recent-timer", "recent", now - 5_000),
            stored_timer("stale-timer", "stale", now - 7_200_000),
        ] {
            assert!(store.timer_add(&timer, 10).unwrap());
        }
    }
    let d = start(&scripts, &mock, &db);
    let line = d.stderr.wait_for("timer stale-timer", WAIT);
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains("dropped") && l.contains("schedule_grace_secs")),
        "{}",
        d.stderr.text()
    );
    assert!(
        eventually(WAIT, || schedules(&scripts, &db)
            .contains("no pending timers"))
        .await,
        "{}",
        schedules(&scripts, &db)
    );
    assert!(
        eventually(WAIT, || !mock.texts(PUSH).is_empty()).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(mock.texts(PUSH), ["recent"]);
    // The one that ran is counted; the late one counts as a skipped schedule, not a run.
    assert!(
        timer_runs_reach(&d, "ran", 1.0).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(timer_runs(&d, "gone").await, 0.0);
}

#[tokio::test]
async fn a_timer_whose_function_was_removed_is_logged_and_dropped() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("reminder.rhai", REMINDER)]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let d = start(&scripts, &mock, &db);
    assert_eq!(say(&d, "E1", "U1", "gone").await, 200);
    assert!(eventually(WAIT, || mock.texts(REPLY).len() == 1).await);
    let id = mock.texts(REPLY)[0].clone();
    scripts.write(
        "reminder.rhai",
        r#"fn on_message(e) { reply(e, "no more reminders"); }"#,
    );
    let line = d.stderr.wait_for("no longer defines remind(data)", WAIT);
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains(&id) && l.contains("reminder.rhai")),
        "{}",
        d.stderr.text()
    );
    assert!(mock.texts(PUSH).is_empty());
    assert!(
        timer_runs_reach(&d, "gone", 1.0).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(timer_runs(&d, "ran").await, 0.0);
}

const MISTAKES: &str = r#"
fn on_message(e) {
    let t = e.message.text;
    if t == "typo" { later(10, "remindr", #{}); }
    if t == "negative" { later(-1, "remind", ()); }
    if t == "far" { later(400 * 86400, "remind", ()); }
    if t == "not a name" { later(1, 42, ()); }
    if t == "arity" { later(1, "two", ()); }
    if t == "at text" { at("soon", "remind", ()); }
    if t == "delay text" { later("10", "remind", ()); }
    if t == "cancel unknown" { if cancel_later("nope") { throw "cancelled nothing"; } }
}
fn remind(data) {}
fn two(a, b) {}
"#;

#[tokio::test]
async fn bad_calls_are_errors_at_the_call_that_say_what_is_allowed() {
    let scripts = Scripts::new(&[("reminder.rhai", MISTAKES)]);
    let setup = linebotd::dev::local::LocalSetup::default();
    let bot = linebotd::dev::local::LocalBot::start(scripts.path(), &setup)
        .await
        .unwrap();
    let cases = [
        (
            "typo",
            "reminder.rhai:4",
            "no function remindr(data) in reminder.rhai; did you mean remind?",
        ),
        ("negative", "reminder.rhai:5", "from 0 to 31536000 seconds"),
        ("far", "reminder.rhai:6", "from 0 to 31536000 seconds"),
        (
            "not a name",
            "reminder.rhai:7",
            "by its name as a string (\"remind\"), not a number",
        ),
        ("arity", "reminder.rhai:8", "two takes 2 parameters"),
        (
            "at text",
            "reminder.rhai:9",
            "milliseconds since 1970 as an integer (e.g. now() + 60000), not a string",
        ),
        (
            "delay text",
            "reminder.rhai:10",
            "a number of seconds, not a string",
        ),
    ];
    let outcome = tokio::task::spawn_blocking(move || {
        let mut errors = Vec::new();
        for text in cases.iter().map(|c| c.0).chain(["cancel unknown"]) {
            let event = serde_json::json!({
                "type": "message", "replyToken": "r", "timestamp": 1, "mode": "active",
                "source": {"type": "user", "userId": "U1"},
                "message": {"type": "text", "id": "1", "text": text},
            });
            let report = bot.send_blocking(event).unwrap();
            errors.push(
                report
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>(),
            );
        }
        (errors, bot.pending_timers().unwrap())
    })
    .await
    .unwrap();
    let (errors, pending) = outcome;
    for ((text, at, expected), got) in cases.iter().zip(&errors) {
        assert!(
            got.len() == 1 && got[0].contains(at) && got[0].contains(expected),
            "{text}: {got:?}"
        );
    }
    assert!(errors[cases.len()].is_empty(), "{:?}", errors[cases.len()]);
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test]
async fn a_replayed_event_does_not_set_its_timers_twice() {
    let scripts = Scripts::new(&[(
        "reminder.rhai",
        r#"
fn on_message(e) {
    later(60, "remind", "first");
    later(60, "remind", "second");
}
fn remind(data) {}
"#,
    )]);
    let setup = linebotd::dev::local::LocalSetup::default();
    let bot = linebotd::dev::local::LocalBot::start(scripts.path(), &setup)
        .await
        .unwrap();
    let event = |id: &str| {
        serde_json::json!({
            "type": "message", "replyToken": "r", "timestamp": 1, "mode": "active",
            "webhookEventId": id,
            "source": {"type": "user", "userId": "U1"},
            "message": {"type": "text", "id": "1", "text": "hi"},
        })
    };
    let pending = tokio::task::spawn_blocking(move || {
        // The same event twice (a replay after a crash), then another event.
        for id in ["EV1", "EV1", "EV2"] {
            let report = bot.send_blocking(event(id)).unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
        }
        bot.pending_timers().unwrap()
    })
    .await
    .unwrap();
    let data: Vec<String> = pending.iter().map(|t| t.data.to_string()).collect();
    assert_eq!(data.len(), 4, "{pending:?}");
    assert_eq!(
        data.iter().filter(|d| *d == "\"first\"").count(),
        2,
        "{pending:?}"
    );
}
