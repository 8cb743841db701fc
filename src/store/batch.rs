//! Group commit for the inbox: many concurrent webhook requests share one store transaction.
//!
//! A commit costs about the same for one event as for thousands, so throughput comes from
//! batching, not from parallel writers (SQLite has one writer anyway). One thread takes the
//! first waiting request, drains whatever else is already queued and commits it all at once;
//! the bounded queue in front of it is the back-pressure on the webhook.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{NewInboxEvent, Store, StoreError};

/// How long the done-writer waits after the first mark to gather more into one commit.
const DONE_GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Most events one transaction takes, so one huge backlog cannot starve replies for long.
const MAX_BATCH_EVENTS: usize = 4096;

type InsertReply = oneshot::Sender<Result<Vec<Option<i64>>, StoreError>>;

/// What the done-writer thread takes: a mark, or a request to report once all marks queued
/// before it are committed.
enum DoneMsg {
    Mark(i64, Option<String>),
    Flush(oneshot::Sender<()>),
}

struct InsertRequest {
    items: Vec<NewInboxEvent>,
    reply: InsertReply,
}

/// Batches inbox inserts and done-marks onto dedicated threads. Share it behind an `Arc`.
pub struct InboxWriter {
    inserts: mpsc::Sender<InsertRequest>,
    // Unbounded so `mark_done` never blocks or drops: each mark belongs to an event that already
    // passed the bounded insert queue, so the inbox itself bounds this queue.
    dones: mpsc::UnboundedSender<DoneMsg>,
    threads: Vec<JoinHandle<()>>,
}

impl InboxWriter {
    /// Starts the writer threads. `capacity` is how many insert requests may wait before
    /// `insert` itself waits.
    pub fn start(store: Arc<dyn Store>, capacity: usize) -> Self {
        let (inserts, insert_rx) = mpsc::channel(capacity.max(1));
        let (dones, done_rx) = mpsc::unbounded_channel();
        let insert_store = Arc::clone(&store);
        let threads = vec![
            spawn("linebotd-inbox-insert", move || {
                insert_loop(insert_store.as_ref(), insert_rx)
            }),
            spawn("linebotd-inbox-done", move || {
                done_loop(store.as_ref(), done_rx)
            }),
        ];
        Self {
            inserts,
            dones,
            threads,
        }
    }

    /// Stores `items` durably (committed when this returns `Ok`) and answers per item as
    /// [`Store::inbox_insert`] does. A store error fails every request of that batch.
    pub async fn insert(&self, items: Vec<NewInboxEvent>) -> Result<Vec<Option<i64>>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.inserts
            .send(InsertRequest { items, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the writer thread died (a panic in the store).
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues marking event `seq` done, with the script's error text if it failed. Does not
    /// wait: a mark lost to a crash only means the event is handled once more on restart.
    pub fn mark_done(&self, seq: i64, error: Option<String>) {
        if self.dones.send(DoneMsg::Mark(seq, error)).is_err() {
            tracing::error!(seq, "inbox done-writer has stopped; event stays pending");
        }
    }

    /// Waits until every done-mark queued before this call is committed (or failed and logged).
    /// Used at shutdown, while other parts still hold the writer.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.dones.send(DoneMsg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops accepting work, lets the threads finish everything already queued, and waits.
    pub async fn close(self) {
        let Self {
            inserts,
            dones,
            threads,
        } = self;
        drop(inserts);
        drop(dones);
        let joined =
            tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok()))
                .await;
        if !matches!(joined, Ok(true)) {
            tracing::error!("an inbox writer thread panicked");
        }
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        // Only fails when the OS is out of threads or memory, at start-up: nothing to recover.
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

fn insert_loop(store: &dyn Store, mut rx: mpsc::Receiver<InsertRequest>) {
    // Ends when every sender is gone and the queue is empty: queued work is always finished.
    while let Some(first) = rx.blocking_recv() {
        let mut total = first.items.len();
        let mut batch = vec![first];
        while total < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(next) => {
                    total += next.items.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        commit_inserts(store, batch, total);
    }
}

fn commit_inserts(store: &dyn Store, batch: Vec<InsertRequest>, total: usize) {
    let mut all = Vec::with_capacity(total);
    let mut callers = Vec::with_capacity(batch.len());
    for request in batch {
        callers.push((request.items.len(), request.reply));
        all.extend(request.items);
    }
    match store.inbox_insert(&all) {
        Ok(answers) if answers.len() == all.len() => {
            let mut answers = answers.into_iter();
            for (n, reply) in callers {
                // A caller that gave up (request cancelled) just misses its answer; its events
                // are stored and will be handled.
                let _ = reply.send(Ok(answers.by_ref().take(n).collect()));
            }
        }
        Ok(answers) => {
            let e = StoreError::Sqlite(format!(
                "inbox insert answered {} items for {}",
                answers.len(),
                all.len()
            ));
            for (_, reply) in callers {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, events = all.len(), "inbox insert failed");
            for (_, reply) in callers {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

fn done_loop(store: &dyn Store, mut rx: mpsc::UnboundedReceiver<DoneMsg>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        // Marks are not urgent (a lost one only means a re-run after a crash, which retry keys
        // make harmless): gather a few milliseconds' worth so one commit covers many events
        // and leaves the single SQLite writer to the inserts the webhook is waiting for.
        if matches!(first, DoneMsg::Mark(..)) {
            std::thread::sleep(DONE_GATHER);
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                DoneMsg::Mark(seq, error) => batch.push((seq, error)),
                DoneMsg::Flush(reply) => flushes.push(reply),
            }
            if batch.len() < MAX_BATCH_EVENTS {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.inbox_mark_done(&batch) {
                // The events stay pending and run again after a restart: at-least-once, not lost.
                tracing::error!(error = %e, events = batch.len(), "marking inbox events done failed");
            }
            batch.clear();
        }
        // Every mark queued before a flush request was in this batch or an earlier one.
        for reply in flushes.drain(..) {
            let _ = reply.send(());
        }
    }
}
