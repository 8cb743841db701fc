//! The local loop, no LINE account needed: a fake LINE API, `linebotd dev` (the daemon against
//! it), `chat`, `simulate` (one event) and `test` (`*.test.rhai`), built on one local bot.

mod actions;
pub mod chat;
pub mod console;
pub mod events;
pub mod fakeline;
pub mod local;
pub mod notes;
pub mod server;
pub mod simulate;
pub mod test;
mod test_engine;
mod test_http;
mod test_line;
