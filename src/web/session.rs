//! PlayerSession is an actor, one per game WebSocket. It holds at most one seat. It parses
//! and validates client frames (errors per PROTOCOL.md), forwards commands to its game
//! through the registry (so a moved game is found again, and a command caught in the
//! mailbox of an abandoned incarnation is sent again to the new one), and writes the game's
//! frames through its [`Socket`]'s bounded queue. Every command gets exactly one outcome:
//! the change in a `state`, or an error frame.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, ProtocolError};

use crate::game::Seat;
use crate::ids::{GameId, PlayerToken};
use crate::metrics::Metrics;
use crate::protocol::{ClientFrame, ErrorBody, ErrorCode, ServerFrame};
use crate::supervision::game_actor::{Action, Command, CommandOutcome, Join, Leave, ToSession};
use crate::supervision::registry::{GameCell, Registry, Route, RunState};
use crate::web::socket::{Socket, SocketKind};

pub use crate::web::socket::SessionLimits;

/// Commands a connection may have waiting for its game at once.
const MAX_IN_FLIGHT: usize = 8;

/// Frames held while a join is in flight.
const MAX_HELD_FRAMES: usize = 16;

/// How long past a command's deadline its sender waits for the game's answer (the game
/// refuses a command that reaches it after the deadline, so a later answer cannot exist).
const ANSWER_GRACE: Duration = Duration::from_millis(250);

/// One game WebSocket.
pub struct PlayerSession {
    socket: Socket,
    game_id: GameId,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    seat: Option<Seat>,
    joining: bool,
    /// Frames that arrived while the join was in flight: the game may already have sent the
    /// state (and the client answered it) before the join reply reached this actor.
    held: Vec<ClientFrame>,
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
            socket: Socket::new(SocketKind::Game, ws, limits, metrics.clone()),
            game_id,
            registry,
            metrics,
            seat: None,
            joining: false,
            held: Vec::new(),
            game_exists,
            in_flight: 0,
        }
    }

    fn send_error(&mut self, ctx: &mut Context<Self>, error: ErrorBody, in_reply_to: Option<&'static str>) {
        self.socket.send_error(ctx, error, in_reply_to);
    }

    fn join(&mut self, ctx: &mut Context<Self>, token: String) {
        let Some(cell) = self.registry.get(&self.game_id) else {
            self.send_error(ctx, ErrorBody::new(ErrorCode::GameNotFound, "no such game"), Some("join"));
            return self.socket.close(ctx, 4404, "no such game");
        };
        let Some(addr) = cell.addr() else {
            return self.send_error(ctx, restarting_error(), Some("join"));
        };
        self.joining = true;
        let route = Route { conn: self.socket.conn, to: ctx.address().recipient() };
        let join = addr.send(Join { token: PlayerToken::from_client(&token), route, holding: self.seat });
        let deadline = self.socket.limits().join_timeout;
        ctx.spawn(async move { tokio::time::timeout(deadline, join).await }.into_actor(self).map(|result, act, ctx| {
            act.joining = false;
            match result {
                Ok(Ok(Ok(seat))) => {
                    tracing::debug!(conn = act.socket.conn.0, game_id = %act.game_id, seat = seat.as_str(), "player joined seat");
                    act.seat = Some(seat);
                }
                Ok(Ok(Err(error))) => {
                    let unauthorized = error.code == ErrorCode::Unauthorized;
                    act.send_error(ctx, error, Some("join"));
                    if unauthorized && act.seat.is_none() {
                        act.socket.close(ctx, 4401, "seat token refused");
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
        let frame = match ClientFrame::parse(text, self.socket.limits().max_chat_chars) {
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
            ClientFrame::Ping { id } => self.socket.send_frame(ctx, &ServerFrame::Pong { id }),
            _ if self.seat.is_none() => {
                let error = ErrorBody::new(ErrorCode::Unauthorized, "send a join frame with your token first");
                self.send_error(ctx, error, Some(frame.type_name()));
                if !self.joining {
                    self.socket.close(ctx, 4401, "join first");
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
        if self.in_flight >= MAX_IN_FLIGHT {
            let error = ErrorBody::new(ErrorCode::RateLimited, "too many commands waiting for the game; retry shortly")
                .with("retry_after_ms", 100);
            return self.send_error(ctx, error, Some(kind));
        }
        self.in_flight += 1;
        let command = Command {
            seat,
            action,
            reply: ctx.address().recipient(),
            deadline: Instant::now() + self.socket.limits().command_timeout,
        };
        let delivery = deliver(cell, command, self.metrics.clone());
        ctx.spawn(delivery.into_actor(self).map(move |delivered, act, ctx| {
            act.in_flight -= 1;
            if let Err(error) = delivered {
                act.send_error(ctx, error, Some(kind));
            }
        }));
    }
}

/// Delivers a command to its game until the game answers it, following the game when its
/// arbiter is lost: a command caught in the mailbox of an abandoned incarnation (whose
/// thread is held) is sent again to the new incarnation, which is safe because an abandoned
/// incarnation never applies anything. `Err` is the error to give the client: the command
/// was not applied.
async fn deliver(cell: Arc<GameCell>, command: Command, metrics: Arc<Metrics>) -> Result<(), ErrorBody> {
    let give_up = tokio::time::Instant::from_std(command.deadline + ANSWER_GRACE);
    loop {
        // Registered before the generation and the address are read: a move completing
        // after this point wakes it.
        let moved = cell.wait_moved();
        tokio::pin!(moved);
        moved.as_mut().enable();
        let generation = cell.generation.load(Ordering::Acquire);
        let Some(addr) = cell.addr() else { return Err(restarting_error()) };
        let answer = tokio::select! {
            biased;
            answer = addr.send(command.clone()) => Some(answer),
            () = &mut moved => None,
            () = tokio::time::sleep_until(give_up) => return Err(not_applied()),
        };
        match answer {
            Some(Ok(CommandOutcome::Answered)) => return Ok(()),
            Some(Ok(CommandOutcome::Expired)) => return Err(not_applied()),
            // Abandoned (or stopped with its arbiter) before acting: follow the game.
            Some(Ok(CommandOutcome::Moved)) | Some(Err(_)) | None => {
                if cell.generation.load(Ordering::Acquire) == generation {
                    // Not a move: the game is gone or stopping; wait for a move or give up.
                    tokio::select! {
                        () = &mut moved => {}
                        () = tokio::time::sleep_until(give_up) => return Err(not_applied()),
                    }
                }
                metrics.command_replayed();
            }
        }
    }
}

fn not_applied() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::GameRestarting,
        "the game did not take that in time (it is being recovered); it was not applied, retry",
    )
    .with("retry_after_ms", 250)
}

fn restarting_error() -> ErrorBody {
    ErrorBody::new(ErrorCode::GameRestarting, "the game is restarting after a fault; retry shortly")
        .with("retry_after_ms", 250)
}

impl Actor for PlayerSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act: &mut Self| &mut act.socket);
        if !self.game_exists {
            self.send_error(ctx, ErrorBody::new(ErrorCode::GameNotFound, "no such game"), None);
            return self.socket.close(ctx, 4404, "no such game");
        }
        ctx.run_later(self.socket.limits().join_timeout, |act, ctx| {
            if act.seat.is_none() {
                tracing::debug!(conn = act.socket.conn.0, "closing a socket that did not join in time");
                act.socket.close(ctx, 4401, "join timeout");
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.socket.stopped();
        if let (Some(seat), Some(cell)) = (self.seat, self.registry.get(&self.game_id)) {
            if let Some(addr) = cell.addr() {
                addr.do_send(Leave { seat, conn: self.socket.conn });
            }
        }
    }
}

impl Handler<ToSession> for PlayerSession {
    type Result = ();

    fn handle(&mut self, msg: ToSession, ctx: &mut Context<Self>) {
        match msg {
            ToSession::Frame(text) => self.socket.send_text(ctx, text),
            ToSession::Close { code, reason } => {
                self.seat = None; // the game already moved on; do not send Leave
                self.socket.close(ctx, code, reason);
            }
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for PlayerSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        if let Some(text) = self.socket.receive(ctx, item) {
            self.on_text(ctx, &text);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
