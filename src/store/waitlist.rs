//! The waitlist (docs/DESIGN.md D6): players refused admission wait here in FIFO order until
//! the waitlist processor admits them. One trait, [`WaitlistStore`], with two backends: the
//! embedded [`MemoryWaitlist`] (the default) and Redis (`redis/waitlist.rs`), so the same
//! tests run against both.
//!
//! The life of a ticket: `enqueue` (idempotent per ticket) → waiting, with a cheap
//! `position` → `claim` moves the first waiting entry to *processing* atomically → the
//! processor creates the game and calls `complete`, which records the seat grant against
//! the ticket and removes it from processing. A crash between claim and complete leaves it
//! in processing; `requeue_processing` (run at start-up and then periodically, for claims
//! older than `admission.claim_lease_ms`) puts such entries back at the front, in their
//! original order. A ticket nobody touches (`touch`: a watcher or a poll)
//! for `ticket_ttl` is abandoned and `expire` drops it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{monotonic_ms, Ticket};
use crate::protocol::{Opponent, SeatGrant};
use crate::store::StoreFuture;

/// What a waiting player asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRequest {
    /// AI or human opponent.
    pub opponent: Opponent,
    /// The validated player name.
    pub player_name: String,
}

/// One entry in line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitEntry {
    /// The caller's ticket.
    pub ticket: Ticket,
    /// The game they asked for.
    pub request: WaitRequest,
    /// When they joined the line (RFC 3339).
    pub enqueued_at: String,
}

/// Where a ticket stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketStatus {
    /// In line at this 1-based position.
    Waiting {
        /// 1 = next to be admitted.
        position: u64,
    },
    /// Claimed: its game is being created.
    Processing,
    /// Admitted: the game and seat it got.
    Admitted(SeatGrant),
    /// Never issued, left, or expired.
    Unknown,
}

/// A FIFO waitlist backend.
// `len` is an async count from the backend; an `is_empty` would only be a second round trip.
#[allow(clippy::len_without_is_empty)]
pub trait WaitlistStore: Send + Sync + 'static {
    /// Puts `entry` at the back of the line, unless its ticket is already waiting or being
    /// processed (then nothing changes). Answers the ticket's 1-based position (0 while it
    /// is being processed).
    fn enqueue(&self, entry: WaitEntry) -> StoreFuture<'_, u64>;
    /// Where `ticket` stands.
    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus>;
    /// Keeps a waiting ticket alive for another `ticket_ttl`. False when it is not waiting.
    fn touch<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool>;
    /// Takes `ticket` out of the line. False when it was not waiting.
    fn leave<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool>;
    /// Moves the first live waiting entry into processing and answers it (expired tickets
    /// met on the way are dropped). `None` when nobody waits.
    fn claim(&self) -> StoreFuture<'_, Option<WaitEntry>>;
    /// Records the grant of a claimed ticket (kept for `ticket_ttl`) and ends its processing.
    fn complete<'a>(&'a self, ticket: &'a Ticket, grant: &'a SeatGrant) -> StoreFuture<'a, ()>;
    /// Puts every entry claimed at least `older_than` ago and still in processing back at
    /// the front of the line, in order. Answers how many. Younger claims are left alone: with
    /// several instances on one store they belong to one creating the game right now.
    fn requeue_processing(&self, older_than: Duration) -> StoreFuture<'_, u64>;
    /// Players waiting (not counting processing).
    fn len(&self) -> StoreFuture<'_, u64>;
    /// Drops tickets abandoned for longer than `ticket_ttl`. Answers how many.
    fn expire(&self) -> StoreFuture<'_, u64>;
}

/// Sequences start in the middle of the range: new entries count up from there, entries
/// put back at the front count down.
const FIRST_SEQ: u64 = 1 << 62;

struct Line {
    next_seq: u64,
    front_seq: u64,
    /// Waiting entries by sequence: the order of the line.
    waiting: BTreeMap<u64, Ticket>,
    /// Every waiting or processing ticket: its sequence, entry and last touch (ms).
    tickets: HashMap<Ticket, (u64, WaitEntry, u64)>,
    /// Claimed entries by sequence, with when they were claimed (ms).
    processing: BTreeMap<u64, (Ticket, u64)>,
    /// Grants of admitted tickets, with when they were recorded.
    admitted: HashMap<Ticket, (SeatGrant, u64)>,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            next_seq: FIRST_SEQ,
            front_seq: FIRST_SEQ,
            waiting: BTreeMap::new(),
            tickets: HashMap::new(),
            processing: BTreeMap::new(),
            admitted: HashMap::new(),
        }
    }
}

/// The embedded waitlist: a map in this process. It survives nothing but a lost thread.
pub struct MemoryWaitlist {
    line: Mutex<Line>,
    ticket_ttl_ms: u64,
}

impl MemoryWaitlist {
    /// An empty line whose tickets expire after `ticket_ttl` without a touch.
    pub fn new(ticket_ttl: Duration) -> Self {
        MemoryWaitlist { line: Mutex::default(), ticket_ttl_ms: ticket_ttl.as_millis() as u64 }
    }

    fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Line, u64) -> T) -> StoreFuture<'_, T> {
        let out = f(&mut self.line.lock().unwrap_or_else(|e| e.into_inner()), monotonic_ms());
        Box::pin(std::future::ready(Ok(out)))
    }

    /// Synchronous variant of [`WaitlistStore::enqueue`] (the fallback queue uses it).
    pub fn enqueue_now(&self, entry: WaitEntry) -> u64 {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        enqueue(&mut line, entry, monotonic_ms())
    }

    /// Removes and answers every waiting entry, in order (to flush them elsewhere).
    pub fn drain(&self) -> Vec<WaitEntry> {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        let order: Vec<Ticket> = std::mem::take(&mut line.waiting).into_values().collect();
        order.into_iter().filter_map(|t| line.tickets.remove(&t).map(|(_, e, _)| e)).collect()
    }

    /// Puts `entries` back at the front, keeping their order (a failed flush).
    pub fn restore_front(&self, entries: Vec<WaitEntry>) {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        let now = monotonic_ms();
        let base = line.front_seq - entries.len() as u64;
        line.front_seq = base;
        for (i, entry) in entries.into_iter().enumerate() {
            let seq = base + i as u64;
            line.waiting.insert(seq, entry.ticket.clone());
            line.tickets.insert(entry.ticket.clone(), (seq, entry, now));
        }
    }
}

fn position(line: &Line, seq: u64) -> u64 {
    line.waiting.range(..=seq).count() as u64
}

fn enqueue(line: &mut Line, entry: WaitEntry, now: u64) -> u64 {
    if let Some((seq, _, _)) = line.tickets.get(&entry.ticket) {
        let seq = *seq;
        return if line.waiting.contains_key(&seq) { position(line, seq) } else { 0 };
    }
    let seq = line.next_seq;
    line.next_seq += 1;
    line.waiting.insert(seq, entry.ticket.clone());
    line.tickets.insert(entry.ticket.clone(), (seq, entry, now));
    position(line, seq)
}

impl WaitlistStore for MemoryWaitlist {
    fn enqueue(&self, entry: WaitEntry) -> StoreFuture<'_, u64> {
        self.with(move |line, now| enqueue(line, entry, now))
    }

    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus> {
        let ttl = self.ticket_ttl_ms;
        self.with(move |line, now| {
            if let Some((grant, at)) = line.admitted.get(ticket) {
                if now.saturating_sub(*at) <= ttl {
                    return TicketStatus::Admitted(grant.clone());
                }
            }
            match line.tickets.get(ticket) {
                Some((seq, _, _)) if line.waiting.contains_key(seq) => {
                    TicketStatus::Waiting { position: position(line, *seq) }
                }
                Some(_) => TicketStatus::Processing,
                None => TicketStatus::Unknown,
            }
        })
    }

    fn touch<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool> {
        self.with(move |line, now| match line.tickets.get_mut(ticket) {
            Some((_, _, seen)) => {
                *seen = now;
                true
            }
            None => false,
        })
    }

    fn leave<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool> {
        self.with(move |line, _| {
            let Some((seq, _, _)) = line.tickets.get(ticket) else { return false };
            let seq = *seq;
            if line.waiting.remove(&seq).is_none() {
                return false; // being processed: too late to leave
            }
            line.tickets.remove(ticket);
            true
        })
    }

    fn claim(&self) -> StoreFuture<'_, Option<WaitEntry>> {
        let ttl = self.ticket_ttl_ms;
        self.with(move |line, now| {
            while let Some((seq, ticket)) = line.waiting.pop_first() {
                let Some((_, entry, seen)) = line.tickets.get(&ticket) else { continue };
                if now.saturating_sub(*seen) > ttl {
                    line.tickets.remove(&ticket);
                    continue;
                }
                let entry = entry.clone();
                line.processing.insert(seq, (ticket, now));
                return Some(entry);
            }
            None
        })
    }

    fn complete<'a>(&'a self, ticket: &'a Ticket, grant: &'a SeatGrant) -> StoreFuture<'a, ()> {
        self.with(move |line, now| {
            if let Some((seq, _, _)) = line.tickets.remove(ticket) {
                line.processing.remove(&seq);
            }
            line.admitted.insert(ticket.clone(), (grant.clone(), now));
        })
    }

    fn requeue_processing(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        let older = older_than.as_millis() as u64;
        self.with(move |line, now| {
            let stale: Vec<u64> = line
                .processing
                .iter()
                .filter(|(_, (_, at))| now.saturating_sub(*at) >= older)
                .map(|(seq, _)| *seq)
                .collect();
            for seq in &stale {
                if let Some((ticket, _)) = line.processing.remove(seq) {
                    line.waiting.insert(*seq, ticket);
                }
            }
            stale.len() as u64
        })
    }

    fn len(&self) -> StoreFuture<'_, u64> {
        self.with(|line, _| line.waiting.len() as u64)
    }

    fn expire(&self) -> StoreFuture<'_, u64> {
        let ttl = self.ticket_ttl_ms;
        self.with(move |line, now| {
            let stale: Vec<(u64, Ticket)> = line
                .tickets
                .iter()
                .filter(|(_, (seq, _, seen))| line.waiting.contains_key(seq) && now.saturating_sub(*seen) > ttl)
                .map(|(t, (seq, _, _))| (*seq, t.clone()))
                .collect();
            for (seq, ticket) in &stale {
                line.waiting.remove(seq);
                line.tickets.remove(ticket);
            }
            line.admitted.retain(|_, (_, at)| now.saturating_sub(*at) <= ttl);
            stale.len() as u64
        })
    }
}
