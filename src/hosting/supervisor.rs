//! GameSupervisor is an actor. It owns the game arbiters (one per core by default), starts
//! each TurnActor under `actix::Supervisor` on one of them, and runs the watchdog: a game
//! whose handler has been busy past `hang_timeout_ms`, or an arbiter that stops answering
//! pings, costs that arbiter its thread — it is abandoned (never joined), a fresh arbiter
//! takes its place and every game it hosted is resumed there from its last snapshot. Only
//! the hung game's restart counts against its limit. It also closes games nobody has been
//! connected to for `server.abandoned_game_secs`, and removes ended games nobody watches
//! once their time-to-live passes — at once while the server is overloaded (it subscribes
//! to the HealthMonitor): under memory pressure, finished games are the first thing shed.
//!
//! With the Redis backend it holds a lease for each game it hosts (docs/DESIGN.md D11): claimed
//! at creation, renewed every third of `cluster.lease_ms`, released at shutdown. A game it
//! does not host is resolved on request: to its live owner (the session then relays), or,
//! when the owner's lease has lapsed, taken over here from its stored snapshot with a new
//! epoch. A game whose lease or snapshot write is refused by another instance's newer
//! epoch is given up at once: its sockets are closed with 1012 so the players reconnect to
//! the owner. A newer epoch of this instance's own (a claim or renewal that ran late in a
//! stalled store) is adopted instead, and a store error never gives a game up.

mod watchdog;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::{LocalBoxFuture, Shared};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::game::{Board, Outcome, Seat};
use crate::hosting::env::GameEnv;
use crate::hosting::messages::{Checkpoint, Shutdown, StartMode};
use crate::hosting::registry::{GameCell, GameHandle, Registry, LEASE_RECHECK};
use crate::hosting::tick::TickActor;
use crate::hosting::turn::TurnActor;
use crate::ids::{monotonic_ms, now_rfc3339, GameId, PlayerToken};
use crate::llm::LlmClient;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode, GameStatus, GameSummary, Opponent, PlayerView, PlayersView, SeatGrant};
use crate::runtime::system::{Part, SystemActor, SystemTree};
use crate::store::directory::{Claim, Lease};
use crate::store::event_sink::EventSink;
use crate::store::events::EventKind;
use crate::store::keeper::{Fenced, SnapshotKeeper};
use crate::store::snapshot::{SeatRecord, Snapshot};
use crate::store::StoreError;

/// The AI seat's display name.
pub const AI_NAME: &str = crate::protocol::AI_PLAYER_NAME;

struct Slot {
    arbiter: Arbiter,
    last_pong_ms: Arc<AtomicU64>,
    ping_pending: Arc<AtomicBool>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            arbiter: Arbiter::new(),
            last_pong_ms: Arc::new(AtomicU64::new(monotonic_ms())),
            ping_pending: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Create a new game (sent by the AdmissionController once it admits the caller).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<SeatGrant, ErrorBody>")]
pub struct CreateGame {
    /// The game kind.
    pub kind: crate::protocol::GameKind,
    /// AI or human opponent.
    pub opponent: Opponent,
    /// The creator's validated name.
    pub player_name: String,
}

/// The server is going down: stop every game from changing, write every snapshot, release
/// every lease, then close every socket with 1012. Answers what did not finish.
#[derive(Message)]
#[rtype(result = "ShutdownReport")]
pub struct ShutdownGames {
    /// Time allowed for writing the snapshots.
    pub within: Duration,
}

/// What a shutdown left undone.
#[derive(Clone, Copy, Debug, MessageResponse)]
pub struct ShutdownReport {
    /// Games stopped.
    pub games: usize,
    /// Snapshots still not written.
    pub unwritten: usize,
    /// Leases that could not be released (they lapse after `cluster.lease_ms`).
    pub unreleased: usize,
}

/// Arbiter health for `/health`.
#[derive(Message)]
#[rtype(result = "ArbiterHealth")]
pub struct GetArbiterHealth;

/// Arbiter health for `/health`.
#[derive(Clone, Copy, Debug, MessageResponse)]
pub struct ArbiterHealth {
    /// Game arbiters running.
    pub arbiters: usize,
    /// Arbiters abandoned since start (each is a leaked thread; restart the process soon).
    pub lost: u64,
}

/// Where a game is: here, on another live instance, or nowhere.
#[derive(Message)]
#[rtype(result = "Resolved")]
pub struct Resolve(pub GameId);

/// The answer to [`Resolve`].
#[derive(Clone, MessageResponse)]
pub enum Resolved {
    /// Hosted here.
    Local(Arc<GameCell>),
    /// Owned by another live instance: relay to it.
    Remote(Lease),
    /// No such game.
    NotFound,
    /// It cannot be reached or taken over right now.
    Unavailable(ErrorBody),
}

/// What a takeover found.
#[derive(Clone)]
pub(super) enum Found {
    Resolved(Resolved),
    /// The stored snapshot, the new lease, and when it was claimed (`monotonic_ms`).
    TakeOver(Snapshot, Lease, u64),
    /// The stored snapshot cannot be decoded (or is not this game's): the game cannot
    /// resume anywhere, so it is closed as failed rather than retried for ever.
    Unreadable(String),
}

/// Starts, places and watches every game.
pub struct GameSupervisor {
    pub(super) config: Arc<Config>,
    pub(super) registry: Arc<Registry>,
    pub(super) env: Arc<GameEnv>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) keeper: Arc<SnapshotKeeper>,
    pub(super) cluster: Arc<Cluster>,
    /// Shared so that a restart re-attaches the same channel (nothing refused is lost).
    pub(super) fenced: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Fenced>>>,
    slots: Vec<Slot>,
    pub(super) next_slot: usize,
    pub(super) renewing: bool,
    /// Whether the last renewal round failed for some game (its WARN is said once).
    pub(super) renew_failing: bool,
    /// A retry of a failed renewal round is scheduled (one at a time: a round that fails
    /// at once, the breaker open, must not start another chain of retries each time).
    pub(super) renew_retry: bool,
    /// Shutting down: the leases are released, so no renewal round may take them again.
    pub(super) draining: bool,
    /// Games whose stored snapshot could not be read (logged and counted once each).
    pub(super) unreadable: HashSet<GameId>,
    /// The lookup in flight for each game not hosted here: a second request for the same
    /// game waits for it instead of running its own (which would see the fresh lease as
    /// "ours on paper", release it and claim a newer epoch, fencing the game it just
    /// started out of its own moves).
    pub(super) finding: HashMap<GameId, Shared<LocalBoxFuture<'static, Found>>>,
    /// The server is overloaded: ended games nobody watches go without waiting their TTL.
    pub(super) overloaded: bool,
    pub(super) tree: Arc<SystemTree>,
}

impl GameSupervisor {
    /// A supervisor with its arbiters started. `fenced` carries the keeper's refused writes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        registry: Arc<Registry>,
        keeper: Arc<SnapshotKeeper>,
        fenced: tokio::sync::mpsc::UnboundedReceiver<Fenced>,
        cluster: Arc<Cluster>,
        events: Arc<EventSink>,
        metrics: Arc<Metrics>,
        llm: Arc<LlmClient>,
        tree: Arc<SystemTree>,
    ) -> Self {
        let count = match config.server.game_arbiters {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n as usize,
        };
        let env = Arc::new(GameEnv::new(&config, events, keeper.clone(), metrics.clone(), llm));
        GameSupervisor {
            config,
            registry,
            env,
            metrics,
            keeper,
            cluster,
            fenced: Arc::new(tokio::sync::Mutex::new(fenced)),
            slots: (0..count).map(|_| Slot::new()).collect(),
            next_slot: 0,
            renewing: false,
            renew_failing: false,
            renew_retry: false,
            draining: false,
            unreadable: HashSet::new(),
            finding: HashMap::new(),
            overloaded: false,
            tree,
        }
    }

    /// Starts an incarnation of the game in `cell` on arbiter `slot`, under its own
    /// `actix::Supervisor`: the real-time actor when the snapshot carries a real-time
    /// state, the turn-based one otherwise.
    pub(super) fn spawn(&self, cell: &Arc<GameCell>, snapshot: Arc<Snapshot>, mode: StartMode, slot: usize) {
        let arbiter = self.slots[slot].arbiter.handle();
        let (env, game) = (self.env.clone(), cell.clone());
        let handle = match TickActor::new(game.clone(), env.clone(), snapshot.clone(), mode) {
            Some(actor) => GameHandle::of(actix::Supervisor::start_in_arbiter(&arbiter, move |_| actor)),
            None => {
                let actor = TurnActor::new(game, env, snapshot, mode);
                GameHandle::of(actix::Supervisor::start_in_arbiter(&arbiter, move |_| actor))
            }
        };
        cell.arbiter.store(slot, Ordering::Release);
        cell.set_addr(handle);
    }

    fn next_slot(&mut self) -> usize {
        let slot = self.next_slot % self.slots.len();
        self.next_slot = self.next_slot.wrapping_add(1);
        slot
    }

    /// Hosts a game here from `snapshot` (its epoch is this instance's lease epoch, taken
    /// at `claimed_ms`).
    pub(super) fn host(&mut self, snapshot: Arc<Snapshot>, mode: StartMode, claimed_ms: u64) -> Arc<GameCell> {
        let slot = self.next_slot();
        let summary = summary_of(&snapshot);
        let id = snapshot.game_id.clone();
        let kind = snapshot.board.kind();
        let cell = Arc::new(GameCell::new(id, kind, slot, summary, snapshot.clone(), self.keeper.clone()));
        if self.cluster.shared() {
            cell.lease_until_ms.store(claimed_ms + self.confirmed_ms(), Ordering::Release);
        }
        self.registry.insert(cell.clone());
        self.metrics.game_hosted(1);
        self.spawn(&cell, snapshot, mode, slot);
        cell
    }

    pub(super) fn remove(&self, cell: &Arc<GameCell>) {
        self.metrics.game_hosted(-1);
        self.registry.remove(&cell.id);
        self.env.events.publish(&cell.id, EventKind::Removed, serde_json::Value::Null);
        // With Redis the ended game's snapshot expires there by itself (its time-to-live).
        let (keeper, cluster, id) = (self.keeper.clone(), self.cluster.clone(), cell.id.clone());
        actix_rt::spawn(async move {
            keeper.forget(&id, !cluster.shared()).await;
            // Its lease and epoch counter go too: nobody will own an ended, removed game.
            if let Err(e) = cluster.database.call_for(&id, cluster.stores.directory.forget(&id)).await {
                tracing::debug!(game_id = %id, "could not forget a removed game's lease: {e}");
            }
        });
        cell.clear_addr();
    }
}

/// The lobby summary of a snapshot (before its actor has published one).
fn summary_of(snapshot: &Snapshot) -> GameSummary {
    let player = |r: &SeatRecord| PlayerView { name: r.name.clone(), connected: r.is_ai(), ai: r.is_ai() };
    let outcome = snapshot.board.outcome();
    let status = match outcome {
        _ if snapshot.failed => GameStatus::Failed,
        Outcome::Won { .. } => GameStatus::Won,
        Outcome::Draw => GameStatus::Draw,
        _ if snapshot.abandoned => GameStatus::Abandoned,
        _ if snapshot.seats.iter().any(Option::is_none) => GameStatus::Waiting,
        _ => GameStatus::Playing,
    };
    let (winner, resigned) = match outcome {
        Outcome::Won { winner, resigned } => (Some(winner), resigned.then(|| winner.other())),
        _ => (None, None),
    };
    GameSummary {
        game_id: snapshot.game_id.to_string(),
        kind: snapshot.board.kind(),
        status,
        players: PlayersView {
            red: snapshot.seats[0].as_ref().map(player),
            yellow: snapshot.seats[1].as_ref().map(player),
        },
        moves: snapshot.board.moves(),
        restarts: snapshot.restarts,
        created_at: snapshot.created_at.clone(),
        winner,
        resigned,
    }
}

impl Actor for GameSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(arbiters = self.slots.len(), instance = %self.cluster.me, "game supervisor started");
        let interval = Duration::from_millis(self.config.supervision.watchdog_interval_ms);
        ctx.run_interval(interval, |act, ctx| {
            act.guarded(ctx, |act, _| act.watchdog());
        });
        ctx.add_stream(futures_util::stream::unfold(self.fenced.clone(), |rx| async move {
            let next = rx.lock().await.recv().await;
            next.map(|f| (f, rx))
        }));
        if self.cluster.shared() {
            ctx.run_interval(self.cluster.lease / 3, |act, ctx| {
                act.guarded(ctx, Self::renew_leases);
            });
            ctx.run_interval(LEASE_RECHECK, |act, ctx| {
                act.guarded(ctx, |act, _| act.tell_paused());
            });
        }
        self.tree.up(Part::Games);
    }
}

/// A restart of the supervisor touches no game: each runs on its arbiter under its own
/// `Supervisor`, and the registry (shared with the sockets) is where they are found. What
/// the old context held in flight is dropped with it: lookups (their callers get an error
/// and retry), a lease renewal round (the next one starts at once). The arbiters, the
/// registry and the channel of refused writes carry over.
impl Supervised for GameSupervisor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.finding.clear();
        self.renewing = false;
        self.tree.restarting(Part::Games, ctx);
    }
}

crate::runtime::system::system_actor!(GameSupervisor, Part::Games);

impl Handler<CreateGame> for GameSupervisor {
    type Result = ResponseActFuture<Self, Result<SeatGrant, ErrorBody>>;

    fn handle(&mut self, msg: CreateGame, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| act.create(msg)).unwrap_or_else(|| Box::pin(actix::fut::ready(Err(restarting()))))
    }
}

/// The answer while the supervisor restarts after a bug.
pub(super) fn restarting() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "the game supervisor hit a bug and is restarting; retry shortly")
        .with("retry_after_ms", 500)
}

impl GameSupervisor {
    fn create(&mut self, msg: CreateGame) -> ResponseActFuture<Self, Result<SeatGrant, ErrorBody>> {
        let id = GameId::random();
        let cluster = self.cluster.clone();
        let claim_id = id.clone();
        let claimed_ms = monotonic_ms();
        let (game, created) = (id.clone(), id.clone());
        Box::pin(
            async move { cluster.claim(&claim_id).await }
                .into_actor(self)
                .map(move |claim, act, ctx| {
                    act.guarded(ctx, move |act, _| act.created(id, msg, claim, claimed_ms))
                        .unwrap_or_else(|| Err(restarting()))
                })
                .then(move |grant, act, _| {
                    // Shown only once it is durable (D18): the player is not handed a game
                    // that the death of this instance would lose.
                    let wait = (grant.is_ok() && act.env.durable_before_shown)
                        .then(|| (act.keeper.clone(), act.cluster.lease, game.clone()));
                    async move {
                        let Some((keeper, within, game)) = wait else { return (grant, true) };
                        let durable = tokio::time::timeout(within, keeper.when_durable(&game, 1)).await;
                        (grant, matches!(durable, Ok(true)))
                    }
                    .into_actor(act)
                })
                .map(move |(grant, durable), act, _| {
                    if durable {
                        return grant;
                    }
                    if let Some(cell) = grant.as_ref().ok().and_then(|_| act.registry.get(&created)) {
                        tracing::warn!(game_id = %cell.id, within_ms = act.cluster.lease.as_millis() as u64, "a new game's first snapshot was not durable in time; the game is dropped and its creation refused");
                        act.metrics.game_ended();
                        act.remove(&cell);
                    }
                    Err(ErrorBody::store_unavailable())
                }),
        )
    }

    fn created(
        &mut self,
        id: GameId,
        msg: CreateGame,
        claim: Result<Claim, StoreError>,
        claimed_ms: u64,
    ) -> Result<SeatGrant, ErrorBody> {
        let epoch = Self::new_game_epoch(&id, claim)?;
        let token = PlayerToken::random();
        let hash = self.cluster.hash(&token);
        let human = SeatRecord { name: msg.player_name.clone(), token_hash: Some(hash.clone()) };
        let yellow = (msg.opponent == Opponent::Ai).then(|| SeatRecord { name: AI_NAME.to_owned(), token_hash: None });
        let kind = msg.kind.spec();
        let board = match kind.ticks() {
            Some(ticks) => Board::ticked((ticks.new_game)(self.env.ticks.width, self.env.ticks.height)),
            None => match Board::new_game(kind.name) {
                Some(board) => board,
                None => {
                    tracing::error!(kind = kind.name, "asked to host a game kind with no starting position");
                    return Err(ErrorBody::new(ErrorCode::Internal, "could not create the game"));
                }
            },
        };
        let snapshot = Arc::new(Snapshot {
            game_id: id.clone(),
            board,
            seats: [Some(human), yellow],
            created_at: now_rfc3339(),
            abandoned: false,
            restarts: 0,
            failed: false,
            version: 1,
            epoch,
        });
        let kind = snapshot.board.kind();
        self.host(snapshot, StartMode::Fresh, claimed_ms);
        // Counted now, not when the actor starts on its arbiter: admission reads the count
        // for the next creation, which may come before the new actor has run.
        self.metrics.game_started(kind);
        self.cluster.remember_seat(hash, id.clone(), Seat::Red, msg.player_name);
        Ok(SeatGrant { game_id: id.to_string(), seat: Seat::Red, player_token: token.expose().to_owned() })
    }
}

impl Handler<ShutdownGames> for GameSupervisor {
    type Result = ResponseActFuture<Self, ShutdownReport>;

    fn handle(&mut self, msg: ShutdownGames, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| act.shut_down(msg)).unwrap_or_else(|| {
            // Nothing known to be written or released: say so.
            let n = self.registry.len();
            Box::pin(actix::fut::ready(ShutdownReport { games: n, unwritten: n, unreleased: n }))
        })
    }
}

impl GameSupervisor {
    fn shut_down(&mut self, msg: ShutdownGames) -> ResponseActFuture<Self, ShutdownReport> {
        // No renewal round from here: one running after the release would take the leases
        // back, and the next instance would wait for them to lapse.
        self.draining = true;
        let cells = self.registry.all();
        let (keeper, cluster) = (self.keeper.clone(), self.cluster.clone());
        let leases: Vec<(GameId, u64)> =
            cells.iter().map(|c| (c.id.clone(), c.epoch.load(Ordering::Acquire))).collect();
        let games = cells.clone();
        let work = async move {
            // Real-time games stop their clocks and hand their current state over first
            // (a game that does not answer keeps its last snapshot tick's).
            let asks = games.iter().filter_map(|c| c.addr()).map(|g| {
                let ask = g.checkpoint().send(Checkpoint);
                async move { tokio::time::timeout(msg.within / 2, ask).await }
            });
            futures_util::future::join_all(asks).await;
            // Nothing changes from here: every incarnation is abandoned (its sockets stay
            // open until the snapshots are written and the leases released).
            for cell in &games {
                let _ = cell.begin_move();
            }
            let unwritten = keeper.flush(msg.within).await;
            let mut unreleased = 0;
            if cluster.shared() {
                for (id, epoch) in &leases {
                    if *epoch == 0 || cluster.release(id, *epoch).await.is_err() {
                        unreleased += 1;
                    }
                }
            }
            (unwritten, unreleased)
        };
        // Only a shared store outlives the process: without it, say so instead of promising.
        let reason = if self.cluster.shared() {
            "server restarting; your game is saved"
        } else {
            "server shutting down; games are kept in memory only and end with it"
        };
        Box::pin(work.into_actor(self).map(move |(unwritten, unreleased), _, _| {
            for cell in &cells {
                if let Some(game) = cell.addr() {
                    game.shutdown().do_send(Shutdown { reason });
                }
            }
            ShutdownReport { games: cells.len(), unwritten, unreleased }
        }))
    }
}

impl Handler<GetArbiterHealth> for GameSupervisor {
    type Result = ArbiterHealth;

    fn handle(&mut self, _: GetArbiterHealth, ctx: &mut Context<Self>) -> ArbiterHealth {
        let answer = |act: &mut Self| ArbiterHealth { arbiters: act.slots.len(), lost: act.metrics.arbiters_lost() };
        self.guarded(ctx, |act, _| answer(act)).unwrap_or_else(|| answer(self))
    }
}

impl Handler<crate::runtime::status::HealthChanged> for GameSupervisor {
    type Result = ();

    fn handle(&mut self, msg: crate::runtime::status::HealthChanged, ctx: &mut Context<Self>) {
        self.overloaded = msg.0 == crate::runtime::status::Status::Overloaded;
        if self.overloaded {
            self.guarded(ctx, |act, _| act.reap(&act.registry.all(), monotonic_ms()));
        }
    }
}
