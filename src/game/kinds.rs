//! The game kinds this server plays: [`KINDS`], one line per kind, and the lookups by name
//! (docs/DESIGN.md D14). This table is the only place that names every kind; each kind's
//! module implements one of the two interfaces and defines its own entry:
//!
//! - A **turn-based** kind implements [`TurnGame`](super::TurnGame) (`turn.rs`). Its games
//!   are hosted by `hosting::turn::TurnActor`: durable (snapshots in the store, fenced
//!   leases, takeover on another instance), with chat, the AI seam
//!   ([`TurnGame::ai_move`](super::TurnGame::ai_move), searched off the actor) and the LLM
//!   ([`TurnGame::describe`](super::TurnGame::describe)). A move is one integer (the move
//!   frame's `column`: Connect Four's column, a cell index for another board game).
//! - A **real-time** kind implements [`TickGame`](super::TickGame) (`tick.rs`). Its games
//!   are hosted by `hosting::tick::TickActor`, which ticks at `realtime.tick_hz`, takes each
//!   seat's latest input per tick (its input frames are wire types, `protocol::TickInputFrame`), asks
//!   the AI for its input inside the tick ([`TickGame::ai_input`](super::TickGame::ai_input),
//!   which must answer in microseconds) and keeps a snapshot every
//!   `realtime.snapshot_every_ticks`.
//!
//! Neither runtime names a kind. Adding a game is its rules module in `src/game/`
//! implementing one of the interfaces, its page, and one line in [`KINDS`]: creation,
//! the waitlist, joining, sockets, snapshots, the lobby, fault injection and per-kind
//! supervision policies (`supervision.kinds.<name>`) all go through this table. What a
//! kind's entry holds ([`Kind`], [`TurnKind`], [`TickKind`]) is
//! re-exported here, so a user of the table names one module.

use serde_json::Value;

pub use super::kind::{Kind, Runtime};
pub use super::tick::TickKind;
use super::turn::Board;
pub use super::turn::TurnKind;

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

/// A board of a kind known by its name: these two constructors read the table, so they
/// live beside it.
impl Board {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::game::{Outcome, Seat};

    #[test]
    fn every_kind_is_registered_once_and_starts() {
        let names = names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a kind is registered twice: {names:?}");
        for kind in KINDS {
            assert!(kind.page.starts_with('/'), "{}'s page {:?}", kind.name, kind.page);
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
