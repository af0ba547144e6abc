//! The line as the server uses it: a [`WaitlistStore`] backend called through the
//! "database" circuit breaker, with an embedded fallback queue for a remote backend. While
//! the backend is unreachable (or its breaker open), new entries go to the fallback queue,
//! in order, and are flushed to the backend in that order once it answers again — nothing
//! is lost while the process lives. Entries in the fallback queue count after everything
//! in the backend when positions are computed, and they are admitted from it directly if
//! the backend stays down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::ids::Ticket;
use crate::protocol::SeatGrant;
use crate::store::waitlist::{MemoryWaitlist, TicketStatus, WaitEntry, WaitlistStore};
use crate::store::{Guarded, StoreError};

/// The waitlist behind its breaker, with the fallback queue.
pub struct Line {
    primary: Arc<dyn WaitlistStore>,
    breaker: CircuitBreaker,
    /// Only for a remote backend: where entries wait while it is unreachable.
    fallback: Option<MemoryWaitlist>,
    /// The backend's length at its last answer (for positions of fallback entries).
    primary_len: AtomicU64,
    /// How old an unfinished claim must be before it is taken back (`claim_lease_ms`).
    lease: Duration,
}

/// Where a claimed entry came from, so its completion goes back to the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The configured backend.
    Primary,
    /// The embedded fallback queue.
    Fallback,
}

impl Line {
    /// `primary` called through `breaker`; `remote` adds the fallback queue.
    pub fn new(
        primary: Arc<dyn WaitlistStore>,
        breaker: CircuitBreaker,
        remote: bool,
        ticket_ttl: Duration,
        lease: Duration,
    ) -> Self {
        Line {
            primary,
            breaker,
            fallback: remote.then(|| MemoryWaitlist::new(ticket_ttl)),
            primary_len: AtomicU64::new(0),
            lease,
        }
    }

    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        Guarded::new(self.breaker.clone()).call(call).await
    }

    async fn fallback_len(&self) -> u64 {
        match &self.fallback {
            Some(f) => f.len().await.unwrap_or(0),
            None => 0,
        }
    }

    /// Puts `entry` in line (idempotent per ticket); answers its 1-based position.
    pub async fn enqueue(&self, entry: WaitEntry) -> Result<u64, StoreError> {
        if let Some(fallback) = &self.fallback {
            // Once anything waits in the fallback queue, newcomers queue behind it.
            if self.fallback_len().await > 0 {
                let position = fallback.enqueue_now(entry);
                return Ok(self.primary_len.load(Ordering::Relaxed) + position);
            }
            return match self.guarded(self.primary.enqueue(entry.clone())).await {
                Ok(position) => {
                    self.primary_len.fetch_max(position, Ordering::Relaxed);
                    Ok(position)
                }
                Err(e) => {
                    tracing::warn!(ticket = %entry.ticket, "the waitlist backend failed; queueing in the embedded fallback until it is back: {e}");
                    Ok(self.primary_len.load(Ordering::Relaxed) + fallback.enqueue_now(entry))
                }
            };
        }
        self.guarded(self.primary.enqueue(entry)).await
    }

    /// Where `ticket` stands (and keeps it alive).
    pub async fn status(&self, ticket: &Ticket) -> Result<TicketStatus, StoreError> {
        if let Some(fallback) = &self.fallback {
            let _ = fallback.touch(ticket).await;
            match fallback.status(ticket).await? {
                TicketStatus::Waiting { position } => {
                    return Ok(TicketStatus::Waiting { position: self.primary_len.load(Ordering::Relaxed) + position })
                }
                TicketStatus::Unknown => {}
                other => return Ok(other),
            }
        }
        let _ = self.guarded(self.primary.touch(ticket)).await?;
        self.guarded(self.primary.status(ticket)).await
    }

    /// Takes `ticket` out of line. False when it was not waiting.
    pub async fn leave(&self, ticket: &Ticket) -> Result<bool, StoreError> {
        if let Some(fallback) = &self.fallback {
            if fallback.leave(ticket).await? {
                return Ok(true);
            }
        }
        self.guarded(self.primary.leave(ticket)).await
    }

    /// Claims the next entry: from the backend first (it holds the older entries), then
    /// from the fallback queue.
    pub async fn claim(&self) -> Result<Option<(WaitEntry, Source)>, StoreError> {
        match self.guarded(self.primary.claim()).await {
            Ok(Some(entry)) => return Ok(Some((entry, Source::Primary))),
            Ok(None) => {}
            Err(e) if self.fallback.is_none() => return Err(e),
            Err(_) => {}
        }
        match &self.fallback {
            Some(f) => Ok(f.claim().await?.map(|e| (e, Source::Fallback))),
            None => Ok(None),
        }
    }

    /// Records the grant of a claimed ticket.
    pub async fn complete(&self, ticket: &Ticket, grant: &SeatGrant, source: Source) -> Result<(), StoreError> {
        match (source, &self.fallback) {
            (Source::Fallback, Some(f)) => f.complete(ticket, grant).await,
            _ => match self.guarded(self.primary.complete(ticket, grant)).await {
                Ok(()) => Ok(()),
                Err(e) => match &self.fallback {
                    // Keep the grant where its owner can still collect it.
                    Some(f) => f.complete(ticket, grant).await.and(Err(e)),
                    None => Err(e),
                },
            },
        }
    }

    /// Recovery: entries claimed longer than the lease ago and never completed (a crash
    /// between claim and game creation) go back to the front.
    pub async fn requeue_processing(&self) -> Result<u64, StoreError> {
        self.guarded(self.primary.requeue_processing(self.lease)).await
    }

    /// Housekeeping: drops abandoned tickets, flushes the fallback queue to the backend in
    /// order when it answers, refreshes the cached length. Answers the players waiting.
    pub async fn maintain(&self) -> u64 {
        let _ = self.guarded(self.primary.expire()).await;
        match self.requeue_processing().await {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                tracing::warn!(requeued = n, "put waitlist entries whose admission never finished back at the front")
            }
        }
        if let Some(fallback) = &self.fallback {
            let _ = fallback.expire().await;
            if self.fallback_len().await > 0 {
                self.flush(fallback).await;
            }
        }
        if let Ok(n) = self.guarded(self.primary.len()).await {
            self.primary_len.store(n, Ordering::Relaxed);
        }
        self.primary_len.load(Ordering::Relaxed) + self.fallback_len().await
    }

    async fn flush(&self, fallback: &MemoryWaitlist) {
        let entries = fallback.drain();
        let total = entries.len();
        let mut rest = entries.into_iter();
        let mut flushed = 0;
        while let Some(entry) = rest.next() {
            if let Err(e) = self.guarded(self.primary.enqueue(entry.clone())).await {
                let mut back = vec![entry];
                back.extend(rest);
                fallback.restore_front(back);
                tracing::info!(
                    flushed,
                    left = total - flushed,
                    "the waitlist backend is still failing; keeping the rest in the fallback: {e}"
                );
                return;
            }
            flushed += 1;
        }
        tracing::info!(flushed, "flushed the fallback waitlist to its backend, in order");
    }
}
