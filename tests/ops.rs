//! Operating linebotd through the real binary: /metrics, /readyz, the admin token, JSON logs
//! without secrets, and a graceful SIGTERM in the middle of a burst.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use support::daemon::{
    eventually, post_signed, run_command, say, start_with_env, text_event_body, Daemon, Scripts,
    SECRET, TOKEN,
};
use support::mock_line::MockLine;

const REPLY: &str = "/v2/bot/message/reply";
const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(10);

/// Pushes on "push", throws on "boom", does nothing otherwise.
const BOT: &str = r#"
fn on_message(event) {
    let text = event.message.text;
    if text == "boom" { throw "boom on purpose"; }
    if text == "push" { push(event.source.userId, "pushed"); }
}
"#;

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut rb = reqwest::Client::new().get(url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb.send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Parses Prometheus text into `series (name + labels as written) → value`.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(d: &Daemon) -> HashMap<String, f64> {
    let (status, text) = get(&d.url("/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    parse_metrics(&text)
}

fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_webhooks_handlers_errors_and_line_retries() {
    let mock = MockLine::start().await;
    mock.fail_next(PUSH, 500, 1);
    let scripts = Scripts::new(&[("bot.rhai", BOT)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);

    assert_eq!(say(&d, "M1", "U1", "push").await, 200);
    assert_eq!(say(&d, "M2", "U2", "boom").await, 200);
    let bad = reqwest::Client::new()
        .post(d.url("/callback"))
        .header(
            "x-line-signature",
            "bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ==",
        )
        .body(text_event_body("M3", "U3", "push"))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 401);
    assert!(
        eventually(WAIT, || mock.accepted(PUSH).len() == 1).await,
        "{}",
        d.stderr.text()
    );

    // Done-marks and the outbox's sent-mark are written just after; poll for the settled state.
    let deadline = std::time::Instant::now() + WAIT;
    let m = loop {
        let m = scrape(&d).await;
        let settled = value(&m, "linebotd_inbox_backlog") == 0.0
            && value(&m, "linebotd_outbox_pending") == 0.0
            && value(&m, "linebotd_handler_duration_seconds_count{script=\"bot.rhai\",handler=\"on_message\"}") == 2.0;
        if settled || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let expect = [
        ("linebotd_webhooks_total{outcome=\"accepted\"}", 2.0),
        ("linebotd_webhooks_total{outcome=\"bad_signature\"}", 1.0),
        ("linebotd_webhooks_total{outcome=\"duplicate\"}", 0.0),
        ("linebotd_events_total{type=\"message\"}", 2.0),
        (
            "linebotd_handler_runs_total{script=\"bot.rhai\",handler=\"on_message\",outcome=\"ok\"}",
            1.0,
        ),
        (
            "linebotd_handler_runs_total{script=\"bot.rhai\",handler=\"on_message\",outcome=\"error\"}",
            1.0,
        ),
        (
            "linebotd_handler_duration_seconds_count{script=\"bot.rhai\",handler=\"on_message\"}",
            2.0,
        ),
        (
            "linebotd_handler_duration_seconds_bucket{script=\"bot.rhai\",handler=\"on_message\",le=\"+Inf\"}",
            2.0,
        ),
        ("linebotd_script_errors_total{script=\"bot.rhai\",kind=\"runtime\"}", 1.0),
        ("linebotd_line_api_calls_total{endpoint=\"push\",status=\"500\"}", 1.0),
        ("linebotd_line_api_calls_total{endpoint=\"push\",status=\"200\"}", 1.0),
        ("linebotd_line_api_duration_seconds_count{endpoint=\"push\"}", 2.0),
        ("linebotd_line_api_retries_total{endpoint=\"push\"}", 1.0),
        ("linebotd_outbox_pending", 0.0),
        ("linebotd_outbox_failed", 0.0),
        ("linebotd_inbox_backlog", 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(value(&m, series), want, "{series} in\n{m:#?}");
    }
    // No reply was made: nothing else reached LINE.
    assert_eq!(
        m.keys()
            .filter(|k| k.starts_with("linebotd_line_api_calls_total"))
            .count(),
        2,
        "{m:#?}"
    );
}

#[tokio::test]
async fn redelivered_webhook_counts_as_duplicate() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bot.rhai", BOT)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "D1", "U1", "hi").await, 200);
    assert_eq!(say(&d, "D1", "U1", "hi").await, 200);
    let m = scrape(&d).await;
    assert_eq!(
        value(&m, "linebotd_webhooks_total{outcome=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "linebotd_webhooks_total{outcome=\"duplicate\"}"),
        1.0
    );
    assert_eq!(value(&m, "linebotd_events_total{type=\"message\"}"), 1.0);
}

#[tokio::test]
async fn readyz_names_the_broken_script_until_it_is_fixed() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bad.rhai", "fn on_message(e) { reply(e, ; }\n")]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);

    let (status, body) = get(&d.url("/readyz"), None).await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["status"], "not ready");
    let problem = &body["problems"][0];
    assert_eq!(problem["script"], "bad.rhai", "{body}");
    let error = problem["error"].as_str().unwrap_or_default();
    assert!(error.contains("bad.rhai:1:"), "{body}");
    let m = scrape(&d).await;
    assert_eq!(
        value(
            &m,
            "linebotd_script_errors_total{script=\"bad.rhai\",kind=\"compile\"}"
        ),
        1.0
    );

    scripts.write_by_rename("bad.rhai", "fn on_message(e) { reply(e, \"ok\"); }\n");
    let url = d.url("/readyz");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(&url, None).await;
        if status == 200 {
            assert_eq!(
                serde_json::from_str::<Value>(&body).expect("json")["status"],
                "ready"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still not ready: {body}\n{}",
            d.stderr.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = scrape(&d).await;
    assert_eq!(value(&m, "linebotd_reloads_total{outcome=\"ok\"}"), 1.0);
}

#[tokio::test]
async fn admin_token_guards_metrics_and_readyz_details() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bad.rhai", "fn on_message(e) { reply(e, ; }\n")]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[("LINEBOTD_ADMIN_TOKEN", "adm1n-t0ken")],
    );

    assert_eq!(get(&d.url("/metrics"), None).await.0, 401);
    assert_eq!(get(&d.url("/metrics"), Some("wrong")).await.0, 401);
    let (status, text) = get(&d.url("/metrics"), Some("adm1n-t0ken")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE linebotd_webhooks_total counter"),
        "{text}"
    );

    // Without the token: the bare status only, no script names or errors.
    let (status, body) = get(&d.url("/readyz"), None).await;
    assert_eq!(status, 503);
    assert_eq!(body, r#"{"status":"not ready"}"#);
    assert_eq!(get(&d.url("/readyz"), Some("wrong")).await.0, 401);
    let (status, body) = get(&d.url("/readyz"), Some("adm1n-t0ken")).await;
    assert_eq!(status, 503);
    assert!(body.contains("bad.rhai"), "{body}");

    assert_eq!(get(&d.url("/healthz"), None).await.0, 200);
}

#[tokio::test]
async fn json_logs_carry_event_ids_and_never_secrets() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[(
        "bot.rhai",
        r#"fn on_message(e) { log("got " + e.message.text); reply(e, "hi"); }"#,
    )]);
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.arg("--log-format").arg("json");
    // Debug everywhere, so any secret logged at any level would show.
    cmd.env("RUST_LOG", "debug");
    let mut d = Daemon::spawn(cmd);

    let body = text_event_body("JSONEVT1", "U1", "hello");
    let signature = support::daemon::sign(body.as_bytes());
    assert_eq!(say(&d, "JSONEVT1", "U1", "hello").await, 200);
    let forged = support::daemon::sign(b"something else");
    let status = reqwest::Client::new()
        .post(d.url("/callback"))
        .header("x-line-signature", &forged)
        .body(body.clone())
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status.as_u16(), 401);
    assert!(eventually(WAIT, || mock.accepted(REPLY).len() == 1).await);
    assert!(d.stderr.wait_for("got hello", WAIT).is_some());
    assert!(d.terminate(WAIT).is_some_and(|s| s.success()));

    let lines = d.stderr.all();
    let mut handler_line = None;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in ["timestamp", "level", "message"] {
            assert!(v.get(field).is_some(), "no {field}: {line}");
        }
        if v["message"] == "got hello" {
            handler_line = Some(v);
        }
    }
    let handler_line = handler_line.expect("the script's log line");
    assert_eq!(handler_line["webhookEventId"], "JSONEVT1", "{handler_line}");
    assert_eq!(handler_line["script"], "bot.rhai", "{handler_line}");
    assert_eq!(handler_line["handler"], "on_message", "{handler_line}");

    let all = format!("{}\n{}", lines.join("\n"), d.stdout.text());
    for secret in [TOKEN, SECRET, signature.as_str(), forged.as_str()] {
        assert!(!all.contains(secret), "{secret} appears in the logs");
    }
}

#[tokio::test]
async fn sigterm_during_a_burst_answers_503_and_loses_nothing() {
    let mock = MockLine::start().await;
    mock.set_delay(REPLY, Duration::from_millis(300));
    let scripts = Scripts::new(&[("bot.rhai", r#"fn on_message(e) { reply(e, "ok"); }"#)]);
    let state = tempfile::tempdir().expect("temp dir");
    let db = state.path().join("linebotd.db");
    let db = db.to_str().expect("utf-8 path");
    let mut d = start_with_env(scripts.path(), &mock.url(), &[("LINEBOTD_STORE", db)]);

    let client = reqwest::Client::new();
    let url = d.url("/callback");
    // Four conversations, five events each: each conversation needs ~1.5 s of handler time.
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let id = format!("B{i}");
            tokio::spawn(async move {
                let body = text_event_body(&id, &format!("U{}", i % 4), "hi");
                (id, post_signed(&client, &url, &body).await)
            })
        })
        .collect();
    let mut answered = Vec::new();
    for task in burst {
        answered.push(task.await.expect("task"));
    }
    assert!(answered.iter().all(|(_, s)| *s == 200), "{answered:?}");

    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(d.child.id().to_string())
        .status();
    assert!(d
        .stderr
        .wait_for("shutdown signal received", WAIT)
        .is_some());
    for i in 0..5 {
        let id = format!("after{i}");
        let status = post_signed(&client, &url, &text_event_body(&id, "U9", "late")).await;
        assert_eq!(status, 503, "request after SIGTERM: {}", d.stderr.text());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Ok(Some(status)) = d.child.try_wait() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}\n{}", d.stderr.text());
    assert!(d.stderr.wait_for("linebotd stopped", WAIT).is_some());

    // Restart on the same store: whatever was left runs now; nothing runs twice.
    let d2 = start_with_env(scripts.path(), &mock.url(), &[("LINEBOTD_STORE", db)]);
    let want: HashSet<String> = answered.iter().map(|(id, _)| format!("rt-{id}")).collect();
    let replied = || -> HashSet<String> {
        mock.accepted(REPLY)
            .iter()
            .filter_map(|r| r.body["replyToken"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        eventually(WAIT, || replied().is_superset(&want)).await,
        "missing replies: {:?}\n{}",
        want.difference(&replied()).collect::<Vec<_>>(),
        d2.stderr.text()
    );
    // The late requests were refused, so LINE would redeliver them; they were never handled.
    assert!(replied().iter().all(|t| !t.starts_with("rt-after")));
    let attempts = mock.requests_to(REPLY).len();
    assert_eq!(attempts, want.len(), "a reply was attempted twice");
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let mock = MockLine::start().await;
    mock.set_delay(REPLY, Duration::from_secs(5));
    let scripts = Scripts::new(&[("bot.rhai", r#"fn on_message(e) { reply(e, "ok"); }"#)]);
    let mut d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "S1", "U1", "hi").await, 200);
    assert!(mock.wait_for(1, WAIT).await, "the slow reply started");
    let term = |pid: u32| {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    };
    term(d.child.id());
    assert!(d
        .stderr
        .wait_for("shutdown signal received", WAIT)
        .is_some());
    let started = std::time::Instant::now();
    term(d.child.id());
    let status = d.terminate(Duration::from_secs(3)).expect("exited");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(status.code(), Some(130), "{}", d.stderr.text());
}
