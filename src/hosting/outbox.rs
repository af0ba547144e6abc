//! `Outbox`: what a turn-based game says to its sockets, held until the change it follows is
//! durable (docs/DESIGN.md D18). While a committed version is not yet durable, every frame
//! the game sends (the new state, a chat line, an error to a sender, what a joining socket
//! is told) waits behind it, in order; when the keeper reports the version durable, the
//! frames up to it go out. Nothing a player was shown can then be lost with the instance
//! or a failover of the store. With write-behind (`storage.durability`) the outbox is off
//! and frames go out at once.
//!
//! Frames about the game's condition now (paused, resumed) and closes do not wait: they
//! are not the game's state.

use std::collections::VecDeque;

use actix::Recipient;

use crate::hosting::messages::{Route, ToSession};

/// Most frames held; past it the game takes no command until the store catches up.
pub const HELD_MAX: usize = 512;

/// Who a held frame is for: whoever it was said to when it was said (a socket that joins
/// later is sent its own state on joining, after what was held before it).
pub enum To {
    /// The sockets attached to the seats when it was said.
    Seats([Option<Route>; 2]),
    /// One socket.
    One(Recipient<ToSession>),
}

/// The frames of one game waiting for durability.
#[derive(Default)]
pub struct Outbox {
    /// Whether frames wait for durability at all.
    on: bool,
    /// The highest version committed (handed to the keeper).
    committed: u64,
    /// The highest version the keeper reported durable.
    durable: u64,
    /// Frames, each with the version it waits for.
    held: VecDeque<(u64, To, ToSession)>,
}

impl Outbox {
    /// An outbox that holds frames (`on`) or sends them at once, for a game whose state is
    /// at `version`.
    pub fn new(on: bool, version: u64) -> Self {
        Outbox { on, committed: version, durable: 0, held: VecDeque::new() }
    }

    /// Whether frames wait for durability.
    pub fn on(&self) -> bool {
        self.on
    }

    /// A version was committed.
    pub fn committed(&mut self, version: u64) {
        self.committed = self.committed.max(version);
    }

    /// Whether a frame sent now must wait: a committed version is not durable yet.
    pub fn holding(&self) -> bool {
        self.on && self.committed > self.durable
    }

    /// Whether the outbox is full (the store is far behind).
    pub fn full(&self) -> bool {
        self.held.len() >= HELD_MAX
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Holds a frame behind the latest committed version.
    pub fn hold(&mut self, to: To, message: ToSession) {
        self.held.push_back((self.committed, to, message));
    }

    /// The keeper reports `version` durable: answers the frames that may go out now, in
    /// order.
    pub fn durable(&mut self, version: u64) -> Vec<(To, ToSession)> {
        self.durable = self.durable.max(version);
        let mut out = Vec::new();
        while self.held.front().is_some_and(|(waits_for, _, _)| *waits_for <= self.durable) {
            if let Some((_, to, message)) = self.held.pop_front() {
                out.push((to, message));
            }
        }
        out
    }

    /// Drops every held frame (the incarnation is replaced: the next one resends the state).
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::SharedFrame;

    fn text(to: &(To, ToSession)) -> String {
        match &to.1 {
            ToSession::Frame(f) => f.json().to_owned(),
            _ => String::new(),
        }
    }

    #[test]
    fn frames_wait_for_the_version_they_follow_and_go_out_in_order() {
        let mut outbox = Outbox::new(true, 1);
        assert!(outbox.holding(), "version 1 is not durable yet");
        assert!(outbox.durable(1).is_empty());
        assert!(!outbox.holding());
        outbox.committed(2);
        outbox.hold(To::Seats([None, None]), ToSession::Frame(SharedFrame::text("a")));
        outbox.committed(3);
        outbox.hold(To::Seats([None, None]), ToSession::Frame(SharedFrame::text("b")));
        outbox.hold(To::Seats([None, None]), ToSession::Frame(SharedFrame::text("c")));
        let out = outbox.durable(2);
        assert_eq!(out.iter().map(text).collect::<Vec<_>>(), ["a"]);
        assert!(outbox.holding());
        let out = outbox.durable(5);
        assert_eq!(out.iter().map(text).collect::<Vec<_>>(), ["b", "c"]);
        assert!(!outbox.holding() && outbox.is_empty());
    }

    #[test]
    fn an_outbox_that_is_off_never_holds() {
        let mut outbox = Outbox::new(false, 7);
        outbox.committed(8);
        assert!(!outbox.holding());
    }
}
