//! What one game kind is to the server: a [`Kind`] names it, says where its page is and
//! which [`Runtime`] hosts its games, turn by turn ([`TurnKind`]) or tick by tick
//! ([`TickKind`]). Each kind's module defines its own entry; `kinds.rs` lists them.

use std::fmt;

use super::tick::TickKind;
use super::turn::TurnKind;

/// Which runtime hosts a kind.
#[derive(Clone, Copy)]
pub enum Runtime {
    /// `TurnActor`: turn by turn.
    Turns(TurnKind),
    /// `TickActor`: a fixed-rate tick loop.
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
