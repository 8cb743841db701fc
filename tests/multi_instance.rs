//! Several instances of the real binary on one PostgreSQL database (a throwaway cluster, see
//! `support/postgres.rs`), each on its own port, as behind a load balancer: every acknowledged
//! event handled once and each user's in order through a `kill -9`, schedules that fire once
//! per due time between all of them, pushes delivered once through LINE failures and a kill,
//! and a database outage that turns webhooks away with 503 until it ends.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::daemon::{eventually, post_signed, run_command, text_event_body, Daemon, Scripts};
use support::mock_line::MockLine;
use support::postgres::Cluster;

const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(60);
const PUSH_TEXT: &str = r#"fn on_message(e) { push(e.source.userId, e.message.text); }"#;
/// [`PUSH_TEXT`] that also logs each run, to count runs and not only what LINE accepted.
const LOG_AND_PUSH: &str = r#"
fn on_message(e) {
    log("handled " + e.message.text + ";");
    push(e.source.userId, e.message.text);
}
"#;

/// One instance on the database at `url`, with a short lease so takeovers are quick.
fn instance(scripts: &Scripts, mock: &MockLine, url: &str) -> Daemon {
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", url)
        .env("LINEBOTD_STORE_LEASE", "2")
        .env("LINEBOTD_STORE_POOL", "6")
        .env("RUST_LOG", "info");
    Daemon::spawn(cmd)
}

fn kill_9(d: &mut Daemon) {
    d.child.kill().expect("SIGKILL");
    d.child.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_handle_each_acknowledged_event_once_and_in_order_through_a_kill_9() {
    const USERS: usize = 50;
    const PER_USER: usize = 12;
    let cluster = Cluster::start();
    let db = cluster.create_database();
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("push.rhai", LOG_AND_PUSH)]);
    let mut daemons: Vec<Daemon> = (0..3).map(|_| instance(&scripts, &mock, &db)).collect();
    let urls: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
        daemons.iter().map(|d| d.url("/callback")).collect(),
    ));

    // Each user sends its messages one after the other, each to the next instance round the
    // ring, as a load balancer would; a message an instance did not acknowledge (it was
    // killed) goes again, with the same webhook event id, to the next one, as LINE redelivers.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut users = Vec::new();
    for u in 0..USERS {
        let (acked, urls) = (acked.clone(), urls.clone());
        users.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut turn = u;
            for i in 0..PER_USER {
                let text = format!("U{u}:{i}");
                let body = text_event_body(&format!("E{u}-{i}"), &format!("U{u}"), &text);
                for _ in 0..20 {
                    turn += 1;
                    let url = urls.lock().unwrap()[turn % 3].clone();
                    if post_signed(&client, &url, &body).await == 200 {
                        acked.lock().unwrap().push(text.clone());
                        break;
                    }
                }
            }
        }));
    }
    assert!(eventually(WAIT, || acked.lock().unwrap().len() >= USERS * PER_USER / 3).await);
    kill_9(&mut daemons[1]);
    let restarted = instance(&scripts, &mock, &db);
    urls.lock().unwrap()[1] = restarted.url("/callback");
    let killed = std::mem::replace(&mut daemons[1], restarted);
    for u in users {
        u.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        USERS * PER_USER,
        "a message was never acknowledged"
    );

    let all_pushed = eventually(WAIT, || mock.texts(PUSH).len() >= acked.len()).await;
    let pushed = mock.texts(PUSH);
    let logs = || {
        daemons
            .iter()
            .map(|d| d.stderr.text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert!(
        all_pushed,
        "{} of {} pushed\n{}",
        pushed.len(),
        acked.len(),
        logs()
    );
    let mut per_user: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for text in &pushed {
        let (user, i) = text.split_once(':').expect("U:i");
        per_user
            .entry(user.to_owned())
            .or_default()
            .push(i.parse().expect("a number"));
    }
    for (user, order) in &per_user {
        let expected: Vec<usize> = (0..PER_USER).collect();
        assert_eq!(
            order, &expected,
            "{user}'s messages, handled once each and in order"
        );
    }
    assert_eq!(per_user.len(), USERS);
    // Each event ran once, but for those the killed instance had started: they ran again on
    // the instance that took them over, as after any crash.
    let runs = |d: &Daemon| -> Vec<String> {
        d.stderr
            .all()
            .iter()
            .filter_map(|l| Some(l.split("handled ").nth(1)?.split(';').next()?.to_owned()))
            .collect()
    };
    let killed_runs = runs(&killed);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in daemons.iter().flat_map(runs).chain(killed_runs.clone()) {
        *counts.entry(text).or_default() += 1;
    }
    for text in &acked {
        let n = counts.get(text).copied().unwrap_or(0);
        let replayed = n == 2 && killed_runs.contains(text);
        assert!(n == 1 || replayed, "{text} ran {n} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_schedule_on_three_instances_fires_each_second_once() {
    const SCRIPT: &str = r#"
const SCHEDULES = [#{ cron: "* * * * * *", call: "tick" }];
fn tick() { }
"#;
    let cluster = Cluster::start();
    let db = cluster.create_database();
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("clock.rhai", SCRIPT)]);
    let daemons: Vec<Daemon> = (0..3).map(|_| instance(&scripts, &mock, &db)).collect();
    let due_times = || -> Vec<i64> {
        daemons
            .iter()
            .flat_map(|d| d.stderr.all())
            .filter(|l| l.contains("schedule fired"))
            .filter_map(|l| {
                let rest = l.split("due_ms=").nth(1)?;
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let started = Instant::now();
    let window = Duration::from_secs(30);
    let mut seen = 0;
    while started.elapsed() < window {
        let now = due_times().len();
        assert!(eventually(Duration::from_secs(5), || due_times().len() > now).await);
        seen = due_times().len();
    }
    let mut times = due_times();
    times.sort_unstable();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for t in &times {
        *counts.entry(*t).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "due times run more than once: {twice:?}");
    assert!(seen >= 28, "only {seen} runs in 30 s");
    // Every second between the first run and the last, none missed.
    let (first, last) = (times[0], times[times.len() - 1]);
    let missing: Vec<i64> = (first / 1000..=last / 1000)
        .map(|s| s * 1000)
        .filter(|t| !counts.contains_key(t))
        .collect();
    assert!(missing.is_empty(), "seconds that never fired: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_delivered_once_through_line_failures_and_a_killed_instance() {
    let cluster = Cluster::start();
    let db = cluster.create_database();
    let mock = MockLine::start().await;
    mock.fail_next(PUSH, 500, 1_000_000);
    let scripts = Scripts::new(&[("push.rhai", PUSH_TEXT)]);
    let mut daemons: Vec<Daemon> = (0..3).map(|_| instance(&scripts, &mock, &db)).collect();
    let client = reqwest::Client::new();
    let mut texts = Vec::new();
    for i in 0..30 {
        let text = format!("U{}:{i}", i % 5);
        let body = text_event_body(&format!("P{i}"), &format!("U{}", i % 5), &text);
        let status = post_signed(&client, &daemons[i % 3].url("/callback"), &body).await;
        assert_eq!(status, 200);
        texts.push(text);
    }
    // LINE fails every push; the instances keep retrying. Kill one of them mid-retry.
    assert!(eventually(WAIT, || mock.requests_to(PUSH).len() >= 10).await);
    kill_9(&mut daemons[0]);
    assert!(mock.accepted(PUSH).is_empty());
    mock.heal(PUSH);
    let arrived = eventually(WAIT, || mock.texts(PUSH).len() >= texts.len()).await;
    let pushed = mock.texts(PUSH);
    assert!(
        arrived,
        "{} of {} pushed\n{}",
        pushed.len(),
        texts.len(),
        daemons[1].stderr.text()
    );
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &pushed {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "pushed twice: {counts:?}");
    // Each recipient's pushes in the order of its messages.
    for u in 0..5 {
        let prefix = format!("U{u}:");
        let mine: Vec<&String> = pushed.iter().filter(|t| t.starts_with(&prefix)).collect();
        let expected: Vec<&String> = texts.iter().filter(|t| t.starts_with(&prefix)).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_503_while_the_database_is_down_and_work_again_once_it_is_back() {
    let cluster = Cluster::start();
    let db = cluster.create_database();
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("push.rhai", PUSH_TEXT)]);
    let d = instance(&scripts, &mock, &db);
    let client = reqwest::Client::new();
    let say = |id: &str, text: &str| text_event_body(id, "U1", text);
    assert_eq!(
        post_signed(&client, &d.url("/callback"), &say("D0", "before")).await,
        200
    );
    assert!(eventually(WAIT, || mock.texts(PUSH) == ["before"]).await);

    cluster.stop();
    let status = post_signed(&client, &d.url("/callback"), &say("D1", "during")).await;
    assert_eq!(
        status, 503,
        "LINE must redeliver what the store could not take"
    );
    let ready = |url: String| async move {
        reqwest::get(url)
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(ready(d.url("/readyz")).await, 503);

    cluster.restart();
    let mut recovered = false;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if ready(d.url("/readyz")).await == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "not ready again\n{}", d.stderr.text());
    // LINE's redelivery of the refused webhook now goes through.
    assert_eq!(
        post_signed(&client, &d.url("/callback"), &say("D1", "during")).await,
        200
    );
    assert!(eventually(WAIT, || mock.texts(PUSH) == ["before", "during"]).await);
}

/// `outbox` and `schedules` read a PostgreSQL store as they do a SQLite file: they took the URL
/// for a missing file ("no store at postgres://…").
#[test]
fn outbox_and_schedules_list_what_a_postgres_store_holds() {
    let cluster = Cluster::start();
    let url = cluster.create_database();
    let store = linebotd::store::open(&url).expect("store");
    let now = linebotd::store::now_ms();
    store
        .outbox_enqueue(&linebotd::store::NewDelivery {
            retry_key: "key-1".to_owned(),
            kind: linebotd::store::DeliveryKind::Push,
            payload: serde_json::json!({"to": "U1", "messages": [{"type": "text", "text": "hi"}]}),
            source: "bot.rhai".to_owned(),
            created_ms: now,
        })
        .expect("enqueue");
    let timer = linebotd::store::Timer {
        id: "timer-1".to_owned(),
        script: "bot.rhai".to_owned(),
        function: "remind".to_owned(),
        data: serde_json::json!(null),
        due_ms: now + 3_600_000,
        created_ms: now,
    };
    store.timer_add(&timer, 10).expect("timer");
    let scripts = Scripts::new(&[("bot.rhai", "fn remind(d) { }\n")]);
    let linebotd = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_linebotd"))
            .args(args)
            .current_dir(scripts.path())
            .output()
            .expect("run linebotd");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}:\n{text}");
        text
    };
    let outbox = linebotd(&["outbox", "--store", &url]);
    assert!(
        outbox.contains("key-1") && outbox.contains("pending"),
        "{outbox}"
    );
    let dir = scripts.path().to_str().expect("utf-8 path");
    let schedules = linebotd(&["schedules", "--store", &url, "--scripts", dir]);
    assert!(
        schedules.contains("timer-1") && schedules.contains("remind"),
        "{schedules}"
    );
}
