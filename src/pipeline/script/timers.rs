//! `later(delay_seconds, "function", data)`, `at(epoch_ms, "function", data)` and
//! `cancel_later(id)`: one-off timers that call a function of the same script with `data`,
//! kept in the store so they survive restarts ([`crate::pipeline::schedule::timers`] fires them).
//!
//! A timer's id is named like a push's retry key, after the handler run and its position among
//! the run's timers, and the store ignores an id it knows: a handler replayed after a crash
//! does not schedule its timers twice.

use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT};

use crate::store::{now_ms, StoreError, Timer, MAX_VALUE_BYTES};

use super::context;
use super::host::{host, next_call, retry_key, script_error, to_json};

/// How far ahead a timer may be set: a year.
pub const MAX_AHEAD_MS: i64 = 365 * 24 * 3600 * 1000;

type HostResult<T> = Result<T, Box<EvalAltResult>>;

pub fn register(engine: &mut Engine) {
    engine
        .register_fn(
            "later",
            |delay: INT, function: Dynamic, data: Dynamic| -> HostResult<String> {
                later(delay as FLOAT, &function, &data)
            },
        )
        .register_fn(
            "later",
            |delay: FLOAT, function: Dynamic, data: Dynamic| -> HostResult<String> {
                later(delay, &function, &data)
            },
        )
        .register_fn(
            "later",
            |delay: Dynamic, _function: Dynamic, _data: Dynamic| -> HostResult<String> {
                Err(script_error(format!(
                    "later({delay}, …): the delay is a number of seconds, not a {}",
                    super::suggest::kind(&delay)
                )))
            },
        )
        .register_fn(
            "at",
            |epoch_ms: INT, function: Dynamic, data: Dynamic| -> HostResult<String> {
                schedule("at", epoch_ms, &function, &data)
            },
        )
        .register_fn(
            "at",
            |epoch_ms: Dynamic, _function: Dynamic, _data: Dynamic| -> HostResult<String> {
                Err(script_error(format!(
                    "at({epoch_ms}, …): the time is milliseconds since 1970 as an integer \
                     (e.g. now() + 60000), not a {}",
                    super::suggest::kind(&epoch_ms)
                )))
            },
        )
        .register_fn("cancel_later", cancel_later);
}

fn later(delay_secs: FLOAT, function: &Dynamic, data: &Dynamic) -> HostResult<String> {
    let max_secs = (MAX_AHEAD_MS / 1000) as FLOAT;
    if !(0.0..=max_secs).contains(&delay_secs) {
        return Err(script_error(format!(
            "later({delay_secs}, …): the delay must be from 0 to {max_secs} seconds (a year)"
        )));
    }
    let due = now_ms().saturating_add((delay_secs * 1000.0).round() as i64);
    schedule("later", due, function, data)
}

/// Checks the call, then stores the timer; returns its id.
fn schedule(name: &str, due_ms: INT, function: &Dynamic, data: &Dynamic) -> HostResult<String> {
    let host = host()?;
    let now = now_ms();
    if due_ms > now.saturating_add(MAX_AHEAD_MS) {
        return Err(script_error(format!(
            "{name}: {due_ms} is more than a year ahead; a timer may be set up to 365 days ahead"
        )));
    }
    if !function.is_string() {
        return Err(script_error(format!(
            "{name}: the function is given by its name as a string (\"remind\"), not a {}",
            super::suggest::kind(function)
        )));
    }
    let function = function.to_string();
    let (script, functions) =
        context::current(|ctx| (ctx.script.clone(), ctx.functions.clone()))
            .ok_or_else(|| script_error(format!("{name} only works while a script runs")))?;
    if functions.get(&function) != Some(&1) {
        let hint = match functions.get(&function) {
            Some(n) => format!("; {function} takes {n} parameters, a timer passes one (data)"),
            None => super::suggest::closest(
                &function,
                functions.keys().map(String::as_str),
                2.max(function.len() / 3),
            )
            .map(|f| format!("; did you mean {f}?"))
            .unwrap_or_default(),
        };
        return Err(script_error(format!(
            "{name}: no function {function}(data) in {script}{hint}"
        )));
    }
    let timer = Timer {
        id: retry_key(next_call("timer").as_deref()).to_string(),
        script: script.to_string(),
        function,
        data: to_json(data)?,
        // A time already past runs at once, not "too late".
        due_ms: due_ms.max(now),
        created_ms: now,
    };
    match host.timers.add(&timer) {
        Ok(_) => Ok(timer.id),
        Err(StoreError::TooLarge { actual, .. }) => Err(script_error(format!(
            "{name}: data is {actual} bytes as JSON, the limit is {MAX_VALUE_BYTES}; keep a key \
             in data and the rest in store_set"
        ))),
        Err(e) => Err(script_error(format!("{name}: {e}"))),
    }
}

fn cancel_later(id: Dynamic) -> HostResult<bool> {
    let host = host()?;
    if !id.is_string() {
        return Err(script_error(format!(
            "cancel_later takes the id later or at returned (a string), not a {}",
            super::suggest::kind(&id)
        )));
    }
    host.timers
        .cancel(&id.to_string())
        .map_err(|e| script_error(format!("cancel_later: {e}")))
}
