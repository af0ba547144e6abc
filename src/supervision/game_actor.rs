//! GameActor is an actor. It alone owns one game's state; sessions only send it commands.
//! Every handler and every async result runs inside `catch_unwind`: on a panic the actor
//! discards its state and stops, and actix's `Supervisor` restarts the same struct, which
//! restores its last good snapshot under the configured restart policy (docs/DESIGN.md D1–D3).

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::config::AiConfig;
use crate::config::RestartPolicyConfig;
use crate::game::ai::SearchBudget;
use crate::game::{Outcome, Seat};
use crate::ids::TokenHash;
use crate::ids::{incident_id, monotonic_ms, now_rfc3339, ConnId};
use crate::llm::{ChatContext, ChatEvent, LlmClient};
use crate::lobby::EventSink;
use crate::metrics::{Metrics, RestartReason};
use crate::protocol::{
    ChatFrom, ErrorBody, ErrorCode, GameStatus, GameSummary, GameView, PlayerView, PlayersView, ServerFrame,
    SharedFrame,
};
use crate::store::events::EventKind;
use crate::store::snapshot::{seat_index, SeatRecord, Snapshot};
use crate::supervision::panic_hook::GameScope;
use crate::supervision::policy::Decision;
use crate::supervision::registry::{GameCell, Route, RunState};

/// Mailbox bound of a game: senders that find it full are told to retry.
pub const GAME_MAILBOX_CAPACITY: usize = 256;

/// What a game sends to a player's socket.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum ToSession {
    /// A server frame, serialised and framed once, shared between sockets.
    Frame(SharedFrame),
    /// Close the socket with this code and reason.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Short reason.
        reason: &'static str,
    },
}

/// Everything a game needs from the server, shared by all turn-based games.
pub struct GameEnv {
    /// The restart policy of each turn-based kind (`supervision.kinds.<name>` over
    /// `supervision.default`), by kind name.
    pub policies: Vec<(&'static str, RestartPolicyConfig)>,
    /// `supervision.default`, for a kind without an entry.
    pub default_policy: RestartPolicyConfig,
    /// AI player settings.
    pub ai: AiConfig,
    /// Where runtime events go (the lobby is built from them).
    pub events: Arc<EventSink>,
    /// Server metrics.
    pub metrics: Arc<Metrics>,
    /// How the AI player talks (canned lines when no LLM is configured).
    pub llm: Arc<LlmClient>,
}

impl GameEnv {
    /// The restart policy of `kind`.
    pub fn policy(&self, kind: &str) -> &RestartPolicyConfig {
        self.policies.iter().find(|(k, _)| *k == kind).map_or(&self.default_policy, |(_, p)| p)
    }
}

/// How an incarnation begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// A new game.
    Fresh,
    /// A healthy game moved off a lost arbiter: tell players the state, count nothing.
    Moved,
    /// A game that failed (its handler hung, or it crashed and its thread was lost before
    /// its restart began): recover under the restart policy, telling its players.
    Recover(RestartReason),
    /// A game moved while its restart was under way (in the policy's delay): finish it
    /// here, telling its players.
    Resume,
    /// A closed game moved off a lost arbiter: stays closed.
    Tombstone,
    /// A game resumed from the store by this instance (its owner died or the server
    /// restarted): players are told it was taken over; no restart is counted.
    TakenOver,
}

/// Attach a socket to the seat owning `token`; answers the seat.
#[derive(Message)]
#[rtype(result = "Result<Seat, ErrorBody>")]
pub struct Join {
    /// The keyed hash of the token the client presented.
    pub token_hash: TokenHash,
    /// The socket.
    pub route: Route,
    /// The seat this socket already holds, if any: one socket holds at most one seat.
    pub holding: Option<Seat>,
}

/// A socket went away.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    /// Its seat.
    pub seat: Seat,
    /// The connection.
    pub conn: ConnId,
}

/// A player action.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "a", content = "v", rename_all = "snake_case")]
pub enum Action {
    /// Drop a disc in a column (raw, checked by the rules).
    Move(i64),
    /// Say something to the table.
    Chat(String),
    /// Concede.
    Resign,
}

impl Action {
    /// The frame type this action came from.
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Move(_) => "move",
            Action::Chat(_) => "chat",
            Action::Resign => "resign",
        }
    }
}

/// A player's action from a joined socket. Errors go back to `reply`; the result says
/// whether the game answered at all, so the sender can give its client exactly one outcome.
#[derive(Message, Clone)]
#[rtype(result = "CommandOutcome")]
pub struct Command {
    /// The player's seat.
    pub seat: Seat,
    /// What they do.
    pub action: Action,
    /// Where an error goes.
    pub reply: Recipient<ToSession>,
    /// A command that reaches the game after this is not applied (its sender has told the
    /// client so by then).
    pub deadline: Instant,
}

/// How soon a command or AI move refused on a lapsed lease may try again.
const LEASE_RECHECK: Duration = Duration::from_millis(250);

/// What became of a [`Command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, MessageResponse, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// The game answered: the change is in the next `state`, or an error frame went to
    /// `reply`.
    Answered,
    /// This incarnation had been replaced (its arbiter was lost): nothing was applied and
    /// nothing was said; send the command to the game's current address.
    Moved,
    /// The command arrived after its deadline: nothing was applied.
    Expired,
}

/// Closes a game nobody is connected to (sent by the supervisor's watchdog once
/// `server.abandoned_game_secs` have passed without a player).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAbandoned {
    /// How long nobody has been connected, in seconds.
    pub unattended_secs: u64,
}

/// Claims the free yellow seat of a human game (REST join) for the token whose keyed hash
/// is `token_hash` (the token itself stays with the instance that hands it out).
#[derive(Message)]
#[rtype(result = "Result<Seat, ErrorBody>")]
pub struct ClaimSeat {
    /// The joiner's validated name.
    pub name: String,
    /// The new seat token's keyed hash.
    pub token_hash: TokenHash,
}

/// An injected fault; takes exactly the paths of a real bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Panic inside a handler.
    Panic,
    /// Block the game's thread for this long.
    Hang(Duration),
    /// Panic inside the next player command, so the command itself crashes (its sender
    /// gets INTERNAL with an incident id, as with a real bug in move handling).
    PanicOnNextCommand,
}

/// Admin fault injection, delivered like a player's command (it follows the game when its
/// arbiter is lost, so a drill is never dropped with an abandoned mailbox).
#[derive(Message, Clone)]
#[rtype(result = "CommandOutcome")]
pub struct InjectFault {
    /// The fault.
    pub fault: Fault,
    /// A fault that reaches the game after this is dropped.
    pub deadline: Instant,
    /// Set by the incarnation that takes it (a fault is served once, even when the game
    /// moves while serving it).
    pub taken: Arc<std::sync::atomic::AtomicBool>,
}

/// Answers the move count, or an error while restarting or closed. Used by benchmarks and
/// tests to observe a game through its mailbox.
#[derive(Message)]
#[rtype(result = "Result<u32, ErrorBody>")]
pub struct Probe;

/// The server is shutting down, or the game is now another instance's: close sockets with
/// 1012 (service restart), so players reconnect to whichever instance answers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// The close reason.
    pub reason: &'static str,
}

/// One game.
pub struct GameActor {
    cell: Arc<GameCell>,
    generation: u64,
    env: Arc<GameEnv>,
    state: Snapshot,
    restarts: u32,
    failed: bool,
    mode: StartMode,
    started_once: bool,
    pending_failure: Option<RestartReason>,
    restarting_until: Option<Instant>,
    ai_in_flight: bool,
    llm_in_flight: bool,
    /// What a human said while a request was in flight: answered when it returns.
    llm_pending: Option<ChatEvent>,
    armed_fault: bool,
    /// Seats not yet told that this instance took the game over (they join after it).
    untold_takeover: [bool; 2],
    rng: fastrand::Rng,
}

impl GameActor {
    /// An incarnation of the game in `cell`, starting from `snapshot`.
    pub fn new(cell: Arc<GameCell>, env: Arc<GameEnv>, snapshot: Arc<Snapshot>, mode: StartMode) -> Self {
        GameActor {
            generation: cell.generation.load(Ordering::Acquire),
            restarts: snapshot.restarts,
            failed: mode == StartMode::Tombstone || snapshot.failed,
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
    fn policy(&self) -> &RestartPolicyConfig {
        self.env.policy(self.state.board.kind())
    }

    fn abandoned(&self) -> bool {
        self.cell.generation.load(Ordering::Acquire) != self.generation
    }

    /// Runs game code with the panic boundary, the busy stamp for the hang watchdog and the
    /// quiet panic hook's game id. On a panic: discard state, stop, let the supervisor restart.
    fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Result<R, ErrorBody> {
        if self.abandoned() {
            return Err(ErrorBody::new(ErrorCode::GameRestarting, "the game moved; retry").with("retry_after_ms", 100));
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
            return out.map_err(|_| {
                ErrorBody::new(ErrorCode::GameRestarting, "the game moved; retry").with("retry_after_ms", 100)
            });
        }
        self.cell.busy_since_ms.store(0, Ordering::Release);
        out.map_err(|_| {
            let incident = incident_id();
            self.crash(ctx, &incident);
            ErrorBody::new(ErrorCode::Internal, "the game hit a bug; it is being restored from its last good state")
                .with("incident", incident)
        })
    }

    fn crash(&mut self, ctx: &mut Context<Self>, incident: &str) {
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
    fn recover(&mut self, ctx: &mut Context<Self>, reason: RestartReason) {
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

    fn finish_recovery(&mut self, ctx: &mut Context<Self>) {
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
    fn publish_event(&self, kind: EventKind) {
        if self.abandoned() {
            return;
        }
        let summary = serde_json::to_value(self.summary()).unwrap_or_default();
        self.env.events.publish(&self.cell.id, kind, summary);
    }

    fn close_failed(&mut self, restarts_in_window: u32) {
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

    fn status(&self) -> GameStatus {
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

    fn players(&self) -> PlayersView {
        let view = |seat: Seat| {
            self.state.seat(seat).map(|r| PlayerView {
                name: r.name.clone(),
                connected: r.is_ai() || self.cell.seat_connected(seat),
                ai: r.is_ai(),
            })
        };
        PlayersView { red: view(Seat::Red), yellow: view(Seat::Yellow) }
    }

    fn view(&self) -> GameView {
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

    /// Sends a frame to every attached socket; an abandoned incarnation says nothing (false).
    fn broadcast(&self, frame: &ServerFrame) -> bool {
        if self.abandoned() {
            return false;
        }
        let routes = self.cell.routes();
        if routes.iter().all(Option::is_none) {
            return true; // nobody is listening: do not serialise
        }
        let text = frame.to_frame();
        for route in routes.into_iter().flatten() {
            route.to.do_send(ToSession::Frame(text.clone()));
        }
        true
    }

    /// The lobby summary of the current state.
    fn summary(&self) -> GameSummary {
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
    fn broadcast_state(&self) {
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
    fn commit(&mut self) -> bool {
        if !self.commit_quietly() {
            return false;
        }
        self.broadcast_state();
        true
    }

    /// [`GameActor::commit`] without telling anyone.
    fn commit_quietly(&mut self) -> bool {
        self.state.version += 1;
        self.state.epoch = self.cell.epoch.load(Ordering::Acquire);
        self.state.restarts = self.restarts;
        self.state.failed = self.failed;
        self.cell.publish_snapshot(self.generation, Arc::new(self.state.clone()))
    }

    /// Answers one sender with an error; an abandoned incarnation says nothing (false).
    fn send_error(&self, to: &Recipient<ToSession>, error: ErrorBody, in_reply_to: &'static str) -> bool {
        if self.abandoned() {
            return false;
        }
        self.env.metrics.error_sent(error.code);
        to.do_send(ToSession::Frame(ServerFrame::Error { error, in_reply_to: Some(in_reply_to) }.to_frame()));
        true
    }

    /// The outcome of a command whose answer was sent (or refused as abandoned).
    fn answered(sent: bool) -> CommandOutcome {
        if sent {
            CommandOutcome::Answered
        } else {
            CommandOutcome::Moved
        }
    }

    /// Whether this instance's lease on the game ran out without a renewal round since
    /// (the process was paused or its event loop stalled): until the next round confirms
    /// it, another instance may own the game, so nothing is applied here.
    fn lease_lapsed(&self) -> bool {
        monotonic_ms() > self.cell.lease_until_ms.load(Ordering::Acquire)
    }

    fn unavailable(&self) -> Option<ErrorBody> {
        if self.lease_lapsed() {
            return Some(
                ErrorBody::new(
                    ErrorCode::GameRestarting,
                    "this server is confirming it still holds the game; retry shortly",
                )
                .with("retry_after_ms", LEASE_RECHECK.as_millis() as u64),
            );
        }
        if self.failed {
            return Some(ErrorBody::new(ErrorCode::GameFailed, "this game exceeded its restart limit and is closed"));
        }
        if self.state.abandoned {
            return Some(abandoned_error());
        }
        self.restarting_until.map(|until| {
            let ms = until.saturating_duration_since(Instant::now()).as_millis() as u64;
            ErrorBody::new(ErrorCode::GameRestarting, "the game is restarting after a fault; retry shortly")
                .with("retry_after_ms", ms.max(1))
        })
    }

    fn act(
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
                        let code = match e.code() {
                            "NOT_YOUR_TURN" => ErrorCode::NotYourTurn,
                            "GAME_OVER" => ErrorCode::GameOver,
                            _ => ErrorCode::InvalidMove,
                        };
                        let error = ErrorBody::new(code, e.to_string()).with("column", column);
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

    /// Starts the AI's search off the actor when it is the AI's turn. The result returns as
    /// an ordinary async result, inside the panic boundary; a stale result is ignored.
    fn schedule_ai(&mut self, ctx: &mut Context<Self>) {
        if self.failed || self.ai_in_flight || self.restarting_until.is_some() {
            return;
        }
        let Some(turn) = self.state.board.turn() else {
            return;
        };
        if !self.state.seat(turn).is_some_and(SeatRecord::is_ai) {
            return;
        }
        self.ai_in_flight = true;
        let board = self.state.board.clone();
        let expected_moves = board.moves();
        let budget = SearchBudget { max_depth: self.env.ai.search_depth, max_nodes: self.env.ai.max_nodes };
        let seed = self.rng.u64(..);
        let think = Duration::from_millis(self.env.ai.think_delay_ms);
        let game_id = self.cell.id.to_string();
        let search = async move {
            if !think.is_zero() {
                actix::clock::sleep(think).await;
            }
            actix_rt::task::spawn_blocking(move || {
                let _scope = GameScope::enter(&game_id);
                board.ai_move(budget, seed)
            })
            .await
        };
        ctx.spawn(search.into_actor(self).map(move |result, act, ctx| {
            act.ai_in_flight = false;
            if act.lease_lapsed() {
                // Not ours to play until the lease is confirmed: search again then.
                ctx.run_later(LEASE_RECHECK, |act, ctx| act.schedule_ai(ctx));
                return;
            }
            let _ = act.guarded(ctx, |act, ctx| {
                let column = match result {
                    Ok(column) => column,
                    // A panic in the search is a bug in game code: re-raise it inside the boundary.
                    Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
                    Err(_) => None,
                };
                act.apply_ai_move(ctx, expected_moves, column);
            });
        }));
    }

    /// The AI says something about `event`: through the LLM when one is configured, off the
    /// actor and through the llm breaker, at most one request in flight; when the LLM is
    /// off, open or failing it answers a human with a canned line and otherwise stays
    /// silent. Moves never wait for any of this.
    fn ai_chat(&mut self, ctx: &mut Context<Self>, event: ChatEvent) {
        if self.failed || !self.state.vs_ai() {
            return;
        }
        let answer_needed = matches!(event, ChatEvent::HumanSaid { .. });
        let llm = self.env.llm.clone();
        if !llm.enabled() {
            if answer_needed {
                self.say_canned();
            }
            return;
        }
        if self.llm_in_flight {
            // One request per game at a time: a human's words wait for it (the latest
            // wins); the AI's own remarks are simply skipped.
            if answer_needed {
                self.llm_pending = Some(event);
            }
            return;
        }
        self.llm_in_flight = true;
        let context = ChatContext {
            game: crate::game::kinds::by_name(self.state.board.kind()).map_or("a game", |k| k.title),
            board: self.state.board.describe(),
            moves: self.state.board.moves(),
            opponent: self.state.seat(Seat::Red).map_or_else(|| "your opponent".to_owned(), |r| r.name.clone()),
            event,
        };
        let request = async move { llm.chat(&context).await };
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            act.llm_in_flight = false;
            let _ = act.guarded(ctx, |act, _| match result {
                Ok(text) => {
                    act.broadcast(&ServerFrame::Chat { from: ChatFrom::Ai, text, at: now_rfc3339() });
                }
                Err(e) => {
                    tracing::debug!(game_id = %act.cell.id, "the AI's LLM line failed; falling back: {e}");
                    if answer_needed {
                        act.say_canned();
                    }
                }
            });
            if let Some(next) = act.llm_pending.take() {
                act.ai_chat(ctx, next);
            }
        }));
    }

    fn say_canned(&mut self) {
        if let Some(text) = self.env.llm.canned_line(&mut self.rng) {
            self.broadcast(&ServerFrame::Chat { from: ChatFrom::Ai, text, at: now_rfc3339() });
        }
    }

    fn apply_ai_move(&mut self, ctx: &mut Context<Self>, expected_moves: u32, column: Option<i64>) {
        if self.failed || self.state.board.moves() != expected_moves {
            return;
        }
        let (Some(column), Some(turn)) = (column, self.state.board.turn()) else {
            return;
        };
        match self.state.board.play(turn, column) {
            Ok(board) => {
                self.state.board = board;
                if !self.commit() {
                    return;
                }
                self.schedule_ai(ctx);
                if self.rng.f64() < self.env.llm.comment_probability() {
                    let what = self.state.board.describe_move(column);
                    self.ai_chat(ctx, ChatEvent::AiMoved { what });
                }
            }
            Err(e) => {
                tracing::error!(game_id = %self.cell.id, column, "the AI chose an illegal move: {e}")
            }
        }
    }
}

/// The answer to a command for a game closed as abandoned.
fn abandoned_error() -> ErrorBody {
    ErrorBody::new(ErrorCode::GameOver, "this game was closed because no player was connected; start a new one")
        .with("reason", "abandoned")
}

impl Actor for GameActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(GAME_MAILBOX_CAPACITY);
        if self.started_once {
            return; // a restart: `restarting` already scheduled the recovery
        }
        self.started_once = true;
        match self.mode {
            StartMode::Fresh => {
                self.env.metrics.game_started(self.cell.kind);
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

impl actix::Supervised for GameActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // Never call ctx.stop() here: it spins the arbiter (docs/DESIGN.md D1).
        if self.abandoned() {
            return;
        }
        let reason = self.pending_failure.take().unwrap_or(RestartReason::Panic);
        self.recover(ctx, reason);
    }
}

impl Handler<Join> for GameActor {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| {
            let seat = act.state.seat_of(&msg.token_hash).ok_or_else(|| {
                ErrorBody::new(ErrorCode::Unauthorized, "that token does not hold a seat in this game")
            })?;
            if let Some(held) = msg.holding.filter(|held| *held != seat) {
                return Err(crate::protocol::seat_held(held));
            }
            if let Some(old) = act.cell.attach(seat, msg.route.clone()) {
                old.to.do_send(ToSession::Close { code: 4409, reason: "seat opened on another connection" });
            }
            if std::mem::take(&mut act.untold_takeover[seat_index(seat)]) {
                let frame = ServerFrame::GameRestarted {
                    restarts: act.restarts,
                    restored_moves: act.state.board.moves(),
                    reason: Some("taken_over"),
                };
                msg.route.to.do_send(ToSession::Frame(frame.to_frame()));
            }
            if act.failed {
                let reason = "this game exceeded its restart limit and is closed".to_owned();
                msg.route.to.do_send(ToSession::Frame(ServerFrame::GameFailed { reason }.to_frame()));
            }
            act.broadcast_state();
            Ok(seat)
        })?
    }
}

impl Handler<Leave> for GameActor {
    type Result = ();

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) {
        let _ = self.guarded(ctx, |act, _| {
            if act.cell.detach(msg.seat, msg.conn) {
                act.broadcast_state();
            }
        });
    }
}

impl Handler<Command> for GameActor {
    type Result = CommandOutcome;

    fn handle(&mut self, msg: Command, ctx: &mut Context<Self>) -> CommandOutcome {
        if Instant::now() > msg.deadline {
            return CommandOutcome::Expired;
        }
        if self.abandoned() {
            return CommandOutcome::Moved;
        }
        let kind = msg.action.type_name();
        let reply = msg.reply.clone();
        match self.guarded(ctx, |act, ctx| act.act(ctx, msg.seat, msg.action, &msg.reply)) {
            Ok(outcome) => outcome,
            // The command crashed the game: its sender hears INTERNAL with the incident id.
            Err(error) => Self::answered(self.send_error(&reply, error, kind)),
        }
    }
}

impl Handler<CloseAbandoned> for GameActor {
    type Result = ();

    fn handle(&mut self, msg: CloseAbandoned, ctx: &mut Context<Self>) {
        let _ = self.guarded(ctx, |act, _| {
            // A player who came back just in time keeps the game.
            if act.cell.has_routes() || act.status().is_ended() {
                return;
            }
            act.state.abandoned = true;
            if act.commit() {
                act.env.metrics.game_abandoned();
                tracing::info!(game_id = %act.cell.id, unattended_secs = msg.unattended_secs, moves = act.state.board.moves(), "closed a game nobody was connected to; its place is free");
            }
        });
    }
}

impl Handler<ClaimSeat> for GameActor {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: ClaimSeat, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| {
            if let Some(error) = act.unavailable() {
                return Err(error);
            }
            let free = Seat::ALL.into_iter().find(|s| act.state.seat(*s).is_none());
            let Some(seat) = free else {
                return Err(ErrorBody::new(ErrorCode::GameFull, "both seats are taken"));
            };
            act.state.seats[seat_index(seat)] = Some(SeatRecord { name: msg.name, token_hash: Some(msg.token_hash) });
            if !act.commit() {
                return Err(
                    ErrorBody::new(ErrorCode::GameRestarting, "the game moved; retry").with("retry_after_ms", 100)
                );
            }
            tracing::info!(game_id = %act.cell.id, seat = seat.as_str(), "second player joined");
            Ok(seat)
        })?
    }
}

impl Handler<InjectFault> for GameActor {
    type Result = CommandOutcome;

    fn handle(&mut self, msg: InjectFault, ctx: &mut Context<Self>) -> CommandOutcome {
        if Instant::now() > msg.deadline {
            return CommandOutcome::Expired;
        }
        if self.abandoned() {
            return CommandOutcome::Moved;
        }
        msg.taken.store(true, Ordering::Release);
        let _ = self.guarded(ctx, |act, _| match msg.fault {
            Fault::Panic => panic!("injected fault (admin): panic"),
            // A real blocking hang: holds this arbiter's thread like a stuck loop would.
            Fault::Hang(duration) => std::thread::sleep(duration),
            Fault::PanicOnNextCommand => act.armed_fault = true,
        });
        CommandOutcome::Answered
    }
}

impl Handler<Probe> for GameActor {
    type Result = Result<u32, ErrorBody>;

    fn handle(&mut self, _: Probe, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| match act.unavailable() {
            Some(error) => Err(error),
            None => Ok(act.state.board.moves()),
        })?
    }
}

impl Handler<Shutdown> for GameActor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) {
        for route in self.cell.routes().into_iter().flatten() {
            route.to.do_send(ToSession::Close { code: 1012, reason: msg.reason });
        }
    }
}
