//! The WebSocket close codes the server sends, by name (docs/PROTOCOL.md, "Close codes"):
//! every socket uses these constants, never the bare numbers.

/// A client's own close, echoed.
pub const NORMAL: u16 = 1000;
/// Heartbeat timeout, or an idle lobby socket.
pub const GOING_AWAY: u16 = 1001;
/// A WebSocket protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text frame that is not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// The client kept flooding past its rate after being told.
pub const POLICY: u16 = 1008;
/// A frame over the hard limit.
pub const TOO_BIG: u16 = 1009;
/// The server could no longer write to the connection, or a real-time game failed past
/// its restart limit.
pub const GAME_FAILED: u16 = 1011;
/// The server is shutting down, or the game moved to another instance: reconnect.
pub const RESTART: u16 = 1012;
/// A slow client: its outbound queue was full.
pub const SLOW: u16 = 1013;
/// Try again later (the same code as [`SLOW`]): the join timeout passed while the game's
/// answer to the join was still GAME_RESTARTING (a failover takes longer than the join
/// timeout). Reconnect with backoff and `join` again.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// Join timeout, a token that holds no seat, or a command before `join`.
pub const UNAUTHORIZED: u16 = 4401;
/// No such game.
pub const NOT_FOUND: u16 = 4404;
/// The seat was opened on another connection.
pub const REPLACED: u16 = 4409;
