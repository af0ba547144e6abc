//! Light cycles: a two-seat real-time duel on a grid, as pure rules.
//!
//! Both cycles move one cell per tick, at the same time, leaving a wall behind them. A
//! seat's input for a tick is a direction; a reversal (straight back into its own trail) or
//! no input keeps the current heading. A cycle that enters a wall, any trail or the cell
//! the other cycle enters this tick crashes; two cycles swapping cells crash both. One
//! crash: the other seat wins. Both: a draw. A game that reaches `max_ticks` is a draw.
//!
//! [`LightCycles::step`] is a function of the state and this tick's inputs only: no clock,
//! no randomness, so a replay of the same inputs gives the same game (tested), and a
//! snapshot plus the inputs after it is the whole game. The AI ([`ai_direction`]) is a
//! bounded flood fill (a few microseconds on the default grid) that never blocks a tick.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::kind::{Kind, Runtime};
use super::tick::{Arena, TickGame, TickInput, TickKind};
use super::{Outcome, Seat};

/// A heading on the grid (y grows downwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// y - 1.
    Up,
    /// y + 1.
    Down,
    /// x - 1.
    Left,
    /// x + 1.
    Right,
}

impl Dir {
    /// Every heading.
    pub const ALL: [Dir; 4] = [Dir::Up, Dir::Right, Dir::Down, Dir::Left];

    /// The opposite heading.
    #[must_use]
    pub fn reverse(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
            Dir::Left => Dir::Right,
            Dir::Right => Dir::Left,
        }
    }

    fn delta(self) -> (i32, i32) {
        match self {
            Dir::Up => (0, -1),
            Dir::Down => (0, 1),
            Dir::Left => (-1, 0),
            Dir::Right => (1, 0),
        }
    }

    /// The wire name: `up`, `down`, `left`, `right`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
            Dir::Left => "left",
            Dir::Right => "right",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Dir> {
        Dir::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// One seat's cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycle {
    /// Where its head is.
    pub x: u16,
    /// Where its head is.
    pub y: u16,
    /// Where it goes next tick unless turned.
    pub dir: Dir,
    /// It crashed (on the tick the game ended).
    pub crashed: bool,
}

/// A light-cycle game: the grid, both cycles and their trails. Deserialising checks that
/// the value could be a game (a damaged snapshot is refused, never played).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct LightCycles {
    width: u16,
    height: u16,
    /// Ticks played.
    tick: u32,
    /// The most ticks a game lasts; then it is a draw.
    max_ticks: u32,
    /// Row-major owner of each cell: 0 free, 1 red's trail, 2 yellow's.
    cells: Vec<u8>,
    cycles: [Cycle; 2],
    outcome: Outcome,
}

/// A game as stored, before it is checked.
#[derive(Deserialize)]
struct Unchecked {
    width: u16,
    height: u16,
    tick: u32,
    max_ticks: u32,
    cells: Vec<u8>,
    cycles: [Cycle; 2],
    outcome: Outcome,
}

impl TryFrom<Unchecked> for LightCycles {
    type Error = String;

    fn try_from(u: Unchecked) -> Result<Self, String> {
        if !SIDE.contains(&u.width) || !SIDE.contains(&u.height) {
            return Err(format!("a {}x{} grid is outside {SIDE:?}", u.width, u.height));
        }
        if u.cells.len() != usize::from(u.width) * usize::from(u.height) || u.cells.iter().any(|c| *c > 2) {
            return Err("the cells do not match the grid".to_owned());
        }
        if u.tick > u.max_ticks || u.max_ticks > u32::from(u.width) * u32::from(u.height) {
            return Err(format!("tick {} of at most {} is not possible", u.tick, u.max_ticks));
        }
        let game = LightCycles {
            width: u.width,
            height: u.height,
            tick: u.tick,
            max_ticks: u.max_ticks,
            cells: u.cells,
            cycles: u.cycles,
            outcome: u.outcome,
        };
        for seat in Seat::ALL {
            let c = game.cycle(seat);
            if game.owner_of(c.x, c.y) != Some(seat) {
                return Err(format!("{seat}'s head is not on its trail"));
            }
        }
        let held = game.filled();
        if held > 2 + 2 * game.tick as usize {
            return Err(format!("{held} cells held after {} ticks", game.tick));
        }
        Ok(game)
    }
}

/// The smallest and largest grid side.
pub const SIDE: std::ops::RangeInclusive<u16> = 8..=200;

impl LightCycles {
    /// The game kind's wire name.
    pub const KIND: &'static str = "lightcycle";

    /// A new game on a `width` × `height` grid (each side clamped to [`SIDE`]): on the middle
    /// row, red a quarter from the left heading up, yellow a quarter from the right heading
    /// down (not on a collision course: each player has half the height to decide).
    /// It ends in a draw after `width * height` ticks at the latest.
    #[must_use]
    pub fn new_game(width: u16, height: u16) -> LightCycles {
        let (w, h) = (width.clamp(*SIDE.start(), *SIDE.end()), height.clamp(*SIDE.start(), *SIDE.end()));
        let y = h / 2;
        let red = Cycle { x: w / 4, y, dir: Dir::Up, crashed: false };
        let yellow = Cycle { x: w - 1 - w / 4, y, dir: Dir::Down, crashed: false };
        let mut game = LightCycles {
            width: w,
            height: h,
            tick: 0,
            max_ticks: u32::from(w) * u32::from(h),
            cells: vec![0; usize::from(w) * usize::from(h)],
            cycles: [red, yellow],
            outcome: Outcome::InProgress,
        };
        for seat in Seat::ALL {
            let c = &game.cycles[index(seat)];
            let at = game.at(c.x, c.y);
            game.cells[at] = owner(seat);
        }
        game
    }

    /// Grid width.
    #[must_use]
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Grid height.
    #[must_use]
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Ticks played.
    #[must_use]
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// How the game stands.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// A seat's cycle.
    #[must_use]
    pub fn cycle(&self, seat: Seat) -> &Cycle {
        &self.cycles[index(seat)]
    }

    /// Who holds the cell (`None`: free). Out of the grid: `None`.
    #[must_use]
    pub fn owner_of(&self, x: u16, y: u16) -> Option<Seat> {
        if x >= self.width || y >= self.height {
            return None;
        }
        match self.cells[self.at(x, y)] {
            1 => Some(Seat::Red),
            2 => Some(Seat::Yellow),
            _ => None,
        }
    }

    /// Cells held by trails (heads included).
    #[must_use]
    pub fn filled(&self) -> usize {
        self.cells.iter().filter(|c| **c != 0).count()
    }

    fn at(&self, x: u16, y: u16) -> usize {
        usize::from(y) * usize::from(self.width) + usize::from(x)
    }

    /// The cell one step from `(x, y)` towards `dir`, if it is on the grid.
    fn ahead(&self, x: u16, y: u16, dir: Dir) -> Option<(u16, u16)> {
        let (dx, dy) = dir.delta();
        let (nx, ny) = (i32::from(x) + dx, i32::from(y) + dy);
        (nx >= 0 && ny >= 0 && nx < i32::from(self.width) && ny < i32::from(self.height))
            .then_some((nx as u16, ny as u16))
    }

    /// The heading a seat's input gives: the input, unless it is a reversal or absent.
    #[must_use]
    pub fn heading(&self, seat: Seat, input: Option<Dir>) -> Dir {
        let current = self.cycles[index(seat)].dir;
        match input {
            Some(d) if d != current.reverse() => d,
            _ => current,
        }
    }

    /// The next state, given this tick's input of each seat (`[red, yellow]`). A finished
    /// game stays as it is.
    #[must_use]
    pub fn step(&self, inputs: [Option<Dir>; 2]) -> LightCycles {
        let mut next = self.clone();
        if self.outcome != Outcome::InProgress {
            return next;
        }
        next.tick += 1;
        let mut target = [None; 2];
        for seat in Seat::ALL {
            let i = index(seat);
            let dir = self.heading(seat, inputs[i]);
            next.cycles[i].dir = dir;
            let c = &self.cycles[i];
            target[i] = self.ahead(c.x, c.y, dir);
        }
        let mut crashed = [false; 2];
        for i in 0..2 {
            crashed[i] = match target[i] {
                None => true,
                Some((x, y)) => self.cells[self.at(x, y)] != 0,
            };
        }
        // Both into one cell, or through each other.
        if let (Some(a), Some(b)) = (target[0], target[1]) {
            let heads = [(self.cycles[0].x, self.cycles[0].y), (self.cycles[1].x, self.cycles[1].y)];
            if a == b || (a == heads[1] && b == heads[0]) {
                crashed = [true, true];
            }
        }
        for seat in Seat::ALL {
            let i = index(seat);
            if crashed[i] {
                next.cycles[i].crashed = true;
            } else if let Some((x, y)) = target[i] {
                next.cycles[i].x = x;
                next.cycles[i].y = y;
                let at = next.at(x, y);
                next.cells[at] = owner(seat);
            }
        }
        next.outcome = match crashed {
            [true, true] => Outcome::Draw,
            [true, false] => Outcome::Won { winner: Seat::Yellow, resigned: false },
            [false, true] => Outcome::Won { winner: Seat::Red, resigned: false },
            [false, false] if next.tick >= next.max_ticks => Outcome::Draw,
            [false, false] => Outcome::InProgress,
        };
        next
    }

    /// `seat` gives up: the other seat wins. A finished game stays as it is.
    #[must_use]
    pub fn resign(&self, seat: Seat) -> LightCycles {
        let mut next = self.clone();
        if next.outcome == Outcome::InProgress {
            next.outcome = Outcome::Won { winner: seat.other(), resigned: true };
        }
        next
    }
}

fn index(seat: Seat) -> usize {
    match seat {
        Seat::Red => 0,
        Seat::Yellow => 1,
    }
}

fn owner(seat: Seat) -> u8 {
    index(seat) as u8 + 1
}

/// How many free cells the AI counts at most from one candidate cell: enough to tell a
/// pocket it would die in from open room, and a bounded cost per decision.
const FILL_BUDGET: usize = 256;

/// The flood fill's scratch, kept per thread: a cell is seen when its stamp is the current
/// fill's, so nothing is cleared or allocated per decision.
struct Scratch {
    stamps: Vec<u32>,
    stamp: u32,
    queue: VecDeque<(u16, u16)>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        std::cell::RefCell::new(Scratch { stamps: Vec::new(), stamp: 0, queue: VecDeque::with_capacity(FILL_BUDGET * 2) });
}

/// Free cells reachable from `(x, y)`, counted up to [`FILL_BUDGET`].
fn room_from(game: &LightCycles, x: u16, y: u16, scratch: &mut Scratch) -> usize {
    if scratch.stamps.len() != game.cells.len() || scratch.stamp == u32::MAX {
        scratch.stamps = vec![0; game.cells.len()];
        scratch.stamp = 0;
    }
    scratch.stamp += 1;
    let stamp = scratch.stamp;
    scratch.queue.clear();
    scratch.queue.push_back((x, y));
    scratch.stamps[game.at(x, y)] = stamp;
    let mut room = 0;
    while let Some((cx, cy)) = scratch.queue.pop_front() {
        room += 1;
        if room >= FILL_BUDGET {
            break;
        }
        for d in Dir::ALL {
            if let Some((nx, ny)) = game.ahead(cx, cy, d) {
                let at = game.at(nx, ny);
                if scratch.stamps[at] != stamp && game.cells[at] == 0 {
                    scratch.stamps[at] = stamp;
                    scratch.queue.push_back((nx, ny));
                }
            }
        }
    }
    room
}

/// The AI's heading for `seat`: of the headings that do not crash at once, the one that
/// leads to the most free room (a flood fill of up to [`FILL_BUDGET`] cells), preferring
/// to keep its heading on ties, then the fixed order up, right, down, left. Deterministic,
/// no allocation after a thread's first call, microseconds per decision.
#[must_use]
pub fn ai_direction(game: &LightCycles, seat: Seat) -> Dir {
    let me = game.cycle(seat);
    let mut best: Option<(usize, bool, Dir)> = None;
    SCRATCH.with(|scratch| {
        let scratch = &mut *scratch.borrow_mut();
        for dir in Dir::ALL {
            if dir == me.dir.reverse() {
                continue;
            }
            let Some((x, y)) = game.ahead(me.x, me.y, dir) else { continue };
            if game.cells[game.at(x, y)] != 0 {
                continue;
            }
            let candidate = (room_from(game, x, y, scratch), dir == me.dir, dir);
            if best.is_none_or(|b| (candidate.0, candidate.1) > (b.0, b.1)) {
                best = Some(candidate);
            }
        }
    });
    best.map_or(me.dir, |b| b.2)
}

/// Light cycles in the kinds table: real-time, played on `/cycles`; a seat steers with
/// `{"type":"turn","dir":"up"|"down"|"left"|"right"}` (`protocol::TickInputFrame::Turn`,
/// read into [`Dir::code`]).
pub const KIND_ENTRY: Kind = Kind {
    name: LightCycles::KIND,
    title: "Light cycles",
    page: "/cycles",
    asset: "cycles.html",
    runtime: Runtime::Ticks(TickKind {
        new_game: |width, height| Arena::new(LightCycles::new_game(width, height)),
        decode: |value| serde_json::from_value::<LightCycles>(value).map(Arena::new).map_err(|e| e.to_string()),
    }),
};

impl Dir {
    /// The input code of this heading (its place in [`Dir::ALL`]).
    #[must_use]
    pub fn code(self) -> TickInput {
        TickInput(Dir::ALL.iter().position(|d| *d == self).unwrap_or(0) as u8)
    }

    /// The heading of an input code; `None` for a code no heading has.
    #[must_use]
    pub fn from_code(input: TickInput) -> Option<Dir> {
        Dir::ALL.get(usize::from(input.0)).copied()
    }
}

impl TickGame for LightCycles {
    fn kind(&self) -> &'static str {
        LightCycles::KIND
    }

    fn tick(&self) -> u32 {
        self.tick
    }

    fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn step(&self, inputs: [Option<TickInput>; 2]) -> Arena {
        Arena::new(LightCycles::step(self, inputs.map(|i| i.and_then(Dir::from_code))))
    }

    fn ai_input(&self, seat: Seat) -> TickInput {
        ai_direction(self, seat).code()
    }

    fn resign(&self, seat: Seat) -> Arena {
        Arena::new(LightCycles::resign(self, seat))
    }

    fn tick_view(&self) -> serde_json::Map<String, serde_json::Value> {
        let heads: Vec<_> = Seat::ALL
            .iter()
            .map(|s| {
                let c = self.cycle(*s);
                serde_json::json!({"x": c.x, "y": c.y, "dir": c.dir.as_str(), "crashed": c.crashed})
            })
            .collect();
        let mut view = serde_json::Map::new();
        view.insert("heads".to_owned(), serde_json::Value::Array(heads));
        view
    }

    fn encode(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
