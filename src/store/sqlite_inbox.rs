//! The inbox's one write transaction: new events in, handler marks applied.

use rusqlite::{params, Connection, TransactionBehavior};

use super::sqlite::{now_ms, sql_err};
use super::{Mark, NewInboxEvent, StoreError};

/// Inserts new events and applies marks, in one transaction.
pub(super) fn inbox_transaction(
    conn: &mut Connection,
    new: &[NewInboxEvent],
    marks: &[Mark],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut out = Vec::with_capacity(new.len());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    if !marks.is_empty() {
        write_marks(&tx, marks)?;
    }
    if !new.is_empty() {
        // Claiming the id and storing the event are one row in one transaction: a duplicate
        // can never slip in between, even across daemon instances.
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO inbox (webhook_event_id, received_ms) VALUES (?1, ?2)
                 ON CONFLICT (webhook_event_id) DO NOTHING",
            )
            .map_err(sql_err)?;
        let mut payload = tx
            .prepare_cached(
                "INSERT INTO inbox_payload (seq, conversation, payload) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql_err)?;
        for item in new {
            let id = item.webhook_event_id.as_deref().filter(|id| !id.is_empty());
            let inserted = insert
                .execute(params![id, item.received_ms])
                .map_err(sql_err)?;
            let seq = (inserted == 1).then(|| tx.last_insert_rowid());
            if let Some(seq) = seq {
                payload
                    .execute(params![seq, item.conversation, item.payload])
                    .map_err(sql_err)?;
            }
            out.push(seq);
        }
    }
    tx.commit().map_err(sql_err)?;
    Ok(out)
}

/// Applies handler marks in order. A done event's payload and sent calls are dropped with it:
/// nothing will replay it any more.
fn write_marks(tx: &rusqlite::Transaction<'_>, marks: &[Mark]) -> Result<(), StoreError> {
    let now = now_ms();
    for mark in marks {
        match mark {
            Mark::Started(seq) => {
                tx.prepare_cached(
                    "UPDATE inbox SET started_ms = ?2
                     WHERE seq = ?1 AND started_ms IS NULL AND done_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![seq, now]))
                .map_err(sql_err)?;
            }
            Mark::Sent { seq, call } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO sent_calls (call_key, seq) VALUES (?1, ?2)",
                )
                .and_then(|mut s| s.execute(params![call, seq]))
                .map_err(sql_err)?;
            }
            Mark::Done { seq, error } => {
                // The payload goes now: nothing reads a done event again, and deduplication
                // needs only its id and a time.
                tx.prepare_cached(
                    "UPDATE inbox SET done_ms = ?2, error = ?3, started_ms = NULL
                     WHERE seq = ?1 AND done_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![seq, now, error]))
                .map_err(sql_err)?;
                tx.prepare_cached("DELETE FROM inbox_payload WHERE seq = ?1")
                    .and_then(|mut s| s.execute([seq]))
                    .map_err(sql_err)?;
                tx.prepare_cached("DELETE FROM sent_calls WHERE seq = ?1")
                    .and_then(|mut s| s.execute([seq]))
                    .map_err(sql_err)?;
            }
        }
    }
    Ok(())
}
