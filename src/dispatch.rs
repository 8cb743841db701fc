//! Hands events to the script runtime: events of one conversation in arrival order, different
//! conversations in parallel, with bounded parallelism and a bounded number of events in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::script::{Dispatched, Runtime};
use crate::webhook::Event;

/// One event to handle. `seq` is its inbox position, when it came through the inbox.
pub struct Job {
    pub event: Arc<Event>,
    pub seq: Option<i64>,
}

/// Called after each event's handlers finished (successfully or not).
pub type DoneHook = Arc<dyn Fn(&Job, &Dispatched) + Send + Sync>;

struct Queued {
    job: Job,
    _slot: OwnedSemaphorePermit,
}

/// The dispatcher's intake. Cloning shares it.
#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Queued>,
    slots: Arc<Semaphore>,
    capacity: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the dispatcher has stopped")]
pub struct Stopped;

impl Dispatcher {
    /// Starts the dispatcher task. At most `workers` handlers run at once and at most
    /// `capacity` events wait in memory; `send` waits for room beyond that.
    pub fn start(
        runtime: Arc<Runtime>,
        workers: usize,
        capacity: usize,
        on_done: DoneHook,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(runtime, workers.max(1), rx, on_done));
        Self {
            tx,
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            capacity: capacity.max(1),
        }
    }

    /// Queues an event; waits while `capacity` events are already waiting or running.
    pub async fn send(&self, job: Job) -> Result<(), Stopped> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Stopped)?;
        self.tx
            .send(Queued { job, _slot: slot })
            .await
            .map_err(|_| Stopped)
    }

    /// Events queued or running now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.slots.available_permits()
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

async fn run(
    runtime: Arc<Runtime>,
    workers: usize,
    mut rx: mpsc::Receiver<Queued>,
    on_done: DoneHook,
) {
    let running = Arc::new(Semaphore::new(workers));
    // Per conversation, the events waiting behind the one running now.
    let mut waiting: HashMap<String, VecDeque<Queued>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let start = |queued: Queued, key: String| {
        let runtime = runtime.clone();
        let running = running.clone();
        let on_done = on_done.clone();
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let result = match running.acquire_owned().await {
                Ok(_permit) => {
                    let event = queued.job.event.clone();
                    let rt = runtime.clone();
                    tokio::task::spawn_blocking(move || rt.dispatch(event))
                        .await
                        .unwrap_or_else(|e| {
                            tracing::error!(error = %e, "handler thread panicked");
                            Dispatched::default()
                        })
                }
                Err(_) => Dispatched::default(),
            };
            on_done(&queued.job, &result);
            drop(queued);
            let _ = done_tx.send(key);
        });
    };
    let mut intake_open = true;
    loop {
        tokio::select! {
            queued = rx.recv(), if intake_open => match queued {
                Some(queued) => {
                    let key = queued.job.event.conversation_key().to_owned();
                    match waiting.get_mut(&key) {
                        Some(queue) => queue.push_back(queued),
                        None => {
                            waiting.insert(key.clone(), VecDeque::new());
                            start(queued, key);
                        }
                    }
                }
                None => intake_open = false,
            },
            Some(key) = done_rx.recv() => {
                let next = waiting.get_mut(&key).and_then(VecDeque::pop_front);
                match next {
                    Some(queued) => start(queued, key),
                    None => {
                        waiting.remove(&key);
                    }
                }
            }
        }
        if !intake_open && waiting.is_empty() {
            break;
        }
    }
}
