//! The inbox's write transaction on PostgreSQL: a group commit of marks and new events in a
//! fixed handful of statements, whatever the batch holds, because on a server database each
//! statement is a round trip (SQLite's per-row statements cost nothing by comparison).

use deadpool_postgres::Transaction;

use super::postgres::pg_err;
use super::{Mark, NewInboxEvent, StoreError};

/// Applies handler marks: started, then sent, then done, each kind as one statement. Within an
/// event's life its marks come in that order anyway, so this is the order they were made in.
/// A done event's payload and sent calls go with it: nothing will replay it any more.
pub(super) async fn write_marks(
    tx: &Transaction<'_>,
    marks: &[Mark],
    now: i64,
) -> Result<(), StoreError> {
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
pub(super) async fn insert_events(
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
