//! Schedules through the real binary: runs, reloads, overlap, make-up runs, load errors.

mod support;

use std::time::Duration;

use support::daemon::{eventually, run_command, Daemon, Scripts};
use support::mock_line::MockLine;

const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(10);

/// How many accepted pushes carried `text`.
fn pushes_of(mock: &MockLine, text: &str) -> usize {
    mock.texts(PUSH).iter().filter(|t| *t == text).count()
}

fn every_second(text: &str) -> String {
    format!(
        "const SCHEDULES = [#{{ cron: \"* * * * * *\", call: \"tick\" }}];\nfn tick() {{ push(\"Uops\", \"{text}\"); }}\n"
    )
}

fn start(scripts: &Scripts, mock: &MockLine, store: &std::path::Path, grace_secs: u64) -> Daemon {
    let config = scripts.path().join("linebotd.toml");
    std::fs::write(&config, format!("schedule_grace_secs = {grace_secs}\n")).unwrap();
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", store)
        .env("LINEBOTD_CONFIG", &config);
    Daemon::spawn(cmd)
}

#[tokio::test]
async fn an_every_second_schedule_pushes_follows_edits_and_stops_when_deleted() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("tick.rhai", &every_second("one"))]);
    let store = tempfile::tempdir().unwrap();
    let d = start(&scripts, &mock, &store.path().join("s.db"), 600);
    assert!(
        eventually(WAIT, || pushes_of(&mock, "one") >= 2).await,
        "{}",
        d.stderr.text()
    );

    scripts.write("tick.rhai", &every_second("two"));
    assert!(
        eventually(WAIT, || pushes_of(&mock, "two") >= 2).await,
        "{}",
        d.stderr.text()
    );

    scripts.remove("tick.rhai");
    assert!(d.stderr.wait_for("script removed", WAIT).is_some());
    // Let a run that had already started finish, then nothing more may arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_delete = mock.texts(PUSH).len();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        mock.texts(PUSH).len(),
        after_delete,
        "a deleted script's schedule kept running"
    );
}

#[tokio::test]
async fn a_run_longer_than_its_interval_is_skipped_not_stacked() {
    let mock = MockLine::start().await;
    mock.set_delay("/v2/bot/profile/Uslow", Duration::from_millis(2500));
    let scripts = Scripts::new(&[(
        "slow.rhai",
        "const SCHEDULES = [#{ cron: \"* * * * * *\", call: \"slow\" }];\nfn slow() { profile(\"Uslow\"); }\n",
    )]);
    let store = tempfile::tempdir().unwrap();
    let d = start(&scripts, &mock, &store.path().join("s.db"), 600);
    assert!(
        d.stderr.wait_for("skip", Duration::from_secs(8)).is_some(),
        "no skip logged:\n{}",
        d.stderr.text()
    );
    let calls = mock.requests_to("/v2/bot/profile/Uslow");
    for pair in calls.windows(2) {
        let gap = pair[1].received_at.duration_since(pair[0].received_at);
        assert!(
            gap >= Duration::from_millis(2400),
            "runs overlapped: {gap:?} apart"
        );
    }
}

/// A daily 00:00 UTC schedule whose last run was two days ago: the missed run of today.
fn seed_missed_run(db: &std::path::Path) {
    let store = linebotd::store::open(db.to_str().unwrap()).unwrap();
    let two_days_ago = chrono::Utc::now().timestamp_millis() - 2 * 24 * 3600 * 1000;
    store
        .schedule_claim_run("daily.rhai#0:daily", two_days_ago)
        .unwrap();
}

const DAILY: &str = r#"
const SCHEDULES = [
    #{ cron: "0 0 * * *", call: "daily" },
    #{ cron: "* * * * * *", call: "tick" },
];
fn daily() { push("Uops", "daily"); }
fn tick() { push("Uops", "tick"); }
"#;

#[tokio::test]
async fn a_missed_run_is_made_up_once_within_the_grace_period() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("daily.rhai", DAILY)]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("s.db");
    seed_missed_run(&db);
    let d = start(&scripts, &mock, &db, 2 * 24 * 3600);
    assert!(
        eventually(WAIT, || pushes_of(&mock, "tick") >= 2).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(pushes_of(&mock, "daily"), 1);
    drop(d);
    // Restarting again does not make it up a second time: the last run is recorded.
    mock.clear();
    let d = start(&scripts, &mock, &db, 2 * 24 * 3600);
    assert!(
        eventually(WAIT, || pushes_of(&mock, "tick") >= 2).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(pushes_of(&mock, "daily"), 0);
}

#[tokio::test]
async fn a_missed_run_older_than_the_grace_period_is_not_made_up() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("daily.rhai", DAILY)]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("s.db");
    seed_missed_run(&db);
    // Today's 00:00 is more than a second ago unless the test runs in the first second of the day.
    let d = start(&scripts, &mock, &db, 1);
    assert!(
        eventually(WAIT, || pushes_of(&mock, "tick") >= 2).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(pushes_of(&mock, "daily"), 0);
}

/// `linebotd schedules --scripts DIR`: exit code and stdout.
fn schedules_command(dir: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(support::daemon::bin())
        .args(["schedules", "--scripts"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn bad_entries_are_load_errors_naming_the_file_and_entry() {
    let cases = [
        (
            "zone.rhai",
            r#"const SCHEDULES = [#{ cron: "0 9 * * *", call: "f", tz: "Asia/Tokio" }]; fn f() {}"#,
            "unknown time zone \"Asia/Tokio\"",
        ),
        (
            "cron.rhai",
            r#"const SCHEDULES = [#{ cron: "61 * * * *", call: "f" }]; fn f() {}"#,
            "invalid cron expression",
        ),
        (
            "missing.rhai",
            r#"const SCHEDULES = [#{ cron: "0 9 * * *", call: "nope" }];"#,
            "function nope() is not defined",
        ),
        (
            "arity.rhai",
            r#"const SCHEDULES = [#{ cron: "0 9 * * *", call: "f" }]; fn f(x) {}"#,
            "scheduled functions take none",
        ),
    ];
    for (file, text, expected) in cases {
        let scripts = Scripts::new(&[(file, text)]);
        let (code, stdout) = schedules_command(scripts.path());
        assert_eq!(code, Some(1), "{file}: {stdout}");
        assert!(
            stdout.contains(file) && stdout.contains("SCHEDULES[0]") && stdout.contains(expected),
            "{file}: {stdout}"
        );
    }
}

#[test]
fn schedules_command_lists_zone_and_next_run() {
    let scripts = Scripts::new(&[(
        "m.rhai",
        r#"const SCHEDULES = [#{ cron: "0 9 * * *", call: "morning", tz: "Asia/Tokyo" }]; fn morning() {}"#,
    )]);
    let (code, stdout) = schedules_command(scripts.path());
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("m.rhai")
            && stdout.contains("morning()")
            && stdout.contains("Asia/Tokyo")
            && stdout.contains("09:00:00 JST"),
        "{stdout}"
    );
}
