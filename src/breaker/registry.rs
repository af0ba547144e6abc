//! BreakerRegistry is an actor. It builds every named breaker from `circuit_breakers:`,
//! hands out shared handles by name (an unknown name fails at start-up, never at call
//! time), receives every state change and logs it once (name, from, to, why), and renders
//! the breakers for the health, metrics and admin endpoints. Calls never pass through it:
//! a call uses its breaker handle directly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use actix::prelude::*;

use super::{BreakerState, CircuitBreaker, Transition};
use crate::config::{BreakerConfig, CircuitBreakersConfig};
use crate::metrics::{BREAKER_CALLS, BREAKER_CALL_DURATION, BREAKER_STATE, BREAKER_TRANSITIONS};
use crate::protocol::views::{
    BreakerMetricsView, BreakerView, BreakersMetrics, DurationHistogram, HistogramBucket, TransitionCount,
};
use crate::runtime::system::{Part, SystemActor, SystemTree};

/// A breaker name the code asked for that the configuration does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no circuit breaker named {0:?} is configured")]
pub struct UnknownBreaker(pub String);

/// Transition counts by (breaker, from, to), for Prometheus.
type TransitionCounts = Mutex<BTreeMap<(String, &'static str, &'static str), u64>>;

/// Every breaker by name: cheap to clone and share. Besides the configured ones it holds
/// the breakers derived from one of them at run time ([`Breakers::derive`]: one per shard
/// of a Redis Cluster).
#[derive(Clone)]
pub struct Breakers {
    by_name: Arc<RwLock<BTreeMap<String, Entry>>>,
    transitions: Arc<TransitionCounts>,
    registry: Recipient<Transitioned>,
}

#[derive(Clone)]
struct Entry {
    breaker: CircuitBreaker,
    /// As configured (before the master switch and the pass-throughs applied).
    settings: BreakerConfig,
}

impl Breakers {
    /// Builds every configured breaker. `disabled` names are pass-throughs (the llm breaker
    /// when no LLM is configured). Transitions are counted here and sent to `registry`.
    pub fn build(config: &CircuitBreakersConfig, disabled: &[&str], registry: Recipient<Transitioned>) -> Breakers {
        let breakers = Breakers { by_name: Arc::default(), transitions: Arc::default(), registry };
        for (name, settings) in &config.breakers {
            let mut settings = settings.clone();
            // The section's master switch, and the breakers asked to be pass-throughs.
            settings.enabled &= config.enabled && !disabled.contains(&name.as_str());
            breakers.insert(name, settings);
        }
        breakers
    }

    fn insert(&self, name: &str, settings: BreakerConfig) -> CircuitBreaker {
        let breaker = CircuitBreaker::new(name, settings.clone());
        let (counts, to) = (self.transitions.clone(), self.registry.clone());
        breaker.set_listener(Arc::new(move |t: &Transition| {
            let key = (t.name.to_string(), t.from.as_str(), t.to.as_str());
            *counts.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(0) += 1;
            to.do_send(Transitioned(t.clone()));
        }));
        self.write().insert(name.to_owned(), Entry { breaker: breaker.clone(), settings });
        breaker
    }

    /// The breaker `name`, made now with the settings of `from` if it does not exist yet
    /// (shown, counted and forced like a configured one).
    pub fn derive(&self, name: &str, from: &str) -> Result<CircuitBreaker, UnknownBreaker> {
        if let Ok(existing) = self.get(name) {
            return Ok(existing);
        }
        let (settings, enabled) = {
            let by_name = self.read();
            let from = by_name.get(from).ok_or_else(|| UnknownBreaker(from.to_owned()))?;
            (from.settings.clone(), from.breaker.config().enabled)
        };
        Ok(self.insert(name, BreakerConfig { enabled, ..settings }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.by_name.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.by_name.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The breaker called `name`; ask at start-up so a typo fails the start, not a call.
    pub fn get(&self, name: &str) -> Result<CircuitBreaker, UnknownBreaker> {
        self.read().get(name).map(|e| e.breaker.clone()).ok_or_else(|| UnknownBreaker(name.to_owned()))
    }

    /// Names of the breakers that are open now.
    pub fn open(&self) -> Vec<String> {
        self.read().iter().filter(|(_, e)| e.breaker.state() == BreakerState::Open).map(|(n, _)| n.clone()).collect()
    }

    /// One breaker, for `/health/circuit-breakers/{name}`.
    pub fn describe(&self, name: &str) -> Option<BreakerView> {
        self.read().get(name).map(|e| describe(name, e))
    }

    /// Every breaker.
    pub fn describe_all(&self) -> Vec<BreakerView> {
        self.read().iter().map(|(n, e)| describe(n, e)).collect()
    }

    /// Detailed metrics (with duration histograms) for `/metrics/circuit-breakers`.
    pub fn metrics_json(&self) -> BreakersMetrics {
        let breakers = self
            .read()
            .iter()
            .map(|(name, e)| {
                let (buckets, count, sum) = e.breaker.histogram();
                let buckets = buckets.into_iter().map(|(le, count)| HistogramBucket { le, count }).collect();
                BreakerMetricsView {
                    breaker: describe(name, e),
                    duration_seconds: DurationHistogram { count, sum, buckets },
                }
            })
            .collect();
        let transitions = self
            .transitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((name, from, to), count)| TransitionCount { name: name.clone(), from, to, count: *count })
            .collect();
        BreakersMetrics { breakers, transitions }
    }

    /// Prometheus text for every breaker, under the families `metrics` declares.
    pub fn render_prometheus(&self, out: &mut String) {
        BREAKER_STATE.describe(out);
        for (name, e) in self.read().iter() {
            let state = e.breaker.state();
            for s in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                BREAKER_STATE.sample(out, &[name, s.as_str()], u8::from(s == state));
            }
        }
        BREAKER_CALLS.describe(out);
        for (name, e) in self.read().iter() {
            let m = e.breaker.metrics();
            for (outcome, n) in [
                ("success", m.calls.success),
                ("failure", m.calls.failure),
                ("timeout", m.calls.timeout),
                ("rejected", m.calls.rejected),
                ("ignored", m.calls.ignored),
            ] {
                BREAKER_CALLS.sample(out, &[name, outcome], n);
            }
        }
        BREAKER_TRANSITIONS.describe(out);
        for ((name, from, to), n) in self.transitions.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            BREAKER_TRANSITIONS.sample(out, &[name, from, to], n);
        }
        BREAKER_CALL_DURATION.describe(out);
        for (name, e) in self.read().iter() {
            let (buckets, count, sum) = e.breaker.histogram();
            BREAKER_CALL_DURATION.histogram_samples(out, &[name], &buckets, count, sum);
        }
    }
}

fn describe(name: &str, e: &Entry) -> BreakerView {
    let m = e.breaker.metrics();
    BreakerView {
        name: name.to_owned(),
        state: e.breaker.state().as_str(),
        enabled: e.breaker.config().enabled,
        forced: m.forced.map(|f| f.as_str()),
        counters: m.calls,
        consecutive_failures: m.consecutive_failures,
        failure_rate_pct: m.failure_rate_pct,
        probes_in_flight: m.probes_in_flight,
        open_remaining_ms: m.open_remaining_ms,
        transitions: m.transitions,
        config: e.settings.clone(),
    }
}

/// A breaker changed state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Transitioned(pub Transition);

/// Logs each state change once. A system actor (`breakers`): the breakers themselves live
/// in [`Breakers`], shared with every caller, so a restart has nothing to rebuild and no
/// breaker forgets its state.
pub struct BreakerRegistry {
    tree: Arc<SystemTree>,
}

impl BreakerRegistry {
    /// The registry, reporting to `tree`.
    pub fn new(tree: Arc<SystemTree>) -> Self {
        BreakerRegistry { tree }
    }
}

impl Actor for BreakerRegistry {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.tree.up(Part::Breakers);
    }
}

impl Supervised for BreakerRegistry {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.tree.restarting(Part::Breakers, ctx);
    }
}

crate::runtime::system::system_actor!(BreakerRegistry, Part::Breakers);

impl Handler<Transitioned> for BreakerRegistry {
    type Result = ();

    fn handle(&mut self, msg: Transitioned, ctx: &mut Context<Self>) {
        self.guarded(ctx, |_, _| log_transition(msg));
    }
}

/// Each open period is logged once, at WARN, with why it began (the failure that tripped
/// the breaker, or the failed probe's error) and how long it lasts; the half-open step
/// between two open periods is at DEBUG, since a store breaker probes every second or so
/// while its dependency is down and the next WARN (or the close) says how the probe went.
fn log_transition(msg: Transitioned) {
    let t = msg.0;
    let (name, from, to, reason) = (&*t.name, t.from.as_str(), t.to.as_str(), &t.reason);
    match t.to {
        BreakerState::Open => tracing::warn!(breaker = name, from, to, %reason, "circuit breaker opened"),
        BreakerState::HalfOpen => {
            tracing::debug!(breaker = name, from, to, %reason, "circuit breaker half-open: probing")
        }
        BreakerState::Closed => tracing::info!(breaker = name, from, to, %reason, "circuit breaker closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CircuitBreakersConfig;

    /// Collects transitions instead of logging them.
    struct Collect(tokio::sync::mpsc::UnboundedSender<Transition>);
    impl Actor for Collect {
        type Context = Context<Self>;
    }
    impl Handler<Transitioned> for Collect {
        type Result = ();
        fn handle(&mut self, msg: Transitioned, _: &mut Context<Self>) {
            let _ = self.0.send(msg.0);
        }
    }

    #[actix_rt::test]
    async fn builds_every_configured_breaker_and_refuses_unknown_names() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let breakers = Breakers::build(&CircuitBreakersConfig::default(), &["llm"], Collect(tx).start().recipient());
        assert_eq!(breakers.get("nope").err(), Some(UnknownBreaker("nope".to_owned())));
        let db = breakers.get("database").expect("database");
        assert!(db.config().enabled);
        assert_eq!(db.config().failure_threshold, 3);
        assert!(!breakers.get("llm").expect("llm").config().enabled, "listed as disabled");
        assert!(breakers.describe("nope").is_none());
        assert_eq!(breakers.describe_all().len(), 3);

        db.force_open();
        assert_eq!(breakers.open(), vec!["database".to_owned()]);
        let t = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
            .expect("the transition reaches the registry");
        assert_eq!((&*t.name, t.from, t.to), ("database", BreakerState::Closed, BreakerState::Open));
        let mut text = String::new();
        breakers.render_prometheus(&mut text);
        assert!(text.contains("rampart_circuit_breaker_state{name=\"database\",state=\"open\"} 1"), "{text}");
        assert!(
            text.contains("rampart_circuit_breaker_transitions_total{name=\"database\",from=\"closed\",to=\"open\"} 1")
        );
        assert!(text.contains("rampart_circuit_breaker_call_duration_seconds_bucket{name=\"llm\",le=\"+Inf\"} 0"));
        let json = breakers.metrics_json();
        assert_eq!(json.transitions[0].count, 1);
    }

    #[actix_rt::test]
    async fn the_master_switch_turns_every_breaker_into_a_pass_through() {
        let config = CircuitBreakersConfig { enabled: false, ..CircuitBreakersConfig::default() };
        let breakers = Breakers::build(
            &config,
            &[],
            BreakerRegistry::new(SystemTree::new(&Default::default())).start().recipient(),
        );
        for b in breakers.describe_all() {
            assert!(!b.enabled, "{b:?}");
        }
        let db = breakers.get("database").expect("database");
        for _ in 0..10 {
            let _ = db.call_sync(|| Err::<(), _>(()), |_| super::super::Outcome::Failure);
        }
        assert_eq!(db.state(), BreakerState::Closed);
    }
}
