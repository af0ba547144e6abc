//! Criterion benches for the circuit breaker's hot paths: a call through a closed breaker
//! (our `call_sync`, our `try_acquire` + `success` guard, and the `failsafe` crate's sync
//! breaker, beside the bare call) on one thread and on two threads sharing one breaker, and
//! the rejection of a call by an open breaker (ours forced open and tripped, failsafe's tripped).
//! Run with `make bench`; figures are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::backoff::{self, Constant};
use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
use failsafe::CircuitBreaker as _;
use rampart::breaker::{BreakerError, CircuitBreaker, Outcome};
use rampart::config::BreakerConfig;

type Failsafe = failsafe::StateMachine<ConsecutiveFailures<Constant>, ()>;

/// The protected call: trivial, but its input is opaque so the optimizer cannot delete it.
#[inline]
fn dependency(x: u64) -> Result<u64, ()> {
    if x == 0 {
        Err(())
    } else {
        Ok(x.wrapping_mul(31))
    }
}

fn classify(result: &Result<u64, ()>) -> Outcome {
    if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

fn bare() -> Result<u64, ()> {
    dependency(black_box(42))
}

fn ours_call_sync(breaker: &CircuitBreaker) -> Result<u64, BreakerError<()>> {
    breaker.call_sync(|| dependency(black_box(42)), classify)
}

fn ours_guard(breaker: &CircuitBreaker) -> Result<u64, BreakerError<()>> {
    let permit = breaker.try_acquire().map_err(|e| match e {
        BreakerError::Rejected { state, retry_after_ms } => BreakerError::Rejected { state, retry_after_ms },
        BreakerError::Timeout { after_ms } => BreakerError::Timeout { after_ms },
        BreakerError::Inner(never) => match never {},
    })?;
    let result = dependency(black_box(42));
    match result {
        Ok(_) => permit.success(),
        Err(_) => permit.failure(),
    }
    result.map_err(BreakerError::Inner)
}

fn theirs(breaker: &Failsafe) -> Result<u64, failsafe::Error<()>> {
    breaker.call(|| dependency(black_box(42)))
}

/// Ours as shipped: `BreakerConfig::default()` (5 consecutive failures, 30 s open).
fn ours() -> CircuitBreaker {
    CircuitBreaker::new("bench", BreakerConfig::default())
}

/// failsafe with the nearest policy: 5 consecutive failures, then 30 s open.
fn failsafe_breaker() -> Failsafe {
    failsafe::Config::new().failure_policy(consecutive_failures(5, backoff::constant(Duration::from_secs(30)))).build()
}

/// Fails calls through `breaker` until it rejects one (it stays open for 30 s).
fn trip(breaker: &Failsafe) {
    while !matches!(breaker.call(|| dependency(black_box(0))), Err(failsafe::Error::Rejected)) {}
}

/// The same for ours: tripped by failures, not forced, so it reads the clock to refuse.
fn trip_ours(breaker: &CircuitBreaker) {
    while !matches!(breaker.call_sync(|| dependency(black_box(0)), classify), Err(BreakerError::Rejected { .. })) {}
}

/// Two threads released together by a barrier, each making `iters` calls; returns the
/// slower thread's time, so criterion reports time per call per thread.
fn two_threads<R>(iters: u64, op: impl Fn() -> R + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let run = || {
            barrier.wait();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(op());
            }
            start.elapsed()
        };
        let a = s.spawn(run);
        let b = s.spawn(run);
        let a = a.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        let b = b.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        a.max(b)
    })
}

fn closed_one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_closed_1_thread");
    let breaker = ours();
    let fs = failsafe_breaker();
    group.bench_function("bare", |b| b.iter(bare));
    group.bench_function("ours_call_sync", |b| b.iter(|| ours_call_sync(&breaker)));
    group.bench_function("ours_guard", |b| b.iter(|| ours_guard(&breaker)));
    group.bench_function("failsafe_call", |b| b.iter(|| theirs(&fs)));
    group.finish();
    assert!(ours_call_sync(&breaker).is_ok() && theirs(&fs).is_ok(), "both breakers stayed closed");
}

fn closed_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_closed_2_threads");
    let breaker = ours();
    let fs = failsafe_breaker();
    group.bench_function("bare", |b| b.iter_custom(|iters| two_threads(iters, bare)));
    group.bench_function("ours_call_sync", |b| b.iter_custom(|iters| two_threads(iters, || ours_call_sync(&breaker))));
    group.bench_function("ours_guard", |b| b.iter_custom(|iters| two_threads(iters, || ours_guard(&breaker))));
    group.bench_function("failsafe_call", |b| b.iter_custom(|iters| two_threads(iters, || theirs(&fs))));
    group.finish();
    assert!(ours_call_sync(&breaker).is_ok() && theirs(&fs).is_ok(), "both breakers stayed closed");
}

fn open_rejection(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_open");
    let breaker = ours();
    breaker.force_open();
    assert!(matches!(ours_call_sync(&breaker), Err(BreakerError::Rejected { .. })), "ours is open");
    let fs = failsafe_breaker();
    group.bench_function("ours_call_sync", |b| b.iter(|| ours_call_sync(&breaker)));
    group.bench_function("ours_guard", |b| b.iter(|| ours_guard(&breaker)));
    let tripped = ours();
    group.bench_function("ours_call_sync_tripped", |b| {
        // Re-tripped before each sample in case a slow run outlasts the ~30 s open period.
        trip_ours(&tripped);
        b.iter(|| ours_call_sync(&tripped))
    });
    group.bench_function("failsafe_call", |b| {
        // Re-tripped before each sample in case a slow run outlasts the 30 s open period.
        trip(&fs);
        b.iter(|| theirs(&fs))
    });
    group.finish();
}

criterion_group!(breaker_benches, closed_one_thread, closed_two_threads, open_rejection);
criterion_main!(breaker_benches);
