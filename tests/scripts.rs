//! The script runtime through the real binary: handlers, the host API, limits, hot reload.

mod support;

use std::time::Duration;

use serde_json::json;
use support::daemon::{
    eventually, post_signed, run_command, say, start_with_env, text_event_body, Daemon, Scripts,
    TOKEN,
};
use support::mock_line::MockLine;

const REPLY: &str = "/v2/bot/message/reply";
const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(10);

const ECHO: &str = r#"fn on_message(event) { reply(event, event.message.text); }"#;

#[tokio::test]
async fn echo_reply_reaches_line_with_token_and_text() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "E1", "U1", "hello 🤨").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    let r = &mock.accepted(REPLY)[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.body,
        json!({"replyToken": "rt-E1", "messages": [{"type": "text", "text": "hello 🤨"}], "notificationDisabled": false})
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn the_shipped_echo_bot_replies_and_greets_followers() {
    let mock = MockLine::start().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let d = Daemon::spawn(run_command(&dir, &mock.url()));
    assert_eq!(say(&d, "S1", "U1", "hi there").await, 200);
    let follow = json!({"events": [{"type": "follow", "webhookEventId": "S2", "replyToken": "rt-f", "timestamp": 1, "source": {"type": "user", "userId": "U2"}, "follow": {"isUnblocked": false}}]}).to_string();
    assert_eq!(
        post_signed(&reqwest::Client::new(), &d.url("/callback"), &follow).await,
        200
    );
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 2).await,
        "{}",
        d.stderr.text()
    );
    let replies = mock.accepted(REPLY);
    let echo = replies
        .iter()
        .find(|r| r.body["replyToken"] == "rt-S1")
        .expect("echo reply");
    assert_eq!(echo.body["messages"][0]["text"], "hi there");
    let greet = replies
        .iter()
        .find(|r| r.body["replyToken"] == "rt-f")
        .expect("greeting");
    assert!(greet.body["messages"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Thanks for adding me"));
}

#[tokio::test]
async fn every_script_with_the_handler_runs_in_file_name_order_then_on_event() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[
        // A handler that changes its event changes only its own copy.
        (
            "b.rhai",
            r#"fn on_message(e) { e.type = "changed"; e.message.text = "changed"; push("U9", "b"); }"#,
        ),
        (
            "a.rhai",
            r#"fn on_message(e) { push("U9", "a"); } fn on_event(e) { push("U9", "a-any " + e.type + " " + e.message?.text); }"#,
        ),
        (
            "c.rhai",
            r#"fn on_foo_bar(e) { push("U9", "foo " + e.fooBar.x); }"#,
        ),
    ]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "E1", "U1", "x").await, 200);
    let unknown = json!({"events": [{"type": "fooBar", "webhookEventId": "E2", "source": {"type": "user", "userId": "U1"}, "fooBar": {"x": 7}}]}).to_string();
    assert_eq!(
        post_signed(&reqwest::Client::new(), &d.url("/callback"), &unknown).await,
        200
    );
    assert!(
        eventually(WAIT, || mock.accepted(PUSH).len() == 5).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(
        mock.texts(PUSH),
        ["a", "b", "a-any message x", "foo 7", "a-any fooBar "]
    );
}

#[tokio::test]
async fn hot_reload_in_place_by_rename_and_like_vim_keeps_last_good_version_on_error() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bot.rhai", r#"fn on_message(e) { reply(e, "v1"); }"#)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    let mut n = 0;
    let mut expect_reply = |text: &'static str| {
        n += 1;
        let id = format!("R{n}");
        let d = &d;
        let mock = &mock;
        async move {
            // Each save must be live within 1 s: retry the event until the reply shows it.
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            let mut k = 0;
            loop {
                k += 1;
                let before = mock.accepted(REPLY).len();
                assert_eq!(say(d, &format!("{id}-{k}"), "U1", "x").await, 200);
                assert!(eventually(WAIT, || mock.accepted(REPLY).len() > before).await);
                let got = mock.texts(REPLY).last().cloned().unwrap_or_default();
                if got == text {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "still `{got}`, wanted `{text}`\n{}",
                    d.stderr.text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    expect_reply("v1").await;
    scripts.write("bot.rhai", r#"fn on_message(e) { reply(e, "v2"); }"#);
    expect_reply("v2").await;
    scripts.write_by_rename("bot.rhai", r#"fn on_message(e) { reply(e, "v3"); }"#);
    expect_reply("v3").await;
    scripts.write_like_vim("bot.rhai", r#"fn on_message(e) { reply(e, "v4"); }"#);
    expect_reply("v4").await;
    // A syntax error on line 2: the old version keeps answering and the error names the line.
    scripts.write("bot.rhai", "fn on_message(e) {\n    reply(e, \"v5\"\n}\n");
    assert!(
        d.stderr.wait_for("bot.rhai:3:1", WAIT).is_some(),
        "{}",
        d.stderr.text()
    );
    expect_reply("v4").await;
    // Named as a file (`…/4913`, `"4913"`), not any number that happens to hold those digits
    // (a latency or a port in the log did, once).
    let log = d.stderr.text();
    assert!(
        !log.contains("/4913") && !log.contains("\"4913\""),
        "vim's probe file was loaded as a script:\n{log}"
    );
}

#[tokio::test]
async fn a_helper_module_edited_while_the_daemon_runs_reloads_its_importer() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[
        (
            "bot.rhai",
            "import \"helpers\" as h;\nfn on_message(e) { h::greet(e); }",
        ),
        // The module calls the host API itself, for the handler that called it.
        (
            "lib/helpers.rhai",
            r#"fn greet(e) { reply(e, "Hello, " + e.message.text); }"#,
        ),
    ]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    let mut n = 0;
    // Sends events until the reply is `text` (each save must be live within 2 s).
    let mut expect_reply = |text: &'static str| {
        n += 1;
        let (d, mock, id) = (&d, &mock, format!("H{n}"));
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let mut k = 0;
            loop {
                k += 1;
                let before = mock.accepted(REPLY).len();
                assert_eq!(say(d, &format!("{id}-{k}"), "U1", "Ann").await, 200);
                assert!(
                    eventually(WAIT, || mock.accepted(REPLY).len() > before).await,
                    "{}",
                    d.stderr.text()
                );
                let got = mock.texts(REPLY).last().cloned().unwrap_or_default();
                if got == text {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "still `{got}`, wanted `{text}`\n{}",
                    d.stderr.text()
                );
            }
        }
    };
    expect_reply("Hello, Ann").await;
    scripts.write(
        "lib/helpers.rhai",
        r#"fn greet(e) { reply(e, "Welcome back, " + e.message.text); }"#,
    );
    expect_reply("Welcome back, Ann").await;
    scripts.write_by_rename(
        "lib/helpers.rhai",
        r#"fn greet(e) { reply(e, "Hi " + e.message.text); }"#,
    );
    expect_reply("Hi Ann").await;
    // A broken module: the importer keeps its last good version, the error names both files.
    scripts.write("lib/helpers.rhai", "fn greet(e) {\n    \"Hey \" +\n}\n");
    assert!(
        d.stderr
            .wait_for("bot.rhai:1:8: module \"helpers\" (", WAIT)
            .is_some(),
        "{}",
        d.stderr.text()
    );
    assert!(
        d.stderr.text().contains("helpers.rhai:3:1"),
        "{}",
        d.stderr.text()
    );
    expect_reply("Hi Ann").await;
}

#[tokio::test]
async fn deleting_a_script_stops_its_handlers_and_a_new_file_starts() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("old.rhai", r#"fn on_message(e) { reply(e, "old"); }"#)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "D1", "U1", "x").await, 200);
    assert!(eventually(WAIT, || mock.accepted(REPLY).len() == 1).await);
    scripts.remove("old.rhai");
    assert!(
        d.stderr.wait_for("script removed", WAIT).is_some(),
        "{}",
        d.stderr.text()
    );
    assert_eq!(say(&d, "D2", "U1", "x").await, 200);
    assert!(d.stderr.wait_for("no handler for event", WAIT).is_some());
    scripts.write("new.rhai", r#"fn on_message(e) { reply(e, "new"); }"#);
    assert!(
        d.stderr
            .wait_for("script loaded script=new.rhai", WAIT)
            .is_some(),
        "{}",
        d.stderr.text()
    );
    assert_eq!(say(&d, "D3", "U1", "x").await, 200);
    assert!(eventually(WAIT, || mock.accepted(REPLY).len() == 2).await);
    assert_eq!(mock.texts(REPLY), ["old", "new"]);
}

#[tokio::test]
async fn runaway_scripts_are_stopped_and_the_bot_carries_on() {
    let mock = MockLine::start().await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[limits]\nmax_call_ms = 300\nmax_operations = 1000000000\nmax_string_size = 10000\n",
    )
    .unwrap();
    let scripts = Scripts::new(&[
        (
            "loop.rhai",
            r#"fn on_message(e) { if e.message.text == "loop" { loop {} } }"#,
        ),
        (
            "rec.rhai",
            r#"fn down(n) { down(n + 1) } fn on_message(e) { if e.message.text == "deep" { down(0); } }"#,
        ),
        (
            "str.rhai",
            r#"fn on_message(e) { if e.message.text == "grow" { let s = "x"; loop { s += s; } } }"#,
        ),
        (
            "ok.rhai",
            r#"fn on_postback(e) { reply(e, "still here"); }"#,
        ),
    ]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[("LINEBOTD_CONFIG", config.path().to_str().unwrap())],
    );
    let started = std::time::Instant::now();
    assert_eq!(say(&d, "L1", "U1", "loop").await, 200);
    let line = d
        .stderr
        .wait_for("loop.rhai:1: in on_message()", WAIT)
        .expect("loop stopped");
    assert!(
        line.contains("on_message") && line.contains("300 ms"),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(say(&d, "L2", "U2", "deep").await, 200);
    let line = d
        .stderr
        .wait_for("rec.rhai:", WAIT)
        .expect("recursion stopped");
    assert!(line.contains("max_call_depth"), "{line}");
    assert_eq!(say(&d, "L3", "U3", "grow").await, 200);
    let line = d
        .stderr
        .wait_for("str.rhai:", WAIT)
        .expect("string stopped");
    assert!(line.contains("max_string_size"), "{line}");
    let postback = json!({"events": [{"type": "postback", "webhookEventId": "L4", "replyToken": "rt-pb", "source": {"type": "user", "userId": "U1"}, "postback": {"data": "x"}}]}).to_string();
    assert_eq!(
        post_signed(&reqwest::Client::new(), &d.url("/callback"), &postback).await,
        200
    );
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(mock.texts(REPLY), ["still here"]);
}

#[tokio::test]
async fn one_users_events_keep_their_order_and_a_slow_user_does_not_block_others() {
    let mock = MockLine::start().await;
    mock.set_delay("/v2/bot/profile/Uslow", Duration::from_secs(3));
    let scripts = Scripts::new(&[(
        "order.rhai",
        r#"fn on_message(e) {
            if e.source.userId == "Uslow" { profile("Uslow"); }
            push(e.source.userId, e.message.text);
        }"#,
    )]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    let client = reqwest::Client::new();
    assert_eq!(say(&d, "slow-1", "Uslow", "slow").await, 200);
    for i in 0..50 {
        let body = text_event_body(&format!("O{i}"), "Ufast", &i.to_string());
        assert_eq!(post_signed(&client, &d.url("/callback"), &body).await, 200);
    }
    assert!(
        eventually(Duration::from_millis(2500), || mock.texts(PUSH).len() >= 50).await,
        "fast user's pushes waited for the slow user"
    );
    let fast: Vec<String> = mock
        .accepted(PUSH)
        .iter()
        .filter(|r| r.body["to"] == "Ufast")
        .map(|r| r.body["messages"][0]["text"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(fast, expected);
    assert!(eventually(WAIT, || mock.texts(PUSH).contains(&"slow".to_owned())).await);
}

#[tokio::test]
async fn line_errors_and_invalid_messages_are_catchable_in_scripts() {
    let mock = MockLine::start().await;
    mock.respond(
        "/v2/bot/info",
        400,
        json!({"message": "The request body has 1 error(s)"}),
    );
    let scripts = Scripts::new(&[(
        "catch.rhai",
        r#"fn on_message(e) {
            try { line_get("/v2/bot/info"); } catch (err) { push("U1", "caught: " + err); }
            try { push("U1", ["1", "2", "3", "4", "5", "6"]); } catch (err) { push("U1", "too many: " + err); }
        }"#,
    )]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "C1", "U1", "x").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted(PUSH).len() == 2).await,
        "{}",
        d.stderr.text()
    );
    let got = mock.texts(PUSH);
    assert!(
        got[0].starts_with("caught: ")
            && got[0].contains("400")
            && got[0].contains("The request body has 1 error(s)"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("too many: ") && got[1].contains('6'),
        "{got:?}"
    );
}

/// A reply token works once: a second reply to the same event, from the same handler or
/// another script's, is an error naming the first reply, not a billed push fallback.
#[tokio::test]
async fn a_second_reply_to_one_event_is_an_error_naming_the_first() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[
        (
            "a.rhai",
            "fn on_message(e) {\n    reply(e, \"first\");\n    try { reply(e, \"second\"); } catch (err) { log(`caught ${err}`); }\n}\n",
        ),
        ("b.rhai", "fn on_message(e) { reply(e, \"from b\"); }\n"),
    ]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "F1", "U7", "x").await, 200);
    // The mock LINE runs on this test's thread: wait without blocking it.
    let log_has = |needle: &str| d.stderr.text().lines().any(|l| l.contains(needle));
    assert!(
        eventually(WAIT, || log_has(
            "caught reply: this event was already answered"
        ) && log_has(
            "b.rhai:1: in on_message(): reply: this event"
        ))
        .await,
        "{}",
        d.stderr.text()
    );
    let log = d.stderr.text();
    let caught = log.lines().find(|l| l.contains("caught reply")).unwrap();
    assert!(caught.contains("by the reply at a.rhai:2"), "{caught}");
    let failed = log.lines().find(|l| l.contains("b.rhai:1:")).unwrap();
    assert!(
        failed.contains("already answered by the reply at a.rhai:2"),
        "{failed}"
    );
    assert_eq!(mock.texts(REPLY), ["first"]);
    assert!(mock.requests_to(PUSH).is_empty(), "no billed push");
}

/// A reply LINE refused did not use the token: the handler may reply again.
#[tokio::test]
async fn a_reply_after_a_refused_reply_is_sent() {
    let mock = MockLine::start().await;
    mock.fail_next(REPLY, 400, 1);
    let scripts = Scripts::new(&[(
        "retry.rhai",
        r#"fn on_message(e) { try { reply(e, "first"); } catch (err) { reply(e, "second"); } }"#,
    )]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "F2", "U7", "x").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(mock.texts(REPLY), ["second"]);
    assert!(mock.requests_to(PUSH).is_empty());
}

#[test]
fn strict_refuses_to_start_with_a_broken_script() {
    let scripts = Scripts::new(&[("bad.rhai", "fn on_message(e) { reply(e, }")]);
    let out = run_command(scripts.path(), "http://127.0.0.1:9")
        .arg("--strict")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.rhai:1:"), "{err}");
}
