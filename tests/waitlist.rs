//! The waitlist contract (docs/DESIGN.md D6), run against both backends: the embedded
//! `MemoryWaitlist` and `RedisWaitlist` on a private redis-server per test. FIFO under
//! concurrent enqueues, no duplicates, exact positions, leaving, crash recovery, grants,
//! expiry; and, for Redis, failing fast while Redis is down and recovering when it returns.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::eventually;
use common::redis_server::RedisServer;
use futures_util::future::join_all;
use rampart::game::Seat;
use rampart::ids::{now_rfc3339, Ticket};
use rampart::protocol::{Opponent, SeatGrant};
use rampart::store::redis::waitlist::RedisWaitlist;
use rampart::store::waitlist::{MemoryWaitlist, Queued, TicketStatus, WaitEntry, WaitRequest, WaitlistStore};
use rampart::store::StoreError;

/// Long enough that nothing expires unless a test means it to.
const LONG_TTL: Duration = Duration::from_secs(600);
/// The expiry tests' ticket lifetime.
const SHORT_TTL: Duration = Duration::from_secs(1);
/// Generous for a local Redis, even on a busy machine running the tests in parallel.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(100);
use common::DEADLINE;

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    Redis,
}

/// A fresh, empty line. `store` and `peer` are two handles on it: for Redis two separate
/// connections (two server instances sharing one Redis); for memory the same map.
struct Backend {
    store: Arc<dyn WaitlistStore>,
    peer: Arc<dyn WaitlistStore>,
    ttl: Duration,
    prefix: String,
    redis: Option<RedisServer>,
}

fn unique_prefix() -> String {
    format!("test:{}", &Ticket::random().expose()[..12])
}

async fn connect(url: &str, prefix: &str, ttl: Duration, command_timeout: Duration) -> RedisWaitlist {
    RedisWaitlist::connect(url, prefix, ttl, command_timeout, RECONNECT_MAX_DELAY).await.expect("connect to test redis")
}

impl Kind {
    async fn open(self, ttl: Duration) -> Backend {
        let prefix = unique_prefix();
        match self {
            Kind::Memory => {
                let store: Arc<dyn WaitlistStore> = Arc::new(MemoryWaitlist::new(ttl));
                Backend { peer: store.clone(), store, ttl, prefix, redis: None }
            }
            Kind::Redis => {
                let server = RedisServer::start();
                let store = Arc::new(connect(&server.url(), &prefix, ttl, COMMAND_TIMEOUT).await);
                let peer = Arc::new(connect(&server.url(), &prefix, ttl, COMMAND_TIMEOUT).await);
                Backend { store, peer, ttl, prefix, redis: Some(server) }
            }
        }
    }
}

impl Backend {
    /// The line as a freshly started server process sees it: for Redis a new connection on
    /// the same keys; the embedded line lives only in this process, so it is the same map.
    async fn reopen(&self) -> Arc<dyn WaitlistStore> {
        match &self.redis {
            Some(server) => Arc::new(connect(&server.url(), &self.prefix, self.ttl, COMMAND_TIMEOUT).await),
            None => self.store.clone(),
        }
    }
}

fn entry(name: &str) -> WaitEntry {
    WaitEntry {
        ticket: Ticket::random(),
        request: WaitRequest { kind: Default::default(), opponent: Opponent::Ai, player_name: name.to_owned() },
        enqueued_at: now_rfc3339(),
        seq: 0,
        shown: 0,
    }
}

fn grant() -> SeatGrant {
    SeatGrant { game_id: "g-123".to_owned(), seat: Seat::Red, player_token: "f".repeat(64) }
}

async fn position(store: &Arc<dyn WaitlistStore>, ticket: &Ticket) -> TicketStatus {
    store.status(ticket).await.expect("status")
}

fn waiting(position: u64) -> TicketStatus {
    TicketStatus::Waiting { position }
}

async fn claimed(store: &Arc<dyn WaitlistStore>) -> Option<Ticket> {
    store.claim().await.expect("claim").map(|e| e.ticket)
}

// ---------------------------------------------------------------------------------------
// The contract, one async fn per behaviour.

async fn fifo_under_concurrent_enqueues(kind: Kind) {
    const N: usize = 200;
    let b = kind.open(LONG_TTL).await;
    let entries: Vec<WaitEntry> = (0..N).map(|i| entry(&format!("player{i}"))).collect();
    // Every enqueue at once, half through each instance.
    let calls = entries.iter().enumerate().map(|(i, e)| {
        let store = if i % 2 == 0 { b.store.clone() } else { b.peer.clone() };
        let e = e.clone();
        async move { store.enqueue(e).await.expect("enqueue") }
    });
    let queued = join_all(calls).await;
    let positions: Vec<u64> = queued.iter().map(|q| q.position).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=N as u64).collect::<Vec<_>>(), "each enqueue got its own position");
    let mut seqs: Vec<u64> = queued.iter().map(|q| q.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), N, "each enqueue got its own sequence");
    assert_eq!(b.store.len().await.expect("len"), N as u64);

    // The line is served in the order the positions promised.
    let mut by_position = vec![None; N];
    for (e, p) in entries.iter().zip(&positions) {
        by_position[(*p - 1) as usize] = Some(e.ticket.clone());
    }
    for (i, expected) in by_position.iter().take(N / 2).enumerate() {
        let store = if i % 2 == 0 { &b.store } else { &b.peer };
        let got = store.claim().await.expect("claim").expect("someone waits");
        assert_eq!(Some(&got.ticket), expected.as_ref(), "claim {i} out of order");
        let (original, q) = entries.iter().zip(&queued).find(|(e, _)| e.ticket == got.ticket).expect("known entry");
        assert_eq!(got, WaitEntry { seq: q.seq, ..original.clone() }, "the entry comes back with its sequence");
    }
    // The rest claimed concurrently by both instances: each exactly once.
    let calls = (0..N / 2 + 10).map(|i| {
        let store = if i % 2 == 0 { b.store.clone() } else { b.peer.clone() };
        async move { store.claim().await.expect("claim").map(|e| e.ticket) }
    });
    let rest: Vec<Ticket> = join_all(calls).await.into_iter().flatten().collect();
    assert_eq!(rest.len(), N / 2, "every remaining entry claimed once");
    let rest: HashSet<Ticket> = rest.into_iter().collect();
    let expected: HashSet<Ticket> = by_position[N / 2..].iter().flatten().cloned().collect();
    assert_eq!(rest, expected);
    assert_eq!(b.store.claim().await.expect("claim"), None);
    assert_eq!(b.store.len().await.expect("len"), 0);
}

async fn no_duplicates(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let (a, c) = (entry("a"), entry("c"));
    assert_eq!(b.store.enqueue(a.clone()).await.expect("enqueue").position, 1);
    assert_eq!(b.store.enqueue(c.clone()).await.expect("enqueue").position, 2);
    assert_eq!(b.store.enqueue(a.clone()).await.expect("enqueue").position, 1, "same ticket, same place");
    assert_eq!(b.peer.enqueue(c.clone()).await.expect("enqueue").position, 2, "idempotent across instances");
    assert_eq!(b.store.len().await.expect("len"), 2);
    assert_eq!(claimed(&b.store).await, Some(a.ticket.clone()));
    assert_eq!(b.store.enqueue(a.clone()).await.expect("enqueue").position, 0, "being processed: not queued again");
    assert_eq!(position(&b.store, &a.ticket).await, TicketStatus::Processing);
    assert_eq!(b.store.len().await.expect("len"), 1);
    assert_eq!(claimed(&b.store).await, Some(c.ticket));
    assert_eq!(claimed(&b.store).await, None, "nobody is in line twice");
}

async fn positions_are_exact(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let e: Vec<WaitEntry> = (0..5).map(|i| entry(&format!("p{i}"))).collect();
    for (i, x) in e.iter().enumerate() {
        assert_eq!(b.store.enqueue(x.clone()).await.expect("enqueue").position, i as u64 + 1);
    }
    for (i, x) in e.iter().enumerate() {
        assert_eq!(position(&b.peer, &x.ticket).await, waiting(i as u64 + 1));
    }
    assert!(b.store.leave(&e[2].ticket).await.expect("leave"));
    let expect = [waiting(1), waiting(2), TicketStatus::Unknown, waiting(3), waiting(4)];
    for (x, want) in e.iter().zip(expect) {
        assert_eq!(position(&b.store, &x.ticket).await, want, "after a leave");
    }
    assert_eq!(claimed(&b.store).await, Some(e[0].ticket.clone()));
    let expect = [TicketStatus::Processing, waiting(1), TicketStatus::Unknown, waiting(2), waiting(3)];
    for (x, want) in e.iter().zip(expect) {
        assert_eq!(position(&b.store, &x.ticket).await, want, "after a claim");
    }
    assert_eq!(b.store.len().await.expect("len"), 3);
    assert_eq!(b.store.enqueue(entry("late")).await.expect("enqueue").position, 4);
}

async fn leaving(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let (a, c) = (entry("a"), entry("c"));
    b.store.enqueue(a.clone()).await.expect("enqueue");
    b.store.enqueue(c.clone()).await.expect("enqueue");
    assert!(b.store.leave(&a.ticket).await.expect("leave"));
    assert!(!b.peer.leave(&a.ticket).await.expect("leave"), "already gone");
    assert!(!b.store.leave(&Ticket::random()).await.expect("leave"), "never issued");
    assert_eq!(position(&b.store, &a.ticket).await, TicketStatus::Unknown);
    assert!(!b.store.touch(&a.ticket).await.expect("touch"), "a ticket that left cannot be kept alive");
    assert_eq!(position(&b.store, &c.ticket).await, waiting(1));
    assert_eq!(b.store.len().await.expect("len"), 1);

    assert_eq!(claimed(&b.store).await, Some(c.ticket.clone()));
    assert!(!b.store.leave(&c.ticket).await.expect("leave"), "too late: its game is being created");
    assert_eq!(position(&b.store, &c.ticket).await, TicketStatus::Processing);

    // Coming back after leaving means the back of the line.
    assert_eq!(b.store.enqueue(entry("d")).await.expect("enqueue").position, 1);
    assert_eq!(b.store.enqueue(a.clone()).await.expect("enqueue").position, 2);
}

async fn crash_recovery(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let e: Vec<WaitEntry> = ["a", "b", "c", "d"].iter().map(|n| entry(n)).collect();
    for x in &e {
        b.store.enqueue(x.clone()).await.expect("enqueue");
    }
    assert_eq!(claimed(&b.store).await, Some(e[0].ticket.clone()));
    assert_eq!(claimed(&b.peer).await, Some(e[1].ticket.clone()));
    let late = entry("late");
    assert_eq!(b.store.enqueue(late.clone()).await.expect("enqueue").position, 3);
    // The process dies before creating either game: a new one starts and recovers.
    let restarted = b.reopen().await;
    assert_eq!(position(&restarted, &e[0].ticket).await, TicketStatus::Processing);
    // A claim younger than the lease may belong to a live instance: it stays.
    assert_eq!(restarted.requeue_processing(Duration::from_secs(60)).await.expect("requeue"), 0);
    assert_eq!(position(&restarted, &e[0].ticket).await, TicketStatus::Processing);
    assert_eq!(restarted.requeue_processing(Duration::ZERO).await.expect("requeue"), 2);
    assert_eq!(restarted.requeue_processing(Duration::ZERO).await.expect("requeue"), 0, "nothing left in processing");
    assert_eq!(restarted.len().await.expect("len"), 5);
    let order: Vec<&Ticket> = e.iter().map(|x| &x.ticket).chain([&late.ticket]).collect();
    // In order; but "late" was shown 3 before the claims went back: it stays there.
    for (i, (t, shown)) in order.iter().zip([1, 2, 3, 4, 3]).enumerate() {
        assert_eq!(position(&restarted, t).await, waiting(shown), "entry {i} after recovery");
    }
    for (i, t) in order.iter().enumerate() {
        assert_eq!(claimed(&restarted).await.as_ref(), Some(*t), "claim {i} after recovery");
    }
    assert_eq!(claimed(&restarted).await, None);
}

async fn complete_records_the_grant(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let e: Vec<WaitEntry> = ["a", "b", "c"].iter().map(|n| entry(n)).collect();
    for x in &e {
        b.store.enqueue(x.clone()).await.expect("enqueue");
    }
    assert_eq!(claimed(&b.store).await, Some(e[0].ticket.clone()));
    let g = grant();
    b.store.complete(&e[0].ticket, &g).await.expect("complete");
    assert_eq!(position(&b.peer, &e[0].ticket).await, TicketStatus::Admitted(g));
    assert_eq!(position(&b.store, &e[1].ticket).await, waiting(1));
    assert_eq!(position(&b.store, &e[2].ticket).await, waiting(2));
    assert_eq!(b.store.len().await.expect("len"), 2);
    assert_eq!(
        b.store.requeue_processing(Duration::ZERO).await.expect("requeue"),
        0,
        "a completed ticket is not re-queued"
    );
    assert_eq!(claimed(&b.store).await, Some(e[1].ticket.clone()));
    assert_eq!(claimed(&b.store).await, Some(e[2].ticket.clone()));
    assert_eq!(claimed(&b.store).await, None, "an admitted ticket is never claimed again");
}

async fn abandoned_tickets_expire(kind: Kind) {
    let b = kind.open(SHORT_TTL).await;
    let (idle, watched) = (entry("idle"), entry("watched"));
    b.store.enqueue(idle.clone()).await.expect("enqueue");
    b.store.enqueue(watched.clone()).await.expect("enqueue");
    let start = Instant::now();
    let dropped = std::cell::Cell::new(0);
    // The watched ticket is touched (as its watcher would); wait for the idle one to go.
    let probe = || async {
        assert!(b.peer.touch(&watched.ticket).await.expect("touch"), "a watched ticket stays alive");
        dropped.set(dropped.get() + b.store.expire().await.expect("expire"));
        match position(&b.store, &idle.ticket).await {
            TicketStatus::Unknown => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the idle ticket expires", probe).await;
    assert!(start.elapsed() >= SHORT_TTL - Duration::from_millis(100), "expired early: {:?}", start.elapsed());
    assert_eq!(dropped.get(), 1);
    assert_eq!(position(&b.store, &watched.ticket).await, waiting(1));
    assert_eq!(b.store.len().await.expect("len"), 1);
    assert!(!b.store.touch(&idle.ticket).await.expect("touch"), "an expired ticket cannot be revived");

    // Claim drops an abandoned ticket it meets on the way, without an `expire` pass.
    let (idle2, watched2) = (entry("idle2"), entry("watched2"));
    b.store.enqueue(idle2.clone()).await.expect("enqueue");
    let idle_since = Instant::now();
    b.store.enqueue(watched2.clone()).await.expect("enqueue");
    while idle_since.elapsed() < SHORT_TTL + Duration::from_millis(200) {
        assert!(b.store.touch(&watched.ticket).await.expect("touch"));
        assert!(b.store.touch(&watched2.ticket).await.expect("touch"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(claimed(&b.store).await, Some(watched.ticket));
    assert_eq!(claimed(&b.store).await, Some(watched2.ticket), "the abandoned ticket was skipped");
    assert_eq!(claimed(&b.store).await, None);
    assert_eq!(position(&b.store, &idle2.ticket).await, TicketStatus::Unknown);
}

/// An entry given a sequence keeps it (its place), whatever order entries arrive in; the
/// store's own sequence continues after the highest given.
async fn given_sequences_are_places(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let (x, y, z) = (entry("x"), entry("y"), entry("z"));
    assert_eq!(b.store.enqueue(WaitEntry { seq: 10, ..x.clone() }).await, Ok(Queued { seq: 10, position: 1 }));
    assert_eq!(b.store.enqueue(WaitEntry { seq: 5, ..y.clone() }).await, Ok(Queued { seq: 5, position: 1 }));
    let zq = b.store.enqueue(z.clone()).await.expect("enqueue");
    assert!(zq.seq > 10 && zq.position == 3, "{zq:?}");
    assert_eq!(b.store.known_seq(), zq.seq);
    // y went ahead of x, but x was shown 1: a place never goes backwards.
    assert_eq!(position(&b.store, &x.ticket).await, waiting(1));
    assert_eq!(b.store.entry(&x.ticket).await, Ok(Some(WaitEntry { seq: 10, ..x.clone() })));
    assert_eq!(b.store.entry(&Ticket::random()).await, Ok(None));
    let order: Vec<Option<Ticket>> = vec![claimed(&b.store).await, claimed(&b.store).await, claimed(&b.store).await];
    assert_eq!(order, [Some(y.ticket), Some(x.ticket), Some(z.ticket.clone())]);
    assert_eq!(b.store.held(&[z.ticket.clone(), Ticket::random()]).await, Ok(vec![true, false]), "processing is held");
}

/// `restore` puts back only what is neither in line nor admitted, each at its own place.
async fn restore_puts_back_only_what_is_missing(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let e: Vec<WaitEntry> = ["a", "b", "c"].iter().map(|n| entry(n)).collect();
    let mut kept = Vec::new();
    for x in &e {
        let q = b.store.enqueue(x.clone()).await.expect("enqueue");
        kept.push(WaitEntry { seq: q.seq, ..x.clone() });
    }
    let first = b.store.claim().await.expect("claim").expect("a");
    b.store.complete(&first.ticket, &grant()).await.expect("complete");
    assert!(b.store.leave(&e[2].ticket).await.expect("leave"));
    // a is admitted, b waits, c left: only c comes back, behind b.
    assert_eq!(b.store.restore(kept.clone()).await, Ok(1));
    assert_eq!(position(&b.store, &e[1].ticket).await, waiting(1));
    assert_eq!(position(&b.store, &e[2].ticket).await, waiting(2));
    assert_eq!(b.store.restore(kept).await, Ok(0), "idempotent");
}

/// A place never goes backwards: entries merged in ahead of a ticket (a fallback queue's,
/// at their own earlier sequences) and a claim put back leave its position where it was
/// shown, through either handle; it moves down again once the line passes it. An entry
/// carries the position its fallback queue showed, and the store never shows more.
async fn a_place_never_goes_backwards(kind: Kind) {
    let b = kind.open(LONG_TTL).await;
    let (a, c) = (WaitEntry { seq: 10, ..entry("a") }, WaitEntry { seq: 20, ..entry("c") });
    let aq = b.store.enqueue(a.clone()).await.expect("enqueue");
    let cq = b.store.enqueue(c.clone()).await.expect("enqueue");
    assert_eq!((aq.position, cq.position), (1, 2));
    // Two entries another instance held during an outage, issued between a and c.
    for (name, seq) in [("m1", 14), ("m2", 15)] {
        b.peer.enqueue(WaitEntry { seq, ..entry(name) }).await.expect("merge");
    }
    assert_eq!(position(&b.peer, &c.ticket).await, waiting(2), "c ranks 4th now, but was shown 2");
    assert_eq!(position(&b.store, &c.ticket).await, waiting(2));
    // A claim put back: c stays at 2 all the same.
    assert_eq!(claimed(&b.store).await, Some(a.ticket.clone()));
    assert_eq!(b.store.requeue_processing(Duration::ZERO).await, Ok(1));
    assert_eq!(position(&b.store, &c.ticket).await, waiting(2));
    // The line passes it: 4th, 3rd, then 2nd is no change, then 1st.
    for _ in 0..2 {
        claimed(&b.store).await.expect("a claim");
        assert_eq!(position(&b.peer, &c.ticket).await, waiting(2));
    }
    claimed(&b.store).await.expect("a claim");
    assert_eq!(position(&b.store, &c.ticket).await, waiting(1));

    // An entry from a fallback queue that showed it 1: it ranks 2nd here, and shows 1.
    let late = WaitEntry { shown: 1, seq: cq.seq + 1, ..entry("late") };
    assert_eq!(b.store.enqueue(late.clone()).await.expect("enqueue").position, 1);
    assert_eq!(position(&b.peer, &late.ticket).await, waiting(1));
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Kind::Memory).await
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Kind::Redis).await
            })*
        }
    };
}

on_both_backends!(
    fifo_under_concurrent_enqueues,
    no_duplicates,
    positions_are_exact,
    leaving,
    crash_recovery,
    complete_records_the_grant,
    abandoned_tickets_expire,
    given_sequences_are_places,
    restore_puts_back_only_what_is_missing,
    a_place_never_goes_backwards,
);

/// A ticket another instance's fallback queue issued, which Redis does not hold, is
/// `Elsewhere` (ask again) until that queue says it is cleared past it, then `Unknown`; one
/// issued longer than `ticket_ttl` ago by a queue never heard from is `Unknown` at once.
/// The embedded store is never shared: such a ticket is simply unknown there.
#[tokio::test]
async fn a_ticket_another_instance_may_hold_is_elsewhere_until_its_queue_says_otherwise() {
    let memory = Kind::Memory.open(LONG_TTL).await;
    let now_micros = rampart::ids::unix_micros();
    assert_eq!(position(&memory.store, &Ticket::fallback(7, now_micros)).await, TicketStatus::Unknown);

    let b = Kind::Redis.open(SHORT_TTL).await;
    let held = Ticket::fallback(7, now_micros);
    assert_eq!(position(&b.store, &held).await, TicketStatus::Elsewhere, "just issued, nothing said of it");
    b.peer.fallback_cleared(7, now_micros - 1).await.expect("cleared");
    assert_eq!(position(&b.store, &held).await, TicketStatus::Elsewhere, "cleared only up to before it");
    b.peer.fallback_cleared(7, now_micros).await.expect("cleared");
    assert_eq!(position(&b.store, &held).await, TicketStatus::Unknown, "its queue holds it no more");
    b.peer.fallback_cleared(7, 1).await.expect("an older word");
    assert_eq!(position(&b.store, &held).await, TicketStatus::Unknown, "what a queue cleared stays cleared");

    let old = Ticket::fallback(8, now_micros - 2 * SHORT_TTL.as_micros() as u64);
    assert_eq!(position(&b.store, &old).await, TicketStatus::Unknown, "old, and its queue never heard from");
    b.peer.fallback_cleared(8, 0).await.expect("alive");
    assert_eq!(position(&b.store, &old).await, TicketStatus::Elsewhere, "its queue lives and has not cleared it");
    assert_eq!(position(&b.store, &Ticket::random()).await, TicketStatus::Unknown, "not a fallback ticket");
}

// ---------------------------------------------------------------------------------------
// Redis only: the backend going away and coming back.

/// Runs `call` while Redis is down: it must fail with a backend error within `bound`, and
/// its message must not show the full ticket `secret`.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
    secret: &str,
    bound: Duration,
) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    match result {
        Err(StoreError::Backend(message)) => {
            assert!(!message.contains(secret), "{what}: the error shows a full ticket: {message}")
        }
        other => panic!("{what}: expected a backend error while Redis is down, got {other:?}"),
    }
    assert!(took < bound, "{what}: failing took {took:?}, more than {bound:?}");
}

#[tokio::test]
async fn redis_down_fails_fast_and_recovers_when_it_returns() {
    let command_timeout = Duration::from_millis(300);
    let mut server = RedisServer::start();
    let store = connect(&server.url(), &unique_prefix(), LONG_TTL, command_timeout).await;
    let a = entry("a");
    let queued = store.enqueue(a.clone()).await.expect("enqueue");
    assert_eq!(queued.position, 1);
    let a_seq = queued.seq;

    server.stop();
    // Every call fails with a StoreError within about the command timeout: none hangs on
    // the connection manager's reconnect backoff.
    let bound = command_timeout + Duration::from_millis(500);
    for _ in 0..2 {
        let secret = a.ticket.expose();
        fails_fast("enqueue", store.enqueue(entry("b")), secret, bound).await;
        fails_fast("status", store.status(&a.ticket), secret, bound).await;
        fails_fast("claim", store.claim(), secret, bound).await;
        fails_fast("touch", store.touch(&a.ticket), secret, bound).await;
        fails_fast("leave", store.leave(&a.ticket), secret, bound).await;
        fails_fast("complete", store.complete(&a.ticket, &grant()), secret, bound).await;
        fails_fast("requeue_processing", store.requeue_processing(Duration::ZERO), secret, bound).await;
        fails_fast("expire", store.expire(), secret, bound).await;
        fails_fast("len", store.len(), secret, bound).await;
        fails_fast("ping", store.ping(), secret, bound).await;
    }

    server.restart();
    let probe = || async { store.ping().await.map_err(|e| e.to_string()) };
    eventually(DEADLINE, "the store reconnects", probe).await;
    // The test server keeps nothing across a restart: the store says it lost the line
    // until the caller puts back what it knows, then works.
    assert_eq!(store.enqueue(entry("c")).await, Err(StoreError::Reset));
    assert_eq!(store.restore(vec![WaitEntry { seq: a_seq, ..a.clone() }]).await, Ok(1));
    let c = entry("c");
    assert_eq!(store.enqueue(c.clone()).await.expect("enqueue after restart").position, 2);
    assert_eq!(store.status(&c.ticket).await.expect("status"), waiting(2));
    assert_eq!(store.claim().await.expect("claim").map(|e| e.ticket), Some(a.ticket));
}

#[tokio::test]
async fn redis_line_survives_a_new_connection() {
    let b = Kind::Redis.open(LONG_TTL).await;
    let e: Vec<WaitEntry> = ["a", "b", "c"].iter().map(|n| entry(n)).collect();
    for x in &e {
        b.store.enqueue(x.clone()).await.expect("enqueue");
    }
    // Another server instance (or this one after a restart) sees the same line.
    let fresh = b.reopen().await;
    assert_eq!(fresh.len().await.expect("len"), 3);
    for (i, x) in e.iter().enumerate() {
        assert_eq!(position(&fresh, &x.ticket).await, waiting(i as u64 + 1));
    }
    let next = fresh.claim().await.expect("claim").expect("an entry");
    assert_eq!(next, WaitEntry { seq: next.seq, ..e[0].clone() }, "the entry's data survives intact");
    assert!(next.seq > 0);
}

/// Redis restarted empty, or from an older copy: every handle that knew the line answers
/// Reset (never a wrong position or an empty line) until it restored what it knows; each
/// handle puts back its own entries, at their own places; a handle that never saw the
/// old line just uses the new one.
#[tokio::test]
async fn a_redis_that_forgets_is_noticed_by_every_handle_and_each_restores_its_own() {
    let mut server = RedisServer::start();
    let prefix = unique_prefix();
    let a_side = connect(&server.url(), &prefix, LONG_TTL, COMMAND_TIMEOUT).await;
    let b_side = connect(&server.url(), &prefix, LONG_TTL, COMMAND_TIMEOUT).await;
    let e: Vec<WaitEntry> = ["a1", "b1", "a2", "b2"].iter().map(|n| entry(n)).collect();
    let mut kept = Vec::new();
    for (i, x) in e.iter().enumerate() {
        let side = if i % 2 == 0 { &a_side } else { &b_side };
        let q = side.enqueue(x.clone()).await.expect("enqueue");
        kept.push(WaitEntry { seq: q.seq, ..x.clone() });
    }
    assert_eq!(a_side.known_seq(), kept[2].seq, "a saw the sequence up to its last entry");

    server.restart(); // empty
    let probe = || async { a_side.ping().await.map_err(|e| e.to_string()) };
    eventually(DEADLINE, "the store reconnects", probe).await;
    assert_eq!(a_side.status(&e[0].ticket).await, Err(StoreError::Reset), "not Unknown: the line was lost");
    assert_eq!(a_side.claim().await, Err(StoreError::Reset), "not an empty line");
    assert_eq!(a_side.len().await, Err(StoreError::Reset));
    assert_eq!(a_side.restore(vec![kept[0].clone(), kept[2].clone()]).await, Ok(2));
    // The other handle notices too (the line's id changed), and puts back its own.
    // (Its connection broke with the restart: its first command may fail and reconnect.)
    let probe = || async {
        match b_side.status(&e[1].ticket).await {
            Err(StoreError::Reset) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the other handle notices the lost line", probe).await;
    assert_eq!(b_side.restore(vec![kept[1].clone(), kept[3].clone(), kept[0].clone()]).await, Ok(2), "a1 is back");
    for (i, x) in e.iter().enumerate() {
        assert_eq!(
            position(
                &(Arc::new(connect(&server.url(), &prefix, LONG_TTL, COMMAND_TIMEOUT).await) as Arc<dyn WaitlistStore>),
                &x.ticket
            )
            .await,
            waiting(i as u64 + 1)
        );
    }
    // New entries come after every entry put back.
    let late = entry("late");
    let late_q = a_side.enqueue(late.clone()).await.expect("enqueue");
    assert!(late_q.seq > kept[3].seq && late_q.position == 5, "{late_q:?}");

    // An older copy: the sequence went back (the last second of an append-only file lost).
    let mut con =
        ::redis::Client::open(server.url()).expect("client").get_multiplexed_async_connection().await.expect("con");
    let key = format!("{{{prefix}}}:seq");
    let _: () = ::redis::cmd("SET").arg(&key).arg(kept[3].seq).query_async(&mut con).await.expect("set");
    let _: () = ::redis::cmd("ZREM")
        .arg(format!("{{{prefix}}}:waiting"))
        .arg(late.ticket.expose())
        .query_async(&mut con)
        .await
        .expect("zrem");
    assert_eq!(a_side.len().await, Err(StoreError::Reset), "the sequence went back");
    assert_eq!(a_side.restore(vec![WaitEntry { seq: late_q.seq, ..late.clone() }]).await, Ok(1));
    assert_eq!(a_side.status(&late.ticket).await, Ok(waiting(5)));
}
