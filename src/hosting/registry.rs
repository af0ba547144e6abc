//! The directory of hosted games: for each game this instance hosts, turn-based or
//! real-time, a `GameCell` holding what must outlive any one actor incarnation — the
//! current [`GameHandle`] (re-pointed when a game moves arbiter), the routes to its
//! players' sockets, the busy stamp the watchdog reads, the restart ledger, the lease epoch
//! and the lobby summary. Game state itself is never here: only the game's actor owns it,
//! and its snapshot is the [`SnapshotKeeper`]'s. [`deliver`] takes a player command to its
//! game and follows the game when it moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Recipient};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::game::Seat;
use crate::hosting::messages::{
    Checkpoint, ClaimSeat, CloseAbandoned, Command, CommandOutcome, Fault, InjectFault, Join, LeaseState, Leave, Probe,
    Route, Shutdown, Summary,
};
use crate::ids::{monotonic_ms, ConnId, GameId};
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, GameSummary};
use crate::runtime::policy::RestartLedger;
use crate::store::keeper::SnapshotKeeper;
use crate::store::snapshot::{seat_index, Snapshot};

/// How soon a command, an AI move or a tick refused on an unconfirmed lease may try again.
pub const LEASE_RECHECK: Duration = Duration::from_millis(250);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run state of a game as the routing layer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    /// Answering normally.
    Running = 0,
    /// Its restart is under way (restored, waiting out the policy's delay).
    Restarting = 1,
    /// Closed after its restart limit.
    Failed = 2,
    /// A handler panicked; its restart has not begun yet (its thread may be held by
    /// another game's hang, so it may begin on a fresh arbiter).
    Crashed = 3,
}

/// How the directory, the sessions and the relay reach a game's current incarnation,
/// whatever its kind: the actor's one address behind [`GameAddr`], shared. A recipient for
/// a message is made when one is sent: a handle that kept a recipient for each of the ten
/// messages held ten senders (three allocations each) for every hosted game, idle or not,
/// and copied them at every lookup (measured: +0.7 KB per idle socket, BENCHMARKS.md).
#[derive(Clone)]
pub struct GameHandle(Arc<dyn GameAddr>);

/// A game actor's address, for each message every hosted game answers.
pub trait GameAddr: Send + Sync + 'static {
    /// Attach a socket.
    fn join(&self) -> Recipient<Join>;
    /// Detach a socket.
    fn leave(&self) -> Recipient<Leave>;
    /// A player's command.
    fn command(&self) -> Recipient<Command>;
    /// The REST seat claim.
    fn claim(&self) -> Recipient<ClaimSeat>;
    /// An admin's fault.
    fn fault(&self) -> Recipient<InjectFault>;
    /// The watchdog's close of an unattended game.
    fn close_abandoned(&self) -> Recipient<CloseAbandoned>;
    /// The live summary.
    fn summary(&self) -> Recipient<Summary>;
    /// The move count (benchmarks, tests).
    fn probe(&self) -> Recipient<Probe>;
    /// Hand the current state to the keeper (shutdown).
    fn checkpoint(&self) -> Recipient<Checkpoint>;
    /// Close the sockets with 1012.
    fn shutdown(&self) -> Recipient<Shutdown>;
    /// The lease stopped being confirmed, or is confirmed again.
    fn lease(&self) -> Recipient<LeaseState>;
}

impl<A> GameAddr for Addr<A>
where
    A: Actor
        + Handler<Join>
        + Handler<Leave>
        + Handler<Command>
        + Handler<ClaimSeat>
        + Handler<InjectFault>
        + Handler<CloseAbandoned>
        + Handler<Summary>
        + Handler<Probe>
        + Handler<Checkpoint>
        + Handler<Shutdown>
        + Handler<LeaseState>,
    A::Context: ToEnvelope<A, Join>
        + ToEnvelope<A, Leave>
        + ToEnvelope<A, Command>
        + ToEnvelope<A, ClaimSeat>
        + ToEnvelope<A, InjectFault>
        + ToEnvelope<A, CloseAbandoned>
        + ToEnvelope<A, Summary>
        + ToEnvelope<A, Probe>
        + ToEnvelope<A, Checkpoint>
        + ToEnvelope<A, Shutdown>
        + ToEnvelope<A, LeaseState>,
{
    fn join(&self) -> Recipient<Join> {
        self.clone().recipient()
    }
    fn leave(&self) -> Recipient<Leave> {
        self.clone().recipient()
    }
    fn command(&self) -> Recipient<Command> {
        self.clone().recipient()
    }
    fn claim(&self) -> Recipient<ClaimSeat> {
        self.clone().recipient()
    }
    fn fault(&self) -> Recipient<InjectFault> {
        self.clone().recipient()
    }
    fn close_abandoned(&self) -> Recipient<CloseAbandoned> {
        self.clone().recipient()
    }
    fn summary(&self) -> Recipient<Summary> {
        self.clone().recipient()
    }
    fn probe(&self) -> Recipient<Probe> {
        self.clone().recipient()
    }
    fn checkpoint(&self) -> Recipient<Checkpoint> {
        self.clone().recipient()
    }
    fn shutdown(&self) -> Recipient<Shutdown> {
        self.clone().recipient()
    }
    fn lease(&self) -> Recipient<LeaseState> {
        self.clone().recipient()
    }
}

impl GameHandle {
    /// The handle of a game actor of any kind.
    pub fn of(addr: impl GameAddr) -> Self {
        GameHandle(Arc::new(addr))
    }
}

impl std::ops::Deref for GameHandle {
    type Target = dyn GameAddr;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

/// Two handles are equal when they reach the same incarnation (a handle is made once per
/// incarnation and shared).
impl PartialEq for GameHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Everything about one game that is not its state.
pub struct GameCell {
    /// Game id.
    pub id: GameId,
    /// Game kind.
    pub kind: &'static str,
    addr: RwLock<Option<GameHandle>>,
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
    /// The one owner of the game's snapshot in this process.
    keeper: Arc<SnapshotKeeper>,
    /// Held while a snapshot is published or a move begins, so the two never interleave.
    fence: Mutex<()>,
    /// This instance's lease epoch for the game (0 while the lease is still to be taken,
    /// the store having been unreachable at creation).
    pub epoch: AtomicU64,
    /// `monotonic_ms()` until which this instance's lease on the game is confirmed: when
    /// the last claim or renewal the directory granted was sent, plus the lease less its
    /// safety margin (docs/DESIGN.md D17). Only a granted claim or renewal moves it; a
    /// store error never does. Past it the game applies nothing and plays no AI move or
    /// tick until a round confirms the lease again (or gives the game up). `u64::MAX`
    /// with the embedded backend.
    pub lease_until_ms: AtomicU64,
    /// Whether the game's players were told it is paused (its lease unconfirmed), so the
    /// supervisor tells them once when it pauses and once when it resumes.
    pub paused: AtomicBool,
    /// `monotonic_ms()` when the game ended (won, draw, failed, abandoned), 0 while live.
    pub ended_at_ms: AtomicU64,
    /// `monotonic_ms()` since when no player's socket is attached (from creation until the
    /// first join, then from the last leave); 0 while someone is connected.
    pub unattended_since_ms: AtomicU64,
}

impl GameCell {
    /// A cell for a game, not yet bound to an actor; `snapshot` (with its epoch) is
    /// handed to the keeper.
    pub fn new(
        id: GameId,
        kind: &'static str,
        arbiter: usize,
        summary: GameSummary,
        snapshot: Arc<Snapshot>,
        keeper: Arc<SnapshotKeeper>,
    ) -> Self {
        let epoch = snapshot.epoch;
        keeper.publish(snapshot);
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
            keeper,
            fence: Mutex::new(()),
            epoch: AtomicU64::new(epoch),
            lease_until_ms: AtomicU64::new(u64::MAX),
            paused: AtomicBool::new(false),
            ended_at_ms: AtomicU64::new(0),
            unattended_since_ms: AtomicU64::new(monotonic_ms()),
        }
    }
    /// The current incarnation's handle.
    pub fn addr(&self) -> Option<GameHandle> {
        self.addr.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Points the cell at a new incarnation.
    pub fn set_addr(&self, addr: GameHandle) {
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
            3 => RunState::Crashed,
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
    /// Whether this instance's lease on the game is confirmed now ([`GameCell::lease_until_ms`]).
    pub fn lease_confirmed(&self) -> bool {
        monotonic_ms() <= self.lease_until_ms.load(Ordering::Acquire)
    }
    /// GAME_RESTARTING for a command while the lease is unconfirmed: not applied, retry.
    pub fn unconfirmed_error() -> ErrorBody {
        ErrorBody::ownership_unconfirmed(LEASE_RECHECK.as_millis() as u64)
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
    /// The last good snapshot (the keeper's).
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.keeper.latest(&self.id)
    }
    /// Publishes a new last good snapshot from the incarnation of `generation`; refused
    /// (false) when a newer incarnation has taken the game over, so an abandoned incarnation
    /// that wakes up can never overwrite the state the new one resumed from.
    pub fn publish_snapshot(&self, generation: u64, snapshot: Arc<Snapshot>) -> bool {
        let _fence = lock(&self.fence);
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        self.keeper.publish(snapshot);
        true
    }
    /// Sets this instance's lease epoch for the game (a renewal answered another one, or a
    /// write found a newer one of this instance's own) and has the latest snapshot written
    /// again under it; the next commits carry it.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Release);
        self.keeper.restamp(&self.id, epoch);
    }
    /// Starts moving the game to a new incarnation: bumps the generation (every older
    /// incarnation is abandoned from here on) and answers the snapshot to resume from, both
    /// under the fence so no publish slips in between. Call [`GameCell::moved`] once the new
    /// incarnation's address is set.
    pub fn begin_move(&self) -> Option<Arc<Snapshot>> {
        let _fence = lock(&self.fence);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.keeper.latest(&self.id)
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
    /// The game's summary as the game has it now (who is connected, the latest move or
    /// tick); the cell's copy when the game does not answer within a second (its thread is
    /// held, or it is restarting).
    pub async fn live_summary(&self) -> GameSummary {
        let Some(game) = self.addr() else { return self.summary() };
        match tokio::time::timeout(Duration::from_secs(1), game.summary().send(Summary)).await {
            Ok(Ok(summary)) => summary,
            _ => self.summary(),
        }
    }
    /// Replaces the lobby summary.
    pub fn set_summary(&self, summary: GameSummary) {
        *lock(&self.summary) = summary;
    }
    /// Replaces the summary; whether it changed.
    pub fn replace_summary(&self, summary: GameSummary) -> bool {
        let mut current = lock(&self.summary);
        if *current == summary {
            return false;
        }
        *current = summary;
        true
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

/// A message that reaches its game however often the game moves: a player's [`Command`],
/// or an admin's injected fault.
pub trait Deliverable: actix::Message<Result = CommandOutcome> + Clone + Send + 'static {
    /// Where it goes in a game's handle.
    fn recipient(handle: &GameHandle) -> Recipient<Self>;
    /// After this the game refuses it (answers `Expired`).
    fn deadline(&self) -> Instant;
    /// Whether an incarnation already took it (so it is not sent to the next one).
    fn taken(&self) -> bool {
        false
    }
}

impl Deliverable for Command {
    fn recipient(handle: &GameHandle) -> Recipient<Self> {
        handle.command()
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Deliverable for InjectFault {
    fn recipient(handle: &GameHandle) -> Recipient<Self> {
        handle.fault()
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
    // A fault is one-shot: a hang the lost incarnation is serving is not served again.
    fn taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }
}

/// Delivers a command to its game until the game answers it, following the game when its
/// arbiter is lost: a command caught in the mailbox of an abandoned incarnation (whose
/// thread is held) is sent again to the new incarnation, which is safe because an abandoned
/// incarnation never applies anything. `Err` is the error to give the client: the command
/// was not applied.
pub async fn deliver<M>(cell: Arc<GameCell>, command: M, metrics: Arc<Metrics>) -> Result<(), ErrorBody>
where
    M: Deliverable,
    M::Result: Send,
{
    /// How long past a command's deadline its sender waits for the game's answer (the
    /// game refuses a command that reaches it after the deadline, so a later answer
    /// cannot exist).
    const ANSWER_GRACE: std::time::Duration = std::time::Duration::from_millis(250);
    let give_up = tokio::time::Instant::from_std(command.deadline() + ANSWER_GRACE);
    loop {
        // Registered before the address is read: a move completing after this point wakes it.
        let moved = cell.wait_moved();
        tokio::pin!(moved);
        moved.as_mut().enable();
        let Some(addr) = cell.addr() else { return Err(ErrorBody::restarting()) };
        let answer = tokio::select! {
            biased;
            answer = M::recipient(&addr).send(command.clone()) => Some(answer),
            () = &mut moved => None,
            () = tokio::time::sleep_until(give_up) => return Err(ErrorBody::not_applied()),
        };
        match answer {
            Some(Ok(CommandOutcome::Answered)) => return Ok(()),
            Some(Ok(CommandOutcome::Expired)) => return Err(ErrorBody::not_applied()),
            // Abandoned (or stopped with its arbiter) before acting: follow the game.
            Some(Ok(CommandOutcome::Moved)) | Some(Err(_)) | None => {
                if command.taken() {
                    return Ok(());
                }
                if cell.addr().is_none_or(|now| now == addr) {
                    // No new incarnation yet (or none coming: the game is being given up
                    // or the server stops): wait for one, or give up at the deadline.
                    tokio::select! {
                        () = &mut moved => {}
                        () = tokio::time::sleep_until(give_up) => return Err(ErrorBody::not_applied()),
                    }
                }
                metrics.command_replayed();
            }
        }
    }
}

/// Sends an admin's fault to its game, following the game if its arbiter is lost (a fault
/// that has not reached it within 10 s is dropped). `panic_on_next_command` is armed before
/// this returns, so a command sent after the admin's answer meets it; the others (a panic,
/// a hang that holds the game's thread) go on in the background.
pub async fn inject(cell: Arc<GameCell>, fault: Fault, metrics: Arc<Metrics>) {
    let id = cell.id.clone();
    let armed_before_answer = matches!(fault, Fault::PanicOnNextCommand);
    let fault = InjectFault { fault, deadline: Instant::now() + Duration::from_secs(10), taken: Arc::default() };
    let work = async move {
        if let Err(e) = deliver(cell, fault, metrics).await {
            tracing::warn!(game_id = %id, "an injected fault did not reach its game: {}", e.message);
        }
    };
    if armed_before_answer {
        work.await;
    } else {
        actix_rt::spawn(work);
    }
}
