//! The PostgreSQL [`Store`]: a bounded pool of connections to one database that any number of
//! daemon instances share. The inbox is here, the schema in `postgres_schema.rs`, the outbox,
//! followers and schedules in `postgres_outbox.rs`, key/value state and timers in
//! `postgres_state.rs`.
//!
//! The `Store` trait is synchronous, and its callers are plain threads (the inbox writer, the
//! handlers) as well as `spawn_blocking` tasks, and now and then an async task. So the store
//! owns a small tokio runtime of its own that drives the connections, and each call blocks the
//! calling thread on its future (as a SQLite call blocks on the file), from whatever context:
//! a call never needs the caller's runtime, and cannot trip "a runtime within a runtime".

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::shared::{count, CommitHealth};
use super::{
    Delivery, InboxEvent, Mark, NewDelivery, NewInboxEvent, Options, Store, StoreError, Timer,
};

/// How long a new connection may take before the call fails (the database is down).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a call waits for a free pooled connection before failing.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct PgStore {
    pub(super) pool: Pool,
    /// Drives the connections; shut down in the background on drop, which is allowed anywhere.
    runtime: Option<tokio::runtime::Runtime>,
    /// How the inbox's last commit went: readiness reports a failure until one succeeds.
    last_commit: CommitHealth,
    /// Where the database is, without the password, for messages.
    pub(super) target: String,
}

/// Turns a driver error into ours. PostgreSQL's own message (with its detail) says what went
/// wrong better than anything we could add.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    let message = match e.as_db_error() {
        Some(db) => format!("PostgreSQL: {}", db.message()),
        None => match std::error::Error::source(&e) {
            Some(cause) => format!("PostgreSQL: {e}: {cause}"),
            None => format!("PostgreSQL: {e}"),
        },
    };
    let conflict = [
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
    ];
    if e.code().is_some_and(|code| conflict.contains(code)) {
        StoreError::Conflict(message)
    } else {
        StoreError::Database(message)
    }
}

/// Whether a store path names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(path: &str) -> bool {
    path.starts_with("postgres://") || path.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url`, and brings its schema to `version` under an advisory
    /// lock, so instances starting together migrate once.
    pub(crate) fn open(url: &str, version: u32, options: Options) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Open {
            path: "the PostgreSQL URL".to_owned(),
            message: format!("{e} (expected postgres://user:password@host:port/database)"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("linebotd");
        let target = describe(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("linebotd-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open {
                path: target.clone(),
                message: format!("cannot start the database runtime: {e}"),
            })?;
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Open {
                path: target.clone(),
                message: e.to_string(),
            })?;
        let store = Self {
            pool,
            runtime: Some(runtime),
            last_commit: CommitHealth::default(),
            target,
        };
        store
            .block(async {
                let mut client = store.client().await?;
                super::postgres_schema::migrate(&mut client, &store.target, version).await
            })
            .map_err(|e| match e {
                StoreError::Database(message) => StoreError::Open {
                    path: store.target.clone(),
                    message,
                },
                other => other,
            })?;
        Ok(store)
    }

    /// Runs `work` to completion on this thread, with the store's runtime as the context that
    /// connections and timeouts register with.
    pub(super) fn block<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(runtime) = &self.runtime else {
            return Err(StoreError::Closed);
        };
        let _context = runtime.enter();
        futures_executor::block_on(work)
    }

    /// A pooled connection; fails within the pool's timeouts when the database is unreachable.
    pub(super) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Database(format!("cannot reach PostgreSQL at {}: {e}", self.target))
        })
    }

    /// One statement on a pooled connection: the rows it returns.
    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
            client.query(&stmt, params).await.map_err(pg_err)
        })
    }

    /// One statement on a pooled connection: how many rows it changed.
    pub(super) fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
            client.execute(&stmt, params).await.map_err(pg_err)
        })
    }

    /// A single `bigint` a statement returns.
    pub(super) fn query_count(&self, sql: &str) -> Result<u64, StoreError> {
        let rows = self.query(sql, &[])?;
        let n: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(pg_err)?,
            None => 0,
        };
        Ok(count(n))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which panics inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `postgres://host:port/database`, what messages name (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    format!("postgres://{host}:{port}/{db}")
}

impl Store for PgStore {
    forward_to_inherent!();

    fn inbox_write(
        &self,
        new: &[NewInboxEvent],
        marks: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let outcome = self.write_inbox(new, marks);
        self.last_commit.note(outcome.as_ref().map(drop));
        outcome
    }

    fn inbox_sent_calls(&self, seq: i64) -> Result<Vec<String>, StoreError> {
        let rows = self.query(
            "SELECT call_key FROM sent_calls WHERE seq = $1 ORDER BY call_key",
            &[&seq],
        )?;
        rows.iter().map(|r| r.try_get(0).map_err(pg_err)).collect()
    }

    fn inbox_claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        self.claim(owner, now_ms, lease_ms, limit)
    }

    fn inbox_renew(&self, owner: &str, seqs: &[i64], until_ms: i64) -> Result<(), StoreError> {
        self.renew(owner, seqs, until_ms)
    }

    fn inbox_pending(&self, after_seq: i64, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        self.pending(after_seq, limit)
    }

    fn inbox_backlog(&self) -> Result<u64, StoreError> {
        self.query_count("SELECT count(*) FROM inbox WHERE done_ms IS NULL")
    }

    fn shared(&self) -> bool {
        true
    }

    fn inbox_writable(&self, fresh: Duration) -> Result<(), StoreError> {
        self.last_commit.check(fresh, || self.probe())
    }

    fn prune(&self, now_ms: i64, dedupe_keep_ms: i64) -> Result<(), StoreError> {
        self.prune_before(now_ms.saturating_sub(dedupe_keep_ms))
    }

    fn outbox_hold(
        &self,
        lane: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        self.hold_lane(lane, owner, now_ms, until_ms)
    }

    fn outbox_release(&self, lane: &str, owner: &str) -> Result<(), StoreError> {
        self.release_lane(lane, owner)
    }

    fn outbox_renew(&self, owner: &str, until_ms: i64) -> Result<(), StoreError> {
        self.renew_lanes(owner, until_ms)
    }

    fn kv_get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.get_value(key)
    }

    fn kv_set(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        self.set_value(key, value)
    }

    fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM kv WHERE key = $1", &[&key])? > 0)
    }

    fn kv_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.keys(prefix)
    }

    fn kv_clear(&self) -> Result<(), StoreError> {
        self.execute("DELETE FROM kv", &[]).map(drop)
    }

    fn followers(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.query(
            "SELECT user_id FROM followers WHERE following ORDER BY first_follow_ms, user_id",
            &[],
        )?;
        rows.iter().map(|r| r.try_get(0).map_err(pg_err)).collect()
    }

    fn follower_count(&self) -> Result<u64, StoreError> {
        self.query_count("SELECT count(*) FROM followers WHERE following")
    }

    fn schedule_last_run(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let rows = self.query("SELECT last_run_ms FROM schedules WHERE key = $1", &[&key])?;
        rows.first()
            .map(|r| r.try_get(0).map_err(pg_err))
            .transpose()
    }

    fn schedule_claim_run(&self, key: &str, at_ms: i64) -> Result<bool, StoreError> {
        Ok(self.execute(super::shared::CLAIM_RUN, &[&key, &at_ms])? == 1)
    }
}
