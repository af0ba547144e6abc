//! BreakerRegistry is an actor. It builds every named breaker from `circuit_breakers:`,
//! hands out shared handles by name (an unknown name fails at start-up, never at call
//! time), receives every state change and logs it once (name, from, to, why), and renders
//! the breakers for the health, metrics and admin endpoints. Calls never pass through it:
//! a call uses its breaker handle directly.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use serde_json::{json, Value};

use super::{BreakerConfig, BreakerState, CircuitBreaker, FailureRate, Transition};
use crate::config::{BreakerSettings, CircuitBreakersConfig};

/// A breaker name the code asked for that the configuration does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no circuit breaker named {0:?} is configured")]
pub struct UnknownBreaker(pub String);

/// Transition counts by (breaker, from, to), for Prometheus.
type TransitionCounts = Mutex<BTreeMap<(String, &'static str, &'static str), u64>>;

/// Every breaker by name: cheap to clone and share.
#[derive(Clone)]
pub struct Breakers {
    by_name: Arc<BTreeMap<String, Entry>>,
    transitions: Arc<TransitionCounts>,
}

#[derive(Clone)]
struct Entry {
    breaker: CircuitBreaker,
    settings: BreakerSettings,
}

/// The mapping from YAML settings to a breaker's configuration.
pub fn breaker_config(settings: &BreakerSettings, master_enabled: bool) -> BreakerConfig {
    BreakerConfig {
        enabled: master_enabled && settings.enabled,
        failure_threshold: settings.failure_threshold,
        failure_rate: settings.failure_rate_threshold_pct.map(|threshold_pct| FailureRate {
            threshold_pct,
            window_calls: settings.failure_rate_window_calls,
            min_calls: settings.failure_rate_min_calls,
        }),
        slow_call_ms: settings.slow_call_ms,
        call_timeout_ms: settings.call_timeout_ms,
        open_secs: settings.timeout_secs,
        open_max_secs: settings.timeout_max_secs,
        open_multiplier: settings.timeout_multiplier,
        jitter: settings.jitter,
        half_open_max_probes: settings.half_open_max_probes,
        half_open_successes_to_close: settings.half_open_successes,
    }
}

impl Breakers {
    /// Builds every configured breaker. `disabled` names are pass-throughs (the llm breaker
    /// when no LLM is configured). Transitions are counted here and sent to `registry`.
    pub fn build(config: &CircuitBreakersConfig, disabled: &[&str], registry: Recipient<Transitioned>) -> Breakers {
        let transitions: Arc<TransitionCounts> = Arc::default();
        let mut by_name = BTreeMap::new();
        for (name, settings) in &config.breakers {
            let mut settings = settings.clone();
            if disabled.contains(&name.as_str()) {
                settings.enabled = false;
            }
            let breaker = CircuitBreaker::new(name, breaker_config(&settings, config.enabled));
            let (counts, to) = (transitions.clone(), registry.clone());
            breaker.set_listener(Arc::new(move |t: &Transition| {
                let key = (t.name.to_string(), t.from.as_str(), t.to.as_str());
                *counts.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(0) += 1;
                to.do_send(Transitioned(t.clone()));
            }));
            by_name.insert(name.clone(), Entry { breaker, settings });
        }
        Breakers { by_name: Arc::new(by_name), transitions }
    }

    /// The breaker called `name`; ask at start-up so a typo fails the start, not a call.
    pub fn get(&self, name: &str) -> Result<CircuitBreaker, UnknownBreaker> {
        self.by_name.get(name).map(|e| e.breaker.clone()).ok_or_else(|| UnknownBreaker(name.to_owned()))
    }

    /// Names of the breakers that are open now.
    pub fn open(&self) -> Vec<String> {
        self.by_name.iter().filter(|(_, e)| e.breaker.state() == BreakerState::Open).map(|(n, _)| n.clone()).collect()
    }

    /// One breaker as JSON for `/health/circuit-breakers/{name}`.
    pub fn describe(&self, name: &str) -> Option<Value> {
        self.by_name.get(name).map(|e| describe(name, e))
    }

    /// Every breaker as JSON.
    pub fn describe_all(&self) -> Vec<Value> {
        self.by_name.iter().map(|(n, e)| describe(n, e)).collect()
    }

    /// Detailed metrics (with duration histograms) as JSON for `/metrics/circuit-breakers`.
    pub fn metrics_json(&self) -> Value {
        let breakers: Vec<Value> = self
            .by_name
            .iter()
            .map(|(name, e)| {
                let (buckets, count, sum_secs) = e.breaker.histogram();
                let mut v = describe(name, e);
                v["duration_seconds"] = json!({
                    "count": count,
                    "sum": sum_secs,
                    "buckets": buckets.iter().map(|(le, n)| json!({"le": le, "count": n})).collect::<Vec<_>>(),
                });
                v
            })
            .collect();
        let transitions: Vec<Value> = self
            .transitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((n, f, t), c)| json!({"name": n, "from": f, "to": t, "count": c}))
            .collect();
        json!({ "breakers": breakers, "transitions": transitions })
    }

    /// Prometheus text for every breaker.
    pub fn render_prometheus(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP rampart_circuit_breaker_state Current state of each circuit breaker (1 for the state it is in)."
        );
        let _ = writeln!(out, "# TYPE rampart_circuit_breaker_state gauge");
        for (name, e) in self.by_name.iter() {
            let state = e.breaker.state();
            for s in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                let _ = writeln!(
                    out,
                    "rampart_circuit_breaker_state{{name=\"{name}\",state=\"{}\"}} {}",
                    s.as_str(),
                    u8::from(s == state)
                );
            }
        }
        let _ = writeln!(out, "# HELP rampart_circuit_breaker_calls_total Calls through each breaker by outcome.");
        let _ = writeln!(out, "# TYPE rampart_circuit_breaker_calls_total counter");
        for (name, e) in self.by_name.iter() {
            let m = e.breaker.metrics();
            for (outcome, n) in [
                ("success", m.success),
                ("failure", m.failure),
                ("timeout", m.timeout),
                ("rejected", m.rejected),
                ("ignored", m.ignored),
            ] {
                let _ =
                    writeln!(out, "rampart_circuit_breaker_calls_total{{name=\"{name}\",outcome=\"{outcome}\"}} {n}");
            }
        }
        let _ = writeln!(out, "# HELP rampart_circuit_breaker_transitions_total State changes of each breaker.");
        let _ = writeln!(out, "# TYPE rampart_circuit_breaker_transitions_total counter");
        for ((name, from, to), n) in self.transitions.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "rampart_circuit_breaker_transitions_total{{name=\"{name}\",from=\"{from}\",to=\"{to}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP rampart_circuit_breaker_call_duration_seconds Duration of calls through each breaker."
        );
        let _ = writeln!(out, "# TYPE rampart_circuit_breaker_call_duration_seconds histogram");
        for (name, e) in self.by_name.iter() {
            let (buckets, count, sum) = e.breaker.histogram();
            for (le, n) in buckets {
                let _ = writeln!(
                    out,
                    "rampart_circuit_breaker_call_duration_seconds_bucket{{name=\"{name}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "rampart_circuit_breaker_call_duration_seconds_bucket{{name=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "rampart_circuit_breaker_call_duration_seconds_sum{{name=\"{name}\"}} {sum}");
            let _ = writeln!(out, "rampart_circuit_breaker_call_duration_seconds_count{{name=\"{name}\"}} {count}");
        }
    }
}

fn describe(name: &str, e: &Entry) -> Value {
    let m = e.breaker.metrics();
    let s = &e.settings;
    json!({
        "name": name,
        "state": e.breaker.state().as_str(),
        "enabled": e.breaker.config().enabled,
        "forced": m.forced.map(|f| f.as_str()),
        "counters": {
            "success": m.success, "failure": m.failure, "timeout": m.timeout,
            "rejected": m.rejected, "ignored": m.ignored, "slow": m.slow,
        },
        "consecutive_failures": m.consecutive_failures,
        "failure_rate_pct": m.failure_rate_pct,
        "probes_in_flight": m.probes_in_flight,
        "open_remaining_ms": m.open_remaining_ms,
        "transitions": m.transitions,
        "config": {
            "failure_threshold": s.failure_threshold,
            "timeout": s.timeout_secs,
            "timeout_max": s.timeout_max_secs,
            "timeout_multiplier": s.timeout_multiplier,
            "jitter": s.jitter,
            "failure_rate_threshold_pct": s.failure_rate_threshold_pct,
            "failure_rate_window_calls": s.failure_rate_window_calls,
            "failure_rate_min_calls": s.failure_rate_min_calls,
            "slow_call_ms": s.slow_call_ms,
            "call_timeout_ms": s.call_timeout_ms,
            "half_open_max_probes": s.half_open_max_probes,
            "half_open_successes": s.half_open_successes,
            "operations": s.operations,
        },
    })
}

/// A breaker changed state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Transitioned(pub Transition);

/// Logs each state change once.
#[derive(Default)]
pub struct BreakerRegistry;

impl Actor for BreakerRegistry {
    type Context = Context<Self>;
}

impl Handler<Transitioned> for BreakerRegistry {
    type Result = ();

    fn handle(&mut self, msg: Transitioned, _: &mut Context<Self>) {
        let t = msg.0;
        let (name, from, to, reason) = (&*t.name, t.from.as_str(), t.to.as_str(), &t.reason);
        match t.to {
            BreakerState::Open => tracing::warn!(breaker = name, from, to, %reason, "circuit breaker opened"),
            BreakerState::HalfOpen => {
                tracing::info!(breaker = name, from, to, %reason, "circuit breaker half-open: probing")
            }
            BreakerState::Closed => tracing::info!(breaker = name, from, to, %reason, "circuit breaker closed"),
        }
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
        assert_eq!(json["transitions"][0]["count"], 1);
    }

    #[actix_rt::test]
    async fn the_master_switch_turns_every_breaker_into_a_pass_through() {
        let config = CircuitBreakersConfig { enabled: false, ..CircuitBreakersConfig::default() };
        let breakers = Breakers::build(&config, &[], BreakerRegistry.start().recipient());
        for b in breakers.describe_all() {
            assert_eq!(b["enabled"], false, "{b}");
        }
        let db = breakers.get("database").expect("database");
        for _ in 0..10 {
            let _ = db.call_sync(|| Err::<(), _>(()), |_| super::super::Outcome::Failure);
        }
        assert_eq!(db.state(), BreakerState::Closed);
    }
}
