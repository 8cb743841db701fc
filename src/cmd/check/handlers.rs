//! Handlers that would never run: an `on_*` function no LINE event type maps to, with the name
//! it most likely meant.

use crate::pipeline::script::Script;
use crate::pipeline::webhook::event::{handler_name, KNOWN_EVENT_TYPES};

use super::closest;

/// Handlers the daemon calls that are not named after a webhook event type.
const EXTRA_HANDLERS: [&str; 2] = ["on_event", "on_delivery_failed"];

/// Every handler name the daemon can call.
pub fn known_handlers() -> Vec<String> {
    KNOWN_EVENT_TYPES
        .iter()
        .map(|t| handler_name(t))
        .chain(EXTRA_HANDLERS.iter().map(|h| (*h).to_owned()))
        .collect()
}

/// An `on_*` function with one parameter is meant as a handler; if no event type maps to it,
/// it would silently never run, which is almost always a typo.
pub(super) fn handler_warnings(path: &str, script: &Script) -> Vec<String> {
    let known = known_handlers();
    script
        .ast
        .iter_functions()
        .filter(|f| f.params.len() == 1 && !known.iter().any(|k| k == f.name))
        .filter_map(|f| {
            let line = script
                .function_lines
                .get(f.name)
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            // `onFollow`, as JavaScript SDKs name handlers: the snake-case name it means.
            if let Some(snake) = camel_handler(f.name) {
                let hint = closest(&snake, &known)
                    .map(|k| format!("; did you mean {k}?"))
                    .unwrap_or_default();
                return Some(format!(
                    "{path}{line}: warning: {} matches no LINE event type (handlers are named \
                     on_ and the event type in snake case){hint}",
                    f.name
                ));
            }
            if !f.name.starts_with("on_") {
                return None;
            }
            let hint = closest(f.name, &known)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            Some(format!(
                "{path}{line}: warning: {} matches no LINE event type{hint}",
                f.name
            ))
        })
        .collect()
}

/// `onFollow` → `on_follow`, `onMemberJoined` → `on_member_joined`; `None` for other names.
fn camel_handler(name: &str) -> Option<String> {
    let rest = name.strip_prefix("on")?;
    if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let mut snake = String::from("on");
    for c in rest.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    Some(snake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_handler_only_when_close() {
        let known = known_handlers();
        assert_eq!(closest("on_mesage", &known), Some("on_message"));
        assert_eq!(closest("on_postbak", &known), Some("on_postback"));
        assert_eq!(closest("on_member_join", &known), Some("on_member_joined"));
        assert_eq!(closest("on_completely_unrelated_thing", &known), None);
    }

    #[test]
    fn known_handlers_include_every_event_and_the_extras() {
        let known = known_handlers();
        for h in [
            "on_message",
            "on_member_joined",
            "on_event",
            "on_delivery_failed",
        ] {
            assert!(known.iter().any(|k| k == h), "{h}");
        }
    }
}
