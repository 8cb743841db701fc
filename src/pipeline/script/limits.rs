//! The limits every script call runs under (`[limits]` in `linebotd.toml`).

use serde::Deserialize;

/// Limits applied to every script call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Rhai operations per call.
    pub max_operations: u64,
    /// Wall-clock milliseconds per call.
    pub max_call_ms: u64,
    /// Nested function calls.
    pub max_call_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Handlers running or waiting on LINE at once, each on a thread of its own, started on
    /// demand and ended when idle (events of one conversation always run one at a time).
    pub workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 10_000_000,
            max_call_ms: 10_000,
            max_call_depth: 64,
            max_string_size: 1024 * 1024,
            max_array_size: 100_000,
            max_map_size: 100_000,
            // LINE's 2,000 replies/s at 100 ms round trips keeps ~200 waiting; a thousand
            // handlers waiting on a 1 s web API still leave room for the rest.
            workers: 1024,
        }
    }
}

/// Refuses, with an error `try` can catch, a blob (or string) of `len` bytes that a script
/// could not hold. Rhai stops a whole call whose value grows past `max_array_size` (blobs) or
/// `max_string_size` (strings) with an error no `try` catches, so a download bigger than the
/// limit would fail the handler silently for the user; this names the setting instead.
pub(super) fn check_fits(engine: &rhai::Engine, len: usize, blob: bool) -> Result<(), String> {
    let (max, setting, kind) = if blob {
        (engine.max_array_size(), "max_array_size", "blob")
    } else {
        (engine.max_string_size(), "max_string_size", "string")
    };
    if max == 0 || len <= max {
        return Ok(());
    }
    Err(format!(
        "the answer is {len} bytes, more than a script may hold as a {kind} \
         (limits.{setting} is {max}); raise {setting} under [limits] in linebotd.toml to handle \
         answers this big"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fits_names_the_limit_of_blobs_and_strings() {
        let mut engine = rhai::Engine::new();
        engine.set_max_array_size(10).set_max_string_size(20);
        assert!(check_fits(&engine, 10, true).is_ok());
        assert!(check_fits(&engine, 20, false).is_ok());
        let err = check_fits(&engine, 11, true).unwrap_err();
        assert!(err.starts_with("the answer is 11 bytes"), "{err}");
        assert!(
            err.contains("as a blob (limits.max_array_size is 10)"),
            "{err}"
        );
        let err = check_fits(&engine, 21, false).unwrap_err();
        assert!(
            err.contains("as a string (limits.max_string_size is 20)"),
            "{err}"
        );
        engine.set_max_array_size(0);
        assert!(check_fits(&engine, usize::MAX, true).is_ok());
    }
}
