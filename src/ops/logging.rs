//! tracing set-up: an `EnvFilter` from `RUST_LOG` (default `info`; reqwest never below info),
//! text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat) {
    init_with_default(format, "info");
}

/// [`init`] with another filter when `RUST_LOG` is not set, e.g. only warnings and the scripts'
/// own log lines under `dev --chat`, where request lines would bury the conversation.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // reqwest logs whole URLs at debug (redirects), query strings included, where scripts may
    // have put an API key: it stays at info whatever RUST_LOG says.
    let filter = match "reqwest=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Flat lines: span fields (webhookEventId, script, handler) at the top level.
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::ops::log_json::FlatJson)
            .try_init(),
    };
}
