//! The durable store: inbox (with webhook dedupe), outbox, script key/value state, followers,
//! schedule bookkeeping and one-off timers, behind one [`Store`] trait.
//!
//! The trait is synchronous: store calls block, so async callers use `spawn_blocking` or a
//! dedicated thread (see [`InboxWriter`]). Two back ends implement it: SQLite (`sqlite*.rs`, one
//! file, the default) and PostgreSQL (`postgres*.rs`, one database shared by any number of
//! daemon instances), chosen by the store path. What both share is in `shared.rs`.

mod batch;
mod delivery;
mod error;
mod migrations;
#[macro_use]
mod shared;
mod postgres;
mod postgres_inbox;
mod postgres_outbox;
mod postgres_schema;
mod postgres_state;
mod sqlite;
mod sqlite_file;
mod sqlite_inbox;
mod sqlite_outbox;
mod sqlite_timers;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use batch::{CommitHook, InboxWriter, Stored};
pub use delivery::{lane, Delivery, DeliveryKind, DeliveryStatus, NewDelivery, UnknownName};
pub use error::StoreError;
pub use migrations::CURRENT_VERSION;
pub use postgres::is_postgres;
pub use sqlite::now_ms;

/// Longest key `kv_set` accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest value `kv_set` accepts, in bytes of its JSON text.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Everything the daemon keeps across restarts.
pub trait Store: Send + Sync + 'static {
    /// In one transaction: applies `marks` in order, then inserts `new`. Per new item:
    /// `Some(seq)` for a new event, `None` for a duplicate (same non-empty `webhook_event_id`
    /// already seen and not yet pruned). Items without an id are never deduplicated.
    fn inbox_write(
        &self,
        new: &[NewInboxEvent],
        marks: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError>;
    /// [`Store::inbox_write`] with nothing to mark.
    fn inbox_insert(&self, items: &[NewInboxEvent]) -> Result<Vec<Option<i64>>, StoreError> {
        self.inbox_write(items, &[])
    }
    /// Marks events handled, with the script's error text if any.
    fn inbox_mark_done(&self, done: &[(i64, Option<String>)]) -> Result<(), StoreError> {
        let marks: Vec<Mark> = done
            .iter()
            .map(|(seq, error)| Mark::Done {
                seq: *seq,
                error: error.clone(),
            })
            .collect();
        self.inbox_write(&[], &marks).map(drop)
    }
    /// The calls ([`Mark::Sent`]) an earlier run of event `seq` completed.
    fn inbox_sent_calls(&self, seq: i64) -> Result<Vec<String>, StoreError>;
    /// Accepted but not yet done events with a `seq` above `after_seq`, ascending `seq`: the
    /// dispatcher pages through the backlog with this instead of loading all of it.
    fn inbox_pending(&self, after_seq: i64, limit: usize) -> Result<Vec<InboxEvent>, StoreError>;
    /// How many events are accepted but not done.
    fn inbox_backlog(&self) -> Result<u64, StoreError>;
    /// Whether several daemon instances may share this store (PostgreSQL). Their dispatchers
    /// then take events with [`Store::inbox_claim`] rather than each owning the whole inbox.
    fn shared(&self) -> bool {
        false
    }
    /// Claims for `owner`, until `now_ms + lease_ms`, up to `limit` events that may run now,
    /// ascending `seq`: each the oldest pending event of its conversation, and not under
    /// anyone's unexpired lease. So a conversation's events run one at a time in `seq` order
    /// across every instance, and a dead instance's events are taken over once its leases end.
    fn inbox_claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let _ = (owner, now_ms, lease_ms, limit);
        Err(StoreError::Database(
            "this store is not shared: its dispatcher reads the inbox with inbox_pending".into(),
        ))
    }
    /// Extends to `until_ms` the leases `owner` holds on the events `seqs` that are not yet
    /// done: the heartbeat of a live instance, for the events it still has in hand. An event
    /// it finished but whose done-mark was lost (the commit failed) is not renewed, so its
    /// lease runs out and it runs again, as it would after a restart.
    fn inbox_renew(&self, owner: &str, seqs: &[i64], until_ms: i64) -> Result<(), StoreError> {
        let _ = (owner, seqs, until_ms);
        Ok(())
    }
    /// Whether the inbox can commit right now: `Ok` when its last commit succeeded less than
    /// `fresh` ago, otherwise the outcome of a probe commit made now, which leaves nothing
    /// behind. A failed inbox commit is remembered, so a full disk or a damaged file shows
    /// here until a commit succeeds again.
    fn inbox_writable(&self, fresh: Duration) -> Result<(), StoreError>;
    /// Drops done inbox rows (and so their dedupe ids) received before `now_ms - dedupe_keep_ms`, and
    /// sent outbox rows last updated before then, and timers done before then. (A done row already holds only its id and
    /// times: the payload goes when the event is marked done.)
    fn prune(&self, now_ms: i64, dedupe_keep_ms: i64) -> Result<(), StoreError>;

    /// Queues a delivery. Idempotent on `retry_key`: the same key again is `Ok(false)` and the
    /// stored row is left unchanged.
    fn outbox_enqueue(&self, d: &NewDelivery) -> Result<bool, StoreError>;
    /// Pending deliveries whose next attempt is due at `now_ms`, oldest first.
    fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Up to `limit` lanes ([`lane`]) holding a pending delivery, in byte order, each after
    /// `after`: the sender goes round them, so one lane's backlog cannot hide another lane.
    fn outbox_lanes(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// The oldest pending delivery of `lane`: the only one of its lane that may be sent now.
    fn outbox_next(&self, lane: &str) -> Result<Option<Delivery>, StoreError>;
    fn outbox_mark_sent(
        &self,
        retry_key: &str,
        request_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    fn outbox_mark_retry(
        &self,
        retry_key: &str,
        attempts: u32,
        next_attempt_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError>;
    fn outbox_mark_failed(
        &self,
        retry_key: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Shared stores: takes `lane` for `owner` until `until_ms`, unless another owner's lease on
    /// it lasts past `now_ms`; `true` when `owner` holds it. So of the instances sharing the
    /// store, one at a time sends a lane's deliveries. Other stores have one sender: `true`.
    fn outbox_hold(
        &self,
        lane: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let _ = (lane, owner, now_ms, until_ms);
        Ok(true)
    }
    /// Gives back a lane [`Store::outbox_hold`] gave `owner`.
    fn outbox_release(&self, lane: &str, owner: &str) -> Result<(), StoreError> {
        let _ = (lane, owner);
        Ok(())
    }
    /// Extends to `until_ms` every lane `owner` holds: the outbox sender's heartbeat.
    fn outbox_renew(&self, owner: &str, until_ms: i64) -> Result<(), StoreError> {
        let _ = (owner, until_ms);
        Ok(())
    }
    /// Pending and failed deliveries, newest first.
    fn outbox_list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// `(pending, failed)`.
    fn outbox_counts(&self) -> Result<(u64, u64), StoreError>;

    fn kv_get(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Fails with [`StoreError::TooLarge`] beyond [`MAX_KEY_BYTES`] / [`MAX_VALUE_BYTES`].
    fn kv_set(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError>;
    /// `true` if the key existed.
    fn kv_delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Keys starting with `prefix` (compared literally, byte for byte), sorted.
    fn kv_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    fn kv_clear(&self) -> Result<(), StoreError>;

    /// Records a follow (`true`) or unfollow at `at_ms`. A change older than the last one
    /// recorded for that user is ignored, so a late redelivery cannot undo a newer event.
    fn follower_set(&self, user_id: &str, following: bool, at_ms: i64) -> Result<(), StoreError>;
    /// Users currently following, sorted by the time they first followed, then by id.
    fn followers(&self) -> Result<Vec<String>, StoreError>;
    fn follower_count(&self) -> Result<u64, StoreError>;

    /// When the schedule `key` (e.g. `script.rhai#0:morning`) last ran.
    fn schedule_last_run(&self, key: &str) -> Result<Option<i64>, StoreError>;
    /// Records a run of schedule `key` for its due time `at_ms`, unless a run at or after that
    /// time is already recorded: `true` when this call recorded it, and so may run it. Every
    /// instance sharing the store asks before a run, and one gets `true` per due time.
    fn schedule_claim_run(&self, key: &str, at_ms: i64) -> Result<bool, StoreError>;

    /// Adds a one-off timer. Idempotent on its id: an id already known (pending, or done and
    /// not yet pruned) is `Ok(false)` and changes nothing, so a replayed handler cannot schedule
    /// its timer twice. Fails with [`StoreError::TooManyTimers`] when `max_pending` timers are
    /// already pending, and with [`StoreError::TooLarge`] beyond [`MAX_VALUE_BYTES`] of data.
    fn timer_add(&self, timer: &Timer, max_pending: u64) -> Result<bool, StoreError>;
    /// Timers not yet done (running ones included), earliest due first.
    fn timers_pending(&self, limit: usize) -> Result<Vec<Timer>, StoreError>;
    /// Claims up to `limit` timers due at `now_ms`, earliest first, for `lease_ms`: a claimed
    /// timer is not handed out again before the lease ends, and is handed out again after it
    /// unless [`Store::timer_done`] was called (its run died with the process).
    fn timers_take_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Timer>, StoreError>;
    /// Cancels a timer that is pending and not running: `true` if it was.
    fn timer_cancel(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;
    /// Records that timer `id` is done (ran, failed or was dropped, as `outcome` says). It is
    /// kept, for deduplication, until [`Store::prune`] drops it.
    fn timer_done(&self, id: &str, outcome: &str, now_ms: i64) -> Result<(), StoreError>;
}

/// A one-off call of a script function, scheduled by `later` or `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    pub id: String,
    /// The script that scheduled it, e.g. `reminder.rhai`: the call runs there.
    pub script: String,
    pub function: String,
    /// The argument of the call.
    pub data: serde_json::Value,
    /// When to call it (ms since the epoch).
    pub due_ms: i64,
    pub created_ms: i64,
}

/// An accepted webhook event, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboxEvent {
    pub webhook_event_id: Option<String>,
    pub conversation: String,
    /// The event's raw JSON text.
    pub payload: String,
    pub received_ms: i64,
}

/// A stored event waiting to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    pub seq: i64,
    pub payload: String,
    /// When the webhook carrying it was committed (epoch ms): how old its reply token is.
    pub received_ms: i64,
    /// A handler started on it before (and the daemon stopped before it was done).
    pub started: bool,
}

/// What happens to a stored event, recorded with the next group commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// A handler started on event `seq`: if the daemon dies now, a replay knows its reply token
    /// may have been used already.
    Started(i64),
    /// LINE accepted call `call` (a reply's key) of event `seq`: a replay skips it.
    Sent { seq: i64, call: String },
    /// Event `seq` is handled, with the script's error text if it failed. Its payload is
    /// dropped: from now on the row only remembers the event's id for deduplication.
    Done { seq: i64, error: Option<String> },
}

impl Mark {
    pub fn seq(&self) -> i64 {
        match self {
            Self::Started(seq) | Self::Sent { seq, .. } | Self::Done { seq, .. } => *seq,
        }
    }
}

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// SQLite's `synchronous=FULL`: a commit is flushed to the disk (fsync) before it returns,
    /// so an acknowledged event survives a power cut or an OS crash. The default.
    #[default]
    Full,
    /// SQLite's `synchronous=NORMAL`: a commit survives the process dying (`kill -9`), but a
    /// power cut or an OS crash can lose the last commits, events LINE was already told were
    /// received. Faster; opt-in only.
    Normal,
}

impl FromStr for SyncMode {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            _ => Err(UnknownName {
                what: "store sync mode",
                value: s.to_owned(),
                expected: "full, normal",
            }),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// SQLite only: when an inbox commit counts as done (PostgreSQL's own settings decide there).
    pub sync: SyncMode,
    /// PostgreSQL only: connections the store opens at most.
    pub pool_size: usize,
}

/// Connections to PostgreSQL per instance unless told otherwise: the inbox writer, the outbox
/// sender, the scheduler and a few handlers at once, well below PostgreSQL's default limit of
/// 100 connections for a handful of instances.
pub const DEFAULT_POOL_SIZE: usize = 16;

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: SyncMode::default(),
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// Opens the store at `path`: a `postgres://` (or `postgresql://`) URL connects to that
/// database; anything else is a SQLite file, created if needed (readable by its owner only).
/// Either way the schema is brought up to date. `":memory:"` gives a private in-memory SQLite
/// store, for tests.
pub fn open(path: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(path, Options::default())
}

/// Whether there is a store at `path` to read, without creating one: a SQLite file that
/// exists, or any PostgreSQL URL (connecting says whether the database is there).
pub fn exists(path: &str) -> bool {
    is_postgres(path) || (path != ":memory:" && std::path::Path::new(path).exists())
}

/// [`open`] with other [`Options`].
pub fn open_with(path: &str, options: Options) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres(path) {
        return Ok(Arc::new(postgres::PgStore::open(
            path,
            postgres_schema::CURRENT_VERSION,
            options,
        )?));
    }
    Ok(Arc::new(sqlite::SqliteStore::open(
        path,
        CURRENT_VERSION,
        options,
    )?))
}

/// Opens a store migrated only up to `version`: lets tests build a store as an older linebotd
/// left it. Not for production use.
#[doc(hidden)]
pub fn open_at_version(path: &str, version: u32) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::open(
        path,
        version,
        Options::default(),
    )?))
}
