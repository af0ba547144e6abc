//! The interface a real-time kind implements: [`TickGame`], the state the tick runtime
//! (`hosting::tick::TickActor`) plays through, behind [`Arena`]; a seat's [`TickInput`];
//! and [`TickKind`], how the runtime starts a kind and reads its input frames
//! ([`InputError`] when it cannot). No kind is named here.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Outcome, Seat};

/// One seat's input to a real-time game, in the kind's own code (light cycles: a heading).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TickInput(pub u8);

/// A real-time game's state, as the tick runtime sees it. States are immutable values.
pub trait TickGame: Send + Sync + fmt::Debug + 'static {
    /// The kind's wire name (its entry in `kinds::KINDS`).
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
