//! The daemon's pipeline: a [`Bot`] with the inbox in front of it, the dispatcher's handler
//! threads, and the scheduler.

use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::dispatch::{self, Dispatcher};
use crate::pipeline::inbox;
use crate::pipeline::schedule::{self, Scheduler};
use crate::pipeline::script::web::Web;
use crate::store;

use super::{line_client, open_store, Bot, BotParts, DaemonError};

/// The running pipeline behind the HTTP server.
pub struct Pipeline {
    pub bot: Bot,
    pub dispatcher: Dispatcher,
    pub inbox: Arc<inbox::Inbox>,
    pub scheduler: Arc<Scheduler>,
    /// Fires the scripts' one-off timers; stops when the pipeline is dropped.
    pub timers: crate::pipeline::schedule::TimerLoop,
    /// Told about every reload after the scheduler (`dev`'s browser console shows them); set
    /// once, by whoever serves the pipeline.
    pub on_reload: std::sync::OnceLock<crate::pipeline::script::watch::ReloadHook>,
}

impl Pipeline {
    /// Brings the scheduler in line with a reload: changed scripts replace their schedules,
    /// deleted ones stop.
    pub fn apply_reload(&self, report: &crate::pipeline::script::ReloadReport) {
        let set = self.bot.runtime.scripts();
        for name in &report.loaded {
            if let Some(script) = set.scripts.iter().find(|s| &*s.name == name) {
                self.scheduler.replace(name, script.schedules.clone());
            }
        }
        for name in &report.removed {
            self.scheduler.replace(name, Vec::new());
        }
        if let Some(hook) = self.on_reload.get() {
            hook(report);
        }
    }
}

/// Builds everything between the webhook and LINE, and re-queues events that were acknowledged
/// but not handled before the last stop.
pub async fn start_pipeline(config: &Config) -> Result<Pipeline, DaemonError> {
    let options = store::Options {
        sync: config.store_sync,
        pool_size: config.store_pool,
    };
    let store = open_store(&config.store, options).await?;
    let bot = Bot::build(BotParts {
        store: store.clone(),
        line: line_client(config)?,
        web: Web::real(config.web.clone())?,
        scripts_dir: config.scripts_dir.clone(),
        limits: config.limits.clone(),
        timezone: config.timezone.parse().unwrap_or(chrono_tz::UTC),
        reply_fallback_push: config.reply_fallback_push,
        on_log: None,
    })
    .await?;
    bot.report_load(config.strict)?;
    let runtime = bot.runtime.clone();

    // The dispatcher journals each event's progress through the writer, and the writer hands
    // new events to the dispatcher: the writer is set once both exist.
    let journal = Arc::new(inbox::InboxJournal::default());
    let dispatcher = Dispatcher::start(
        runtime.clone(),
        store.clone(),
        dispatch::Limits {
            lease: config.store_lease,
            ..dispatch::Limits::new(config.limits.workers)
        },
        journal.clone(),
    );
    let live = dispatcher.clone();
    let inbox = Arc::new(inbox::Inbox::with_hook(
        store.clone(),
        4096,
        Box::new(move |stored| live.offer(stored)),
    ));
    journal.set(inbox.clone());

    bot.deliver();

    let scheduler = Arc::new(Scheduler::start(
        schedule::script_runner(runtime.clone()),
        Arc::new(schedule::StoreLastRuns(store.clone())),
        config.schedule_grace,
    ));
    for script in &runtime.scripts().scripts {
        scheduler.replace(&script.name, script.schedules.clone());
    }

    let timers = bot.fire_timers(config.schedule_grace);

    tokio::spawn(inbox::prune_daily(store.clone()));
    Ok(Pipeline {
        bot,
        dispatcher,
        inbox,
        scheduler,
        timers,
        on_reload: Default::default(),
    })
}
