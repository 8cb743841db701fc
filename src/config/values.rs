//! Single values of the configuration, checked: an address, a base URL, a time zone.

use std::net::SocketAddr;

use super::ConfigError;

/// `value` unless it is missing or blank.
pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

pub(super) fn parse_listen(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.parse().map_err(|_| ConfigError::Invalid {
        setting: "--listen",
        message: format!("`{addr}` is not an address with a port, such as 127.0.0.1:8080"),
    })
}

pub(super) fn base_url(
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

/// An IANA time zone name, such as `Asia/Tokyo` or `UTC`.
pub(super) fn zone(name: &str) -> Result<chrono_tz::Tz, ConfigError> {
    name.parse().map_err(|_| ConfigError::Invalid {
        setting: "timezone",
        message: format!(
            "`{name}` is not an IANA time zone name such as Asia/Tokyo or UTC{}",
            crate::pipeline::script::suggest::zone_named(name)
                .map(|known| format!("; did you mean {known}?"))
                .unwrap_or_default()
        ),
    })
}
