//! The blocking transport against local servers on 127.0.0.1, plain and TLS.

use super::*;
use crate::line::transport::TransportKind;
use std::net::TcpListener;
use std::sync::mpsc;

/// One request as the test server read it.
#[derive(Debug)]
struct Seen {
    connection: usize,
    head: String,
    body: Vec<u8>,
}

/// What the test server does with a request: the bytes to answer, and whether to close the
/// connection afterwards. `None` answers nothing and waits for the client to go away.
type Answerer = Box<dyn FnMut(&Seen) -> Option<(Vec<u8>, bool)> + Send>;

/// A plain HTTP/1.1 server on 127.0.0.1 that serves connections one after another. Each
/// request goes to `seen`; a message on the returned channel follows every close.
fn serve(mut answer: Answerer) -> (Url, Arc<Mutex<Vec<Seen>>>, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("url");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (closed_tx, closed) = mpsc::channel();
    let log = seen.clone();
    std::thread::spawn(move || {
        for (connection, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            while let Some(request) = read_request(&mut stream, connection) {
                let reply = answer(&request);
                log.lock().expect("log").push(request);
                let Some((bytes, close)) = reply else {
                    let _ = stream.read(&mut [0u8; 1]);
                    break;
                };
                if stream.write_all(&bytes).is_err() || close {
                    break;
                }
            }
            drop(stream);
            let _ = closed_tx.send(());
        }
    });
    (url, seen, closed)
}

/// Which connection each request the test server saw came over, in order.
fn connections_used(seen: &Mutex<Vec<Seen>>) -> Vec<usize> {
    seen.lock()
        .expect("seen")
        .iter()
        .map(|s| s.connection)
        .collect()
}

fn read_request(stream: &mut TcpStream, connection: usize) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap_or(0));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Seen {
        connection,
        head,
        body,
    })
}

fn ok(body: &str) -> Option<(Vec<u8>, bool)> {
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-line-request-id: r-1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Some((answer.into_bytes(), false))
}

fn post<'a>(url: &'a Url, body: &'a [u8]) -> Request<'a> {
    Request {
        method: "POST",
        url,
        headers: &[("authorization", b"Bearer t"), ("x-line-retry-key", b"k1")],
        body: Some(body),
        timeout: Duration::from_secs(5),
    }
}

fn body(answer: &Answer) -> String {
    String::from_utf8(answer.body.clone().expect("body").to_vec()).expect("utf-8")
}

#[test]
fn sends_requests_over_one_kept_connection() {
    let (base, seen, _) = serve(Box::new(|_| ok(r#"{"ok":true}"#)));
    let conns = Connections::new(Duration::from_secs(2));
    let url = base.join("/v2/bot/message/reply").expect("url");
    let answer = conns.send(&post(&url, br#"{"a":1}"#)).expect("first");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.request_id.as_deref(), Some("r-1"));
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(body(&answer), r#"{"ok":true}"#);
    let get = base.join("/v2/bot/followers/ids?limit=2").expect("url");
    conns
        .send(&Request {
            method: "GET",
            url: &get,
            headers: &[],
            body: None,
            timeout: Duration::from_secs(5),
        })
        .expect("second");

    let seen = seen.lock().expect("seen");
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.connection == 0), "{seen:?}");
    let port = base.port().expect("port");
    assert_eq!(
        seen[0].head,
        format!(
            "POST /v2/bot/message/reply HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
             authorization: Bearer t\r\nx-line-retry-key: k1\r\ncontent-length: 7\r\n\r\n"
        )
    );
    assert_eq!(seen[0].body, br#"{"a":1}"#);
    assert!(seen[1]
        .head
        .starts_with("GET /v2/bot/followers/ids?limit=2 HTTP/1.1\r\n"));
    assert!(!seen[1].head.contains("content-length"));
}

#[test]
fn reads_chunked_answers_and_keeps_the_connection() {
    let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                   4\r\n{\"a\"\r\n3;x=1\r\n:1}\r\n0\r\nx-trailer: y\r\n\r\n";
    let (base, seen, _) = serve(Box::new(move |_| Some((chunked.into(), false))));
    let conns = Connections::new(Duration::from_secs(2));
    for _ in 0..2 {
        let answer = conns.send(&post(&base, b"{}")).expect("answer");
        assert_eq!(body(&answer), r#"{"a":1}"#);
    }
    assert!(seen.lock().expect("seen").iter().all(|s| s.connection == 0));
}

#[test]
fn large_answers_are_read_whole_over_many_reads_and_the_connection_kept() {
    // Far more than one read's room (2 KiB first, at most 64 KiB later), like a content download.
    let big: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let answers = [ok(&big).expect("answer").0, chunked.into_bytes()];
    for answer in answers {
        let (base, seen, _) = serve(Box::new(move |_| Some((answer.clone(), false))));
        let conns = Connections::new(Duration::from_secs(2));
        for _ in 0..2 {
            let answer = conns.send(&post(&base, b"{}")).expect("answer");
            assert_eq!(body(&answer), big);
        }
        assert_eq!(connections_used(&seen), [0, 0]);
    }
}

#[test]
fn answer_header_names_are_matched_in_any_case_and_others_are_ignored() {
    let answers = [
        "HTTP/1.1 429 Too Many Requests\r\nServer: legy\r\nContent-Type: application/json\r\n\
         X-Line-Request-Id: R-9\r\nRetry-After: 3\r\nVary: Accept-Encoding\r\n\
         Content-Length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: Chunked\r\nCONNECTION: Close\r\n\r\n\
         2\r\n{}\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
    ];
    let mut answered = 0;
    let (base, seen, _) = serve(Box::new(move |_| {
        answered += 1;
        Some((answers[(answered - 1).min(2)].into(), false))
    }));
    let conns = Connections::new(Duration::from_secs(2));
    let limited = conns.send(&post(&base, b"{}")).expect("first");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.request_id.as_deref(), Some("R-9"));
    assert_eq!(limited.content_type.as_deref(), Some("application/json"));
    assert_eq!(limited.retry_after.as_deref(), Some("3"));
    assert_eq!(body(&limited), "{}");
    let chunked = conns.send(&post(&base, b"{}")).expect("second");
    assert_eq!(body(&chunked), "{}");
    conns.send(&post(&base, b"{}")).expect("third");
    // The first answer kept the connection; the second said Close, so the third needed another.
    assert_eq!(connections_used(&seen), [0, 0, 1]);
}

#[test]
fn an_answer_ended_by_closing_is_read_whole_and_the_connection_not_kept() {
    let (base, seen, _) = serve(Box::new(|_| {
        Some((b"HTTP/1.1 200 OK\r\n\r\n{\"whole\":1}".to_vec(), true))
    }));
    let conns = Connections::new(Duration::from_secs(2));
    for _ in 0..2 {
        let answer = conns.send(&post(&base, b"{}")).expect("answer");
        assert_eq!(body(&answer), r#"{"whole":1}"#);
    }
    let connections = connections_used(&seen);
    assert_eq!(connections, [0, 1]);
}

#[test]
fn http_1_0_and_connection_close_answers_are_not_kept() {
    let answers = [
        "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
    ];
    for answer in answers {
        let (base, seen, closed) = serve(Box::new(move |_| Some((answer.into(), false))));
        let conns = Connections::new(Duration::from_secs(2));
        conns.send(&post(&base, b"{}")).expect("first");
        // The client drops the connection; the server notices and moves on.
        closed.recv_timeout(Duration::from_secs(5)).expect("closed");
        conns.send(&post(&base, b"{}")).expect("second");
        let connections = connections_used(&seen);
        assert_eq!(connections, [0, 1], "{answer}");
    }
}

#[test]
fn a_kept_connection_the_server_closed_is_replaced_before_sending() {
    let mut n = 0;
    let (base, seen, closed) = serve(Box::new(move |_| {
        n += 1;
        // The first answer claims keep-alive, then the server closes anyway.
        ok("{}").map(|(bytes, _)| (bytes, n == 1))
    }));
    let conns = Connections::new(Duration::from_secs(2));
    conns.send(&post(&base, b"{}")).expect("first");
    closed.recv_timeout(Duration::from_secs(5)).expect("closed");
    let answer = conns
        .send(&post(&base, b"{}"))
        .expect("second, on a new connection");
    assert_eq!(answer.status, 200);
    let connections = connections_used(&seen);
    assert_eq!(connections, [0, 1]);
}

#[test]
fn no_answer_within_the_timeout_is_a_timeout() {
    let (base, seen, _) = serve(Box::new(|_| None));
    let conns = Connections::new(Duration::from_secs(2));
    let mut req = post(&base, b"{}");
    req.timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = conns.send(&req).expect_err("timeout");
    assert_eq!(err.kind, TransportKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        seen.lock().expect("seen").len(),
        1,
        "the request was sent once"
    );
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = Url::parse(&format!(
        "http://{}/x",
        listener.local_addr().expect("addr")
    ))
    .expect("url");
    drop(listener);
    let err = Connections::new(Duration::from_secs(2))
        .send(&post(&url, b"{}"))
        .expect_err("refused");
    assert_eq!(err.kind, TransportKind::Connect, "{err}");
    assert!(err.to_string().starts_with("connection failed"), "{err}");
}

#[test]
fn malformed_answers_are_errors() {
    for bad in [
        "HTTP/1.1 200 OK\r\ncontent-length: lots\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        "NOT HTTP\r\n\r\n",
    ] {
        let (base, _, _) = serve(Box::new(move |_| Some((bad.into(), true))));
        let result = Connections::new(Duration::from_secs(2)).send(&post(&base, b"{}"));
        let failed = match result {
            Ok(answer) => answer.body.err(),
            Err(e) => Some(e),
        };
        assert!(failed.is_some(), "{bad:?} was accepted");
    }
}

#[test]
fn a_cut_off_body_is_reported_beside_the_status() {
    let (base, _, _) = serve(Box::new(|_| {
        Some((
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}".to_vec(),
            true,
        ))
    }));
    let answer = Connections::new(Duration::from_secs(2))
        .send(&post(&base, b"{}"))
        .expect("the status arrived");
    assert_eq!(answer.status, 200);
    let err = answer.body.expect_err("cut off");
    assert_eq!(err.kind, TransportKind::CutOff);
}

/// An HTTPS server with the test certificate (for `localhost`). After each answer it waits
/// for a go-ahead on the returned sender, then updates its traffic keys (a TLS record the
/// client did not ask for) and reports the request.
fn serve_tls() -> (u16, mpsc::Receiver<Seen>, mpsc::Sender<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/localhost.cert.pem"))
        .expect("cert");
    let key =
        PrivateKeyDer::from_pem_slice(include_bytes!("testdata/localhost.key.pem")).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (connection, stream) in listener.incoming().enumerate() {
            let Ok(tcp) = stream else { return };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            loop {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                if !head.ends_with(b"\r\n\r\n") {
                    break;
                }
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{\"tls\":1}");
                let _ = tls.flush();
                // Once the client has the answer: a TLS record it did not ask for.
                if go.recv_timeout(Duration::from_secs(5)).is_ok() {
                    let _ = tls.conn.refresh_traffic_keys();
                    let _ = tls.flush();
                }
                let _ = tx.send(Seen {
                    connection,
                    head: String::from_utf8_lossy(&head).into_owned(),
                    body: Vec::new(),
                });
            }
        }
    });
    (port, rx, go_tx)
}

#[test]
fn https_to_a_trusted_server() {
    use rustls::pki_types::pem::PemObject;
    let (port, seen, go) = serve_tls();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls::pki_types::CertificateDer::from_pem_slice(include_bytes!(
                "testdata/localhost.cert.pem"
            ))
            .expect("cert"),
        )
        .expect("root");
    let conns = Connections::with_roots(roots, Duration::from_secs(2));
    let url = Url::parse(&format!("https://localhost:{port}/v2/bot/info")).expect("url");
    let mut req = post(&url, b"{}");
    req.method = "GET";
    req.body = None;
    for _ in 0..2 {
        let answer = conns.send(&req).expect("https answer");
        assert_eq!(
            (answer.status, body(&answer).as_str()),
            (200, r#"{"tls":1}"#)
        );
        go.send(()).expect("server");
        let seen = seen.recv_timeout(Duration::from_secs(5)).expect("request");
        assert!(
            seen.head
                .starts_with("GET /v2/bot/info HTTP/1.1\r\nhost: localhost:"),
            "{}",
            seen.head
        );
        // The key update that came while idle does not cost the connection.
        assert_eq!(seen.connection, 0);
    }
}

#[test]
fn https_to_an_untrusted_server_fails_before_sending() {
    let (port, seen, _go) = serve_tls();
    let url = Url::parse(&format!("https://localhost:{port}/x")).expect("url");
    let err = Connections::new(Duration::from_secs(2))
        .send(&post(&url, b"{}"))
        .expect_err("untrusted");
    assert_eq!(err.kind, TransportKind::Connect, "{err}");
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
    assert!(seen.try_recv().is_err(), "no request reached the server");
}
