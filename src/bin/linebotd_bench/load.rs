//! The load generator: N keep-alive HTTP/1.1 connections, each sending signed text webhooks
//! back to back (one in flight per connection) until a deadline or a request-count cap.
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

/// Distinct LINE users the webhooks come from, round-robin.
pub const USERS: u64 = 1000;

/// What to send where.
#[derive(Clone)]
pub struct Target {
    pub addr: String,
    pub path: String,
    pub secret: Arc<[u8]>,
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
}

/// The webhook body for request number `n`: one text message event. The request number is in
/// the event id and the reply token, so the mock can tell which event a reply belongs to.
pub fn text_event_body(n: u64, text: &str) -> String {
    let user = n % USERS;
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

/// Sends webhooks over `connections` connections until `duration` passed or `max_requests`
/// were sent. Request numbers come from `next`.
pub async fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
    max_requests: u64,
    next: Arc<AtomicU64>,
) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let target = target.clone();
            let next = next.clone();
            tokio::spawn(async move { connection(&target, deadline, max_requests, &next).await })
        })
        .collect();
    let mut all = LoadResult::default();
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.latencies_us.extend(part.latencies_us);
                all.acked.extend(part.acked);
                all.failed += part.failed;
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

/// One keep-alive connection's loop. Reconnects after a wire error, at most a few times.
async fn connection(
    target: &Target,
    deadline: Instant,
    max_requests: u64,
    next: &AtomicU64,
) -> LoadResult {
    const MAX_RECONNECTS: u32 = 5;
    let mut result = LoadResult::default();
    let mut reconnects = 0;
    'connect: while Instant::now() < deadline && reconnects <= MAX_RECONNECTS {
        let mut sender = match connect(&target.addr).await {
            Ok(s) => s,
            Err(e) => {
                result.fail(e);
                reconnects += 1;
                continue;
            }
        };
        while Instant::now() < deadline {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= max_requests {
                break 'connect;
            }
            let body = text_event_body(n, "hello");
            let signature = linebotd::webhook::sign(&target.secret, body.as_bytes());
            let request = hyper::Request::post(target.path.as_str())
                .header(hyper::header::HOST, target.addr.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header("x-line-signature", signature)
                .body(Full::new(Bytes::from(body)));
            let request = match request {
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

impl LoadResult {
    fn fail(&mut self, e: impl ToString) {
        self.failed += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
}

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
    request: hyper::Request<Full<Bytes>>,
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
        let body = linebotd::webhook::parse_body(text_event_body(7, "hi").as_bytes()).unwrap();
        assert_eq!(body.events.len(), 1);
        assert_eq!(body.events[0].reply_token.as_deref(), Some("rt-7"));
        assert_eq!(body.events[0].conversation_key(), "Ubenchuser000007");
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
