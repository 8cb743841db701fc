//! The claimer: the feeder's stand-in on a store shared by several instances. It takes the
//! events the store says may run now ([`crate::store::Store::inbox_claim`]: each
//! conversation's oldest pending event, unleased) under a lease, and renews the leases of what
//! it holds, so another instance takes them over only when this one stops renewing.
//!
//! It claims when told something changed here (a commit, an event done) and otherwise every
//! [`POLL`], which is how events that other instances stored, or that a dead instance left,
//! reach this one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Queues, FEED_PAGE, FEED_RETRY};
use crate::store::now_ms;

/// How often the claimer asks the store when nothing happened here.
const POLL: Duration = Duration::from_millis(200);

pub(super) fn claim(shared: &Arc<Queues>) {
    let owner = uuid::Uuid::new_v4().to_string();
    let lease = shared.limits.lease;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let mut renewed = Instant::now();
    loop {
        let limit = {
            let mut state = shared.lock();
            loop {
                if state.stopping {
                    return;
                }
                let room = shared.limits.window.saturating_sub(state.in_memory);
                if state.claim_wanted && room > 0 {
                    break;
                }
                let (next, waited) = shared
                    .feed
                    .wait_timeout(state, POLL)
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                if waited.timed_out() {
                    break;
                }
            }
            state.claim_wanted = false;
            let room = shared.limits.window.saturating_sub(state.in_memory);
            room.min(FEED_PAGE)
        };
        // The heartbeat: a third of the lease, so one late renewal does not lose it.
        if renewed.elapsed() >= lease / 3 {
            renewed = Instant::now();
            let until = now_ms().saturating_add(lease_ms);
            let held: Vec<i64> = shared.lock().held.iter().copied().collect();
            if let Err(e) = shared.store.inbox_renew(&owner, &held, until) {
                tracing::warn!(error = %e, "cannot renew this instance's leases on its events");
            }
        }
        if limit == 0 {
            continue;
        }
        let rows = match shared.store.inbox_claim(&owner, now_ms(), lease_ms, limit) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim events from the shared inbox; trying again");
                let state = shared.lock();
                drop(shared.feed.wait_timeout(state, FEED_RETRY));
                shared.lock().claim_wanted = true;
                continue;
            }
        };
        let more = rows.len() == limit;
        let jobs = shared.jobs(rows);
        let mut state = shared.lock();
        for job in jobs {
            state.held.insert(job.seq);
            shared.enqueue(&mut state, job);
        }
        if more {
            state.claim_wanted = true;
        }
    }
}
