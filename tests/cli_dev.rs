//! The script author's local loop through the real binary: `simulate`, `test`, `dev` + `chat`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::daemon::{bin, Scripts};

const WAIT: Duration = Duration::from_secs(20);

fn shipped_echo() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/echo.rhai");
    std::fs::read_to_string(path).expect("shipped echo.rhai")
}

fn linebotd(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn output(args: &[&str]) -> Output {
    linebotd(args).output().expect("run linebotd")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dir_arg(scripts: &Scripts) -> String {
    scripts.path().display().to_string()
}

#[test]
fn simulate_text_prints_the_reply_the_echo_bot_makes() {
    let scripts = Scripts::new(&[("echo.rhai", &shipped_echo())]);
    let out = output(&["simulate", "--scripts", &dir_arg(&scripts), "--text", "hi"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("POST /v2/bot/message/reply"), "{text}");
    assert!(text.contains("\"text\": \"hi\""), "{text}");
}

#[test]
fn simulate_json_prints_one_parseable_object_per_call() {
    let scripts = Scripts::new(&[(
        "echo.rhai",
        r#"fn on_message(e) { log("seen"); reply(e, e.message.text); push(e.source.userId, "again"); }"#,
    )]);
    let dir = dir_arg(&scripts);
    let out = output(&[
        "simulate",
        "--scripts",
        &dir,
        "--text",
        "hi",
        "--json",
        "--user",
        "U42",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let calls: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["method"], "POST");
    assert_eq!(calls[0]["path"], "/v2/bot/message/reply");
    assert_eq!(calls[0]["body"]["messages"][0]["text"], "hi");
    assert_eq!(calls[1]["path"], "/v2/bot/message/push");
    assert_eq!(calls[1]["body"]["to"], "U42");
    assert!(
        stderr(&out).contains("[echo.rhai] seen"),
        "logs go to stderr with --json: {}",
        stderr(&out)
    );
}

#[test]
fn simulate_fails_and_shows_the_error_when_a_handler_throws() {
    let scripts = Scripts::new(&[(
        "broken.rhai",
        "fn on_message(e) {\n    throw \"no idea what to say\";\n}\n",
    )]);
    let out = output(&["simulate", "--scripts", &dir_arg(&scripts), "--text", "hi"]);
    assert!(!out.status.success());
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("broken.rhai:2"), "{all}");
    assert!(all.contains("no idea what to say"), "{all}");
}

#[test]
fn simulate_reports_a_script_that_does_not_compile() {
    let scripts = Scripts::new(&[("bad.rhai", "fn on_message(e) {\n    reply(e, \"hi\"\n}\n")]);
    let out = output(&["simulate", "--scripts", &dir_arg(&scripts), "--text", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.rhai:"), "{}", stderr(&out));
    assert!(stderr(&out).contains('^'), "{}", stderr(&out));
}

#[test]
fn simulate_follow_runs_on_follow() {
    let scripts = Scripts::new(&[("echo.rhai", &shipped_echo())]);
    let out = output(&["simulate", "--scripts", &dir_arg(&scripts), "--follow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Thanks for adding me"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn simulate_event_file_takes_a_bare_event_or_a_webhook_body() {
    let scripts = Scripts::new(&[(
        "menu.rhai",
        r#"fn on_postback(e) { reply(e, "chose " + e.postback.data); }"#,
    )]);
    let dir = dir_arg(&scripts);
    let bare = scripts.path().join("bare.json");
    std::fs::write(
        &bare,
        r#"{"type": "postback", "postback": {"data": "a=1"}}"#,
    )
    .expect("write");
    let out = output(&[
        "simulate",
        "--scripts",
        &dir,
        "--event",
        &bare.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("chose a=1"), "{}", stdout(&out));

    let body = scripts.path().join("body.json");
    let webhook = serde_json::json!({"destination": "U0", "events": [
        {"type": "postback", "replyToken": "r1", "source": {"type": "user", "userId": "U9"}, "postback": {"data": "b=2"}},
    ]});
    std::fs::write(&body, webhook.to_string()).expect("write");
    let out = output(&[
        "simulate",
        "--scripts",
        &dir,
        "--json",
        "--event",
        &body.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let call: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(call["body"]["replyToken"], "r1");
    assert_eq!(call["body"]["messages"][0]["text"], "chose b=2");
}

/// `simulate --event` gives an event what LINE would: no reply token for a `leave` (so
/// `reply` behaves as in production), and an event id seen before is dropped, as the daemon
/// drops LINE's redeliveries.
#[test]
fn simulate_event_file_fills_only_what_line_sends_and_drops_repeated_ids() {
    let scripts = Scripts::new(&[(
        "log.rhai",
        r#"fn on_event(e) { log(`${e.type} token=${e.replyToken} source=${e.source?.type}`); }"#,
    )]);
    let file = scripts.path().join("events.json");
    let webhook = serde_json::json!({"destination": "U0", "events": [
        {"type": "leave"},
        {"type": "botSuspended"},
        {"type": "message", "webhookEventId": "E1", "message": {"type": "text", "id": "1", "text": "a"}},
        {"type": "message", "webhookEventId": "E1", "message": {"type": "text", "id": "1", "text": "a"}},
    ]});
    std::fs::write(&file, webhook.to_string()).expect("write");
    let out = output(&[
        "simulate",
        "--scripts",
        &dir_arg(&scripts),
        "--event",
        &file.display().to_string(),
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}{err}");
    assert!(text.contains("leave token= source=group"), "{text}");
    assert!(text.contains("botSuspended token= source="), "{text}");
    assert_eq!(
        text.matches("[log.rhai] message token=").count(),
        1,
        "{text}"
    );
    assert!(
        err.contains("skipped a `message` event: webhookEventId E1 came before"),
        "{err}"
    );
}

const PASSING: &str = r#"
fn test_echo() {
    let calls = send_text("hi");
    assert_eq(calls[0].body.messages[0].text, "hi");
    assert_eq(sent_texts(), ["hi"]);
}
"#;

const FAILING: &str = r#"fn test_wrong() {
    send_text("hi");
    assert_eq(sent_texts()[0], "bye");
}
"#;

#[test]
fn test_command_reports_each_test_with_file_line_and_values() {
    let scripts = Scripts::new(&[
        ("echo.rhai", &shipped_echo()),
        ("pass.test.rhai", PASSING),
        ("fail.test.rhai", FAILING),
    ]);
    let out = output(&["test", &dir_arg(&scripts)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("ok   pass.test.rhai::test_echo"), "{text}");
    assert!(
        text.contains(
            r#"FAIL fail.test.rhai::test_wrong — fail.test.rhai:3: assert_eq failed: left "hi", right "bye""#
        ),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "1 passed, 1 failed"), "{text}");
}

const ORDERS: &str = r#"
fn on_message(event) {
    let key = "orders:" + event.source.userId;
    let orders = store_get(key) ?? [];
    orders.push(event.message.text);
    store_set(key, orders);
    reply(event, `order ${orders.len()}, ${follower_count()} followers`);
}
"#;

/// Test files reach the bot's store: seed what a user did before, check what a handler saved,
/// and add followers without sending a follow event.
const ORDERS_TEST: &str = r#"
fn test_state_is_seeded_and_checked() {
    store_set("orders:U1", ["tea"]);
    follow("U1");
    follow("U2");
    send_text("cake", "U1");
    assert_eq(sent_texts(), ["order 2, 2 followers"]);
    assert_eq(store_get("orders:U1"), ["tea", "cake"]);
    assert_eq(store_keys("orders:"), ["orders:U1"]);
    assert_eq(followers(), ["U1", "U2"]);
    assert(store_delete("orders:U1"), "deleted");
    assert_eq(store_get("orders:U1"), ());
}

fn test_then_the_next_test_starts_with_an_empty_store() {
    assert_eq(store_keys(), []);
    assert_eq(follower_count(), 0);
}
"#;

#[test]
fn test_files_seed_and_check_the_bots_store() {
    let scripts = Scripts::new(&[("orders.rhai", ORDERS), ("orders.test.rhai", ORDERS_TEST)]);
    let out = output(&["test", &dir_arg(&scripts)]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("2 passed, 0 failed"), "{text}");
}

#[test]
fn test_command_passes_when_every_test_passes_and_each_test_starts_clean() {
    // Both tests see only their own texts: state does not leak from one test to the next.
    let second = PASSING.replace("test_echo", "test_echo_again");
    let scripts = Scripts::new(&[
        ("echo.rhai", &shipped_echo()),
        ("a.test.rhai", PASSING),
        ("b.test.rhai", &second),
    ]);
    let out = output(&["test", &dir_arg(&scripts)]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("2 passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn test_files_import_helper_modules_from_lib() {
    let scripts = Scripts::new(&[
        ("echo.rhai", &shipped_echo()),
        // A module of test helpers (send_text is a test helper) and a bot helper.
        (
            "lib/testing.rhai",
            "fn say_and_get(text) { send_text(text); sent_texts() }",
        ),
        ("lib/words.rhai", "fn shout(s) { s.to_upper() + \"!\" }"),
        (
            "echo.test.rhai",
            "import \"testing\" as t;\nimport \"words\" as w;\n\
             fn test_with_helpers() { assert_eq(t::say_and_get(w::shout(\"hi\")), [\"HI!\"]); }",
        ),
        (
            "bad.test.rhai",
            "\nimport \"../x\" as x;\nfn test_never() {}",
        ),
    ]);
    let out = output(&["test", &dir_arg(&scripts)]);
    let text = stdout(&out);
    assert!(
        text.contains("ok   echo.test.rhai::test_with_helpers"),
        "{text}\n{}",
        stderr(&out)
    );
    assert!(
        text.contains("FAIL bad.test.rhai — bad.test.rhai:2:8: import \"../x\" refused"),
        "{text}"
    );
}

#[test]
fn test_command_with_no_test_files_fails_with_a_hint() {
    // A CI job pointed at the wrong folder must not pass by testing nothing.
    let scripts = Scripts::new(&[("echo.rhai", &shipped_echo())]);
    let out = output(&["test", &dir_arg(&scripts)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(".test.rhai"), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 passed, 0 failed"));
}

#[test]
fn the_shipped_scripts_pass_their_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let out = output(&["test", &dir.display().to_string()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(" passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}

/// A child whose stdout lines arrive on a channel; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn linebotd");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n"));
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().expect("stdin")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `linebotd dev` on a folder holding `scripts/{name}`: the folder, the running daemon, and
/// its URL from the banner.
fn start_dev(name: &str, script: &str) -> (tempfile::TempDir, Running, String) {
    start_dev_with(name, script, None)
}

/// [`start_dev`] with `webhook_path` set in the folder's linebotd.toml when given.
fn start_dev_with(
    name: &str,
    script: &str,
    webhook_path: Option<&str>,
) -> (tempfile::TempDir, Running, String) {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(work.path().join("scripts")).expect("scripts dir");
    std::fs::write(work.path().join("scripts").join(name), script).expect("script");
    if let Some(path) = webhook_path {
        let config = format!("webhook_path = \"{path}\"\n");
        std::fs::write(work.path().join("linebotd.toml"), config).expect("config");
    }
    let (dev, url) = spawn_dev(work.path(), webhook_path);
    (work, dev, url)
}

/// `linebotd dev` in `dir` (which holds `scripts/`): the running daemon and its URL from the
/// banner, without the webhook path.
fn spawn_dev(dir: &Path, webhook_path: Option<&str>) -> (Running, String) {
    let mut dev = linebotd(&["dev", "--listen", "127.0.0.1:0"]);
    dev.current_dir(dir);
    let mut dev = Running::spawn(dev);
    let line = dev.wait_for("listening on http://");
    let url = line
        .split("listening on ")
        .nth(1)
        .and_then(|u| u.strip_suffix(webhook_path.unwrap_or("/callback")))
        .unwrap_or_else(|| panic!("url and webhook path in the dev banner: {line}"))
        .to_owned();
    (dev, url)
}

/// Posts `body` to the webhook of the dev daemon at `url`, signed with `dev`'s channel secret
/// unless `signature` is given; the status.
async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    signature: Option<&str>,
) -> u16 {
    let signature = signature.map_or_else(
        || linebotd::pipeline::webhook::sign(b"linebotd-dev-secret", body.as_bytes()),
        str::to_owned,
    );
    let sent = client
        .post(format!("{url}/callback"))
        .header("x-line-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("post the webhook");
    sent.status().as_u16()
}

/// The dev daemon's record of LINE calls (`GET /dev/calls`) as JSON text, waiting up to
/// `wait_ms` for a first one.
async fn dev_calls(client: &reqwest::Client, url: &str, wait_ms: u64) -> String {
    client
        .get(format!("{url}/dev/calls?after=0&wait_ms={wait_ms}"))
        .send()
        .await
        .expect("calls")
        .text()
        .await
        .expect("calls")
}

#[test]
fn chat_talks_to_the_dev_daemon() {
    let (work, mut dev, url) = start_dev("echo.rhai", &shipped_echo());
    // The hint is a command to paste: the binary as it was started (not on the PATH, not
    // under cargo), with the URL of this daemon.
    let hint = dev.wait_for("in another terminal");
    assert!(
        hint.ends_with(&format!("{} chat --url {url}", bin().display())),
        "{hint}"
    );

    let mut chat = Running::spawn(linebotd(&["chat", "--url", &url]));
    writeln!(chat.stdin(), "hello").expect("write");
    assert_eq!(chat.wait_for("bot>"), "bot> hello");
    writeln!(chat.stdin(), "/follow").expect("write");
    chat.wait_for("bot> Thanks for adding me");
    // dev prints each call too, naming who the reply went to.
    dev.wait_for("→ reply to Udev");
    assert!(
        work.path().join("linebotd-dev.db").exists(),
        "dev keeps its state in the current folder"
    );
}

/// With `webhook_path` set in linebotd.toml, `chat` posts where the daemon listens (it asks
/// the dev daemon), not to `/callback`.
#[test]
fn chat_posts_to_the_webhook_path_of_linebotd_toml() {
    let (_work, _dev, url) = start_dev_with("echo.rhai", &shipped_echo(), Some("/hooks/line"));
    let mut chat = Running::spawn(linebotd(&["chat", "--url", &url]));
    writeln!(chat.stdin(), "hello").expect("write");
    assert_eq!(chat.wait_for("bot>"), "bot> hello");
}

const MENU_BOT: &str = r#"
fn on_message(e) {
    if e.message.type == "location" { throw "no maps here"; }
    if e.message.type == "sticker" { reply(e, `sticker ${e.message.packageId}/${e.message.stickerId}`); return; }
    if e.source.type == "group" { reply(e, `in a group: ${e.message.text}`); return; }
    reply(e, #{ type: "template", altText: "Drinks", template: #{ type: "buttons", text: "Pick one",
        actions: [
            #{ type: "postback", label: "Coffee", data: "drink=coffee", displayText: "Coffee please" },
            #{ type: "datetimepicker", label: "When", data: "when", mode: "date" },
        ] } });
}
fn on_postback(e) {
    reply(e, `chose ${e.postback.data} ${e.postback.params?.date ?? ""}`);
}
fn on_join(e) { reply(e, "hello group"); }
fn morning() { push("Udev0000000000000000000000000000", "good morning"); }
"#;

/// The chat numbers the buttons of an answer, and `/tap` sends what tapping them sends;
/// stickers and groups can be tried too.
#[test]
fn chat_taps_buttons_and_speaks_in_groups() {
    let (_work, _dev, url) = start_dev("menu.rhai", MENU_BOT);

    let mut chat = Running::spawn(linebotd(&["chat", "--url", &url]));
    writeln!(chat.stdin(), "drinks?").expect("write");
    assert_eq!(
        chat.wait_for("[1]"),
        "    [1] Coffee → postback drink=coffee"
    );
    assert_eq!(
        chat.wait_for("[2]"),
        "    [2] When → date picker, postback when"
    );
    writeln!(chat.stdin(), "/tap coffee").expect("write");
    chat.wait_for("you> Coffee please");
    chat.wait_for("bot> chose drink=coffee");
    writeln!(chat.stdin(), "/tap 2 2026-12-24").expect("write");
    chat.wait_for("bot> chose when 2026-12-24");
    writeln!(chat.stdin(), "/sticker 11537 52002734").expect("write");
    chat.wait_for("bot> sticker 11537/52002734");
    writeln!(chat.stdin(), "/group friends").expect("write");
    chat.wait_for("bot> hello group");
    writeln!(chat.stdin(), "hi all").expect("write");
    chat.wait_for("bot> in a group: hi all");
    writeln!(chat.stdin(), "/run morning").expect("write");
    chat.wait_for("ran morning() in 1 script(s)");
    // The push may be printed before or after the chat's own line about the run.
    if !chat.seen.iter().any(|l| l == "bot> good morning") {
        chat.wait_for("bot> good morning");
    }
    writeln!(chat.stdin(), "/run evening").expect("write");
    chat.wait_for("no script defines evening() without parameters");
    // What shows nothing from the bot still shows in the chat.
    writeln!(chat.stdin(), "/unfollow").expect("write");
    chat.wait_for("note: no script handles `unfollow` events (define on_unfollow or on_event)");
    writeln!(chat.stdin(), "/location").expect("write");
    let failed = chat.wait_for("note: a handler failed");
    assert!(
        failed.contains("menu.rhai:3: in on_message(): no maps here"),
        "{failed}"
    );
}

#[test]
fn chat_without_a_dev_daemon_says_how_to_start_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = linebotd(&["chat", "--url", &url])
        .stdin(Stdio::null())
        .output()
        .expect("run chat");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&url) && err.contains("linebotd dev"), "{err}");
}

/// A webhook the daemon refuses (no valid signature) is neither shown in the browser console
/// nor taught to the fake LINE API: only signed ones are.
#[test]
fn the_console_shows_only_signed_webhooks() {
    let (_work, mut dev, url) = start_dev("echo.rhai", &shipped_echo());
    let console = dev
        .wait_for("browser console: ")
        .split("browser console: ")
        .nth(1)
        .expect("console url")
        .trim()
        .trim_end_matches('/')
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let body =
            |text: &str| support::daemon::text_event_body(&format!("E-{text}"), "Uconsole", text);
        let forged = post_webhook(&client, &url, &body("forged-hello"), Some("c2ln")).await;
        assert_eq!(forged, 401);
        let signed = post_webhook(&client, &url, &body("signed-hello"), None).await;
        assert_eq!(signed, 200);

        let mut log = client
            .get(format!("{console}/api/log"))
            .send()
            .await
            .expect("log");
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !seen.contains("signed-hello") {
            let chunk = tokio::time::timeout_at(deadline, log.chunk())
                .await
                .expect("the signed webhook in the console's log")
                .expect("log stream")
                .expect("log stream open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("forged-hello"), "{seen}");
    });
}

/// `linebotd dev` remembers the bot's followers across a restart: the fake LINE API knows them
/// again (their profiles exist), as the real one would.
#[test]
fn a_restarted_dev_still_knows_the_followers_its_store_remembers() {
    const BOT: &str = r#"
fn on_follow(e) { reply(e, "welcome"); }
fn greet() { for u in followers() { push(u, "hello " + profile(u).displayName); } }
"#;
    let (work, dev, url) = start_dev("greet.rhai", BOT);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let follow = r#"{"destination":"Ubot","events":[{"type":"follow","mode":"active","timestamp":1700000000000,"webhookEventId":"E-follow","deliveryContext":{"isRedelivery":false},"replyToken":"rt-follow","source":{"type":"user","userId":"Ufollower"},"follow":{"isUnblocked":false}}]}"#;
    runtime.block_on(async {
        assert_eq!(post_webhook(&client, &url, follow, None).await, 200);
        // Answered (so the follower is stored) once the reply shows in the fake's record.
        let calls = dev_calls(&client, &url, 10_000).await;
        assert!(calls.contains("welcome"), "{calls}");
    });
    drop(dev);

    let (_again, url) = spawn_dev(work.path(), None);
    runtime.block_on(async {
        let ran: serde_json::Value = client
            .post(format!("{url}/dev/run/greet"))
            .send()
            .await
            .expect("run greet")
            .json()
            .await
            .expect("json");
        assert_eq!(ran, serde_json::json!({"ran": 1, "errors": []}));
        // The push goes out through the outbox, after `greet` returned.
        let deadline = Instant::now() + WAIT;
        let mut calls = String::new();
        while !calls.contains("hello User Ufollower") && Instant::now() < deadline {
            calls = dev_calls(&client, &url, 0).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(calls.contains("hello User Ufollower"), "{calls}");
    });
}
