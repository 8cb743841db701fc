//! `sleep(seconds)`: a handler waits without holding up other conversations (the wait is
//! reported to the handler pool, like a wait on LINE), and never past its own time limit
//! (`limits.max_call_ms`). Rhai's own `sleep` knows neither, so this one replaces it.

use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT};

use super::context;

/// The longest sleep asked for that is taken as a number at all: a day.
const MAX_SLEEP_SECS: f64 = 86_400.0;

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("sleep", |seconds: INT| pause(seconds as FLOAT))
        .register_fn("sleep", pause)
        .register_fn(
            "sleep",
            |other: Dynamic| -> Result<(), Box<EvalAltResult>> {
                Err(format!(
                    "sleep({other}): give a number of seconds, not a {}",
                    super::suggest::kind(&other)
                )
                .into())
            },
        );
}

fn pause(seconds: FLOAT) -> Result<(), Box<EvalAltResult>> {
    if !(0.0..=MAX_SLEEP_SECS).contains(&seconds) {
        return Err(format!("sleep({seconds}): give a number of seconds from 0 to 86400").into());
    }
    let wanted = Duration::from_secs_f64(seconds);
    let left = context::current(|ctx| ctx.deadline.saturating_duration_since(Instant::now()));
    let wait = left.map_or(wanted, |left| wanted.min(left));
    context::report_wait(true);
    std::thread::sleep(wait);
    context::report_wait(false);
    if wait < wanted {
        return Err(format!(
            "sleep({seconds}): longer than the handler had left of limits.max_call_ms ({} ms); \
             it stopped waiting there. For a reminder later, use later(seconds, \"function\", data)",
            left.unwrap_or_default().as_millis()
        )
        .into());
    }
    Ok(())
}
