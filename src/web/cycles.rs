//! CycleSession: a seat's socket in a real-time game (`/ws/games/{id}` of a game whose
//! kind is real-time, such as `lightcycle`), on the same [`Socket`] skeleton as every
//! socket (bounded queue, heartbeats, rate and size limits, close handshake, 1013 for a
//! client that cannot keep up with the tick rate). Client frames: `join` (`token`),
//! `resign`, `ping`, and the kind's input frames, read by the kind (light cycles: `turn`
//! with `dir`: `up`, `down`, `left`, `right`). Server frames: `arena` (the whole state: on
//! join and after a restart), `tick` (every tick: the kind's tick fields and the status),
//! `countdown`, `game_restarted`, `pong`, `error` (docs/PROTOCOL.md).

use std::sync::Arc;

use actix::prelude::*;
use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::game::kinds::TickKind;
use crate::game::Seat;
use crate::ids::PlayerToken;
use crate::protocol::{ErrorBody, ErrorCode, SharedFrame};
use crate::supervision::cycles::{AttachCycle, CycleFrame, CycleGame, CycleInput, DetachCycle};
use crate::web::socket::Socket;
use crate::web::ws::{Incoming, ReadError};

/// The frames every real-time socket accepts, besides its kind's input frames.
pub const CYCLE_FRAMES: [&str; 3] = ["join", "resign", "ping"];

/// One seat's socket in a real-time game.
pub struct CycleSession {
    socket: Socket,
    game: Addr<CycleGame>,
    kind: &'static TickKind,
    cluster: Arc<Cluster>,
    seat: Option<Seat>,
    joining: bool,
    /// Frames that came while the join was being answered: the game may already have sent
    /// the `arena` frame, so the client may act; they are played once the seat is known.
    held: Vec<String>,
}

/// How many frames a socket may send while its join is being answered.
const HELD_MAX: usize = 8;

impl CycleSession {
    /// A session for an upgraded socket of `game`, of the real-time `kind`.
    pub fn new(socket: Socket, game: Addr<CycleGame>, kind: &'static TickKind, cluster: Arc<Cluster>) -> Self {
        CycleSession { socket, game, kind, cluster, seat: None, joining: false, held: Vec::new() }
    }

    fn is_input(&self, frame_type: &str) -> bool {
        self.kind.input_frames.contains(&frame_type)
    }

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorBody) {
        self.socket.send_error(ctx, error, None);
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, "a frame is a JSON object"));
        };
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or_default();
        if self.joining && self.seat.is_none() && kind != "ping" {
            if self.held.len() < HELD_MAX {
                self.held.push(text.to_owned());
            } else {
                let error = ErrorBody::new(ErrorCode::RateLimited, "wait for the join to be answered")
                    .with("retry_after_ms", 100);
                self.error(ctx, error);
            }
            return;
        }
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
                    let held = std::mem::take(&mut act.held);
                    match answer {
                        Ok(Ok(seat)) => {
                            act.seat = Some(seat);
                            for text in held {
                                act.on_text(ctx, &text);
                            }
                        }
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
            ("resign", None) => self.join_first(ctx),
            (input, None) if self.is_input(input) => self.join_first(ctx),
            ("resign", Some(seat)) => self.game.do_send(CycleInput { seat, input: None }),
            (input, Some(seat)) if self.is_input(input) => match (self.kind.parse_input)(&frame) {
                Ok(input) => self.game.do_send(CycleInput { seat, input: Some(input) }),
                Err(e) => self.error(ctx, ErrorBody::validation(e.field, e.message).with("allowed", e.allowed)),
            },
            _ => {
                let allowed: Vec<&str> = CYCLE_FRAMES.iter().chain(self.kind.input_frames).copied().collect();
                self.error(
                    ctx,
                    ErrorBody::new(ErrorCode::UnknownMessageType, format!("unknown frame type {kind:?}"))
                        .with("allowed", allowed),
                );
            }
        }
    }
}

impl CycleSession {
    fn join_first(&mut self, ctx: &mut Context<Self>) {
        self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, "join first ({\"type\":\"join\",\"token\":…})"));
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
