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
