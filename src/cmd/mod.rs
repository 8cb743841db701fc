//! The commands besides `run`, one module each; `main.rs` only picks one.

pub mod chat;
pub mod check;
pub mod definitions;
pub mod dev;
mod error;
pub mod events;
pub mod init;
pub mod local;
pub mod outbox;
pub mod schedules;
pub mod simulate;
pub mod test;
mod test_http;

pub use error::{exit, CommandError};
