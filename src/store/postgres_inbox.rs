//! The inbox's write transaction on PostgreSQL: a group commit of marks and new events in a
//! fixed handful of statements, whatever the batch holds, because on a server database each
//! statement is a round trip (SQLite's per-row statements cost nothing by comparison).

use deadpool_postgres::Transaction;

use super::postgres::{pg_err, PgStore};
use super::shared::sql_limit;
use super::{now_ms, InboxEvent, Mark, NewInboxEvent, StoreError};

/// How many times an inbox commit PostgreSQL aborted for a conflict is run again.
const CONFLICT_RETRIES: u32 = 3;

/// Inbox rows deleted per statement when pruning, as for SQLite.
const PRUNE_CHUNK: i64 = 5_000;

impl PgStore {
    /// The inbox's one write transaction: marks applied, new events in (deduplicated).
    pub(super) fn write_inbox(
        &self,
        new: &[NewInboxEvent],
        marks: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let mut conflicts = 0;
            loop {
                let tx = client.transaction().await.map_err(pg_err)?;
                // Marks and inserts go out together (pipelined): one round trip, not one each.
                let written =
                    tokio::try_join!(write_marks(&tx, marks, now_ms()), insert_events(&tx, new));
                let written = match written {
                    Ok(((), seqs)) => tx.commit().await.map_err(pg_err).map(|()| seqs),
                    Err(e) => Err(e),
                };
                match written {
                    // Two instances inserting the same redelivered ids in another order: the
                    // aborted one runs again (its transaction was rolled back whole).
                    Err(StoreError::Conflict(e)) if conflicts < CONFLICT_RETRIES => {
                        conflicts += 1;
                        tracing::debug!(error = %e, "inbox commit aborted for a conflict; again");
                    }
                    other => return other,
                }
            }
        })
    }

    /// Writes what an incoming event writes and takes it back in the same transaction, so a
    /// database that refuses writes (down, read-only, out of disk) fails here as for a webhook.
    pub(super) fn probe(&self) -> Result<(), StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            tx.batch_execute(
                "WITH i AS (INSERT INTO inbox (received_ms) VALUES (0) RETURNING seq)
                 INSERT INTO inbox_payload (seq, conversation, payload)
                 SELECT seq, '', '' FROM i",
            )
            .await
            .map_err(pg_err)?;
            tx.rollback().await.map_err(pg_err)
        })
    }
    pub(super) fn pending(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = self.query(
            "SELECT i.seq, p.payload, i.received_ms, i.started_ms IS NOT NULL
             FROM inbox i JOIN inbox_payload p ON p.seq = i.seq
             WHERE i.done_ms IS NULL AND i.seq > $1 ORDER BY i.seq LIMIT $2",
            &[&after_seq, &sql_limit(limit)],
        )?;
        rows.iter().map(inbox_event).collect()
    }

    pub(super) fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        // SKIP LOCKED: instances claiming at once take different heads instead of queueing on
        // the same rows. A head another instance claimed meanwhile is locked (skipped) or, once
        // that commits, rechecked on its new version and found leased (skipped too).
        let rows = self.query(
            "WITH heads AS (
                 SELECT DISTINCT ON (conversation) seq FROM inbox_payload
                 ORDER BY conversation, seq),
             free AS (
                 SELECT i.seq FROM inbox i JOIN heads h ON h.seq = i.seq
                 WHERE i.done_ms IS NULL
                   AND (i.lease_until_ms IS NULL OR i.lease_until_ms <= $2)
                 ORDER BY i.seq LIMIT $4
                 FOR UPDATE OF i SKIP LOCKED)
             UPDATE inbox SET owner = $1, lease_until_ms = $2 + $3
             FROM free, inbox_payload p
             WHERE inbox.seq = free.seq AND p.seq = inbox.seq
             RETURNING inbox.seq, p.payload, inbox.received_ms, inbox.started_ms IS NOT NULL",
            &[&owner, &now_ms, &lease_ms, &sql_limit(limit)],
        )?;
        let mut events = rows
            .iter()
            .map(inbox_event)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    pub(super) fn renew(&self, owner: &str, seqs: &[i64], until_ms: i64) -> Result<(), StoreError> {
        // SKIP LOCKED: a row this instance's own group commit is marking is left to the next
        // heartbeat (a third of a lease away) instead of waited for. Waiting, the two
        // statements locked the same rows in different orders and PostgreSQL aborted one as a
        // deadlock, losing a commit's done-marks.
        self.execute(
            "UPDATE inbox SET lease_until_ms = $2 WHERE seq IN (
                 SELECT seq FROM inbox
                 WHERE seq = ANY($3) AND owner = $1 AND done_ms IS NULL
                 FOR UPDATE SKIP LOCKED)",
            &[&owner, &until_ms, &seqs],
        )
        .map(drop)
    }

    /// Done inbox rows, sent deliveries and done timers older than `cutoff`.
    pub(super) fn prune_before(&self, cutoff: i64) -> Result<(), StoreError> {
        // In chunks, each its own transaction, so inbox commits never wait on one huge delete.
        while self.execute(
            "DELETE FROM inbox WHERE seq IN (
                 SELECT seq FROM inbox WHERE done_ms IS NOT NULL AND received_ms < $1
                 ORDER BY seq LIMIT $2)",
            &[&cutoff, &PRUNE_CHUNK],
        )? == PRUNE_CHUNK as u64
        {}
        self.execute(
            "DELETE FROM outbox WHERE status = 'sent' AND updated_ms < $1",
            &[&cutoff],
        )?;
        self.execute(
            "DELETE FROM timers WHERE done_ms IS NOT NULL AND done_ms < $1",
            &[&cutoff],
        )?;
        Ok(())
    }
}

/// A row of `seq, payload, received_ms, started`.
fn inbox_event(r: &tokio_postgres::Row) -> Result<InboxEvent, StoreError> {
    Ok(InboxEvent {
        seq: r.try_get(0).map_err(pg_err)?,
        payload: r.try_get(1).map_err(pg_err)?,
        received_ms: r.try_get(2).map_err(pg_err)?,
        started: r.try_get(3).map_err(pg_err)?,
    })
}

/// Applies handler marks, each kind as one statement, sent together (pipelined) and answered
/// together: their order does not matter, because a batch never holds the started or sent
/// marks of an event it marks done (the writer drops them), and the statements touch only the
/// rows their marks name. A done event's payload and sent calls go with it: nothing will
/// replay it any more.
async fn write_marks(tx: &Transaction<'_>, marks: &[Mark], now: i64) -> Result<(), StoreError> {
    let mut started = Vec::new();
    let (mut sent_seqs, mut sent_calls) = (Vec::new(), Vec::new());
    let (mut done_seqs, mut done_errors) = (Vec::new(), Vec::new());
    for mark in marks {
        match mark {
            Mark::Started(seq) => started.push(*seq),
            Mark::Sent { seq, call } => {
                sent_seqs.push(*seq);
                sent_calls.push(call.as_str());
            }
            Mark::Done { seq, error } => {
                done_seqs.push(*seq);
                done_errors.push(error.as_deref());
            }
        }
    }
    let done = !done_seqs.is_empty();
    // Bound first: the statements borrow them while they run side by side.
    let started_params: Params<'_> = &[&started, &now];
    let sent_params: Params<'_> = &[&sent_calls, &sent_seqs];
    let done_params: Params<'_> = &[&done_seqs, &done_errors, &now];
    let seq_params: Params<'_> = &[&done_seqs];
    tokio::try_join!(
        run_if(
            !started.is_empty(),
            tx,
            "UPDATE inbox SET started_ms = $2
             WHERE seq = ANY($1) AND started_ms IS NULL AND done_ms IS NULL",
            started_params,
        ),
        run_if(
            !sent_seqs.is_empty(),
            tx,
            "INSERT INTO sent_calls (call_key, seq)
             SELECT * FROM unnest($1::text[], $2::int8[]) ON CONFLICT DO NOTHING",
            sent_params,
        ),
        run_if(
            done,
            tx,
            "UPDATE inbox SET done_ms = $3, error = d.error, started_ms = NULL
             FROM unnest($1::int8[], $2::text[]) AS d(seq, error)
             WHERE inbox.seq = d.seq AND inbox.done_ms IS NULL",
            done_params,
        ),
        run_if(
            done,
            tx,
            "DELETE FROM inbox_payload WHERE seq = ANY($1)",
            seq_params,
        ),
        run_if(
            done,
            tx,
            "DELETE FROM sent_calls WHERE seq = ANY($1)",
            seq_params,
        ),
    )?;
    Ok(())
}

/// Inserts new events, skipping a `webhook_event_id` already stored (or earlier in `new`):
/// `Some(seq)` per stored item, `None` per duplicate. The id's row and the event's payload go
/// in together, in one statement, so a duplicate cannot slip in between, even from another
/// instance.
async fn insert_events(
    tx: &Transaction<'_>,
    new: &[NewInboxEvent],
) -> Result<Vec<Option<i64>>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Option<&str>> = new
        .iter()
        .map(|e| e.webhook_event_id.as_deref().filter(|id| !id.is_empty()))
        .collect();
    let received: Vec<i64> = new.iter().map(|e| e.received_ms).collect();
    let conversations: Vec<&str> = new.iter().map(|e| e.conversation.as_str()).collect();
    let payloads: Vec<&str> = new.iter().map(|e| e.payload.as_str()).collect();
    // Each item takes its seq first, in order (`n`), so the answer can say which item got
    // which: the insert returns only the rows it stored, and items without an id cannot be
    // told apart by anything else. A CTE with nextval() is evaluated once.
    let stmt = tx
        .prepare_cached(
            "WITH input AS (
                 SELECT nextval(pg_get_serial_sequence('inbox', 'seq')) AS seq, t.*
                 FROM (SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[])
                           WITH ORDINALITY AS u(id, received_ms, conversation, payload, n)
                       ORDER BY n) t),
             ins AS (
                 INSERT INTO inbox (seq, webhook_event_id, received_ms)
                 SELECT seq, id, received_ms FROM input ORDER BY n
                 ON CONFLICT (webhook_event_id) DO NOTHING
                 RETURNING seq),
             pay AS (
                 INSERT INTO inbox_payload (seq, conversation, payload)
                 SELECT input.seq, input.conversation, input.payload
                 FROM input JOIN ins ON ins.seq = input.seq)
             SELECT input.n, ins.seq FROM input JOIN ins ON ins.seq = input.seq",
        )
        .await
        .map_err(pg_err)?;
    let rows = tx
        .query(&stmt, &[&ids, &received, &conversations, &payloads])
        .await
        .map_err(pg_err)?;
    let mut seqs = vec![None; new.len()];
    for row in rows {
        let n: i64 = row.try_get(0).map_err(pg_err)?;
        let seq: i64 = row.try_get(1).map_err(pg_err)?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| seqs.get_mut(i))
            .ok_or_else(|| StoreError::Database(format!("inbox insert answered item {n}")))?;
        *slot = Some(seq);
    }
    Ok(seqs)
}

/// A statement's parameters.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// [`run`] when `needed`, else nothing (no round trip).
async fn run_if(
    needed: bool,
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    if needed {
        run(tx, sql, params).await
    } else {
        Ok(0)
    }
}

async fn run(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg_err)?;
    tx.execute(&stmt, params).await.map_err(pg_err)
}
