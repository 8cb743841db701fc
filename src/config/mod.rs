//! One validated [`Config`] built from `linebotd.toml`, the environment and flags (in rising
//! precedence). Every error names the setting and how to fix it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::Settings;
use crate::line::LineConfig;
use crate::pipeline::script::web::WebConfig;
pub use crate::pipeline::script::Limits;
use crate::pipeline::webhook::ClientLimits;

mod clients;
mod file;
mod values;
mod web;

use clients::{client_limits, ClientLimitsFile};
pub use file::{default_file, file_timezone, store_path, zone_for};
use file::{read_file, resolve_store, FileConfig};
use values::{base_url, non_empty, parse_listen, zone};

use web::{limits, web_config};
pub use web::{load_local, local_file, LocalConfig};

pub use crate::cli::DEFAULT_LISTEN;
pub const DEFAULT_API_BASE: &str = "https://api.line.me";
pub const DEFAULT_DATA_API_BASE: &str = "https://api-data.line.me";
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// LINE's published rate limit for the Messaging API, requests per second.
pub const DEFAULT_LINE_RATE_LIMIT: u32 = 2000;
/// What one client may hold. LINE sends small webhooks and waits at most 2 s for the answer,
/// so 10 s for a head or a body is generous; 60 s of keep-alive spares LINE new connections
/// between bursts. LINE needs tens of connections at its full rate: 512 leaves room for probes
/// and scrapes, bounds what slow clients hold (about 20 KB each, 10 MB in all), and with the
/// descriptors kept for the store and LINE fits the common open-file limit of 1,024.
pub const DEFAULT_CLIENT_LIMITS: ClientLimits = ClientLimits {
    header_read_timeout: Duration::from_secs(10),
    body_read_timeout: Duration::from_secs(10),
    keep_alive_idle: Duration::from_secs(60),
    max_connections: 512,
};
/// The longest timeout accepted, a day: longer ones are mistakes.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// A start-up error: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: export it or put {key} in linebotd.toml")]
    Missing {
        var: &'static str,
        key: &'static str,
    },
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("{setting} is invalid: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the daemon needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub scripts_dir: PathBuf,
    pub channel_secret: String,
    pub channel_access_token: String,
    pub line_api_base: String,
    pub line_data_api_base: String,
    pub webhook_path: String,
    pub max_body: usize,
    pub store: String,
    /// Whether a store commit waits for the disk (`full`, the default) or only for the OS.
    pub store_sync: crate::store::SyncMode,
    /// PostgreSQL connections this instance opens at most.
    pub store_pool: usize,
    /// PostgreSQL: how long an event this instance claimed stays its own without a heartbeat,
    /// so how soon the other instances take over from one that died.
    pub store_lease: Duration,
    pub timezone: String,
    pub log_format: LogFormat,
    pub admin_token: Option<String>,
    pub watch: bool,
    pub strict: bool,
    pub reply_fallback_push: bool,
    /// Requests per second to each LINE endpoint (LINE's published limit by default; lower
    /// limits of LINE's stay); 0 turns every client-side limit off (for a local mock).
    pub line_rate_limit: u32,
    /// Largest answer a script may download from LINE's data host (`content`, `line_get_data`).
    pub content_max_bytes: usize,
    pub shutdown_grace: Duration,
    pub schedule_grace: Duration,
    pub limits: Limits,
    /// Timeouts and the connection cap of the HTTP server.
    pub clients: ClientLimits,
    /// What scripts may reach with `http_get` … and `env`.
    pub web: WebConfig,
}

impl Config {
    /// The LINE client's settings: the daemon's base URLs, token and rate limit, with the
    /// client's own defaults for the rest.
    pub fn line(&self) -> LineConfig {
        let mut line = LineConfig::new(
            self.line_api_base.clone(),
            self.line_data_api_base.clone(),
            self.channel_access_token.clone(),
        );
        line.rate_limit_per_sec = self.line_rate_limit;
        line.content_max_bytes = self.content_max_bytes;
        line
    }

    /// Merges flags/environment (`settings`) over the config file over defaults.
    /// `port` is the `PORT` variable of Heroku-style hosts.
    pub fn load(settings: &Settings, port: Option<&str>) -> Result<Self, ConfigError> {
        Self::load_inner(settings, port, true)
    }

    /// Like [`Config::load`] for commands that only call LINE (`push`): no channel secret needed.
    pub fn load_for_sending(settings: &Settings) -> Result<Self, ConfigError> {
        Self::load_inner(settings, None, false)
    }

    fn load_inner(
        settings: &Settings,
        port: Option<&str>,
        need_secret: bool,
    ) -> Result<Self, ConfigError> {
        let mut file = match &settings.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let (web_file, file_limits) = (file.web(), file.limits.take());
        let config_dir = settings
            .config
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();

        let listen = match settings.listen.clone().or(file.listen) {
            Some(addr) => parse_listen(&addr)?,
            None => match port {
                Some(port) => {
                    let port: u16 = port.trim().parse().map_err(|_| ConfigError::Invalid {
                        setting: "PORT",
                        message: format!("`{port}` is not a port number"),
                    })?;
                    SocketAddr::from(([0, 0, 0, 0], port))
                }
                None => parse_listen(DEFAULT_LISTEN)?,
            },
        };

        let channel_secret =
            match non_empty(settings.channel_secret.clone().or(file.channel_secret)) {
                Some(secret) => secret,
                None if !need_secret => String::new(),
                None => {
                    return Err(ConfigError::Missing {
                        var: "CHANNEL_SECRET",
                        key: "channel_secret",
                    })
                }
            };
        let channel_access_token = non_empty(
            settings
                .channel_access_token
                .clone()
                .or(file.channel_access_token),
        )
        .ok_or(ConfigError::Missing {
            var: "CHANNEL_ACCESS_TOKEN",
            key: "channel_access_token",
        })?;

        let line_api_base = base_url(
            "LINE_API_BASE",
            settings.line_api_base.clone().or(file.line_api_base),
            DEFAULT_API_BASE,
        )?;
        let line_data_api_base = base_url(
            "LINE_DATA_API_BASE",
            settings
                .line_data_api_base
                .clone()
                .or(file.line_data_api_base),
            DEFAULT_DATA_API_BASE,
        )?;

        let webhook_path = settings
            .webhook_path
            .clone()
            .or(file.webhook_path)
            .unwrap_or_else(|| "/callback".into());
        if !webhook_path.starts_with('/')
            || webhook_path.len() < 2
            || webhook_path.contains(['?', '#', '{', '}', '*'])
        {
            return Err(ConfigError::Invalid {
                setting: "--webhook-path",
                message: format!(
                    "`{webhook_path}` must be a plain path starting with /, such as /callback"
                ),
            });
        }

        let max_body = settings
            .max_body
            .or(file.max_body)
            .unwrap_or(DEFAULT_MAX_BODY);
        if max_body < 1024 {
            return Err(ConfigError::Invalid {
                setting: "--max-body",
                message: format!(
                    "{max_body} bytes is too small for a LINE webhook; use at least 1024"
                ),
            });
        }

        let scripts_dir = settings
            .scripts
            .clone()
            .or_else(|| file.scripts.map(|p| config_dir.join(p)))
            .unwrap_or_else(|| PathBuf::from("scripts"));

        let store = resolve_store(settings.store.clone(), file.store.take(), &config_dir);

        let store_sync = match settings.store_sync.clone().or(file.store_sync) {
            None => crate::store::SyncMode::Full,
            Some(mode) => mode.parse().map_err(|e| ConfigError::Invalid {
                setting: "--store-sync",
                message: format!("{e}: `full` survives a power cut, `normal` only a crash"),
            })?,
        };

        let store_pool = settings
            .store_pool
            .or(file.store_pool)
            .unwrap_or(crate::store::DEFAULT_POOL_SIZE);
        if store_pool == 0 {
            return Err(ConfigError::Invalid {
                setting: "--store-pool",
                message: "the pool needs at least 1 connection".into(),
            });
        }

        let store_lease_secs = settings
            .store_lease
            .or(file.store_lease_secs)
            .unwrap_or(crate::pipeline::dispatch::DEFAULT_LEASE.as_secs());
        if store_lease_secs == 0 {
            return Err(ConfigError::Invalid {
                setting: "--store-lease",
                message: "a lease of 0 s would let every instance take every event".into(),
            });
        }
        let store_lease = Duration::from_secs(store_lease_secs);

        let timezone = settings
            .timezone
            .clone()
            .or(file.timezone)
            .unwrap_or_else(|| "UTC".into());
        zone(&timezone)?;

        let log_format = match settings.log_format.clone().or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    setting: "--log-format",
                    message: format!("`{other}` is not one of: text, json"),
                })
            }
        };

        let content_max_bytes = settings
            .content_max_bytes
            .or(file.content_max_bytes)
            .unwrap_or(crate::line::DEFAULT_CONTENT_MAX_BYTES);
        if content_max_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "content_max_bytes",
                message: "0 bytes would refuse every download; use at least 1, e.g. 20971520"
                    .to_owned(),
            });
        }

        let clients = client_limits(
            settings,
            ClientLimitsFile {
                header_read_timeout_secs: file.header_read_timeout_secs,
                body_read_timeout_secs: file.body_read_timeout_secs,
                keep_alive_idle_secs: file.keep_alive_idle_secs,
                max_connections: file.max_connections,
            },
        )?;
        let limits = limits(file_limits)?;
        let web = web_config(&settings.web, web_file, &limits)?;

        Ok(Self {
            listen,
            scripts_dir,
            channel_secret,
            channel_access_token,
            line_api_base,
            line_data_api_base,
            webhook_path,
            max_body,
            store,
            store_sync,
            store_pool,
            store_lease,
            timezone,
            log_format,
            admin_token: non_empty(settings.admin_token.clone().or(file.admin_token)),
            watch: !settings.no_watch && file.watch.unwrap_or(true),
            strict: settings.strict || file.strict.unwrap_or(false),
            reply_fallback_push: file.reply_fallback_push.unwrap_or(true),
            line_rate_limit: settings
                .line_rate_limit
                .or(file.line_rate_limit)
                .unwrap_or(DEFAULT_LINE_RATE_LIMIT),
            content_max_bytes,
            shutdown_grace: Duration::from_secs(file.shutdown_grace_secs.unwrap_or(10)),
            schedule_grace: Duration::from_secs(file.schedule_grace_secs.unwrap_or(600)),
            limits,
            clients,
            web,
        })
    }
}

#[cfg(test)]
mod tests;
