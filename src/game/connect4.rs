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

use super::{MoveError, Outcome, Rules, Seat};

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

/// Connect Four in the kinds table: turn-based, played on the lobby page.
pub const KIND_ENTRY: super::kinds::Kind = super::kinds::Kind {
    name: "connect4",
    title: "Connect Four",
    page: "/",
    asset: "index.html",
    runtime: super::kinds::Runtime::Turns(super::kinds::TurnKind {
        new_game: || super::kinds::Board::new(<Connect4 as Rules>::new_game()),
        decode: |value| {
            serde_json::from_value::<Connect4>(value).map(super::kinds::Board::new).map_err(|e| e.to_string())
        },
    }),
};

impl super::kinds::TurnGame for Connect4 {
    fn kind(&self) -> &'static str {
        <Connect4 as Rules>::KIND
    }

    fn turn(&self) -> Option<Seat> {
        <Connect4 as Rules>::turn(self)
    }

    fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn moves(&self) -> u32 {
        self.moves
    }

    fn play(&self, seat: Seat, mv: i64) -> Result<super::kinds::Board, MoveError> {
        <Connect4 as Rules>::play(self, seat, mv).map(super::kinds::Board::new)
    }

    fn resign(&self, seat: Seat) -> Result<super::kinds::Board, MoveError> {
        <Connect4 as Rules>::resign(self, seat).map(super::kinds::Board::new)
    }

    fn view(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut view = serde_json::Map::new();
        view.insert("columns".to_owned(), serde_json::to_value(self.columns()).unwrap_or_default());
        let line = self.winning_line().map(|line| line.iter().map(|&(c, r)| [c, r]).collect::<Vec<_>>());
        view.insert("winning_line".to_owned(), serde_json::to_value(line).unwrap_or_default());
        view
    }

    fn ai_move(&self, budget: super::ai::SearchBudget, seed: u64) -> Option<i64> {
        super::ai::choose_move_seeded(self, budget, seed).map(i64::from)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plays a string of column digits, alternating seats from the current
    /// turn.
    pub(crate) fn play_seq(seq: &str) -> Connect4 {
        let mut g = Connect4::new_game();
        for ch in seq.chars() {
            let col = i64::from(ch.to_digit(10).unwrap());
            let seat = g.turn().expect("game over too early");
            g = g.play(seat, col).unwrap();
        }
        g
    }

    /// Plays the legal ones of `cols` in order, skipping illegal columns and stopping at
    /// the end of the game: a random reachable position for property tests.
    pub(crate) fn play_lenient(cols: &[i64]) -> Connect4 {
        let mut g = Connect4::new_game();
        for c in cols {
            let Some(seat) = g.turn() else { break };
            if let Ok(next) = g.play(seat, *c) {
                g = next;
            }
        }
        g
    }

    fn won_by(g: &Connect4) -> Option<Seat> {
        match g.outcome() {
            Outcome::Won { winner, .. } => Some(winner),
            _ => None,
        }
    }

    /// Brute-force four-in-a-row check on the `columns()` grid.
    fn brute_winner(cols: &[Vec<Seat>]) -> Vec<Seat> {
        let at = |c: i32, r: i32| -> Option<Seat> {
            if !(0..7).contains(&c) || !(0..6).contains(&r) {
                return None;
            }
            cols[c as usize].get(r as usize).copied()
        };
        let mut winners = Vec::new();
        for seat in Seat::ALL {
            'found: for c in 0..7 {
                for r in 0..6 {
                    for (dc, dr) in [(1, 0), (0, 1), (1, 1), (1, -1)] {
                        if (0..4).all(|k| at(c + dc * k, r + dr * k) == Some(seat)) {
                            winners.push(seat);
                            break 'found;
                        }
                    }
                }
            }
        }
        winners
    }

    const DRAW_SEQ: &str = "333333222222444444011111155555500000666666";

    #[test]
    fn new_game_basics() {
        let g = Connect4::new_game();
        assert_eq!(Connect4::KIND, "connect4");
        assert_eq!(g.turn(), Some(Seat::Red));
        assert_eq!(g.outcome(), Outcome::InProgress);
        assert_eq!(g.moves(), 0);
        assert_eq!(g.columns(), vec![Vec::<Seat>::new(); 7]);
        assert_eq!(g.legal_columns(), vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(g.winning_line(), None);
        assert_eq!(Connect4::default(), g);
    }

    #[test]
    fn horizontal_win() {
        // Red 0,1,2,3 on the bottom row; yellow stacks on top.
        let g = play_seq("0011223");
        assert_eq!(g.outcome(), Outcome::Won { winner: Seat::Red, resigned: false });
        assert_eq!(g.turn(), None);
        assert_eq!(g.winning_line(), Some([(0, 0), (1, 0), (2, 0), (3, 0)]));
    }

    #[test]
    fn vertical_win() {
        // Yellow wins vertically in column 6.
        let g = play_seq("0606162");
        assert_eq!(g.outcome(), Outcome::InProgress);
        let g = g.play(Seat::Yellow, 6).unwrap();
        assert_eq!(won_by(&g), Some(Seat::Yellow));
        assert_eq!(g.winning_line(), Some([(6, 0), (6, 1), (6, 2), (6, 3)]));
    }

    #[test]
    fn diagonal_up_right_win() {
        // Red: (0,0) (1,1) (2,2) (3,3).
        let g = play_seq("01122323433");
        assert_eq!(won_by(&g), Some(Seat::Red));
        assert_eq!(g.winning_line(), Some([(0, 0), (1, 1), (2, 2), (3, 3)]));
    }

    #[test]
    fn diagonal_down_right_win() {
        // Mirror image: red (6,0) (5,1) (4,2) (3,3).
        let g = play_seq("65544343233");
        assert_eq!(won_by(&g), Some(Seat::Red));
        let line = g.winning_line().unwrap();
        let mut cells = line.to_vec();
        cells.sort_unstable();
        assert_eq!(cells, vec![(3, 3), (4, 2), (5, 1), (6, 0)]);
    }

    #[test]
    fn draw_on_full_board() {
        let mut g = Connect4::new_game();
        for (i, ch) in DRAW_SEQ.chars().enumerate() {
            assert_eq!(g.outcome(), Outcome::InProgress, "ended early at {i}");
            let seat = g.turn().unwrap();
            g = g.play(seat, i64::from(ch.to_digit(10).unwrap())).unwrap();
        }
        assert_eq!(g.outcome(), Outcome::Draw);
        assert_eq!(g.moves(), 42);
        assert_eq!(g.turn(), None);
        assert!(g.legal_columns().is_empty());
        assert_eq!(g.winning_line(), None);
        assert_eq!(g.play(Seat::Red, 0), Err(MoveError::GameOver));
        assert_eq!(g.resign(Seat::Red), Err(MoveError::GameOver));
        assert!(brute_winner(&g.columns()).is_empty());
    }

    #[test]
    fn move_errors_in_documented_order() {
        // Fill column 0 (6 discs), so it is red's turn again.
        let g = play_seq("000000");
        assert_eq!(g.turn(), Some(Seat::Red));
        // Wrong seat beats out-of-range and full.
        assert_eq!(g.play(Seat::Yellow, 99), Err(MoveError::NotYourTurn { turn: Seat::Red }));
        assert_eq!(g.play(Seat::Yellow, 0), Err(MoveError::NotYourTurn { turn: Seat::Red }));
        // Range before full.
        for bad in [-1, 7, 99, i64::MIN, i64::MAX, 256] {
            assert_eq!(g.play(Seat::Red, bad), Err(MoveError::ColumnOutOfRange { column: bad, columns: 7 }));
        }
        assert_eq!(g.play(Seat::Red, 0), Err(MoveError::ColumnFull { column: 0 }));
        // Game over beats everything.
        let over = play_seq("0011223");
        for (seat, col) in [(Seat::Red, 0), (Seat::Yellow, 0), (Seat::Yellow, 99)] {
            assert_eq!(over.play(seat, col), Err(MoveError::GameOver));
        }
        let e = g.play(Seat::Red, 9).unwrap_err();
        assert_eq!(e.to_string(), "column 9 is out of range 0..=6");
        assert_eq!(e.code(), "INVALID_MOVE");
    }

    #[test]
    fn resign() {
        let g = play_seq("33");
        let r = g.resign(Seat::Yellow).unwrap();
        assert_eq!(r.outcome(), Outcome::Won { winner: Seat::Red, resigned: true });
        assert_eq!(r.turn(), None);
        assert_eq!(r.resigned(), Some(Seat::Yellow));
        assert_eq!(r.winning_line(), None);
        assert_eq!(r.moves(), 2);
        assert_eq!(r.resign(Seat::Red), Err(MoveError::GameOver));
        assert_eq!(r.play(Seat::Red, 0), Err(MoveError::GameOver));
        // Resigning out of turn is allowed.
        let r = g.resign(Seat::Red).unwrap();
        assert_eq!(won_by(&r), Some(Seat::Yellow));
        // Original is untouched.
        assert_eq!(g.outcome(), Outcome::InProgress);
        // Resigning after a board win is refused.
        assert_eq!(play_seq("0011223").resign(Seat::Yellow), Err(MoveError::GameOver));
    }

    #[test]
    fn from_columns_round_trip() {
        for seq in ["", "3", "33", "0011223", "0606162", DRAW_SEQ, "01122323433"] {
            let g = play_seq(seq);
            assert_eq!(Connect4::from_columns(&g.columns(), None), Ok(g.clone()));
        }
        let g = play_seq("3452").resign(Seat::Red).unwrap();
        assert_eq!(Connect4::from_columns(&g.columns(), g.resigned()), Ok(g));
    }

    #[test]
    fn from_columns_rejects_invalid_boards() {
        use Seat::{Red as R, Yellow as Y};
        let empty = || vec![Vec::<Seat>::new(); 7];
        // 8 columns, 6 columns.
        assert!(Connect4::from_columns(&vec![vec![]; 8], None).is_err());
        assert!(Connect4::from_columns(&vec![vec![]; 6], None).is_err());
        // A 7-disc column.
        let mut c = empty();
        c[0] = vec![R, Y, R, Y, R, Y, R];
        c[1] = vec![Y, R, Y, R, Y, R, Y, R];
        assert!(Connect4::from_columns(&c, None).is_err());
        // Yellow having more discs than red.
        let mut c = empty();
        c[3] = vec![Y];
        assert!(Connect4::from_columns(&c, None).is_err());
        // Red two discs ahead.
        let mut c = empty();
        c[3] = vec![R];
        c[4] = vec![R];
        assert!(Connect4::from_columns(&c, None).is_err());
        // Two winners: red row 0 cols 0..4, yellow row 0 cols 4..7 + ... use
        // vertical fours in separate columns, equal counts.
        let mut c = empty();
        c[0] = vec![R, R, R, R];
        c[1] = vec![Y, Y, Y, Y];
        assert!(Connect4::from_columns(&c, None).unwrap_err().contains("both"));
        // Red won, then yellow kept playing (counts equal => yellow moved last).
        let mut c = empty();
        c[0] = vec![R, R, R, R];
        c[1] = vec![Y, Y, Y];
        c[2] = vec![Y];
        assert!(Connect4::from_columns(&c, None).is_err());
        // Red won, and red played again afterwards (extra disc on top of the
        // win in a way that the top disc is not part of the line).
        let mut c = empty();
        c[0] = vec![R, R, R, R, Y, R];
        c[1] = vec![Y, Y];
        c[2] = vec![Y, R];
        c[3] = vec![Y];
        assert!(Connect4::from_columns(&c, None).is_err());
        // A resignation on a won board.
        let won = play_seq("0011223");
        assert!(Connect4::from_columns(&won.columns(), Some(Seat::Yellow)).is_err());
        // A resignation on a drawn board.
        let drawn = play_seq(DRAW_SEQ);
        assert!(Connect4::from_columns(&drawn.columns(), Some(Seat::Red)).is_err());
        // Discs that cannot have been dropped in turn: yellow under red in the only column
        // (yellow would have moved first), and a yellow column with red's one disc on top.
        let mut c = empty();
        c[0] = vec![Y, R];
        assert!(Connect4::from_columns(&c, None).unwrap_err().contains("in turn"));
        let mut c = empty();
        c[0] = vec![Y, Y, R];
        c[1] = vec![R];
        assert!(Connect4::from_columns(&c, None).unwrap_err().contains("in turn"));
        // Sanity: a valid win still accepted.
        let mut c = empty();
        c[0] = vec![R, R, R, R];
        c[1] = vec![Y, Y, Y];
        assert!(Connect4::from_columns(&c, None).is_ok());
    }

    #[test]
    fn serde_round_trip() {
        let g = play_seq("3344");
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(json, r#"{"columns":[[],[],[],["red","yellow"],["red","yellow"],[],[]],"resigned":null}"#);
        let back: Connect4 = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);

        let r = g.resign(Seat::Yellow).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.ends_with(r#""resigned":"yellow"}"#));
        assert_eq!(serde_json::from_str::<Connect4>(&json).unwrap(), r);

        for seq in ["0011223", DRAW_SEQ] {
            let g = play_seq(seq);
            let v = serde_json::to_value(&g).unwrap();
            assert_eq!(serde_json::from_value::<Connect4>(v).unwrap(), g);
        }

        // Deserialization validates.
        let bad = r#"{"columns":[[],[],[],["yellow"],[],[],[]],"resigned":null}"#;
        assert!(serde_json::from_str::<Connect4>(bad).is_err());
        let bad = r#"{"columns":[[],[]],"resigned":null}"#;
        assert!(serde_json::from_str::<Connect4>(bad).is_err());
        let bad = r#"{"columns":[[],[],[],["blue"],[],[],[]],"resigned":null}"#;
        assert!(serde_json::from_str::<Connect4>(bad).is_err());
    }

    /// Applies raw column choices, always as the seat to move, skipping
    /// moves refused as full; stops at game end. Checks invariants en route.
    fn drive(cols: &[i64]) -> Connect4 {
        let mut g = Connect4::new_game();
        for &c in cols {
            let Some(seat) = g.turn() else { break };
            let before = g.clone();
            match g.play(seat, c) {
                Ok(next) => {
                    assert_eq!(g, before, "play mutated its input");
                    assert_eq!(next.moves(), g.moves() + 1);
                    g = next;
                }
                Err(e) => {
                    assert_eq!(e, MoveError::ColumnFull { column: c as u8 });
                    assert_eq!(g, before);
                }
            }
        }
        g
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_games_keep_board_consistent(cols in proptest::collection::vec(0i64..7, 0..80)) {
            let g = drive(&cols);
            let columns = g.columns();
            prop_assert_eq!(columns.len(), 7);
            let reds: u32 = columns.iter().flatten().filter(|s| **s == Seat::Red).count() as u32;
            let yellows: u32 = columns.iter().flatten().filter(|s| **s == Seat::Yellow).count() as u32;
            prop_assert!(columns.iter().all(|c| c.len() <= 6));
            prop_assert!(reds == yellows || reds == yellows + 1);
            prop_assert_eq!(g.moves(), reds + yellows);
            if g.outcome() == Outcome::InProgress {
                let expected = if g.moves() & 1 == 0 { Seat::Red } else { Seat::Yellow };
                prop_assert_eq!(g.turn(), Some(expected));
                let legal: Vec<u8> = (0..7u8).filter(|&c| columns[usize::from(c)].len() < 6).collect();
                prop_assert_eq!(g.legal_columns(), legal);
            }
        }

        #[test]
        fn illegal_moves_leave_state_unchanged(
            cols in proptest::collection::vec(0i64..7, 0..60),
            bad in prop_oneof![i64::MIN..0i64, 7i64..i64::MAX],
        ) {
            let g = drive(&cols);
            let before = g.clone();
            let seat = g.turn().unwrap_or(Seat::Red);
            prop_assert!(g.play(seat, bad).is_err());
            prop_assert!(g.play(seat.other(), 3).is_err());
            prop_assert_eq!(&g, &before);
            for c in 0..7i64 {
                if g.turn().is_some() && g.columns()[c as usize].len() == 6 {
                    prop_assert_eq!(g.play(seat, c), Err(MoveError::ColumnFull { column: c as u8 }));
                }
            }
            prop_assert_eq!(&g, &before);
        }

        #[test]
        fn win_check_matches_brute_force(cols in proptest::collection::vec(0i64..7, 0..80)) {
            // Check every prefix position along the game.
            let mut g = Connect4::new_game();
            for &c in &cols {
                let winners = brute_winner(&g.columns());
                match g.outcome() {
                    Outcome::Won { winner, resigned: false } => {
                        prop_assert_eq!(winners, vec![winner]);
                        let line = g.winning_line().unwrap();
                        let cs = g.columns();
                        for (col, row) in line {
                            prop_assert_eq!(cs[usize::from(col)].get(usize::from(row)), Some(&winner));
                        }
                    }
                    Outcome::Draw => prop_assert!(winners.is_empty()),
                    Outcome::InProgress => prop_assert!(winners.is_empty()),
                    Outcome::Won { resigned: true, .. } => unreachable!(),
                }
                let Some(seat) = g.turn() else { break };
                if let Ok(next) = g.play(seat, c) {
                    g = next;
                }
            }
        }

        #[test]
        fn no_move_after_win(cols in proptest::collection::vec(0i64..7, 0..80), probe in -2i64..9) {
            let g = drive(&cols);
            if g.outcome() != Outcome::InProgress {
                prop_assert_eq!(g.turn(), None);
                for seat in Seat::ALL {
                    prop_assert_eq!(g.play(seat, probe), Err(MoveError::GameOver));
                    prop_assert_eq!(g.resign(seat), Err(MoveError::GameOver));
                }
                prop_assert!(g.legal_columns().is_empty());
            }
        }

        #[test]
        fn from_columns_round_trips(cols in proptest::collection::vec(0i64..7, 0..80), resign in any::<Option<bool>>()) {
            let mut g = drive(&cols);
            if let (Some(r), Outcome::InProgress) = (resign, g.outcome()) {
                g = g.resign(if r { Seat::Red } else { Seat::Yellow }).unwrap();
            }
            prop_assert_eq!(Connect4::from_columns(&g.columns(), g.resigned()), Ok(g.clone()));
            let json = serde_json::to_string(&g).unwrap();
            prop_assert_eq!(serde_json::from_str::<Connect4>(&json).unwrap(), g);
        }
    }
}
