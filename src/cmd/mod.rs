//! The commands besides `run`, one module each; `main.rs` only picks one.

pub mod outbox;
pub mod schedules;
