//! The durable outbox: `push`, `multicast` and `broadcast` are stored with their retry key, then
//! delivered by one sender task that keeps per-recipient order and retries transient failures
//! until LINE answers. A delivery LINE rejects (4xx) is kept as failed and reported.
//!
//! Deliveries go in lanes ([`crate::store::lane`]: a push's recipient; each multicast or broadcast on
//! its own). A lane sends one delivery at a time, oldest first, because LINE shows a chat's
//! messages in the order it accepted them. The sender goes round the lanes that have work, one
//! delivery per lane per turn, so a backlog in one chat never holds another chat back. Up to
//! [`PARALLEL_SENDS`] requests are on their way at once; a lane holds a sending slot only while
//! its request is, so lanes waiting out a backoff leave the slots to the others, and at most
//! four lanes per slot are in hand at once (the rest wait in the store).
//!
//! Only the task holding a lane reads that lane's next delivery, and it reads it after the
//! lane's previous delivery was recorded as sent or failed: a delivery that just finished can
//! never be read again from an older snapshot and sent (or reported failed) twice. On a store
//! shared by several instances, a lane is also held in the store, under a lease this sender
//! renews, so one instance at a time sends it; one that died gives its lanes up when its
//! leases end.
//!
//! A delivery LINE did not take yet waits by [`ROUNDS`], the LINE client's retry policy with
//! longer waits and no end, or as long as LINE's `Retry-After` when that is longer. The wait
//! is a function of the stored attempt count and its end is stored as the due time, so a
//! restart neither sends early nor starts the backoff over.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use crate::line::{LineClient, LineError, RetryPolicy, Sent};
use crate::store::{now_ms, Delivery, DeliveryKind, NewDelivery, Store, StoreError};

mod slot;

use slot::Slot;

/// Deliveries on their way to LINE at once, one per lane: enough for LINE's 2,000 pushes/s
/// at about 100 ms a round trip. A lane waiting out a backoff or a due time holds none.
pub const PARALLEL_SENDS: usize = 256;
/// Lanes in hand at once (sending, or waiting out a backoff with their next delivery in memory),
/// per sending slot: bounds memory while LINE is down and every lane waits.
const LANES_IN_HAND_PER_SLOT: usize = 4;
/// Lanes looked up per round; a round is one cheap index walk, whatever the lanes hold.
const LANES_PER_ROUND: usize = 64;
/// Waits between rounds of the LINE client's own retries while LINE keeps failing: 0.5–1 s
/// after the first round, doubling up to 30–60 s. Never given up: a delivery stays pending
/// until LINE accepts or rejects it.
pub const ROUNDS: RetryPolicy = RetryPolicy {
    max_attempts: u32::MAX,
    initial_backoff: Duration::from_secs(1),
    max_backoff: Duration::from_secs(60),
    max_total: Duration::MAX,
};
/// Shared stores: how long a lane stays this sender's without a heartbeat, i.e. how soon
/// another instance sends the lanes of one that died.
const LANE_LEASE: Duration = crate::pipeline::dispatch::DEFAULT_LEASE;
/// Longest wait between two tries at recording an outcome in the store.
const MAX_RECORD_BACKOFF: Duration = Duration::from_secs(60);
/// Wait after a failed read of the outbox before the lane is tried again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Called when LINE rejected a delivery for good.
pub type FailedHook = Arc<dyn Fn(&Delivery, &str) + Send + Sync>;

/// The outbox: queue from scripts, deliver from a background task.
pub struct Outbox {
    store: Arc<dyn Store>,
    wake: Notify,
    /// Lanes held by a sending task (or about to be): nobody else reads or sends their rows.
    busy: Mutex<HashSet<String>>,
    /// This sender's name in the store's lane holds (shared stores).
    owner: String,
    /// Deliveries sent at once, at most.
    parallel: usize,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Self::with_parallel(store, PARALLEL_SENDS)
    }

    /// An outbox sending at most `parallel` deliveries at once (at least one).
    pub fn with_parallel(store: Arc<dyn Store>, parallel: usize) -> Arc<Self> {
        Arc::new(Self {
            store,
            wake: Notify::new(),
            busy: Mutex::new(HashSet::new()),
            owner: uuid::Uuid::new_v4().to_string(),
            parallel: parallel.max(1),
        })
    }

    /// Stores a delivery and wakes the sender. Returns at once; the same retry key queued again
    /// (a handler re-run after a crash) is not queued twice.
    pub fn enqueue(
        &self,
        kind: DeliveryKind,
        payload: Value,
        retry_key: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let delivery = NewDelivery {
            retry_key: retry_key.to_owned(),
            kind,
            payload,
            source: source.to_owned(),
            created_ms: now_ms(),
        };
        self.store.outbox_enqueue(&delivery)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Delivers until the process ends, starting with what was pending before a restart.
    pub async fn run(self: Arc<Self>, line: LineClient, on_failed: FailedHook) {
        let slots = Arc::new(Semaphore::new(self.parallel));
        let hands = Arc::new(Semaphore::new(self.parallel * LANES_IN_HAND_PER_SLOT));
        let shared = self.store.shared();
        if shared {
            tokio::spawn(self.clone().renew_holds());
        }
        // The lane last given a turn: each round starts after it, so lanes take turns.
        let mut cursor = String::new();
        loop {
            let lanes = match self.lanes_after(&cursor).await {
                Some(Ok(lanes)) => lanes,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "cannot read the outbox; retrying in 1 s");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
                None => return,
            };
            for lane in lanes {
                if !self.hold(&lane) {
                    continue;
                }
                if shared && !self.hold_in_store(&lane).await {
                    self.let_go(&lane);
                    continue;
                }
                cursor.clone_from(&lane);
                let Ok(hand) = hands.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                let line = line.clone();
                let on_failed = on_failed.clone();
                let slots = slots.clone();
                tokio::spawn(async move {
                    this.send_next(&line, &lane, &on_failed, Slot::new(slots))
                        .await;
                    if shared {
                        this.release_in_store(&lane).await;
                    }
                    this.let_go(&lane);
                    drop(hand);
                    this.wake.notify_one();
                });
            }
            // Woken by a new delivery or a finished one; the timeout is a safety net only.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }

    /// The lanes with work after `cursor`, then from the first lane round to `cursor`. `None`
    /// when the runtime is shutting down.
    async fn lanes_after(&self, cursor: &str) -> Option<Result<Vec<String>, StoreError>> {
        let store = self.store.clone();
        let after = cursor.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut lanes = store.outbox_lanes(&after, LANES_PER_ROUND)?;
            if lanes.len() < LANES_PER_ROUND && !after.is_empty() {
                let wrapped = store.outbox_lanes("", LANES_PER_ROUND - lanes.len())?;
                lanes.extend(wrapped.into_iter().filter(|l| *l <= after));
            }
            Ok(lanes)
        })
        .await
        .ok()
    }

    /// Takes `lane` for one task; false if another holds it.
    fn hold(&self, lane: &str) -> bool {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if busy.contains(lane) {
            return false;
        }
        busy.insert(lane.to_owned());
        true
    }

    fn let_go(&self, lane: &str) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(lane);
    }

    /// Shared stores: holds `lane` in the store for [`LANE_LEASE`]; false when another
    /// instance holds it (or the store cannot say: then nobody here sends it either).
    async fn hold_in_store(&self, lane: &str) -> bool {
        let (store, lane, owner) = (self.store.clone(), lane.to_owned(), self.owner.clone());
        let held = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            store.outbox_hold(&lane, &owner, now, now.saturating_add(millis(LANE_LEASE)))
        })
        .await;
        match held {
            Ok(Ok(held)) => held,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot hold an outbox lane in the store");
                false
            }
            Err(_) => false,
        }
    }

    async fn release_in_store(&self, lane: &str) {
        let (store, lane, owner) = (self.store.clone(), lane.to_owned(), self.owner.clone());
        let released = tokio::task::spawn_blocking(move || store.outbox_release(&lane, &owner));
        if let Ok(Err(e)) = released.await {
            // The lease ends by itself.
            tracing::warn!(error = %e, "cannot give an outbox lane back");
        }
    }

    /// The heartbeat of this sender's lane holds, while it runs.
    async fn renew_holds(self: Arc<Self>) {
        loop {
            tokio::time::sleep(LANE_LEASE / 3).await;
            let (store, owner) = (self.store.clone(), self.owner.clone());
            let until = now_ms().saturating_add(millis(LANE_LEASE));
            let renewed = tokio::task::spawn_blocking(move || store.outbox_renew(&owner, until));
            if let Ok(Err(e)) = renewed.await {
                tracing::warn!(error = %e, "cannot renew this instance's outbox lanes");
            }
        }
    }

    /// Sends the oldest pending delivery of `lane`, which this task holds.
    async fn send_next(&self, line: &LineClient, lane: &str, on_failed: &FailedHook, slot: Slot) {
        let store = self.store.clone();
        let key = lane.to_owned();
        match tokio::task::spawn_blocking(move || store.outbox_next(&key)).await {
            Ok(Ok(Some(delivery))) => self.deliver(line, delivery, on_failed, slot).await,
            Ok(Ok(None)) | Err(_) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, lane, "cannot read the outbox; retrying in 1 s");
                tokio::time::sleep(STORE_RETRY).await;
            }
        }
    }

    /// Sends one delivery until LINE accepts or rejects it, holding a sending slot only while
    /// a request is on its way: the waits in between leave it to other lanes.
    async fn deliver(
        &self,
        line: &LineClient,
        delivery: Delivery,
        on_failed: &FailedHook,
        mut slot: Slot,
    ) {
        let mut attempts = delivery.attempts;
        // Due later when an earlier run stopped in the middle of a wait.
        slot.wait(until(delivery.next_attempt_ms)).await;
        loop {
            attempts = attempts.saturating_add(1);
            if !slot.take().await {
                return;
            }
            let result = send(line, &delivery).await;
            slot.give_back();
            let key = delivery.retry_key.clone();
            match result {
                Ok(sent) => {
                    let request_id = sent.request_id.clone();
                    self.record(&delivery.retry_key, move |store| {
                        store.outbox_mark_sent(&key, request_id.as_deref(), now_ms())
                    })
                    .await;
                    tracing::debug!(retry_key = %delivery.retry_key, kind = %delivery.kind, "delivered");
                    return;
                }
                Err(e) if e.is_permanent() => {
                    let message = e.to_string();
                    crate::ops::observe::DeliveryFailed {
                        retry_key: &delivery.retry_key,
                        kind: delivery.kind.as_str(),
                        script: &delivery.source,
                        error: &message,
                    }
                    .emit();
                    let msg = message.clone();
                    self.record(&delivery.retry_key, move |store| {
                        store.outbox_mark_failed(&key, &msg, now_ms())
                    })
                    .await;
                    on_failed(&delivery, &message);
                    return;
                }
                Err(e) => {
                    let message = e.to_string();
                    let pause = ROUNDS.wait(attempts, e.retry_after());
                    tracing::warn!(retry_key = %delivery.retry_key, attempts, "delivery not accepted yet, retrying in {pause:?}: {message}");
                    let store = self.store.clone();
                    let next = now_ms().saturating_add(millis(pause));
                    // The row stays pending either way; a failed write only loses the due
                    // time, and the lane still waits out `pause` here.
                    let _ = tokio::task::spawn_blocking(move || {
                        store.outbox_mark_retry(&key, attempts, next, &message)
                    })
                    .await;
                    slot.wait(pause).await;
                }
            }
        }
    }

    /// Records a delivery's outcome, trying again until the store takes it. The lane stays
    /// held meanwhile, so the delivery cannot be read as pending and sent again.
    async fn record<F>(&self, retry_key: &str, mark: F)
    where
        F: Fn(&dyn Store) -> Result<(), StoreError> + Send + Sync + 'static,
    {
        let mark = Arc::new(mark);
        let mut pause = Duration::from_millis(100);
        loop {
            let store = self.store.clone();
            let attempt = mark.clone();
            match tokio::task::spawn_blocking(move || attempt(store.as_ref())).await {
                Ok(Ok(())) | Err(_) => return,
                // Nothing left to send again.
                Ok(Err(StoreError::UnknownDelivery(_))) => return,
                Ok(Err(e)) => tracing::error!(
                    retry_key,
                    error = %e,
                    "cannot record a delivery's outcome; its recipient's next messages wait until the store takes it"
                ),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RECORD_BACKOFF);
        }
    }
}

/// The time left until `due_ms` (ms since the epoch); zero when it has passed.
fn until(due_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(due_ms.saturating_sub(now_ms())).unwrap_or(0))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn send(line: &LineClient, delivery: &Delivery) -> Result<Sent, LineError> {
    let p = &delivery.payload;
    let messages: Vec<Value> = p
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let quiet = p
        .get("notificationDisabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let key = uuid::Uuid::parse_str(&delivery.retry_key).unwrap_or_else(|_| uuid::Uuid::new_v4());
    match delivery.kind {
        DeliveryKind::Push => {
            let to = p.get("to").and_then(Value::as_str).unwrap_or_default();
            line.push(to, &messages, key, quiet).await
        }
        DeliveryKind::Multicast => {
            let to: Vec<String> = p
                .get("to")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            line.multicast(&to, &messages, key, quiet).await
        }
        DeliveryKind::Broadcast => line.broadcast(&messages, key, quiet).await,
        // Queued as the request body itself, `notificationDisabled` included.
        DeliveryKind::Narrowcast => line.narrowcast(p, key).await,
    }
}
