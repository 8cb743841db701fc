//! The script batteries (time, regex, chance) as scripts see them: on the daemon's engine with a
//! configured zone, through `linebotd test` with a bot, and the mistakes `linebotd check` reports.

use std::path::Path;
use std::process::{Command, Output};

use linebotd::config::Limits;
use linebotd::pipeline::script::engine::{self, Engines};
use rhai::Dynamic;

fn engines(tz: chrono_tz::Tz) -> Engines {
    engine::build(&Limits::default()).with_timezone(tz)
}

fn eval(engines: &Engines, script: &str) -> Result<Dynamic, String> {
    engines
        .run
        .eval::<Dynamic>(script)
        .map_err(|e| e.to_string())
}

fn linebotd(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linebotd"))
        .args(args)
        .arg(dir)
        .env_remove("LINEBOTD_TIMEZONE")
        .output()
        .expect("the linebotd binary runs")
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

#[test]
fn time_functions_use_the_configured_zone_unless_given_one() {
    let ny = engines(chrono_tz::America::New_York);
    // 2026-03-08 06:59:59 UTC is 01:59:59 EST; a second later the clocks read 03:00:00 EDT.
    let ms = 1_772_953_199_000_i64;
    let script = format!(
        r#"[format_time({ms}, "%H:%M:%S %Z"), format_time({ms} + 1000, "%H:%M:%S %Z"),
            format_time({ms}, "%H:%M", "UTC"), time_parts({ms} + 1000).hour,
            time_parts({ms}, "Asia/Tokyo").hour, parse_time("2026-03-08 03:00", "%Y-%m-%d %H:%M")]"#
    );
    let got: Vec<String> = eval(&ny, &script)
        .unwrap()
        .into_array()
        .unwrap()
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "01:59:59 EST",
            "03:00:00 EDT",
            "06:59",
            "3",
            "15",
            &(ms + 1000).to_string()
        ]
    );
    // An engine with no configured zone uses UTC.
    let utc = engine::build(&Limits::default());
    let text = eval(&utc, &format!(r#"format_time({ms}, "%H:%M")"#)).unwrap();
    assert_eq!(text.to_string(), "06:59");
}

#[test]
fn time_mistakes_name_the_argument() {
    let e = engines(chrono_tz::UTC);
    let err = eval(&e, r#"format_time(now(), "%H", "Mars/Olympus")"#).unwrap_err();
    assert!(
        err.contains("format_time: unknown time zone \"Mars/Olympus\" (argument tz)"),
        "{err}"
    );
    let err = eval(&e, r#"time_parts(now(), "Tokyo")"#).unwrap_err();
    assert!(err.contains("time_parts: unknown time zone"), "{err}");
    let err = eval(
        &e,
        r#"parse_time("2026-03-08 02:30", "%Y-%m-%d %H:%M", "America/New_York")"#,
    )
    .unwrap_err();
    assert!(err.contains("does not exist in America/New_York"), "{err}");
}

#[test]
fn regex_functions_match_capture_and_replace() {
    let e = engines(chrono_tz::UTC);
    let script = r##"
        let text = "order 42 for Ann";
        let c = captures(text, `order (\d+)( urgent)?`);
        [matches(text, "(?i)^ORDER"), text.matches("^for"), c[0], c[1], c[2] == (),
         captures(text, "nothing") == (), replace_regex(text, `(\d+)`, "#$1")]
    "##;
    let got: Vec<String> = eval(&e, script)
        .unwrap()
        .into_array()
        .unwrap()
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "true",
            "false",
            "order 42",
            "42",
            "true",
            "true",
            "order #42 for Ann"
        ]
    );
}

#[test]
fn a_bad_pattern_built_at_run_time_is_a_clear_error() {
    let e = engines(chrono_tz::UTC);
    let err = eval(&e, r#"let p = "(" + "x"; matches("x", p)"#).unwrap_err();
    assert!(
        err.contains("matches: bad pattern \"(x\" (argument pattern): unclosed group"),
        "{err}"
    );
    let err = eval(&e, r#"let p = "\\w{1000}"; matches("x", p + "{1000}")"#).unwrap_err();
    assert!(err.contains("compiles to more than"), "{err}");
}

#[test]
fn chance_functions_stay_in_range_and_refuse_nonsense() {
    let e = engines(chrono_tz::UTC);
    let script = r#"
        let ok = true;
        for i in 0..200 {
            let n = rand_int(1, 6);
            let f = rand_float();
            ok = ok && n >= 1 && n <= 6 && f >= 0.0 && f < 1.0 && pick(["a", "b"]) in ["a", "b"];
        }
        let original = [1, 2, 3, 4];
        let mixed = shuffle(original);
        mixed.sort();
        ok && mixed == [1, 2, 3, 4] && original == [1, 2, 3, 4]
    "#;
    assert!(eval(&e, script).unwrap().as_bool().unwrap());
    let err = eval(&e, "rand_int(3, 1)").unwrap_err();
    assert!(
        err.contains("rand_int: lo (3) is greater than hi (1)"),
        "{err}"
    );
    let err = eval(&e, "pick([])").unwrap_err();
    assert!(err.contains("pick: the array is empty"), "{err}");
}

const ORDER_BOT: &str = r#"
fn on_message(event) {
    let m = captures(event.message.text, `^order (\d+)$`);
    if m == () {
        reply(event, pick(["Say: order 3"]));
    } else {
        let n = parse_int(m[1]);
        reply(event, `${n} coming; ready at ` + format_time(0, "%H:%M", "Asia/Tokyo"));
    }
}
"#;

const ORDER_TEST: &str = r#"
fn test_orders() {
    send_text("order 3");
    send_text("hello");
    assert_eq(sent_texts(), ["3 coming; ready at 09:00", "Say: order 3"]);
}
"#;

#[test]
fn a_bot_using_the_batteries_passes_its_script_tests() {
    let dir = folder(&[("order.rhai", ORDER_BOT), ("order.test.rhai", ORDER_TEST)]);
    let out = linebotd(&["test"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed, 0 failed"), "{text}");
}

#[test]
fn check_points_at_a_bad_literal_pattern_and_at_event_module() {
    let dir = folder(&[
        (
            "regex.rhai",
            "fn on_message(event) {\n    if matches(event.message.text, \"(hi\") {}\n}\n",
        ),
        (
            "module.rhai",
            "fn on_event(event) {\n    log(event.module.type);\n}\n",
        ),
        (
            "fine.rhai",
            "fn matches(a, b) { a == b }\nfn on_message(event) {\n    let p = \"(\";\n    if matches(event.message.text, \"(\") { reply(event, p); }\n}\n",
        ),
    ]);
    let out = linebotd(&["check"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let regex = dir.path().join("regex.rhai").display().to_string();
    assert!(
        text.contains(&format!(
            "{regex}:2:36: matches: bad pattern \"(hi\" (argument pattern): unclosed group"
        )),
        "{text}"
    );
    let module = dir.path().join("module.rhai").display().to_string();
    assert!(
        text.contains(&format!(
            "{module}:2:15: `module` is a reserved word in Rhai, so `event.module` does not compile; write `event[\"module\"]` to read the field"
        )),
        "{text}"
    );
    assert!(text.contains("3 scripts, 2 errors"), "{text}");
}

const PHOTO_BOT: &str = r#"
fn on_message(event) {
    try {
        let c = content(event);
        reply(event, `${c.size} bytes of ${c.type}, first ${c.blob[0]}, at ${format_time(event.timestamp, "%H:%M")}`);
    } catch (e) {
        reply(event, "not yet");
    }
}
"#;

/// Test files have the batteries (in the bot's zone, from `linebotd.toml`) to build and check
/// events, and set what the fake LINE serves as a message's content, or that it is not ready.
const PHOTO_TEST: &str = r#"
fn photo(id) {
    let at = parse_time("2026-12-01 08:30", "%Y-%m-%d %H:%M", "UTC");
    #{ type: "message", replyToken: "rt", timestamp: at,
       source: #{ type: "user", userId: "U1" }, message: #{ type: "image", id: id } }
}

fn test_fake_content_and_the_zone() {
    content_fake("p1", "image/png", blob(3, 0x89));
    content_fake("p2", "text/plain", "hello");
    send_event(photo("p1"));
    send_event(photo("p2"));
    content_not_ready("p3");
    send_event(photo("p3"));
    assert_eq(sent_texts(), ["3 bytes of image/png, first 137, at 17:30",
                             "5 bytes of text/plain, first 104, at 17:30", "not yet"]);
    assert(matches(sent_texts()[0], `^\d bytes`), "regex in tests");
}

fn test_content_fake_refuses_a_number() {
    content_fake("p1", "image/png", 42);
}
"#;

#[test]
fn test_files_fake_content_and_have_the_batteries() {
    let root = tempfile::tempdir().unwrap();
    let scripts = root.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::write(scripts.join("photo.rhai"), PHOTO_BOT).unwrap();
    std::fs::write(scripts.join("photo.test.rhai"), PHOTO_TEST).unwrap();
    // A short time limit, so content gives up waiting for "not ready" content quickly.
    std::fs::write(
        root.path().join("linebotd.toml"),
        "timezone = \"Asia/Tokyo\"\n[limits]\nmax_call_ms = 600\n",
    )
    .unwrap();
    let out = linebotd(&["test"], &scripts);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok   photo.test.rhai::test_fake_content_and_the_zone"),
        "{text}"
    );
    assert!(
        text.contains("photo.test.rhai:21: content_fake's data is a blob or a string, not number"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
}
