//! The games' own sections: `ai:` (the computer player's search) and `realtime:` (the
//! tick games).

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// `ai:` section: the computer player.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Search depth in plies, 1..=12.
    #[garde(range(min = 1, max = 12))]
    #[default = 7]
    pub search_depth: u32,
    /// Node budget per move, 1000..=100000000 (a full 40k-node search is ~1.5 ms).
    #[garde(range(min = 1000, max = 100_000_000))]
    #[default = 40_000]
    pub max_nodes: u64,
    /// Pause before the AI plays, so it feels human, in ms, 0..=10000.
    #[garde(range(max = 10_000))]
    #[default = 300]
    pub think_delay_ms: u64,
}

/// `realtime:` section: real-time games (light cycles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Ticks per second, 1..=60.
    #[garde(range(min = 1, max = 60))]
    #[default = 20]
    pub tick_hz: u32,
    /// Keep the state as the last good one every this many ticks, 1..=1200 (a crash
    /// resumes from it).
    #[garde(range(min = 1, max = 1200))]
    #[default = 20]
    pub snapshot_every_ticks: u32,
    /// Grid width in cells, 8..=200.
    #[garde(range(min = 8, max = 200))]
    #[default = 64]
    pub width: u16,
    /// Grid height in cells, 8..=200.
    #[garde(range(min = 8, max = 200))]
    #[default = 44]
    pub height: u16,
}
