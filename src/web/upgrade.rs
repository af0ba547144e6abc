//! The WebSocket upgrades. actix-http hands every request that asks to upgrade its
//! connection (`Connection: upgrade`) to this service, with the connection itself, instead
//! of to the app: the handshake is answered here (101, or an error in the docs/PROTOCOL.md
//! shape and the connection closed), then the TCP stream leaves the HTTP dispatcher — and
//! its two 8 KiB buffers — for the socket's own small ones (`src/web/ws.rs`), and the
//! session actor for the path starts: a game seat (`/ws/games/{id}`), the lobby
//! (`/ws/lobby`) or, in a conformance build, the echo (`/ws/echo`). A plain `GET` on those
//! paths, with no upgrade asked, still reaches the app, which answers what it lacks.

use crate::ids::GameId;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::web::edge::ConnSlot;
use crate::web::lobby::LobbySession;
use crate::web::pipeline::Paced;
use crate::web::session::{GameLinks, PlayerSession};
use crate::web::socket::{Socket, SocketKind, Upgraded};
use crate::web::{game_exists, game_id, AppState};
use actix::prelude::*;
use actix_codec::Framed;
use actix_http::body::{self, BodySize};
use actix_http::{h1, ws, ConnectionType, HttpMessage as _, Request, StatusCode};
use actix_web::web::{self, BytesMut};
use futures_util::SinkExt as _;

/// The socket a path asks for.
enum Target {
    Game(String),
    Lobby,
    #[cfg(feature = "conformance")]
    Echo,
}

fn target(path: &str) -> Option<Target> {
    match path {
        "/ws/lobby" => Some(Target::Lobby),
        #[cfg(feature = "conformance")]
        "/ws/echo" => Some(Target::Echo),
        _ => path
            .strip_prefix("/ws/games/")
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(|id| Target::Game(id.to_owned())),
    }
}

/// Answers one upgrade request on its connection.
pub async fn serve(
    state: web::Data<AppState>,
    req: Request,
    mut framed: Framed<Paced, h1::Codec>,
) -> Result<(), actix_web::Error> {
    if let Some(over) = req.conn_data::<ConnSlot>().and_then(ConnSlot::over) {
        let error = state.gate.refusal(over);
        return refuse(&state, &mut framed, error).await;
    }
    let Some(target) = target(req.path()) else {
        let error =
            ErrorBody::not_found(format!("no WebSocket at {}; they are /ws/games/{{id}} and /ws/lobby", req.path()));
        return refuse(&state, &mut framed, error).await;
    };
    let mut handshake = match ws::handshake(req.head()) {
        Ok(handshake) => handshake,
        Err(e) => {
            let error =
                ErrorBody::new(ErrorCode::BadRequest, format!("this path is a WebSocket; the upgrade failed: {e}"));
            return refuse(&state, &mut framed, error).await;
        }
    };
    // A game socket: an unknown game still upgrades, so a browser can read the error frame
    // and the 4404 close.
    let game = match &target {
        Target::Game(id) => {
            let id = game_id(id).ok();
            let known = match &id {
                Some(id) => game_exists(&state, id).await,
                None => false,
            };
            Some((id.or_else(|| GameId::parse("unknown")), known))
        }
        _ => None,
    };
    if let Some((Some(id), true)) = &game {
        if let Some(error) = realtime_elsewhere(&state, id).await {
            return refuse(&state, &mut framed, error).await;
        }
    }
    // The socket's own place: a lobby socket past its address's cap, or a socket a trusted
    // proxy forwards for a client past its share, is refused here (src/web/edge.rs).
    let forwarded: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    let slot = match state.gate.enter_upgraded(
        req.peer_addr().map(|a| a.ip()),
        forwarded.as_deref(),
        matches!(target, Target::Lobby),
    ) {
        Ok(slot) => slot,
        Err(error) => return refuse(&state, &mut framed, error).await,
    };
    let (response, _) = handshake.finish().into_parts();
    framed.send(h1::Message::Item((response, BodySize::None))).await?;
    let parts = framed.into_parts();
    // The dispatcher's buffer goes with it; only what the client already sent is kept.
    let upgraded = Upgraded { io: parts.io.into_inner(), leftover: BytesMut::from(&parts.read_buf[..]), slot };
    let (limits, metrics) = (state.limits.clone(), state.metrics.clone());
    let hosted_realtime = match &game {
        Some((Some(id), true)) => realtime(&state, id),
        _ => None,
    };
    match (target, game, hosted_realtime) {
        (Target::Game(_), _, Some((game, kind))) => {
            let cluster = state.cluster.clone();
            crate::web::cycles::CycleSession::create(move |ctx| {
                let (socket, connection) = Socket::new(SocketKind::Game, upgraded, limits, metrics);
                ctx.add_stream(connection);
                crate::web::cycles::CycleSession::new(socket, game, kind, cluster)
            });
        }
        (Target::Game(_), Some((Some(id), known)), None) => {
            let links = GameLinks {
                supervisor: state.supervisor.clone(),
                cluster: state.cluster.clone(),
                relay: state.relay.clone(),
                metrics: metrics.clone(),
            };
            PlayerSession::create(move |ctx| {
                let (socket, connection) = Socket::new(SocketKind::Game, upgraded, limits, metrics);
                ctx.add_stream(connection);
                PlayerSession::new(id, known, socket, links)
            });
        }
        (Target::Lobby, _, _) => {
            let (view, admission) = (state.lobby.clone(), state.admission.clone());
            LobbySession::create(move |ctx| {
                let (socket, connection) = Socket::new(SocketKind::Lobby, upgraded, limits, metrics);
                ctx.add_stream(connection);
                LobbySession::new(socket, view, admission)
            });
        }
        #[cfg(feature = "conformance")]
        (Target::Echo, _, _) => crate::web::echo::start(upgraded, limits, metrics),
        _ => {}
    }
    Ok(())
}

/// A real-time game (by the lobby's record of it) that this instance does not host: looked
/// up, so a game whose owner died is taken over here and the socket finds it in the hall.
/// Its seats need the real-time socket, which has no relay: while another instance hosts
/// it, the upgrade is refused (GAME_RESTARTING, `reason: "elsewhere"`) and the client
/// retries, reaching the owner through a load balancer that routes `/ws/games/ID` by the id.
async fn realtime_elsewhere(state: &AppState, id: &GameId) -> Option<ErrorBody> {
    if state.cycles.get(id).is_some() || state.registry.get(id).is_some() || !state.cluster.shared() {
        return None;
    }
    let summary = state.lobby.get(id)?;
    let kind = summary.get("kind").and_then(serde_json::Value::as_str).and_then(crate::game::kinds::by_name)?;
    kind.ticks()?;
    match state.supervisor.send(crate::supervision::supervisor::Resolve(id.clone())).await {
        Ok(crate::supervision::supervisor::Resolved::Remote(_)) => Some(
            ErrorBody::new(ErrorCode::GameRestarting, "this real-time game is played on another server; reconnect")
                .with("retry_after_ms", 1000)
                .with("reason", "elsewhere"),
        ),
        // Taken over here (the hall has it now), or an answer the session will report.
        _ => None,
    }
}

/// A real-time game hosted here, with its kind's tick interface.
fn realtime(
    state: &AppState,
    id: &GameId,
) -> Option<(actix::Addr<crate::supervision::cycles::CycleGame>, &'static crate::game::kinds::TickKind)> {
    state.cycles.find(id).and_then(|(game, kind)| Some((game, kind.ticks()?)))
}

/// Answers the request with `error` (its status, the docs/PROTOCOL.md body, `Retry-After`
/// where it has one) and closes the connection; the error is counted by its code.
async fn refuse(
    state: &AppState,
    framed: &mut Framed<Paced, h1::Codec>,
    error: ErrorBody,
) -> Result<(), actix_web::Error> {
    state.metrics.http_error(error.code);
    let response: actix_http::Response<body::BoxBody> = actix_web::ResponseError::error_response(&error).into();
    let (mut head, payload) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let bytes = body::to_bytes(payload).await.unwrap_or_default();
    debug_assert!(head.status() != StatusCode::SWITCHING_PROTOCOLS);
    framed.send(h1::Message::Item((head, BodySize::Sized(bytes.len() as u64)))).await?;
    framed.send(h1::Message::Chunk(Some(bytes))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
}
