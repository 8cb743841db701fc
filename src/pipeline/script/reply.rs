//! `reply(event, messages)`: the reply token used once, and what happens when it cannot be:
//! a push in its place (billed, so counted and logged) unless a crash replay may already have
//! delivered it.

use std::time::Duration;

use rhai::{Dynamic, Map, NativeCallContext};

use crate::ops::observe::{self, TokenProblem};

use super::context;
use super::convert::to_messages;
use super::host::{host, line_error, next_call, retry_key, script_error, send_push, HostResult};
use super::line_api::unwrap_silent;

/// How long LINE accepts a reply token after the webhook: about a minute, by LINE's docs. An
/// event that waited longer in the backlog replies by push straight away.
pub const REPLY_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The chat an event came from: group, room or user.
fn chat_of(event: &Map) -> Option<String> {
    let source = event.get("source")?.read_lock::<Map>()?;
    ["groupId", "roomId", "userId"].iter().find_map(|k| {
        source
            .get(*k)
            .filter(|v| v.is_string())
            .map(|v| v.to_string())
    })
}

/// `target` by reference: called as `reply(event, …)`, Rhai then passes the event map itself
/// instead of a copy of it.
pub(super) fn reply(
    ctx: NativeCallContext,
    target: &mut Dynamic,
    messages: Dynamic,
) -> HostResult<Dynamic> {
    let host = host()?;
    let (messages, quiet) = unwrap_silent(messages);
    let messages = to_messages(&messages)?;
    // A map is the event itself; a string is its reply token.
    let (token, chat) = if let Some(event) = target.read_lock::<Map>() {
        let token = event
            .get("replyToken")
            .filter(|v| v.is_string())
            .map(|v| v.to_string());
        (token, chat_of(&event))
    } else if target.is_string() {
        let token = target.to_string();
        let chat = context::current(|ctx| {
            ctx.event
                .as_ref()
                .filter(|e| e.reply_token.as_deref() == Some(token.as_str()))
                .and_then(|e| {
                    e.source
                        .as_ref()
                        .and_then(|s| s.chat_id())
                        .map(str::to_owned)
                })
        })
        .flatten();
        (Some(token), chat)
    } else {
        return Err(script_error(format!(
            "reply takes the event or its reply token, not {}",
            super::suggest::kind(target)
        )));
    };

    let call = next_call("reply");
    let (provenance, replied, script) =
        context::current(|c| (c.provenance.clone(), c.replied.clone(), c.script.clone()))
            .unwrap_or_default();
    // Where this reply is, for an error about a later one: formatted only when recorded.
    let here = || {
        let line = ctx.call_position().line().unwrap_or(0);
        format!("{script}:{line}")
    };
    let used_by = |token: &str| {
        let replied = replied.lock().unwrap_or_else(|p| p.into_inner());
        replied.get(token).cloned()
    };
    let mark_used = |token: &str| {
        let mut replied = replied.lock().unwrap_or_else(|p| p.into_inner());
        replied.entry(token.to_owned()).or_insert_with(here);
    };
    if let Some(first) = token.as_deref().and_then(used_by) {
        // LINE would refuse the token, and the push fallback would bill a message the
        // author did not mean to push.
        return Err(script_error(format!(
            "reply: this event was already answered by the reply at {first}, and a reply token \
             works once; send up to 5 messages in one reply, or push(event.source.userId, …) \
             for more (a push is billed)"
        )));
    }
    if call.as_ref().is_some_and(|c| provenance.sent.contains(c)) {
        tracing::info!("reply skipped: LINE accepted it before the last crash");
        if let Some(token) = &token {
            mark_used(token);
        }
        return Ok(Dynamic::UNIT);
    }
    let fallback = |reason: TokenProblem, age: Option<Duration>| -> HostResult<Dynamic> {
        if provenance.replay && reason != TokenProblem::Missing {
            // This event's run before the crash may have used the token: a push now could
            // show the user the same answer twice.
            observe::ReplyMaybeDelivered {
                reason,
                to: chat.as_deref(),
            }
            .emit();
            return Ok(Dynamic::UNIT);
        }
        match (&chat, host.reply_fallback_push) {
            (Some(chat), true) => {
                observe::ReplyFallback {
                    reason,
                    to: chat,
                    age,
                }
                .emit();
                if let Some(hook) = host.on_fallback.get() {
                    hook(chat, reason.explain());
                }
                // Named after the reply, so it can never take a `push` call's retry key.
                let key = retry_key(call.as_deref());
                send_push(&host, chat, messages.clone(), quiet, key)
            }
            _ => Err(script_error(format!("reply failed: {}", reason.explain()))),
        }
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return fallback(TokenProblem::Missing, None);
    };
    let age = provenance
        .received_ms
        .map(|at| Duration::from_millis(crate::store::now_ms().saturating_sub(at).max(0) as u64));
    // LINE would refuse the token anyway: save the round trip and reach the user sooner.
    if age.is_some_and(|age| age >= REPLY_TOKEN_LIFETIME) {
        return fallback(TokenProblem::Expired, age);
    }
    if let Some(before_reply) = &provenance.before_reply {
        context::commit_waiting(|| before_reply());
    }
    let sent = host.wait(|line| {
        let (token, messages) = (&token, &messages);
        async move { line.reply(token, messages, quiet).await }
    });
    match sent {
        Ok(_) => {
            mark_used(&token);
            if let (Some(call), Some(record)) = (call, &provenance.record_sent) {
                record(call);
            }
            Ok(Dynamic::UNIT)
        }
        Err(e) if e.is_invalid_reply_token() => fallback(TokenProblem::Used, age),
        Err(e) => Err(line_error(e)),
    }
}
