//! The fake LINE behind `linebotd test` and `simulate`, through the real binary: it refuses what
//! LINE refuses, knows only the users the bot heard from, and fails on demand (`line_fails`).

mod support;

use std::process::{Command, Output};

use support::daemon::{bin, Scripts};

/// A bot that pushes on "ship", replies on "hello" (telling the user when the reply failed),
/// looks up "profile ID", and says so when a delivery failed for good.
const BOT: &str = r#"
fn on_message(e) {
    let text = e.message.text;
    if text == "ship" {
        push(e.source.userId, "Your order shipped!");
    } else if text == "hello" {
        try {
            reply(e, "hi");
        } catch (err) {
            push(e.source.userId, `reply failed: ${err}`);
        }
    } else if text.starts_with("profile ") {
        let p = profile(text.sub_string(8));
        reply(e, if p == () { "no such friend" } else { p.displayName });
    } else if text == "gif" {
        reply(e, #{ type: "gif", url: "https://example.com/a.gif" });
    }
}

fn on_delivery_failed(d) {
    push(d.to, `${d.kind} ${d.id} failed: ${d.error}`);
}
"#;

const TESTS: &str = r#"
fn test_a_refused_push_reaches_on_delivery_failed() {
    line_fails("push", 400, "Failed to send messages");
    let calls = send_text("ship");
    assert_eq(calls.len(), 2);
    assert_eq(calls[0].path, "/v2/bot/message/push");
    let texts = sent_texts();
    assert_eq(texts.len(), 1);
    assert(texts[0].starts_with("push "), texts[0]);
    assert(texts[0].contains("(400): Failed to send messages"), texts[0]);
}

fn test_an_invalid_reply_token_falls_back_to_a_push() {
    line_fails("reply", 400, "Invalid reply token");
    let calls = send_text("hello");
    assert_eq(calls.map(|c| c.path), ["/v2/bot/message/reply", "/v2/bot/message/push"]);
    assert_eq(sent_texts(), ["hi"]);
}

fn test_a_refused_reply_throws_in_the_handler() {
    line_fails("reply", 400, "Failed to send messages");
    send_text("hello");
    let texts = sent_texts();
    assert_eq(texts.len(), 1);
    assert(texts[0].starts_with("reply failed: "), texts[0]);
    assert(texts[0].contains("Failed to send messages"), texts[0]);
}

fn test_only_users_the_bot_heard_from_have_a_profile() {
    send_text("profile Uunknown0000000000000000000000000", "Ualice");
    send_text("profile Ualice", "Ualice");
    assert_eq(sent_texts(), ["no such friend", "User Ualice"]);
}

fn test_line_fails_names_the_endpoints_it_knows() {
    line_fails("send", 400, "x");
}
"#;

fn linebotd(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run linebotd")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn line_fails_and_unknown_profiles_reach_the_bot_in_tests() {
    let scripts = Scripts::new(&[("bot.rhai", BOT), ("bot.test.rhai", TESTS)]);
    let out = linebotd(&["test", &scripts.path().display().to_string()]);
    let text = text(&out);
    for test in [
        "test_a_refused_push_reaches_on_delivery_failed",
        "test_an_invalid_reply_token_falls_back_to_a_push",
        "test_a_refused_reply_throws_in_the_handler",
        "test_only_users_the_bot_heard_from_have_a_profile",
    ] {
        assert!(
            text.contains(&format!("ok   bot.test.rhai::{test}")),
            "{test}:\n{text}"
        );
    }
    assert!(
        text.contains("FAIL bot.test.rhai::test_line_fails_names_the_endpoints_it_knows")
            && text.contains("line_fails: unknown endpoint \"send\""),
        "{text}"
    );
    assert!(text.contains("4 passed, 1 failed"), "{text}");
    // The refusals are shown, with LINE's message.
    assert!(
        text.contains("LINE refused POST /v2/bot/message/push: 400 Failed to send messages"),
        "{text}"
    );
}

#[test]
fn simulate_shows_lines_400_with_its_details() {
    let scripts = Scripts::new(&[("bot.rhai", BOT)]);
    let dir = scripts.path().display().to_string();
    let out = linebotd(&["simulate", "--scripts", &dir, "--text", "gif"]);
    let text = text(&out);
    assert!(
        text.contains("POST /v2/bot/message/reply  → LINE refused it: 400 The request body has 1 error(s) [messages[0].type: must be one of the following values: [text, textV2, sticker"),
        "{text}"
    );
}
