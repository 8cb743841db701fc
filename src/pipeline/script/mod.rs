//! The Rhai script runtime: one engine, compiled scripts swapped atomically on reload, the host
//! API, and the safety limits every call runs under.

pub mod batteries;
pub mod context;
pub mod convert;
pub mod engine;
pub mod error;
pub mod host;
pub mod http;
pub mod library;
pub mod limits;
pub mod line_api;
pub mod loader;
pub mod pause;
mod reply;
pub mod resolve;
mod rhai_functions;
pub mod runtime;
pub mod source;
pub mod state;
pub mod suggest;
pub mod timers;
pub mod watch;
pub mod web;

pub use context::Provenance;
pub use error::{LoadError, RunError, RunErrorKind};
pub use host::Host;
pub use limits::Limits;
pub use loader::{Script, ScriptSet};
pub use runtime::{Dispatched, ReloadReport, Runtime};
