//! What the SQLite and PostgreSQL back ends share: the checks and encodings around a value
//! before it is written, the decoding of stored rows into the public types, and the memory of
//! the inbox's last commit that readiness reads. Only the SQL differs between the two.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Delivery, DeliveryKind, DeliveryStatus, StoreError, Timer, MAX_KEY_BYTES};
use super::{NewDelivery, MAX_VALUE_BYTES};

/// The delivery columns, in the order [`RawDelivery`] reads them (same names in both schemas).
pub(crate) const DELIVERY_COLUMNS: &str = "retry_key, kind, payload, source, status, attempts, \
                                           last_error, created_ms, updated_ms, request_id, \
                                           next_attempt_ms";

/// The timer columns, in the order [`RawTimer`] reads them.
pub(crate) const TIMER_COLUMNS: &str = "id, script, function, data, due_ms, created_ms";

/// [`super::Store::schedule_claim_run`] in SQL both databases take (`$n` parameters are numbered
/// in SQLite too): one row changed when the run is this caller's. The row lock PostgreSQL takes
/// on a conflict makes a second instance see the first one's time, and change nothing.
pub(crate) const CLAIM_RUN: &str = "INSERT INTO schedules (key, last_run_ms) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET last_run_ms = excluded.last_run_ms
     WHERE excluded.last_run_ms > schedules.last_run_ms";

/// The JSON text of a `kv_set` value, once the key and the text are within their limits.
pub(crate) fn kv_text(key: &str, value: &Value) -> Result<String, StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::TooLarge {
            what: "key",
            limit: MAX_KEY_BYTES,
            actual: key.len(),
        });
    }
    // serde_json writes 1.0 as "1.0" and 1 as "1", so integers and floats stay distinct.
    let text = serde_json::to_string(value)
        .map_err(|e| StoreError::Database(format!("cannot encode value: {e}")))?;
    if text.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge {
            what: "value",
            limit: MAX_VALUE_BYTES,
            actual: text.len(),
        });
    }
    Ok(text)
}

/// A stored `kv` value back as JSON; anything else is damage.
pub(crate) fn kv_value(key: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("value of key `{key}` is not JSON: {e}")))
}

/// The JSON text of a timer's data, within [`MAX_VALUE_BYTES`].
pub(crate) fn timer_data(t: &Timer) -> Result<String, StoreError> {
    let data = serde_json::to_string(&t.data)
        .map_err(|e| StoreError::Database(format!("cannot encode timer data: {e}")))?;
    if data.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge {
            what: "timer data",
            limit: MAX_VALUE_BYTES,
            actual: data.len(),
        });
    }
    Ok(data)
}

/// The JSON text of a delivery's request body.
pub(crate) fn delivery_payload(d: &NewDelivery) -> Result<String, StoreError> {
    serde_json::to_string(&d.payload)
        .map_err(|e| StoreError::Database(format!("cannot encode delivery payload: {e}")))
}

/// Store counts are never negative; a negative one would be damage.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Both databases take limits as i64; anything bigger means "no limit" in practice.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// An outbox row as stored; decoded apart from the driver's row so a bad value reports as
/// damage.
pub(crate) struct RawDelivery {
    pub retry_key: String,
    pub kind: String,
    pub payload: String,
    pub source: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub request_id: Option<String>,
    pub next_attempt_ms: i64,
}

impl RawDelivery {
    pub(crate) fn decode(self) -> Result<Delivery, StoreError> {
        let damaged =
            |what: String| StoreError::Corrupt(format!("outbox row `{}`: {what}", self.retry_key));
        let kind: DeliveryKind = self.kind.parse().map_err(|e| damaged(format!("{e}")))?;
        let status: DeliveryStatus = self.status.parse().map_err(|e| damaged(format!("{e}")))?;
        let payload = serde_json::from_str(&self.payload)
            .map_err(|e| damaged(format!("payload is not JSON: {e}")))?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| damaged(format!("attempts {} out of range", self.attempts)))?;
        Ok(Delivery {
            retry_key: self.retry_key,
            kind,
            payload,
            source: self.source,
            status,
            attempts,
            last_error: self.last_error,
            next_attempt_ms: self.next_attempt_ms,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            request_id: self.request_id,
        })
    }
}

/// A timer row as stored; its data is decoded apart so bad JSON reports as damage.
pub(crate) struct RawTimer {
    pub id: String,
    pub script: String,
    pub function: String,
    pub data: String,
    pub due_ms: i64,
    pub created_ms: i64,
}

impl RawTimer {
    pub(crate) fn decode(self) -> Result<Timer, StoreError> {
        let data = serde_json::from_str(&self.data).map_err(|e| {
            StoreError::Corrupt(format!("data of timer `{}` is not JSON: {e}", self.id))
        })?;
        Ok(Timer {
            id: self.id,
            script: self.script,
            function: self.function,
            data,
            due_ms: self.due_ms,
            created_ms: self.created_ms,
        })
    }
}

/// Timers in the order the contract promises (`RETURNING` gives none): earliest due first.
pub(crate) fn sort_timers(timers: &mut [Timer]) {
    timers.sort_by(|a, b| (a.due_ms, &a.id).cmp(&(b.due_ms, &b.id)));
}

/// How the inbox's last commit (or probe) went: readiness reports a failure until a commit
/// succeeds again, and probes only when no commit succeeded lately.
#[derive(Default)]
pub(crate) struct CommitHealth(Mutex<Option<(Instant, Option<StoreError>)>>);

impl CommitHealth {
    pub(crate) fn note(&self, outcome: Result<(), &StoreError>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), outcome.err().cloned()));
    }

    /// See [`super::Store::inbox_writable`]: `probe` runs only when the last commit is older
    /// than `fresh` or failed.
    pub(crate) fn check(
        &self,
        fresh: Duration,
        probe: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if let Some((at, None)) = &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < fresh {
                return Ok(());
            }
        }
        let outcome = probe();
        self.note(outcome.as_ref().copied());
        outcome
    }
}

/// The [`super::Store`] methods both back ends answer the same way, with an inherent method of
/// the same shape (in `sqlite_outbox.rs` / `postgres_outbox.rs` and their timer files): written
/// once here, expanded inside each `impl Store`.
macro_rules! forward_to_inherent {
    () => {
        fn outbox_enqueue(&self, d: &NewDelivery) -> Result<bool, StoreError> {
            self.enqueue(d)
        }

        fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
            self.due(now_ms, limit)
        }

        fn outbox_lanes(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
            self.lanes(after, limit)
        }

        fn outbox_next(&self, lane: &str) -> Result<Option<Delivery>, StoreError> {
            self.next_in_lane(lane)
        }

        fn outbox_mark_sent(
            &self,
            retry_key: &str,
            request_id: Option<&str>,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            self.mark_sent(retry_key, request_id, now_ms)
        }

        fn outbox_mark_retry(
            &self,
            retry_key: &str,
            attempts: u32,
            next_attempt_ms: i64,
            last_error: &str,
        ) -> Result<(), StoreError> {
            self.mark_retry(retry_key, attempts, next_attempt_ms, last_error)
        }

        fn outbox_mark_failed(
            &self,
            retry_key: &str,
            error: &str,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            self.mark_failed(retry_key, error, now_ms)
        }

        fn outbox_list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
            self.list(limit)
        }

        fn outbox_counts(&self) -> Result<(u64, u64), StoreError> {
            self.counts()
        }

        fn follower_set(
            &self,
            user_id: &str,
            following: bool,
            at_ms: i64,
        ) -> Result<(), StoreError> {
            self.set_follower(user_id, following, at_ms)
        }

        fn timer_add(&self, timer: &Timer, max_pending: u64) -> Result<bool, StoreError> {
            self.add_timer(timer, max_pending)
        }

        fn timers_pending(&self, limit: usize) -> Result<Vec<Timer>, StoreError> {
            self.pending_timers(limit)
        }

        fn timers_take_due(
            &self,
            now_ms: i64,
            lease_ms: i64,
            limit: usize,
        ) -> Result<Vec<Timer>, StoreError> {
            self.take_due_timers(now_ms, lease_ms, limit)
        }

        fn timer_cancel(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
            self.cancel_timer(id, now_ms)
        }

        fn timer_done(&self, id: &str, outcome: &str, now_ms: i64) -> Result<(), StoreError> {
            self.finish_timer(id, outcome, now_ms)
        }
    };
}
