//! The end-to-end benchmark's unit tests. `main.rs` is a `harness = false` bench, whose
//! `#[test]` functions nothing would run; this root mounts the same modules under the test
//! harness so `cargo test` checks the mock, the load generator and the report.

// Only the tests call into these modules here; `main.rs` uses the rest (and the re-exports
// such as `mock::Mock`).
#![allow(dead_code, unused_imports)]

mod baseline;
mod cpu;
mod daemon;
mod load;
mod mock;
mod report;
