//! The shapes of the operations endpoints: the circuit breakers (`/health/circuit-breakers`,
//! `/metrics/circuit-breakers`), `/health` itself, and the small REST answers. Serialised
//! as they are; every field is part of the contract the dashboard and scripts read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::breaker::BreakerConfig;

/// One breaker: its state, counters and configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BreakerView {
    /// Its name.
    pub name: String,
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// False: a pass-through.
    pub enabled: bool,
    /// The state an admin forced, if any.
    pub forced: Option<&'static str>,
    /// Calls by outcome.
    pub counters: crate::breaker::CallCounts,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Failure rate over the window, when configured and measured.
    pub failure_rate_pct: Option<f64>,
    /// Probes running now.
    pub probes_in_flight: u32,
    /// Time left before an open breaker lets a probe through.
    pub open_remaining_ms: Option<u64>,
    /// State changes so far.
    pub transitions: u64,
    /// Its configuration, with the YAML's names.
    pub config: BreakerConfig,
}

/// `GET /health/circuit-breakers`.
#[derive(Clone, Debug, Serialize)]
pub struct BreakersList {
    /// Every breaker.
    pub breakers: Vec<BreakerView>,
}

/// One breaker with its call-duration histogram.
#[derive(Clone, Debug, Serialize)]
pub struct BreakerMetricsView {
    /// The breaker.
    #[serde(flatten)]
    pub breaker: BreakerView,
    /// Call durations.
    pub duration_seconds: DurationHistogram,
}

/// A cumulative histogram.
#[derive(Clone, Debug, Serialize)]
pub struct DurationHistogram {
    /// Calls timed.
    pub count: u64,
    /// Their total duration, seconds.
    pub sum: f64,
    /// Calls at or under each bound.
    pub buckets: Vec<HistogramBucket>,
}

/// One histogram bucket.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HistogramBucket {
    /// Upper bound, seconds.
    pub le: f64,
    /// Calls at or under it.
    pub count: u64,
}

/// A count of one transition of one breaker.
#[derive(Clone, Debug, Serialize)]
pub struct TransitionCount {
    /// The breaker.
    pub name: String,
    /// The state it left.
    pub from: &'static str,
    /// The state it entered.
    pub to: &'static str,
    /// How often.
    pub count: u64,
}

/// `GET /metrics/circuit-breakers`.
#[derive(Clone, Debug, Serialize)]
pub struct BreakersMetrics {
    /// Every breaker, with its histogram.
    pub breakers: Vec<BreakerMetricsView>,
    /// Transition counts.
    pub transitions: Vec<TransitionCount>,
}

/// `GET /api/v1/games`.
#[derive(Clone, Debug, Serialize)]
pub struct GamesList {
    /// The lobby's game summaries, newest first.
    pub games: Vec<Value>,
}

/// `POST /api/v1/admin/games/{id}/fault`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// `panic`, `panic_on_next_command` or `hang`.
    pub kind: String,
    /// How long a hang lasts (default 30 s).
    pub duration_ms: Option<u64>,
}

/// `POST /api/v1/admin/health`: the status to force, or null to measure again.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthOverrideRequest {
    /// healthy | degraded | overloaded | null.
    pub status: Option<String>,
}

/// `POST /api/v1/admin/breakers/{name}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerActionRequest {
    /// force_open | force_closed | reset.
    pub action: String,
}

/// `POST /api/v1/admin/games/{id}/fault` accepted.
#[derive(Clone, Debug, Serialize)]
pub struct FaultAccepted {
    /// The game.
    pub game_id: String,
    /// The fault's kind.
    pub fault: String,
    /// Always true.
    pub accepted: bool,
}

/// `POST /api/v1/admin/health` done.
#[derive(Clone, Debug, Serialize)]
pub struct HealthOverride {
    /// The status in force now.
    pub status: &'static str,
    /// The forced status, or null when measured again.
    pub forced: Option<&'static str>,
}

/// Where a waiting player follows their place in line (SERVER_BUSY `details.watch`).
#[derive(Clone, Debug, Serialize)]
pub struct WatchLinks {
    /// The lobby socket (`{"type":"watch","ticket"}`).
    pub ws: &'static str,
    /// The polling URL.
    pub poll: String,
}

impl WatchLinks {
    /// The links for `ticket`.
    pub fn for_ticket(ticket: &crate::ids::Ticket) -> Self {
        WatchLinks { ws: "/ws/lobby", poll: format!("/api/v1/waitlist/{}", ticket.expose()) }
    }
    /// As a `details` value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// `GET /health`.
#[derive(Clone, Debug, Serialize)]
pub struct HealthBody {
    /// healthy | degraded | overloaded | draining.
    pub status: &'static str,
    /// One entry per dependency and vital.
    pub checks: HealthChecks,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// The server's version.
    pub version: &'static str,
}

/// The checks of `/health`.
#[derive(Clone, Debug, Serialize)]
pub struct HealthChecks {
    /// Games in play and hosted.
    pub games: GamesCheck,
    /// Open connections against the ceiling.
    pub connections: ConnectionsCheck,
    /// Game arbiters (threads), and those lost to hangs.
    pub arbiters: ArbitersCheck,
    /// The HealthMonitor's vitals.
    pub vitals: VitalsCheck,
    /// The line.
    pub admission: AdmissionCheck,
    /// The circuit breakers.
    pub circuit_breakers: BreakersCheck,
}

/// Games in play and hosted.
#[derive(Clone, Debug, Serialize)]
pub struct GamesCheck {
    /// ok | full.
    pub status: &'static str,
    /// Waiting or in play (against `admission.max_games`).
    pub active: i64,
    /// `admission.max_games`.
    pub max: u64,
    /// Held by this server, ended ones included until removed.
    pub hosted: usize,
}

/// Open connections.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionsCheck {
    /// ok | saturated.
    pub status: &'static str,
    /// TCP connections open.
    pub open: usize,
    /// The ceiling.
    pub max: usize,
    /// Game WebSockets.
    pub game_sockets: i64,
    /// Lobby WebSockets.
    pub lobby_sockets: i64,
}

/// Game arbiters.
#[derive(Clone, Debug, Serialize)]
pub struct ArbitersCheck {
    /// ok | degraded | down.
    pub status: &'static str,
    /// Arbiters running.
    pub running: usize,
    /// Abandoned since start (each a leaked thread).
    pub lost: u64,
    /// What it means, in words.
    pub detail: &'static str,
}

/// The HealthMonitor's vitals.
#[derive(Clone, Debug, Serialize)]
pub struct VitalsCheck {
    /// The monitor's status.
    pub status: &'static str,
    /// The status an admin forced (`POST /api/v1/admin/health`), or null when measured.
    pub forced: Option<&'static str>,
    /// Samples taken.
    pub samples: u64,
    /// Each vital by name.
    pub vitals: BTreeMap<&'static str, VitalView>,
}

/// One vital.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct VitalView {
    /// Its level.
    pub status: &'static str,
    /// The sampled value.
    pub value: f64,
    /// Its limit (0: off).
    pub limit: f64,
}

/// The line.
#[derive(Clone, Debug, Serialize)]
pub struct AdmissionCheck {
    /// admitting | waitlisting.
    pub status: &'static str,
    /// Players waiting.
    pub waiting: u64,
    /// Admitted from the line so far.
    pub admitted_from_line: u64,
    /// Creation requests refused (sent to the line) so far.
    pub refused: u64,
    /// Measured admissions per second, when measured.
    pub admission_rate_per_sec: Option<f64>,
    /// The configured pace (`admission.admit_per_sec`), used for the ETA until a rate is measured.
    pub admit_per_sec: f64,
    /// The longest the line may grow (`admission.max_waitlist`).
    pub max_waitlist: u64,
}

/// The circuit breakers.
#[derive(Clone, Debug, Serialize)]
pub struct BreakersCheck {
    /// ok | degraded.
    pub status: &'static str,
    /// The names of those open.
    pub open: Vec<String>,
    /// Each breaker's state by name.
    pub breakers: BTreeMap<String, BreakerBrief>,
    /// What it means, in words.
    pub detail: &'static str,
}

/// A breaker's state in `/health`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BreakerBrief {
    /// Its state.
    pub state: &'static str,
    /// False: a pass-through.
    pub enabled: bool,
}
