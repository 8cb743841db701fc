//! Script state in the store: `store_get`, `store_set`, `store_delete`, `store_keys`, and the
//! follower list the daemon keeps from follow/unfollow events.

use rhai::{Array, Dynamic, Engine};

use super::host::{from_json, host, script_error, to_json};

type HostResult<T> = Result<T, Box<rhai::EvalAltResult>>;

fn store_error(what: &str, e: crate::store::StoreError) -> Box<rhai::EvalAltResult> {
    script_error(format!("{what}: {e}"))
}

fn store_get(key: &str) -> HostResult<Dynamic> {
    let host = host()?;
    match host
        .store
        .kv_get(key)
        .map_err(|e| store_error("store_get", e))?
    {
        Some(value) => Ok(from_json(&value)),
        None => Ok(Dynamic::UNIT),
    }
}

/// Stores the whole value at once: changing a nested part later means calling store_set again,
/// which is exactly what the script sees (no hidden write-back).
fn store_set(key: &str, value: Dynamic) -> HostResult<()> {
    let host = host()?;
    if value.is::<rhai::FnPtr>() {
        return Err(script_error("store_set: functions cannot be stored; store maps, arrays, strings, numbers, booleans or ()"));
    }
    let json = to_json(&value)?;
    host.store
        .kv_set(key, &json)
        .map_err(|e| store_error("store_set", e))
}

fn store_delete(key: &str) -> HostResult<bool> {
    host()?
        .store
        .kv_delete(key)
        .map_err(|e| store_error("store_delete", e))
}

fn store_keys(prefix: &str) -> HostResult<Array> {
    let keys = host()?
        .store
        .kv_keys(prefix)
        .map_err(|e| store_error("store_keys", e))?;
    Ok(keys.into_iter().map(Dynamic::from).collect())
}

fn followers() -> HostResult<Array> {
    let ids = host()?
        .store
        .followers()
        .map_err(|e| store_error("followers", e))?;
    Ok(ids.into_iter().map(Dynamic::from).collect())
}

fn follower_count() -> HostResult<i64> {
    let n = host()?
        .store
        .follower_count()
        .map_err(|e| store_error("follower_count", e))?;
    Ok(n as i64)
}

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("store_get", store_get)
        .register_fn("store_set", store_set)
        .register_fn("store_delete", store_delete)
        .register_fn("store_keys", store_keys)
        .register_fn("store_keys", || store_keys(""))
        .register_fn("followers", followers)
        .register_fn("follower_count", follower_count);
}
