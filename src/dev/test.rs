//! `linebotd test [DIR]`: runs every `fn test_*()` of the `*.test.rhai` files in DIR against the
//! bot scripts of DIR, each test with a fresh bot (fresh `:memory:` store, fresh fake LINE).
//!
//! Test files run on their own engine with the test helpers; the bot's scripts run on the
//! daemon's engine, so a bot behaves in tests exactly as it does in production.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use rhai::{Array, CallFnOptions, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Scope};
use serde_json::Value;

use crate::cli::TestArgs;
use crate::cmd::CommandError;
use crate::dev::fakeline::{Call, Content, FakeLine};
use crate::pipeline::script::host::{from_json, to_json};
use crate::pipeline::script::library::{Library, Resolver};

use super::events;
use super::local::{LocalBot, LocalSetup, Report};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// The bot of the running test and the texts it has sent so far.
#[derive(Default)]
struct TestState {
    bot: Option<LocalBot>,
    texts: Vec<String>,
}

type TestBot = Arc<Mutex<TestState>>;

pub async fn run(args: TestArgs) -> Result<ExitCode, CommandError> {
    let setup = LocalSetup::load(&args.local, &args.dir, true)?;
    match tokio::task::spawn_blocking(move || run_blocking(&args.dir, &setup)).await {
        Ok(result) => result,
        Err(e) => {
            eprintln!("error: the test run crashed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run_blocking(dir: &Path, setup: &LocalSetup) -> Result<ExitCode, CommandError> {
    let files = test_files(dir).map_err(|source| CommandError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    if files.is_empty() {
        println!(
            "no test files in {} (write NAME.test.rhai with fn test_something() {{ ... }})",
            dir.display()
        );
        println!("0 passed, 0 failed");
        // Nothing tested is not a pass: a CI job with a typo in the folder would go green.
        return Ok(ExitCode::FAILURE);
    }
    let handle = tokio::runtime::Handle::current();
    // Compile the bot once up front so a broken script is one clear error, not one per test.
    if let Err(e) = handle.block_on(LocalBot::start(dir, setup)) {
        eprintln!("{e}");
        println!("0 passed, 1 failed");
        return Ok(ExitCode::FAILURE);
    }

    let state: TestBot = Arc::default();
    let (mut passed, mut failed) = (0usize, 0usize);
    // Modules a test file imports from lib/ are compiled as the bot's scripts see them; their
    // functions then run on the test engine, so the test helpers are there and the host API
    // (reply, push …) is not.
    let engines =
        crate::pipeline::script::engine::build(&setup.limits).with_timezone(setup.timezone);
    let mut library = Library::new(dir);
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let engine = test_engine(&name, state.clone(), setup.timezone);
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {name} — cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        let ast = match library.compile_test(&engines, &engine, &name, &source) {
            Ok(ast) => ast,
            Err(err) => {
                println!("FAIL {name} — {}", err.render());
                failed += 1;
                continue;
            }
        };
        let mut tests: Vec<String> = ast
            .iter_functions()
            .filter(|f| f.name.starts_with("test_") && f.params.is_empty())
            .map(|f| f.name.to_owned())
            .collect();
        tests.sort();
        for test in tests {
            let fresh = match handle.block_on(LocalBot::start(dir, setup)) {
                Ok(bot) => bot,
                Err(e) => {
                    println!("FAIL {name}::{test} — {e}");
                    failed += 1;
                    continue;
                }
            };
            *lock(&state) = TestState {
                bot: Some(fresh),
                texts: Vec::new(),
            };
            // Top-level statements run before each test, like a setup block.
            let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
            let result =
                engine.call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &ast, &test, ());
            *lock(&state) = TestState::default();
            match result {
                Ok(_) => {
                    println!("ok   {name}::{test}");
                    passed += 1;
                }
                Err(e) => {
                    println!("FAIL {name}::{test} — {}", describe(&name, &e));
                    failed += 1;
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn lock(state: &TestBot) -> std::sync::MutexGuard<'_, TestState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// `*.test.rhai` directly in `dir`, in name order.
fn test_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.rhai") && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A failed test as `file:line: message`: our assertions carry their own position; other errors
/// are located at the innermost position Rhai knows.
fn describe(file: &str, err: &EvalAltResult) -> String {
    let mut inner = err;
    let mut line = err.position().line();
    while let EvalAltResult::ErrorInFunctionCall(_, _, next, pos) = inner {
        line = next.position().line().or(pos.line()).or(line);
        inner = next;
    }
    match inner {
        EvalAltResult::ErrorRuntime(value, _) if value.is_string() => {
            let text = value.to_string();
            if text.starts_with(&format!("{file}:")) {
                text
            } else {
                at(file, line, &text)
            }
        }
        other => {
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_owned(),
                _ => text,
            };
            at(file, line, &text)
        }
    }
}

fn at(file: &str, line: Option<usize>, message: &str) -> String {
    match line {
        Some(line) => format!("{file}:{line}: {message}"),
        None => format!("{file}: {message}"),
    }
}

fn failure(ctx: &NativeCallContext, file: &str, message: String) -> Box<EvalAltResult> {
    let pos = ctx.call_position();
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(at(file, pos.line(), &message)),
        pos,
    ))
}

/// Values as the failure message shows them: strings quoted, maps and arrays as JSON.
fn show(value: &Dynamic) -> String {
    if value.is_string() {
        return format!("{:?}", value.to_string());
    }
    match to_json(value) {
        Ok(json) if value.is_map() || value.is_array() => json.to_string(),
        _ => value.to_string(),
    }
}

fn equal(a: &Dynamic, b: &Dynamic) -> bool {
    if (a.is_map() || a.is_array()) && (b.is_map() || b.is_array()) {
        return matches!((to_json(a), to_json(b)), (Ok(x), Ok(y)) if x == y);
    }
    if a.type_id() != b.type_id() {
        return false;
    }
    // Same type: compare through Rhai's own `==` semantics on the printed form for the
    // primitive types tests use (strings, numbers, bools, unit).
    a.to_string() == b.to_string()
}

fn call_to_map(call: &Call) -> Dynamic {
    let mut map = Map::new();
    map.insert("method".into(), call.method.clone().into());
    map.insert("path".into(), call.path.clone().into());
    map.insert("body".into(), from_json(&call.body));
    Dynamic::from_map(map)
}

/// Runs one event through the test's bot; returns the LINE calls it made.
fn send(state: &TestBot, event: Value) -> RhaiResult<Array> {
    drive(state, |bot| bot.send_blocking(event))
}

/// Runs one step of the bot (an event, a scheduled function) and records what it sent.
fn drive(
    state: &TestBot,
    step: impl FnOnce(&LocalBot) -> Result<Report, String>,
) -> RhaiResult<Array> {
    let mut guard = lock(state);
    let st = &mut *guard;
    let bot = st.bot.as_ref().ok_or_else(|| {
        runtime_error("send_text/send_event/run_function only work inside a test_* function")
    })?;
    let outcome = step(bot).map_err(runtime_error)?;
    if let Some(e) = outcome.errors.first() {
        return Err(runtime_error(format!("the bot failed: {e}")));
    }
    // A refusal is not a failure (a test may be about one), but it should not go unseen.
    for call in &outcome.calls {
        if let Some(why) = call.refusal() {
            eprintln!("  LINE refused {} {}: {why}", call.method, call.path);
        }
    }
    for call in outcome.calls.iter().filter(|c| c.accepted()) {
        for message in call.messages() {
            if message["type"] == "text" {
                if let Some(text) = message["text"].as_str() {
                    st.texts.push(text.to_owned());
                }
            }
        }
    }
    Ok(outcome.calls.iter().map(call_to_map).collect())
}

fn runtime_error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        rhai::Position::NONE,
    ))
}

/// Runs `f` on the fake LINE of the running test.
fn with_fake(state: &TestBot, function: &str, f: impl FnOnce(&FakeLine)) -> RhaiResult<()> {
    let guard = lock(state);
    let bot = guard
        .bot
        .as_ref()
        .ok_or_else(|| runtime_error(format!("{function} only works inside a test")))?;
    f(&bot.fake);
    Ok(())
}

/// The engine test files run on: limits against runaway tests, the test helpers, and the
/// batteries the bot has (time in the bot's zone, regex, chance), to build and check events.
fn test_engine(file: &str, state: TestBot, timezone: chrono_tz::Tz) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(100_000_000)
        // As deep as the bots' engine: tests build the same nested messages.
        .set_max_expr_depths(128, 64)
        .set_max_modules(64)
        .set_fail_on_invalid_map_property(false);
    engine.disable_symbol("eval");
    // Modules come from lib/ when the file compiles (see Library::compile_test), never later.
    engine.set_module_resolver(Resolver);
    crate::pipeline::script::engine::missing_fields_are_unit(&mut engine);
    crate::pipeline::script::batteries::register(&mut engine);
    crate::pipeline::script::batteries::set_default_zone(&mut engine, timezone);

    let s = state.clone();
    engine.register_fn("send_text", move |text: &str| {
        send(&s, events::text(events::DEV_USER, text))
    });
    let s = state.clone();
    engine.register_fn("send_text", move |text: &str, user: &str| {
        send(&s, events::text(user, text))
    });
    let s = state.clone();
    engine.register_fn("send_event", move |event: Map| -> RhaiResult<Array> {
        let event = to_json(&Dynamic::from_map(event))?;
        send(&s, events::complete(event))
    });
    let s = state.clone();
    engine.register_fn("run_function", move |function: &str| {
        drive(&s, |bot| bot.call_blocking(function))
    });
    let s = state.clone();
    engine.register_fn("run_timers", move || -> RhaiResult<rhai::INT> {
        let mut ran = 0;
        drive(&s, |bot| {
            let report = bot.run_timers_blocking()?;
            ran = report.handlers_run;
            Ok(report)
        })?;
        Ok(ran as rhai::INT)
    });
    let s = state.clone();
    engine.register_fn("pending_timers", move || -> RhaiResult<Array> {
        let guard = lock(&s);
        let bot = guard
            .bot
            .as_ref()
            .ok_or_else(|| runtime_error("pending_timers only works inside a test_* function"))?;
        let timers = bot.pending_timers().map_err(runtime_error)?;
        Ok(timers
            .into_iter()
            .map(|t| {
                from_json(&serde_json::json!({
                    "id": t.id,
                    "script": t.script,
                    "function": t.function,
                    "data": t.data,
                    "due_ms": t.due_ms,
                }))
            })
            .collect())
    });
    let s = state.clone();
    engine.register_fn("sent_texts", move || -> Array {
        lock(&s)
            .texts
            .iter()
            .map(|t| Dynamic::from(t.clone()))
            .collect()
    });

    let f = file.to_owned();
    engine.register_fn(
        "assert",
        move |ctx: NativeCallContext, cond: bool, message: &str| -> RhaiResult<()> {
            if cond {
                Ok(())
            } else {
                Err(failure(&ctx, &f, format!("assert failed: {message}")))
            }
        },
    );
    let f = file.to_owned();
    engine.register_fn(
        "assert",
        move |ctx: NativeCallContext, cond: bool| -> RhaiResult<()> {
            if cond {
                Ok(())
            } else {
                Err(failure(&ctx, &f, "assert failed".to_owned()))
            }
        },
    );
    let f = file.to_owned();
    engine.register_fn(
        "assert_eq",
        move |ctx: NativeCallContext, left: Dynamic, right: Dynamic| -> RhaiResult<()> {
            if equal(&left, &right) {
                Ok(())
            } else {
                Err(failure(
                    &ctx,
                    &f,
                    format!(
                        "assert_eq failed: left {}, right {}",
                        show(&left),
                        show(&right)
                    ),
                ))
            }
        },
    );
    // The test's bot's store: seed state before an event, check what a handler saved.
    let s = state.clone();
    let store_of: crate::pipeline::script::state::StoreOf = Arc::new(move || {
        let guard = lock(&s);
        let bot = guard.bot.as_ref();
        bot.map(|b| b.store.clone())
            .ok_or_else(|| runtime_error("the store only works inside a test"))
    });
    crate::pipeline::script::state::register_with(&mut engine, store_of.clone());
    engine.register_fn("follow", move |user: &str| -> RhaiResult<()> {
        store_of()?
            .follower_set(user, true, crate::store::now_ms())
            .map_err(|e| runtime_error(format!("follow: {e}")))
    });
    let s = state.clone();
    engine.register_fn(
        "content_fake",
        move |message_id: &str, content_type: &str, data: Dynamic| -> RhaiResult<()> {
            let bytes = if data.is_blob() {
                data.cast::<rhai::Blob>()
            } else if data.is_string() {
                data.to_string().into_bytes()
            } else {
                return Err(runtime_error(format!(
                    "content_fake's data is a blob or a string, not {}",
                    crate::pipeline::script::suggest::kind(&data)
                )));
            };
            let content = Content::Ready {
                content_type: content_type.to_owned(),
                bytes,
            };
            with_fake(&s, "content_fake", |fake| {
                fake.set_content(message_id, content)
            })
        },
    );
    let s = state.clone();
    engine.register_fn("content_not_ready", move |message_id: &str| {
        with_fake(&s, "content_not_ready", |fake| {
            fake.set_content(message_id, Content::NotReady)
        })
    });
    let s = state.clone();
    super::test_http::register(&mut engine, move || {
        lock(&s).bot.as_ref().map(LocalBot::web)
    });
    let s = state.clone();
    super::test_line::register(&mut engine, move || {
        lock(&s).bot.as_ref().map(|bot| bot.fake.clone())
    });
    let f = file.to_owned();
    engine.on_print(move |text| eprintln!("[{f}] {text}"));
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways: every test helper `linebotd definitions --tests` lists is registered (a call
    /// with arguments of the listed types finds a function), and every helper registered in the
    /// test sources is listed.
    #[test]
    fn the_test_definitions_name_exactly_the_test_helpers() {
        let engine = test_engine("x.test.rhai", TestBot::default(), chrono_tz::UTC);
        let defs = crate::cmd::definitions::TEST_DEFINITIONS;
        let mut defined = std::collections::BTreeSet::new();
        for line in defs.lines().filter_map(|l| l.strip_prefix("fn ")) {
            let (name, rest) = line.split_once('(').unwrap();
            let params = rest.split_once(')').unwrap().0;
            let args: Vec<&str> = params
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| match p.split_once(':').map_or("?", |(_, t)| t.trim()) {
                    "int" => "400",
                    "bool" => "true",
                    "Map" => "#{}",
                    "Array" => "[]",
                    _ => "\"x\"",
                })
                .collect();
            let call = format!("{name}({})", args.join(", "));
            if let Err(e) = engine.eval::<Dynamic>(&call) {
                assert!(
                    !matches!(*e, EvalAltResult::ErrorFunctionNotFound(..)),
                    "`fn {line}` is defined but `{call}` is not registered: {e}"
                );
            }
            defined.insert(name.to_owned());
        }
        let sources = [
            include_str!("test.rs"),
            include_str!("test_http.rs"),
            include_str!("test_line.rs"),
        ];
        for source in sources {
            for part in source.split("register_fn(").skip(1) {
                let name = part.trim_start().trim_start_matches('"');
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // The store functions come from state.rs and are in the host API's definitions.
                if !name.is_empty() && !name.starts_with("store_") {
                    assert!(
                        defined.contains(&name),
                        "test helper {name} is not in TEST_DEFINITIONS"
                    );
                }
            }
        }
        assert!(defined.len() >= 15, "{defined:?}");
    }

    #[test]
    fn equal_compares_maps_by_json_and_scalars_by_type() {
        let a = from_json(&serde_json::json!({"a": [1, "x"]}));
        let b = from_json(&serde_json::json!({"a": [1, "x"]}));
        assert!(equal(&a, &b));
        assert!(equal(&Dynamic::from("hi"), &Dynamic::from("hi")));
        assert!(!equal(&Dynamic::from("1"), &Dynamic::from(1_i64)));
    }
}
