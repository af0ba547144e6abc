//! TurnActor is an actor. It alone owns one game's state; sessions only send it commands.
//! Every handler and every async result runs inside `catch_unwind`: on a panic the actor
//! discards its state and stops, and actix's `Supervisor` restarts the same struct, which
//! restores its last good snapshot under the configured restart policy (docs/DESIGN.md D1–D3).

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use crate::config::RestartPolicyConfig;
use crate::game::{Outcome, Seat};
use crate::hosting::env::GameEnv;
use crate::hosting::messages::{Action, CommandOutcome, StartMode, ToSession, GAME_MAILBOX_CAPACITY};
use crate::hosting::outbox::{Outbox, To};
use crate::hosting::registry::{GameCell, RunState};
use crate::ids::{incident_id, monotonic_ms, now_rfc3339};
use crate::llm::ChatEvent;
use crate::metrics::RestartReason;
use crate::protocol::{
    ChatFrom, ErrorBody, ErrorCode, GameStatus, GameSummary, GameView, PlayerView, PlayersView, ServerFrame,
};
use crate::runtime::panic_hook::GameScope;
use crate::runtime::policy::Decision;
use crate::store::events::EventKind;
use crate::store::snapshot::Snapshot;

/// One game.
pub struct TurnActor {
    pub(super) cell: Arc<GameCell>,
    pub(super) generation: u64,
    pub(super) env: Arc<GameEnv>,
    pub(super) state: Snapshot,
    pub(super) restarts: u32,
    pub(super) failed: bool,
    pub(super) mode: StartMode,
    pub(super) started_once: bool,
    pub(super) pending_failure: Option<RestartReason>,
    pub(super) restarting_until: Option<Instant>,
    pub(super) ai_in_flight: bool,
    pub(super) llm_in_flight: bool,
    /// What a human said while a request was in flight: answered when it returns.
    pub(super) llm_pending: Option<ChatEvent>,
    pub(super) armed_fault: bool,
    /// Seats not yet told that this instance took the game over (they join after it).
    pub(super) untold_takeover: [bool; 2],
    /// What the game says, held until the change it follows is durable (D18).
    pub(super) outbox: Outbox,
    pub(super) rng: fastrand::Rng,
}

impl TurnActor {
    /// An incarnation of the game in `cell`, starting from `snapshot`.
    pub fn new(cell: Arc<GameCell>, env: Arc<GameEnv>, snapshot: Arc<Snapshot>, mode: StartMode) -> Self {
        TurnActor {
            generation: cell.generation.load(Ordering::Acquire),
            restarts: snapshot.restarts,
            failed: mode == StartMode::Tombstone || snapshot.failed,
            outbox: Outbox::new(env.durable_before_shown, snapshot.version),
            cell,
            env,
            state: (*snapshot).clone(),
            mode,
            started_once: false,
            pending_failure: None,
            restarting_until: None,
            ai_in_flight: false,
            llm_in_flight: false,
            llm_pending: None,
            armed_fault: false,
            untold_takeover: [false; 2],
            rng: fastrand::Rng::new(),
        }
    }

    /// This game's kind's restart policy.
    pub(super) fn policy(&self) -> &RestartPolicyConfig {
        self.env.policy(self.state.board.kind())
    }

    pub(super) fn abandoned(&self) -> bool {
        self.cell.generation.load(Ordering::Acquire) != self.generation
    }

    /// Runs game code with the panic boundary, the busy stamp for the hang watchdog and the
    /// quiet panic hook's game id. On a panic: discard state, stop, let the supervisor restart.
    pub(super) fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Result<R, ErrorBody> {
        if self.abandoned() {
            return Err(ErrorBody::moved());
        }
        let scope = GameScope::enter(self.cell.id.as_str());
        self.cell.busy_since_ms.store(monotonic_ms(), Ordering::Release);
        let out = panic::catch_unwind(AssertUnwindSafe(|| f(self, ctx)));
        drop(scope);
        if self.abandoned() {
            // The watchdog gave up on this thread while we were busy; a newer incarnation owns
            // the game now. Whatever ran could not publish (`commit` refuses) and stays
            // silent (`broadcast`, `send_error` refuse); a panic here is no longer this
            // game's failure. The busy stamp belongs to the new incarnation.
            tracing::warn!(game_id = %self.cell.id, "an abandoned game incarnation woke up; it stays silent");
            return out.map_err(|_| ErrorBody::moved());
        }
        self.cell.busy_since_ms.store(0, Ordering::Release);
        out.map_err(|_| {
            let incident = incident_id();
            self.crash(ctx, &incident);
            ErrorBody::new(ErrorCode::Internal, "the game hit a bug; it is being restored from its last good state")
                .with("incident", incident)
        })
    }

    pub(super) fn crash(&mut self, ctx: &mut Context<Self>, incident: &str) {
        self.env.metrics.panic_caught();
        tracing::warn!(game_id = %self.cell.id, %incident, moves = self.state.board.moves(), "game actor crashed; discarding its state and restarting it");
        self.pending_failure = Some(RestartReason::Panic);
        self.publish_event(EventKind::Crashed);
        self.cell.set_run_state(RunState::Crashed);
        ctx.stop();
    }

    /// Applies the restart policy after a failure: restore the last good snapshot, then
    /// answer at once, after a held delay, or after a delay during which commands get
    /// GAME_RESTARTING; or close the game when its limit is spent.
    pub(super) fn recover(&mut self, ctx: &mut Context<Self>, reason: RestartReason) {
        let jitter = self.rng.f64();
        let decision = {
            let mut ledger = self.cell.ledger.lock().unwrap_or_else(|e| e.into_inner());
            ledger.record(self.policy(), monotonic_ms(), jitter)
        };
        // The last good state is the keeper's: the one copy in the process.
        match self.cell.snapshot() {
            Some(last_good) => self.state = (*last_good).clone(),
            None => {
                tracing::error!(game_id = %self.cell.id, "no last good snapshot to restore; the game goes on from its current state")
            }
        }
        self.ai_in_flight = false;
        self.llm_in_flight = false;
        self.llm_pending = None;
        match decision {
            Decision::GiveUp { restarts_in_window } => self.close_failed(restarts_in_window),
            Decision::Restart { attempt, delay } => {
                self.restarts += 1;
                self.env.metrics.game_restarted(self.cell.kind, reason);
                self.publish_event(EventKind::Restarted);
                tracing::warn!(
                    game_id = %self.cell.id, reason = reason.as_str(), restarts = self.restarts, attempt,
                    delay_ms = delay.as_millis() as u64, restored_moves = self.state.board.moves(),
                    "restarting game from its last good state"
                );
                if delay.is_zero() {
                    self.finish_recovery(ctx);
                } else if delay.as_millis() <= u128::from(self.policy().hold_messages_max_ms) {
                    self.cell.set_run_state(RunState::Restarting);
                    ctx.wait(actix::clock::sleep(delay).into_actor(self).map(|_, act, ctx| act.finish_recovery(ctx)));
                } else {
                    self.cell.set_run_state(RunState::Restarting);
                    self.restarting_until = Some(Instant::now() + delay);
                    ctx.run_later(delay, |act, ctx| act.finish_recovery(ctx));
                }
            }
        }
    }

    pub(super) fn finish_recovery(&mut self, ctx: &mut Context<Self>) {
        let delayed = self.cell.run_state() == RunState::Restarting;
        self.restarting_until = None;
        self.cell.set_run_state(RunState::Running);
        // The restored state, with the new restart count, is the game's last good state.
        self.commit_quietly();
        self.broadcast(&ServerFrame::GameRestarted {
            restarts: self.restarts,
            restored_moves: self.state.board.moves(),
            reason: None,
        });
        if delayed {
            self.publish_event(EventKind::Recovered);
        }
        self.broadcast_state();
        self.schedule_ai(ctx);
    }

    /// Publishes a runtime event with the game's current summary.
    pub(super) fn publish_event(&self, kind: EventKind) {
        if self.abandoned() {
            return;
        }
        let summary = serde_json::to_value(self.summary()).unwrap_or_default();
        self.env.events.publish(&self.cell.id, kind, summary);
    }

    pub(super) fn close_failed(&mut self, restarts_in_window: u32) {
        self.failed = true;
        self.cell.set_run_state(RunState::Failed);
        self.env.metrics.game_failed(self.cell.kind);
        self.commit_quietly();
        self.publish_event(EventKind::RestartLimitExceeded);
        tracing::error!(
            game_id = %self.cell.id, restarts = self.restarts, restarts_in_window, within_secs = self.policy().within_secs,
            "game exceeded its restart limit and was closed"
        );
        let reason = format!(
            "the game crashed more than {} times within {} s and was closed",
            self.policy().max_restarts,
            self.policy().within_secs
        );
        self.broadcast(&ServerFrame::GameFailed { reason });
        self.broadcast_state();
    }

    pub(super) fn status(&self) -> GameStatus {
        if self.failed {
            return GameStatus::Failed;
        }
        match self.state.board.outcome() {
            Outcome::InProgress if self.state.abandoned => GameStatus::Abandoned,
            Outcome::InProgress if self.state.seats.iter().any(Option::is_none) => GameStatus::Waiting,
            Outcome::InProgress => GameStatus::Playing,
            Outcome::Won { .. } => GameStatus::Won,
            Outcome::Draw => GameStatus::Draw,
        }
    }

    pub(super) fn players(&self) -> PlayersView {
        let view = |seat: Seat| {
            self.state.seat(seat).map(|r| PlayerView {
                name: r.name.clone(),
                connected: r.is_ai() || self.cell.seat_connected(seat),
                ai: r.is_ai(),
            })
        };
        PlayersView { red: view(Seat::Red), yellow: view(Seat::Yellow) }
    }

    pub(super) fn view(&self) -> GameView {
        let status = self.status();
        let (winner, resigned) = match self.state.board.outcome() {
            Outcome::Won { winner, resigned } => (Some(winner), resigned.then(|| winner.other())),
            _ => (None, None),
        };
        GameView {
            game_id: self.cell.id.to_string(),
            kind: self.state.board.kind(),
            status,
            turn: if status == GameStatus::Playing { self.state.board.turn() } else { None },
            winner,
            resigned,
            moves: self.state.board.moves(),
            players: self.players(),
            restarts: self.restarts,
            board: self.state.board.view(),
        }
    }

    /// Sends a frame to every attached socket (once the change it follows is durable);
    /// an abandoned incarnation says nothing (false).
    pub(super) fn broadcast(&mut self, frame: &ServerFrame) -> bool {
        if self.abandoned() {
            return false;
        }
        if self.outbox.holding() {
            let routes = self.cell.routes();
            // Nobody is listening: do not serialise.
            if routes.iter().any(Option::is_some) {
                self.outbox.hold(To::Seats(routes), ToSession::Frame(frame.to_frame()));
            }
            return true;
        }
        self.tell_now(frame);
        true
    }

    /// Sends a frame about the game's condition now (paused, resumed) to every attached
    /// socket at once, ahead of what waits for durability (D18).
    pub(super) fn tell_now(&self, frame: &ServerFrame) {
        if self.abandoned() {
            return;
        }
        let routes = self.cell.routes();
        if routes.iter().all(Option::is_none) {
            return; // nobody is listening: do not serialise
        }
        let text = frame.to_frame();
        for route in routes.into_iter().flatten() {
            route.to.do_send(ToSession::Frame(text.clone()));
        }
    }

    /// The lobby summary of the current state.
    pub(super) fn summary(&self) -> GameSummary {
        let game = self.view();
        GameSummary {
            game_id: game.game_id,
            kind: game.kind,
            status: game.status,
            players: game.players,
            moves: game.moves,
            restarts: game.restarts,
            created_at: self.state.created_at.clone(),
            winner: game.winner,
            resigned: game.resigned,
        }
    }

    /// Sends the state to every socket and refreshes the lobby summary (and, through the
    /// event stream, every instance's lobby).
    pub(super) fn broadcast_state(&mut self) {
        if self.abandoned() {
            return;
        }
        let game = self.view();
        let summary = GameSummary {
            game_id: game.game_id.clone(),
            kind: game.kind,
            status: game.status,
            players: game.players.clone(),
            moves: game.moves,
            restarts: game.restarts,
            created_at: self.state.created_at.clone(),
            winner: game.winner,
            resigned: game.resigned,
        };
        let ended_now = game.status.is_ended()
            && self.cell.ended_at_ms.compare_exchange(0, monotonic_ms(), Ordering::AcqRel, Ordering::Acquire).is_ok();
        if ended_now {
            // Its place is free at once: only games waiting or in play count.
            self.env.metrics.game_ended();
        }
        if ended_now {
            self.cell.set_summary(summary.clone());
            self.env.events.publish(
                &self.cell.id,
                EventKind::Finished,
                serde_json::to_value(&summary).unwrap_or_default(),
            );
        } else if self.cell.replace_summary(summary.clone()) {
            self.env.events.progress(&self.cell.id, summary);
        }
        self.broadcast(&ServerFrame::State { game });
    }

    /// Records the current state as the last good one (its version bumped, stamped with
    /// the lease epoch and the restart count), hands it to the keeper (which writes it
    /// behind the game), and tells everyone. False when this incarnation has been replaced:
    /// nothing is published or said (the new incarnation resumed from the state before
    /// this change).
    pub(super) fn commit(&mut self) -> bool {
        if !self.commit_quietly() {
            return false;
        }
        self.broadcast_state();
        true
    }

    /// [`TurnActor::commit`] without telling anyone.
    pub(super) fn commit_quietly(&mut self) -> bool {
        self.state.version += 1;
        self.state.epoch = self.cell.epoch.load(Ordering::Acquire);
        self.state.restarts = self.restarts;
        self.state.failed = self.failed;
        if !self.cell.publish_snapshot(self.generation, Arc::new(self.state.clone())) {
            return false;
        }
        self.outbox.committed(self.state.version);
        true
    }

    /// Answers one sender with an error; an abandoned incarnation says nothing (false).
    pub(super) fn send_error(
        &mut self,
        to: &Recipient<ToSession>,
        error: ErrorBody,
        in_reply_to: &'static str,
    ) -> bool {
        if self.abandoned() {
            return false;
        }
        self.env.metrics.error_sent(error.code);
        self.say(to, &ServerFrame::Error { error, in_reply_to: Some(in_reply_to) });
        true
    }

    /// Sends a frame to one socket, behind whatever waits for durability.
    pub(super) fn say(&mut self, to: &Recipient<ToSession>, frame: &ServerFrame) {
        let message = ToSession::Frame(frame.to_frame());
        if self.outbox.holding() {
            self.outbox.hold(To::One(to.clone()), message);
        } else {
            to.do_send(message);
        }
    }

    /// Follows the keeper's durable version of this game and sends what waited for it
    /// (D18). Runs in the actor's context: a restart starts it again.
    fn follow_durability(&mut self, ctx: &mut Context<Self>) {
        let mut durable = self.env.keeper.durable_watch(&self.cell.id);
        durable.mark_changed();
        let versions = futures_util::stream::unfold(durable, |mut rx| async move {
            rx.changed().await.ok()?;
            let version = *rx.borrow_and_update();
            Some((version, rx))
        });
        ctx.spawn(versions.into_actor(self).map(|version, act, _| act.release(version)).finish());
    }

    /// `version` is durable: what waited for it goes out, in order.
    fn release(&mut self, version: u64) {
        if self.abandoned() {
            self.outbox.clear();
            return;
        }
        let ready = self.outbox.durable(version);
        if ready.is_empty() {
            return;
        }
        for (to, message) in ready {
            match to {
                To::Seats(routes) => {
                    for route in routes.iter().flatten() {
                        route.to.do_send(message.clone());
                    }
                }
                To::One(to) => to.do_send(message),
            }
        }
    }

    /// The outcome of a command whose answer was sent (or refused as abandoned).
    pub(super) fn answered(sent: bool) -> CommandOutcome {
        if sent {
            CommandOutcome::Answered
        } else {
            CommandOutcome::Moved
        }
    }

    pub(super) fn unavailable(&self) -> Option<ErrorBody> {
        // Until a renewal confirms the lease another instance may own the game (this
        // process was paused, its store unreachable): nothing is applied here.
        if !self.cell.lease_confirmed() {
            return Some(GameCell::unconfirmed_error());
        }
        if self.failed {
            return Some(ErrorBody::game_failed());
        }
        if self.outbox.full() {
            // The store is far behind: nothing more is applied until what waits is durable.
            return Some(ErrorBody::store_behind());
        }
        if self.state.abandoned {
            return Some(ErrorBody::abandoned());
        }
        self.restarting_until.map(|until| {
            let ms = until.saturating_duration_since(Instant::now()).as_millis() as u64;
            ErrorBody::restarting().with("retry_after_ms", ms.max(1))
        })
    }

    pub(super) fn act(
        &mut self,
        ctx: &mut Context<Self>,
        seat: Seat,
        action: Action,
        reply: &Recipient<ToSession>,
    ) -> CommandOutcome {
        let kind = action.type_name();
        if let Some(error) = self.unavailable() {
            return Self::answered(self.send_error(reply, error, kind));
        }
        if std::mem::take(&mut self.armed_fault) {
            panic!("injected fault (admin): panic in a {kind} command");
        }
        match action {
            Action::Move(column) => {
                if self.status() == GameStatus::Waiting {
                    let error = ErrorBody::new(ErrorCode::NotYourTurn, "waiting for an opponent to join")
                        .with("reason", "waiting_for_opponent");
                    return Self::answered(self.send_error(reply, error, kind));
                }
                match self.state.board.play(seat, column) {
                    Ok(board) => {
                        self.state.board = board;
                        if !self.commit() {
                            return CommandOutcome::Moved;
                        }
                        self.schedule_ai(ctx);
                        CommandOutcome::Answered
                    }
                    Err(e) => {
                        let error = ErrorBody::new(ErrorCode::from(&e), e.to_string()).with("column", column);
                        Self::answered(self.send_error(reply, error, kind))
                    }
                }
            }
            Action::Chat(text) => {
                let frame = ServerFrame::Chat { from: ChatFrom::from(seat), text: text.clone(), at: now_rfc3339() };
                if !self.broadcast(&frame) {
                    return CommandOutcome::Moved;
                }
                self.ai_chat(ctx, ChatEvent::HumanSaid { text });
                CommandOutcome::Answered
            }
            Action::Input(_) => {
                let error = ErrorBody::new(ErrorCode::BadRequest, "a turn-based game takes moves, not tick inputs");
                Self::answered(self.send_error(reply, error, kind))
            }
            Action::Resign => match self.state.board.resign(seat) {
                Ok(board) => {
                    self.state.board = board;
                    Self::answered(self.commit())
                }
                Err(e) => {
                    Self::answered(self.send_error(reply, ErrorBody::new(ErrorCode::GameOver, e.to_string()), kind))
                }
            },
        }
    }
}

impl Actor for TurnActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(GAME_MAILBOX_CAPACITY);
        if self.outbox.on() {
            self.follow_durability(ctx);
        }
        if self.started_once {
            return; // a restart: `restarting` already scheduled the recovery
        }
        self.started_once = true;
        match self.mode {
            StartMode::Fresh => {
                // Counted by the supervisor when it created the game (admission reads it).
                tracing::info!(game_id = %self.cell.id, kind = self.cell.kind, vs_ai = self.state.vs_ai(), "game started");
                self.publish_event(EventKind::Started);
                self.broadcast_state();
                self.schedule_ai(ctx);
            }
            StartMode::Moved => {
                self.publish_event(EventKind::Moved);
                self.broadcast_state();
                self.schedule_ai(ctx);
            }
            StartMode::TakenOver => {
                if !self.status().is_ended() {
                    self.env.metrics.game_started(self.cell.kind);
                }
                // Stamped with this owner's epoch before anything else is written.
                self.commit_quietly();
                tracing::info!(game_id = %self.cell.id, moves = self.state.board.moves(), epoch = self.cell.epoch.load(Ordering::Acquire), "took the game over from its last snapshot");
                self.publish_event(EventKind::TakenOver);
                // Players usually join after the takeover (their join caused it): each
                // seat hears it when it joins.
                self.untold_takeover = [true; 2];
                self.broadcast_state();
                self.schedule_ai(ctx);
            }
            StartMode::Recover(reason) => {
                if reason == RestartReason::Hang {
                    self.publish_event(EventKind::HangDetected);
                }
                self.recover(ctx, reason)
            }
            StartMode::Resume => self.finish_recovery(ctx),
            StartMode::Tombstone => self.broadcast_state(),
        }
    }
}

impl actix::Supervised for TurnActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // Never call ctx.stop() here: it spins the arbiter (docs/DESIGN.md D1).
        if self.abandoned() {
            return;
        }
        let reason = self.pending_failure.take().unwrap_or(RestartReason::Panic);
        self.recover(ctx, reason);
    }
}
