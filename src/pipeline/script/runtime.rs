//! Running handlers: the shared engine, the swappable script set, and one call at a time per thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rhai::{CallFnOptions, Dynamic};

use super::engine::Engines;

use super::limits::Limits;
use crate::pipeline::webhook::{handler_name, Event};
use crate::store::Delivery;

use super::context::{self, CallContext, Provenance};
use super::error::{LoadError, RunError};
use super::host::{self, Host};
use super::loader::{self, Script, ScriptSet};

/// What one reload changed.
#[derive(Debug, Default)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    pub removed: Vec<String>,
    pub errors: Vec<LoadError>,
}

/// What dispatching one event did.
#[derive(Debug, Default)]
pub struct Dispatched {
    pub handlers_run: usize,
    pub errors: Vec<RunError>,
}

/// What a call serves besides its arguments.
struct CallInput {
    event: Option<Arc<Event>>,
    provenance: Provenance,
    key_seed: String,
    replied: context::Replied,
}

/// The script runtime: compiled scripts behind an atomic pointer, and the engine that runs them.
pub struct Runtime {
    engines: Engines,
    limits: Limits,
    dir: PathBuf,
    scripts: ArcSwap<ScriptSet>,
    host: Arc<Host>,
    /// Reloads run one at a time; calls never wait for them.
    reloading: Mutex<()>,
}

impl Runtime {
    /// Loads every script in `dir` with the default engines (schedules in UTC unless they say
    /// otherwise). Scripts that fail to load are reported in the set's errors.
    pub fn new(dir: &Path, limits: Limits, host: Arc<Host>) -> Result<Self, std::io::Error> {
        let engines = super::engine::build(&limits);
        Self::with_engines(dir, engines, limits, host)
    }

    /// Like [`Runtime::new`] with engines built by the caller (e.g. another default time zone).
    pub fn with_engines(
        dir: &Path,
        engines: Engines,
        limits: Limits,
        host: Arc<Host>,
    ) -> Result<Self, std::io::Error> {
        let scripts = loader::load_dir(&engines, dir, &ScriptSet::default())?;
        Ok(Self {
            engines,
            limits,
            dir: dir.to_owned(),
            scripts: ArcSwap::from_pointee(scripts),
            host,
            reloading: Mutex::new(()),
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What the host functions act on.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The scripts now in force.
    pub fn scripts(&self) -> Arc<ScriptSet> {
        self.scripts.load_full()
    }

    /// Re-reads the folder and swaps in what compiled. Calls already running keep the version
    /// they started with (they hold an `Arc` to it).
    pub fn reload(&self) -> Result<ReloadReport, std::io::Error> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.scripts.load_full();
        let new = loader::load_dir(&self.engines, &self.dir, &old)?;
        let mut report = ReloadReport::default();
        for s in &new.scripts {
            // A script fixed back to its last good text is the same compiled script, and is
            // loaded again all the same: its error is gone.
            let fixed = old.errors.contains_key(&*s.name);
            if fixed || !old.scripts.iter().any(|o| Arc::ptr_eq(o, s)) {
                report.loaded.push(s.name.to_string());
            }
        }
        for o in &old.scripts {
            if !new.scripts.iter().any(|s| s.name == o.name) {
                report.removed.push(o.name.to_string());
            }
        }
        for (name, err) in &new.errors {
            if old.errors.get(name) != Some(err) {
                report.errors.push(err.clone());
            }
        }
        self.scripts.store(Arc::new(new));
        Ok(report)
    }

    /// Runs every handler for `event`: `on_<type>` in each script (file-name order), then
    /// `on_event`. A failing handler does not stop the others. `received_ms` is when the daemon
    /// stored the event and whether this is a replay; the default for local runs.
    pub fn dispatch(&self, event: Arc<Event>, provenance: Provenance) -> Dispatched {
        self.record_follow(&event);
        let set = self.scripts();
        let specific = handler_name(&event.kind);
        let seed = event
            .webhook_event_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let handlers: Vec<(&Arc<Script>, &str)> = [specific.as_str(), "on_event"]
            .into_iter()
            .flat_map(|function| {
                set.scripts
                    .iter()
                    .filter(move |s| s.defines(function, 1))
                    .map(move |s| (s, function))
            })
            .collect();
        let mut result = Dispatched {
            handlers_run: handlers.len(),
            errors: Vec::new(),
        };
        if handlers.is_empty() {
            tracing::debug!(event_type = %event.kind, "no handler for event; dropped");
            self.tell_dispatched(&event, &result);
            return result;
        }
        // Each handler gets its own copy of the event map (a handler may change it); the last
        // one takes the original, so the usual single handler costs no copy at all.
        let mut arg = host::from_json_text(event.raw.get());
        let last = handlers.len() - 1;
        let replied = context::Replied::default();
        for (i, (script, function)) in handlers.into_iter().enumerate() {
            let key_seed = format!("{seed}/{}/{function}", script.name);
            let event_map = if i == last {
                std::mem::take(&mut arg)
            } else {
                arg.clone()
            };
            let call = CallInput {
                event: Some(event.clone()),
                provenance: provenance.clone(),
                key_seed,
                replied: replied.clone(),
            };
            if let Err(e) = self.call_with(script, function, vec![event_map], call) {
                result.errors.push(e);
            }
        }
        self.tell_dispatched(&event, &result);
        result
    }

    fn tell_dispatched(&self, event: &Event, result: &Dispatched) {
        if let Some(hook) = self.host.on_dispatched.get() {
            hook(event, result);
        }
    }

    /// The daemon keeps the follower list itself, before any handler runs, so `followers()`
    /// in `on_follow` already includes the new follower.
    fn record_follow(&self, event: &Event) {
        let following = match event.kind.as_str() {
            "follow" => true,
            "unfollow" => false,
            _ => return,
        };
        let Some(user) = event.source.as_ref().and_then(|s| s.user_id.as_deref()) else {
            return;
        };
        let at = event.timestamp.unwrap_or_else(crate::store::now_ms);
        if let Err(e) = self.host.store.follower_set(user, following, at) {
            tracing::error!(error = %e, "cannot record {}", event.kind);
        }
    }

    /// Calls `function` with one argument in every script that defines it (file-name order).
    pub fn call_all(&self, function: &str, arg: Dynamic, key_seed: &str) -> Vec<RunError> {
        let set = self.scripts();
        set.scripts
            .iter()
            .filter(|s| s.defines(function, 1))
            .filter_map(|s| {
                self.call(
                    s,
                    function,
                    vec![arg.clone()],
                    None,
                    format!("{key_seed}/{}", s.name),
                )
                .err()
            })
            .collect()
    }

    /// Tells the scripts about a delivery LINE refused for good: every script's
    /// `on_delivery_failed(delivery)`, with `#{id, kind, to, messages, script, error}`, on a
    /// blocking thread. `simulate` and `test` wait on the handle, to show what the handlers did.
    pub fn delivery_failed(
        self: &Arc<Self>,
        delivery: &Delivery,
        error: &str,
    ) -> tokio::task::JoinHandle<()> {
        let runtime = self.clone();
        let arg = host::from_json(&serde_json::json!({
            "id": delivery.retry_key,
            "kind": delivery.kind.as_str(),
            "to": delivery.payload.get("to"),
            "messages": delivery.payload.get("messages"),
            "script": delivery.source,
            "error": error,
        }));
        let seed = format!("failed/{}", delivery.retry_key);
        tokio::task::spawn_blocking(move || {
            runtime.call_all("on_delivery_failed", arg, &seed);
        })
    }

    /// Calls `function` of `script` with `args` under the limits, on this thread.
    pub fn call(
        &self,
        script: &Script,
        function: &str,
        args: Vec<Dynamic>,
        event: Option<Arc<Event>>,
        key_seed: String,
    ) -> Result<Dynamic, RunError> {
        let call = CallInput {
            event,
            provenance: Provenance::default(),
            key_seed,
            replied: context::Replied::default(),
        };
        self.call_with(script, function, args, call)
    }

    fn call_with(
        &self,
        script: &Script,
        function: &str,
        args: Vec<Dynamic>,
        CallInput {
            event,
            provenance,
            key_seed,
            replied,
        }: CallInput,
    ) -> Result<Dynamic, RunError> {
        // Every log line of this call (the script's own `log`, LINE retries, the result)
        // carries the script, the handler and the event id.
        let span = tracing::info_span!(
            "handler",
            script = %script.name,
            handler = function,
            webhookEventId = tracing::field::Empty,
        );
        if let Some(id) = event.as_ref().and_then(|e| e.webhook_event_id.as_deref()) {
            span.record("webhookEventId", id);
        }
        let _entered = span.enter();
        let started = Instant::now();
        let ctx = CallContext {
            script: script.name.clone(),
            functions: script.functions.clone(),
            deadline: Instant::now() + Duration::from_millis(self.limits.max_call_ms),
            host: self.host.clone(),
            event,
            provenance,
            key_seed,
            calls: Vec::new(),
            replied,
        };
        let mut scope = script.constants.clone();
        // The call AST's only statements are the script's imports (see library::call_ast):
        // run them first when there are any.
        let imports = !script.call_ast.statements().is_empty();
        let options = CallFnOptions::new().eval_ast(imports).rewind_scope(true);
        let result = context::with_context(ctx, || {
            self.engines.run.call_fn_with_options::<Dynamic>(
                options,
                &mut scope,
                &script.call_ast,
                function,
                args,
            )
        })
        .map_err(|e| {
            let mut err = RunError::from_eval(&script.name, function, &e, &self.limits);
            err.message = self.host.web.redact(&err.message).into_owned();
            // Limits stop a script between operations, where Rhai has no position to give.
            err.line = err
                .line
                .or_else(|| script.function_lines.get(function).copied());
            err
        });
        crate::ops::observe::HandlerFinished {
            script: &script.name,
            handler: function,
            duration: started.elapsed(),
            error: result.as_ref().err().map(|e| crate::ops::observe::Failure {
                kind: e.kind.as_str(),
                message: e,
            }),
        }
        .emit();
        result
    }
}
