//! An event's way through the daemon, one module per stage in flow order:
//!
//! | module       | what it does                                                          |
//! |--------------|-----------------------------------------------------------------------|
//! | [`webhook`]  | `POST /callback`: verify the signature on raw bytes, parse events     |
//! | [`inbox`]    | events stored before the 200, deduplicated, handed to the dispatcher   |
//! | [`dispatch`] | handler threads: per-conversation order, a pool that grows while waiting |
//! | [`script`]   | the Rhai engine, the host API scripts call, limits, hot reload        |
//! | [`outbox`]   | durable push/multicast/broadcast delivery with retry keys             |
//! | [`schedule`] | cron schedules declared in scripts: parsing, next times, the timer     |

pub mod dispatch;
pub mod inbox;
pub mod outbox;
pub mod schedule;
pub mod script;
pub mod webhook;
