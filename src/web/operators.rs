//! The operators' endpoints: `/health` (for load balancers, the page and the dashboard),
//! `/metrics` (Prometheus), and the circuit breakers' views. They only read: what operators
//! may change is in [`super::admin`]. Each handler's `#[utoipa::path]` lists the statuses
//! that are its own; the document adds those every operation of its kind answers
//! (`openapi::CommonErrors`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};

use crate::health::HealthReport;
use crate::hosting::supervisor::{ArbiterHealth, GetArbiterHealth};
use crate::protocol::views::{
    AdmissionCheck, ArbitersCheck, BreakerBrief, BreakerView, BreakersCheck, BreakersList, BreakersMetrics,
    ConnectionsCheck, GamesCheck, HealthBody, HealthChecks, LineLostView, SystemActorsCheck, VitalView, VitalsCheck,
};
use crate::protocol::ErrorEnvelope;
use crate::runtime::status::Status;
use crate::web::responses;
use crate::web::{unknown_breaker, Answer, AppState, State};

/// `GET /health`: the server's health, for load balancers, the page and the dashboard.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "`healthy` or `degraded`: the server takes new games.", body = HealthBody),
        (status = 503, description = "`overloaded` or `draining`, or the game supervisor does not answer (`checks.arbiters.status: \"down\"`): send players elsewhere. Past the connection ceiling, SERVER_BUSY `reason: \"connections\"` instead.", body = responses::HealthUnavailable,
            headers(("Retry-After" = u64, description = "Only with SERVER_BUSY (the connection ceiling)."))),
    )
)]
pub(super) async fn health(state: State) -> HttpResponse {
    let arbiters = state.supervisor.send(GetArbiterHealth).await.ok();
    let draining = state.draining.load(Ordering::Acquire);
    let report = state.health.report();
    let games = games_check(&state);
    let checks = HealthChecks {
        connections: connections_check(&state),
        arbiters: arbiters_check(arbiters),
        vitals: vitals_check(&state, &report),
        admission: admission_check(&state, draining, &report, &games),
        circuit_breakers: breakers_check(&state),
        system_actors: system_actors_check(&state),
        games,
    };
    let body = HealthBody {
        status: overall_status(draining, &report, &checks),
        checks,
        uptime_secs: state.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    };
    // 503 tells a load balancer to send players elsewhere: this server takes no new game
    // (draining, overloaded), or cannot host one (its game supervisor does not answer).
    if draining || report.status == Status::Overloaded || arbiters.is_none() {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// The server's status in one word: `draining`, `overloaded` (as the monitor measures or an
/// admin forced), `degraded` (the monitor says so, or a game thread, a dependency or a
/// system actor is not ok), else `healthy`.
fn overall_status(draining: bool, report: &HealthReport, checks: &HealthChecks) -> &'static str {
    if draining {
        "draining"
    } else if report.status == Status::Overloaded {
        "overloaded"
    } else if checks.arbiters.status != "ok"
        || checks.circuit_breakers.status != "ok"
        || checks.system_actors.status != "ok"
        || report.status == Status::Degraded
    {
        "degraded"
    } else {
        "healthy"
    }
}

/// Whether `active` games fill `admission.max_games`.
fn is_full(games: &GamesCheck) -> bool {
    games.active.max(0) as u64 >= games.max
}

/// Games in play against `admission.max_games`, and those hosted here.
fn games_check(state: &AppState) -> GamesCheck {
    let mut games = GamesCheck {
        status: "ok",
        active: state.metrics.games_active(),
        max: state.config.admission.max_games,
        hosted: state.registry.len(),
    };
    if is_full(&games) {
        games.status = "full";
    }
    games
}

/// Open connections against the ceiling, and the sockets among them.
fn connections_check(state: &AppState) -> ConnectionsCheck {
    let (game_sockets, lobby_sockets) = state.metrics.sockets();
    ConnectionsCheck {
        status: if state.gate.open() > state.gate.ceiling() { "saturated" } else { "ok" },
        open: state.gate.open(),
        max: state.gate.ceiling(),
        game_sockets,
        lobby_sockets,
    }
}

/// The game arbiters as the supervisor reports them (`None`: it did not answer).
fn arbiters_check(arbiters: Option<ArbiterHealth>) -> ArbitersCheck {
    let lost = arbiters.map_or(0, |a| a.lost);
    ArbitersCheck {
        status: match arbiters {
            None => "down",
            Some(_) if lost > 0 => "degraded",
            Some(_) => "ok",
        },
        running: arbiters.map_or(0, |a| a.arbiters),
        lost,
        detail: if lost > 0 {
            "a hung game held a thread that was abandoned; restart the process when convenient (docs/OPERATIONS.md)"
        } else {
            "all game threads answer the watchdog"
        },
    }
}

/// The health monitor's latest report and the status an admin forced, if any.
fn vitals_check(state: &AppState, report: &HealthReport) -> VitalsCheck {
    VitalsCheck {
        status: report.status.as_str(),
        forced: state.health.forced().map(Status::as_str),
        samples: report.samples,
        vitals: report
            .vitals
            .iter()
            .map(|v| (v.name, VitalView { status: v.status.as_str(), value: v.value, limit: v.limit }))
            .collect(),
    }
}

/// Whether a new game would start now, and why not; the line and its figures.
fn admission_check(state: &AppState, draining: bool, report: &HealthReport, games: &GamesCheck) -> AdmissionCheck {
    let stats = &state.admission_stats;
    let closed_because = if draining {
        Some("draining")
    } else if report.status == Status::Overloaded {
        Some("overloaded")
    } else if is_full(games) {
        Some("full")
    } else if stats.waiting() > 0 {
        Some("line")
    } else {
        None
    };
    let losses = state.line.losses();
    AdmissionCheck {
        status: if stats.waiting() > 0 { "waitlisting" } else { "admitting" },
        open: closed_because.is_none(),
        closed_because,
        line_lost: LineLostView { count: losses.count, restored: losses.restored, last_at: losses.last_at },
        waiting: stats.waiting(),
        admitted_from_line: stats.admitted_from_line(),
        refused: stats.refused(),
        admission_rate_per_sec: stats.rate_per_sec(),
        admit_per_sec: state.config.admission.admit_per_sec,
        max_waitlist: state.config.admission.max_waitlist,
    }
}

/// Each circuit breaker's state, and those open.
fn breakers_check(state: &AppState) -> BreakersCheck {
    let open = state.breakers.open();
    let breakers: BTreeMap<String, BreakerBrief> = state
        .breakers
        .describe_all()
        .into_iter()
        .map(|b| (b.name, BreakerBrief { state: b.state, enabled: b.enabled }))
        .collect();
    BreakersCheck {
        status: if open.is_empty() { "ok" } else { "degraded" },
        detail: if open.is_empty() {
            "every dependency answers"
        } else {
            "a dependency is failing: the features that need it fall back until its breaker closes"
        },
        open,
        breakers,
    }
}

/// The system actors and tasks under the supervision tree: `failed` when one is past its
/// restart limit, `restarting` while one waits out its delay.
fn system_actors_check(state: &AppState) -> SystemActorsCheck {
    let actors = state.tree.describe();
    let status = if actors.iter().any(|a| a.status == "failed") {
        "failed"
    } else if actors.iter().any(|a| a.status == "restarting") {
        "restarting"
    } else {
        "ok"
    };
    SystemActorsCheck { status, restarts: actors.iter().map(|a| a.restarts).sum(), actors }
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Every `rampart_` family in the Prometheus text format (version 0.0.4), each with `# HELP` and `# TYPE`.", body = String, content_type = "text/plain"),
    )
)]
pub(super) async fn metrics(state: State) -> HttpResponse {
    let mut text = state.metrics.render();
    state.breakers.render_prometheus(&mut text);
    state.tree.render(&mut text);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

/// `GET /health/circuit-breakers`.
#[utoipa::path(
    get,
    path = "/health/circuit-breakers",
    tag = "operations",
    responses(
        (status = 200, description = "Every circuit breaker.", body = BreakersList),
    )
)]
pub(super) async fn breakers_health(state: State) -> web::Json<BreakersList> {
    web::Json(BreakersList { breakers: state.breakers.describe_all() })
}

/// `GET /health/circuit-breakers/{name}`.
#[utoipa::path(
    get,
    path = "/health/circuit-breakers/{name}",
    tag = "operations",
    params(("name" = String, Path, description = "The breaker's name: `database`, `messaging`, `llm`, and in a Redis Cluster one `database:FIRST-LAST` per shard.", example = "database")),
    responses(
        (status = 200, description = "The breaker.", body = BreakerView),
        (status = 404, description = "NOT_FOUND: no breaker of that name (`details.name`).", body = ErrorEnvelope),
    )
)]
pub(super) async fn breaker_health(state: State, path: web::Path<String>) -> Answer<web::Json<BreakerView>> {
    state.breakers.describe(&path).map(web::Json).ok_or_else(|| unknown_breaker(&path))
}

/// `GET /metrics/circuit-breakers`.
#[utoipa::path(
    get,
    path = "/metrics/circuit-breakers",
    tag = "operations",
    responses(
        (status = 200, description = "Every breaker with its call-duration histogram, and the transition counts.", body = BreakersMetrics),
    )
)]
pub(super) async fn breakers_metrics(state: State) -> web::Json<BreakersMetrics> {
    web::Json(state.breakers.metrics_json())
}
