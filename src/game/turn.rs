//! The interface a turn-based kind implements: [`TurnGame`], the state the turn runtime
//! (`hosting::turn::TurnActor`) plays through, behind [`Board`]; the [`SearchBudget`] its
//! AI searches within; and [`TurnKind`], how the runtime starts and restores a kind. A
//! board also carries a real-time state for the snapshot store ([`Board::ticked`]). No kind
//! is named here: a board is made from a kind's name by the table (`kinds.rs`).

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::tick::Arena;
use super::{MoveError, Outcome, Seat};

/// A turn-based game's state, as the turn runtime sees it. States are immutable values:
/// [`TurnGame::play`] and [`TurnGame::resign`] return a new state.
pub trait TurnGame: AsAny + Send + Sync + fmt::Debug + 'static {
    /// The kind's wire name (its entry in `kinds::KINDS`).
    fn kind(&self) -> &'static str;
    /// The seat to move, or `None` once the game is over.
    fn turn(&self) -> Option<Seat>;
    /// Whether the game is running, won or drawn.
    fn outcome(&self) -> Outcome;
    /// Moves played (resignation is not a move).
    fn moves(&self) -> u32;
    /// Plays `mv` (the move frame's integer, unchecked) for `seat`.
    ///
    /// # Errors
    /// A [`MoveError`] saying why the move is refused.
    fn play(&self, seat: Seat, mv: i64) -> Result<Board, MoveError>;
    /// `seat` resigns: the other seat wins.
    ///
    /// # Errors
    /// [`MoveError::GameOver`] if the game has already finished.
    fn resign(&self, seat: Seat) -> Result<Board, MoveError>;
    /// The kind's own fields of a `state` frame's `game` (Connect Four: `columns` and
    /// `winning_line`), beside the fields every game has.
    fn view(&self) -> Map<String, Value>;
    /// The computer player's move for the seat to move, within `budget`; ties broken by
    /// `seed`. `None` when the game is over. Runs on a blocking thread, off the actor.
    fn ai_move(&self, budget: SearchBudget, seed: u64) -> Option<i64>;
    /// The position as plain text, for the LLM that speaks for the AI.
    fn describe(&self) -> String;
    /// A move the AI (yellow) just played, in words that follow "You just", for the LLM.
    fn describe_move(&self, mv: i64) -> String;
    /// The snapshot form, read back by the kind's [`TurnKind::decode`].
    fn encode(&self) -> Value;
    /// The real-time state inside, when this board only carries one for the snapshot
    /// store ([`Board::ticked`]); turn-based kinds have none.
    fn arena(&self) -> Option<Arena> {
        None
    }
}

/// How much work one move decision of the AI may do ([`TurnGame::ai_move`]).
#[derive(Clone, Copy, Debug)]
pub struct SearchBudget {
    /// Deepest iteration (in plies) the iterative deepening may attempt.
    pub max_depth: u32,
    /// Node cap across all iterations; the iteration that hits it is
    /// discarded and the deepest completed one is used.
    pub max_nodes: u64,
}

impl SearchBudget {
    /// Depth 7 with a node cap of 40,000: roughly a millisecond or two per decision in a
    /// release build.
    pub const DEFAULT: SearchBudget = SearchBudget { max_depth: 7, max_nodes: 40_000 };
}

impl Default for SearchBudget {
    /// [`SearchBudget::DEFAULT`].
    fn default() -> Self {
        SearchBudget::DEFAULT
    }
}

/// A turn-based game's state behind [`TurnGame`]; cheap to clone. Serialises as the kind's
/// snapshot form.
#[derive(Clone)]
pub struct Board(Arc<dyn TurnGame>);

impl Board {
    /// Wraps a kind's state.
    pub fn new(game: impl TurnGame) -> Board {
        Board(Arc::new(game))
    }

    /// A real-time state carried in a board, so the snapshot store, its fencing and the
    /// takeover of an owner's games serve real-time kinds too. It is never played as a
    /// turn-based game: it has no turn, refuses moves and answers [`TurnGame::arena`].
    pub fn ticked(arena: Arena) -> Board {
        Board::new(Ticked(arena))
    }

    /// The state as the concrete kind, when it is one (tests, benchmarks, tools).
    pub fn downcast<T: TurnGame>(&self) -> Option<&T> {
        (*self.0).as_any().downcast_ref()
    }
}

/// Upcasting to `Any` for [`Board::downcast`] (trait upcasting is newer than this crate's
/// minimum Rust); implemented for every sized `'static` type.
pub trait AsAny {
    /// The value as `Any`.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Two states are equal when they are of one kind and encode alike.
impl PartialEq for Board {
    fn eq(&self, other: &Board) -> bool {
        self.kind() == other.kind() && self.encode() == other.encode()
    }
}

impl std::ops::Deref for Board {
    type Target = dyn TurnGame;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Board {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.encode().serialize(serializer)
    }
}

/// A real-time state carried by a [`Board`] (see [`Board::ticked`]).
#[derive(Debug)]
struct Ticked(Arena);

impl TurnGame for Ticked {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn turn(&self) -> Option<Seat> {
        None
    }

    fn outcome(&self) -> Outcome {
        self.0.outcome()
    }

    fn moves(&self) -> u32 {
        self.0.tick()
    }

    fn play(&self, _: Seat, _: i64) -> Result<Board, MoveError> {
        Err(MoveError::Illegal { reason: "a real-time game takes its inputs on its socket, tick by tick".to_owned() })
    }

    fn resign(&self, seat: Seat) -> Result<Board, MoveError> {
        Ok(Board::ticked(self.0.resign(seat)))
    }

    fn view(&self) -> Map<String, Value> {
        self.0.tick_view()
    }

    fn ai_move(&self, _: SearchBudget, _: u64) -> Option<i64> {
        None
    }

    fn describe(&self) -> String {
        String::new()
    }

    fn describe_move(&self, _: i64) -> String {
        String::new()
    }

    fn encode(&self) -> Value {
        self.0.encode()
    }

    fn arena(&self) -> Option<Arena> {
        Some(self.0.clone())
    }
}

/// How the turn runtime starts and restores a turn-based kind.
#[derive(Clone, Copy)]
pub struct TurnKind {
    /// The starting position.
    pub new_game: fn() -> Board,
    /// A stored state, validated (a damaged one is refused, never played).
    pub decode: fn(Value) -> Result<Board, String>,
}
