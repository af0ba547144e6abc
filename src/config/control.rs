//! The control sections: `health:` (what the HealthMonitor samples and its limits),
//! `lobby:` (its pages and pace) and `admission:` (the gate, the waitlist, per-client limits).

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// `health:` section: what the HealthMonitor samples and when it calls the server degraded
/// or overloaded. Each vital has a limit (0 turns it off); at `degraded_ratio` of it the
/// server is degraded, at the limit overloaded. A level is left only below `exit_ratio` of
/// its entry point (hysteresis); the status worsens at once, always (the gate closes at its
/// limit), and improves only after `dwell_ms` in the worse one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Sampling interval in ms, 50..=60000.
    #[garde(range(min = 50, max = 60_000))]
    #[default = 1000]
    pub interval_ms: u64,
    /// Limit in MB on the memory the process holds (RSS minus the allocator's free pages),
    /// 0..=1048576; 0 = off.
    #[garde(range(max = 1_048_576))]
    pub max_memory_mb: u64,
    /// System memory in use (100 − available %) limit, 0..=100; 0 = off.
    #[garde(range(min = 0.0, max = 100.0))]
    #[default = 95.0]
    pub max_memory_used_pct: f64,
    /// Event-loop lag limit in ms (how late the monitor's tick fires), 0..=60000; 0 = off.
    #[garde(range(max = 60_000))]
    #[default = 500]
    pub max_lag_ms: u64,
    /// Game-creation requests per second (measured where they arrive), 0..=1000000; 0 = off.
    #[garde(range(min = 0.0, max = 1_000_000.0))]
    pub max_create_rate_per_sec: f64,
    /// Fraction of a limit at which the server counts as degraded, 0.1..=1.
    #[garde(range(min = 0.1, max = 1.0))]
    #[default = 0.8]
    pub degraded_ratio: f64,
    /// A level is left below this fraction of its entry point, 0.5..=1.
    #[garde(range(min = 0.5, max = 1.0))]
    #[default = 0.9]
    pub exit_ratio: f64,
    /// Least time in a status before it may improve (a worse status takes effect at once),
    /// ms, 0..=600000.
    #[garde(range(max = 600_000))]
    #[default = 3000]
    pub dwell_ms: u64,
}

/// `lobby:` section: the lobby (`/ws/lobby` and `GET /api/v1/games`) is served in pages,
/// and a lobby socket is sent a page only when it changed, at a bounded rate, so that many
/// lobby sockets and many games do not multiply into a flood (docs/PROTOCOL.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct LobbyConfig {
    /// Games in one page: a `lobby` frame and a `GET /api/v1/games` answer carry at most
    /// this many, with the total, 1..=200.
    #[garde(range(min = 1, max = 200))]
    #[default = 25]
    pub page_size: u64,
    /// A lobby socket is sent at most one `lobby` frame per this many ms; changes in between
    /// are sent together in the next one, 100..=60000.
    #[garde(range(min = 100, max = 60_000))]
    #[default = 1000]
    pub push_interval_ms: u64,
}

/// `admission:` section: when a new game is admitted and how fast the waitlist drains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Most games waiting or in play at once (a new game beyond it waits), 1..=10000000.
    #[garde(range(min = 1, max = 10_000_000))]
    #[default = 10_000]
    pub max_games: u64,
    /// New games admitted per second (token bucket rate), 0.1..=100000.
    #[garde(range(min = 0.1, max = 100_000.0))]
    #[default = 50.0]
    pub rate_per_sec: f64,
    /// Token bucket size: new games admitted at once after a quiet spell, 1..=100000.
    #[garde(range(min = 1, max = 100_000))]
    #[default = 100]
    pub burst: u32,
    /// Waiting players admitted per second once health allows, 0.1..=10000.
    #[garde(range(min = 0.1, max = 10_000.0))]
    #[default = 20.0]
    pub admit_per_sec: f64,
    /// A waiting ticket nobody watches or polls for this long is dropped, s, 5..=86400.
    #[garde(range(min = 5, max = 86_400))]
    #[default = 120]
    pub ticket_ttl_secs: u64,
    /// Longest line; beyond it SERVER_BUSY carries no ticket, 1..=10000000.
    #[garde(range(min = 1, max = 10_000_000))]
    #[default = 100_000]
    pub max_waitlist: u64,
    /// A claimed entry whose game was not created within this many ms (its instance
    /// crashed) goes back to the front of the line, 100..=600000.
    #[garde(range(min = 100, max = 600_000))]
    #[default = 30_000]
    pub claim_lease_ms: u64,
    /// New games one client address may create per second (its own token bucket; past
    /// it, RATE_LIMITED with `Retry-After`), 0.01..=100000.
    #[garde(range(min = 0.01, max = 100_000.0))]
    #[default = 5.0]
    pub client_creations_per_sec: f64,
    /// Creations one client address may make at once after a quiet spell, 1..=100000.
    #[garde(range(min = 1, max = 100_000))]
    #[default = 20]
    pub client_creation_burst: u32,
    /// Tickets one client address may hold in the line at once (past it, RATE_LIMITED), so
    /// one address cannot fill `max_waitlist`, 1..=1000000.
    #[garde(range(min = 1, max = 1_000_000))]
    #[default = 3]
    pub max_tickets_per_client: u64,
}
