//! The real-time runtime: one [`CycleGame`] actor per game of a real-time kind (light
//! cycles, `kind: "lightcycle"`, is the one registered today) on a game arbiter, under
//! `actix::Supervisor`, ticking the kind's pure rules through the object-safe
//! [`crate::game::TickGame`] at `realtime.tick_hz` on a [`Ticker`] that does not drift:
//! each tick takes the latest input of each seat (an AI seat decides in microseconds and
//! never blocks the tick), steps the rules, and sends the tick's frame to both seats
//! through their sockets' bounded queues — the game never waits for a socket; a seat that
//! cannot keep up is closed with 1013 by its socket like any slow client. Every
//! `realtime.snapshot_every_ticks` ticks the state is kept as the last good one. A panic
//! in a tick is caught: the actor stops, its `Supervisor` restarts it, and it resumes from
//! that snapshot under the kind's restart policy (`supervision.kinds.<kind>`), telling
//! both seats; past the limit the game is closed as failed. Nothing here names a kind.
//!
//! The lobby hears of them through the event stream, like the turn-based games. Each game
//! holds its lease in the game directory (claimed at creation, renewed every third of
//! `cluster.lease_ms` with Redis) and hands its snapshot to the SnapshotKeeper, which
//! writes it to the store fenced by that lease's epoch: at each snapshot tick, when a seat
//! is claimed, at the end and at shutdown. When its instance dies, another one resumes it
//! from that snapshot ([`resume`], called by the GameSupervisor's takeover): the seats
//! reconnect, a countdown runs, and the game goes on from the snapshot's tick. A game whose
//! lease another instance took stops at once (its sockets are told 1012).

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::json;

use crate::cluster::Cluster;
use crate::config::RestartPolicyConfig;
use crate::game::kinds::Kind;
use crate::game::{Arena, Outcome, Seat, TickInput};
use crate::ids::{monotonic_ms, now_rfc3339, GameId, TokenHash};
use crate::lobby::EventSink;
use crate::metrics::{Metrics, RestartReason};
use crate::protocol::{ErrorBody, ErrorCode, SharedFrame};
use crate::protocol::{GameStatus, GameSummary, PlayerView, PlayersView};
use crate::store::directory::{Claim, Renewal};
use crate::store::events::EventKind;
use crate::store::keeper::SnapshotKeeper;
use crate::store::snapshot::{SeatRecord, Snapshot};
use crate::supervision::policy::{Decision, RestartLedger};
use crate::supervision::ticker::Ticker;

/// A frame for one seat's socket.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum CycleFrame {
    /// A text frame to send.
    Text(SharedFrame),
    /// Close the socket with this code and reason (the game failed or was removed).
    Close(u16, &'static str),
}

/// The settings of every real-time game.
#[derive(Clone, Debug)]
pub struct CycleSettings {
    /// Ticks per second.
    pub tick_hz: u32,
    /// Keep the state as the last good one every this many ticks.
    pub snapshot_every_ticks: u32,
    /// Grid size.
    pub width: u16,
    /// Grid size.
    pub height: u16,
    /// The restart policy of each real-time kind, by name.
    pub policies: Vec<(&'static str, RestartPolicyConfig)>,
    /// `supervision.default`, for a kind without an entry.
    pub default_policy: RestartPolicyConfig,
    /// A game that never started and has no socket open is removed after this long.
    pub abandon_after: Duration,
}

/// The real-time games of this process, by id.
#[derive(Default)]
pub struct CycleHall {
    games: Mutex<HashMap<GameId, (Addr<CycleGame>, &'static Kind)>>,
}

impl CycleHall {
    /// The game's address, if it is a real-time game here.
    pub fn get(&self, id: &GameId) -> Option<Addr<CycleGame>> {
        self.find(id).map(|(addr, _)| addr)
    }

    /// The game's address and kind, if it is a real-time game here.
    pub fn find(&self, id: &GameId) -> Option<(Addr<CycleGame>, &'static Kind)> {
        self.games.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    fn insert(&self, id: GameId, addr: Addr<CycleGame>, kind: &'static Kind) {
        self.games.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (addr, kind));
    }

    fn remove(&self, id: &GameId) {
        self.games.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// The server is shutting down: every game stops its clock, hands its state to the
    /// keeper and closes its sockets with 1012. Answers the leases to release (within
    /// `within`; a game that does not answer keeps its last snapshot tick).
    pub async fn shut_down(&self, within: Duration) -> Vec<(GameId, u64)> {
        let games: Vec<Addr<CycleGame>> =
            self.games.lock().unwrap_or_else(|e| e.into_inner()).values().map(|(g, _)| g.clone()).collect();
        let asks = games.iter().map(|g| tokio::time::timeout(within, g.send(ShutdownCycle)));
        futures_util::future::join_all(asks).await.into_iter().filter_map(|r| r.ok()?.ok()?).collect()
    }
}

/// The server is shutting down.
#[derive(Message)]
#[rtype(result = "Option<(GameId, u64)>")]
struct ShutdownCycle;

impl Handler<ShutdownCycle> for CycleGame {
    type Result = Option<(GameId, u64)>;

    /// Stops the clock, hands the current state to the keeper (the supervisor flushes it
    /// next) and tells the seats; answers the lease to release.
    fn handle(&mut self, _: ShutdownCycle, _: &mut Context<Self>) -> Self::Result {
        self.ticker = None;
        if self.removed {
            return None;
        }
        self.last_good = self.rules.clone();
        self.persist();
        let reason = if self.env.cluster.shared() {
            "server restarting; your game is saved"
        } else {
            "server shutting down; real-time games are kept in memory only and end with it"
        };
        for v in self.viewers.iter().flatten() {
            v.do_send(CycleFrame::Close(1012, reason));
        }
        self.removed = true;
        Some((self.id.clone(), self.epoch))
    }
}

/// What every real-time game shares: the hall it is listed in, the settings, the metrics
/// and the lobby's event sink.
pub struct CycleEnv {
    /// The games of this process.
    pub hall: Arc<CycleHall>,
    /// From `realtime:` and the kind's policy.
    pub settings: CycleSettings,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The lobby's event stream.
    pub events: Arc<EventSink>,
    /// Where snapshots go (the store, fenced by each game's lease epoch).
    pub keeper: Arc<SnapshotKeeper>,
    /// The leases.
    pub cluster: Arc<Cluster>,
}

/// Starts a new game of the real-time `kind` on `arbiter`: red for the creator, yellow for
/// the AI or for a second human who joins. `None` when `kind` is not a real-time kind.
/// The game's lease epoch (`0` while it has none), with the game's id: `epoch`.
pub fn start(
    arbiter: &ArbiterHandle,
    env: Arc<CycleEnv>,
    id: GameId,
    kind: &'static Kind,
    creator: (String, TokenHash),
    ai: bool,
    epoch: u64,
) -> Option<Addr<CycleGame>> {
    let ticks = kind.ticks()?;
    let rules = (ticks.new_game)(env.settings.width, env.settings.height);
    let seats = [
        Some(SeatRecord { name: creator.0, token_hash: Some(creator.1) }),
        ai.then(|| SeatRecord { name: crate::supervision::supervisor::AI_NAME.to_owned(), token_hash: None }),
    ];
    let game = CycleGame::new(env.clone(), id.clone(), rules, seats, epoch);
    let addr = actix::Supervisor::start_in_arbiter(arbiter, move |_| game);
    env.hall.insert(id, addr.clone(), kind);
    Some(addr)
}

/// Resumes a real-time game from its stored `snapshot` on `arbiter`, under the lease
/// `epoch` this instance just took: its owner died or the server restarted. The players
/// are told when they reconnect; the clock starts again after a countdown once every human
/// seat is back. `None` when the snapshot is not a real-time game's.
pub fn resume(arbiter: &ArbiterHandle, env: Arc<CycleEnv>, snapshot: &Snapshot, epoch: u64) -> Option<Addr<CycleGame>> {
    let rules = snapshot.board.arena()?;
    let kind = crate::game::kinds::by_name(rules.kind())?;
    let mut game = CycleGame::new(env.clone(), snapshot.game_id.clone(), rules, snapshot.seats.clone(), epoch);
    game.restarts = snapshot.restarts;
    game.failed = snapshot.failed;
    game.created_at = snapshot.created_at.clone();
    game.version = snapshot.version;
    game.taken_over = true;
    if game.rules.outcome() != Outcome::InProgress || game.failed {
        game.ended_at = Some(Instant::now());
        game.end_counted = true;
    }
    let addr = actix::Supervisor::start_in_arbiter(arbiter, move |_| game);
    env.hall.insert(snapshot.game_id.clone(), addr.clone(), kind);
    Some(addr)
}

/// One real-time game.
pub struct CycleGame {
    id: GameId,
    rules: Arena,
    last_good: Arena,
    ticker: Option<Ticker>,
    inputs: [Option<TickInput>; 2],
    seats: [Option<SeatRecord>; 2],
    viewers: [Option<Recipient<CycleFrame>>; 2],
    ledger: RestartLedger,
    restarts: u32,
    crashed: bool,
    failed: bool,
    fault_next_tick: bool,
    ended_at: Option<Instant>,
    env: Arc<CycleEnv>,
    /// Its place under `admission.max_games` was given back.
    end_counted: bool,
    created: Instant,
    created_at: String,
    /// The lobby heard of the game (its `Started` event).
    announced: bool,
    /// Taken out of the hall (and the lobby).
    removed: bool,
    /// The lease epoch this instance holds the game under (fences its snapshot writes).
    epoch: u64,
    /// Bumped by every snapshot handed to the keeper.
    version: u64,
    /// Resumed here from the store: players are told so when they join.
    taken_over: bool,
    /// A lease renewal is in flight.
    renewing: bool,
    /// Seats not yet told that this instance took the game over (they join after it).
    untold: [bool; 2],
}

/// The pause between both seats being ready and the first tick.
pub const COUNTDOWN: Duration = Duration::from_millis(2000);

/// How long an ended game stays for its players to see the result.
const KEEP_ENDED: Duration = Duration::from_secs(60);

fn index(seat: Seat) -> usize {
    match seat {
        Seat::Red => 0,
        Seat::Yellow => 1,
    }
}

impl CycleGame {
    fn new(env: Arc<CycleEnv>, id: GameId, rules: Arena, seats: [Option<SeatRecord>; 2], epoch: u64) -> Self {
        CycleGame {
            id,
            last_good: rules.clone(),
            rules,
            ticker: None,
            inputs: [None, None],
            seats,
            viewers: [None, None],
            ledger: RestartLedger::default(),
            restarts: 0,
            crashed: false,
            failed: false,
            fault_next_tick: false,
            ended_at: None,
            env,
            end_counted: false,
            created: Instant::now(),
            created_at: now_rfc3339(),
            announced: false,
            removed: false,
            epoch,
            version: 0,
            taken_over: false,
            renewing: false,
            untold: [false; 2],
        }
    }

    /// Hands the last good state to the keeper, which writes it to the store behind the
    /// game, fenced by this instance's lease epoch.
    fn persist(&mut self) {
        if self.removed {
            return;
        }
        self.version += 1;
        let snapshot = Snapshot {
            game_id: self.id.clone(),
            board: crate::game::Board::ticked(self.last_good.clone()),
            seats: self.seats.clone(),
            created_at: self.created_at.clone(),
            abandoned: false,
            restarts: self.restarts,
            failed: self.failed,
            version: self.version,
            epoch: self.epoch,
        };
        self.env.keeper.publish(Arc::new(snapshot));
    }

    /// Renews this game's lease (with a shared store); gives the game up when another
    /// instance holds it now.
    fn renew(&mut self, ctx: &mut Context<Self>) {
        if self.renewing || self.removed || !self.env.cluster.shared() {
            return;
        }
        self.renewing = true;
        let (cluster, id, epoch) = (self.env.cluster.clone(), self.id.clone(), self.epoch);
        let work = async move {
            if epoch == 0 {
                cluster.claim(&id).await.map(|claim| match claim {
                    Claim::Won(lease) => Renewal::Renewed(lease.epoch),
                    Claim::Held(lease) => Renewal::Lost(lease),
                })
            } else {
                cluster.renew(&id, epoch).await
            }
        };
        ctx.spawn(work.into_actor(self).map(|answer, game, ctx| {
            game.renewing = false;
            match answer {
                Ok(Renewal::Renewed(now)) if now != game.epoch => {
                    tracing::info!(game_id = %game.id, from = game.epoch, to = now, "this instance holds the real-time game's lease again, with a new epoch");
                    game.epoch = now;
                    game.persist();
                }
                Ok(Renewal::Renewed(_)) => {}
                Ok(Renewal::Lost(holder)) => {
                    tracing::warn!(game_id = %game.id, epoch = game.epoch, owner = %holder.instance, "lost the real-time game's lease to another instance; giving the game up");
                    game.give_up(ctx);
                }
                Err(e) => tracing::debug!(game_id = %game.id, "could not renew the real-time game's lease: {e}"),
            }
        }));
    }

    /// Another instance owns the game now: stop at once, without writing, and send the
    /// seats there (1012: reconnect).
    fn give_up(&mut self, ctx: &mut Context<Self>) {
        self.env.metrics.game_given_up();
        self.ticker = None;
        self.failed = true;
        for v in self.viewers.iter().flatten() {
            v.do_send(CycleFrame::Close(1012, "the game moved to another server; reconnecting"));
        }
        self.removed = true;
        self.count_end();
        self.env.hall.remove(&self.id);
        let (keeper, id) = (self.env.keeper.clone(), self.id.clone());
        actix_rt::spawn(async move { keeper.forget(&id, false).await });
        ctx.stop();
    }

    /// The game's lobby entry.
    fn summary(&self) -> GameSummary {
        let view = |seat: Seat| {
            self.seats[index(seat)].as_ref().map(|r| PlayerView {
                name: r.name.clone(),
                connected: r.token_hash.is_none() || self.viewers[index(seat)].is_some(),
                ai: r.token_hash.is_none(),
            })
        };
        let resigned = match self.rules.outcome() {
            Outcome::Won { winner, resigned: true } => Some(winner.other()),
            _ => None,
        };
        GameSummary {
            game_id: self.id.to_string(),
            kind: self.rules.kind(),
            status: self.status(),
            players: PlayersView { red: view(Seat::Red), yellow: view(Seat::Yellow) },
            moves: self.rules.tick(),
            restarts: self.restarts,
            created_at: self.created_at.clone(),
            winner: self.winner(),
            resigned,
        }
    }

    /// Tells the lobby (every instance's, through the event stream).
    fn announce(&self, kind: EventKind) {
        let summary = self.summary();
        if kind == EventKind::Progress {
            self.env.events.progress(&self.id, summary);
        } else {
            self.env.events.publish(&self.id, kind, serde_json::to_value(summary).unwrap_or_default());
        }
    }

    /// Gives the game's place back once it is over (won, drawn, resigned, failed, removed).
    fn count_end(&mut self) {
        if !std::mem::replace(&mut self.end_counted, true) {
            self.env.metrics.game_ended();
        }
    }

    fn period(&self) -> Duration {
        Duration::from_micros(1_000_000 / u64::from(self.env.settings.tick_hz.max(1)))
    }

    fn ai_seat(&self) -> Option<Seat> {
        Seat::ALL.into_iter().find(|s| self.seats[index(*s)].as_ref().is_some_and(|r| r.token_hash.is_none()))
    }

    /// The whole state, for a seat joining or after a restart.
    fn full_frame(&self, you: Option<Seat>) -> SharedFrame {
        let names: Vec<Option<&str>> = self.seats.iter().map(|s| s.as_ref().map(|r| r.name.as_str())).collect();
        let value = json!({
            "type": "arena",
            "kind": self.rules.kind(),
            "game_id": self.id.as_str(),
            "you": you,
            "players": {"red": names[0], "yellow": names[1]},
            "tick_hz": self.env.settings.tick_hz,
            "restarts": self.restarts,
            "status": self.status(),
            "winner": self.winner(),
            "game": self.rules,
        });
        SharedFrame::text(&value.to_string())
    }

    /// The status in Connect Four's vocabulary (the lobby lists both kinds).
    fn status(&self) -> GameStatus {
        if self.failed {
            return GameStatus::Failed;
        }
        match self.rules.outcome() {
            Outcome::InProgress if self.seats[1].is_none() => GameStatus::Waiting,
            Outcome::InProgress => GameStatus::Playing,
            Outcome::Won { .. } => GameStatus::Won,
            Outcome::Draw => GameStatus::Draw,
        }
    }

    fn winner(&self) -> Option<Seat> {
        match self.rules.outcome() {
            Outcome::Won { winner, .. } => Some(winner),
            _ => None,
        }
    }

    fn tick_frame(&self) -> SharedFrame {
        let mut frame = self.rules.tick_view();
        frame.insert("type".to_owned(), json!("tick"));
        frame.insert("tick".to_owned(), json!(self.rules.tick()));
        frame.insert("status".to_owned(), json!(self.status()));
        frame.insert("winner".to_owned(), json!(self.winner()));
        SharedFrame::text(&serde_json::Value::Object(frame).to_string())
    }

    /// This game's kind's restart policy.
    fn policy(&self) -> &RestartPolicyConfig {
        let settings = &self.env.settings;
        let kind = self.rules.kind();
        settings.policies.iter().find(|(k, _)| *k == kind).map_or(&settings.default_policy, |(_, p)| p)
    }

    fn broadcast(&self, frame: &SharedFrame) {
        for v in self.viewers.iter().flatten() {
            // Never waits: the socket queues it, or closes itself as slow.
            v.do_send(CycleFrame::Text(frame.clone()));
        }
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let Some(ticker) = &self.ticker else { return };
        let wait = ticker.wait(Instant::now());
        ctx.run_later(wait, |game, ctx| game.tick(ctx));
    }

    /// Starts ticking, after [`COUNTDOWN`], once both seats are taken and every human seat
    /// has its socket open.
    fn maybe_start(&mut self, ctx: &mut Context<Self>) {
        let ready = Seat::ALL.into_iter().all(|s| match &self.seats[index(s)] {
            Some(r) => r.token_hash.is_none() || self.viewers[index(s)].is_some(),
            None => false,
        });
        if self.ticker.is_none() && ready && !self.failed && self.rules.outcome() == Outcome::InProgress {
            let start = Instant::now() + COUNTDOWN;
            self.ticker = Some(Ticker::new(self.period(), start, Duration::from_millis(2)));
            let frame = json!({"type": "countdown", "starts_in_ms": COUNTDOWN.as_millis() as u64});
            self.broadcast(&SharedFrame::text(&frame.to_string()));
            self.schedule(ctx);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.rules.outcome() != Outcome::InProgress || self.failed {
            return;
        }
        let out = panic::catch_unwind(AssertUnwindSafe(|| self.step()));
        match out {
            Ok(()) => self.schedule(ctx),
            Err(_) => {
                tracing::warn!(game_id = %self.id, kind = self.rules.kind(), tick = self.rules.tick(), "real-time game crashed; restarting it from its last snapshot");
                self.crashed = true;
                ctx.stop();
            }
        }
    }

    /// One tick of game code: inputs, the rules, the frame out, the snapshot.
    fn step(&mut self) {
        let Some(ticker) = self.ticker.as_mut() else { return };
        ticker.fire(Instant::now());
        if std::mem::take(&mut self.fault_next_tick) {
            panic!("injected fault: an admin asked this real-time game to panic");
        }
        let mut inputs = std::mem::take(&mut self.inputs);
        if let Some(ai) = self.ai_seat() {
            inputs[index(ai)] = Some(self.rules.ai_input(ai));
        }
        self.rules = self.rules.step(inputs);
        self.broadcast(&self.tick_frame());
        let every = self.env.settings.snapshot_every_ticks.max(1);
        if self.rules.tick() % every == 0 || self.rules.outcome() != Outcome::InProgress {
            self.last_good = self.rules.clone();
            self.persist();
            if self.rules.outcome() == Outcome::InProgress {
                self.announce(EventKind::Progress);
            }
        }
        if self.rules.outcome() != Outcome::InProgress {
            self.ended_at = Some(Instant::now());
            self.count_end();
            self.announce(EventKind::Finished);
            tracing::info!(game_id = %self.id, kind = self.rules.kind(), ticks = self.rules.tick(), outcome = ?self.rules.outcome(), late_ticks = self.ticker.as_ref().map_or(0, |t| t.stats().late), "real-time game ended");
        }
    }

    fn seat_of(&self, token_hash: &TokenHash) -> Option<Seat> {
        Seat::ALL.into_iter().find(|s| {
            self.seats[index(*s)].as_ref().and_then(|r| r.token_hash.as_ref()).is_some_and(|h| h.matches(token_hash))
        })
    }
}

impl Actor for CycleGame {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.removed {
            return; // given up or shut down: its Supervisor restarted an empty shell
        }
        if !std::mem::replace(&mut self.announced, true) {
            // The first write: a new game's creation, or a takeover stamped with this
            // instance's epoch before anything else is written.
            self.persist();
            if self.taken_over {
                tracing::info!(game_id = %self.id, kind = self.rules.kind(), tick = self.rules.tick(), epoch = self.epoch, "took the real-time game over from its last snapshot");
                self.untold = [true; 2];
                self.announce(EventKind::TakenOver);
            } else {
                self.announce(EventKind::Started);
            }
        }
        // Every start, a restart after a crash included: the context's timers went with it.
        if self.env.cluster.shared() {
            ctx.run_interval(self.env.cluster.lease / 3, |game, ctx| game.renew(ctx));
        }
        if self.ticker.is_some() {
            // A restart: resume on a fresh schedule.
            self.ticker = Some(Ticker::new(self.period(), Instant::now(), Duration::from_millis(2)));
            self.schedule(ctx);
        } else {
            self.maybe_start(ctx);
        }
        ctx.run_interval(Duration::from_secs(5), |game, ctx| {
            let ended_long_ago = game.ended_at.is_some_and(|t| t.elapsed() > KEEP_ENDED);
            let nobody = game.viewers.iter().all(|v| v.as_ref().is_none_or(|v| !v.connected()));
            // Never started, and nobody has had a socket open for `abandon_after`.
            let abandoned = game.ticker.is_none() && game.created.elapsed() > game.env.settings.abandon_after;
            if nobody && (ended_long_ago || game.failed || abandoned) && !game.removed {
                game.removed = true;
                game.count_end();
                game.announce(EventKind::Removed);
                game.env.hall.remove(&game.id);
                // Its snapshot goes from the store (a game nobody came back to must not be
                // resumed later), and its lease and epoch counter with it.
                let (keeper, cluster, id) = (game.env.keeper.clone(), game.env.cluster.clone(), game.id.clone());
                actix_rt::spawn(async move {
                    keeper.forget(&id, true).await;
                    if let Err(e) = cluster.database.call(cluster.stores.directory.forget(&id)).await {
                        tracing::debug!(game_id = %id, "could not forget a removed game's lease: {e}");
                    }
                });
                ctx.stop();
            }
        });
    }
}

/// A restart after a crash: the state goes back to the last snapshot, the policy decides
/// the delay (or closes the game), and both seats are told.
impl Supervised for CycleGame {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // A renewal in flight went with the old context.
        self.renewing = false;
        if !std::mem::take(&mut self.crashed) {
            // Stopped on purpose (removed): stay stopped.
            self.failed = true;
            return;
        }
        let policy = self.policy().clone();
        let decision = self.ledger.record(&policy, monotonic_ms(), fastrand::f64());
        let lost = self.rules.tick().saturating_sub(self.last_good.tick());
        self.rules = self.last_good.clone();
        self.inputs = [None, None];
        match decision {
            Decision::Restart { attempt, delay } => {
                self.restarts += 1;
                self.env.metrics.game_restarted(self.rules.kind(), RestartReason::Panic);
                self.announce(EventKind::Restarted);
                tracing::info!(game_id = %self.id, kind = self.rules.kind(), attempt, delay_ms = delay.as_millis() as u64, resumed_at = self.rules.tick(), lost_ticks = lost, "real-time game restarted from its snapshot");
                let notice = json!({"type": "game_restarted", "reason": "panic", "restarts": self.restarts,
                    "resumed_at_tick": self.rules.tick(), "lost_ticks": lost, "retry_after_ms": delay.as_millis() as u64});
                self.broadcast(&SharedFrame::text(&notice.to_string()));
                self.persist();
                if !delay.is_zero() {
                    ctx.wait(actix::fut::wrap_future::<_, Self>(tokio::time::sleep(delay)).map(|(), _, _| {}));
                }
                for seat in Seat::ALL {
                    if let Some(v) = &self.viewers[index(seat)] {
                        v.do_send(CycleFrame::Text(self.full_frame(Some(seat))));
                    }
                }
            }
            Decision::GiveUp { restarts_in_window } => {
                self.failed = true;
                self.persist();
                self.env.metrics.game_failed(self.rules.kind());
                self.count_end();
                self.announce(EventKind::RestartLimitExceeded);
                tracing::error!(game_id = %self.id, kind = self.rules.kind(), restarts_in_window, "real-time game crashed past its limit; closing it");
                let error = ErrorBody::new(ErrorCode::GameFailed, "the game crashed too often and is closed");
                let frame = json!({"type": "error", "error": error});
                self.broadcast(&SharedFrame::text(&frame.to_string()));
                for v in self.viewers.iter().flatten() {
                    v.do_send(CycleFrame::Close(1011, "game failed"));
                }
            }
        }
    }
}

/// The game's lobby entry, straight from the game (the shared lobby hears of a new game a
/// little later, through the event stream).
#[derive(Message)]
#[rtype(result = "GameSummary")]
pub struct CycleSummary;

impl Handler<CycleSummary> for CycleGame {
    type Result = MessageResult<CycleSummary>;

    fn handle(&mut self, _: CycleSummary, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.summary())
    }
}

/// A snapshot write of the game found a newer epoch this instance took itself (a claim or
/// renewal it stopped waiting for ran in the store later): the game goes on under it, and
/// its snapshot is written again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CycleEpoch(pub u64);

impl Handler<CycleEpoch> for CycleGame {
    type Result = ();

    fn handle(&mut self, msg: CycleEpoch, _: &mut Context<Self>) {
        if !self.removed {
            if msg.0 > self.epoch {
                tracing::info!(game_id = %self.id, from = self.epoch, to = msg.0, "a snapshot write was behind this instance's own newer epoch; the real-time game goes on under it");
                self.epoch = msg.0;
            }
            self.env.keeper.restamp(&self.id, self.epoch);
        }
    }
}

/// The keeper's write was refused: another instance owns the game now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GiveUpCycle;

impl Handler<GiveUpCycle> for CycleGame {
    type Result = ();

    fn handle(&mut self, _: GiveUpCycle, ctx: &mut Context<Self>) {
        if !self.removed {
            tracing::warn!(game_id = %self.id, epoch = self.epoch, "this instance's snapshot write was refused: another instance owns the real-time game; giving it up");
            self.give_up(ctx);
        }
    }
}

/// Takes the free seat for a second human.
#[derive(Message)]
#[rtype(result = "Result<Seat, ErrorBody>")]
pub struct ClaimCycleSeat {
    /// The joiner's name.
    pub name: String,
    /// The hash of the token made for them.
    pub token_hash: TokenHash,
}

impl Handler<ClaimCycleSeat> for CycleGame {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: ClaimCycleSeat, ctx: &mut Context<Self>) -> Self::Result {
        if self.failed {
            return Err(ErrorBody::game_failed());
        }
        if self.seats[1].is_some() {
            return Err(ErrorBody::new(ErrorCode::GameFull, "both seats are taken"));
        }
        self.seats[1] = Some(SeatRecord { name: msg.name, token_hash: Some(msg.token_hash) });
        self.persist();
        self.broadcast(&self.full_frame(None));
        self.announce(EventKind::Progress);
        self.maybe_start(ctx);
        Ok(Seat::Yellow)
    }
}

/// A socket presents a seat's token: it becomes that seat's viewer (replacing an older
/// socket of the same seat, which is told 4409) and gets the whole state.
#[derive(Message)]
#[rtype(result = "Result<Seat, ErrorBody>")]
pub struct AttachCycle {
    /// The presented token's hash.
    pub token_hash: TokenHash,
    /// Where its frames go.
    pub viewer: Recipient<CycleFrame>,
    /// The seat this socket already holds, if any: one socket holds at most one seat (the
    /// other seat's token is FORBIDDEN, as on a turn-based socket).
    pub holding: Option<Seat>,
}

impl Handler<AttachCycle> for CycleGame {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: AttachCycle, ctx: &mut Context<Self>) -> Self::Result {
        let Some(seat) = self.seat_of(&msg.token_hash) else {
            return Err(ErrorBody::new(ErrorCode::Unauthorized, "this token holds no seat in this game"));
        };
        if let Some(held) = msg.holding.filter(|held| *held != seat) {
            return Err(crate::protocol::seat_held(held));
        }
        if let Some(old) = self.viewers[index(seat)].replace(msg.viewer.clone()) {
            if old != msg.viewer {
                old.do_send(CycleFrame::Close(4409, "this seat was opened in another tab"));
            }
        }
        if std::mem::take(&mut self.untold[index(seat)]) {
            let notice = json!({"type": "game_restarted", "reason": "taken_over", "restarts": self.restarts,
                "resumed_at_tick": self.rules.tick(), "lost_ticks": 0, "retry_after_ms": 0});
            msg.viewer.do_send(CycleFrame::Text(SharedFrame::text(&notice.to_string())));
        }
        msg.viewer.do_send(CycleFrame::Text(self.full_frame(Some(seat))));
        self.maybe_start(ctx);
        Ok(seat)
    }
}

/// A seat's input for the next tick (the latest one before the tick counts).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CycleInput {
    /// Whose.
    pub seat: Seat,
    /// The input, as its kind read it (`None`: resign).
    pub input: Option<TickInput>,
}

impl Handler<CycleInput> for CycleGame {
    type Result = ();

    fn handle(&mut self, msg: CycleInput, _: &mut Context<Self>) {
        if self.rules.outcome() != Outcome::InProgress || self.failed {
            return;
        }
        match msg.input {
            Some(input) => self.inputs[index(msg.seat)] = Some(input),
            None => {
                self.rules = self.rules.resign(msg.seat);
                self.last_good = self.rules.clone();
                self.persist();
                self.ended_at = Some(Instant::now());
                self.count_end();
                self.broadcast(&self.tick_frame());
                self.announce(EventKind::Finished);
            }
        }
    }
}

/// A seat's socket went away.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachCycle {
    /// Whose.
    pub seat: Seat,
    /// The socket leaving.
    pub viewer: Recipient<CycleFrame>,
}

impl Handler<DetachCycle> for CycleGame {
    type Result = ();

    fn handle(&mut self, msg: DetachCycle, _: &mut Context<Self>) {
        if self.viewers[index(msg.seat)].as_ref() == Some(&msg.viewer) {
            self.viewers[index(msg.seat)] = None;
        }
    }
}

/// The admin fault: the next tick panics, as a bug in it would.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CycleFault;

impl Handler<CycleFault> for CycleGame {
    type Result = ();

    fn handle(&mut self, _: CycleFault, _: &mut Context<Self>) {
        self.fault_next_tick = true;
    }
}
