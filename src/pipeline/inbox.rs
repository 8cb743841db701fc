//! The durable inbox in front of the dispatcher: verified events are stored (deduplicated by
//! `webhookEventId`) before the webhook answers, and pruned once they are old. The inbox is the
//! queue: the writer hands what it committed to the dispatcher (see [`crate::pipeline::dispatch`]), so the
//! 200 waits for the commit and nothing else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::ops::observe;
use crate::pipeline::dispatch::Journal;
use crate::pipeline::webhook::{Event, EventSink, Outcome, SinkError};
use crate::store::{self, InboxWriter, Mark, NewInboxEvent, Store};

/// Webhook event ids are remembered this long to drop LINE's redeliveries.
const DEDUPE_KEEP: Duration = Duration::from_secs(8 * 24 * 3600);

/// The inbox writer, each stored event travelling on with its parsed form.
pub type Inbox = InboxWriter<Arc<Event>>;

/// The dispatcher's journal: the inbox writer, once it exists. The dispatcher journals each
/// event's progress through the writer, and the writer hands new events to the dispatcher, so
/// the writer is set ([`InboxJournal::set`]) once both exist. The dispatcher's feeder starts
/// reading the stored backlog at once, so a mark made before then waits for the writer (on the
/// dispatcher's own threads, never on the runtime's): dropped, it would leave a handled event
/// to run again at the next start.
#[derive(Default)]
pub struct InboxJournal(std::sync::OnceLock<Arc<Inbox>>);

impl InboxJournal {
    pub fn set(&self, inbox: Arc<Inbox>) {
        let _ = self.0.set(inbox);
    }
}

impl Journal for InboxJournal {
    fn record(&self, mark: Mark) {
        self.0.wait().mark(mark);
    }

    fn record_durably(&self, mark: Mark) {
        self.0.wait().mark_durably(mark);
    }
}

/// Stores verified events (deduplicated) before the 200.
pub struct InboxSink {
    pub inbox: Arc<Inbox>,
}

impl EventSink for InboxSink {
    fn accept(
        &self,
        events: Vec<Event>,
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
        Box::pin(async move {
            let now = store::now_ms();
            let count = events.len();
            let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
            let items = events
                .iter()
                .map(|e| {
                    let new = NewInboxEvent {
                        webhook_event_id: e.webhook_event_id.clone(),
                        conversation: e.conversation_key().to_owned(),
                        payload: e.raw.get().to_owned(),
                        received_ms: now,
                    };
                    (new, e.clone())
                })
                .collect();
            let seqs = self
                .inbox
                .insert(items)
                .await
                .map_err(|e| SinkError(e.to_string()))?;
            let mut new = 0;
            for (event, seq) in events.iter().zip(seqs) {
                let id = event.webhook_event_id.as_deref();
                if seq.is_some() {
                    new += 1;
                    observe::EventReceived {
                        kind: &event.kind,
                        webhook_event_id: id,
                    }
                    .emit();
                } else {
                    observe::EventDuplicate {
                        webhook_event_id: id,
                    }
                    .emit();
                }
            }
            // Only the sink knows whether a request was all redeliveries (see `webhook_hook`).
            let outcome = if new == 0 {
                Outcome::Duplicate
            } else {
                Outcome::Accepted
            };
            observe::WebhookReceived {
                outcome: outcome.as_str(),
                events: count,
            }
            .emit();
            Ok(())
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The feeder may mark an unreadable stored event done before the daemon has set the
    /// writer: the mark must wait for it, not be lost (it was, and the event stayed pending).
    #[test]
    fn a_mark_made_before_the_writer_is_set_reaches_the_store() {
        let store = store::open(":memory:").unwrap();
        let seq = store.inbox_insert(&[NewInboxEvent {
            webhook_event_id: None,
            conversation: "U1".to_owned(),
            payload: "not an event".to_owned(),
            received_ms: 1,
        }]);
        let seq = seq.unwrap()[0].unwrap();
        let journal = Arc::new(InboxJournal::default());
        let early = journal.clone();
        let (started, running) = std::sync::mpsc::channel();
        let marking = std::thread::spawn(move || {
            started.send(()).unwrap();
            early.record(Mark::Done { seq, error: None });
        });
        running.recv().unwrap();
        let inbox = Arc::new(Inbox::with_hook(store.clone(), 16, Box::new(drop)));
        journal.set(inbox.clone());
        marking.join().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.inbox_backlog().unwrap() != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the early mark was lost"
            );
            std::thread::yield_now();
        }
    }
}
