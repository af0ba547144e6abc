//! PlayerSession is an actor, one per game WebSocket, for every kind of game. It holds at
//! most one seat. It parses and validates client frames by its game's kind
//! ([`ClientFrame::parse_for`]: a turn-based kind's moves and chat, a real-time kind's own
//! input frames; errors per docs/PROTOCOL.md) and takes each command to its game,
//! wherever the game lives: hosted here (through the registry, so a moved game is found
//! again and a command caught in the mailbox of an abandoned incarnation is sent again to
//! the new one), or owned by another instance (through the [`Relay`], invisibly to the
//! client). The game's frames reach the client through its [`Socket`]'s bounded queue.
//! Every command gets exactly one outcome: the change in a `state`, or an error frame.
//! When the instance that owns a relayed game stops answering, the session finds the game
//! again (taking it over here once its lease has lapsed) and joins it there.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::cluster::Cluster;
use crate::game::kinds::Kind;
use crate::game::Seat;
use crate::hosting::messages::{Action, Command, CommandOutcome, Join, Leave, Route, ToSession};
use crate::hosting::registry::{deliver, GameCell, RunState};
use crate::hosting::relay::{self, OwnerLost, RegisterConn, Relay, UnregisterConn};
use crate::hosting::relay_wire::{Reply, Wire};
use crate::hosting::supervisor::{GameSupervisor, Resolve, Resolved};
use crate::ids::{GameId, InstanceId, PlayerToken, TokenHash};
use crate::metrics::Metrics;
use crate::protocol::{close, ClientFrame, ErrorBody, ErrorCode, ServerFrame};
use crate::web::socket::Socket;
use crate::web::ws::{Incoming, ReadError};

pub use crate::web::socket::SessionLimits;

/// Commands a connection may have waiting for its game at once.
const MAX_IN_FLIGHT: usize = 8;

/// Frames held while a join is in flight.
const MAX_HELD_FRAMES: usize = 16;

/// Everything a session reaches its game through.
#[derive(Clone)]
pub struct GameLinks {
    /// Resolves games (and takes them over).
    pub supervisor: Addr<GameSupervisor>,
    /// Token hashes, this instance's id.
    pub cluster: Arc<Cluster>,
    /// Relays to other instances (Redis backend only).
    pub relay: Option<Addr<Relay>>,
    /// Server metrics.
    pub metrics: Arc<Metrics>,
}

/// Where the session's game is.
#[derive(Clone)]
enum Target {
    /// Not joined, or to be found again.
    None,
    /// Hosted here.
    Local(Arc<GameCell>),
    /// Owned by another instance: commands are relayed to it.
    Remote(InstanceId),
}

/// One game WebSocket.
pub struct PlayerSession {
    socket: Socket,
    game_id: GameId,
    /// The game's kind: which frames this socket reads (known at the upgrade, or learnt
    /// from the join's answer).
    kind: &'static Kind,
    links: GameLinks,
    target: Target,
    seat: Option<Seat>,
    /// The keyed hash of the token that holds the seat (to join again elsewhere).
    token_hash: Option<TokenHash>,
    joining: bool,
    /// The last join was answered GAME_RESTARTING (retry): at the join timeout the socket
    /// is closed with 1013 (reconnect and join again), not 4401 (give up).
    join_deferred: bool,
    /// The local game a join in flight is asking (set by the join before it sends): a
    /// socket that closes before the answer reaches it must still leave the seat the game
    /// may already have given it.
    asking: Rc<RefCell<Option<Arc<GameCell>>>>,
    /// Frames that arrived while the join was in flight: the game may already have sent the
    /// state (and the client answered it) before the join reply reached this actor.
    held: Vec<ClientFrame>,
    in_flight: usize,
    game_exists: bool,
}

/// The answer to a join, wherever it was made.
enum Joined {
    Seat(Seat, Target, &'static Kind),
    Refused(ErrorBody),
    NotFound,
}

impl PlayerSession {
    /// A session for an upgraded connection to `game_id` of `kind` (`game_exists`: false
    /// closes it at once with GAME_NOT_FOUND and 4404).
    pub fn new(game_id: GameId, kind: &'static Kind, game_exists: bool, socket: Socket, links: GameLinks) -> Self {
        PlayerSession {
            socket,
            game_id,
            kind,
            links,
            target: Target::None,
            seat: None,
            token_hash: None,
            joining: false,
            join_deferred: false,
            asking: Rc::new(RefCell::new(None)),
            held: Vec::new(),
            in_flight: 0,
            game_exists,
        }
    }

    fn send_error(&mut self, ctx: &mut Context<Self>, error: ErrorBody, in_reply_to: Option<&'static str>) {
        self.socket.send_error(ctx, error, in_reply_to);
    }

    /// Finds the game and attaches this socket to the seat of `token_hash` there.
    fn attach(&mut self, ctx: &mut Context<Self>, token_hash: TokenHash) -> ResponseActFuture<Self, Joined> {
        let links = self.links.clone();
        let (game_id, conn, holding) = (self.game_id.clone(), self.socket.conn, self.seat);
        let route = Route { conn, to: ctx.address().recipient() };
        let lost = ctx.address().recipient::<OwnerLost>();
        let join_timeout = self.socket.limits().join_timeout;
        let asking = self.asking.clone();
        let default_kind = self.kind;
        let work = async move {
            // A relayed join that finds its owner gone (it died a moment ago) looks again:
            // the game is taken over once the dead owner's lease lapses.
            let until = tokio::time::Instant::now() + join_timeout;
            loop {
                let resolved = links.supervisor.send(Resolve(game_id.clone())).await;
                let lease = match resolved {
                    Ok(Resolved::Local(cell)) => {
                        *asking.borrow_mut() = Some(Arc::clone(&cell));
                        return join_local(cell, token_hash, route, holding, until).await;
                    }
                    Ok(Resolved::Remote(lease)) => lease,
                    Ok(Resolved::NotFound) => return Joined::NotFound,
                    Ok(Resolved::Unavailable(error)) => return Joined::Refused(error),
                    Err(_) => return Joined::Refused(ErrorBody::restarting()),
                };
                let Some(relay) = links.relay.clone() else { return Joined::Refused(ErrorBody::restarting()) };
                // Registered first: the owner's first state may overtake its reply.
                relay.do_send(RegisterConn {
                    conn,
                    to: route.to.clone(),
                    owner: lease.instance.clone(),
                    lost: lost.clone(),
                });
                let wire = Wire::Join {
                    req: 0,
                    from: links.cluster.me.clone(),
                    conn: conn.0,
                    game: game_id.clone(),
                    token_hash: token_hash.clone(),
                    holding,
                };
                // An owner that does not answer within half a lease is probably paused or
                // dying: look again (its heartbeat lapses within a lease) rather than wait.
                let attempt = (links.cluster.lease / 2).max(Duration::from_millis(300));
                let within = until.saturating_duration_since(tokio::time::Instant::now()).min(attempt);
                let asked = relay.send(relay::Request { to: lease.instance.clone(), wire, within }).await;
                match asked {
                    Ok(Ok(Reply::Joined { result: Ok(seat), kind })) => {
                        let kind = kind.as_deref().and_then(crate::game::kinds::by_name).unwrap_or(default_kind);
                        return Joined::Seat(seat, Target::Remote(lease.instance), kind);
                    }
                    Ok(Ok(Reply::Joined { result: Err(error), .. })) => {
                        relay.do_send(UnregisterConn(conn));
                        return Joined::Refused(error);
                    }
                    // Not there (any more), or not answering: look again while time remains.
                    _ => {
                        relay.do_send(UnregisterConn(conn));
                        if tokio::time::Instant::now() + Duration::from_millis(100) >= until {
                            return Joined::Refused(ErrorBody::restarting());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        };
        Box::pin(work.into_actor(self))
    }

    fn join(&mut self, ctx: &mut Context<Self>, token: String) {
        self.joining = true;
        let hash = self.links.cluster.hash(&PlayerToken::from_client(&token));
        let attach = self.attach(ctx, hash.clone());
        ctx.spawn(attach.map(move |joined, act, ctx| {
            act.joining = false;
            match joined {
                Joined::Seat(seat, target, kind) => {
                    tracing::debug!(conn = act.socket.conn.0, game_id = %act.game_id, seat = seat.as_str(), "player joined seat");
                    act.kind = kind;
                    act.seat = Some(seat);
                    act.links.cluster.seen(hash.clone());
                    act.token_hash = Some(hash);
                    act.target = target;
                }
                Joined::NotFound => {
                    act.send_error(ctx, ErrorBody::game_not_found(), Some("join"));
                    return act.socket.close(ctx, close::NOT_FOUND, "no such game");
                }
                Joined::Refused(error) => {
                    let unauthorized = error.code == ErrorCode::Unauthorized;
                    act.join_deferred = error.code == ErrorCode::GameRestarting;
                    act.send_error(ctx, error, Some("join"));
                    if unauthorized && act.seat.is_none() {
                        return act.socket.close(ctx, close::UNAUTHORIZED, "seat token refused");
                    }
                }
            }
            for frame in std::mem::take(&mut act.held) {
                act.dispatch(ctx, frame);
            }
        }));
    }

    /// The game's owner stopped answering: find the game again (it is taken over once its
    /// lease lapses) and join it there with the same seat.
    fn rejoin(&mut self, ctx: &mut Context<Self>) {
        let Some(hash) = self.token_hash.clone() else { return };
        if self.joining {
            return;
        }
        if let (Target::Remote(_), Some(relay)) = (&self.target, &self.links.relay) {
            relay.do_send(UnregisterConn(self.socket.conn));
        }
        self.target = Target::None;
        self.joining = true;
        let previous = self.seat.take();
        let attach = self.attach(ctx, hash);
        ctx.spawn(attach.map(move |joined, act, ctx| {
            act.joining = false;
            match joined {
                Joined::Seat(seat, target, kind) => {
                    act.kind = kind;
                    tracing::info!(conn = act.socket.conn.0, game_id = %act.game_id, "the game's owner changed; the seat followed it");
                    act.seat = Some(seat);
                    act.target = target;
                }
                Joined::NotFound => {
                    act.send_error(ctx, ErrorBody::new(ErrorCode::GameNotFound, "the game no longer exists"), None);
                    return act.socket.close(ctx, close::NOT_FOUND, "no such game");
                }
                Joined::Refused(error) => {
                    // Still holding the seat on paper: the next command tries again.
                    act.seat = previous;
                    tracing::debug!(conn = act.socket.conn.0, game_id = %act.game_id, "could not follow the game to its new owner yet: {}", error.message);
                }
            }
            for frame in std::mem::take(&mut act.held) {
                act.dispatch(ctx, frame);
            }
        }));
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let frame = match ClientFrame::parse_for(text, self.socket.limits().max_chat_chars, self.kind) {
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
            // A real-time socket answers a frame before `join` as a bad request (docs/PROTOCOL.md,
            // "Light cycles"); a turn-based one closes.
            _ if self.seat.is_none() && self.kind.ticks().is_some() => {
                let error = ErrorBody::new(ErrorCode::BadRequest, "join first ({\"type\":\"join\",\"token\":…})");
                self.send_error(ctx, error, Some(frame.type_name()));
            }
            _ if self.seat.is_none() => {
                let error = ErrorBody::new(ErrorCode::Unauthorized, "send a join frame with your token first");
                self.send_error(ctx, error, Some(frame.type_name()));
                if !self.joining {
                    self.socket.close(ctx, close::UNAUTHORIZED, "join first");
                }
            }
            ClientFrame::Move { column } => self.command(ctx, Action::Move(column), "move"),
            ClientFrame::Chat { text } => self.command(ctx, Action::Chat(text), "chat"),
            ClientFrame::Resign => self.command(ctx, Action::Resign, "resign"),
            ClientFrame::Input { frame, input } => self.command(ctx, Action::Input(input), frame),
        }
    }

    /// Takes `action` (from a `kind` frame) to the game, wherever it is.
    fn command(&mut self, ctx: &mut Context<Self>, action: Action, kind: &'static str) {
        let Some(seat) = self.seat else { return };
        if self.in_flight >= MAX_IN_FLIGHT {
            let error = ErrorBody::new(ErrorCode::RateLimited, "too many commands waiting for the game; retry shortly")
                .with("retry_after_ms", 100);
            return self.send_error(ctx, error, Some(kind));
        }
        let deadline = Instant::now() + self.socket.limits().command_timeout;
        match self.target.clone() {
            Target::Local(cell) => {
                if cell.run_state() == RunState::Failed {
                    let error = ErrorBody::game_failed();
                    return self.send_error(ctx, error, Some(kind));
                }
                self.in_flight += 1;
                let command = Command { seat, action, reply: ctx.address().recipient(), deadline };
                let delivery = deliver(cell, command, self.links.metrics.clone());
                ctx.spawn(delivery.into_actor(self).map(move |delivered, act, ctx| {
                    act.in_flight -= 1;
                    if let Err(error) = delivered {
                        act.send_error(ctx, error, Some(kind));
                    }
                }));
            }
            Target::Remote(owner) => {
                let Some(relay) = self.links.relay.clone() else { return };
                self.in_flight += 1;
                let within = deadline.saturating_duration_since(Instant::now());
                let wire = Wire::Command {
                    req: 0,
                    from: self.links.cluster.me.clone(),
                    conn: self.socket.conn.0,
                    game: self.game_id.clone(),
                    seat,
                    action,
                    within_ms: within.as_millis() as u64,
                };
                let asked = relay.send(relay::Request { to: owner, wire, within: within + Duration::from_millis(500) });
                ctx.spawn(asked.into_actor(self).map(move |answer, act, ctx| {
                    act.in_flight -= 1;
                    match answer {
                        Ok(Ok(Reply::Command { outcome: CommandOutcome::Answered })) => {}
                        Ok(Ok(Reply::Command { .. })) => act.send_error(ctx, ErrorBody::not_applied(), Some(kind)),
                        // The owner did not answer or no longer hosts the game: tell the
                        // player, and follow the game to where it is now.
                        Ok(Ok(Reply::NotHere)) | Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
                            act.send_error(ctx, ErrorBody::not_applied(), Some(kind));
                            act.rejoin(ctx);
                        }
                    }
                }));
            }
            Target::None => {
                // Only after a refused rejoin (the seat kept on paper): try it again, as
                // that refusal promised, instead of answering "restarting" for ever.
                self.send_error(ctx, ErrorBody::restarting(), Some(kind));
                self.rejoin(ctx);
            }
        }
    }
}

/// Joins a game hosted here, following it when it moves: a join caught in the mailbox of
/// an incarnation whose thread is held (a hang) is sent again to the incarnation the
/// watchdog starts on a fresh thread, as [`deliver`] does for commands, so the socket hears
/// when the game has moved (`hang_timeout_ms` and a watchdog interval), not when the hang
/// ends. Joining twice is harmless: an abandoned incarnation attaches nothing (`guarded`
/// refuses it), and the same socket on the same seat is the same route.
async fn join_local(
    cell: Arc<GameCell>,
    token_hash: TokenHash,
    route: Route,
    holding: Option<Seat>,
    until: tokio::time::Instant,
) -> Joined {
    loop {
        // Registered before the generation and the address are read: a move completing
        // after this point wakes it.
        let moved = cell.wait_moved();
        tokio::pin!(moved);
        moved.as_mut().enable();
        let generation = cell.generation.load(Ordering::Acquire);
        let Some(addr) = cell.addr() else { return Joined::Refused(ErrorBody::restarting()) };
        let join = addr.join().send(Join { token_hash: token_hash.clone(), route: route.clone(), holding });
        let answer = tokio::select! {
            biased;
            answer = join => Some(answer),
            () = &mut moved => None,
            () = tokio::time::sleep_until(until) => return Joined::Refused(ErrorBody::restarting()),
        };
        let refusal = match answer {
            Some(Ok(Ok(seat))) => {
                let kind = crate::game::kinds::by_name(cell.kind).unwrap_or(&crate::game::kinds::KINDS[0]);
                return Joined::Seat(seat, Target::Local(Arc::clone(&cell)), kind);
            }
            Some(Ok(Err(error))) => error,
            Some(Err(_)) => ErrorBody::restarting(),
            None => continue, // moved before this incarnation answered: ask the new one
        };
        if cell.generation.load(Ordering::Acquire) == generation {
            return Joined::Refused(refusal);
        }
        // Refused by an incarnation the watchdog abandoned meanwhile: wait for the new one
        // (its address may not be set yet), then ask it.
        if cell.addr().is_none_or(|now| now == addr) {
            tokio::select! {
                () = &mut moved => {}
                () = tokio::time::sleep_until(until) => return Joined::Refused(refusal),
            }
        }
    }
}

impl Actor for PlayerSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act: &mut Self| &mut act.socket);
        if !self.game_exists {
            self.send_error(ctx, ErrorBody::game_not_found(), None);
            return self.socket.close(ctx, close::NOT_FOUND, "no such game");
        }
        ctx.run_later(self.socket.limits().join_timeout, |act, ctx| {
            if act.seat.is_none() && !act.joining {
                if act.join_deferred {
                    // The player did everything right: the game is still restarting (a
                    // failover longer than the join timeout). Reconnecting keeps the seat.
                    tracing::debug!(conn = act.socket.conn.0, game_id = %act.game_id, "closing a socket whose join is still answered GAME_RESTARTING at the join timeout; the player reconnects");
                    return act.socket.close(ctx, close::TRY_AGAIN_LATER, "the game is restarting; reconnect and join again");
                }
                tracing::debug!(conn = act.socket.conn.0, "closing a socket that did not join in time");
                act.socket.close(ctx, close::UNAUTHORIZED, "join timeout");
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.socket.stopped();
        let asked = self.asking.borrow_mut().take();
        if let (true, Some(cell)) = (self.joining, asked) {
            // Closed while its join was in flight: the game may have given this connection
            // a seat whose answer never arrived. A Leave for each seat, after the Join in
            // the game's mailbox, frees whichever this connection holds (a Leave of another
            // connection's seat changes nothing).
            if let Some(addr) = cell.addr() {
                for seat in Seat::ALL {
                    addr.leave().do_send(Leave { seat, conn: self.socket.conn });
                }
            }
        }
        let Some(seat) = self.seat else { return };
        if let Some(hash) = self.token_hash.clone() {
            self.links.cluster.seen(hash);
        }
        match &self.target {
            Target::Local(cell) => {
                if let Some(addr) = cell.addr() {
                    addr.leave().do_send(Leave { seat, conn: self.socket.conn });
                }
            }
            Target::Remote(owner) => {
                if let Some(relay) = &self.links.relay {
                    relay.do_send(UnregisterConn(self.socket.conn));
                    let wire = Wire::Leave {
                        from: self.links.cluster.me.clone(),
                        conn: self.socket.conn.0,
                        game: self.game_id.clone(),
                        seat,
                    };
                    relay.do_send(relay::Notify { to: owner.clone(), wire });
                }
            }
            Target::None => {}
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

impl Handler<OwnerLost> for PlayerSession {
    type Result = ();

    fn handle(&mut self, _: OwnerLost, ctx: &mut Context<Self>) {
        if matches!(self.target, Target::Remote(_)) {
            self.rejoin(ctx);
        }
    }
}

impl StreamHandler<Result<Incoming, ReadError>> for PlayerSession {
    fn handle(&mut self, item: Result<Incoming, ReadError>, ctx: &mut Context<Self>) {
        if let Some(text) = self.socket.receive(ctx, item) {
            self.on_text(ctx, &text);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
