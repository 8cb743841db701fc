//! The configuration file: its shape, reading it with the line of a mistake, and the few
//! settings that commands other than `run` take from it (the store, the time zone).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::zone;
use super::{ConfigError, Limits};

/// The file's shape: every key optional, unknown keys are errors (a typo must not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileConfig {
    pub listen: Option<String>,
    pub scripts: Option<PathBuf>,
    pub channel_secret: Option<String>,
    pub channel_access_token: Option<String>,
    pub line_api_base: Option<String>,
    pub line_data_api_base: Option<String>,
    pub webhook_path: Option<String>,
    pub max_body: Option<usize>,
    pub store: Option<String>,
    pub store_sync: Option<String>,
    pub store_pool: Option<usize>,
    pub store_lease_secs: Option<u64>,
    pub timezone: Option<String>,
    pub log_format: Option<String>,
    pub admin_token: Option<String>,
    pub watch: Option<bool>,
    pub strict: Option<bool>,
    pub reply_fallback_push: Option<bool>,
    pub line_rate_limit: Option<u32>,
    pub content_max_bytes: Option<usize>,
    pub shutdown_grace_secs: Option<u64>,
    pub schedule_grace_secs: Option<u64>,
    pub limits: Option<Limits>,
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub keep_alive_idle_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub http_allow: Option<Vec<String>>,
    pub script_env: Option<Vec<String>>,
    pub http_timeout_ms: Option<u64>,
    pub http_max_response_bytes: Option<usize>,
}

/// The configuration file a command reads when none is named: `linebotd.toml` in the current
/// folder, where `init` puts it. `--config` (or `LINEBOTD_CONFIG`) names another.
pub fn default_file() -> Option<PathBuf> {
    let path = PathBuf::from("linebotd.toml");
    path.is_file().then_some(path)
}

/// The `timezone` of a configuration file, if it sets one (an unreadable file or a bad name is
/// an error, as it is for `run`).
pub fn file_timezone(path: &Path) -> Result<Option<chrono_tz::Tz>, ConfigError> {
    read_file(path)?
        .timezone
        .map(|name| zone(&name))
        .transpose()
}

/// The zone of schedules that name none: the `--timezone` flag, else `timezone` in `file`,
/// else UTC.
pub fn zone_for(
    flag: Option<chrono_tz::Tz>,
    file: Option<&Path>,
) -> Result<chrono_tz::Tz, ConfigError> {
    match (flag, file) {
        (Some(tz), _) => Ok(tz),
        (None, Some(path)) => Ok(file_timezone(path)?.unwrap_or(chrono_tz::UTC)),
        (None, None) => Ok(chrono_tz::UTC),
    }
}

/// The store file `run` uses for these settings: `--store`, else `store` in the config file,
/// else `linebotd.db` beside the config file (in the current folder without one). Commands
/// that read the daemon's store (`schedules`) find it the same way.
pub fn store_path(store: Option<String>, config: Option<&Path>) -> Result<String, ConfigError> {
    let file_store = match config {
        Some(path) if store.is_none() => read_file(path)?.store,
        _ => None,
    };
    let config_dir = config
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok(resolve_store(store, file_store, &config_dir))
}

pub(super) fn resolve_store(
    cli: Option<String>,
    file: Option<String>,
    config_dir: &Path,
) -> String {
    cli.or(file).unwrap_or_else(|| {
        config_dir
            .join("linebotd.db")
            .to_string_lossy()
            .into_owned()
    })
}

pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
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
