//! The load tool's own client, lean enough to drive tens of thousands of sockets and tens
//! of thousands of frames a second from the same two cores as the server: HTTP/1.1 with
//! keep-alive for the REST calls, and a minimal RFC 6455 client (masked text frames out,
//! unmasked frames in, pings answered) over a `TcpStream` bound to a chosen loopback source
//! address, so 20k+ sockets do not run out of ephemeral ports. No TLS, no extensions: it
//! speaks to Rampart, the bare relay and nothing else.

use std::io;
use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a TCP connection from `source` (any port) to `addr`, with `TCP_NODELAY`.
pub async fn dial(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads until the end of an HTTP head; answers the head and whatever followed it.
async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin), buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(end + 4);
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "HTTP head too long"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed in an HTTP head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn status_of(head: &[u8]) -> u16 {
    std::str::from_utf8(head).ok().and_then(|h| h.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn content_length(head: &[u8]) -> usize {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// One keep-alive HTTP/1.1 connection for JSON requests.
pub struct Http {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    /// An `Authorization` header line, with its CRLF (the admin endpoints).
    auth: String,
}

impl Http {
    /// A connection to `addr` (opened at the first request, again after a close).
    pub fn new(addr: SocketAddr) -> Http {
        Http { addr, host: addr.to_string(), stream: None, auth: String::new() }
    }

    /// The same, sending `Authorization: Bearer token` with every request.
    pub fn with_bearer(addr: SocketAddr, token: &str) -> Http {
        Http { auth: format!("Authorization: Bearer {token}\r\n"), ..Http::new(addr) }
    }

    /// `METHOD path` with a JSON body (or none); answers the status and the JSON body
    /// (`Null` when it is not JSON). One retry on a fresh connection if the kept one died.
    pub async fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<(u16, Value)> {
        match self.once(method, path, body).await {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.stream = None;
                self.once(method, path, body).await
            }
        }
    }

    async fn once(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<(u16, Value)> {
        if self.stream.is_none() {
            self.stream = Some(dial(self.addr, None).await?);
        }
        let stream = self.stream.as_mut().expect("a connection");
        let payload = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            self.host,
            self.auth,
            payload.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let head_len = read_head(stream, &mut buf).await?;
        let status = status_of(&buf[..head_len]);
        let want = content_length(&buf[..head_len]);
        let closing = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase().contains("connection: close");
        while buf.len() < head_len + want {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed in a body"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if closing {
            self.stream = None;
        }
        Ok((status, serde_json::from_slice(&buf[head_len..head_len + want]).unwrap_or(Value::Null)))
    }
}

/// A frame from the server.
#[derive(Debug)]
pub enum Frame {
    /// A text frame.
    Text(Vec<u8>),
    /// A close frame with its code (None without one).
    Close(Option<u16>),
}

/// The reading half of a client WebSocket.
pub struct WsReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    start: usize,
}

/// The writing half of a client WebSocket.
pub struct WsWriter {
    wr: OwnedWriteHalf,
    mask: [u8; 4],
    out: Vec<u8>,
}

/// Upgrades to a WebSocket at `path` on `addr`, from `source`.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>, path: &str) -> io::Result<(WsReader, WsWriter)> {
    let mut stream = dial(addr, source).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let head_len = read_head(&mut stream, &mut buf).await?;
    let status = status_of(&buf[..head_len]);
    if status != 101 {
        return Err(io::Error::other(format!("upgrade answered HTTP {status}")));
    }
    buf.drain(..head_len);
    let (rd, wr) = stream.into_split();
    let mask = fastrand::u32(..).to_be_bytes();
    Ok((WsReader { rd, buf, start: 0 }, WsWriter { wr, mask, out: Vec::with_capacity(128) }))
}

impl WsWriter {
    fn frame(&mut self, opcode: u8, payload: &[u8]) {
        self.out.clear();
        self.out.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            self.out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            self.out.push(0x80 | 126);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(0x80 | 127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.out.extend_from_slice(&self.mask);
        self.out.extend(payload.iter().enumerate().map(|(i, b)| b ^ self.mask[i % 4]));
    }

    /// Sends a text frame.
    pub async fn text(&mut self, text: &[u8]) -> io::Result<()> {
        self.frame(0x1, text);
        self.wr.write_all(&self.out).await
    }

    /// Answers a ping.
    pub async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.frame(0xA, payload);
        self.wr.write_all(&self.out).await
    }
}

/// What one frame read brought: a frame for the caller, or a ping to answer.
pub enum Read {
    /// A frame.
    Frame(Frame),
    /// A ping: answer it with `pong`.
    Ping(Vec<u8>),
    /// Anything else (a pong): nothing to do.
    Other,
}

impl WsReader {
    /// The next frame (or ping). Continuations are not expected from these servers.
    pub async fn next(&mut self) -> io::Result<Read> {
        loop {
            if let Some((read, used)) = parse(&self.buf[self.start..])? {
                self.start += used;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(read);
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let mut chunk = [0u8; 4096];
            let n = self.rd.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Parses one unmasked server frame from the front of `b`: the frame and its length.
fn parse(b: &[u8]) -> io::Result<Option<(Read, usize)>> {
    if b.len() < 2 {
        return Ok(None);
    }
    let opcode = b[0] & 0x0F;
    let (len, mut at) = match b[1] & 0x7F {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize, 10),
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if b[1] & 0x80 != 0 {
        at += 4; // a masked server frame is a protocol error; skip the key all the same
    }
    if b.len() < at + len {
        return Ok(None);
    }
    let payload = b[at..at + len].to_vec();
    let read = match opcode {
        0x1 | 0x2 => Read::Frame(Frame::Text(payload)),
        0x8 => Read::Frame(Frame::Close(payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])))),
        0x9 => Read::Ping(payload),
        _ => Read::Other,
    };
    Ok(Some((read, at + len)))
}
