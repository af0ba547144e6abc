//! The shapes of the operations endpoints: the circuit breakers (`/health/circuit-breakers`,
//! `/metrics/circuit-breakers`), `/health` itself, and the small REST answers. Serialised
//! as they are; every field is part of the contract the dashboard and scripts read. Each
//! derives `ToSchema` for the OpenAPI document (`src/web/openapi.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;

use super::schemas::{breaker_config_schema, call_counts_schema};
use super::string_enum;
use crate::config::BreakerConfig;

/// One breaker: its state, counters and configuration.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
    #[schema(schema_with = call_counts_schema)]
    pub counters: CallCounts,
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
    #[schema(schema_with = breaker_config_schema)]
    pub config: BreakerConfig,
}

/// Calls through a breaker by outcome: the breaker counts them, its view serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CallCounts {
    /// Calls that succeeded.
    pub success: u64,
    /// Calls that failed (including slow calls).
    pub failure: u64,
    /// Calls cut (or overrun) by the call timeout.
    pub timeout: u64,
    /// Calls refused without being made.
    pub rejected: u64,
    /// Calls classified as ignored, or cancelled before they finished.
    pub ignored: u64,
    /// Calls slower than `slow_call_ms` (also counted in `failure`).
    pub slow: u64,
}

/// `GET /health/circuit-breakers`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BreakersList {
    /// Every breaker.
    pub breakers: Vec<BreakerView>,
}

/// One breaker with its call-duration histogram.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BreakerMetricsView {
    /// The breaker.
    #[serde(flatten)]
    pub breaker: BreakerView,
    /// Call durations.
    pub duration_seconds: DurationHistogram,
}

/// A cumulative histogram.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DurationHistogram {
    /// Calls timed.
    pub count: u64,
    /// Their total duration, seconds.
    pub sum: f64,
    /// Calls at or under each bound.
    pub buckets: Vec<HistogramBucket>,
}

/// One histogram bucket.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct HistogramBucket {
    /// Upper bound, seconds.
    pub le: f64,
    /// Calls at or under it.
    pub count: u64,
}

/// A count of one transition of one breaker.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BreakersMetrics {
    /// Every breaker, with its histogram.
    pub breakers: Vec<BreakerMetricsView>,
    /// Transition counts.
    pub transitions: Vec<TransitionCount>,
}

/// `GET /api/v1/games`: one page of the lobby.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GamesList {
    /// At most `page_size` game summaries from every instance: games waiting for a player
    /// first, then games in play, then ended ones; newest first within each.
    #[schema(value_type = Vec<super::GameSummary>)]
    pub games: Vec<Value>,
    /// Which page this is (0-based, `?page=N`).
    pub page: u32,
    /// Games in a full page (`lobby.page_size`).
    pub page_size: u64,
    /// Games in the whole lobby; pages past `total / page_size` are empty.
    pub total: u64,
}

/// One game kind this server plays (`GET /api/v1/kinds`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KindView {
    /// The wire name (`kind` in `POST /api/v1/games` and in summaries).
    pub name: &'static str,
    /// The name people read.
    pub title: &'static str,
    /// The page that plays it; `PAGE?game=ID` joins or resumes a game.
    pub page: &'static str,
    /// `true` for a real-time kind (its `moves` count ticks).
    pub realtime: bool,
}

/// `GET /api/v1/kinds`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KindsList {
    /// Every kind, the default first.
    pub kinds: Vec<KindView>,
}

impl KindsList {
    /// The kinds table as the wire shows it.
    pub fn of_table() -> KindsList {
        let kinds = crate::game::kinds::KINDS
            .iter()
            .map(|k| KindView { name: k.name, title: k.title, page: k.page, realtime: k.ticks().is_some() })
            .collect();
        KindsList { kinds }
    }
}

/// `POST /api/v1/admin/games/{id}/fault`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// `panic`, `panic_on_next_command` or `hang`.
    #[schema(schema_with = fault_kind_schema)]
    pub kind: String,
    /// How long a `hang` lasts, 1..=600000 ms (default 30 000); checked with every kind,
    /// used only by `hang`.
    #[schema(schema_with = hang_schema)]
    #[serde(default, deserialize_with = "whole_number")]
    pub duration_ms: Option<u64>,
}

/// Reads a whole non-negative number, or null. JSON has one number type, so `10000.0` is
/// 10 000 (as the schema's `integer` says); `0.5` or `-1` is the wrong type (BAD_REQUEST).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        // Exact: every whole f64 below 2^64 converts without rounding.
        Some(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!("invalid value: {n}, expected a whole number"))),
    }
}

/// The longest injected hang, ms.
pub const MAX_HANG_MS: u64 = 600_000;

fn hang_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_HANG_MS as f64))
        .description(Some("How long a `hang` lasts, ms (null or absent: 30 000); checked with every kind."))
        .build()
}

/// The faults an admin may inject.
pub const FAULT_KINDS: [&str; 3] = ["panic", "panic_on_next_command", "hang"];

fn fault_kind_schema() -> Object {
    string_enum(&FAULT_KINDS, "The fault to inject.")
}

/// `POST /api/v1/admin/health`: the status to force, or null to measure again.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthOverrideRequest {
    /// healthy | degraded | overloaded | null.
    #[schema(schema_with = forced_status_schema)]
    pub status: Option<String>,
}

/// The statuses an admin may force (`null`, or no `status`, measures again).
pub const FORCED_STATUSES: [&str; 3] = ["healthy", "degraded", "overloaded"];

fn forced_status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(FORCED_STATUSES.iter().map(|s| Value::from(*s)).chain([Value::Null])))
        .description(Some("The status to force, or null (or no `status`) to measure again."))
        .build()
}

/// `POST /api/v1/admin/breakers/{name}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerActionRequest {
    /// force_open | force_closed | reset.
    #[schema(schema_with = breaker_action_schema)]
    pub action: String,
}

/// What an admin may do to a breaker.
pub const BREAKER_ACTIONS: [&str; 3] = ["force_open", "force_closed", "reset"];

fn breaker_action_schema() -> Object {
    string_enum(&BREAKER_ACTIONS, "The action.")
}

/// `POST /api/v1/admin/actors/{name}/fault`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorFaultRequest {
    /// `panic`: the actor panics inside its handler, as a bug would; `hang`: its handler
    /// blocks the server's main thread for `duration_ms` (past the actor's
    /// `hang_timeout_ms` the process exits 70).
    #[schema(schema_with = actor_fault_kind_schema)]
    pub kind: String,
    /// How long a `hang` lasts, 1..=600000 ms (default 30 000); checked with every kind.
    #[schema(schema_with = hang_schema)]
    #[serde(default, deserialize_with = "whole_number")]
    pub duration_ms: Option<u64>,
}

/// The faults an admin may inject into a system actor.
pub const ACTOR_FAULT_KINDS: [&str; 2] = ["panic", "hang"];

fn actor_fault_kind_schema() -> Object {
    string_enum(&ACTOR_FAULT_KINDS, "The fault to inject.")
}

/// `POST /api/v1/admin/actors/{name}/fault` accepted.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActorFaultAccepted {
    /// The system actor.
    pub actor: String,
    /// The fault's kind.
    pub fault: String,
    /// Always true.
    pub accepted: bool,
}

/// `POST /api/v1/admin/games/{id}/fault` accepted.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FaultAccepted {
    /// The game.
    pub game_id: String,
    /// The fault's kind.
    pub fault: String,
    /// Always true.
    pub accepted: bool,
}

/// `POST /api/v1/admin/health` done.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HealthOverride {
    /// The status in force now.
    pub status: &'static str,
    /// The forced status, or null when measured again.
    pub forced: Option<&'static str>,
}

/// Where a waiting player follows their place in line (SERVER_BUSY `details.watch`).
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
    /// The server's own actors under the supervision tree.
    pub system_actors: SystemActorsCheck,
}

/// The system actors (`breakers`, `health`, `admission`, `lobby`, `games`, and `relay`
/// with Redis) and tasks (`keeper`, `events`, and `heartbeat` with Redis) that run here.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SystemActorsCheck {
    /// ok | restarting (one is waiting out its restart delay) | failed (one is past its
    /// limit: the process is ending).
    pub status: &'static str,
    /// Restarts of all of them since the process started.
    pub restarts: u64,
    /// Each one.
    pub actors: Vec<SystemActorView>,
}

/// One system actor on `/health` and the dashboard.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SystemActorView {
    /// `breakers`, `health`, `admission`, `lobby`, `games`, `relay`, `keeper`, `events`
    /// or `heartbeat`.
    pub name: &'static str,
    /// ok | restarting | failed.
    pub status: &'static str,
    /// Restarts since the process started.
    pub restarts: u64,
    /// Panics caught in it since the process started.
    pub panics: u64,
    /// When it last restarted (RFC 3339), if ever.
    pub last_restart_at: Option<String>,
}

/// Games in play and hosted.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct VitalView {
    /// Its level.
    pub status: &'static str,
    /// The sampled value.
    pub value: f64,
    /// Its limit (0: off).
    pub limit: f64,
}

/// The line.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
    /// Whether a new game would start now (the token bucket aside).
    pub open: bool,
    /// Why not: `draining`, `overloaded`, `full` (at `admission.max_games`: the server is
    /// busy, not unwell, and answers 200) or `line` (players wait, first come first
    /// served); null while open.
    pub closed_because: Option<&'static str>,
    /// Times the waitlist's Redis came back without the line it held, and what was put back.
    pub line_lost: LineLostView,
}

/// The waitlist's losses (a Redis restarted empty or from an older copy).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct LineLostView {
    /// Times it happened since this server started.
    pub count: u64,
    /// Entries this server put back at their own place.
    pub restored: u64,
    /// When it last happened (RFC 3339), null if never.
    pub last_at: Option<String>,
}

/// The circuit breakers.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct BreakerBrief {
    /// Its state.
    pub state: &'static str,
    /// False: a pass-through.
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(json: &str) -> Result<FaultRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_hang_duration_is_any_whole_json_number() {
        assert_eq!(fault(r#"{"kind":"hang","duration_ms":10000}"#).expect("int").duration_ms, Some(10_000));
        assert_eq!(fault(r#"{"kind":"hang","duration_ms":10000.0}"#).expect("whole float").duration_ms, Some(10_000));
        assert_eq!(fault(r#"{"kind":"hang","duration_ms":null}"#).expect("null").duration_ms, None);
        assert_eq!(fault(r#"{"kind":"hang"}"#).expect("absent").duration_ms, None);
        for bad in ["0.5", "-1", "-1.0", "1e30", "\"10\""] {
            assert!(fault(&format!(r#"{{"kind":"hang","duration_ms":{bad}}}"#)).is_err(), "{bad}");
        }
    }
}
