//! Hands events to the script runtime: events of one conversation in arrival order, different
//! conversations in parallel on a fixed set of handler threads, with a bounded number of events
//! in memory.
//!
//! Handlers are synchronous Rhai calls that block on `reply` and the other LINE calls, so each
//! runs start to finish on one of `workers` threads. Each thread makes its LINE calls on blocking
//! connections of its own (see [`crate::script::host::own_line_connections`]), so an event costs
//! no task spawns and no hand-offs between threads beyond taking it from the queue.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::script::{Dispatched, Runtime};
use crate::webhook::Event;

/// One event to handle. `seq` is its inbox position, when it came through the inbox.
pub struct Job {
    pub event: Arc<Event>,
    pub seq: Option<i64>,
}

/// Called after each event's handlers finished (successfully or not), on the handler thread.
pub type DoneHook = Arc<dyn Fn(&Job, &Dispatched) + Send + Sync>;

/// The dispatcher's intake. Cloning shares it.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job becomes ready.
    work: Condvar,
    /// One permit per event that may wait or run; `send` waits for one.
    room: Semaphore,
    capacity: usize,
}

#[derive(Default)]
struct Queue {
    /// Jobs whose conversation has nothing else ready or running, oldest first.
    ready: VecDeque<Job>,
    /// Conversations with a job ready or running, and the jobs waiting behind that one.
    busy: HashMap<String, VecDeque<Job>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the dispatcher has stopped")]
pub struct Stopped;

impl Dispatcher {
    /// Starts `workers` handler threads. At most `capacity` events wait or run in memory;
    /// `send` waits for room beyond that.
    pub fn start(
        runtime: Arc<Runtime>,
        workers: usize,
        capacity: usize,
        on_done: DoneHook,
    ) -> Self {
        let capacity = capacity.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            room: Semaphore::new(capacity),
            capacity,
        });
        for n in 0..workers.max(1) {
            let (shared, runtime, on_done) = (shared.clone(), runtime.clone(), on_done.clone());
            std::thread::Builder::new()
                .name(format!("linebotd-handler-{n}"))
                .spawn(move || work(&shared, &runtime, &on_done))
                // Only fails when the OS is out of threads or memory, at start-up.
                .unwrap_or_else(|e| panic!("cannot start a handler thread: {e}"));
        }
        Self { shared }
    }

    /// Queues an event; waits while `capacity` events are already waiting or running.
    pub async fn send(&self, job: Job) -> Result<(), Stopped> {
        // The permit comes back when the job is finished (`Shared::finish`).
        self.shared
            .room
            .acquire()
            .await
            .map_err(|_| Stopped)?
            .forget();
        let event = job.event.clone();
        let key = event.conversation_key();
        let mut queue = self.shared.lock();
        match queue.busy.get_mut(key) {
            Some(waiting) => waiting.push_back(job),
            None => {
                queue.busy.insert(key.to_owned(), VecDeque::new());
                queue.ready.push_back(job);
                drop(queue);
                self.shared.work.notify_one();
            }
        }
        Ok(())
    }

    /// Events queued or running now.
    pub fn in_flight(&self) -> usize {
        self.shared.capacity - self.shared.room.available_permits()
    }

    /// Waits until nothing is queued or running, or `grace` passed. True when drained.
    pub async fn drain(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        while self.in_flight() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock (handlers run outside it).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the next ready job.
    fn next(&self) -> Job {
        let mut queue = self.lock();
        loop {
            if let Some(job) = queue.ready.pop_front() {
                return job;
            }
            queue = self.work.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// `job` is done: the next event of its conversation becomes ready (behind the others, so
    /// one busy chat cannot hold a thread), and its room is given back.
    fn finish(&self, Job { event, .. }: Job) {
        let key = event.conversation_key();
        let mut queue = self.lock();
        match queue.busy.get_mut(key).and_then(VecDeque::pop_front) {
            // This thread takes the ready queue's head next, so no other needs waking.
            Some(next) => queue.ready.push_back(next),
            None => {
                queue.busy.remove(key);
            }
        }
        drop(queue);
        self.room.add_permits(1);
    }
}

fn work(shared: &Shared, runtime: &Runtime, on_done: &DoneHook) {
    loop {
        let job = shared.next();
        let event = job.event.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.dispatch(event)))
            .unwrap_or_else(|_| {
                tracing::error!("a handler panicked");
                Dispatched::default()
            });
        on_done(&job, &result);
        shared.finish(job);
    }
}
