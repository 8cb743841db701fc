//! Group commit for the inbox: many concurrent webhook requests, and the done-marks of handled
//! events, share one store transaction.
//!
//! A commit costs about the same for one event as for dozens, and SQLite has one writer anyway,
//! so throughput comes from batching, not from parallel writers. One thread takes the first
//! waiting message, drains whatever else is already queued and commits it all at once. Inserts
//! are committed at once (a webhook waits for them); done-marks alone wait a few milliseconds
//! for company, and ride along with the next inserts for free.
//!
//! Right after each commit, on the same thread, the newly stored events go to the commit hook
//! (the dispatcher). So an event's hand-over never depends on the webhook request that carried
//! it: LINE may hang up, the request future may be dropped, and the event still runs.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

use super::{Mark, NewInboxEvent, Store, StoreError};

/// How long done-marks wait for more marks or for inserts before they are committed alone.
const DONE_GATHER: Duration = Duration::from_millis(5);

/// Most events one transaction takes, so one huge backlog cannot starve replies for long.
const MAX_BATCH_EVENTS: usize = 4096;

type InsertReply = oneshot::Sender<Result<Vec<Option<i64>>, StoreError>>;

/// Handler marks (started, sent, done) waiting for a commit.
type Marks = Arc<Mutex<Vec<Mark>>>;

/// Receives, on the writer thread right after each commit, the events that commit stored (not
/// the duplicates) in `seq` order, with what their callers attached.
pub type CommitHook<T> = Box<dyn FnMut(Vec<Stored<T>>) + Send>;

/// An event the inbox now holds.
#[derive(Debug)]
pub struct Stored<T> {
    pub seq: i64,
    pub received_ms: i64,
    /// What the caller of [`InboxWriter::insert`] attached (the parsed event).
    pub item: T,
}

/// What the writer thread takes.
enum Msg<T> {
    Insert(Vec<(NewInboxEvent, T)>, InsertReply),
    /// Done-marks are waiting (sent by the first mark after a commit only).
    Marks,
    /// Report once every mark queued before this is committed.
    Flush(oneshot::Sender<()>),
}

/// Batches inbox inserts and done-marks onto a dedicated thread. Share it behind an `Arc`.
/// `T` travels with each inserted event to the commit hook.
pub struct InboxWriter<T = ()> {
    tx: Sender<Msg<T>>,
    /// Marks queue here rather than on `tx`, so that only the first mark after a commit wakes
    /// the writer: one wake-up per batch of marks instead of one per handled event.
    marks: Marks,
    /// One permit per insert request queued or being committed: the back-pressure on the
    /// webhook. Marks need none: each belongs to an event that already passed here.
    room: Arc<Semaphore>,
    thread: JoinHandle<()>,
}

impl InboxWriter<()> {
    /// Starts the writer thread with no commit hook. `capacity` is how many insert requests
    /// may wait before `insert` itself waits.
    pub fn start(store: Arc<dyn Store>, capacity: usize) -> Self {
        Self::with_hook(store, capacity, Box::new(|_| {}))
    }
}

impl<T: Send + 'static> InboxWriter<T> {
    /// Starts the writer thread; `on_commit` gets every newly stored event after its commit.
    pub fn with_hook(store: Arc<dyn Store>, capacity: usize, on_commit: CommitHook<T>) -> Self {
        let (tx, rx) = mpsc::channel();
        let room = Arc::new(Semaphore::new(capacity.max(1)));
        let marks = Marks::default();
        let (thread_room, thread_marks) = (room.clone(), marks.clone());
        let thread = std::thread::Builder::new()
            .name("linebotd-inbox".to_owned())
            .spawn(move || {
                let mut on_commit = on_commit;
                write_loop(
                    store.as_ref(),
                    &rx,
                    &thread_marks,
                    &thread_room,
                    &mut on_commit,
                );
            })
            // Only fails when the OS is out of threads or memory, at start-up: nothing to recover.
            .unwrap_or_else(|e| panic!("cannot start the inbox writer thread: {e}"));
        Self {
            tx,
            marks,
            room,
            thread,
        }
    }

    /// Stores `items` durably (committed when this returns `Ok`) and answers per item as
    /// [`Store::inbox_insert`] does. A store error fails every request of that batch. The new
    /// ones go to the commit hook with their attachment, whether or not this future is
    /// still awaited.
    pub async fn insert(
        &self,
        items: Vec<(NewInboxEvent, T)>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Given back by the writer once the request is committed.
        self.room
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?
            .forget();
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Insert(items, reply))
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the writer thread died (a panic in the store).
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues marking event `seq` done, with the script's error text if it failed. Does not
    /// wait: a mark lost to a crash only means the event is handled once more on restart.
    pub fn mark_done(&self, seq: i64, error: Option<String>) {
        self.mark(Mark::Done { seq, error });
    }

    /// Queues a handler mark and blocks this (non-async) thread until it is committed: at
    /// once, sharing the commit with whatever else is queued.
    pub fn mark_durably(&self, mark: Mark) {
        self.mark(mark);
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
    }

    /// Queues a handler mark for the next commit, without waiting for it.
    pub fn mark(&self, mark: Mark) {
        let seq = mark.seq();
        let first = {
            let mut marks = lock(&self.marks);
            marks.push(mark);
            marks.len() == 1
        };
        if first && self.tx.send(Msg::Marks).is_err() {
            tracing::error!(seq, "inbox writer has stopped; event stays pending");
        }
    }

    /// Waits until every done-mark queued before this call is committed (or failed and logged).
    /// Used at shutdown, while other parts still hold the writer.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops accepting work, lets the thread finish everything already queued, and waits.
    pub async fn close(self) {
        let Self { tx, thread, .. } = self;
        drop(tx);
        let joined = tokio::task::spawn_blocking(move || thread.join().is_ok()).await;
        if !matches!(joined, Ok(true)) {
            tracing::error!("the inbox writer thread panicked");
        }
    }
}

/// One transaction's worth of work.
struct Batch<T> {
    new: Vec<NewInboxEvent>,
    /// One per `new` item.
    attached: Vec<T>,
    /// Per insert request: how many of `new` are its items, and where its answer goes.
    callers: Vec<(usize, InsertReply)>,
    flushes: Vec<oneshot::Sender<()>>,
    /// When the oldest mark of this batch arrived.
    marks_since: Option<Instant>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self {
            new: Vec::new(),
            attached: Vec::new(),
            callers: Vec::new(),
            flushes: Vec::new(),
            marks_since: None,
        }
    }
}

impl<T> Batch<T> {
    fn add(&mut self, msg: Msg<T>) {
        match msg {
            Msg::Insert(items, reply) => {
                self.callers.push((items.len(), reply));
                for (item, attached) in items {
                    self.new.push(item);
                    self.attached.push(attached);
                }
            }
            Msg::Marks => {
                self.marks_since.get_or_insert_with(Instant::now);
            }
            Msg::Flush(reply) => self.flushes.push(reply),
        }
    }

    fn full(&self) -> bool {
        self.new.len() >= MAX_BATCH_EVENTS
    }

    /// Commit now: someone waits on it, or the marks waited long enough.
    fn due(&self) -> bool {
        !self.callers.is_empty()
            || !self.flushes.is_empty()
            || self.full()
            || self.marks_since.is_some_and(|t| t.elapsed() >= DONE_GATHER)
    }
}

fn write_loop<T>(
    store: &dyn Store,
    rx: &Receiver<Msg<T>>,
    marks: &Marks,
    room: &Semaphore,
    on_commit: &mut CommitHook<T>,
) {
    let mut batch = Batch::default();
    loop {
        // Marks alone wait (a little) for company; otherwise wait for work as long as it takes.
        let next = match batch.marks_since {
            Some(since) => {
                let wait = DONE_GATHER.saturating_sub(since.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(msg) => Some(msg),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            None => match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => break,
            },
        };
        if let Some(msg) = next {
            batch.add(msg);
            while !batch.full() {
                match rx.try_recv() {
                    Ok(msg) => batch.add(msg),
                    Err(_) => break,
                }
            }
        }
        if batch.due() {
            commit(store, std::mem::take(&mut batch), marks, room, on_commit);
        }
    }
    // Every sender is gone: what is queued is still committed (nothing queued costs nothing).
    commit(store, batch, marks, room, on_commit);
}

/// Drops the started and sent marks of events whose done mark is in the same batch: they only
/// matter for a replay, and a done event is never replayed. Under load most events start and
/// finish within one batch, so this saves a write per event.
fn without_finished(marks: Vec<Mark>) -> Vec<Mark> {
    let done: std::collections::HashSet<i64> = marks
        .iter()
        .filter(|m| matches!(m, Mark::Done { .. }))
        .map(Mark::seq)
        .collect();
    if done.is_empty() {
        return marks;
    }
    marks
        .into_iter()
        .filter(|m| matches!(m, Mark::Done { .. }) || !done.contains(&m.seq()))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Pushing to or taking a Vec cannot leave it half-changed.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn commit<T>(
    store: &dyn Store,
    batch: Batch<T>,
    marks: &Marks,
    room: &Semaphore,
    on_commit: &mut CommitHook<T>,
) {
    let Batch {
        new,
        attached,
        callers,
        flushes,
        ..
    } = batch;
    // Every mark queued before a flush request (or before this commit) is taken now.
    let done = without_finished(std::mem::take(&mut *lock(marks)));
    if new.is_empty() && done.is_empty() {
        for reply in flushes {
            let _ = reply.send(());
        }
        return;
    }
    let requests = callers.len();
    let answers = store.inbox_write(&new, &done).and_then(|answers| {
        if answers.len() == new.len() {
            Ok(answers)
        } else {
            Err(StoreError::Database(format!(
                "inbox insert answered {} items for {}",
                answers.len(),
                new.len()
            )))
        }
    });
    match answers {
        Ok(answers) => {
            // Handed on before any caller hears back, so an acknowledged event is already on
            // its way to a handler.
            let stored: Vec<Stored<T>> = new
                .iter()
                .zip(attached)
                .zip(&answers)
                .filter_map(|((event, item), seq)| {
                    seq.map(|seq| Stored {
                        seq,
                        received_ms: event.received_ms,
                        item,
                    })
                })
                .collect();
            if !stored.is_empty() {
                on_commit(stored);
            }
            let mut answers = answers.into_iter();
            for (n, reply) in callers {
                // A caller that gave up (request cancelled) just misses its answer; its events
                // are stored and will be handled.
                let _ = reply.send(Ok(answers.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            // The events marked done stay pending and run again after a restart: at least
            // once, not lost. The inserts' callers answer 503, so LINE redelivers.
            tracing::error!(error = %e, new = new.len(), done = done.len(), "inbox write failed");
            for (_, reply) in callers {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
    room.add_permits(requests);
    // Every mark queued before a flush request was in this batch or an earlier one.
    for reply in flushes {
        let _ = reply.send(());
    }
}
