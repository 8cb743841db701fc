//! linebotd: run LINE Messaging API bots whose logic lives in Rhai scripts.
//!
//! Three wings and two standalone parts:
//!
//! | module       | what it holds                                                              |
//! |--------------|----------------------------------------------------------------------------|
//! | [`pipeline`] | an event's way through the daemon, in flow order: webhook → inbox → dispatch → script → outbox, and schedules |
//! | [`line`]     | the LINE Messaging API client: one reqwest client, rate limits, retries    |
//! | [`store`]    | the durable inbox, outbox, script state, followers and schedules (SQLite)  |
//! | [`ops`]      | what operators see: `/metrics`, `/readyz`, observable events, logging      |
//! | [`dev`]      | the local loop: the fake LINE API, `dev`, `chat`, `simulate` and `test`    |
//! | [`daemon`]   | wires the pipeline together and runs it until a shutdown signal            |
//! | [`config`]   | `linebotd.toml` + environment + flags → one validated `Config`             |
//! | [`cli`]      | the command-line interface; [`cmd`] the other operator commands            |
#![forbid(unsafe_code)]

pub mod cli;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod dev;
pub mod line;
pub mod ops;
pub mod pipeline;
pub mod store;
