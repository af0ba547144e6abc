//! The breaker's state machine, driven by hand (a manual clock, permits held and completed
//! in any order), by proptest, by threads, and through its async API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::config::BreakerConfig;

fn config(threshold: u32, open_secs: f64) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: threshold,
        open_secs,
        open_max_secs: open_secs,
        jitter: 0.0,
        ..Default::default()
    }
}

fn fail(b: &CircuitBreaker) {
    b.try_acquire().expect("admitted").failure();
}

fn recorded(b: &CircuitBreaker) -> Arc<Mutex<Vec<(BreakerState, BreakerState)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    b.set_listener(Arc::new(move |t: &Transition| s.lock().expect("test lock").push((t.from, t.to))));
    seen
}

#[test]
fn trips_after_consecutive_failures_and_a_success_resets_the_count() {
    let (b, _clock) = CircuitBreaker::with_manual_clock("db", config(3, 10.0));
    fail(&b);
    fail(&b);
    b.try_acquire().expect("admitted").success();
    assert_eq!(b.metrics().consecutive_failures, 0);
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    let m = b.metrics();
    assert_eq!((m.calls.success, m.calls.failure, m.transitions), (1, 5, 1));
    assert_eq!(m.open_remaining_ms, Some(10_000));
}

#[test]
fn open_rejects_without_calling_then_half_opens_and_closes_after_enough_probes() {
    let (b, clock) = CircuitBreaker::with_manual_clock(
        "llm",
        BreakerConfig { half_open_max_probes: 2, half_open_successes_to_close: 2, ..config(1, 5.0) },
    );
    let seen = recorded(&b);
    fail(&b);
    let called = AtomicUsize::new(0);
    let r = b.call_sync(
        || {
            called.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        },
        |_| Outcome::Success,
    );
    assert_eq!(r, Err(BreakerError::Rejected { state: BreakerState::Open, retry_after_ms: Some(5000) }));
    assert_eq!(called.load(Ordering::SeqCst), 0, "an open breaker never makes the call");
    clock.advance(Duration::from_millis(4999));
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_millis(1));
    let p1 = b.try_acquire().expect("first probe");
    let p2 = b.try_acquire().expect("second probe");
    assert!(p1.is_probe() && p2.is_probe());
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(
        matches!(b.try_acquire().err(), Some(BreakerError::Rejected { state: BreakerState::HalfOpen, .. })),
        "a third probe waits"
    );
    p1.success();
    assert_eq!(b.state(), BreakerState::HalfOpen, "one success of two");
    p2.success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().calls.rejected, 3);
    let seen = seen.lock().expect("test lock").clone();
    use BreakerState::*;
    assert_eq!(seen, vec![(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]);
}

#[test]
fn a_failed_probe_reopens_for_longer_up_to_the_maximum() {
    let (b, clock) = CircuitBreaker::with_manual_clock(
        "llm",
        BreakerConfig { open_max_secs: 3.0, open_multiplier: 2.0, ..config(1, 1.0) },
    );
    fail(&b);
    for expected_ms in [2000, 3000, 3000] {
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire().expect("probe");
        probe.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.metrics().open_remaining_ms, Some(expected_ms));
    }
    clock.advance(Duration::from_secs(10));
    b.try_acquire().expect("probe").success();
    fail(&b);
    assert_eq!(b.metrics().open_remaining_ms, Some(1000), "closing resets the growth");
}

/// The reasons of every transition.
fn reasons(b: &CircuitBreaker) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    b.set_listener(Arc::new(move |t: &Transition| s.lock().expect("test lock").push(t.reason.clone())));
    seen
}

#[test]
fn a_trip_and_a_failed_probe_say_which_error_once_and_only_then_format_it() {
    let (b, clock) = CircuitBreaker::with_manual_clock(
        "database",
        BreakerConfig { open_max_secs: 0.8, open_multiplier: 2.0, ..config(2, 0.2) },
    );
    let seen = reasons(&b);
    let asked = std::cell::Cell::new(0);
    let asked = &asked;
    let cause = |text: &'static str| {
        move || {
            asked.set(asked.get() + 1);
            Some(text.to_owned())
        }
    };
    b.try_acquire().expect("closed").record_because(Outcome::Failure, &cause("refused once"));
    assert_eq!(asked.get(), 0, "a failure that trips nothing formats nothing");
    b.try_acquire().expect("closed").record_because(Outcome::Failure, &cause("refused twice"));
    assert_eq!(asked.get(), 1);
    assert_eq!(b.open_remaining(), Some(Duration::from_millis(200)));
    clock.advance(Duration::from_millis(200));
    b.try_acquire().expect("probe").record_because(Outcome::Failure, &cause("READONLY: a replica"));
    assert_eq!(b.open_remaining(), Some(Duration::from_millis(400)), "the open period grows");
    clock.advance(Duration::from_millis(400));
    assert_eq!(b.open_remaining(), Some(Duration::ZERO));
    let probe = b.try_acquire().expect("probe");
    assert_eq!(b.open_remaining(), None, "half-open: a call may pass now");
    probe.record_because(Outcome::Success, &cause("never asked"));
    assert_eq!(asked.get(), 2);
    assert_eq!(b.open_remaining(), None, "closed");
    let seen = seen.lock().expect("test lock").clone();
    assert_eq!(
        seen,
        vec![
            "2 consecutive failures (threshold 2); the last: refused twice".to_owned(),
            "the open period is over".to_owned(),
            "a probe call failed: READONLY: a replica; open for 400 ms".to_owned(),
            "the open period is over".to_owned(),
            "1 probe call(s) succeeded".to_owned(),
        ]
    );
    b.force_open();
    assert_eq!(b.open_remaining(), None, "forced open: no probe is coming");
}

#[actix_rt::test]
async fn a_described_call_tells_its_error_and_a_timed_out_probe_its_timeout() {
    let (b, clock) =
        CircuitBreaker::with_manual_clock("database", BreakerConfig { call_timeout_ms: 20, ..config(1, 1.0) });
    let seen = reasons(&b);
    let r = b.call_described(async { Err::<(), _>("connection refused") }, |_| Outcome::Failure).await;
    assert_eq!(r, Err(BreakerError::Inner("connection refused")));
    clock.advance(Duration::from_secs(1));
    let r = b.call_described(std::future::pending::<Result<(), &str>>(), |_| Outcome::Success).await;
    assert_eq!(r, Err(BreakerError::Timeout { after_ms: 20 }));
    let seen = seen.lock().expect("test lock").clone();
    assert_eq!(seen[0], "1 consecutive failures (threshold 1); the last: connection refused");
    assert!(seen[2].starts_with("a probe call timed out (after 20 ms); open for "), "{seen:?}");
}

#[test]
fn jitter_stays_within_its_fraction() {
    for _ in 0..200 {
        let (b, _clock) = CircuitBreaker::with_manual_clock("j", BreakerConfig { jitter: 0.2, ..config(1, 10.0) });
        fail(&b);
        let ms = b.metrics().open_remaining_ms.expect("open");
        assert!((8000..=12000).contains(&ms), "{ms}");
    }
}

#[test]
fn a_cancelled_or_panicking_probe_frees_its_slot() {
    let (b, clock) = CircuitBreaker::with_manual_clock("llm", config(1, 1.0));
    fail(&b);
    clock.advance(Duration::from_secs(1));
    let probe = b.try_acquire().expect("probe");
    assert!(b.try_acquire().is_err(), "the only slot is taken");
    drop(probe); // a cancelled call
    assert_eq!(b.metrics().probes_in_flight, 0);
    assert_eq!(b.state(), BreakerState::HalfOpen, "a cancellation is not a verdict");
    let b2 = b.clone();
    let panicked = std::thread::spawn(move || {
        let _probe = b2.try_acquire().expect("probe");
        panic!("the probe's caller panics");
    })
    .join();
    assert!(panicked.is_err());
    assert_eq!(b.metrics().probes_in_flight, 0);
    assert_eq!(b.state(), BreakerState::Open, "a panicking probe counts as a failure");
}

#[test]
fn a_panic_inside_call_sync_counts_as_a_failure_on_every_path() {
    let b = CircuitBreaker::new("db", config(100, 60.0));
    for _ in 0..=SAMPLE_EVERY {
        let b2 = b.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b2.call_sync(|| -> Result<(), ()> { panic!("a bug in the call") }, |_| Outcome::Success)
        }));
        assert!(r.is_err());
    }
    let m = b.metrics();
    assert_eq!((m.calls.failure, m.calls.success), (u64::from(SAMPLE_EVERY) + 1, 0), "fast and timed paths alike");
    assert_eq!(m.consecutive_failures, SAMPLE_EVERY + 1);
}

#[actix_rt::test]
async fn a_dropped_probe_future_frees_its_slot() {
    let (b, clock) = CircuitBreaker::with_manual_clock("llm", config(1, 1.0));
    fail(&b);
    clock.advance(Duration::from_secs(1));
    let call = b.call(std::future::pending::<Result<(), ()>>(), |_| Outcome::Success);
    let cut = tokio::time::timeout(Duration::from_millis(10), call).await;
    assert!(cut.is_err(), "the caller gave up first");
    assert_eq!(b.metrics().probes_in_flight, 0);
    assert!(b.try_acquire().expect("the slot is free again").is_probe());
}

#[actix_rt::test]
async fn the_call_timeout_cuts_a_hanging_call_and_counts_it() {
    let b = CircuitBreaker::new("llm", BreakerConfig { call_timeout_ms: 20, ..config(2, 60.0) });
    for _ in 0..2 {
        let r = b.call(std::future::pending::<Result<(), ()>>(), |_| Outcome::Success).await;
        assert_eq!(r, Err(BreakerError::Timeout { after_ms: 20 }));
    }
    assert_eq!(b.state(), BreakerState::Open);
    let m = b.metrics();
    assert_eq!((m.calls.timeout, m.calls.failure), (2, 0));
    let (_, count, sum) = b.histogram();
    assert_eq!(count, 2);
    assert!(sum >= 0.04, "{sum}");
}

#[actix_rt::test]
async fn ignored_outcomes_never_trip_and_a_fallback_answers_for_a_refusal() {
    let b = CircuitBreaker::new("llm", config(1, 60.0));
    let r = b.call(async { Err::<(), _>("bad request") }, |_| Outcome::Ignored).await;
    assert_eq!(r, Err(BreakerError::Inner("bad request")));
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().calls.ignored, 1);
    let r = b.call_or_else(async { Err::<&str, _>("down") }, |_| Outcome::Failure, |_| "fallback").await;
    assert_eq!(r, "fallback");
    let r = b.call_or_else(async { Ok::<_, ()>("never made") }, |_| Outcome::Success, |_| "fallback").await;
    assert_eq!(r, "fallback");
    assert_eq!(b.metrics().calls.rejected, 1);
}

#[test]
fn slow_calls_count_as_failures_when_configured() {
    let b = CircuitBreaker::new("db", BreakerConfig { slow_call_ms: Some(2), ..config(2, 60.0) });
    for _ in 0..2 {
        let r = b.call_sync(
            || {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(3) {
                    std::hint::spin_loop();
                }
                Ok::<_, ()>(())
            },
            |_| Outcome::Success,
        );
        assert_eq!(r, Ok(()), "a slow call still returns its result");
    }
    let m = b.metrics();
    assert_eq!((m.calls.slow, m.calls.failure, m.calls.success), (2, 2, 0));
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn trips_on_the_failure_rate_once_the_window_holds_enough_calls() {
    let rate = BreakerConfig {
        failure_rate_threshold_pct: Some(50.0),
        failure_rate_window_calls: 10,
        failure_rate_min_calls: 6,
        ..config(100, 5.0)
    };
    let (b, _clock) = CircuitBreaker::with_manual_clock("db", rate);
    for i in 0..5 {
        let p = b.try_acquire().expect("closed");
        if i % 2 == 0 {
            p.failure();
        } else {
            p.success();
        }
    }
    assert_eq!(b.state(), BreakerState::Closed, "5 calls: under min_calls");
    assert_eq!(b.metrics().failure_rate_pct, None);
    b.try_acquire().expect("closed").success();
    assert_eq!(b.metrics().failure_rate_pct, Some(50.0));
    assert_eq!(b.state(), BreakerState::Closed, "only a failure trips");
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn the_window_slides_old_failures_out() {
    let rate = BreakerConfig {
        failure_rate_threshold_pct: Some(60.0),
        failure_rate_window_calls: 4,
        failure_rate_min_calls: 4,
        ..config(100, 5.0)
    };
    let (b, _clock) = CircuitBreaker::with_manual_clock("db", rate);
    fail(&b);
    fail(&b);
    for _ in 0..4 {
        b.try_acquire().expect("closed").success();
    }
    assert_eq!(b.metrics().failure_rate_pct, Some(0.0));
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed, "2 of 4 = 50%");
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open, "3 of 4 = 75%");
}

#[test]
fn admin_forcing_and_reset() {
    let (b, clock) = CircuitBreaker::with_manual_clock("db", config(1, 1.0));
    b.force_open();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        b.try_acquire().err(),
        Some(BreakerError::Rejected { state: BreakerState::Open, retry_after_ms: None }),
        "forced open stays open"
    );
    assert_eq!(b.metrics().forced, Some(BreakerState::Open));
    b.force_closed();
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed, "forced closed never trips");
    assert_eq!(b.metrics().consecutive_failures, 2);
    b.reset();
    assert_eq!(b.metrics().forced, None);
    assert_eq!(b.metrics().consecutive_failures, 0);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open, "back to normal after a reset");
}

#[test]
fn a_disabled_breaker_is_a_counting_pass_through() {
    let b = CircuitBreaker::new("llm", BreakerConfig { enabled: false, ..config(1, 60.0) });
    for _ in 0..10 {
        assert!(b.call_sync(|| Err::<(), _>(()), |_| Outcome::Failure).is_err());
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().calls.failure, 10);
}

#[test]
fn threads_hammering_one_breaker_add_up() {
    let b = CircuitBreaker::new("db", config(1_000_000, 60.0));
    let threads = 4;
    let per_thread = 20_000u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let b = &b;
            s.spawn(move || {
                for i in 0..per_thread {
                    let outcome = match (i + t) % 4 {
                        0 => Outcome::Failure,
                        1 => Outcome::Ignored,
                        _ => Outcome::Success,
                    };
                    let _ = b.call_sync(|| Ok::<_, ()>(()), |_| outcome);
                }
            });
        }
    });
    let m = b.metrics();
    let total = per_thread * threads;
    assert_eq!(m.calls.success + m.calls.failure + m.calls.ignored + m.calls.timeout + m.calls.rejected, total);
    assert_eq!(m.calls.failure, total / 4);
    assert_eq!(m.calls.ignored, total / 4);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn threads_racing_to_trip_produce_one_transition_and_respect_the_probe_limit() {
    let (b, clock) =
        CircuitBreaker::with_manual_clock("db", BreakerConfig { half_open_max_probes: 3, ..config(5, 1.0) });
    let seen = recorded(&b);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1000 {
                    if let Ok(p) = b.try_acquire() {
                        p.failure();
                    }
                }
            });
        }
    });
    assert_eq!(seen.lock().expect("test lock").len(), 1, "one closed → open transition");
    clock.advance(Duration::from_secs(2));
    let admitted = AtomicUsize::new(0);
    let max_seen = AtomicUsize::new(0);
    let in_flight = AtomicUsize::new(0);
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..500 {
                    if let Ok(p) = b.try_acquire() {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        admitted.fetch_add(1, Ordering::SeqCst);
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        p.ignored();
                    }
                }
            });
        }
    });
    assert!(max_seen.load(Ordering::SeqCst) <= 3, "at most 3 probes at once");
    assert!(admitted.load(Ordering::SeqCst) > 0);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.metrics().probes_in_flight, 0);
}

/// One step of the model.
#[derive(Debug, Clone)]
enum Step {
    /// Ask for a permit and hold it.
    Acquire,
    /// Complete the held permit at this index (mod the number held) with this outcome.
    Complete(usize, u8),
    /// Drop a held permit unfinished.
    Cancel(usize),
    /// Advance the clock.
    Advance(u64),
    ForceOpen,
    ForceClosed,
    Reset,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Acquire),
        6 => (any::<usize>(), 0u8..3).prop_map(|(i, o)| Step::Complete(i, o)),
        1 => any::<usize>().prop_map(Step::Cancel),
        3 => (0u64..3000).prop_map(Step::Advance),
        1 => Just(Step::ForceOpen),
        1 => Just(Step::ForceClosed),
        1 => Just(Step::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Any sequence of calls, outcomes, cancellations, clock advances and admin actions
    /// keeps the invariants.
    #[test]
    fn invariants_hold_for_any_sequence(
        steps in prop::collection::vec(step(), 1..120),
        max_probes in 1u32..4,
        successes_to_close in 1u32..3,
        threshold in 1u32..4,
    ) {
        let cfg = BreakerConfig {
            half_open_max_probes: max_probes,
            half_open_successes_to_close: successes_to_close,
            open_max_secs: 4.0,
            ..config(threshold, 1.0)
        };
        let (b, clock) = CircuitBreaker::with_manual_clock("p", cfg);
        let mut held: Vec<Permit<'_>> = Vec::new();
        let mut attempts = 0u64;
        for step in steps {
            let before = b.state();
            let before_metrics = b.metrics();
            match step {
                Step::Acquire => {
                    attempts += 1;
                    let open_and_waiting = before == BreakerState::Open
                        && (before_metrics.forced == Some(BreakerState::Open)
                            || before_metrics.open_remaining_ms.is_some_and(|ms| ms > 0));
                    match b.try_acquire() {
                        Ok(p) => {
                            prop_assert!(!open_and_waiting, "an open breaker admitted a call");
                            prop_assert_eq!(p.is_probe(), b.state() == BreakerState::HalfOpen);
                            held.push(p);
                        }
                        Err(BreakerError::Rejected { .. }) => {
                            prop_assert!(before != BreakerState::Closed, "a closed breaker refused a call");
                            prop_assert_eq!(b.metrics().calls.rejected, before_metrics.calls.rejected + 1);
                        }
                        Err(other) => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                Step::Complete(i, o) if !held.is_empty() => {
                    let p = held.remove(i % held.len());
                    let probe = p.is_probe();
                    let current = p.probes_this_episode();
                    let outcome = [Outcome::Success, Outcome::Failure, Outcome::Ignored][o as usize];
                    p.record(outcome);
                    if current && before == BreakerState::HalfOpen {
                        match outcome {
                            Outcome::Failure => prop_assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens"),
                            Outcome::Success if successes_to_close == 1 => {
                                prop_assert_eq!(b.state(), BreakerState::Closed, "enough probes close it")
                            }
                            _ => {}
                        }
                    }
                    if !probe && before == BreakerState::Closed && outcome == Outcome::Failure
                        && before_metrics.forced.is_none()
                        && before_metrics.consecutive_failures + 1 >= threshold
                    {
                        prop_assert_eq!(b.state(), BreakerState::Open, "the threshold trips it");
                    }
                }
                Step::Complete(..) => {}
                Step::Cancel(i) if !held.is_empty() => {
                    drop(held.remove(i % held.len()));
                    prop_assert_eq!(b.state(), before, "a cancellation changes nothing");
                }
                Step::Cancel(_) => {}
                Step::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Step::ForceOpen => b.force_open(),
                Step::ForceClosed => b.force_closed(),
                Step::Reset => b.reset(),
            }
            let m = b.metrics();
            prop_assert!(m.probes_in_flight <= max_probes, "{} probes in flight", m.probes_in_flight);
            let held_probes = held.iter().filter(|p| p.is_probe()).count() as u32;
            prop_assert_eq!(m.probes_in_flight, held_probes);
            prop_assert_eq!(m.calls.success + m.calls.failure + m.calls.ignored + m.calls.timeout + m.calls.rejected + held.len() as u64, attempts);
            if let Some(forced) = m.forced {
                prop_assert_eq!(b.state(), forced);
            }
        }
    }
}
