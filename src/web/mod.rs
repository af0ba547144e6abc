//! The HTTP edge: the routes table, the state every handler shares ([`AppState`]) and the
//! helpers they share. The handlers are split by audience: [`players`] (games, kinds, the
//! waitlist, a plain request to a socket path), [`operators`] (`/health`, `/metrics`, the
//! breakers' views) and [`admin`] (faults, breaker actions, the forced health status).
//! Handlers translate between HTTP and actor messages and return `Result<_, ErrorBody>`: an
//! error leaves in the docs/PROTOCOL.md shape with its status and `Retry-After`
//! ([`ErrorBody`] is the handlers' `ResponseError`, here), and is counted by code in the
//! edge middleware ([`edge`]). Each REST handler's `#[utoipa::path]` lists the statuses that
//! are its own; [`openapi`] adds those every operation of its kind answers and assembles
//! them into `/api/v1/openapi.json`.

pub mod admin;
pub mod assets;
#[cfg(feature = "conformance")]
pub mod echo;
pub mod edge;
pub mod frame_guard;
pub mod gate;
pub mod lobby;
pub mod openapi;
pub mod operators;
pub mod pipeline;
pub mod players;
pub mod responses;
pub mod session;
pub mod socket;
pub mod throttle;
pub mod upgrade;
pub mod ws;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;

use crate::admission::line::Line;
use crate::admission::{AdmissionController, AdmissionStats};
use crate::breaker::registry::Breakers;
use crate::config::Config;
use crate::game::kinds::Kind;
use crate::health::{CreationRate, HealthBoard, HealthMonitor};
use crate::hosting::registry::Registry;
use crate::hosting::relay::Request as RelayRequest;
use crate::hosting::relay_wire::{Reply, Wire};
use crate::hosting::supervisor::GameSupervisor;
use crate::ids::GameId;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::store::StoreError;
use session::SessionLimits;

/// Shared state of the HTTP handlers (and of the upgrades and the edge middleware), its
/// fields grouped by what they serve.
pub struct AppState {
    // The server as a whole.
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Server metrics.
    pub metrics: Arc<Metrics>,
    /// Socket limits.
    pub limits: Arc<SessionLimits>,
    /// Open connections against `server.max_connections`.
    pub gate: Arc<gate::ConnectionGate>,
    /// Set once shutdown begins.
    pub draining: AtomicBool,
    /// When the server started.
    pub started: Instant,

    // The games: where each one is hosted and how to reach it.
    /// The game supervisor.
    pub supervisor: Addr<GameSupervisor>,
    /// All games.
    pub registry: Arc<Registry>,
    /// This instance in the cluster: its id, leases, token hashes.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// Relays to other instances (Redis backend only).
    pub relay: Option<Addr<crate::hosting::relay::Relay>>,
    /// The snapshots of this instance's games (and the store's).
    pub keeper: Arc<crate::store::keeper::SnapshotKeeper>,
    /// The lobby every instance shows (fed by the health-events stream).
    pub lobby: Arc<crate::lobby::LobbyView>,

    // Admission: new games and the line.
    /// The admission gate.
    pub admission: Addr<AdmissionController>,
    /// The waitlist.
    pub line: Arc<Line>,
    /// Admission figures (waiting, measured rate).
    pub admission_stats: Arc<AdmissionStats>,
    /// Game-creation requests, counted where they arrive.
    pub creation_rate: Arc<CreationRate>,

    // Health and supervision: what operators read and admins drill.
    /// The latest health report.
    pub health: Arc<HealthBoard>,
    /// The health monitor (for the admin override).
    pub monitor: Addr<HealthMonitor>,
    /// Every named circuit breaker.
    pub breakers: Breakers,
    /// The system actors' supervision (restarts, admin faults).
    pub tree: Arc<crate::runtime::system::SystemTree>,
}

/// The shared state as a handler receives it.
type State = web::Data<AppState>;
/// What a handler returns: its body, or the error to send.
type Answer<T> = Result<T, ErrorBody>;

impl ResponseError for ErrorBody {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(ms) = self.retry_after_ms() {
            response.insert_header((header::RETRY_AFTER, ms.div_ceil(1000).max(1).to_string()));
        }
        response.json(self.envelope())
    }
}

/// Reads a JSON object body of at most `limit` bytes into `T`.
async fn read_json<T: for<'de> Deserialize<'de>>(mut payload: web::Payload, limit: usize) -> Answer<T> {
    let too_large = || {
        ErrorBody::new(ErrorCode::PayloadTooLarge, format!("body is larger than {limit} bytes"))
            .with("max_bytes", limit)
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => too_large(),
            e if edge::is_body_timeout(&e) => ErrorBody::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time; the connection is closed",
            ),
            other => ErrorBody::new(ErrorCode::BadRequest, format!("could not read the body: {other}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, format!("body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ErrorBody::new(ErrorCode::BadRequest, "body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(ErrorBody::bad_shape)
}

/// A game id from a path, or GAME_NOT_FOUND.
pub(crate) fn game_id(text: &str) -> Answer<GameId> {
    GameId::parse(text).ok_or_else(ErrorBody::game_not_found)
}

/// Sends `wire` to the instance holding a game and returns its reply.
async fn relay(state: &AppState, to: crate::ids::InstanceId, wire: Wire) -> Answer<Reply> {
    let relay = state.relay.clone().ok_or_else(ErrorBody::restarting)?;
    match relay.send(RelayRequest { to, wire, within: Duration::from_secs(3) }).await {
        Ok(result) => result,
        Err(_) => Err(ErrorBody::restarting()),
    }
}

/// Whether a game exists here or (with Redis) anywhere, and its kind: hosted here, in the
/// shared lobby, or with a stored snapshot (a game known only by its lease, just created
/// elsewhere, is of the first kind until its join answers).
pub(crate) async fn game_kind(state: &AppState, id: &GameId) -> Option<&'static Kind> {
    let by_name = crate::game::kinds::by_name;
    if let Some(cell) = state.registry.get(id) {
        return by_name(cell.kind);
    }
    if !state.cluster.shared() {
        return None;
    }
    let listed = state.lobby.get(id).and_then(|s| s.get("kind").and_then(Value::as_str).and_then(by_name));
    if listed.is_some() {
        return listed;
    }
    // A game just created elsewhere has its lease at once (its snapshot is written behind
    // it, and the lobby hears of it through the event stream).
    if state.cluster.owner(id).await.is_ok_and(|o| o.is_some()) {
        return Some(&crate::game::kinds::KINDS[0]);
    }
    match state.keeper.read_stored(id).await {
        Ok(Some(snapshot)) => by_name(snapshot.board.kind()),
        Err(StoreError::Corrupt(_)) => Some(&crate::game::kinds::KINDS[0]),
        _ => None,
    }
}

/// NOT_FOUND for a breaker name no breaker has.
fn unknown_breaker(name: &str) -> ErrorBody {
    ErrorBody::not_found(format!("no circuit breaker named {name:?}")).with("name", name)
}

/// Path prefixes that machines call: a miss there is the JSON error, anywhere else the
/// HTML page with a way back to the lobby.
const MACHINE_PATHS: [&str; 5] = ["/api/", "/ws/", "/health", "/metrics", "/static/"];

async fn not_found(state: State, req: HttpRequest) -> Answer<HttpResponse> {
    let path = req.path();
    if MACHINE_PATHS.iter().any(|p| path.starts_with(p)) {
        return Err(ErrorBody::not_found("no such endpoint"));
    }
    state.metrics.http_error(ErrorCode::NotFound);
    let page = assets::get("not-found.html").unwrap_or_default();
    Ok(HttpResponse::NotFound()
        .content_type(assets::content_type("not-found.html"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(page))
}

async fn page(name: &'static str) -> Answer<HttpResponse> {
    assets::response(name).ok_or_else(|| ErrorBody::not_found("no such page"))
}

async fn static_file(path: web::Path<String>) -> Answer<HttpResponse> {
    assets::response(&path).ok_or_else(|| ErrorBody::not_found("no such file"))
}

/// Registers every route: the browser's pages, then the REST and socket paths by audience.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let index = || page("index.html");
    let dashboard = || page("dashboard.html");
    // Each game kind's page (the first kind plays on the lobby page).
    for kind in crate::game::kinds::KINDS.iter().filter(|k| k.page != "/") {
        let this = || page(kind.asset);
        cfg.route(kind.page, web::get().to(this)).route(kind.page, web::head().to(this));
    }
    cfg.route("/", web::get().to(index))
        .route("/", web::head().to(index))
        .route("/dashboard", web::get().to(dashboard))
        .route("/dashboard", web::head().to(dashboard))
        .route("/static/{path:.*}", web::get().to(static_file))
        .route("/static/{path:.*}", web::head().to(static_file))
        // Players.
        .route("/api/v1/games", web::post().to(players::create_game))
        .route("/api/v1/games", web::get().to(players::list_games))
        .route("/api/v1/kinds", web::get().to(players::list_kinds))
        .route("/api/v1/games/{id}", web::get().to(players::get_game))
        .route("/api/v1/games/{id}/join", web::post().to(players::join_game))
        .route("/api/v1/waitlist/{ticket}", web::get().to(players::waitlist_status))
        .route("/api/v1/waitlist/{ticket}", web::delete().to(players::waitlist_leave))
        .route("/ws/games/{id}", web::get().to(players::game_socket))
        .route("/ws/lobby", web::get().to(players::lobby_socket))
        // Operators.
        .route("/health", web::get().to(operators::health))
        .route("/health/circuit-breakers", web::get().to(operators::breakers_health))
        .route("/health/circuit-breakers/{name}", web::get().to(operators::breaker_health))
        .route("/metrics", web::get().to(operators::metrics))
        .route("/metrics/circuit-breakers", web::get().to(operators::breakers_metrics))
        .route("/api/v1/openapi.json", web::get().to(openapi::serve))
        // Admin.
        .route("/api/v1/admin/games/{id}/fault", web::post().to(admin::inject_fault))
        .route("/api/v1/admin/actors/{name}/fault", web::post().to(admin::inject_actor_fault))
        .route("/api/v1/admin/breakers/{name}", web::post().to(admin::breaker_action))
        .route("/api/v1/admin/health", web::post().to(admin::health_override))
        .default_service(web::to(not_found));
}
