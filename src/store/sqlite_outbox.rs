//! The SQLite outbox, followers and schedules (schema version 2; outbox lanes since 5).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::shared::{count, delivery_payload, sql_limit, RawDelivery, CLAIM_RUN, DELIVERY_COLUMNS};
use super::sqlite::{now_ms, sql_err, SqliteStore};
use super::{lane, Delivery, NewDelivery, StoreError};

/// Reads a row in [`DELIVERY_COLUMNS`] order.
fn raw_delivery(r: &Row<'_>) -> rusqlite::Result<RawDelivery> {
    Ok(RawDelivery {
        retry_key: r.get(0)?,
        kind: r.get(1)?,
        payload: r.get(2)?,
        source: r.get(3)?,
        status: r.get(4)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        created_ms: r.get(7)?,
        updated_ms: r.get(8)?,
        request_id: r.get(9)?,
        next_attempt_ms: r.get(10)?,
    })
}

fn query_deliveries(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let raw = stmt
        .query_map(params, raw_delivery)
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    raw.into_iter().map(RawDelivery::decode).collect()
}

impl SqliteStore {
    pub(crate) fn enqueue(&self, d: &NewDelivery) -> Result<bool, StoreError> {
        let payload = delivery_payload(d)?;
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO outbox (retry_key, kind, payload, source, status, attempts,
                                     next_attempt_ms, created_ms, updated_ms, lane)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5, ?6)
                 ON CONFLICT (retry_key) DO NOTHING",
            )
            .map_err(sql_err)?;
        let inserted = stmt
            .execute(params![
                d.retry_key,
                d.kind.as_str(),
                payload,
                d.source,
                d.created_ms,
                lane(d.kind, &d.payload, &d.retry_key)
            ])
            .map_err(sql_err)?;
        Ok(inserted == 1)
    }

    pub(crate) fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox
             WHERE status = 'pending' AND next_attempt_ms <= ?1
             ORDER BY created_ms, rowid LIMIT ?2"
        );
        query_deliveries(&self.lock(), &sql, params![now_ms, sql_limit(limit)])
    }

    pub(crate) fn lanes(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // A skip scan over the pending rows' lane index: one index seek per lane, however many
        // deliveries each lane holds, so a backlog of thousands in one lane costs nothing here.
        // INDEXED BY: without statistics the planner would rather walk every pending row
        // through `outbox_status`, once per lane.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "WITH RECURSIVE lanes(lane, n) AS (
                     SELECT (SELECT min(lane) FROM outbox INDEXED BY outbox_lane
                             WHERE status = 'pending' AND lane > ?1), 1
                     UNION ALL
                     SELECT (SELECT min(o.lane) FROM outbox o INDEXED BY outbox_lane
                             WHERE o.status = 'pending' AND o.lane > lanes.lane), n + 1
                     FROM lanes WHERE lanes.lane IS NOT NULL AND n < ?2)
                 SELECT lane FROM lanes WHERE lane IS NOT NULL",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map(params![after, sql_limit(limit)], |r| r.get(0))
            .map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    pub(crate) fn next_in_lane(&self, lane: &str) -> Result<Option<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox INDEXED BY outbox_lane
             WHERE status = 'pending' AND lane = ?1
             ORDER BY created_ms, rowid LIMIT 1"
        );
        Ok(query_deliveries(&self.lock(), &sql, params![lane])?.pop())
    }

    pub(crate) fn list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox
             WHERE status IN ('pending', 'failed')
             ORDER BY created_ms DESC, rowid DESC LIMIT ?1"
        );
        query_deliveries(&self.lock(), &sql, params![sql_limit(limit)])
    }

    pub(crate) fn counts(&self) -> Result<(u64, u64), StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE status = 'pending'),
                        count(*) FILTER (WHERE status = 'failed')
                 FROM outbox WHERE status IN ('pending', 'failed')",
            )
            .map_err(sql_err)?;
        stmt.query_row([], |r| Ok((count(r.get(0)?), count(r.get(1)?))))
            .map_err(sql_err)
    }

    pub(crate) fn mark_sent(
        &self,
        key: &str,
        request_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_pending(
            key,
            "UPDATE outbox SET status = 'sent', request_id = ?2, updated_ms = ?3
             WHERE retry_key = ?1 AND status = 'pending'",
            params![key, request_id, now_ms],
        )
    }

    pub(crate) fn mark_retry(
        &self,
        key: &str,
        attempts: u32,
        next_attempt_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError> {
        self.update_pending(
            key,
            "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4,
                               updated_ms = ?5
             WHERE retry_key = ?1 AND status = 'pending'",
            params![key, attempts, next_attempt_ms, last_error, now_ms()],
        )
    }

    pub(crate) fn mark_failed(
        &self,
        key: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_pending(
            key,
            "UPDATE outbox SET status = 'failed', last_error = ?2, updated_ms = ?3
             WHERE retry_key = ?1 AND status = 'pending'",
            params![key, error, now_ms],
        )
    }

    /// Runs an update that only applies to a pending row. A row that already left `pending`
    /// is left alone (a late duplicate report must not turn `sent` into `failed`); a key that
    /// does not exist at all is a caller bug and reported.
    fn update_pending(
        &self,
        key: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        let changed = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params))
            .map_err(sql_err)?;
        if changed > 0 {
            return Ok(());
        }
        let exists = conn
            .prepare_cached("SELECT 1 FROM outbox WHERE retry_key = ?1")
            .and_then(|mut stmt| stmt.exists([key]))
            .map_err(sql_err)?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::UnknownDelivery(key.to_owned()))
        }
    }

    pub(crate) fn set_follower(
        &self,
        user_id: &str,
        following: bool,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO followers (user_id, following, first_follow_ms, updated_ms)
                 VALUES (?1, ?2, CASE WHEN ?2 THEN ?3 END, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                     following = excluded.following,
                     updated_ms = excluded.updated_ms,
                     first_follow_ms = coalesce(followers.first_follow_ms,
                                                excluded.first_follow_ms)
                 WHERE excluded.updated_ms >= followers.updated_ms",
            )
            .map_err(sql_err)?;
        stmt.execute(params![user_id, following, at_ms])
            .map_err(sql_err)?;
        Ok(())
    }

    pub(crate) fn list_followers(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT user_id FROM followers WHERE following
                 ORDER BY first_follow_ms, user_id",
            )
            .map_err(sql_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    pub(crate) fn count_followers(&self) -> Result<u64, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT count(*) FROM followers WHERE following")
            .map_err(sql_err)?;
        stmt.query_row([], |r| r.get(0)).map(count).map_err(sql_err)
    }

    pub(crate) fn last_run(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT last_run_ms FROM schedules WHERE key = ?1")
            .map_err(sql_err)?;
        stmt.query_row([key], |r| r.get(0))
            .optional()
            .map_err(sql_err)
    }

    pub(crate) fn claim_run(&self, key: &str, at_ms: i64) -> Result<bool, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(CLAIM_RUN).map_err(sql_err)?;
        Ok(stmt.execute(params![key, at_ms]).map_err(sql_err)? == 1)
    }
}
