//! The lobby socket's frames (`/ws/lobby`): what a client sends ([`LobbyClientFrame`],
//! checked by [`LobbyRequest::parse`]) and what the server sends ([`LobbyFrame`]: a page
//! of the lobby, a waitlist ticket's [`WaitlistStatus`], a pong).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ErrorBody, ErrorCode, SeatGrant, SharedFrame};

/// A frame the client sends on the lobby socket.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LobbyClientFrame {
    /// Follow a waitlist ticket's place in line (and keep it alive).
    Watch {
        /// The ticket from SERVER_BUSY.
        ticket: String,
    },
    /// Liveness probe, answered with `pong`.
    Ping {
        /// Echoed back.
        id: Option<Value>,
    },
    /// Show this page of the lobby (0 is the first) from now on.
    Page {
        /// 0-based page number.
        page: u32,
    },
}

/// The frame types the lobby socket accepts.
pub const LOBBY_FRAME_TYPES: [&str; 3] = ["watch", "ping", "page"];

/// A lobby socket's frame, checked: what [`LobbyRequest::parse`] makes of the text.
#[derive(Clone, Debug, PartialEq)]
pub enum LobbyRequest {
    /// Answer `pong` with this id.
    Ping(Option<Value>),
    /// Follow this ticket.
    Watch(crate::ids::Ticket),
    /// Show this page (0-based) from now on.
    Page(u32),
}

impl LobbyRequest {
    /// Parses one text frame of `/ws/lobby`: JSON, a known `type`, the strict shape, a
    /// ticket that is one. A refusal is the error frame to send (docs/PROTOCOL.md).
    pub fn parse(text: &str) -> Result<LobbyRequest, ErrorBody> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| ErrorBody::new(ErrorCode::BadRequest, "frames are JSON objects"))?;
        let kind = value.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !LOBBY_FRAME_TYPES.contains(&kind.as_str()) {
            return Err(ErrorBody::new(ErrorCode::UnknownMessageType, "the lobby accepts watch, ping and page")
                .with("type", kind)
                .with("allowed", LOBBY_FRAME_TYPES.to_vec()));
        }
        match serde_json::from_value::<LobbyClientFrame>(value) {
            Ok(LobbyClientFrame::Ping { id }) => Ok(LobbyRequest::Ping(id)),
            Ok(LobbyClientFrame::Page { page }) => Ok(LobbyRequest::Page(page)),
            Ok(LobbyClientFrame::Watch { ticket }) => crate::ids::Ticket::parse(&ticket)
                .map(LobbyRequest::Watch)
                .ok_or_else(|| ErrorBody::ticket_not_found("it is not a ticket")),
            Err(e) => Err(ErrorBody::new(ErrorCode::BadRequest, format!("not a valid {kind} frame: {e}"))),
        }
    }
}

/// A frame the server sends on the lobby socket (errors are [`super::ServerFrame::Error`]).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LobbyFrame {
    /// One page of the games every instance shows (joinable games first, then games in
    /// play, then ended ones, newest first within each), and this server's health.
    Lobby {
        /// Game summaries: at most `page_size`.
        games: Vec<Value>,
        /// healthy | degraded | overloaded.
        health: &'static str,
        /// Which page (0-based).
        page: u32,
        /// Games in a full page (`lobby.page_size`).
        page_size: u32,
        /// Games in the whole lobby.
        total: usize,
    },
    /// A watched ticket's place in line, or its seat once admitted.
    Waitlist(WaitlistStatus),
    /// The answer to a ping.
    Pong {
        /// The ping's id.
        id: Option<Value>,
    },
}

impl LobbyFrame {
    /// Serialises and frames the frame once.
    pub fn to_frame(&self) -> SharedFrame {
        SharedFrame::text(&serde_json::to_string(self).unwrap_or_else(|_| String::from("{}")))
    }
}

/// A ticket's state (`GET /api/v1/waitlist/{ticket}` and the lobby's `waitlist` frame).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum WaitlistStatus {
    /// Still in line.
    Waiting {
        /// 1-based place in line (0: being admitted now).
        position: u64,
        /// Estimated seconds until admitted.
        eta_secs: u64,
    },
    /// Admitted: the seat to take.
    Admitted(SeatGrant),
}
