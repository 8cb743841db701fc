//! LINE in `linebotd test`: `line_fails(endpoint, status, message)` makes the next call to an
//! endpoint answer an error with LINE's body `{"message": message}`, so a test can try what the
//! bot does when LINE refuses: a failed push reaches `on_delivery_failed` (a 4xx) or is tried
//! again by the outbox (a 5xx or 429); a failed reply throws in the handler, or for
//! "Invalid reply token" falls back to a push.

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult};

use crate::dev::fakeline::FakeLine;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Registers `line_fails`; `fake` gives the running test's fake LINE, if any.
pub fn register(
    engine: &mut Engine,
    fake: impl Fn() -> Option<Arc<FakeLine>> + Send + Sync + 'static,
) {
    engine.register_fn(
        "line_fails",
        move |endpoint: &str, status: i64, message: &str| -> RhaiResult<()> {
            let fake = fake().ok_or_else(|| error("line_fails only works inside a test"))?;
            fake.fail_next(endpoint, status, message)
                .map_err(|e| error(format!("line_fails: {e}")))
        },
    );
}

fn error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        rhai::Position::NONE,
    ))
}
