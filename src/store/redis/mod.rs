//! The Redis backends of every store, and the connection they share. [`RedisConn`] owns a
//! reconnecting connection with a capped backoff (docs/DESIGN.md D10), runs every command
//! under the command timeout, and scrubs the password from every error message. The
//! primary is at `redis.url`, or wherever the Sentinels say (`redis.sentinels`; the one
//! resolver, [`sentinel::Sentinels`], shared by every connection made from the settings:
//! the stores', the dedicated ones, the relay's subscriber), or the data is spread over a
//! Redis Cluster (`redis.cluster_nodes`: redis-rs's cluster client, which reads the slot
//! map from the seed nodes, sends each command to the primary of its key's slot, and
//! follows `MOVED`/`ASK` and a failover by itself). The stores see one [`Connection`]
//! whatever the topology; what differs in a cluster is said where it differs:
//! [`RedisConn::sharded`] (Pub/Sub is sharded: [`RedisConn::publish_cmd`],
//! [`Subscriber`]), [`RedisConn::query_at`] (a command routed by a key it does not name),
//! and a pipeline, which redis-rs sends whole to the node of its first key, so its keyed
//! commands must share one slot (`snapshots.rs` splits a batch by slot; `directory.rs`
//! waits for replicas per write).
//! A connection that failed (dropped, refused, timed out) or reached a node that cannot take
//! writes (`READONLY`, `LOADING`, `MASTERDOWN`) is replaced by a fresh one that connects on
//! the next call, so that call reaches whatever is the primary *now* (the new primary behind
//! HAProxy or a DNS name, or the one the Sentinels name after a failover or a switchover)
//! instead of a failed reconnect's answer.
//! The breakers sit one level up ([`crate::store::Guarded`]): a backend here only talks to
//! Redis.
//!
//! Key layout (`P` is `redis.key_prefix`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P}:…` | | the waitlist (`waitlist.rs`), under one hash tag |
//! | `P:g:{ID}:snap` | hash (`data`, `epoch`, `version`) | game ID's latest snapshot (JSON, with its version and epoch) |
//! | `P:g:{ID}:lease` | string | `INSTANCE EPOCH`, expiring after `cluster.lease_ms` |
//! | `P:g:{ID}:epoch` | string | the game's epoch counter: only grows |
//! | `P:g:{ID}:tenure` | string | `INSTANCE SINCE`: that instance took every epoch from `SINCE` on |
//! | `P:g:{ID}:record` | hash | the game's runtime record (status, summary) |
//! | `P:session:{HASH}` | string | a seat session (JSON), keyed by the token's keyed hash |
//! | `P:instance:ID` | string | an instance's heartbeat, expiring after `cluster.lease_ms` |
//! | `P:lobby` | hash | game id → lobby summary (JSON), the lobby every instance shows |
//! | `P:events` | stream | the supervisor's runtime events, consumer group `lobby` |
//! | channel `P:inbox:ID` | pub/sub | relayed commands and frames for one instance |
//! | channel `P:lobby` | pub/sub | lobby records that changed |
//!
//! Every key of one game shares the hash tag `{ID}`, so a game's script touches one slot
//! of a Redis Cluster; the waitlist's keys share `{P:waitlist}`. Every other key is used
//! by single-key commands only. In a cluster the two channels are sharded (`SPUBLISH`,
//! `SSUBSCRIBE`): each lives on the primary of its own slot.

mod connection;
pub mod directory;
pub mod events;
pub mod sentinel;
pub mod sessions;
pub mod shards;
pub mod snapshots;
mod subscriber;
pub mod waitlist;

pub use connection::{manager_config, Connection};
pub use subscriber::Subscriber;

use self::connection::{fresh, verdict, Clients, Inner, Topology, Verdict};

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, RedisResult, Script, Value};

use self::sentinel::Sentinels;

use crate::ids::GameId;
use crate::store::StoreError;

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://host:port[/db]`, the password already in it (never logged).
    pub url: String,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Each command's timeout.
    pub command_timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_delay: Duration,
}

/// Where the primary is found when it is not at `redis.url`'s address: the Sentinels that
/// monitor it (`redis.sentinels`, `redis.master_name`).
#[derive(Clone, Debug)]
pub struct SentinelSettings {
    /// `host:port` of each Sentinel.
    pub addresses: Vec<String>,
    /// The name they monitor the primary under.
    pub master_name: String,
}

/// Where the data nodes are: at `redis.url`'s address, the primary the Sentinels name, or a
/// Redis Cluster.
#[derive(Clone, Debug, Default)]
pub enum Discovery {
    /// At `redis.url`'s address (a single node, or HAProxy or a DNS name in front).
    #[default]
    Direct,
    /// The primary the Sentinels name (`redis.sentinels`).
    Sentinel(SentinelSettings),
    /// A Redis Cluster whose slot map is read from any of these seed nodes (`host:port`,
    /// `redis.cluster_nodes`).
    Cluster(Vec<String>),
}

/// A shared, reconnecting Redis connection. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct RedisConn {
    link: Arc<RwLock<Link>>,
    topology: Topology,
    settings: RedisSettings,
    /// The password from the URL, scrubbed from every error message.
    secret: Option<String>,
}

/// The connection in use and how many times it was replaced.
struct Link {
    conn: Connection,
    generation: u64,
}

impl RedisConn {
    /// Sets up the connection without touching the network: the first command connects,
    /// so a server can start while Redis is down. Fails only on an invalid URL. Call it
    /// inside a Tokio runtime (the manager spawns its task there).
    pub fn lazy(settings: &RedisSettings) -> Result<RedisConn, StoreError> {
        RedisConn::lazy_with(settings, &Discovery::Direct)
    }

    /// Like [`RedisConn::lazy`], the data nodes found as `discovery` says: through the
    /// Sentinels (each time a connection is made), or from a Redis Cluster's seed nodes.
    /// `settings.url`'s password (and, but in a cluster, its database) apply to every data
    /// node; its address is then not used.
    pub fn lazy_with(settings: &RedisSettings, discovery: &Discovery) -> Result<RedisConn, StoreError> {
        let url = &settings.url;
        let client = redis::Client::open(url.as_str())
            .map_err(|e| StoreError::Backend(format!("invalid Redis URL {}: {:?}", redact_url(url), e.kind())))?;
        let secret = client.get_connection_info().redis_settings().password().map(str::to_owned);
        let topology = match discovery {
            Discovery::Direct => Topology::Direct(client),
            Discovery::Cluster(nodes) => {
                let clients = Clients::new(nodes, client.get_connection_info(), settings)
                    .map_err(|e| StoreError::Backend(scrub(&format!("invalid redis.cluster_nodes: {e}"), &secret)))?;
                Topology::Cluster(Arc::new(clients))
            }
            Discovery::Sentinel(s) => {
                let sentinels = Arc::new(
                    Sentinels::new(
                        &s.addresses,
                        &s.master_name,
                        client.get_connection_info(),
                        settings.command_timeout,
                    )
                    .map_err(|e| StoreError::Backend(format!("invalid redis.sentinels: {e}")))?,
                );
                Sentinels::watch(&sentinels);
                Topology::Sentinel(sentinels)
            }
        };
        RedisConn::with_topology(settings, topology, secret)
    }

    fn with_topology(
        settings: &RedisSettings,
        topology: Topology,
        secret: Option<String>,
    ) -> Result<RedisConn, StoreError> {
        let conn = fresh(&topology, settings).map_err(|e| {
            StoreError::Backend(scrub(
                &format!("could not set up Redis at {}: {e}", redact_url(&settings.url)),
                &secret,
            ))
        })?;
        let link = Arc::new(RwLock::new(Link { conn, generation: 0 }));
        Ok(RedisConn { link, topology, settings: settings.clone(), secret })
    }

    /// Like [`RedisConn::lazy`], then checks that Redis answers.
    pub async fn connect(settings: &RedisSettings) -> Result<RedisConn, StoreError> {
        let conn = RedisConn::lazy(settings)?;
        conn.ping().await.map_err(|e| match e {
            StoreError::Backend(why) => {
                StoreError::Backend(format!("could not reach Redis at {}: {why}", redact_url(&settings.url)))
            }
            other => other,
        })?;
        Ok(conn)
    }

    /// A connection of its own on the same server, whose commands may take up to
    /// `timeout` (for blocking reads, which would hold up every command queued behind
    /// them on a shared connection).
    /// Through Sentinel, it finds the primary with the same resolver.
    pub fn dedicated(&self, timeout: Duration) -> Result<RedisConn, StoreError> {
        let settings = RedisSettings { command_timeout: timeout, ..self.settings.clone() };
        RedisConn::with_topology(&settings, self.topology.clone(), self.secret.clone())
    }

    /// The connection in use (a clone shares it), for pipelines: run the call under
    /// [`RedisConn::timed`] right away, which replaces it when it failed. Through Sentinel,
    /// one made before the Sentinels named another primary is replaced first.
    pub fn manager(&self) -> Connection {
        let stale = {
            let link = self.read_link();
            match &link.conn.0 {
                Inner::Found(found) if found.stale() => Some(link.generation),
                _ => None,
            }
        };
        if let Some(seen) = stale {
            self.renew(seen, "the Sentinels name another primary");
        }
        self.read_link().conn.clone()
    }

    /// Through Sentinel, told each time the Sentinels name a primary (`host:port`): a
    /// connection of one's own to another node is then to be made again; `None` behind one
    /// address.
    pub fn primary_named(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        match &self.topology {
            Topology::Direct(_) | Topology::Cluster(_) => None,
            Topology::Sentinel(sentinels) => Some(sentinels.on_named()),
        }
    }

    /// Whether this is a Redis Cluster: Pub/Sub is then sharded (`SPUBLISH`, `SSUBSCRIBE`),
    /// and a pipeline's keyed commands must share one slot.
    pub fn sharded(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }

    /// The command that publishes `message` on `channel`: `PUBLISH`, or in a Redis Cluster
    /// `SPUBLISH` (to the primary of the channel's slot, heard by that shard's subscribers
    /// only, so Pub/Sub grows with the shards). Either answers how many subscribers heard it.
    pub fn publish_cmd(&self, channel: &str, message: &str) -> Cmd {
        let mut cmd = redis::cmd(if self.sharded() { "SPUBLISH" } else { "PUBLISH" });
        cmd.arg(channel).arg(message);
        cmd
    }

    /// How many subscribers `channel` has: `PUBSUB NUMSUB`, or in a Redis Cluster `PUBSUB
    /// SHARDNUMSUB` on the primary of the channel's slot (where [`Subscriber`] subscribes).
    pub async fn listeners(&self, channel: &str) -> Result<i64, StoreError> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(if self.sharded() { "SHARDNUMSUB" } else { "NUMSUB" }).arg(channel);
        let (_, listeners): (String, i64) = self.query_at("subscribers", &cmd, channel).await?;
        if listeners > 0 || !self.sharded() {
            return Ok(listeners);
        }
        // A subscription on the shard's replica hears the shard's messages too, and is where
        // one lands when the subscriber's slot map still named the old primary as a planned
        // switchover (`CLUSTER FAILOVER`) demoted it; and this client's own map may be the
        // stale one (a `PUBSUB` is never redirected). Either way the node it names counts 0
        // for a live instance: ask the other nodes of the shard, which `ROLE` names (a
        // primary its replicas, a replica its primary).
        let role: Vec<Value> = self.query_at("subscribers", &redis::cmd("ROLE"), channel).await?;
        let text = |v: &Value| redis::from_redis_value::<String>(v.clone()).ok();
        let others: Vec<(String, u16)> = match role.as_slice() {
            [kind, _, Value::Array(replicas), ..] if text(kind).as_deref() == Some("master") => replicas
                .iter()
                .filter_map(|r| {
                    let r: Vec<String> = redis::from_redis_value(r.clone()).ok()?;
                    Some((r.first()?.clone(), r.get(1)?.parse().ok()?))
                })
                .collect(),
            [kind, host, port, ..] if text(kind).as_deref() == Some("slave") => {
                let port = redis::from_redis_value::<u16>(port.clone()).ok();
                text(host).zip(port).into_iter().collect()
            }
            _ => Vec::new(),
        };
        let mut elsewhere = 0;
        for (host, port) in others {
            let route = SingleNodeRoutingInfo::ByAddress { host, port };
            if let Ok((_, n)) = self.query_routed::<(String, i64)>("subscribers", &cmd, route).await {
                elsewhere += n;
            }
        }
        if elsewhere > 0 {
            tracing::debug!(channel, elsewhere, "the channel's subscribers are on another node of its shard");
        }
        Ok(elsewhere)
    }

    /// Runs one command on the node that serves `key` (in a Redis Cluster, the primary of
    /// its slot: for a command the client does not route by a key of its own, such as `PUBSUB
    /// SHARDNUMSUB`); elsewhere as [`RedisConn::query`].
    pub async fn query_at<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
        key: &str,
    ) -> Result<T, StoreError> {
        self.query_routed(op, cmd, SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master))).await
    }

    /// Runs one command on the node `route` names (in a Redis Cluster; elsewhere as
    /// [`RedisConn::query`]).
    async fn query_routed<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
        route: SingleNodeRoutingInfo,
    ) -> Result<T, StoreError> {
        let mut con = self.manager();
        let Inner::Cluster(cluster) = &mut con.0 else { return self.query(op, cmd).await };
        let value = self.timed(op, cluster.route_command(cmd.clone(), RoutingInfo::SingleNode(route))).await?;
        redis::from_redis_value(value).map_err(|e| StoreError::Backend(format!("redis {op}: unexpected answer: {e}")))
    }

    /// How many times the connection was made again (a fresh manager replaced a failed one).
    pub fn reconnects(&self) -> u64 {
        self.read_link().generation
    }

    fn read_link(&self) -> std::sync::RwLockReadGuard<'_, Link> {
        self.link.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the connection with a fresh one, unless it was replaced since `seen` (calls
    /// that failed together on one connection replace it once). The fresh one connects on
    /// its first call (through Sentinel: to the primary they name then); the old one closes
    /// when its last call ends.
    fn renew(&self, seen: u64, why: &str) {
        let mut link = self.link.write().unwrap_or_else(|e| e.into_inner());
        if link.generation != seen {
            return;
        }
        match fresh(&self.topology, &self.settings) {
            Ok(conn) => {
                link.conn = conn;
                link.generation += 1;
                tracing::debug!(generation = link.generation, "the Redis connection is made again: {why}");
            }
            // Only an invalid configuration fails here, and it was valid at start-up.
            Err(e) => tracing::warn!("could not make the Redis connection again: {}", self.scrub(&e.to_string())),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    /// `P:g:{ID}:suffix`: a key of one game, under the game's hash tag.
    pub fn game_key(&self, id: &GameId, suffix: &str) -> String {
        format!("{}:g:{{{}}}:{suffix}", self.settings.key_prefix, id.as_str())
    }

    /// `P:rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.settings.key_prefix)
    }

    /// Checks that Redis answers, within the command timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query("ping", &redis::cmd("PING")).await?;
        Ok(())
    }

    /// Runs one Redis call (made on [`RedisConn::manager`] just before) under the command
    /// timeout and maps its failure. A failure that says the connection is broken, or that
    /// the node cannot take writes, has the connection made again for the next call.
    pub async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let generation = self.reconnects();
        match tokio::time::timeout(self.settings.command_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let text = scrub(&format!("redis {op} failed: {e}"), &self.secret);
                match verdict(&e) {
                    Verdict::Sound => Err(StoreError::Backend(text)),
                    Verdict::Broken => {
                        self.renew(generation, &text);
                        Err(StoreError::Backend(text))
                    }
                    Verdict::NotWritable(code) => {
                        // The client names the code by its category ("read-only"): say it
                        // as Redis did, for the operator who greps the log for it.
                        let text = format!("{code}: {text}");
                        self.renew(generation, &text);
                        Err(StoreError::NotWritable(text))
                    }
                }
            }
            Err(_) => {
                let text = format!("redis {op} timed out after {} ms", self.settings.command_timeout.as_millis());
                // A connection whose peer vanished without a reset (a dead host, a moved
                // DNS name) only ever times out: a fresh one reaches whoever answers now.
                self.renew(generation, &text);
                Err(StoreError::Backend(text))
            }
        }
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, op: &'static str, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut con = self.manager();
        self.timed(op, cmd.query_async(&mut con)).await
    }

    /// Runs `script` with `keys` and `args`.
    pub async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut con = self.manager();
        self.timed(op, invocation.invoke_async(&mut con)).await
    }

    /// `message` with the password scrubbed.
    pub fn scrub(&self, message: &str) -> String {
        scrub(message, &self.secret)
    }

    /// How the server keeps what it holds (`CONFIG GET appendonly` and `save`); an error
    /// where `CONFIG` is disabled or renamed (managed Redis services).
    pub async fn persistence(&self) -> Result<Persistence, StoreError> {
        let get = |name: &str| {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET").arg(name);
            cmd
        };
        let aof: Vec<String> = self.query("config get", &get("appendonly")).await?;
        let save: Vec<String> = self.query("config get", &get("save")).await?;
        let on = |v: &[String]| v.get(1).map(|s| s.trim().to_owned());
        Ok(match (on(&aof).as_deref(), on(&save)) {
            (Some("yes"), _) => Persistence::AppendOnly,
            (_, Some(points)) if !points.is_empty() => Persistence::Snapshots,
            (Some(_), Some(_)) => Persistence::None,
            _ => return Err(StoreError::Backend("redis config get: unexpected answer".to_owned())),
        })
    }
}

/// How a Redis keeps what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// The append-only file.
    AppendOnly,
    /// RDB snapshots only (a crash loses what came after the last one).
    Snapshots,
    /// Nothing on disk: a restart forgets everything.
    None,
}

/// Decodes a JSON value stored in Redis.
pub fn decode<T: serde::de::DeserializeOwned>(op: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("redis {op}: undecodable value: {e}")))
}

/// Encodes a value for Redis.
pub fn encode<T: serde::Serialize>(op: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("redis {op}: could not encode: {e}")))
}

/// `url` with its password (and any `password=`/`pass=` query value) replaced by `***`,
/// for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "<unparsable URL>".to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            // A lone userinfo may be a password (some clients read it so): hide it.
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("pass") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// `message` with every occurrence of `secret` replaced by `***`.
fn scrub(message: &str, secret: &Option<String>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => message.replace(secret.as_str(), "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact_url("redis://:hunter2@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact_url("rediss://user:p%40ss@host"), "rediss://user:***@host");
        assert_eq!(redact_url("redis://hunter2@host/1"), "redis://***@host/1");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(redact_url("not a url hunter2"), "<unparsable URL>");
    }

    #[test]
    fn scrubs_the_secret_from_messages() {
        let secret = Some("hunter2".to_owned());
        assert_eq!(scrub("auth hunter2 refused", &secret), "auth *** refused");
        assert_eq!(scrub("plain", &None), "plain");
    }

    fn settings(url: &str) -> RedisSettings {
        RedisSettings {
            url: url.to_owned(),
            key_prefix: "t".to_owned(),
            command_timeout: Duration::from_millis(300),
            reconnect_max_delay: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_without_leaking_the_password() {
        let started = std::time::Instant::now();
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let result = RedisConn::connect(&settings("redis://:hunter2@127.0.0.1:1/0")).await;
        let Err(StoreError::Backend(message)) = result else { panic!("connect must fail") };
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[test]
    fn an_invalid_url_is_refused() {
        let Err(StoreError::Backend(message)) = RedisConn::lazy(&settings("http://:hunter2@host")) else {
            panic!("must fail")
        };
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[tokio::test]
    async fn a_cluster_publishes_on_sharded_channels_and_a_bad_seed_is_refused() {
        let nodes = vec!["127.0.0.1:1".to_owned(), "[::1]:2".to_owned()];
        let conn = RedisConn::lazy_with(&settings("redis://127.0.0.1:9/0"), &Discovery::Cluster(nodes)).expect("lazy");
        assert!(conn.sharded());
        assert!(conn.primary_named().is_none());
        let packed = String::from_utf8_lossy(&conn.publish_cmd("t:inbox:a", "hi").get_packed_command()).into_owned();
        assert!(packed.contains("SPUBLISH") && packed.contains("t:inbox:a"), "{packed}");
        let single = RedisConn::lazy(&settings("redis://127.0.0.1:9/0")).expect("lazy");
        assert!(!single.sharded());
        let packed = String::from_utf8_lossy(&single.publish_cmd("t:inbox:a", "hi").get_packed_command()).into_owned();
        assert!(packed.contains("PUBLISH") && !packed.contains("SPUBLISH"), "{packed}");
        let bad = RedisConn::lazy_with(
            &settings("redis://:hunter2@127.0.0.1:9/0"),
            &Discovery::Cluster(vec!["redis://a:1".to_owned()]),
        );
        let Err(StoreError::Backend(message)) = bad else { panic!("a bad seed must be refused") };
        assert!(message.contains("redis.cluster_nodes") && !message.contains("hunter2"), "{message}");
    }

    #[tokio::test]
    async fn game_keys_share_the_game_hash_tag() {
        let conn = RedisConn::lazy(&settings("redis://127.0.0.1:1/0")).expect("lazy");
        let id = GameId::parse("abc123").expect("id");
        assert_eq!(conn.game_key(&id, "snap"), "t:g:{abc123}:snap");
        assert_eq!(conn.key("lobby"), "t:lobby");
    }
}
