//! The real-time actor: one [`TickActor`] per game of a real-time kind (light cycles,
//! `kind: "lightcycle"`, is the one registered today), hosted like every game — a cell in
//! the directory, placed on a game arbiter by the supervisor under `actix::Supervisor`,
//! reached through the same messages ([`crate::hosting::messages`]), its lease claimed,
//! renewed and given up by the supervisor, its seats on any instance (the relay carries a
//! remote seat's inputs and frames). It ticks the kind's pure rules through the
//! object-safe [`crate::game::TickGame`] at `realtime.tick_hz` on a [`Ticker`] that does
//! not drift: each tick takes the latest input of each seat (an AI seat decides in
//! microseconds and never blocks the tick), steps the rules, and sends the tick's frame to
//! both seats' routes — the game never waits for a socket; a seat that cannot keep up is
//! closed with 1013 by its socket like any slow client. Every
//! `realtime.snapshot_every_ticks` ticks the state is kept as the last good one and handed
//! to the keeper, fenced by the lease epoch. A panic in a tick (or in a command) is caught:
//! the actor stops, its `Supervisor` restarts it, and it resumes from that snapshot under
//! the kind's restart policy, telling both seats; past the limit the game is closed as
//! failed. A tick stamps the cell's busy time, so the watchdog treats a hung tick as it
//! treats a hung turn-based handler. Nothing here names a kind.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::config::RestartPolicyConfig;
use crate::game::{Arena, Board, Outcome, Seat, TickInput};
use crate::hosting::env::GameEnv;
use crate::hosting::messages::{Action, CommandOutcome, StartMode, ToSession, GAME_MAILBOX_CAPACITY};
use crate::hosting::registry::{GameCell, RunState, LEASE_RECHECK};
use crate::ids::{monotonic_ms, TokenHash};
use crate::metrics::RestartReason;
use crate::protocol::close;
use crate::protocol::{
    ErrorBody, ErrorCode, GameStatus, GameSummary, PlayerView, PlayersView, SeatNames, ServerFrame, SharedFrame,
};
use crate::runtime::panic_hook::GameScope;
use crate::runtime::policy::Decision;
use crate::runtime::ticker::Ticker;
use crate::store::events::EventKind;
use crate::store::snapshot::{seat_index, SeatRecord, Snapshot};

/// The pause between both seats being ready and the first tick.
pub const COUNTDOWN: Duration = Duration::from_millis(2000);

/// One real-time game.
pub struct TickActor {
    pub(super) cell: Arc<GameCell>,
    pub(super) generation: u64,
    pub(super) env: Arc<GameEnv>,
    /// Seats, creation time, restarts, failure and the version of the last snapshot; its
    /// board is the last good state's.
    pub(super) state: Snapshot,
    pub(super) rules: Arena,
    pub(super) last_good: Arena,
    pub(super) ticker: Option<Ticker>,
    pub(super) inputs: [Option<TickInput>; 2],
    pub(super) mode: StartMode,
    pub(super) started_once: bool,
    /// A panic stopped the actor (as opposed to a stop on purpose).
    pub(super) crashed: bool,
    /// Why the next restart happens.
    pub(super) pending_failure: Option<RestartReason>,
    pub(super) fault_next_tick: bool,
    pub(super) armed_fault: bool,
    /// Seats not yet told that this instance took the game over (they join after it).
    pub(super) untold: [bool; 2],
}

impl TickActor {
    /// An incarnation of the real-time game in `cell`, starting from `snapshot` (whose
    /// board carries the kind's state: [`Board::ticked`]). `None` when it carries none.
    pub fn new(cell: Arc<GameCell>, env: Arc<GameEnv>, snapshot: Arc<Snapshot>, mode: StartMode) -> Option<Self> {
        let rules = snapshot.board.arena()?;
        let mut state = (*snapshot).clone();
        state.failed |= mode == StartMode::Tombstone;
        Some(TickActor {
            generation: cell.generation.load(Ordering::Acquire),
            cell,
            env,
            state,
            last_good: rules.clone(),
            rules,
            ticker: None,
            inputs: [None, None],
            mode,
            started_once: false,
            crashed: false,
            pending_failure: None,
            fault_next_tick: false,
            armed_fault: false,
            untold: [false; 2],
        })
    }

    pub(super) fn abandoned(&self) -> bool {
        self.cell.generation.load(Ordering::Acquire) != self.generation
    }

    pub(super) fn policy(&self) -> &RestartPolicyConfig {
        self.env.policy(self.cell.kind)
    }

    pub(super) fn in_play(&self) -> bool {
        self.rules.outcome() == Outcome::InProgress && !self.state.failed && !self.state.abandoned
    }

    /// Runs game code with the panic boundary, the busy stamp for the hang watchdog and the
    /// panic hook's game id. On a panic: stop; the `Supervisor` restarts from the snapshot.
    pub(super) fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Option<R> {
        let scope = GameScope::enter(self.cell.id.as_str());
        self.cell.busy_since_ms.store(monotonic_ms(), Ordering::Release);
        let out = panic::catch_unwind(AssertUnwindSafe(|| f(self, ctx)));
        drop(scope);
        if self.abandoned() {
            // The watchdog moved the game while this ran: the new incarnation owns it.
            self.ticker = None;
            return None;
        }
        self.cell.busy_since_ms.store(0, Ordering::Release);
        match out {
            Ok(r) => Some(r),
            Err(_) => {
                self.env.metrics.panic_caught();
                tracing::warn!(game_id = %self.cell.id, kind = self.cell.kind, tick = self.rules.tick(), "real-time game crashed; restarting it from its last snapshot");
                self.crashed = true;
                self.pending_failure = Some(RestartReason::Panic);
                self.cell.set_run_state(RunState::Crashed);
                self.publish_event(EventKind::Crashed);
                ctx.stop();
                None
            }
        }
    }

    /// Hands the last good state to the keeper, which writes it to the store behind the
    /// game, fenced by this instance's lease epoch; refused once the game has moved on.
    pub(super) fn persist(&mut self) -> bool {
        self.state.version += 1;
        self.state.board = Board::ticked(self.last_good.clone());
        self.state.epoch = self.cell.epoch.load(Ordering::Acquire);
        self.cell.publish_snapshot(self.generation, Arc::new(self.state.clone()))
    }

    pub(super) fn status(&self) -> GameStatus {
        if self.state.failed {
            return GameStatus::Failed;
        }
        match self.rules.outcome() {
            Outcome::InProgress if self.state.abandoned => GameStatus::Abandoned,
            Outcome::InProgress if self.state.seats.iter().any(Option::is_none) => GameStatus::Waiting,
            Outcome::InProgress => GameStatus::Playing,
            Outcome::Won { .. } => GameStatus::Won,
            Outcome::Draw => GameStatus::Draw,
        }
    }

    pub(super) fn winner(&self) -> Option<Seat> {
        match self.rules.outcome() {
            Outcome::Won { winner, .. } => Some(winner),
            _ => None,
        }
    }

    /// The game's lobby entry (`moves` counts ticks).
    pub(super) fn summary(&self) -> GameSummary {
        let view = |seat: Seat| {
            self.state.seat(seat).map(|r| PlayerView {
                name: r.name.clone(),
                connected: r.is_ai() || self.cell.seat_connected(seat),
                ai: r.is_ai(),
            })
        };
        let resigned = match self.rules.outcome() {
            Outcome::Won { winner, resigned: true } => Some(winner.other()),
            _ => None,
        };
        GameSummary {
            game_id: self.cell.id.to_string(),
            kind: self.rules.kind(),
            status: self.status(),
            players: PlayersView { red: view(Seat::Red), yellow: view(Seat::Yellow) },
            moves: self.rules.tick(),
            restarts: self.state.restarts,
            created_at: self.state.created_at.clone(),
            winner: self.winner(),
            resigned,
        }
    }

    /// Tells the lobby (every instance's, through the event stream) and keeps the cell's
    /// summary current.
    pub(super) fn publish_event(&self, kind: EventKind) {
        if self.abandoned() {
            return;
        }
        let summary = self.summary();
        self.cell.set_summary(summary.clone());
        if kind == EventKind::Progress {
            self.env.events.progress(&self.cell.id, summary);
        } else {
            self.env.events.publish(&self.cell.id, kind, serde_json::to_value(summary).unwrap_or_default());
        }
    }

    /// The game is over (won, drawn, resigned, failed, abandoned): its place is free.
    pub(super) fn ended(&mut self) {
        if self.cell.ended_at_ms.compare_exchange(0, monotonic_ms(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.env.metrics.game_ended();
        }
        self.ticker = None;
    }

    /// The whole state, for a seat joining or after a restart.
    pub(super) fn full_frame(&self, you: Option<Seat>) -> SharedFrame {
        let name = |seat: Seat| self.state.seat(seat).map(|r| r.name.clone());
        ServerFrame::Arena {
            kind: self.rules.kind(),
            game_id: self.cell.id.to_string(),
            you,
            players: SeatNames { red: name(Seat::Red), yellow: name(Seat::Yellow) },
            tick_hz: self.env.ticks.tick_hz,
            restarts: self.state.restarts,
            status: self.status(),
            winner: self.winner(),
            game: self.rules.clone(),
        }
        .to_frame()
    }

    pub(super) fn tick_frame(&self) -> SharedFrame {
        ServerFrame::Tick {
            tick: self.rules.tick(),
            status: self.status(),
            winner: self.winner(),
            view: self.rules.tick_view(),
        }
        .to_frame()
    }

    /// Sends a frame to every attached socket; never waits (each socket queues it, or
    /// closes itself as slow). An abandoned incarnation says nothing.
    pub(super) fn broadcast(&self, frame: &SharedFrame) {
        if self.abandoned() {
            return;
        }
        for route in self.cell.routes().into_iter().flatten() {
            route.to.do_send(ToSession::Frame(frame.clone()));
        }
    }

    pub(super) fn close_all(&self, code: u16, reason: &'static str) {
        for route in self.cell.routes().into_iter().flatten() {
            route.to.do_send(ToSession::Close { code, reason });
        }
    }

    pub(super) fn ai_seat(&self) -> Option<Seat> {
        Seat::ALL.into_iter().find(|s| self.state.seat(*s).is_some_and(SeatRecord::is_ai))
    }

    pub(super) fn schedule(&mut self, ctx: &mut Context<Self>) {
        let Some(ticker) = &self.ticker else { return };
        let wait = ticker.wait(Instant::now());
        ctx.run_later(wait, |game, ctx| game.tick(ctx));
    }

    /// Starts ticking, after [`COUNTDOWN`], once both seats are taken and every human seat
    /// has its socket open.
    pub(super) fn maybe_start(&mut self, ctx: &mut Context<Self>) {
        let ready = Seat::ALL.into_iter().all(|s| match self.state.seat(s) {
            Some(r) => r.is_ai() || self.cell.seat_connected(s),
            None => false,
        });
        if self.ticker.is_none() && ready && self.in_play() && !self.abandoned() {
            let start = Instant::now() + COUNTDOWN;
            self.ticker = Some(Ticker::new(self.env.ticks.period(), start, Duration::from_millis(2)));
            self.broadcast(&ServerFrame::Countdown { starts_in_ms: COUNTDOWN.as_millis() as u64 }.to_frame());
            self.schedule(ctx);
        }
    }

    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.abandoned() {
            self.ticker = None;
            return;
        }
        if !self.in_play() || self.ticker.is_none() {
            return;
        }
        if !self.cell.lease_confirmed() {
            // Paused: another instance may own the game until a renewal confirms the lease.
            // The clock waits (the ticks not played are not played later: the ticker
            // resynchronises); the players were told `game_paused`.
            ctx.run_later(LEASE_RECHECK, |game, ctx| game.tick(ctx));
            return;
        }
        if self.guarded(ctx, |game, _| game.step()).is_some() {
            self.schedule(ctx);
        }
    }

    /// One tick of game code: inputs, the rules, the frame out, the snapshot.
    pub(super) fn step(&mut self) {
        let Some(ticker) = self.ticker.as_mut() else { return };
        ticker.fire(Instant::now());
        if std::mem::take(&mut self.fault_next_tick) {
            panic!("injected fault: an admin asked this real-time game to panic");
        }
        let mut inputs = std::mem::take(&mut self.inputs);
        if let Some(ai) = self.ai_seat() {
            inputs[seat_index(ai)] = Some(self.rules.ai_input(ai));
        }
        self.rules = self.rules.step(inputs);
        self.broadcast(&self.tick_frame());
        let every = self.env.ticks.snapshot_every_ticks.max(1);
        let over = self.rules.outcome() != Outcome::InProgress;
        if self.rules.tick() % every == 0 || over {
            self.last_good = self.rules.clone();
            self.persist();
            if !over {
                self.publish_event(EventKind::Progress);
            }
        }
        if over {
            let late = self.ticker.as_ref().map_or(0, |t| t.stats().late);
            self.ended();
            self.publish_event(EventKind::Finished);
            tracing::info!(game_id = %self.cell.id, kind = self.rules.kind(), ticks = self.rules.tick(), outcome = ?self.rules.outcome(), late_ticks = late, "real-time game ended");
        }
    }

    /// Restarts after a failure (a panic, or a hang the watchdog moved off its thread): the
    /// state goes back to the last snapshot, the policy decides the delay (or closes the
    /// game), and both seats are told.
    pub(super) fn restart(&mut self, ctx: &mut Context<Self>, reason: RestartReason) {
        let decision = {
            let mut ledger = self.cell.ledger.lock().unwrap_or_else(|e| e.into_inner());
            ledger.record(self.policy(), monotonic_ms(), fastrand::f64())
        };
        if let Some(last) = self.cell.snapshot().and_then(|s| s.board.arena()) {
            self.last_good = last;
        }
        let lost = self.rules.tick().saturating_sub(self.last_good.tick());
        self.rules = self.last_good.clone();
        self.inputs = [None, None];
        let was_ticking = self.ticker.take().is_some() || self.rules.tick() > 0;
        match decision {
            Decision::Restart { attempt, delay } => {
                self.state.restarts += 1;
                self.env.metrics.game_restarted(self.cell.kind, reason);
                self.publish_event(EventKind::Restarted);
                tracing::info!(game_id = %self.cell.id, kind = self.cell.kind, reason = reason.as_str(), attempt, delay_ms = delay.as_millis() as u64, resumed_at = self.rules.tick(), lost_ticks = lost, "real-time game restarted from its snapshot");
                self.broadcast(
                    &ServerFrame::TickRestarted {
                        reason: "panic",
                        restarts: self.state.restarts,
                        resumed_at_tick: self.rules.tick(),
                        lost_ticks: lost,
                        retry_after_ms: delay.as_millis() as u64,
                    }
                    .to_frame(),
                );
                self.persist();
                if !delay.is_zero() {
                    self.cell.set_run_state(RunState::Restarting);
                    ctx.wait(actix::fut::wrap_future::<_, Self>(tokio::time::sleep(delay)).map(|(), _, _| {}));
                }
                self.cell.set_run_state(RunState::Running);
                for route in self.cell.routes().into_iter().flatten() {
                    let seat =
                        Seat::ALL.into_iter().find(|s| self.cell.route(*s).is_some_and(|r| r.conn == route.conn));
                    route.to.do_send(ToSession::Frame(self.full_frame(seat)));
                }
                if was_ticking && self.in_play() {
                    // Resume on a fresh schedule.
                    self.ticker = Some(Ticker::new(self.env.ticks.period(), Instant::now(), Duration::from_millis(2)));
                    self.schedule(ctx);
                } else {
                    self.maybe_start(ctx);
                }
            }
            Decision::GiveUp { restarts_in_window } => {
                self.state.failed = true;
                self.cell.set_run_state(RunState::Failed);
                self.persist();
                self.env.metrics.game_failed(self.cell.kind);
                self.ended();
                self.publish_event(EventKind::RestartLimitExceeded);
                tracing::error!(game_id = %self.cell.id, kind = self.cell.kind, restarts_in_window, "real-time game crashed past its limit; closing it");
                let error = ErrorBody::new(ErrorCode::GameFailed, "the game crashed too often and is closed");
                self.broadcast(&ServerFrame::Error { error, in_reply_to: None }.to_frame());
                self.close_all(close::GAME_FAILED, "game failed");
            }
        }
    }

    pub(super) fn seat_of(&self, token_hash: &TokenHash) -> Option<Seat> {
        self.state.seat_of(token_hash)
    }

    pub(super) fn answer_error(
        &self,
        to: &Recipient<ToSession>,
        error: ErrorBody,
        in_reply_to: &'static str,
    ) -> CommandOutcome {
        if self.abandoned() {
            return CommandOutcome::Moved;
        }
        self.env.metrics.error_sent(error.code);
        to.do_send(ToSession::Frame(ServerFrame::Error { error, in_reply_to: Some(in_reply_to) }.to_frame()));
        CommandOutcome::Answered
    }

    pub(super) fn act(&mut self, seat: Seat, action: Action) {
        if std::mem::take(&mut self.armed_fault) {
            panic!("injected fault (admin): panic in a {} command", action.type_name());
        }
        if !self.in_play() {
            return; // a late input or resignation changes nothing
        }
        match action {
            Action::Input(input) => self.inputs[seat_index(seat)] = Some(input),
            Action::Resign => {
                self.rules = self.rules.resign(seat);
                self.last_good = self.rules.clone();
                self.persist();
                self.ended();
                self.broadcast(&self.tick_frame());
                self.publish_event(EventKind::Finished);
            }
            Action::Move(_) | Action::Chat(_) => {}
        }
    }
}

impl Actor for TickActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(GAME_MAILBOX_CAPACITY);
        if std::mem::replace(&mut self.started_once, true) || self.abandoned() {
            return; // a restart: `restarting` resumed it (or it was given up)
        }
        match self.mode {
            StartMode::Fresh => {
                // Counted by the supervisor when it created the game (admission reads it).
                tracing::info!(game_id = %self.cell.id, kind = self.cell.kind, vs_ai = self.state.vs_ai(), "real-time game created");
                self.publish_event(EventKind::Started);
                self.maybe_start(ctx);
            }
            StartMode::TakenOver => {
                if !self.state.ended() {
                    self.env.metrics.game_started(self.cell.kind);
                }
                // The first write: stamped with this instance's epoch before anything else.
                self.persist();
                tracing::info!(game_id = %self.cell.id, kind = self.cell.kind, tick = self.rules.tick(), epoch = self.cell.epoch.load(Ordering::Acquire), "took the real-time game over from its last snapshot");
                self.untold = [true; 2];
                self.publish_event(EventKind::TakenOver);
                if !self.in_play() {
                    self.ended();
                }
            }
            StartMode::Moved | StartMode::Resume => {
                self.publish_event(EventKind::Moved);
                for seat in Seat::ALL {
                    if let Some(route) = self.cell.route(seat) {
                        route.to.do_send(ToSession::Frame(self.full_frame(Some(seat))));
                    }
                }
                self.maybe_start(ctx);
            }
            StartMode::Recover(reason) => {
                if reason == RestartReason::Hang {
                    self.publish_event(EventKind::HangDetected);
                }
                self.restart(ctx, reason);
            }
            StartMode::Tombstone => {}
        }
    }
}

/// A restart after a crash resumes from the last snapshot; a stop on purpose stays stopped.
impl Supervised for TickActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // Never call ctx.stop() here: it spins the arbiter (docs/DESIGN.md D1).
        if self.abandoned() || !std::mem::take(&mut self.crashed) {
            self.ticker = None;
            return;
        }
        let reason = self.pending_failure.take().unwrap_or(RestartReason::Panic);
        self.restart(ctx, reason);
    }
}
