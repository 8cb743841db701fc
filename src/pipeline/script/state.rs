//! Script state in the store: `store_get`, `store_set`, `store_delete`, `store_keys`, and the
//! follower list the daemon keeps from follow/unfollow events.
//!
//! The same functions serve the bot's scripts (the store of the running handler) and test files
//! (the store of the test's bot, to seed state and check what a handler saved).

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine};

use super::host::{from_json, host, script_error, to_json};
use crate::store::Store;

type HostResult<T> = Result<T, Box<rhai::EvalAltResult>>;

fn store_error(what: &str, e: crate::store::StoreError) -> Box<rhai::EvalAltResult> {
    script_error(format!("{what}: {e}"))
}

fn store_get(store: &dyn Store, key: &str) -> HostResult<Dynamic> {
    match store.kv_get(key).map_err(|e| store_error("store_get", e))? {
        Some(value) => Ok(from_json(&value)),
        None => Ok(Dynamic::UNIT),
    }
}

/// Stores the whole value at once: changing a nested part later means calling store_set again,
/// which is exactly what the script sees (no hidden write-back).
fn store_set(store: &dyn Store, key: &str, value: Dynamic) -> HostResult<()> {
    if value.is::<rhai::FnPtr>() {
        return Err(script_error("store_set: functions cannot be stored; store maps, arrays, strings, numbers, booleans or ()"));
    }
    let json = to_json(&value)?;
    store
        .kv_set(key, &json)
        .map_err(|e| store_error("store_set", e))
}

fn store_keys(store: &dyn Store, prefix: &str) -> HostResult<Array> {
    let keys = store
        .kv_keys(prefix)
        .map_err(|e| store_error("store_keys", e))?;
    Ok(keys.into_iter().map(Dynamic::from).collect())
}

fn followers(store: &dyn Store) -> HostResult<Array> {
    let ids = store.followers().map_err(|e| store_error("followers", e))?;
    Ok(ids.into_iter().map(Dynamic::from).collect())
}

/// Where the functions find the store: the running handler's, or a test's bot's.
pub type StoreOf = Arc<dyn Fn() -> HostResult<Arc<dyn Store>> + Send + Sync>;

/// Registers the state functions for the bot's scripts.
pub fn register(engine: &mut Engine) {
    register_with(engine, Arc::new(|| host().map(|h| h.store.clone())));
}

/// Registers the state functions on `engine`, acting on the store `store_of` gives.
pub fn register_with(engine: &mut Engine, store_of: StoreOf) {
    let s = store_of.clone();
    engine.register_fn("store_get", move |key: &str| store_get(&*s()?, key));
    let s = store_of.clone();
    engine.register_fn("store_set", move |key: &str, value: Dynamic| {
        store_set(&*s()?, key, value)
    });
    let s = store_of.clone();
    engine.register_fn("store_delete", move |key: &str| -> HostResult<bool> {
        s()?.kv_delete(key)
            .map_err(|e| store_error("store_delete", e))
    });
    let s = store_of.clone();
    engine.register_fn("store_keys", move |prefix: &str| store_keys(&*s()?, prefix));
    let s = store_of.clone();
    engine.register_fn("store_keys", move || store_keys(&*s()?, ""));
    let s = store_of.clone();
    engine.register_fn("followers", move || followers(&*s()?));
    engine.register_fn("follower_count", move || -> HostResult<i64> {
        let n = store_of()?
            .follower_count()
            .map_err(|e| store_error("follower_count", e))?;
        Ok(n as i64)
    });
}
