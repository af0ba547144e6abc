//! TEMPORARY stub, replaced by the real config module.
#![allow(missing_docs)]
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartStrategy { Immediate, Delayed, Exponential }
#[derive(Clone, Debug, PartialEq)]
pub struct RestartPolicyConfig { pub strategy: RestartStrategy, pub initial_delay_ms: u64, pub max_delay_ms: u64, pub multiplier: f64, pub jitter: f64, pub max_restarts: u32, pub within_secs: u64, pub hang_timeout_ms: u64, pub hold_messages_max_ms: u64 }
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisionConfig { pub default: RestartPolicyConfig, pub kinds: BTreeMap<String, ()>, pub watchdog_interval_ms: u64 }
impl SupervisionConfig { pub fn policy_for(&self, _kind: &str) -> RestartPolicyConfig { self.default.clone() } }
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig { pub bind: SocketAddr, pub workers: u32, pub game_arbiters: u32, pub max_frame_bytes: u64, pub outbound_queue: u64, pub heartbeat_interval_ms: u64, pub client_timeout_ms: u64, pub join_timeout_ms: u64, pub tcp_user_timeout_ms: u64, pub max_chat_chars: u64, pub shutdown_grace_ms: u64, pub finished_game_ttl_secs: u64, pub rate_limit_frames_per_sec: u64, pub rate_limit_burst: u64 }
#[derive(Clone, Debug, PartialEq)]
pub struct AiConfig { pub search_depth: u32, pub max_nodes: u64, pub think_delay_ms: u64 }
#[derive(Clone, PartialEq)]
pub struct Secret(String);
impl Secret { pub fn new(s: String) -> Self { Secret(s) } pub fn expose(&self) -> &str { &self.0 } }
impl std::fmt::Debug for Secret { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("***") } }
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Secrets { pub admin_token: Option<Secret> }
#[derive(Clone, Debug, PartialEq)]
pub struct Config { pub server: ServerConfig, pub supervision: SupervisionConfig, pub ai: AiConfig, pub secrets: Secrets }
#[derive(Debug)]
pub struct ConfigError { pub path: String, pub message: String }
#[derive(Debug)]
pub struct ConfigErrors { pub errors: Vec<ConfigError> }
impl std::fmt::Display for ConfigErrors { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { for e in &self.errors { writeln!(f, "{}: {}", e.path, e.message)?; } Ok(()) } }
impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig { bind: "127.0.0.1:8080".parse().expect("addr"), workers: 2, game_arbiters: 0, max_frame_bytes: 4096, outbound_queue: 64, heartbeat_interval_ms: 5000, client_timeout_ms: 15000, join_timeout_ms: 5000, tcp_user_timeout_ms: 30000, max_chat_chars: 280, shutdown_grace_ms: 10000, finished_game_ttl_secs: 600, rate_limit_frames_per_sec: 20, rate_limit_burst: 40 },
            supervision: SupervisionConfig { default: RestartPolicyConfig { strategy: RestartStrategy::Exponential, initial_delay_ms: 100, max_delay_ms: 5000, multiplier: 2.0, jitter: 0.2, max_restarts: 5, within_secs: 60, hang_timeout_ms: 2000, hold_messages_max_ms: 250 }, kinds: BTreeMap::new(), watchdog_interval_ms: 250 },
            ai: AiConfig { search_depth: 7, max_nodes: 200_000, think_delay_ms: 300 },
            secrets: Secrets::default(),
        }
    }
}
impl Config {
    pub fn load(_path: &Path) -> Result<Config, ConfigErrors> { Ok(Config::default()) }
    pub fn from_env_only() -> Result<Config, ConfigErrors> { Ok(Config::default()) }
}
