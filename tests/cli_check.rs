//! `linebotd check` and `linebotd init` through the real binary, on real files in temp dirs;
//! and the shipped scripts and examples pass `check`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn linebotd(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linebotd"))
        .args(args)
        .current_dir(cwd)
        .env_remove("LINEBOTD_TIMEZONE")
        .output()
        .expect("the linebotd binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn check(dir: &Path) -> Output {
    linebotd(&["check", &dir.to_string_lossy()], dir)
}

#[test]
fn syntax_error_is_shown_with_line_column_source_and_caret() {
    let dir = folder(&[("bad.rhai", "fn on_message(event) {\n    let x = 1 +;\n}\n")]);
    let out = check(dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let path = dir.path().join("bad.rhai").display().to_string();
    assert!(text.contains(&format!("{path}:2:16: ")), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        // render() indents the source line by four spaces; the line has four of its own.
        .position(|l| *l == "        let x = 1 +;")
        .unwrap_or_else(|| panic!("source line shown: {text}"));
    // The caret sits under the `;` (column 16), after render's four-space indent.
    assert_eq!(lines[at + 1], format!("    {}^", " ".repeat(15)), "{text}");
    assert!(text.contains("1 scripts, 1 errors"), "{text}");
}

#[test]
fn bad_schedules_name_the_file_and_the_problem() {
    let cases = [
        (
            r#"#{ cron: "0 9 * * *", "call": "tick", tz: "Mars/Olympus" }"#,
            "unknown time zone \"Mars/Olympus\"",
        ),
        (
            r#"#{ cron: "0 25 * * *", "call": "tick" }"#,
            "invalid cron expression",
        ),
        (
            r#"#{ cron: "0 9 * * *", "call": "missing" }"#,
            "function missing() is not defined",
        ),
    ];
    for (entry, message) in cases {
        let script = format!("const SCHEDULES = [{entry}];\nfn tick() {{}}\n");
        let dir = folder(&[("sched.rhai", &script)]);
        let out = check(dir.path());
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{entry}: {text}");
        let path = dir.path().join("sched.rhai").display().to_string();
        assert!(
            text.contains(&format!("{path}: SCHEDULES[0]")),
            "{entry}: {text}"
        );
        assert!(text.contains(message), "{entry}: {text}");
        assert!(text.contains("1 scripts, 1 errors"), "{text}");
    }
}

#[test]
fn schedule_without_tz_uses_the_timezone_flag() {
    let script =
        "const SCHEDULES = [#{ cron: \"0 9 * * *\", \"call\": \"tick\" }];\nfn tick() {}\n";
    let dir = folder(&[("s.rhai", script)]);
    let d = dir.path().to_string_lossy().into_owned();
    let ok = linebotd(&["check", &d, "--timezone", "Asia/Tokyo"], dir.path());
    assert_eq!(ok.status.code(), Some(0), "{}", all_output(&ok));
    let bad = linebotd(&["check", &d, "--timezone", "Nowhere/City"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(all_output(&bad).contains("Nowhere/City"));
}

#[test]
fn clean_folder_passes_and_counts_scripts_but_not_tests() {
    let dir = folder(&[
        ("a.rhai", "fn on_message(event) { reply(event, \"a\"); }\n"),
        (
            "b.rhai",
            "const X = 1;\nfn on_follow(event) { reply(event, `${X}`); }\n",
        ),
        ("b.test.rhai", "this is not rhai at all {"),
        ("notes.txt", "not a script"),
    ]);
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(stdout(&out).trim_end(), "2 scripts, 0 errors");
}

#[test]
fn misspelt_handler_is_a_warning_with_a_suggestion() {
    let dir = folder(&[(
        "typo.rhai",
        "// greets\n\nfn on_mesage(event) {\n    reply(event, \"hi\");\n}\n",
    )]);
    let out = check(dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let path = dir.path().join("typo.rhai").display().to_string();
    assert!(
        text.contains(&format!(
            "{path}:3: warning: on_mesage matches no LINE event type; did you mean on_message?"
        )),
        "{text}"
    );
    assert!(text.contains("1 scripts, 0 errors, 1 warnings"), "{text}");
}

#[test]
fn an_import_out_of_lib_fails_check_at_the_import_line() {
    let dir = folder(&[(
        "bot.rhai",
        "// reads secrets\nimport \"../etc/passwd\" as p;\nfn on_message(e) { p::x() }\n",
    )]);
    let out = check(dir.path());
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains(
            "bot.rhai:2:8: import \"../etc/passwd\" refused (\"..\" is not allowed): modules \
             come from the scripts folder's lib/ only, by a relative name like \"helpers\" or \
             \"shop/prices\"\n    import \"../etc/passwd\" as p;\n           ^"
        ),
        "{text}"
    );
    assert!(text.contains("1 scripts, 1 errors"), "{text}");
}

#[test]
fn check_compiles_lib_modules_on_their_own_and_through_their_importers() {
    let dir = folder(&[
        (
            "bot.rhai",
            "import \"helpers\" as h;\nfn on_message(e) { h::greet(e) }\n",
        ),
        ("lib/helpers.rhai", "fn greet(e) { reply(e, \"hi\") }\n"),
        ("lib/unused.rhai", "fn broken( {\n"),
        ("lib/missing_import.rhai", "\nimport \"nowhere\" as n;\n"),
        ("lib/my helpers.rhai", ""),
        (
            "lib/handlers.rhai",
            "const SCHEDULES = [];\nfn on_follow(e) {}\nfn on_x(a, b) {}\n",
        ),
    ]);
    let out = check(dir.path());
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("unused.rhai:1:12: Expecting ')'"), "{text}");
    assert!(
        text.contains("missing_import.rhai:2:8: no module \"nowhere\":"),
        "{text}"
    );
    assert!(
        text.contains("my helpers.rhai: warning: no import can name this file"),
        "{text}"
    );
    assert!(
        text.contains(
            "handlers.rhai: warning: on_follow() in a module never runs (lib/ files are not bots)"
        ),
        "{text}"
    );
    assert!(
        text.contains("handlers.rhai: warning: SCHEDULES in a module never runs"),
        "{text}"
    );
    assert!(!text.contains("bot.rhai"), "{text}");
    assert!(
        text.contains("1 scripts, 4 modules, 2 errors, 3 warnings"),
        "{text}"
    );
}

#[test]
fn calls_to_functions_a_module_does_not_offer_are_warnings() {
    let dir = folder(&[
        (
            "bot.rhai",
            "import \"helpers\" as h;\n\
             fn on_message(e) {\n    h::greeet(e);\n    h::greet(e, 2);\n    h::secret();\n    h::greet(e);\n}\n",
        ),
        (
            "lib/helpers.rhai",
            "fn greet(e) { secret() }\nprivate fn secret() { 1 }\n",
        ),
    ]);
    let out = check(dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for warning in [
        "bot.rhai:3:8: warning: h::greeet() is not a public function of module \"helpers\"; did you mean h::greet?",
        "bot.rhai:4:8: warning: h::greet() is called with 2 arguments, but greet in module \"helpers\" takes 1",
        "bot.rhai:5:8: warning: h::secret() is not a public function of module \"helpers\"",
    ] {
        assert!(text.contains(warning), "{warning}\n{text}");
    }
    assert!(
        text.contains("1 scripts, 1 modules, 0 errors, 3 warnings"),
        "{text}"
    );
}

#[test]
fn a_missing_module_fails_check_at_the_import_line() {
    let dir = folder(&[("bot.rhai", "\n\nimport \"helpers\" as h;\n")]);
    let out = check(dir.path());
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("bot.rhai:3:8: no module \"helpers\": "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn missing_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = linebotd(&["check", "no-such-dir"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(all_output(&out).contains("no scripts folder at no-such-dir"));
}

#[test]
fn default_folder_is_scripts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    std::fs::write(dir.path().join("scripts/x.rhai"), "fn on_event(e) {}\n").unwrap();
    let out = linebotd(&["check"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(stdout(&out).contains("1 scripts, 0 errors"));
}

const INIT_FILES: [&str; 4] = [
    "linebotd.toml",
    "scripts/echo.rhai",
    "scripts/echo.test.rhai",
    ".gitignore",
];

#[test]
fn init_creates_a_bot_that_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = linebotd(&["init", "bot"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let bot = dir.path().join("bot");
    for f in INIT_FILES {
        assert!(bot.join(f).is_file(), "{f} created");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read_to_string(bot.join("scripts/echo.rhai")).unwrap(),
        std::fs::read_to_string(repo.join("scripts/echo.rhai")).unwrap()
    );
    let ignore = std::fs::read_to_string(bot.join(".gitignore")).unwrap();
    for pattern in ["*.db", "*.db-wal", "*.db-shm"] {
        assert!(ignore.lines().any(|l| l == pattern), "{pattern}");
    }
    let toml = std::fs::read_to_string(bot.join("linebotd.toml")).unwrap();
    assert!(toml.contains("CHANNEL_ACCESS_TOKEN"));
    assert!(stdout(&out).contains("Next steps"));
    assert_eq!(check(&bot.join("scripts")).status.code(), Some(0));
}

#[test]
fn init_refuses_to_overwrite_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "mine\n").unwrap();
    let out = linebotd(&["init"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(all_output(&out).contains(".gitignore already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        "mine\n"
    );
    for f in &INIT_FILES[..3] {
        assert!(!dir.path().join(f).exists(), "{f} not written");
    }
    assert!(!dir.path().join("scripts").exists());

    // A second run over a complete init refuses too.
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(linebotd(&["init"], fresh.path()).status.code(), Some(0));
    let before = std::fs::read_to_string(fresh.path().join("linebotd.toml")).unwrap();
    let again = linebotd(&["init"], fresh.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(all_output(&again).contains("linebotd.toml already exists"));
    assert_eq!(
        std::fs::read_to_string(fresh.path().join("linebotd.toml")).unwrap(),
        before
    );
}

fn shipped_script_dirs() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![repo.join("scripts")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo.join("examples"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("scripts"))
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "at least four examples");
    dirs.extend(examples);
    dirs
}

#[test]
fn shipped_scripts_and_every_example_pass_check_without_warnings() {
    for dir in shipped_script_dirs() {
        let out = check(&dir);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{}: {text}", dir.display());
        assert!(text.ends_with(" 0 errors\n"), "{}: {text}", dir.display());
        let example = dir.parent().unwrap();
        if example.parent().unwrap().ends_with("examples") {
            assert!(example.join("README.md").is_file(), "{}", example.display());
        }
    }
}

/// Test files are not scripts (check skips them), but they must at least compile.
#[test]
fn shipped_test_files_compile() {
    let engines = linebotd::pipeline::script::engine::build(&linebotd::config::Limits::default());
    let mut seen = 0;
    for dir in shipped_script_dirs() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if !path.to_string_lossy().ends_with(".test.rhai") {
                continue;
            }
            seen += 1;
            let source = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = linebotd::pipeline::script::loader::compile(&engines, &path, &source) {
                panic!("{}", e.render());
            }
        }
    }
    assert!(seen >= 5, "every example has tests ({seen} found)");
}

/// A bot made by `init` lives outside the repository, where `cargo run` finds no Cargo.toml:
/// its next steps say how to install the `linebotd` they use, unless it is installed already.
#[test]
fn init_says_how_to_install_linebotd_when_it_is_not_on_the_path() {
    let run_init = |path: &std::ffi::OsStr| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_linebotd"))
            .args(["init", "bot"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", path)
            .output()
            .expect("the linebotd binary runs");
        assert!(out.status.success());
        stdout(&out)
    };
    let text = run_init(std::ffi::OsStr::new(""));
    let install = format!(
        "cargo install --locked --path {}",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(text.contains(&install), "{text}");
    assert!(text.contains("  linebotd check"), "{text}");

    let bin = tempfile::tempdir().unwrap();
    std::fs::write(bin.path().join("linebotd"), "").unwrap();
    let text = run_init(bin.path().as_os_str());
    assert!(!text.contains("cargo install"), "{text}");
    assert!(text.contains("  linebotd check"), "{text}");
}

/// Every command reads the bot's linebotd.toml from the folder it runs in (beside `scripts/`),
/// with the same unknown-key errors: `run`, `schedules` (its `timezone`), `check`, `outbox`.
#[test]
fn every_command_reads_linebotd_toml_from_the_bot_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    std::fs::write(
        dir.path().join("scripts/morning.rhai"),
        "const SCHEDULES = [#{ cron: \"0 9 * * *\", \"call\": \"morning\" }];\nfn morning() {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("linebotd.toml"),
        "timezone = \"Asia/Tokyo\"\n",
    )
    .unwrap();
    let out = linebotd(&["schedules"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Asia/Tokyo"), "{}", stdout(&out));
    assert!(linebotd(&["check"], dir.path()).status.success());

    // A misspelt key stops every command that reads the file, naming it.
    std::fs::write(
        dir.path().join("linebotd.toml"),
        "timezone = \"UTC\"\nlistn = \"x\"\n",
    )
    .unwrap();
    for args in [&["run"][..], &["schedules"], &["check"], &["outbox"]] {
        let out = linebotd(args, dir.path());
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("listn"), "{args:?}: {}", stderr(&out));
    }

    // outbox finds dev's store in this folder when the daemon has none, and says so.
    std::fs::write(dir.path().join("linebotd.toml"), "").unwrap();
    linebotd::store::open(&dir.path().join("linebotd-dev.db").display().to_string()).unwrap();
    let out = linebotd(&["outbox"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("store: linebotd-dev.db"),
        "{}",
        stderr(&out)
    );
}

/// `check` finds the calls that would fail only when an event reaches them: a misspelt name
/// (with the nearest one) and a wrong number of arguments (with how the call is written).
#[test]
fn check_finds_misspelt_calls_and_wrong_argument_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bot.rhai"),
        "fn on_message(event) {\n    repyl(event, \"hi\");\n    reply(event);\n    store_set(\"k\");\n    helper(1, 2);\n    reply(event, helper(1));\n}\nfn helper(x) { x }\n",
    )
    .unwrap();
    let out = linebotd(&["check", "."], dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for want in [
        "bot.rhai:2:5: no function named repyl: not linebotd's, not Rhai's, not this script's; did you mean reply?",
        "bot.rhai:3:5: reply takes 2 arguments, not 1: reply(event_or_token, messages)",
        "bot.rhai:4:5: store_set takes 2 arguments, not 1: store_set(key, value)",
        "bot.rhai:5:5: helper takes 1 argument, not 2",
        "1 scripts, 4 errors",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

/// A module's calls are judged like a script's: a misspelt call in `lib/` would fail in every
/// handler that reaches it. Calls between a module's own functions, private ones included, and
/// into the modules it imports resolve.
#[test]
fn check_finds_misspelt_calls_in_lib_modules() {
    let dir = folder(&[
        (
            "bot.rhai",
            "import \"helpers\" as h;\nfn on_message(e) { h::greet(e); }\n",
        ),
        (
            "lib/helpers.rhai",
            "import \"words\" as w;\n\
             fn greet(e) {\n    repyl(e, w::hello());\n    secret(e);\n}\n\
             private fn secret(e) { store_set(\"k\"); }\n",
        ),
        (
            "lib/words.rhai",
            "fn hello() { \"hi\" }\nfn bye() { hello(1) }\n",
        ),
    ]);
    let out = check(dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for want in [
        "helpers.rhai:3:5: no function named repyl: not linebotd's, not Rhai's, not this script's; did you mean reply?",
        "helpers.rhai:6:24: store_set takes 2 arguments, not 1: store_set(key, value)",
        "words.rhai:2:12: hello takes 0 arguments, not 1",
        "1 scripts, 2 modules, 3 errors",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

/// Mistakes people bring from other languages get a hint, each at its line with a caret.
#[test]
fn check_explains_newcomer_mistakes() {
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "fn onFollow(event) {\n    reply(event, \"hi\");\n}\n",
            "1 scripts, 0 errors, 1 warnings",
            &["bot.rhai:1: warning: onFollow matches no LINE event type", "did you mean on_follow?"],
        ),
        (
            "fn on_message(event) {\n    reply(event, 'hi');\n}\n",
            "1 errors",
            &["bot.rhai:2:18: Invalid character: 'hi': Rhai strings use double quotes"],
        ),
        (
            "let greeting = \"hi\";\nfn on_message(event) {\n    reply(event, greeting);\n}\n",
            "1 errors",
            &["bot.rhai:3:18: Undefined variable: greeting: functions cannot see top-level `let` variables; write `const greeting = …;`"],
        ),
        (
            "fn on_message(event) {\n    reply(event, \"hi\");\n",
            "1 errors",
            &["bot.rhai:2:24: Expecting '}' to terminate this block (at the end of the file)\n        reply(event, \"hi\");\n                           ^"],
        ),
        (
            "const SCHEDULES = [#{ cron: \"0 9 * * *\", \"call\": \"m\", tz: \"asia/tokyo\" }];\nfn m() {}\n",
            "1 errors",
            &["unknown time zone \"asia/tokyo\" (did you mean \"Asia/Tokyo\"?)"],
        ),
        (
            "const SCHEDULES = [#{ cron: \"0 25 * * *\", \"call\": \"m\" }];\nfn m() {}\n",
            "1 errors",
            &["25 in the hour field is out of range: it takes 0 to 23"],
        ),
    ];
    for (source, summary, wants) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bot.rhai"), source).unwrap();
        let text = stdout(&linebotd(&["check", "."], dir.path()));
        assert!(text.contains(summary), "{source}\n{text}");
        for want in wants {
            assert!(
                text.contains(want),
                "missing `{want}` for\n{source}\nin:\n{text}"
            );
        }
    }
}

/// One run of `check` shows every handler and schedule mistake of a file, in order.
#[test]
fn check_reports_every_handler_and_schedule_error_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bot.rhai"),
        "fn on_message(a, b) {}\nfn on_follow() {}\nconst SCHEDULES = [\n    #{ cron: \"0 25 * * *\", \"call\": \"m\" },\n    #{ cron: \"0 9 * * *\", \"call\": \"nope\" },\n    #{ cron: \"0 9 * * *\", \"call\": \"m\" },\n];\nfn m() {}\n",
    )
    .unwrap();
    let text = stdout(&linebotd(&["check", "."], dir.path()));
    let wants = [
        "bot.rhai:1:1: handler on_message() takes 2 parameters",
        "bot.rhai:2:1: handler on_follow() takes 0 parameters",
        "SCHEDULES[0] (cron \"0 25 * * *\", call \"m\"): invalid cron expression: 25 in the hour field",
        "SCHEDULES[1] (cron \"0 9 * * *\", call \"nope\"): function nope() is not defined",
        "1 scripts, 4 errors",
    ];
    let mut at = 0;
    for want in wants {
        let found = text[at..].find(want).map(|i| i + at);
        assert!(
            found.is_some(),
            "missing (or out of order) `{want}` in:\n{text}"
        );
        at = found.unwrap();
    }
}
