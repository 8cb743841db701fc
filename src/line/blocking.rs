//! LINE calls made from a handler thread: plain blocking HTTP/1.1, one keep-alive connection
//! per origin, owned by that thread.
//!
//! A handler thread waits for each of its calls anyway (`reply` is synchronous), so a blocking
//! socket is the cheapest way to make them: one write and usually one read per call, with no
//! event loop, task or wake-up in between. On the project's benchmark this is roughly 40 % more
//! events a second than the pooled async client, which stays for everything that runs on the
//! async runtime (the outbox, the CLI).
//!
//! Only what LINE's API needs: requests with a `Content-Length` body, answers framed by
//! `Content-Length`, chunked encoding or the end of the connection, http and https (rustls with
//! the webpki roots, like the pooled client).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Url;
use rustls::pki_types::ServerName;

use super::transport::{Answer, TransportError};

/// A kept connection idle this long is not used again (a middlebox may have dropped it
/// silently); the same idle limit as the pooled client's.
const DROP_AFTER_IDLE: Duration = Duration::from_secs(90);
/// LINE's answers are small JSON; anything bigger than this is refused rather than buffered.
const MAX_ANSWER: usize = 64 << 20;

/// One request, ready to write.
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    /// Sent as they are, after `Host`.
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: Option<&'a [u8]>,
    /// For the whole attempt, from writing the request to the last byte of the answer.
    pub timeout: Duration,
}

/// The connections of one thread (a [`Mutex`] only so the client stays `Sync`; nobody else
/// takes it).
pub(super) struct Connections {
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

struct Conn {
    origin: Origin,
    stream: Stream,
    last_used: Instant,
    /// The socket's read and write timeout as last set, so most calls need not set it.
    timeout: Option<Duration>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Connections {
    pub fn new(connect_timeout: Duration) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(roots, connect_timeout)
    }

    fn with_roots(roots: rustls::RootCertStore, connect_timeout: Duration) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The ring provider supports the default protocol versions, so this cannot fail.
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("rustls rejects its own defaults: {e}"))
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: Arc::new(tls),
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `req` and reads the whole answer, on a kept connection when there is a usable one.
    pub fn send(&self, req: &Request<'_>) -> Result<Answer, TransportError> {
        let origin = origin(req.url)?;
        let deadline = Instant::now() + req.timeout;
        let head = request_head(req);
        let mut kept = self.take(&origin);
        loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(conn) => conn,
                None => self.connect(&origin, deadline)?,
            };
            if let Err(e) = write_request(&mut conn, &head, req.body, deadline) {
                // A kept connection the server has closed fails here; no request reached it,
                // so a new connection can carry this one.
                if reused {
                    continue;
                }
                return Err(e);
            }
            let (answer, keep) = read_answer(&mut conn, req.method, deadline)?;
            if keep {
                conn.last_used = Instant::now();
                self.put(conn);
            }
            return Ok(answer);
        }
    }

    fn take(&self, origin: &Origin) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = idle.iter().position(|c| &c.origin == origin)?;
        let mut conn = idle.swap_remove(at);
        drop(idle);
        // A connection the server has closed would take the request and then answer nothing,
        // leaving it unknown whether it was carried out; so look before using it.
        let usable = conn.last_used.elapsed() < DROP_AFTER_IDLE && conn.stream.still_open();
        usable.then_some(conn)
    }

    fn put(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }

    /// A new connection, TLS handshake included: every error here means nothing was sent.
    fn connect(&self, origin: &Origin, deadline: Instant) -> Result<Conn, TransportError> {
        let connect_deadline = deadline.min(Instant::now() + self.connect_timeout);
        let tcp = tcp_connect(origin, connect_deadline)?;
        let stream = if origin.https {
            let name = ServerName::try_from(origin.host.clone())
                .map_err(|e| TransportError::connect(format!("bad host name: {e}")))?;
            let tls = rustls::ClientConnection::new(self.tls.clone(), name)
                .map_err(|e| TransportError::connect(e.to_string()))?;
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            let left = remaining(connect_deadline)
                .ok_or_else(|| TransportError::timeout("connecting timed out"))?;
            set_timeout(&stream.sock, left)?;
            while stream.conn.is_handshaking() {
                stream
                    .conn
                    .complete_io(&mut stream.sock)
                    .map_err(|e| TransportError::connect(format!("TLS handshake failed: {e}")))?;
            }
            Stream::Tls(Box::new(stream))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Conn {
            origin: origin.clone(),
            stream,
            last_used: Instant::now(),
            timeout: None,
        })
    }
}

fn origin(url: &Url) -> Result<Origin, TransportError> {
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(TransportError::connect(format!(
                "unsupported scheme {other}"
            )))
        }
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => return Err(TransportError::connect("the URL has no host")),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    Ok(Origin { https, host, port })
}

fn tcp_connect(origin: &Origin, deadline: Instant) -> Result<TcpStream, TransportError> {
    use std::net::ToSocketAddrs;
    let addrs = (origin.host.as_str(), origin.port)
        .to_socket_addrs()
        .map_err(|e| TransportError::connect(format!("cannot resolve {}: {e}", origin.host)))?;
    let mut last = None;
    for addr in addrs {
        let Some(left) = remaining(deadline) else {
            return Err(TransportError::timeout("connecting timed out"));
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => {
                tcp.set_nodelay(true)
                    .map_err(|e| TransportError::connect(e.to_string()))?;
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if is_timeout(&e) => TransportError::timeout("connecting timed out"),
        Some(e) => TransportError::connect(e.to_string()),
        None => TransportError::connect(format!("{} has no address", origin.host)),
    })
}

/// Everything before the body. The body is written after it, in the same packet when small.
fn request_head(req: &Request<'_>) -> Vec<u8> {
    let url = req.url;
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(req.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(url.path().as_bytes());
    if let Some(query) = url.query() {
        head.push(b'?');
        head.extend_from_slice(query.as_bytes());
    }
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(url.host_str().unwrap_or_default().as_bytes());
    if let Some(port) = url.port() {
        head.extend_from_slice(format!(":{port}").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    for (name, value) in req.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(body) = req.body {
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn write_request(
    conn: &mut Conn,
    head: &[u8],
    body: Option<&[u8]>,
    deadline: Instant,
) -> Result<(), TransportError> {
    conn.bound_by(deadline)?;
    let stream = &mut conn.stream;
    let written = match body {
        // One buffer, so head and body leave in one segment.
        Some(body) if body.len() <= 16 << 10 => stream.write_all(&[head, body].concat()),
        Some(body) => stream.write_all(head).and_then(|()| stream.write_all(body)),
        None => stream.write_all(head),
    };
    written
        .and_then(|()| stream.flush())
        .map_err(|e| TransportError::io("sending the request", &e))
}

/// Reads one answer. The flag says whether the connection can carry another request.
/// The answer headers `read_answer` looks at, in lower case.
const READ_HEADERS: [&str; 6] = [
    "connection",
    "transfer-encoding",
    "content-length",
    "x-line-request-id",
    "content-type",
    "retry-after",
];

fn read_answer(
    conn: &mut Conn,
    method: &str,
    deadline: Instant,
) -> Result<(Answer, bool), TransportError> {
    let mut reader = Reader {
        conn,
        buf: Vec::with_capacity(2 << 10),
        pos: 0,
        deadline,
    };
    let (head_len, status, version, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 48];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&reader.buf[reader.pos..]) {
            Ok(httparse::Status::Complete(len)) => {
                let status = parsed.code.unwrap_or_default();
                // Informational answers (100 Continue…) come before the real one.
                if (100..200).contains(&status) && status != 101 {
                    reader.pos += len;
                    continue;
                }
                // Only the headers read below are copied out (LINE sends a dozen others).
                let headers: Vec<(&str, String)> = parsed
                    .headers
                    .iter()
                    .filter_map(|h| {
                        let name = READ_HEADERS
                            .iter()
                            .find(|n| h.name.eq_ignore_ascii_case(n))?;
                        Some((*name, String::from_utf8_lossy(h.value).into_owned()))
                    })
                    .collect();
                break (len, status, parsed.version.unwrap_or(1), headers);
            }
            Ok(httparse::Status::Partial) => {
                if reader.fill("reading the answer")? == 0 {
                    return Err(TransportError::cut_off(
                        "the connection closed before an answer",
                    ));
                }
            }
            Err(e) => return Err(TransportError::other(format!("malformed answer: {e}"))),
        }
    };
    reader.pos += head_len;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    let close = version == 0
        || header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"));
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = header("content-length").map(|v| v.trim().parse::<usize>());
    let (body, keep) = if method == "HEAD" || status == 204 || status == 304 {
        (Ok(Bytes::new()), !close)
    } else if chunked {
        (reader.chunked(), !close)
    } else {
        match length {
            Some(Ok(n)) => (reader.exact(n), !close),
            Some(Err(_)) => return Err(TransportError::other("malformed Content-Length")),
            None => (reader.until_close(), false),
        }
    };
    // Bytes beyond the answer mean the two sides disagree on framing: start afresh.
    let keep = keep && body.is_ok() && reader.pos == reader.buf.len();
    let answer = Answer {
        status,
        request_id: header("x-line-request-id").map(str::to_owned),
        content_type: header("content-type").map(str::to_owned),
        retry_after: header("retry-after").map(str::to_owned),
        body,
    };
    Ok((answer, keep))
}

/// The answer's bytes as they arrive; `pos` is how far they have been consumed.
struct Reader<'a> {
    conn: &'a mut Conn,
    buf: Vec<u8>,
    pos: usize,
    deadline: Instant,
}

impl Reader<'_> {
    /// Reads what has arrived, waiting until the deadline; 0 at the end of the connection.
    fn fill(&mut self, doing: &str) -> Result<usize, TransportError> {
        if self.buf.len() > MAX_ANSWER {
            return Err(TransportError::other(format!(
                "the answer is larger than {} MiB",
                MAX_ANSWER >> 20
            )));
        }
        self.conn.bound_by(self.deadline)?;
        // Read into the room already there (a LINE answer usually fits the first 2 KiB), at
        // least 2 KiB and at most 64 KiB at a time: the room is zeroed first, so no more.
        let start = self.buf.len();
        let room = (self.buf.capacity() - start).clamp(2 << 10, 64 << 10);
        self.buf.resize(start + room, 0);
        let read = match self.conn.stream.read(&mut self.buf[start..]) {
            // A TLS peer that hangs up without saying goodbye: the end, like a plain socket.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        };
        self.buf.truncate(start + *read.as_ref().unwrap_or(&0));
        read.map_err(|e| TransportError::io(doing, &e))
    }

    fn exact(&mut self, n: usize) -> Result<Bytes, TransportError> {
        if n > MAX_ANSWER {
            return Err(TransportError::other("the answer is too large"));
        }
        while self.buf.len() - self.pos < n {
            if self.fill("reading the answer's body")? == 0 {
                return Err(TransportError::cut_off("the answer's body was cut off"));
            }
        }
        let body = Bytes::copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(body)
    }

    fn until_close(&mut self) -> Result<Bytes, TransportError> {
        while self.fill("reading the answer's body")? > 0 {}
        let body = Bytes::copy_from_slice(&self.buf[self.pos..]);
        self.pos = self.buf.len();
        Ok(body)
    }

    /// One CRLF-terminated line, without the CRLF.
    fn line(&mut self) -> Result<String, TransportError> {
        loop {
            if let Some(at) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + at]).into_owned();
                self.pos += at + 2;
                return Ok(line);
            }
            if self.fill("reading a chunk")? == 0 {
                return Err(TransportError::cut_off("the chunked answer was cut off"));
            }
        }
    }

    fn chunked(&mut self) -> Result<Bytes, TransportError> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| TransportError::other(format!("malformed chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(Bytes::from(body));
            }
            if body.len() + size > MAX_ANSWER {
                return Err(TransportError::other("the answer is too large"));
            }
            body.extend_from_slice(&self.exact(size)?);
            if !self.line()?.is_empty() {
                return Err(TransportError::other("malformed chunk end"));
            }
        }
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// How far a socket wait may overrun the deadline, to save setting the timeout on every call.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

impl Conn {
    /// Makes sure no socket wait outlasts `deadline` by more than [`TIMEOUT_SLACK`].
    fn bound_by(&mut self, deadline: Instant) -> Result<(), TransportError> {
        let left = remaining(deadline).ok_or_else(|| TransportError::timeout("timed out"))?;
        if !matches!(self.timeout, Some(set) if set <= left + TIMEOUT_SLACK) {
            // Unset first: if the call fails, the next one sets it again.
            self.timeout = None;
            set_timeout(self.stream.tcp(), left)?;
            self.timeout = Some(left);
        }
        Ok(())
    }
}

fn set_timeout(tcp: &TcpStream, timeout: Duration) -> Result<(), TransportError> {
    tcp.set_write_timeout(Some(timeout))
        .and_then(|()| tcp.set_read_timeout(Some(timeout)))
        .map_err(|e| TransportError::io("setting timeouts", &e))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => &tls.sock,
        }
    }

    /// True when an idle connection has neither been closed nor sent anything unasked. Over
    /// TLS, what arrived is read: session tickets and key updates are part of an open
    /// connection, data or a close are not.
    fn still_open(&mut self) -> bool {
        // The usual case, nothing arrived, costs one system call instead of three.
        if nothing_arrived(self.tcp()) {
            return true;
        }
        if self.tcp().set_nonblocking(true).is_err() {
            return false;
        }
        let open = match self {
            Self::Plain(tcp) => {
                matches!(tcp.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Self::Tls(tls) => loop {
                match tls.conn.read_tls(&mut tls.sock) {
                    Ok(0) => break false,
                    Ok(_) => match tls.conn.process_new_packets() {
                        Ok(state)
                            if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {
                        }
                        _ => break false,
                    },
                    Err(e) => break e.kind() == io::ErrorKind::WouldBlock,
                }
            },
        };
        self.tcp().set_nonblocking(false).is_ok() && open
    }
}

/// True when nothing (no data, no close) is waiting on `tcp`: `recv` with `MSG_PEEK | MSG_DONTWAIT`
/// would block. False when it cannot tell.
#[cfg(unix)]
fn nothing_arrived(tcp: &TcpStream) -> bool {
    let peeked = socket2::SockRef::from(tcp).recv_with_flags(
        &mut [std::mem::MaybeUninit::uninit()],
        libc::MSG_PEEK | libc::MSG_DONTWAIT,
    );
    matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[cfg(not(unix))]
fn nothing_arrived(_: &TcpStream) -> bool {
    false
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}

impl TransportError {
    fn io(doing: &str, e: &io::Error) -> Self {
        if is_timeout(e) {
            Self::timeout(format!("timed out {doing}"))
        } else {
            Self::other(format!("{doing}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests;
