//! What scripts may reach and read, as the operator sets it: `env()` and its redaction, the web
//! settings and their errors, the `linebotd.toml` that `simulate` and `test` read, and the
//! fakes of `linebotd test` (`http_fake`, `http_calls`, `env_fake`).

mod support;

use std::process::Command;

use support::daemon::{bin, Scripts};
use support::web::{simulate, SECRET_VALUE};

#[test]
fn env_reads_only_exposed_names_and_their_values_never_show() {
    let script = r#"
fn on_message(e) {
    let key = env("MY_API_KEY");
    log("the key is " + key);
    log(`unset is ${type_of(env("MY_UNSET"))}`);
    try { env("HOME"); } catch (err) { log(`caught ${err}`); }
    reply(e, "key " + key);
    throw "failed with " + key;
}
"#;
    let (ok, out) = simulate(
        script,
        &["--script-env", "MY_API_KEY,MY_UNSET"],
        &[("MY_API_KEY", SECRET_VALUE), ("HOME", "/root")],
    );
    assert!(!ok, "the thrown error fails the run:\n{out}");
    assert!(!out.contains(SECRET_VALUE), "the value leaked:\n{out}");
    assert!(out.contains("the key is [env MY_API_KEY]"), "{out}");
    assert!(out.contains("unset is ()"), "{out}");
    assert!(
        out.contains("HOME is not exposed to scripts; add it to --script-env"),
        "{out}"
    );
    assert!(out.contains("failed with [env MY_API_KEY]"), "{out}");
    assert!(
        out.contains("key [env MY_API_KEY]"),
        "the reply body is redacted:\n{out}"
    );
}

#[test]
fn daemon_secrets_cannot_be_exposed() {
    let (ok, out) = simulate(
        "fn on_message(e) {}",
        &["--script-env", "CHANNEL_SECRET"],
        &[],
    );
    assert!(!ok);
    assert!(
        out.contains("script_env is invalid: CHANNEL_SECRET is linebotd's own secret"),
        "{out}"
    );
}

/// `linebotd test`: `http_fake` answers, `http_calls` lists what was sent, and an unfaked call
/// fails the test naming the URL, without touching the network.
#[test]
fn tests_fake_the_web_and_see_the_calls() {
    let bot = r#"
fn on_message(e) {
    let key = env("MY_API_KEY");
    let headers = if key == () { #{} } else { #{ Authorization: "Bearer " + key } };
    let r = http_post("https://api.example.com/v1/ask?lang=en", #{ q: e.message.text }, #{ headers: headers });
    if r.status != 200 { reply(e, `status ${r.status}`); return; }
    reply(e, `answer ${r.json.answer}`);
}
"#;
    let tests = r#"
fn test_a_faked_answer() {
    env_fake("MY_API_KEY", "k");
    http_fake("https://api.example.com/", #{ status: 500 });
    http_fake("https://api.example.com/v1/", #{ body: #{ answer: 42 } });
    send_text("what is six times seven");
    assert_eq(sent_texts(), ["answer 42"]);
    let calls = http_calls();
    assert_eq(calls.len(), 1);
    assert_eq(calls[0].method, "POST");
    assert_eq(calls[0].url, "https://api.example.com/v1/ask?lang=en");
    assert_eq(calls[0].json.q, "what is six times seven");
    assert_eq(calls[0].headers.authorization, "Bearer k");
}

fn test_an_error_status() {
    http_fake("https://api.example.com/", #{ status: 503, body: "busy" });
    send_text("hi");
    assert_eq(sent_texts(), ["status 503"]);
    // The shell's value is not read: tests give exposed variables values with env_fake.
    assert_eq(http_calls()[0].headers.authorization, ());
}

fn test_env_fake_needs_an_exposed_name() {
    env_fake("HOME", "/tmp");
}

fn test_unfaked() {
    send_text("hi");
}
"#;
    let scripts = Scripts::new(&[("bot.rhai", bot), ("bot.test.rhai", tests)]);
    let out = Command::new(bin())
        .arg("test")
        .arg(scripts.path())
        .args(["--script-env", "MY_API_KEY"])
        .env("MY_API_KEY", SECRET_VALUE)
        .output()
        .expect("run linebotd test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ok   bot.test.rhai::test_a_faked_answer"),
        "{text}"
    );
    assert!(
        text.contains("ok   bot.test.rhai::test_an_error_status"),
        "{text}"
    );
    assert!(
        text.contains("https://api.example.com/v1/ask: no http_fake matches this POST"),
        "{text}"
    );
    assert!(
        text.contains("FAIL bot.test.rhai::test_env_fake_needs_an_exposed_name")
            && text.contains("HOME is not exposed to scripts"),
        "{text}"
    );
    assert!(text.contains("2 passed, 2 failed"), "{text}");
}

#[test]
fn bad_web_settings_name_the_setting() {
    for (args, says) in [
        (
            vec!["--http-allow", "https://api.example.com"],
            "http_allow is invalid: `https://api.example.com` must be a host",
        ),
        (
            vec!["--http-timeout-ms", "20000"],
            "http_timeout_ms is invalid: 20000 ms must be between 1 and limits.max_call_ms (10000 ms)",
        ),
        (
            vec!["--http-max-response-bytes", "0"],
            "http_max_response_bytes is invalid",
        ),
    ] {
        let (ok, out) = simulate("fn on_message(e) {}", &args, &[]);
        assert!(!ok, "{args:?}");
        assert!(out.contains(says), "{args:?}: {out}");
    }
}

/// Runs `linebotd simulate --text go` on a project folder holding `toml` as its
/// `linebotd.toml` and `script` in `scripts/`, with `args` and `env`; returns stdout.
fn simulate_project(toml: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("linebotd.toml"), toml).unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    std::fs::write(dir.path().join("scripts/bot.rhai"), script).unwrap();
    let out = Command::new(bin())
        .args(["simulate", "--text", "go"])
        .args(args)
        .arg("--scripts")
        .arg(dir.path().join("scripts"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `simulate` and `test` read `linebotd.toml` beside the scripts folder, as `run` reads it.
#[test]
fn local_runs_read_the_web_settings_of_linebotd_toml() {
    let text = simulate_project(
        "script_env = [\"MY_API_KEY\"]\n[limits]\nmax_call_ms = 60000\n",
        r#"fn on_message(e) { reply(e, `len ${env("MY_API_KEY").len()}`); }"#,
        &["--http-timeout-ms", "30000"],
        &[("MY_API_KEY", SECRET_VALUE)],
    );
    assert!(
        text.contains(&format!("len {}", SECRET_VALUE.len())),
        "{text}"
    );
}

/// `simulate` and `test` run scripts in the `timezone` of the `linebotd.toml` beside them.
#[test]
fn local_runs_use_the_configured_time_zone() {
    let text = simulate_project(
        "timezone = \"Asia/Tokyo\"\n",
        r#"fn on_message(e) { reply(e, "hour " + format_time(0, "%H")); }"#,
        &[],
        &[],
    );
    assert!(text.contains("hour 09"), "{text}");
}
