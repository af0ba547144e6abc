//! TEMPORARY stub, replaced by the real rules.
#![allow(missing_docs)]
use super::{MoveError, Outcome, Rules, Seat};
use serde::{Deserialize, Serialize};
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect4 { cols: Vec<Vec<Seat>>, resigned: Option<Seat> }
impl Connect4 {
    pub fn columns(&self) -> Vec<Vec<Seat>> { self.cols.clone() }
    fn winner(&self) -> Option<Seat> {
        let at = |c: i32, r: i32| -> Option<Seat> { if !(0..7).contains(&c) || r < 0 { return None; } self.cols[c as usize].get(r as usize).copied() };
        for c in 0..7 { for r in 0..6 { if let Some(s) = at(c, r) { for (dc, dr) in [(1,0),(0,1),(1,1),(1,-1)] { if (1..4).all(|k| at(c+dc*k, r+dr*k) == Some(s)) { return Some(s); } } } } }
        None
    }
}
impl Rules for Connect4 {
    type Move = i64;
    const KIND: &'static str = "connect4";
    fn new_game() -> Self { Connect4 { cols: vec![Vec::new(); 7], resigned: None } }
    fn turn(&self) -> Option<Seat> { if self.outcome() != Outcome::InProgress { None } else if self.moves() % 2 == 0 { Some(Seat::Red) } else { Some(Seat::Yellow) } }
    fn outcome(&self) -> Outcome {
        if let Some(s) = self.resigned { return Outcome::Won { winner: s.other(), resigned: true }; }
        if let Some(w) = self.winner() { return Outcome::Won { winner: w, resigned: false }; }
        if self.moves() == 42 { Outcome::Draw } else { Outcome::InProgress }
    }
    fn moves(&self) -> u32 { self.cols.iter().map(Vec::len).sum::<usize>() as u32 }
    fn play(&self, seat: Seat, mv: i64) -> Result<Self, MoveError> {
        let Some(turn) = self.turn() else { return Err(MoveError::GameOver) };
        if turn != seat { return Err(MoveError::NotYourTurn { turn }); }
        if !(0..7).contains(&mv) { return Err(MoveError::ColumnOutOfRange { column: mv, columns: 7 }); }
        if self.cols[mv as usize].len() >= 6 { return Err(MoveError::ColumnFull { column: mv as u8 }); }
        let mut next = self.clone(); next.cols[mv as usize].push(seat); Ok(next)
    }
    fn resign(&self, seat: Seat) -> Result<Self, MoveError> { if self.turn().is_none() { return Err(MoveError::GameOver); } let mut n = self.clone(); n.resigned = Some(seat); Ok(n) }
}
