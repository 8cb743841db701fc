//! Behaviour of the stores, through the public `Store` trait. The contract tests (listed in a
//! `contract!` block) run once on SQLite and once on PostgreSQL; the rest are SQLite's own.

use std::sync::OnceLock;

use serde_json::json;

use super::*;

#[path = "../../tests/support/postgres.rs"]
mod cluster;

/// A store on a new, empty database of the cluster this test binary shares (started by the
/// first test that needs it, stopped when the process exits).
fn postgres() -> Arc<dyn Store> {
    postgres_with_url().0
}

/// The cluster this test binary shares.
fn cluster() -> &'static cluster::Cluster {
    static CLUSTER: OnceLock<cluster::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(cluster::Cluster::start)
}

/// Runs `sql` in the shared cluster's maintenance database.
fn cluster_psql(sql: &str) {
    cluster().psql("postgres", sql);
}

/// Runs `sql` in database `db` of the shared cluster.
fn cluster_psql_in(db: &str, sql: &str) {
    cluster().psql(db, sql);
}

/// [`postgres`], with the database's URL for opening more stores (instances) on it.
fn postgres_with_url() -> (Arc<dyn Store>, String) {
    let url = cluster().create_database();
    let options = Options {
        pool_size: 2,
        ..Options::default()
    };
    (open_with(&url, options).unwrap(), url)
}

/// Runs each listed `fn name(s: Arc<dyn Store>)` as a test on each back end:
/// `…::on_sqlite::name` and `…::on_postgres::name`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $name() {
                super::$name(crate::store::open(":memory:").unwrap())
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $name() {
                super::$name(crate::store::tests::postgres())
            })*
        }
    };
}

pub(super) fn ev(id: Option<&str>, payload: &str, at: i64) -> NewInboxEvent {
    NewInboxEvent {
        webhook_event_id: id.map(str::to_owned),
        conversation: "U1".to_owned(),
        payload: payload.to_owned(),
        received_ms: at,
    }
}

pub(super) fn delivery(key: &str, created_ms: i64) -> NewDelivery {
    NewDelivery {
        retry_key: key.to_owned(),
        kind: DeliveryKind::Push,
        payload: json!({"to": "U1", "messages": [{"type": "text", "text": key}]}),
        source: "echo.rhai".to_owned(),
        created_ms,
    }
}

pub(super) fn keys(list: &[Delivery]) -> Vec<&str> {
    list.iter().map(|d| d.retry_key.as_str()).collect()
}

fn duplicate_event_id_is_rejected_within_a_batch_and_across_batches(s: Arc<dyn Store>) {
    let first = s
        .inbox_insert(&[
            ev(Some("a"), "1", 10),
            ev(Some("a"), "2", 10),
            ev(Some("b"), "3", 10),
        ])
        .unwrap();
    assert!(first[0].is_some());
    assert_eq!(first[1], None);
    assert!(first[2].is_some());
    let again = s.inbox_insert(&[ev(Some("b"), "4", 20)]).unwrap();
    assert_eq!(again, vec![None]);
    let payloads: Vec<_> = s
        .inbox_pending(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(payloads, ["1", "3"]);
}

fn events_without_id_are_never_deduplicated(s: Arc<dyn Store>) {
    let out = s
        .inbox_insert(&[
            ev(None, "x", 1),
            ev(None, "x", 1),
            ev(Some(""), "y", 1),
            ev(Some(""), "y", 1),
        ])
        .unwrap();
    assert!(out.iter().all(Option::is_some));
    assert_eq!(s.inbox_backlog().unwrap(), 4);
}

fn prune_deletes_in_chunks_until_every_old_done_row_is_gone(s: Arc<dyn Store>) {
    // More than one chunk of old done rows, an old pending row among them, then young rows.
    let old: Vec<_> = (0..12_001)
        .map(|i| ev(Some(&format!("old{i}")), "o", 1_000))
        .collect();
    let seqs: Vec<i64> = s
        .inbox_insert(&old)
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let done: Vec<_> = seqs.iter().skip(1).map(|seq| (*seq, None)).collect();
    s.inbox_mark_done(&done).unwrap();
    let young = s.inbox_insert(&[ev(Some("young"), "y", 5_000)]).unwrap();
    s.inbox_mark_done(&[(young[0].unwrap(), None)]).unwrap();
    s.prune(5_500, 1_000).unwrap();
    // The old done ids are forgotten, the young one and the old pending event are kept.
    assert!(s.inbox_insert(&[ev(Some("old7"), "again", 5_600)]).unwrap()[0].is_some());
    assert!(s
        .inbox_insert(&[ev(Some("old11999"), "again", 5_600)])
        .unwrap()[0]
        .is_some());
    assert_eq!(
        s.inbox_insert(&[ev(Some("young"), "dup", 5_600)]).unwrap(),
        vec![None]
    );
    assert_eq!(
        s.inbox_insert(&[ev(Some("old0"), "dup", 5_600)]).unwrap(),
        vec![None]
    );
}

fn prune_past_the_window_forgets_ids_and_done_rows_only(s: Arc<dyn Store>) {
    s.inbox_insert(&[ev(Some("old"), "1", 1_000), ev(Some("keep"), "2", 1_000)])
        .unwrap();
    let pending = s.inbox_pending(0, 10).unwrap();
    s.inbox_mark_done(&[(pending[0].seq, None)]).unwrap();
    s.prune(1_500, 1_000).unwrap();
    // Still inside the window: the id is remembered.
    assert_eq!(
        s.inbox_insert(&[ev(Some("old"), "x", 1_600)]).unwrap(),
        vec![None]
    );
    s.prune(10_000, 1_000).unwrap();
    // The undone event is kept whatever its age; the done one is gone.
    let left = s.inbox_pending(0, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].payload, "2");
    let out = s.inbox_insert(&[ev(Some("old"), "again", 10_000)]).unwrap();
    assert!(out[0].is_some());
}

fn prune_keeps_the_newest_row_so_seqs_never_go_back(s: Arc<dyn Store>) {
    let seqs: Vec<i64> = s
        .inbox_insert(&[ev(Some("a"), "1", 1_000), ev(Some("b"), "2", 1_000)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    s.inbox_mark_done(&[(seqs[0], None), (seqs[1], None)])
        .unwrap();
    // Every row is old and done; the newest stays all the same.
    s.prune(100_000, 1_000).unwrap();
    let next = s.inbox_insert(&[ev(Some("c"), "3", 100_000)]).unwrap()[0].unwrap();
    assert!(next > seqs[1], "seq {next} reused after {}", seqs[1]);
    // The older one is gone: its id may come again.
    assert!(s.inbox_insert(&[ev(Some("a"), "x", 100_000)]).unwrap()[0].is_some());
}

fn pending_lists_undone_events_in_seq_order_and_done_removes_them(s: Arc<dyn Store>) {
    let seqs: Vec<i64> = s
        .inbox_insert(&[ev(None, "a", 1), ev(None, "b", 2), ev(None, "c", 3)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.inbox_pending(0, 2).unwrap().len(), 2);
    let after_first = s.inbox_pending(seqs[0], 10).unwrap();
    assert_eq!(after_first.len(), 2, "pages start after the given seq");
    assert_eq!(after_first[0].seq, seqs[1]);
    s.inbox_mark_done(&[
        (seqs[1], Some("boom at echo.rhai:3".into())),
        (seqs[0], None),
    ])
    .unwrap();
    let left = s.inbox_pending(0, 10).unwrap();
    assert_eq!(
        left,
        vec![InboxEvent {
            seq: seqs[2],
            payload: "c".into(),
            received_ms: 3,
            started: false,
        }]
    );
    assert_eq!(s.inbox_backlog().unwrap(), 1);
}

fn started_and_sent_marks_survive_until_the_event_is_done(s: Arc<dyn Store>) {
    let seqs: Vec<i64> = s
        .inbox_insert(&[ev(Some("a"), "1", 1), ev(Some("b"), "2", 2)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    s.inbox_write(
        &[],
        &[
            Mark::Started(seqs[0]),
            Mark::Sent {
                seq: seqs[0],
                call: "a/echo.rhai/on_message/reply/1".into(),
            },
        ],
    )
    .unwrap();
    let pending = s.inbox_pending(0, 10).unwrap();
    assert!(pending[0].started, "a handler ran on the first event");
    assert!(!pending[1].started);
    assert_eq!(
        s.inbox_sent_calls(seqs[0]).unwrap(),
        vec!["a/echo.rhai/on_message/reply/1"]
    );
    assert!(s.inbox_sent_calls(seqs[1]).unwrap().is_empty());
    // Once done, nothing replays it: its records go.
    s.inbox_mark_done(&[(seqs[0], None)]).unwrap();
    assert!(s.inbox_sent_calls(seqs[0]).unwrap().is_empty());
}

contract! {
    duplicate_event_id_is_rejected_within_a_batch_and_across_batches,
    events_without_id_are_never_deduplicated,
    prune_deletes_in_chunks_until_every_old_done_row_is_gone,
    prune_past_the_window_forgets_ids_and_done_rows_only,
    prune_keeps_the_newest_row_so_seqs_never_go_back,
    pending_lists_undone_events_in_seq_order_and_done_removes_them,
    started_and_sent_marks_survive_until_the_event_is_done,
}

mod batch;
mod claims;
mod file;
mod lanes;
mod open;
mod state;
mod timers;
