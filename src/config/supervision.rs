//! `supervision:`: restart policies (a default, per game kind, per system actor) and the
//! hang watchdog.

use std::collections::BTreeMap;

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// `supervision:` section: how crashed or hung games are restarted (docs/DESIGN.md D1, D3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    /// The policy of every game kind without its own entry in `kinds`.
    #[garde(dive)]
    pub default: RestartPolicyConfig,
    /// Per game kind (names `[a-z0-9_]+`): only the keys given override `default`. Use
    /// [`SupervisionConfig::policy_for`] for the merged policy.
    #[garde(dive)]
    pub kinds: BTreeMap<String, PartialRestartPolicy>,
    /// How often the watchdog pings each game arbiter, in ms, 10..=60000.
    #[garde(range(min = 10, max = 60_000))]
    #[default = 250]
    pub watchdog_interval_ms: u64,
    /// The server's own actors (src/runtime/system.rs): only the keys given override
    /// `default`. Use [`SupervisionConfig::system_policy`] for the merged policy.
    #[garde(dive)]
    pub system: SystemPolicies,
}

/// A system actor's `hang_timeout_ms` unless `supervision.system.<name>` sets one.
pub const SYSTEM_HANG_TIMEOUT_MS: u64 = 10_000;

/// `supervision.system`: one partial policy per system actor, over `supervision.default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct SystemPolicies {
    /// The BreakerRegistry.
    #[garde(dive)]
    pub breakers: PartialRestartPolicy,
    /// The HealthMonitor.
    #[garde(dive)]
    pub health: PartialRestartPolicy,
    /// The AdmissionController and its waitlist processor.
    #[garde(dive)]
    pub admission: PartialRestartPolicy,
    /// The lobby feed and its event-stream consumer.
    #[garde(dive)]
    pub lobby: PartialRestartPolicy,
    /// The GameSupervisor.
    #[garde(dive)]
    pub games: PartialRestartPolicy,
    /// The Relay between instances (with Redis).
    #[garde(dive)]
    pub relay: PartialRestartPolicy,
    /// The SnapshotKeeper's writer task.
    #[garde(dive)]
    pub keeper: PartialRestartPolicy,
    /// The runtime-event publisher task.
    #[garde(dive)]
    pub events: PartialRestartPolicy,
    /// The instance heartbeat task (with Redis).
    #[garde(dive)]
    pub heartbeat: PartialRestartPolicy,
}

impl SystemPolicies {
    /// Each system actor's name and partial policy.
    pub fn each(&self) -> [(&'static str, &PartialRestartPolicy); 9] {
        [
            ("breakers", &self.breakers),
            ("health", &self.health),
            ("admission", &self.admission),
            ("lobby", &self.lobby),
            ("games", &self.games),
            ("relay", &self.relay),
            ("keeper", &self.keeper),
            ("events", &self.events),
            ("heartbeat", &self.heartbeat),
        ]
    }
}

impl SupervisionConfig {
    /// The restart policy of a system actor or task (`breakers`, `health`, `admission`,
    /// `lobby`, `games`, `relay`, `keeper`, `events`, `heartbeat`): its `system` entry over `default`, except `hang_timeout_ms`, which is
    /// [`SYSTEM_HANG_TIMEOUT_MS`] unless the entry sets it (a system actor's hang ends the
    /// process, so it is not judged by the games' tighter limit).
    pub fn system_policy(&self, name: &str) -> RestartPolicyConfig {
        let partial =
            self.system.each().into_iter().find(|(n, _)| *n == name).map(|(_, p)| p.clone()).unwrap_or_default();
        let mut policy = partial.apply_to(&self.default);
        if partial.hang_timeout_ms.is_none() {
            policy.hang_timeout_ms = SYSTEM_HANG_TIMEOUT_MS;
        }
        policy
    }

    /// The restart policy for a game kind: its `kinds` entry over `default`, or `default`.
    pub fn policy_for(&self, kind: &str) -> RestartPolicyConfig {
        match self.kinds.get(kind) {
            Some(partial) => partial.apply_to(&self.default),
            None => self.default.clone(),
        }
    }
}

/// How a game's restart delay is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartStrategy {
    /// Restart at once.
    Immediate,
    /// Wait `initial_delay_ms` before every restart.
    Delayed,
    /// Start at `initial_delay_ms`, multiply by `multiplier` each time, cap at
    /// `max_delay_ms`, with `jitter`.
    Exponential,
}

/// A complete restart policy (`supervision.default`, or a kind merged over it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct RestartPolicyConfig {
    /// immediate | delayed | exponential.
    #[garde(skip)]
    #[default(RestartStrategy::Exponential)]
    pub strategy: RestartStrategy,
    /// First (or fixed) restart delay in ms, 0..=3600000.
    #[garde(range(max = 3_600_000))]
    #[default = 100]
    pub initial_delay_ms: u64,
    /// Longest restart delay in ms, at most 3600000 and at least `initial_delay_ms`.
    #[garde(range(max = 3_600_000))]
    #[default = 5000]
    pub max_delay_ms: u64,
    /// Factor the exponential delay grows by after each restart, 1.0..=10.0.
    #[garde(range(min = 1.0, max = 10.0))]
    #[default = 2.0]
    pub multiplier: f64,
    /// Random spread applied to each delay, as a fraction of it, 0.0..=1.0.
    #[garde(range(min = 0.0, max = 1.0))]
    #[default = 0.2]
    pub jitter: f64,
    /// Restarts allowed within `within_secs`; past that the game is closed, 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[default = 5]
    pub max_restarts: u32,
    /// Length of the sliding window for `max_restarts`, in seconds, 1..=86400.
    #[garde(range(min = 1, max = 86_400))]
    #[default = 60]
    pub within_secs: u64,
    /// A message still running after this many ms (or an arbiter that does not answer the
    /// watchdog) counts as a hang, 50..=600000.
    #[garde(range(min = 50, max = 600_000))]
    #[default = 2000]
    pub hang_timeout_ms: u64,
    /// Restart delays up to this many ms hold incoming messages until the game is back;
    /// longer ones answer GAME_RESTARTING instead, 0..=60000.
    #[garde(range(max = 60_000))]
    #[default = 250]
    pub hold_messages_max_ms: u64,
}

/// A per-kind restart policy: unset fields take the value of `supervision.default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct PartialRestartPolicy {
    /// See [`RestartPolicyConfig::strategy`].
    #[garde(skip)]
    pub strategy: Option<RestartStrategy>,
    /// See [`RestartPolicyConfig::initial_delay_ms`].
    #[garde(inner(range(max = 3_600_000)))]
    pub initial_delay_ms: Option<u64>,
    /// See [`RestartPolicyConfig::max_delay_ms`].
    #[garde(inner(range(max = 3_600_000)))]
    pub max_delay_ms: Option<u64>,
    /// See [`RestartPolicyConfig::multiplier`].
    #[garde(inner(range(min = 1.0, max = 10.0)))]
    pub multiplier: Option<f64>,
    /// See [`RestartPolicyConfig::jitter`].
    #[garde(inner(range(min = 0.0, max = 1.0)))]
    pub jitter: Option<f64>,
    /// See [`RestartPolicyConfig::max_restarts`].
    #[garde(inner(range(min = 1, max = 1000)))]
    pub max_restarts: Option<u32>,
    /// See [`RestartPolicyConfig::within_secs`].
    #[garde(inner(range(min = 1, max = 86_400)))]
    pub within_secs: Option<u64>,
    /// See [`RestartPolicyConfig::hang_timeout_ms`].
    #[garde(inner(range(min = 50, max = 600_000)))]
    pub hang_timeout_ms: Option<u64>,
    /// See [`RestartPolicyConfig::hold_messages_max_ms`].
    #[garde(inner(range(max = 60_000)))]
    pub hold_messages_max_ms: Option<u64>,
}

impl PartialRestartPolicy {
    /// The given fields over `base`.
    pub fn apply_to(&self, base: &RestartPolicyConfig) -> RestartPolicyConfig {
        RestartPolicyConfig {
            strategy: self.strategy.unwrap_or(base.strategy),
            initial_delay_ms: self.initial_delay_ms.unwrap_or(base.initial_delay_ms),
            max_delay_ms: self.max_delay_ms.unwrap_or(base.max_delay_ms),
            multiplier: self.multiplier.unwrap_or(base.multiplier),
            jitter: self.jitter.unwrap_or(base.jitter),
            max_restarts: self.max_restarts.unwrap_or(base.max_restarts),
            within_secs: self.within_secs.unwrap_or(base.within_secs),
            hang_timeout_ms: self.hang_timeout_ms.unwrap_or(base.hang_timeout_ms),
            hold_messages_max_ms: self.hold_messages_max_ms.unwrap_or(base.hold_messages_max_ms),
        }
    }
}
