//! One validated [`Config`] built from `linebotd.toml`, the environment and flags (in rising
//! precedence). Every error names the setting and how to fix it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{Settings, WebArgs};
use crate::pipeline::script::web::{Policy, WebConfig};
pub use crate::pipeline::script::Limits;
use crate::pipeline::webhook::ClientLimits;

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
    pub timezone: String,
    pub log_format: LogFormat,
    pub admin_token: Option<String>,
    pub watch: bool,
    pub strict: bool,
    pub reply_fallback_push: bool,
    /// Requests per second to each LINE endpoint (LINE's published limit by default; lower
    /// limits of LINE's stay); 0 turns every client-side limit off (for a local mock).
    pub line_rate_limit: u32,
    pub shutdown_grace: Duration,
    pub schedule_grace: Duration,
    pub limits: Limits,
    /// Timeouts and the connection cap of the HTTP server.
    pub clients: ClientLimits,
    /// What scripts may reach with `http_get` … and `env`.
    pub web: WebConfig,
}

/// The file's shape: every key optional, unknown keys are errors (a typo must not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    scripts: Option<PathBuf>,
    channel_secret: Option<String>,
    channel_access_token: Option<String>,
    line_api_base: Option<String>,
    line_data_api_base: Option<String>,
    webhook_path: Option<String>,
    max_body: Option<usize>,
    store: Option<String>,
    store_sync: Option<String>,
    timezone: Option<String>,
    log_format: Option<String>,
    admin_token: Option<String>,
    watch: Option<bool>,
    strict: Option<bool>,
    reply_fallback_push: Option<bool>,
    line_rate_limit: Option<u32>,
    shutdown_grace_secs: Option<u64>,
    schedule_grace_secs: Option<u64>,
    limits: Option<Limits>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    keep_alive_idle_secs: Option<u64>,
    max_connections: Option<usize>,
    http_allow: Option<Vec<String>>,
    script_env: Option<Vec<String>>,
    http_timeout_ms: Option<u64>,
    http_max_response_bytes: Option<usize>,
}

/// The file's keys for scripts' web access.
#[derive(Debug, Default)]
struct WebFile {
    http_allow: Option<Vec<String>>,
    script_env: Option<Vec<String>>,
    http_timeout_ms: Option<u64>,
    http_max_response_bytes: Option<usize>,
}

impl FileConfig {
    fn web(&mut self) -> WebFile {
        WebFile {
            http_allow: self.http_allow.take(),
            script_env: self.script_env.take(),
            http_timeout_ms: self.http_timeout_ms.take(),
            http_max_response_bytes: self.http_max_response_bytes.take(),
        }
    }
}

impl Config {
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

        let store = settings.store.clone().or(file.store).unwrap_or_else(|| {
            config_dir
                .join("linebotd.db")
                .to_string_lossy()
                .into_owned()
        });

        let store_sync = match settings.store_sync.clone().or(file.store_sync) {
            None => crate::store::SyncMode::Full,
            Some(mode) => mode.parse().map_err(|e| ConfigError::Invalid {
                setting: "--store-sync",
                message: format!("{e}: `full` survives a power cut, `normal` only a crash"),
            })?,
        };

        let timezone = settings
            .timezone
            .clone()
            .or(file.timezone)
            .unwrap_or_else(|| "UTC".into());
        if timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid {
                setting: "timezone",
                message: format!(
                    "`{timezone}` is not an IANA time zone name such as Asia/Tokyo or UTC"
                ),
            });
        }

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
            shutdown_grace: Duration::from_secs(file.shutdown_grace_secs.unwrap_or(10)),
            schedule_grace: Duration::from_secs(file.schedule_grace_secs.unwrap_or(600)),
            limits,
            clients,
            web,
        })
    }
}

/// The web settings of `dev`, `simulate` and `test`: flags and environment over the file at
/// `config` (else `linebotd.toml` beside the scripts folder, if there is one). Returns the
/// file's limits too, so local runs time out like the daemon.
pub fn load_local(
    config: Option<&Path>,
    scripts_dir: &Path,
    web: &WebArgs,
) -> Result<(WebConfig, Limits), ConfigError> {
    let mut file = match local_file(config, scripts_dir) {
        Some(path) => read_file(&path)?,
        None => FileConfig::default(),
    };
    let limits = limits(file.limits.take())?;
    Ok((web_config(web, file.web(), &limits)?, limits))
}

/// The path `load_local` reads, for commands that print it.
pub fn local_file(config: Option<&Path>, scripts_dir: &Path) -> Option<PathBuf> {
    config.map(Path::to_path_buf).or_else(|| {
        scripts_dir
            .parent()
            .map(|p| p.join("linebotd.toml"))
            .filter(|p| p.is_file())
    })
}

fn limits(file: Option<Limits>) -> Result<Limits, ConfigError> {
    let limits = file.unwrap_or_default();
    if limits.workers == 0 || limits.max_call_ms == 0 {
        return Err(ConfigError::Invalid {
            setting: "limits",
            message: "workers and max_call_ms must be at least 1".into(),
        });
    }
    Ok(limits)
}

/// The variables only linebotd itself reads: scripts call LINE through the host API.
const DAEMON_SECRETS: [&str; 3] = [
    "CHANNEL_SECRET",
    "CHANNEL_ACCESS_TOKEN",
    "LINEBOTD_ADMIN_TOKEN",
];

fn web_config(args: &WebArgs, file: WebFile, limits: &Limits) -> Result<WebConfig, ConfigError> {
    let d = WebConfig::default();
    let allow = args.http_allow.clone().or(file.http_allow);
    let policy = Policy::parse(allow.as_deref()).map_err(|message| ConfigError::Invalid {
        setting: "http_allow",
        message,
    })?;
    let script_env: Vec<String> = args
        .script_env
        .clone()
        .or(file.script_env)
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    for name in &script_env {
        if name.contains(['=', '\0']) {
            return Err(ConfigError::Invalid {
                setting: "script_env",
                message: format!("`{name}` is not an environment variable name"),
            });
        }
        if DAEMON_SECRETS.contains(&name.as_str()) {
            return Err(ConfigError::Invalid {
                setting: "script_env",
                message: format!(
                    "{name} is linebotd's own secret and is never exposed to scripts; scripts \
                     call LINE through reply, push, line_get and line_post"
                ),
            });
        }
    }
    let timeout_ms = args
        .http_timeout_ms
        .or(file.http_timeout_ms)
        .unwrap_or(d.timeout.as_millis() as u64)
        .min(limits.max_call_ms.max(1));
    let explicit = args.http_timeout_ms.or(file.http_timeout_ms);
    if let Some(ms) = explicit {
        if ms == 0 || ms > limits.max_call_ms {
            return Err(ConfigError::Invalid {
                setting: "http_timeout_ms",
                message: format!(
                    "{ms} ms must be between 1 and limits.max_call_ms ({} ms), the handler's \
                     own time limit; raise [limits] max_call_ms for slower APIs",
                    limits.max_call_ms
                ),
            });
        }
    }
    let max_response_bytes = args
        .http_max_response_bytes
        .or(file.http_max_response_bytes)
        .unwrap_or(d.max_response_bytes);
    if max_response_bytes == 0 {
        return Err(ConfigError::Invalid {
            setting: "http_max_response_bytes",
            message: "0 would refuse every answer; use at least 1".into(),
        });
    }
    Ok(WebConfig {
        policy,
        script_env,
        timeout: Duration::from_millis(timeout_ms),
        max_response_bytes,
    })
}

/// The file's client-limit keys (the rest of the file is consumed by then).
struct ClientLimitsFile {
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    keep_alive_idle_secs: Option<u64>,
    max_connections: Option<usize>,
}

fn client_limits(settings: &Settings, file: ClientLimitsFile) -> Result<ClientLimits, ConfigError> {
    let d = DEFAULT_CLIENT_LIMITS;
    let secs = |setting: &'static str, value: Option<u64>, default: Duration, min: u64| {
        let Some(secs) = value else {
            return Ok(default);
        };
        if !(min..=MAX_TIMEOUT_SECS).contains(&secs) {
            return Err(ConfigError::Invalid {
                setting,
                message: format!("{secs} is not between {min} and {MAX_TIMEOUT_SECS} seconds"),
            });
        }
        Ok(Duration::from_secs(secs))
    };
    let max_connections = settings
        .max_connections
        .or(file.max_connections)
        .unwrap_or(d.max_connections);
    if max_connections == 0 {
        return Err(ConfigError::Invalid {
            setting: "--max-connections",
            message: "0 would refuse every connection; use at least 1".into(),
        });
    }
    Ok(ClientLimits {
        header_read_timeout: secs(
            "--header-read-timeout-secs",
            settings
                .header_read_timeout_secs
                .or(file.header_read_timeout_secs),
            d.header_read_timeout,
            1,
        )?,
        body_read_timeout: secs(
            "--body-read-timeout-secs",
            settings
                .body_read_timeout_secs
                .or(file.body_read_timeout_secs),
            d.body_read_timeout,
            1,
        )?,
        keep_alive_idle: secs(
            "--keep-alive-idle-secs",
            settings.keep_alive_idle_secs.or(file.keep_alive_idle_secs),
            d.keep_alive_idle,
            0,
        )?,
        max_connections,
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        ConfigError::ParseFile {
            path: path.into(),
            message: format!("{}{line}", e.message()),
        }
    })
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn parse_listen(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.parse().map_err(|_| ConfigError::Invalid {
        setting: "--listen",
        message: format!("`{addr}` is not an address with a port, such as 127.0.0.1:8080"),
    })
}

fn base_url(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<String, ConfigError> {
    let url = value.unwrap_or_else(|| default.to_owned());
    let trimmed = url.trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        || trimmed.len() <= "https://".len()
    {
        return Err(ConfigError::Invalid {
            setting,
            message: format!("`{url}` must be an http:// or https:// URL"),
        });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Settings {
        Settings {
            channel_secret: Some("s".into()),
            channel_access_token: Some("t".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn missing_secret_names_variable_and_fix() {
        let err = Config::load(&Settings::default(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CHANNEL_SECRET is not set: export it or put channel_secret in linebotd.toml"
        );
        let only_secret = Settings {
            channel_secret: Some("s".into()),
            ..Settings::default()
        };
        let err = Config::load(&only_secret, None).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("CHANNEL_ACCESS_TOKEN is not set"));
    }

    #[test]
    fn defaults() {
        let c = Config::load(&creds(), None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.webhook_path, "/callback");
        assert_eq!(c.max_body, 1024 * 1024);
        assert_eq!(c.line_api_base, "https://api.line.me");
        assert_eq!(c.line_data_api_base, "https://api-data.line.me");
        assert_eq!(c.scripts_dir, PathBuf::from("scripts"));
        assert_eq!(c.store, "linebotd.db");
        assert!(c.watch && c.reply_fallback_push && !c.strict);
        assert_eq!(c.clients, DEFAULT_CLIENT_LIMITS);
    }

    #[test]
    fn client_limits_come_from_file_and_flags_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linebotd.toml");
        std::fs::write(
            &path,
            "header_read_timeout_secs = 3\nbody_read_timeout_secs = 4\nkeep_alive_idle_secs = 0\nmax_connections = 7\n",
        )
        .unwrap();
        let s = Settings {
            config: Some(path),
            max_connections: Some(9),
            ..creds()
        };
        let c = Config::load(&s, None).unwrap();
        assert_eq!(
            c.clients,
            ClientLimits {
                header_read_timeout: Duration::from_secs(3),
                body_read_timeout: Duration::from_secs(4),
                keep_alive_idle: Duration::ZERO,
                max_connections: 9,
            }
        );
        let bad = |s: Settings| Config::load(&s, None).unwrap_err().to_string();
        assert!(bad(Settings {
            header_read_timeout_secs: Some(0),
            ..creds()
        })
        .starts_with("--header-read-timeout-secs is invalid"));
        assert!(bad(Settings {
            body_read_timeout_secs: Some(u64::MAX),
            ..creds()
        })
        .starts_with("--body-read-timeout-secs is invalid"));
        assert!(bad(Settings {
            max_connections: Some(0),
            ..creds()
        })
        .starts_with("--max-connections is invalid"));
    }

    #[test]
    fn store_sync_is_full_unless_normal_is_asked_for() {
        use crate::store::SyncMode;
        assert_eq!(
            Config::load(&creds(), None).unwrap().store_sync,
            SyncMode::Full
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linebotd.toml");
        std::fs::write(&path, "store_sync = \"normal\"\n").unwrap();
        let from_file = Settings {
            config: Some(path),
            ..creds()
        };
        assert_eq!(
            Config::load(&from_file, None).unwrap().store_sync,
            SyncMode::Normal
        );
        let flag = Settings {
            store_sync: Some("full".into()),
            ..from_file
        };
        assert_eq!(
            Config::load(&flag, None).unwrap().store_sync,
            SyncMode::Full
        );
        let bad = Settings {
            store_sync: Some("off".into()),
            ..creds()
        };
        let err = Config::load(&bad, None).unwrap_err().to_string();
        assert!(err.starts_with("--store-sync is invalid"), "{err}");
    }

    #[test]
    fn port_variable_listens_on_all_interfaces_unless_listen_given() {
        let c = Config::load(&creds(), Some("5000")).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
        let s = Settings {
            listen: Some("127.0.0.1:9".into()),
            ..creds()
        };
        assert_eq!(
            Config::load(&s, Some("5000")).unwrap().listen.to_string(),
            "127.0.0.1:9"
        );
        assert!(Config::load(&creds(), Some("http"))
            .unwrap_err()
            .to_string()
            .contains("PORT"));
    }

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linebotd.toml");
        std::fs::write(
            &path,
            "channel_secret = \"file-secret\"\nchannel_access_token = \"file-token\"\nlisten = \"127.0.0.1:7000\"\nscripts = \"bots\"\ntimezone = \"Asia/Tokyo\"\n[limits]\nmax_call_ms = 50\n",
        )
        .unwrap();
        let s = Settings {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7001".into()),
            ..Settings::default()
        };
        let c = Config::load(&s, None).unwrap();
        assert_eq!(c.channel_secret, "file-secret");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7001");
        assert_eq!(c.scripts_dir, dir.path().join("bots"));
        assert_eq!(c.store, dir.path().join("linebotd.db").to_string_lossy());
        assert_eq!(c.timezone, "Asia/Tokyo");
        assert_eq!(c.limits.max_call_ms, 50);
        assert_eq!(c.limits.workers, Limits::default().workers);
    }

    #[test]
    fn unknown_file_key_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linebotd.toml");
        std::fs::write(&path, "channel_secret = \"s\"\nlisten_adress = \"x\"\n").unwrap();
        let s = Settings {
            config: Some(path),
            ..Settings::default()
        };
        let msg = Config::load(&s, None).unwrap_err().to_string();
        assert!(
            msg.contains("listen_adress") && msg.contains("line 2"),
            "{msg}"
        );
    }

    #[test]
    fn invalid_values_are_named() {
        let bad = |s: Settings| Config::load(&s, None).unwrap_err().to_string();
        assert!(bad(Settings {
            listen: Some("localhost".into()),
            ..creds()
        })
        .starts_with("--listen is invalid"));
        assert!(bad(Settings {
            webhook_path: Some("callback".into()),
            ..creds()
        })
        .starts_with("--webhook-path"));
        assert!(bad(Settings {
            line_api_base: Some("ftp://x".into()),
            ..creds()
        })
        .starts_with("LINE_API_BASE"));
        assert!(bad(Settings {
            timezone: Some("Mars/Base".into()),
            ..creds()
        })
        .starts_with("timezone"));
        assert!(bad(Settings {
            log_format: Some("xml".into()),
            ..creds()
        })
        .starts_with("--log-format"));
        assert!(bad(Settings {
            max_body: Some(10),
            ..creds()
        })
        .starts_with("--max-body"));
    }

    #[test]
    fn trailing_slash_on_base_url_is_dropped() {
        let s = Settings {
            line_api_base: Some("http://127.0.0.1:9/".into()),
            ..creds()
        };
        assert_eq!(
            Config::load(&s, None).unwrap().line_api_base,
            "http://127.0.0.1:9"
        );
    }
}
