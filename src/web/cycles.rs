//! CycleSession: a seat's socket in a real-time game (`/ws/games/{id}` of a game whose
//! kind is real-time, such as `lightcycle`), on the same [`Socket`] skeleton as every
//! socket (bounded queue, heartbeats, rate and size limits, close handshake, 1013 for a
//! client that cannot keep up with the tick rate). Client frames: `join` (`token`),
//! `resign`, `ping`, and the kind's input frames, read by the kind (light cycles: `turn`
//! with `dir`: `up`, `down`, `left`, `right`). Server frames: `arena` (the whole state: on
//! join and after a restart), `tick` (every tick: the kind's tick fields and the status),
//! `countdown`, `game_restarted`, `pong`, `error` (docs/PROTOCOL.md). Frames are read as
//! strictly as on a turn-based socket (an unknown field is BAD_REQUEST) and a socket holds
//! one seat, answering a second `join` as a turn-based socket does.

use std::sync::Arc;

use actix::prelude::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::cluster::Cluster;
use crate::game::kinds::{InputError, TickKind};
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

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorBody, in_reply_to: Option<&'static str>) {
        self.socket.send_error(ctx, error, in_reply_to);
    }

    /// Reads one text frame as strictly as the turn-based socket reads its own
    /// ([`crate::protocol::ClientFrame::parse`]): JSON object, a string `type` that this socket
    /// accepts, and only that frame's fields (docs/PROTOCOL.md: frames are strict).
    fn parse(&self, text: &str) -> Result<CycleRequest, (ErrorBody, Option<&'static str>)> {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return Err((ErrorBody::new(ErrorCode::BadRequest, "a frame is a JSON object"), None));
        };
        let Some(kind) = frame.get("type").and_then(Value::as_str) else {
            let msg = "frame must be a JSON object with a string field \"type\"";
            return Err((ErrorBody::new(ErrorCode::BadRequest, msg), None));
        };
        if let Some(input) = self.kind.input_frames.iter().copied().find(|t| *t == kind) {
            return Ok(CycleRequest::Input(input, frame));
        }
        let Some(known) = CYCLE_FRAMES.iter().copied().find(|t| *t == kind) else {
            let allowed: Vec<&str> = CYCLE_FRAMES.iter().chain(self.kind.input_frames).copied().collect();
            let error = ErrorBody::new(ErrorCode::UnknownMessageType, format!("unknown frame type {kind:?}"))
                .with("type", kind)
                .with("allowed", allowed);
            return Err((error, None));
        };
        serde_json::from_value::<CommonFrame>(Value::Object(frame))
            .map(CycleRequest::Common)
            .map_err(|e| (ErrorBody::new(ErrorCode::BadRequest, format!("bad {known} frame: {e}")), Some(known)))
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let request = match self.parse(text) {
            Ok(request) => request,
            Err((error, in_reply_to)) => return self.error(ctx, error, in_reply_to),
        };
        if self.joining && !matches!(request, CycleRequest::Common(CommonFrame::Ping { .. })) {
            if self.held.len() < HELD_MAX {
                self.held.push(text.to_owned());
            } else {
                let error = ErrorBody::new(ErrorCode::RateLimited, "wait for the join to be answered")
                    .with("retry_after_ms", 100);
                self.error(ctx, error, None);
            }
            return;
        }
        match (request, self.seat) {
            (CycleRequest::Common(CommonFrame::Ping { id }), _) => {
                self.socket.send_text(ctx, SharedFrame::text(&json!({"type": "pong", "id": id}).to_string()));
            }
            (CycleRequest::Common(CommonFrame::Join { token }), _) => self.join(ctx, &token),
            (CycleRequest::Common(CommonFrame::Resign {}), None) => self.join_first(ctx, "resign"),
            (CycleRequest::Input(input, _), None) => self.join_first(ctx, input),
            (CycleRequest::Common(CommonFrame::Resign {}), Some(seat)) => {
                self.game.do_send(CycleInput { seat, input: None })
            }
            (CycleRequest::Input(input, frame), Some(seat)) => match (self.kind.parse_input)(&frame) {
                Ok(tick_input) => self.game.do_send(CycleInput { seat, input: Some(tick_input) }),
                Err(InputError::Shape(message)) => {
                    self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, message), Some(input))
                }
                Err(InputError::Value { field, message, allowed }) => {
                    self.error(ctx, ErrorBody::validation(field, message).with("allowed", allowed), Some(input))
                }
            },
        }
    }

    /// Attaches this socket to the token's seat. As on a turn-based socket (docs/PROTOCOL.md,
    /// "One seat per socket"): a socket holds one seat; `join` again with its token is
    /// harmless (a fresh `arena`), with the other seat's token FORBIDDEN, and a token that
    /// holds no seat is UNAUTHORIZED, closing (4401) only a socket that holds none.
    fn join(&mut self, ctx: &mut Context<Self>, token: &str) {
        self.joining = true;
        let token_hash = self.cluster.hash(&PlayerToken::from_client(token));
        let attach = AttachCycle { token_hash, viewer: ctx.address().recipient(), holding: self.seat };
        ctx.spawn(self.game.send(attach).into_actor(self).map(|answer, act, ctx| {
            act.joining = false;
            match answer {
                Ok(Ok(seat)) => act.seat = Some(seat),
                Ok(Err(error)) if error.code == ErrorCode::Unauthorized && act.seat.is_none() => {
                    act.error(ctx, error, Some("join"));
                    return act.socket.close(ctx, 4401, "not a seat of this game");
                }
                Ok(Err(error)) => act.error(ctx, error, Some("join")),
                Err(_) => act.error(ctx, ErrorBody::restarting(), Some("join")),
            }
            for text in std::mem::take(&mut act.held) {
                act.on_text(ctx, &text);
            }
        }));
    }

    fn join_first(&mut self, ctx: &mut Context<Self>, frame: &'static str) {
        let error = ErrorBody::new(ErrorCode::BadRequest, "join first ({\"type\":\"join\",\"token\":…})");
        self.error(ctx, error, Some(frame));
    }
}

/// A frame every real-time socket accepts, whatever its kind: strict, like every client frame.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum CommonFrame {
    Join {
        token: String,
    },
    // A struct variant: a unit variant would let unknown fields through.
    Resign {},
    Ping {
        #[serde(default)]
        id: Value,
    },
}

/// One accepted frame: a common one, or one of the kind's input frames (read by the kind).
enum CycleRequest {
    Common(CommonFrame),
    Input(&'static str, Map<String, Value>),
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
