//! The durable inbox in front of the dispatcher: verified events are stored (deduplicated by
//! `webhookEventId`) before the webhook answers, handed to the dispatcher, re-queued after a
//! crash, and pruned once they are old.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::daemon::DaemonError;
use crate::dispatch::{Dispatcher, Job};
use crate::observe;
use crate::store::{self, InboxWriter, NewInboxEvent, Store};
use crate::webhook::{Event, EventSink, Outcome, SinkError};

/// Webhook event ids are remembered this long to drop LINE's redeliveries.
const DEDUPE_KEEP: Duration = Duration::from_secs(8 * 24 * 3600);

/// Stores verified events (deduplicated) before the 200, then hands the new ones on.
pub struct InboxSink {
    pub inbox: Arc<InboxWriter>,
    pub dispatcher: Dispatcher,
}

impl EventSink for InboxSink {
    fn accept(
        &self,
        events: Vec<Event>,
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
        Box::pin(async move {
            let now = store::now_ms();
            let items = events
                .iter()
                .map(|e| NewInboxEvent {
                    webhook_event_id: e.webhook_event_id.clone(),
                    conversation: e.conversation_key().to_owned(),
                    payload: e.raw.get().to_owned(),
                    received_ms: now,
                })
                .collect();
            let seqs = self
                .inbox
                .insert(items)
                .await
                .map_err(|e| SinkError(e.to_string()))?;
            let count = events.len();
            let mut new = 0;
            for (event, seq) in events.into_iter().zip(seqs) {
                match seq {
                    Some(seq) => {
                        new += 1;
                        observe::EventReceived {
                            kind: &event.kind,
                            webhook_event_id: event.webhook_event_id.as_deref(),
                        }
                        .emit();
                        let job = Job {
                            event: Arc::new(event),
                            seq: Some(seq),
                        };
                        // Stored already: if the dispatcher is gone the event runs after restart.
                        let _ = self.dispatcher.send(job).await;
                    }
                    None => observe::EventDuplicate {
                        webhook_event_id: event.webhook_event_id.as_deref(),
                    }
                    .emit(),
                }
            }
            // Only the sink knows whether a request was all redeliveries (see `webhook_hook`).
            let outcome = if new == 0 {
                Outcome::Duplicate
            } else {
                Outcome::Accepted
            };
            observe::WebhookReceived {
                outcome,
                events: count,
            }
            .emit();
            Ok(())
        })
    }
}

/// Events acknowledged before a crash but not handled go first, in their original order.
pub async fn recover(store: &Arc<dyn Store>, dispatcher: &Dispatcher) -> Result<(), DaemonError> {
    let s = store.clone();
    let pending = tokio::task::spawn_blocking(move || s.inbox_pending(usize::MAX))
        .await
        .map_err(|e| store::StoreError::Sqlite(e.to_string()))??;
    if pending.is_empty() {
        return Ok(());
    }
    tracing::info!(
        events = pending.len(),
        "handling events acknowledged before the last stop"
    );
    for item in pending {
        let event = Event::from_json(&item.payload);
        match event {
            Some(event) => {
                let _ = dispatcher
                    .send(Job {
                        event: Arc::new(event),
                        seq: Some(item.seq),
                    })
                    .await;
            }
            None => tracing::error!(seq = item.seq, "stored event is unreadable; skipped"),
        }
    }
    Ok(())
}

pub async fn prune_daily(store: Arc<dyn Store>) {
    loop {
        let s = store.clone();
        let keep = DEDUPE_KEEP.as_millis() as i64;
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || s.prune(store::now_ms(), keep)).await
        {
            tracing::warn!(error = %e, "pruning the store failed");
        }
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    }
}
