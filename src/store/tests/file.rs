//! The store file on disk: its mode, durability setting, size per handled event, WAL size, and
//! whether readiness sees a store that refuses writes.

use std::time::Duration;

use serde_json::json;

use super::super::sqlite::SqliteStore;
use super::super::*;
use super::ev;

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
            ..Options::default()
        },
    );
    assert_eq!(sync_levels(&normal), (1, 1));
    assert_eq!("normal".parse::<SyncMode>(), Ok(SyncMode::Normal));
    assert!("fast".parse::<SyncMode>().is_err());
}

/// A LINE text message event as LINE sends it: about 500 bytes.
fn line_event(i: usize) -> NewInboxEvent {
    let id = format!("01HZX{i:021}");
    NewInboxEvent {
        webhook_event_id: Some(id.clone()),
        conversation: format!("U{:032x}", i % 50),
        payload: json!({
            "type": "message", "mode": "active", "timestamp": 1_700_000_000_000_i64 + i as i64,
            "source": {"type": "user", "userId": format!("U{:032x}", i % 50)},
            "webhookEventId": id, "deliveryContext": {"isRedelivery": false},
            "replyToken": format!("{:032x}", i * 7919),
            "message": {"id": format!("{}", 500_000_000_000_000_000_u64 + i as u64),
                        "type": "text", "quoteToken": format!("q{:0120x}", i),
                        "text": "Hello, how are you doing today? 今日はいい天気ですね"}
        })
        .to_string(),
        received_ms: 1_700_000_000_000 + i as i64,
    }
}

/// Bytes the database file holds in use (pages not on the free list), after a checkpoint.
fn used_bytes(store: &SqliteStore) -> i64 {
    store
        .lock()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    (pragma(store, "page_count") - pragma(store, "freelist_count")) * pragma(store, "page_size")
}

#[test]
fn a_handled_event_keeps_only_its_id_and_times() {
    const EVENTS: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = file_store(&dir, Options::default());
    let empty = used_bytes(&store);
    // As the daemon does: batches of events arrive and are marked done a little later.
    for batch in 0..EVENTS / 500 {
        let events: Vec<_> = (batch * 500..(batch + 1) * 500).map(line_event).collect();
        let seqs: Vec<i64> = store
            .inbox_insert(&events)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let done: Vec<_> = seqs.into_iter().map(|seq| (seq, None)).collect();
        store.inbox_mark_done(&done).unwrap();
    }
    let per_event = (used_bytes(&store) - empty) / EVENTS as i64;
    println!(
        "{per_event} bytes per handled event (payload {} bytes)",
        line_event(0).payload.len()
    );
    assert!(per_event <= 120, "{per_event} bytes stay per handled event");
    // What stays still deduplicates.
    assert_eq!(store.inbox_insert(&[line_event(7)]).unwrap(), vec![None]);
    assert_eq!(store.inbox_backlog().unwrap(), 0);
}

#[test]
fn pending_events_keep_their_payload_until_done() {
    let store = open(":memory:").unwrap();
    let seqs: Vec<i64> = store
        .inbox_insert(&[line_event(1), line_event(2)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    store.inbox_mark_done(&[(seqs[0], None)]).unwrap();
    let pending = store.inbox_pending(0, 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, line_event(2).payload);
}

#[test]
fn the_wal_shrinks_back_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = file_store(
        &dir,
        Options {
            sync: SyncMode::Normal,
            ..Options::default()
        },
    );
    // More than the 4,000 pages after which a checkpoint runs, in values of ~512 KiB.
    let big = json!("x".repeat(512 * 1024));
    for i in 0..48 {
        store.kv_set(&format!("k{i}"), &big).unwrap();
    }
    // The commit after a completed checkpoint starts the WAL over, cut back to the limit. The
    // background checkpointer may hold the checkpoint lock at that moment (SQLite then answers
    // busy = 1 rather than waiting), so ask until a RESTART checkpoint has completed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let busy: i64 = store
            .lock()
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))
            .unwrap();
        if busy == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint never completed"
        );
        std::thread::yield_now();
    }
    store.kv_set("small", &json!(1)).unwrap();
    let wal = std::fs::metadata(format!("{path}-wal")).unwrap().len();
    assert!(
        wal <= super::super::sqlite_file::JOURNAL_SIZE_LIMIT as u64,
        "the WAL stayed at {wal} bytes"
    );
}

#[test]
fn a_store_that_refuses_writes_is_not_writable_until_it_takes_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = file_store(&dir, Options::default());
    assert_eq!(store.inbox_writable(Duration::from_secs(5)), Ok(()));
    // A full disk, as SQLite sees it: the file may not grow any more.
    let pages = pragma(&store, "page_count");
    store
        .lock()
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    // Fill it to the last byte with events as small as the probe's.
    let filled = (0..100_000_i64).find(|i| store.inbox_insert(&[ev(None, "", *i)]).is_err());
    let filled = filled.expect("the disk should be full");
    // The failed commit is remembered: not writable, even right after a success would count.
    let err = store.inbox_writable(Duration::from_secs(3600)).unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
    // Space again: the probe commit succeeds, and so does the inbox.
    store
        .lock()
        .execute_batch("PRAGMA max_page_count = 1073741823")
        .unwrap();
    assert_eq!(store.inbox_writable(Duration::from_secs(3600)), Ok(()));
    // The probe left nothing behind.
    assert_eq!(store.inbox_backlog().unwrap(), filled as u64);
    assert!(store.inbox_insert(&[line_event(1)]).is_ok());
}
