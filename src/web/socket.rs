//! The socket skeleton every WebSocket kind (a game seat, the lobby, the conformance echo)
//! is built on. `Socket` owns one upgraded connection's plumbing on the session actor's
//! side: the bounded [`Outbox`] its frames wait in (pings and pongs included, so a client
//! that stops reading is closed with 1013 and counted, whichever kind of socket it is),
//! heartbeats, the frame budget (every frame the client sends costs it, pings and pongs
//! included; a client that keeps sending past it is closed with 1008), the frame size limits, the close handshake and the
//! slow-client close. The bytes themselves move in the [`Connection`] stream the actor adds
//! to its context (`src/web/ws.rs`). Its owner, a session actor, only sees the text frames
//! it has to act on.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use tokio::net::TcpStream;

use crate::ids::ConnId;
use crate::metrics::{Metrics, SocketKind};
use crate::protocol::{close, ErrorBody, ErrorCode, ServerFrame, SharedFrame};
use crate::rate::TokenBucket;
use crate::web::gate::ConnSlot;
use crate::web::ws::{Connection, Incoming, Outbox, ReadError, Refused};

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

/// A data frame (or reassembled message) from the client.
pub enum Data {
    /// Text, valid UTF-8.
    Text(String),
    /// Binary.
    Binary(Bytes),
}

/// An upgraded connection, handed over by the HTTP layer: its TCP stream, the bytes read
/// with the upgrade request, and its place under the connection ceiling.
pub struct Upgraded {
    /// The stream.
    pub io: TcpStream,
    /// What the client sent after its request head (its first frames, maybe).
    pub leftover: BytesMut,
    /// Held for the connection's life.
    pub slot: ConnSlot,
}

/// The ping the heartbeat sends: an empty ping frame.
const PING: [u8; 2] = [0x89, 0x00];

/// The plumbing of one upgraded connection, owned by its session actor.
pub struct Socket {
    /// This connection's id.
    pub conn: ConnId,
    kind: SocketKind,
    outbox: Rc<RefCell<Outbox>>,
    limits: Arc<SessionLimits>,
    metrics: Arc<Metrics>,
    /// Every frame the client sends takes a token: data, pings and pongs alike.
    bucket: TokenBucket,
    /// Frames the client may still send past the rate before it is closed with 1008.
    strikes: TokenBucket,
    /// No RATE_LIMITED reply is sent before this: one per refusal, not one per refused frame.
    quiet_until: Option<Instant>,
    last_heard: Instant,
    last_data: Instant,
    closing: bool,
}

impl Socket {
    /// The plumbing for an upgraded connection, and the stream of its client's messages
    /// that the actor adds to its context; call [`Socket::start`] from the actor's `started`.
    pub fn new(
        kind: SocketKind,
        upgraded: Upgraded,
        limits: Arc<SessionLimits>,
        metrics: Arc<Metrics>,
    ) -> (Socket, Connection) {
        let now = Instant::now();
        let outbox = Outbox::new(limits.outbound_queue);
        let connection =
            Connection::new(upgraded.io, upgraded.leftover, upgraded.slot, outbox.clone(), limits.hard_frame_bytes);
        let socket = Socket {
            conn: ConnId::next(),
            kind,
            outbox,
            bucket: TokenBucket::new(limits.rate_per_sec, limits.burst, now),
            strikes: TokenBucket::new(limits.rate_per_sec / 2.0, limits.burst, now),
            quiet_until: None,
            limits,
            metrics,
            last_heard: now,
            last_data: now,
            closing: false,
        };
        (socket, connection)
    }

    /// The limits in force.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Starts the heartbeat.
    pub fn start<A>(&mut self, ctx: &mut Context<A>, heartbeat: fn(&mut A) -> &mut Socket)
    where
        A: Actor<Context = Context<A>>,
    {
        self.metrics.socket_open(self.kind, 1);
        ctx.run_interval(self.limits.heartbeat_interval, move |act, ctx| {
            let socket = heartbeat(act);
            if socket.last_heard.elapsed() > socket.limits.client_timeout {
                tracing::debug!(
                    conn = socket.conn.0,
                    kind = socket.kind.as_str(),
                    "client missed its heartbeats; closing"
                );
                return socket.close(ctx, close::GOING_AWAY, "heartbeat timeout");
            }
            socket.enqueue(ctx, Bytes::from_static(&PING));
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

    fn enqueue<A>(&mut self, ctx: &mut Context<A>, frame: Bytes)
    where
        A: Actor<Context = Context<A>>,
    {
        if self.closing {
            return;
        }
        let pushed = self.outbox.borrow_mut().push(frame);
        if pushed == Err(Refused::Full) {
            self.metrics.slow_client();
            // Counted in rampart_slow_client_disconnects_total; a client can cause it at
            // will, so it is connection-level noise in the log.
            tracing::debug!(
                conn = self.conn.0,
                kind = self.kind.as_str(),
                queue = self.limits.outbound_queue,
                "closing a slow client: its outbound queue is full"
            );
            let reason = CloseReason {
                code: CloseCode::from(close::SLOW),
                description: Some("outbound queue full: client too slow".to_owned()),
            };
            self.close_with(ctx, Some(reason), true);
        }
    }

    /// Queues a frame serialised and framed once (shared with other sockets).
    pub fn send_text<A>(&mut self, ctx: &mut Context<A>, frame: SharedFrame)
    where
        A: Actor<Context = Context<A>>,
    {
        self.enqueue(ctx, frame.wire().clone());
    }

    /// Queues a data frame of this socket's own (only the conformance echo sends one).
    pub fn send_data<A>(&mut self, ctx: &mut Context<A>, payload: &[u8], text: bool)
    where
        A: Actor<Context = Context<A>>,
    {
        let mut frame = BytesMut::with_capacity(payload.len() + 10);
        Parser::write_message(&mut frame, payload, if text { OpCode::Text } else { OpCode::Binary }, true, false);
        self.enqueue(ctx, frame.freeze());
    }

    /// Queues a server frame (error frames are counted by code).
    pub fn send_frame<A>(&mut self, ctx: &mut Context<A>, frame: &ServerFrame)
    where
        A: Actor<Context = Context<A>>,
    {
        if let Some(code) = frame.error_code() {
            self.metrics.error_sent(code);
        }
        self.send_text(ctx, frame.to_frame());
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
        self.close_with(ctx, Some(reason), false);
    }

    /// Closes the connection and stops the actor: frames already queued go out first
    /// (unless `drop_queued`, a slow client's), then the close frame, written by the
    /// connection as it lingers on its own (`src/web/ws.rs`, within its deadline).
    fn close_with<A>(&mut self, ctx: &mut Context<A>, reason: Option<CloseReason>, drop_queued: bool)
    where
        A: Actor<Context = Context<A>>,
    {
        if self.closing {
            return;
        }
        self.closing = true;
        self.outbox.borrow_mut().close(reason, drop_queued);
        ctx.stop();
    }

    /// Takes one item from the client: answers control frames, enforces the size and rate
    /// limits, completes the close handshake and closes on protocol errors (1009 too large,
    /// 1007 invalid UTF-8, 1002 otherwise). Answers the text of a data frame the session
    /// must act on; a binary frame is answered BAD_REQUEST here (the protocol is JSON text).
    pub fn receive<A>(&mut self, ctx: &mut Context<A>, item: Result<Incoming, ReadError>) -> Option<String>
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
    pub fn receive_data<A>(&mut self, ctx: &mut Context<A>, item: Result<Incoming, ReadError>) -> Option<Data>
    where
        A: Actor<Context = Context<A>>,
    {
        if self.closing {
            return None;
        }
        self.last_heard = Instant::now();
        match item {
            Ok(Incoming::Text(text)) => {
                self.metrics.frame_in();
                self.last_data = self.last_heard;
                self.admit(ctx, text.len()).then(|| Data::Text(String::from(text)))
            }
            Ok(Incoming::Binary(bytes)) => {
                self.metrics.frame_in();
                self.last_data = self.last_heard;
                self.admit(ctx, bytes.len()).then_some(Data::Binary(bytes))
            }
            Ok(Incoming::Ping(bytes)) => {
                if !self.within_rate(ctx, false) {
                    return None;
                }
                let mut pong = BytesMut::with_capacity(bytes.len() + 2);
                Parser::write_message(&mut pong, &bytes[..], OpCode::Pong, true, false);
                self.enqueue(ctx, pong.freeze());
                None
            }
            Ok(Incoming::Pong(_)) => {
                // Answers to our pings cost one token each; unsolicited ones count the same.
                self.within_rate(ctx, false);
                None
            }
            Ok(Incoming::Close(reason)) => {
                // The close handshake (RFC 6455 5.5.1): answer with the client's code, then
                // the connection ends cleanly (actix-http's codec refuses a reserved or
                // invalid code as a protocol error before it gets here: Autobahn 7.9).
                tracing::debug!(conn = self.conn.0, kind = self.kind.as_str(), code = ?reason.as_ref().map(|r| u16::from(r.code)), "the client closed the connection");
                let echo = reason.map(|r| CloseReason { code: r.code, description: None });
                self.close_with(ctx, echo, false);
                None
            }
            Err(ReadError::TooLarge) => {
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
                self.close(ctx, close::TOO_BIG, "frame too large");
                None
            }
            Err(ReadError::InvalidUtf8) => {
                tracing::debug!(conn = self.conn.0, kind = self.kind.as_str(), "text message is not valid UTF-8");
                self.close(ctx, close::INVALID_PAYLOAD, "text frame is not valid UTF-8");
                None
            }
            Err(ReadError::Protocol(e)) => {
                tracing::debug!(conn = self.conn.0, kind = self.kind.as_str(), "websocket protocol error: {e}");
                self.close(ctx, close::PROTOCOL_ERROR, "protocol error");
                None
            }
        }
    }

    /// The frame budget: every frame takes a token. A frame past the rate is dropped (a
    /// data frame is answered RATE_LIMITED, at most once per refusal window, so the replies
    /// cost the sender nothing it can multiply) and takes a strike; a client out of strikes
    /// (it kept sending well past the rate after being told) is closed with 1008.
    fn within_rate<A>(&mut self, ctx: &mut Context<A>, data: bool) -> bool
    where
        A: Actor<Context = Context<A>>,
    {
        let now = Instant::now();
        let Err(wait) = self.bucket.take(now) else { return true };
        if self.strikes.take(now).is_err() {
            self.metrics.socket_flood(self.kind.as_str());
            // Counted in rampart_socket_flood_closes_total; a client can cause it at will.
            tracing::debug!(
                conn = self.conn.0,
                kind = self.kind.as_str(),
                "closing a socket that kept sending past its frame rate"
            );
            self.close(ctx, close::POLICY, "too many frames");
            return false;
        }
        if data && self.quiet_until.is_none_or(|until| now >= until) {
            self.quiet_until = Some(now + wait);
            let error = ErrorBody::new(ErrorCode::RateLimited, "too many frames; slow down")
                .with("retry_after_ms", wait.as_millis() as u64 + 1);
            self.send_error(ctx, error, None);
        }
        false
    }

    /// The rate limit and the soft size limit of one data frame; errors are answered here.
    fn admit<A>(&mut self, ctx: &mut Context<A>, len: usize) -> bool
    where
        A: Actor<Context = Context<A>>,
    {
        if !self.within_rate(ctx, true) {
            return false;
        }
        if len > self.limits.max_frame_bytes {
            let error = ErrorBody::new(
                ErrorCode::PayloadTooLarge,
                format!("frame is {len} bytes; the limit is {}", self.limits.max_frame_bytes),
            )
            .with("max_bytes", self.limits.max_frame_bytes);
            self.send_error(ctx, error, None);
            return false;
        }
        true
    }

    /// Called from the actor's `stopped`: the gauge.
    pub fn stopped(&mut self) {
        self.metrics.socket_open(self.kind, -1);
    }
}
