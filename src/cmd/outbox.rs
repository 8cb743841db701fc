//! `linebotd outbox`: what is still waiting to reach LINE, and what LINE rejected.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::cli::OutboxArgs;
use crate::store::{self, Delivery};

use super::CommandError;

pub fn run(args: &OutboxArgs) -> Result<ExitCode, CommandError> {
    let path = store_path(args)?;
    if !store::exists(&path) {
        return Err(CommandError::NoStore(path));
    }
    // Which file was read, without getting in the way of `--json` output.
    eprintln!("store: {path}");
    let deliveries = store::open(&path).and_then(|s| s.outbox_list(args.limit))?;
    if args.json {
        for d in &deliveries {
            println!("{}", to_json(d));
        }
    } else {
        print!("{}", table(&deliveries));
    }
    Ok(ExitCode::SUCCESS)
}

/// The store `run` would use (`--store`, `store` in the config file, `linebotd.db`), or the
/// one `dev` keeps in this folder when only that one exists.
fn store_path(args: &OutboxArgs) -> Result<String, CommandError> {
    let config = args.config.clone().or_else(crate::config::default_file);
    let daemon = crate::config::store_path(args.store.clone(), config.as_deref())?;
    let dev = crate::cli::DEV_STORE;
    if args.store.is_none() && !store::exists(&daemon) && store::exists(dev) {
        return Ok(dev.to_owned());
    }
    Ok(daemon)
}

fn to_json(d: &Delivery) -> serde_json::Value {
    serde_json::json!({
        "id": d.retry_key,
        "kind": d.kind.as_str(),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "script": d.source,
        "created_ms": d.created_ms,
        "updated_ms": d.updated_ms,
        "error": d.last_error,
        "payload": d.payload,
    })
}

/// A plain table, newest first, with the last error in full under each failed row.
pub fn table(deliveries: &[Delivery]) -> String {
    if deliveries.is_empty() {
        return "outbox is empty: nothing pending, nothing failed\n".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<9} {:<20} {:>8}  {:<16} ID",
        "STATUS", "KIND", "CREATED (UTC)", "ATTEMPTS", "SCRIPT"
    );
    for d in deliveries {
        let created = chrono::DateTime::from_timestamp_millis(d.created_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<8} {:<9} {:<20} {:>8}  {:<16} {}",
            d.status.as_str(),
            d.kind.as_str(),
            created,
            d.attempts,
            d.source,
            d.retry_key
        );
        if let Some(err) = &d.last_error {
            let _ = writeln!(out, "         last error: {err}");
        }
    }
    out
}
