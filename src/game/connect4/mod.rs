//! Connect Four as a kind of this server: the rules ([`Connect4`], in `rules.rs`) and the
//! computer player ([`ai`]) joined into a turn-based game ([`TurnGame`]) with its entry in
//! the kinds table ([`KIND_ENTRY`]). The rules know nothing of the AI; the AI searches the
//! rules' bitboards; only this module names both.

pub mod ai;
mod rules;

pub use rules::{Connect4, COLUMNS, ROWS};

use crate::game::kind::{Kind, Runtime};
use crate::game::turn::{Board, SearchBudget, TurnGame, TurnKind};
use crate::game::{MoveError, Outcome, Rules, Seat};

/// Connect Four in the kinds table: turn-based, played on the lobby page.
pub const KIND_ENTRY: Kind = Kind {
    name: "connect4",
    title: "Connect Four",
    page: "/",
    asset: "index.html",
    runtime: Runtime::Turns(TurnKind {
        new_game: || Board::new(<Connect4 as Rules>::new_game()),
        decode: |value| serde_json::from_value::<Connect4>(value).map(Board::new).map_err(|e| e.to_string()),
    }),
};

impl TurnGame for Connect4 {
    fn kind(&self) -> &'static str {
        <Connect4 as Rules>::KIND
    }

    fn turn(&self) -> Option<Seat> {
        <Connect4 as Rules>::turn(self)
    }

    fn outcome(&self) -> Outcome {
        <Connect4 as Rules>::outcome(self)
    }

    fn moves(&self) -> u32 {
        <Connect4 as Rules>::moves(self)
    }

    fn play(&self, seat: Seat, mv: i64) -> Result<Board, MoveError> {
        <Connect4 as Rules>::play(self, seat, mv).map(Board::new)
    }

    fn resign(&self, seat: Seat) -> Result<Board, MoveError> {
        <Connect4 as Rules>::resign(self, seat).map(Board::new)
    }

    fn view(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut view = serde_json::Map::new();
        view.insert("columns".to_owned(), serde_json::to_value(self.columns()).unwrap_or_default());
        let line = self.winning_line().map(|line| line.iter().map(|&(c, r)| [c, r]).collect::<Vec<_>>());
        view.insert("winning_line".to_owned(), serde_json::to_value(line).unwrap_or_default());
        view
    }

    fn ai_move(&self, budget: SearchBudget, seed: u64) -> Option<i64> {
        ai::choose_move_seeded(self, budget, seed).map(i64::from)
    }

    /// Top row first: `R`, `Y`, `.`.
    fn describe(&self) -> String {
        let columns = self.columns();
        let rows = (0..ROWS)
            .rev()
            .map(|row| {
                columns
                    .iter()
                    .map(|c| match c.get(usize::from(row)) {
                        Some(Seat::Red) => 'R',
                        Some(Seat::Yellow) => 'Y',
                        None => '.',
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n");
        format!("Board (top row first, R = red, Y = yellow):\n{rows}")
    }

    fn describe_move(&self, mv: i64) -> String {
        format!("dropped your yellow disc in column {}", mv + 1)
    }

    fn encode(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}
