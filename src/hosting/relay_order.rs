//! On the relaying instance, the order of one relayed socket's frames (docs/DESIGN.md D11).
//!
//! The owner numbers the frames and the close of each relayed seat (`relay_wire::Order`, one stream
//! per `RemoteSession`, numbered from 1). Pub/Sub keeps a publisher's order on one route,
//! but a Redis Cluster switchover opens a second one: a publisher whose slot map is stale
//! still publishes on the demoted node, which forwards to the new primary, while its
//! fresher messages go there straight (measured on Redis 7.0: both arrive, in either
//! order). [`Ordered`] puts them back in order:
//!
//! - a frame in its turn is delivered, with any held ones it unblocks;
//! - a frame ahead of its turn is held until the missing ones come, at most [`HOLD`] and
//!   [`MAX_HELD`] frames; then the gap is given up: what is held is delivered in order, and
//!   the relay asks the owner for the seat's current frames (a `Wire::Resync`), since what
//!   was missing is lost;
//! - a frame behind its turn (it came after a later one was delivered, or twice) is
//!   dropped: a board the page already replaced must not come back;
//! - a newer stream of the same owner (its seat joined again there) replaces the older one,
//!   whose late frames are then dropped.
//!
//! The first frame of a stream starts it wherever it is numbered (the socket may have
//! joined a seat whose proxy the owner kept from an earlier join).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long frames ahead of a missing one are held before the gap is given up.
pub const HOLD: Duration = Duration::from_millis(200);

/// Most frames held behind a gap; one more gives it up at once (a 20 Hz game fills it in
/// 3 s, far past [`HOLD`]).
pub const MAX_HELD: usize = 64;

/// What a relayed socket is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A frame's JSON.
    Frame(String),
    /// A close code.
    Close(u16),
}

/// What became of an item taken in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// To send to the socket now, in this order.
    pub ready: Vec<Item>,
    /// A gap opened: give it up after [`HOLD`] unless it closes ([`Ordered::gap`] names it).
    pub gap_opened: bool,
    /// A gap was given up at once (too much held): ask the owner for the seat's frames.
    pub gap_skipped: bool,
    /// It came behind its turn and was dropped.
    pub late: bool,
}

/// Numbers every gap opened on this instance, so a timer gives up only the gap it was set
/// for (an entry registered again starts a new `Ordered`; its gaps never take an old number).
static GAPS: AtomicU64 = AtomicU64::new(1);

/// One relayed socket's stream, as far as it has been delivered.
#[derive(Debug, Default)]
pub struct Ordered {
    stream: Option<u64>,
    next: u64,
    held: BTreeMap<u64, Item>,
    /// The open gap's number and when it opened.
    gap: Option<(u64, Instant)>,
    /// The next frame of the stream is taken as in its turn, whatever its number: what was
    /// sent before it was lost in a gap of the subscription, and the owner is resending.
    resume: bool,
}

impl Ordered {
    /// Takes in an item numbered `stream`/`seq` (the owner already checked).
    pub fn take(&mut self, stream: u64, seq: u64, item: Item) -> Taken {
        match self.stream {
            Some(current) if stream < current => return Taken { late: true, ..Taken::default() },
            Some(current) if stream == current => {}
            _ => {
                self.stream = Some(stream);
                self.next = seq;
                self.held.clear();
                self.gap = None;
            }
        }
        if seq < self.next {
            return Taken { late: true, ..Taken::default() };
        }
        if std::mem::take(&mut self.resume) {
            self.next = seq;
        }
        if seq > self.next {
            let opened = self.held.is_empty();
            self.held.insert(seq, item);
            if self.held.len() > MAX_HELD {
                return Taken { ready: self.skip(), gap_skipped: true, ..Taken::default() };
            }
            if opened {
                self.gap = Some((GAPS.fetch_add(1, Ordering::Relaxed), Instant::now()));
            }
            return Taken { gap_opened: opened, ..Taken::default() };
        }
        let mut ready = vec![item];
        self.next += 1;
        while let Some(item) = self.held.remove(&self.next) {
            ready.push(item);
            self.next += 1;
        }
        if self.held.is_empty() {
            self.gap = None;
        }
        Taken { ready, ..Taken::default() }
    }

    /// The gap open now, if any (the number its timer carries).
    pub fn gap(&self) -> Option<u64> {
        self.gap.map(|(number, _)| number)
    }

    /// Whether the open gap has waited past [`HOLD`] (its timer may have been lost).
    pub fn overdue(&self, now: Instant) -> bool {
        self.gap.is_some_and(|(_, since)| now.duration_since(since) >= HOLD)
    }

    /// Gives the open gap up: what is held, in order; the stream goes on after it.
    pub fn skip(&mut self) -> Vec<Item> {
        self.gap = None;
        let held = std::mem::take(&mut self.held);
        if let Some(last) = held.keys().next_back() {
            self.next = last + 1;
        }
        held.into_values().collect()
    }

    /// The subscription had a gap and the owner is asked to resend: what is held goes out
    /// now, and the stream's next frame is taken as in its turn (the ones before it may be
    /// lost, and are replaced by what the owner resends).
    pub fn resume(&mut self) -> Vec<Item> {
        self.resume = true;
        self.skip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> Item {
        Item::Frame(format!("f{n}"))
    }

    #[test]
    fn frames_in_their_turn_go_straight_through() {
        let mut o = Ordered::default();
        for n in 1..=3 {
            assert_eq!(o.take(7, n, frame(n)).ready, vec![frame(n)]);
        }
        assert_eq!(o.gap(), None);
    }

    #[test]
    fn a_frame_ahead_of_its_turn_waits_for_the_missing_one() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        let ahead = o.take(7, 3, frame(3));
        assert!(ahead.ready.is_empty() && ahead.gap_opened);
        assert!(o.gap().is_some());
        assert!(!o.take(7, 4, frame(4)).gap_opened, "the same gap");
        assert_eq!(o.take(7, 2, frame(2)).ready, vec![frame(2), frame(3), frame(4)]);
        assert_eq!(o.gap(), None);
        assert_eq!(o.take(7, 5, frame(5)).ready, vec![frame(5)]);
    }

    #[test]
    fn a_frame_behind_its_turn_is_dropped() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        o.take(7, 3, frame(3));
        assert_eq!(o.skip(), vec![frame(3)]);
        let late = o.take(7, 2, frame(2));
        assert!(late.late && late.ready.is_empty());
        assert!(o.take(7, 3, frame(3)).late, "a repeat is dropped too");
        assert_eq!(o.take(7, 4, frame(4)).ready, vec![frame(4)]);
    }

    #[test]
    fn a_gap_held_too_long_is_given_up_at_once() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        for n in 3..3 + MAX_HELD as u64 {
            assert!(o.take(7, n, frame(n)).ready.is_empty());
        }
        let over = o.take(7, 3 + MAX_HELD as u64, Item::Close(1012));
        assert!(over.gap_skipped);
        assert_eq!(over.ready.len(), MAX_HELD + 1);
        assert_eq!(over.ready.last(), Some(&Item::Close(1012)));
        assert_eq!(o.gap(), None);
    }

    #[test]
    fn a_newer_stream_replaces_the_older_whose_late_frames_are_dropped() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        o.take(7, 3, frame(3));
        assert_eq!(o.take(9, 5, frame(5)).ready, vec![frame(5)], "a stream starts where it is");
        assert_eq!(o.gap(), None, "the older stream's held frames are gone");
        assert!(o.take(7, 2, frame(2)).late);
        assert_eq!(o.take(9, 6, frame(6)).ready, vec![frame(6)]);
    }

    #[test]
    fn after_a_subscription_gap_the_next_frame_is_in_its_turn() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        o.take(7, 3, frame(3));
        assert_eq!(o.resume(), vec![frame(3)]);
        assert_eq!(o.take(7, 9, frame(9)).ready, vec![frame(9)], "frames 4 to 8 were lost");
        assert!(o.take(7, 11, frame(11)).gap_opened, "then in order again");
    }

    #[test]
    fn a_gap_is_overdue_after_the_hold() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        o.take(7, 3, frame(3));
        let now = Instant::now();
        assert!(!o.overdue(now));
        assert!(o.overdue(now + HOLD));
        o.take(7, 2, frame(2));
        assert!(!o.overdue(now + HOLD), "closed");
    }

    #[test]
    fn each_gap_has_its_own_number() {
        let mut o = Ordered::default();
        o.take(7, 1, frame(1));
        o.take(7, 3, frame(3));
        let first = o.gap();
        o.take(7, 2, frame(2));
        o.take(7, 5, frame(5));
        assert!(o.gap().is_some() && o.gap() != first);
    }
}
