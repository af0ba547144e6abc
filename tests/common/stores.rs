//! The storage contract's harness: a test body run against the embedded stores and then
//! against a private `redis-server` (`tests/stores.rs`, `tests/hostile_store.rs`).
#![allow(dead_code, missing_docs)]

use std::time::Duration;

use rampart::ids::InstanceId;
use rampart::store::redis::directory::ReplicaAcks;
use rampart::store::redis::{RedisConn, RedisSettings};
use rampart::store::Stores;

use super::redis_server::RedisServer;

/// Runs `body` against the embedded stores and against a private Redis.
pub async fn both<F, Fut>(body: F)
where
    F: Fn(Stores) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    both_with_redis(|stores, _| body(stores)).await;
}

/// [`both`], the body also given the private Redis's address (`host:port`; `None` for the
/// embedded stores), for a test that must act on Redis beside the stores. Keys are under
/// the prefix `t`.
pub async fn both_with_redis<F, Fut>(body: F)
where
    F: Fn(Stores, Option<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    body(Stores::memory(Duration::from_secs(60)), None).await;
    let redis = RedisServer::start();
    let settings = RedisSettings {
        url: redis.url(),
        key_prefix: "t".to_owned(),
        command_timeout: Duration::from_secs(2),
        reconnect_max_delay: Duration::from_millis(100),
    };
    let conn = RedisConn::connect(&settings).await.expect("redis");
    let stores = Stores::redis(conn, Duration::from_secs(60), &me(WRITER), ReplicaAcks::default()).expect("stores");
    body(stores, Some(format!("127.0.0.1:{}", redis.port()))).await;
}

/// The instance whose snapshot writes the Redis stores of [`both_with_redis`] make (the
/// fence checks the writer against the game's lease holder).
pub const WRITER: &str = "a";

/// An instance id.
pub fn me(name: &str) -> InstanceId {
    InstanceId::parse(name).expect("id")
}

/// A Connect Four snapshot at its start, with no seats, of `version` under `epoch`.
pub fn snapshot(id: &rampart::ids::GameId, version: u64, epoch: u64) -> rampart::store::snapshot::Snapshot {
    rampart::store::snapshot::Snapshot {
        game_id: id.clone(),
        board: rampart::game::Board::new(<rampart::game::Connect4 as rampart::game::Rules>::new_game()),
        seats: [None, None],
        created_at: "2026-01-01T00:00:00.000Z".into(),
        abandoned: false,
        restarts: 0,
        failed: false,
        version,
        epoch,
    }
}
