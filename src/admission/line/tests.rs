//! The line's own rules, on an embedded backend behind a breaker forced open (the store
//! unreachable): fallback tickets name their queue, positions continue after the backend's
//! line and never go back, nobody is admitted while the backend is down (no game starts
//! without its lease, D17), and once the backend answers the queue is flushed at its
//! places and claimed in order.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Left, Line};
use crate::breaker::CircuitBreaker;
use crate::config::BreakerConfig;
use crate::ids::{now_rfc3339, Ticket};
use crate::metrics::Metrics;
use crate::protocol::Opponent;
use crate::store::waitlist::{MemoryWaitlist, TicketStatus, WaitEntry, WaitRequest, WaitlistStore};

const TTL: Duration = Duration::from_secs(600);

fn entry(name: &str) -> WaitEntry {
    WaitEntry {
        ticket: Ticket::random(),
        request: WaitRequest { kind: Default::default(), opponent: Opponent::Ai, player_name: name.to_owned() },
        enqueued_at: now_rfc3339(),
        seq: 0,
        shown: 0,
    }
}

fn line() -> (Line, Arc<MemoryWaitlist>, CircuitBreaker) {
    let primary = Arc::new(MemoryWaitlist::new(TTL));
    let breaker = CircuitBreaker::new("database", BreakerConfig::default());
    let line = Line::new(primary.clone(), breaker.clone(), true, TTL, TTL, 100, Arc::new(Metrics::default()));
    (line, primary, breaker)
}

fn waiting(position: u64) -> TicketStatus {
    TicketStatus::Waiting { position }
}

#[tokio::test]
async fn the_fallback_never_goes_ahead_of_older_entries_and_the_backend_takes_it_at_its_places() {
    let (line, primary, breaker) = line();
    let mut older = Vec::new();
    for name in ["o1", "o2"] {
        let (ticket, _) = line.enqueue(entry(name)).await.expect("enqueue");
        assert_eq!(ticket.fallback_origin(), None, "the backend's own ticket");
        older.push(ticket);
    }
    breaker.force_open();
    let mut own = Vec::new();
    for (i, name) in ["f1", "f2"].into_iter().enumerate() {
        let (ticket, position) = line.enqueue(entry(name)).await.expect("enqueue");
        assert_eq!(ticket.fallback_origin().map(|(tag, _)| tag), Some(line.tag), "names this queue");
        assert_eq!(position, 3 + i as u64, "after the backend's line");
        own.push(ticket);
    }
    assert_ne!(line.unreachable_since.load(Ordering::Acquire), 0, "the outage is noticed");
    assert_eq!(line.claim().await.expect("claim"), None, "older entries wait in the backend: nobody passes them");

    breaker.reset();
    let order = [&older[0], &older[1], &own[0], &own[1]];
    for expected in order {
        assert_eq!(line.claim().await.expect("claim").map(|e| e.ticket).as_ref(), Some(expected));
    }
    assert_eq!(primary.len().await, Ok(0), "flushed at their places, all claimed from the backend");
}

/// With the backend down nobody is admitted, even with nobody older waiting in it: no game
/// starts without its lease in the shared store (docs/DESIGN.md D17). Back, the fallback is
/// flushed at its places and claimed from the backend in order.
#[tokio::test]
async fn with_the_backend_down_the_fallback_holds_its_own_and_goes_in_order_once_it_answers() {
    let (line, primary, breaker) = line();
    breaker.force_open();
    let mut own = Vec::new();
    for name in ["f1", "f2", "f3"] {
        own.push(line.enqueue(entry(name)).await.expect("enqueue").0);
    }
    assert_eq!(line.claim().await.expect("claim"), None, "nobody is admitted while the backend is down");
    assert_eq!(line.status(&own[2]).await, Ok(waiting(3)));

    breaker.reset();
    line.maintain().await;
    assert_eq!(primary.status(&own[0]).await, Ok(waiting(1)), "flushed at its place");
    for expected in &own {
        let entry = line.claim().await.expect("claim").expect("an entry");
        assert_eq!(&entry.ticket, expected);
    }
}

#[tokio::test]
async fn a_ticket_of_this_queue_that_left_is_unknown_and_leaving_is_answered_from_the_right_place() {
    let (line, _, breaker) = line();
    breaker.force_open();
    let (ticket, _) = line.enqueue(entry("f")).await.expect("enqueue");
    assert_eq!(line.leave(&ticket).await, Ok(Left::Left));
    breaker.reset();
    assert_eq!(line.status(&ticket).await, Ok(TicketStatus::Unknown));
    assert_eq!(line.leave(&ticket).await, Ok(Left::NotWaiting));
    // Another process's fallback ticket: the embedded backend is never shared, so unknown.
    let theirs = Ticket::fallback(line.tag.wrapping_add(1), 1);
    assert_eq!(line.leave(&theirs).await, Ok(Left::NotWaiting));
}
