//! Slow and silent clients against the real binary: they are closed after the header, body and
//! keep-alive timeouts, connections over the cap are refused, and a shutdown ends within its
//! grace period whatever clients are doing. Timeouts are set to a few seconds so tests are fast.

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::daemon::{post_signed, start_with_env, text_event_body, Daemon, Scripts};
use support::mock_line::MockLine;

const ECHO: &str = r#"fn on_message(e) { reply(e, e.message.text); }"#;

async fn connect(d: &Daemon) -> TcpStream {
    TcpStream::connect(&d.addr)
        .await
        .expect("connect to linebotd")
}

/// Reads until the server closes the connection (end of stream or reset), for at most
/// `limit`. Returns what was read and when it closed, or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<(Vec<u8>, Instant)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((got, Instant::now())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A signed webhook that claims `Content-Length: 1000` and sends only its first bytes.
fn half_sent_webhook() -> Vec<u8> {
    let body = text_event_body("half", "Uhalf", "never finished");
    let sig = support::daemon::sign(body.as_bytes());
    format!(
        "POST /callback HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         x-line-signature: {sig}\r\ncontent-length: 1000\r\n\r\n{}",
        &body[..20]
    )
    .into_bytes()
}

#[tokio::test]
async fn trickled_header_is_closed_after_the_header_timeout() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[
            ("LINEBOTD_HEADER_READ_TIMEOUT_SECS", "1"),
            ("LINEBOTD_KEEP_ALIVE_IDLE_SECS", "30"),
        ],
    );
    let stream = connect(&d).await;
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"POST /callback HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        .await
        .unwrap();
    // One byte every 200 ms: the client is never silent, but its head never ends.
    let trickle = tokio::spawn(async move {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), read.read(&mut buf)).await;
    let took = started.elapsed();
    trickle.abort();
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection was still open after {took:?}: {closed:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the 1 s header timeout"
    );
}

#[tokio::test]
async fn body_shorter_than_its_content_length_gets_408_after_the_body_timeout() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[("LINEBOTD_BODY_READ_TIMEOUT_SECS", "1")],
    );
    let mut stream = connect(&d).await;
    stream.write_all(&half_sent_webhook()).await.unwrap();
    let started = Instant::now();
    let (answer, at) = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the connection was still open 5 s later");
    let took = at - started;
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}"
    );
    // Nothing half-sent reaches the scripts.
    assert!(mock.recorded().is_empty());
}

#[tokio::test]
async fn kept_alive_connection_is_closed_after_the_idle_time_not_the_header_time() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[
            ("LINEBOTD_HEADER_READ_TIMEOUT_SECS", "1"),
            ("LINEBOTD_KEEP_ALIVE_IDLE_SECS", "3"),
        ],
    );
    let mut stream = connect(&d).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer to /healthz")
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answered = Instant::now();
    let (_, at) = closed_within(&mut stream, Duration::from_secs(8))
        .await
        .expect("an idle kept-alive connection stayed open past the 3 s idle timeout");
    let idle = at - answered;
    assert!(
        idle >= Duration::from_millis(2500),
        "closed after {idle:?} idle: the keep-alive time is 3 s, only heads get 1 s"
    );
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_until_one_closes() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[
            ("LINEBOTD_MAX_CONNECTIONS", "3"),
            ("LINEBOTD_HEADER_READ_TIMEOUT_SECS", "60"),
        ],
    );
    // The server accepts in arrival order: these three are in before the fourth.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&d).await);
    }
    let mut fourth = connect(&d).await;
    let (answer, _) = closed_within(&mut fourth, Duration::from_secs(5))
        .await
        .expect("a connection over the cap was left open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");

    let url = d.url("/callback");
    let body = text_event_body("capped", "Ucap", "refused");
    assert_ne!(post_signed(&reqwest::Client::new(), &url, &body).await, 200);

    drop(held.pop());
    let body = text_event_body("room", "Ucap", "room again");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = post_signed(&reqwest::Client::new(), &url, &body).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused ({status}) after one connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mock.wait_for(1, Duration::from_secs(5)).await);
    assert_eq!(mock.texts("/v2/bot/message/reply"), ["room again"]);
}

#[tokio::test]
async fn sigterm_with_half_sent_bodies_open_exits_within_the_grace() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let config = tempfile::tempdir().unwrap();
    let toml = config.path().join("linebotd.toml");
    std::fs::write(
        &toml,
        "shutdown_grace_secs = 2\nbody_read_timeout_secs = 60\nheader_read_timeout_secs = 60\n",
    )
    .unwrap();
    let mut d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[("LINEBOTD_CONFIG", toml.to_str().unwrap())],
    );
    let mut half_sent = Vec::new();
    for _ in 0..50 {
        let mut stream = connect(&d).await;
        stream.write_all(&half_sent_webhook()).await.unwrap();
        half_sent.push(stream);
    }
    // Accepted after the fifty, answered while they wait.
    let body = text_event_body("whole", "Uwhole", "whole");
    assert_eq!(
        post_signed(&reqwest::Client::new(), &d.url("/callback"), &body).await,
        200
    );
    assert!(mock.wait_for(1, Duration::from_secs(5)).await);

    let started = Instant::now();
    let status = d
        .terminate(Duration::from_secs(10))
        .expect("linebotd still running 10 s after SIGTERM with a 2 s grace");
    let took = started.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(4),
        "shutdown took {took:?} with a 2 s grace"
    );
    for stream in &mut half_sent {
        assert!(closed_within(stream, Duration::from_secs(1))
            .await
            .is_some());
    }
}
