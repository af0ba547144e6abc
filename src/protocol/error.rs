//! The one error shape every client sees (docs/PROTOCOL.md, "Errors"): [`ErrorCode`], the
//! stable codes with their HTTP statuses; [`ErrorBody`] `{"code","message","details"}`
//! and its constructors, each sentence written once; the REST [`ErrorEnvelope`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::game::{MoveError, Seat};

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

/// The code a client sees for a refused move: `NOT_YOUR_TURN`, `GAME_OVER`, or
/// `INVALID_MOVE` for every move the rules refuse on the board.
impl From<&MoveError> for ErrorCode {
    fn from(e: &MoveError) -> ErrorCode {
        match e {
            MoveError::NotYourTurn { .. } => ErrorCode::NotYourTurn,
            MoveError::GameOver => ErrorCode::GameOver,
            MoveError::ColumnOutOfRange { .. } | MoveError::ColumnFull { .. } | MoveError::Illegal { .. } => {
                ErrorCode::InvalidMove
            }
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
    pub watch: Option<super::views::WatchLinks>,
    /// SERVER_BUSY `connections`, GAME_OVER `abandoned`, NOT_YOUR_TURN
    /// `waiting_for_opponent`, GAME_FAILED `unreadable`; VALIDATION_FAILED on `player_name`:
    /// the rule the name breaks ([`super::text::NameProblem::reason`]).
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
    /// GAME_RESTARTING: the game cannot answer now (it is being recovered); retry shortly.
    pub fn restarting() -> Self {
        ErrorBody::new(ErrorCode::GameRestarting, "the game is restarting after a fault; retry shortly")
            .with("retry_after_ms", 250)
    }
    /// GAME_RESTARTING `ownership_unconfirmed`: the game is paused until its server confirms
    /// it still owns it (docs/DESIGN.md D17); nothing was applied.
    pub fn ownership_unconfirmed(retry_after_ms: u64) -> Self {
        ErrorBody::new(ErrorCode::GameRestarting, "this server is confirming it still holds the game; retry shortly")
            .with("retry_after_ms", retry_after_ms)
            .with("reason", "ownership_unconfirmed")
    }
    /// SERVER_BUSY `store_unavailable`: no game starts without its lease in the store, which
    /// cannot be reached (no ticket: retry after `retry_after_ms`).
    pub fn store_unavailable() -> Self {
        ErrorBody::new(
            ErrorCode::ServerBusy,
            "the game store cannot be reached right now, so no new game can start safely; retry shortly",
        )
        .with("reason", "store_unavailable")
        .with("retry_after_ms", 1000)
    }
    /// GAME_RESTARTING `store_behind`: the game's store is so far behind that the changes
    /// waiting to be durable fill the game's queue; nothing more is applied until they are
    /// written (docs/DESIGN.md D18).
    pub fn store_behind() -> Self {
        ErrorBody::new(ErrorCode::GameRestarting, "the game store is behind; retry shortly")
            .with("reason", "store_behind")
            .with("retry_after_ms", 250)
    }
    /// GAME_RESTARTING: the incarnation asked was replaced (the game moved to a fresh
    /// thread); ask again.
    pub fn moved() -> Self {
        ErrorBody::new(ErrorCode::GameRestarting, "the game moved; retry").with("retry_after_ms", 100)
    }
    /// GAME_RESTARTING: a command that was not applied in time (the game is being
    /// recovered); nothing changed.
    pub fn not_applied() -> Self {
        ErrorBody::new(
            ErrorCode::GameRestarting,
            "the game did not take that in time (it is being recovered); it was not applied, retry",
        )
        .with("retry_after_ms", 250)
    }
    /// GAME_RESTARTING: the game (or the instance that runs it) did not answer in time.
    pub fn not_answering() -> Self {
        ErrorBody::new(ErrorCode::GameRestarting, "the game did not answer; retry").with("retry_after_ms", 250)
    }
    /// GAME_FULL: both seats are taken.
    pub fn game_full() -> Self {
        ErrorBody::new(ErrorCode::GameFull, "both seats are taken")
    }
    /// UNAUTHORIZED: the token presented holds no seat in this game.
    pub fn not_a_seat() -> Self {
        ErrorBody::new(ErrorCode::Unauthorized, "this token holds no seat in this game")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_move_has_its_protocol_code() {
        let code = |e: MoveError| ErrorCode::from(&e).as_str();
        assert_eq!(code(MoveError::ColumnOutOfRange { column: 9, columns: 7 }), "INVALID_MOVE");
        assert_eq!(code(MoveError::ColumnFull { column: 3 }), "INVALID_MOVE");
        assert_eq!(code(MoveError::Illegal { reason: "no".to_owned() }), "INVALID_MOVE");
        assert_eq!(code(MoveError::NotYourTurn { turn: Seat::Yellow }), "NOT_YOUR_TURN");
        assert_eq!(code(MoveError::GameOver), "GAME_OVER");
    }
}
