//! Configuration (docs/DESIGN.md D9): `server_config.yaml` as typed structs. Each setting is
//! written once: its field, with its default (`#[default = …]`) and its allowed range
//! (`#[garde(…)]`) beside it, and the doc comment that says what it does. [`Config::load`]
//! reads the YAML, applies the environment (`RAMPART__SECTION__KEY=value` for any key, plus
//! `RAMPART_BIND` and `RAMPART_REDIS_URL`), and reports every problem at once with its
//! YAML path; the server refuses to start (exit 64). Secrets come only from the
//! environment ([`Secrets`]); a secret key in the file is an error.
//!
//! Here: [`Config`] and the secrets. The sections, by the part they configure: `server`
//! (with [`Net`], an entry of `server.trusted_proxies`), `supervision`, `games` (`ai`,
//! `realtime`), `breakers` (`circuit_breakers`, [`BreakerConfig`]), `control` (`health`,
//! `lobby`, `admission`) and `services` (`storage`, `redis`, `cluster`, `llm`). The loader:
//! `load` (the steps), `tree` (the YAML before it is typed), `env`, `rules`, `problems`.

mod breakers;
mod control;
mod env;
mod games;
mod load;
mod net;
mod problems;
mod rules;
mod server;
mod services;
mod supervision;
mod tree;

use std::fmt;

use garde::Validate;
use serde::{Deserialize, Serialize};

pub use breakers::{BreakerConfig, CircuitBreakersConfig, FailureRate, BUILT_IN_BREAKERS};
pub use control::{AdmissionConfig, HealthConfig, LobbyConfig};
pub use games::{AiConfig, RealtimeConfig};
pub use net::Net;
pub use problems::{ConfigError, ConfigErrors};
pub use server::ServerConfig;
pub use services::{ClusterConfig, Durability, LlmConfig, RedisConfig, StorageBackend, StorageConfig};
pub use supervision::{
    PartialRestartPolicy, RestartPolicyConfig, RestartStrategy, SupervisionConfig, SystemPolicies,
    SYSTEM_HANG_TIMEOUT_MS,
};

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

#[cfg(test)]
mod tests;
