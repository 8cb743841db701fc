//! `linebotd init [DIR]`: a new bot folder that runs as is, and never over someone's files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::InitArgs;

use super::CommandError;

/// The shipped echo bot and its tests, so a new folder starts from what the repository tests.
const ECHO: &str = include_str!("../../scripts/echo.rhai");
const ECHO_TEST: &str = include_str!("../../scripts/echo.test.rhai");

const GITIGNORE: &str = "# linebotd's store: the inbox, outbox and script state (SQLite, WAL mode)
*.db
*.db-wal
*.db-shm
";

/// Every key with its default, commented out so the defaults stay the daemon's to choose.
pub const CONFIG: &str = r#"# linebotd configuration. Every key is optional: the values shown are the defaults.
# Flags and environment variables override this file: linebotd run --config linebotd.toml

# Secrets do not belong in a file you might commit. Set them in the environment instead:
#   export CHANNEL_SECRET=...        (LINE Developers console > your channel > Basic settings)
#   export CHANNEL_ACCESS_TOKEN=...  (LINE Developers console > your channel > Messaging API)
# channel_secret = "use the CHANNEL_SECRET environment variable"
# channel_access_token = "use the CHANNEL_ACCESS_TOKEN environment variable"

# Address to listen on (without this key: 0.0.0.0:$PORT when PORT is set).
# listen = "127.0.0.1:8080"
# Path LINE posts webhooks to: set https://<your host>/callback as the webhook URL.
# webhook_path = "/callback"
# Largest webhook body accepted, in bytes.
# max_body = 1048576
# Folder of *.rhai scripts, relative to this file.
# scripts = "scripts"
# SQLite file for the inbox, outbox and script state, relative to this file.
# store = "linebotd.db"
# Time zone for schedules that do not name one (an IANA name such as "Asia/Tokyo").
# timezone = "UTC"
# "text" for a terminal, "json" for log collectors.
# log_format = "text"
# When set, /metrics and /readyz details need "Authorization: Bearer <token>".
# Prefer the LINEBOTD_ADMIN_TOKEN environment variable.
# admin_token = "use the LINEBOTD_ADMIN_TOKEN environment variable"
# Reload scripts when they change on disk.
# watch = true
# Refuse to start when any script fails to compile.
# strict = false
# When a reply token is missing, used or expired, push the reply to the chat instead.
# reply_fallback_push = true
# Requests per second to each LINE endpoint (LINE's published limit); 0 turns every limit off.
# line_rate_limit = 2000
# "full" flushes each inbox commit to disk (survives a power cut); "normal" is faster but
# survives only a crash of the daemon itself.
# store_sync = "full"
# Several instances behind a load balancer share one PostgreSQL database instead of the file
# (store set to a URL like postgres://linebot:secret@db.internal:5432/linebot); each opens at
# most store_pool connections, and takes over a dead one's work after store_lease_secs.
# store_pool = 16
# store_lease_secs = 5
# Slow or idle clients: seconds for a request's head, for its body, and for an idle
# kept-alive connection; and the most client connections open at once.
# header_read_timeout_secs = 10
# body_read_timeout_secs = 10
# keep_alive_idle_secs = 60
# max_connections = 512
# Seconds to let running handlers finish on shutdown.
# shutdown_grace_secs = 10
# A scheduled run missed while the daemon was down is made up if it is at most this old.
# schedule_grace_secs = 600

# Other web APIs scripts may call with http_get/http_post/http_request. Without this key: any
# https host at a public address. Plain http and loopback or private addresses only when
# listed by name or address, e.g. ["api.openai.com", "*.example.com", "127.0.0.1:9000"].
# http_allow = ["*"]
# Environment variables scripts may read with env("NAME"); their values are redacted from logs.
# script_env = ["OPENAI_API_KEY"]
# A web call's default timeout (at most [limits] max_call_ms), and its largest answer.
# http_timeout_ms = 10000
# http_max_response_bytes = 5242880

# Limits for every handler or scheduled call; a script that passes one is stopped with an error.
# [limits]
# max_operations = 10000000
# max_call_ms = 10000
# max_call_depth = 64
# max_string_size = 1048576
# max_array_size = 100000
# max_map_size = 100000
# Handlers running or waiting on LINE or a web API at once (one conversation's events always run one at a
# time). Each waiting handler holds a thread, started on demand and ended when idle.
# workers = 1024
"#;

/// The files `init` writes, relative to the target folder.
pub fn files() -> [(&'static str, &'static str); 4] {
    [
        ("linebotd.toml", CONFIG),
        ("scripts/echo.rhai", ECHO),
        ("scripts/echo.test.rhai", ECHO_TEST),
        (".gitignore", GITIGNORE),
    ]
}

pub fn run(args: &InitArgs) -> Result<ExitCode, CommandError> {
    let dir = &args.dir;
    let existing: Vec<PathBuf> = files()
        .iter()
        .map(|(name, _)| dir.join(name))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        for p in &existing {
            eprintln!("error: {} already exists", p.display());
        }
        eprintln!("init writes nothing when any of its files exist; move them away or pick another folder");
        return Ok(ExitCode::FAILURE);
    }
    write_all(dir)?;
    for (name, _) in files() {
        println!("created {}", dir.join(name).display());
    }
    print!("{}", next_steps(dir));
    Ok(ExitCode::SUCCESS)
}

fn write_all(dir: &Path) -> Result<(), CommandError> {
    for (name, content) in files() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CommandError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        // create_new: a file that appeared since the check above is still not overwritten.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()))
            .map_err(|source| CommandError::WriteFile { path, source })?;
    }
    Ok(())
}

fn next_steps(dir: &Path) -> String {
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("  cd {}\n", dir.display())
    };
    // In the bot's folder, `cargo run` finds no Cargo.toml and a relative path to the binary
    // may no longer lead to it: the steps use the installed command, and say how to install it.
    let install = if super::invoked::on_path() {
        String::new()
    } else {
        let checkout = super::invoked::repository().map_or_else(
            || "<the linebotd checkout>".to_owned(),
            |p| p.display().to_string(),
        );
        format!(
            "First install the linebotd command (once; it builds from the checkout, offline):\n  \
             cargo install --locked --path {checkout}\n"
        )
    };
    format!(
        "
Next steps:
{install}{cd}  linebotd check                      # compile the scripts, point at mistakes
  linebotd test scripts               # run scripts/*.test.rhai
  linebotd dev                        # the bot against a local fake LINE; open http://127.0.0.1:8080/
  export CHANNEL_SECRET=... CHANNEL_ACCESS_TOKEN=...
  linebotd run --config linebotd.toml # then set https://<your host>/callback as the webhook URL
Writing scripts: docs/scripting.md in the linebotd repository.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Settings;
    use crate::config::Config;

    /// Uncommenting every default must give a config the daemon accepts: the template cannot
    /// drift from the real keys without this failing.
    #[test]
    fn every_commented_default_is_a_valid_key() {
        let uncommented: String = CONFIG
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = ") || l.starts_with('['))
            .filter(|l| !l.contains("environment variable"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(uncommented.contains("max_operations = 10000000"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linebotd.toml");
        std::fs::write(&path, &uncommented).unwrap();
        let settings = Settings {
            config: Some(path),
            channel_secret: Some("s".into()),
            channel_access_token: Some("t".into()),
            ..Settings::default()
        };
        let config = Config::load(&settings, None).unwrap();
        assert_eq!(config.limits, crate::config::Limits::default());
        assert_eq!(config.timezone, "UTC");
    }
}
