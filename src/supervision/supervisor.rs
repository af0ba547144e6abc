//! GameSupervisor is an actor. It owns the game arbiters (one per core by default), starts
//! each GameActor under `actix::Supervisor` on one of them, and runs the watchdog: a game
//! whose handler has been busy past `hang_timeout_ms`, or an arbiter that stops answering
//! pings, costs that arbiter its thread — it is abandoned (never joined), a fresh arbiter
//! takes its place and every game it hosted is resumed there from its last snapshot. Only
//! the hung game's restart counts against its limit. It also closes games nobody has been
//! connected to for `server.abandoned_game_secs`, and removes ended games nobody watches
//! once their time-to-live passes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::config::Config;
use crate::game::{Connect4, Rules, Seat};
use crate::ids::{monotonic_ms, now_rfc3339, GameId, PlayerToken};
use crate::llm::LlmClient;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, GameStatus, GameSummary, Opponent, PlayerView, PlayersView, SeatGrant};
use crate::store::SnapshotStore;
use crate::supervision::game_actor::{CloseAbandoned, GameActor, GameEnv, Shutdown, StartMode};
use crate::supervision::registry::{GameCell, Registry, RunState};
use crate::supervision::snapshot::{SeatRecord, Snapshot};

/// The AI seat's display name.
pub const AI_NAME: &str = "Rampart AI";

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
    /// AI or human opponent.
    pub opponent: Opponent,
    /// The creator's validated name.
    pub player_name: String,
}

/// Tell every game the server is going down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownGames;

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

/// Starts, places and watches every game.
pub struct GameSupervisor {
    config: Arc<Config>,
    registry: Arc<Registry>,
    env: Arc<GameEnv>,
    metrics: Arc<Metrics>,
    store: Arc<dyn SnapshotStore>,
    slots: Vec<Slot>,
    next_slot: usize,
}

impl GameSupervisor {
    /// A supervisor with its arbiters started.
    pub fn new(
        config: Arc<Config>,
        registry: Arc<Registry>,
        store: Arc<dyn SnapshotStore>,
        metrics: Arc<Metrics>,
        llm: Arc<LlmClient>,
    ) -> Self {
        let count = match config.server.game_arbiters {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n as usize,
        };
        let env = Arc::new(GameEnv {
            policy: config.supervision.policy_for(Connect4::KIND),
            ai: config.ai.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            llm,
        });
        GameSupervisor {
            config,
            registry,
            env,
            metrics,
            store,
            slots: (0..count).map(|_| Slot::new()).collect(),
            next_slot: 0,
        }
    }

    fn spawn(&self, cell: &Arc<GameCell>, snapshot: Arc<Snapshot>, mode: StartMode, slot: usize) {
        let actor = GameActor::new(cell.clone(), self.env.clone(), snapshot, mode);
        let addr = actix::Supervisor::start_in_arbiter(&self.slots[slot].arbiter.handle(), move |_| actor);
        cell.arbiter.store(slot, Ordering::Release);
        cell.set_addr(addr);
    }

    fn create(&mut self, msg: CreateGame) -> Result<SeatGrant, ErrorBody> {
        let id = GameId::random();
        let token = PlayerToken::random();
        let human = SeatRecord { name: msg.player_name.clone(), token: Some(token.clone()) };
        let yellow = (msg.opponent == Opponent::Ai).then(|| SeatRecord { name: AI_NAME.to_owned(), token: None });
        let snapshot = Arc::new(Snapshot {
            game_id: id.clone(),
            board: Connect4::new_game(),
            seats: [Some(human), yellow],
            created_at: now_rfc3339(),
            abandoned: false,
        });
        if let Err(e) = self.store.save(snapshot.clone()) {
            tracing::warn!(game_id = %id, "could not save the new game's first snapshot; it starts anyway: {e}");
        }
        let player = |name: &str, ai| Some(PlayerView { name: name.to_owned(), connected: ai, ai });
        let summary = GameSummary {
            game_id: id.to_string(),
            kind: Connect4::KIND,
            status: if msg.opponent == Opponent::Ai { GameStatus::Playing } else { GameStatus::Waiting },
            players: PlayersView {
                red: player(&msg.player_name, false),
                yellow: (msg.opponent == Opponent::Ai).then(|| player(AI_NAME, true)).flatten(),
            },
            moves: 0,
            restarts: 0,
            created_at: snapshot.created_at.clone(),
        };
        let slot = self.next_slot % self.slots.len();
        self.next_slot = self.next_slot.wrapping_add(1);
        let cell = Arc::new(GameCell::new(id.clone(), Connect4::KIND, slot, summary, snapshot.clone()));
        self.registry.insert(cell.clone());
        self.metrics.game_hosted(1);
        self.spawn(&cell, snapshot, StartMode::Fresh, slot);
        Ok(SeatGrant { game_id: id.to_string(), seat: Seat::Red, player_token: token.expose().to_owned() })
    }

    fn watchdog(&mut self) {
        let now = monotonic_ms();
        let hang_timeout_ms = self.env.policy.hang_timeout_ms;
        let interval_ms = self.config.supervision.watchdog_interval_ms;
        let mut lost = BTreeSet::new();
        let cells = self.registry.all();
        for cell in &cells {
            let busy = cell.busy_since_ms.load(Ordering::Acquire);
            if busy != 0 && now.saturating_sub(busy) > hang_timeout_ms {
                lost.insert(cell.arbiter.load(Ordering::Acquire));
            }
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let silent_ms = now.saturating_sub(slot.last_pong_ms.load(Ordering::Acquire));
            if silent_ms > hang_timeout_ms + interval_ms {
                tracing::error!(arbiter = i, silent_ms, "game arbiter stopped answering the watchdog");
                lost.insert(i);
            } else if !slot.ping_pending.swap(true, Ordering::AcqRel) {
                let (pong, pending) = (slot.last_pong_ms.clone(), slot.ping_pending.clone());
                slot.arbiter.spawn(async move {
                    pong.store(monotonic_ms(), Ordering::Release);
                    pending.store(false, Ordering::Release);
                });
            }
        }
        for slot in lost {
            self.replace_arbiter(slot, &cells, now);
        }
        self.close_abandoned(&cells, now);
        self.reap(&cells, now);
    }

    /// Asks every game nobody has been connected to for `server.abandoned_game_secs` (since
    /// its creation, or since its last player left) to close. The game itself decides: a
    /// player who reconnected in the meantime keeps it.
    fn close_abandoned(&self, cells: &[Arc<GameCell>], now: u64) {
        let limit_ms = self.config.server.abandoned_game_secs.saturating_mul(1000);
        for cell in cells {
            let since = cell.unattended_since_ms.load(Ordering::Acquire);
            if since == 0 || now.saturating_sub(since) <= limit_ms || cell.ended_at_ms.load(Ordering::Acquire) != 0 {
                continue;
            }
            // Ask once per period: a refusal (someone came back) restarts the clock.
            if cell.unattended_since_ms.compare_exchange(since, now, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                if let Some(addr) = cell.addr() {
                    addr.do_send(CloseAbandoned { unattended_secs: now.saturating_sub(since) / 1000 });
                }
            }
        }
    }

    /// Abandons the thread of arbiter `slot` and resumes its games on a fresh one. A game
    /// caught inside a handler is the one holding the thread: it recovers under its restart
    /// policy as hung. The others were only moved.
    fn replace_arbiter(&mut self, slot: usize, cells: &[Arc<GameCell>], now: u64) {
        let old = std::mem::replace(&mut self.slots[slot], Slot::new());
        // Ask the old event loop to stop once its thread is free again; never join it.
        old.arbiter.stop();
        self.metrics.arbiter_lost();
        let (mut moved, mut hung) = (0, 0);
        for cell in cells.iter().filter(|c| c.arbiter.load(Ordering::Acquire) == slot) {
            let busy = cell.busy_since_ms.swap(0, Ordering::AcqRel);
            // From here the old incarnation can neither publish nor speak.
            let snapshot = cell.begin_move();
            let mode = if cell.run_state() == RunState::Failed {
                StartMode::Tombstone
            } else if busy != 0 {
                hung += 1;
                tracing::error!(game_id = %cell.id, busy_ms = now.saturating_sub(busy), hang_timeout_ms = self.env.policy.hang_timeout_ms, "game handler is hung");
                StartMode::Hung
            } else {
                moved += 1;
                self.metrics.game_moved();
                StartMode::Moved
            };
            self.spawn(cell, snapshot, mode, slot);
            // Commands waiting in the old mailbox are sent again to the new incarnation.
            cell.moved();
        }
        tracing::error!(arbiter = slot, moved, hung, "abandoned a hung game arbiter's thread and resumed its games on a fresh one; restart the process when convenient");
    }

    fn remove(&self, cell: &Arc<GameCell>) {
        self.metrics.game_hosted(-1);
        self.registry.remove(&cell.id);
        if let Err(e) = self.store.remove(&cell.id) {
            tracing::debug!(game_id = %cell.id, "could not remove the snapshot of a removed game: {e}");
        }
        cell.clear_addr();
    }

    /// Removes ended games that nobody watches once their time-to-live has passed.
    fn reap(&self, cells: &[Arc<GameCell>], now: u64) {
        let ttl_ms = self.config.server.finished_game_ttl_secs.saturating_mul(1000);
        for cell in cells {
            let ended = cell.ended_at_ms.load(Ordering::Acquire);
            if ended != 0 && now.saturating_sub(ended) > ttl_ms && !cell.has_routes() {
                tracing::info!(game_id = %cell.id, "removing an ended game nobody is watching");
                self.remove(cell);
            }
        }
    }
}

impl Actor for GameSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(arbiters = self.slots.len(), "game supervisor started");
        let interval = Duration::from_millis(self.config.supervision.watchdog_interval_ms);
        ctx.run_interval(interval, |act, _| act.watchdog());
    }
}

impl Handler<CreateGame> for GameSupervisor {
    type Result = Result<SeatGrant, ErrorBody>;

    fn handle(&mut self, msg: CreateGame, _: &mut Context<Self>) -> Self::Result {
        self.create(msg)
    }
}

impl Handler<ShutdownGames> for GameSupervisor {
    type Result = ();

    fn handle(&mut self, _: ShutdownGames, _: &mut Context<Self>) {
        for cell in self.registry.all() {
            if let Some(addr) = cell.addr() {
                addr.do_send(Shutdown);
            }
        }
    }
}

impl Handler<GetArbiterHealth> for GameSupervisor {
    type Result = ArbiterHealth;

    fn handle(&mut self, _: GetArbiterHealth, _: &mut Context<Self>) -> ArbiterHealth {
        ArbiterHealth { arbiters: self.slots.len(), lost: self.metrics.arbiters_lost() }
    }
}
