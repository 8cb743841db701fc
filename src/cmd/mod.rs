//! The commands besides `run`, one module each; `main.rs` only picks one.

pub mod check;
pub mod definitions;
pub mod init;
pub mod outbox;
pub mod schedules;
