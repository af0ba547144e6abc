//! Restart policies, as pure code: how long to wait before the n-th restart (immediate,
//! fixed delay, exponential backoff with jitter) and the per-game sliding window that
//! decides when a game has failed too often and must be closed.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::{RestartPolicyConfig, RestartStrategy};

/// What the supervisor does after a failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Restart after `delay`; this is restart number `attempt` within the window.
    Restart {
        /// 1-based count of restarts within the current window, this one included.
        attempt: u32,
        /// How long to wait before the game answers again.
        delay: Duration,
    },
    /// The limit is spent: close the game.
    GiveUp {
        /// Restarts within the window when it gave up.
        restarts_in_window: u32,
    },
}

/// The delay before restart number `attempt` (1-based), given a uniform random number in
/// `[0, 1)` for the jitter.
pub fn delay_for(policy: &RestartPolicyConfig, attempt: u32, random01: f64) -> Duration {
    let base_ms = match policy.strategy {
        RestartStrategy::Immediate => return Duration::ZERO,
        RestartStrategy::Delayed => policy.initial_delay_ms as f64,
        RestartStrategy::Exponential => {
            let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
            (policy.initial_delay_ms as f64 * policy.multiplier.powi(exp)).min(policy.max_delay_ms as f64)
        }
    };
    let factor = 1.0 - policy.jitter + 2.0 * policy.jitter * random01.clamp(0.0, 1.0);
    let ms = (base_ms * factor).clamp(0.0, policy.max_delay_ms.max(policy.initial_delay_ms) as f64);
    Duration::from_micros((ms * 1000.0) as u64)
}

/// One game's recent restarts, for its sliding window. Kept per game, never per server.
#[derive(Clone, Debug, Default)]
pub struct RestartLedger {
    times_ms: VecDeque<u64>,
}

impl RestartLedger {
    /// Records a failure at `now_ms` and decides what to do.
    pub fn record(&mut self, policy: &RestartPolicyConfig, now_ms: u64, random01: f64) -> Decision {
        let window_ms = policy.within_secs.saturating_mul(1000);
        while self.times_ms.front().is_some_and(|t| now_ms.saturating_sub(*t) >= window_ms) {
            self.times_ms.pop_front();
        }
        let in_window = u32::try_from(self.times_ms.len()).unwrap_or(u32::MAX);
        if in_window >= policy.max_restarts {
            return Decision::GiveUp { restarts_in_window: in_window };
        }
        self.times_ms.push_back(now_ms);
        let attempt = in_window + 1;
        Decision::Restart { attempt, delay: delay_for(policy, attempt, random01) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(strategy: RestartStrategy) -> RestartPolicyConfig {
        RestartPolicyConfig {
            strategy,
            initial_delay_ms: 100,
            max_delay_ms: 1000,
            multiplier: 2.0,
            jitter: 0.0,
            max_restarts: 3,
            within_secs: 10,
            hang_timeout_ms: 2000,
            hold_messages_max_ms: 250,
        }
    }

    #[test]
    fn strategies_compute_their_delays() {
        let ms = |p: &RestartPolicyConfig, n| delay_for(p, n, 0.5).as_millis();
        assert_eq!(ms(&policy(RestartStrategy::Immediate), 3), 0);
        assert_eq!(ms(&policy(RestartStrategy::Delayed), 1), 100);
        assert_eq!(ms(&policy(RestartStrategy::Delayed), 4), 100);
        let exp = policy(RestartStrategy::Exponential);
        assert_eq!([1, 2, 3, 4, 5, 9].map(|n| ms(&exp, n)), [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn window_limits_restarts_then_forgets_old_ones() {
        let p = policy(RestartStrategy::Immediate);
        let mut ledger = RestartLedger::default();
        for (i, t) in [0u64, 1000, 2000].into_iter().enumerate() {
            assert_eq!(ledger.record(&p, t, 0.5), Decision::Restart { attempt: i as u32 + 1, delay: Duration::ZERO });
        }
        assert_eq!(ledger.record(&p, 3000, 0.5), Decision::GiveUp { restarts_in_window: 3 });
        // The first restart (t=0) leaves the 10 s window at t=10_000.
        assert!(matches!(ledger.record(&p, 10_000, 0.5), Decision::Restart { attempt: 3, .. }));
    }

    proptest! {
        #[test]
        fn jitter_stays_within_its_band(attempt in 1u32..40, r in 0.0f64..1.0, jitter in 0.0f64..=1.0) {
            let mut p = policy(RestartStrategy::Exponential);
            p.jitter = jitter;
            let d = delay_for(&p, attempt, r).as_secs_f64() * 1000.0;
            let base = (100.0 * 2f64.powi(attempt as i32 - 1)).min(1000.0);
            prop_assert!(d >= base * (1.0 - jitter) - 0.01);
            prop_assert!(d <= (base * (1.0 + jitter)).min(1000.0) + 0.01);
        }

        #[test]
        fn never_more_than_max_restarts_in_any_window(gaps in proptest::collection::vec(0u64..4000, 1..60)) {
            let p = policy(RestartStrategy::Immediate);
            let mut ledger = RestartLedger::default();
            let mut now = 0;
            let mut restarts: Vec<u64> = Vec::new();
            for gap in gaps {
                now += gap;
                if let Decision::Restart { .. } = ledger.record(&p, now, 0.0) {
                    restarts.push(now);
                }
            }
            for (i, t) in restarts.iter().enumerate() {
                let in_window = restarts[i..].iter().filter(|u| **u < t + 10_000).count();
                prop_assert!(in_window <= 3);
            }
        }
    }
}
