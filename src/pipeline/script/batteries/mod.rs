//! The small everyday functions a bot author reaches for first: time in a zone, text patterns
//! (regex) and chance. Pure functions of their arguments, so they need no call context.

pub mod literal;
pub mod random;
pub mod regex;
pub mod time;

use rhai::{Engine, EvalAltResult};

pub use self::time::set_default_zone;

type BatteryResult<T> = Result<T, Box<EvalAltResult>>;

/// Registers every battery function on `engine`.
pub fn register(engine: &mut Engine) {
    time::register(engine);
    regex::register(engine);
    random::register(engine);
}

/// A run-time error that names the function, as every battery error does.
fn error(function: &str, message: impl std::fmt::Display) -> Box<EvalAltResult> {
    format!("{function}: {message}").into()
}
