//! The messages every hosted game answers, whatever its kind: a socket's [`Join`] and
//! [`Leave`], a player's [`Command`], the REST seat claim ([`ClaimSeat`]), the admin's
//! [`InjectFault`], the watchdog's [`CloseAbandoned`], the live [`Summary`], the
//! shutdown's [`Checkpoint`] and [`Shutdown`], and what a game sends back to a socket
//! ([`ToSession`], through a [`Route`]). The turn-based and the real-time actors both
//! handle every one of them, so the directory, the sessions and the relay reach any game
//! the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::game::{Seat, TickInput};
use crate::ids::{ConnId, TokenHash};
use crate::metrics::RestartReason;
use crate::protocol::{ErrorBody, GameSummary, SharedFrame};

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

/// A player socket attached to a seat.
#[derive(Clone)]
pub struct Route {
    /// The connection.
    pub conn: ConnId,
    /// Where the game's frames go.
    pub to: Recipient<ToSession>,
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
    /// A real-time seat's input for the next tick (the latest before the tick counts), in
    /// its kind's code ([`crate::protocol::TickInputFrame`] read it off the wire).
    Input(TickInput),
}

impl Action {
    /// The frame type this action came from.
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Move(_) => "move",
            Action::Chat(_) => "chat",
            Action::Resign => "resign",
            Action::Input(_) => "input",
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

/// This instance's lease on the game stopped being confirmed (`confirmed: false`: the
/// game pauses, and its players are told `game_paused`), or is confirmed again (the game
/// resumes: `game_resumed`). Sent by the supervisor's lease rounds (docs/DESIGN.md D17).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct LeaseState {
    /// Whether the lease is confirmed now.
    pub confirmed: bool,
}

/// The game's summary as it is now (its lobby entry, with who is connected), answered by
/// the game itself: a read of a game from any instance reaches its owner.
#[derive(Message)]
#[rtype(result = "GameSummary")]
pub struct Summary;

/// The server is shutting down: a game whose current state is newer than its last
/// snapshot (a real-time game between two snapshot ticks) stops and hands it to the keeper,
/// so the flush that follows writes the state the players last saw.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Checkpoint;

/// What a game answers a [`Command`] or an [`InjectFault`] before looking at it: `Expired`
/// past its deadline, `Moved` from an abandoned incarnation (the sender follows the game);
/// `None` when the game should act on it.
pub fn answered_early(deadline: Instant, abandoned: bool) -> Option<CommandOutcome> {
    if Instant::now() > deadline {
        Some(CommandOutcome::Expired)
    } else if abandoned {
        Some(CommandOutcome::Moved)
    } else {
        None
    }
}
