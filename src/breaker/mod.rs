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
//!
//! Here: the types callers see. The handle and its permits are in `handle`, the state
//! machine and its counters in `state`, the configuration in `crate::config`
//! ([`BreakerConfig`](crate::config::BreakerConfig)).

mod handle;
pub mod registry;
mod state;

use std::sync::Arc;

use crate::protocol::views::CallCounts;

pub use handle::{CircuitBreaker, Permit};
pub use state::ManualClock;

/// The fast path times one call in this many for the duration histogram.
pub const SAMPLE_EVERY: u32 = 64;

/// Upper bounds (seconds) of the duration histogram buckets.
pub const DURATION_BUCKETS_SECS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

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
}

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

#[cfg(test)]
mod tests;
