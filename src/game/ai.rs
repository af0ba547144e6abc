//! TEMPORARY stub, replaced by the real AI.
#![allow(missing_docs)]
use super::{Connect4, Rules};
#[derive(Clone, Copy, Debug)]
pub struct SearchBudget { pub max_depth: u32, pub max_nodes: u64 }
pub fn choose_move_seeded(state: &Connect4, _budget: SearchBudget, _seed: u64) -> Option<u8> {
    let turn = state.turn()?;
    (0..7u8).find(|c| state.play(turn, i64::from(*c)).is_ok())
}
