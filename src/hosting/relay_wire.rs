//! What instances say to each other through the relay (docs/DESIGN.md D11), as it travels
//! over Redis Pub/Sub (JSON): a relayed seat's join, commands (moves, chat, tick inputs)
//! and leave, its resync after the relaying instance's subscription had a gap, a REST seat
//! claim, an admin fault, a summary read, their [`Reply`], and the owner's frames and
//! closes for a relayed socket.

use serde::{Deserialize, Serialize};

use crate::game::Seat;
use crate::hosting::messages::{Action, CommandOutcome, Fault};
use crate::ids::{GameId, InstanceId, TokenHash};
use crate::protocol::ErrorBody;

/// A message between instances.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// Attach the relaying instance's socket `conn` to the seat of `token_hash`.
    Join {
        /// Request id, for the reply.
        req: u64,
        /// The relaying instance.
        from: InstanceId,
        /// Its socket.
        conn: u64,
        /// The game.
        game: GameId,
        /// The seat token's keyed hash.
        token_hash: TokenHash,
        /// The seat the socket already holds.
        holding: Option<Seat>,
    },
    /// A player command from a relayed seat.
    Command {
        /// Request id.
        req: u64,
        /// The relaying instance.
        from: InstanceId,
        /// Its socket.
        conn: u64,
        /// The game.
        game: GameId,
        /// The player's seat.
        seat: Seat,
        /// What they do.
        action: Action,
        /// Time left before the command must not be applied any more, in ms.
        within_ms: u64,
    },
    /// The relayed socket went away.
    Leave {
        /// The relaying instance.
        from: InstanceId,
        /// Its socket.
        conn: u64,
        /// The game.
        game: GameId,
        /// The seat.
        seat: Seat,
    },
    /// The relaying instance's subscription was down for a moment (a failover, a dropped
    /// connection): whatever the owner published to it meanwhile is lost. The owner sends
    /// the seat of `conn` its game's current frames again, as on a join; the seat stays
    /// attached, and no reply is sent. A seat whose join is still unanswered is resent its
    /// frames once the join succeeds; a seat the owner does not know, or whose game is not
    /// there any more, is closed with 1012 (its close may be what was lost).
    Resync {
        /// The relaying instance.
        from: InstanceId,
        /// Its socket.
        conn: u64,
    },
    /// Claim the free seat of a human game (REST join on another instance).
    ClaimSeat {
        /// Request id.
        req: u64,
        /// The asking instance.
        from: InstanceId,
        /// The game.
        game: GameId,
        /// The joiner's name.
        name: String,
        /// The keyed hash of the token the asking instance made for the seat.
        token_hash: TokenHash,
    },
    /// Admin fault injection on another instance's game.
    Fault {
        /// Request id.
        req: u64,
        /// The asking instance.
        from: InstanceId,
        /// The game.
        game: GameId,
        /// The fault.
        fault: Fault,
    },
    /// Read a game's summary as its owner has it now (REST on another instance).
    Summary {
        /// Request id.
        req: u64,
        /// The asking instance.
        from: InstanceId,
        /// The game.
        game: GameId,
    },
    /// The answer to a request.
    Reply {
        /// The request's id.
        req: u64,
        /// The answer.
        reply: Reply,
    },
    /// A frame for a relayed socket.
    Frame {
        /// The socket.
        conn: u64,
        /// The frame's text.
        text: String,
        /// Its place in the seat's stream (absent from an instance that does not number
        /// them: delivered as it comes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<Order>,
    },
    /// Close a relayed socket.
    Close {
        /// The socket.
        conn: u64,
        /// The close code.
        code: u16,
        /// Its place in the seat's stream; absent when the owner's relay closes a seat it
        /// does not know (delivered as it comes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<Order>,
        /// The sender of a close without an `order` (dropped when that is not the socket's
        /// owner any more).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<InstanceId>,
    },
}

/// Where a relayed frame or close stands in its seat's stream, as the owner numbered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The owner that sent it.
    pub from: InstanceId,
    /// Its stream: the owner's proxy of the seat (increasing on one owner).
    pub stream: u64,
    /// Its place in the stream, from 1.
    pub seq: u64,
}

/// The answer to a relayed request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Reply {
    /// The join's result.
    Joined {
        /// The seat, or why not.
        result: Result<Seat, ErrorBody>,
        /// The game's kind (its socket reads that kind's frames).
        #[serde(default)]
        kind: Option<String>,
    },
    /// A command's outcome.
    Command {
        /// What became of it.
        outcome: CommandOutcome,
    },
    /// A seat claim's result.
    Seat {
        /// The seat, or why not.
        result: Result<Seat, ErrorBody>,
    },
    /// A fault injection's result.
    Fault {
        /// Accepted, or why not.
        result: Result<(), ErrorBody>,
    },
    /// A summary read's result.
    Summary {
        /// The summary (as JSON), or why not.
        result: Result<serde_json::Value, ErrorBody>,
    },
    /// The instance does not host the game (any more): resolve it again.
    NotHere,
}

/// The request id of a message that waits for a reply.
pub(super) fn request_id(wire: &Wire) -> Option<u64> {
    match wire {
        Wire::Join { req, .. }
        | Wire::Command { req, .. }
        | Wire::ClaimSeat { req, .. }
        | Wire::Fault { req, .. }
        | Wire::Summary { req, .. } => Some(*req),
        _ => None,
    }
}

/// A request's sender and number: its key on the owner, which acts on a resent request once
/// and answers it again with the first answer.
pub(super) fn request_key(wire: &Wire) -> Option<(&InstanceId, u64)> {
    match wire {
        Wire::Join { req, from, .. }
        | Wire::Command { req, from, .. }
        | Wire::ClaimSeat { req, from, .. }
        | Wire::Fault { req, from, .. }
        | Wire::Summary { req, from, .. } => Some((from, *req)),
        _ => None,
    }
}

/// Numbers a message that waits for a reply (the relay numbers each request it sends).
pub(super) fn set_request_id(wire: &mut Wire, id: u64) {
    match wire {
        Wire::Join { req, .. }
        | Wire::Command { req, .. }
        | Wire::ClaimSeat { req, .. }
        | Wire::Fault { req, .. }
        | Wire::Summary { req, .. } => *req = id,
        _ => {}
    }
}
