//! How calls to LINE travel: one pool of kept connections, HTTP/2 offered over TLS, and,
//! through the real binary, the proxies the environment names (`HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY` with SOCKS5, `NO_PROXY`).
//!
//! The proxy variables are set on the daemon only, and its LINE base URL names a host that only
//! the proxy "reaches" (`api.line.test`, which resolves nowhere): the proxies in
//! `support/proxies.rs` carry every connection to the mock LINE API on 127.0.0.1.

#[path = "support/proxies.rs"]
mod proxies;
mod support;

use std::time::Duration;

use linebotd::line::{text, LineClient, LineConfig};
use proxies::Proxy;
use support::daemon::{eventually, say, start_with_env, Daemon, Scripts};
use support::mock_line::MockLine;
use tokio::io::AsyncReadExt;
use uuid::Uuid;

const REPLY: &str = "/v2/bot/message/reply";
const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(15);
/// Answers a message with a reply and a push (the push goes through the outbox).
const PONG: &str = r#"fn on_message(event) {
    reply(event, "pong");
    push(event.source.userId, "pushed");
}"#;

#[tokio::test]
async fn calls_share_one_pool_of_kept_connections() {
    let mock = MockLine::start().await;
    let relay = Proxy::relay(&mock.url()).await;
    let base = relay.url("http");
    let client = LineClient::new(LineConfig::new(&base, &base, "token")).expect("client");
    let clone = client.clone();
    for i in 0..5 {
        client
            .reply(&format!("t{i}"), &[text("a")], false)
            .await
            .expect("reply");
        clone
            .push("U1", &[text("b")], Uuid::new_v4(), false)
            .await
            .expect("push");
        clone.get("/v2/bot/info").await.expect("get");
    }
    assert_eq!(mock.recorded().len(), 15);
    assert_eq!(relay.targets().len(), 1, "one connection, kept alive");
}

#[tokio::test]
async fn offers_http2_to_tls_servers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    // Reads the TLS ClientHello and hangs up: no certificate is needed to see what it offers.
    let hello = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut header = [0u8; 5];
        conn.read_exact(&mut header).await.expect("record header");
        let mut hello = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        conn.read_exact(&mut hello).await.expect("ClientHello");
        (header[0], hello)
    });
    let mut cfg = LineConfig::new(&base, &base, "token");
    cfg.retry.max_attempts = 1;
    let client = LineClient::new(cfg).expect("client");
    client.profile("U1").await.expect_err("no TLS server there");
    let (record_type, hello) = hello.await.expect("listener");
    assert_eq!(
        (record_type, hello.first()),
        (22, Some(&1)),
        "a TLS ClientHello"
    );
    // The ALPN list: h2 preferred, HTTP/1.1 for servers without it.
    let alpn = b"\x02h2\x08http/1.1";
    assert!(
        hello.windows(alpn.len()).any(|w| w == alpn),
        "ALPN does not offer h2 then http/1.1"
    );
}

/// Starts the daemon on the PONG script with LINE at `line_api` and `env` on its process.
fn daemon(scripts: &Scripts, line_api: &str, env: &[(&str, &str)]) -> Daemon {
    start_with_env(scripts.path(), line_api, env)
}

/// Says "ping" as `user` and waits until the mock accepted the reply and the push.
async fn ping_reaches_line(d: &Daemon, mock: &MockLine, user: &str) {
    assert_eq!(say(d, &format!("E-{user}"), user, "ping").await, 200);
    let arrived = eventually(WAIT, || {
        mock.accepted(REPLY).len() == 1 && mock.accepted(PUSH).len() == 1
    })
    .await;
    assert!(
        arrived,
        "reply and push did not arrive: {}",
        d.stderr.text()
    );
    assert_eq!(mock.accepted(PUSH)[0].body["to"], user);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_carries_calls_to_line() {
    let mock = MockLine::start().await;
    let proxy = Proxy::http(&mock.url()).await;
    let scripts = Scripts::new(&[("pong.rhai", PONG)]);
    let d = daemon(
        &scripts,
        "http://api.line.test",
        &[("HTTP_PROXY", &proxy.url("http"))],
    );
    ping_reaches_line(&d, &mock, "Uhttp").await;
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    assert!(targets.iter().all(|t| t == "api.line.test"), "{targets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_tunnels_https_calls_to_line() {
    let mock = MockLine::start().await;
    let proxy = Proxy::http(&mock.url()).await;
    let scripts = Scripts::new(&[("pong.rhai", PONG)]);
    // Only the tunnel can be checked here: the mock speaks no TLS, so the call itself fails
    // after the CONNECT.
    let d = daemon(
        &scripts,
        "https://api.line.test",
        &[("HTTPS_PROXY", &proxy.url("http"))],
    );
    assert_eq!(say(&d, "E-https", "Uhttps", "ping").await, 200);
    let tunnelled = eventually(WAIT, || {
        proxy.targets().iter().any(|t| t == "api.line.test:443")
    })
    .await;
    assert!(tunnelled, "{:?} {}", proxy.targets(), d.stderr.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5h_proxy_resolves_lines_host_itself() {
    let mock = MockLine::start().await;
    let proxy = Proxy::socks5(&mock.url()).await;
    let scripts = Scripts::new(&[("pong.rhai", PONG)]);
    let d = daemon(
        &scripts,
        "http://api.line.test",
        &[("ALL_PROXY", &proxy.url("socks5h"))],
    );
    ping_reaches_line(&d, &mock, "Usocks5h").await;
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| t == "api.line.test:80"),
        "{targets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_proxy_gets_the_address_resolved_here() {
    let mock = MockLine::start().await;
    let proxy = Proxy::socks5(&mock.url()).await;
    // With socks5:// the name is resolved before asking the proxy, so LINE is `localhost` on
    // a port where nothing listens: only the proxy's connection reaches the mock.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = unused.local_addr().expect("addr").port();
    drop(unused);
    let scripts = Scripts::new(&[("pong.rhai", PONG)]);
    let d = daemon(
        &scripts,
        &format!("http://localhost:{port}"),
        &[("all_proxy", &proxy.url("socks5"))],
    );
    ping_reaches_line(&d, &mock, "Usocks5").await;
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    let resolved = [format!("127.0.0.1:{port}"), format!("[::1]:{port}")];
    assert!(targets.iter().all(|t| resolved.contains(t)), "{targets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_hosts_are_called_directly() {
    let mock = MockLine::start().await;
    let proxy = Proxy::http(&mock.url()).await;
    let scripts = Scripts::new(&[("pong.rhai", PONG)]);
    let d = daemon(
        &scripts,
        &mock.url(),
        &[
            ("HTTP_PROXY", &proxy.url("http")),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    );
    ping_reaches_line(&d, &mock, "Udirect").await;
    assert_eq!(proxy.targets(), Vec::<String>::new());
}
