//! `sleep(seconds)` in a handler: it waits, and never past `limits.max_call_ms`.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn sleep_waits_but_never_past_the_handler_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("linebotd.toml"),
        "[limits]\nmax_call_ms = 500\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    std::fs::write(
        dir.path().join("scripts/bot.rhai"),
        r#"
fn on_message(e) {
    sleep(0.05);
    log("short sleep done");
    try { sleep(-1); } catch (err) { log(`caught ${err}`); }
    try { sleep("5"); } catch (err) { log(`caught ${err}`); }
    try { sleep(30); } catch (err) { log(`caught ${err}`); }
}
"#,
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_linebotd"))
        .args(["simulate", "--text", "go", "--scripts"])
        .arg(dir.path().join("scripts"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sleep(30) ran past the limit: {text}"
    );
    assert!(text.contains("short sleep done"), "{text}");
    assert!(
        text.contains("caught sleep(-1): give a number of seconds from 0 to 86400"),
        "{text}"
    );
    assert!(
        text.contains("caught sleep(5): give a number of seconds, not a string"),
        "{text}"
    );
    assert!(
        text.contains("caught sleep(30): longer than the handler had left of limits.max_call_ms"),
        "{text}"
    );
}
