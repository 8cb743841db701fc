//! Script values to and from JSON, and the messages scripts pass to `reply` and `push`.

use rhai::{Array, Dynamic, EvalAltResult};
use serde_json::Value;

use crate::line;

use super::host::script_error;

type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// Scripts pass a string, a message map, or an array of those.
pub fn to_messages(value: &Dynamic) -> HostResult<Vec<Value>> {
    fn one(v: &Dynamic, index: usize) -> HostResult<Value> {
        if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
            return Ok(line::message::text(s.as_str()));
        }
        if v.is_map() {
            return to_json(v);
        }
        Err(script_error(format!(
            "message {} is a {}; a message is a string or a map such as #{{type: \"text\", text: \"hi\"}}",
            index + 1,
            super::suggest::kind(v)
        )))
    }
    match value.read_lock::<Array>() {
        Some(items) => items.iter().enumerate().map(|(i, v)| one(v, i)).collect(),
        None => Ok(vec![one(value, 0)?]),
    }
}

/// A script value as JSON (maps, arrays, strings, numbers, booleans, `()` as null).
pub fn to_json(value: &Dynamic) -> HostResult<Value> {
    rhai::serde::from_dynamic::<Value>(value)
        .map_err(|e| script_error(format!("cannot turn this value into JSON: {e}")))
}

/// A script value straight from JSON text (no intermediate JSON tree); unit if it is not JSON.
pub fn from_json_text(json: &str) -> Dynamic {
    serde_json::from_str(json).unwrap_or(Dynamic::UNIT)
}

/// A JSON value as a script value.
pub fn from_json(value: &Value) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}
