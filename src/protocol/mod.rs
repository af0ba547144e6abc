//! The wire contract of docs/PROTOCOL.md as types: error codes and the error shape, client and
//! server WebSocket frames, REST bodies and the game views. Parsing and validation of client
//! frames happen here, in one place, and return docs/PROTOCOL.md error codes. The REST types
//! derive `ToSchema`: the OpenAPI document (`src/web/openapi.rs`) is generated from them.

pub mod close;
pub mod frames;
pub mod text;
pub mod views;

pub use frames::{
    seat_held, ChatFrom, ClientFrame, FrameError, SeatNames, ServerFrame, SharedFrame, CLIENT_FRAME_TYPES,
    TICK_FRAME_TYPES,
};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::game::Seat;

/// Every error code a client can see. Stable: add, never rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ErrorCode {
    BadRequest,
    ValidationFailed,
    UnknownMessageType,
    PayloadTooLarge,
    Unauthorized,
    Forbidden,
    NotFound,
    GameNotFound,
    TicketNotFound,
    GameFull,
    NotYourTurn,
    InvalidMove,
    GameOver,
    GameRestarting,
    GameFailed,
    ServerBusy,
    RateLimited,
    Draining,
    Internal,
    RequestTimeout,
}

impl ErrorCode {
    /// All codes, for metrics.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::BadRequest,
        ErrorCode::ValidationFailed,
        ErrorCode::UnknownMessageType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::GameNotFound,
        ErrorCode::TicketNotFound,
        ErrorCode::GameFull,
        ErrorCode::NotYourTurn,
        ErrorCode::InvalidMove,
        ErrorCode::GameOver,
        ErrorCode::GameRestarting,
        ErrorCode::GameFailed,
        ErrorCode::ServerBusy,
        ErrorCode::RateLimited,
        ErrorCode::Draining,
        ErrorCode::Internal,
        ErrorCode::RequestTimeout,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::UnknownMessageType => "UNKNOWN_MESSAGE_TYPE",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::GameNotFound => "GAME_NOT_FOUND",
            ErrorCode::TicketNotFound => "TICKET_NOT_FOUND",
            ErrorCode::GameFull => "GAME_FULL",
            ErrorCode::NotYourTurn => "NOT_YOUR_TURN",
            ErrorCode::InvalidMove => "INVALID_MOVE",
            ErrorCode::GameOver => "GAME_OVER",
            ErrorCode::GameRestarting => "GAME_RESTARTING",
            ErrorCode::GameFailed => "GAME_FAILED",
            ErrorCode::ServerBusy => "SERVER_BUSY",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Draining => "DRAINING",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
        }
    }

    /// The HTTP status of this code on a REST response. Codes only a socket sends map to
    /// 409 (a move refused by the game's state) or 400 (an unknown frame type).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::ValidationFailed => 422,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::GameNotFound | ErrorCode::TicketNotFound => 404,
            ErrorCode::GameFailed => 410,
            ErrorCode::ServerBusy | ErrorCode::Draining | ErrorCode::GameRestarting => 503,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::UnknownMessageType => 400,
            ErrorCode::GameFull | ErrorCode::NotYourTurn | ErrorCode::InvalidMove | ErrorCode::GameOver => 409,
        }
    }
}

/// The one error shape: `{"code","message","details"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// A sentence for humans; never an internal message.
    pub message: String,
    /// Structured extras (`field`, `retry_after_ms`, `incident`, …); may be empty.
    #[schema(value_type = ErrorDetails)]
    pub details: Value,
}

/// The REST error: `{"error":{…}}` around the one error shape.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The keys [`ErrorBody::details`] may hold (docs/PROTOCOL.md, "Errors"); each is present
/// only with the codes named. This type documents the contract: `details` is built with
/// [`ErrorBody::with`]. New keys may be added.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetails {
    /// VALIDATION_FAILED: the request or frame field at fault.
    pub field: Option<String>,
    /// VALIDATION_FAILED, UNKNOWN_MESSAGE_TYPE: the accepted values or frame types.
    pub allowed: Option<Vec<Value>>,
    /// VALIDATION_FAILED on `chat`: the chat limit in characters.
    pub max: Option<u64>,
    /// UNKNOWN_MESSAGE_TYPE: the `type` that was sent.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// PAYLOAD_TOO_LARGE: the body or frame limit (`server.max_frame_bytes`).
    pub max_bytes: Option<u64>,
    /// SERVER_BUSY, GAME_RESTARTING, RATE_LIMITED: wait at least this long before retrying
    /// (also the `Retry-After` header, in whole seconds rounded up).
    pub retry_after_ms: Option<u64>,
    /// SERVER_BUSY with a place in line: the ticket (a secret).
    pub ticket: Option<String>,
    /// SERVER_BUSY with a place in line: 1-based position.
    pub position: Option<u64>,
    /// SERVER_BUSY with a place in line: estimated seconds until admitted.
    pub eta_secs: Option<u64>,
    /// SERVER_BUSY with a place in line: where to follow the ticket.
    pub watch: Option<views::WatchLinks>,
    /// SERVER_BUSY `connections`, GAME_OVER `abandoned`, NOT_YOUR_TURN
    /// `waiting_for_opponent`, GAME_FAILED `unreadable`; VALIDATION_FAILED on `player_name`:
    /// the rule the name breaks ([`text::NameProblem::reason`]).
    pub reason: Option<String>,
    /// RATE_LIMITED on `POST /api/v1/games`: `creations` or `tickets`, the per-client limit passed.
    pub limit: Option<String>,
    /// NOT_YOUR_TURN, INVALID_MOVE, GAME_OVER on `move`: the column that was sent.
    pub column: Option<i64>,
    /// FORBIDDEN: the seat this socket already holds.
    pub seat: Option<Seat>,
    /// NOT_FOUND for a breaker: the unknown name.
    pub name: Option<String>,
    /// INTERNAL after a game crash: an id that also appears in the server log.
    pub incident: Option<String>,
}

impl ErrorBody {
    /// An error with empty details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody { code, message: message.into(), details: json!({}) }
    }
    /// Adds one detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
    /// VALIDATION_FAILED naming the field.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ErrorBody::new(ErrorCode::ValidationFailed, message).with("field", field)
    }
    /// The REST envelope `{"error":{…}}`.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope { error: self.clone() }
    }
    /// `details.retry_after_ms`, when set.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.details.get("retry_after_ms").and_then(Value::as_u64)
    }

    /// GAME_NOT_FOUND.
    pub fn game_not_found() -> Self {
        ErrorBody::new(ErrorCode::GameNotFound, "no such game")
    }
    /// TICKET_NOT_FOUND, saying why.
    pub fn ticket_not_found(why: &str) -> Self {
        ErrorBody::new(ErrorCode::TicketNotFound, format!("no such ticket: {why}"))
    }
    /// NOT_FOUND for a path or a named thing.
    pub fn not_found(what: impl Into<String>) -> Self {
        ErrorBody::new(ErrorCode::NotFound, what)
    }
    /// GAME_RESTARTING: the game cannot answer now; retry after half a second.
    pub fn restarting() -> Self {
        ErrorBody::new(ErrorCode::GameRestarting, "the game is restarting after a fault; retry shortly")
            .with("retry_after_ms", 500)
    }
    /// GAME_FAILED: the game is closed for good.
    pub fn game_failed() -> Self {
        ErrorBody::new(ErrorCode::GameFailed, "this game exceeded its restart limit and is closed")
    }
    /// GAME_OVER `abandoned`: the game was closed because no player was connected.
    pub fn abandoned() -> Self {
        ErrorBody::new(ErrorCode::GameOver, "this game was closed because no player was connected; start a new one")
            .with("reason", "abandoned")
    }
    /// DRAINING: this server takes nothing new.
    pub fn draining() -> Self {
        ErrorBody::new(ErrorCode::Draining, "the server is shutting down; try another server")
    }
    /// BAD_REQUEST for a body that is not the documented shape.
    pub fn bad_shape(e: impl std::fmt::Display) -> Self {
        ErrorBody::new(ErrorCode::BadRequest, format!("body does not have the documented shape: {e}"))
    }
    /// INTERNAL: something of ours is unavailable (never an internal message).
    pub fn internal(what: &str) -> Self {
        ErrorBody::new(ErrorCode::Internal, format!("{what} is unavailable"))
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// The schema of a string that is one of `values` (for fields read loosely and checked by
/// hand, so that the document and the check share one list).
pub fn string_enum(values: &[&str], description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

// `Seat` lives with the game rules, which know nothing of the wire; its schema is here.
impl utoipa::PartialSchema for Seat {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = Seat::ALL.iter().map(|s| s.as_str()).collect();
        string_enum(&names, "A seat: red moves first; the creator of a game is red.").into()
    }
}

impl ToSchema for Seat {}

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

/// A frame the server sends on the lobby socket (errors are [`ServerFrame::Error`]).
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

/// Game status as clients see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GameStatus {
    /// Waiting for the second human.
    Waiting,
    /// In play.
    Playing,
    /// Someone won (four in a row or resignation).
    Won,
    /// Full board, no winner.
    Draw,
    /// Closed after too many restarts.
    Failed,
    /// Closed because no player was connected for `server.abandoned_game_secs`.
    Abandoned,
}

impl GameStatus {
    /// Whether the game is over (won, drawn, failed or abandoned): it no longer counts
    /// against the server's capacity.
    pub fn is_ended(self) -> bool {
        !matches!(self, GameStatus::Waiting | GameStatus::Playing)
    }
}

/// One seat as clients see it; never holds the token.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PlayerView {
    /// Display name.
    pub name: String,
    /// Whether a socket is attached to the seat (the AI always is).
    pub connected: bool,
    /// Whether this seat is the AI.
    pub ai: bool,
}

/// Both seats; a free seat is `null`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PlayersView {
    /// Red seat.
    pub red: Option<PlayerView>,
    /// Yellow seat.
    pub yellow: Option<PlayerView>,
}

/// The full state of one game (the `game` of a `state` frame).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GameView {
    /// Game id.
    pub game_id: String,
    /// Game kind.
    pub kind: &'static str,
    /// Status.
    pub status: GameStatus,
    /// Whose turn, or null when not playing.
    pub turn: Option<Seat>,
    /// The winner, or null.
    pub winner: Option<Seat>,
    /// The seat that resigned, or null.
    pub resigned: Option<Seat>,
    /// Moves played.
    pub moves: u32,
    /// Both seats.
    pub players: PlayersView,
    /// Restarts so far.
    pub restarts: u32,
    /// The kind's own fields, beside these (Connect Four: `columns`, 7 columns each bottom
    /// to top, and `winning_line`, the four winning cells as `[column, row]` or null).
    #[serde(flatten)]
    pub board: serde_json::Map<String, Value>,
}

/// One lobby entry (`GET /api/v1/games`); never holds tokens.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct GameSummary {
    /// Game id.
    pub game_id: String,
    /// Game kind.
    #[schema(schema_with = game_kind_schema)]
    pub kind: &'static str,
    /// Status.
    pub status: GameStatus,
    /// Both seats.
    pub players: PlayersView,
    /// Moves played.
    pub moves: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// When the game was created.
    pub created_at: String,
    /// The winner, or null.
    pub winner: Option<Seat>,
    /// The seat that resigned, or null.
    pub resigned: Option<Seat>,
}

/// Who the creator plays against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Opponent {
    /// The AI player.
    Ai,
    /// A second human who joins with a link.
    Human,
}

/// `POST /api/v1/games`. `kind` and `opponent` are read loosely so that a wrong value gets
/// VALIDATION_FAILED with the allowed values (see [`CreateGameRequest::validate`]), not a
/// parser's message.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGameRequest {
    /// Game kind: `connect4` (turn-based) or `lightcycle` (real-time).
    #[schema(schema_with = game_kind_schema)]
    pub kind: Value,
    /// `ai` or `human`.
    #[schema(value_type = Opponent)]
    pub opponent: Value,
    /// The creator's name: trimmed, then 1–32 characters, visible, without control or
    /// bidi control characters, not the AI's (else VALIDATION_FAILED, [`validate_player_name`]).
    #[schema(schema_with = player_name_schema)]
    pub player_name: String,
}

/// A registered game kind ([`crate::game::kinds::KINDS`]); on the wire, its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub struct GameKind(&'static crate::game::kinds::Kind);

impl GameKind {
    /// The kind's wire name.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The kind's entry in the table.
    pub fn spec(self) -> &'static crate::game::kinds::Kind {
        self.0
    }
}

/// The first kind registered.
impl Default for GameKind {
    fn default() -> Self {
        GameKind(&crate::game::kinds::KINDS[0])
    }
}

impl TryFrom<String> for GameKind {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        crate::game::kinds::by_name(&name).map(GameKind).ok_or_else(|| format!("no game kind {name:?}"))
    }
}

impl From<GameKind> for &'static str {
    fn from(kind: GameKind) -> &'static str {
        kind.name()
    }
}

/// The opponents a creator may choose.
pub const OPPONENTS: [&str; 2] = ["ai", "human"];

fn game_kind_schema() -> Object {
    string_enum(&crate::game::kinds::names(), "The game kind.")
}

impl CreateGameRequest {
    /// The kind, the opponent and the normalised name, or the first field that is wrong.
    pub fn validate(self) -> Result<(GameKind, Opponent, String), ErrorBody> {
        let kind: GameKind = serde_json::from_value(self.kind).map_err(|_| {
            let names = crate::game::kinds::names();
            ErrorBody::validation("kind", format!("kind must be one of {}", names.join(", "))).with("allowed", names)
        })?;
        let opponent: Opponent = serde_json::from_value(self.opponent).map_err(|_| {
            ErrorBody::validation("opponent", "opponent must be \"ai\" or \"human\"")
                .with("allowed", OPPONENTS.to_vec())
        })?;
        Ok((kind, opponent, validate_player_name(&self.player_name)?))
    }
}

/// `POST /api/v1/games/{id}/join`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinGameRequest {
    /// The joiner's name: trimmed, then 1–32 characters, visible, without control or bidi
    /// control characters, not the AI's (else VALIDATION_FAILED, [`validate_player_name`]).
    #[schema(schema_with = player_name_schema)]
    pub player_name: String,
}

/// The answer to create and join: the seat and its secret token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeatGrant {
    /// Game id.
    pub game_id: String,
    /// The seat granted.
    pub seat: Seat,
    /// The seat's token (shown only to its owner).
    pub player_token: String,
}

pub use text::{player_name_pattern, AI_PLAYER_NAME, MAX_PLAYER_NAME_CHARS};

fn player_name_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(player_name_pattern()))
        .description(Some(
            "A player's name: trimmed, then 1–32 characters without control or bidirectional control \
             characters, at least one of them visible, at most 3 combining marks on a character, and \
             not a look-alike of the AI's name \"Rampart AI\".",
        ))
        .build()
}

/// Checks and normalises a player name, for every way a name comes in (REST create and
/// join; the waitlist keeps the checked one): the rules of [`text::check_name`], refused
/// as VALIDATION_FAILED with `field: "player_name"` and `reason`.
pub fn validate_player_name(name: &str) -> Result<String, ErrorBody> {
    text::check_name(name)
        .map(str::to_owned)
        .map_err(|problem| ErrorBody::validation("player_name", problem.message()).with("reason", problem.reason()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        ClientFrame::parse(text, 280).expect_err("should fail").error.code
    }

    #[test]
    fn parses_every_frame() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"join","token":"t"}"#, 280),
            Ok(ClientFrame::Join { token: "t".into() })
        );
        assert_eq!(ClientFrame::parse(r#"{"type":"move","column":3}"#, 280), Ok(ClientFrame::Move { column: 3 }));
        assert_eq!(ClientFrame::parse(r#"{"type":"move","column":-1}"#, 280), Ok(ClientFrame::Move { column: -1 }));
        assert_eq!(
            ClientFrame::parse(r#"{"type":"chat","text":"  hi "}"#, 280),
            Ok(ClientFrame::Chat { text: "hi".into() })
        );
        assert_eq!(ClientFrame::parse(r#"{"type":"resign"}"#, 280), Ok(ClientFrame::Resign));
        assert_eq!(ClientFrame::parse(r#"{"type":"ping","id":7}"#, 280), Ok(ClientFrame::Ping { id: json!(7) }));
    }

    #[test]
    fn rejects_bad_frames_with_their_codes() {
        assert_eq!(code("not json"), ErrorCode::BadRequest);
        assert_eq!(code("[1,2]"), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":"fly"}"#), ErrorCode::UnknownMessageType);
        assert_eq!(code(r#"{"type":"move","column":"3"}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":"move","column":3.5}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":"move"}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":"move","column":3,"x":1}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":"resign","x":1}"#), ErrorCode::BadRequest, "a frame without fields is strict too");
        assert_eq!(code(r#"{"type":"chat","text":"   "}"#), ErrorCode::ValidationFailed);
        assert_eq!(code(r#"{"type":"chat","text":"\u0007"}"#), ErrorCode::ValidationFailed, "only a control character");
        assert_eq!(code(r#"{"type":"chat","text":" \u0000 \u001b "}"#), ErrorCode::ValidationFailed);
        let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(281));
        let err = ClientFrame::parse(&long, 280).expect_err("too long");
        assert_eq!(err.error.code, ErrorCode::ValidationFailed);
        assert_eq!(err.error.details["field"], "text");
        assert_eq!(err.in_reply_to, Some("chat"));
    }

    #[test]
    fn error_frames_serialise_to_the_contract() {
        let frame = ServerFrame::Error { error: ErrorBody::validation("text", "too long"), in_reply_to: Some("chat") };
        let v: Value = serde_json::from_str(frame.to_frame().json()).expect("json");
        assert_eq!(
            v,
            json!({"type":"error","error":{"code":"VALIDATION_FAILED","message":"too long","details":{"field":"text"}},"in_reply_to":"chat"})
        );
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).expect("json"), json!(code.as_str()));
        }
    }

    #[test]
    fn player_names_are_checked() {
        assert_eq!(validate_player_name("  ada "), Ok("ada".to_owned()));
        assert!(validate_player_name("").is_err());
        assert!(validate_player_name(&"x".repeat(33)).is_err());
        assert!(validate_player_name("a\u{7}b").is_err());
        let refused = validate_player_name("\u{3164}").expect_err("invisible");
        assert_eq!(
            (refused.code, &refused.details),
            (ErrorCode::ValidationFailed, &json!({"field": "player_name", "reason": "invisible"}))
        );
        assert_eq!(validate_player_name(" rampart  ai ").expect_err("reserved").details["reason"], "reserved");
    }

    #[test]
    fn a_chat_of_nothing_visible_is_empty() {
        for text in ["\u{200B}\u{200B}\u{200B}", "\u{2800}", "\u{3164}\u{200B}", "\u{202E}", " \u{FEFF} "] {
            let frame = json!({"type": "chat", "text": text}).to_string();
            let err = ClientFrame::parse(&frame, 280).expect_err(text);
            assert_eq!(
                (err.error.message.as_str(), &err.error.details),
                ("chat text is empty", &json!({"field": "text"}))
            );
        }
        assert_eq!(
            ClientFrame::parse(&json!({"type": "chat", "text": "g\u{200B}g\u{202E}!"}).to_string(), 280),
            Ok(ClientFrame::Chat { text: "gg!".into() })
        );
    }
}
