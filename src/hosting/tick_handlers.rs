//! What a real-time game does with each message every hosted game answers (see
//! `hosting::messages`): a socket's join (the seat's route, the whole state, the
//! countdown once both seats are there) and leave, a seat's input or resignation, the REST
//! seat claim, an admin's fault (a panic on the next tick, a hang, a panic in the next
//! command), the watchdog's close of a game nobody came to, the live summary, the probe,
//! the shutdown's checkpoint and close.

use std::sync::atomic::Ordering;

use actix::prelude::*;

use crate::game::Seat;
use crate::hosting::messages::{
    answered_early, Action, Checkpoint, ClaimSeat, CloseAbandoned, Command, CommandOutcome, Fault, InjectFault, Join,
    LeaseState, Leave, Probe, Shutdown, Summary, ToSession,
};
use crate::hosting::registry::{GameCell, LEASE_RECHECK};
use crate::hosting::tick::TickActor;
use crate::ids::incident_id;
use crate::protocol::{close, ErrorBody, ErrorCode, ServerFrame};
use crate::store::events::EventKind;
use crate::store::snapshot::{seat_index, SeatRecord};

/// A socket presents a seat's token: it becomes that seat's route (replacing an older
/// socket of the same seat, which is told 4409) and gets the whole state.
impl Handler<Join> for TickActor {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        if self.abandoned() {
            return Err(ErrorBody::moved());
        }
        let Some(seat) = self.seat_of(&msg.token_hash) else {
            return Err(ErrorBody::not_a_seat());
        };
        if let Some(held) = msg.holding.filter(|held| *held != seat) {
            return Err(crate::protocol::seat_held(held));
        }
        if let Some(old) = self.cell.attach(seat, msg.route.clone()) {
            old.to.do_send(ToSession::Close { code: close::REPLACED, reason: "this seat was opened in another tab" });
        }
        if std::mem::take(&mut self.untold[seat_index(seat)]) {
            let notice = ServerFrame::TickRestarted {
                reason: "taken_over",
                restarts: self.state.restarts,
                resumed_at_tick: self.rules.tick(),
                lost_ticks: 0,
                retry_after_ms: 0,
            };
            msg.route.to.do_send(ToSession::Frame(notice.to_frame()));
        }
        msg.route.to.do_send(ToSession::Frame(self.full_frame(Some(seat))));
        if self.cell.paused.load(Ordering::Acquire) {
            let paused = crate::protocol::ownership_paused(LEASE_RECHECK.as_millis() as u64);
            msg.route.to.do_send(ToSession::Frame(paused.to_frame()));
        }
        self.cell.set_summary(self.summary());
        self.maybe_start(ctx);
        Ok(seat)
    }
}

impl Handler<Leave> for TickActor {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        if self.cell.detach(msg.seat, msg.conn) && !self.abandoned() {
            self.cell.set_summary(self.summary());
        }
    }
}

impl Handler<Command> for TickActor {
    type Result = CommandOutcome;

    fn handle(&mut self, msg: Command, ctx: &mut Context<Self>) -> CommandOutcome {
        if let Some(outcome) = answered_early(msg.deadline, self.abandoned()) {
            return outcome;
        }
        if self.state.failed {
            return self.answer_error(&msg.reply, ErrorBody::game_failed(), msg.action.type_name());
        }
        if matches!(msg.action, Action::Move(_) | Action::Chat(_)) {
            let error = ErrorBody::new(ErrorCode::BadRequest, "a real-time game takes its kind's input frames");
            return self.answer_error(&msg.reply, error, msg.action.type_name());
        }
        if !self.cell.lease_confirmed() {
            // Another instance may own the game now: nothing is applied here (an input is
            // not kept for later either).
            return self.answer_error(&msg.reply, GameCell::unconfirmed_error(), msg.action.type_name());
        }
        let kind = msg.action.type_name();
        let reply = msg.reply.clone();
        match self.guarded(ctx, |game, _| game.act(msg.seat, msg.action)) {
            Some(()) => CommandOutcome::Answered,
            None if self.abandoned() => CommandOutcome::Moved,
            None => {
                let error = ErrorBody::new(
                    ErrorCode::Internal,
                    "the game hit a bug; it is being restored from its last good state",
                )
                .with("incident", incident_id());
                self.answer_error(&reply, error, kind)
            }
        }
    }
}

/// Takes the free seat for a second human.
impl Handler<ClaimSeat> for TickActor {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: ClaimSeat, ctx: &mut Context<Self>) -> Self::Result {
        if self.abandoned() {
            return Err(ErrorBody::moved());
        }
        if self.state.failed {
            return Err(ErrorBody::game_failed());
        }
        if self.state.abandoned {
            return Err(ErrorBody::abandoned());
        }
        if !self.cell.lease_confirmed() {
            return Err(GameCell::unconfirmed_error());
        }
        let Some(seat) = Seat::ALL.into_iter().find(|s| self.state.seat(*s).is_none()) else {
            return Err(ErrorBody::game_full());
        };
        self.state.seats[seat_index(seat)] = Some(SeatRecord { name: msg.name, token_hash: Some(msg.token_hash) });
        self.persist();
        self.broadcast(&self.full_frame(None));
        self.publish_event(EventKind::Progress);
        self.maybe_start(ctx);
        tracing::info!(game_id = %self.cell.id, seat = seat.as_str(), "second player joined");
        Ok(seat)
    }
}

impl Handler<InjectFault> for TickActor {
    type Result = CommandOutcome;

    fn handle(&mut self, msg: InjectFault, ctx: &mut Context<Self>) -> CommandOutcome {
        if let Some(outcome) = answered_early(msg.deadline, self.abandoned()) {
            return outcome;
        }
        msg.taken.store(true, Ordering::Release);
        match msg.fault {
            // A bug in a tick: the next tick panics (at once when the game is not ticking).
            Fault::Panic if self.ticker.is_some() => self.fault_next_tick = true,
            Fault::Panic => {
                let _ = self.guarded(ctx, |_, _| panic!("injected fault (admin): panic"));
            }
            // A real blocking hang: holds this arbiter's thread like a stuck loop would.
            Fault::Hang(duration) => {
                let _ = self.guarded(ctx, |_, _| std::thread::sleep(duration));
            }
            Fault::PanicOnNextCommand => self.armed_fault = true,
        }
        CommandOutcome::Answered
    }
}

/// A game that never started and that nobody has had a socket open to for
/// `server.abandoned_game_secs` is closed (a started one ends by itself).
impl Handler<CloseAbandoned> for TickActor {
    type Result = ();

    fn handle(&mut self, msg: CloseAbandoned, _: &mut Context<Self>) {
        if self.abandoned() || self.ticker.is_some() || self.cell.has_routes() || !self.in_play() {
            return;
        }
        self.state.abandoned = true;
        if self.persist() {
            self.ended();
            self.env.metrics.game_abandoned();
            self.publish_event(EventKind::Finished);
            tracing::info!(game_id = %self.cell.id, unattended_secs = msg.unattended_secs, "closed a real-time game nobody came to; its place is free");
        }
    }
}

impl Handler<Summary> for TickActor {
    type Result = MessageResult<Summary>;

    fn handle(&mut self, _: Summary, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.summary())
    }
}

impl Handler<Probe> for TickActor {
    type Result = Result<u32, ErrorBody>;

    fn handle(&mut self, _: Probe, _: &mut Context<Self>) -> Self::Result {
        if self.state.failed {
            return Err(ErrorBody::game_failed());
        }
        Ok(self.rules.tick())
    }
}

/// The server is shutting down: the clock stops and the current state (not only the last
/// snapshot tick's) goes to the keeper, which the supervisor flushes next.
impl Handler<Checkpoint> for TickActor {
    type Result = ();

    fn handle(&mut self, _: Checkpoint, _: &mut Context<Self>) {
        self.ticker = None;
        if !self.abandoned() {
            self.last_good = self.rules.clone();
            self.persist();
        }
    }
}

/// Tells the players the game paused (its lease unconfirmed: the clock waits, see
/// `TickActor::tick`) or goes on.
impl Handler<LeaseState> for TickActor {
    type Result = ();

    fn handle(&mut self, msg: LeaseState, _: &mut Context<Self>) {
        if self.abandoned() {
            return;
        }
        let frame = if msg.confirmed {
            ServerFrame::GameResumed {}
        } else {
            crate::protocol::ownership_paused(LEASE_RECHECK.as_millis() as u64)
        };
        self.broadcast(&frame.to_frame());
    }
}

impl Handler<Shutdown> for TickActor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) {
        self.ticker = None;
        self.close_all(close::RESTART, msg.reason);
    }
}
