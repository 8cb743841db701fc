//! The handler threads: started when an event is ready and too few threads run script code,
//! told by the wait hook when a handler waits on LINE, ended when idle. See the module above
//! for why.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};

use crate::pipeline::script::context::{self, WaitHook};
use crate::pipeline::script::{Dispatched, Provenance};
use crate::store::{Mark, Store};

use super::{Job, Queues, State};

impl Queues {
    /// While jobs are ready: wakes an idle thread, or starts one when fewer than
    /// `limits.running` threads are running script code (the others wait on the network). With
    /// enough running, a ready job waits for one of them to finish or start waiting.
    pub(super) fn staff(self: &Arc<Self>, state: &mut State) {
        if state.ready.is_empty() {
            return;
        }
        if state.running() >= self.limits.running {
            return;
        }
        if state.idle > 0 {
            self.work.notify_one();
        } else if state.threads < self.limits.max_handlers {
            self.spawn_thread(state);
        }
    }

    fn spawn_thread(self: &Arc<Self>, state: &mut State) {
        let me = self.clone();
        let started = std::thread::Builder::new()
            .name("linebotd-handler".to_owned())
            .spawn(move || work(&me));
        match started {
            Ok(_) => state.threads += 1,
            // The ready job stays queued for the threads there are.
            Err(e) => {
                tracing::error!(error = %e, threads = state.threads, "cannot start another handler thread");
                self.work.notify_one();
            }
        }
    }
}

/// Tells the pool when a handler starts and stops waiting.
struct Waits(Arc<Queues>);

impl WaitHook for Waits {
    fn begin(&self) {
        let mut state = self.0.lock();
        state.waiting += 1;
        self.0.staff(&mut state);
    }

    fn end(&self) {
        self.0.lock().waiting -= 1;
    }

    fn begin_commit(&self) -> bool {
        let mut state = self.0.lock();
        // Commits are shared: a few threads waiting on the writer keep handlers going while
        // it fsyncs, but when commits stall (a checkpoint) more would all stall the same way.
        if state.commit_waits >= self.0.limits.running * 4 {
            return false;
        }
        state.commit_waits += 1;
        state.waiting += 1;
        self.0.staff(&mut state);
        true
    }

    fn end_commit(&self, made_up_for: bool) {
        if made_up_for {
            let mut state = self.0.lock();
            state.commit_waits -= 1;
            state.waiting -= 1;
        }
    }
}

/// A handler thread: takes ready jobs until it has been idle for `idle_exit`.
fn work(shared: &Arc<Queues>) {
    lower_priority();
    context::set_wait_hook(Arc::new(Waits(shared.clone())));
    let mut state = shared.lock();
    loop {
        // This thread counts as running. Past `limits.running`, the others are busy with script
        // code or queued for a rate-limit token: one more would only queue too, holding a
        // thread, so the job waits until a thread starts waiting on LINE (see `staff`).
        if state.running() <= shared.limits.running {
            if let Some(job) = state.ready.pop_front() {
                drop(state);
                run(shared, job);
                state = shared.lock();
                continue;
            }
        }
        state.idle += 1;
        let (next, timeout) = shared
            .work
            .wait_timeout(state, shared.limits.idle_exit)
            .unwrap_or_else(|p| p.into_inner());
        state = next;
        state.idle -= 1;
        let needed = !state.ready.is_empty() && state.running() <= shared.limits.running;
        if timeout.timed_out() && !needed {
            state.threads -= 1;
            return;
        }
    }
}

/// Handler threads yield the cores to the webhook's async threads (nice 5 on Linux): LINE
/// waits about 2 s for a `200`, while an event's handler can run a little later from the
/// store. Without it, 512 handlers waking at once (answers to 1-second calls) held the `200`s
/// up for 20 ms at p99. Where the OS refuses, handlers run at normal priority.
fn lower_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    // On Linux's 0–99 scale for normal threads, 35 maps to nice 5.
    if let Ok(value) = ThreadPriorityValue::try_from(35u8) {
        if let Err(e) = set_current_thread_priority(ThreadPriority::Crossplatform(value)) {
            tracing::debug!(error = ?e, "handler thread keeps its priority");
        }
    }
}

fn run(shared: &Arc<Queues>, job: Job) {
    let seq = job.seq;
    let (journal, first_reply) = (shared.journal.clone(), Arc::new(Once::new()));
    let before_reply = move || {
        // Durable before the token is first used: if the daemon dies while LINE takes the
        // reply, the replay knows the token may be spent and pushes nothing in its place.
        first_reply.call_once(|| journal.record_durably(Mark::Started(seq)));
    };
    let journal = shared.journal.clone();
    let provenance = Provenance {
        received_ms: Some(job.received_ms),
        replay: job.replay,
        sent: if job.replay {
            sent_before(&shared.store, seq)
        } else {
            Default::default()
        },
        before_reply: Some(Arc::new(before_reply)),
        record_sent: Some(Arc::new(move |call| {
            journal.record(Mark::Sent { seq, call })
        })),
    };
    let (runtime, event) = (&shared.runtime, job.event.clone());
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.dispatch(event, provenance)))
        .unwrap_or_else(|_| {
            tracing::error!("a handler panicked");
            Dispatched::default()
        });
    let error = (!result.errors.is_empty()).then(|| {
        result
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    });
    if shared.claims {
        // Committed before the conversation's next event is claimed, by this instance or
        // another: the claim sees this one done only once it is in the store.
        // The pool counts the wait like one on LINE, and keeps the cores busy meanwhile.
        context::commit_waiting(|| shared.journal.record_durably(Mark::Done { seq, error }));
    } else {
        shared.journal.record(Mark::Done { seq, error });
    }
    shared.finish(&job);
}

/// The calls an earlier run of event `seq` completed; none if the store cannot say (the
/// replay's own safeguards still apply: see `reply`).
fn sent_before(store: &Arc<dyn Store>, seq: i64) -> Arc<std::collections::HashSet<String>> {
    match store.inbox_sent_calls(seq) {
        Ok(calls) => Arc::new(calls.into_iter().collect()),
        Err(e) => {
            tracing::warn!(seq, error = %e, "cannot read what the last run of this event sent");
            Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn handler_threads_run_at_nice_5() {
        let nice = std::thread::spawn(|| {
            super::lower_priority();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            // Fields after the command name (which ends with ')'); nice is the 19th field.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after.split_whitespace().nth(16).map(str::to_owned)
        })
        .join()
        .expect("thread");
        assert_eq!(nice.as_deref(), Some("5"));
    }
}
