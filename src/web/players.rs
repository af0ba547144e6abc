//! The players' endpoints: create, list, read and join games, the kinds this server plays,
//! the waitlist a refused creation waits in, and a plain (not upgrading) request to a socket
//! path. Each handler's `#[utoipa::path]` lists the statuses that are its own; the document
//! adds those every operation of its kind answers (`openapi::CommonErrors`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use crate::admission::line::Left;
use crate::admission::Admit;
use crate::hosting::messages::ClaimSeat;
use crate::hosting::relay_wire::{Reply, Wire};
use crate::hosting::supervisor::{CreateGame, Resolve, Resolved};
use crate::ids::{PlayerToken, Ticket};
use crate::protocol::views::{GamesList, KindsList};
use crate::protocol::{
    validate_player_name, CreateGameRequest, ErrorBody, ErrorCode, ErrorEnvelope, GameSummary, JoinGameRequest,
    SeatGrant, WaitlistStatus,
};
use crate::store::waitlist::TicketStatus;
use crate::store::StoreError;
use crate::web::gate::client_of;
use crate::web::responses;
use crate::web::throttle::Throttle;
use crate::web::{game_id, game_kind, read_json, relay, Answer, State};

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
        (status = 429, response = responses::RateLimited),
        (status = 500, response = responses::Internal),
        (status = 503, description = "SERVER_BUSY: admission refused the game. With `details.ticket` the request is in the waitlist: follow `details.watch` and do not POST again. Without a ticket (line full or unreachable, or the connection ceiling with `reason: \"connections\"`) nothing was queued: retry after `Retry-After`. Or DRAINING: the server is shutting down (no `Retry-After`): create the game on another instance.", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "With SERVER_BUSY (always): seconds to wait, `details.retry_after_ms` rounded up. Absent with DRAINING.")),
            links(
                ("WaitlistStatus" = (operation_id = "waitlist_status", parameters(("ticket" = "$response.body#/error/details/ticket")), description = "Follow the ticket (no faster than `Retry-After`).")),
                ("LeaveWaitlist" = (operation_id = "waitlist_leave", parameters(("ticket" = "$response.body#/error/details/ticket")), description = "Give up the place in line.")),
            )),
    )
)]
pub(super) async fn create_game(state: State, req: HttpRequest, payload: web::Payload) -> Answer<HttpResponse> {
    state.creation_rate.hit();
    if state.draining.load(Ordering::Acquire) {
        return Err(ErrorBody::draining());
    }
    let body: CreateGameRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    let (kind, opponent, player_name) = body.validate()?;
    let admitted = state
        .admission
        .send(Admit { create: CreateGame { kind, opponent, player_name }, client: client_of(&req) })
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
        (status = 404, description = "GAME_NOT_FOUND: no such game (never existed, or ended and removed).", body = ErrorEnvelope),
        (status = 409, description = "GAME_FULL: both seats are taken; or GAME_OVER with `reason: \"abandoned\"`.", body = ErrorEnvelope),
        (status = 410, description = "GAME_FAILED: the game exceeded its restart limit, or its saved state cannot be read (`reason: \"unreadable\"`); it is closed for good.", body = ErrorEnvelope),
        (status = 500, response = responses::Internal),
        (status = 503, response = responses::GameUnavailable),
    )
)]
pub(super) async fn join_game(
    state: State,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer<web::Json<SeatGrant>> {
    let id = game_id(&path)?;
    let body: JoinGameRequest = read_json(payload, state.limits.max_frame_bytes).await?;
    let name = validate_player_name(&body.player_name)?;
    // The token is made here and never leaves this instance: the game gets its hash.
    let token = PlayerToken::random();
    let token_hash = state.cluster.hash(&token);
    let seat = match state.supervisor.send(Resolve(id.clone())).await.map_err(|_| ErrorBody::restarting())? {
        Resolved::Local(cell) => {
            let addr = cell.addr().ok_or_else(ErrorBody::restarting)?;
            let claim = addr.claim().send(ClaimSeat { name: name.clone(), token_hash: token_hash.clone() });
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
        (status = 422, response = responses::ValidationFailed),
    )
)]
pub(super) async fn list_games(state: State, req: HttpRequest) -> Answer<web::Json<GamesList>> {
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
    )
)]
pub(super) async fn list_kinds() -> web::Json<KindsList> {
    web::Json(KindsList::of_table())
}

/// A game's summary: hosted here, or (another instance's) from the lobby every instance shares.
pub(super) enum SummaryOf {
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
        (status = 503, response = responses::GameUnavailable),
    )
)]
pub(super) async fn get_game(state: State, path: web::Path<String>) -> Answer<web::Json<SummaryOf>> {
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
        (status = 503, response = responses::GameUnavailable),
    )
)]
pub(super) async fn game_socket(state: State, req: HttpRequest, path: web::Path<String>) -> Answer<HttpResponse> {
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
    )
)]
pub(super) async fn lobby_socket() -> Answer<HttpResponse> {
    // As `game_socket`: only requests that are not a complete upgrade get here.
    Err(not_an_upgrade())
}

/// A ticket from a path, or TICKET_NOT_FOUND.
fn ticket(text: &str) -> Answer<Ticket> {
    Ticket::parse(text).ok_or_else(|| ErrorBody::ticket_not_found("it is not a ticket"))
}

/// SERVER_BUSY for a waitlist store that cannot answer.
fn line_unavailable(e: StoreError) -> ErrorBody {
    // Every waiting player polls: one line a second (with the count) while Redis is down.
    static UNAVAILABLE: Throttle = Throttle::new(1000);
    if let Some(count) = UNAVAILABLE.hit() {
        tracing::warn!(requests = count, "the waitlist could not answer: {e}");
    }
    ErrorBody::new(ErrorCode::ServerBusy, "the waitlist is unavailable; retry shortly").with("retry_after_ms", 2000)
}

/// SERVER_BUSY `reason: "elsewhere"` for a ticket another instance's fallback queue may
/// hold: not a 404, because it may be waiting there (docs/PROTOCOL.md).
fn held_elsewhere() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::ServerBusy,
        "the ticket is held by another instance that has not reached the waitlist store yet; retry shortly",
    )
    .with("reason", "elsewhere")
    .with("retry_after_ms", 1000)
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
        (status = 503, response = responses::WaitlistUnavailable),
    )
)]
pub(super) async fn waitlist_status(state: State, path: web::Path<String>) -> Answer<web::Json<WaitlistStatus>> {
    let ticket = ticket(&path)?;
    let status = match state.line.status(&ticket).await.map_err(line_unavailable)? {
        TicketStatus::Waiting { position } => WaitlistStatus::Waiting {
            position,
            eta_secs: state.admission_stats.eta_secs(position, state.config.admission.admit_per_sec),
        },
        TicketStatus::Processing => WaitlistStatus::Waiting { position: 0, eta_secs: 0 },
        TicketStatus::Admitted(grant) => WaitlistStatus::Admitted(grant),
        TicketStatus::Unknown => return Err(ErrorBody::ticket_not_found("it left, expired or never existed")),
        TicketStatus::Elsewhere => return Err(held_elsewhere()),
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
        (status = 503, response = responses::WaitlistUnavailable),
    )
)]
pub(super) async fn waitlist_leave(state: State, path: web::Path<String>) -> Answer<HttpResponse> {
    let ticket = ticket(&path)?;
    match state.line.leave(&ticket).await.map_err(line_unavailable)? {
        Left::Left => {}
        Left::NotWaiting => return Err(ErrorBody::ticket_not_found("it is not waiting")),
        Left::Elsewhere => return Err(held_elsewhere()),
    }
    tracing::info!(%ticket, "a player left the waitlist");
    state.admission_stats.left();
    Ok(HttpResponse::NoContent().finish())
}
