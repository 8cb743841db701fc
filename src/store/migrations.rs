//! The store's schema as an ordered list of SQL steps; opening a store applies the missing ones.
//!
//! Steps are append-only: once released, a step never changes, because stores in the field
//! already ran it. A change is a new step at the end.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::sqlite::sql_err;
use super::StoreError;

/// Step `i` takes a store from version `i` to `i + 1`.
const STEPS: &[&str] = &[
    // 1: what the webhook and scripts need first.
    r#"
    CREATE TABLE inbox (
        -- AUTOINCREMENT so a seq is never reused after pruning emptied the table.
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_event_id TEXT,
        conversation     TEXT NOT NULL,
        payload          TEXT NOT NULL,
        received_ms      INTEGER NOT NULL,
        done_ms          INTEGER,
        error            TEXT
    );
    -- Only undone rows are indexed, so the pending scan and backlog count stay small however
    -- many done rows the retention window keeps.
    CREATE INDEX inbox_pending ON inbox(seq) WHERE done_ms IS NULL;

    CREATE TABLE dedupe (
        event_id TEXT PRIMARY KEY,
        seen_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX dedupe_seen ON dedupe(seen_ms);

    CREATE TABLE kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: outgoing messages, followers, schedules.
    r#"
    CREATE TABLE outbox (
        retry_key       TEXT PRIMARY KEY,
        kind            TEXT NOT NULL,
        payload         TEXT NOT NULL,
        source          TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error      TEXT,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL,
        request_id      TEXT
    );
    CREATE INDEX outbox_status ON outbox(status, next_attempt_ms);

    CREATE TABLE followers (
        user_id         TEXT PRIMARY KEY,
        following       INTEGER NOT NULL,
        -- NULL when the first event seen for the user was an unfollow.
        first_follow_ms INTEGER,
        updated_ms      INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE schedules (
        key         TEXT PRIMARY KEY,
        last_run_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // Version 3: the inbox remembers webhook event ids itself (a unique index) instead of a
    // second table, and drops AUTOINCREMENT: each received event then writes one row and two
    // index entries instead of two rows, three index entries and a counter, which roughly
    // halves the cost of the commit the webhook waits for. Pruning keeps done rows for the
    // dedupe window, so an id is remembered exactly as long as before.
    r#"
    CREATE TABLE inbox_v3 (
        seq              INTEGER PRIMARY KEY,
        webhook_event_id TEXT UNIQUE,
        conversation     TEXT NOT NULL,
        payload          TEXT NOT NULL,
        received_ms      INTEGER NOT NULL,
        done_ms          INTEGER,
        error            TEXT
    );
    INSERT INTO inbox_v3 (seq, webhook_event_id, conversation, payload, received_ms, done_ms, error)
        SELECT seq, webhook_event_id, conversation, payload, received_ms, done_ms, error FROM inbox;
    -- Ids still remembered whose events were already pruned stay remembered, as done rows.
    INSERT INTO inbox_v3 (webhook_event_id, conversation, payload, received_ms, done_ms)
        SELECT event_id, '', '', seen_ms, seen_ms FROM dedupe
        WHERE event_id NOT IN (SELECT webhook_event_id FROM inbox WHERE webhook_event_id IS NOT NULL);
    DROP TABLE inbox;
    DROP TABLE dedupe;
    ALTER TABLE inbox_v3 RENAME TO inbox;
    -- Only undone rows are indexed, so the pending scan and backlog count stay small however
    -- many done rows the retention window keeps.
    CREATE INDEX inbox_pending ON inbox(seq) WHERE done_ms IS NULL;
    "#,
    // Version 4: what a handler run did before a crash, so its replay sends nothing twice.
    // `started_ms` says a handler ran (its reply token may be used); `sent_calls` holds the
    // replies LINE accepted, until the event is done.
    r#"
    ALTER TABLE inbox ADD COLUMN started_ms INTEGER;
    CREATE TABLE sent_calls (
        call_key TEXT PRIMARY KEY,
        seq      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sent_calls_seq ON sent_calls(seq);
    "#,
    // Version 5: a fair outbox and a smaller inbox.
    // - Each delivery names its lane (a push's recipient; multicast and broadcast each their
    //   own), indexed among pending rows, so the sender goes round the lanes and reads a lane's
    //   oldest delivery directly: one recipient's backlog no longer hides every other one.
    // - An event's payload (and conversation) moves to `inbox_payload`, deleted when the event
    //   is done. A handled event then keeps only what deduplication needs, its id and times,
    //   in a row of ~50 bytes: ~500 bytes an event used to stay for the whole dedupe window.
    //   Emptying the payload in place would not do: SQLite leaves the freed bytes inside
    //   pages that only older rows use, whereas deleted rows give their pages back.
    r#"
    ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT '';
    UPDATE outbox SET lane = CASE kind
        WHEN 'push' THEN 'to:' || coalesce(json_extract(payload, '$.to'), '')
        ELSE 'key:' || retry_key END;
    CREATE INDEX outbox_lane ON outbox(lane, created_ms) WHERE status = 'pending';

    CREATE TABLE inbox_v5 (
        seq              INTEGER PRIMARY KEY,
        webhook_event_id TEXT UNIQUE,
        received_ms      INTEGER NOT NULL,
        done_ms          INTEGER,
        error            TEXT,
        started_ms       INTEGER
    );
    -- One row per event not done yet, under the same seq.
    CREATE TABLE inbox_payload (
        seq          INTEGER PRIMARY KEY,
        conversation TEXT NOT NULL,
        payload      TEXT NOT NULL
    );
    INSERT INTO inbox_v5 (seq, webhook_event_id, received_ms, done_ms, error, started_ms)
        SELECT seq, webhook_event_id, received_ms, done_ms, error,
               CASE WHEN done_ms IS NULL THEN started_ms END
        FROM inbox;
    INSERT INTO inbox_payload (seq, conversation, payload)
        SELECT seq, conversation, payload FROM inbox WHERE done_ms IS NULL;
    DROP TABLE inbox;
    ALTER TABLE inbox_v5 RENAME TO inbox;
    CREATE INDEX inbox_pending ON inbox(seq) WHERE done_ms IS NULL;
    "#,
    // Version 6: one-off timers (`later`, `at`). A row stays after it ran or was cancelled
    // (`done_ms`) until the dedupe window prunes it, so a handler replayed after a crash finds
    // its timer's id taken and does not schedule it again. `lease_until_ms`: a run in progress
    // holds the timer until then; a run that died with the daemon is retried after it.
    // A rowid table, not WITHOUT ROWID: `data` may be large.
    r#"
    CREATE TABLE timers (
        id             TEXT PRIMARY KEY,
        script         TEXT NOT NULL,
        function       TEXT NOT NULL,
        data           TEXT NOT NULL,
        due_ms         INTEGER NOT NULL,
        created_ms     INTEGER NOT NULL,
        lease_until_ms INTEGER,
        done_ms        INTEGER,
        outcome        TEXT
    );
    CREATE INDEX timers_due ON timers(due_ms) WHERE done_ms IS NULL;
    CREATE INDEX timers_done ON timers(done_ms) WHERE done_ms IS NOT NULL;
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = STEPS.len() as u32;

/// Migration steps to run, each with the version it brings a store to.
pub(crate) type Steps<'a> = Vec<(u32, &'a str)>;

/// The steps of `steps` a store at version `found` (as its `schema_version` table says) runs to
/// reach `target`, numbered from 1, and the version it is at afterwards. A store newer than
/// `steps` knows is refused: this build would misread it. Both back ends migrate this way.
pub(crate) fn pending_steps<'a>(
    steps: &'a [&'a str],
    found: Option<i64>,
    target: u32,
    path: &str,
) -> Result<(Steps<'a>, u32), StoreError> {
    let known = u32::try_from(steps.len()).unwrap_or(u32::MAX);
    let found = u32::try_from(found.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt(format!("schema version {found:?} is not valid")))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    let target = target.min(known);
    let pending = (found..target.max(found))
        .map(|v| (v + 1, steps[v as usize]))
        .collect();
    Ok((pending, found.max(target)))
}

/// Brings the store at `conn` up to `target` (at most [`CURRENT_VERSION`]) in one transaction,
/// so a crash mid-migration leaves the old version intact.
pub(crate) fn migrate(conn: &mut Connection, path: &str, target: u32) -> Result<u32, StoreError> {
    // IMMEDIATE: two daemons opening the same new file must not both run step 1.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(sql_err)?;
    let found: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(sql_err)?
        .flatten();
    let (pending, now) = pending_steps(STEPS, found, target, path)?;
    for (version, step) in pending {
        tx.execute_batch(step).map_err(|e| {
            StoreError::Database(format!("migration to schema version {version}: {e}"))
        })?;
    }
    tx.execute("DELETE FROM schema_version", [])
        .map_err(sql_err)?;
    tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [now])
        .map_err(sql_err)?;
    tx.commit().map_err(sql_err)?;
    Ok(now)
}
