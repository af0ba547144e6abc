//! The interface a real-time kind implements: [`TickGame`], the state the tick runtime
//! (`hosting::tick::TickActor`) plays through, behind [`Arena`]; a seat's [`TickInput`];
//! and [`TickKind`], how the runtime starts a kind and reads its snapshots. No kind is
//! named here, nor the wire: a kind's input frames are types in `protocol`.

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

/// How the tick runtime starts a real-time kind and reads its snapshots (its input frames
/// are wire types: `protocol::TickInputFrame`).
#[derive(Clone, Copy)]
pub struct TickKind {
    /// A new game on the `realtime.width` × `realtime.height` arena.
    pub new_game: fn(u16, u16) -> Arena,
    /// A stored state, validated (a damaged one is refused, never played).
    pub decode: fn(Value) -> Result<Arena, String>,
}
