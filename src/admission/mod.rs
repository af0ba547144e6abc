//! AdmissionController is an actor. It is the one gate for new games: every creation
//! request passes through it before the GameSupervisor starts a game. For now it admits
//! everyone; health-based refusal and the waitlist plug in here.

use actix::prelude::*;

use crate::protocol::{ErrorBody, ErrorCode, SeatGrant};
use crate::supervision::supervisor::{CreateGame, GameSupervisor};

/// Ask for a new game.
#[derive(Message)]
#[rtype(result = "Result<SeatGrant, ErrorBody>")]
pub struct Admit(pub CreateGame);

/// The gate for new games.
pub struct AdmissionController {
    supervisor: Addr<GameSupervisor>,
    draining: bool,
}

impl AdmissionController {
    /// A controller that hands admitted games to `supervisor`.
    pub fn new(supervisor: Addr<GameSupervisor>) -> Self {
        AdmissionController { supervisor, draining: false }
    }
}

impl Actor for AdmissionController {
    type Context = Context<Self>;
}

/// Stop admitting: the server is shutting down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartDraining;

impl Handler<StartDraining> for AdmissionController {
    type Result = ();
    fn handle(&mut self, _: StartDraining, _: &mut Context<Self>) {
        self.draining = true;
    }
}

impl Handler<Admit> for AdmissionController {
    type Result = ResponseFuture<Result<SeatGrant, ErrorBody>>;

    fn handle(&mut self, msg: Admit, _: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Box::pin(async {
                Err(ErrorBody::new(ErrorCode::Draining, "the server is shutting down; try another server"))
            });
        }
        let supervisor = self.supervisor.clone();
        Box::pin(async move {
            supervisor
                .send(msg.0)
                .await
                .unwrap_or_else(|_| Err(ErrorBody::new(ErrorCode::Internal, "the game supervisor is unavailable")))
        })
    }
}
