//! LobbySession is an actor, one per `/ws/lobby` socket. It pushes a lobby snapshot (the
//! open games and the server's health) whenever it changes — checked every
//! `LOBBY_CHECK`, never re-sending an identical snapshot — and, after a
//! `{"type":"watch","ticket"}` frame, the ticket's place in line (`waitlist` frames with
//! `position` and `eta_secs`) until it is admitted (`waitlist` with the seat). Watching
//! keeps the ticket alive. It is built on the same [`Socket`] as a game seat (bounded
//! queue, heartbeats, rate and size limits, close handshake); a lobby socket whose client
//! sends no frame of its own for `server.lobby_idle_timeout_ms` is closed with 1001.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, ProtocolError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admission::{AdmissionController, WaitlistNotice, Watch};
use crate::health::HealthBoard;
use crate::ids::Ticket;
use crate::metrics::Metrics;
use crate::protocol::GameSummary;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::supervision::registry::Registry;
use crate::web::socket::{SessionLimits, Socket, SocketKind};

/// How often a lobby socket checks whether its snapshot changed.
pub const LOBBY_CHECK: Duration = Duration::from_millis(500);

/// Games listed in a lobby snapshot.
const LOBBY_GAMES: usize = 100;

/// The lobby snapshot every lobby socket sends, built at most once per `LOBBY_CHECK` / 2
/// however many sockets ask for it.
pub struct LobbyView {
    registry: Arc<Registry>,
    health: Arc<HealthBoard>,
    cached: Mutex<Option<(Instant, Arc<str>)>>,
}

impl LobbyView {
    /// A view of `registry`'s games and the server's health.
    pub fn new(registry: Arc<Registry>, health: Arc<HealthBoard>) -> Self {
        LobbyView { registry, health, cached: Mutex::new(None) }
    }

    /// The current `lobby` frame as text.
    pub fn current(&self) -> Arc<str> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, text)) = cached.as_ref() {
            if at.elapsed() < LOBBY_CHECK / 2 {
                return text.clone();
            }
        }
        let games = lobby_games(&self.registry, LOBBY_GAMES);
        let frame = json!({"type": "lobby", "games": games, "health": self.health.report().status.as_str()});
        let text: Arc<str> = Arc::from(frame.to_string());
        *cached = Some((Instant::now(), text.clone()));
        text
    }
}

/// The lobby's games, newest first, at most `limit` (also `GET /api/v1/games`).
pub fn lobby_games(registry: &Registry, limit: usize) -> Vec<GameSummary> {
    let mut games: Vec<_> = registry.all().iter().map(|c| c.summary()).collect();
    games.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.game_id.cmp(&b.game_id)));
    games.truncate(limit);
    games
}

/// One lobby socket.
pub struct LobbySession {
    socket: Socket,
    view: Arc<LobbyView>,
    admission: Addr<AdmissionController>,
    last_snapshot: Option<Arc<str>>,
    watching: Option<Ticket>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum LobbyFrame {
    Watch { ticket: String },
    Ping { id: Option<Value> },
}

impl LobbySession {
    /// A session for an upgraded `/ws/lobby` connection.
    pub fn new(
        ws: actix_ws::Session,
        view: Arc<LobbyView>,
        admission: Addr<AdmissionController>,
        limits: Arc<SessionLimits>,
        metrics: Arc<Metrics>,
    ) -> Self {
        LobbySession {
            socket: Socket::new(SocketKind::Lobby, ws, limits, metrics),
            view,
            admission,
            last_snapshot: None,
            watching: None,
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: &Value) {
        self.socket.send_text(ctx, Arc::from(frame.to_string()));
    }

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorBody) {
        self.socket.send_error(ctx, error, None);
    }

    /// Sends the lobby snapshot if it differs from the last one sent.
    fn snapshot(&mut self, ctx: &mut Context<Self>) {
        let text = self.view.current();
        if self.last_snapshot.as_ref().is_some_and(|last| Arc::ptr_eq(last, &text) || **last == *text) {
            return;
        }
        self.last_snapshot = Some(text.clone());
        self.socket.send_text(ctx, text);
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, "frames are JSON objects")),
        };
        let kind = value.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !["watch", "ping"].contains(&kind.as_str()) {
            return self.error(
                ctx,
                ErrorBody::new(ErrorCode::UnknownMessageType, "the lobby accepts watch and ping")
                    .with("allowed", json!(["watch", "ping"])),
            );
        }
        match serde_json::from_value::<LobbyFrame>(value) {
            Ok(LobbyFrame::Ping { id }) => self.send(ctx, &json!({"type": "pong", "id": id})),
            Ok(LobbyFrame::Watch { ticket }) => match Ticket::parse(&ticket) {
                Some(ticket) => {
                    let previous = self.watching.replace(ticket.clone()).filter(|p| *p != ticket);
                    self.admission.do_send(Watch { ticket, watcher: ctx.address().recipient(), previous });
                }
                None => self.error(ctx, ErrorBody::new(ErrorCode::TicketNotFound, "no such ticket")),
            },
            Err(e) => self.error(ctx, ErrorBody::new(ErrorCode::BadRequest, format!("not a valid {kind} frame: {e}"))),
        }
    }
}

impl Actor for LobbySession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act: &mut Self| &mut act.socket);
        self.snapshot(ctx);
        ctx.run_interval(LOBBY_CHECK, |act, ctx| {
            // A lobby socket must say something now and then (the page pings while it is
            // open): one opened and forgotten does not hold a connection for ever.
            let idle_limit = act.socket.limits().lobby_idle_timeout;
            if act.socket.idle_for() > idle_limit {
                tracing::debug!(
                    conn = act.socket.conn.0,
                    idle_ms = idle_limit.as_millis() as u64,
                    "closing an idle lobby socket"
                );
                return act.socket.close(ctx, 1001, "idle: no frame from the client");
            }
            act.snapshot(ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.socket.stopped();
    }
}

impl Handler<WaitlistNotice> for LobbySession {
    type Result = ();

    fn handle(&mut self, msg: WaitlistNotice, ctx: &mut Context<Self>) {
        let frame = match msg {
            WaitlistNotice::Waiting { position, eta_secs } => {
                json!({"type": "waitlist", "status": "waiting", "position": position, "eta_secs": eta_secs})
            }
            WaitlistNotice::Admitted(grant) => {
                self.watching = None;
                json!({"type": "waitlist", "status": "admitted", "game_id": grant.game_id, "seat": grant.seat, "player_token": grant.player_token})
            }
            WaitlistNotice::Unknown => {
                self.watching = None;
                return self.error(
                    ctx,
                    ErrorBody::new(
                        ErrorCode::TicketNotFound,
                        "this ticket is not in line: it left, expired or never existed",
                    ),
                );
            }
        };
        self.send(ctx, &frame);
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for LobbySession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        if let Some(text) = self.socket.receive(ctx, item) {
            self.on_text(ctx, &text);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
