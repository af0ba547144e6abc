//! The promise the bots check: every board a seat is shown continues the history of the
//! boards seen before, so a restored, moved or taken-over game comes back with the same
//! board (after a kill -9, less at most the moves in flight at the kill), and at the end
//! REST shows the moves the players saw. Every break is filed as a broken promise.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::game::Game;

/// Moves whose state arrived this close before a kill -9 may be lost (write-behind).
const IN_FLIGHT: Duration = Duration::from_millis(300);

/// A Connect Four board as the bots compare it: each column's discs, bottom up (0 red,
/// 1 yellow).
pub(super) type Board = Vec<Vec<u8>>;

/// The board of a state's `game`, when it has one.
fn board_of(game: &Value) -> Option<Board> {
    let columns = game["columns"].as_array()?;
    columns
        .iter()
        .map(|c| c.as_array().map(|c| c.iter().map(|s| u8::from(s.as_str() == Some("yellow"))).collect()))
        .collect()
}

/// `after` is `before` with `added` discs dropped on top (a plausible continuation).
fn extends(before: &Board, after: &Board, added: usize) -> bool {
    before.len() == after.len()
        && before.iter().zip(after).all(|(b, a)| a.starts_with(b))
        && after.iter().map(Vec::len).sum::<usize>() == before.iter().map(Vec::len).sum::<usize>() + added
}

impl Game<'_> {
    /// Files what a state says; checks it against the history.
    pub(super) fn accept(&mut self, seat: usize, game: &Value) {
        let Some(board) = board_of(game) else { return };
        let m = game["moves"].as_u64().unwrap_or(0) as usize;
        let len = self.len();
        let now = Instant::now();
        let previous = self.seats[seat].moves;
        self.seats[seat].moves = m;
        // Seats are read in turn: one may still hold frames older than what the other
        // already showed. Only a seat that goes back behind what it saw itself is a rollback.
        let stale = m < len && m >= previous;
        let rolled_back = m < previous;
        if !stale {
            self.status = game["status"].as_str().unwrap_or("").to_owned();
            self.turn = game["turn"].as_str().unwrap_or("").to_owned();
        }
        if let Some((before, seen, verified)) = self.restore.as_mut() {
            if m == *before && self.boards[m].0.as_ref() == Some(&board) {
                // Only a state after this seat's game_restarted is the restore (a game moved
                // off a lost thread re-sends its state before its fault reaches it). A seat
                // never told fails the wait for the restore (RESTORE_WITHIN).
                if seen[seat] {
                    verified[seat] = true;
                }
                if verified.iter().all(|v| *v) {
                    self.world.tally.borrow_mut().restored_identical += 1;
                    self.restore = None;
                }
            } else if game["status"] != "failed" {
                let before = *before;
                self.restore = None;
                self.world.broken(format!(
                    "game {}: restored with {m} moves {board:?}, but before the fault it had {before} moves {:?}",
                    self.id,
                    self.boards[before.min(len)].0
                ));
            }
        }
        if !stale && self.status == "failed" && !self.failed_seen {
            self.failed_seen = true;
            if self.handle.in_own_fault.get() || self.restore.is_some() {
                self.world.tally.borrow_mut().closed_per_policy += 1;
                self.restore = None;
            } else {
                self.world.broken(format!("game {}: closed as failed without a fault of its own", self.id));
            }
        }
        if !stale && self.status == "abandoned" {
            self.world.broken(format!("game {}: closed as abandoned while its players were connected", self.id));
        }
        if m <= len {
            match &self.boards[m].0 {
                Some(known) if *known == board => {
                    if rolled_back && m < len {
                        let lost_since = self.boards[m + 1].1;
                        // Only moves whose state came just before the kill may be lost.
                        let allowed =
                            self.world.killed_at.get().is_some_and(|k| lost_since + IN_FLIGHT >= k && lost_since <= k);
                        if allowed {
                            self.world.tally.borrow_mut().rolled_back_in_flight += (len - m) as u64;
                            let kill = self.world.killed_at.get().unwrap_or(now);
                            let before = kill.saturating_duration_since(lost_since).as_millis();
                            let after = lost_since.saturating_duration_since(kill).as_millis();
                            self.world.detail(
                                "lost in flight",
                                &format!(
                                    "game {}: {} move(s) seen {before} ms before / {after} ms after the kill were lost",
                                    self.id,
                                    len - m
                                ),
                            );
                        } else {
                            self.world.tally.borrow_mut().moves_lost += (len - m) as u64;
                            let kill = match self.world.killed_at.get() {
                                Some(k) if lost_since > k => {
                                    format!(", {} ms after the kill", (lost_since - k).as_millis())
                                }
                                _ => String::new(),
                            };
                            self.world.broken(format!(
                                "game {}: came back with {m} moves, {} fewer than its players had seen (the first lost one {} ms ago{kill})",
                                self.id,
                                len - m,
                                lost_since.elapsed().as_millis()
                            ));
                        }
                        self.boards.truncate(m + 1);
                        // The other seat has not seen it yet; its next state is a rollback of
                        // the same moves, not a second one.
                        for other in &mut self.seats {
                            other.moves = other.moves.min(m);
                        }
                    }
                }
                Some(known) => {
                    self.world.tally.borrow_mut().forks += 1;
                    self.world
                        .broken(format!("game {}: board after {m} moves is {board:?}, it was {known:?}", self.id));
                    self.boards[m] = (Some(board), now);
                    self.boards.truncate(m + 1);
                }
                None => {
                    self.boards[m] = (Some(board), now);
                    if rolled_back {
                        self.boards.truncate(m + 1);
                    }
                }
            }
        } else {
            let last = self.boards[len].0.clone();
            if last.as_ref().is_some_and(|b| !extends(b, &board, m - len)) {
                self.world.tally.borrow_mut().forks += 1;
                self.world
                    .broken(format!("game {}: {m} moves {board:?} do not continue {len} moves {last:?}", self.id));
            }
            while self.boards.len() < m {
                self.boards.push((None, now));
            }
            self.boards.push((Some(board), now));
        }
    }

    /// At the end: the game as REST shows it must have the moves its players saw.
    pub(super) async fn verify_rest(&mut self) {
        let len = self.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let base = self.world.urls[self.world.next_url(self.seats[0].url + self.world.urls.len() - 1)].clone();
            if let Ok((200, summary)) = self.world.api.get(&format!("{base}/api/v1/games/{}", self.id)).await {
                if summary["moves"].as_u64() == Some(len) {
                    return;
                }
                last = summary;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.world.broken(format!(
            "game {}: its players saw {len} moves, REST says {} (status {})",
            self.id, last["moves"], last["status"]
        ));
    }
}
