//! `server:`: the listener, connection and socket limits, timeouts, and the proxies whose
//! `X-Forwarded-For` is believed.

use std::net::SocketAddr;

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// `server:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP/WebSocket listener binds, IP:PORT.
    #[garde(skip)]
    #[default(SocketAddr::from(([127, 0, 0, 1], 8080)))]
    pub bind: SocketAddr,
    /// HTTP worker threads, 1..=64.
    #[garde(range(min = 1, max = 64))]
    #[default = 2]
    pub workers: u32,
    /// Arbiters (threads) hosting game actors, 0..=256; 0 = one per CPU core.
    #[garde(range(max = 256))]
    pub game_arbiters: u32,
    /// Text frames and REST bodies larger than this get PAYLOAD_TOO_LARGE, 64..=1048576.
    #[garde(range(min = 64, max = 1_048_576))]
    #[default = 4096]
    pub max_frame_bytes: u64,
    /// Frames queued per connection before it is a slow client (closed 1013), 1..=65536.
    #[garde(range(min = 1, max = 65_536))]
    #[default = 64]
    pub outbound_queue: u64,
    /// Interval between WebSocket pings in ms, 100..=600000.
    #[garde(range(min = 100, max = 600_000))]
    #[default = 5000]
    pub heartbeat_interval_ms: u64,
    /// A client silent this long (ms) is dropped; greater than `heartbeat_interval_ms`,
    /// at most 3600000.
    #[garde(range(min = 1, max = 3_600_000))]
    #[default = 15_000]
    pub client_timeout_ms: u64,
    /// Time (ms) a client has to join a game after connecting, 100..=600000.
    #[garde(range(min = 100, max = 600_000))]
    #[default = 5000]
    pub join_timeout_ms: u64,
    /// `TCP_USER_TIMEOUT` on accepted sockets in ms, 0..=3600000; 0 = OS default.
    #[garde(range(max = 3_600_000))]
    #[default = 30_000]
    pub tcp_user_timeout_ms: u64,
    /// Longest chat message in characters, 1..=10000.
    #[garde(range(min = 1, max = 10_000))]
    #[default = 280]
    pub max_chat_chars: u64,
    /// Time (ms) given to save games and close sockets on shutdown, 0..=600000.
    #[garde(range(max = 600_000))]
    #[default = 10_000]
    pub shutdown_grace_ms: u64,
    /// How long an ended game stays readable, in seconds, 1..=604800.
    #[garde(range(min = 1, max = 604_800))]
    #[default = 600]
    pub finished_game_ttl_secs: u64,
    /// Frames a connection may send per second, sustained, 1..=100000.
    #[garde(range(min = 1, max = 100_000))]
    #[default = 20]
    pub rate_limit_frames_per_sec: u64,
    /// Frames a connection may send in a burst above the sustained rate, 1..=100000.
    #[garde(range(min = 1, max = 100_000))]
    #[default = 40]
    pub rate_limit_burst: u64,
    /// A game no player has joined within this many seconds of its creation, or whose
    /// players have all been gone this long, is closed and frees its place, 1..=86400.
    #[garde(range(min = 1, max = 86_400))]
    #[default = 60]
    pub abandoned_game_secs: u64,
    /// A request body must arrive within this many ms of its request (else 408
    /// REQUEST_TIMEOUT and the connection is closed), 100..=600000.
    #[garde(range(min = 100, max = 600_000))]
    #[default = 10_000]
    pub body_timeout_ms: u64,
    /// Most TCP connections served at once; past it requests get 503 SERVER_BUSY and are
    /// closed. Capped by the open-file limit, 16..=1000000.
    #[garde(range(min = 16, max = 1_000_000))]
    #[default = 10_000]
    pub max_connections: u64,
    /// Most connections one client address (an IPv4 address or an IPv6 /64; behind a
    /// trusted proxy, the client it forwards) may hold, as a percentage of
    /// `max_connections` (at least one connection); past it that address's requests and
    /// upgrades get 503 SERVER_BUSY `limit: "client"` while everyone else is served,
    /// 1..=100.
    #[garde(range(min = 1, max = 100))]
    #[default = 10]
    pub max_client_connections_pct: u64,
    /// Most `/ws/lobby` sockets one client address may hold open; past it the upgrade gets
    /// 503 SERVER_BUSY `limit: "lobby"`, 1..=1000000.
    #[garde(range(min = 1, max = 1_000_000))]
    #[default = 100]
    pub max_lobby_sockets_per_client: u64,
    /// Responses an HTTP connection may have waiting for its client to read them
    /// (pipelined requests answered but not yet taken); past it the connection's next
    /// request waits and nothing more is read from it until the client reads, 1..=1024.
    #[garde(range(min = 1, max = 1024))]
    #[default = 16]
    pub max_pipelined_requests: u64,
    /// A `/ws/lobby` socket whose client sends no frame of its own for this many ms is
    /// closed with 1001, 1000..=86400000.
    #[garde(range(min = 1000, max = 86_400_000))]
    #[default = 120_000]
    pub lobby_idle_timeout_ms: u64,
    /// Proxies (addresses or networks, `10.0.0.0/8`) whose `X-Forwarded-For` is believed
    /// when they are the peer; the per-client limits then apply to the forwarded client.
    /// Empty: every client is its peer address. Up to 64 entries.
    #[garde(length(max = 64), inner(custom(super::rules::network)))]
    pub trusted_proxies: Vec<String>,
}
