//! CycleSession: a seat's socket in a light-cycle game (`/ws/games/{id}` of a game whose
//! kind is `lightcycle`), on the same [`Socket`] skeleton as every socket (bounded queue,
//! heartbeats, rate and size limits, close handshake, 1013 for a client that cannot keep up
//! with the tick rate). Client frames: `join` (`token`), `turn` (`dir`: `up`,
//! `down`, `left`, `right`), `resign`, `ping`. Server frames: `cycles` (the whole state: on
//! join and after a restart), `tick` (every tick: both heads and the status),
//! `game_restarted`, `pong`, `error` (docs/PROTOCOL.md).

use std::sync::Arc;

use actix::prelude::*;
use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::game::lightcycle::Dir;
use crate::game::Seat;
use crate::ids::PlayerToken;
use crate::protocol::{ErrorBody, ErrorCode, SharedFrame};
use crate::supervision::cycles::{AttachCycle, CycleFrame, CycleGame, CycleInput, DetachCycle};
use crate::web::socket::Socket;
use crate::web::ws::{Incoming, ReadError};

/// The frames a light-cycle socket accepts.
pub const CYCLE_FRAMES: [&str; 4] = ["join", "turn", "resign", "ping"];

/// One seat's socket in a light-cycle game.
pub struct CycleSession {
    socket: Socket,
    game: Addr<CycleGame>,
    cluster: Arc<Cluster>,
    seat: Option<Seat>,
    joining: bool,
}

impl CycleSession {
    /// A session for an upgraded socket of `game`.
    pub fn new(socket: Socket, game: Addr<CycleGame>, cluster: Arc<Cluster>) -> Self {
        CycleSession { socket, game, cluster, seat: None, joining: false }
    }

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorBody) {
        self.socket.send_error(ctx, error, None);
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, "a frame is a JSON object"));
        };
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or_default();
        match (kind, self.seat) {
            ("ping", _) => {
                let id = frame.get("id").cloned().unwrap_or(Value::Null);
                self.socket.send_text(ctx, SharedFrame::text(&json!({"type": "pong", "id": id}).to_string()));
            }
            ("join", None) if !self.joining => {
                let Some(token) = frame.get("token").and_then(Value::as_str) else {
                    return self.error(ctx, ErrorBody::validation("token", "join needs the seat's token"));
                };
                self.joining = true;
                let token_hash = self.cluster.hash(&PlayerToken::from_client(token));
                let attach = AttachCycle { token_hash, viewer: ctx.address().recipient() };
                ctx.spawn(self.game.send(attach).into_actor(self).map(|answer, act, ctx| {
                    act.joining = false;
                    match answer {
                        Ok(Ok(seat)) => act.seat = Some(seat),
                        Ok(Err(error)) if error.code == ErrorCode::Unauthorized => {
                            act.error(ctx, error);
                            act.socket.close(ctx, 4401, "not a seat of this game");
                        }
                        Ok(Err(error)) => act.error(ctx, error),
                        Err(_) => act.error(ctx, ErrorBody::restarting()),
                    }
                }));
            }
            ("join", _) => self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, "this socket has joined already")),
            ("turn" | "resign", None) => {
                self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, "join first ({\"type\":\"join\",\"token\":…})"))
            }
            ("turn", Some(seat)) => match frame.get("dir").and_then(Value::as_str).and_then(Dir::parse) {
                Some(dir) => self.game.do_send(CycleInput { seat, dir: Some(dir) }),
                None => self.error(
                    ctx,
                    ErrorBody::validation("dir", "dir must be up, down, left or right")
                        .with("allowed", vec!["up", "down", "left", "right"]),
                ),
            },
            ("resign", Some(seat)) => self.game.do_send(CycleInput { seat, dir: None }),
            _ => self.error(
                ctx,
                ErrorBody::new(ErrorCode::UnknownMessageType, format!("unknown frame type {kind:?}"))
                    .with("allowed", CYCLE_FRAMES.to_vec()),
            ),
        }
    }
}

impl Actor for CycleSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act: &mut Self| &mut act.socket);
        ctx.run_later(self.socket.limits().join_timeout, |act, ctx| {
            if act.seat.is_none() && !act.joining {
                // As a Connect Four seat: 4401 (docs/PROTOCOL.md, close codes).
                act.socket.close(ctx, 4401, "join timeout");
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if let Some(seat) = self.seat {
            self.game.do_send(DetachCycle { seat, viewer: ctx.address().recipient() });
        }
        self.socket.stopped();
    }
}

impl Handler<CycleFrame> for CycleSession {
    type Result = ();

    fn handle(&mut self, frame: CycleFrame, ctx: &mut Context<Self>) {
        match frame {
            CycleFrame::Text(text) => self.socket.send_text(ctx, text),
            CycleFrame::Close(code, reason) => self.socket.close(ctx, code, reason),
        }
    }
}

impl StreamHandler<Result<Incoming, ReadError>> for CycleSession {
    fn handle(&mut self, item: Result<Incoming, ReadError>, ctx: &mut Context<Self>) {
        if let Some(text) = self.socket.receive(ctx, item) {
            self.on_text(ctx, &text);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
