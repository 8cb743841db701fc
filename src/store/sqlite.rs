//! The SQLite [`Store`]: one file in WAL mode behind one connection; inbox and key/value here,
//! outbox, followers and schedules in `sqlite_outbox.rs`, timers in `sqlite_timers.rs`.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode};
use serde_json::Value;

use super::shared::{count, kv_text, kv_value, sql_limit, CommitHealth};
use super::sqlite_inbox::inbox_transaction;
use super::{
    Delivery, InboxEvent, Mark, NewDelivery, NewInboxEvent, Store, StoreError, SyncMode, Timer,
};

/// Inbox rows deleted per transaction when pruning.
const PRUNE_CHUNK: usize = 5_000;

pub(crate) struct SqliteStore {
    // One connection for reads and writes: SQLite has a single writer anyway, the daemon's reads
    // are short, and ":memory:" databases exist per connection, so a second one would see an
    // empty database.
    pub(super) conn: Mutex<Connection>,
    /// How the inbox's last commit went: readiness reports a failure until one succeeds.
    pub(super) last_commit: CommitHealth,
    /// How inbox transactions commit; everything else commits with NORMAL.
    pub(super) inbox_sync: SyncMode,
    /// Copies the WAL into the database beside the writer (none for `:memory:`).
    pub(super) _checkpointer: Option<super::sqlite_file::Checkpointer>,
}

/// Turns a rusqlite error into ours, telling damage apart from ordinary failures.
pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Database(e.to_string()),
    }
}

/// Milliseconds since the Unix epoch: the unit of every timestamp the store keeps.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl SqliteStore {
    /// Sent deliveries and done timers older than `cutoff`.
    fn prune_outbox(&self, cutoff: i64) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "DELETE FROM outbox WHERE status = 'sent' AND updated_ms < ?1",
                [cutoff],
            )
            .map_err(sql_err)?;
        self.prune_timers(cutoff)
    }

    /// The transaction behind [`Store::inbox_write`].
    fn write_inbox(
        &self,
        new: &[NewInboxEvent],
        marks: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut conn = self.lock();
        self.with_inbox_sync(&mut conn, |conn| inbox_transaction(conn, new, marks))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done write: an open rusqlite
        // Transaction rolls back when dropped during unwinding, so the connection is usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for SqliteStore {
    forward_to_inherent!();

    fn inbox_write(
        &self,
        new: &[NewInboxEvent],
        marks: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let outcome = self.write_inbox(new, marks);
        self.note_commit(outcome.as_ref().map(drop));
        outcome
    }

    fn inbox_writable(&self, fresh: Duration) -> Result<(), StoreError> {
        self.writable(fresh)
    }

    fn inbox_sent_calls(&self, seq: i64) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT call_key FROM sent_calls WHERE seq = ?1 ORDER BY call_key")
            .map_err(sql_err)?;
        let rows = stmt.query_map([seq], |r| r.get(0)).map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    fn inbox_pending(&self, after_seq: i64, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT i.seq, p.payload, i.received_ms, i.started_ms IS NOT NULL
                 FROM inbox i JOIN inbox_payload p ON p.seq = i.seq
                 WHERE i.done_ms IS NULL AND i.seq > ?1 ORDER BY i.seq LIMIT ?2",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map(params![after_seq, sql_limit(limit)], |r| {
                Ok(InboxEvent {
                    seq: r.get(0)?,
                    payload: r.get(1)?,
                    received_ms: r.get(2)?,
                    started: r.get(3)?,
                })
            })
            .map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    fn inbox_backlog(&self) -> Result<u64, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT count(*) FROM inbox WHERE done_ms IS NULL")
            .map_err(sql_err)?;
        stmt.query_row([], |r| r.get(0)).map(count).map_err(sql_err)
    }

    fn prune(&self, now_ms: i64, dedupe_keep_ms: i64) -> Result<(), StoreError> {
        let cutoff = now_ms.saturating_sub(dedupe_keep_ms);
        // Rows are appended in arrival order, so every row old enough lies below the first one
        // received after the cutoff: finding it reads only the rows about to go. The newest row
        // always stays, so a new event never gets a `seq` at or below one the dispatcher has
        // already seen (SQLite hands out max(seq) + 1).
        let boundary: Option<i64> = self
            .lock()
            .query_row(
                "SELECT coalesce(
                     (SELECT seq FROM inbox WHERE received_ms >= ?1 ORDER BY seq LIMIT 1),
                     (SELECT max(seq) FROM inbox))",
                [cutoff],
                |r| r.get(0),
            )
            .map_err(sql_err)?;
        let Some(boundary) = boundary else {
            return self.prune_outbox(cutoff);
        };
        // In chunks, each its own transaction, so webhook commits wait for one chunk at most
        // rather than for the whole day's deletions.
        loop {
            let deleted = self
                .lock()
                .execute(
                    "DELETE FROM inbox WHERE seq IN (
                         SELECT seq FROM inbox
                         WHERE seq < ?1 AND done_ms IS NOT NULL AND received_ms < ?2
                         ORDER BY seq LIMIT ?3)",
                    params![boundary, cutoff, PRUNE_CHUNK],
                )
                .map_err(sql_err)?;
            if deleted < PRUNE_CHUNK {
                break;
            }
        }
        self.prune_outbox(cutoff)
    }

    fn kv_get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .map_err(sql_err)?;
        let mut rows = stmt.query([key]).map_err(sql_err)?;
        let Some(row) = rows.next().map_err(sql_err)? else {
            return Ok(None);
        };
        let text: String = row.get(0).map_err(sql_err)?;
        kv_value(key, &text).map(Some)
    }

    fn kv_set(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        let text = kv_text(key, value)?;
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO kv (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .map_err(sql_err)?;
        stmt.execute(params![key, text]).map_err(sql_err)?;
        Ok(())
    }

    fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("DELETE FROM kv WHERE key = ?1")
            .map_err(sql_err)?;
        Ok(stmt.execute([key]).map_err(sql_err)? > 0)
    }

    fn kv_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        // Not LIKE: it treats % and _ as wildcards and ignores ASCII case. Keys use the BINARY
        // collation (byte order, same as Rust's str order), so every key with the prefix sits
        // in one contiguous index range starting at the prefix itself.
        let mut stmt = conn
            .prepare_cached("SELECT key FROM kv WHERE key >= ?1 ORDER BY key")
            .map_err(sql_err)?;
        let mut rows = stmt.query([prefix]).map_err(sql_err)?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next().map_err(sql_err)? {
            let key: String = row.get(0).map_err(sql_err)?;
            if !key.starts_with(prefix) {
                break;
            }
            keys.push(key);
        }
        Ok(keys)
    }

    fn kv_clear(&self) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM kv", [])
            .map(drop)
            .map_err(sql_err)
    }

    fn followers(&self) -> Result<Vec<String>, StoreError> {
        self.list_followers()
    }

    fn follower_count(&self) -> Result<u64, StoreError> {
        self.count_followers()
    }

    fn schedule_last_run(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.last_run(key)
    }

    fn schedule_claim_run(&self, key: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.claim_run(key, at_ms)
    }
}
