//! A lane's sending slot, held only while its request is on its way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A lane's claim on one of the outbox's sending slots: held while a request is on its way,
/// given back while the lane waits.
pub(super) struct Slot {
    held: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
}

impl Slot {
    pub(super) fn new(slots: Arc<Semaphore>) -> Self {
        Self { held: None, slots }
    }

    /// Holds a slot, waiting for one if needed; false when the outbox is shutting down.
    pub(super) async fn take(&mut self) -> bool {
        if self.held.is_none() {
            self.held = self.slots.clone().acquire_owned().await.ok();
        }
        self.held.is_some()
    }

    pub(super) fn give_back(&mut self) {
        self.held = None;
    }

    /// Waits `wait` without holding a slot (nothing to give back when it is zero).
    pub(super) async fn wait(&mut self, wait: Duration) {
        if !wait.is_zero() {
            self.give_back();
            tokio::time::sleep(wait).await;
        }
    }
}
