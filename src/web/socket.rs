//! The socket skeleton both WebSocket kinds (a game seat, the lobby) are built on. `Socket`
//! owns one upgraded connection's plumbing: the bounded outbound queue and the task that
//! drains it into actix-ws, heartbeats, the frame-rate limit, the frame size limits, the
//! close handshake and the slow-client close. Its owner, a session actor, only sees the
//! text frames it has to act on. Every outbound frame (pings and pongs included) goes
//! through the one queue, so a client that stops reading is closed with 1013 and counted,
//! whichever kind of socket it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use tokio::sync::mpsc;

use crate::ids::ConnId;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode, ServerFrame};
use crate::rate::TokenBucket;
use crate::web::frame_guard;

/// Per-connection limits, from `server:` in the config.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Text frames longer than this get PAYLOAD_TOO_LARGE (the connection stays open).
    pub max_frame_bytes: usize,
    /// Frames (or fragmented messages) longer than this are refused at their header:
    /// PAYLOAD_TOO_LARGE and close 1009.
    pub hard_frame_bytes: usize,
    /// Outbound frames queued before the client counts as slow.
    pub outbound_queue: usize,
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// Silence after which the client is considered dead.
    pub client_timeout: Duration,
    /// Time allowed for the first `join`.
    pub join_timeout: Duration,
    /// A lobby socket that sends no frame of its own (`ping`, `watch`) for this long is
    /// closed with 1001; answering the server's pings does not count.
    pub lobby_idle_timeout: Duration,
    /// Longest chat line.
    pub max_chat_chars: usize,
    /// How long a command may wait for its game before the player is told it was not applied
    /// (the hang timeout, the longest held restart delay and a watchdog tick, plus a margin).
    pub command_timeout: Duration,
    /// Sustained frames per second allowed.
    pub rate_per_sec: f64,
    /// Burst of frames allowed.
    pub burst: f64,
}

/// One item of the outbound queue.
enum WsOut {
    Text(Arc<str>),
    Binary(Bytes),
    Ping,
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// A data frame (or reassembled message) from the client.
pub enum Data {
    /// Text, valid UTF-8.
    Text(String),
    /// Binary.
    Binary(Bytes),
}

/// Which kind of socket this is, for logs and gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// `/ws/games/{id}`.
    Game,
    /// `/ws/lobby`.
    Lobby,
    /// `/ws/echo`, only in a conformance build (`--features conformance`).
    Echo,
}

impl SocketKind {
    fn as_str(self) -> &'static str {
        match self {
            SocketKind::Game => "game",
            SocketKind::Lobby => "lobby",
            SocketKind::Echo => "echo",
        }
    }
}

/// The plumbing of one upgraded connection, owned by its session actor.
pub struct Socket {
    /// This connection's id.
    pub conn: ConnId,
    kind: SocketKind,
    ws: actix_ws::Session,
    out: Option<mpsc::Sender<WsOut>>,
    writer: Option<actix_rt::task::JoinHandle<()>>,
    limits: Arc<SessionLimits>,
    metrics: Arc<Metrics>,
    bucket: TokenBucket,
    last_heard: Instant,
    last_data: Instant,
    closing: bool,
}

impl Socket {
    /// The plumbing for `ws`; call [`Socket::start`] from the actor's `started`.
    pub fn new(kind: SocketKind, ws: actix_ws::Session, limits: Arc<SessionLimits>, metrics: Arc<Metrics>) -> Self {
        let now = Instant::now();
        Socket {
            conn: ConnId::next(),
            kind,
            ws,
            out: None,
            writer: None,
            bucket: TokenBucket::new(limits.rate_per_sec, limits.burst, now),
            limits,
            metrics,
            last_heard: now,
            last_data: now,
            closing: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Starts the writer task and the heartbeat. The queue holds `outbound_queue` frames.
    pub fn start<A>(&mut self, ctx: &mut Context<A>, heartbeat: fn(&mut A) -> &mut Socket)
    where
        A: Actor<Context = Context<A>>,
    {
        self.metrics.socket_open(self.kind, 1);
        let (tx, mut rx) = mpsc::channel::<WsOut>(self.limits.outbound_queue);
        let mut ws = self.ws.clone();
        self.writer = Some(actix_rt::spawn(async move {
            while let Some(item) = rx.recv().await {
                let sent = match item {
                    WsOut::Text(text) => ws.text(String::from(&*text)).await,
                    WsOut::Binary(bytes) => ws.binary(bytes).await,
                    WsOut::Ping => ws.ping(b"").await,
                    WsOut::Pong(bytes) => ws.pong(&bytes).await,
                    WsOut::Close(reason) => {
                        let _ = ws.close(reason).await;
                        break;
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
        }));
        self.out = Some(tx);
        ctx.run_interval(self.limits.heartbeat_interval, move |act, ctx| {
            let socket = heartbeat(act);
            if socket.last_heard.elapsed() > socket.limits.client_timeout {
                tracing::debug!(
                    conn = socket.conn.0,
                    kind = socket.kind.as_str(),
                    "client missed its heartbeats; closing"
                );
                return socket.close(ctx, 1001, "heartbeat timeout");
            }
            socket.enqueue(ctx, WsOut::Ping);
        });
    }

    /// Whether the socket is closing (nothing more is read or sent).
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Time since the client last sent a data frame.
    pub fn idle_for(&self) -> Duration {
        self.last_data.elapsed()
    }

    fn enqueue<A>(&mut self, ctx: &mut Context<A>, item: WsOut)
    where
        A: Actor<Context = Context<A>>,
    {
        let Some(out) = &self.out else { return };
        match out.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.slow_client();
                // Counted in rampart_slow_client_disconnects_total; a client can cause it at
                // will, so it is connection-level noise in the log.
                tracing::debug!(
                    conn = self.conn.0,
                    kind = self.kind.as_str(),
                    queue = self.limits.outbound_queue,
                    "closing a slow client: its outbound queue is full"
                );
                self.close(ctx, 1013, "outbound queue full: client too slow");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.close(ctx, 1011, "connection writer stopped"),
        }
    }

    /// Queues a text frame.
    pub fn send_text<A>(&mut self, ctx: &mut Context<A>, text: Arc<str>)
    where
        A: Actor<Context = Context<A>>,
    {
        self.enqueue(ctx, WsOut::Text(text));
    }

    /// Queues a binary frame (only the conformance echo sends one).
    pub fn send_binary<A>(&mut self, ctx: &mut Context<A>, bytes: Bytes)
    where
        A: Actor<Context = Context<A>>,
    {
        self.enqueue(ctx, WsOut::Binary(bytes));
    }

    /// Queues a server frame (error frames are counted by code).
    pub fn send_frame<A>(&mut self, ctx: &mut Context<A>, frame: &ServerFrame)
    where
        A: Actor<Context = Context<A>>,
    {
        if let Some(code) = frame.error_code() {
            self.metrics.error_sent(code);
        }
        self.send_text(ctx, frame.to_text());
    }

    /// Queues an error frame.
    pub fn send_error<A>(&mut self, ctx: &mut Context<A>, error: ErrorBody, in_reply_to: Option<&'static str>)
    where
        A: Actor<Context = Context<A>>,
    {
        self.send_frame(ctx, &ServerFrame::Error { error, in_reply_to });
    }

    /// Closes the connection with `code` and stops the actor.
    pub fn close<A>(&mut self, ctx: &mut Context<A>, code: u16, reason: &'static str)
    where
        A: Actor<Context = Context<A>>,
    {
        let reason = CloseReason { code: CloseCode::from(code), description: Some(reason.to_owned()) };
        self.close_with(ctx, Some(reason));
    }

    /// Closes the connection and stops the actor. Frames already queued go out first, then
    /// the close frame, within a deadline; when the queue is full (a slow client) they are
    /// dropped and only the close frame is attempted. A client that never reads again is cut
    /// by the TCP user timeout.
    fn close_with<A>(&mut self, ctx: &mut Context<A>, reason: Option<CloseReason>)
    where
        A: Actor<Context = Context<A>>,
    {
        if self.closing {
            return;
        }
        self.closing = true;
        let queued = self.out.take().map(|out| out.try_send(WsOut::Close(reason.clone())).is_ok()).unwrap_or(false);
        let writer = self.writer.take();
        let ws = self.ws.clone();
        actix_rt::spawn(async move {
            let deadline = Duration::from_secs(5);
            match writer {
                Some(mut writer) if queued => {
                    if tokio::time::timeout(deadline, &mut writer).await.is_err() {
                        writer.abort();
                    }
                }
                writer => {
                    if let Some(writer) = writer {
                        writer.abort();
                    }
                    let _ = tokio::time::timeout(deadline, ws.close(reason)).await;
                }
            }
        });
        ctx.stop();
    }

    /// Takes one item from the client: answers control frames, enforces the size and rate
    /// limits, completes the close handshake and closes on protocol errors (1009 too large,
    /// 1007 invalid UTF-8, 1002 otherwise). Answers the text of a data frame the session
    /// must act on; a binary frame is answered BAD_REQUEST here (the protocol is JSON text).
    pub fn receive<A>(&mut self, ctx: &mut Context<A>, item: Result<AggregatedMessage, ProtocolError>) -> Option<String>
    where
        A: Actor<Context = Context<A>>,
    {
        match self.receive_data(ctx, item)? {
            Data::Text(text) => Some(text),
            Data::Binary(_) => {
                let error = ErrorBody::new(ErrorCode::BadRequest, "binary frames are not supported; send JSON text");
                self.send_error(ctx, error, None);
                None
            }
        }
    }

    /// [`Socket::receive`], answering binary data frames too (the conformance echo).
    pub fn receive_data<A>(
        &mut self,
        ctx: &mut Context<A>,
        item: Result<AggregatedMessage, ProtocolError>,
    ) -> Option<Data>
    where
        A: Actor<Context = Context<A>>,
    {
        if self.closing {
            return None;
        }
        self.last_heard = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                self.metrics.frame_in();
                self.last_data = self.last_heard;
                self.admit(ctx, text.len()).then(|| Data::Text(String::from(text)))
            }
            Ok(AggregatedMessage::Binary(bytes)) => {
                self.metrics.frame_in();
                self.last_data = self.last_heard;
                self.admit(ctx, bytes.len()).then_some(Data::Binary(bytes))
            }
            Ok(AggregatedMessage::Ping(bytes)) => {
                self.enqueue(ctx, WsOut::Pong(bytes));
                None
            }
            Ok(AggregatedMessage::Pong(_)) => None,
            Ok(AggregatedMessage::Close(reason)) => {
                // The close handshake (RFC 6455 5.5.1): answer with the client's code, then
                // the connection ends cleanly (actix-http refuses a reserved or invalid code
                // as a protocol error before it gets here: Autobahn 7.9).
                tracing::debug!(conn = self.conn.0, kind = self.kind.as_str(), code = ?reason.as_ref().map(|r| u16::from(r.code)), "the client closed the connection");
                let echo = reason.map(|r| CloseReason { code: r.code, description: None });
                self.close_with(ctx, echo);
                None
            }
            Err(e) if frame_guard::is_refusal(&e) || is_continuation_overflow(&e) => {
                self.metrics.frame_refused();
                let limit = self.limits.hard_frame_bytes;
                let error = ErrorBody::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "frame or message exceeds the hard limit of {limit} bytes (a frame may carry {} bytes); the connection is closed",
                        self.limits.max_frame_bytes
                    ),
                )
                .with("max_bytes", self.limits.max_frame_bytes);
                self.send_error(ctx, error, None);
                self.close(ctx, 1009, "frame too large");
                None
            }
            Err(e) if is_invalid_utf8(&e) => {
                tracing::debug!(conn = self.conn.0, kind = self.kind.as_str(), "text frame is not valid UTF-8: {e}");
                self.close(ctx, 1007, "text frame is not valid UTF-8");
                None
            }
            Err(e) => {
                tracing::debug!(conn = self.conn.0, kind = self.kind.as_str(), "websocket protocol error: {e}");
                self.close(ctx, 1002, "protocol error");
                None
            }
        }
    }

    /// The soft size limit and the rate limit of one data frame; errors are answered here.
    fn admit<A>(&mut self, ctx: &mut Context<A>, len: usize) -> bool
    where
        A: Actor<Context = Context<A>>,
    {
        if len > self.limits.max_frame_bytes {
            let error = ErrorBody::new(
                ErrorCode::PayloadTooLarge,
                format!("frame is {len} bytes; the limit is {}", self.limits.max_frame_bytes),
            )
            .with("max_bytes", self.limits.max_frame_bytes);
            self.send_error(ctx, error, None);
            return false;
        }
        if let Err(wait) = self.bucket.take(Instant::now()) {
            let error = ErrorBody::new(ErrorCode::RateLimited, "too many frames; slow down")
                .with("retry_after_ms", wait.as_millis() as u64 + 1);
            self.send_error(ctx, error, None);
            return false;
        }
        true
    }

    /// Called from the actor's `stopped`: the gauge and the writer.
    pub fn stopped(&mut self) {
        self.metrics.socket_open(self.kind, -1);
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

/// actix-ws's own limit on aggregated continuations (the guard normally refuses first).
fn is_continuation_overflow(e: &ProtocolError) -> bool {
    matches!(e, ProtocolError::Io(io) if io.to_string().contains("maximum continuation size"))
}

/// Invalid UTF-8 in a text frame or an aggregated text message: actix-ws reports both as
/// `InvalidData` carrying the `Utf8Error` (or its text).
fn is_invalid_utf8(e: &ProtocolError) -> bool {
    match e {
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            io.get_ref().is_some_and(|inner| inner.is::<std::str::Utf8Error>())
                || io.to_string().to_ascii_lowercase().contains("utf-8")
        }
        _ => false,
    }
}
