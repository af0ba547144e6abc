//! The wire contract of docs/PROTOCOL.md as types: error codes and the error shape, client and
//! server WebSocket frames, REST bodies and the game views. Parsing and validation of client
//! frames happen here, in one place, and return docs/PROTOCOL.md error codes. The REST types
//! derive `ToSchema`: the OpenAPI document (`src/web/openapi.rs`) is generated from them.

pub mod close;
pub mod error;
pub mod frames;
pub mod lobby;
mod schemas;
pub mod text;
pub mod views;

pub use error::{ErrorBody, ErrorCode, ErrorDetails, ErrorEnvelope};
pub use frames::{
    ownership_paused, seat_held, tick_input_frames, ChatFrom, ClientFrame, FrameError, SeatNames, ServerFrame,
    SharedFrame, TickInputFrame, CLIENT_FRAME_TYPES, TICK_FRAME_TYPES,
};
pub use lobby::{LobbyClientFrame, LobbyFrame, LobbyRequest, WaitlistStatus, LOBBY_FRAME_TYPES};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::game::Seat;

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
    use serde_json::json;

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
    fn every_real_time_kind_has_its_input_frames_and_they_are_strict() {
        use crate::game::kinds::{self, Runtime};
        for kind in kinds::KINDS {
            let frames = tick_input_frames(kind.name);
            assert_eq!(frames.is_empty(), matches!(kind.runtime, Runtime::Turns(_)), "{}: {frames:?}", kind.name);
        }
        let cycles = kinds::by_name("lightcycle").unwrap();
        let parse = |text: &str| ClientFrame::parse_for(text, 280, cycles);
        let turn = parse(r#"{"type":"turn","dir":"left"}"#).unwrap();
        assert_eq!(turn, ClientFrame::Input { frame: "turn", input: crate::game::lightcycle::Dir::Left.code() });
        assert_eq!(parse(r#"{"type":"resign"}"#), Ok(ClientFrame::Resign));
        let bad_dir = parse(r#"{"type":"turn","dir":"north"}"#).unwrap_err();
        assert_eq!((bad_dir.error.code, bad_dir.in_reply_to), (ErrorCode::ValidationFailed, Some("turn")));
        assert_eq!(bad_dir.error.details["field"], "dir");
        assert_eq!(bad_dir.error.details["allowed"], json!(["up", "right", "down", "left"]));
        for shape in [r#"{"type":"turn"}"#, r#"{"type":"turn","dir":1}"#, r#"{"type":"turn","dir":"up","x":1}"#] {
            let err = parse(shape).unwrap_err();
            assert_eq!((err.error.code, err.in_reply_to), (ErrorCode::BadRequest, Some("turn")), "{shape}");
        }
        for other_kinds in [r#"{"type":"move","column":3}"#, r#"{"type":"chat","text":"hi"}"#] {
            let err = parse(other_kinds).unwrap_err();
            assert_eq!(err.error.code, ErrorCode::UnknownMessageType, "{other_kinds}");
            assert_eq!(err.error.details["allowed"], json!(["join", "resign", "ping", "turn"]));
        }
        let connect4 = kinds::by_name("connect4").unwrap();
        let err = ClientFrame::parse_for(r#"{"type":"turn","dir":"up"}"#, 280, connect4).unwrap_err();
        assert_eq!(err.error.code, ErrorCode::UnknownMessageType, "a turn-based socket reads no input frame");
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
