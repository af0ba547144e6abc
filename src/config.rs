//! Configuration (DESIGN.md D9). Loads `server_config.yaml` into typed structs, applies
//! environment overrides, and validates everything in one pass: every problem is reported
//! at once with its YAML path, so the server can refuse to start with a full list.
//! Secrets (the admin token) come only from the environment, never from the file.
//!
//! How it works: the YAML is parsed into a generic tree (`serde_json::Value`), `RAMPART__*`
//! overrides are written into that tree, then a small typed `Reader` walks it section by
//! section. Each `read_*` function asks for its keys with a default and an allowed range;
//! the reader records wrong types and out-of-range values, and at the end of each section
//! reports the keys nobody asked for. The same read functions, run once over an empty tree,
//! give the set of known keys that environment overrides are checked against.
//!
//! Adding a section: one struct with a `Default` impl, one `read_*` function, and one
//! `r.section("name", read_name)` line in `read_config`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One configuration problem: where it is and what is wrong (and what is allowed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// YAML path such as `supervision.default.max_restarts`, `env RAMPART__FOO` for a bad
    /// environment override, or the file name for file-level problems (unreadable, syntax).
    pub path: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

/// Every problem found while loading the configuration. Never empty when returned as `Err`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems, in the order they were found (file, environment, then values).
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors { errors: vec![ConfigError { path: path.into(), message: message.into() }] }
    }
}

impl fmt::Display for ConfigErrors {
    /// One problem per line, as `path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

/// A secret string. `Debug` and `Display` print `***`; call [`Secret::expose`] to use it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret value itself. Never log it.
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
    /// Token for the admin endpoints, from `RAMPART_ADMIN_TOKEN`. `None`: admin API disabled.
    pub admin_token: Option<Secret>,
    /// Bearer key for the LLM endpoint, from `RAMPART_LLM_API_KEY`. `None`: no Authorization header.
    pub llm_api_key: Option<Secret>,
    /// Redis password, from `RAMPART_REDIS_PASSWORD`. `None`: no AUTH.
    pub redis_password: Option<Secret>,
    /// Key of the seat tokens' keyed hashes, from `RAMPART_SESSION_KEY`; every instance on
    /// one Redis must share it. `None`: a random key (embedded), or one kept in Redis.
    pub session_key: Option<Secret>,
}

/// Secret names: the key that is refused anywhere in the YAML, and the variable to use.
/// Adding a secret: one row here, one field in [`Secrets`], one line in `read_secrets`.
const SECRET_VARS: &[(&str, &str)] = &[
    ("admin_token", "RAMPART_ADMIN_TOKEN"),
    ("api_key", "RAMPART_LLM_API_KEY"),
    ("password", "RAMPART_REDIS_PASSWORD"),
    ("session_key", "RAMPART_SESSION_KEY"),
];

const ENV_ADMIN_TOKEN: &str = "RAMPART_ADMIN_TOKEN";
const ENV_LLM_API_KEY: &str = "RAMPART_LLM_API_KEY";
const ENV_BIND: &str = "RAMPART_BIND";
const ENV_REDIS_URL: &str = "RAMPART_REDIS_URL";
const ENV_REDIS_PASSWORD: &str = "RAMPART_REDIS_PASSWORD";
const ENV_SESSION_KEY: &str = "RAMPART_SESSION_KEY";
const ENV_PATH_PREFIX: &str = "RAMPART__";

fn read_secrets(env: &[(String, String)]) -> Secrets {
    let get =
        |name: &str| env.iter().rev().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| Secret::new(v.clone()));
    Secrets {
        admin_token: get(ENV_ADMIN_TOKEN),
        llm_api_key: get(ENV_LLM_API_KEY),
        redis_password: get(ENV_REDIS_PASSWORD),
        session_key: get(ENV_SESSION_KEY),
    }
}

// ---------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------

/// The whole server configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Listener, connection limits and timeouts (`server:`).
    pub server: ServerConfig,
    /// Game restart policies and the hang watchdog (`supervision:`).
    pub supervision: SupervisionConfig,
    /// The AI player (`ai:`).
    pub ai: AiConfig,
    /// Named circuit breakers (`circuit_breakers:`).
    pub circuit_breakers: CircuitBreakersConfig,
    /// The LLM the AI player chats through (`llm:`).
    pub llm: LlmConfig,
    /// The HealthMonitor's vitals and thresholds (`health:`).
    pub health: HealthConfig,
    /// Caps on new games and the waitlist's pace (`admission:`).
    pub admission: AdmissionConfig,
    /// Which backend the stores use (`storage:`).
    pub storage: StorageConfig,
    /// The Redis connection, when `storage.backend` is `redis` (`redis:`).
    pub redis: RedisConfig,
    /// Game ownership across instances, with the Redis backend (`cluster:`).
    pub cluster: ClusterConfig,
    /// Secrets from the environment; never in the file.
    pub secrets: Secrets,
}

/// `server:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Address the HTTP/WebSocket listener binds. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// HTTP worker threads, 1..=64. Default 2.
    pub workers: u32,
    /// Arbiters (threads) hosting game actors, 0..=256; 0 = one per CPU core. Default 0.
    pub game_arbiters: u32,
    /// WebSocket text frames and REST bodies larger than this get PAYLOAD_TOO_LARGE,
    /// 64..=1048576. Default 4096.
    pub max_frame_bytes: u64,
    /// Frames queued per connection before it is a slow client (closed with 1013),
    /// 1..=65536. Default 64.
    pub outbound_queue: u64,
    /// Interval between WebSocket pings, 100..=600000. Default 5000.
    pub heartbeat_interval_ms: u64,
    /// A client silent this long is dropped; must be greater than `heartbeat_interval_ms`,
    /// at most 3600000. Default 15000.
    pub client_timeout_ms: u64,
    /// Time a client has to join a game after connecting, 100..=600000. Default 5000.
    pub join_timeout_ms: u64,
    /// `TCP_USER_TIMEOUT` on accepted sockets, 0..=3600000; 0 = OS default. Default 30000.
    pub tcp_user_timeout_ms: u64,
    /// Longest chat message in characters, 1..=10000. Default 280.
    pub max_chat_chars: u64,
    /// Time given to save games and close sockets on shutdown, 0..=600000. Default 10000.
    pub shutdown_grace_ms: u64,
    /// How long a finished game stays readable, 1..=604800. Default 600.
    pub finished_game_ttl_secs: u64,
    /// Sustained frames per second allowed per connection, 1..=100000. Default 20.
    pub rate_limit_frames_per_sec: u64,
    /// Frames a connection may send in a burst, 1..=100000. Default 40.
    pub rate_limit_burst: u64,
    /// A game no player has joined within this many seconds of its creation, or whose
    /// players have all been gone this long, is closed and frees its place, 1..=86400.
    /// Default 60.
    pub abandoned_game_secs: u64,
    /// A request body must arrive within this many ms of its request (else 408
    /// REQUEST_TIMEOUT and the connection is closed), 100..=600000. Default 10000.
    pub body_timeout_ms: u64,
    /// Most TCP connections served at once (HTTP and WebSocket); past it requests get 503
    /// SERVER_BUSY and are closed. Capped by the open-file limit, 16..=1000000. Default 10000.
    pub max_connections: u64,
    /// A `/ws/lobby` socket whose client sends no frame of its own (ping, watch) for this
    /// many ms is closed with 1001, 1000..=86400000. Default 120000.
    pub lobby_idle_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
            game_arbiters: 0,
            max_frame_bytes: 4096,
            outbound_queue: 64,
            heartbeat_interval_ms: 5000,
            client_timeout_ms: 15_000,
            join_timeout_ms: 5000,
            tcp_user_timeout_ms: 30_000,
            max_chat_chars: 280,
            shutdown_grace_ms: 10_000,
            finished_game_ttl_secs: 600,
            rate_limit_frames_per_sec: 20,
            rate_limit_burst: 40,
            abandoned_game_secs: 60,
            body_timeout_ms: 10_000,
            max_connections: 10_000,
            lobby_idle_timeout_ms: 120_000,
        }
    }
}

/// `supervision:` section: how crashed or hung games are restarted (DESIGN.md D1, D3).
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisionConfig {
    /// Policy for every game kind without its own entry in `kinds`.
    pub default: RestartPolicyConfig,
    /// Per game kind (names match `[a-z0-9_]+`): only the keys given override `default`.
    /// Use [`SupervisionConfig::policy_for`] to get the merged policy.
    pub kinds: BTreeMap<String, PartialRestartPolicy>,
    /// How often the watchdog pings each game arbiter, 10..=60000. Default 250.
    pub watchdog_interval_ms: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig { default: RestartPolicyConfig::default(), kinds: BTreeMap::new(), watchdog_interval_ms: 250 }
    }
}

impl SupervisionConfig {
    /// The restart policy for a game kind: its `kinds` entry over `default`, or `default`.
    pub fn policy_for(&self, kind: &str) -> RestartPolicyConfig {
        match self.kinds.get(kind) {
            Some(partial) => partial.apply_to(&self.default),
            None => self.default.clone(),
        }
    }
}

/// How a game's restart delay is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartStrategy {
    /// Restart at once.
    Immediate,
    /// Wait `initial_delay_ms` before every restart.
    Delayed,
    /// Start at `initial_delay_ms`, multiply by `multiplier` each time, cap at
    /// `max_delay_ms`, with `jitter`.
    Exponential,
}

impl RestartStrategy {
    const CHOICES: &'static [(&'static str, RestartStrategy)] = &[
        ("immediate", RestartStrategy::Immediate),
        ("delayed", RestartStrategy::Delayed),
        ("exponential", RestartStrategy::Exponential),
    ];
}

/// A complete restart policy (`supervision.default`, or a kind merged over it).
#[derive(Clone, Debug, PartialEq)]
pub struct RestartPolicyConfig {
    /// immediate | delayed | exponential. Default exponential.
    pub strategy: RestartStrategy,
    /// First (or fixed) restart delay, 0..=3600000. Default 100.
    pub initial_delay_ms: u64,
    /// Cap on the delay, at most 3600000 and at least `initial_delay_ms`. Default 5000.
    pub max_delay_ms: u64,
    /// Growth factor of the exponential delay, 1.0..=10.0. Default 2.0.
    pub multiplier: f64,
    /// Random spread applied to each delay as a fraction, 0.0..=1.0. Default 0.2.
    pub jitter: f64,
    /// Restarts allowed within `within_secs` before the game is closed, 1..=1000. Default 5.
    pub max_restarts: u32,
    /// Sliding window for `max_restarts`, 1..=86400. Default 60.
    pub within_secs: u64,
    /// A message (or an arbiter ping) older than this is a hang, 50..=600000. Default 2000.
    pub hang_timeout_ms: u64,
    /// Delays up to this hold the mailbox (messages wait); longer ones answer
    /// GAME_RESTARTING, 0..=60000. Default 250.
    pub hold_messages_max_ms: u64,
}

impl Default for RestartPolicyConfig {
    fn default() -> Self {
        RestartPolicyConfig {
            strategy: RestartStrategy::Exponential,
            initial_delay_ms: 100,
            max_delay_ms: 5000,
            multiplier: 2.0,
            jitter: 0.2,
            max_restarts: 5,
            within_secs: 60,
            hang_timeout_ms: 2000,
            hold_messages_max_ms: 250,
        }
    }
}

/// A per-kind restart policy: `None` fields take the value of `supervision.default`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartialRestartPolicy {
    /// See [`RestartPolicyConfig::strategy`].
    pub strategy: Option<RestartStrategy>,
    /// See [`RestartPolicyConfig::initial_delay_ms`].
    pub initial_delay_ms: Option<u64>,
    /// See [`RestartPolicyConfig::max_delay_ms`].
    pub max_delay_ms: Option<u64>,
    /// See [`RestartPolicyConfig::multiplier`].
    pub multiplier: Option<f64>,
    /// See [`RestartPolicyConfig::jitter`].
    pub jitter: Option<f64>,
    /// See [`RestartPolicyConfig::max_restarts`].
    pub max_restarts: Option<u32>,
    /// See [`RestartPolicyConfig::within_secs`].
    pub within_secs: Option<u64>,
    /// See [`RestartPolicyConfig::hang_timeout_ms`].
    pub hang_timeout_ms: Option<u64>,
    /// See [`RestartPolicyConfig::hold_messages_max_ms`].
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
#[derive(Clone, Debug, PartialEq)]
pub struct AiConfig {
    /// Search depth in plies, 1..=12. Default 7.
    pub search_depth: u32,
    /// Node budget per move, 1000..=100000000. Default 40000 (a full 40k-node search measured ~1.5 ms in release).
    pub max_nodes: u64,
    /// Pause before the AI plays, so it feels human, 0..=10000. Default 300.
    pub think_delay_ms: u64,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig { search_depth: 7, max_nodes: 40_000, think_delay_ms: 300 }
    }
}

/// `circuit_breakers:` section. Accepts the circuit-breaker plan's schema (`enabled`,
/// `default_failure_threshold`, `default_timeout`, and one section per breaker name beside
/// them, with `failure_threshold`, `timeout`, `operations`) plus Rampart's extra keys.
/// A breaker section in the file replaces the built-in one of that name; keys it leaves
/// out come from the section defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreakersConfig {
    /// Master switch, the plan's rollback switch: `false` makes every breaker a pass-through.
    pub enabled: bool,
    /// Consecutive failures that trip a breaker that does not set its own, 1..=1000. Default 5.
    pub default_failure_threshold: u32,
    /// Seconds a tripped breaker stays open when it does not set its own, 0.1..=3600. Default 30.
    pub default_timeout: f64,
    /// Every breaker by name; always holds `database`, `messaging` and `llm`.
    pub breakers: BTreeMap<String, BreakerSettings>,
}

/// The names the server itself calls through; they always exist.
pub const BUILT_IN_BREAKERS: [&str; 3] = ["database", "messaging", "llm"];

impl Default for CircuitBreakersConfig {
    fn default() -> Self {
        let base = BreakerSettings::with_defaults(5, 30.0);
        let named = |threshold, timeout: f64, operations: &[&str]| BreakerSettings {
            failure_threshold: threshold,
            timeout_secs: timeout,
            timeout_max_secs: timeout,
            operations: operations.iter().map(|o| (*o).to_owned()).collect(),
            ..base.clone()
        };
        let mut breakers = BTreeMap::new();
        breakers.insert(
            "database".to_owned(),
            named(
                3,
                30.0,
                &[
                    "save_snapshot",
                    "load_snapshot",
                    "remove_snapshot",
                    "lease",
                    "seat_session",
                    "waitlist",
                    "read_event",
                    "runtime_record",
                ],
            ),
        );
        breakers.insert("messaging".to_owned(), named(2, 10.0, &["publish_event", "relay", "lobby_announce"]));
        breakers.insert(
            "llm".to_owned(),
            BreakerSettings { call_timeout_ms: 5000, ..named(3, 30.0, &["chat_completion"]) },
        );
        CircuitBreakersConfig { enabled: true, default_failure_threshold: 5, default_timeout: 30.0, breakers }
    }
}

/// One breaker's settings, complete (section defaults already applied).
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerSettings {
    /// `false`: pass-through (calls are counted, never refused). Default true.
    pub enabled: bool,
    /// Consecutive failures that trip it, 1..=1000.
    pub failure_threshold: u32,
    /// Seconds it stays open after tripping (the plan's `timeout`), 0.1..=3600.
    pub timeout_secs: f64,
    /// Longest open period when it grows, seconds, >= timeout. Default = timeout (no growth).
    pub timeout_max_secs: f64,
    /// Growth of the open period after each failed probe, 1..=10. Default 2.
    pub timeout_multiplier: f64,
    /// Jitter applied to the open period, fraction 0..=1. Default 0.1.
    pub jitter: f64,
    /// Trip when at least this % of the calls in the window failed, 1..=100; `None`: off.
    pub failure_rate_threshold_pct: Option<f64>,
    /// Calls in the failure-rate window, 2..=10000. Default 20.
    pub failure_rate_window_calls: u32,
    /// Calls needed in the window before the rate counts, 1..=window. Default 10.
    pub failure_rate_min_calls: u32,
    /// Calls slower than this (ms) count as failures, 1..=600000; `None`: off.
    pub slow_call_ms: Option<u64>,
    /// Every call's timeout in ms, 1..=600000. Default 2000.
    pub call_timeout_ms: u64,
    /// Probe calls admitted at once while half-open, 1..=100. Default 1.
    pub half_open_max_probes: u32,
    /// Successful probes that close it again, 1..=100. Default 1.
    pub half_open_successes: u32,
    /// The operations it protects (documentation and metrics only).
    pub operations: Vec<String>,
}

impl BreakerSettings {
    /// Settings with the given threshold and open period and every other key at its default.
    pub fn with_defaults(failure_threshold: u32, timeout_secs: f64) -> Self {
        BreakerSettings {
            enabled: true,
            failure_threshold,
            timeout_secs,
            timeout_max_secs: timeout_secs,
            timeout_multiplier: 2.0,
            jitter: 0.1,
            failure_rate_threshold_pct: None,
            failure_rate_window_calls: 20,
            failure_rate_min_calls: 10,
            slow_call_ms: None,
            call_timeout_ms: 2000,
            half_open_max_probes: 1,
            half_open_successes: 1,
            operations: Vec::new(),
        }
    }
}

/// `health:` section: what the HealthMonitor samples and when it calls the server degraded
/// or overloaded. Each vital has a limit; at `degraded_ratio` of it the server is
/// degraded, at the limit overloaded. A level is left only once the vital falls below
/// `exit_ratio` of the level's entry point (hysteresis), and the status improves only after
/// `dwell_ms` in the worse one (it worsens at once). A limit of 0 turns that vital off.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthConfig {
    /// Sampling interval in ms, 50..=60000. Default 1000.
    pub interval_ms: u64,
    /// Limit in MB on the memory the process holds (its RSS minus the pages its allocator
    /// keeps free for reuse), 0..=1048576; 0 = off. Default 0.
    pub max_memory_mb: u64,
    /// System memory in use (100 - available %) limit, 0..=100; 0 = off. Default 95.
    pub max_memory_used_pct: f64,
    /// Event-loop lag limit in ms (how late the monitor's tick fires), 0..=60000; 0 = off. Default 500.
    pub max_lag_ms: u64,
    /// Game-creation requests per second (measured where they arrive), 0..=1000000; 0 = off. Default 0.
    pub max_create_rate_per_sec: f64,
    /// Fraction of a limit at which the server counts as degraded, 0.1..=1. Default 0.8.
    pub degraded_ratio: f64,
    /// A level is left below this fraction of its entry point, 0.5..=1. Default 0.9.
    pub exit_ratio: f64,
    /// Least time in a worse status before it may improve, ms, 0..=600000. Default 3000.
    pub dwell_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval_ms: 1000,
            max_memory_mb: 0,
            max_memory_used_pct: 95.0,
            max_lag_ms: 500,
            max_create_rate_per_sec: 0.0,
            degraded_ratio: 0.8,
            exit_ratio: 0.9,
            dwell_ms: 3000,
        }
    }
}

/// `admission:` section: when a new game is admitted and how fast the waitlist drains.
#[derive(Clone, Debug, PartialEq)]
pub struct AdmissionConfig {
    /// Most games running at once (a new game beyond it waits), 1..=10000000. Default 10000.
    pub max_games: u64,
    /// New games admitted per second (token bucket rate), 0.1..=100000. Default 50.
    pub rate_per_sec: f64,
    /// Token bucket size: new games admitted at once after a quiet spell, 1..=100000. Default 100.
    pub burst: u32,
    /// Waiting players admitted per second once health allows, 0.1..=10000. Default 20.
    pub admit_per_sec: f64,
    /// A waiting ticket nobody watches or polls for this long is dropped, s, 5..=86400. Default 120.
    pub ticket_ttl_secs: u64,
    /// Longest line; beyond it SERVER_BUSY carries no ticket, 1..=10000000. Default 100000.
    pub max_waitlist: u64,
    /// A claimed entry whose game was not created within this many ms (its instance
    /// crashed) goes back to the front of the line, 100..=600000. Default 30000.
    pub claim_lease_ms: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_games: 10_000,
            rate_per_sec: 50.0,
            burst: 100,
            admit_per_sec: 20.0,
            ticket_ttl_secs: 120,
            max_waitlist: 100_000,
            claim_lease_ms: 30_000,
        }
    }
}

/// Where the stores keep their data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageBackend {
    /// In this process (the default; `make run` needs nothing else).
    Memory,
    /// In Redis (`redis:`), shared by several instances and surviving restarts.
    Redis,
}

impl StorageBackend {
    const CHOICES: &'static [(&'static str, StorageBackend)] =
        &[("memory", StorageBackend::Memory), ("redis", StorageBackend::Redis)];
}

/// `storage:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// `memory` or `redis`. Default memory.
    pub backend: StorageBackend,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { backend: StorageBackend::Memory }
    }
}

/// `redis:` section. `RAMPART_REDIS_URL` overrides `url`; a password belongs in
/// `RAMPART_REDIS_PASSWORD`, never in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`. Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key, so instances of different deployments can share a server. Default "rampart".
    pub key_prefix: String,
    /// Each command's timeout in ms, 10..=60000. Default 500.
    pub command_timeout_ms: u64,
    /// Longest wait between reconnection attempts in ms, 10..=60000. Default 1000.
    pub reconnect_max_delay_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "rampart".to_owned(),
            command_timeout_ms: 500,
            reconnect_max_delay_ms: 1000,
        }
    }
}

/// `cluster:` section: how instances sharing one Redis own games (DESIGN.md D11).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// How long a game's ownership lease (and an instance's heartbeat) lasts unless renewed,
    /// in ms, 300..=60000. A game whose owner died is taken over after at most this long.
    /// Owners renew at a third of it. Default 3000.
    pub lease_ms: u64,
    /// This instance's id, 1..=64 of `[A-Za-z0-9_-]`; empty: a random one at each start.
    /// Default empty.
    pub instance_id: String,
    /// How long a seat session is remembered after its last use, in seconds,
    /// 60..=2592000. Default 86400.
    pub session_ttl_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { lease_ms: 3000, instance_id: String::new(), session_ttl_secs: 86_400 }
    }
}

/// `llm:` section: the OpenAI-compatible endpoint the AI player chats through. The API key
/// comes from `RAMPART_LLM_API_KEY`, never from this file.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmConfig {
    /// Base URL, http or https, e.g. `https://api.openai.com` or `http://127.0.0.1:8089`;
    /// requests go to `{base_url}/v1/chat/completions`. Credentials in it are refused.
    /// Empty (the default): no LLM, canned lines only, and the llm breaker shows as disabled.
    pub base_url: String,
    /// Model name sent in each request. Default "gpt-4o-mini".
    pub model: String,
    /// Timeout of one chat request in ms, 100..=60000. Default 3000.
    pub timeout_ms: u64,
    /// Most tokens the model may answer with, 1..=1000. Default 60.
    pub max_tokens: u32,
    /// Sampling temperature, 0..=2. Default 0.8.
    pub temperature: f64,
    /// The system prompt that sets the AI player's voice.
    pub system_prompt: String,
    /// Lines the AI uses when the LLM is off, open or failing; one is picked at random.
    pub canned_lines: Vec<String>,
    /// Chance (0..=1) that the AI comments after one of its own moves. Default 0.35.
    pub comment_probability: f64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: String::new(),
            model: "gpt-4o-mini".to_owned(),
            timeout_ms: 3000,
            max_tokens: 60,
            temperature: 0.8,
            system_prompt:
                "You are Rampart AI, a friendly, slightly cheeky Connect Four opponent. Answer in one short sentence."
                    .to_owned(),
            canned_lines: [
                "Good luck!",
                "Hmm, let me think about that one.",
                "Nice move.",
                "Your turn!",
                "That was close.",
            ]
            .iter()
            .map(|l| (*l).to_owned())
            .collect(),
            comment_probability: 0.35,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

impl Config {
    /// Parses YAML `text`, applies overrides from `env` (name, value pairs), validates.
    /// Empty text or `{}` gives the defaults. Returns every problem found.
    pub fn from_yaml_str(text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        load_from(text, "<yaml>", env)
    }

    /// Reads the file at `path` and the process environment, then as
    /// [`Config::from_yaml_str`]. An unreadable file is one error naming the path.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors::one(&source, format!("cannot read the config file: {e}")))?;
        load_from(&text, &source, &process_env())
    }

    /// Defaults with the process environment's overrides; used when no file is given.
    pub fn from_env_only() -> Result<Config, ConfigErrors> {
        load_from("", "<defaults>", &process_env())
    }
}

/// The process environment, skipping variables that are not valid UTF-8.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
    }
}

fn load_from(text: &str, source: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut tree = match serde_saphyr::from_str_with_options::<Option<Value>>(text, yaml_options()) {
        Ok(None | Some(Value::Null)) => Value::Object(Map::new()),
        Ok(Some(v @ Value::Object(_))) => v,
        Ok(Some(other)) => {
            errors.push(ConfigError {
                path: source.to_owned(),
                message: format!(
                    "the top level must be a mapping of sections (server, supervision, ai), got {}",
                    describe(&other)
                ),
            });
            Value::Object(Map::new())
        }
        Err(e) => {
            errors.push(ConfigError { path: source.to_owned(), message: format!("invalid YAML: {e}") });
            Value::Object(Map::new())
        }
    };
    reject_secrets(&tree, &mut Vec::new(), &mut errors);
    let origins = apply_env(&mut tree, env, &mut errors);

    let mut r = Reader::new(&tree, &origins, false);
    let mut config = read_config(&mut r);
    r.finish();
    errors.append(&mut r.errors);
    config.secrets = read_secrets(env);

    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors { errors })
    }
}

/// Reports a secret key anywhere in the file.
fn reject_secrets(v: &Value, path: &mut Vec<String>, errors: &mut Vec<ConfigError>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                path.push(k.clone());
                if let Some((_, var)) = SECRET_VARS.iter().find(|(key, _)| key == k) {
                    errors.push(ConfigError {
                        path: path.join("."),
                        message: format!("secrets are not read from the config file; set {var} in the environment"),
                    });
                }
                reject_secrets(child, path, errors);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                reject_secrets(child, path, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A key the read functions ask for: its path (`*` for a map entry) and whether it is a
/// section rather than a value.
type KnownKey = (Vec<String>, bool);

/// Every key the read functions know, found by running them over an empty tree.
fn known_keys() -> Vec<KnownKey> {
    let empty = Value::Object(Map::new());
    let origins = BTreeMap::new();
    let mut r = Reader::new(&empty, &origins, true);
    let _ = read_config(&mut r);
    r.known
}

/// Writes `RAMPART__*` and `RAMPART_BIND` overrides into the tree. Returns, for each
/// overridden YAML path, the variable that set it (to name it in value errors).
fn apply_env(tree: &mut Value, env: &[(String, String)], errors: &mut Vec<ConfigError>) -> BTreeMap<String, String> {
    let known = known_keys();
    let mut origins = BTreeMap::new();
    let mut overrides: Vec<(&str, Vec<String>, &str)> = Vec::new();
    for (name, value) in env {
        let Some(rest) = name
            .get(..ENV_PATH_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(ENV_PATH_PREFIX))
            .map(|_| &name[ENV_PATH_PREFIX.len()..])
        else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        overrides.push((name, path, value));
    }
    // RAMPART_BIND is applied last, so it wins over RAMPART__SERVER__BIND.
    for (name, value) in env {
        if name == ENV_BIND {
            overrides.push((name, vec!["server".into(), "bind".into()], value));
        }
        if name == ENV_REDIS_URL {
            overrides.push((name, vec!["redis".into(), "url".into()], value));
        }
    }

    for (name, path, value) in overrides {
        let dotted = path.join(".");
        let label = format!("env {name}");
        let matched = known.iter().find(|(pattern, _)| {
            pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| p == "*" || (p == s && !s.is_empty()))
        });
        match matched {
            None => {
                let mut message = format!("unknown key {dotted}");
                if let Some(last) = path.last() {
                    if let Some((_, var)) = SECRET_VARS.iter().find(|(k, _)| k == last) {
                        message.push_str(&format!("; secrets are set with {var}"));
                    }
                }
                errors.push(ConfigError { path: label, message });
            }
            Some((_, true)) => errors.push(ConfigError {
                path: label,
                message: format!("{dotted} is a section, not a value; set one of its keys"),
            }),
            Some((_, false)) => {
                if insert(tree, &path, parse_env_value(value)) {
                    origins.insert(dotted, name.to_owned());
                }
            }
        }
    }
    origins
}

/// Sets `path` in the tree, creating sections as needed. Returns false when a section on
/// the way is not a mapping in the file (the reader reports that).
fn insert(tree: &mut Value, path: &[String], value: Value) -> bool {
    let mut node = tree;
    for key in path {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return false;
        };
        node = map.entry(key.clone()).or_insert(Value::Null);
    }
    *node = value;
    true
}

/// An environment value read as a YAML scalar (number, bool, string); anything else,
/// including an empty value, is kept as a string.
fn parse_env_value(value: &str) -> Value {
    match serde_saphyr::from_str_with_options::<Option<Value>>(value, yaml_options()) {
        Ok(Some(v)) if !v.is_object() && !v.is_array() => v,
        _ => Value::String(value.to_owned()),
    }
}

/// A short description of a YAML value for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "no value".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.parse::<f64>().is_ok() => {
            format!("the string {s:?} (remove the quotes for a number)")
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Typed reader
// ---------------------------------------------------------------------------------------

/// Reads one section of the tree. Each getter takes a key and what is allowed, records a
/// problem (and returns the default) when the value is not allowed, and remembers the key
/// as known; [`Reader::finish`] then reports the keys nobody asked for.
struct Reader<'a> {
    path: Vec<String>,
    map: Option<&'a Map<String, Value>>,
    /// Keys asked for in this section, in order (the "allowed" list for unknown keys).
    asked: Vec<String>,
    /// Keys of this section that had a problem.
    bad: BTreeSet<String>,
    errors: Vec<ConfigError>,
    known: Vec<KnownKey>,
    /// YAML path -> environment variable that set it.
    origins: &'a BTreeMap<String, String>,
    /// Schema discovery over an empty tree: map readers visit one `*` entry.
    probe: bool,
}

impl<'a> Reader<'a> {
    fn new(tree: &'a Value, origins: &'a BTreeMap<String, String>, probe: bool) -> Self {
        Reader {
            path: Vec::new(),
            map: tree.as_object(),
            asked: Vec::new(),
            bad: BTreeSet::new(),
            errors: Vec::new(),
            known: Vec::new(),
            origins,
            probe,
        }
    }

    fn child(&self, key: &str, map: Option<&'a Map<String, Value>>) -> Reader<'a> {
        let mut path = self.path.clone();
        path.push(key.to_owned());
        Reader {
            path,
            map,
            asked: Vec::new(),
            bad: BTreeSet::new(),
            errors: Vec::new(),
            known: Vec::new(),
            origins: self.origins,
            probe: self.probe,
        }
    }

    fn path_of(&self, key: &str) -> String {
        let mut p = self.path.join(".");
        if !p.is_empty() {
            p.push('.');
        }
        p.push_str(key);
        p
    }

    /// Records a problem with `key` of this section.
    fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path_of(key);
        let mut message = message.into();
        if let Some(var) = self.origins.get(&path) {
            message.push_str(&format!(" (set by env {var})"));
        }
        self.bad.insert(key.to_owned());
        self.errors.push(ConfigError { path, message });
    }

    /// Records a problem with this section as a whole.
    fn error_here(&mut self, message: impl Into<String>) {
        self.errors.push(ConfigError { path: self.path.join("."), message: message.into() });
    }

    /// True if `key` was read without a problem (guards cross-field rules).
    fn valid(&self, key: &str) -> bool {
        !self.bad.contains(key)
    }

    fn raw(&mut self, key: &str, section: bool) -> Option<&'a Value> {
        self.asked.push(key.to_owned());
        let mut path = self.path.clone();
        path.push(key.to_owned());
        self.known.push((path, section));
        self.map.and_then(|m| m.get(key))
    }

    /// The value of a scalar key, or `None` if absent; a present but empty key is a problem.
    fn scalar(&mut self, key: &str, expected: &str) -> Option<&'a Value> {
        match self.raw(key, false)? {
            Value::Null => {
                self.error(key, format!("expected {expected}, got no value (remove the key to use the default)"));
                None
            }
            v => Some(v),
        }
    }

    fn opt_u64(&mut self, key: &str, range: RangeInclusive<u64>) -> Option<u64> {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        let v = self.scalar(key, &expected)?;
        match v.as_u64() {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(key, format!("expected {expected}, got {}", describe(v)));
                None
            }
        }
    }

    fn u64(&mut self, key: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
        self.opt_u64(key, range).unwrap_or(default)
    }

    fn opt_u32(&mut self, key: &str, range: RangeInclusive<u32>) -> Option<u32> {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        self.opt_u64(key, wide).and_then(|n| u32::try_from(n).ok())
    }

    fn u32(&mut self, key: &str, default: u32, range: RangeInclusive<u32>) -> u32 {
        self.opt_u32(key, range).unwrap_or(default)
    }

    fn opt_f64(&mut self, key: &str, range: RangeInclusive<f64>) -> Option<f64> {
        let expected = format!("a number from {:?} to {:?}", range.start(), range.end());
        let v = self.scalar(key, &expected)?;
        match v.as_f64() {
            Some(x) if range.contains(&x) => Some(x),
            _ => {
                self.error(key, format!("expected {expected}, got {}", describe(v)));
                None
            }
        }
    }

    /// A string parsed with `FromStr`; `expected` says what is accepted.
    fn opt_parse<T: FromStr>(&mut self, key: &str, expected: &str) -> Option<T> {
        let v = self.scalar(key, expected)?;
        match v.as_str().map(str::parse::<T>) {
            Some(Ok(parsed)) => Some(parsed),
            _ => {
                self.error(key, format!("expected {expected}, got {}", describe(v)));
                None
            }
        }
    }

    fn parse<T: FromStr>(&mut self, key: &str, default: T, expected: &str) -> T {
        self.opt_parse(key, expected).unwrap_or(default)
    }

    fn opt_bool(&mut self, key: &str) -> Option<bool> {
        let v = self.scalar(key, "true or false")?;
        let b = v.as_bool();
        if b.is_none() {
            self.error(key, format!("expected true or false, got {}", describe(v)));
        }
        b
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        self.opt_bool(key).unwrap_or(default)
    }

    fn opt_string(&mut self, key: &str, max_chars: usize) -> Option<String> {
        let expected = format!("a string of at most {max_chars} characters");
        let v = self.scalar(key, &expected)?;
        match v.as_str() {
            Some(text) if text.chars().count() <= max_chars => Some(text.to_owned()),
            _ => {
                self.error(key, format!("expected {expected}, got {}", describe(v)));
                None
            }
        }
    }

    fn string(&mut self, key: &str, default: &str, max_chars: usize) -> String {
        self.opt_string(key, max_chars).unwrap_or_else(|| default.to_owned())
    }

    /// A list of non-empty strings, each at most `max_chars` long.
    fn opt_strings(&mut self, key: &str, max_items: usize, max_chars: usize) -> Option<Vec<String>> {
        let expected = format!("a list of at most {max_items} non-empty strings of at most {max_chars} characters");
        let v = self.scalar(key, &expected)?;
        let items: Option<Vec<String>> = v.as_array().filter(|a| a.len() <= max_items).and_then(|a| {
            a.iter()
                .map(|i| {
                    i.as_str().filter(|t| !t.trim().is_empty() && t.chars().count() <= max_chars).map(str::to_owned)
                })
                .collect()
        });
        if items.is_none() {
            self.error(key, format!("expected {expected}, got {}", describe(v)));
        }
        items
    }

    /// The keys of this section that no getter asked for yet, each read as a named
    /// section by `f` (for sections whose named entries sit beside their own settings).
    fn rest_sections<T>(
        &mut self,
        name_ok: fn(&str) -> bool,
        name_rule: &str,
        mut f: impl FnMut(&str, &mut Reader<'a>) -> T,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        if self.probe {
            let _ = self.section("*", |r| f("*", r));
            return out;
        }
        let names: Vec<String> =
            self.map.into_iter().flatten().map(|(k, _)| k.clone()).filter(|k| !self.asked.contains(k)).collect();
        for name in names {
            if SECRET_VARS.iter().any(|(k, _)| *k == name) {
                continue;
            }
            if !name_ok(&name) {
                self.asked.push(name.clone());
                self.error(&name, format!("invalid name: {name_rule}"));
                continue;
            }
            let item = self.section(&name, |r| f(&name, r));
            out.insert(name, item);
        }
        out
    }

    /// One of a fixed set of names.
    fn opt_choice<T: Copy>(&mut self, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let expected = format!("one of {}", names.join(", "));
        let v = self.scalar(key, &expected)?;
        let found = v.as_str().and_then(|s| choices.iter().find(|(n, _)| *n == s).map(|(_, t)| *t));
        if found.is_none() {
            self.error(key, format!("expected {expected}, got {}", describe(v)));
        }
        found
    }

    /// A nested section read by `f`; absent or empty means all defaults.
    fn section<T>(&mut self, key: &str, f: impl FnOnce(&mut Reader<'a>) -> T) -> T {
        let map = self.section_map(key);
        let mut child = self.child(key, map);
        let out = f(&mut child);
        self.absorb(child);
        out
    }

    /// A mapping from names (checked by `name_ok`, described by `name_rule`) to
    /// sections, each read by `f(name, reader)`.
    fn map<T>(
        &mut self,
        key: &str,
        name_ok: fn(&str) -> bool,
        name_rule: &str,
        mut f: impl FnMut(&str, &mut Reader<'a>) -> T,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let map = self.section_map(key);
        let mut entries = self.child(key, None);
        if self.probe {
            // Schema discovery: visit one wildcard entry so its keys become known.
            let _ = entries.section("*", |r| f("*", r));
        }
        for (name, value) in map.into_iter().flatten() {
            entries.asked.push(name.clone());
            if !name_ok(name) {
                entries.error(name, format!("invalid name: {name_rule}"));
                continue;
            }
            let section = match value {
                Value::Null => None,
                Value::Object(m) => Some(m),
                other => {
                    entries.error(name, format!("expected a mapping of keys, got {}", describe(other)));
                    continue;
                }
            };
            let mut child = entries.child(name, section);
            let item = f(name, &mut child);
            entries.absorb(child);
            out.insert(name.clone(), item);
        }
        self.absorb(entries);
        out
    }

    fn section_map(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        match self.raw(key, true)? {
            Value::Null => None,
            Value::Object(m) => Some(m),
            other => {
                self.error(key, format!("expected a mapping of keys, got {}", describe(other)));
                None
            }
        }
    }

    fn absorb(&mut self, mut child: Reader<'a>) {
        child.finish();
        self.errors.append(&mut child.errors);
        self.known.append(&mut child.known);
    }

    /// Reports keys of this section that no getter asked for.
    fn finish(&mut self) {
        let Some(map) = self.map else { return };
        let unknown: Vec<&String> = map
            .keys()
            .filter(|k| !self.asked.contains(k))
            // Secret keys are already reported by `reject_secrets`.
            .filter(|k| !SECRET_VARS.iter().any(|(s, _)| s == k))
            .collect();
        for key in unknown {
            let message = format!("unknown key; allowed here: {}", self.asked.join(", "));
            self.error(key, message);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------

/// The top level. Secrets are filled in from the environment afterwards.
fn read_config(r: &mut Reader<'_>) -> Config {
    Config {
        server: r.section("server", read_server),
        supervision: r.section("supervision", read_supervision),
        ai: r.section("ai", read_ai),
        circuit_breakers: r.section("circuit_breakers", read_circuit_breakers),
        llm: r.section("llm", read_llm),
        health: r.section("health", read_health),
        admission: r.section("admission", read_admission),
        storage: r.section("storage", read_storage),
        redis: r.section("redis", read_redis),
        cluster: r.section("cluster", read_cluster),
        secrets: Secrets::default(),
    }
}

fn read_server(r: &mut Reader<'_>) -> ServerConfig {
    let d = ServerConfig::default();
    let s = ServerConfig {
        bind: r.parse("bind", d.bind, "a socket address IP:PORT such as 127.0.0.1:8080 or [::1]:8080"),
        workers: r.u32("workers", d.workers, 1..=64),
        game_arbiters: r.u32("game_arbiters", d.game_arbiters, 0..=256),
        max_frame_bytes: r.u64("max_frame_bytes", d.max_frame_bytes, 64..=1_048_576),
        outbound_queue: r.u64("outbound_queue", d.outbound_queue, 1..=65_536),
        heartbeat_interval_ms: r.u64("heartbeat_interval_ms", d.heartbeat_interval_ms, 100..=600_000),
        client_timeout_ms: r.u64("client_timeout_ms", d.client_timeout_ms, 1..=3_600_000),
        join_timeout_ms: r.u64("join_timeout_ms", d.join_timeout_ms, 100..=600_000),
        tcp_user_timeout_ms: r.u64("tcp_user_timeout_ms", d.tcp_user_timeout_ms, 0..=3_600_000),
        max_chat_chars: r.u64("max_chat_chars", d.max_chat_chars, 1..=10_000),
        shutdown_grace_ms: r.u64("shutdown_grace_ms", d.shutdown_grace_ms, 0..=600_000),
        finished_game_ttl_secs: r.u64("finished_game_ttl_secs", d.finished_game_ttl_secs, 1..=604_800),
        rate_limit_frames_per_sec: r.u64("rate_limit_frames_per_sec", d.rate_limit_frames_per_sec, 1..=100_000),
        rate_limit_burst: r.u64("rate_limit_burst", d.rate_limit_burst, 1..=100_000),
        abandoned_game_secs: r.u64("abandoned_game_secs", d.abandoned_game_secs, 1..=86_400),
        body_timeout_ms: r.u64("body_timeout_ms", d.body_timeout_ms, 100..=600_000),
        max_connections: r.u64("max_connections", d.max_connections, 16..=1_000_000),
        lobby_idle_timeout_ms: r.u64("lobby_idle_timeout_ms", d.lobby_idle_timeout_ms, 1000..=86_400_000),
    };
    if r.valid("heartbeat_interval_ms")
        && r.valid("client_timeout_ms")
        && s.client_timeout_ms <= s.heartbeat_interval_ms
    {
        r.error(
            "client_timeout_ms",
            format!(
                "must be greater than heartbeat_interval_ms ({}), got {}",
                s.heartbeat_interval_ms, s.client_timeout_ms
            ),
        );
    }
    s
}

fn read_supervision(r: &mut Reader<'_>) -> SupervisionConfig {
    let d = SupervisionConfig::default();
    let (default, default_ok) = r.section("default", |r| {
        let policy = read_policy(r).apply_to(&RestartPolicyConfig::default());
        let fields_ok = r.valid("initial_delay_ms") && r.valid("max_delay_ms");
        let rule = policy_rule(&policy);
        if let (true, Some(message)) = (fields_ok, &rule) {
            r.error("max_delay_ms", message.clone());
        }
        (policy, fields_ok && rule.is_none())
    });
    let kinds = r.map(
        "kinds",
        |name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "game kind names use only lowercase letters, digits and _ ([a-z0-9_]+)",
        |_, r| {
            let partial = read_policy(r);
            let fields_ok = r.valid("initial_delay_ms") && r.valid("max_delay_ms");
            if default_ok && fields_ok {
                if let Some(message) = policy_rule(&partial.apply_to(&default)) {
                    r.error_here(format!("after merging with supervision.default: {message}"));
                }
            }
            partial
        },
    );
    SupervisionConfig {
        default,
        kinds,
        watchdog_interval_ms: r.u64("watchdog_interval_ms", d.watchdog_interval_ms, 10..=60_000),
    }
}

/// The restart policy keys; used for `supervision.default` and each kind.
fn read_policy(r: &mut Reader<'_>) -> PartialRestartPolicy {
    PartialRestartPolicy {
        strategy: r.opt_choice("strategy", RestartStrategy::CHOICES),
        initial_delay_ms: r.opt_u64("initial_delay_ms", 0..=3_600_000),
        max_delay_ms: r.opt_u64("max_delay_ms", 0..=3_600_000),
        multiplier: r.opt_f64("multiplier", 1.0..=10.0),
        jitter: r.opt_f64("jitter", 0.0..=1.0),
        max_restarts: r.opt_u32("max_restarts", 1..=1000),
        within_secs: r.opt_u64("within_secs", 1..=86_400),
        hang_timeout_ms: r.opt_u64("hang_timeout_ms", 50..=600_000),
        hold_messages_max_ms: r.opt_u64("hold_messages_max_ms", 0..=60_000),
    }
}

/// Cross-field rule of a complete policy.
fn policy_rule(p: &RestartPolicyConfig) -> Option<String> {
    (p.max_delay_ms < p.initial_delay_ms).then(|| {
        format!("max_delay_ms ({}) must be at least initial_delay_ms ({})", p.max_delay_ms, p.initial_delay_ms)
    })
}

fn read_ai(r: &mut Reader<'_>) -> AiConfig {
    let d = AiConfig::default();
    AiConfig {
        search_depth: r.u32("search_depth", d.search_depth, 1..=12),
        max_nodes: r.u64("max_nodes", d.max_nodes, 1000..=100_000_000),
        think_delay_ms: r.u64("think_delay_ms", d.think_delay_ms, 0..=10_000),
    }
}

fn breaker_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn read_circuit_breakers(r: &mut Reader<'_>) -> CircuitBreakersConfig {
    let d = CircuitBreakersConfig::default();
    let enabled = r.bool("enabled", d.enabled);
    let default_failure_threshold = r.u32("default_failure_threshold", d.default_failure_threshold, 1..=1000);
    let default_timeout = r.opt_f64("default_timeout", 0.1..=3600.0).unwrap_or(d.default_timeout);
    let base = BreakerSettings::with_defaults(default_failure_threshold, default_timeout);
    let from_file = r.rest_sections(
        breaker_name_ok,
        "breaker names use only lowercase letters, digits and _ ([a-z0-9_]+), at most 64",
        |_, r| read_breaker(r, &base),
    );
    let mut breakers = d.breakers;
    breakers.extend(from_file);
    CircuitBreakersConfig { enabled, default_failure_threshold, default_timeout, breakers }
}

fn read_breaker(r: &mut Reader<'_>, base: &BreakerSettings) -> BreakerSettings {
    let timeout_secs = r.opt_f64("timeout", 0.1..=3600.0).unwrap_or(base.timeout_secs);
    let window = r.u32("failure_rate_window_calls", base.failure_rate_window_calls, 2..=10_000);
    let b = BreakerSettings {
        enabled: r.bool("enabled", base.enabled),
        failure_threshold: r.u32("failure_threshold", base.failure_threshold, 1..=1000),
        timeout_secs,
        timeout_max_secs: r.opt_f64("timeout_max", 0.1..=86_400.0).unwrap_or(timeout_secs),
        timeout_multiplier: r.opt_f64("timeout_multiplier", 1.0..=10.0).unwrap_or(base.timeout_multiplier),
        jitter: r.opt_f64("jitter", 0.0..=1.0).unwrap_or(base.jitter),
        failure_rate_threshold_pct: r.opt_f64("failure_rate_threshold_pct", 1.0..=100.0),
        failure_rate_window_calls: window,
        failure_rate_min_calls: r.u32("failure_rate_min_calls", base.failure_rate_min_calls.min(window), 1..=10_000),
        slow_call_ms: r.opt_u64("slow_call_ms", 1..=600_000),
        call_timeout_ms: r.u64("call_timeout_ms", base.call_timeout_ms, 1..=600_000),
        half_open_max_probes: r.u32("half_open_max_probes", base.half_open_max_probes, 1..=100),
        half_open_successes: r.u32("half_open_successes", base.half_open_successes, 1..=100),
        operations: r.opt_strings("operations", 100, 64).unwrap_or_default(),
    };
    if r.valid("timeout") && r.valid("timeout_max") && b.timeout_max_secs < b.timeout_secs {
        r.error(
            "timeout_max",
            format!("must be at least timeout ({} s), got {} s", b.timeout_secs, b.timeout_max_secs),
        );
    }
    if r.valid("failure_rate_window_calls")
        && r.valid("failure_rate_min_calls")
        && b.failure_rate_min_calls > b.failure_rate_window_calls
    {
        r.error(
            "failure_rate_min_calls",
            format!(
                "must be at most failure_rate_window_calls ({}), got {}",
                b.failure_rate_window_calls, b.failure_rate_min_calls
            ),
        );
    }
    b
}

fn read_health(r: &mut Reader<'_>) -> HealthConfig {
    let d = HealthConfig::default();
    HealthConfig {
        interval_ms: r.u64("interval_ms", d.interval_ms, 50..=60_000),
        max_memory_mb: r.u64("max_memory_mb", d.max_memory_mb, 0..=1_048_576),
        max_memory_used_pct: r.opt_f64("max_memory_used_pct", 0.0..=100.0).unwrap_or(d.max_memory_used_pct),
        max_lag_ms: r.u64("max_lag_ms", d.max_lag_ms, 0..=60_000),
        max_create_rate_per_sec: r
            .opt_f64("max_create_rate_per_sec", 0.0..=1_000_000.0)
            .unwrap_or(d.max_create_rate_per_sec),
        degraded_ratio: r.opt_f64("degraded_ratio", 0.1..=1.0).unwrap_or(d.degraded_ratio),
        exit_ratio: r.opt_f64("exit_ratio", 0.5..=1.0).unwrap_or(d.exit_ratio),
        dwell_ms: r.u64("dwell_ms", d.dwell_ms, 0..=600_000),
    }
}

fn read_admission(r: &mut Reader<'_>) -> AdmissionConfig {
    let d = AdmissionConfig::default();
    AdmissionConfig {
        max_games: r.u64("max_games", d.max_games, 1..=10_000_000),
        rate_per_sec: r.opt_f64("rate_per_sec", 0.1..=100_000.0).unwrap_or(d.rate_per_sec),
        burst: r.u32("burst", d.burst, 1..=100_000),
        admit_per_sec: r.opt_f64("admit_per_sec", 0.1..=10_000.0).unwrap_or(d.admit_per_sec),
        ticket_ttl_secs: r.u64("ticket_ttl_secs", d.ticket_ttl_secs, 5..=86_400),
        max_waitlist: r.u64("max_waitlist", d.max_waitlist, 1..=10_000_000),
        claim_lease_ms: r.u64("claim_lease_ms", d.claim_lease_ms, 100..=600_000),
    }
}

fn read_storage(r: &mut Reader<'_>) -> StorageConfig {
    let d = StorageConfig::default();
    StorageConfig { backend: r.opt_choice("backend", StorageBackend::CHOICES).unwrap_or(d.backend) }
}

fn read_redis(r: &mut Reader<'_>) -> RedisConfig {
    let d = RedisConfig::default();
    let c = RedisConfig {
        url: r.string("url", &d.url, 2048),
        key_prefix: r.string("key_prefix", &d.key_prefix, 64),
        command_timeout_ms: r.u64("command_timeout_ms", d.command_timeout_ms, 10..=60_000),
        reconnect_max_delay_ms: r.u64("reconnect_max_delay_ms", d.reconnect_max_delay_ms, 10..=60_000),
    };
    if r.valid("url") {
        match c.url.strip_prefix("redis://") {
            None => r.error("url", format!("expected a redis:// URL such as redis://127.0.0.1:6379, got {:?}", c.url)),
            Some(rest) if rest.contains('@') => r.error(
                "url",
                "the URL carries credentials; put the password in RAMPART_REDIS_PASSWORD, never in the file",
            ),
            Some(rest) if rest.is_empty() || rest.contains(char::is_whitespace) => {
                r.error("url", format!("expected a redis:// URL such as redis://127.0.0.1:6379, got {:?}", c.url))
            }
            Some(_) => {}
        }
    }
    if r.valid("key_prefix")
        && (c.key_prefix.is_empty() || !c.key_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)))
    {
        r.error("key_prefix", "use 1..64 letters, digits, _ - or .");
    }
    c
}

fn read_cluster(r: &mut Reader<'_>) -> ClusterConfig {
    let d = ClusterConfig::default();
    let c = ClusterConfig {
        lease_ms: r.u64("lease_ms", d.lease_ms, 300..=60_000),
        instance_id: r.string("instance_id", &d.instance_id, 64),
        session_ttl_secs: r.u64("session_ttl_secs", d.session_ttl_secs, 60..=2_592_000),
    };
    if r.valid("instance_id") && !c.instance_id.is_empty() && crate::ids::InstanceId::parse(&c.instance_id).is_none() {
        r.error("instance_id", "use 1..64 letters, digits, _ or -");
    }
    c
}

fn read_llm(r: &mut Reader<'_>) -> LlmConfig {
    let d = LlmConfig::default();
    let llm = LlmConfig {
        base_url: r.string("base_url", &d.base_url, 2048),
        model: r.string("model", &d.model, 200),
        timeout_ms: r.u64("timeout_ms", d.timeout_ms, 100..=60_000),
        max_tokens: r.u32("max_tokens", d.max_tokens, 1..=1000),
        temperature: r.opt_f64("temperature", 0.0..=2.0).unwrap_or(d.temperature),
        system_prompt: r.string("system_prompt", &d.system_prompt, 4000),
        canned_lines: r.opt_strings("canned_lines", 200, 280).unwrap_or(d.canned_lines),
        comment_probability: r.opt_f64("comment_probability", 0.0..=1.0).unwrap_or(d.comment_probability),
    };
    if r.valid("base_url") && !llm.base_url.is_empty() {
        let url = llm.base_url.trim_end_matches('/');
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        if rest.is_some_and(|h| h.contains('@')) {
            r.error("base_url", "the URL carries credentials; the key comes only from RAMPART_LLM_API_KEY");
        } else if rest.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
            r.error(
                "base_url",
                format!(
                    "expected an http:// or https:// URL without credentials, such as https://api.openai.com or http://127.0.0.1:8089, got {:?}",
                    llm.base_url
                ),
            );
        }
    }
    if r.valid("model") && llm.model.trim().is_empty() {
        r.error("model", "must not be empty");
    }
    llm
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn ok(yaml: &str) -> Config {
        Config::from_yaml_str(yaml, &[]).unwrap_or_else(|e| panic!("expected Ok, got:\n{e}"))
    }

    fn errs_env(yaml: &str, vars: &[(&str, &str)]) -> ConfigErrors {
        match Config::from_yaml_str(yaml, &env(vars)) {
            Ok(c) => panic!("expected errors for {yaml:?}, got {c:?}"),
            Err(e) => e,
        }
    }

    fn errs(yaml: &str) -> ConfigErrors {
        errs_env(yaml, &[])
    }

    /// Asserts that loading `yaml` reports exactly one problem, at `path`; returns its message.
    fn only_error_at(yaml: &str, path: &str) -> String {
        let e = errs(yaml);
        assert_eq!(e.errors.len(), 1, "for {yaml:?}:\n{e}");
        assert_eq!(e.errors[0].path, path, "for {yaml:?}:\n{e}");
        e.errors[0].message.clone()
    }

    #[test]
    fn defaults_file_is_default() {
        let c = ok(include_str!("../server_config.yaml"));
        assert_eq!(c, Config::default());
    }

    #[test]
    fn empty_inputs_are_defaults() {
        for yaml in ["", "{}", "# nothing\n", "~", "server:\nsupervision:\n  kinds:\nai: {}\n"] {
            assert_eq!(ok(yaml), Config::default(), "for {yaml:?}");
        }
    }

    #[test]
    fn values_are_read() {
        let c = ok("server:\n  bind: \"[::1]:9000\"\n  workers: 8\nsupervision:\n  default:\n    strategy: delayed\n    multiplier: 3\nai:\n  search_depth: 12\n");
        assert_eq!(c.server.bind, "[::1]:9000".parse::<SocketAddr>().expect("addr"));
        assert_eq!(c.server.workers, 8);
        assert_eq!(c.supervision.default.strategy, RestartStrategy::Delayed);
        assert_eq!(c.supervision.default.multiplier, 3.0);
        assert_eq!(c.ai.search_depth, 12);
    }

    #[test]
    fn unknown_key_top_level() {
        let m = only_error_at("bogus: 1\n", "bogus");
        assert!(m.contains("unknown key") && m.contains("server, supervision, ai"), "{m}");
    }

    #[test]
    fn unknown_key_nested() {
        let m = only_error_at("server:\n  wrokers: 4\n", "server.wrokers");
        assert!(m.contains("workers"), "{m}");
        only_error_at("supervision:\n  default:\n    bogus: 1\n", "supervision.default.bogus");
        only_error_at("supervision:\n  kinds:\n    connect4:\n      bogus: 1\n", "supervision.kinds.connect4.bogus");
    }

    #[test]
    fn string_where_integer() {
        let m = only_error_at("server:\n  workers: \"4\"\n", "server.workers");
        assert!(m.contains("whole number from 1 to 64") && m.contains("\"4\""), "{m}");
        only_error_at("server:\n  workers: four\n", "server.workers");
        only_error_at("server:\n  workers: true\n", "server.workers");
        only_error_at("server:\n  workers: 2.5\n", "server.workers");
        only_error_at("server:\n  workers:\n", "server.workers");
    }

    #[test]
    fn negative_values() {
        let m = only_error_at("server:\n  max_frame_bytes: -1\n", "server.max_frame_bytes");
        assert!(m.contains("got -1"), "{m}");
        only_error_at("supervision:\n  default:\n    jitter: -0.1\n", "supervision.default.jitter");
    }

    #[test]
    fn range_bounds() {
        // (section yaml prefix, key, just below, lowest ok, highest ok, just above)
        let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
            ("server", "workers", "0", "1", "64", "65"),
            ("server", "max_frame_bytes", "63", "64", "1048576", "1048577"),
            ("server", "outbound_queue", "0", "1", "65536", "65537"),
            ("server", "join_timeout_ms", "99", "100", "600000", "600001"),
            ("server", "max_chat_chars", "0", "1", "10000", "10001"),
            ("server", "finished_game_ttl_secs", "0", "1", "604800", "604801"),
            ("server", "rate_limit_burst", "0", "1", "100000", "100001"),
            ("server", "abandoned_game_secs", "0", "1", "86400", "86401"),
            ("server", "body_timeout_ms", "99", "100", "600000", "600001"),
            ("server", "max_connections", "15", "16", "1000000", "1000001"),
            ("server", "lobby_idle_timeout_ms", "999", "1000", "86400000", "86400001"),
            ("cluster", "lease_ms", "299", "300", "60000", "60001"),
            ("cluster", "session_ttl_secs", "59", "60", "2592000", "2592001"),
            ("supervision.default", "multiplier", "0.99", "1.0", "10.0", "10.01"),
            ("supervision.default", "jitter", "-0.01", "0.0", "1.0", "1.01"),
            ("supervision.default", "max_restarts", "0", "1", "1000", "1001"),
            ("supervision.default", "within_secs", "0", "1", "86400", "86401"),
            ("supervision.default", "hang_timeout_ms", "49", "50", "600000", "600001"),
            ("supervision", "watchdog_interval_ms", "9", "10", "60000", "60001"),
            ("ai", "search_depth", "0", "1", "12", "13"),
            ("ai", "max_nodes", "999", "1000", "100000000", "100000001"),
        ];
        for (section, key, below, low, high, above) in cases {
            let yaml = |v: &str| {
                let mut out = String::new();
                for (depth, part) in section.split('.').enumerate() {
                    out.push_str(&format!("{}{part}:\n", "  ".repeat(depth)));
                }
                let depth = section.split('.').count();
                out.push_str(&format!("{}{key}: {v}\n", "  ".repeat(depth)));
                out
            };
            let path = format!("{section}.{key}");
            ok(&yaml(low));
            ok(&yaml(high));
            only_error_at(&yaml(below), &path);
            let m = only_error_at(&yaml(above), &path);
            assert!(m.contains(low) || m.contains(&format!("{low}.0")), "{path}: {m}");
        }
        // heartbeat_interval_ms: its upper bound needs a longer client_timeout_ms.
        ok("server:\n  heartbeat_interval_ms: 100\n");
        ok("server:\n  heartbeat_interval_ms: 600000\n  client_timeout_ms: 3600000\n");
        only_error_at("server:\n  heartbeat_interval_ms: 99\n", "server.heartbeat_interval_ms");
        only_error_at(
            "server:\n  heartbeat_interval_ms: 600001\n  client_timeout_ms: 3600000\n",
            "server.heartbeat_interval_ms",
        );
        // Upper-bound-only and zero-allowed fields.
        only_error_at("server:\n  game_arbiters: 257\n", "server.game_arbiters");
        only_error_at("server:\n  tcp_user_timeout_ms: 3600001\n", "server.tcp_user_timeout_ms");
        only_error_at("server:\n  shutdown_grace_ms: 600001\n", "server.shutdown_grace_ms");
        only_error_at("ai:\n  think_delay_ms: 10001\n", "ai.think_delay_ms");
        only_error_at(
            "supervision:\n  default:\n    hold_messages_max_ms: 60001\n",
            "supervision.default.hold_messages_max_ms",
        );
        only_error_at("supervision:\n  default:\n    max_delay_ms: 3600001\n", "supervision.default.max_delay_ms");
        only_error_at("server:\n  client_timeout_ms: 3600001\n", "server.client_timeout_ms");
        only_error_at("server:\n  workers: 99999999999999999999999\n", "server.workers");
        ok("server:\n  game_arbiters: 0\n  tcp_user_timeout_ms: 0\n  shutdown_grace_ms: 0\n");
    }

    #[test]
    fn bad_enum() {
        let m = only_error_at("supervision:\n  default:\n    strategy: linear\n", "supervision.default.strategy");
        assert!(m.contains("immediate, delayed, exponential") && m.contains("linear"), "{m}");
        only_error_at(
            "supervision:\n  kinds:\n    connect4:\n      strategy: Exponential\n",
            "supervision.kinds.connect4.strategy",
        );
    }

    #[test]
    fn max_delay_below_initial_delay() {
        let m = only_error_at(
            "supervision:\n  default:\n    initial_delay_ms: 600\n    max_delay_ms: 500\n",
            "supervision.default.max_delay_ms",
        );
        assert!(m.contains("initial_delay_ms (600)"), "{m}");
        // Only after merging with the default (max_delay_ms 5000) is the kind wrong.
        let m = only_error_at(
            "supervision:\n  kinds:\n    connect4:\n      initial_delay_ms: 6000\n",
            "supervision.kinds.connect4",
        );
        assert!(m.contains("merging") && m.contains("5000"), "{m}");
    }

    #[test]
    fn client_timeout_not_above_heartbeat() {
        let m = only_error_at(
            "server:\n  heartbeat_interval_ms: 2000\n  client_timeout_ms: 2000\n",
            "server.client_timeout_ms",
        );
        assert!(m.contains("greater than heartbeat_interval_ms (2000)"), "{m}");
        only_error_at("server:\n  heartbeat_interval_ms: 20000\n", "server.client_timeout_ms");
        ok("server:\n  heartbeat_interval_ms: 2000\n  client_timeout_ms: 2001\n");
    }

    #[test]
    fn bad_bind() {
        let m = only_error_at("server:\n  bind: localhost:8080\n", "server.bind");
        assert!(m.contains("127.0.0.1:8080"), "{m}");
        only_error_at("server:\n  bind: 8080\n", "server.bind");
        only_error_at("server:\n  bind: \"127.0.0.1\"\n", "server.bind");
    }

    #[test]
    fn admin_token_in_yaml_is_rejected() {
        let m = only_error_at("admin_token: hunter2\n", "admin_token");
        assert!(m.contains("RAMPART_ADMIN_TOKEN") && m.contains("environment"), "{m}");
        assert!(!m.contains("hunter2"));
        only_error_at("server:\n  admin_token: hunter2\n", "server.admin_token");
        only_error_at(
            "supervision:\n  kinds:\n    connect4:\n      admin_token: x\n",
            "supervision.kinds.connect4.admin_token",
        );
    }

    #[test]
    fn yaml_syntax_error_is_one_problem() {
        let m = only_error_at("server:\n  workers: [1,\n", "<yaml>");
        assert!(m.contains("line"), "{m}");
        let m = only_error_at("server:\n  workers: 1\n  workers: 2\n", "<yaml>");
        assert!(m.contains("duplicate"), "{m}");
    }

    #[test]
    fn wrong_shapes() {
        only_error_at("- 1\n- 2\n", "<yaml>");
        only_error_at("server: 5\n", "server");
        only_error_at("supervision:\n  kinds: [a]\n", "supervision.kinds");
        only_error_at("supervision:\n  kinds:\n    connect4: 3\n", "supervision.kinds.connect4");
        let m = only_error_at("supervision:\n  kinds:\n    Connect-4: {}\n", "supervision.kinds.Connect-4");
        assert!(m.contains("[a-z0-9_]+"), "{m}");
    }

    #[test]
    fn all_problems_are_reported() {
        let yaml = "\
bogus: 1
server:
  workers: 0
  bind: nowhere
  heartbeat_interval_ms: 1000
  client_timeout_ms: 500
  extra: true
supervision:
  default:
    strategy: sometimes
    jitter: 2
  kinds:
    connect4:
      max_restarts: \"many\"
ai:
  search_depth: 99
  admin_token: x
";
        let e = errs(yaml);
        let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "bogus",
            "server.workers",
            "server.bind",
            "server.client_timeout_ms",
            "server.extra",
            "supervision.default.strategy",
            "supervision.default.jitter",
            "supervision.kinds.connect4.max_restarts",
            "ai.search_depth",
            "ai.admin_token",
        ] {
            assert!(paths.contains(&p), "missing {p} in:\n{e}");
        }
        assert_eq!(e.errors.len(), 10, "{e}");
        // Display: one problem per line.
        let shown = e.to_string();
        assert_eq!(shown.lines().count(), 10);
        assert!(shown.lines().any(|l| l.starts_with("server.workers: expected")), "{shown}");
    }

    #[test]
    fn env_bind() {
        let c = Config::from_yaml_str("", &env(&[("RAMPART_BIND", "0.0.0.0:9000")])).expect("ok");
        assert_eq!(c.server.bind, SocketAddr::from(([0, 0, 0, 0], 9000)));
        // RAMPART_BIND wins over the file and over RAMPART__SERVER__BIND.
        let c = Config::from_yaml_str(
            "server:\n  bind: 127.0.0.1:1\n",
            &env(&[("RAMPART_BIND", "0.0.0.0:9000"), ("RAMPART__SERVER__BIND", "0.0.0.0:7")]),
        )
        .expect("ok");
        assert_eq!(c.server.bind.port(), 9000);
        let e = errs_env("", &[("RAMPART_BIND", "nope")]);
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].path, "server.bind");
        assert!(e.errors[0].message.contains("env RAMPART_BIND"), "{e}");
    }

    #[test]
    fn env_admin_token_is_secret() {
        let c = Config::from_yaml_str("", &env(&[("RAMPART_ADMIN_TOKEN", "s3cr3t-token")])).expect("ok");
        let token = c.secrets.admin_token.as_ref().expect("token set");
        assert_eq!(token.expose(), "s3cr3t-token");
        assert_eq!(token.to_string(), "***");
        let debug = format!("{c:?} {c:#?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("***"));
        let c = Config::from_yaml_str("", &env(&[("RAMPART_ADMIN_TOKEN", "")])).expect("ok");
        assert_eq!(c.secrets.admin_token, None);
        assert_eq!(ok("").secrets.admin_token, None);
    }

    #[test]
    fn env_path_override() {
        let vars = env(&[("RAMPART__SUPERVISION__DEFAULT__MAX_RESTARTS", "3")]);
        let c = Config::from_yaml_str("supervision:\n  default:\n    max_restarts: 9\n", &vars).expect("ok");
        assert_eq!(c.supervision.default.max_restarts, 3);
        // Case-insensitive, YAML scalars.
        let c = Config::from_yaml_str(
            "",
            &env(&[
                ("rampart__server__bind", "0.0.0.0:9000"),
                ("Rampart__Supervision__Default__Multiplier", "1.5"),
                ("RAMPART__SUPERVISION__DEFAULT__STRATEGY", "immediate"),
            ]),
        )
        .expect("ok");
        assert_eq!(c.server.bind.port(), 9000);
        assert_eq!(c.supervision.default.multiplier, 1.5);
        assert_eq!(c.supervision.default.strategy, RestartStrategy::Immediate);
    }

    #[test]
    fn env_per_kind_override() {
        let vars = env(&[("RAMPART__SUPERVISION__KINDS__CONNECT4__MAX_RESTARTS", "2")]);
        let c = Config::from_yaml_str("supervision:\n  kinds:\n    connect4:\n      strategy: delayed\n", &vars)
            .expect("ok");
        let p = c.supervision.policy_for("connect4");
        assert_eq!(p.max_restarts, 2);
        assert_eq!(p.strategy, RestartStrategy::Delayed);
        assert_eq!(c.supervision.policy_for("chess"), RestartPolicyConfig::default());
        // The kind need not be in the file; names with single underscores work.
        let vars = env(&[("RAMPART__SUPERVISION__KINDS__TIC_TAC_TOE__MAX_RESTARTS", "2")]);
        let c = Config::from_yaml_str("", &vars).expect("ok");
        assert_eq!(c.supervision.policy_for("tic_tac_toe").max_restarts, 2);
    }

    #[test]
    fn env_unknown_path() {
        let e = errs_env("", &[("RAMPART__FOO__BAR", "1")]);
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].path, "env RAMPART__FOO__BAR");
        assert_eq!(e.errors[0].message, "unknown key foo.bar");
        let e = errs_env(
            "",
            &[
                ("RAMPART__SERVER__WROKERS", "1"),
                ("RAMPART__SUPERVISION__KINDS__CONNECT4__BOGUS", "1"),
                ("RAMPART__SERVER", "1"),
                ("RAMPART__SERVER__ADMIN_TOKEN", "x"),
            ],
        );
        let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "env RAMPART__SERVER__WROKERS",
                "env RAMPART__SUPERVISION__KINDS__CONNECT4__BOGUS",
                "env RAMPART__SERVER",
                "env RAMPART__SERVER__ADMIN_TOKEN",
            ],
            "{e}"
        );
        assert!(e.errors[3].message.contains("RAMPART_ADMIN_TOKEN"), "{e}");
    }

    #[test]
    fn env_wrong_type() {
        let e = errs_env("", &[("RAMPART__SERVER__WORKERS", "lots")]);
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].path, "server.workers");
        assert!(e.errors[0].message.contains("env RAMPART__SERVER__WORKERS"), "{e}");
        let e = errs_env("", &[("RAMPART__SUPERVISION__KINDS__CONNECT4__MAX_RESTARTS", "0")]);
        assert_eq!(e.errors[0].path, "supervision.kinds.connect4.max_restarts", "{e}");
    }

    #[test]
    fn other_env_vars_are_ignored() {
        let c = Config::from_yaml_str("", &env(&[("PATH", "/bin"), ("RAMPART_LOG", "debug"), ("XRAMPART__A", "1")]))
            .expect("ok");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn per_kind_merge() {
        let c = ok("supervision:\n  default:\n    max_restarts: 8\n    within_secs: 30\n  kinds:\n    connect4:\n      max_restarts: 2\n      jitter: 0\n    chess:\n");
        let p = c.supervision.policy_for("connect4");
        assert_eq!(p.max_restarts, 2);
        assert_eq!(p.jitter, 0.0);
        assert_eq!(p.within_secs, 30);
        assert_eq!(p.strategy, RestartStrategy::Exponential);
        assert_eq!(c.supervision.kinds["chess"], PartialRestartPolicy::default());
        assert_eq!(c.supervision.policy_for("chess"), c.supervision.default);
        assert_eq!(c.supervision.policy_for("unknown").max_restarts, 8);
    }

    #[test]
    fn load_reads_file_and_reports_unreadable_path() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("server_config.yaml");
        // The process environment may hold RAMPART vars; compare only the file part.
        if std::env::vars().all(|(k, _)| !k.to_ascii_uppercase().starts_with("RAMPART")) {
            assert_eq!(Config::load(&path).expect("loads"), Config::default());
            assert_eq!(Config::from_env_only().expect("defaults"), Config::default());
        }
        let missing = Path::new("/nonexistent/rampart.yaml");
        let e = Config::load(missing).expect_err("missing file");
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].path, "/nonexistent/rampart.yaml");
        assert!(e.errors[0].message.contains("cannot read"), "{e}");
    }
    #[test]
    fn breakers_accept_the_plan_schema_and_our_keys() {
        let c = ok("circuit_breakers:\n  enabled: false\n  default_failure_threshold: 7\n  default_timeout: 12\n  database:\n    failure_threshold: 4\n    operations: [save_player]\n  file_system:\n    timeout: 2.5\n    slow_call_ms: 300\n    failure_rate_threshold_pct: 50\n");
        let cb = &c.circuit_breakers;
        assert!(!cb.enabled);
        assert_eq!(cb.breakers["database"].failure_threshold, 4);
        assert_eq!(cb.breakers["database"].timeout_secs, 12.0, "missing keys come from the section defaults");
        assert_eq!(cb.breakers["database"].operations, vec!["save_player".to_owned()]);
        assert_eq!(cb.breakers["file_system"].failure_threshold, 7);
        assert_eq!(cb.breakers["file_system"].timeout_secs, 2.5);
        assert_eq!(cb.breakers["file_system"].slow_call_ms, Some(300));
        assert_eq!(cb.breakers["file_system"].failure_rate_threshold_pct, Some(50.0));
        for name in BUILT_IN_BREAKERS {
            assert!(cb.breakers.contains_key(name), "{name} always exists");
        }
        assert_eq!(cb.breakers["messaging"], CircuitBreakersConfig::default().breakers["messaging"]);
    }

    #[test]
    fn breakers_reject_every_bad_value_with_its_path() {
        let e = errs("circuit_breakers:\n  enabled: maybe\n  default_failure_threshold: 0\n  default_timeout: 0\n  Bad-Name: {}\n  llm:\n    failure_threshold: 0\n    timeout: 5\n    timeout_max: 1\n    timeout_multiplier: 20\n    jitter: 2\n    failure_rate_threshold_pct: 0\n    failure_rate_window_calls: 5\n    failure_rate_min_calls: 9\n    slow_call_ms: 0\n    call_timeout_ms: 0\n    half_open_max_probes: 0\n    half_open_successes: 101\n    operations: [\"\"]\n    surprise: 1\n  database: 3\n");
        let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
        for p in [
            "circuit_breakers.enabled",
            "circuit_breakers.default_failure_threshold",
            "circuit_breakers.default_timeout",
            "circuit_breakers.Bad-Name",
            "circuit_breakers.llm.failure_threshold",
            "circuit_breakers.llm.timeout_max",
            "circuit_breakers.llm.timeout_multiplier",
            "circuit_breakers.llm.jitter",
            "circuit_breakers.llm.failure_rate_threshold_pct",
            "circuit_breakers.llm.failure_rate_min_calls",
            "circuit_breakers.llm.slow_call_ms",
            "circuit_breakers.llm.call_timeout_ms",
            "circuit_breakers.llm.half_open_max_probes",
            "circuit_breakers.llm.half_open_successes",
            "circuit_breakers.llm.operations",
            "circuit_breakers.llm.surprise",
            "circuit_breakers.database",
        ] {
            assert!(paths.contains(&p), "{p} missing from:\n{e}");
        }
        assert_eq!(e.errors.len(), 17, "{e}");
    }

    #[test]
    fn health_admission_storage_and_redis_sections_are_checked() {
        let c = ok("health:\n  interval_ms: 200\n  max_memory_mb: 512\nadmission:\n  max_games: 3\n  rate_per_sec: 0.5\n  burst: 2\nstorage:\n  backend: redis\nredis:\n  url: redis://10.0.0.1:6380/2\n");
        assert_eq!((c.health.interval_ms, c.health.max_memory_mb), (200, 512));
        assert_eq!((c.admission.max_games, c.admission.burst), (3, 2));
        assert_eq!(c.storage.backend, StorageBackend::Redis);
        assert_eq!(c.redis.url, "redis://10.0.0.1:6380/2");
        let e = errs("health:\n  interval_ms: 10\n  max_memory_used_pct: 101\n  degraded_ratio: 0\n  exit_ratio: 0.2\n  max_lag_ms: -1\nadmission:\n  max_games: 0\n  rate_per_sec: 0\n  burst: 0\n  admit_per_sec: 0\n  ticket_ttl_secs: 1\n  max_waitlist: 0\nstorage:\n  backend: disk\nredis:\n  url: \"redis://:hunter2@host:6379\"\n  key_prefix: \"a b\"\n  command_timeout_ms: 0\n  reconnect_max_delay_ms: 0\n");
        let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
        for p in [
            "health.interval_ms",
            "health.max_memory_used_pct",
            "health.degraded_ratio",
            "health.exit_ratio",
            "health.max_lag_ms",
            "admission.max_games",
            "admission.rate_per_sec",
            "admission.burst",
            "admission.admit_per_sec",
            "admission.ticket_ttl_secs",
            "admission.max_waitlist",
            "storage.backend",
            "redis.url",
            "redis.key_prefix",
            "redis.command_timeout_ms",
            "redis.reconnect_max_delay_ms",
        ] {
            assert!(paths.contains(&p), "{p} missing from:\n{e}");
        }
        assert_eq!(e.errors.len(), 16, "{e}");
        assert!(!e.to_string().contains("hunter2"), "a password in the file is never echoed: {e}");
        assert!(errs("redis:\n  url: http://x\n").to_string().contains("redis://"));
    }

    #[test]
    fn llm_section_is_read_and_checked() {
        let c = ok("llm:\n  base_url: http://127.0.0.1:8089\n  model: m\n  timeout_ms: 500\n  canned_lines: [hi]\n");
        assert_eq!(c.llm.base_url, "http://127.0.0.1:8089");
        assert_eq!(c.llm.canned_lines, vec!["hi".to_owned()]);
        let e = errs("llm:\n  base_url: ftp://x\n  model: \"\"\n  timeout_ms: 5\n  max_tokens: 0\n  temperature: 3\n  canned_lines: []\n  comment_probability: 2\n  api_key: sk-123\n");
        let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
        for p in [
            "llm.base_url",
            "llm.model",
            "llm.timeout_ms",
            "llm.max_tokens",
            "llm.temperature",
            "llm.comment_probability",
            "llm.api_key",
        ] {
            assert!(paths.contains(&p), "{p} missing from:\n{e}");
        }
        assert!(!e.to_string().contains("sk-123"), "a secret is never echoed");
        assert_eq!(ok("llm:\n  base_url: https://api.example.com\n").llm.base_url, "https://api.example.com");
        let e = errs("llm:\n  base_url: https://user:sk-in-url@api.example.com\n");
        assert!(e.to_string().contains("RAMPART_LLM_API_KEY") && !e.to_string().contains("sk-in-url"), "{e}");
        assert!(errs("llm:\n  base_url: ftp://x\n").to_string().contains("https://"));
    }

    #[test]
    fn llm_key_and_breaker_overrides_come_from_the_environment() {
        let c = Config::from_yaml_str(
            "",
            &env(&[
                ("RAMPART_LLM_API_KEY", "sk-secret"),
                ("RAMPART__CIRCUIT_BREAKERS__LLM__FAILURE_THRESHOLD", "9"),
                ("RAMPART__CIRCUIT_BREAKERS__ENABLED", "false"),
                ("RAMPART__LLM__BASE_URL", "http://127.0.0.1:9"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.secrets.llm_api_key.as_ref().map(Secret::expose), Some("sk-secret"));
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert_eq!(c.circuit_breakers.breakers["llm"].failure_threshold, 9);
        assert!(!c.circuit_breakers.enabled);
        assert_eq!(c.llm.base_url, "http://127.0.0.1:9");
    }
}
