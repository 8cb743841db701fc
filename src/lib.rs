//! linebotd: run LINE Messaging API bots whose logic lives in Rhai scripts.
//!
//! The data flow, one module per stage:
//!
//! | module       | what it does                                                        |
//! |--------------|---------------------------------------------------------------------|
//! | [`webhook`]  | `POST /callback`: verify the signature on raw bytes, parse events   |
//! | [`line`]     | the LINE API client: endpoints, messages, retries, rate limits      |
//! | [`daemon`]   | wires the stages together and runs them until a shutdown signal     |
//! | [`config`]   | `linebotd.toml` + environment + flags → one validated `Config`      |
//! | [`cli`]      | the command-line interface                                          |
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod line;
pub mod logging;
pub mod webhook;
