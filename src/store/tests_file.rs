//! The store file on disk: its mode, durability setting and WAL size.

use serde_json::json;

use super::sqlite::SqliteStore;
use super::tests::ev;
use super::*;

fn file_store(dir: &tempfile::TempDir, options: Options) -> (SqliteStore, String) {
    let path = dir.path().join("bot.db").to_str().unwrap().to_owned();
    let store = SqliteStore::open(&path, CURRENT_VERSION, options).unwrap();
    (store, path)
}

fn pragma(store: &SqliteStore, name: &str) -> i64 {
    store
        .lock()
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

#[cfg(unix)]
#[test]
fn store_files_are_created_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = file_store(&dir, Options::default());
    store.inbox_insert(&[ev(Some("e1"), "{}", 1)]).unwrap();
    store.kv_set("k", &json!("v")).unwrap();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
    }
}

/// The `synchronous` level an inbox transaction runs with, and the one left for other writes.
fn sync_levels(store: &SqliteStore) -> (i64, i64) {
    let mut conn = store.lock();
    let inbox = store
        .with_inbox_sync(&mut conn, |c| {
            Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap())
        })
        .unwrap();
    let other = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    (inbox, other)
}

#[test]
fn inbox_commits_are_flushed_to_disk_unless_normal_is_asked_for() {
    // SQLite's numbering: 1 = NORMAL, 2 = FULL.
    let dir = tempfile::tempdir().unwrap();
    let (full, _) = file_store(&dir, Options::default());
    assert_eq!(sync_levels(&full), (2, 1));
    full.inbox_insert(&[ev(Some("e1"), "{}", 1)]).unwrap();
    assert_eq!(
        pragma(&full, "synchronous"),
        1,
        "script writes need no fsync"
    );
    drop(full);
    let (normal, _) = file_store(
        &dir,
        Options {
            sync: SyncMode::Normal,
        },
    );
    assert_eq!(sync_levels(&normal), (1, 1));
    assert_eq!("normal".parse::<SyncMode>(), Ok(SyncMode::Normal));
    assert!("fast".parse::<SyncMode>().is_err());
}

#[test]
fn the_wal_shrinks_back_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = file_store(
        &dir,
        Options {
            sync: SyncMode::Normal,
        },
    );
    // More than the 4,000 pages after which a checkpoint runs, in values of ~512 KiB.
    let big = json!("x".repeat(512 * 1024));
    for i in 0..48 {
        store.kv_set(&format!("k{i}"), &big).unwrap();
    }
    // The commit after a completed checkpoint starts the WAL over, cut back to the limit.
    store.lock().execute_batch("PRAGMA wal_checkpoint").unwrap();
    store.kv_set("small", &json!(1)).unwrap();
    let wal = std::fs::metadata(format!("{path}-wal")).unwrap().len();
    assert!(
        wal <= super::sqlite_file::JOURNAL_SIZE_LIMIT as u64,
        "the WAL stayed at {wal} bytes"
    );
}
