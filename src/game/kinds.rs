//! The game kinds this server plays, and the two small object-safe interfaces its two game
//! runtimes play them through (docs/DESIGN.md D14).
//!
//! - A **turn-based** kind implements [`TurnGame`]. Its games are hosted by
//!   `supervision::TurnActor`: durable (snapshots in the store, fenced leases, takeover on
//!   another instance), with chat, the AI seam ([`TurnGame::ai_move`], searched off the
//!   actor) and the LLM ([`TurnGame::describe`]). A move is one integer (the move frame's
//!   `column`: Connect Four's column, a cell index for another board game).
//! - A **real-time** kind implements [`TickGame`]. Its games are hosted by
//!   `supervision::cycles::CycleGame`, which ticks at `realtime.tick_hz`, takes each seat's
//!   latest input per tick ([`TickKind::parse_input`] reads it off the wire), asks the AI
//!   for its input inside the tick ([`TickGame::ai_input`], which must answer in
//!   microseconds) and keeps a snapshot every `realtime.snapshot_every_ticks`.
//!
//! Neither runtime names a kind. Adding a game is its rules module in `src/game/`
//! implementing one of the interfaces, its page, and one line in [`KINDS`]: creation,
//! the waitlist, joining, sockets, snapshots, the lobby, fault injection and per-kind
//! supervision policies (`supervision.kinds.<name>`) all go through this table.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::ai::SearchBudget;
use super::{MoveError, Outcome, Seat};

/// A turn-based game's state, as the turn runtime sees it. States are immutable values:
/// [`TurnGame::play`] and [`TurnGame::resign`] return a new state.
pub trait TurnGame: AsAny + Send + Sync + fmt::Debug + 'static {
    /// The kind's wire name (its entry in [`KINDS`]).
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

/// A turn-based game's state behind [`TurnGame`]; cheap to clone. Serialises as the kind's
/// snapshot form.
#[derive(Clone)]
pub struct Board(Arc<dyn TurnGame>);

impl Board {
    /// Wraps a kind's state.
    pub fn new(game: impl TurnGame) -> Board {
        Board(Arc::new(game))
    }

    /// The new game of `kind`, if it is a registered turn-based kind.
    pub fn new_game(kind: &str) -> Option<Board> {
        by_name(kind).and_then(Kind::turns).map(|t| (t.new_game)())
    }

    /// Reads a stored state of `kind`, validated by the kind (a real-time state comes back
    /// carried as by [`Board::ticked`]).
    ///
    /// # Errors
    /// Why it is not a state of that kind (or the kind is not one of this server's).
    pub fn decode(kind: &str, value: Value) -> Result<Board, String> {
        match by_name(kind).map(|k| &k.runtime) {
            Some(Runtime::Turns(turns)) => (turns.decode)(value),
            Some(Runtime::Ticks(ticks)) => (ticks.decode)(value).map(Board::ticked),
            None => Err(format!("{kind:?} is not a game kind of this server")),
        }
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

/// One seat's input to a real-time game, in the kind's own code (light cycles: a heading).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TickInput(pub u8);

/// A real-time game's state, as the tick runtime sees it. States are immutable values.
pub trait TickGame: Send + Sync + fmt::Debug + 'static {
    /// The kind's wire name (its entry in [`KINDS`]).
    fn kind(&self) -> &'static str;
    /// Ticks played.
    fn tick(&self) -> u32;
    /// Whether the game is running, won or drawn.
    fn outcome(&self) -> Outcome;
    /// The next state, from this tick's input of each seat (`[red, yellow]`; `None`: the
    /// seat sent nothing since the last tick). A finished game stays as it is.
    fn step(&self, inputs: [Option<TickInput>; 2]) -> Arena;
    /// The computer player's input for `seat` this tick. It runs inside the tick, so it
    /// must answer in microseconds and never block.
    fn ai_input(&self, seat: Seat) -> TickInput;
    /// `seat` gives up: the other seat wins. A finished game stays as it is.
    fn resign(&self, seat: Seat) -> Arena;
    /// The kind's own fields of every `tick` frame (light cycles: both heads).
    fn tick_view(&self) -> Map<String, Value>;
    /// The whole state: the `game` of a full frame, and the snapshot form.
    fn encode(&self) -> Value;
}

/// A real-time game's state behind [`TickGame`]; cheap to clone.
#[derive(Clone)]
pub struct Arena(Arc<dyn TickGame>);

impl Arena {
    /// Wraps a kind's state.
    pub fn new(game: impl TickGame) -> Arena {
        Arena(Arc::new(game))
    }
}

impl std::ops::Deref for Arena {
    type Target = dyn TickGame;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Arena {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.encode().serialize(serializer)
    }
}

/// A client's input frame that a real-time kind could not read. The socket turns it into
/// the error the turn-based socket gives the same fault (docs/PROTOCOL.md: frames are strict).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputError {
    /// Not the frame's shape: an unknown field, a missing one, a wrong type (BAD_REQUEST).
    Shape(String),
    /// A field's value is not one it may take (VALIDATION_FAILED with `allowed`).
    Value {
        /// The field at fault.
        field: &'static str,
        /// What is wrong, for a person.
        message: String,
        /// The values it may take.
        allowed: Vec<&'static str>,
    },
}

/// How the turn runtime starts and restores a turn-based kind.
#[derive(Clone, Copy)]
pub struct TurnKind {
    /// The starting position.
    pub new_game: fn() -> Board,
    /// A stored state, validated (a damaged one is refused, never played).
    pub decode: fn(Value) -> Result<Board, String>,
}

/// How the tick runtime starts a real-time kind and reads its inputs.
#[derive(Clone, Copy)]
pub struct TickKind {
    /// A new game on the `realtime.width` × `realtime.height` arena.
    pub new_game: fn(u16, u16) -> Arena,
    /// A stored state, validated (a damaged one is refused, never played).
    pub decode: fn(Value) -> Result<Arena, String>,
    /// The client frame types that carry an input (light cycles: `turn`).
    pub input_frames: &'static [&'static str],
    /// Reads an input frame (its `type` is one of `input_frames`), strictly: a field the
    /// frame does not have is [`InputError::Shape`].
    pub parse_input: fn(&Map<String, Value>) -> Result<TickInput, InputError>,
}

/// Which runtime hosts a kind.
#[derive(Clone, Copy)]
pub enum Runtime {
    /// `TurnActor`: turn by turn.
    Turns(TurnKind),
    /// `CycleGame`: a fixed-rate tick loop.
    Ticks(TickKind),
}

/// One registered game kind.
pub struct Kind {
    /// The wire name (`kind` in requests, summaries and frames; `supervision.kinds.<name>`).
    pub name: &'static str,
    /// The name people read.
    pub title: &'static str,
    /// The page that plays it, opened with `?game=…` (the lobby's Join and Resume links).
    pub page: &'static str,
    /// The file under `static/` served at `page`.
    pub asset: &'static str,
    /// Who hosts its games.
    pub runtime: Runtime,
}

impl Kind {
    /// The turn-based half, when it is one.
    pub fn turns(&self) -> Option<&TurnKind> {
        match &self.runtime {
            Runtime::Turns(t) => Some(t),
            Runtime::Ticks(_) => None,
        }
    }

    /// The real-time half, when it is one.
    pub fn ticks(&self) -> Option<&TickKind> {
        match &self.runtime {
            Runtime::Ticks(t) => Some(t),
            Runtime::Turns(_) => None,
        }
    }
}

/// Kinds are known by their names.
impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Kind {}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Every game kind, the first being the default. One line per kind.
pub static KINDS: &[Kind] = &[super::connect4::KIND_ENTRY, super::lightcycle::KIND_ENTRY];

/// A registered kind by its wire name.
pub fn by_name(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The wire names of every kind, in registration order.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once_and_starts() {
        let names = names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a kind is registered twice: {names:?}");
        for kind in KINDS {
            assert!(kind.page.starts_with('/'), "{}'s page {:?}", kind.name, kind.page);
            assert!(
                crate::web::assets::response(kind.asset).is_some(),
                "{}'s page {:?} is not an asset",
                kind.name,
                kind.asset
            );
            match &kind.runtime {
                Runtime::Turns(t) => {
                    let board = (t.new_game)();
                    assert_eq!(board.kind(), kind.name);
                    assert_eq!(board.outcome(), Outcome::InProgress);
                    let back = (t.decode)(board.encode()).unwrap();
                    assert_eq!(back.encode(), board.encode());
                    assert!(Board::decode(kind.name, serde_json::json!({"nonsense": true})).is_err());
                }
                Runtime::Ticks(t) => {
                    let arena = (t.new_game)(32, 24);
                    assert_eq!(arena.kind(), kind.name);
                    assert_eq!(arena.tick(), 0);
                    assert!(!t.input_frames.is_empty());
                    let later = arena.step([None, None]);
                    assert_eq!(later.tick(), 1);
                    // Stored and read back through a board, as the snapshot store does.
                    let board = Board::decode(kind.name, later.encode()).unwrap();
                    assert_eq!((board.kind(), board.moves(), board.turn()), (kind.name, 1, None));
                    assert_eq!(board.arena().map(|a| a.encode()), Some(later.encode()));
                    assert!(board.play(Seat::Red, 0).is_err());
                    assert!((t.decode)(serde_json::json!({"nonsense": true})).is_err());
                }
            }
        }
        assert!(by_name("chess").is_none());
        assert!(Board::new_game("lightcycle").is_none(), "a real-time kind has no new turn-based board");
        assert!(Board::decode("chess", Value::Null).is_err());
    }

    #[test]
    fn a_board_downcasts_to_its_kind() {
        let board = Board::new_game("connect4").unwrap();
        assert!(board.downcast::<crate::game::Connect4>().is_some());
    }
}
