//! Label values that cost no allocation once seen, and a cap on how many distinct ones a label
//! may take.
//!
//! `prometheus-client` looks a series up by an owned label set. Building that set from `String`s
//! would allocate on every increment; interning each value as an `Arc<str>` makes the repeat
//! case a read-locked hash lookup and a reference-count bump.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

/// The distinct values one label has taken, each stored once.
#[derive(Debug)]
pub(super) struct LabelValues {
    seen: RwLock<HashSet<Arc<str>>>,
    /// Most distinct values kept; later newcomers are recorded as `overflow`.
    cap: usize,
    overflow: Arc<str>,
}

impl LabelValues {
    /// Every value is kept: for labels whose values the daemon or its scripts' files fix.
    pub(super) fn unbounded() -> Self {
        Self::capped(usize::MAX, "other")
    }

    /// At most `cap` distinct values; any further one is recorded as `overflow`, so input the
    /// daemon does not control (a script's URLs) cannot grow the series without bound.
    pub(super) fn capped(cap: usize, overflow: &str) -> Self {
        Self {
            seen: RwLock::new(HashSet::new()),
            cap,
            overflow: Arc::from(overflow),
        }
    }

    /// The shared copy of `value`, or the overflow value once the cap is reached.
    pub(super) fn get(&self, value: &str) -> Arc<str> {
        {
            let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = seen.get(value) {
                return v.clone();
            }
            // Past the cap the answer is known without the write lock: a script calling many
            // hosts must not serialise on it.
            if seen.len() >= self.cap {
                return self.overflow.clone();
            }
        }
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = seen.get(value) {
            return v.clone();
        }
        if seen.len() >= self.cap {
            return self.overflow.clone();
        }
        let v: Arc<str> = Arc::from(value);
        seen.insert(v.clone());
        v
    }
}

/// The `status` label of an outbound HTTP call: a three-digit code as sent, or one of the words
/// for calls that got no answer. Anything else becomes `error`, so a caller's mistake cannot
/// put free text (an error message) into a label.
pub(super) fn http_status(status: &str) -> &str {
    let code = status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit());
    if code || matches!(status, "error" | "timeout" | "refused") {
        status
    } else {
        "error"
    }
}
