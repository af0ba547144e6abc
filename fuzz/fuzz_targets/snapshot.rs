//! Fuzz target: a snapshot read back from Redis, through the very function
//! `RedisSnapshots::read` uses (`store::redis::decode::<Snapshot>("snapshot read", …)`), on
//! arbitrary UTF-8. It must never panic, and a snapshot it accepts must be one the server
//! can resume: a Connect Four board (the one turn-based kind today; another kind's
//! decoder vouches for its own) agrees with its own columns (and `Connect4::from_columns`
//! rebuilds it), disc counts alternate from red, the turn and the outcome agree, every
//! legal column can be played, and encoding then decoding gives the same snapshot.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::game::{Connect4, Outcome, Rules as _, Seat};
use rampart::store::redis::{decode, encode};
use rampart::store::snapshot::Snapshot;

fuzz_target!(|text: &str| {
    let Ok(snapshot) = decode::<Snapshot>("snapshot read", text) else { return };
    if let Some(board) = snapshot.board.downcast::<Connect4>() {
        connect4(&snapshot, board);
    }

    // The seats and their hashes print without panicking (tokens are never shown whole).
    let _ = format!("{snapshot:?}");
    let _ = (snapshot.vs_ai(), Seat::ALL.map(|s| snapshot.seat(s).map(|r| r.is_ai())));

    // Written back the way RedisSnapshots::write writes it, it reads back the same.
    let written = encode("snapshot write", &snapshot).expect("a decoded snapshot encodes");
    let again: Snapshot = decode("snapshot read", &written).expect("an encoded snapshot decodes");
    assert_eq!(again.board, snapshot.board, "the board survives a round trip");
    let rewritten = encode("snapshot write", &again).expect("encodes again");
    assert_eq!(rewritten, written, "encoding is stable");
});

fn connect4(snapshot: &Snapshot, board: &Connect4) {

    let columns = board.columns();
    assert_eq!(columns.len(), 7, "seven columns");
    assert!(columns.iter().all(|c| c.len() <= 6), "no column holds more than six discs");
    let count = |seat| columns.iter().flatten().filter(|s| **s == seat).count();
    let (reds, yellows) = (count(Seat::Red), count(Seat::Yellow));
    assert!(reds == yellows || reds == yellows + 1, "red moves first and turns alternate: {reds} {yellows}");
    assert_eq!(board.moves() as usize, reds + yellows, "the move count is the discs on the board");
    assert_eq!(Connect4::from_columns(&columns, board.resigned()).as_ref(), Ok(board), "the columns rebuild it");

    match board.outcome() {
        Outcome::InProgress => {
            let turn = board.turn().expect("a game in progress has a turn");
            assert_eq!(turn, if reds == yellows { Seat::Red } else { Seat::Yellow }, "the turn follows the count");
            let legal = board.legal_columns();
            assert!(!legal.is_empty(), "a game in progress has a legal move");
            for col in legal {
                board.play(turn, i64::from(col)).expect("a legal column can be played");
            }
            assert!(board.play(turn.other(), i64::from(0u8)).is_err(), "the other seat cannot move");
            assert!(board.winning_line().is_none(), "a game in progress has no winning line");
            assert_eq!(snapshot.ended(), snapshot.abandoned || snapshot.failed, "in progress: ended only if closed");
        }
        Outcome::Won { resigned, .. } => {
            assert!(board.turn().is_none() && board.legal_columns().is_empty(), "a won game takes no move");
            assert_eq!(board.winning_line().is_some(), !resigned, "a win on the board has its line");
            assert!(snapshot.ended());
        }
        Outcome::Draw => {
            assert_eq!(reds + yellows, 42, "a draw is a full board");
            assert!(board.turn().is_none() && board.winning_line().is_none());
            assert!(snapshot.ended());
        }
    }

}
