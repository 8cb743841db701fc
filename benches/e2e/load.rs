//! The load generator: N keep-alive HTTP/1.1 connections, each sending signed text webhooks
//! back to back (one in flight per connection) until a deadline or a request-count cap. With
//! several daemons, connection `i` goes to the `i % instances`-th: request numbers (and so users)
//! are shared by all connections, so each user's webhooks land on every instance.
//!
//! A connection waits only for the webhook's 200, never for the reply, so a slow LINE API does
//! not slow the generator down. Two optional brakes: a paced rate (request `n` is not sent before
//! `n / rate` seconds), and a backlog cap (no new webhook while that many acknowledged events
//! are still unanswered at the mock), which keeps the daemon supplied with more work than it can
//! answer while bounding how long the replies take to drain after the load.
//!
//! It is a raw hyper client rather than reqwest: on a 2-core machine the generator shares the CPU
//! with the daemon, so the less it costs per request the more the numbers say about the daemon.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::mock::{MockState, TEXT_MARK};

/// What to send where.
#[derive(Clone)]
pub struct Target {
    /// The daemons' addresses (at least one): connection `i` sends to the `i % len`-th, as a
    /// load balancer would, so one user's webhooks land on every instance.
    pub addrs: Vec<String>,
    pub path: String,
    pub secret: Arc<[u8]>,
}

impl Target {
    /// The address connection number `connection` sends to.
    pub fn addr(&self, connection: usize) -> &str {
        &self.addrs[connection % self.addrs.len()]
    }

    /// A signed webhook carrying `body`, for the daemon at `addr`.
    pub fn webhook(&self, addr: &str, body: String) -> hyper::http::Result<Request> {
        let signature = linebotd::pipeline::webhook::sign(&self.secret, body.as_bytes());
        hyper::Request::post(self.path.as_str())
            .header(hyper::header::HOST, addr)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-line-signature", signature)
            .body(Full::new(Bytes::from(body)))
    }
}

/// What one load run saw.
#[derive(Default)]
pub struct LoadResult {
    /// Time to the 200 of every acknowledged request, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Request numbers that got a 200.
    pub acked: Vec<u64>,
    /// Requests answered with anything but 200, or that failed on the wire.
    pub failed: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    /// Time connections spent waiting at the backlog cap, summed over connections.
    pub held_back: Duration,
}

/// How much to send, and the brakes.
pub struct Plan {
    pub connections: usize,
    pub duration: Duration,
    /// Request numbers at or above this are never sent.
    pub max_requests: u64,
    /// Distinct LINE users the webhooks come from, round-robin.
    pub users: u64,
    /// Webhooks a second in all; 0 sends as fast as the 200s come back.
    pub rate_per_s: f64,
    pub backlog: Option<Backlog>,
}

/// No new webhook while `max` admitted events are unanswered at `mock`.
pub struct Backlog {
    pub max: u64,
    pub mock: Arc<MockState>,
}

impl Backlog {
    /// Waits until there is room under the cap and takes it (one admitted event); false when
    /// `deadline` came first. `admitted` counts the webhooks let through and not failed.
    ///
    /// The mock wakes one waiter per answered event, so when the cap binds the generator sends
    /// one webhook per answer, as smoothly as the answers come, rather than waking every
    /// connection at once and sending them all in a burst.
    async fn room(&self, admitted: &AtomicU64, deadline: Instant) -> bool {
        loop {
            let answered = self.mock.answered_changed.notified();
            tokio::pin!(answered);
            // Registered before the check, so an answer in between still wakes this task.
            answered.as_mut().enable();
            let now = admitted.load(Ordering::Acquire);
            if now.saturating_sub(self.mock.answered()) < self.max {
                if admitted
                    .compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if tokio::time::timeout_at(deadline.into(), answered)
                .await
                .is_err()
            {
                return false;
            }
        }
    }
}

/// Most webhooks one run may send: bounds the run (and the mock's bitmaps) whatever the speed.
pub const MAX_REQUESTS: u64 = 8_000_000;
/// Where the webhooks are posted.
pub const WEBHOOK_PATH: &str = "/callback";

/// The text of request `n`'s message: the mark lets the mock match a fallback push to its event.
pub fn event_text(word: &str, n: u64) -> String {
    format!("{word} {TEXT_MARK}{n}")
}

/// The webhook body for request number `n`: one text message event. The request number is in
/// the event id and the reply token, so the mock can tell which event a reply belongs to.
pub fn text_event_body(n: u64, users: u64, text: &str) -> String {
    let user = n % users.max(1);
    format!(
        concat!(
            r#"{{"destination":"Ubench","events":[{{"type":"message","mode":"active","#,
            r#""timestamp":1700000000000,"webhookEventId":"01BENCH{n:020}","#,
            r#""deliveryContext":{{"isRedelivery":false}},"replyToken":"rt-{n}","#,
            r#""source":{{"type":"user","userId":"Ubenchuser{user:06}"}},"#,
            r#""message":{{"id":"m{n}","type":"text","quoteToken":"q","text":"{text}"}}}}]}}"#
        ),
        n = n,
        user = user,
        text = text
    )
}

/// Sends webhooks as `plan` says. Request numbers come from `next`.
pub async fn run(target: &Target, plan: Arc<Plan>, next: Arc<AtomicU64>) -> LoadResult {
    let started = Instant::now();
    let first = next.load(Ordering::Relaxed);
    let deadline = started + plan.duration;
    let admitted = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..plan.connections)
        .map(|i| {
            let target = target.clone();
            let next = next.clone();
            let plan = plan.clone();
            let admitted = admitted.clone();
            let clock = Clock {
                started,
                first,
                deadline,
            };
            tokio::spawn(
                async move { connection(&target, i, &plan, clock, &next, &admitted).await },
            )
        })
        .collect();
    let mut all = LoadResult::default();
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.latencies_us.extend(part.latencies_us);
                all.acked.extend(part.acked);
                all.failed += part.failed;
                all.held_back += part.held_back;
                if all.first_error.is_none() {
                    all.first_error = part.first_error;
                }
            }
            Err(e) => {
                all.failed += 1;
                all.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    all.window = started.elapsed();
    all
}

#[derive(Clone, Copy)]
struct Clock {
    started: Instant,
    /// The first request number of this run.
    first: u64,
    deadline: Instant,
}

/// Keep-alive connection number `i`'s loop. Reconnects after a wire error, at most a few times.
async fn connection(
    target: &Target,
    i: usize,
    plan: &Plan,
    clock: Clock,
    next: &AtomicU64,
    admitted: &AtomicU64,
) -> LoadResult {
    const MAX_RECONNECTS: u32 = 5;
    let mut result = LoadResult::default();
    let mut reconnects = 0;
    let addr = target.addr(i);
    'connect: while Instant::now() < clock.deadline && reconnects <= MAX_RECONNECTS {
        let mut sender = match connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                result.fail(e);
                reconnects += 1;
                continue;
            }
        };
        while Instant::now() < clock.deadline {
            // Gives the room back unless the webhook is acknowledged.
            let mut admission = Admission(None);
            if let Some(backlog) = &plan.backlog {
                let waiting = Instant::now();
                let room = backlog.room(admitted, clock.deadline).await;
                result.held_back += waiting.elapsed();
                if !room {
                    break 'connect;
                }
                admission.0 = Some(admitted);
            }
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= plan.max_requests {
                break 'connect;
            }
            if plan.rate_per_s > 0.0 {
                let due = clock.started
                    + Duration::from_secs_f64((n - clock.first) as f64 / plan.rate_per_s);
                if due >= clock.deadline {
                    break 'connect;
                }
                tokio::time::sleep_until(due.into()).await;
            }
            let body = text_event_body(n, plan.users, &event_text("hello", n));
            let request = match target.webhook(addr, body) {
                Ok(r) => r,
                Err(e) => {
                    result.fail(e);
                    break 'connect;
                }
            };
            let sent = Instant::now();
            match send(&mut sender, request).await {
                Ok(200) => {
                    let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    result.latencies_us.push(us);
                    result.acked.push(n);
                    admission.0 = None;
                }
                Ok(status) => result.fail(format!("webhook answered {status}")),
                Err(e) => {
                    result.fail(e);
                    reconnects += 1;
                    continue 'connect;
                }
            }
        }
        break;
    }
    result
}

/// A place under the backlog cap, given back on drop while it still holds the counter.
struct Admission<'a>(Option<&'a AtomicU64>);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(admitted) = self.0 {
            admitted.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl LoadResult {
    fn fail(&mut self, e: impl ToString) {
        self.failed += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
}

type Request = hyper::Request<Full<Bytes>>;
type Sender = http1::SendRequest<Full<Bytes>>;

/// Opens one keep-alive connection.
pub async fn connect(addr: &str) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer; the status code.
pub async fn send(
    sender: &mut Sender,
    request: Request,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// The `q`-quantile (0..=1) of sorted `values`.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_body_parses_as_one_text_event() {
        let body = linebotd::pipeline::webhook::parse_body(
            text_event_body(519, 512, &event_text("hi", 519)).as_bytes(),
        )
        .unwrap();
        assert_eq!(body.events.len(), 1);
        assert_eq!(body.events[0].reply_token.as_deref(), Some("rt-519"));
        assert_eq!(body.events[0].conversation_key(), "Ubenchuser000007");
    }

    #[test]
    fn connections_take_the_instances_in_turn() {
        let target = Target {
            addrs: vec!["a:1".into(), "b:2".into(), "c:3".into()],
            path: "/callback".into(),
            secret: Arc::from(&b"s"[..]),
        };
        let addrs: Vec<&str> = (0..5).map(|i| target.addr(i)).collect();
        assert_eq!(addrs, ["a:1", "b:2", "c:3", "a:1", "b:2"]);
        let request = target.webhook("b:2", "{}".into()).unwrap();
        assert_eq!(request.headers()[hyper::header::HOST], "b:2");
        assert!(request.headers().contains_key("x-line-signature"));
    }

    #[test]
    fn quantiles_of_sorted_values() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
