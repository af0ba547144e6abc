//! The light cycles rules' tests: head-on, swap and wall crashes, reversals and
//! resignation, damaged snapshots refused, a whole game of AI against AI, and properties
//! over random inputs (trails, replay and resumption from a snapshot, the AI and walls).

use super::*;
use proptest::prelude::*;

fn input(code: u8) -> Option<Dir> {
    match code % 5 {
        0 => None,
        n => Some(Dir::ALL[usize::from(n - 1)]),
    }
}

fn replay(w: u16, h: u16, inputs: &[(u8, u8)]) -> Vec<LightCycles> {
    let mut states = vec![LightCycles::new_game(w, h)];
    for (r, y) in inputs {
        let next = states.last().unwrap().step([input(*r), input(*y)]);
        states.push(next);
    }
    states
}

#[test]
fn head_on_is_a_draw_and_a_wall_loses() {
    // 8 wide: red at x=2 turns right, yellow at x=5 turns left: they meet.
    let g = LightCycles::new_game(8, 8);
    let g = g.step([Some(Dir::Right), Some(Dir::Left)]);
    assert_eq!((g.cycle(Seat::Red).x, g.cycle(Seat::Yellow).x), (3, 4));
    let g = g.step([None, None]);
    assert_eq!(g.outcome(), Outcome::Draw, "they swap cells: both crash");
    assert!(g.cycle(Seat::Red).crashed && g.cycle(Seat::Yellow).crashed);

    // Red turns up into the wall (y 4 → 0, then off the grid); yellow turns away and lives.
    let mut g = LightCycles::new_game(8, 8);
    for yellow in [Dir::Down, Dir::Left, Dir::Left, Dir::Left] {
        g = g.step([Some(Dir::Up), Some(yellow)]);
        assert_eq!(g.outcome(), Outcome::InProgress);
    }
    g = g.step([Some(Dir::Up), Some(Dir::Left)]);
    assert_eq!(g.outcome(), Outcome::Won { winner: Seat::Yellow, resigned: false }, "{g:?}");
    assert_eq!((g.cycle(Seat::Yellow).x, g.cycle(Seat::Yellow).y), (1, 5));
}

#[test]
fn a_reversal_keeps_the_heading_and_resigning_ends_it() {
    let g = LightCycles::new_game(20, 10);
    assert_eq!(g.heading(Seat::Red, Some(Dir::Down)), Dir::Up, "a reversal is ignored");
    assert_eq!(g.heading(Seat::Red, Some(Dir::Left)), Dir::Left);
    assert_eq!(g.heading(Seat::Red, None), Dir::Up);
    let g = g.resign(Seat::Red);
    assert_eq!(g.outcome(), Outcome::Won { winner: Seat::Yellow, resigned: true });
    assert_eq!(g.step([None, None]), g, "a finished game does not move");
}

#[test]
fn a_damaged_snapshot_is_refused() {
    let g = LightCycles::new_game(10, 10).step([None, Some(Dir::Up)]);
    let good = serde_json::to_value(&g).unwrap();
    let mut wrong_size = good.clone();
    wrong_size["cells"].as_array_mut().unwrap().pop();
    let mut off_trail = good.clone();
    off_trail["cycles"][0]["x"] = serde_json::json!(9);
    let mut too_many = good.clone();
    too_many["cells"][0] = serde_json::json!(1);
    too_many["cells"][1] = serde_json::json!(1);
    for bad in [wrong_size, off_trail, too_many] {
        assert!(serde_json::from_value::<LightCycles>(bad).is_err());
    }
    assert_eq!(serde_json::from_value::<LightCycles>(good).unwrap(), g);
}

#[test]
fn two_ais_play_a_whole_game_that_ends() {
    let mut g = LightCycles::new_game(40, 30);
    while g.outcome() == Outcome::InProgress {
        g = g.step([Some(ai_direction(&g, Seat::Red)), Some(ai_direction(&g, Seat::Yellow))]);
    }
    assert!(g.tick() > 40, "the AIs survive past the first wall: {} ticks", g.tick());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn trails_only_grow_two_cells_a_tick_and_never_overlap(
        w in 8u16..30, h in 8u16..30, inputs in proptest::collection::vec((0u8..5, 0u8..5), 0..200),
    ) {
        let states = replay(w, h, &inputs);
        for pair in states.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.outcome() != Outcome::InProgress {
                prop_assert_eq!(a, b);
                continue;
            }
            prop_assert_eq!(b.tick(), a.tick() + 1);
            // Every cell held before is held by the same seat after.
            for y in 0..a.height() {
                for x in 0..a.width() {
                    if let Some(s) = a.owner_of(x, y) {
                        prop_assert_eq!(b.owner_of(x, y), Some(s));
                    }
                }
            }
            let survivors = Seat::ALL.iter().filter(|s| !b.cycle(**s).crashed).count();
            prop_assert_eq!(b.filled(), a.filled() + survivors);
            for seat in Seat::ALL {
                let c = b.cycle(seat);
                prop_assert_eq!(b.owner_of(c.x, c.y), Some(seat), "a head sits on its own trail");
                prop_assert!(c.dir != a.cycle(seat).dir.reverse(), "never a reversal");
            }
            match b.outcome() {
                Outcome::InProgress => prop_assert_eq!(survivors, 2),
                Outcome::Draw => prop_assert!(survivors == 0 || b.tick() >= u32::from(w) * u32::from(h)),
                Outcome::Won { winner, .. } => {
                    prop_assert!(!b.cycle(winner).crashed && b.cycle(winner.other()).crashed)
                }
            }
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_game_and_a_snapshot_resumes_it(
        inputs in proptest::collection::vec((0u8..5, 0u8..5), 0..120), cut in 0usize..120,
    ) {
        let a = replay(24, 16, &inputs);
        let b = replay(24, 16, &inputs);
        prop_assert_eq!(&a, &b);
        // A snapshot taken at any tick, serialised and read back, goes on identically.
        let cut = cut.min(inputs.len());
        let json = serde_json::to_string(&a[cut]).unwrap();
        let mut resumed: LightCycles = serde_json::from_str(&json).unwrap();
        for (r, y) in &inputs[cut..] {
            resumed = resumed.step([input(*r), input(*y)]);
        }
        prop_assert_eq!(&resumed, a.last().unwrap());
    }

    #[test]
    fn the_ai_never_turns_into_a_wall_it_can_avoid(inputs in proptest::collection::vec((0u8..5, 0u8..5), 0..60)) {
        for g in replay(20, 14, &inputs).iter().filter(|g| g.outcome() == Outcome::InProgress) {
        for seat in Seat::ALL {
            let c = g.cycle(seat);
            let safe = Dir::ALL.iter().any(|d| {
                *d != c.dir.reverse()
                    && g.ahead(c.x, c.y, *d).is_some_and(|(x, y)| g.owner_of(x, y).is_none())
            });
            let chosen = ai_direction(g, seat);
            let ok = g.ahead(c.x, c.y, chosen).is_some_and(|(x, y)| g.owner_of(x, y).is_none());
            prop_assert!(!safe || ok, "{seat:?} chose {chosen:?} with a safe cell available");
        }
        }
    }
}
