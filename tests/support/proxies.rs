//! Tiny proxies on 127.0.0.1 for the tests of how LINE calls travel: a counting TCP relay, an
//! HTTP forward proxy and a no-auth SOCKS5 server.
//!
//! Each records the target a client asked it for, then carries the bytes to one fixed upstream
//! (the mock LINE API) whatever that target was: a host name that resolves nowhere
//! (`api.line.test`) still reaches the mock, but only through the proxy.
#![allow(dead_code)] // each test file uses a different part of it

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
enum Kind {
    Relay,
    Http,
    Socks5,
}

/// A running proxy; it serves until the test's runtime ends.
pub struct Proxy {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Plain TCP forwarding, one upstream connection per client connection: counts connections.
    pub async fn relay(upstream: &str) -> Self {
        Self::start(Kind::Relay, upstream).await
    }

    /// An HTTP proxy: absolute-form requests (`GET http://host/path`) and `CONNECT host:port`.
    pub async fn http(upstream: &str) -> Self {
        Self::start(Kind::Http, upstream).await
    }

    /// A SOCKS5 server (RFC 1928) without authentication, `CONNECT` only.
    pub async fn socks5(upstream: &str) -> Self {
        Self::start(Kind::Socks5, upstream).await
    }

    /// `scheme://127.0.0.1:port`, for `HTTP_PROXY`, `ALL_PROXY` and the like.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// The target of each connection so far (`host:port`, or `relay`), in arrival order.
    pub fn targets(&self) -> Vec<String> {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `upstream` is a URL like `http://127.0.0.1:41234`, or `host:port`.
    async fn start(kind: Kind, upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (seen, upstream) = (seen.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(kind, client, &upstream, &seen).await;
                });
            }
        });
        Self { addr, targets }
    }
}

async fn serve(
    kind: Kind,
    mut client: TcpStream,
    upstream: &str,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let (target, early) = match kind {
        Kind::Relay => ("relay".to_owned(), Vec::new()),
        Kind::Http => http_handshake(&mut client).await?,
        Kind::Socks5 => (socks5_handshake(&mut client).await?, Vec::new()),
    };
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(target);
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&early).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// Reads the request head. `CONNECT` is answered here and nothing is passed on; any other
/// request is passed on whole (hyper, behind, takes the absolute form).
async fn http_handshake(client: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method == "CONNECT" {
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        return Ok((target.to_owned(), Vec::new()));
    }
    let authority = target
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    Ok((authority.to_owned(), head))
}

/// Greeting, then one `CONNECT`; answers success and returns the target as `host:port`.
async fn socks5_handshake(client: &mut TcpStream) -> std::io::Result<String> {
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; usize::from(greeting[1])];
    client.read_exact(&mut methods).await?;
    if greeting[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff]).await?;
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    client.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return Err(std::io::ErrorKind::InvalidData.into()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    if request[1] != 1 {
        // Only CONNECT: "command not supported".
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    Ok(format!("{host}:{}", u16::from_be_bytes(port)))
}
