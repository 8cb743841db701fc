//! The SQLite file itself: created readable by its owner only, opened with the settings that
//! decide durability and size, and checked for whether the inbox can commit right now.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::shared::CommitHealth;
use super::sqlite::{sql_err, SqliteStore};
use super::{migrations, Options, StoreError, SyncMode};

/// How long a statement waits for another process's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the WAL file is cut back to after a checkpoint, in bytes. Without a limit it keeps the
/// largest size it ever reached (about 16 MB, see `wal_autocheckpoint`) for good.
pub(crate) const JOURNAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies committed WAL frames into the database file on a connection and thread of its own
/// (a PASSIVE checkpoint never blocks the writer). The writer's own checkpoint at
/// `wal_autocheckpoint` pages, which restarts the WAL, then finds nearly everything copied
/// already, so the commit it runs in (and the webhooks waiting on that commit) no longer
/// stalls for the whole 16 MB copy.
pub(crate) struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl Checkpointer {
    /// `None` for in-memory stores, or when the file cannot be opened a second time (the
    /// writer then checkpoints alone, as SQLite does by default).
    fn start(path: &str) -> Option<Self> {
        if path == ":memory:" || path.is_empty() {
            return None;
        }
        let conn = Connection::open(path).ok()?;
        conn.busy_timeout(BUSY_TIMEOUT).ok()?;
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("linebotd-checkpoint".to_owned())
            .spawn(move || {
                let (stopped, wake) = &*flag;
                let mut guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    guard = wake
                        .wait_timeout(guard, CHECKPOINT_EVERY)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    if *guard {
                        return;
                    }
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "background checkpoint failed");
                    }
                }
            })
            .ok()?;
        Some(Self { stop })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
    }
}

impl SyncMode {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

impl SqliteStore {
    /// Opens `path` and migrates it to `version`.
    pub(crate) fn open(path: &str, version: u32, options: Options) -> Result<Self, StoreError> {
        let open_err = |e: rusqlite::Error| match sql_err(e) {
            StoreError::Database(message) => StoreError::Open {
                path: path.to_owned(),
                message,
            },
            other => other,
        };
        create_private(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL: readers never block the writer, and a commit is one sequential append.
        let _mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        // NORMAL flushes the WAL only at checkpoints: a commit is in the OS page cache, which
        // outlives the process (`kill -9`) but not the machine. Inbox transactions raise this to
        // FULL (see `with_inbox_sync`) unless NORMAL was asked for.
        conn.pragma_update(None, "synchronous", SyncMode::Normal.pragma())
            .map_err(open_err)?;
        // A checkpoint (copying the WAL back into the database, with two fsyncs) runs inside
        // the commit that crosses this many WAL pages, and that commit's webhooks wait for it.
        // Each group commit appends a few whole pages, so SQLite's default of 1,000 pages meant
        // several checkpoints a second under load and set the p99 time to the 200 (4.5 ms at 8
        // connections); 4,000 pages (a WAL of up to ~16 MB) brings it under 1 ms.
        conn.pragma_update(None, "wal_autocheckpoint", 4_000)
            .map_err(open_err)?;
        // ...and once checkpointed, the WAL shrinks back instead of holding those 16 MB.
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrations::migrate(&mut conn, path, version).map_err(|e| match e {
            StoreError::Database(message) => StoreError::Open {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(Self {
            conn: Mutex::new(conn),
            last_commit: CommitHealth::default(),
            inbox_sync: options.sync,
            _checkpointer: Checkpointer::start(path),
        })
    }

    /// Runs an inbox transaction (events taken in, handler marks) with its commit flushed to
    /// the disk, unless the store was opened with [`SyncMode::Normal`].
    ///
    /// Only the inbox needs it. Its commit is what LINE is told we received, and its marks
    /// keep a replay from doing again what users already saw. Every other write (script
    /// state, the outbox, followers) comes from handling an event, before that event's done
    /// mark, and a power cut can only take a tail of the WAL: SQLite's frame checksums end
    /// recovery at the first frame that did not reach the disk, and an fsync covers every
    /// frame before it. So such a write is lost only together with the done mark after it,
    /// and the event runs again, as after `kill -9`. The group commit shares one fsync among
    /// every webhook waiting on it; script writes pay none.
    pub(super) fn with_inbox_sync<T>(
        &self,
        conn: &mut Connection,
        transaction: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.inbox_sync == SyncMode::Normal {
            return transaction(conn);
        }
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(sql_err)?;
        let outcome = transaction(conn);
        // If this fails the connection stays at FULL: slower, never less safe.
        let _ = conn.execute_batch("PRAGMA synchronous = NORMAL");
        outcome
    }

    /// Remembers how the inbox's latest commit went.
    pub(crate) fn note_commit(&self, outcome: Result<(), &StoreError>) {
        self.last_commit.note(outcome);
    }

    /// See [`super::Store::inbox_writable`].
    pub(crate) fn writable(&self, fresh: Duration) -> Result<(), StoreError> {
        self.last_commit.check(fresh, || self.probe())
    }

    /// Commits what an incoming event commits, into the same table and indexes, and takes it
    /// back in the same transaction: the commit still writes those pages to the WAL and flushes
    /// it, so a full disk, a read-only file or damaged inbox pages fail here as they would for
    /// a webhook.
    fn probe(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
        self.with_inbox_sync(&mut conn, probe_transaction)
    }
}

fn probe_transaction(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    tx.execute("INSERT INTO inbox (received_ms) VALUES (0)", [])
        .map_err(sql_err)?;
    let seq = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO inbox_payload (seq, conversation, payload) VALUES (?1, '', '')",
        [seq],
    )
    .map_err(sql_err)?;
    tx.execute("DELETE FROM inbox_payload WHERE seq = ?1", [seq])
        .map_err(sql_err)?;
    tx.execute("DELETE FROM inbox WHERE seq = ?1", [seq])
        .map_err(sql_err)?;
    tx.commit().map_err(sql_err)
}

/// Creates the database file readable and writable by its owner only (`0600`): it holds user
/// ids and what users wrote. SQLite gives the `-wal` and `-shm` files it creates beside the
/// database the database file's mode, so those are `0600` too. An existing file keeps its
/// mode (the operator may have chosen it); a warning says when others can read it.
fn create_private(path: &str) -> std::io::Result<()> {
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            warn_if_others_can_read(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn warn_if_others_can_read(path: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path,
                mode = format!("{mode:o}"),
                "the store holds user ids and messages but other users can access it; \
                 `chmod 600` it (and its -wal and -shm files)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
