//! The PostgreSQL outbox and followers: the statements of `sqlite_outbox.rs` in PostgreSQL's
//! dialect, with the same row decoding (`shared.rs`).

use tokio_postgres::Row;

use super::postgres::{pg_err, PgStore};
use super::shared::{count, delivery_payload, sql_limit, RawDelivery, DELIVERY_COLUMNS};
use super::{lane, now_ms, Delivery, NewDelivery, StoreError};

/// Reads a row in [`DELIVERY_COLUMNS`] order.
fn raw_delivery(r: &Row) -> Result<RawDelivery, tokio_postgres::Error> {
    Ok(RawDelivery {
        retry_key: r.try_get(0)?,
        kind: r.try_get(1)?,
        payload: r.try_get(2)?,
        source: r.try_get(3)?,
        status: r.try_get(4)?,
        attempts: r.try_get(5)?,
        last_error: r.try_get(6)?,
        created_ms: r.try_get(7)?,
        updated_ms: r.try_get(8)?,
        request_id: r.try_get(9)?,
        next_attempt_ms: r.try_get(10)?,
    })
}

impl PgStore {
    fn deliveries(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Delivery>, StoreError> {
        self.query(sql, params)?
            .iter()
            .map(|r| raw_delivery(r).map_err(pg_err)?.decode())
            .collect()
    }

    pub(crate) fn enqueue(&self, d: &NewDelivery) -> Result<bool, StoreError> {
        let payload = delivery_payload(d)?;
        let inserted = self.execute(
            "INSERT INTO outbox (retry_key, kind, payload, source, status, attempts,
                                 next_attempt_ms, created_ms, updated_ms, lane)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5, $6)
             ON CONFLICT (retry_key) DO NOTHING",
            &[
                &d.retry_key,
                &d.kind.as_str(),
                &payload,
                &d.source,
                &d.created_ms,
                &lane(d.kind, &d.payload, &d.retry_key),
            ],
        )?;
        Ok(inserted == 1)
    }

    pub(crate) fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM outbox
                 WHERE status = 'pending' AND next_attempt_ms <= $1
                 ORDER BY created_ms, id LIMIT $2"
            ),
            &[&now_ms, &sql_limit(limit)],
        )
    }

    pub(crate) fn lanes(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A skip scan over the pending rows' lane index, one index probe per lane, as SQLite's.
        let rows = self.query(
            "WITH RECURSIVE lanes(lane, n) AS (
                 SELECT (SELECT min(lane) FROM outbox
                         WHERE status = 'pending' AND lane > $1), 1::bigint
                 UNION ALL
                 SELECT (SELECT min(o.lane) FROM outbox o
                         WHERE o.status = 'pending' AND o.lane > lanes.lane), n + 1
                 FROM lanes WHERE lanes.lane IS NOT NULL AND n < $2)
             SELECT lane FROM lanes WHERE lane IS NOT NULL",
            &[&after, &sql_limit(limit)],
        )?;
        rows.iter().map(|r| r.try_get(0).map_err(pg_err)).collect()
    }

    pub(crate) fn next_in_lane(&self, lane: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .deliveries(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM outbox
                     WHERE status = 'pending' AND lane = $1
                     ORDER BY created_ms, id LIMIT 1"
                ),
                &[&lane],
            )?
            .pop())
    }

    pub(crate) fn list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM outbox
                 WHERE status IN ('pending', 'failed')
                 ORDER BY created_ms DESC, id DESC LIMIT $1"
            ),
            &[&sql_limit(limit)],
        )
    }

    pub(crate) fn counts(&self) -> Result<(u64, u64), StoreError> {
        let rows = self.query(
            "SELECT count(*) FILTER (WHERE status = 'pending'),
                    count(*) FILTER (WHERE status = 'failed')
             FROM outbox WHERE status IN ('pending', 'failed')",
            &[],
        )?;
        let Some(row) = rows.first() else {
            return Ok((0, 0));
        };
        let pending: i64 = row.try_get(0).map_err(pg_err)?;
        let failed: i64 = row.try_get(1).map_err(pg_err)?;
        Ok((count(pending), count(failed)))
    }

    pub(crate) fn mark_sent(
        &self,
        key: &str,
        request_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let changed = self.execute(
            "UPDATE outbox SET status = 'sent', request_id = $2, updated_ms = $3
             WHERE retry_key = $1 AND status = 'pending'",
            &[&key, &request_id, &now_ms],
        )?;
        self.known_delivery(key, changed)
    }

    pub(crate) fn mark_retry(
        &self,
        key: &str,
        attempts: u32,
        next_attempt_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError> {
        let changed = self.execute(
            "UPDATE outbox SET attempts = $2, next_attempt_ms = $3, last_error = $4,
                               updated_ms = $5
             WHERE retry_key = $1 AND status = 'pending'",
            &[
                &key,
                &i64::from(attempts),
                &next_attempt_ms,
                &last_error,
                &now_ms(),
            ],
        )?;
        self.known_delivery(key, changed)
    }

    pub(crate) fn mark_failed(
        &self,
        key: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let changed = self.execute(
            "UPDATE outbox SET status = 'failed', last_error = $2, updated_ms = $3
             WHERE retry_key = $1 AND status = 'pending'",
            &[&key, &error, &now_ms],
        )?;
        self.known_delivery(key, changed)
    }

    /// After an update that only applies to a pending row: a row that already left `pending`
    /// is left alone (a late duplicate report must not turn `sent` into `failed`); a key that
    /// does not exist at all is a caller bug and reported.
    fn known_delivery(&self, key: &str, changed: u64) -> Result<(), StoreError> {
        if changed > 0
            || !self
                .query("SELECT 1 FROM outbox WHERE retry_key = $1", &[&key])?
                .is_empty()
        {
            return Ok(());
        }
        Err(StoreError::UnknownDelivery(key.to_owned()))
    }

    pub(crate) fn set_follower(
        &self,
        user_id: &str,
        following: bool,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO followers (user_id, following, first_follow_ms, updated_ms)
             VALUES ($1, $2, CASE WHEN $2 THEN $3::bigint END, $3)
             ON CONFLICT (user_id) DO UPDATE SET
                 following = excluded.following,
                 updated_ms = excluded.updated_ms,
                 first_follow_ms = coalesce(followers.first_follow_ms,
                                            excluded.first_follow_ms)
             WHERE excluded.updated_ms >= followers.updated_ms",
            &[&user_id, &following, &at_ms],
        )
        .map(drop)
    }

    pub(crate) fn hold_lane(
        &self,
        lane: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        // The row lock a conflict takes serialises instances holding at once: the second one
        // sees the first one's lease and changes nothing.
        let changed = self.execute(
            "INSERT INTO outbox_holds (lane, owner, lease_until_ms) VALUES ($1, $2, $4)
             ON CONFLICT (lane) DO UPDATE SET owner = excluded.owner,
                                              lease_until_ms = excluded.lease_until_ms
             WHERE outbox_holds.owner = excluded.owner OR outbox_holds.lease_until_ms <= $3",
            &[&lane, &owner, &now_ms, &until_ms],
        )?;
        Ok(changed == 1)
    }

    pub(crate) fn release_lane(&self, lane: &str, owner: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM outbox_holds WHERE lane = $1 AND owner = $2",
            &[&lane, &owner],
        )
        .map(drop)
    }

    pub(crate) fn renew_lanes(&self, owner: &str, until_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE outbox_holds SET lease_until_ms = $2 WHERE owner = $1",
            &[&owner, &until_ms],
        )
        .map(drop)
    }
}
