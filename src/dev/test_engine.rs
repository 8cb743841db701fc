//! The engine `*.test.rhai` files run on (see `test.rs`): `send_text`, `send_event`,
//! `run_function`, `run_timers`, the assertions and the fakes, each acting on the running test's
//! bot. The web and LINE fakes are in `test_http.rs` and `test_line.rs`.

use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};
use serde_json::Value;

use crate::dev::fakeline::{Call, Content, FakeLine};
use crate::pipeline::script::host::{from_json, to_json};
use crate::pipeline::script::library::Resolver;

use super::events;
use super::local::{LocalBot, Report};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// The bot of the running test and the texts it has sent so far.
#[derive(Default)]
pub(super) struct TestState {
    pub bot: Option<LocalBot>,
    pub texts: Vec<String>,
}

pub(super) type TestBot = Arc<Mutex<TestState>>;

pub(super) fn lock(state: &TestBot) -> std::sync::MutexGuard<'_, TestState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn at(file: &str, line: Option<usize>, message: &str) -> String {
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
pub(super) fn test_engine(file: &str, state: TestBot, timezone: chrono_tz::Tz) -> Engine {
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
            include_str!("test_engine.rs"),
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
