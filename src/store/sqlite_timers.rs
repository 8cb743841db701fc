//! The SQLite side of one-off timers (schema version 6).

use rusqlite::{params, Row};

use super::shared::{count, sort_timers, sql_limit, timer_data, RawTimer, TIMER_COLUMNS};
use super::sqlite::{sql_err, SqliteStore};
use super::{StoreError, Timer};

/// Reads a row in [`TIMER_COLUMNS`] order.
fn raw_timer(r: &Row<'_>) -> rusqlite::Result<RawTimer> {
    Ok(RawTimer {
        id: r.get(0)?,
        script: r.get(1)?,
        function: r.get(2)?,
        data: r.get(3)?,
        due_ms: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

impl SqliteStore {
    pub(crate) fn add_timer(&self, t: &Timer, max_pending: u64) -> Result<bool, StoreError> {
        let data = timer_data(t)?;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(sql_err)?;
        let known: i64 = tx
            .query_row("SELECT count(*) FROM timers WHERE id = ?1", [&t.id], |r| {
                r.get(0)
            })
            .map_err(sql_err)?;
        if known > 0 {
            return Ok(false);
        }
        let pending: i64 = tx
            .query_row(
                "SELECT count(*) FROM timers WHERE done_ms IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(sql_err)?;
        if count(pending) >= max_pending {
            return Err(StoreError::TooManyTimers { limit: max_pending });
        }
        tx.execute(
            "INSERT INTO timers (id, script, function, data, due_ms, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![t.id, t.script, t.function, data, t.due_ms, t.created_ms],
        )
        .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        Ok(true)
    }

    pub(crate) fn pending_timers(&self, limit: usize) -> Result<Vec<Timer>, StoreError> {
        let sql = format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE done_ms IS NULL
             ORDER BY due_ms, id LIMIT ?1"
        );
        self.query_timers(&sql, params![sql_limit(limit)])
    }

    pub(crate) fn take_due_timers(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Timer>, StoreError> {
        // One statement claims and returns, the shape a shared server database needs too.
        let sql = format!(
            "UPDATE timers SET lease_until_ms = ?1 + ?2
             WHERE id IN (SELECT id FROM timers
                          WHERE done_ms IS NULL AND due_ms <= ?1
                            AND (lease_until_ms IS NULL OR lease_until_ms <= ?1)
                          ORDER BY due_ms, id LIMIT ?3)
             RETURNING {TIMER_COLUMNS}"
        );
        let mut timers = self.query_timers(&sql, params![now_ms, lease_ms, sql_limit(limit)])?;
        sort_timers(&mut timers);
        Ok(timers)
    }

    pub(crate) fn cancel_timer(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self
            .lock()
            .execute(
                "UPDATE timers SET done_ms = ?2, outcome = 'cancelled'
                 WHERE id = ?1 AND done_ms IS NULL
                   AND (lease_until_ms IS NULL OR lease_until_ms <= ?2)",
                params![id, now_ms],
            )
            .map_err(sql_err)?;
        Ok(changed > 0)
    }

    pub(crate) fn finish_timer(
        &self,
        id: &str,
        outcome: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE timers SET done_ms = ?2, outcome = ?3, lease_until_ms = NULL
                 WHERE id = ?1 AND done_ms IS NULL",
                params![id, now_ms, outcome],
            )
            .map_err(sql_err)?;
        Ok(())
    }

    pub(crate) fn prune_timers(&self, cutoff: i64) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "DELETE FROM timers WHERE done_ms IS NOT NULL AND done_ms < ?1",
                [cutoff],
            )
            .map_err(sql_err)?;
        Ok(())
    }

    fn query_timers(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Timer>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
        let raw = stmt
            .query_map(params, raw_timer)
            .map_err(sql_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_err)?;
        raw.into_iter().map(RawTimer::decode).collect()
    }
}
