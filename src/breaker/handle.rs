//! The breaker's handle, [`CircuitBreaker`], and [`Permit`], one admitted call: the three
//! ways to call through a breaker, the closed fast path (one load, one counter), and the
//! admin's forcing. What an outcome does to the state is the state machine's
//! (`super::state`).

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{no_cause, sample_now, Clock, Finish, Inner, Kind, ManualClock};
use super::{BreakerError, BreakerMetrics, BreakerState, Listener, Outcome};
use crate::config::BreakerConfig;

/// A named circuit breaker. Clones share the same breaker.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl CircuitBreaker {
    /// A breaker named `name`.
    pub fn new(name: &str, config: BreakerConfig) -> Self {
        CircuitBreaker { inner: Arc::new(Inner::new(name, config, Clock::Real(Instant::now()))) }
    }

    /// A breaker whose open periods follow a clock the caller advances (tests).
    pub fn with_manual_clock(name: &str, config: BreakerConfig) -> (Self, ManualClock) {
        let ms = Arc::new(AtomicU64::new(0));
        (CircuitBreaker { inner: Arc::new(Inner::new(name, config, Clock::Manual(ms.clone()))) }, ManualClock(ms))
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
        self.inner.set_listener(listener);
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
        } else if inner.is_closed() {
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
        if inner.untimed_ok && inner.is_closed() && !sample_now() {
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
        self.call_with(call, classify, |_| None).await
    }

    /// [`call`](Self::call), and a failure that trips the breaker or fails a probe is told
    /// with its error's text in the transition's reason (logged once per open period).
    /// The text is formatted only then.
    pub async fn call_described<T, E: std::fmt::Display>(
        &self,
        call: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, BreakerError<E>> {
        self.call_with(call, classify, |e| Some(e.to_string())).await
    }

    async fn call_with<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        describe: impl Fn(&E) -> Option<String>,
    ) -> Result<T, BreakerError<E>> {
        let permit = self.acquire(true).map_err(reject)?;
        let after_ms = self.inner.config.call_timeout_ms;
        match tokio::time::timeout(Duration::from_millis(after_ms), call).await {
            Ok(result) => {
                let outcome = classify(&result);
                permit.record_because(outcome, &|| result.as_ref().err().and_then(&describe));
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

    /// Time left before it lets a probe through, while it is open by itself; `None` when
    /// closed, half-open (a call may pass now) or forced open.
    pub fn open_remaining(&self) -> Option<Duration> {
        self.inner.open_remaining_ms().map(Duration::from_millis)
    }

    /// Forces it open until [`force_closed`](Self::force_closed) or [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.inner.force(Some(BreakerState::Open), "forced open by an admin");
    }

    /// Forces it closed: failures are counted but never trip it, until [`reset`](Self::reset).
    pub fn force_closed(&self) {
        self.inner.force(Some(BreakerState::Closed), "forced closed by an admin");
    }

    /// Clears any forcing and every failure count: closed, as new.
    pub fn reset(&self) {
        self.inner.force(None, "reset by an admin");
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> BreakerMetrics {
        self.inner.metrics()
    }

    /// The duration histogram: cumulative `(upper bound in seconds, count)` pairs, the total
    /// count and the sum in seconds.
    pub fn histogram(&self) -> (Vec<(f64, u64)>, u64, f64) {
        self.inner.histogram()
    }
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
    pub fn record(self, outcome: Outcome) {
        self.record_because(outcome, &no_cause);
    }

    /// Completes the call with `outcome`; `cause` says why it failed, asked only when the
    /// failure trips the breaker or fails a probe (its transition's reason tells it).
    #[inline]
    pub fn record_because(mut self, outcome: Outcome, cause: &dyn Fn() -> Option<String>) {
        if outcome == Outcome::Success && self.kind == Kind::Closed && self.started.is_none() {
            // The fast path: an untimed success while closed.
            self.done = true;
            self.inner.closed_success();
            return;
        }
        let how = match outcome {
            Outcome::Success => Finish::Success,
            Outcome::Failure => Finish::Failure,
            Outcome::Ignored => Finish::Ignored,
        };
        self.done = true;
        self.inner.finish(self.kind, self.started, how, cause);
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

    fn finish(&mut self, how: Finish) {
        self.done = true;
        self.inner.finish(self.kind, self.started, how, &no_cause);
    }
}

#[cfg(test)]
impl Permit<'_> {
    /// Whether this permit is a probe of the half-open episode running now.
    pub(super) fn probes_this_episode(&self) -> bool {
        matches!(self.kind, Kind::Probe(e) if e == self.inner.episode())
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

fn reject<E>(e: BreakerError<std::convert::Infallible>) -> BreakerError<E> {
    match e {
        BreakerError::Rejected { state, retry_after_ms } => BreakerError::Rejected { state, retry_after_ms },
        BreakerError::Timeout { after_ms } => BreakerError::Timeout { after_ms },
        BreakerError::Inner(never) => match never {},
    }
}
