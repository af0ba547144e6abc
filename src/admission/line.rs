//! The line as the server uses it: a [`WaitlistStore`] backend called through the
//! "database" circuit breaker, and for a shared backend (Redis) the two things that keep
//! its promise when Redis fails (docs/DESIGN.md D6):
//!
//! - **The fallback queue.** While the backend is unreachable (or its breaker open), new
//!   entries wait in an embedded queue, each with a sequence after the highest the backend
//!   has issued and no earlier than the wall clock (Redis numbers entries by its clock in
//!   µs), and are flushed to the backend at those same sequences once it answers. An entry's place is its sequence, fixed when it is issued, so the admission
//!   order is the issue order across an outage and a flush. The line admits from the
//!   backend whenever a call passes (the queue flushed first, in the same claim). While the
//!   backend is down nobody is admitted: it is the shared store, and no game starts
//!   without its ownership lease there (docs/DESIGN.md D17). Positions count the
//!   backend's line before the queue's, and never go back (the store's rule: the lowest
//!   shown is kept, and carried to the backend with the entry).
//! - **Tickets another instance may hold.** A fallback entry gets a ticket that names this
//!   queue's tag and the entry's sequence ([`Ticket::fallback`]). Each maintenance round
//!   that reaches the backend flushes the queue and records how far it is cleared; until
//!   then any other instance answers such a ticket [`TicketStatus::Elsewhere`] (ask
//!   again), never unknown.
//! - **What this instance knows.** Every entry it issued, or holds a watcher for, is
//!   remembered (with its sequence) until it is admitted, leaves or is seen gone. When
//!   the backend says it lost the line ([`StoreError::Reset`]: Redis restarted empty, or
//!   from an older copy), the line is repaired before anything else happens: every
//!   remembered entry that is neither in line nor admitted is put back at its own place,
//!   the loss is logged as an error with the count, counted in
//!   `rampart_waitlist_lost_total` and shown on `/health`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::ids::{monotonic_ms, now_rfc3339, unix_micros, Ticket};
use crate::metrics::Metrics;
use crate::protocol::SeatGrant;
use crate::store::waitlist::{MemoryWaitlist, TicketStatus, WaitEntry, WaitlistStore};
use crate::store::{Guarded, StoreError, StoreFuture};

/// How many of the oldest remembered entries each maintenance round checks are still in
/// line (the front is where entries leave: admitted by any instance).
const PRUNE_BATCH: usize = 64;

/// At most this many tickets whose enqueue failed in a way that may still have happened
/// are remembered, to be taken out of the backend once it answers.
const MAX_ORPHANS: usize = 10_000;

/// What leaving the line came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Out of the line.
    Left,
    /// It was not waiting (unknown, admitted or being admitted).
    NotWaiting,
    /// Another instance's fallback queue may hold it: ask again shortly.
    Elsewhere,
}

/// The waitlist behind its breaker, with the fallback queue.
pub struct Line {
    primary: Arc<dyn WaitlistStore>,
    breaker: CircuitBreaker,
    /// Only for a shared backend: where entries wait while it is unreachable.
    fallback: Option<MemoryWaitlist>,
    /// Only for a shared backend: the entries this instance knows to be waiting.
    known: Option<Mutex<Known>>,
    /// The backend's waiting count at its last answer (the positions of fallback entries
    /// count it first).
    primary_len: AtomicU64,
    /// How old an unfinished claim must be before it is taken back (`claim_lease_ms`).
    lease: Duration,
    metrics: Arc<Metrics>,
    losses: Mutex<LineLosses>,
    /// Repairs done so far: a caller that saw the loss before a repair finished does not
    /// repair again.
    repairs: AtomicU64,
    /// One repair at a time.
    repairing: tokio::sync::Mutex<()>,
    /// Flushing the fallback queue, claiming from it and leaving it take turns, so an entry
    /// is never both flushed and claimed.
    fallback_turn: tokio::sync::Mutex<()>,
    /// This process's fallback queue's tag, in the tickets it issues (random per process:
    /// a restarted process holds none of its predecessor's entries).
    tag: u32,
    /// Since when the backend has failed every call (`monotonic_ms`; 0 while it answers).
    unreachable_since: AtomicU64,
    /// Tickets whose enqueue in the backend failed but may have happened (a timeout): their
    /// entries went to the fallback under a new ticket, so these are taken out again.
    orphans: Mutex<Vec<Ticket>>,
}

/// What `/health` shows of the line's losses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineLosses {
    /// Times the backend came back without the line it held.
    pub count: u64,
    /// Entries put back, in all.
    pub restored: u64,
    /// When it last happened (RFC 3339).
    pub last_at: Option<String>,
}

/// The entries this instance knows to be waiting, by sequence, bounded.
struct Known {
    by_seq: BTreeMap<u64, WaitEntry>,
    seq_of: HashMap<Ticket, u64>,
    cap: usize,
}

impl Known {
    fn add(&mut self, entry: WaitEntry) {
        if entry.seq == 0 || self.seq_of.contains_key(&entry.ticket) {
            return;
        }
        if self.by_seq.len() >= self.cap {
            // Full (`admission.max_waitlist`): forget the newest, which has the most time
            // to be seen again by its watcher.
            if let Some((_, newest)) = self.by_seq.pop_last() {
                self.seq_of.remove(&newest.ticket);
            }
        }
        self.seq_of.insert(entry.ticket.clone(), entry.seq);
        self.by_seq.insert(entry.seq, entry);
    }

    fn forget(&mut self, ticket: &Ticket) {
        if let Some(seq) = self.seq_of.remove(ticket) {
            self.by_seq.remove(&seq);
        }
    }
}

impl Line {
    /// `primary` called through `breaker`; `remote` (a shared backend) adds the fallback
    /// queue and the memory of this instance's entries (at most `max_known`).
    pub fn new(
        primary: Arc<dyn WaitlistStore>,
        breaker: CircuitBreaker,
        remote: bool,
        ticket_ttl: Duration,
        lease: Duration,
        max_known: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Line {
            primary,
            breaker,
            fallback: remote.then(|| MemoryWaitlist::new(ticket_ttl)),
            known: remote
                .then(|| Mutex::new(Known { by_seq: BTreeMap::new(), seq_of: HashMap::new(), cap: max_known.max(1) })),
            primary_len: AtomicU64::new(0),
            lease,
            metrics,
            losses: Mutex::new(LineLosses::default()),
            repairs: AtomicU64::new(0),
            repairing: tokio::sync::Mutex::new(()),
            fallback_turn: tokio::sync::Mutex::new(()),
            tag: fastrand::u32(..),
            unreachable_since: AtomicU64::new(0),
            orphans: Mutex::new(Vec::new()),
        }
    }

    async fn guarded<T>(&self, call: StoreFuture<'_, T>) -> Result<T, StoreError> {
        let out = Guarded::new(self.breaker.clone()).call(call).await;
        if matches!(out, Err(StoreError::Backend(_) | StoreError::Unavailable(_))) {
            let _ = self.unreachable_since.compare_exchange(0, monotonic_ms(), Ordering::AcqRel, Ordering::Relaxed);
        } else {
            self.unreachable_since.store(0, Ordering::Release);
        }
        out
    }

    /// A backend call; when the backend says it lost the line, the line is repaired first
    /// and the call made again.
    async fn checked<'a, T>(&'a self, call: impl Fn() -> StoreFuture<'a, T>) -> Result<T, StoreError> {
        let before = self.repairs.load(Ordering::Acquire);
        match self.guarded(call()).await {
            Err(StoreError::Reset) => {
                self.repair(before).await?;
                self.guarded(call()).await
            }
            other => other,
        }
    }

    /// Puts back every entry this instance knows to be waiting, unless another caller did
    /// since `seen_repairs`.
    async fn repair(&self, seen_repairs: u64) -> Result<(), StoreError> {
        let _turn = self.repairing.lock().await;
        if self.repairs.load(Ordering::Acquire) != seen_repairs {
            return Ok(());
        }
        // Entries still in the fallback queue were never in the backend: the flush places them.
        let in_fallback = |t: &Ticket| self.fallback.as_ref().is_some_and(|f| f.status_now(t) != TicketStatus::Unknown);
        let entries: Vec<WaitEntry> = match &self.known {
            Some(known) => lock(known).by_seq.values().filter(|e| !in_fallback(&e.ticket)).cloned().collect(),
            None => Vec::new(),
        };
        let known = entries.len();
        let restored = self.guarded(self.primary.restore(entries)).await?;
        self.repairs.fetch_add(1, Ordering::AcqRel);
        self.metrics.waitlist_lost(restored);
        {
            let mut losses = lock(&self.losses);
            losses.count += 1;
            losses.restored += restored;
            losses.last_at = Some(now_rfc3339());
        }
        tracing::error!(
            known,
            restored,
            "the waitlist's Redis came back without the line it held (it restarted empty or from an older copy; \
             run it with persistence, docs/OPERATIONS.md): put back every entry this instance knew to be waiting, \
             each at its own place, before admitting anyone"
        );
        Ok(())
    }

    fn remember(&self, entry: WaitEntry) {
        if let Some(known) = &self.known {
            lock(known).add(entry);
        }
    }

    fn forget(&self, ticket: &Ticket) {
        if let Some(known) = &self.known {
            lock(known).forget(ticket);
        }
    }

    /// What `/health` shows of the line's losses.
    pub fn losses(&self) -> LineLosses {
        lock(&self.losses).clone()
    }

    /// Puts `entry` in line; answers the ticket it waits under (the entry's, or, in the
    /// fallback queue, one that says so) and its 1-based position.
    pub async fn enqueue(&self, entry: WaitEntry) -> Result<(Ticket, u64), StoreError> {
        let Some(fallback) = &self.fallback else {
            let position = self.guarded(self.primary.enqueue(entry.clone())).await?.position;
            return Ok((entry.ticket, position));
        };
        // Once anything waits in the fallback queue, newcomers queue behind it.
        if fallback.waiting_now() == 0 {
            match self.checked(|| self.primary.enqueue(entry.clone())).await {
                Ok(queued) => {
                    self.primary_len.fetch_max(queued.position, Ordering::Relaxed);
                    self.remember(WaitEntry { seq: queued.seq, ..entry.clone() });
                    return Ok((entry.ticket, queued.position));
                }
                Err(e) => {
                    if matches!(e, StoreError::Backend(_)) {
                        // It may have happened all the same: taken out once the backend answers.
                        let mut orphans = lock(&self.orphans);
                        if orphans.len() < MAX_ORPHANS {
                            orphans.push(entry.ticket.clone());
                        }
                    }
                    tracing::warn!(ticket = %entry.ticket, "the waitlist backend failed; queueing in the embedded fallback until it is back: {e}");
                }
            }
        }
        // After the backend's highest sequence, and no earlier than now on the clock Redis
        // numbers by: an entry issued elsewhere after this one still comes after it.
        let floor = self.primary.known_seq().max(unix_micros().saturating_sub(1));
        let ahead = self.primary_len.load(Ordering::Relaxed);
        let tag = self.tag;
        let (ticket, queued) = fallback.enqueue_after(entry.clone(), floor, ahead, |seq| Ticket::fallback(tag, seq));
        self.remember(WaitEntry { seq: queued.seq, ticket: ticket.clone(), ..entry });
        Ok((ticket, queued.position))
    }

    /// Where `ticket` stands (and keeps it alive).
    pub async fn status(&self, ticket: &Ticket) -> Result<TicketStatus, StoreError> {
        if let Some(fallback) = &self.fallback {
            let _ = fallback.touch(ticket).await;
            match fallback.status_after(ticket, self.primary_len.load(Ordering::Relaxed)) {
                TicketStatus::Unknown => {}
                other => return Ok(other),
            }
        }
        let status = self
            .checked(|| {
                Box::pin(async move {
                    self.primary.touch(ticket).await?;
                    self.primary.status(ticket).await
                })
            })
            .await?;
        match status {
            TicketStatus::Waiting { position } => {
                // At least this many wait in the backend (others may have joined elsewhere).
                self.primary_len.fetch_max(position, Ordering::Relaxed);
            }
            // Our own queue's ticket: we hold none of it, so it is gone.
            TicketStatus::Elsewhere if self.issued_here(ticket) => return Ok(TicketStatus::Unknown),
            _ => {}
        }
        Ok(status)
    }

    /// Whether this process's fallback queue issued `ticket`.
    fn issued_here(&self, ticket: &Ticket) -> bool {
        ticket.fallback_origin().is_some_and(|(tag, _)| tag == self.tag)
    }

    /// Remembers a watched ticket's entry, so a line Redis forgot gets it back too.
    pub async fn watch(&self, ticket: &Ticket) {
        let Some(known) = &self.known else { return };
        if lock(known).seq_of.contains_key(ticket) {
            return;
        }
        if let Ok(Some(entry)) = self.checked(|| self.primary.entry(ticket)).await {
            self.remember(entry);
        }
    }

    /// Takes `ticket` out of line.
    pub async fn leave(&self, ticket: &Ticket) -> Result<Left, StoreError> {
        if let Some(fallback) = &self.fallback {
            let _turn = self.fallback_turn.lock().await;
            if fallback.remove(ticket) {
                self.forget(ticket);
                return Ok(Left::Left);
            }
        }
        if self.checked(|| self.primary.leave(ticket)).await? {
            self.forget(ticket);
            return Ok(Left::Left);
        }
        // Another instance's fallback queue may hold it: only that instance can take it out.
        if ticket.fallback_origin().is_some() && !self.issued_here(ticket) {
            if let TicketStatus::Elsewhere = self.checked(|| self.primary.status(ticket)).await? {
                return Ok(Left::Elsewhere);
            }
        }
        Ok(Left::NotWaiting)
    }

    /// Claims the next entry in sequence order. The fallback queue is flushed first when
    /// the backend answers; while it does not, nobody is admitted: the backend is the one
    /// shared store, and no game starts without its ownership lease there (docs/DESIGN.md
    /// D17), so an admission now could only fail and hold its entry back.
    pub async fn claim(&self) -> Result<Option<WaitEntry>, StoreError> {
        if let Some(fallback) = &self.fallback {
            let _turn = self.fallback_turn.lock().await;
            if fallback.waiting_now() > 0 {
                self.flush(fallback).await;
                if fallback.waiting_now() > 0 {
                    return Ok(None);
                }
            }
        }
        match self.checked(|| self.primary.claim()).await {
            Ok(Some(entry)) => {
                let _ = self.primary_len.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                Ok(Some(entry))
            }
            Ok(None) => Ok(None),
            // The outage shows on the breaker; entries issued meanwhile wait in the fallback.
            Err(_) if self.fallback.is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records the grant of a claimed ticket. With a shared backend the grant is also kept
    /// here (for `ticket_ttl`): a Redis that forgets, or fails, right after the admission
    /// must not leave its player without the seat they were given.
    pub async fn complete(&self, ticket: &Ticket, grant: &SeatGrant) -> Result<(), StoreError> {
        self.forget(ticket);
        if let Some(f) = &self.fallback {
            let _ = f.complete(ticket, grant).await;
        }
        self.guarded(self.primary.complete(ticket, grant)).await
    }

    /// Recovery: entries claimed longer than the lease ago and never completed (a crash
    /// between claim and game creation) go back to their place.
    pub async fn requeue_processing(&self) -> Result<u64, StoreError> {
        self.guarded(self.primary.requeue_processing(self.lease)).await
    }

    /// Housekeeping: drops abandoned tickets, flushes the fallback queue to the backend in
    /// order when it answers, refreshes the backend's length (noticing a lost line),
    /// forgets remembered entries that left. Answers the players waiting.
    pub async fn maintain(&self) -> u64 {
        let _ = self.guarded(self.primary.expire()).await;
        match self.requeue_processing().await {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                tracing::warn!(requeued = n, "put waitlist entries whose admission never finished back in line")
            }
        }
        if let Some(fallback) = &self.fallback {
            // While the backend is unreachable its entries may be followed through another
            // instance, which cannot touch them here: nothing expires until it answers.
            if self.unreachable_since.load(Ordering::Acquire) == 0 {
                let _ = fallback.expire().await;
            }
            let _ = fallback.requeue_processing(self.lease).await;
            if fallback.waiting_now() > 0 {
                let _turn = self.fallback_turn.lock().await;
                self.flush(fallback).await;
            }
            self.settle(fallback).await;
        }
        if let Ok(n) = self.checked(|| self.primary.len()).await {
            self.primary_len.store(n, Ordering::Relaxed);
            self.prune().await;
        }
        let fallback = self.fallback.as_ref().map_or(0, MemoryWaitlist::waiting_now);
        self.primary_len.load(Ordering::Relaxed) + fallback
    }

    /// Once the backend answers: takes orphaned tickets out, and records how far the queue
    /// is cleared (and that this instance lives), so other instances stop answering its
    /// tickets `Elsewhere` once they are settled.
    async fn settle(&self, fallback: &MemoryWaitlist) {
        let orphans: Vec<Ticket> = lock(&self.orphans).clone();
        for ticket in orphans {
            if self.checked(|| self.primary.leave(&ticket)).await.is_err() {
                return;
            }
            lock(&self.orphans).retain(|t| *t != ticket);
        }
        if fallback.known_seq() == 0 {
            return; // this queue never issued a ticket
        }
        let cleared = fallback.cleared();
        let _ = self.guarded(self.primary.fallback_cleared(self.tag, cleared)).await;
    }

    /// Forgets the oldest remembered entries that are no longer in line.
    async fn prune(&self) {
        let (Some(known), Some(fallback)) = (&self.known, &self.fallback) else { return };
        let front: Vec<Ticket> = lock(known)
            .by_seq
            .values()
            .map(|e| e.ticket.clone())
            .filter(|t| fallback.status_now(t) == TicketStatus::Unknown)
            .take(PRUNE_BATCH)
            .collect();
        if front.is_empty() {
            return;
        }
        if let Ok(held) = self.checked(|| self.primary.held(&front)).await {
            let mut known = lock(known);
            for (ticket, held) in front.iter().zip(held) {
                if !held {
                    known.forget(ticket);
                }
            }
        }
    }

    /// Moves the fallback queue's entries to the backend, oldest first, each at its own
    /// sequence; stops at the first failure (the rest stay, in order). The caller holds
    /// `fallback_turn`.
    async fn flush(&self, fallback: &MemoryWaitlist) {
        let mut flushed = 0;
        while let Some(entry) = fallback.first() {
            match self.checked(|| self.primary.enqueue(entry.clone())).await {
                Ok(queued) => {
                    fallback.remove(&entry.ticket);
                    self.primary_len.fetch_max(queued.position, Ordering::Relaxed);
                    flushed += 1;
                }
                Err(e) => {
                    if flushed > 0 {
                        tracing::info!(
                            flushed,
                            left = fallback.waiting_now(),
                            "the waitlist backend is failing again; keeping the rest in the fallback: {e}"
                        );
                    }
                    return;
                }
            }
        }
        if flushed > 0 {
            tracing::info!(flushed, "flushed the fallback waitlist to its backend, each entry at its own place");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
