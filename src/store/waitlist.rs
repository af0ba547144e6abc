//! The waitlist (docs/DESIGN.md D6): players refused admission wait here in FIFO order until
//! the waitlist processor admits them. One trait, [`WaitlistStore`], with two backends: the
//! embedded [`MemoryWaitlist`] (the default) and Redis (`redis/waitlist.rs`), so the same
//! tests run against both.
//!
//! The life of a ticket: `enqueue` (idempotent per ticket) → waiting, with a cheap
//! `position` and a sequence number fixed for good (its place: the line is ordered by it,
//! whoever holds the entry) → `claim` moves the first waiting entry to *processing* atomically → the
//! processor creates the game and calls `complete`, which records the seat grant against
//! the ticket and removes it from processing. A crash between claim and complete leaves it
//! in processing; `requeue_processing` (run at start-up and then periodically, for claims
//! older than `admission.claim_lease_ms`) puts such entries back at the front, in their
//! original order. A ticket nobody touches (`touch`: a watcher or a poll)
//! for `ticket_ttl` is abandoned and `expire` drops it.
//!
//! **A place never goes backwards.** A waiting ticket's `position` (from `enqueue` or
//! `status`) is never more than one it was shown before: the store keeps the lowest
//! position shown (`WaitEntry::shown`, carried along when an entry moves from a fallback
//! queue) and answers the lower of it and the ticket's rank. The rank can grow when
//! entries issued elsewhere during an outage merge in ahead of it, or a claim is put back;
//! the player then sees their place stand still until the line catches up with it.
//!
//! A shared backend can lose what it holds (a Redis restarted without persistence, or
//! from an older copy). It then answers [`StoreError::Reset`](crate::store::StoreError::Reset)
//! until `restore` puts back the entries its caller still knows to be waiting, each at its
//! own sequence (docs/DESIGN.md D6).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{monotonic_ms, Ticket};
use crate::protocol::{Opponent, SeatGrant};
use crate::store::StoreFuture;

/// What a waiting player asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRequest {
    /// The game kind (entries written before kinds existed are Connect Four).
    #[serde(default)]
    pub kind: crate::protocol::GameKind,
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
    /// Its place in line, fixed when it was issued and kept wherever the entry goes (the
    /// fallback queue, a flush, a claim put back, a restore). 0 asks the store for the next
    /// one.
    #[serde(default)]
    pub seq: u64,
    /// The lowest position shown to its player before the store took it (0: none): the
    /// store never shows a higher one. Set when an entry moves from a fallback queue.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shown: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An entry in line: its sequence and 1-based position (0 while it is being processed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Its place, for good.
    pub seq: u64,
    /// Where it stands now.
    pub position: u64,
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
    /// Not in this store, but issued by another instance's fallback queue that may still
    /// hold it (it has not said otherwise, and it or the ticket was alive within
    /// `ticket_ttl`): ask again shortly, through any instance (docs/DESIGN.md D6).
    Elsewhere,
}

/// A FIFO waitlist backend.
// `len` is an async count from the backend; an `is_empty` would only be a second round trip.
#[allow(clippy::len_without_is_empty)]
pub trait WaitlistStore: Send + Sync + 'static {
    /// Puts `entry` in line at its sequence (`entry.seq`; when 0, a new one greater than
    /// every sequence issued or given so far), unless its ticket is already waiting or
    /// being processed (then nothing changes). Answers the ticket's sequence and position.
    fn enqueue(&self, entry: WaitEntry) -> StoreFuture<'_, Queued>;
    /// Where `ticket` stands.
    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus>;
    /// Keeps a waiting ticket alive for another `ticket_ttl`. False when it is not waiting.
    fn touch<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool>;
    /// Takes `ticket` out of the line. False when it was not waiting.
    fn leave<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool>;
    /// Moves the first live waiting entry into processing and answers it, with its
    /// sequence (expired tickets met on the way are dropped). `None` when nobody waits.
    fn claim(&self) -> StoreFuture<'_, Option<WaitEntry>>;
    /// Records the grant of a claimed ticket (kept for `ticket_ttl`) and ends its processing.
    fn complete<'a>(&'a self, ticket: &'a Ticket, grant: &'a SeatGrant) -> StoreFuture<'a, ()>;
    /// Puts every entry claimed at least `older_than` ago and still in processing back in
    /// line at its own sequence (so at the front, in order). Answers how many. Younger
    /// claims are left alone: with several instances on one store they belong to one
    /// creating the game right now.
    fn requeue_processing(&self, older_than: Duration) -> StoreFuture<'_, u64>;
    /// Players waiting (not counting processing).
    fn len(&self) -> StoreFuture<'_, u64>;
    /// Drops tickets abandoned for longer than `ticket_ttl`. Answers how many.
    fn expire(&self) -> StoreFuture<'_, u64>;
    /// The entry of a waiting or processing ticket, with its sequence.
    fn entry<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, Option<WaitEntry>>;
    /// For each of `tickets`, whether it is still in line (waiting or processing).
    fn held<'a>(&'a self, tickets: &'a [Ticket]) -> StoreFuture<'a, Vec<bool>>;
    /// After [`StoreError::Reset`](crate::store::StoreError::Reset): puts back each of
    /// `entries` that is neither in line nor admitted, at its own sequence, and takes the
    /// store as it is now as the line to follow. Answers how many were put back.
    fn restore(&self, entries: Vec<WaitEntry>) -> StoreFuture<'_, u64>;
    /// The highest sequence this handle has seen issued (a fallback queue continues after
    /// it).
    fn known_seq(&self) -> u64;
    /// Records that the fallback queue tagged `tag` (one instance's) holds none of the
    /// entries it issued up to sequence `cleared` (each is in this store, admitted with its
    /// grant here, or gone), and that it is alive. Until it says so, `status` answers a
    /// ticket it issued that this store does not hold [`TicketStatus::Elsewhere`]. The
    /// embedded store is never shared: nothing to record.
    fn fallback_cleared(&self, tag: u32, cleared: u64) -> StoreFuture<'_, ()>;
}

#[derive(Default)]
struct Line {
    /// The highest sequence issued or given so far.
    last_seq: u64,
    /// Waiting entries by sequence: the order of the line.
    waiting: BTreeMap<u64, Ticket>,
    /// Every waiting or processing ticket: its sequence, entry and last touch (ms).
    tickets: HashMap<Ticket, (u64, WaitEntry, u64)>,
    /// Claimed entries by sequence, with when they were claimed (ms).
    processing: BTreeMap<u64, (Ticket, u64)>,
    /// Grants of admitted tickets, with when they were recorded.
    admitted: HashMap<Ticket, (SeatGrant, u64)>,
    /// The lowest position each waiting ticket was shown.
    shown: HashMap<Ticket, u64>,
}

/// The embedded waitlist: a map in this process. It survives nothing but a lost thread.
pub struct MemoryWaitlist {
    line: Mutex<Line>,
    ticket_ttl_ms: u64,
    /// A copy of `line.last_seq`, readable without the lock.
    last_seq: AtomicU64,
}

impl MemoryWaitlist {
    /// An empty line whose tickets expire after `ticket_ttl` without a touch.
    pub fn new(ticket_ttl: Duration) -> Self {
        MemoryWaitlist {
            line: Mutex::default(),
            ticket_ttl_ms: ticket_ttl.as_millis() as u64,
            last_seq: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the line when the future is first polled (like a remote store: a call
    /// a breaker refuses never happens).
    fn with<'a, T: Send + 'static>(&'a self, f: impl FnOnce(&mut Line, u64) -> T + Send + 'a) -> StoreFuture<'a, T> {
        Box::pin(async move { Ok(self.now(f)) })
    }

    /// Runs `f` on the line under its lock, at once.
    fn now<T>(&self, f: impl FnOnce(&mut Line, u64) -> T) -> T {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut line, monotonic_ms());
        self.last_seq.store(line.last_seq, Ordering::Relaxed);
        out
    }

    /// Enqueues `entry` at once with the next sequence after both this line's and `floor`
    /// (the fallback queue continues the sequence of the line it stands in for), under the
    /// ticket `ticket_for` makes of that sequence. Its position counts `ahead` more before
    /// it (the line it stands in for).
    pub fn enqueue_after(
        &self,
        entry: WaitEntry,
        floor: u64,
        ahead: u64,
        ticket_for: impl FnOnce(u64) -> Ticket,
    ) -> (Ticket, Queued) {
        self.now(|line, now| {
            line.last_seq = line.last_seq.max(floor);
            let ticket = ticket_for(line.last_seq + 1);
            (ticket.clone(), enqueue(line, WaitEntry { seq: line.last_seq + 1, ticket, ..entry }, now, ahead))
        })
    }

    /// `ticket`'s status at once, its position counting `ahead` more before it (never more
    /// than it was shown before).
    pub fn status_after(&self, ticket: &Ticket, ahead: u64) -> TicketStatus {
        let ttl = self.ticket_ttl_ms;
        self.now(|line, now| match status(line, ticket, now, ttl) {
            TicketStatus::Waiting { position } => {
                TicketStatus::Waiting { position: shown(line, ticket, ahead + position) }
            }
            other => other,
        })
    }

    /// The first waiting entry (with its sequence and the position it was shown), left in
    /// line.
    pub fn first(&self) -> Option<WaitEntry> {
        self.now(|line, _| {
            let (seq, ticket) = line.waiting.first_key_value()?;
            let shown = line.shown.get(ticket).copied().unwrap_or(0);
            line.tickets.get(ticket).map(|(_, e, _)| WaitEntry { seq: *seq, shown, ..e.clone() })
        })
    }

    /// The highest sequence up to which this line holds nothing, waiting or being
    /// processed: what a fallback queue has cleared of all it issued.
    pub fn cleared(&self) -> u64 {
        self.now(|line, _| {
            let waiting = line.waiting.keys().next().copied();
            let processing = line.processing.keys().next().copied();
            match waiting.into_iter().chain(processing).min() {
                Some(lowest) => lowest - 1,
                None => line.last_seq,
            }
        })
    }

    /// Takes a waiting entry out of line (it moved elsewhere). False when it was not waiting.
    pub fn remove(&self, ticket: &Ticket) -> bool {
        self.now(|line, _| leave(line, ticket))
    }

    /// Players waiting, at once.
    pub fn waiting_now(&self) -> u64 {
        self.now(|line, _| line.waiting.len() as u64)
    }

    /// `ticket`'s status, at once.
    pub fn status_now(&self, ticket: &Ticket) -> TicketStatus {
        let ttl = self.ticket_ttl_ms;
        self.now(|line, now| status(line, ticket, now, ttl))
    }
}

fn position(line: &Line, seq: u64) -> u64 {
    line.waiting.range(..=seq).count() as u64
}

/// The position to show `ticket` now that it stands at `rank`: never more than before.
fn shown(line: &mut Line, ticket: &Ticket, rank: u64) -> u64 {
    let shown = line.shown.entry(ticket.clone()).or_insert(rank);
    *shown = (*shown).min(rank);
    *shown
}

/// Forgets what `ticket` was shown (it left the line).
fn unshown(line: &mut Line, ticket: &Ticket) {
    line.shown.remove(ticket);
}

/// Enqueues `entry` (idempotent per ticket); its position counts `ahead` more before it
/// and is never more than it was shown before.
fn enqueue(line: &mut Line, entry: WaitEntry, now: u64, ahead: u64) -> Queued {
    if let Some((seq, _, _)) = line.tickets.get(&entry.ticket) {
        let seq = *seq;
        let rank = ahead + position(line, seq);
        let position = if line.waiting.contains_key(&seq) { shown(line, &entry.ticket, rank) } else { 0 };
        return Queued { seq, position };
    }
    let seq = if entry.seq == 0 { line.last_seq + 1 } else { entry.seq };
    line.last_seq = line.last_seq.max(seq);
    line.waiting.insert(seq, entry.ticket.clone());
    if entry.shown > 0 {
        line.shown.insert(entry.ticket.clone(), entry.shown);
    }
    let ticket = entry.ticket.clone();
    line.tickets.insert(entry.ticket.clone(), (seq, WaitEntry { seq, ..entry }, now));
    let rank = ahead + position(line, seq);
    Queued { seq, position: shown(line, &ticket, rank) }
}

fn status(line: &Line, ticket: &Ticket, now: u64, ttl: u64) -> TicketStatus {
    if let Some((grant, at)) = line.admitted.get(ticket) {
        if now.saturating_sub(*at) <= ttl {
            return TicketStatus::Admitted(grant.clone());
        }
    }
    match line.tickets.get(ticket) {
        Some((seq, _, _)) if line.waiting.contains_key(seq) => TicketStatus::Waiting { position: position(line, *seq) },
        Some(_) => TicketStatus::Processing,
        None => TicketStatus::Unknown,
    }
}

fn leave(line: &mut Line, ticket: &Ticket) -> bool {
    let Some((seq, _, _)) = line.tickets.get(ticket) else { return false };
    let seq = *seq;
    if line.waiting.remove(&seq).is_none() {
        return false; // being processed: too late to leave
    }
    line.tickets.remove(ticket);
    unshown(line, ticket);
    true
}

impl WaitlistStore for MemoryWaitlist {
    fn enqueue(&self, entry: WaitEntry) -> StoreFuture<'_, Queued> {
        self.with(move |line, now| enqueue(line, entry, now, 0))
    }

    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus> {
        Box::pin(async move { Ok(self.status_after(ticket, 0)) })
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
        self.with(move |line, _| leave(line, ticket))
    }

    fn claim(&self) -> StoreFuture<'_, Option<WaitEntry>> {
        let ttl = self.ticket_ttl_ms;
        self.with(move |line, now| {
            while let Some((seq, ticket)) = line.waiting.pop_first() {
                let Some((_, entry, seen)) = line.tickets.get(&ticket) else { continue };
                if now.saturating_sub(*seen) > ttl {
                    line.tickets.remove(&ticket);
                    unshown(line, &ticket);
                    continue;
                }
                let entry = WaitEntry { seq, ..entry.clone() };
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
            unshown(line, ticket);
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
                unshown(line, ticket);
            }
            line.admitted.retain(|_, (_, at)| now.saturating_sub(*at) <= ttl);
            stale.len() as u64
        })
    }

    fn entry<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, Option<WaitEntry>> {
        self.with(move |line, _| line.tickets.get(ticket).map(|(seq, e, _)| WaitEntry { seq: *seq, ..e.clone() }))
    }

    fn held<'a>(&'a self, tickets: &'a [Ticket]) -> StoreFuture<'a, Vec<bool>> {
        self.with(move |line, _| tickets.iter().map(|t| line.tickets.contains_key(t)).collect())
    }

    fn restore(&self, entries: Vec<WaitEntry>) -> StoreFuture<'_, u64> {
        // The embedded line never forgets while its process lives; this puts back what is
        // missing all the same, so both backends keep one contract.
        self.with(move |line, now| {
            let mut added = 0;
            for entry in entries {
                if entry.seq == 0
                    || line.tickets.contains_key(&entry.ticket)
                    || line.admitted.contains_key(&entry.ticket)
                {
                    continue;
                }
                enqueue(line, entry, now, 0);
                added += 1;
            }
            added
        })
    }

    fn known_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    fn fallback_cleared(&self, _tag: u32, _cleared: u64) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
