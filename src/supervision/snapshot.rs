//! A game's last good state: everything needed to resume it after a crash, on another
//! arbiter or (with the Redis store) in another process. Serialisable and validated on load.

use serde::{Deserialize, Serialize};

use crate::game::{Connect4, Seat};
use crate::ids::{GameId, PlayerToken};

/// One occupied seat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeatRecord {
    /// Display name.
    pub name: String,
    /// The seat's secret; `None` for the AI.
    pub token: Option<PlayerToken>,
}

impl SeatRecord {
    /// Whether the AI plays this seat.
    pub fn is_ai(&self) -> bool {
        self.token.is_none()
    }
}

/// The state a restarted game resumes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Game id.
    pub game_id: GameId,
    /// The board (validated when deserialised).
    pub board: Connect4,
    /// Red seat, then yellow; `None` while free.
    pub seats: [Option<SeatRecord>; 2],
    /// When the game was created (RFC 3339).
    pub created_at: String,
    /// Closed because nobody was connected for `server.abandoned_game_secs`.
    #[serde(default)]
    pub abandoned: bool,
}

impl Snapshot {
    /// The record of one seat.
    pub fn seat(&self, seat: Seat) -> Option<&SeatRecord> {
        self.seats[seat_index(seat)].as_ref()
    }
    /// Whether the AI plays one of the seats.
    pub fn vs_ai(&self) -> bool {
        self.seats.iter().flatten().any(SeatRecord::is_ai)
    }
}

/// Index of a seat in two-element arrays (red 0, yellow 1).
pub fn seat_index(seat: Seat) -> usize {
    match seat {
        Seat::Red => 0,
        Seat::Yellow => 1,
    }
}
