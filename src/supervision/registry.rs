//! The game registry: for each game, a `GameCell` holding what must outlive any one actor
//! incarnation — the current address (re-pointed when a game moves arbiter), the routes to
//! its players' sockets, the busy stamp the watchdog reads, the restart ledger and the lobby
//! summary. Game state itself is never here: only the GameActor owns it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use actix::{Addr, Recipient};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::game::Seat;
use crate::ids::{monotonic_ms, ConnId, GameId};
use crate::protocol::GameSummary;
use crate::supervision::game_actor::{GameActor, ToSession};
use crate::supervision::policy::RestartLedger;
use crate::supervision::snapshot::{seat_index, Snapshot};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run state of a game as the routing layer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    /// Answering normally.
    Running = 0,
    /// Between a failure and the restored game answering.
    Restarting = 1,
    /// Closed after its restart limit.
    Failed = 2,
}

/// A player socket attached to a seat.
#[derive(Clone)]
pub struct Route {
    /// The connection.
    pub conn: ConnId,
    /// Where the game's frames go.
    pub to: Recipient<ToSession>,
}

/// Everything about one game that is not its state.
pub struct GameCell {
    /// Game id.
    pub id: GameId,
    /// Game kind.
    pub kind: &'static str,
    addr: RwLock<Option<Addr<GameActor>>>,
    /// Index of the arbiter hosting the current incarnation.
    pub arbiter: AtomicUsize,
    /// Bumped each time the game is moved to a new actor; an older incarnation that wakes up
    /// finds a newer generation and stays silent. Changed only with [`GameCell::begin_move`].
    pub generation: AtomicU64,
    /// Woken once a move to a new incarnation is complete (its address is set), so a
    /// command waiting in an abandoned mailbox is sent again to the new one.
    moved: Notify,
    /// `monotonic_ms()` when the current handler started, 0 when idle.
    pub busy_since_ms: AtomicU64,
    run_state: AtomicU8,
    routes: Mutex<[Option<Route>; 2]>,
    /// Restarts within the policy window, per game.
    pub ledger: Mutex<RestartLedger>,
    summary: Mutex<GameSummary>,
    /// The last good snapshot, published by the actor after each change, so a game whose
    /// arbiter is lost resumes without asking the (possibly unreachable) store.
    snapshot: Mutex<Arc<Snapshot>>,
    /// `monotonic_ms()` when the game ended (won, draw, failed, abandoned), 0 while live.
    pub ended_at_ms: AtomicU64,
    /// `monotonic_ms()` since when no player's socket is attached (from creation until the
    /// first join, then from the last leave); 0 while someone is connected.
    pub unattended_since_ms: AtomicU64,
}

impl GameCell {
    /// A cell for a new game, not yet bound to an actor.
    pub fn new(id: GameId, kind: &'static str, arbiter: usize, summary: GameSummary, snapshot: Arc<Snapshot>) -> Self {
        GameCell {
            id,
            kind,
            addr: RwLock::new(None),
            arbiter: AtomicUsize::new(arbiter),
            generation: AtomicU64::new(0),
            moved: Notify::new(),
            busy_since_ms: AtomicU64::new(0),
            run_state: AtomicU8::new(RunState::Running as u8),
            routes: Mutex::new([None, None]),
            ledger: Mutex::new(RestartLedger::default()),
            summary: Mutex::new(summary),
            snapshot: Mutex::new(snapshot),
            ended_at_ms: AtomicU64::new(0),
            unattended_since_ms: AtomicU64::new(monotonic_ms()),
        }
    }
    /// The current incarnation's address.
    pub fn addr(&self) -> Option<Addr<GameActor>> {
        self.addr.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Points the cell at a new incarnation.
    pub fn set_addr(&self, addr: Addr<GameActor>) {
        *self.addr.write().unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }
    /// Drops the address, letting the actor stop once nothing else holds it.
    pub fn clear_addr(&self) {
        *self.addr.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
    /// Current run state.
    pub fn run_state(&self) -> RunState {
        match self.run_state.load(Ordering::Acquire) {
            0 => RunState::Running,
            1 => RunState::Restarting,
            _ => RunState::Failed,
        }
    }
    /// Sets the run state.
    pub fn set_run_state(&self, state: RunState) {
        self.run_state.store(state as u8, Ordering::Release);
    }
    /// The route of a seat.
    pub fn route(&self, seat: Seat) -> Option<Route> {
        lock(&self.routes)[seat_index(seat)].clone()
    }
    /// Both routes.
    pub fn routes(&self) -> [Option<Route>; 2] {
        lock(&self.routes).clone()
    }
    /// Attaches a socket to a seat, returning the route it replaced (another connection).
    pub fn attach(&self, seat: Seat, route: Route) -> Option<Route> {
        let mut routes = lock(&self.routes);
        let old = routes[seat_index(seat)].replace(route.clone());
        self.unattended_since_ms.store(0, Ordering::Release);
        old.filter(|o| o.conn != route.conn)
    }
    /// Detaches a connection from a seat if it is still the attached one.
    pub fn detach(&self, seat: Seat, conn: ConnId) -> bool {
        let mut routes = lock(&self.routes);
        let slot = &mut routes[seat_index(seat)];
        if slot.as_ref().is_some_and(|r| r.conn == conn) {
            *slot = None;
            if routes.iter().all(Option::is_none) {
                self.unattended_since_ms.store(monotonic_ms(), Ordering::Release);
            }
            true
        } else {
            false
        }
    }
    /// Whether a live socket holds `seat` (a route whose session has stopped does not count).
    pub fn seat_connected(&self, seat: Seat) -> bool {
        lock(&self.routes)[seat_index(seat)].as_ref().is_some_and(|r| r.to.connected())
    }
    /// Whether any socket is attached.
    pub fn has_routes(&self) -> bool {
        lock(&self.routes).iter().any(Option::is_some)
    }
    /// The lobby summary.
    pub fn summary(&self) -> GameSummary {
        lock(&self.summary).clone()
    }
    /// The last good snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        lock(&self.snapshot).clone()
    }
    /// Publishes a new last good snapshot from the incarnation of `generation`; refused
    /// (false) when a newer incarnation has taken the game over, so an abandoned incarnation
    /// that wakes up can never overwrite the state the new one resumed from.
    pub fn publish_snapshot(&self, generation: u64, snapshot: Arc<Snapshot>) -> bool {
        let mut current = lock(&self.snapshot);
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        *current = snapshot;
        true
    }
    /// Starts moving the game to a new incarnation: bumps the generation (every older
    /// incarnation is abandoned from here on) and answers the snapshot to resume from, both
    /// under the snapshot lock so no publish slips in between. Call [`GameCell::moved`]
    /// once the new incarnation's address is set.
    pub fn begin_move(&self) -> Arc<Snapshot> {
        let current = lock(&self.snapshot);
        self.generation.fetch_add(1, Ordering::AcqRel);
        current.clone()
    }
    /// Wakes everyone waiting for the game to move ([`GameCell::wait_moved`]).
    pub fn moved(&self) {
        self.moved.notify_waiters();
    }
    /// A future that resolves at the next completed move. It counts from its creation:
    /// create it before reading the generation and the address.
    pub fn wait_moved(&self) -> Notified<'_> {
        self.moved.notified()
    }
    /// Replaces the lobby summary.
    pub fn set_summary(&self, summary: GameSummary) {
        *lock(&self.summary) = summary;
    }
}

/// All games on this server, by id. Read-mostly: lookups take a shared lock.
#[derive(Default)]
pub struct Registry {
    games: RwLock<HashMap<GameId, Arc<GameCell>>>,
}

impl Registry {
    /// Looks a game up.
    pub fn get(&self, id: &GameId) -> Option<Arc<GameCell>> {
        self.games.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
    /// Adds a game.
    pub fn insert(&self, cell: Arc<GameCell>) {
        self.games.write().unwrap_or_else(|e| e.into_inner()).insert(cell.id.clone(), cell);
    }
    /// Removes a game.
    pub fn remove(&self, id: &GameId) -> Option<Arc<GameCell>> {
        self.games.write().unwrap_or_else(|e| e.into_inner()).remove(id)
    }
    /// Every game.
    pub fn all(&self) -> Vec<Arc<GameCell>> {
        self.games.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
    /// Number of games.
    pub fn len(&self) -> usize {
        self.games.read().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// Whether there are no games.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
