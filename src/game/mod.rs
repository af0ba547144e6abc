//! Pure game rules for Rampart.
//!
//! This module owns the game-agnostic vocabulary shared by every game kind:
//! the two [`Seat`]s, the [`Outcome`] of a game, the [`MoveError`] reasons a
//! move can be refused, and the [`Rules`] trait Connect Four's rules are written
//! against. The two object-safe interfaces the runtimes play a kind through are
//! [`TurnGame`] (in [`turn`], behind [`Board`]) and [`TickGame`] (in [`tick`], behind
//! [`Arena`]); [`kind`] says what a kind is, and [`kinds`] is the table of them, the one
//! module that names every kind. Concrete kinds live in submodules ([`connect4`], with its
//! computer opponent in [`connect4::ai`]; [`lightcycle`], a real-time duel); each imports
//! the interfaces, never the table. Everything here is pure: no I/O, no actors, no
//! threads, no clocks.

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod connect4;
pub mod kind;
pub mod kinds;
pub mod lightcycle;
pub mod tick;
pub mod turn;

pub use connect4::Connect4;
pub use tick::{Arena, TickGame, TickInput};
pub use turn::{Board, SearchBudget, TurnGame};

/// One of the two seats at a table. Red always moves first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seat {
    /// The first player.
    Red,
    /// The second player.
    Yellow,
}

impl Seat {
    /// Both seats, in turn order: `[Red, Yellow]`.
    pub const ALL: [Seat; 2] = [Seat::Red, Seat::Yellow];

    /// The opposing seat.
    #[must_use]
    pub fn other(self) -> Seat {
        match self {
            Seat::Red => Seat::Yellow,
            Seat::Yellow => Seat::Red,
        }
    }

    /// The wire name of the seat: `"red"` or `"yellow"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Seat::Red => "red",
            Seat::Yellow => "yellow",
        }
    }
}

impl fmt::Display for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a game as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The game is still being played.
    InProgress,
    /// The game is over and `winner` won, either on the board or because the
    /// other seat resigned (`resigned == true`).
    Won {
        /// The seat that won.
        winner: Seat,
        /// `true` when the win came from the other seat resigning.
        resigned: bool,
    },
    /// The game is over with no winner.
    Draw,
}

/// Why a move was refused.
///
/// The client sees it as a docs/PROTOCOL.md code, by the protocol's conversion to
/// `ErrorCode`: `NotYourTurn` → `NOT_YOUR_TURN`, `GameOver` → `GAME_OVER`, the rest →
/// `INVALID_MOVE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveError {
    /// The requested column does not exist on the board.
    ColumnOutOfRange {
        /// The column as it was received.
        column: i64,
        /// How many columns the board has (valid columns are `0..columns`).
        columns: u8,
    },
    /// The requested column has no free cell left.
    ColumnFull {
        /// The full column.
        column: u8,
    },
    /// The seat tried to move while it is the other seat's turn.
    NotYourTurn {
        /// The seat whose turn it actually is.
        turn: Seat,
    },
    /// The game has already finished.
    GameOver,
    /// Any other illegal move of a kind, in its own words.
    Illegal {
        /// Why, for a person.
        reason: String,
    },
}

impl fmt::Display for MoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoveError::ColumnOutOfRange { column, columns } => {
                let last = columns.saturating_sub(1);
                write!(f, "column {column} is out of range 0..={last}")
            }
            MoveError::ColumnFull { column } => write!(f, "column {column} is full"),
            MoveError::NotYourTurn { turn } => write!(f, "it is {turn}'s turn"),
            MoveError::GameOver => f.write_str("the game is over"),
            MoveError::Illegal { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for MoveError {}

/// The rules of a two-seat turn-based game with a typed move, as pure functions: how
/// Connect Four's rules are written (its [`TurnGame`] impl plays through them).
///
/// A new game kind need not implement this: a kind is a module implementing [`TurnGame`]
/// (turn-based) or [`TickGame`] (real-time) and one line in [`kinds::KINDS`]. States are
/// immutable values: [`Rules::play`] and [`Rules::resign`] return a new state and never
/// modify `self`.
pub trait Rules: Clone + Send + 'static {
    /// A move as received from the wire.
    type Move;

    /// The game kind's wire name, e.g. `"connect4"`.
    const KIND: &'static str;

    /// The starting position.
    fn new_game() -> Self;

    /// The seat to move, or `None` once the game is over.
    fn turn(&self) -> Option<Seat>;

    /// Whether the game is running, won or drawn.
    fn outcome(&self) -> Outcome;

    /// How many moves have been played (resignation is not a move).
    fn moves(&self) -> u32;

    /// Plays `mv` for `seat`, returning the new state. `self` is unchanged.
    ///
    /// # Errors
    /// A [`MoveError`] explaining why the move is refused.
    fn play(&self, seat: Seat, mv: Self::Move) -> Result<Self, MoveError>;

    /// `seat` resigns: the other seat wins with `resigned: true`.
    ///
    /// # Errors
    /// [`MoveError::GameOver`] if the game has already finished.
    fn resign(&self, seat: Seat) -> Result<Self, MoveError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seat_basics() {
        assert_eq!(Seat::Red.other(), Seat::Yellow);
        assert_eq!(Seat::Yellow.other(), Seat::Red);
        assert_eq!(Seat::Red.as_str(), "red");
        assert_eq!(Seat::Yellow.as_str(), "yellow");
        assert_eq!(Seat::ALL, [Seat::Red, Seat::Yellow]);
        assert_eq!(serde_json::to_string(&Seat::Yellow).unwrap(), "\"yellow\"");
        assert_eq!(serde_json::from_str::<Seat>("\"red\"").unwrap(), Seat::Red);
    }

    #[test]
    fn move_error_messages() {
        let e = MoveError::ColumnOutOfRange { column: 9, columns: 7 };
        assert_eq!(e.to_string(), "column 9 is out of range 0..=6");
        let e = MoveError::ColumnFull { column: 3 };
        assert_eq!(e.to_string(), "column 3 is full");
        let e = MoveError::NotYourTurn { turn: Seat::Yellow };
        assert_eq!(e.to_string(), "it is yellow's turn");
        assert_eq!(MoveError::GameOver.to_string(), "the game is over");
        let boxed: Box<dyn std::error::Error> = Box::new(MoveError::GameOver);
        assert_eq!(boxed.to_string(), "the game is over");
    }
}
