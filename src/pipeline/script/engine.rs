//! The one Rhai [`Engine`]: limits, sandbox and host API, configured once and shared by every call.

use rhai::{Dynamic, Engine};

use super::limits::Limits;

use super::{context, host};

/// Modules one call may import (each `import` a call runs counts, also inside loops).
const MAX_MODULES: usize = 64;

/// Operations between two wall-clock checks; checking every operation would cost more than the
/// scripts themselves.
const CLOCK_CHECK_EVERY: u64 = 1024;

/// The engine every script compiles and runs with, and its twin without strict variables that
/// only reads a script's top-level constants before the strict compile (so handlers can use
/// `const GREETING = "hi";` declared at the top). `check`, hot reload and the daemon all build
/// these the same way, so a script that passes `check` behaves the same at run time.
pub struct Engines {
    pub run: Engine,
    pub constants: Engine,
    /// The zone of schedules that name none.
    pub default_tz: chrono_tz::Tz,
    /// What they were built with, for errors that name a limit.
    pub limits: Limits,
}

pub fn build(limits: &Limits) -> Engines {
    let mut constants = build_one(limits);
    constants.set_strict_variables(false);
    Engines {
        run: build_one(limits),
        constants,
        default_tz: chrono_tz::UTC,
        limits: limits.clone(),
    }
}

impl Engines {
    pub fn with_timezone(mut self, tz: chrono_tz::Tz) -> Self {
        self.default_tz = tz;
        super::batteries::set_default_zone(&mut self.run, tz);
        self
    }
}

/// A field LINE did not send reads as `()` however deep the path: `event.postback.params.date`
/// on a postback without params is `()`, as `event.postback.params` already is. (Rhai looks a
/// property up through the indexer when no getter matches.) Test files read events the same way.
pub fn missing_fields_are_unit(engine: &mut Engine) {
    engine.register_indexer_get(|_: &mut (), _: &str| ());
}

fn build_one(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_depth)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_modules(MAX_MODULES)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(false);
    // No eval: a script's code is what `check` saw. Modules are resolved from lib/ while a
    // script compiles and embedded in it: nothing is read from disk while handlers run.
    engine.disable_symbol("eval");
    engine.set_module_resolver(super::library::Resolver);
    engine.on_progress(|ops| {
        if ops % CLOCK_CHECK_EVERY == 0 && context::past_deadline() {
            Some(Dynamic::from("time limit"))
        } else {
            None
        }
    });
    engine.on_print(host::script_log);
    engine.on_debug(|text, _source, pos| {
        host::script_log(&format!("[line {}] {text}", pos.line().unwrap_or(0)))
    });
    missing_fields_are_unit(&mut engine);
    host::register(&mut engine);
    super::pause::register(&mut engine);
    super::http::register(&mut engine);
    super::line_api::register(&mut engine);
    super::batteries::register(&mut engine);
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_reads_as_unit_however_deep() {
        let engines = build(&Limits::default());
        let script = r#"
            let event = #{ type: "postback", postback: #{ data: "x" } };
            [event.postback.params.date, event.nothing.at.all, event["postback"]["params"]["time"],
             event.postback.data]
        "#;
        let got = engines.run.eval::<rhai::Array>(script).expect(script);
        assert!(got[..3].iter().all(Dynamic::is_unit), "{got:?}");
        assert_eq!(got[3].clone().into_string().unwrap(), "x");
        // Writing through a missing field still fails: there is nothing to write into.
        assert!(engines
            .run
            .eval::<Dynamic>("let e = #{}; e.a.b = 1; e")
            .is_err());
    }
}
