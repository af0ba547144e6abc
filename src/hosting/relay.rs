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
use tokio::sync::mpsc;

mod answers;
mod owner;
mod relayed;
mod requests;

use requests::{first_request_number, Pending, FIRST_FRAME_WITHIN, RESEND_CHECK};

use super::relay_subscription::keep_subscribed;
use crate::cluster::Cluster;
use crate::game::Seat;
use crate::hosting::messages::{Leave, ToSession};
use crate::hosting::registry::Registry;
use crate::hosting::relay_order::{Item, Ordered};
use crate::hosting::relay_proxy::{RemoteSession, StopProxy};
use crate::hosting::relay_wire::{request_id, Reply, Wire};
use crate::ids::{ConnId, GameId, InstanceId, TokenHash};
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode};
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
    /// How many frames were delivered to it.
    delivered: u64,
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
    /// The next request's number: from the start time in microseconds, so that a
    /// restarted instance's numbers are new to the owners that remember requests.
    next_req: u64,
    pending: HashMap<u64, Pending>,
    /// Owner side: the relayed requests acted on, so that one sent again is acted on once.
    answers: answers::Answers,
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
            next_req: first_request_number(),
            pending: HashMap::new(),
            answers: answers::Answers::default(),
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

    /// Owner side: answers a request (and remembers the answer, for the request sent again).
    fn reply(&mut self, to: InstanceId, req: u64, reply: Reply) {
        self.answers.answered(&to, req, &reply);
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

    /// Proxies of seats relayed by instances that died, and relayed sessions whose owner
    /// died: both are found by the heartbeat.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.pending.retain(|_, pending| now < pending.until + Duration::from_secs(1));
        self.answers.forget_old(now);
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
        ctx.run_interval(RESEND_CHECK, |act, ctx| {
            act.guarded(ctx, |act, _| act.resend_unanswered());
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
            act.relayed.insert(
                msg.conn.0,
                Relayed { to: msg.to, owner: msg.owner, lost: msg.lost, order: Ordered::default(), delivered: 0 },
            )
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
                if let Some(pending) = self.pending.remove(&req) {
                    if let (Wire::Join { conn, .. }, Reply::Joined { result: Ok(_), .. }, Some(before)) =
                        (&pending.wire, &reply, pending.frames_before)
                    {
                        self.expect_frames(ctx, *conn, pending.to.clone(), before);
                    }
                    let _ = pending.tx.send(reply);
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
