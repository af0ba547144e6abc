//! The WebSocket upgrades. actix-http hands every request that asks to upgrade its
//! connection (`Connection: upgrade`) to this service, with the connection itself, instead
//! of to the app: the handshake is answered here (101, or an error in the docs/PROTOCOL.md
//! shape and the connection closed), then the TCP stream leaves the HTTP dispatcher — and
//! its two 8 KiB buffers — for the socket's own small ones (`src/web/ws.rs`), and the
//! session actor for the path starts: a game seat (`/ws/games/{id}`), the lobby
//! (`/ws/lobby`) or, in a conformance build, the echo (`/ws/echo`). A plain `GET` on those
//! paths, with no upgrade asked, still reaches the app, which answers what it lacks.

use crate::game::kinds::KINDS;
use crate::ids::GameId;
use crate::metrics::SocketKind;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::web::gate::ConnSlot;
use crate::web::lobby::LobbySession;
use crate::web::pipeline::Paced;
use crate::web::session::{GameLinks, PlayerSession};
use crate::web::socket::{Socket, Upgraded};
use crate::web::{game_id, game_kind, AppState};
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
    // and the 4404 close. Its kind says which frames the socket reads.
    let game = match &target {
        Target::Game(id) => {
            let id = game_id(id).ok();
            let kind = match &id {
                Some(id) => game_kind(&state, id).await,
                None => None,
            };
            Some((id.or_else(|| GameId::parse("unknown")), kind))
        }
        _ => None,
    };
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
    match (target, game) {
        (Target::Game(_), Some((Some(id), kind))) => {
            let links = GameLinks {
                supervisor: state.supervisor.clone(),
                cluster: state.cluster.clone(),
                relay: state.relay.clone(),
                metrics: metrics.clone(),
            };
            PlayerSession::create(move |ctx| {
                let (socket, connection) = Socket::new(SocketKind::Game, upgraded, limits, metrics);
                ctx.add_stream(connection);
                let known = kind.is_some();
                PlayerSession::new(id, kind.unwrap_or(&KINDS[0]), known, socket, links)
            });
        }
        (Target::Lobby, _) => {
            let (view, admission) = (state.lobby.clone(), state.admission.clone());
            LobbySession::create(move |ctx| {
                let (socket, connection) = Socket::new(SocketKind::Lobby, upgraded, limits, metrics);
                ctx.add_stream(connection);
                LobbySession::new(socket, view, admission)
            });
        }
        #[cfg(feature = "conformance")]
        (Target::Echo, _) => crate::web::echo::start(upgraded, limits, metrics),
        _ => {}
    }
    Ok(())
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
