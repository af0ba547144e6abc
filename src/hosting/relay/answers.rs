//! On the owner, the relayed requests it has acted on, kept for a while: a request sent
//! again by its relaying instance (no reply came in time: the request or its reply was lost
//! to a Pub/Sub gap or a switchover, or is only late) is acted on once, and answered again
//! with the first answer. A request is known by its sender and number; the relaying
//! instance numbers its requests from its start time in microseconds, so a restarted
//! instance's numbers are new.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::hosting::relay_wire::Reply;
use crate::ids::InstanceId;

/// How long a request is remembered: longer than any relaying instance sends it again (it
/// gives up at the request's own deadline, a few seconds).
pub(super) const REMEMBER: Duration = Duration::from_secs(15);

/// Most requests remembered (the oldest are forgotten first).
pub(super) const MOST: usize = 65_536;

/// What the owner knows of a request.
#[derive(Debug)]
pub(super) enum Seen {
    /// Its first copy: act on it.
    First,
    /// Being acted on: its answer goes out when it is ready.
    Pending,
    /// Answered already: send this answer again.
    Answered(Reply),
}

/// The requests acted on, by sender and number.
#[derive(Default)]
pub(super) struct Answers {
    known: HashMap<(InstanceId, u64), Option<Reply>>,
    /// In arrival order, to forget the oldest first.
    arrived: VecDeque<((InstanceId, u64), Instant)>,
}

impl Answers {
    /// A request from `from` numbered `req` arrived at `now`. Number 0 is an unnumbered
    /// request (from an instance older than the numbering): always acted on.
    pub(super) fn arrived(&mut self, from: &InstanceId, req: u64, now: Instant) -> Seen {
        if req == 0 {
            return Seen::First;
        }
        self.forget_old(now);
        let key = (from.clone(), req);
        match self.known.get(&key) {
            Some(Some(reply)) => Seen::Answered(reply.clone()),
            Some(None) => Seen::Pending,
            None => {
                self.known.insert(key.clone(), None);
                self.arrived.push_back((key, now));
                self.forget_old(now);
                Seen::First
            }
        }
    }

    /// The answer to the request `req` from `to` (kept if the request is remembered).
    pub(super) fn answered(&mut self, to: &InstanceId, req: u64, reply: &Reply) {
        if let Some(slot) = self.known.get_mut(&(to.clone(), req)) {
            *slot = Some(reply.clone());
        }
    }

    /// Forgets requests older than [`REMEMBER`], and the oldest past [`MOST`].
    pub(super) fn forget_old(&mut self, now: Instant) {
        while let Some((key, at)) = self.arrived.front() {
            if now.duration_since(*at) < REMEMBER && self.arrived.len() <= MOST {
                break;
            }
            self.known.remove(key);
            self.arrived.pop_front();
        }
    }

    /// How many requests are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).expect("an instance id")
    }

    #[test]
    fn a_request_sent_again_is_acted_on_once_and_answered_with_the_first_answer() {
        let (mut answers, now, b) = (Answers::default(), Instant::now(), id("b"));
        assert!(matches!(answers.arrived(&b, 7, now), Seen::First));
        assert!(matches!(answers.arrived(&b, 7, now), Seen::Pending), "still being acted on");
        answers.answered(&b, 7, &Reply::NotHere);
        assert!(matches!(answers.arrived(&b, 7, now), Seen::Answered(Reply::NotHere)));
        // Another sender's request of the same number is another request.
        assert!(matches!(answers.arrived(&id("c"), 7, now), Seen::First));
        // An unnumbered request is never remembered.
        assert!(matches!(answers.arrived(&b, 0, now), Seen::First));
        assert!(matches!(answers.arrived(&b, 0, now), Seen::First));
        assert_eq!(answers.len(), 2);
    }

    #[test]
    fn requests_are_forgotten_after_a_while_and_past_the_most() {
        let (mut answers, now, b) = (Answers::default(), Instant::now(), id("b"));
        answers.arrived(&b, 1, now);
        answers.forget_old(now + REMEMBER);
        assert_eq!(answers.len(), 0);
        assert!(matches!(answers.arrived(&b, 1, now + REMEMBER), Seen::First), "a new request now");
        for req in 2..(MOST as u64 + 10) {
            answers.arrived(&b, req, now + REMEMBER);
        }
        assert_eq!(answers.len(), MOST, "bounded");
        assert!(matches!(answers.arrived(&b, MOST as u64 + 9, now + REMEMBER), Seen::Pending), "the newest kept");
        // An answer to a forgotten request is not kept.
        answers.answered(&b, 1, &Reply::NotHere);
        assert_eq!(answers.len(), MOST);
    }
}
