//! The circuit breaker. A `CircuitBreaker` is a cheap shared handle to one named breaker:
//! closed (calls pass), open (calls are refused without being made) and half-open (a few
//! probe calls test the dependency). It owns its counters; the [`registry`] builds the named
//! breakers from the configuration, logs their transitions and renders them.
//!
//! The closed path takes no lock and no actor mailbox: one atomic load of the state, one
//! counter increment in a per-thread shard (no shared cache line between threads), and a
//! load of the consecutive-failure count. Durations are timed on every async call, every
//! probe and, when `slow_call_ms` is set, every call; otherwise the synchronous fast path
//! times one call in [`SAMPLE_EVERY`] for the duration histogram (reading the clock twice
//! costs more than the rest of the path). Transitions take a small mutex; they are rare.
//!
//! Three ways to call: [`CircuitBreaker::call`] for futures (with the call timeout),
//! [`CircuitBreaker::call_sync`] for closures, and [`CircuitBreaker::try_acquire`] for a
//! [`Permit`] guard that the caller completes. A permit dropped without an outcome (a
//! cancelled future, a panic) releases its probe slot, so nothing can wedge the breaker: a
//! cancellation counts as ignored, a panic as a failure.

pub mod registry;

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The fast path times one call in this many for the duration histogram.
pub const SAMPLE_EVERY: u32 = 64;

/// Upper bounds (seconds) of the duration histogram buckets.
pub const DURATION_BUCKETS_SECS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const SHARDS: usize = 16;

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused without being made.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
}

impl BreakerState {
    /// The wire name: `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
const NOT_FORCED: u8 = 0;

/// How the caller classifies a finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency worked.
    Success,
    /// The dependency failed: counts towards tripping.
    Failure,
    /// Neither (for example the caller's own validation error): counted, never trips.
    Ignored,
}

/// Why a call through the breaker did not produce the inner result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker refused the call without making it.
    #[error("circuit breaker {} refused the call", state.as_str())]
    Rejected {
        /// The state that refused it (open, or half-open with every probe slot taken).
        state: BreakerState,
        /// When a call may be admitted again, if known (`None` when forced open).
        retry_after_ms: Option<u64>,
    },
    /// The call did not finish within the breaker's call timeout.
    #[error("the call timed out after {after_ms} ms")]
    Timeout {
        /// The timeout that cut it.
        after_ms: u64,
    },
    /// The call finished with this error.
    #[error("{0}")]
    Inner(E),
}

/// Trip on a failure rate over the last `window_calls` calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureRate {
    /// Trip at or above this percentage of failed calls.
    pub threshold_pct: f64,
    /// Calls in the sliding window.
    pub window_calls: u32,
    /// Calls the window must hold before the rate counts.
    pub min_calls: u32,
}

/// The fields of [`BreakerConfig`] whose YAML name differs from the Rust one (the YAML keeps
/// the plan's names: `timeout` is how long a breaker stays open), for error paths.
pub const YAML_NAMES: [(&str, &str); 4] = [
    ("open_secs", "timeout"),
    ("open_max_secs", "timeout_max"),
    ("open_multiplier", "timeout_multiplier"),
    ("half_open_successes_to_close", "half_open_successes"),
];

/// One breaker's configuration, exactly as `circuit_breakers.<name>` in the YAML (the
/// plan's keys `failure_threshold`, `timeout`, `operations`, plus Rampart's). A key left
/// out of a breaker's section takes the section's `default_failure_threshold` /
/// `default_timeout` (the loader fills them in) or the default given here.
#[derive(
    Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, garde::Validate, smart_default::SmartDefault,
)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// `false`: a pass-through that counts calls and never refuses one.
    #[garde(skip)]
    #[default = true]
    pub enabled: bool,
    /// Consecutive failures that trip it, 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[default = 5]
    pub failure_threshold: u32,
    /// Seconds it stays open after tripping (`timeout`), 0.1..=3600.
    #[serde(rename = "timeout")]
    #[garde(range(min = 0.1, max = 3600.0))]
    #[default = 30.0]
    pub open_secs: f64,
    /// The longest open period when it grows, seconds (`timeout_max`), at least `timeout`.
    #[serde(rename = "timeout_max")]
    #[garde(range(min = 0.1, max = 3600.0))]
    #[default = 30.0]
    pub open_max_secs: f64,
    /// Growth of the open period after each failed probe (`timeout_multiplier`), 1..=10.
    #[serde(rename = "timeout_multiplier")]
    #[garde(range(min = 1.0, max = 10.0))]
    #[default = 2.0]
    pub open_multiplier: f64,
    /// Each open period is scaled by a random factor in `1 ± jitter`, 0..=1.
    #[garde(range(min = 0.0, max = 1.0))]
    #[default = 0.1]
    pub jitter: f64,
    /// Also trip when at least this % of the calls in the window failed, 1..=100; unset: off.
    #[garde(inner(range(min = 1.0, max = 100.0)))]
    pub failure_rate_threshold_pct: Option<f64>,
    /// Calls in the failure-rate window, 2..=10000.
    #[garde(range(min = 2, max = 10_000))]
    #[default = 20]
    pub failure_rate_window_calls: u32,
    /// Calls the window must hold before the rate counts, 1..=the window.
    #[garde(range(min = 1, max = 10_000))]
    #[default = 10]
    pub failure_rate_min_calls: u32,
    /// Calls slower than this (ms) count as failures, 1..=600000; unset: off.
    #[garde(inner(range(min = 1, max = 600_000)))]
    pub slow_call_ms: Option<u64>,
    /// Every async call is cut after this long in ms (a sync call is counted as timed
    /// out), 1..=600000.
    #[garde(range(min = 1, max = 600_000))]
    #[default = 2000]
    pub call_timeout_ms: u64,
    /// Probe calls in flight at once while half-open, 1..=100.
    #[garde(range(min = 1, max = 100))]
    #[default = 1]
    pub half_open_max_probes: u32,
    /// Successful probes that close it (`half_open_successes`), 1..=100.
    #[serde(rename = "half_open_successes")]
    #[garde(range(min = 1, max = 100))]
    #[default = 1]
    pub half_open_successes_to_close: u32,
    /// The operations it protects, for operators (shown by the breaker endpoints and the
    /// dashboard): up to 100 names of 1..=64 characters.
    #[garde(length(max = 100), inner(length(min = 1, max = 64)))]
    pub operations: Vec<String>,
}

impl BreakerConfig {
    /// The failure-rate rule, when `failure_rate_threshold_pct` is set.
    pub fn failure_rate(&self) -> Option<FailureRate> {
        self.failure_rate_threshold_pct.map(|threshold_pct| FailureRate {
            threshold_pct,
            window_calls: self.failure_rate_window_calls,
            min_calls: self.failure_rate_min_calls,
        })
    }
}

/// A state change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The breaker.
    pub name: Arc<str>,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
    /// Why, in words for the log.
    pub reason: String,
    /// When, in ms since the breaker was created.
    pub at_ms: u64,
}

/// Receives every transition (the registry counts and logs them).
pub type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

/// Calls through a breaker by outcome (also the `counters` of its health view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CallCounts {
    /// Calls that succeeded.
    pub success: u64,
    /// Calls that failed (including slow calls).
    pub failure: u64,
    /// Calls cut (or overrun) by the call timeout.
    pub timeout: u64,
    /// Calls refused without being made.
    pub rejected: u64,
    /// Calls classified as ignored, or cancelled before they finished.
    pub ignored: u64,
    /// Calls slower than `slow_call_ms` (also counted in `failure`).
    pub slow: u64,
}

/// A snapshot of a breaker's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerMetrics {
    /// Calls by outcome.
    pub calls: CallCounts,
    /// State changes so far.
    pub transitions: u64,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Failure rate over the window, when configured and the window holds enough calls.
    pub failure_rate_pct: Option<f64>,
    /// Probe calls running now.
    pub probes_in_flight: u32,
    /// Time left before an open breaker lets a probe through (`None` unless open, or forced).
    pub open_remaining_ms: Option<u64>,
    /// The state an admin forced, if any.
    pub forced: Option<BreakerState>,
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
fn shard_index() -> usize {
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
fn sample_now() -> bool {
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
enum Clock {
    Real(Instant),
    Manual(Arc<AtomicU64>),
}

/// A clock that tests advance by hand (see [`CircuitBreaker::with_manual_clock`]).
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

struct Inner {
    name: Arc<str>,
    config: BreakerConfig,
    /// Enabled and without a slow-call threshold: closed calls need not all be timed.
    untimed_ok: bool,
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

/// A named circuit breaker. Clones share the same breaker.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

/// What a permit stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Disabled breaker: counted, nothing else.
    Pass,
    /// A call admitted while closed.
    Closed,
    /// A probe admitted while half-open, in this episode.
    Probe(u64),
}

/// How a permit finished (internal: adds timeout and cancellation to [`Outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Success,
    Failure,
    Ignored,
    Timeout,
    Cancelled,
}

/// The right to make one call. Complete it with [`Permit::record`] (or `success`, `failure`,
/// `ignored`); dropping it unfinished releases its slot and counts the call as ignored
/// (cancelled), or as a failure when the thread is panicking.
#[must_use = "a permit is a call in flight: record its outcome"]
pub struct Permit<'a> {
    inner: &'a Inner,
    kind: Kind,
    started: Option<Instant>,
    done: bool,
}

impl Permit<'_> {
    /// Completes the call with `outcome`.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        if outcome == Outcome::Success && self.kind == Kind::Closed && self.started.is_none() {
            // The fast path: an untimed success while closed.
            self.done = true;
            self.inner.closed_success();
            return;
        }
        self.finish(match outcome {
            Outcome::Success => Finish::Success,
            Outcome::Failure => Finish::Failure,
            Outcome::Ignored => Finish::Ignored,
        });
    }
    /// Completes the call as a success.
    pub fn success(self) {
        self.record(Outcome::Success);
    }
    /// Completes the call as a failure.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }
    /// Completes the call as neither.
    pub fn ignored(self) {
        self.record(Outcome::Ignored);
    }
    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        matches!(self.kind, Kind::Probe(_))
    }

    fn timed_out(mut self) {
        self.finish(Finish::Timeout);
    }

    #[inline(never)]
    fn finish(&mut self, mut how: Finish) {
        self.done = true;
        let inner = self.inner;
        let shard = &inner.shards[shard_index()];
        if let Some(started) = self.started {
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
        match self.kind {
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
                        inner.trip(format!("{n} consecutive failures (threshold {})", inner.config.failure_threshold));
                    } else if rate_trips {
                        let pct = inner.window.as_ref().and_then(Window::rate_pct).unwrap_or(0.0);
                        inner.trip(format!("failure rate {pct:.0}% over the last calls"));
                    }
                }
                Finish::Ignored | Finish::Cancelled => {}
            },
            Kind::Probe(episode) => {
                inner.probes_in_flight.fetch_sub(1, Ordering::AcqRel);
                if failed {
                    let why = if how == Finish::Timeout { "a probe call timed out" } else { "a probe call failed" };
                    inner.reopen(episode, why);
                } else if how == Finish::Success {
                    inner.probe_succeeded(episode);
                }
            }
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(if std::thread::panicking() { Finish::Failure } else { Finish::Cancelled });
        }
    }
}

/// Counts a failure if the closure of a fast-path `call_sync` panics.
struct PanicGuard<'a>(&'a Inner);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        Permit { inner: self.0, kind: Kind::Closed, started: None, done: false }.record(Outcome::Failure);
    }
}

impl Inner {
    /// An untimed success while closed: one counter, and the failure streak ends.
    #[inline]
    fn closed_success(&self) {
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

    fn state(&self) -> BreakerState {
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

    /// Half-open → open after a failed probe, with a longer open period.
    fn reopen(&self, episode: u64, why: &str) {
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
    fn acquire_slow(&self) -> Result<Kind, BreakerError<std::convert::Infallible>> {
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
}

impl CircuitBreaker {
    /// A breaker named `name`.
    pub fn new(name: &str, config: BreakerConfig) -> Self {
        Self::build(name, config, Clock::Real(Instant::now()))
    }

    /// A breaker whose open periods follow a clock the caller advances (tests).
    pub fn with_manual_clock(name: &str, config: BreakerConfig) -> (Self, ManualClock) {
        let ms = Arc::new(AtomicU64::new(0));
        (Self::build(name, config, Clock::Manual(ms.clone())), ManualClock(ms))
    }

    fn build(name: &str, config: BreakerConfig, clock: Clock) -> Self {
        let window = config.failure_rate().map(Window::new);
        CircuitBreaker {
            inner: Arc::new(Inner {
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
            }),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Sets the one listener that receives every transition. Later calls are ignored.
    pub fn set_listener(&self, listener: Listener) {
        let _ = self.inner.listener.set(listener);
    }

    /// The current state (a disabled breaker is always closed).
    pub fn state(&self) -> BreakerState {
        self.inner.state()
    }

    /// Asks to make one call. `Err` when the breaker refuses (the call must not be made).
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, BreakerError<std::convert::Infallible>> {
        self.acquire(false)
    }

    #[inline]
    fn acquire(&self, always_time: bool) -> Result<Permit<'_>, BreakerError<std::convert::Infallible>> {
        let inner = &*self.inner;
        let kind = if !inner.config.enabled {
            Kind::Pass
        } else if inner.state.load(Ordering::Acquire) == CLOSED {
            Kind::Closed
        } else {
            inner.acquire_slow()?
        };
        let timed = always_time || kind != Kind::Closed || !inner.untimed_ok || sample_now();
        Ok(Permit { inner, kind, started: timed.then(Instant::now), done: false })
    }

    /// Runs `f` through the breaker; `classify` decides how its result counts.
    #[inline]
    pub fn call_sync<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, BreakerError<E>> {
        let inner = &*self.inner;
        if inner.untimed_ok && inner.state.load(Ordering::Acquire) == CLOSED && !sample_now() {
            // The fast path: closed and untimed, no permit to build. The guard only matters if
            // `f` panics (it then counts a failure); on return it is forgotten, costing nothing.
            let guard = PanicGuard(inner);
            let result = f();
            std::mem::forget(guard);
            match classify(&result) {
                Outcome::Success => inner.closed_success(),
                outcome => Permit { inner, kind: Kind::Closed, started: None, done: false }.record(outcome),
            }
            return result.map_err(BreakerError::Inner);
        }
        let permit = self.acquire(false).map_err(reject)?;
        let result = f();
        permit.record(classify(&result));
        result.map_err(BreakerError::Inner)
    }

    /// Awaits `call` through the breaker, cut after the call timeout; `classify` decides how
    /// its result counts. Dropping the returned future mid-call releases its slot.
    pub async fn call<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, BreakerError<E>> {
        let permit = self.acquire(true).map_err(reject)?;
        let after_ms = self.inner.config.call_timeout_ms;
        match tokio::time::timeout(Duration::from_millis(after_ms), call).await {
            Ok(result) => {
                permit.record(classify(&result));
                result.map_err(BreakerError::Inner)
            }
            Err(_) => {
                permit.timed_out();
                Err(BreakerError::Timeout { after_ms })
            }
        }
    }

    /// [`call`](Self::call) with a fallback that turns any refusal, timeout or error into
    /// a value.
    pub async fn call_or_else<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        fallback: impl FnOnce(BreakerError<E>) -> T,
    ) -> T {
        self.call(call, classify).await.unwrap_or_else(fallback)
    }

    /// Forces it open until [`force_closed`](Self::force_closed) or [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.force(Some(BreakerState::Open), "forced open by an admin");
    }

    /// Forces it closed: failures are counted but never trip it, until [`reset`](Self::reset).
    pub fn force_closed(&self) {
        self.force(Some(BreakerState::Closed), "forced closed by an admin");
    }

    /// Clears any forcing and every failure count: closed, as new.
    pub fn reset(&self) {
        self.force(None, "reset by an admin");
    }

    fn force(&self, forced: Option<BreakerState>, reason: &str) {
        let inner = &*self.inner;
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
    pub fn metrics(&self) -> BreakerMetrics {
        let inner = &*self.inner;
        let sum = |slot: usize| inner.shards.iter().map(|s| s.calls[slot].load(Ordering::Relaxed)).sum();
        let forced = inner.forced();
        let open_remaining_ms = (inner.state() == BreakerState::Open && forced.is_none())
            .then(|| inner.open_until_ms.load(Ordering::Acquire).saturating_sub(inner.now_ms()));
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
    pub fn histogram(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let shards = &self.inner.shards;
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

fn reject<E>(e: BreakerError<std::convert::Infallible>) -> BreakerError<E> {
    match e {
        BreakerError::Rejected { state, retry_after_ms } => BreakerError::Rejected { state, retry_after_ms },
        BreakerError::Timeout { after_ms } => BreakerError::Timeout { after_ms },
        BreakerError::Inner(never) => match never {},
    }
}

#[cfg(test)]
mod tests;
