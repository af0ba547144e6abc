//! Connect Four's rules' tests: wins in every direction, draws, the order of move errors,
//! resignation, the snapshot format and its validation, and properties over random games
//! (a consistent board, illegal moves change nothing, wins match a brute-force check).
//! `play_seq` and `play_lenient` build positions for the AI's tests too.

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
