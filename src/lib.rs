//! linebotd: run LINE Messaging API bots whose logic lives in Rhai scripts.
//!
//! The data flow, one module per stage:
//!
//! | module       | what it does                                                        |
//! |--------------|---------------------------------------------------------------------|
//! | [`webhook`]  | `POST /callback`: verify the signature on raw bytes, parse events   |
//! | [`inbox`]    | events stored before the 200, deduplicated, re-queued after a crash |
//! | [`store`]    | the durable inbox, outbox, script state, followers and schedules    |
//! | [`dispatch`] | handler threads: per-conversation order, bounded parallelism        |
//! | [`script`]   | Rhai engine, host API, limits, hot reload                           |
//! | [`line`]     | the LINE Messaging API client: sending, retries, clear errors      |
//! | [`schedule`] | cron schedules declared in scripts: parsing, next times, the timer    |
//! | [`outbox`]   | durable push/multicast/broadcast delivery with retry keys          |
//! | [`daemon`]   | wires the stages together and runs them until a shutdown signal     |
//! | [`observe`]  | every observable event: its log line and its metrics in one place    |
//! | [`metrics`]  | the Prometheus registry behind `GET /metrics`                        |
//! | [`admin`]    | `GET /metrics` and `GET /readyz`, behind the optional admin token     |
//! | [`config`]   | `linebotd.toml` + environment + flags → one validated `Config`      |
//! | [`cli`]      | the command-line interface; [`cmd`] the commands besides `run`      |
//! | [`fakeline`] | an in-process fake LINE API for `simulate`, `test` and `dev`        |
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod fakeline;
pub mod inbox;
pub mod line;
pub mod log_json;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod outbox;
pub mod schedule;
pub mod script;
pub mod store;
pub mod webhook;
