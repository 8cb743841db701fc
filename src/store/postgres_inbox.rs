//! The inbox's write transaction on PostgreSQL: a group commit of marks and new events in a
//! fixed handful of statements, whatever the batch holds, because on a server database each
//! statement is a round trip (SQLite's per-row statements cost nothing by comparison).

use deadpool_postgres::Transaction;

use super::postgres::{pg_err, PgStore};
use super::shared::sql_limit;
use super::{now_ms, InboxEvent, Mark, NewInboxEvent, StoreError};

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
            let tx = client.transaction().await.map_err(pg_err)?;
            write_marks(&tx, marks, now_ms()).await?;
            let seqs = insert_events(&tx, new).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(seqs)
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

    pub(super) fn renew(&self, owner: &str, until_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE inbox SET lease_until_ms = $2 WHERE owner = $1 AND done_ms IS NULL",
            &[&owner, &until_ms],
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

/// Applies handler marks: started, then sent, then done, each kind as one statement. Within an
/// event's life its marks come in that order anyway, so this is the order they were made in.
/// A done event's payload and sent calls go with it: nothing will replay it any more.
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
    if !started.is_empty() {
        run(
            tx,
            "UPDATE inbox SET started_ms = $2
             WHERE seq = ANY($1) AND started_ms IS NULL AND done_ms IS NULL",
            &[&started, &now],
        )
        .await?;
    }
    if !sent_seqs.is_empty() {
        run(
            tx,
            "INSERT INTO sent_calls (call_key, seq)
             SELECT * FROM unnest($1::text[], $2::int8[]) ON CONFLICT DO NOTHING",
            &[&sent_calls, &sent_seqs],
        )
        .await?;
    }
    if !done_seqs.is_empty() {
        run(
            tx,
            "UPDATE inbox SET done_ms = $3, error = d.error, started_ms = NULL
             FROM unnest($1::int8[], $2::text[]) AS d(seq, error)
             WHERE inbox.seq = d.seq AND inbox.done_ms IS NULL",
            &[&done_seqs, &done_errors, &now],
        )
        .await?;
        run(
            tx,
            "DELETE FROM inbox_payload WHERE seq = ANY($1)",
            &[&done_seqs],
        )
        .await?;
        run(
            tx,
            "DELETE FROM sent_calls WHERE seq = ANY($1)",
            &[&done_seqs],
        )
        .await?;
    }
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
    // The seqs are taken first, in order, so the answer can say which item got which: the
    // insert below returns only the rows it stored, and items without an id cannot be told
    // apart by anything else.
    let n = i64::try_from(new.len()).unwrap_or(i64::MAX);
    let mut seqs: Vec<i64> = tx
        .query(
            "SELECT nextval(pg_get_serial_sequence('inbox', 'seq')) FROM generate_series(1, $1::int8)",
            &[&n],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.try_get(0).map_err(pg_err))
        .collect::<Result<_, _>>()?;
    seqs.sort_unstable();
    let ids: Vec<Option<&str>> = new
        .iter()
        .map(|e| e.webhook_event_id.as_deref().filter(|id| !id.is_empty()))
        .collect();
    let received: Vec<i64> = new.iter().map(|e| e.received_ms).collect();
    let conversations: Vec<&str> = new.iter().map(|e| e.conversation.as_str()).collect();
    let payloads: Vec<&str> = new.iter().map(|e| e.payload.as_str()).collect();
    let stored = tx
        .query(
            "WITH input AS (
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[])
                     AS t(seq, id, received_ms, conversation, payload)),
             ins AS (
                 INSERT INTO inbox (seq, webhook_event_id, received_ms)
                 SELECT seq, id, received_ms FROM input ORDER BY seq
                 ON CONFLICT (webhook_event_id) DO NOTHING
                 RETURNING seq),
             pay AS (
                 INSERT INTO inbox_payload (seq, conversation, payload)
                 SELECT input.seq, input.conversation, input.payload
                 FROM input JOIN ins ON ins.seq = input.seq)
             SELECT seq FROM ins",
            &[&seqs, &ids, &received, &conversations, &payloads],
        )
        .await
        .map_err(pg_err)?;
    let stored: std::collections::HashSet<i64> = stored
        .iter()
        .map(|r| r.try_get(0).map_err(pg_err))
        .collect::<Result<_, _>>()?;
    Ok(seqs
        .into_iter()
        .map(|seq| stored.contains(&seq).then_some(seq))
        .collect())
}

async fn run(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg_err)?;
    tx.execute(&stmt, params).await.map_err(pg_err)
}
