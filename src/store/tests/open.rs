//! Opening stores: files survive reopening and a dying process, old schema versions migrate,
//! bad files are refused.

use serde_json::json;

use super::super::*;
use super::{delivery, ev, keys};

#[test]
fn state_survives_reopening_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linebotd.db");
    let path = path.to_str().unwrap();
    let seq = {
        let s = open(path).unwrap();
        s.kv_set("count", &json!(3)).unwrap();
        s.outbox_enqueue(&delivery("k", 1)).unwrap();
        s.follower_set("U1", true, 1).unwrap();
        assert!(s.schedule_claim_run("s", 7).unwrap());
        s.inbox_insert(&[ev(Some("e1"), "p", 1)]).unwrap()[0].unwrap()
    };
    let s = open(path).unwrap();
    assert_eq!(s.kv_get("count").unwrap(), Some(json!(3)));
    assert_eq!(keys(&s.outbox_due(10, 10).unwrap()), ["k"]);
    assert_eq!(s.followers().unwrap(), ["U1"]);
    assert_eq!(s.schedule_last_run("s").unwrap(), Some(7));
    assert_eq!(s.inbox_pending(0, 10).unwrap()[0].seq, seq);
    assert_eq!(
        s.inbox_insert(&[ev(Some("e1"), "p", 2)]).unwrap(),
        vec![None]
    );
}

#[test]
fn store_created_by_schema_v1_opens_with_current_version_keeping_data_and_dedupe_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let path = path.to_str().unwrap();
    {
        let v1 = open_at_version(path, 1).unwrap();
        v1.kv_set("greeting", &json!({"text": "hi"})).unwrap();
        // Version 1 has no outbox yet.
        assert!(v1.outbox_enqueue(&delivery("k", 1)).is_err());
    }
    {
        // Rows as version 1 wrote them: a pending event, and the id of an event whose row was
        // already pruned but which is still remembered for deduplication.
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(
            "INSERT INTO dedupe (event_id, seen_ms) VALUES ('e1', 1), ('pruned', 1);
             INSERT INTO inbox (webhook_event_id, conversation, payload, received_ms)
                 VALUES ('e1', 'U1', 'old event', 1);",
        )
        .unwrap();
    }
    let s = open(path).unwrap();
    let pending = s.inbox_pending(0, 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, "old event");
    assert_eq!(
        s.inbox_insert(&[
            ev(Some("e1"), "dup", 2),
            ev(Some("pruned"), "dup", 2),
            ev(Some("e2"), "new", 2)
        ])
        .unwrap()[..2],
        [None, None]
    );
    assert_eq!(s.inbox_backlog().unwrap(), 2);
    assert_eq!(s.kv_get("greeting").unwrap(), Some(json!({"text": "hi"})));
    assert!(s.outbox_enqueue(&delivery("k", 1)).unwrap());
    s.follower_set("U1", true, 1).unwrap();
    assert!(s.schedule_claim_run("s", 1).unwrap());
    assert_eq!(s.follower_count().unwrap(), 1);
    drop(s);
    // Opening again runs no step twice.
    let s = open(path).unwrap();
    assert_eq!(s.outbox_counts().unwrap(), (1, 0));
}

#[test]
fn store_at_schema_v4_gets_outbox_lanes_and_drops_handled_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    let path = path.to_str().unwrap();
    drop(open_at_version(path, 4).unwrap());
    {
        // Rows as version 4 wrote them: two pushes to one user and a multicast; a handled
        // event, and one a handler started on before the daemon stopped.
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(
            r#"INSERT INTO outbox (retry_key, kind, payload, source, status, next_attempt_ms,
                                   created_ms, updated_ms) VALUES
                 ('new', 'push', '{"to":"U1","messages":[]}', 's', 'pending', 0, 2, 2),
                 ('old', 'push', '{"to":"U1","messages":[]}', 's', 'pending', 0, 1, 1),
                 ('multi', 'multicast', '{"to":["U1","U2"],"messages":[]}', 's', 'pending', 0, 3, 3);
               INSERT INTO inbox (seq, webhook_event_id, conversation, payload, received_ms,
                                  done_ms, started_ms) VALUES
                 (1, 'e1', 'U1', 'handled', 1, 2, 1),
                 (2, 'e2', 'U1', 'waiting', 2, NULL, 3);"#,
        )
        .unwrap();
    }
    let s = open(path).unwrap();
    // Pending deliveries found their lanes, oldest first within one.
    assert_eq!(s.outbox_lanes("", 10).unwrap(), ["key:multi", "to:U1"]);
    assert_eq!(s.outbox_next("to:U1").unwrap().unwrap().retry_key, "old");
    // The waiting event keeps its payload and its started mark.
    let waiting = s.inbox_pending(0, 10).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        (waiting[0].seq, waiting[0].payload.as_str()),
        (2, "waiting")
    );
    assert!(waiting[0].started);
    // The handled one keeps only what deduplication needs.
    assert_eq!(
        s.inbox_insert(&[ev(Some("e1"), "again", 3)]).unwrap(),
        vec![None]
    );
    drop(s);
    let conn = rusqlite::Connection::open(path).unwrap();
    let payloads: Vec<i64> = conn
        .prepare("SELECT seq FROM inbox_payload ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(payloads, [2]);
}

#[test]
fn store_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let path_str = path.to_str().unwrap();
    drop(open(path_str).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(conn);
    let err = open(path_str).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn unopenable_path_and_non_database_file_give_human_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/linebotd.db");
    let err = open(missing.to_str().unwrap()).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(
        err.to_string().contains("check the path and permissions"),
        "{err}"
    );

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let err = open(junk.to_str().unwrap()).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

/// Not a benchmark: a quick look at batch insert speed. `cargo test --release -- --ignored`.
#[test]
#[ignore]
fn throughput_sanity() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path().join("t.db").to_str().unwrap()).unwrap();
    let start = std::time::Instant::now();
    let n = 100_000;
    for chunk in 0..n / 500 {
        let batch: Vec<_> = (0..500)
            .map(|i| ev(Some(&format!("id-{chunk}-{i}")), r#"{"type":"message"}"#, 1))
            .collect();
        s.inbox_insert(&batch).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{n} inserts in {secs:.2}s = {:.0}/s", n as f64 / secs);
}

/// Set in the child process of `committed_events_survive_the_process_dying`.
const CHILD_DB_ENV: &str = "LINEBOTD_TEST_STORE_ABORT_DB";

#[test]
fn committed_events_survive_the_process_dying() {
    if let Ok(path) = std::env::var(CHILD_DB_ENV) {
        // The child: commit, then SIGKILL itself, so no destructor or checkpoint runs.
        let s = open(&path).unwrap();
        s.inbox_insert(&[ev(Some("e1"), "first", 1), ev(None, "second", 2)])
            .unwrap();
        s.kv_set("k", &json!(1)).unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(10));
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    // This test's own name, whatever module it lives in.
    let name = format!(
        "{}::committed_events_survive_the_process_dying",
        module_path!().split_once("::").map_or("", |(_, rest)| rest)
    );
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(CHILD_DB_ENV, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child should have been killed: {status}"
        );
    }
    assert!(!status.success(), "the child should have been killed");
    let s = open(path.to_str().unwrap()).unwrap();
    let payloads: Vec<_> = s
        .inbox_pending(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(payloads, ["first", "second"]);
    assert_eq!(
        s.inbox_insert(&[ev(Some("e1"), "again", 3)]).unwrap(),
        vec![None]
    );
    assert_eq!(s.kv_get("k").unwrap(), Some(json!(1)));
}
