//! The commands besides `run`, one module each; `main.rs` only picks one.

pub mod chat;
pub mod dev;
pub mod events;
pub mod local;
pub mod outbox;
pub mod simulate;
pub mod test;
