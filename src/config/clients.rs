//! The HTTP server's client limits: timeouts for a request's head and body, keep-alive, and
//! the connection cap.

use std::time::Duration;

use crate::cli::Settings;
use crate::pipeline::webhook::ClientLimits;

use super::{ConfigError, DEFAULT_CLIENT_LIMITS, MAX_TIMEOUT_SECS};

/// The file's client-limit keys (the rest of the file is consumed by then).
pub(super) struct ClientLimitsFile {
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub keep_alive_idle_secs: Option<u64>,
    pub max_connections: Option<usize>,
}

pub(super) fn client_limits(
    settings: &Settings,
    file: ClientLimitsFile,
) -> Result<ClientLimits, ConfigError> {
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
