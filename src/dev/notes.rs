//! What `dev` tells the chat besides the bot's messages: an event no script handles, a handler
//! that failed. Served at `GET /dev/notes?after=N&wait_ms=M` (long poll, like `/dev/calls`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::pipeline::script::host::DispatchHook;
use crate::pipeline::webhook::handler_name;

/// One note, by its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub index: usize,
    pub text: String,
}

/// An append-only list that readers follow by position, waiting for what comes next: the
/// notes here, and the browser console's log (`console/log.rs`). It keeps the newest
/// [`JOURNAL_KEEP`] items, so a dev session of days does not grow without end; positions keep
/// counting, and a reader behind the oldest kept item gets from there on.
pub struct Journal<T> {
    list: Mutex<Kept<T>>,
    added: Notify,
}

/// Items kept by a journal at most.
pub const JOURNAL_KEEP: usize = 10_000;

struct Kept<T> {
    items: VecDeque<T>,
    /// Position of `items[0]`.
    first: usize,
}

impl<T> Default for Journal<T> {
    fn default() -> Self {
        Self {
            list: Mutex::new(Kept {
                items: VecDeque::new(),
                first: 0,
            }),
            added: Notify::new(),
        }
    }
}

impl<T: Clone> Journal<T> {
    /// Appends `item`; returns its position.
    pub fn add(&self, item: T) -> usize {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.items.push_back(item);
        if list.items.len() > JOURNAL_KEEP {
            list.items.pop_front();
            list.first += 1;
        }
        let index = list.first + list.items.len() - 1;
        drop(list);
        self.added.notify_waiters();
        index
    }

    /// The items from position `n` on, with their positions.
    pub fn after(&self, n: usize) -> Vec<(usize, T)> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let start = n.max(list.first);
        // Skipped before cloning: a long dev session's earlier entries are not copied again.
        list.items
            .iter()
            .skip(start - list.first)
            .cloned()
            .zip(start..)
            .map(|(t, i)| (i, t))
            .collect()
    }

    /// The items from position `n` on, waiting up to `timeout` (at most 30 s) for at least one.
    pub async fn wait_after(&self, n: usize, timeout: Duration) -> Vec<(usize, T)> {
        wait_for_some(&self.added, timeout.min(MAX_WAIT), || self.after(n)).await
    }
}

/// Looks with `look` until it finds something or `timeout` passes, looking again each time
/// `added` is notified (with `notify_waiters`): the long polls of `/dev/notes`, `/dev/calls` and
/// the console's log.
pub async fn wait_for_some<T>(
    added: &Notify,
    timeout: Duration,
    mut look: impl FnMut() -> Vec<T>,
) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Register interest before looking, so an item added in between is not missed.
        let notified = added.notified();
        let found = look();
        if !found.is_empty() || tokio::time::timeout_at(deadline, notified).await.is_err() {
            return found;
        }
    }
}

#[derive(Default)]
pub struct Notes(Journal<String>);

/// Longest wait a poll may ask for.
const MAX_WAIT: Duration = Duration::from_secs(30);

fn notes(items: Vec<(usize, String)>) -> Vec<Note> {
    items
        .into_iter()
        .map(|(index, text)| Note { index, text })
        .collect()
}

impl Notes {
    pub fn add(&self, text: String) {
        self.0.add(text);
    }

    pub fn after(&self, n: usize) -> Vec<Note> {
        notes(self.0.after(n))
    }

    /// The notes from position `n` on, waiting up to `timeout` for at least one.
    pub async fn wait_after(&self, n: usize, timeout: Duration) -> Vec<Note> {
        notes(self.0.wait_after(n, timeout).await)
    }

    /// What the dispatcher tells: an event no handler took, each handler that failed.
    pub fn hook(self: &Arc<Self>) -> DispatchHook {
        let notes = self.clone();
        Arc::new(move |event, dispatched| {
            if dispatched.handlers_run == 0 {
                notes.add(unhandled(&event.kind));
            }
            for error in &dispatched.errors {
                notes.add(format!("a handler failed: {error}"));
            }
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/dev/notes", get(poll))
            .with_state(self.clone())
    }
}

/// What to say about an event of type `kind` that no script handles.
pub fn unhandled(kind: &str) -> String {
    format!(
        "no script handles `{kind}` events (define {} or on_event)",
        handler_name(kind)
    )
}

#[derive(Deserialize)]
struct Poll {
    #[serde(default)]
    after: usize,
    #[serde(default)]
    wait_ms: u64,
}

async fn poll(State(notes): State<Arc<Notes>>, Query(p): Query<Poll>) -> Json<Vec<Note>> {
    Json(
        notes
            .wait_after(p.after, Duration::from_millis(p.wait_ms))
            .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poll_waits_for_the_next_note() {
        let notes = Arc::new(Notes::default());
        notes.add("first".into());
        assert_eq!(notes.after(0).len(), 1);
        assert!(notes.after(1).is_empty());
        let waiting = {
            let notes = notes.clone();
            tokio::spawn(async move { notes.wait_after(1, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        notes.add("second".into());
        let got = waiting.await.unwrap();
        assert_eq!(
            got,
            [Note {
                index: 1,
                text: "second".into()
            }]
        );
        // Nothing new: the poll ends empty at its deadline.
        assert!(notes
            .wait_after(2, Duration::from_millis(10))
            .await
            .is_empty());
    }

    #[test]
    fn a_journal_keeps_the_newest_items_and_their_positions() {
        let journal = Journal::default();
        for i in 0..JOURNAL_KEEP + 5 {
            assert_eq!(journal.add(i), i);
        }
        // The first five are gone; a reader behind them starts at the oldest kept.
        let all = journal.after(0);
        assert_eq!(all.len(), JOURNAL_KEEP);
        assert_eq!(all[0], (5, 5));
        assert_eq!(all.last(), Some(&(JOURNAL_KEEP + 4, JOURNAL_KEEP + 4)));
        assert_eq!(
            journal.after(JOURNAL_KEEP + 3),
            [
                (JOURNAL_KEEP + 3, JOURNAL_KEEP + 3),
                (JOURNAL_KEEP + 4, JOURNAL_KEEP + 4)
            ]
        );
        assert!(journal.after(JOURNAL_KEEP + 5).is_empty());
    }
}
