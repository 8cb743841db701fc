//! Scripts' web access (`http_allow`, `script_env`, `http_timeout_ms`,
//! `http_max_response_bytes`) and the settings `dev`, `simulate` and `test` share with `run`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::WebArgs;
use crate::pipeline::script::web::{Policy, WebConfig};

use super::{read_file, ConfigError, FileConfig, Limits};

/// The file's keys for scripts' web access.
#[derive(Debug, Default)]
pub(super) struct WebFile {
    http_allow: Option<Vec<String>>,
    script_env: Option<Vec<String>>,
    http_timeout_ms: Option<u64>,
    http_max_response_bytes: Option<usize>,
}

impl FileConfig {
    pub(super) fn web(&mut self) -> WebFile {
        WebFile {
            http_allow: self.http_allow.take(),
            script_env: self.script_env.take(),
            http_timeout_ms: self.http_timeout_ms.take(),
            http_max_response_bytes: self.http_max_response_bytes.take(),
        }
    }
}

/// The settings of `simulate` and `test`: the web settings from flags and environment over the
/// file at `config` (else `linebotd.toml` beside the scripts folder, if there is one), and the
/// file's limits and time zone, so local runs behave like the daemon.
pub fn load_local(
    config: Option<&Path>,
    scripts_dir: &Path,
    web: &WebArgs,
) -> Result<LocalConfig, ConfigError> {
    let mut file = match local_file(config, scripts_dir) {
        Some(path) => read_file(&path)?,
        None => FileConfig::default(),
    };
    let limits = limits(file.limits.take())?;
    let timezone = match file.timezone.take() {
        Some(name) => super::values::zone(&name)?,
        None => chrono_tz::UTC,
    };
    Ok(LocalConfig {
        web: web_config(web, file.web(), &limits)?,
        limits,
        timezone,
    })
}

/// What a local run takes from the configuration.
pub struct LocalConfig {
    pub web: WebConfig,
    pub limits: Limits,
    /// The zone of schedules and time functions that name none (`timezone`).
    pub timezone: chrono_tz::Tz,
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

pub(super) fn limits(file: Option<Limits>) -> Result<Limits, ConfigError> {
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

pub(super) fn web_config(
    args: &WebArgs,
    file: WebFile,
    limits: &Limits,
) -> Result<WebConfig, ConfigError> {
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
    let timeout_ms = match args.http_timeout_ms.or(file.http_timeout_ms) {
        Some(ms) if ms == 0 || ms > limits.max_call_ms => {
            return Err(ConfigError::Invalid {
                setting: "http_timeout_ms",
                message: format!(
                    "{ms} ms must be between 1 and limits.max_call_ms ({} ms), the handler's \
                     own time limit; raise [limits] max_call_ms for slower APIs",
                    limits.max_call_ms
                ),
            });
        }
        Some(ms) => ms,
        // The default never outlasts the handler's own limit.
        None => (d.timeout.as_millis() as u64).min(limits.max_call_ms),
    };
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
