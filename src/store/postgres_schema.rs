//! The PostgreSQL schema as an ordered list of SQL steps, applied at start under an advisory
//! lock so that instances starting together migrate once, one after the other.
//!
//! Steps are append-only, as for SQLite (`migrations.rs`): once released, a step never
//! changes. The list starts where SQLite's stands at version 6 (the first PostgreSQL release),
//! so its version numbers are its own. Text columns that the contract sorts or compares by
//! prefix use the "C" collation: byte order, as in SQLite and Rust, whatever the database's
//! locale.

use deadpool_postgres::Object;

use super::migrations::pending_steps;
use super::postgres::pg_err;
use super::StoreError;

/// Step `i` takes a database from version `i` to `i + 1`.
const STEPS: &[&str] = &[
    // 1: everything SQLite's schema version 6 holds.
    r#"
    CREATE TABLE inbox (
        seq              BIGSERIAL PRIMARY KEY,
        webhook_event_id TEXT UNIQUE,
        received_ms      BIGINT NOT NULL,
        done_ms          BIGINT,
        error            TEXT,
        started_ms       BIGINT,
        -- The instance handling the event, and until when (renewed while it lives).
        owner            TEXT,
        lease_until_ms   BIGINT
    );
    CREATE INDEX inbox_pending ON inbox(seq) WHERE done_ms IS NULL;
    CREATE INDEX inbox_owner ON inbox(owner) WHERE done_ms IS NULL;
    -- One row per event not done yet, under the same seq: a handled event keeps only its id.
    CREATE TABLE inbox_payload (
        seq          BIGINT PRIMARY KEY,
        conversation TEXT NOT NULL,
        payload      TEXT NOT NULL
    );
    -- Each conversation's oldest pending event, for claims.
    CREATE INDEX inbox_payload_conversation ON inbox_payload(conversation, seq);
    CREATE TABLE sent_calls (
        call_key TEXT PRIMARY KEY,
        seq      BIGINT NOT NULL
    );
    CREATE INDEX sent_calls_seq ON sent_calls(seq);

    CREATE TABLE kv (
        key   TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL
    );

    CREATE TABLE outbox (
        -- Insertion order among deliveries created in the same millisecond (SQLite's rowid).
        id              BIGSERIAL NOT NULL,
        retry_key       TEXT PRIMARY KEY,
        kind            TEXT NOT NULL,
        payload         TEXT NOT NULL,
        source          TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_ms BIGINT NOT NULL,
        last_error      TEXT,
        created_ms      BIGINT NOT NULL,
        updated_ms      BIGINT NOT NULL,
        request_id      TEXT,
        lane            TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX outbox_status ON outbox(status, next_attempt_ms);
    CREATE INDEX outbox_lane ON outbox(lane, created_ms, id) WHERE status = 'pending';
    -- The instance sending a lane's deliveries now, and until when (renewed while it lives).
    CREATE TABLE outbox_holds (
        lane           TEXT COLLATE "C" PRIMARY KEY,
        owner          TEXT NOT NULL,
        lease_until_ms BIGINT NOT NULL
    );
    CREATE INDEX outbox_holds_owner ON outbox_holds(owner);

    CREATE TABLE followers (
        user_id         TEXT COLLATE "C" PRIMARY KEY,
        following       BOOLEAN NOT NULL,
        first_follow_ms BIGINT,
        updated_ms      BIGINT NOT NULL
    );

    CREATE TABLE schedules (
        key         TEXT PRIMARY KEY,
        last_run_ms BIGINT NOT NULL
    );

    CREATE TABLE timers (
        id             TEXT COLLATE "C" PRIMARY KEY,
        script         TEXT NOT NULL,
        function       TEXT NOT NULL,
        data           TEXT NOT NULL,
        due_ms         BIGINT NOT NULL,
        created_ms     BIGINT NOT NULL,
        lease_until_ms BIGINT,
        done_ms        BIGINT,
        outcome        TEXT
    );
    CREATE INDEX timers_due ON timers(due_ms) WHERE done_ms IS NULL;
    CREATE INDEX timers_done ON timers(done_ms) WHERE done_ms IS NOT NULL;
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = STEPS.len() as u32;

/// The advisory lock migrations hold: any constant every linebotd agrees on ("lbd" in ASCII).
const MIGRATION_LOCK: i64 = 0x006c_6264;

/// Brings the database up to `target` (at most [`CURRENT_VERSION`]) in one transaction under
/// [`MIGRATION_LOCK`], so a crash mid-migration leaves the old version and a second instance
/// waits, then finds the work done.
pub(crate) async fn migrate(
    client: &mut Object,
    target_name: &str,
    target: u32,
) -> Result<u32, StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await
        .map_err(pg_err)?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM schema_version", &[])
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(pg_err)?;
    let (pending, now) = pending_steps(STEPS, found.map(i64::from), target, target_name)?;
    for (version, step) in pending {
        tx.batch_execute(step).await.map_err(|e| {
            StoreError::Database(format!("migration to schema version {version}: {e}"))
        })?;
    }
    let version = i32::try_from(now).unwrap_or(i32::MAX);
    tx.execute("DELETE FROM schema_version", &[])
        .await
        .map_err(pg_err)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&version],
    )
    .await
    .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)?;
    Ok(now)
}
