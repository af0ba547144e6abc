//! The game socket's frames: what a client sends ([`ClientFrame`], parsed and validated
//! here for every kind: a turn-based kind's `move` and `chat`, a real-time kind's input
//! frames, [`TickInputFrame`]) and what the server sends ([`ServerFrame`], turn-based and
//! real-time), serialised once into a [`SharedFrame`] every socket writes as it is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::text;
use super::{ErrorBody, ErrorCode, GameStatus, GameView};
use crate::game::kinds::Kind;
use crate::game::lightcycle::{Dir, LightCycles};
use crate::game::{Arena, Seat, TickInput};

/// A frame a client sends on a game socket, after parsing and validation.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientFrame {
    /// Attach to a seat (first frame, or a resume).
    Join {
        /// The seat's token.
        token: String,
    },
    /// Drop a disc; the column is checked by the rules (INVALID_MOVE when out of range).
    Move {
        /// Raw column from the client.
        column: i64,
    },
    /// A chat line, already trimmed and length-checked.
    Chat {
        /// The text.
        text: String,
    },
    /// Concede the game.
    Resign,
    /// Liveness probe, answered with `pong`.
    Ping {
        /// Echoed back.
        id: Value,
    },
    /// A real-time seat's input for the next tick ([`TickInputFrame`]).
    Input {
        /// The frame's type (one of its kind's [`tick_input_frames`]).
        frame: &'static str,
        /// The input in the kind's code.
        input: TickInput,
    },
}

/// The input frames of the real-time kinds, each a type of the wire contract like every
/// other frame. A new real-time kind adds its frames here and names them in
/// [`tick_input_frames`]; the kind's rules module knows nothing of the wire.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TickInputFrame {
    /// Light cycles: steer the cycle (`up`, `down`, `left` or `right`).
    Turn {
        /// The new heading, checked by [`TickInputFrame::input`] (VALIDATION_FAILED with
        /// `allowed`, as a bad column is).
        dir: String,
    },
}

/// The input frame types a real-time kind's socket accepts (empty for a kind with none).
pub fn tick_input_frames(kind: &str) -> &'static [&'static str] {
    match kind {
        LightCycles::KIND => &["turn"],
        _ => &[],
    }
}

impl TickInputFrame {
    /// The input in its kind's code, or VALIDATION_FAILED for a field's value it may not take.
    pub fn input(&self) -> Result<TickInput, ErrorBody> {
        match self {
            TickInputFrame::Turn { dir } => Dir::parse(dir).map(Dir::code).ok_or_else(|| {
                ErrorBody::validation("dir", "dir must be up, down, left or right")
                    .with("allowed", Dir::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>())
            }),
        }
    }
}

/// The typed shapes of client frames, checked strictly.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawFrame {
    Join {
        token: String,
    },
    Move {
        column: i64,
    },
    Chat {
        text: String,
    },
    // A struct variant, not a unit one: serde lets a unit variant of an internally tagged
    // enum through with unknown fields (`{"type":"resign","x":1}` resigned the game).
    Resign {},
    Ping {
        #[serde(default)]
        id: Value,
    },
}

/// The frame types a client may send on a turn-based game's socket, for error messages.
pub const CLIENT_FRAME_TYPES: [&str; 5] = ["join", "move", "chat", "resign", "ping"];

/// The frame types every real-time game's socket accepts, besides its kind's input frames.
pub const TICK_FRAME_TYPES: [&str; 3] = ["join", "resign", "ping"];

/// A client frame that could not be accepted, with the frame type when it was known.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameError {
    /// The error to send.
    pub error: ErrorBody,
    /// The `type` of the offending frame, when it had a known one.
    pub in_reply_to: Option<&'static str>,
}

impl ClientFrame {
    /// The wire name of this frame's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientFrame::Join { .. } => "join",
            ClientFrame::Move { .. } => "move",
            ClientFrame::Chat { .. } => "chat",
            ClientFrame::Resign => "resign",
            ClientFrame::Ping { .. } => "ping",
            ClientFrame::Input { frame, .. } => frame,
        }
    }

    /// Parses and validates one text frame on a socket of a game of `kind`: a turn-based
    /// kind's frames ([`ClientFrame::parse`]), or a real-time kind's (`join`, `resign`,
    /// `ping` and the kind's [`TickInputFrame`]s), equally strict.
    pub fn parse_for(text: &str, max_chat_chars: usize, kind: &Kind) -> Result<ClientFrame, FrameError> {
        if kind.ticks().is_none() {
            return ClientFrame::parse(text, max_chat_chars);
        }
        let fail = |error, in_reply_to| FrameError { error, in_reply_to };
        let value = typed_json(text)?;
        let frame_type = value.get("type").and_then(Value::as_str).unwrap_or_default();
        let input_frames = tick_input_frames(kind.name);
        if let Some(input_frame) = input_frames.iter().copied().find(|t| *t == frame_type) {
            let frame: TickInputFrame = serde_json::from_value(value).map_err(|e| {
                fail(ErrorBody::new(ErrorCode::BadRequest, format!("bad {input_frame} frame: {e}")), Some(input_frame))
            })?;
            return match frame.input() {
                Ok(input) => Ok(ClientFrame::Input { frame: input_frame, input }),
                Err(error) => Err(fail(error, Some(input_frame))),
            };
        }
        let Some(known) = TICK_FRAME_TYPES.iter().copied().find(|t| *t == frame_type) else {
            let allowed: Vec<&str> = TICK_FRAME_TYPES.iter().chain(input_frames).copied().collect();
            let error = ErrorBody::new(ErrorCode::UnknownMessageType, format!("unknown message type {frame_type:?}"))
                .with("type", frame_type)
                .with("allowed", allowed);
            return Err(fail(error, None));
        };
        let raw: RawFrame = serde_json::from_value(value)
            .map_err(|e| fail(ErrorBody::new(ErrorCode::BadRequest, format!("bad {known} frame: {e}")), Some(known)))?;
        Ok(match raw {
            RawFrame::Join { token } => ClientFrame::Join { token },
            RawFrame::Resign {} => ClientFrame::Resign,
            RawFrame::Ping { id } => ClientFrame::Ping { id },
            // Not in TICK_FRAME_TYPES: refused above.
            RawFrame::Move { .. } | RawFrame::Chat { .. } => unreachable!("not a real-time frame type"),
        })
    }

    /// Parses and validates one text frame.
    pub fn parse(text: &str, max_chat_chars: usize) -> Result<ClientFrame, FrameError> {
        let fail = |error, in_reply_to| FrameError { error, in_reply_to };
        let value = typed_json(text)?;
        let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(known) = CLIENT_FRAME_TYPES.iter().copied().find(|t| *t == kind) else {
            let error = ErrorBody::new(ErrorCode::UnknownMessageType, format!("unknown message type {kind:?}"))
                .with("type", kind)
                .with("allowed", CLIENT_FRAME_TYPES.to_vec());
            return Err(fail(error, None));
        };
        let raw: RawFrame = serde_json::from_value(value)
            .map_err(|e| fail(ErrorBody::new(ErrorCode::BadRequest, format!("bad {known} frame: {e}")), Some(known)))?;
        Ok(match raw {
            RawFrame::Join { token } => ClientFrame::Join { token },
            RawFrame::Move { column } => ClientFrame::Move { column },
            RawFrame::Chat { text } => {
                // What hides goes first (control and bidi controls, zero-width characters,
                // fillers), so a line of nothing else is empty (a lone BEL, found by the
                // client_frame fuzz target; a line of zero-width spaces, issue 21).
                let cleaned = text::clean_chat(&text);
                let text = cleaned.as_str();
                if !text::has_visible(text) {
                    return Err(fail(ErrorBody::validation("text", "chat text is empty"), Some(known)));
                }
                let chars = text.chars().count();
                if chars > max_chat_chars {
                    let error = ErrorBody::validation(
                        "text",
                        format!("chat text has {chars} characters; the limit is {max_chat_chars}"),
                    )
                    .with("max", max_chat_chars);
                    return Err(fail(error, Some(known)));
                }
                ClientFrame::Chat { text: text.to_owned() }
            }
            RawFrame::Resign {} => ClientFrame::Resign,
            RawFrame::Ping { id } => ClientFrame::Ping { id },
        })
    }
}

/// A frame's JSON, refused unless it is an object with a string `type`.
fn typed_json(text: &str) -> Result<Value, FrameError> {
    let fail =
        |message: String| FrameError { error: ErrorBody::new(ErrorCode::BadRequest, message), in_reply_to: None };
    let value: Value = serde_json::from_str(text).map_err(|e| fail(format!("frame is not valid JSON: {e}")))?;
    if value.get("type").and_then(Value::as_str).is_none() {
        return Err(fail("frame must be a JSON object with a string field \"type\"".to_owned()));
    }
    Ok(value)
}

/// Who wrote a chat line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatFrom {
    /// The red seat.
    Red,
    /// The yellow seat.
    Yellow,
    /// The AI player.
    Ai,
}

/// The `game_paused` frame for a lease that is not confirmed right now.
pub fn ownership_paused(retry_after_ms: u64) -> ServerFrame {
    ServerFrame::GamePaused { reason: "ownership_unconfirmed", retry_after_ms }
}

/// FORBIDDEN: a `join` with another seat's token on a socket that already holds `held`
/// (one socket holds one seat; both runtimes answer it so).
pub fn seat_held(held: Seat) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::Forbidden,
        format!("this connection already holds the {} seat; open another connection for another seat", held.as_str()),
    )
    .with("seat", held.as_str())
}

impl From<Seat> for ChatFrom {
    fn from(seat: Seat) -> Self {
        match seat {
            Seat::Red => ChatFrom::Red,
            Seat::Yellow => ChatFrom::Yellow,
        }
    }
}

/// The names in a real-time game's seats (`null`: free).
#[derive(Clone, Debug, Serialize)]
pub struct SeatNames {
    /// The red seat.
    pub red: Option<String>,
    /// The yellow seat.
    pub yellow: Option<String>,
}

/// A frame the server sends on a game socket.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The full game state, after every change.
    State {
        /// The state.
        game: GameView,
    },
    /// A chat line.
    Chat {
        /// The author.
        from: ChatFrom,
        /// The text (rendered as text by clients).
        text: String,
        /// When it was said.
        at: String,
    },
    /// An error in reply to a frame.
    Error {
        /// The error.
        error: ErrorBody,
        /// The frame type it answers, if known.
        in_reply_to: Option<&'static str>,
    },
    /// The game's actor crashed and was restored from its last good state.
    GameRestarted {
        /// Restarts so far.
        restarts: u32,
        /// Moves in the restored state.
        restored_moves: u32,
        /// Why, when it was not this game's own fault: `taken_over` (another server resumed
        /// it after its owner stopped answering).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// The game exceeded its restart limit and is closed.
    GameFailed {
        /// Why, in words.
        reason: String,
    },
    /// A real-time game's whole state: on join and after a restart.
    Arena {
        /// The game kind.
        kind: &'static str,
        /// The game.
        game_id: String,
        /// The seat this socket holds (`null` in a frame to both seats).
        you: Option<Seat>,
        /// The seats' names.
        players: SeatNames,
        /// Ticks per second.
        tick_hz: u32,
        /// Restarts so far.
        restarts: u32,
        /// The lobby's vocabulary.
        status: GameStatus,
        /// Once won.
        winner: Option<Seat>,
        /// The kind's whole state.
        game: Arena,
    },
    /// Both seats are there: the first tick comes after `starts_in_ms`.
    Countdown {
        /// Milliseconds until the first tick.
        starts_in_ms: u64,
    },
    /// One tick of a real-time game: the tick, the status and the kind's tick fields.
    Tick {
        /// Ticks played.
        tick: u32,
        /// The lobby's vocabulary.
        status: GameStatus,
        /// Once won.
        winner: Option<Seat>,
        /// The kind's own fields (light cycles: `heads`).
        #[serde(flatten)]
        view: Map<String, Value>,
    },
    /// A real-time game resumed from its last snapshot (a crash), or was taken over here.
    #[serde(rename = "game_restarted")]
    TickRestarted {
        /// `panic` or `taken_over`.
        reason: &'static str,
        /// Restarts so far.
        restarts: u32,
        /// The snapshot's tick.
        resumed_at_tick: u32,
        /// Ticks played since that snapshot, now undone.
        lost_ticks: u32,
        /// The policy's delay before the clock goes on.
        retry_after_ms: u64,
    },
    /// The game is paused: this server cannot confirm right now that it still owns the
    /// game (its store is unreachable, or it was itself paused), so it applies nothing —
    /// commands answer GAME_RESTARTING, the AI and the clock wait. Nothing is lost.
    /// `game_resumed` follows when ownership is confirmed again; if the game moved to
    /// another server instead, the socket is closed with 1012 (reconnect).
    GamePaused {
        /// `ownership_unconfirmed`.
        reason: &'static str,
        /// When to expect news (a retry hint, not a promise).
        retry_after_ms: u64,
    },
    /// The game goes on after `game_paused`.
    GameResumed {},
    /// The answer to a ping.
    Pong {
        /// The ping's id.
        id: Value,
    },
}

/// A frame as it goes on the wire: its JSON, framed once as an unmasked WebSocket text
/// frame (RFC 6455), so every socket it is sent to (both seats of a game, every lobby
/// socket) writes the same bytes; a clone is a reference count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFrame {
    bytes: actix_web::web::Bytes,
    header: usize,
}

impl SharedFrame {
    /// Frames `json` as a text frame.
    pub fn text(json: &str) -> SharedFrame {
        let mut buf = actix_web::web::BytesMut::with_capacity(json.len() + 10);
        actix_http::ws::Parser::write_message(&mut buf, json, actix_http::ws::OpCode::Text, true, false);
        let header = buf.len() - json.len();
        SharedFrame { bytes: buf.freeze(), header }
    }

    /// The JSON it carries.
    pub fn json(&self) -> &str {
        // Built from a `str` in `text`: always UTF-8.
        std::str::from_utf8(&self.bytes[self.header..]).unwrap_or_default()
    }

    /// The whole frame, header included, as it is written to a socket.
    pub fn wire(&self) -> &actix_web::web::Bytes {
        &self.bytes
    }
}

impl ServerFrame {
    /// Serialises and frames the frame once; it is then shared between sockets.
    pub fn to_frame(&self) -> SharedFrame {
        // Serialising these plain structs cannot fail.
        SharedFrame::text(&serde_json::to_string(self).unwrap_or_else(|_| String::from("{}")))
    }
    /// The error code, when this is an error frame.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ServerFrame::Error { error, .. } => Some(error.code),
            _ => None,
        }
    }
}
