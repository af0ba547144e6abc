//! Computer opponent for Connect Four.
//!
//! This module owns move selection for a bot seat: [`choose_move`] and
//! [`choose_move_seeded`] under a [`SearchBudget`]. It first plays an
//! immediate win, else blocks the opponent's immediate win, else runs an
//! iteratively deepened negamax with alpha-beta pruning over the
//! [`Connect4`] bitboards (centre-out move ordering, heuristic evaluation of
//! open twos/threes and centre control), capped by a node budget. It is pure
//! and deterministic: the same position, budget and seed give the same move.

use super::rules::{bottom_mask, can_play, column_mask, drop_bit, has_four, Connect4, CELLS, COLUMNS, HEIGHT, ROWS};
use crate::game::turn::SearchBudget;
use crate::game::Rules;

/// Chooses a column for the side to move, or `None` if the game is over.
/// Equivalent to [`choose_move_seeded`] with seed 0.
#[must_use]
pub fn choose_move(state: &Connect4, budget: SearchBudget) -> Option<u8> {
    choose_move_seeded(state, budget, 0)
}

/// Chooses a column for the side to move, or `None` if the game is over.
///
/// Always plays an immediate win if there is one, otherwise blocks the
/// opponent's immediate win if there is one; otherwise searches within
/// `budget`. Ties among equally scored best moves are broken
/// pseudo-randomly from `seed`, deterministically.
#[must_use]
pub fn choose_move_seeded(state: &Connect4, budget: SearchBudget, seed: u64) -> Option<u8> {
    let me = state.turn()?;
    let cur = state.discs(me);
    let mask = state.mask();
    let moves = state.moves();
    let legal: Vec<u8> = ORDER.into_iter().filter(|&c| can_play(mask, c)).collect();
    let first = *legal.first()?;

    // 1. Take an immediate win.
    if let Some(&c) = legal.iter().find(|&&c| has_four(cur | drop_bit(mask, c))) {
        return Some(c);
    }
    // 2. Block the opponent's immediate win.
    let opp = mask ^ cur;
    if let Some(&c) = legal.iter().find(|&&c| has_four(opp | drop_bit(mask, c))) {
        return Some(c);
    }
    // 3. Search. Fallback if no iteration completes: the most central move
    //    that does not hand the opponent a win directly above it.
    let safe = legal
        .iter()
        .copied()
        .find(|&c| {
            let m = mask | drop_bit(mask, c);
            !can_play(m, c) || !has_four(opp | drop_bit(m, c))
        })
        .unwrap_or(first);
    let mut best = vec![safe];
    let mut searcher = Searcher { nodes: 0, max_nodes: budget.max_nodes, aborted: false };
    let max_depth = budget.max_depth.min(CELLS - moves);
    for depth in 1..=max_depth {
        match searcher.root(cur, mask, moves, depth, &legal) {
            Some((ties, score)) => {
                best = ties;
                if score.abs() >= WIN - CELLS as i32 - 1 {
                    // Forced result found; deeper search cannot change it.
                    break;
                }
            }
            None => break,
        }
    }
    Some(pick(&best, seed))
}

/// Move ordering: centre first, then outwards.
const ORDER: [u8; COLUMNS as usize] = [3, 2, 4, 1, 5, 0, 6];

/// Score of a win on the very first move; later wins score less.
const WIN: i32 = 1_000_000;
/// Larger than any score.
const INF: i32 = 2 * WIN;

/// Picks one of `ties` pseudo-randomly from `seed` (splitmix64 + xorshift).
fn pick(ties: &[u8], seed: u64) -> u8 {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    x |= 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let len = ties.len().max(1) as u64;
    ties.get((x % len) as usize).copied().unwrap_or(ORDER[0])
}

/// The bottom cell of every column.
const BOTTOM: u64 = {
    let mut b = 0;
    let mut c = 0;
    while c < COLUMNS {
        b |= bottom_mask(c);
        c += 1;
    }
    b
};

/// Every playable cell.
const BOARD: u64 = BOTTOM * ((1 << ROWS) - 1);

/// Empty cells that would complete four in a row for `p` (not necessarily
/// playable yet), given occupied cells `mask`.
const fn winning_cells(p: u64, mask: u64) -> u64 {
    // Vertical: only upwards.
    let mut r = (p << 1) & (p << 2) & (p << 3);
    let shifts = [HEIGHT as u32, HEIGHT as u32 + 1, HEIGHT as u32 - 1];
    let mut i = 0;
    while i < shifts.len() {
        let s = shifts[i];
        let t = (p << s) & (p << (2 * s));
        r |= t & (p << (3 * s));
        r |= t & (p >> s);
        let t = (p >> s) & (p >> (2 * s));
        r |= t & (p << s);
        r |= t & (p >> (3 * s));
        i += 1;
    }
    r & (BOARD ^ mask)
}

/// Line directions as bit shifts with, for each, the cells where a window
/// of four in that direction may start: vertical, horizontal, `/`, `\`.
const DIRS: [(u32, u64); 4] = {
    let dirs: [(i32, i32); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];
    let mut out = [(0u32, 0u64); 4];
    let mut d = 0;
    while d < dirs.len() {
        let (dc, dr) = dirs[d];
        let mut starts = 0u64;
        let mut c = 0;
        while c < COLUMNS as i32 {
            let mut r = 0;
            while r < ROWS as i32 {
                let (ec, er) = (c + 3 * dc, r + 3 * dr);
                if ec >= 0 && ec < COLUMNS as i32 && er >= 0 && er < ROWS as i32 {
                    starts |= 1u64 << (c * HEIGHT as i32 + r);
                }
                r += 1;
            }
            c += 1;
        }
        out[d] = ((dc * HEIGHT as i32 + dr) as u32, starts);
        d += 1;
    }
    out
};

/// Weights of a window holding 1, 2 or 3 discs of one seat and none of the
/// other (an open three is one move from four).
const W1: i32 = 1;
const W2: i32 = 4;
const W3: i32 = 16;

/// Heuristic value of a quiet position for the side owning `me`: open
/// ones/twos/threes (windows of four holding only one seat's discs) plus
/// centre control. Bit-sliced: every window of a direction is counted at
/// once, keyed by its start cell.
fn evaluate(me: u64, them: u64) -> i32 {
    let mut score = 0;
    for (s, starts) in DIRS {
        let (m1, m2, m3, m_any) = window_counts(me, s);
        let (t1, t2, t3, t_any) = window_counts(them, s);
        let mine = starts & !t_any;
        let theirs = starts & !m_any;
        score += W1 * (m1 & mine).count_ones() as i32 - W1 * (t1 & theirs).count_ones() as i32;
        score += W2 * (m2 & mine).count_ones() as i32 - W2 * (t2 & theirs).count_ones() as i32;
        score += W3 * (m3 & mine).count_ones() as i32 - W3 * (t3 & theirs).count_ones() as i32;
    }
    let centre = column_mask(3);
    let near = column_mask(2) | column_mask(4);
    score += 3 * ((me & centre).count_ones() as i32 - (them & centre).count_ones() as i32);
    score += (me & near).count_ones() as i32 - (them & near).count_ones() as i32;
    score
}

/// For windows of four along shift `s`, keyed by start cell: the windows
/// holding exactly one, two and three of `p`'s discs, and those holding any.
fn window_counts(p: u64, s: u32) -> (u64, u64, u64, u64) {
    let (a0, a1, a2, a3) = (p, p >> s, p >> (2 * s), p >> (3 * s));
    // Bit-sliced 4-input adder: sum = b2 b1 b0.
    let (x, c1) = (a0 ^ a1, a0 & a1);
    let (y, c2) = (a2 ^ a3, a2 & a3);
    let b0 = x ^ y;
    let carry = x & y;
    let b1 = c1 ^ c2 ^ carry;
    let b2 = (c1 & c2) | ((c1 ^ c2) & carry);
    (b0 & !b1 & !b2, !b0 & b1 & !b2, b0 & b1 & !b2, a0 | a1 | a2 | a3)
}

/// Negamax state: node accounting against the budget.
struct Searcher {
    nodes: u64,
    max_nodes: u64,
    aborted: bool,
}

impl Searcher {
    /// Scores every root move at `depth`; returns the equally best moves and
    /// their score, or `None` if the node cap was hit.
    fn root(&mut self, cur: u64, mask: u64, moves: u32, depth: u32, legal: &[u8]) -> Option<(Vec<u8>, i32)> {
        let mut best = -INF;
        let mut ties = Vec::new();
        for &c in legal {
            // Window (best - 1, INF): any move scoring >= best gets an exact
            // score, so ties are detected exactly.
            let alpha = if ties.is_empty() { -INF } else { best - 1 };
            let child_mask = mask | drop_bit(mask, c);
            let score = -self.negamax(mask ^ cur, child_mask, moves + 1, depth - 1, -INF, -alpha);
            if self.aborted {
                return None;
            }
            if score > best {
                best = score;
                ties.clear();
                ties.push(c);
            } else if score == best {
                ties.push(c);
            }
        }
        Some((ties, best))
    }

    /// Fail-soft negamax with alpha-beta. `cur` are the discs of the side to
    /// move, `mask` all discs, `moves` the number of discs.
    fn negamax(&mut self, cur: u64, mask: u64, moves: u32, depth: u32, mut alpha: i32, beta: i32) -> i32 {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            self.aborted = true;
            return 0;
        }
        if moves >= CELLS {
            return 0;
        }
        let possible = (mask + BOTTOM) & BOARD;
        // The side to move wins at once if it can.
        if winning_cells(cur, mask) & possible != 0 {
            return WIN - (moves as i32 + 1);
        }
        let opp = mask ^ cur;
        // Opponent threats: two or more cannot all be blocked; one must be.
        let threats = winning_cells(opp, mask) & possible;
        if threats.count_ones() > 1 {
            return -(WIN - (moves as i32 + 2));
        }
        // The threat's column (bit index / HEIGHT; < 7, fits in u8).
        let forced = (threats != 0).then(|| (threats.trailing_zeros() / u32::from(HEIGHT)) as u8);
        if depth == 0 {
            return evaluate(cur, opp);
        }
        let mut best = -INF;
        for c in ORDER {
            if !can_play(mask, c) || forced.is_some_and(|f| f != c) {
                continue;
            }
            let child_mask = mask | drop_bit(mask, c);
            let score = -self.negamax(opp, child_mask, moves + 1, depth - 1, -beta, -alpha);
            if self.aborted {
                return 0;
            }
            if score > best {
                best = score;
                if score > alpha {
                    alpha = score;
                    if alpha >= beta {
                        break;
                    }
                }
            }
        }
        best
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::game::connect4::rules::tests::{play_lenient, play_seq};
    use crate::game::{Outcome, Seat};
    use proptest::prelude::*;

    fn wins_with(g: &Connect4, col: u8) -> bool {
        let seat = g.turn().unwrap();
        matches!(
            g.play(seat, i64::from(col)).unwrap().outcome(),
            Outcome::Won { winner, .. } if winner == seat
        )
    }

    /// Number of four-cell windows on a 7×6 board.
    const N_WINDOWS: usize = 69;

    /// Every four-cell line on the board, as bitboards.
    const WINDOWS: [u64; N_WINDOWS] = build_windows();

    const fn build_windows() -> [u64; N_WINDOWS] {
        let dirs: [(i32, i32); 4] = [(1, 0), (0, 1), (1, 1), (1, -1)];
        let cols = COLUMNS as i32;
        let rows = ROWS as i32;
        let h = HEIGHT as i32;
        let mut out = [0u64; N_WINDOWS];
        let mut n = 0;
        let mut c = 0;
        while c < cols {
            let mut r = 0;
            while r < rows {
                let mut d = 0;
                while d < dirs.len() {
                    let (dc, dr) = dirs[d];
                    let (ec, er) = (c + 3 * dc, r + 3 * dr);
                    if ec >= 0 && ec < cols && er >= 0 && er < rows {
                        let mut w = 0u64;
                        let mut k = 0;
                        while k < 4 {
                            w |= 1u64 << ((c + k * dc) * h + r + k * dr);
                            k += 1;
                        }
                        out[n] = w;
                        n += 1;
                    }
                    d += 1;
                }
                r += 1;
            }
            c += 1;
        }
        assert!(n == N_WINDOWS);
        out
    }

    /// Reference evaluation: the plain loop over all 69 windows.
    fn evaluate_reference(me: u64, them: u64) -> i32 {
        const LINE: [i32; 4] = [0, W1, W2, W3];
        let mut score = 0;
        for w in WINDOWS {
            let m = (me & w).count_ones() as usize;
            let t = (them & w).count_ones() as usize;
            if t == 0 {
                score += LINE[m.min(3)];
            } else if m == 0 {
                score -= LINE[t.min(3)];
            }
        }
        let centre = column_mask(3);
        let near = column_mask(2) | column_mask(4);
        score += 3 * ((me & centre).count_ones() as i32 - (them & centre).count_ones() as i32);
        score += (me & near).count_ones() as i32 - (them & near).count_ones() as i32;
        score
    }

    #[test]
    fn dirs_cover_all_windows() {
        let n: u32 = DIRS.iter().map(|(_, starts)| starts.count_ones()).sum();
        assert_eq!(n as usize, N_WINDOWS);
    }

    #[test]
    fn windows_are_all_distinct_lines() {
        for (i, w) in WINDOWS.iter().enumerate() {
            assert_eq!(w.count_ones(), 4);
            assert!(has_four(*w), "window {i} is not a line");
            assert!(!WINDOWS[..i].contains(w));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn evaluate_matches_reference(cols in proptest::collection::vec(0i64..7, 0..42)) {
            let g = play_lenient(&cols);
            prop_assume!(g.outcome() == Outcome::InProgress);
            let (r, y) = (g.discs(Seat::Red), g.discs(Seat::Yellow));
            prop_assert_eq!(evaluate(r, y), evaluate_reference(r, y));
            prop_assert_eq!(evaluate(y, r), evaluate_reference(y, r));
        }

        #[test]
        fn winning_cells_match_has_four(cols in proptest::collection::vec(0i64..7, 0..42)) {
            let g = play_lenient(&cols);
            // Only positions without a four already on the board.
            prop_assume!(g.outcome() == Outcome::InProgress);
            let mask = g.mask();
            for seat in [Seat::Red, Seat::Yellow] {
                let p = g.discs(seat);
                let cells = winning_cells(p, mask);
                for col in 0..COLUMNS {
                    for row in 0..ROWS {
                        let bit = 1u64 << (col * HEIGHT + row);
                        let expect = mask & bit == 0 && has_four(p | bit);
                        prop_assert_eq!(cells & bit != 0, expect);
                    }
                }
            }
        }
    }

    const BUDGETS: [SearchBudget; 3] = [
        SearchBudget::DEFAULT,
        SearchBudget { max_depth: 1, max_nodes: 0 },
        SearchBudget { max_depth: 0, max_nodes: 0 },
    ];

    #[test]
    fn takes_immediate_win() {
        let cases = [
            // Red, horizontal: red (0..=2, 0); 3 wins.
            ("001122", Seat::Red, vec![3]),
            // Yellow, vertical in column 6 (red also threatens (3,0); the
            // win comes first).
            ("0606162", Seat::Yellow, vec![6]),
            // Red, diagonal /: red (0,0),(1,1),(2,2); (3,3) wins.
            ("0112232343", Seat::Red, vec![3]),
            // Yellow, diagonal \: yellow (6,0),(5,1),(4,2); (3,3) wins.
            ("06554434323", Seat::Yellow, vec![3]),
            // Red, open three on the bottom row: both ends win.
            ("112233", Seat::Red, vec![0, 4]),
        ];
        for (seq, seat, wins) in cases {
            let g = play_seq(seq);
            assert_eq!(g.turn(), Some(seat), "{seq}");
            for seed in 0..4 {
                for budget in BUDGETS {
                    let c = choose_move_seeded(&g, budget, seed).unwrap();
                    assert!(wins.contains(&c), "{seq}: chose {c}, expected one of {wins:?}");
                    assert!(wins_with(&g, c));
                }
            }
        }
    }

    #[test]
    fn blocks_immediate_loss() {
        use Seat::{Red as R, Yellow as Y};
        let cases = [
            // Red threatens (3,0) on the bottom row; yellow must block.
            (play_seq("05162"), 3),
            // Yellow threatens vertically in column 5; red must block.
            (play_seq("051505"), 5),
            // Red threatens the diagonal at (3,3); yellow must block.
            (
                Connect4::from_columns(
                    &[vec![R, R], vec![Y, R], vec![Y, Y, R], vec![R, Y, Y], vec![], vec![R], vec![]],
                    None,
                )
                .unwrap(),
                3,
            ),
        ];
        for (g, block) in cases {
            let me = g.turn().unwrap();
            // Preconditions: no win of our own; the opponent wins at `block`.
            assert!(!g.legal_columns().iter().any(|&c| wins_with(&g, c)));
            assert!(has_four(g.discs(me.other()) | drop_bit(g.mask(), block)));
            for seed in 0..4 {
                for budget in BUDGETS {
                    assert_eq!(choose_move_seeded(&g, budget, seed), Some(block), "{g:?}");
                }
            }
        }
    }

    #[test]
    fn none_when_game_over() {
        let won = play_seq("0011223");
        assert_eq!(choose_move(&won, SearchBudget::default()), None);
        let resigned = play_seq("33").resign(Seat::Red).unwrap();
        assert_eq!(choose_move(&resigned, SearchBudget::default()), None);
        let drawn = play_seq("333333222222444444011111155555500000666666");
        assert_eq!(drawn.outcome(), Outcome::Draw);
        assert_eq!(choose_move(&drawn, SearchBudget::default()), None);
    }

    #[test]
    fn opening_is_deterministic_and_central() {
        let g = Connect4::new_game();
        let a = choose_move(&g, SearchBudget::default());
        assert_eq!(a, choose_move(&g, SearchBudget::default()));
        assert_eq!(a, Some(3));
        for seed in 0..8 {
            let b = SearchBudget::default();
            assert_eq!(choose_move_seeded(&g, b, seed), choose_move_seeded(&g, b, seed));
        }
    }

    #[test]
    fn avoids_handing_over_a_win() {
        // Yellow holds (0..=2, 1); if red fills (3,0), yellow wins at (3,1).
        use Seat::{Red as R, Yellow as Y};
        let cols = vec![vec![R, Y], vec![R, Y], vec![Y, Y], vec![], vec![R], vec![R], vec![]];
        let g = Connect4::from_columns(&cols, None).unwrap();
        assert_eq!(g.turn(), Some(Seat::Red));
        for seed in 0..4 {
            let c = choose_move_seeded(&g, SearchBudget::default(), seed).unwrap();
            assert_ne!(c, 3, "red played under yellow's (3,1) threat");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn always_legal(
            cols in proptest::collection::vec(0i64..7, 0..60),
            seed in any::<u64>(),
            depth in 0u32..5,
            nodes in 0u64..2_000,
        ) {
            let g = play_lenient(&cols);
            let budget = SearchBudget { max_depth: depth, max_nodes: nodes };
            let choice = choose_move_seeded(&g, budget, seed);
            match g.turn() {
                None => prop_assert_eq!(choice, None),
                Some(seat) => {
                    let c = choice.unwrap();
                    prop_assert!(g.legal_columns().contains(&c));
                    prop_assert!(g.play(seat, i64::from(c)).is_ok());
                    prop_assert_eq!(choose_move_seeded(&g, budget, seed), Some(c));
                    // Immediate win, when available, is always taken.
                    if g.legal_columns().iter().any(|&w| wins_with(&g, w)) {
                        prop_assert!(wins_with(&g, c));
                    }
                }
            }
        }
    }
}
