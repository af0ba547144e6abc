//! PlayerSession is an actor, one per game WebSocket. It owns its connection: parses and
//! validates client frames (errors per PROTOCOL.md), forwards commands to its game through
//! the registry (so a moved game is found again), and writes the game's frames through a
//! bounded queue. A client that stops reading fills the queue and is closed with 1013; the
//! game never waits for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use tokio::sync::mpsc;

use crate::game::Seat;
use crate::ids::{ConnId, GameId, PlayerToken};
use crate::metrics::Metrics;
use crate::protocol::{ClientFrame, ErrorBody, ErrorCode, ServerFrame};
use crate::rate::TokenBucket;
use crate::supervision::game_actor::{Action, Command, Join, Leave, ToSession};
use crate::supervision::registry::{Registry, Route, RunState};

/// Commands a connection may have waiting for its game at once.
const MAX_IN_FLIGHT: usize = 8;

/// Frames held while a join is in flight.
const MAX_HELD_FRAMES: usize = 16;

/// Per-connection limits, from `server:` in the config.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Text frames longer than this get PAYLOAD_TOO_LARGE (the connection stays open).
    pub max_frame_bytes: usize,
    /// Frames longer than this cannot be read at all: PAYLOAD_TOO_LARGE and close 1009.
    pub hard_frame_bytes: usize,
    /// Outbound frames queued before the client counts as slow.
    pub outbound_queue: usize,
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// Silence after which the client is considered dead.
    pub client_timeout: Duration,
    /// Time allowed for the first `join`.
    pub join_timeout: Duration,
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

enum WsOut {
    Text(Arc<str>),
    Ping,
    Pong(actix_web::web::Bytes),
    Close(CloseReason),
}

/// One game WebSocket.
pub struct PlayerSession {
    conn: ConnId,
    game_id: GameId,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    limits: Arc<SessionLimits>,
    ws: actix_ws::Session,
    out: Option<mpsc::Sender<WsOut>>,
    writer: Option<actix_rt::task::JoinHandle<()>>,
    seat: Option<Seat>,
    joining: bool,
    /// Frames that arrived while the join was in flight: the game may already have sent the
    /// state (and the client answered it) before the join reply reached this actor.
    held: Vec<ClientFrame>,
    last_heard: Instant,
    bucket: TokenBucket,
    closing: bool,
    game_exists: bool,
    in_flight: usize,
}

impl PlayerSession {
    /// A session for an upgraded connection to `game_id`.
    pub fn new(
        game_id: GameId,
        game_exists: bool,
        ws: actix_ws::Session,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        limits: Arc<SessionLimits>,
    ) -> Self {
        PlayerSession {
            conn: ConnId::next(),
            game_id,
            registry,
            metrics,
            bucket: TokenBucket::new(limits.rate_per_sec, limits.burst, Instant::now()),
            limits,
            ws,
            out: None,
            writer: None,
            seat: None,
            joining: false,
            held: Vec::new(),
            last_heard: Instant::now(),
            closing: false,
            game_exists,
            in_flight: 0,
        }
    }

    fn enqueue(&mut self, ctx: &mut Context<Self>, item: WsOut) {
        let Some(out) = &self.out else { return };
        match out.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.slow_client();
                tracing::info!(conn = self.conn.0, game_id = %self.game_id, queue = self.limits.outbound_queue, "closing a slow client: its outbound queue is full");
                self.close(ctx, 1013, "outbound queue full: client too slow");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.close(ctx, 1011, "connection writer stopped"),
        }
    }

    fn send_frame(&mut self, ctx: &mut Context<Self>, frame: &ServerFrame) {
        if let Some(code) = frame.error_code() {
            self.metrics.error_sent(code);
        }
        self.enqueue(ctx, WsOut::Text(frame.to_text()));
    }

    fn send_error(&mut self, ctx: &mut Context<Self>, error: ErrorBody, in_reply_to: Option<&'static str>) {
        self.send_frame(ctx, &ServerFrame::Error { error, in_reply_to });
    }

    /// Closes the connection and stops the actor. Frames already queued go out first, then
    /// the close frame, within a deadline; when the queue is full (a slow client) they are
    /// dropped and only the close frame is attempted. A client that never reads again is cut
    /// by the TCP user timeout.
    fn close(&mut self, ctx: &mut Context<Self>, code: u16, reason: &'static str) {
        if self.closing {
            return;
        }
        self.closing = true;
        let close = CloseReason { code: CloseCode::from(code), description: Some(reason.to_owned()) };
        let queued = self.out.take().map(|out| out.try_send(WsOut::Close(close.clone())).is_ok()).unwrap_or(false);
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
                    let _ = tokio::time::timeout(deadline, ws.close(Some(close))).await;
                }
            }
        });
        ctx.stop();
    }

    fn join(&mut self, ctx: &mut Context<Self>, token: String) {
        let Some(cell) = self.registry.get(&self.game_id) else {
            self.send_error(ctx, ErrorBody::new(ErrorCode::GameNotFound, "no such game"), Some("join"));
            return self.close(ctx, 4404, "no such game");
        };
        let Some(addr) = cell.addr() else {
            return self.send_error(ctx, restarting_error(), Some("join"));
        };
        self.joining = true;
        let route = Route { conn: self.conn, to: ctx.address().recipient() };
        let join = addr.send(Join { token: PlayerToken::from_client(&token), route });
        let deadline = self.limits.join_timeout;
        ctx.spawn(async move { tokio::time::timeout(deadline, join).await }.into_actor(self).map(|result, act, ctx| {
            act.joining = false;
            match result {
                Ok(Ok(Ok(seat))) => {
                    tracing::debug!(conn = act.conn.0, game_id = %act.game_id, seat = seat.as_str(), "player joined seat");
                    act.seat = Some(seat);
                    for frame in std::mem::take(&mut act.held) {
                        act.dispatch(ctx, frame);
                    }
                }
                Ok(Ok(Err(error))) => {
                    let unauthorized = error.code == ErrorCode::Unauthorized;
                    act.send_error(ctx, error, Some("join"));
                    if unauthorized && act.seat.is_none() {
                        act.close(ctx, 4401, "seat token refused");
                    }
                }
                _ => act.send_error(ctx, restarting_error(), Some("join")),
            }
            for frame in std::mem::take(&mut act.held) {
                act.dispatch(ctx, frame);
            }
        }));
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        if text.len() > self.limits.max_frame_bytes {
            let error = ErrorBody::new(
                ErrorCode::PayloadTooLarge,
                format!("frame is {} bytes; the limit is {}", text.len(), self.limits.max_frame_bytes),
            )
            .with("max_bytes", self.limits.max_frame_bytes);
            return self.send_error(ctx, error, None);
        }
        if let Err(wait) = self.bucket.take(Instant::now()) {
            let error = ErrorBody::new(ErrorCode::RateLimited, "too many frames; slow down")
                .with("retry_after_ms", wait.as_millis() as u64 + 1);
            return self.send_error(ctx, error, None);
        }
        let frame = match ClientFrame::parse(text, self.limits.max_chat_chars) {
            Ok(frame) => frame,
            Err(e) => return self.send_error(ctx, e.error, e.in_reply_to),
        };
        if self.joining && !matches!(frame, ClientFrame::Ping { .. }) {
            if self.held.len() >= MAX_HELD_FRAMES {
                let error =
                    ErrorBody::new(ErrorCode::RateLimited, "wait for the join to finish").with("retry_after_ms", 100);
                return self.send_error(ctx, error, Some(frame.type_name()));
            }
            return self.held.push(frame);
        }
        self.dispatch(ctx, frame);
    }

    fn dispatch(&mut self, ctx: &mut Context<Self>, frame: ClientFrame) {
        match frame {
            ClientFrame::Join { token } => self.join(ctx, token),
            ClientFrame::Ping { id } => self.send_frame(ctx, &ServerFrame::Pong { id }),
            _ if self.seat.is_none() => {
                let error = ErrorBody::new(ErrorCode::Unauthorized, "send a join frame with your token first");
                self.send_error(ctx, error, Some(frame.type_name()));
                if !self.joining {
                    self.close(ctx, 4401, "join first");
                }
            }
            ClientFrame::Move { column } => self.command(ctx, Action::Move(column)),
            ClientFrame::Chat { text } => self.command(ctx, Action::Chat(text)),
            ClientFrame::Resign => self.command(ctx, Action::Resign),
        }
    }

    fn command(&mut self, ctx: &mut Context<Self>, action: Action) {
        let Some(seat) = self.seat else { return };
        let kind = action.type_name();
        let Some(cell) = self.registry.get(&self.game_id) else {
            return self.send_error(
                ctx,
                ErrorBody::new(ErrorCode::GameNotFound, "the game no longer exists"),
                Some(kind),
            );
        };
        if cell.run_state() == RunState::Failed {
            let error = ErrorBody::new(ErrorCode::GameFailed, "this game exceeded its restart limit and is closed");
            return self.send_error(ctx, error, Some(kind));
        }
        let Some(addr) = cell.addr() else {
            return self.send_error(ctx, restarting_error(), Some(kind));
        };
        if self.in_flight >= MAX_IN_FLIGHT {
            let error = ErrorBody::new(ErrorCode::RateLimited, "too many commands waiting for the game; retry shortly")
                .with("retry_after_ms", 100);
            return self.send_error(ctx, error, Some(kind));
        }
        // A request with a deadline, not a fire-and-forget: a command stuck in the mailbox of a
        // hung game (whose thread is then abandoned) is never applied, so the player is told
        // to retry instead of losing the move silently.
        self.in_flight += 1;
        let request = addr.send(Command { seat, action, reply: ctx.address().recipient() });
        let deadline = self.limits.command_timeout;
        ctx.spawn(async move { tokio::time::timeout(deadline, request).await }.into_actor(self).map(
            move |result, act, ctx| {
                act.in_flight -= 1;
                if !matches!(result, Ok(Ok(()))) {
                    let error = ErrorBody::new(
                        ErrorCode::GameRestarting,
                        "the game did not take that in time (it is being recovered); it was not applied, retry",
                    )
                    .with("retry_after_ms", 250);
                    act.send_error(ctx, error, Some(kind));
                }
            },
        ));
    }
}

fn restarting_error() -> ErrorBody {
    ErrorBody::new(ErrorCode::GameRestarting, "the game is restarting after a fault; retry shortly")
        .with("retry_after_ms", 250)
}

impl Actor for PlayerSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.socket_open(1);
        let (tx, mut rx) = mpsc::channel::<WsOut>(self.limits.outbound_queue);
        let mut ws = self.ws.clone();
        self.writer = Some(actix_rt::spawn(async move {
            while let Some(item) = rx.recv().await {
                let sent = match item {
                    WsOut::Text(text) => ws.text(String::from(&*text)).await,
                    WsOut::Ping => ws.ping(b"").await,
                    WsOut::Pong(bytes) => ws.pong(&bytes).await,
                    WsOut::Close(reason) => {
                        let _ = ws.close(Some(reason)).await;
                        break;
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
        }));
        self.out = Some(tx);
        if !self.game_exists {
            self.send_error(ctx, ErrorBody::new(ErrorCode::GameNotFound, "no such game"), None);
            return self.close(ctx, 4404, "no such game");
        }
        ctx.run_later(self.limits.join_timeout, |act, ctx| {
            if act.seat.is_none() {
                tracing::debug!(conn = act.conn.0, "closing a socket that did not join in time");
                act.close(ctx, 4401, "join timeout");
            }
        });
        ctx.run_interval(self.limits.heartbeat_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.limits.client_timeout {
                tracing::debug!(conn = act.conn.0, game_id = %act.game_id, "client missed its heartbeats; closing");
                return act.close(ctx, 1001, "heartbeat timeout");
            }
            act.enqueue(ctx, WsOut::Ping);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.metrics.socket_open(-1);
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
        if let (Some(seat), Some(cell)) = (self.seat, self.registry.get(&self.game_id)) {
            if let Some(addr) = cell.addr() {
                addr.do_send(Leave { seat, conn: self.conn });
            }
        }
    }
}

impl Handler<ToSession> for PlayerSession {
    type Result = ();

    fn handle(&mut self, msg: ToSession, ctx: &mut Context<Self>) {
        match msg {
            ToSession::Frame(text) => self.enqueue(ctx, WsOut::Text(text)),
            ToSession::Close { code, reason } => {
                self.seat = None; // the game already moved on; do not send Leave
                self.close(ctx, code, reason);
            }
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for PlayerSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.last_heard = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                self.metrics.frame_in();
                self.on_text(ctx, &text);
            }
            Ok(AggregatedMessage::Binary(_)) => {
                self.metrics.frame_in();
                self.send_error(
                    ctx,
                    ErrorBody::new(ErrorCode::BadRequest, "binary frames are not supported; send JSON text"),
                    None,
                );
            }
            Ok(AggregatedMessage::Ping(bytes)) => self.enqueue(ctx, WsOut::Pong(bytes)),
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => {
                self.closing = true;
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                let error = ErrorBody::new(
                    ErrorCode::PayloadTooLarge,
                    format!("frame exceeds {} bytes", self.limits.hard_frame_bytes),
                )
                .with("max_bytes", self.limits.max_frame_bytes);
                self.send_error(ctx, error, None);
                self.close(ctx, 1009, "frame too large");
            }
            Err(e) => {
                tracing::debug!(conn = self.conn.0, "websocket protocol error: {e}");
                self.close(ctx, 1002, "protocol error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
