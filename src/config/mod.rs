//! Configuration (docs/DESIGN.md D9): `server_config.yaml` as typed structs. Each setting is
//! written once: its field, with its default (`#[default = …]`) and its allowed range
//! (`#[garde(…)]`) beside it, and the doc comment that says what it does. [`load`] reads
//! the YAML, applies the environment (`RAMPART__SECTION__KEY=value` for any key, plus
//! `RAMPART_BIND` and `RAMPART_REDIS_URL`), and reports every problem at once with its
//! YAML path; the server refuses to start (exit 64). Secrets come only from the
//! environment ([`Secrets`]); a secret key in the file is an error.

mod load;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

pub use crate::breaker::BreakerConfig;
pub use load::{ConfigError, ConfigErrors};

/// A secret from the environment: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Secrets, read only from the environment (an empty variable counts as unset).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Secrets {
    /// Token for the admin endpoints, `RAMPART_ADMIN_TOKEN`. `None`: admin API disabled.
    pub admin_token: Option<Secret>,
    /// Bearer key for the LLM endpoint, `RAMPART_LLM_API_KEY`.
    pub llm_api_key: Option<Secret>,
    /// Redis password, `RAMPART_REDIS_PASSWORD`.
    pub redis_password: Option<Secret>,
    /// Key of the seat tokens' keyed hashes, `RAMPART_SESSION_KEY`; every instance on one
    /// Redis must share it. `None`: a random key (embedded), or one kept in Redis.
    pub session_key: Option<Secret>,
}

/// The whole server configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener, connection limits and timeouts.
    #[garde(dive)]
    pub server: ServerConfig,
    /// Game restart policies and the hang watchdog.
    #[garde(dive)]
    pub supervision: SupervisionConfig,
    /// The AI player.
    #[garde(dive)]
    pub ai: AiConfig,
    /// Real-time games (light cycles).
    #[garde(dive)]
    pub realtime: RealtimeConfig,
    /// Named circuit breakers.
    #[garde(dive)]
    pub circuit_breakers: CircuitBreakersConfig,
    /// The LLM the AI player chats through.
    #[garde(dive)]
    pub llm: LlmConfig,
    /// What the HealthMonitor samples and its limits.
    #[garde(dive)]
    pub health: HealthConfig,
    /// The gate new games pass through.
    #[garde(dive)]
    pub admission: AdmissionConfig,
    /// What a lobby frame carries and how often a lobby socket is sent one.
    #[garde(dive)]
    pub lobby: LobbyConfig,
    /// Where the stores keep their data.
    #[garde(skip)]
    pub storage: StorageConfig,
    /// The Redis connection, when `storage.backend` is `redis`.
    #[garde(dive)]
    pub redis: RedisConfig,
    /// Game ownership across instances, with the Redis backend.
    #[garde(dive)]
    pub cluster: ClusterConfig,
    /// Secrets from the environment; never in the file.
    #[serde(skip)]
    #[garde(skip)]
    pub secrets: Secrets,
}

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
    #[garde(length(max = 64), inner(custom(load::network)))]
    pub trusted_proxies: Vec<String>,
}

/// `supervision:` section: how crashed or hung games are restarted (docs/DESIGN.md D1, D3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    /// The policy of every game kind without its own entry in `kinds`.
    #[garde(dive)]
    pub default: RestartPolicyConfig,
    /// Per game kind (names `[a-z0-9_]+`): only the keys given override `default`. Use
    /// [`SupervisionConfig::policy_for`] for the merged policy.
    #[garde(dive)]
    pub kinds: BTreeMap<String, PartialRestartPolicy>,
    /// How often the watchdog pings each game arbiter, in ms, 10..=60000.
    #[garde(range(min = 10, max = 60_000))]
    #[default = 250]
    pub watchdog_interval_ms: u64,
    /// The server's own actors (src/supervision/system.rs): only the keys given override
    /// `default`. Use [`SupervisionConfig::system_policy`] for the merged policy.
    #[garde(dive)]
    pub system: SystemPolicies,
}

/// A system actor's `hang_timeout_ms` unless `supervision.system.<name>` sets one.
pub const SYSTEM_HANG_TIMEOUT_MS: u64 = 10_000;

/// `supervision.system`: one partial policy per system actor, over `supervision.default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct SystemPolicies {
    /// The BreakerRegistry.
    #[garde(dive)]
    pub breakers: PartialRestartPolicy,
    /// The HealthMonitor.
    #[garde(dive)]
    pub health: PartialRestartPolicy,
    /// The AdmissionController and its waitlist processor.
    #[garde(dive)]
    pub admission: PartialRestartPolicy,
    /// The lobby feed and its event-stream consumer.
    #[garde(dive)]
    pub lobby: PartialRestartPolicy,
    /// The GameSupervisor.
    #[garde(dive)]
    pub games: PartialRestartPolicy,
    /// The Relay between instances (with Redis).
    #[garde(dive)]
    pub relay: PartialRestartPolicy,
    /// The SnapshotKeeper's writer task.
    #[garde(dive)]
    pub keeper: PartialRestartPolicy,
    /// The runtime-event publisher task.
    #[garde(dive)]
    pub events: PartialRestartPolicy,
    /// The instance heartbeat task (with Redis).
    #[garde(dive)]
    pub heartbeat: PartialRestartPolicy,
}

impl SystemPolicies {
    /// Each system actor's name and partial policy.
    pub fn each(&self) -> [(&'static str, &PartialRestartPolicy); 9] {
        [
            ("breakers", &self.breakers),
            ("health", &self.health),
            ("admission", &self.admission),
            ("lobby", &self.lobby),
            ("games", &self.games),
            ("relay", &self.relay),
            ("keeper", &self.keeper),
            ("events", &self.events),
            ("heartbeat", &self.heartbeat),
        ]
    }
}

impl SupervisionConfig {
    /// The restart policy of a system actor or task (`breakers`, `health`, `admission`,
    /// `lobby`, `games`, `relay`, `keeper`, `events`, `heartbeat`): its `system` entry over `default`, except `hang_timeout_ms`, which is
    /// [`SYSTEM_HANG_TIMEOUT_MS`] unless the entry sets it (a system actor's hang ends the
    /// process, so it is not judged by the games' tighter limit).
    pub fn system_policy(&self, name: &str) -> RestartPolicyConfig {
        let partial =
            self.system.each().into_iter().find(|(n, _)| *n == name).map(|(_, p)| p.clone()).unwrap_or_default();
        let mut policy = partial.apply_to(&self.default);
        if partial.hang_timeout_ms.is_none() {
            policy.hang_timeout_ms = SYSTEM_HANG_TIMEOUT_MS;
        }
        policy
    }

    /// The restart policy for a game kind: its `kinds` entry over `default`, or `default`.
    pub fn policy_for(&self, kind: &str) -> RestartPolicyConfig {
        match self.kinds.get(kind) {
            Some(partial) => partial.apply_to(&self.default),
            None => self.default.clone(),
        }
    }
}

/// How a game's restart delay is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartStrategy {
    /// Restart at once.
    Immediate,
    /// Wait `initial_delay_ms` before every restart.
    Delayed,
    /// Start at `initial_delay_ms`, multiply by `multiplier` each time, cap at
    /// `max_delay_ms`, with `jitter`.
    Exponential,
}

/// A complete restart policy (`supervision.default`, or a kind merged over it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct RestartPolicyConfig {
    /// immediate | delayed | exponential.
    #[garde(skip)]
    #[default(RestartStrategy::Exponential)]
    pub strategy: RestartStrategy,
    /// First (or fixed) restart delay in ms, 0..=3600000.
    #[garde(range(max = 3_600_000))]
    #[default = 100]
    pub initial_delay_ms: u64,
    /// Longest restart delay in ms, at most 3600000 and at least `initial_delay_ms`.
    #[garde(range(max = 3_600_000))]
    #[default = 5000]
    pub max_delay_ms: u64,
    /// Factor the exponential delay grows by after each restart, 1.0..=10.0.
    #[garde(range(min = 1.0, max = 10.0))]
    #[default = 2.0]
    pub multiplier: f64,
    /// Random spread applied to each delay, as a fraction of it, 0.0..=1.0.
    #[garde(range(min = 0.0, max = 1.0))]
    #[default = 0.2]
    pub jitter: f64,
    /// Restarts allowed within `within_secs`; past that the game is closed, 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[default = 5]
    pub max_restarts: u32,
    /// Length of the sliding window for `max_restarts`, in seconds, 1..=86400.
    #[garde(range(min = 1, max = 86_400))]
    #[default = 60]
    pub within_secs: u64,
    /// A message still running after this many ms (or an arbiter that does not answer the
    /// watchdog) counts as a hang, 50..=600000.
    #[garde(range(min = 50, max = 600_000))]
    #[default = 2000]
    pub hang_timeout_ms: u64,
    /// Restart delays up to this many ms hold incoming messages until the game is back;
    /// longer ones answer GAME_RESTARTING instead, 0..=60000.
    #[garde(range(max = 60_000))]
    #[default = 250]
    pub hold_messages_max_ms: u64,
}

/// A per-kind restart policy: unset fields take the value of `supervision.default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct PartialRestartPolicy {
    /// See [`RestartPolicyConfig::strategy`].
    #[garde(skip)]
    pub strategy: Option<RestartStrategy>,
    /// See [`RestartPolicyConfig::initial_delay_ms`].
    #[garde(inner(range(max = 3_600_000)))]
    pub initial_delay_ms: Option<u64>,
    /// See [`RestartPolicyConfig::max_delay_ms`].
    #[garde(inner(range(max = 3_600_000)))]
    pub max_delay_ms: Option<u64>,
    /// See [`RestartPolicyConfig::multiplier`].
    #[garde(inner(range(min = 1.0, max = 10.0)))]
    pub multiplier: Option<f64>,
    /// See [`RestartPolicyConfig::jitter`].
    #[garde(inner(range(min = 0.0, max = 1.0)))]
    pub jitter: Option<f64>,
    /// See [`RestartPolicyConfig::max_restarts`].
    #[garde(inner(range(min = 1, max = 1000)))]
    pub max_restarts: Option<u32>,
    /// See [`RestartPolicyConfig::within_secs`].
    #[garde(inner(range(min = 1, max = 86_400)))]
    pub within_secs: Option<u64>,
    /// See [`RestartPolicyConfig::hang_timeout_ms`].
    #[garde(inner(range(min = 50, max = 600_000)))]
    pub hang_timeout_ms: Option<u64>,
    /// See [`RestartPolicyConfig::hold_messages_max_ms`].
    #[garde(inner(range(max = 60_000)))]
    pub hold_messages_max_ms: Option<u64>,
}

impl PartialRestartPolicy {
    /// The given fields over `base`.
    pub fn apply_to(&self, base: &RestartPolicyConfig) -> RestartPolicyConfig {
        RestartPolicyConfig {
            strategy: self.strategy.unwrap_or(base.strategy),
            initial_delay_ms: self.initial_delay_ms.unwrap_or(base.initial_delay_ms),
            max_delay_ms: self.max_delay_ms.unwrap_or(base.max_delay_ms),
            multiplier: self.multiplier.unwrap_or(base.multiplier),
            jitter: self.jitter.unwrap_or(base.jitter),
            max_restarts: self.max_restarts.unwrap_or(base.max_restarts),
            within_secs: self.within_secs.unwrap_or(base.within_secs),
            hang_timeout_ms: self.hang_timeout_ms.unwrap_or(base.hang_timeout_ms),
            hold_messages_max_ms: self.hold_messages_max_ms.unwrap_or(base.hold_messages_max_ms),
        }
    }
}

/// `ai:` section: the computer player.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Search depth in plies, 1..=12.
    #[garde(range(min = 1, max = 12))]
    #[default = 7]
    pub search_depth: u32,
    /// Node budget per move, 1000..=100000000 (a full 40k-node search is ~1.5 ms).
    #[garde(range(min = 1000, max = 100_000_000))]
    #[default = 40_000]
    pub max_nodes: u64,
    /// Pause before the AI plays, so it feels human, in ms, 0..=10000.
    #[garde(range(max = 10_000))]
    #[default = 300]
    pub think_delay_ms: u64,
}

/// `realtime:` section: real-time games (light cycles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Ticks per second, 1..=60.
    #[garde(range(min = 1, max = 60))]
    #[default = 20]
    pub tick_hz: u32,
    /// Keep the state as the last good one every this many ticks, 1..=1200 (a crash
    /// resumes from it).
    #[garde(range(min = 1, max = 1200))]
    #[default = 20]
    pub snapshot_every_ticks: u32,
    /// Grid width in cells, 8..=200.
    #[garde(range(min = 8, max = 200))]
    #[default = 64]
    pub width: u16,
    /// Grid height in cells, 8..=200.
    #[garde(range(min = 8, max = 200))]
    #[default = 44]
    pub height: u16,
}

/// `circuit_breakers:` section. Accepts the circuit-breaker plan's schema (`enabled`,
/// `default_failure_threshold`, `default_timeout`, and one section per breaker name beside
/// them) plus Rampart's extra keys ([`BreakerConfig`]). A breaker section in the file
/// replaces the built-in one of that name; keys it leaves out come from the section
/// defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakersConfig {
    /// Master switch, the plan's rollback switch: `false` makes every breaker a pass-through.
    #[garde(skip)]
    #[default = true]
    pub enabled: bool,
    /// Consecutive failures that trip a breaker that does not set its own, 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[default = 5]
    pub default_failure_threshold: u32,
    /// Seconds a tripped breaker stays open when it does not set its own, 0.1..=3600.
    #[garde(range(min = 0.1, max = 3600.0))]
    #[default = 30.0]
    pub default_timeout: f64,
    /// Every breaker by name (written beside the keys above in the YAML); always holds
    /// `database`, `messaging` and `llm`.
    #[garde(dive)]
    #[default(built_in_breakers())]
    pub breakers: BTreeMap<String, BreakerConfig>,
}

/// The names the server itself calls through; they always exist.
pub const BUILT_IN_BREAKERS: [&str; 3] = ["database", "messaging", "llm"];

fn built_in_breakers() -> BTreeMap<String, BreakerConfig> {
    let named = |failure_threshold, open_secs: f64, operations: &[&str]| BreakerConfig {
        failure_threshold,
        open_secs,
        open_max_secs: open_secs,
        operations: operations.iter().map(|o| (*o).to_owned()).collect(),
        ..BreakerConfig::default()
    };
    let database = [
        "save_snapshot",
        "load_snapshot",
        "remove_snapshot",
        "lease",
        "seat_session",
        "waitlist",
        "read_event",
        "runtime_record",
    ];
    BTreeMap::from([
        ("database".to_owned(), named(3, 30.0, &database)),
        ("messaging".to_owned(), named(2, 10.0, &["publish_event", "relay", "lobby_announce"])),
        ("llm".to_owned(), BreakerConfig { call_timeout_ms: 5000, ..named(3, 30.0, &["chat_completion"]) }),
    ])
}

/// `health:` section: what the HealthMonitor samples and when it calls the server degraded
/// or overloaded. Each vital has a limit (0 turns it off); at `degraded_ratio` of it the
/// server is degraded, at the limit overloaded. A level is left only below `exit_ratio` of
/// its entry point (hysteresis); the status worsens at once, always (the gate closes at its
/// limit), and improves only after `dwell_ms` in the worse one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Sampling interval in ms, 50..=60000.
    #[garde(range(min = 50, max = 60_000))]
    #[default = 1000]
    pub interval_ms: u64,
    /// Limit in MB on the memory the process holds (RSS minus the allocator's free pages),
    /// 0..=1048576; 0 = off.
    #[garde(range(max = 1_048_576))]
    pub max_memory_mb: u64,
    /// System memory in use (100 − available %) limit, 0..=100; 0 = off.
    #[garde(range(min = 0.0, max = 100.0))]
    #[default = 95.0]
    pub max_memory_used_pct: f64,
    /// Event-loop lag limit in ms (how late the monitor's tick fires), 0..=60000; 0 = off.
    #[garde(range(max = 60_000))]
    #[default = 500]
    pub max_lag_ms: u64,
    /// Game-creation requests per second (measured where they arrive), 0..=1000000; 0 = off.
    #[garde(range(min = 0.0, max = 1_000_000.0))]
    pub max_create_rate_per_sec: f64,
    /// Fraction of a limit at which the server counts as degraded, 0.1..=1.
    #[garde(range(min = 0.1, max = 1.0))]
    #[default = 0.8]
    pub degraded_ratio: f64,
    /// A level is left below this fraction of its entry point, 0.5..=1.
    #[garde(range(min = 0.5, max = 1.0))]
    #[default = 0.9]
    pub exit_ratio: f64,
    /// Least time in a status before it may improve (a worse status takes effect at once),
    /// ms, 0..=600000.
    #[garde(range(max = 600_000))]
    #[default = 3000]
    pub dwell_ms: u64,
}

/// `lobby:` section: the lobby (`/ws/lobby` and `GET /api/v1/games`) is served in pages,
/// and a lobby socket is sent a page only when it changed, at a bounded rate, so that many
/// lobby sockets and many games do not multiply into a flood (docs/PROTOCOL.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct LobbyConfig {
    /// Games in one page: a `lobby` frame and a `GET /api/v1/games` answer carry at most
    /// this many, with the total, 1..=200.
    #[garde(range(min = 1, max = 200))]
    #[default = 25]
    pub page_size: u64,
    /// A lobby socket is sent at most one `lobby` frame per this many ms; changes in between
    /// are sent together in the next one, 100..=60000.
    #[garde(range(min = 100, max = 60_000))]
    #[default = 1000]
    pub push_interval_ms: u64,
}

/// `admission:` section: when a new game is admitted and how fast the waitlist drains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Most games waiting or in play at once (a new game beyond it waits), 1..=10000000.
    #[garde(range(min = 1, max = 10_000_000))]
    #[default = 10_000]
    pub max_games: u64,
    /// New games admitted per second (token bucket rate), 0.1..=100000.
    #[garde(range(min = 0.1, max = 100_000.0))]
    #[default = 50.0]
    pub rate_per_sec: f64,
    /// Token bucket size: new games admitted at once after a quiet spell, 1..=100000.
    #[garde(range(min = 1, max = 100_000))]
    #[default = 100]
    pub burst: u32,
    /// Waiting players admitted per second once health allows, 0.1..=10000.
    #[garde(range(min = 0.1, max = 10_000.0))]
    #[default = 20.0]
    pub admit_per_sec: f64,
    /// A waiting ticket nobody watches or polls for this long is dropped, s, 5..=86400.
    #[garde(range(min = 5, max = 86_400))]
    #[default = 120]
    pub ticket_ttl_secs: u64,
    /// Longest line; beyond it SERVER_BUSY carries no ticket, 1..=10000000.
    #[garde(range(min = 1, max = 10_000_000))]
    #[default = 100_000]
    pub max_waitlist: u64,
    /// A claimed entry whose game was not created within this many ms (its instance
    /// crashed) goes back to the front of the line, 100..=600000.
    #[garde(range(min = 100, max = 600_000))]
    #[default = 30_000]
    pub claim_lease_ms: u64,
    /// New games one client address may create per second (its own token bucket; past
    /// it, RATE_LIMITED with `Retry-After`), 0.01..=100000.
    #[garde(range(min = 0.01, max = 100_000.0))]
    #[default = 5.0]
    pub client_creations_per_sec: f64,
    /// Creations one client address may make at once after a quiet spell, 1..=100000.
    #[garde(range(min = 1, max = 100_000))]
    #[default = 20]
    pub client_creation_burst: u32,
    /// Tickets one client address may hold in the line at once (past it, RATE_LIMITED), so
    /// one address cannot fill `max_waitlist`, 1..=1000000.
    #[garde(range(min = 1, max = 1_000_000))]
    #[default = 3]
    pub max_tickets_per_client: u64,
}

/// Where the stores keep their data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// In this process (the default; `make run` needs nothing else).
    #[default]
    Memory,
    /// In Redis (`redis:`), shared by several instances and surviving restarts.
    Redis,
}

/// `storage:` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `memory` or `redis`.
    pub backend: StorageBackend,
}

/// `redis:` section. `RAMPART_REDIS_URL` overrides `url`; a password belongs in
/// `RAMPART_REDIS_PASSWORD`, never in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`, without credentials.
    #[garde(length(max = 2048), custom(load::redis_url))]
    #[default = "redis://127.0.0.1:6379"]
    pub url: String,
    /// Prefix of every key, 1..=64 letters, digits, `_ - .`, so several deployments can share
    /// a server.
    #[garde(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9_.-]+$"))]
    #[default = "rampart"]
    pub key_prefix: String,
    /// Each command's timeout in ms, 10..=60000.
    #[garde(range(min = 10, max = 60_000))]
    #[default = 500]
    pub command_timeout_ms: u64,
    /// Longest wait between reconnection attempts in ms, 10..=60000.
    #[garde(range(min = 10, max = 60_000))]
    #[default = 1000]
    pub reconnect_max_delay_ms: u64,
}

/// `cluster:` section: how instances sharing one Redis own games (docs/DESIGN.md D11).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// How long a game's ownership lease (and an instance's heartbeat) lasts unless
    /// renewed, in ms, 300..=60000; owners renew at a third of it.
    #[garde(range(min = 300, max = 60_000))]
    #[default = 3000]
    pub lease_ms: u64,
    /// This instance's id, 1..=64 of `[A-Za-z0-9_-]`; empty: a random one at each start.
    #[garde(length(max = 64), pattern(r"^[A-Za-z0-9_-]*$"))]
    pub instance_id: String,
    /// How long a seat session is remembered after its last use, in s, 60..=2592000.
    #[garde(range(min = 60, max = 2_592_000))]
    #[default = 86_400]
    pub session_ttl_secs: u64,
}

/// `llm:` section: the OpenAI-compatible endpoint the AI player chats through. The API key
/// comes from `RAMPART_LLM_API_KEY`, never from this file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL, http or https, without credentials (e.g. `https://api.openai.com`);
    /// requests go to `{base_url}/v1/chat/completions`. Empty: no LLM, canned lines only.
    #[garde(length(max = 2048), custom(load::llm_url))]
    pub base_url: String,
    /// Model name sent in each request.
    #[garde(length(min = 1, max = 200), custom(load::not_blank))]
    #[default = "gpt-4o-mini"]
    pub model: String,
    /// Timeout of one chat request in ms, 100..=60000.
    #[garde(range(min = 100, max = 60_000))]
    #[default = 3000]
    pub timeout_ms: u64,
    /// Most tokens the model may answer with, 1..=1000.
    #[garde(range(min = 1, max = 1000))]
    #[default = 60]
    pub max_tokens: u32,
    /// Sampling temperature, 0..=2.
    #[garde(range(min = 0.0, max = 2.0))]
    #[default = 0.8]
    pub temperature: f64,
    /// The system prompt that sets the AI player's voice.
    #[garde(length(max = 4000))]
    #[default = "You are Rampart AI, a friendly, slightly cheeky Connect Four opponent. Answer in one short sentence."]
    pub system_prompt: String,
    /// Lines the AI uses when the LLM is off, open or failing (up to 200, each 1..=280).
    #[garde(length(max = 200), inner(length(min = 1, max = 280)))]
    #[default(["Good luck!", "Hmm, let me think about that one.", "Nice move.", "Your turn!", "That was close."]
        .map(String::from).to_vec())]
    pub canned_lines: Vec<String>,
    /// Chance (0..=1) that the AI comments after one of its own moves.
    #[garde(range(min = 0.0, max = 1.0))]
    #[default = 0.35]
    pub comment_probability: f64,
}

#[cfg(test)]
mod tests;
