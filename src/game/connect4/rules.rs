//! Connect Four rules.
//!
//! This module owns the [`Connect4`] state (7 columns × 6 rows, red moves
//! first), its move validation, win/draw detection, the snapshot format
//! (`{"columns": [[...], ...], "resigned": null | "red" | "yellow"}`) and the
//! validation of restored snapshots ([`Connect4::from_columns`]).
//!
//! Internally the board is a pair of bitboards so that [`super::ai`] can
//! search it cheaply. Bit `col * 7 + row` is the cell at `(col, row)`, row 0
//! being the bottom; row 6 of each column is an always-empty sentinel that
//! stops lines from wrapping between columns.

use serde::{Deserialize, Serialize};

use crate::game::{MoveError, Outcome, Rules, Seat};

/// Number of columns on the board.
pub const COLUMNS: u8 = 7;
/// Number of rows on the board.
pub const ROWS: u8 = 6;

/// Bits per column in the bitboard (rows plus one sentinel).
pub(crate) const HEIGHT: u8 = ROWS + 1;
/// Total number of cells.
pub(crate) const CELLS: u32 = COLUMNS as u32 * ROWS as u32;

/// The bit of the bottom cell of `col`.
pub(crate) const fn bottom_mask(col: u8) -> u64 {
    1u64 << (col * HEIGHT)
}

/// The bit of the top (playable) cell of `col`.
pub(crate) const fn top_mask(col: u8) -> u64 {
    1u64 << (col * HEIGHT + ROWS - 1)
}

/// All playable cells of `col`.
pub(crate) const fn column_mask(col: u8) -> u64 {
    ((1u64 << ROWS) - 1) << (col * HEIGHT)
}

/// Whether `col` has room in a position whose occupied cells are `mask`.
pub(crate) const fn can_play(mask: u64, col: u8) -> bool {
    mask & top_mask(col) == 0
}

/// The single bit a disc dropped into `col` would occupy (`col` must not be
/// full).
pub(crate) const fn drop_bit(mask: u64, col: u8) -> u64 {
    (mask + bottom_mask(col)) & column_mask(col)
}

/// Whether the position `red`/`yellow` can arise in a real game: its discs can be taken
/// back one at a time, each a top disc of the side that moved last, down to the empty
/// board, and no position before this one has four in a row (a game ends at its first).
/// A depth-first search over the occupied masks (the colours of the discs left are fixed by
/// the board), remembering the masks that lead nowhere: at most 7^7 column-height states,
/// and a real game's board is answered on its first path.
fn can_arise(red: u64, yellow: u64, dead_ends: &mut std::collections::HashSet<u64>) -> bool {
    let mask = red | yellow;
    if mask == 0 {
        return true;
    }
    if dead_ends.contains(&mask) {
        return false;
    }
    let last = if red.count_ones() > yellow.count_ones() { red } else { yellow };
    for col in 0..COLUMNS {
        let col_bits = mask & column_mask(col);
        if col_bits == 0 {
            continue;
        }
        let top = 1u64 << (63 - col_bits.leading_zeros());
        if last & top == 0 {
            continue;
        }
        let (r, y) = (red & !top, yellow & !top);
        if !has_four(r) && !has_four(y) && can_arise(r, y, dead_ends) {
            return true;
        }
    }
    dead_ends.insert(mask);
    false
}

/// Line directions as bit shifts: vertical, horizontal, diagonal `/`,
/// diagonal `\`.
const DIRECTIONS: [u8; 4] = [1, HEIGHT, HEIGHT + 1, HEIGHT - 1];

/// Whether the discs in `b` contain four in a row in any direction.
pub(crate) const fn has_four(b: u64) -> bool {
    let mut i = 0;
    while i < DIRECTIONS.len() {
        let s = DIRECTIONS[i];
        let m = b & (b >> s);
        if m & (m >> (2 * s)) != 0 {
            return true;
        }
        i += 1;
    }
    false
}

/// Finds one four-in-a-row in `b`, as (column, row) cells in line order.
fn find_four(b: u64) -> Option<[(u8, u8); 4]> {
    for s in DIRECTIONS {
        let m = b & (b >> s);
        let starts = m & (m >> (2 * s));
        if starts != 0 {
            let first = starts.trailing_zeros();
            let cell = |k: u32| {
                let bit = first + k * u32::from(s);
                // bit < 49, so both fit in u8.
                ((bit / u32::from(HEIGHT)) as u8, (bit % u32::from(HEIGHT)) as u8)
            };
            return Some([cell(0), cell(1), cell(2), cell(3)]);
        }
    }
    None
}

/// A Connect Four position: the discs on the board, whose turn it is and
/// whether (and how) the game has ended.
///
/// Serializes as `{"columns": [[seat, ...]; 7], "resigned": null | seat}`;
/// deserializing validates through [`Connect4::from_columns`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Connect4Snapshot", into = "Connect4Snapshot")]
pub struct Connect4 {
    /// Red discs.
    red: u64,
    /// Yellow discs.
    yellow: u64,
    /// Discs on the board.
    moves: u32,
    /// Cached outcome, always consistent with the boards and resignation.
    outcome: Outcome,
}

/// The readable snapshot form of [`Connect4`].
#[derive(Serialize, Deserialize)]
struct Connect4Snapshot {
    columns: Vec<Vec<Seat>>,
    resigned: Option<Seat>,
}

impl TryFrom<Connect4Snapshot> for Connect4 {
    type Error = String;

    fn try_from(s: Connect4Snapshot) -> Result<Self, Self::Error> {
        Connect4::from_columns(&s.columns, s.resigned)
    }
}

impl From<Connect4> for Connect4Snapshot {
    fn from(g: Connect4) -> Self {
        Connect4Snapshot { columns: g.columns(), resigned: g.resigned() }
    }
}

impl Default for Connect4 {
    fn default() -> Self {
        Connect4::new_game()
    }
}

impl Connect4 {
    /// The discs of each column, bottom to top: always [`COLUMNS`] vectors of
    /// at most [`ROWS`] seats. This is the wire format of the board.
    #[must_use]
    pub fn columns(&self) -> Vec<Vec<Seat>> {
        (0..COLUMNS)
            .map(|col| {
                (0..ROWS)
                    .map_while(|row| {
                        let bit = 1u64 << (col * HEIGHT + row);
                        if self.red & bit != 0 {
                            Some(Seat::Red)
                        } else if self.yellow & bit != 0 {
                            Some(Seat::Yellow)
                        } else {
                            None
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Rebuilds and validates a position from its columns (bottom to top)
    /// and the seat that resigned, if any. Used to restore snapshots.
    ///
    /// # Errors
    /// A human-readable reason if the position cannot arise in a real game:
    /// wrong column count, an over-full column, disc counts inconsistent with
    /// red-first alternation, both seats having four in a row, play having
    /// continued after a win, or a resignation recorded on a finished board.
    pub fn from_columns(columns: &[Vec<Seat>], resigned: Option<Seat>) -> Result<Connect4, String> {
        if columns.len() != usize::from(COLUMNS) {
            return Err(format!("expected {COLUMNS} columns, got {}", columns.len()));
        }
        let (mut red, mut yellow) = (0u64, 0u64);
        let (mut reds, mut yellows) = (0u32, 0u32);
        for (col, discs) in (0u8..).zip(columns) {
            if discs.len() > usize::from(ROWS) {
                return Err(format!("column {col} has {} discs, at most {ROWS} fit", discs.len()));
            }
            for (row, seat) in (0u8..).zip(discs) {
                let bit = 1u64 << (col * HEIGHT + row);
                match seat {
                    Seat::Red => {
                        red |= bit;
                        reds += 1;
                    }
                    Seat::Yellow => {
                        yellow |= bit;
                        yellows += 1;
                    }
                }
            }
        }
        if reds != yellows && reds != yellows + 1 {
            return Err(format!("red has {reds} discs and yellow {yellows}; red moves first and turns alternate"));
        }
        let moves = reds + yellows;
        let red_wins = has_four(red);
        let yellow_wins = has_four(yellow);
        let winner = match (red_wins, yellow_wins) {
            (true, true) => return Err("both red and yellow have four in a row".to_owned()),
            (true, false) => Some(Seat::Red),
            (false, true) => Some(Seat::Yellow),
            (false, false) => None,
        };
        let mask = red | yellow;
        let outcome = if let Some(w) = winner {
            let (mine, last_mover) = match w {
                Seat::Red => (red, reds > yellows),
                Seat::Yellow => (yellow, reds == yellows),
            };
            if !last_mover {
                return Err(format!("{w} has four in a row but play continued after the win"));
            }
            // The winning disc must be the last one played: some top disc of
            // the winner whose removal leaves no four in a row at all.
            let ended_by_last_move = (0..COLUMNS).any(|col| {
                let col_bits = mask & column_mask(col);
                if col_bits == 0 {
                    return false;
                }
                let top = 1u64 << (63 - col_bits.leading_zeros());
                mine & top != 0 && !has_four(mine & !top)
            });
            if !ended_by_last_move {
                return Err(format!("{w} has four in a row but play continued after the win"));
            }
            if resigned.is_some() {
                return Err("a resignation is recorded on a board that is already won".to_owned());
            }
            Outcome::Won { winner: w, resigned: false }
        } else if moves == CELLS {
            if resigned.is_some() {
                return Err("a resignation is recorded on a board that is already drawn".to_owned());
            }
            Outcome::Draw
        } else if let Some(r) = resigned {
            Outcome::Won { winner: r.other(), resigned: true }
        } else {
            Outcome::InProgress
        };
        if !can_arise(red, yellow, &mut std::collections::HashSet::new()) {
            return Err("the discs cannot have been dropped in turn (red first, turns alternating, \
                        nobody four in a row before the last disc)"
                .to_owned());
        }
        Ok(Connect4 { red, yellow, moves, outcome })
    }

    /// The seat that resigned, if the game ended by resignation.
    #[must_use]
    pub fn resigned(&self) -> Option<Seat> {
        match self.outcome {
            Outcome::Won { winner, resigned: true } => Some(winner.other()),
            _ => None,
        }
    }

    /// The columns the side to move may play, in ascending order; empty once
    /// the game is over.
    #[must_use]
    pub fn legal_columns(&self) -> Vec<u8> {
        if self.outcome != Outcome::InProgress {
            return Vec::new();
        }
        let mask = self.mask();
        (0..COLUMNS).filter(|&c| can_play(mask, c)).collect()
    }

    /// The cells `(column, row)` of a four-in-a-row on the board, if any
    /// (row 0 is the bottom). `None` for draws, resignations and games in
    /// progress.
    #[must_use]
    pub fn winning_line(&self) -> Option<[(u8, u8); 4]> {
        match self.outcome {
            Outcome::Won { winner, resigned: false } => find_four(self.discs(winner)),
            _ => None,
        }
    }

    /// The bitboard of `seat`'s discs.
    pub(crate) fn discs(&self, seat: Seat) -> u64 {
        match seat {
            Seat::Red => self.red,
            Seat::Yellow => self.yellow,
        }
    }

    /// The bitboard of all occupied cells.
    pub(crate) fn mask(&self) -> u64 {
        self.red | self.yellow
    }

    /// The seat whose turn it would be by disc count, ignoring game end.
    fn seat_by_count(&self) -> Seat {
        if self.moves & 1 == 0 {
            Seat::Red
        } else {
            Seat::Yellow
        }
    }
}

impl Rules for Connect4 {
    type Move = i64;

    const KIND: &'static str = "connect4";

    fn new_game() -> Self {
        Connect4 { red: 0, yellow: 0, moves: 0, outcome: Outcome::InProgress }
    }

    fn turn(&self) -> Option<Seat> {
        match self.outcome {
            Outcome::InProgress => Some(self.seat_by_count()),
            _ => None,
        }
    }

    fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn moves(&self) -> u32 {
        self.moves
    }

    fn play(&self, seat: Seat, mv: i64) -> Result<Self, MoveError> {
        let turn = self.turn().ok_or(MoveError::GameOver)?;
        if seat != turn {
            return Err(MoveError::NotYourTurn { turn });
        }
        let col = match u8::try_from(mv) {
            Ok(c) if c < COLUMNS => c,
            _ => return Err(MoveError::ColumnOutOfRange { column: mv, columns: COLUMNS }),
        };
        let mask = self.mask();
        if !can_play(mask, col) {
            return Err(MoveError::ColumnFull { column: col });
        }
        let bit = drop_bit(mask, col);
        let mut next = self.clone();
        let mine = match seat {
            Seat::Red => &mut next.red,
            Seat::Yellow => &mut next.yellow,
        };
        *mine |= bit;
        let won = has_four(*mine);
        next.moves += 1;
        next.outcome = if won {
            Outcome::Won { winner: seat, resigned: false }
        } else if next.moves == CELLS {
            Outcome::Draw
        } else {
            Outcome::InProgress
        };
        Ok(next)
    }

    fn resign(&self, seat: Seat) -> Result<Self, MoveError> {
        if self.outcome != Outcome::InProgress {
            return Err(MoveError::GameOver);
        }
        let mut next = self.clone();
        next.outcome = Outcome::Won { winner: seat.other(), resigned: true };
        Ok(next)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;
