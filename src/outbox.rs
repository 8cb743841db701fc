//! The durable outbox: `push`, `multicast` and `broadcast` are stored with their retry key, then
//! delivered by one sender task that keeps per-recipient order and retries transient failures
//! until LINE answers. A delivery LINE rejects (4xx) is kept as failed and reported.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use crate::line::{LineClient, LineError, Sent};
use crate::store::{now_ms, Delivery, DeliveryKind, NewDelivery, Store, StoreError};

/// Deliveries sent at once (different recipients; one recipient's deliveries go one by one).
const PARALLEL_SENDS: usize = 16;
/// Longest wait between two rounds of retries while LINE keeps failing.
const MAX_ROUND_BACKOFF: Duration = Duration::from_secs(60);

/// Called when LINE rejected a delivery for good.
pub type FailedHook = Arc<dyn Fn(&Delivery, &str) + Send + Sync>;

/// The outbox: queue from scripts, deliver from a background task.
pub struct Outbox {
    store: Arc<dyn Store>,
    wake: Notify,
    /// Recipients (or retry keys, for multicast/broadcast) with a delivery being sent.
    busy: Mutex<HashSet<String>>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            wake: Notify::new(),
            busy: Mutex::new(HashSet::new()),
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

    /// Delivers until the process ends. Pending deliveries from before a restart go first.
    pub async fn run(self: Arc<Self>, line: LineClient, on_failed: FailedHook) {
        let slots = Arc::new(Semaphore::new(PARALLEL_SENDS));
        loop {
            let store = self.store.clone();
            let due = tokio::task::spawn_blocking(move || store.outbox_due(i64::MAX, 1000)).await;
            let due = match due {
                Ok(Ok(due)) => due,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot read the outbox; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
            let mut claimed_this_round = HashSet::new();
            for delivery in due {
                let lane = lane(&delivery);
                // Oldest first: only the first pending delivery of a recipient may go.
                if !claimed_this_round.insert(lane.clone()) {
                    continue;
                }
                if !self
                    .busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(lane.clone())
                {
                    continue;
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                let line = line.clone();
                let on_failed = on_failed.clone();
                tokio::spawn(async move {
                    this.deliver(&line, delivery, &on_failed).await;
                    this.busy
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&lane);
                    drop(slot);
                    this.wake.notify_one();
                });
            }
            // Woken by a new delivery or a finished one; the timeout is a safety net only.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }

    /// Sends one delivery until LINE accepts or rejects it.
    async fn deliver(&self, line: &LineClient, delivery: Delivery, on_failed: &FailedHook) {
        let mut attempts = delivery.attempts;
        let mut pause = Duration::from_secs(1);
        loop {
            attempts += 1;
            let result = send(line, &delivery).await;
            let store = self.store.clone();
            let key = delivery.retry_key.clone();
            match result {
                Ok(sent) => {
                    let request_id = sent.request_id.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        store.outbox_mark_sent(&key, request_id.as_deref(), now_ms())
                    })
                    .await;
                    tracing::debug!(retry_key = %delivery.retry_key, kind = %delivery.kind, "delivered");
                    return;
                }
                Err(e) if e.is_permanent() => {
                    let message = e.to_string();
                    crate::observe::DeliveryFailed {
                        retry_key: &delivery.retry_key,
                        kind: delivery.kind.as_str(),
                        script: &delivery.source,
                        error: &message,
                    }
                    .emit();
                    let msg = message.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        store.outbox_mark_failed(&key, &msg, now_ms())
                    })
                    .await;
                    on_failed(&delivery, &message);
                    return;
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::warn!(retry_key = %delivery.retry_key, attempts, "delivery not accepted yet, retrying in {pause:?}: {message}");
                    let _ = tokio::task::spawn_blocking(move || {
                        store.outbox_mark_retry(&key, attempts, now_ms(), &message)
                    })
                    .await;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_ROUND_BACKOFF);
                }
            }
        }
    }
}

/// Deliveries in one lane go out one at a time, in order: a push lane is its recipient.
fn lane(delivery: &Delivery) -> String {
    match delivery.kind {
        DeliveryKind::Push => format!(
            "to:{}",
            delivery
                .payload
                .get("to")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        _ => format!("key:{}", delivery.retry_key),
    }
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
    }
}
