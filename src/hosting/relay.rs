//! The Relay is an actor, one per instance (docs/DESIGN.md D11: any instance serves any player).
//! A socket that lands on an instance which does not own its game stays there: its session
//! sends the join, its commands and its leave to the owner through the Relay, and the
//! owner's frames come back the same way. Relayed messages travel over Redis Pub/Sub: each
//! instance subscribes to its own inbox channel `P:inbox:ID` (and to `P:lobby`, the lobby
//! records that changed); there is no RPC of our own between instances.
//!
//! On the owner, each relayed seat is a [`RemoteSession`]: a small actor that the game
//! sees as an ordinary socket route, and that publishes the game's frames to the relaying
//! instance. On the relaying side, replies wake the request that waits for them and frames
//! go to the session by its connection id. Outbound messages leave in order, batched, on
//! one publisher through the `messaging` breaker; a message to an instance nobody listens
//! for (it died) fails at once. Pub/Sub keeps nothing for a subscriber that is away: after
//! every gap in this instance's subscription the owners of its relayed seats are asked to
//! send their frames again (`Wire::Resync`; the seat stays attached), and the seats relayed
//! to its own games are sent theirs. The owner numbers each relayed seat's frames, and the
//! relaying end delivers them in that order (`relay_order::Ordered`: a switchover can open a second
//! route between the same two instances).
//!
//! In a Redis Cluster the same relay runs on sharded Pub/Sub ([`RedisConn::sharded`]): it
//! publishes with `SPUBLISH` and subscribes with `SSUBSCRIBE`, each channel living on the
//! primary of its own slot, so Pub/Sub grows with the shards instead of every message
//! reaching every node. Only the channel commands differ: a batch is then one pipeline per
//! inbox (a pipeline goes whole to one slot's primary; each inbox keeps its order).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::relay_subscription::keep_subscribed;
use crate::cluster::Cluster;
use crate::game::Seat;
use crate::hosting::messages::{ClaimSeat, Command, CommandOutcome, Join, Leave, Route, ToSession};
use crate::hosting::registry::{deliver, Registry};
use crate::hosting::relay_order::{Item, Ordered, Taken, HOLD};
use crate::hosting::relay_proxy::{RemoteSession, StopProxy};
use crate::hosting::relay_wire::{request_id, Order, Reply, Wire};
use crate::ids::{ConnId, GameId, InstanceId, TokenHash};
use crate::metrics::Metrics;
use crate::protocol::{close, ErrorBody, ErrorCode, SharedFrame};
use crate::runtime::system::{Part, SystemActor as _, SystemTree};
use crate::store::redis::RedisConn;

/// Who hears the lobby records announced on `P:lobby` (their JSON): the lobby, wired in
/// by `lib.rs` (the relay only shares the subscription with it).
pub type LobbyListener = Arc<dyn Fn(&str) + Send + Sync>;

/// Most messages published in one pipeline.
const BATCH: usize = 512;

/// Sends a request to `to` and waits for its reply, up to `within`.
#[derive(Message)]
#[rtype(result = "Result<Reply, ErrorBody>")]
pub struct Request {
    /// The owner.
    pub to: InstanceId,
    /// The message; its `req` is set by the relay.
    pub wire: Wire,
    /// How long to wait.
    pub within: Duration,
}

/// Sends a message without waiting for an answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notify {
    /// The receiving instance.
    pub to: InstanceId,
    /// The message.
    pub wire: Wire,
}

/// A local session relays to `owner`: frames for `conn` go to `to`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterConn {
    /// The socket.
    pub conn: ConnId,
    /// The session.
    pub to: Recipient<ToSession>,
    /// Where its game lives; the session is told when that instance dies.
    pub owner: InstanceId,
    /// Told when the owner dies.
    pub lost: Recipient<OwnerLost>,
}

/// The session stopped relaying.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterConn(pub ConnId);

/// The instance a session relays to stopped answering: resolve the game again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OwnerLost;

/// A message from the subscription.
#[derive(Message)]
#[rtype(result = "()")]
enum Incoming {
    Inbox(Wire),
    /// A lobby record that changed, as announced (JSON), for the lobby to apply.
    Lobby(String),
}

struct Proxy {
    local: ConnId,
    game: GameId,
    seat: Option<Seat>,
    /// The seat token's keyed hash, as the last join gave it (a resync joins again with it).
    token_hash: TokenHash,
    /// A resync came while its join was still unanswered: done once the join succeeds.
    resync_wanted: bool,
    addr: Addr<RemoteSession>,
}

struct Relayed {
    to: Recipient<ToSession>,
    owner: InstanceId,
    lost: Recipient<OwnerLost>,
    /// Its frames' order, as far as delivered.
    order: Ordered,
}

/// This instance's relay.
pub struct Relay {
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// Told each lobby record announced on `P:lobby` (the lobby applies it).
    lobby: LobbyListener,
    conn: RedisConn,
    /// The supervision tree it runs under (`relay`).
    tree: Arc<SystemTree>,
    /// The publisher's queue; its task (like the subscriber's) outlives a restart of the
    /// actor: both reach it through its address, which the `Supervisor` keeps.
    outbound: Option<mpsc::UnboundedSender<(InstanceId, Wire)>>,
    next_req: u64,
    pending: HashMap<u64, (oneshot::Sender<Reply>, Instant)>,
    relayed: HashMap<u64, Relayed>,
    proxies: HashMap<(InstanceId, u64), Proxy>,
    /// A second resync after a gap is scheduled.
    resync_again: bool,
}

impl Relay {
    /// The relay of this instance, publishing on `conn`.
    pub fn new(
        cluster: Arc<Cluster>,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        lobby: LobbyListener,
        conn: RedisConn,
        tree: Arc<SystemTree>,
    ) -> Self {
        Relay {
            cluster,
            registry,
            tree,
            metrics,
            lobby,
            conn,
            outbound: None,
            next_req: 1,
            pending: HashMap::new(),
            relayed: HashMap::new(),
            proxies: HashMap::new(),
            resync_again: false,
        }
    }

    fn inbox(&self, instance: &InstanceId) -> String {
        self.conn.key(&format!("inbox:{}", instance.as_str()))
    }

    fn send(&self, to: InstanceId, wire: Wire) {
        if let Some(out) = &self.outbound {
            let _ = out.send((to, wire));
        }
    }

    fn reply(&self, to: InstanceId, req: u64, reply: Reply) {
        self.send(to, Wire::Reply { req, reply });
    }

    /// The publisher: drains the queue in order, a pipeline per batch (in a Redis Cluster,
    /// per inbox in the batch), through the `messaging` breaker. A message to an inbox nobody subscribes to (the instance died)
    /// fails the requests waiting on it at once.
    fn start_publisher(&mut self, ctx: &mut Context<Self>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(InstanceId, Wire)>();
        self.outbound = Some(tx);
        let (conn, messaging, me) = (self.conn.clone(), self.cluster.messaging.clone(), ctx.address());
        let prefix = self.conn.key("inbox:");
        actix_rt::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                // One pipeline, or in a Redis Cluster one per inbox (each to its slot's
                // primary), all sent at once; each message's place in the batch kept.
                let mut pipes: Vec<(Vec<usize>, redis::Pipeline)> = Vec::new();
                let mut pipe_of: HashMap<&InstanceId, usize> = HashMap::new();
                for (i, (to, wire)) in batch.iter().enumerate() {
                    let text = match serde_json::to_string(wire) {
                        Ok(text) => text,
                        Err(e) => {
                            tracing::error!("could not encode a relayed message: {e}");
                            continue;
                        }
                    };
                    let key = if conn.sharded() { to } else { &batch[0].0 };
                    let at = *pipe_of.entry(key).or_insert_with(|| {
                        pipes.push((Vec::new(), redis::pipe()));
                        pipes.len() - 1
                    });
                    pipes[at].0.push(i);
                    pipes[at].1.add_command(conn.publish_cmd(&format!("{prefix}{}", to.as_str()), &text));
                }
                let sent = futures_util::future::join_all(pipes.iter().map(|(_, pipe)| {
                    let (conn, messaging) = (&conn, &messaging);
                    async move {
                        let mut manager = conn.manager();
                        messaging.call(conn.timed("relay publish", pipe.query_async::<Vec<i64>>(&mut manager))).await
                    }
                }))
                .await;
                let mut failed = Vec::new();
                let mut unheard: Vec<usize> = Vec::new();
                for ((at, _), sent) in pipes.iter().zip(sent) {
                    match sent {
                        Ok(receivers) => {
                            unheard.extend(at.iter().zip(receivers).filter(|(_, n)| *n == 0).map(|(i, _)| *i))
                        }
                        Err(e) => {
                            tracing::debug!(messages = at.len(), "could not publish relayed messages: {e}");
                            failed.extend(at.iter().filter_map(|i| request_id(&batch[*i].1)));
                        }
                    }
                }
                // `SPUBLISH` counts the subscribers of the node that took it only, and the
                // shard's other nodes deliver it too: after a switchover a subscriber may be
                // on the replica. An inbox no node of its shard listens on is undeliverable.
                let mut heard: HashMap<&InstanceId, bool> = HashMap::new();
                for i in unheard {
                    let to = &batch[i].0;
                    if !heard.contains_key(to) {
                        let listening = conn.sharded()
                            && conn.listeners(&format!("{prefix}{}", to.as_str())).await.is_ok_and(|n| n > 0);
                        heard.insert(to, listening);
                    }
                    if !heard[to] {
                        failed.extend(request_id(&batch[i].1));
                    }
                }
                if !failed.is_empty() {
                    me.do_send(Undeliverable(failed));
                }
            }
        });
    }

    /// The subscriber: this instance's inbox and the lobby channel, on a RESP3 connection
    /// of its own to the primary (through the Sentinels when configured; in a Redis Cluster
    /// sharded, each on its slot's primary), made again and subscribed again as soon as it
    /// drops ([`keep_subscribed`]).
    fn start_subscriber(&mut self, ctx: &mut Context<Self>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<redis::PushInfo>();
        let channels = [self.inbox(&self.cluster.me), self.conn.key("lobby")];
        let me = ctx.address();
        actix_rt::spawn(keep_subscribed(self.conn.clone(), channels, tx, move || me.do_send(Resubscribed(true))));
        let me2 = ctx.address();
        let lobby_channel = self.conn.key("lobby");
        actix_rt::spawn(async move {
            while let Some(push) = rx.recv().await {
                if !matches!(push.kind, redis::PushKind::Message | redis::PushKind::SMessage) {
                    continue;
                }
                let (Some(channel), Some(payload)) = (push.data.first(), push.data.get(1)) else { continue };
                let (Ok(channel), Ok(payload)) = (
                    redis::from_redis_value::<String>(channel.clone()),
                    redis::from_redis_value::<String>(payload.clone()),
                ) else {
                    continue;
                };
                let incoming = if channel == lobby_channel {
                    Ok(Incoming::Lobby(payload))
                } else {
                    serde_json::from_str(&payload).map(Incoming::Inbox)
                };
                match incoming {
                    Ok(incoming) => me2.do_send(incoming),
                    Err(e) => tracing::debug!("ignored an undecodable relayed message: {e}"),
                }
            }
        });
    }

    /// Owner side: a relayed message for one of this instance's games.
    fn owner_side(&mut self, ctx: &mut Context<Self>, wire: Wire) {
        match wire {
            Wire::Join { req, from, conn, game, token_hash, holding } => {
                let Some(cell) = self.registry.get(&game) else {
                    return self.reply(from, req, Reply::NotHere);
                };
                let Some(addr) = cell.addr() else { return self.reply(from, req, Reply::NotHere) };
                let kind = Some(cell.kind.to_owned());
                let Some(outbound) = self.outbound.clone() else { return };
                let key = (from.clone(), conn);
                let me = self.cluster.me.clone();
                let proxy = self.proxies.entry(key.clone()).or_insert_with(|| {
                    let local = ConnId::next();
                    let session =
                        RemoteSession { out: outbound.clone(), to: from.clone(), conn, me, stream: local.0, seq: 0 };
                    Proxy {
                        local,
                        game: game.clone(),
                        seat: None,
                        token_hash: token_hash.clone(),
                        resync_wanted: false,
                        addr: session.start(),
                    }
                });
                proxy.token_hash = token_hash.clone();
                let route = Route { conn: proxy.local, to: proxy.addr.clone().recipient() };
                let join = addr.join().send(Join { token_hash, route, holding });
                ctx.spawn(
                    async move { tokio::time::timeout(Duration::from_secs(5), join).await }.into_actor(self).map(
                        move |answer, act, _| {
                            let result = match answer {
                                Ok(Ok(result)) => result,
                                _ => Err(ErrorBody::not_answering()),
                            };
                            let mut resync = false;
                            match (&result, act.proxies.get_mut(&key)) {
                                (Ok(seat), Some(proxy)) => {
                                    proxy.seat = Some(*seat);
                                    resync = std::mem::take(&mut proxy.resync_wanted);
                                }
                                (Err(_), Some(proxy)) if proxy.seat.is_none() => {
                                    proxy.addr.do_send(StopProxy);
                                    act.proxies.remove(&key);
                                }
                                _ => {}
                            }
                            act.reply(from, req, Reply::Joined { result, kind });
                            if let Some(proxy) = act.proxies.get(&key).filter(|_| resync) {
                                let _ = act.resync(proxy);
                            }
                        },
                    ),
                );
            }
            Wire::Command { req, from, conn, game, seat, action, within_ms } => {
                let (Some(cell), Some(proxy)) = (self.registry.get(&game), self.proxies.get(&(from.clone(), conn)))
                else {
                    return self.reply(from, req, Reply::NotHere);
                };
                let command = Command {
                    seat,
                    action,
                    reply: proxy.addr.clone().recipient(),
                    deadline: Instant::now() + Duration::from_millis(within_ms),
                };
                let metrics = self.metrics.clone();
                ctx.spawn(async move { deliver(cell, command, metrics).await }.into_actor(self).map(
                    move |delivered, act, _| {
                        let outcome =
                            if delivered.is_ok() { CommandOutcome::Answered } else { CommandOutcome::Expired };
                        act.reply(from, req, Reply::Command { outcome });
                    },
                ));
            }
            Wire::Resync { from, conn } => {
                let key = (from.clone(), conn);
                // Its join is unanswered: its first frames may have gone into the gap too.
                if let Some(proxy) = self.proxies.get_mut(&key).filter(|p| p.seat.is_none()) {
                    proxy.resync_wanted = true;
                    return;
                }
                // A seat this instance does not know (any more), or whose game left: its
                // close may be what was lost. Closed with 1012, its client reconnects and
                // finds the game.
                if !self.proxies.get(&key).is_some_and(|proxy| self.resync(proxy)) {
                    if let Some(proxy) = self.proxies.remove(&key) {
                        proxy.addr.do_send(StopProxy);
                    }
                    let me = Some(self.cluster.me.clone());
                    self.send(from, Wire::Close { conn, code: close::RESTART, order: None, from: me });
                }
            }
            Wire::Leave { from, conn, game, seat } => {
                if let Some(proxy) = self.proxies.remove(&(from, conn)) {
                    if let Some(addr) = self.registry.get(&game).and_then(|c| c.addr()) {
                        addr.leave().do_send(Leave { seat, conn: proxy.local });
                    }
                    proxy.addr.do_send(StopProxy);
                }
            }
            Wire::ClaimSeat { req, from, game, name, token_hash } => {
                let Some(addr) = self.registry.get(&game).and_then(|c| c.addr()) else {
                    return self.reply(from, req, Reply::NotHere);
                };
                let claim = addr.claim().send(ClaimSeat { name, token_hash });
                ctx.spawn(
                    async move { tokio::time::timeout(Duration::from_secs(2), claim).await }.into_actor(self).map(
                        move |answer, act, _| {
                            let result = match answer {
                                Ok(Ok(result)) => result,
                                _ => Err(ErrorBody::not_answering()),
                            };
                            act.reply(from, req, Reply::Seat { result });
                        },
                    ),
                );
            }
            Wire::Fault { req, from, game, fault } => match self.registry.get(&game) {
                Some(cell) => {
                    tracing::warn!(game_id = %game, ?fault, from = %from, "a relayed admin fault was injected");
                    let injected = crate::hosting::registry::inject(cell, fault, self.metrics.clone());
                    ctx.spawn(injected.into_actor(self).map(move |(), act, _| {
                        act.reply(from, req, Reply::Fault { result: Ok(()) });
                    }));
                }
                None => self.reply(from, req, Reply::NotHere),
            },
            Wire::Summary { req, from, game } => {
                let Some(cell) = self.registry.get(&game) else {
                    return self.reply(from, req, Reply::NotHere);
                };
                ctx.spawn(async move { cell.live_summary().await }.into_actor(self).map(move |summary, act, _| {
                    let result = Ok(serde_json::to_value(summary).unwrap_or_default());
                    act.reply(from, req, Reply::Summary { result });
                }));
            }
            Wire::Reply { .. } | Wire::Frame { .. } | Wire::Close { .. } => {}
        }
    }

    /// Has the game of a seat relayed from another instance send it its current frames:
    /// joined again with the same route, the seat stays attached (no REPLACED) and the game
    /// sends what it sends on any join.
    /// False when the game is not here any more, or the seat's proxy stopped (the game
    /// closed it: its close is on its way or was lost).
    fn resync(&self, proxy: &Proxy) -> bool {
        if !proxy.addr.connected() {
            return false;
        }
        let Some(addr) = self.registry.get(&proxy.game).and_then(|c| c.addr()) else { return false };
        if let Some(seat) = proxy.seat {
            let route = Route { conn: proxy.local, to: proxy.addr.clone().recipient() };
            addr.join().do_send(Join { token_hash: proxy.token_hash.clone(), route, holding: Some(seat) });
        }
        true
    }

    /// Proxies of seats relayed by instances that died, and relayed sessions whose owner
    /// died: both are found by the heartbeat.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.pending.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        self.give_up_overdue_gaps();
        if !self.cluster.heartbeats_tell() {
            // The store has not taken this instance's own heartbeat for a whole lease: a
            // peer's lapsed heartbeat says nothing yet (measured: after a Redis failover the
            // owner released the seats its live peer relayed, whose moves then went nowhere).
            return;
        }
        let mut instances: Vec<InstanceId> = self.proxies.keys().map(|(i, _)| i.clone()).collect();
        instances.extend(self.relayed.values().map(|r| r.owner.clone()));
        instances.sort();
        instances.dedup();
        if instances.is_empty() {
            return;
        }
        let cluster = self.cluster.clone();
        let check = async move {
            let mut dead = Vec::new();
            for instance in instances {
                if let Ok(false) = cluster.alive(&instance).await {
                    dead.push(instance);
                }
            }
            dead
        };
        ctx.spawn(check.into_actor(self).map(|dead, act, _| {
            for instance in dead {
                let gone: Vec<(InstanceId, u64)> = act.proxies.keys().filter(|(i, _)| *i == instance).cloned().collect();
                for key in gone {
                    if let Some(proxy) = act.proxies.remove(&key) {
                        tracing::info!(instance = %instance, game_id = %proxy.game, "a relaying instance died; its seat is released");
                        if let (Some(seat), Some(addr)) = (proxy.seat, act.registry.get(&proxy.game).and_then(|c| c.addr())) {
                            addr.leave().do_send(Leave { seat, conn: proxy.local });
                        }
                        proxy.addr.do_send(StopProxy);
                    }
                }
                for relayed in act.relayed.values().filter(|r| r.owner == instance) {
                    relayed.lost.do_send(OwnerLost);
                }
            }
        }));
    }
}

/// The subscription is back after a gap (a failover, a dropped connection): the relayed
/// seats may have missed frames, and their owners are asked to send them again. True:
/// the gap itself (a second resync follows [`RESYNC_AGAIN`] later); false: that second one.
#[derive(Message)]
#[rtype(result = "()")]
struct Resubscribed(bool);

/// How long after a gap the relayed seats are resynced a second time.
const RESYNC_AGAIN: Duration = Duration::from_millis(500);

/// Requests whose messages could not be delivered.
#[derive(Message)]
#[rtype(result = "()")]
struct Undeliverable(Vec<u64>);

impl Actor for Relay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Once: a restart keeps the publisher and the subscriber, which reach this actor
        // through its address.
        if self.outbound.is_none() {
            self.start_publisher(ctx);
            self.start_subscriber(ctx);
        }
        ctx.run_interval(self.cluster.lease / 3, |act, ctx| {
            act.guarded(ctx, |act, ctx| act.sweep(ctx));
        });
        self.tree.up(Part::Relay);
    }
}

/// A restart keeps what the relay holds (requests waiting for replies, relayed seats,
/// proxies, the publisher and subscriber): only the context's timers are set up again.
impl Supervised for Relay {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.tree.restarting(Part::Relay, ctx);
    }
}

crate::runtime::system::system_actor!(Relay, Part::Relay);

impl Handler<Request> for Relay {
    type Result = ResponseFuture<Result<Reply, ErrorBody>>;

    fn handle(&mut self, msg: Request, ctx: &mut Context<Self>) -> Self::Result {
        match self.guarded(ctx, |act, _| act.request(msg)) {
            Some(answer) => answer,
            None => Box::pin(async {
                Err(ErrorBody::new(ErrorCode::GameRestarting, "the relay hit a bug and is restarting; retry shortly")
                    .with("retry_after_ms", 500))
            }),
        }
    }
}

impl Relay {
    fn request(&mut self, msg: Request) -> ResponseFuture<Result<Reply, ErrorBody>> {
        let req = self.next_req;
        self.next_req += 1;
        let mut wire = msg.wire;
        match &mut wire {
            Wire::Join { req: r, .. }
            | Wire::Command { req: r, .. }
            | Wire::ClaimSeat { req: r, .. }
            | Wire::Fault { req: r, .. } => *r = req,
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        self.pending.insert(req, (tx, Instant::now()));
        self.send(msg.to.clone(), wire);
        let within = msg.within;
        Box::pin(async move {
            match tokio::time::timeout(within, rx).await {
                Ok(Ok(reply)) => Ok(reply),
                _ => Err(ErrorBody::new(
                    ErrorCode::GameRestarting,
                    "the server that runs this game did not answer; it is being recovered, retry shortly",
                )
                .with("retry_after_ms", 500)),
            }
        })
    }
}

impl Handler<Notify> for Relay {
    type Result = ();
    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, _| act.send(msg.to, msg.wire));
    }
}

impl Handler<RegisterConn> for Relay {
    type Result = ();
    fn handle(&mut self, msg: RegisterConn, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, _| {
            act.relayed
                .insert(msg.conn.0, Relayed { to: msg.to, owner: msg.owner, lost: msg.lost, order: Ordered::default() })
        });
    }
}

impl Handler<UnregisterConn> for Relay {
    type Result = ();
    fn handle(&mut self, msg: UnregisterConn, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, _| act.relayed.remove(&msg.0 .0));
    }
}

impl Handler<Undeliverable> for Relay {
    type Result = ();
    fn handle(&mut self, msg: Undeliverable, ctx: &mut Context<Self>) {
        // Dropping the sender wakes the waiting request with an error at once.
        self.guarded(ctx, |act, _| {
            for req in msg.0 {
                act.pending.remove(&req);
            }
        });
    }
}

impl Handler<Resubscribed> for Relay {
    type Result = ();
    fn handle(&mut self, msg: Resubscribed, ctx: &mut Context<Self>) {
        // Both ends of a relayed seat usually lose their subscriptions together (one Redis
        // failing over): whichever subscribes again last, its message reaches the other.
        // The relaying end asks the owners for their frames; the owning end sends them to
        // the seats relayed to it at once. Then both again, once, a little later: right
        // after a switchover a subscription on the node just demoted misses what the new
        // primary publishes for a moment (measured on Redis 7.0: the first message, within
        // 100 ms), and the answers to the first resync fall in that moment.
        self.guarded(ctx, |act, ctx| {
            let me = act.cluster.me.clone();
            // What each relayed socket holds behind a gap goes out now; what the owner
            // resends is taken as in its turn (the numbers before it may be lost).
            let conns: Vec<u64> = act.relayed.keys().copied().collect();
            for conn in conns {
                if let Some(relayed) = act.relayed.get_mut(&conn) {
                    let ready = relayed.order.resume();
                    act.deliver_relayed(conn, ready);
                }
            }
            for (conn, relayed) in &act.relayed {
                act.send(relayed.owner.clone(), Wire::Resync { from: me.clone(), conn: *conn });
            }
            for proxy in act.proxies.values_mut() {
                proxy.resync_wanted |= proxy.seat.is_none();
            }
            for proxy in act.proxies.values() {
                let _ = act.resync(proxy);
            }
            if msg.0 && !act.resync_again {
                act.resync_again = true;
                ctx.run_later(RESYNC_AGAIN, |act, ctx| {
                    act.resync_again = false;
                    ctx.notify(Resubscribed(false));
                });
            }
            if msg.0 && (!act.relayed.is_empty() || !act.proxies.is_empty()) {
                tracing::info!(
                    relayed_here = act.relayed.len(),
                    relayed_to_here = act.proxies.len(),
                    "the relay's subscription had a gap: the relayed seats are sent their games' frames again"
                );
            }
        });
    }
}

impl Handler<Incoming> for Relay {
    type Result = ();
    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| act.incoming(msg, ctx));
    }
}

impl Relay {
    fn incoming(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        match msg {
            Incoming::Lobby(change) => (self.lobby)(&change),
            Incoming::Inbox(Wire::Reply { req, reply }) => {
                if let Some((tx, _)) = self.pending.remove(&req) {
                    let _ = tx.send(reply);
                }
            }
            Incoming::Inbox(Wire::Frame { conn, text, order }) => {
                self.relayed_item(ctx, conn, Item::Frame(text), order, None)
            }
            Incoming::Inbox(Wire::Close { conn, code, order, from }) => {
                self.relayed_item(ctx, conn, Item::Close(code), order, from)
            }
            Incoming::Inbox(wire) => self.owner_side(ctx, wire),
        }
    }
}

impl Relay {
    /// A frame or close for a relayed socket, put in its stream's order ([`Ordered`]).
    /// `from`: the sender of an item without an `Order` (when it says).
    fn relayed_item(
        &mut self,
        ctx: &mut Context<Self>,
        conn: u64,
        item: Item,
        order: Option<Order>,
        from: Option<InstanceId>,
    ) {
        let Some(relayed) = self.relayed.get_mut(&conn) else { return };
        // From an instance that is not this socket's owner any more: its game moved.
        if let Some(sender) = order.as_ref().map(|o| &o.from).or(from.as_ref()).filter(|f| **f != relayed.owner) {
            tracing::debug!(conn, from = %sender, owner = %relayed.owner, "dropped a relayed frame from a former owner");
            return;
        }
        let taken = match order {
            Some(order) => relayed.order.take(order.stream, order.seq, item),
            None => Taken { ready: vec![item], ..Taken::default() },
        };
        if taken.late {
            tracing::debug!(conn, "dropped a relayed frame that came after a later one");
        }
        if taken.gap_opened {
            let gap = relayed.order.gap();
            ctx.run_later(HOLD, move |act, ctx| {
                act.guarded(ctx, |act, _| {
                    let Some(relayed) = act.relayed.get_mut(&conn) else { return };
                    if gap.is_some() && relayed.order.gap() == gap {
                        let ready = relayed.order.skip();
                        act.gave_up_gap(conn, ready);
                    }
                });
            });
        }
        if taken.gap_skipped {
            self.gave_up_gap(conn, taken.ready);
        } else {
            self.deliver_relayed(conn, taken.ready);
        }
    }

    /// Frames missing from a relayed socket's stream did not come: what came after them
    /// goes to the socket, and its owner is asked for the seat's current frames.
    /// A socket that what was held closed is not resynced.
    fn gave_up_gap(&mut self, conn: u64, ready: Vec<Item>) {
        tracing::debug!(conn, "relayed frames were missing; the owner is asked for the seat's frames again");
        self.metrics.relay_gap();
        self.deliver_relayed(conn, ready);
        if let Some(relayed) = self.relayed.get(&conn) {
            self.send(relayed.owner.clone(), Wire::Resync { from: self.cluster.me.clone(), conn });
        }
    }

    /// Gaps whose timer was lost (the relay restarted meanwhile) are given up here.
    fn give_up_overdue_gaps(&mut self) {
        let now = Instant::now();
        let overdue: Vec<u64> =
            self.relayed.iter().filter(|(_, r)| r.order.overdue(now)).map(|(conn, _)| *conn).collect();
        for conn in overdue {
            if let Some(relayed) = self.relayed.get_mut(&conn) {
                let ready = relayed.order.skip();
                self.gave_up_gap(conn, ready);
            }
        }
    }

    fn deliver_relayed(&mut self, conn: u64, items: Vec<Item>) {
        for item in items {
            match item {
                Item::Frame(text) => {
                    if let Some(relayed) = self.relayed.get(&conn) {
                        relayed.to.do_send(ToSession::Frame(SharedFrame::text(&text)));
                    }
                }
                Item::Close(code) => {
                    if let Some(relayed) = self.relayed.remove(&conn) {
                        relayed.to.do_send(ToSession::Close { code, reason: close_reason(code) });
                    }
                }
            }
        }
    }
}

/// The reason sent with a close code that crossed from another instance.
fn close_reason(code: u16) -> &'static str {
    match code {
        close::REPLACED => "seat opened on another connection",
        close::RESTART => "server restarting; your game is saved",
        _ => "closed by the server that runs the game",
    }
}
