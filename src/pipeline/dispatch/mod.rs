//! Hands stored events to the script runtime: events of one conversation in arrival order,
//! different conversations in parallel on handler threads that grow with demand.
//!
//! **The inbox is the queue.** Events reach the dispatcher two ways, both from the store:
//! - *live*: right after the inbox commit, the writer thread offers the new events
//!   ([`Dispatcher::offer`]). The offer never waits: what does not fit in the in-memory window
//!   stays in the store, so the webhook's 200 depends on the commit alone.
//! - *backlog*: once an offer did not fit (or at start-up, after a crash), the feeder thread
//!   pages through the store's pending events above the last one it handed on, as room frees
//!   up, until it has caught up with the commits; then offers are taken live again.
//!
//! `handed` (the highest `seq` given to memory) and `committed` (the highest `seq` the writer
//! announced) decide, under one lock, that no stored event is skipped and none is handed twice.
//!
//! **Handlers wait without holding the bot up.** A handler is a synchronous Rhai call, and
//! `reply` blocks it until LINE answers; the request itself runs on the shared async client. So
//! each handler holds a thread while it runs or waits. The pool keeps about two threads per core
//! running script code: a thread that starts waiting on the network tells the pool (a wait
//! hook, see [`crate::pipeline::script::context::report_wait`]), which then starts or wakes another for the
//! next ready event. So at an instant mock a handful of threads do all the work, and at LINE's
//! real latency the threads grow with the handlers waiting at once, up to `max_handlers`.
//! Idle threads exit after `idle_exit`. Memory is bounded by `max_handlers` threads (their
//! stacks hold only what a script touches) plus `window` events in memory.
//!
//! **A shared store** (PostgreSQL, several instances): no instance owns the inbox, so the
//! feeder is replaced by a claimer (`claims.rs`) that takes events the store says may run
//! now, under leases it renews; commits and finished events only wake it.

mod claims;
mod handlers;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::pipeline::script::Runtime;
use crate::pipeline::webhook::Event;
use crate::store::{InboxEvent, Mark, Store, Stored};

/// One event to handle: its inbox position, and when it was committed (epoch ms).
pub struct Job {
    pub event: Arc<Event>,
    pub seq: i64,
    pub received_ms: i64,
    /// A handler started on it before the daemon last stopped.
    pub replay: bool,
}

/// Where the dispatcher records what happens to each event (the inbox writer): a reply about
/// to use its token, each reply LINE accepted, done. Called on handler threads.
pub trait Journal: Send + Sync {
    /// Records `mark` with the next group commit, without waiting.
    fn record(&self, mark: Mark);
    /// Records `mark` and waits until it is committed.
    fn record_durably(&self, mark: Mark);
}

/// How many handlers may run and how much waits in memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Handler threads at most: handlers waiting on LINE or running at once.
    pub max_handlers: usize,
    /// Events queued or running in memory at most; the rest wait in the store.
    pub window: usize,
    /// An idle handler thread exits after this long without work.
    pub idle_exit: Duration,
    /// Handler threads running script code (not waiting on LINE) that the pool aims for: two
    /// per core, so a handler blocked briefly elsewhere (a commit, a rate-limit token, the
    /// store) leaves the cores busy.
    pub running: usize,
    /// Shared stores only: how long a claimed event stays this instance's without a heartbeat,
    /// i.e. how soon another instance takes over the events of one that died.
    pub lease: Duration,
}

impl Limits {
    /// `max_handlers` threads, and a window twice that (at least 1,024) so every thread stays
    /// fed while a busy conversation's later events wait behind it.
    pub fn new(max_handlers: usize) -> Self {
        let max_handlers = max_handlers.max(1);
        Self {
            max_handlers,
            window: (max_handlers * 2).max(1024),
            idle_exit: Duration::from_secs(10),
            running: std::thread::available_parallelism().map_or(4, |n| n.get() * 2),
            lease: DEFAULT_LEASE,
        }
    }
}

/// The dispatcher's intake. Cloning shares it.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Queues>,
}

struct Queues {
    state: Mutex<State>,
    /// Signalled when a job becomes ready for a handler thread.
    work: Condvar,
    /// Signalled when the feeder may have something to do (room, a missed offer, a stop).
    feed: Condvar,
    /// Signalled when an event finishes (for `drain`).
    finished: Condvar,
    limits: Limits,
    runtime: Arc<Runtime>,
    journal: Arc<dyn Journal>,
    store: Arc<dyn Store>,
    /// The store is shared with other instances: events are claimed, not owned.
    claims: bool,
}

#[derive(Default)]
struct State {
    /// Jobs whose conversation has nothing else ready or running, oldest first.
    ready: VecDeque<Job>,
    /// Conversations with a job ready or running, and the jobs waiting behind that one.
    busy: HashMap<String, VecDeque<Job>>,
    /// Jobs in `ready`, in `busy` or running.
    in_memory: usize,
    threads: usize,
    /// Threads waiting for a ready job.
    idle: usize,
    /// Threads whose handler waits on the network, or on a commit (counted in `commit_waits`).
    waiting: usize,
    commit_waits: usize,
    /// Events past the window wait in the store; the feeder brings them in.
    backlogged: bool,
    /// Highest `seq` handed to memory.
    handed: i64,
    /// Highest `seq` the inbox writer announced as committed.
    committed: i64,
    /// No more events are taken in (shutdown); those in memory still run.
    stopping: bool,
    /// Shared stores: something changed (a commit, an event done), so claim again now.
    claim_wanted: bool,
    /// Shared stores: the claimed events in memory, whose leases the heartbeat renews.
    held: std::collections::BTreeSet<i64>,
}

impl State {
    /// Threads running script code: neither idle nor waiting on LINE or a commit (those queued
    /// for a rate-limit token count as running).
    fn running(&self) -> usize {
        self.threads.saturating_sub(self.idle + self.waiting)
    }

    /// Whether the feeder should read a page: the store holds events past the window and a
    /// page fits (or nothing is left in memory at all).
    fn wants_feed(&self, limits: &Limits) -> bool {
        let room = limits.window.saturating_sub(self.in_memory);
        self.backlogged && (room >= FEED_PAGE.min(limits.window) || self.in_memory == 0)
    }
}

/// Shared stores: a claimed event's lease unless configured otherwise. Reply tokens live about
/// a minute, so a takeover within seconds can still reply.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Pending events the feeder reads from the store at most at once.
const FEED_PAGE: usize = 256;

/// After a failed store read, the feeder waits this long before trying again.
const FEED_RETRY: Duration = Duration::from_secs(1);

impl Dispatcher {
    /// Starts the feeder, which first brings in what the store holds from before this start.
    /// Handler threads start as events arrive.
    pub fn start(
        runtime: Arc<Runtime>,
        store: Arc<dyn Store>,
        limits: Limits,
        journal: Arc<dyn Journal>,
    ) -> Self {
        let shared = Arc::new(Queues {
            state: Mutex::new(State {
                // Whatever the store holds from before is read by the feeder first.
                backlogged: true,
                ..State::default()
            }),
            work: Condvar::new(),
            feed: Condvar::new(),
            finished: Condvar::new(),
            limits,
            runtime,
            journal,
            claims: store.shared(),
            store,
        });
        let feeder = shared.clone();
        std::thread::Builder::new()
            .name("linebotd-feeder".to_owned())
            .spawn(move || {
                if feeder.claims {
                    claims::claim(&feeder);
                } else {
                    feed(&feeder);
                }
            })
            // Only fails when the OS is out of threads or memory, at start-up.
            .unwrap_or_else(|e| panic!("cannot start the dispatcher's feeder thread: {e}"));
        Self { shared }
    }

    /// Takes events the inbox has just committed, in `seq` order, without waiting: those that
    /// do not fit in the window stay in the store for the feeder.
    pub fn offer(&self, stored: Vec<Stored<Arc<Event>>>) {
        let Some(last) = stored.last().map(|s| s.seq) else {
            return;
        };
        let mut state = self.shared.lock();
        state.committed = state.committed.max(last);
        if state.stopping {
            return;
        }
        if self.shared.claims {
            // Another instance may hold these conversations: the claimer asks the store.
            state.claim_wanted = true;
            self.shared.feed.notify_one();
            return;
        }
        if !state.backlogged {
            for s in stored {
                if s.seq <= state.handed {
                    continue;
                }
                if state.in_memory >= self.shared.limits.window {
                    state.backlogged = true;
                    break;
                }
                state.handed = s.seq;
                self.shared.enqueue(
                    &mut state,
                    Job {
                        event: s.item,
                        seq: s.seq,
                        received_ms: s.received_ms,
                        replay: false,
                    },
                );
            }
        }
        if state.backlogged {
            self.shared.feed.notify_one();
        }
    }

    /// Events queued or running in memory now.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_memory
    }

    /// Stops taking events in (the store keeps them for the next start), then waits until
    /// those in memory finished or `grace` passed. True when drained.
    pub async fn drain(&self, grace: Duration) -> bool {
        let shared = self.shared.clone();
        let waited = tokio::task::spawn_blocking(move || {
            let mut state = shared.lock();
            state.stopping = true;
            shared.feed.notify_all();
            let (state, _) = shared
                .finished
                .wait_timeout_while(state, grace, |s| s.in_memory > 0)
                .unwrap_or_else(|p| p.into_inner());
            state.in_memory == 0
        })
        .await;
        waited.unwrap_or(false)
    }
}

impl Queues {
    /// Stored events as jobs. One that is not a LINE event is marked done with the reason
    /// instead, so no restart reads it again.
    fn jobs(&self, rows: Vec<InboxEvent>) -> Vec<Job> {
        rows.into_iter()
            .filter_map(|row| match Event::from_json(&row.payload) {
                Some(event) => Some(Job {
                    event: Arc::new(event),
                    seq: row.seq,
                    received_ms: row.received_ms,
                    replay: row.started,
                }),
                None => {
                    tracing::error!(seq = row.seq, "stored event is unreadable; skipped");
                    self.journal.record(Mark::Done {
                        seq: row.seq,
                        error: Some("the stored event is not a LINE event".to_owned()),
                    });
                    None
                }
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock (handlers run outside it).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `job` in memory: ready now, or behind its conversation's running event.
    fn enqueue(self: &Arc<Self>, state: &mut State, job: Job) {
        state.in_memory += 1;
        let key = job.event.conversation_key();
        match state.busy.get_mut(key) {
            Some(waiting) => waiting.push_back(job),
            None => {
                state.busy.insert(key.to_owned(), VecDeque::new());
                self.make_ready(state, job);
            }
        }
    }

    /// Queues a ready job and gets a thread to take it.
    fn make_ready(self: &Arc<Self>, state: &mut State, job: Job) {
        state.ready.push_back(job);
        self.staff(state);
    }

    /// `job` is done: the next event of its conversation becomes ready (behind the others, so
    /// one busy chat cannot hold a thread), and its room is given back.
    fn finish(&self, job: &Job) {
        let key = job.event.conversation_key();
        let mut state = self.lock();
        match state.busy.get_mut(key).and_then(VecDeque::pop_front) {
            Some(next) => state.ready.push_back(next),
            None => {
                state.busy.remove(key);
            }
        }
        state.in_memory -= 1;
        if self.claims {
            state.held.remove(&job.seq);
            // The conversation's next event (its new head) may be claimed now.
            state.claim_wanted = true;
            self.feed.notify_one();
        } else if state.wants_feed(&self.limits) {
            self.feed.notify_one();
        }
        // Only `drain` waits on this, and only once stopping.
        if state.stopping {
            self.finished.notify_all();
        }
    }
}

/// The feeder thread: while backlogged, brings pending events in from the store as room frees
/// up, until it has caught up with what the inbox writer committed.
fn feed(shared: &Arc<Queues>) {
    loop {
        let (after, target, limit) = {
            let mut state = shared.lock();
            loop {
                if state.stopping {
                    return;
                }
                if state.wants_feed(&shared.limits) {
                    break;
                }
                state = shared.feed.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            let room = shared.limits.window - state.in_memory;
            (state.handed, state.committed, room.min(FEED_PAGE))
        };
        let rows = match shared.store.inbox_pending(after, limit) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the inbox backlog; trying again");
                std::thread::sleep(FEED_RETRY);
                continue;
            }
        };
        let read_all = rows.len() < limit;
        let last_read = rows.last().map(|r| r.seq);
        let jobs = shared.jobs(rows);
        let mut state = shared.lock();
        if let Some(last) = last_read {
            state.handed = state.handed.max(last);
        }
        for job in jobs {
            shared.enqueue(&mut state, job);
        }
        // Everything committed before the read started was in it: the store holds nothing
        // more up to `target`. Offers announced since then are above it.
        if read_all {
            state.handed = state.handed.max(target);
            if state.handed >= state.committed {
                state.backlogged = false;
            }
        }
    }
}
