//! The breaker's state machine and its counters: the state (one atomic the closed path
//! loads), the transitions (closed → open → half-open → closed, under a small mutex, each
//! told to the listener), forcing by an admin, the failure-rate window, the per-thread
//! counter shards and the duration histogram, and the clock the open periods are timed by.
//! The handle and its permits (`super::handle`) drive it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{BreakerError, BreakerMetrics, BreakerState, Listener, Transition, DURATION_BUCKETS_SECS, SAMPLE_EVERY};
use crate::config::{BreakerConfig, FailureRate};
use crate::protocol::views::CallCounts;

const SHARDS: usize = 16;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
const NOT_FORCED: u8 = 0;

impl BreakerState {
    fn from_u8(v: u8) -> Self {
        match v {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }
}

// Counter slots in a shard.
const SUCCESS: usize = 0;
const FAILURE: usize = 1;
const TIMEOUT: usize = 2;
const REJECTED: usize = 3;
const IGNORED: usize = 4;
const SLOW: usize = 5;

/// One thread's counters, on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    calls: [AtomicU64; 6],
    buckets: [AtomicU64; DURATION_BUCKETS_SECS.len() + 1],
    sum_ns: AtomicU64,
}

// Const-initialised thread locals: reading one is a plain load, with no lazy-init check.
thread_local! {
    static SHARD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    static SAMPLE_TICK: Cell<u32> = const { Cell::new(0) };
}

#[inline]
pub(super) fn shard_index() -> usize {
    let i = SHARD_INDEX.with(Cell::get);
    if i != usize::MAX {
        return i;
    }
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let i = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    SHARD_INDEX.with(|c| c.set(i));
    i
}

#[inline]
pub(super) fn sample_now() -> bool {
    SAMPLE_TICK.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n % SAMPLE_EVERY == 0
    })
}

/// The failure-rate window: the last `n` outcomes in a ring, with a running failure count
/// kept consistent with the ring's contents by swapping slots.
struct Window {
    rate: FailureRate,
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    failures: AtomicU32,
}

const EMPTY: u8 = 0;
const OK: u8 = 1;
const FAILED: u8 = 2;

impl Window {
    fn new(rate: FailureRate) -> Self {
        let slots = (0..rate.window_calls.max(1)).map(|_| AtomicU8::new(EMPTY)).collect();
        Window { rate, slots, next: AtomicU64::new(0), failures: AtomicU32::new(0) }
    }

    /// Records one outcome; true when the rate now trips the breaker.
    fn record(&self, failed: bool) -> bool {
        let i = (self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64) as usize;
        let new = if failed { FAILED } else { OK };
        let old = self.slots[i].swap(new, Ordering::Relaxed);
        if old == FAILED && !failed {
            self.failures.fetch_sub(1, Ordering::Relaxed);
        } else if old != FAILED && failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        failed && self.rate_pct().is_some_and(|pct| pct >= self.rate.threshold_pct)
    }

    fn calls(&self) -> u64 {
        self.next.load(Ordering::Relaxed).min(self.slots.len() as u64)
    }

    fn rate_pct(&self) -> Option<f64> {
        let calls = self.calls();
        (calls >= u64::from(self.rate.min_calls) && calls > 0)
            .then(|| f64::from(self.failures.load(Ordering::Relaxed)) * 100.0 / calls as f64)
    }

    fn clear(&self) {
        for slot in self.slots.iter() {
            if slot.swap(EMPTY, Ordering::Relaxed) == FAILED {
                self.failures.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.next.store(0, Ordering::Relaxed);
    }
}

/// Where the breaker reads the time for its open periods.
pub(super) enum Clock {
    Real(Instant),
    Manual(Arc<AtomicU64>),
}

/// A clock that tests advance by hand (see [`super::CircuitBreaker::with_manual_clock`]).
#[derive(Clone)]
pub struct ManualClock(pub(super) Arc<AtomicU64>);

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

/// One breaker's state and counters, shared by every handle to it.
pub(super) struct Inner {
    pub(super) name: Arc<str>,
    pub(super) config: BreakerConfig,
    /// Enabled and without a slow-call threshold: closed calls need not all be timed.
    pub(super) untimed_ok: bool,
    clock: Clock,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`: the only thing the closed path reads.
    state: AtomicU8,
    /// `NOT_FORCED`, or the forced state + 1.
    forced: AtomicU8,
    consecutive_failures: AtomicU32,
    window: Option<Window>,
    /// Clock ms at which an open breaker lets a probe through.
    open_until_ms: AtomicU64,
    /// Failed probes in a row: the exponent of the open period's growth.
    open_level: AtomicU32,
    /// Changes at every transition, so a late probe cannot act on a later episode.
    episode: AtomicU64,
    probes_in_flight: AtomicU32,
    probe_successes: AtomicU32,
    transitions: AtomicU64,
    shards: Box<[Shard]>,
    transition_lock: Mutex<()>,
    listener: OnceLock<Listener>,
}

/// What a permit stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Disabled breaker: counted, nothing else.
    Pass,
    /// A call admitted while closed.
    Closed,
    /// A probe admitted while half-open, in this episode.
    Probe(u64),
}

/// Why a failed call failed, in words for the log: asked only when the failure moves the
/// breaker (it trips, or a probe reopens it), so a call that changes nothing formats nothing.
pub(super) type Cause<'a> = &'a dyn Fn() -> Option<String>;

/// A call that says nothing about its failure.
pub(super) fn no_cause() -> Option<String> {
    None
}

/// How a permit finished (adds timeout and cancellation to [`Outcome`](super::Outcome)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    /// The dependency worked.
    Success,
    /// The dependency failed.
    Failure,
    /// Neither.
    Ignored,
    /// Cut, or overrun, by the call timeout.
    Timeout,
    /// Dropped before it finished.
    Cancelled,
}

impl Inner {
    /// A closed breaker named `name`, timing its open periods by `clock`.
    pub(super) fn new(name: &str, config: BreakerConfig, clock: Clock) -> Self {
        let window = config.failure_rate().map(Window::new);
        Inner {
            name: name.into(),
            untimed_ok: config.enabled && config.slow_call_ms.is_none(),
            clock,
            state: AtomicU8::new(CLOSED),
            forced: AtomicU8::new(NOT_FORCED),
            consecutive_failures: AtomicU32::new(0),
            window,
            open_until_ms: AtomicU64::new(0),
            open_level: AtomicU32::new(0),
            episode: AtomicU64::new(0),
            probes_in_flight: AtomicU32::new(0),
            probe_successes: AtomicU32::new(0),
            transitions: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            transition_lock: Mutex::new(()),
            listener: OnceLock::new(),
            config,
        }
    }

    /// The episode running now (it changes at every transition).
    #[cfg(test)]
    pub(super) fn episode(&self) -> u64 {
        self.episode.load(Ordering::SeqCst)
    }

    /// Sets the one listener that receives every transition. Later calls are ignored.
    pub(super) fn set_listener(&self, listener: Listener) {
        let _ = self.listener.set(listener);
    }

    /// Whether it is closed: the one load the closed path makes.
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// An untimed success while closed: one counter, and the failure streak ends.
    #[inline]
    pub(super) fn closed_success(&self) {
        self.shards[shard_index()].calls[SUCCESS].fetch_add(1, Ordering::Relaxed);
        if let Some(w) = &self.window {
            w.record(false);
        }
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    fn now_ms(&self) -> u64 {
        match &self.clock {
            Clock::Real(epoch) => epoch.elapsed().as_millis() as u64,
            Clock::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.transition_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn forced(&self) -> Option<BreakerState> {
        match self.forced.load(Ordering::Acquire) {
            NOT_FORCED => None,
            v => Some(BreakerState::from_u8(v - 1)),
        }
    }

    fn count(&self, slot: usize) {
        self.shards[shard_index()].calls[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The open period after `level` failed probes in a row, with jitter, in ms.
    fn open_period_ms(&self, level: u32) -> u64 {
        let c = &self.config;
        let base = (c.open_secs * c.open_multiplier.powi(level.min(64) as i32)).min(c.open_max_secs.max(c.open_secs));
        let factor = if c.jitter > 0.0 { 1.0 + c.jitter * (fastrand::f64() * 2.0 - 1.0) } else { 1.0 };
        (base * factor * 1000.0).max(1.0) as u64
    }

    /// Moves to `to` (caller holds the lock) and tells the listener after unlocking.
    fn set_state(&self, to: u8) -> BreakerState {
        self.episode.fetch_add(1, Ordering::AcqRel);
        BreakerState::from_u8(self.state.swap(to, Ordering::AcqRel))
    }

    fn announce(&self, from: BreakerState, to: BreakerState, reason: String) {
        if from == to {
            return;
        }
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let t = Transition { name: self.name.clone(), from, to, reason, at_ms: self.now_ms() };
        if let Some(listener) = self.listener.get() {
            listener(&t);
        }
    }

    fn open(&self, level: u32) -> BreakerState {
        self.open_level.store(level, Ordering::Relaxed);
        self.open_until_ms.store(self.now_ms().saturating_add(self.open_period_ms(level)), Ordering::Release);
        self.set_state(OPEN)
    }

    fn clear_failures(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if let Some(w) = &self.window {
            w.clear();
        }
    }

    /// Closed → open, unless another thread got there first or an admin forced it closed.
    fn trip(&self, reason: String) {
        let guard = self.lock();
        if self.state() != BreakerState::Closed || self.forced().is_some() {
            return;
        }
        let from = self.open(0);
        drop(guard);
        self.announce(from, BreakerState::Open, reason);
    }

    /// Half-open → open after a failed probe, with a longer open period. `why` (the probe's
    /// failure) is told once, with the open period it starts.
    fn reopen(&self, episode: u64, why: String) {
        let guard = self.lock();
        if self.state() != BreakerState::HalfOpen || self.episode.load(Ordering::Acquire) != episode {
            return;
        }
        let level = self.open_level.load(Ordering::Relaxed).saturating_add(1);
        let from = self.open(level);
        let period = self.open_until_ms.load(Ordering::Acquire).saturating_sub(self.now_ms());
        drop(guard);
        self.announce(from, BreakerState::Open, format!("{why}; open for {period} ms"));
    }

    fn probe_succeeded(&self, episode: u64) {
        let needed = self.config.half_open_successes_to_close.max(1);
        if self.episode.load(Ordering::Acquire) != episode {
            return;
        }
        if self.probe_successes.fetch_add(1, Ordering::AcqRel) + 1 < needed {
            return;
        }
        let guard = self.lock();
        if self.state() != BreakerState::HalfOpen || self.episode.load(Ordering::Acquire) != episode {
            return;
        }
        self.clear_failures();
        self.open_level.store(0, Ordering::Relaxed);
        let from = self.set_state(CLOSED);
        drop(guard);
        self.announce(from, BreakerState::Closed, format!("{needed} probe call(s) succeeded"));
    }

    /// Open → half-open once the open period is over; then tries to take a probe slot.
    pub(super) fn acquire_slow(&self) -> Result<Kind, BreakerError<std::convert::Infallible>> {
        loop {
            match self.state() {
                BreakerState::Closed => return Ok(Kind::Closed),
                BreakerState::Open => {
                    if self.forced() == Some(BreakerState::Open) {
                        self.count(REJECTED);
                        return Err(BreakerError::Rejected { state: BreakerState::Open, retry_after_ms: None });
                    }
                    let now = self.now_ms();
                    let until = self.open_until_ms.load(Ordering::Acquire);
                    if now < until {
                        self.count(REJECTED);
                        return Err(BreakerError::Rejected {
                            state: BreakerState::Open,
                            retry_after_ms: Some(until - now),
                        });
                    }
                    let guard = self.lock();
                    if self.state() == BreakerState::Open && self.forced().is_none() && self.now_ms() >= until {
                        self.probe_successes.store(0, Ordering::Release);
                        let from = self.set_state(HALF_OPEN);
                        drop(guard);
                        self.announce(from, BreakerState::HalfOpen, "the open period is over".to_owned());
                    }
                }
                BreakerState::HalfOpen => {
                    let episode = self.episode.load(Ordering::Acquire);
                    let max = self.config.half_open_max_probes.max(1);
                    let taken = self
                        .probes_in_flight
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
                    if taken.is_err() {
                        self.count(REJECTED);
                        return Err(BreakerError::Rejected {
                            state: BreakerState::HalfOpen,
                            retry_after_ms: Some(self.config.call_timeout_ms),
                        });
                    }
                    if self.state() == BreakerState::HalfOpen && self.episode.load(Ordering::Acquire) == episode {
                        return Ok(Kind::Probe(episode));
                    }
                    // The state moved on while we took the slot: give it back and look again.
                    self.probes_in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Counts a call of `kind` that finished `how` (timed from `started`, when it was
    /// timed) and moves the state as that outcome asks.
    #[inline(never)]
    pub(super) fn finish(&self, kind: Kind, started: Option<Instant>, mut how: Finish, cause: Cause<'_>) {
        let inner = self;
        let shard = &inner.shards[shard_index()];
        if let Some(started) = started {
            let elapsed = started.elapsed();
            let ns = elapsed.as_nanos().min(u128::from(u64::MAX)) as u64;
            let secs = elapsed.as_secs_f64();
            let bucket = DURATION_BUCKETS_SECS.iter().position(|le| secs <= *le).unwrap_or(DURATION_BUCKETS_SECS.len());
            shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
            shard.sum_ns.fetch_add(ns, Ordering::Relaxed);
            let ms = ns / 1_000_000;
            if matches!(how, Finish::Success | Finish::Failure) && ms >= inner.config.call_timeout_ms {
                how = Finish::Timeout; // a synchronous call cannot be cut; its overrun still counts
            } else if how == Finish::Success && inner.config.slow_call_ms.is_some_and(|slow| ms >= slow) {
                shard.calls[SLOW].fetch_add(1, Ordering::Relaxed);
                how = Finish::Failure;
            }
        }
        let slot = match how {
            Finish::Success => SUCCESS,
            Finish::Failure => FAILURE,
            Finish::Timeout => TIMEOUT,
            Finish::Ignored | Finish::Cancelled => IGNORED,
        };
        shard.calls[slot].fetch_add(1, Ordering::Relaxed);
        let failed = matches!(how, Finish::Failure | Finish::Timeout);
        match kind {
            Kind::Pass => {}
            Kind::Closed => match how {
                Finish::Success => {
                    let rate_trips = inner.window.as_ref().is_some_and(|w| w.record(false));
                    debug_assert!(!rate_trips);
                    if inner.consecutive_failures.load(Ordering::Relaxed) != 0 {
                        inner.consecutive_failures.store(0, Ordering::Relaxed);
                    }
                }
                Finish::Failure | Finish::Timeout => {
                    let n = inner.consecutive_failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                    let rate_trips = inner.window.as_ref().is_some_and(|w| w.record(true));
                    if n >= inner.config.failure_threshold {
                        let why = format!("{n} consecutive failures (threshold {})", inner.config.failure_threshold);
                        inner.trip(with_last(why, how, inner.config.call_timeout_ms, cause));
                    } else if rate_trips {
                        let pct = inner.window.as_ref().and_then(Window::rate_pct).unwrap_or(0.0);
                        let why = format!("failure rate {pct:.0}% over the last calls");
                        inner.trip(with_last(why, how, inner.config.call_timeout_ms, cause));
                    }
                }
                Finish::Ignored | Finish::Cancelled => {}
            },
            Kind::Probe(episode) => {
                inner.probes_in_flight.fetch_sub(1, Ordering::AcqRel);
                if failed {
                    let why = match (how, cause()) {
                        (Finish::Timeout, _) => {
                            format!("a probe call timed out (after {} ms)", inner.config.call_timeout_ms)
                        }
                        (_, Some(cause)) => format!("a probe call failed: {cause}"),
                        (_, None) => "a probe call failed".to_owned(),
                    };
                    inner.reopen(episode, why);
                } else if how == Finish::Success {
                    inner.probe_succeeded(episode);
                }
            }
        }
    }

    /// Time left before an open breaker lets a probe through: `None` unless it is open by
    /// itself (closed, half-open, or forced open by an admin).
    pub(super) fn open_remaining_ms(&self) -> Option<u64> {
        (self.state() == BreakerState::Open && self.forced().is_none())
            .then(|| self.open_until_ms.load(Ordering::Acquire).saturating_sub(self.now_ms()))
    }

    /// Forces `forced` (`None`: clears any forcing and every failure count), says why.
    pub(super) fn force(&self, forced: Option<BreakerState>, reason: &str) {
        let inner = self;
        let guard = inner.lock();
        inner.forced.store(forced.map_or(NOT_FORCED, |s| s as u8 + 1), Ordering::Release);
        inner.open_level.store(0, Ordering::Relaxed);
        let from = if forced == Some(BreakerState::Open) {
            inner.open_until_ms.store(u64::MAX, Ordering::Release);
            inner.set_state(OPEN)
        } else {
            inner.clear_failures();
            inner.set_state(CLOSED)
        };
        let to = inner.state();
        drop(guard);
        inner.announce(from, to, reason.to_owned());
    }

    /// A snapshot of the counters.
    pub(super) fn metrics(&self) -> BreakerMetrics {
        let inner = self;
        let sum = |slot: usize| inner.shards.iter().map(|s| s.calls[slot].load(Ordering::Relaxed)).sum();
        let forced = inner.forced();
        let open_remaining_ms = inner.open_remaining_ms();
        BreakerMetrics {
            calls: CallCounts {
                success: sum(SUCCESS),
                failure: sum(FAILURE),
                timeout: sum(TIMEOUT),
                rejected: sum(REJECTED),
                ignored: sum(IGNORED),
                slow: sum(SLOW),
            },
            transitions: inner.transitions.load(Ordering::Relaxed),
            consecutive_failures: inner.consecutive_failures.load(Ordering::Relaxed),
            failure_rate_pct: inner.window.as_ref().and_then(Window::rate_pct),
            probes_in_flight: inner.probes_in_flight.load(Ordering::Acquire),
            open_remaining_ms,
            forced,
        }
    }

    /// The duration histogram: cumulative `(upper bound in seconds, count)` pairs, the total
    /// count and the sum in seconds.
    pub(super) fn histogram(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let shards = &self.shards;
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(DURATION_BUCKETS_SECS.len());
        for (i, le) in DURATION_BUCKETS_SECS.iter().enumerate() {
            cumulative += shards.iter().map(|s| s.buckets[i].load(Ordering::Relaxed)).sum::<u64>();
            buckets.push((*le, cumulative));
        }
        let count = cumulative
            + shards.iter().map(|s| s.buckets[DURATION_BUCKETS_SECS.len()].load(Ordering::Relaxed)).sum::<u64>();
        let sum_ns: u64 = shards.iter().map(|s| s.sum_ns.load(Ordering::Relaxed)).sum();
        (buckets, count, sum_ns as f64 / 1e9)
    }
}

/// A trip's reason with the failure that tripped it, when the caller said what it was.
fn with_last(why: String, how: Finish, call_timeout_ms: u64, cause: Cause<'_>) -> String {
    match (how, cause()) {
        (Finish::Timeout, _) => format!("{why}; the last timed out (after {call_timeout_ms} ms)"),
        (_, Some(cause)) => format!("{why}; the last: {cause}"),
        (_, None) => why,
    }
}
