//! The HTTP edge: REST routes, the game WebSocket upgrade, admin endpoints, `/health`,
//! `/metrics` and the embedded browser page. Handlers translate between HTTP and actor
//! messages and return `Result<_, ErrorBody>`: an error leaves in the docs/PROTOCOL.md
//! shape with its status and `Retry-After` ([`ErrorBody`] is the handlers' `ResponseError`),
//! and is counted by code in the edge middleware. Each REST handler's `#[utoipa::path]`
//! lists every status it answers; [`openapi`] assembles them into `/api/v1/openapi.json`.

pub mod assets;
#[cfg(feature = "conformance")]
pub mod echo;
pub mod edge;
pub mod frame_guard;
pub mod lobby;
pub mod openapi;
pub mod pipeline;
pub mod session;
pub mod socket;
pub mod upgrade;
pub mod ws;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;

use crate::admission::line::Line;
use crate::admission::{AdmissionController, AdmissionStats, Admit};
use crate::breaker::registry::Breakers;
use crate::config::Config;
use crate::game::kinds::Kind;
use crate::health::{CreationRate, ForceStatus, HealthBoard, HealthMonitor};
use crate::hosting::messages::{ClaimSeat, Fault};
use crate::hosting::registry::{Registry, RunState};
use crate::hosting::relay::Request as RelayRequest;
use crate::hosting::relay_wire::{Reply, Wire};
use crate::hosting::supervisor::{CreateGame, GameSupervisor, GetArbiterHealth, Resolve, Resolved};
use crate::ids::GameId;
use crate::ids::PlayerToken;
use crate::ids::Ticket;
use crate::metrics::Metrics;
use crate::protocol::views::{
    ActorFaultAccepted, ActorFaultRequest, AdmissionCheck, ArbitersCheck, BreakerActionRequest, BreakerBrief,
    BreakerView, BreakersCheck, BreakersList, BreakersMetrics, ConnectionsCheck, FaultAccepted, FaultRequest,
    GamesCheck, GamesList, HealthBody, HealthChecks, HealthOverride, HealthOverrideRequest, KindsList, LineLostView,
    SystemActorsCheck, VitalView, VitalsCheck, ACTOR_FAULT_KINDS, BREAKER_ACTIONS, FAULT_KINDS, FORCED_STATUSES,
    MAX_HANG_MS,
};
use crate::protocol::{
    validate_player_name, CreateGameRequest, ErrorBody, ErrorCode, ErrorEnvelope, GameSummary, JoinGameRequest,
    SeatGrant, WaitlistStatus,
};
use crate::runtime::status::Status;
use crate::runtime::system::{Part, SystemFault};
use crate::store::waitlist::TicketStatus;
use crate::store::StoreError;
use session::SessionLimits;

/// Shared state of the HTTP handlers.
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// All games.
    pub registry: Arc<Registry>,
    /// Server metrics.
    pub metrics: Arc<Metrics>,
    /// The game supervisor.
    pub supervisor: Addr<GameSupervisor>,
    /// The admission gate.
    pub admission: Addr<AdmissionController>,
    /// Socket limits.
    pub limits: Arc<SessionLimits>,
    /// Every named circuit breaker.
    pub breakers: Breakers,
    /// The waitlist.
    pub line: Arc<Line>,
    /// Admission figures (waiting, measured rate).
    pub admission_stats: Arc<AdmissionStats>,
    /// The latest health report.
    pub health: Arc<HealthBoard>,
    /// Game-creation requests, counted where they arrive.
    pub creation_rate: Arc<CreationRate>,
    /// The health monitor (for the admin override).
    pub monitor: Addr<HealthMonitor>,
    /// The lobby every instance shows (fed by the health-events stream).
    pub lobby: Arc<crate::lobby::LobbyView>,
    /// This instance in the cluster: its id, leases, token hashes.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// Relays to other instances (Redis backend only).
    pub relay: Option<Addr<crate::hosting::relay::Relay>>,
    /// The snapshots of this instance's games (and the store's).
    pub keeper: Arc<crate::store::keeper::SnapshotKeeper>,
    /// Open connections against `server.max_connections`.
    pub gate: Arc<edge::ConnectionGate>,
    /// The system actors' supervision (restarts, admin faults).
    pub tree: Arc<crate::runtime::system::SystemTree>,
    /// Set once shutdown begins.
    pub draining: AtomicBool,
    /// When the server started.
    pub started: Instant,
}

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

/// `POST /api/v1/games`: a new game through admission control.
#[utoipa::path(
    post,
    path = "/api/v1/games",
    tag = "games",
    request_body(content = CreateGameRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    responses(
        (status = 201, description = "Created: the creator's seat grant (always red). Attach a socket and `join` within `server.abandoned_game_secs`.", body = SeatGrant,
            links(
                ("GetGame" = (operation_id = "get_game", parameters(("id" = "$response.body#/game_id")), description = "The new game's summary.")),
                ("JoinGame" = (operation_id = "join_game", parameters(("id" = "$response.body#/game_id")), description = "The second seat of a human game (the link to share).")),
            )),
        (status = 400, response = openapi::BadRequest),
        (status = 408, response = openapi::RequestTimeout),
        (status = 413, response = openapi::PayloadTooLarge),
        (status = 422, response = openapi::ValidationFailed),
        (status = 429, response = openapi::RateLimited),
        (status = 500, response = openapi::Internal),
        (status = 503, description = "SERVER_BUSY: admission refused the game. With `details.ticket` the request is in the waitlist: follow `details.watch` and do not POST again. Without a ticket (line full or unreachable, or the connection ceiling with `reason: \"connections\"`) nothing was queued: retry after `Retry-After`. Or DRAINING: the server is shutting down (no `Retry-After`): create the game on another instance.", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "With SERVER_BUSY (always): seconds to wait, `details.retry_after_ms` rounded up. Absent with DRAINING.")),
            links(
                ("WaitlistStatus" = (operation_id = "waitlist_status", parameters(("ticket" = "$response.body#/error/details/ticket")), description = "Follow the ticket (no faster than `Retry-After`).")),
                ("LeaveWaitlist" = (operation_id = "waitlist_leave", parameters(("ticket" = "$response.body#/error/details/ticket")), description = "Give up the place in line.")),
            )),
    )
)]
async fn create_game(state: State, req: HttpRequest, payload: web::Payload) -> Answer<HttpResponse> {
    state.creation_rate.hit();
    if state.draining.load(Ordering::Acquire) {
        return Err(ErrorBody::draining());
    }
    let body: CreateGameRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    let (kind, opponent, player_name) = body.validate()?;
    let admitted = state
        .admission
        .send(Admit { create: CreateGame { kind, opponent, player_name }, client: edge::client_of(&req) })
        .await;
    let grant = admitted.unwrap_or_else(|_| Err(ErrorBody::internal("admission")))?;
    Ok(HttpResponse::Created().json(grant))
}

/// `POST /api/v1/games/{id}/join`: the free seat of a human game.
#[utoipa::path(
    post,
    path = "/api/v1/games/{id}/join",
    tag = "games",
    params(("id" = String, Path, description = "The game id (opaque).")),
    request_body(content = JoinGameRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    responses(
        (status = 200, description = "The joiner's seat grant (yellow). It never waits in line: the game already counts.", body = SeatGrant,
            links(("GetGame" = (operation_id = "get_game", parameters(("id" = "$response.body#/game_id")), description = "The game's summary.")))),
        (status = 400, response = openapi::BadRequest),
        (status = 404, description = "GAME_NOT_FOUND: no such game (never existed, or ended and removed).", body = ErrorEnvelope),
        (status = 408, response = openapi::RequestTimeout),
        (status = 409, description = "GAME_FULL: both seats are taken; or GAME_OVER with `reason: \"abandoned\"`.", body = ErrorEnvelope),
        (status = 410, description = "GAME_FAILED: the game exceeded its restart limit, or its saved state cannot be read (`reason: \"unreadable\"`); it is closed for good.", body = ErrorEnvelope),
        (status = 413, response = openapi::PayloadTooLarge),
        (status = 422, response = openapi::ValidationFailed),
        (status = 500, response = openapi::Internal),
        (status = 503, response = openapi::GameUnavailable),
    )
)]
async fn join_game(state: State, path: web::Path<String>, payload: web::Payload) -> Answer<web::Json<SeatGrant>> {
    let id = game_id(&path)?;
    let body: JoinGameRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    let name = validate_player_name(&body.player_name)?;
    // The token is made here and never leaves this instance: the game gets its hash.
    let token = PlayerToken::random();
    let token_hash = state.cluster.hash(&token);
    let seat = match state.supervisor.send(Resolve(id.clone())).await.map_err(|_| ErrorBody::restarting())? {
        Resolved::Local(cell) => {
            let addr = cell.addr().ok_or_else(ErrorBody::restarting)?;
            let claim = addr.claim.send(ClaimSeat { name: name.clone(), token_hash: token_hash.clone() });
            let answer = tokio::time::timeout(Duration::from_secs(2), claim).await;
            answer.map_err(|_| ErrorBody::restarting())?.map_err(|_| ErrorBody::restarting())??
        }
        Resolved::Remote(lease) => {
            let wire = Wire::ClaimSeat {
                req: 0,
                from: state.cluster.me.clone(),
                game: id.clone(),
                name: name.clone(),
                token_hash: token_hash.clone(),
            };
            match relay(&state, lease.instance, wire).await? {
                Reply::Seat { result } => result?,
                _ => return Err(ErrorBody::restarting()),
            }
        }
        Resolved::NotFound => return Err(ErrorBody::game_not_found()),
        Resolved::Unavailable(e) => return Err(e),
    };
    state.cluster.remember_seat(token_hash, id.clone(), seat, name);
    Ok(web::Json(SeatGrant { game_id: id.to_string(), seat, player_token: token.expose().to_owned() }))
}

/// `GET /api/v1/games?page=N`: one page of the lobby, as a lobby socket shows it.
#[utoipa::path(
    get,
    path = "/api/v1/games",
    tag = "games",
    params(("page" = Option<u32>, Query, minimum = 0, maximum = 1000000, description = "Which page of the lobby, 0-based (default 0, at most 1,000,000); a page past the end is empty.")),
    responses(
        (status = 200, description = "One page (`lobby.page_size`, 25, games) of the summaries from every instance: games waiting for a player first, then games in play, then ended ones, newest first within each; with the total. Fed by the health-events stream: it can lag a change by a moment.", body = GamesList),
        (status = 422, response = openapi::ValidationFailed),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn list_games(state: State, req: HttpRequest) -> Answer<web::Json<GamesList>> {
    /// The query: unknown parameters are ignored, `page` must be a page number.
    #[derive(Deserialize)]
    struct GamesQuery {
        page: Option<u32>,
    }
    /// The last page a client may ask for (the OpenAPI document's `maximum`).
    const MAX_PAGE: u32 = 1_000_000;
    let refused =
        || ErrorBody::validation("page", format!("page is a page number, 0 to {MAX_PAGE}")).with("max", MAX_PAGE);
    let query = web::Query::<GamesQuery>::from_query(req.query_string()).map_err(|_| refused())?;
    let page = query.page.unwrap_or(0);
    if page > MAX_PAGE {
        return Err(refused());
    }
    let page = state.lobby.page(page);
    Ok(web::Json(GamesList {
        games: page.games,
        page: page.page,
        page_size: page.page_size as u64,
        total: page.total as u64,
    }))
}

/// `GET /api/v1/kinds`: the game kinds this server plays.
#[utoipa::path(
    get,
    path = "/api/v1/kinds",
    tag = "games",
    responses(
        (status = 200, description = "Every game kind, the default first, with its page.", body = KindsList),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn list_kinds() -> web::Json<KindsList> {
    web::Json(KindsList::of_table())
}

/// A game's summary: hosted here, or (another instance's) from the lobby every instance shares.
enum SummaryOf {
    Here(GameSummary),
    Elsewhere(Value),
}

impl serde::Serialize for SummaryOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SummaryOf::Here(summary) => summary.serialize(s),
            SummaryOf::Elsewhere(value) => value.serialize(s),
        }
    }
}

/// `GET /api/v1/games/{id}`: one game's summary.
#[utoipa::path(
    get,
    path = "/api/v1/games/{id}",
    tag = "games",
    params(("id" = String, Path, description = "The game id (opaque).")),
    responses(
        (status = 200, description = "The game's summary (never a token).", body = GameSummary),
        (status = 404, description = "GAME_NOT_FOUND: no such game, or it ended and was removed.", body = ErrorEnvelope),
        (status = 503, response = openapi::GameUnavailable),
    )
)]
async fn get_game(state: State, path: web::Path<String>) -> Answer<web::Json<SummaryOf>> {
    let id = game_id(&path)?;
    if let Some(cell) = state.registry.get(&id) {
        return Ok(web::Json(SummaryOf::Here(cell.live_summary().await)));
    }
    // Another live instance owns it: its own answer, not the lobby's record (which lags).
    if state.cluster.shared() {
        if let Ok(Some(lease)) = state.cluster.owner(&id).await {
            if lease.instance != state.cluster.me && state.cluster.alive(&lease.instance).await.unwrap_or(false) {
                let wire = Wire::Summary { req: 0, from: state.cluster.me.clone(), game: id.clone() };
                if let Ok(Reply::Summary { result }) = relay(&state, lease.instance, wire).await {
                    return Ok(web::Json(SummaryOf::Elsewhere(result?)));
                }
            }
        }
    }
    // No live owner (it died, or the game ended and was removed): the lobby's record.
    state.lobby.get(&id).map(|s| web::Json(SummaryOf::Elsewhere(s))).ok_or_else(ErrorBody::game_not_found)
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

/// `GET /ws/games/{id}`: the game socket.
#[utoipa::path(
    get,
    path = "/ws/games/{id}",
    tag = "sockets",
    params(
        ("id" = String, Path, description = "The game id (opaque)."),
        ("Upgrade" = String, Header, pattern = "[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]", description = "Must name `websocket`."),
        ("Connection" = String, Header, pattern = "^[Uu][Pp][Gg][Rr][Aa][Dd][Ee]$", description = "`Upgrade`."),
        ("Sec-WebSocket-Version" = String, Header, pattern = "^13$", description = "`13`."),
        ("Sec-WebSocket-Key" = String, Header, pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$", description = "16 random bytes in base64 (RFC 6455)."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the game WebSocket (frames in docs/PROTOCOL.md). An unknown game upgrades too, sends GAME_NOT_FOUND and closes with 4404."),
        (status = 400, description = "BAD_REQUEST: not a valid WebSocket upgrade (a plain GET on a known game, or a handshake header missing or wrong).", body = ErrorEnvelope),
        (status = 404, description = "GAME_NOT_FOUND: an unknown game without `Upgrade: websocket` (a plain GET).", body = ErrorEnvelope),
        (status = 503, response = openapi::GameUnavailable),
    )
)]
async fn game_socket(state: State, req: HttpRequest, path: web::Path<String>) -> Answer<HttpResponse> {
    // An upgrade never gets here (actix-http hands it to `upgrade::serve`): this is a plain
    // request, or one whose upgrade headers are incomplete.
    let known = match game_id(&path) {
        Ok(id) => game_kind(&state, &id).await.is_some(),
        Err(_) => false,
    };
    if !known && !asks_to_upgrade(&req) {
        return Err(ErrorBody::game_not_found());
    }
    Err(not_an_upgrade())
}

/// Whether a request names the WebSocket upgrade (an incomplete one reaches the app).
fn asks_to_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A request on a WebSocket path that is not a complete upgrade.
fn not_an_upgrade() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::BadRequest,
        "this path is a WebSocket; the upgrade failed: send GET with Connection: Upgrade, Upgrade: websocket, \
         Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
    )
}

/// `GET /ws/lobby`: lobby snapshots and waitlist positions.
#[utoipa::path(
    get,
    path = "/ws/lobby",
    tag = "sockets",
    params(
        ("Upgrade" = String, Header, pattern = "[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]", description = "Must name `websocket`."),
        ("Connection" = String, Header, pattern = "^[Uu][Pp][Gg][Rr][Aa][Dd][Ee]$", description = "`Upgrade`."),
        ("Sec-WebSocket-Version" = String, Header, pattern = "^13$", description = "`13`."),
        ("Sec-WebSocket-Key" = String, Header, pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$", description = "16 random bytes in base64 (RFC 6455)."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the lobby WebSocket (lobby snapshots, waitlist positions; docs/PROTOCOL.md)."),
        (status = 400, description = "BAD_REQUEST: not a valid WebSocket upgrade (a plain GET, or a handshake header missing or wrong).", body = ErrorEnvelope),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn lobby_socket() -> Answer<HttpResponse> {
    // As `game_socket`: only requests that are not a complete upgrade get here.
    Err(not_an_upgrade())
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
        (status = 400, response = openapi::BadRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN); or GAME_NOT_FOUND: no such game.", body = ErrorEnvelope),
        (status = 408, response = openapi::RequestTimeout),
        (status = 410, description = "GAME_FAILED: the game is closed for good.", body = ErrorEnvelope),
        (status = 413, response = openapi::PayloadTooLarge),
        (status = 422, response = openapi::ValidationFailed),
        (status = 503, response = openapi::GameUnavailable),
    )
)]
async fn inject_fault(
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
            crate::hosting::registry::inject(cell, fault, state.metrics.clone());
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
        (status = 400, response = openapi::BadRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN), no system actor has that name (`details.allowed`), or it does not run here (`heartbeat` without Redis).", body = ErrorEnvelope),
        (status = 408, response = openapi::RequestTimeout),
        (status = 413, response = openapi::PayloadTooLarge),
        (status = 422, response = openapi::ValidationFailed),
        (status = 503, response = openapi::ActorUnavailable),
    )
)]
async fn inject_actor_fault(
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
        edge::admin_refused(&state.metrics, req.path());
        Err(ErrorBody::new(ErrorCode::Unauthorized, "admin endpoints need Authorization: Bearer <admin token>"))
    }
}

/// `GET /health`: the server's health, for load balancers, the page and the dashboard.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "`healthy` or `degraded`: the server takes new games.", body = HealthBody),
        (status = 503, description = "`overloaded` or `draining`, or the game supervisor does not answer (`checks.arbiters.status: \"down\"`): send players elsewhere. Past the connection ceiling, SERVER_BUSY `reason: \"connections\"` instead.", body = openapi::HealthUnavailable,
            headers(("Retry-After" = u64, description = "Only with SERVER_BUSY (the connection ceiling)."))),
    )
)]
async fn health(state: State) -> HttpResponse {
    let arbiters = state.supervisor.send(GetArbiterHealth).await.ok();
    let draining = state.draining.load(Ordering::Acquire);
    let lost = arbiters.map_or(0, |a| a.lost);
    let arbiter_status = match arbiters {
        None => "down",
        Some(_) if lost > 0 => "degraded",
        Some(_) => "ok",
    };
    let open = state.breakers.open();
    let breaker_status = if open.is_empty() { "ok" } else { "degraded" };
    let system_actors = state.tree.describe();
    let system_status = if system_actors.iter().any(|a| a.status == "failed") {
        "failed"
    } else if system_actors.iter().any(|a| a.status == "restarting") {
        "restarting"
    } else {
        "ok"
    };
    let report = state.health.report();
    let stats = &state.admission_stats;
    let status = if draining {
        "draining"
    } else if report.status == Status::Overloaded {
        "overloaded"
    } else if arbiter_status != "ok"
        || breaker_status != "ok"
        || system_status != "ok"
        || report.status == Status::Degraded
    {
        "degraded"
    } else {
        "healthy"
    };
    let vitals = report
        .vitals
        .iter()
        .map(|v| (v.name, VitalView { status: v.status.as_str(), value: v.value, limit: v.limit }))
        .collect();
    let breakers: BTreeMap<String, BreakerBrief> = state
        .breakers
        .describe_all()
        .into_iter()
        .map(|b| (b.name, BreakerBrief { state: b.state, enabled: b.enabled }))
        .collect();
    let active = state.metrics.games_active();
    let full = active.max(0) as u64 >= state.config.admission.max_games;
    let closed_because = if draining {
        Some("draining")
    } else if report.status == Status::Overloaded {
        Some("overloaded")
    } else if full {
        Some("full")
    } else if stats.waiting() > 0 {
        Some("line")
    } else {
        None
    };
    let (game_sockets, lobby_sockets) = state.metrics.sockets();
    let body = HealthBody {
        status,
        checks: HealthChecks {
            games: GamesCheck {
                status: if full { "full" } else { "ok" },
                active,
                max: state.config.admission.max_games,
                hosted: state.registry.len(),
            },
            connections: ConnectionsCheck {
                status: if state.gate.open() > state.gate.ceiling() { "saturated" } else { "ok" },
                open: state.gate.open(),
                max: state.gate.ceiling(),
                game_sockets,
                lobby_sockets,
            },
            arbiters: ArbitersCheck {
                status: arbiter_status,
                running: arbiters.map_or(0, |a| a.arbiters),
                lost,
                detail: if lost > 0 {
                    "a hung game held a thread that was abandoned; restart the process when convenient (docs/OPERATIONS.md)"
                } else {
                    "all game threads answer the watchdog"
                },
            },
            vitals: VitalsCheck {
                status: report.status.as_str(),
                forced: state.health.forced().map(Status::as_str),
                samples: report.samples,
                vitals,
            },
            admission: AdmissionCheck {
                status: if stats.waiting() > 0 { "waitlisting" } else { "admitting" },
                open: closed_because.is_none(),
                closed_because,
                line_lost: {
                    let l = state.line.losses();
                    LineLostView { count: l.count, restored: l.restored, last_at: l.last_at }
                },
                waiting: stats.waiting(),
                admitted_from_line: stats.admitted_from_line(),
                refused: stats.refused(),
                admission_rate_per_sec: stats.rate_per_sec(),
                admit_per_sec: state.config.admission.admit_per_sec,
                max_waitlist: state.config.admission.max_waitlist,
            },
            circuit_breakers: BreakersCheck {
                status: breaker_status,
                detail: if open.is_empty() {
                    "every dependency answers"
                } else {
                    "a dependency is failing: the features that need it fall back until its breaker closes"
                },
                open,
                breakers,
            },
            system_actors: SystemActorsCheck {
                status: system_status,
                restarts: system_actors.iter().map(|a| a.restarts).sum(),
                actors: system_actors,
            },
        },
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

/// `GET /metrics`: Prometheus text.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Every `rampart_` family in the Prometheus text format (version 0.0.4), each with `# HELP` and `# TYPE`.", body = String, content_type = "text/plain"),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn metrics(state: State) -> HttpResponse {
    let mut text = state.metrics.render();
    state.breakers.render_prometheus(&mut text);
    state.tree.render(&mut text);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

fn ticket(text: &str) -> Answer<Ticket> {
    Ticket::parse(text).ok_or_else(|| ErrorBody::ticket_not_found("it is not a ticket"))
}

fn line_unavailable(e: crate::store::StoreError) -> ErrorBody {
    // Every waiting player polls: one line a second (with the count) while Redis is down.
    static UNAVAILABLE: edge::Throttle = edge::Throttle::new(1000);
    if let Some(count) = UNAVAILABLE.hit() {
        tracing::warn!(requests = count, "the waitlist could not answer: {e}");
    }
    ErrorBody::new(ErrorCode::ServerBusy, "the waitlist is unavailable; retry shortly").with("retry_after_ms", 2000)
}

/// `GET /api/v1/waitlist/{ticket}`: the ticket's place in line (polling keeps it alive).
#[utoipa::path(
    get,
    path = "/api/v1/waitlist/{ticket}",
    tag = "waitlist",
    params(("ticket" = String, Path, description = "The waitlist ticket from SERVER_BUSY (a secret).")),
    responses(
        (status = 200, description = "The ticket's place in line (`position` 0: being created now), or its seat grant once admitted. Each poll keeps the ticket alive.", body = WaitlistStatus),
        (status = 404, description = "TICKET_NOT_FOUND: malformed, expired, left or never existed.", body = ErrorEnvelope),
        (status = 503, response = openapi::WaitlistUnavailable),
    )
)]
async fn waitlist_status(state: State, path: web::Path<String>) -> Answer<web::Json<WaitlistStatus>> {
    let ticket = ticket(&path)?;
    let status = match state.line.status(&ticket).await.map_err(line_unavailable)? {
        TicketStatus::Waiting { position } => WaitlistStatus::Waiting {
            position,
            eta_secs: state.admission_stats.eta_secs(position, state.config.admission.admit_per_sec),
        },
        TicketStatus::Processing => WaitlistStatus::Waiting { position: 0, eta_secs: 0 },
        TicketStatus::Admitted(grant) => WaitlistStatus::Admitted(grant),
        TicketStatus::Unknown => return Err(ErrorBody::ticket_not_found("it left, expired or never existed")),
    };
    Ok(web::Json(status))
}

/// `DELETE /api/v1/waitlist/{ticket}`: leave the line.
#[utoipa::path(
    delete,
    path = "/api/v1/waitlist/{ticket}",
    tag = "waitlist",
    params(("ticket" = String, Path, description = "The waitlist ticket from SERVER_BUSY (a secret).")),
    responses(
        (status = 204, description = "Left the line."),
        (status = 404, description = "TICKET_NOT_FOUND: malformed, expired, unknown, or no longer waiting (admitted).", body = ErrorEnvelope),
        (status = 503, response = openapi::WaitlistUnavailable),
    )
)]
async fn waitlist_leave(state: State, path: web::Path<String>) -> Answer<HttpResponse> {
    let ticket = ticket(&path)?;
    if !state.line.leave(&ticket).await.map_err(line_unavailable)? {
        return Err(ErrorBody::ticket_not_found("it is not waiting"));
    }
    tracing::info!(%ticket, "a player left the waitlist");
    state.admission_stats.left();
    Ok(HttpResponse::NoContent().finish())
}

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
        (status = 400, response = openapi::BadRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN).", body = ErrorEnvelope),
        (status = 408, response = openapi::RequestTimeout),
        (status = 413, response = openapi::PayloadTooLarge),
        (status = 422, response = openapi::ValidationFailed),
        (status = 500, response = openapi::Internal),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn health_override(state: State, req: HttpRequest, payload: web::Payload) -> Answer<web::Json<HealthOverride>> {
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

/// `GET /health/circuit-breakers`.
#[utoipa::path(
    get,
    path = "/health/circuit-breakers",
    tag = "operations",
    responses(
        (status = 200, description = "Every circuit breaker.", body = BreakersList),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn breakers_health(state: State) -> web::Json<BreakersList> {
    web::Json(BreakersList { breakers: state.breakers.describe_all() })
}

fn unknown_breaker(name: &str) -> ErrorBody {
    ErrorBody::not_found(format!("no circuit breaker named {name:?}")).with("name", name)
}

/// `GET /health/circuit-breakers/{name}`.
#[utoipa::path(
    get,
    path = "/health/circuit-breakers/{name}",
    tag = "operations",
    params(("name" = String, Path, description = "The breaker's name (today `database`, `messaging`, `llm`).", example = "database")),
    responses(
        (status = 200, description = "The breaker.", body = BreakerView),
        (status = 404, description = "NOT_FOUND: no breaker of that name (`details.name`).", body = ErrorEnvelope),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn breaker_health(state: State, path: web::Path<String>) -> Answer<web::Json<BreakerView>> {
    state.breakers.describe(&path).map(web::Json).ok_or_else(|| unknown_breaker(&path))
}

/// `GET /metrics/circuit-breakers`.
#[utoipa::path(
    get,
    path = "/metrics/circuit-breakers",
    tag = "operations",
    responses(
        (status = 200, description = "Every breaker with its call-duration histogram, and the transition counts.", body = BreakersMetrics),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn breakers_metrics(state: State) -> web::Json<BreakersMetrics> {
    web::Json(state.breakers.metrics_json())
}

/// `POST /api/v1/admin/breakers/{name}`: force a breaker open or closed, or reset it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/breakers/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "The breaker's name (today `database`, `messaging`, `llm`).", example = "database")),
    request_body(content = BreakerActionRequest, description = "A JSON object (the request `Content-Type` is not checked)."),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The breaker after the action.", body = BreakerView),
        (status = 400, response = openapi::BadRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 404, description = "NOT_FOUND: the admin endpoints are disabled (no RAMPART_ADMIN_TOKEN), or no breaker of that name (`details.name`).", body = ErrorEnvelope),
        (status = 408, response = openapi::RequestTimeout),
        (status = 413, response = openapi::PayloadTooLarge),
        (status = 422, response = openapi::ValidationFailed),
        (status = 503, response = openapi::ConnectionCeiling),
    )
)]
async fn breaker_action(
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

/// Registers every route.
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
        .route("/api/v1/games", web::post().to(create_game))
        .route("/api/v1/games", web::get().to(list_games))
        .route("/api/v1/kinds", web::get().to(list_kinds))
        .route("/api/v1/games/{id}", web::get().to(get_game))
        .route("/api/v1/games/{id}/join", web::post().to(join_game))
        .route("/api/v1/openapi.json", web::get().to(openapi::serve))
        .route("/dashboard", web::get().to(dashboard))
        .route("/dashboard", web::head().to(dashboard))
        .route("/static/{path:.*}", web::get().to(static_file))
        .route("/static/{path:.*}", web::head().to(static_file))
        .route("/api/v1/admin/games/{id}/fault", web::post().to(inject_fault))
        .route("/api/v1/admin/actors/{name}/fault", web::post().to(inject_actor_fault))
        .route("/api/v1/admin/breakers/{name}", web::post().to(breaker_action))
        .route("/api/v1/admin/health", web::post().to(health_override))
        .route("/api/v1/waitlist/{ticket}", web::get().to(waitlist_status))
        .route("/api/v1/waitlist/{ticket}", web::delete().to(waitlist_leave))
        .route("/health/circuit-breakers", web::get().to(breakers_health))
        .route("/health/circuit-breakers/{name}", web::get().to(breaker_health))
        .route("/metrics/circuit-breakers", web::get().to(breakers_metrics))
        .route("/ws/games/{id}", web::get().to(game_socket))
        .route("/ws/lobby", web::get().to(lobby_socket))
        .route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(not_found));
}
