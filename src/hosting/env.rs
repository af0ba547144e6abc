//! [`GameEnv`]: what every hosted game shares, whatever its kind — the restart policy of
//! each kind, the AI's settings and the LLM that speaks for it, the real-time settings, the
//! lobby's event sink, the snapshot keeper and the metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AiConfig, Config, RestartPolicyConfig};
use crate::llm::LlmClient;
use crate::metrics::Metrics;
use crate::store::event_sink::EventSink;
use crate::store::keeper::SnapshotKeeper;

/// The settings of every real-time game (`realtime:`).
#[derive(Clone, Debug)]
pub struct TickSettings {
    /// Ticks per second.
    pub tick_hz: u32,
    /// Keep the state as the last good one every this many ticks.
    pub snapshot_every_ticks: u32,
    /// Grid size.
    pub width: u16,
    /// Grid size.
    pub height: u16,
}

impl TickSettings {
    /// The time between two ticks.
    pub fn period(&self) -> Duration {
        Duration::from_micros(1_000_000 / u64::from(self.tick_hz.max(1)))
    }
}

/// Everything a game needs from the server, shared by every hosted game.
pub struct GameEnv {
    /// The restart policy of each kind (`supervision.kinds.<name>` over
    /// `supervision.default`), by kind name.
    pub policies: Vec<(&'static str, RestartPolicyConfig)>,
    /// `supervision.default`, for a kind without an entry.
    pub default_policy: RestartPolicyConfig,
    /// AI player settings.
    pub ai: AiConfig,
    /// Real-time games' settings.
    pub ticks: TickSettings,
    /// Where runtime events go (the lobby is built from them).
    pub events: Arc<EventSink>,
    /// The one owner of each game's latest snapshot.
    pub keeper: Arc<SnapshotKeeper>,
    /// Server metrics.
    pub metrics: Arc<Metrics>,
    /// How the AI player talks (canned lines when no LLM is configured).
    pub llm: Arc<LlmClient>,
    /// Whether a turn-based game shows a change only once its snapshot is durable
    /// (`storage.durability`, docs/DESIGN.md D18).
    pub durable_before_shown: bool,
}

impl GameEnv {
    /// The environment of this server's games, from its configuration.
    pub fn new(
        config: &Config,
        events: Arc<EventSink>,
        keeper: Arc<SnapshotKeeper>,
        metrics: Arc<Metrics>,
        llm: Arc<LlmClient>,
    ) -> Self {
        GameEnv {
            policies: crate::game::kinds::KINDS
                .iter()
                .map(|k| (k.name, config.supervision.policy_for(k.name)))
                .collect(),
            default_policy: config.supervision.default.clone(),
            ai: config.ai.clone(),
            ticks: TickSettings {
                tick_hz: config.realtime.tick_hz,
                snapshot_every_ticks: config.realtime.snapshot_every_ticks,
                width: config.realtime.width,
                height: config.realtime.height,
            },
            events,
            keeper,
            metrics,
            llm,
            durable_before_shown: config.storage.durable_before_shown(),
        }
    }

    /// The restart policy of `kind`.
    pub fn policy(&self, kind: &str) -> &RestartPolicyConfig {
        self.policies.iter().find(|(k, _)| *k == kind).map_or(&self.default_policy, |(_, p)| p)
    }
}
