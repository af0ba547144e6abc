//! [`Throttle`]: a log line written at most once per interval, with the count of events
//! since the last one, for anything a client can cause many times a second (refused
//! connections, refused admin requests, a waitlist store that cannot answer), so no client
//! can flood the log.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::monotonic_ms;

/// A log line that is written at most once per interval, with the number of events since
/// the last one written: anything a client can cause many times a second is logged so.
pub struct Throttle {
    every_ms: u64,
    last_ms: AtomicU64,
    since: AtomicU64,
}

impl Throttle {
    /// A throttle writing at most once every `every_ms`.
    pub const fn new(every_ms: u64) -> Self {
        Throttle { every_ms, last_ms: AtomicU64::new(0), since: AtomicU64::new(0) }
    }

    /// Counts one event; `Some(count)` (events since the last line, this one included)
    /// when a line should be written now.
    pub fn hit(&self) -> Option<u64> {
        let count = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = monotonic_ms().max(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= self.every_ms)
            && self.last_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.since.fetch_sub(count, Ordering::Relaxed);
            Some(count)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_writes_the_first_line_then_at_most_one_per_interval_with_the_count() {
        let throttle = Throttle::new(60_000);
        assert_eq!(throttle.hit(), Some(1));
        assert!((0..100).all(|_| throttle.hit().is_none()));
        // The count carried to the next line is everything since the last one.
        throttle.last_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.hit(), Some(101));
    }
}
