//! The operator commands besides `run` and the local loop (which lives in `dev/`), one
//! module each; `main.rs` only picks one.

pub mod check;
pub mod definitions;
mod error;
pub mod init;
pub mod invoked;
pub mod outbox;
pub mod schedules;

pub use error::{exit, CommandError};
