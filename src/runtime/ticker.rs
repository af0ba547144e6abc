//! The fixed-rate schedule of a real-time game's loop, as pure code (the caller supplies
//! the clock). Tick `n` is due at `anchor + n * period`, whatever earlier ticks cost, so
//! the loop does not drift. A tick that runs late is counted with its lateness, never
//! dropped. After a stall the missed ticks run at twice the rate (half a period apart,
//! never back to back) until the schedule is caught up; a stall of more than
//! `max_behind` periods re-anchors the schedule at now instead (the game's clock pauses
//! for the stall, counted as a resync) rather than sprinting for long.

use std::time::{Duration, Instant};

/// The resolution of tokio's timer wheel.
pub const TIMER_SLACK: Duration = Duration::from_millis(1);

/// One tick to run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Its number, from 0.
    pub index: u64,
    /// How long after its due time it runs.
    pub late: Duration,
    /// The schedule was re-anchored before this tick.
    pub resynced: bool,
}

/// What the loop has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Ticks run.
    pub ticks: u64,
    /// Ticks that ran more than `late_after` after their due time.
    pub late: u64,
    /// Times the schedule was re-anchored after a long stall.
    pub resyncs: u64,
    /// The largest lateness seen.
    pub max_late: Duration,
}

/// A fixed-rate schedule.
#[derive(Clone, Debug)]
pub struct Ticker {
    period: Duration,
    anchor: Instant,
    next: u64,
    last_run: Option<Instant>,
    late_after: Duration,
    max_behind: u32,
    stats: TickStats,
}

impl Ticker {
    /// A schedule of one tick per `period` (at least 1 ms), the first due one period after
    /// `start`. A tick later than `late_after` counts as late.
    #[must_use]
    pub fn new(period: Duration, start: Instant, late_after: Duration) -> Ticker {
        Ticker {
            period: period.max(Duration::from_millis(1)),
            anchor: start + period.max(Duration::from_millis(1)),
            next: 0,
            last_run: None,
            late_after,
            max_behind: 5,
            stats: TickStats::default(),
        }
    }

    fn due(&self, index: u64) -> Instant {
        self.anchor + self.period.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// When the next tick should run: its due time, but not sooner than half a period
    /// after the previous one ran.
    #[must_use]
    pub fn next_at(&self) -> Instant {
        let due = self.due(self.next);
        match self.last_run {
            Some(last) => due.max(last + self.period / 2),
            None => due,
        }
    }

    /// How long to ask the timer to wait from `now` for the next tick: until
    /// [`Ticker::next_at`], less [`TIMER_SLACK`] (tokio's timer wheel rounds a deadline up
    /// to its next millisecond, so asking for the due time itself runs every tick about a
    /// millisecond late). A tick may so run up to a millisecond early; it counts as on time.
    #[must_use]
    pub fn wait(&self, now: Instant) -> Duration {
        self.next_at().saturating_duration_since(now).saturating_sub(TIMER_SLACK)
    }

    /// Records that the next tick runs at `now`: answers it, with its lateness.
    pub fn fire(&mut self, now: Instant) -> Tick {
        let mut resynced = false;
        if now.saturating_duration_since(self.due(self.next)) > self.period * self.max_behind {
            // Due now: the ticks missed in the stall are not run (the game paused).
            self.anchor = now - self.period.saturating_mul(u32::try_from(self.next).unwrap_or(u32::MAX));
            self.stats.resyncs += 1;
            resynced = true;
        }
        let late = now.saturating_duration_since(self.due(self.next));
        let tick = Tick { index: self.next, late, resynced };
        self.next += 1;
        self.last_run = Some(now);
        self.stats.ticks += 1;
        if late > self.late_after {
            self.stats.late += 1;
        }
        self.stats.max_late = self.stats.max_late.max(late);
        tick
    }

    /// The counts so far.
    #[must_use]
    pub fn stats(&self) -> TickStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn on_time_ticks_do_not_drift_whatever_they_cost() {
        let start = Instant::now();
        let mut t = Ticker::new(50 * MS, start, MS);
        for n in 0..100u32 {
            let at = t.next_at();
            assert_eq!(at, start + 50 * MS * (n + 1), "tick {n} is due on the grid");
            // Each tick runs 3 ms late (timer slack) and costs 10 ms: the grid holds.
            let tick = t.fire(at + 3 * MS);
            assert_eq!((tick.index, tick.late), (u64::from(n), 3 * MS));
        }
        assert_eq!(t.stats(), TickStats { ticks: 100, late: 100, resyncs: 0, max_late: 3 * MS });
    }

    #[test]
    fn after_a_stall_the_missed_ticks_run_half_a_period_apart_then_rejoin_the_grid() {
        let start = Instant::now();
        let mut t = Ticker::new(50 * MS, start, MS);
        t.fire(t.next_at());
        // Tick 1 is due at 100 ms; the thread stalls until 220 ms.
        let tick = t.fire(start + 220 * MS);
        assert_eq!((tick.index, tick.late, tick.resynced), (1, 120 * MS, false));
        let mut runs = vec![];
        for _ in 0..5 {
            let at = t.next_at();
            runs.push(at.duration_since(start).as_millis());
            t.fire(at);
        }
        // Ticks 2.. were due at 150, 200, 250, 300, 350: caught up 25 ms apart, then on the grid.
        assert_eq!(runs, vec![245, 270, 295, 320, 350]);
        assert_eq!(t.stats().late, 5, "tick 1 and the four catching up were late");
    }

    #[test]
    fn a_long_stall_re_anchors_instead_of_sprinting() {
        let start = Instant::now();
        let mut t = Ticker::new(50 * MS, start, MS);
        let tick = t.fire(start + 2000 * MS);
        assert!(tick.resynced);
        assert_eq!((tick.index, tick.late), (0, Duration::ZERO));
        assert_eq!(t.next_at(), start + 2050 * MS);
        assert_eq!(t.stats().resyncs, 1);
    }
}
