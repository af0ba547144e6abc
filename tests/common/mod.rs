//! Test harness: starts the real server in-process on port 0 with its own shutdown
//! trigger, and drives it with real HTTP and WebSocket clients. Every wait is a condition
//! polled against a deadline with [`eventually`], never a bare sleep. [`process`] runs the
//! real binary as a child; [`redis_server`] a private `redis-server`.
#![allow(dead_code, missing_docs)]

pub mod peek;
pub mod process;
pub mod redis_server;
pub mod stores;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use awc::ws::{self, Frame};
use futures_util::{SinkExt as _, StreamExt as _};
use rampart::config::{Config, RestartStrategy};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// How often [`eventually`] asks again.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `probe` answers `Ok`, asking every 20 ms; once `within` has passed it panics
/// with `what` and the last `Err` (what the probe saw instead).
pub async fn eventually<T, Fut>(within: Duration, what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(start.elapsed() < within, "{what}: not within {within:?}; last saw {seen}"),
        }
        actix_rt::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a thread that may block (the child-process and Redis harnesses).
pub fn eventually_blocking<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(seen) => assert!(start.elapsed() < within, "{what}: not within {within:?}; last saw {seen}"),
        }
        std::thread::sleep(POLL);
    }
}

/// A config for tests: immediate restarts, no AI think pause, small limits.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.server.workers = 1;
    c.server.game_arbiters = 2;
    c.server.heartbeat_interval_ms = 60_000;
    c.server.client_timeout_ms = 120_000;
    c.ai.think_delay_ms = 0;
    c.supervision.default.strategy = RestartStrategy::Immediate;
    c.supervision.watchdog_interval_ms = 50;
    c.supervision.default.hang_timeout_ms = 500;
    // Every test client is 127.0.0.1: the per-client limits have their own tests.
    c.admission.client_creations_per_sec = 10_000.0;
    c.admission.client_creation_burst = 10_000;
    c.admission.max_tickets_per_client = 1_000_000;
    c
}

pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub client: awc::Client,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        // RAMPART_TEST_LOG=debug shows the server's log for a failing test.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RAMPART_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        actix_rt::spawn(async move {
            rampart::run(listener, config, async {
                let _ = rx.await;
            })
            .await
            .expect("server ran");
        });
        let server = TestServer {
            addr,
            shutdown: Some(tx),
            client: awc::Client::builder().timeout(Duration::from_secs(10)).finish(),
        };
        let probe = || async {
            match server.client.get(server.url("/health")).send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => Err(format!("/health answered {}", resp.status())),
                Err(e) => Err(e.to_string()),
            }
        };
        eventually(DEADLINE, "the server comes up", probe).await;
        server
    }

    /// A handle on a server that runs elsewhere (a child process): the same helpers, no
    /// shutdown of its own.
    pub fn at(addr: SocketAddr) -> TestServer {
        TestServer { addr, shutdown: None, client: awc::Client::builder().timeout(Duration::from_secs(10)).finish() }
    }

    /// Triggers the server's graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST JSON; answers (status, body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut resp = self.client.post(self.url(path)).send_json(&body).await.expect("post");
        let bytes = resp.body().limit(1 << 20).await.expect("body");
        (resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: &'static str, token: Option<&str>) -> (u16, Value, Option<String>) {
        let mut req = self.client.post(self.url(path)).insert_header(("content-type", "application/json"));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        let mut resp = req.send_body(body).await.expect("post");
        let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = resp.body().limit(1 << 20).await.expect("body");
        (resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null), retry)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut resp = self.client.get(self.url(path)).send().await.expect("get");
        let bytes = resp.body().limit(1 << 22).await.expect("body");
        (
            resp.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
        )
    }

    pub async fn metrics(&self) -> String {
        let mut resp = self.client.get(self.url("/metrics")).send().await.expect("metrics");
        String::from_utf8(resp.body().limit(1 << 22).await.expect("body").to_vec()).expect("utf8")
    }

    /// The value of one sample line of /metrics (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Polls /metrics until `sample` reaches at least `value`.
    pub async fn wait_metric(&self, sample: &str, value: f64) {
        let probe = || async move {
            let now = self.metric(sample).await;
            if now >= value {
                Ok(())
            } else {
                Err(now.to_string())
            }
        };
        eventually(DEADLINE, &format!("{sample} reaches {value}"), probe).await;
    }

    /// Creates a game; answers the seat grant.
    pub async fn create(&self, opponent: &str, name: &str) -> Grant {
        let (status, body) =
            self.post("/api/v1/games", json!({"kind":"connect4","opponent":opponent,"player_name":name})).await;
        assert_eq!(status, 201, "{body}");
        Grant::from(&body)
    }

    pub async fn join_rest(&self, game_id: &str, name: &str) -> (u16, Value) {
        self.post(&format!("/api/v1/games/{game_id}/join"), json!({"player_name": name})).await
    }

    /// Opens a socket to a game without joining.
    pub async fn socket(&self, game_id: &str) -> Player {
        self.try_socket(game_id).await.expect("ws connect")
    }

    /// Opens a socket to a game without joining; the refusal when the upgrade is refused.
    pub async fn try_socket(&self, game_id: &str) -> Result<Player, String> {
        let (_, framed) = self
            .client
            .ws(format!("ws://{}/ws/games/{game_id}", self.addr))
            .max_frame_size(1 << 22)
            .connect()
            .await
            .map_err(|e| format!("ws connect: {e}"))?;
        Ok(Player { framed, seen: Vec::new(), last_state: Value::Null })
    }

    /// Opens a `/ws/lobby` socket.
    pub async fn lobby(&self) -> Player {
        let (_, framed) =
            self.client.ws(format!("ws://{}/ws/lobby", self.addr)).max_frame_size(1 << 22).connect().await.expect("ws");
        Player { framed, seen: Vec::new(), last_state: Value::Null }
    }

    /// Opens a socket and joins with the grant's token; waits for the first state.
    pub async fn player(&self, grant: &Grant) -> Player {
        let mut p = self.socket(&grant.game_id).await;
        p.send(json!({"type":"join","token": grant.token})).await;
        p.recv_type("state").await;
        p
    }

    /// Admin fault injection with the token.
    pub async fn fault(&self, game_id: &str, token: &str, body: Value) -> u16 {
        let mut resp = self
            .client
            .post(self.url(&format!("/api/v1/admin/games/{game_id}/fault")))
            .insert_header(("authorization", format!("Bearer {token}")))
            .send_json(&body)
            .await
            .expect("fault");
        let _ = resp.body().await;
        resp.status().as_u16()
    }

    /// Overrides the health status with the admin drill endpoint (`null`: measure again).
    pub async fn force_health(&self, admin_token: &str, status: Value) {
        let mut resp = self
            .client
            .post(self.url("/api/v1/admin/health"))
            .insert_header(("authorization", format!("Bearer {admin_token}")))
            .send_json(&json!({ "status": status }))
            .await
            .expect("health override");
        let body = resp.body().await.expect("body");
        assert_eq!(resp.status().as_u16(), 200, "{}", String::from_utf8_lossy(&body));
    }

    /// Polls every waitlist ticket until all are admitted, asserting at each poll that the
    /// admitted ones are a prefix of `tickets` (FIFO). Answers each ticket's final status.
    pub async fn wait_admitted_in_order(&self, tickets: &[String]) -> Vec<Value> {
        let probe = || async move {
            let mut statuses = Vec::new();
            for t in tickets {
                statuses.push(self.get(&format!("/api/v1/waitlist/{t}")).await.1);
            }
            let admitted: Vec<bool> = statuses.iter().map(|s| s["status"] == "admitted").collect();
            let prefix = admitted.iter().take_while(|a| **a).count();
            assert!(admitted[prefix..].iter().all(|a| !a), "admitted out of order: {admitted:?}");
            if prefix == tickets.len() {
                Ok(statuses)
            } else {
                Err(format!("admitted {admitted:?}"))
            }
        };
        eventually(DEADLINE, "everyone is admitted", probe).await
    }

    /// Polls GET /api/v1/games/{id} until `pred` holds.
    pub async fn wait_summary(&self, game_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let pred = &pred;
        let probe = || async move {
            let (_, body) = self.get(&format!("/api/v1/games/{game_id}")).await;
            if pred(&body) {
                Ok(body)
            } else {
                Err(body.to_string())
            }
        };
        eventually(DEADLINE, "the summary matches", probe).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone, Debug)]
pub struct Grant {
    pub game_id: String,
    pub seat: String,
    pub token: String,
}

impl From<&Value> for Grant {
    fn from(v: &Value) -> Self {
        Grant {
            game_id: v["game_id"].as_str().expect("game_id").to_owned(),
            seat: v["seat"].as_str().expect("seat").to_owned(),
            token: v["player_token"].as_str().expect("token").to_owned(),
        }
    }
}

/// What a socket received.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<u16>),
}

pub struct Player {
    framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    /// Every JSON frame received so far, in order.
    pub seen: Vec<Value>,
    /// The game of the latest `state` frame received.
    pub last_state: Value,
}

impl Player {
    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.framed.send(ws::Message::Text(text.into())).await.expect("send");
    }

    /// The next JSON frame or the close, within the deadline.
    pub async fn next(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.framed.next()).await.expect("no frame before the deadline");
            match frame {
                Some(Ok(Frame::Text(bytes))) => {
                    let v: Value = serde_json::from_slice(&bytes).expect("server sent JSON");
                    if v["type"] == "state" {
                        self.last_state = v["game"].clone();
                    }
                    self.seen.push(v.clone());
                    return Received::Json(v);
                }
                Some(Ok(Frame::Ping(p))) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(Frame::Close(reason))) => return Received::Closed(reason.map(|r| u16::from(r.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// Reads until a frame matches; panics on close or deadline.
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}; seen {:?}", self.seen);
            match self.next().await {
                Received::Json(v) if pred(&v) => return v,
                Received::Json(_) => {}
                Received::Closed(code) => {
                    panic!("socket closed ({code:?}) while waiting for {what}; seen {:?}", self.seen)
                }
            }
        }
    }

    pub async fn recv_type(&mut self, kind: &str) -> Value {
        self.recv_until(kind, |v| v["type"] == kind).await
    }

    /// Waits for an error frame and answers its code.
    pub async fn recv_error(&mut self) -> Value {
        self.recv_type("error").await["error"].clone()
    }

    /// Waits for a state frame satisfying `pred`.
    pub async fn recv_state(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.recv_until("state", |v| v["type"] == "state" && pred(&v["game"])).await["game"].clone()
    }

    /// Reads until the socket closes; answers the close code.
    pub async fn recv_close(&mut self) -> Option<u16> {
        loop {
            if let Received::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Closes the socket as a browser does: a Close frame, then the connection.
    pub async fn close(mut self) {
        let _ = self.framed.send(ws::Message::Close(None)).await;
        let _ = self.framed.close().await;
    }

    pub async fn move_to(&mut self, column: i64) {
        self.send(json!({"type":"move","column":column})).await;
    }

    /// Plays `column` until the game applies it (a `state` past `moves`), asking again while it
    /// is refused (`GAME_RESTARTING` while the store is away, whichever way the game waits it
    /// out); answers the new state, or the refusals once `within` has passed.
    pub async fn play_until_applied(&mut self, column: i64, moves: u64, within: Duration) -> Result<Value, String> {
        let start = Instant::now();
        let mut refusals = Vec::new();
        loop {
            self.move_to(column).await;
            let answer = self
                .recv_until("the move's outcome", |f| {
                    f["type"] == "error" || (f["type"] == "state" && f["game"]["moves"].as_u64() > Some(moves))
                })
                .await;
            if answer["type"] == "state" {
                return Ok(answer["game"].clone());
            }
            refusals.push(answer["error"]["code"].as_str().unwrap_or("?").to_owned());
            if start.elapsed() >= within {
                return Err(format!(
                    "move {column} still refused after {within:?}: {} refusals, the last {:?}",
                    refusals.len(),
                    refusals.last()
                ));
            }
            // Paced, not synchronised: the next attempt is the condition.
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A masked client frame: `first` is the FIN bit and opcode (0x81: a final text frame).
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = header(first, payload.len() as u64, mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A masked client frame header declaring `len` payload bytes.
pub fn header(first: u8, len: u64, mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    match len {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out
}

/// A raw WebSocket client that can stop reading (to play the slow client) or send frames
/// no library would. Frames it sends are masked as RFC 6455 requires.
pub struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    /// A client with a 4 KiB receive buffer (it plays the slow reader).
    pub fn connect(addr: SocketAddr, path: &str) -> RawClient {
        Self::open(addr, path, Some(4096))
    }

    /// A client with the system's default buffers.
    pub fn connect_plain(addr: SocketAddr, path: &str) -> RawClient {
        Self::open(addr, path, None)
    }

    fn open(addr: SocketAddr, path: &str, rcvbuf: Option<usize>) -> RawClient {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("rcvbuf");
        }
        socket.connect(&addr.into()).expect("connect");
        Self::upgrade(socket.into(), addr, path)
            .unwrap_or_else(|(status, head)| panic!("upgrade answered {status}: {head}"))
    }

    /// An upgrade from the loopback address `source` (127.0.0.2, …: one client address per
    /// attacker, the test's own requests staying on 127.0.0.1); answers the client, or the
    /// refusal's status and the response as text.
    pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr, path: &str) -> Result<RawClient, (u16, String)> {
        Self::upgrade(connect_from(source, addr), addr, path)
    }

    fn upgrade(mut stream: TcpStream, addr: SocketAddr, path: &str) -> Result<RawClient, (u16, String)> {
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("handshake");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("handshake response");
            head.push(byte[0]);
        }
        if head.starts_with(b"HTTP/1.1 101") {
            return Ok(RawClient { stream });
        }
        let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0);
        let mut rest = Vec::new();
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.read_to_end(&mut rest);
        head.extend_from_slice(&rest);
        Err((status, String::from_utf8_lossy(&head).into_owned()))
    }

    pub fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.stream.write_all(&frame(0x81, text.as_bytes()))
    }

    /// Writes raw bytes (frames built with [`frame`] and [`header`]).
    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// A second handle on the same connection (a reader thread's).
    pub fn try_clone(&self) -> RawClient {
        RawClient { stream: self.stream.try_clone().expect("clone") }
    }

    /// The next frame as (first byte, payload), or None at EOF or after `timeout`.
    pub fn read_frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        self.stream.set_read_timeout(Some(timeout)).ok()?;
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            self.stream.read_exact(&mut b).ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.stream.read_exact(&mut b).ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        self.stream.read_exact(&mut payload).ok()?;
        Some((head[0], payload))
    }

    /// Reads until the server's close frame: answers the JSON text frames seen and the
    /// close code (None when the connection ended without a close frame).
    pub fn read_to_close(&mut self, timeout: Duration) -> (Vec<Value>, Option<u16>) {
        let start = Instant::now();
        let mut texts = Vec::new();
        while start.elapsed() < timeout {
            match self.read_frame(timeout.saturating_sub(start.elapsed()).max(Duration::from_millis(1))) {
                Some((first, payload)) if first & 0x0f == 0x1 => {
                    texts.push(serde_json::from_slice(&payload).unwrap_or(Value::Null));
                }
                Some((first, payload)) if first & 0x0f == 0x8 => {
                    return (texts, (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])));
                }
                Some(_) => {}
                None => return (texts, None),
            }
        }
        (texts, None)
    }

    /// Whether the server ends the TCP connection (EOF or reset) within `timeout`, reading
    /// and discarding anything before it.
    pub fn sees_eof(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < timeout {
            let _ = self.stream.set_read_timeout(Some(Duration::from_millis(50)));
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Reads frames until a close frame; answers its code. Text frames are skipped.
    pub fn read_until_close(&mut self) -> Option<u16> {
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < Duration::from_secs(30), "no close frame");
            let (first, payload) = self.read_frame(DEADLINE)?;
            if first & 0x0f == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }
}

/// A TCP connection to `addr` from the loopback address `source` (any of 127.0.0.0/8).
pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&SocketAddr::new(source, 0).into()).expect("bind the source address");
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}
