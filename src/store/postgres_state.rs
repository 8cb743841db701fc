//! Script state and one-off timers on PostgreSQL: the statements of `sqlite.rs`' key/value part
//! and `sqlite_timers.rs`, with the same checks and decoding (`shared.rs`).

use serde_json::Value;
use tokio_postgres::Row;

use super::postgres::{pg_err, PgStore};
use super::shared::TIMER_COLUMNS;
use super::shared::{kv_text, kv_value, sort_timers, sql_limit, timer_data, RawTimer};
use super::{StoreError, Timer};

/// Reads a row in [`TIMER_COLUMNS`] order.
fn raw_timer(r: &Row) -> Result<RawTimer, tokio_postgres::Error> {
    Ok(RawTimer {
        id: r.try_get(0)?,
        script: r.try_get(1)?,
        function: r.try_get(2)?,
        data: r.try_get(3)?,
        due_ms: r.try_get(4)?,
        created_ms: r.try_get(5)?,
    })
}

impl PgStore {
    pub(crate) fn get_value(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let rows = self.query("SELECT value FROM kv WHERE key = $1", &[&key])?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let text: String = row.try_get(0).map_err(pg_err)?;
        kv_value(key, &text).map(Some)
    }

    pub(crate) fn set_value(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        let text = kv_text(key, value)?;
        self.execute(
            "INSERT INTO kv (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &text],
        )
        .map(drop)
    }

    pub(crate) fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Not LIKE (wildcards): keys collate as "C", byte order, so every key with the prefix
        // sits in one index range starting at the prefix itself; `starts_with` ends it.
        let rows = self.query(
            "SELECT key FROM kv WHERE key >= $1 ORDER BY key",
            &[&prefix],
        )?;
        let mut keys = Vec::new();
        for row in &rows {
            let key: String = row.try_get(0).map_err(pg_err)?;
            if !key.starts_with(prefix) {
                break;
            }
            keys.push(key);
        }
        Ok(keys)
    }

    fn timers(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Timer>, StoreError> {
        self.query(sql, params)?
            .iter()
            .map(|r| raw_timer(r).map_err(pg_err)?.decode())
            .collect()
    }

    pub(crate) fn add_timer(&self, t: &Timer, max_pending: u64) -> Result<bool, StoreError> {
        let data = timer_data(t)?;
        let max = i64::try_from(max_pending).unwrap_or(i64::MAX);
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            // Instances adding timers at once would both see room below the cap: the count and
            // the insert take turns.
            tx.execute("LOCK TABLE timers IN SHARE ROW EXCLUSIVE MODE", &[])
                .await
                .map_err(pg_err)?;
            let row = tx
                .query_one(
                    "SELECT count(*) FILTER (WHERE id = $1),
                            count(*) FILTER (WHERE done_ms IS NULL)
                     FROM timers WHERE id = $1 OR done_ms IS NULL",
                    &[&t.id],
                )
                .await
                .map_err(pg_err)?;
            let known: i64 = row.try_get(0).map_err(pg_err)?;
            let pending: i64 = row.try_get(1).map_err(pg_err)?;
            if known > 0 {
                return Ok(false);
            }
            if pending >= max {
                return Err(StoreError::TooManyTimers { limit: max_pending });
            }
            tx.execute(
                "INSERT INTO timers (id, script, function, data, due_ms, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &t.id,
                    &t.script,
                    &t.function,
                    &data,
                    &t.due_ms,
                    &t.created_ms,
                ],
            )
            .await
            .map_err(pg_err)?;
            tx.commit().await.map_err(pg_err)?;
            Ok(true)
        })
    }

    pub(crate) fn pending_timers(&self, limit: usize) -> Result<Vec<Timer>, StoreError> {
        self.timers(
            &format!(
                "SELECT {TIMER_COLUMNS} FROM timers WHERE done_ms IS NULL
                 ORDER BY due_ms, id LIMIT $1"
            ),
            &[&sql_limit(limit)],
        )
    }

    pub(crate) fn take_due_timers(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Timer>, StoreError> {
        // One statement claims and returns; SKIP LOCKED lets instances claiming at once take
        // different timers instead of waiting for each other and then finding them leased.
        let mut timers = self.timers(
            &format!(
                "UPDATE timers SET lease_until_ms = $1 + $2
                 WHERE id IN (SELECT id FROM timers
                              WHERE done_ms IS NULL AND due_ms <= $1
                                AND (lease_until_ms IS NULL OR lease_until_ms <= $1)
                              ORDER BY due_ms, id LIMIT $3
                              FOR UPDATE SKIP LOCKED)
                 RETURNING {TIMER_COLUMNS}"
            ),
            &[&now_ms, &lease_ms, &sql_limit(limit)],
        )?;
        sort_timers(&mut timers);
        Ok(timers)
    }

    pub(crate) fn cancel_timer(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE timers SET done_ms = $2, outcome = 'cancelled'
             WHERE id = $1 AND done_ms IS NULL
               AND (lease_until_ms IS NULL OR lease_until_ms <= $2)",
            &[&id, &now_ms],
        )?;
        Ok(changed > 0)
    }

    pub(crate) fn finish_timer(
        &self,
        id: &str,
        outcome: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE timers SET done_ms = $2, outcome = $3, lease_until_ms = NULL
             WHERE id = $1 AND done_ms IS NULL",
            &[&id, &now_ms, &outcome],
        )
        .map(drop)
    }
}
