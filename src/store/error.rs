//! Why the store could not do what was asked, worded for the person running the bot.

use super::is_postgres;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store {path}: {message} ({})", open_hint(.path))]
    Open { path: String, message: String },
    #[error("store {path} was written by a newer linebotd (schema version {found}, this build knows up to {known}); upgrade linebotd or use another store file")]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("store error: {0}")]
    Database(String),
    /// The database aborted a transaction for a conflict with another one (PostgreSQL's
    /// deadlock or serialization failure): running it again is the remedy.
    #[error("store error: {0} (a conflict with another transaction)")]
    Conflict(String),
    #[error("store is damaged: {0} (restore it from a backup or move the file away)")]
    Corrupt(String),
    #[error("{what} is too large: {actual} bytes, the limit is {limit} bytes")]
    TooLarge {
        what: &'static str,
        limit: usize,
        actual: usize,
    },
    #[error("{limit} timers are already pending, the most a bot may have; cancel some with cancel_later(id) or wait for them to run")]
    TooManyTimers { limit: u64 },
    #[error("no delivery with retry key `{0}` in the outbox")]
    UnknownDelivery(String),
    #[error("the inbox writer has stopped")]
    Closed,
}

/// What to look at when the store at `path` cannot be opened.
fn open_hint(path: &str) -> &'static str {
    if is_postgres(path) {
        "check the URL, that the server runs and that its user may connect"
    } else {
        "check the path and permissions"
    }
}
