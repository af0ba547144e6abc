//! `circuit_breakers:`: the section (its master switch and defaults), the built-in breakers,
//! and [`BreakerConfig`], one breaker's settings. The breaker itself (`src/breaker/`) is
//! built from these; the loader reads [`YAML_NAMES`] to show errors under the YAML's keys.

use std::collections::BTreeMap;

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// `circuit_breakers:` section. Accepts the circuit-breaker plan's schema (`enabled`,
/// `default_failure_threshold`, `default_timeout`, and one section per breaker name beside
/// them) plus Rampart's extra keys ([`BreakerConfig`]). A breaker section in the file
/// replaces the built-in one of that name; keys it leaves out come from the section
/// defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakersConfig {
    /// Master switch, the plan's rollback switch: `false` makes every breaker a pass-through.
    #[garde(skip)]
    #[default = true]
    pub enabled: bool,
    /// Consecutive failures that trip a breaker that does not set its own, 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[default = 5]
    pub default_failure_threshold: u32,
    /// Seconds a tripped breaker stays open when it does not set its own, 0.1..=3600.
    #[garde(range(min = 0.1, max = 3600.0))]
    #[default = 30.0]
    pub default_timeout: f64,
    /// Every breaker by name (written beside the keys above in the YAML); always holds
    /// `database`, `messaging` and `llm`.
    #[garde(dive)]
    #[default(built_in_breakers())]
    pub breakers: BTreeMap<String, BreakerConfig>,
}

/// The names the server itself calls through; they always exist.
pub const BUILT_IN_BREAKERS: [&str; 3] = ["database", "messaging", "llm"];

/// The store breakers' first open period, seconds: a blip costs a tenth of a second.
pub const STORE_OPEN_SECS: f64 = 0.1;

/// The store breakers' longest open period, seconds. With its jitter (±10%) and the time a
/// probe takes, a store that answers again is used again within a second of it; a dead
/// one sees about two connection attempts a second from each instance.
pub const STORE_OPEN_MAX_SECS: f64 = 0.5;

/// Probes a store breaker lets through at once while half-open.
pub const STORE_PROBES: u32 = 4;

fn built_in_breakers() -> BTreeMap<String, BreakerConfig> {
    let named = |failure_threshold, open_secs: f64, operations: &[&str]| BreakerConfig {
        failure_threshold,
        open_secs,
        open_max_secs: open_secs,
        operations: operations.iter().map(|o| (*o).to_owned()).collect(),
        ..BreakerConfig::default()
    };
    // The store breakers probe on a short, growing schedule (0.1, 0.2, 0.4, 0.5, 0.5 … s): Redis
    // comes back within seconds of a failover, and every minute of an open `database`
    // breaker is a minute of moves that are not durable.
    // Several probes at once: a blocking read of the event stream (up to a second) must not
    // hold the only slot while the snapshot writer's probe waits behind it.
    let store = |failure_threshold, operations: &[&str]| BreakerConfig {
        open_max_secs: STORE_OPEN_MAX_SECS,
        open_multiplier: 2.0,
        half_open_max_probes: STORE_PROBES,
        ..named(failure_threshold, STORE_OPEN_SECS, operations)
    };
    let database = [
        "save_snapshot",
        "load_snapshot",
        "remove_snapshot",
        "lease",
        "seat_session",
        "waitlist",
        "read_event",
        "runtime_record",
    ];
    BTreeMap::from([
        ("database".to_owned(), store(3, &database)),
        ("messaging".to_owned(), store(2, &["publish_event", "relay", "lobby_announce"])),
        ("llm".to_owned(), BreakerConfig { call_timeout_ms: 5000, ..named(3, 30.0, &["chat_completion"]) }),
    ])
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
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
