//! The services' sections: `storage:` (which backend), `redis:`, `cluster:` (game ownership
//! across instances) and `llm:` (the endpoint the AI player chats through).

use garde::Validate;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

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

/// When a turn-based game's change is shown to its players (docs/DESIGN.md D18).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `durable` with the `redis` backend, `write_behind` with `memory` (the default).
    #[default]
    Auto,
    /// Only once its snapshot is written, and acknowledged by `redis.min_replicas_acked`
    /// replicas: a move a player was shown survives the death of its instance and a
    /// failover of Redis.
    Durable,
    /// At once, the snapshot written behind: a move or two a player was shown may be lost
    /// when the instance or the store dies. For a single instance (the embedded store dies
    /// with the process anyway).
    WriteBehind,
}

/// `storage:` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `memory` or `redis`.
    pub backend: StorageBackend,
    /// `auto`, `durable` or `write_behind`: when a move is shown (docs/DESIGN.md D18).
    pub durability: Durability,
}

impl StorageConfig {
    /// Whether a turn-based game shows a change only once its snapshot is durable.
    pub fn durable_before_shown(&self) -> bool {
        match self.durability {
            Durability::Auto => self.backend == StorageBackend::Redis,
            Durability::Durable => true,
            Durability::WriteBehind => false,
        }
    }
}

/// `redis:` section. `RAMPART_REDIS_URL` overrides `url`; a password belongs in
/// `RAMPART_REDIS_PASSWORD`, never in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Validate, SmartDefault)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`, without credentials.
    #[garde(length(max = 2048), custom(super::rules::redis_url))]
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
    /// Replicas that must acknowledge (`WAIT`) every lease claim and renewal before it
    /// counts, 0..=10; 0: none (a single node). With replicas, 1 keeps a failover from
    /// handing out an ownership epoch the old primary had granted (docs/DESIGN.md D17).
    #[garde(range(max = 10))]
    pub min_replicas_acked: u32,
    /// How long a claim or renewal waits for those acknowledgements in ms, 10..=10000;
    /// past it the claim or renewal does not count (the game pauses, a creation is refused).
    #[garde(range(min = 10, max = 10_000))]
    #[default = 500]
    pub replica_ack_timeout_ms: u64,
    /// Redis Sentinels (`host:port`, up to 16) that name the primary; empty: none, the
    /// primary is at `url`. When set, every connection asks them for the primary each time
    /// it is made (and checks with `ROLE` that the node is one), so the instances follow a
    /// failover and a switchover; `url`'s password and database still apply to the data
    /// nodes, its address is not used (docs/OPERATIONS.md, "Redis Sentinel").
    #[garde(length(max = 16), inner(length(max = 300), custom(node_address)))]
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the primary under (`sentinel monitor NAME …`),
    /// 1..=64 letters, digits, `_ - .`.
    #[garde(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9_.-]+$"))]
    #[default = "mymaster"]
    pub master_name: String,
    /// Seed nodes of a Redis Cluster (`host:port`, up to 16); empty: not a cluster. When
    /// set, the instances read the cluster's slot map from any of them and talk to every
    /// primary (the client follows `MOVED`, `ASK` and a failover); each game's keys share a
    /// hash tag (one slot), and the relay uses sharded Pub/Sub. `url`'s password still
    /// applies to every node, its address is not used, and its database must be 0. Not with
    /// `sentinels` (docs/OPERATIONS.md, "Redis Cluster").
    #[garde(length(max = 16), inner(length(max = 300), custom(node_address)))]
    pub cluster_nodes: Vec<String>,
}

impl RedisConfig {
    /// One of `sentinels` or `cluster_nodes` as host and port: `host:port`, or `[v6]:port`
    /// for an IPv6 address; no scheme, credentials or path.
    pub fn node_address(text: &str) -> Result<(String, u16), String> {
        let bad = || format!("{text:?} is not host:port");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = bracketed.unwrap_or(host);
        let unfit = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if host.is_empty() || port == 0 || host.contains(unfit) || (host.contains(':') && bracketed.is_none()) {
            return Err(bad());
        }
        Ok((host.to_owned(), port))
    }
}

/// garde rule: one of `redis.sentinels` or `redis.cluster_nodes`.
fn node_address(text: &str, _: &()) -> garde::Result {
    RedisConfig::node_address(text).map(|_| ()).map_err(garde::Error::new)
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
    #[garde(length(max = 2048), custom(super::rules::llm_url))]
    pub base_url: String,
    /// Model name sent in each request.
    #[garde(length(min = 1, max = 200), custom(super::rules::not_blank))]
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
