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
//! The lobby hears of them through the event stream, like the turn-based games. Not yet:
//! they live in this process only (no Redis snapshot, lease or takeover).

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::json;

use crate::config::RestartPolicyConfig;
use crate::game::kinds::Kind;
use crate::game::{Arena, Outcome, Seat, TickInput};
use crate::ids::{monotonic_ms, now_rfc3339, GameId, TokenHash};
use crate::lobby::EventSink;
use crate::metrics::{Metrics, RestartReason};
use crate::protocol::{ErrorBody, ErrorCode, SharedFrame};
use crate::protocol::{GameStatus, GameSummary, PlayerView, PlayersView};
use crate::store::events::EventKind;
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

struct SeatRecord {
    name: String,
    token_hash: Option<TokenHash>,
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

    /// The server is shutting down: every game closes its sockets with 1012 (these games
    /// end with the process).
    pub fn shut_down(&self) {
        for (game, _) in self.games.lock().unwrap_or_else(|e| e.into_inner()).values() {
            game.do_send(ShutdownCycle);
        }
    }
}

/// The server is shutting down.
#[derive(Message)]
#[rtype(result = "()")]
struct ShutdownCycle;

impl Handler<ShutdownCycle> for CycleGame {
    type Result = ();

    fn handle(&mut self, _: ShutdownCycle, _: &mut Context<Self>) {
        self.ticker = None;
        for v in self.viewers.iter().flatten() {
            v.do_send(CycleFrame::Close(1012, "server shutting down; real-time games end with it"));
        }
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
}

/// Starts a new game of the real-time `kind` on `arbiter`: red for the creator, yellow for
/// the AI or for a second human who joins. `None` when `kind` is not a real-time kind.
pub fn start(
    arbiter: &ArbiterHandle,
    env: Arc<CycleEnv>,
    id: GameId,
    kind: &'static Kind,
    creator: (String, TokenHash),
    ai: bool,
) -> Option<Addr<CycleGame>> {
    let ticks = kind.ticks()?;
    let game_id = id.clone();
    let game_env = env.clone();
    let rules = (ticks.new_game)(env.settings.width, env.settings.height);
    let addr = actix::Supervisor::start_in_arbiter(arbiter, move |_| {
        let env = game_env;
        CycleGame {
            id: game_id,
            last_good: rules.clone(),
            rules,
            ticker: None,
            inputs: [None, None],
            seats: [
                Some(SeatRecord { name: creator.0, token_hash: Some(creator.1) }),
                ai.then(|| SeatRecord { name: crate::supervision::supervisor::AI_NAME.to_owned(), token_hash: None }),
            ],
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
        }
    });
    env.hall.insert(id, addr.clone(), kind);
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
        if self.ticker.is_none() && ready && !self.failed {
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
        if !std::mem::replace(&mut self.announced, true) {
            self.announce(EventKind::Started);
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
                ctx.stop();
            }
        });
    }
}

/// A restart after a crash: the state goes back to the last snapshot, the policy decides
/// the delay (or closes the game), and both seats are told.
impl Supervised for CycleGame {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
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
}

impl Handler<AttachCycle> for CycleGame {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: AttachCycle, ctx: &mut Context<Self>) -> Self::Result {
        let Some(seat) = self.seat_of(&msg.token_hash) else {
            return Err(ErrorBody::new(ErrorCode::Unauthorized, "this token holds no seat in this game"));
        };
        if let Some(old) = self.viewers[index(seat)].replace(msg.viewer.clone()) {
            if old != msg.viewer {
                old.do_send(CycleFrame::Close(4409, "this seat was opened in another tab"));
            }
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
