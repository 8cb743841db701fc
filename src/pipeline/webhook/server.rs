//! The accept loop under the router: a cap on open connections, one task per connection (see
//! [`conn`](super::conn) for its clocks), and a shutdown that ends within its deadline whatever
//! clients are doing.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn::{self, ClientLimits};

/// File descriptors kept for everything but clients: the store, connections to LINE and to the
/// web APIs scripts call, the watched scripts folder.
const RESERVED_FDS: u64 = 256;

/// How often, at most, refused connections are logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Sent to a connection over the cap before it is closed. A client that already sent its
/// request may see a reset instead: either way it was refused, and LINE redelivers.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 45\r\nconnection: close\r\n\r\n{\"error\":\"too many connections, retry later\"}";

/// Serves `app` on `listener` until `stop` resolves to a deadline. Then it stops accepting,
/// lets each open connection finish the request it is on, and at the deadline closes whatever
/// is still open.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ClientLimits,
    stop: impl Future<Output = Instant>,
) {
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    // Refusals are counted and logged once a minute at most: a flood must not flood the log.
    let mut refused = 0u64;
    let mut warned_at: Option<Instant> = None;
    tokio::pin!(stop);
    let deadline = loop {
        tokio::select! {
            biased;
            deadline = &mut stop => break deadline,
            Some(done) = conns.join_next(), if !conns.is_empty() => reaped(done),
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                while let Some(done) = conns.try_join_next() {
                    reaped(done);
                }
                if conns.len() >= limits.max_connections {
                    refuse(stream);
                    refused += 1;
                    if warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                        tracing::warn!(
                            max_connections = limits.max_connections,
                            refused,
                            "connection cap reached: new connections get 503 until some close"
                        );
                        warned_at = Some(Instant::now());
                        refused = 0;
                    }
                    continue;
                }
                conns.spawn(conn::serve(stream, app.clone(), limits, closing_rx.clone()));
            }
        }
    };
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = tokio::time::timeout_at(deadline, async {
        while let Some(done) = conns.join_next().await {
            reaped(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "grace period over; closing the connections still open"
        );
        // Dropping a connection's task closes its socket, mid-request or not.
        conns.shutdown().await;
    }
}

fn reaped(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "a connection's task panicked; the connection was closed");
        }
    }
}

fn refuse(stream: TcpStream) {
    // Never wait on a client we are refusing: a full socket buffer just loses the answer.
    let _ = stream.try_write(REFUSAL);
}

async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    // The client gave up before we accepted: nothing to do.
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    // Most likely out of file descriptors (EMFILE): wait for some to close instead of spinning.
    tracing::error!(error = %e, "cannot accept connections; retrying in 250 ms");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// The connection cap that fits the process's open-file limit (`nofile`, when known): the
/// configured cap, or less when the limit leaves fewer than [`RESERVED_FDS`] for the rest.
/// Returns the cap and whether it was lowered.
pub fn fitting_cap(configured: usize, nofile: Option<u64>) -> (usize, bool) {
    let Some(limit) = nofile else {
        return (configured, false);
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if configured > room {
        (room, true)
    } else {
        (configured, false)
    }
}

/// The soft open-file limit of this process, read from `/proc` (Linux); `None` elsewhere or
/// when unlimited.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_a_well_formed_503() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].is_string());
    }

    #[test]
    fn cap_is_lowered_to_leave_descriptors_for_the_store_and_line() {
        assert_eq!(fitting_cap(512, None), (512, false));
        assert_eq!(fitting_cap(512, Some(1024)), (512, false));
        assert_eq!(fitting_cap(10_000, Some(1024)), (768, true));
        assert_eq!(fitting_cap(512, Some(100)), (1, true));
    }

    #[test]
    fn reads_the_soft_open_file_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_file_limit(unlimited), None);
        assert_eq!(parse_open_file_limit(""), None);
    }
}
