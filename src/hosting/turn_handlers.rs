//! What a turn-based game does with each message every hosted game answers (see
//! `hosting::messages`): a socket's join and leave, a player's command, the REST seat
//! claim, an admin's fault, the watchdog's close, the live summary, the probe, the
//! shutdown. Each runs inside the actor's panic boundary (`TurnActor::guarded`).

use std::sync::atomic::Ordering;

use actix::prelude::*;

use crate::game::Seat;
use crate::hosting::messages::{
    answered_early, Checkpoint, ClaimSeat, CloseAbandoned, Command, CommandOutcome, Fault, InjectFault, Join,
    LeaseState, Leave, Probe, Shutdown, Summary, ToSession,
};
use crate::hosting::registry::LEASE_RECHECK;
use crate::hosting::turn::TurnActor;
use crate::protocol::{close, ErrorBody, ServerFrame};
use crate::store::snapshot::{seat_index, SeatRecord};

impl Handler<Join> for TurnActor {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| {
            let seat = act.state.seat_of(&msg.token_hash).ok_or_else(ErrorBody::not_a_seat)?;
            if let Some(held) = msg.holding.filter(|held| *held != seat) {
                return Err(crate::protocol::seat_held(held));
            }
            if let Some(old) = act.cell.attach(seat, msg.route.clone()) {
                old.to.do_send(ToSession::Close { code: close::REPLACED, reason: "seat opened on another connection" });
            }
            if std::mem::take(&mut act.untold_takeover[seat_index(seat)]) {
                let frame = ServerFrame::GameRestarted {
                    restarts: act.restarts,
                    restored_moves: act.state.board.moves(),
                    reason: Some("taken_over"),
                };
                act.say(&msg.route.to, &frame);
            }
            if act.failed {
                let reason = "this game exceeded its restart limit and is closed".to_owned();
                act.say(&msg.route.to, &ServerFrame::GameFailed { reason });
            }
            act.broadcast_state();
            if act.cell.paused.load(Ordering::Acquire) {
                let paused = crate::protocol::ownership_paused(LEASE_RECHECK.as_millis() as u64);
                msg.route.to.do_send(ToSession::Frame(paused.to_frame()));
            }
            Ok(seat)
        })?
    }
}

impl Handler<Leave> for TurnActor {
    type Result = ();

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) {
        let _ = self.guarded(ctx, |act, _| {
            if act.cell.detach(msg.seat, msg.conn) {
                act.broadcast_state();
            }
        });
    }
}

impl Handler<Command> for TurnActor {
    type Result = CommandOutcome;

    fn handle(&mut self, msg: Command, ctx: &mut Context<Self>) -> CommandOutcome {
        if let Some(outcome) = answered_early(msg.deadline, self.abandoned()) {
            return outcome;
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

impl Handler<CloseAbandoned> for TurnActor {
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

impl Handler<ClaimSeat> for TurnActor {
    type Result = Result<Seat, ErrorBody>;

    fn handle(&mut self, msg: ClaimSeat, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| {
            if let Some(error) = act.unavailable() {
                return Err(error);
            }
            let free = Seat::ALL.into_iter().find(|s| act.state.seat(*s).is_none());
            let Some(seat) = free else {
                return Err(ErrorBody::game_full());
            };
            act.state.seats[seat_index(seat)] = Some(SeatRecord { name: msg.name, token_hash: Some(msg.token_hash) });
            if !act.commit() {
                return Err(ErrorBody::moved());
            }
            tracing::info!(game_id = %act.cell.id, seat = seat.as_str(), "second player joined");
            Ok(seat)
        })?
    }
}

impl Handler<InjectFault> for TurnActor {
    type Result = CommandOutcome;

    fn handle(&mut self, msg: InjectFault, ctx: &mut Context<Self>) -> CommandOutcome {
        if let Some(outcome) = answered_early(msg.deadline, self.abandoned()) {
            return outcome;
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

impl Handler<Probe> for TurnActor {
    type Result = Result<u32, ErrorBody>;

    fn handle(&mut self, _: Probe, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| match act.unavailable() {
            Some(error) => Err(error),
            None => Ok(act.state.board.moves()),
        })?
    }
}

impl Handler<Shutdown> for TurnActor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) {
        for route in self.cell.routes().into_iter().flatten() {
            route.to.do_send(ToSession::Close { code: close::RESTART, reason: msg.reason });
        }
    }
}

/// Tells the players the game paused (its lease unconfirmed) or goes on; what pauses is
/// decided where it is applied (every command checks the lease, the AI waits for it).
impl Handler<LeaseState> for TurnActor {
    type Result = ();

    fn handle(&mut self, msg: LeaseState, _: &mut Context<Self>) {
        let frame = if msg.confirmed {
            ServerFrame::GameResumed {}
        } else {
            crate::protocol::ownership_paused(LEASE_RECHECK.as_millis() as u64)
        };
        // Not held behind moves waiting to be stored: the players hear it now (D18).
        self.tell_now(&frame);
    }
}

impl Handler<Summary> for TurnActor {
    type Result = MessageResult<Summary>;

    fn handle(&mut self, _: Summary, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.summary())
    }
}

/// Every change of a turn-based game is committed as it happens: nothing to hand over.
impl Handler<Checkpoint> for TurnActor {
    type Result = ();

    fn handle(&mut self, _: Checkpoint, _: &mut Context<Self>) {}
}
