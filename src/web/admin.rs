//! The admin endpoints, for drills: faults in a game or a system actor, a breaker forced
//! open or closed, the health status forced. Each one answers only a request with the
//! bearer token the server was started with (`RAMPART_ADMIN_TOKEN`), and does not exist
//! without one. Each handler's `#[utoipa::path]` lists the statuses that are its own; the
//! document adds those every operation of its kind answers (`openapi::CommonErrors`).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::health::ForceStatus;
use crate::hosting::messages::Fault;
use crate::hosting::registry::RunState;
use crate::hosting::relay_wire::{Reply, Wire};
use crate::hosting::supervisor::{Resolve, Resolved};
use crate::ids::PlayerToken;
use crate::metrics::Metrics;
use crate::protocol::views::{
    ActorFaultAccepted, ActorFaultRequest, BreakerActionRequest, BreakerView, FaultAccepted, FaultRequest,
    HealthOverride, HealthOverrideRequest, ACTOR_FAULT_KINDS, BREAKER_ACTIONS, FAULT_KINDS, FORCED_STATUSES,
    MAX_HANG_MS,
};
use crate::protocol::{ErrorBody, ErrorCode, ErrorEnvelope};
use crate::runtime::status::Status;
use crate::runtime::system::{Part, SystemFault};
use crate::web::responses;
use crate::web::throttle::Throttle;
use crate::web::{game_id, read_json, relay, unknown_breaker, Answer, AppState, State};

/// `POST /api/v1/admin/health` `{"status":"overloaded"|"degraded"|"healthy"|null}`: overrides
/// the measured status (null: measure again). For drills.
#[utoipa::path(
    post,
    path = "/api/v1/admin/health",
    tag = "admin",
    request_body(content = HealthOverrideRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The status in force now and the one forced (null: measured).", body = HealthOverride),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN).", body = ErrorEnvelope),
        (status = 500, response = responses::Internal),
    )
)]
pub(super) async fn health_override(
    state: State,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer<web::Json<HealthOverride>> {
    authorize(&state, &req)?;
    let body: HealthOverrideRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    let forced = match body.status.as_deref() {
        None => None,
        Some("healthy") => Some(Status::Healthy),
        Some("degraded") => Some(Status::Degraded),
        Some("overloaded") => Some(Status::Overloaded),
        Some(_) => {
            return Err(ErrorBody::validation("status", "status must be healthy, degraded, overloaded or null").with(
                "allowed",
                FORCED_STATUSES.iter().map(|s| Value::from(*s)).chain([Value::Null]).collect::<Vec<_>>(),
            ))
        }
    };
    state.monitor.send(ForceStatus(forced)).await.map_err(|_| ErrorBody::internal("the health monitor"))?;
    Ok(web::Json(HealthOverride { status: state.health.report().status.as_str(), forced: forced.map(Status::as_str) }))
}

/// `POST /api/v1/admin/games/{id}/fault`: a fault the server handles exactly as a real bug.
#[utoipa::path(
    post,
    path = "/api/v1/admin/games/{id}/fault",
    tag = "admin",
    params(("id" = String, Path, description = "The game id (opaque).")),
    request_body(content = FaultRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "Accepted: the fault is on its way to the game.", body = FaultAccepted),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN); or GAME_NOT_FOUND: no such game.", body = ErrorEnvelope),
        (status = 410, description = "GAME_FAILED: the game is closed for good.", body = ErrorEnvelope),
        (status = 503, response = responses::GameUnavailable),
    )
)]
pub(super) async fn inject_fault(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer<HttpResponse> {
    authorize(&state, &req)?;
    let id = game_id(&path)?;
    let body: FaultRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    if body.duration_ms.is_some_and(|ms| ms == 0 || ms > MAX_HANG_MS) {
        return Err(ErrorBody::validation("duration_ms", format!("duration_ms must be 1..={MAX_HANG_MS}")));
    }
    let fault = match body.kind.as_str() {
        "panic" => Fault::Panic,
        "panic_on_next_command" => Fault::PanicOnNextCommand,
        "hang" => Fault::Hang(Duration::from_millis(body.duration_ms.unwrap_or(30_000))),
        _ => {
            return Err(ErrorBody::validation("kind", "kind must be \"panic\", \"panic_on_next_command\" or \"hang\"")
                .with("allowed", FAULT_KINDS.to_vec()))
        }
    };
    match state.supervisor.send(Resolve(id.clone())).await.map_err(|_| ErrorBody::restarting())? {
        Resolved::Local(cell) => {
            if cell.run_state() == RunState::Failed {
                return Err(ErrorBody::game_failed());
            }
            crate::hosting::registry::inject(cell, fault, state.metrics.clone()).await;
        }
        Resolved::Remote(lease) => {
            let wire = Wire::Fault { req: 0, from: state.cluster.me.clone(), game: id.clone(), fault };
            match relay(&state, lease.instance, wire).await? {
                Reply::Fault { result } => result?,
                _ => return Err(ErrorBody::restarting()),
            }
        }
        Resolved::NotFound => return Err(ErrorBody::game_not_found()),
        Resolved::Unavailable(e) => return Err(e),
    }
    tracing::warn!(game_id = %id, kind = %body.kind, "admin injected a fault");
    Ok(HttpResponse::Accepted().json(FaultAccepted { game_id: id.to_string(), fault: body.kind, accepted: true }))
}

/// `POST /api/v1/admin/actors/{name}/fault`: a panic in a system actor or task, caught and
/// handled exactly as a real bug there (src/supervision/system.rs).
#[utoipa::path(
    post,
    path = "/api/v1/admin/actors/{name}/fault",
    tag = "admin",
    params(("name" = String, Path, description = "An actor (`breakers`, `health`, `admission`, `lobby`, `games`, `relay` with Redis) or a background task (`keeper`, `events`, `heartbeat` with Redis).")),
    request_body(content = ActorFaultRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "Accepted: the fault is on its way to the actor.", body = ActorFaultAccepted),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN), no system actor has that name (`details.allowed`), or it does not run here (`heartbeat` without Redis).", body = ErrorEnvelope),
        (status = 503, response = responses::ActorUnavailable),
    )
)]
pub(super) async fn inject_actor_fault(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer<HttpResponse> {
    authorize(&state, &req)?;
    let Some(part) = Part::parse(&path) else {
        let allowed: Vec<&str> = Part::ALL.iter().map(|p| p.name()).collect();
        return Err(ErrorBody::not_found(format!("no system actor named {:?}", path.as_str())).with("allowed", allowed));
    };
    if !state.tree.runs(part) {
        return Err(ErrorBody::not_found(format!(
            "{} does not run on this server (it runs only with Redis)",
            part.name()
        )));
    }
    let body: ActorFaultRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    if body.duration_ms.is_some_and(|ms| ms == 0 || ms > MAX_HANG_MS) {
        return Err(ErrorBody::validation("duration_ms", format!("duration_ms must be 1..={MAX_HANG_MS}")));
    }
    let fault = match body.kind.as_str() {
        "panic" => SystemFault::Panic,
        "hang" => SystemFault::Hang(Duration::from_millis(body.duration_ms.unwrap_or(30_000))),
        _ => {
            return Err(ErrorBody::validation("kind", "kind must be \"panic\" or \"hang\"")
                .with("allowed", ACTOR_FAULT_KINDS.to_vec()))
        }
    };
    if !state.tree.inject(part, fault) {
        return Err(ErrorBody::new(ErrorCode::ServerBusy, format!("the {} actor is not taking messages", part.name()))
            .with("retry_after_ms", 1000));
    }
    tracing::warn!(actor = part.name(), kind = %body.kind, "admin injected a fault into a system actor");
    Ok(HttpResponse::Accepted().json(ActorFaultAccepted {
        actor: part.name().to_owned(),
        fault: body.kind,
        accepted: true,
    }))
}

/// `POST /api/v1/admin/breakers/{name}`: force a breaker open or closed, or reset it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/breakers/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "The breaker's name: `database`, `messaging`, `llm`, and in a Redis Cluster one `database:FIRST-LAST` per shard.", example = "database")),
    request_body(content = BreakerActionRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The breaker after the action.", body = BreakerView),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN), or no breaker of that name (`details.name`).", body = ErrorEnvelope),
    )
)]
pub(super) async fn breaker_action(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer<web::Json<BreakerView>> {
    authorize(&state, &req)?;
    let body: BreakerActionRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    let breaker = state.breakers.get(&path).map_err(|_| unknown_breaker(&path))?;
    match body.action.as_str() {
        "force_open" => breaker.force_open(),
        "force_closed" => breaker.force_closed(),
        "reset" => breaker.reset(),
        _ => {
            return Err(ErrorBody::validation("action", "action must be force_open, force_closed or reset")
                .with("allowed", BREAKER_ACTIONS.to_vec()))
        }
    }
    tracing::warn!(breaker = %path, action = %body.action, state = breaker.state().as_str(), "admin changed a circuit breaker");
    state.breakers.describe(&path).map(web::Json).ok_or_else(|| unknown_breaker(&path))
}

/// Lets a request with the admin token through: 404 NOT_FOUND when the server has no admin
/// token (the admin endpoints do not exist), 401 UNAUTHORIZED for a missing or wrong one.
fn authorize(state: &AppState, req: &HttpRequest) -> Answer<()> {
    let Some(expected) = state.config.secrets.admin_token.as_ref() else {
        // Without an admin token the admin endpoints do not exist.
        return Err(ErrorBody::not_found("no such endpoint"));
    };
    let presented =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let ok =
        presented.is_some_and(|p| PlayerToken::from_client(p).matches(&PlayerToken::from_client(expected.expose())));
    if ok {
        Ok(())
    } else {
        admin_refused(&state.metrics, req.path());
        Err(ErrorBody::new(ErrorCode::Unauthorized, "admin endpoints need Authorization: Bearer <admin token>"))
    }
}

/// Refused admin requests: counted, and logged at most once a second.
static ADMIN_REFUSALS: Throttle = Throttle::new(1000);

/// Counts an admin request refused for its token (`rampart_admin_refused_total`) and logs
/// it at most once a second with the count, so nobody can flood the log with them.
fn admin_refused(metrics: &Metrics, path: &str) {
    metrics.admin_refused();
    if let Some(refused) = ADMIN_REFUSALS.hit() {
        tracing::warn!(
            path,
            refused,
            "refused admin requests without the right bearer token (count since the last such line)"
        );
    }
}
