//! One HTTP/1.1 connection and the clocks that stop a slow or silent client from holding it.
//!
//! hyper's own `header_read_timeout` also runs while a kept-alive connection waits for its next
//! request, so with it the idle keep-alive time could never be longer than the header time. Here
//! each connection keeps its own small clock instead: a fresh connection must send its first
//! request head within the header timeout; between requests it may stay idle for the keep-alive
//! time; once the first byte of the next head arrives, that head must be complete within the
//! header timeout. Request bodies get their own deadline ([`DeadlineBody`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::body::DeadlineBody;

/// Limits on what one client may hold; see the README's configuration table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// From the connection's start (first request) or the first byte of a later request until
    /// its head is complete.
    pub header_read_timeout: Duration,
    /// From the end of a request's head until its whole body has arrived.
    pub body_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request; zero: one request per
    /// connection.
    pub keep_alive_idle: Duration,
    /// Connections open at once; more are answered `503` and closed.
    pub max_connections: usize,
}

/// The largest read buffer of a connection. LINE's request heads are a few hundred bytes; the
/// cap keeps a client that trickles a huge head from holding hyper's default ~400 KiB.
const MAX_BUF: usize = 64 * 1024;

/// Serves one accepted connection until the client closes it, a clock runs out, or the server
/// closes: `closing` turning true lets the request in progress finish, then closes.
pub async fn serve(
    stream: TcpStream,
    app: Router,
    limits: ClientLimits,
    mut closing: watch::Receiver<bool>,
) {
    // hyper writes each answer whole; waiting for an ACK before sending it only adds latency.
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(Clock::new(Instant::now()));
    let io = TokioIo::new(Watched {
        inner: stream,
        clock: clock.clone(),
    });
    let service = Routed {
        app: TowerToHyperService::new(app),
        clock: clock.clone(),
        body_timeout: limits.body_read_timeout,
    };
    let mut builder = http1::Builder::new();
    builder
        .header_read_timeout(None)
        .keep_alive(!limits.keep_alive_idle.is_zero())
        .max_buf_size(MAX_BUF);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // One timer for the connection's life, moved when its deadline moves.
    let timer = tokio::time::sleep_until(Instant::now() + limits.header_read_timeout);
    tokio::pin!(timer);
    let mut armed = Some(timer.deadline());
    let mut closing_seen = false;
    loop {
        let wake_at = clock.deadline(&limits);
        if let Some(at) = wake_at.filter(|at| armed != Some(*at)) {
            timer.as_mut().reset(at);
        }
        armed = wake_at;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.changed(), if !closing_seen => {
                closing_seen = true;
                conn.as_mut().graceful_shutdown();
            }
            () = clock.wake.notified() => {}
            () = &mut timer, if armed.is_some() => {
                if clock.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!(phase = clock.phase(), "closing a connection whose client was too slow");
                    return;
                }
            }
        }
    }
}

/// Where a connection is between requests, shared by its reads, its service and its task.
#[derive(Debug)]
pub(crate) struct Clock {
    state: Mutex<State>,
    /// Set while waiting for a request: the next read that brings bytes starts its head. Lets
    /// reads skip the lock when they carry a body or a head already timed.
    awaiting_head: AtomicBool,
    /// Wakes the connection's task when its deadline may have moved.
    wake: Notify,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// Requests with the router now (hyper serves one at a time; a count keeps it simple).
    busy: u32,
    /// When the connection opened or last answered.
    since: Instant,
    /// When the first byte of the next request arrived, if it has.
    head_started: Option<Instant>,
    answered: u64,
}

impl Clock {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                busy: 0,
                since: now,
                head_started: None,
                answered: 0,
            }),
            awaiting_head: AtomicBool::new(true),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few plain fields: one left half-updated by a panic is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the client runs out of time, or `None` while a request is with the router (its
    /// body has its own deadline; a handler takes the time it takes).
    pub(crate) fn deadline(&self, limits: &ClientLimits) -> Option<Instant> {
        let s = *self.state();
        if s.busy > 0 {
            None
        } else if s.answered == 0 {
            Some(s.since + limits.header_read_timeout)
        } else if let Some(started) = s.head_started {
            Some(started + limits.header_read_timeout)
        } else {
            Some(s.since + limits.keep_alive_idle)
        }
    }

    fn phase(&self) -> &'static str {
        let s = *self.state();
        match (s.busy, s.answered, s.head_started) {
            (1.., _, _) => "request",
            (0, 0, _) | (0, _, Some(_)) => "header",
            _ => "keep-alive idle",
        }
    }

    pub(crate) fn on_read(&self, now: Instant) {
        if self.awaiting_head.load(Ordering::Relaxed)
            && self.awaiting_head.swap(false, Ordering::AcqRel)
        {
            let mut s = self.state();
            if s.busy == 0 && s.head_started.is_none() {
                s.head_started = Some(now);
            }
            drop(s);
            self.wake.notify_one();
        }
    }

    pub(crate) fn request_started(&self) {
        self.awaiting_head.store(false, Ordering::Relaxed);
        let mut s = self.state();
        s.busy += 1;
        s.head_started = None;
    }

    pub(crate) fn request_finished(&self, now: Instant) {
        let mut s = self.state();
        s.busy = s.busy.saturating_sub(1);
        if s.busy == 0 {
            s.since = now;
            s.head_started = None;
            s.answered += 1;
            self.awaiting_head.store(true, Ordering::Release);
        }
        drop(s);
        self.wake.notify_one();
    }
}

/// The socket, telling the clock when bytes arrive.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.on_read(Instant::now());
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router, with each request counted on the clock and its body under a deadline.
#[derive(Clone)]
struct Routed {
    app: TowerToHyperService<Router>,
    clock: Arc<Clock>,
    body_timeout: Duration,
}

type ServiceFuture = Pin<
    Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>,
>;

impl hyper::service::Service<hyper::Request<Incoming>> for Routed {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        self.clock.request_started();
        let finished = Finished(self.clock.clone());
        let deadline = Instant::now() + self.body_timeout;
        let timeout = self.body_timeout;
        let request = request.map(|body| Body::new(DeadlineBody::new(body, deadline, timeout)));
        let answer = self.app.call(request);
        Box::pin(async move {
            let response = answer.await;
            drop(finished);
            response
        })
    }
}

/// Marks the request finished when its answer is ready, or when hyper drops it unanswered.
struct Finished(Arc<Clock>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.request_finished(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ClientLimits = ClientLimits {
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(10),
        keep_alive_idle: Duration::from_secs(60),
        max_connections: 8,
    };

    #[test]
    fn first_request_head_is_timed_from_the_connection_start() {
        let t0 = Instant::now();
        let clock = Clock::new(t0);
        assert_eq!(
            clock.deadline(&LIMITS),
            Some(t0 + LIMITS.header_read_timeout)
        );
        // A late first byte does not buy more time.
        clock.on_read(t0 + Duration::from_secs(9));
        assert_eq!(
            clock.deadline(&LIMITS),
            Some(t0 + LIMITS.header_read_timeout)
        );
    }

    #[test]
    fn a_request_with_the_router_has_no_connection_deadline() {
        let t0 = Instant::now();
        let clock = Clock::new(t0);
        clock.request_started();
        clock.on_read(t0 + Duration::from_secs(1));
        assert_eq!(clock.deadline(&LIMITS), None);
    }

    #[test]
    fn kept_alive_connection_waits_the_idle_time_then_the_header_time_from_its_first_byte() {
        let t0 = Instant::now();
        let clock = Clock::new(t0);
        clock.request_started();
        let answered = t0 + Duration::from_secs(1);
        clock.request_finished(answered);
        assert_eq!(
            clock.deadline(&LIMITS),
            Some(answered + LIMITS.keep_alive_idle)
        );
        let first_byte = answered + Duration::from_secs(30);
        clock.on_read(first_byte);
        assert_eq!(
            clock.deadline(&LIMITS),
            Some(first_byte + LIMITS.header_read_timeout)
        );
        // Later bytes of the same head do not move the deadline.
        clock.on_read(first_byte + Duration::from_secs(5));
        assert_eq!(
            clock.deadline(&LIMITS),
            Some(first_byte + LIMITS.header_read_timeout)
        );
        clock.request_started();
        assert_eq!(clock.deadline(&LIMITS), None);
    }
}
