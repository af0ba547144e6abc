//! A Redis Cluster's shards as slot ranges (`CLUSTER SLOTS`, asked of any node), and the
//! store's breakers per shard: a game's calls go through the breaker of its slot's range,
//! so a shard that fails over opens its own breaker, not the whole store's
//! (docs/DESIGN.md D19). Each is derived from the `database` breaker's settings and named
//! `database:FIRST-LAST`; the ranges are read at start and again every
//! [`SHARDS_REFRESH`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster_routing::{SingleNodeRoutingInfo, Slot};
use redis::Value;

use super::RedisConn;
use crate::breaker::CircuitBreaker;
use crate::ids::GameId;
use crate::store::{ShardGuards, StoreError};

/// How often the slot ranges are read again (a resharding is rare and slow).
pub const SHARDS_REFRESH: Duration = Duration::from_secs(30);
/// How soon a read that failed is tried again (the cluster was not reachable at start).
const SHARDS_RETRY: Duration = Duration::from_secs(2);

/// The slots one primary serves, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot.
    pub first: u16,
    /// The last slot.
    pub last: u16,
}

/// Makes (or finds) the breaker called by the given name.
pub type DeriveBreaker = Arc<dyn Fn(&str) -> Option<CircuitBreaker> + Send + Sync>;

/// One breaker per slot range, derived from `base`.
pub struct ShardBreakers {
    base: String,
    derive: DeriveBreaker,
    map: RwLock<ShardMap>,
}

#[derive(Default)]
struct ShardMap {
    ranges: Vec<SlotRange>,
    breakers: Vec<CircuitBreaker>,
    by_slot: HashMap<Slot, usize>,
}

impl ShardBreakers {
    /// No ranges yet: every call uses the `base` breaker until [`ShardBreakers::set_ranges`].
    pub fn new(base: &str, derive: DeriveBreaker) -> Self {
        ShardBreakers { base: base.to_owned(), derive, map: RwLock::default() }
    }

    /// Uses these ranges from now on; true when they changed.
    pub fn set_ranges(&self, ranges: &[SlotRange]) -> bool {
        if self.map.read().unwrap_or_else(|e| e.into_inner()).ranges == ranges {
            return false;
        }
        let mut map = ShardMap::default();
        for range in ranges {
            let Some(breaker) = (self.derive)(&format!("{}:{}-{}", self.base, range.first, range.last)) else {
                continue;
            };
            let at = map.breakers.len();
            map.breakers.push(breaker);
            map.ranges.push(*range);
            for n in range.first..=range.last {
                if let Some(slot) = Slot::new(n) {
                    map.by_slot.insert(slot, at);
                }
            }
        }
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = map;
        true
    }

    /// Keeps the ranges current: read now, again every [`SHARDS_REFRESH`] (every
    /// [`SHARDS_RETRY`] while the read fails).
    pub async fn follow(self: Arc<Self>, conn: RedisConn) {
        let mut coverage_checked = false;
        loop {
            let wait = match conn.slot_ranges().await {
                Ok(ranges) if !ranges.is_empty() => {
                    if !coverage_checked {
                        coverage_checked = true;
                        warn_on_full_coverage(&conn).await;
                    }
                    if self.set_ranges(&ranges) {
                        let names: Vec<String> = ranges.iter().map(|r| format!("{}-{}", r.first, r.last)).collect();
                        tracing::info!(breaker = %self.base, shards = %names.join(","), "the store's breakers are kept per shard");
                    }
                    SHARDS_REFRESH
                }
                Ok(_) => SHARDS_RETRY,
                Err(e) => {
                    tracing::debug!("could not read the cluster's slot ranges (tried again in 2 s): {e}");
                    SHARDS_RETRY
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Says so when a node answers that it refuses every command while any slot has no primary
/// (`cluster-require-full-coverage yes`, Redis's default): then, during one shard's
/// failover, every shard's calls fail until the replica is promoted (OPERATIONS.md, Redis
/// Cluster). A node that does not answer `CONFIG GET` (a
/// managed Redis may rename it) says nothing.
async fn warn_on_full_coverage(conn: &RedisConn) {
    let cmd = redis::cmd("CONFIG").arg("GET").arg("cluster-require-full-coverage").clone();
    match conn.query_routed::<HashMap<String, String>>("config get", &cmd, SingleNodeRoutingInfo::Random).await {
        Ok(answer) if answer.get("cluster-require-full-coverage").is_some_and(|v| v == "yes") => tracing::warn!(
            "the Redis Cluster runs with cluster-require-full-coverage yes: while one shard fails over, every node \
             refuses every command until its replica is promoted, so every shard's games fail their writes \
             meanwhile; set it to no (OPERATIONS.md, Redis Cluster)"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("could not read cluster-require-full-coverage: {e}"),
    }
}

impl ShardGuards for ShardBreakers {
    fn breaker_for(&self, game: &GameId) -> Option<CircuitBreaker> {
        let slot = Slot::for_key(format!("{{{}}}", game.as_str()));
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.by_slot.get(&slot).map(|at| map.breakers[*at].clone())
    }
}

impl RedisConn {
    /// The slot ranges of the cluster's primaries, in slot order (empty when not a
    /// cluster). A promoted replica serves its old primary's range, so a range names a
    /// shard across failovers; only resharding changes them.
    pub async fn slot_ranges(&self) -> Result<Vec<SlotRange>, StoreError> {
        if !self.sharded() {
            return Ok(Vec::new());
        }
        let answer: Value = self
            .query_routed("cluster slots", redis::cmd("CLUSTER").arg("SLOTS"), SingleNodeRoutingInfo::Random)
            .await?;
        let mut ranges = parse_slots(&answer)
            .ok_or_else(|| StoreError::Backend("redis cluster slots: an answer in an unexpected shape".to_owned()))?;
        ranges.sort_by_key(|r| r.first);
        Ok(ranges)
    }
}

/// `[[start, end, [host, port, id, …], replicas…], …]` → the ranges.
fn parse_slots(answer: &Value) -> Option<Vec<SlotRange>> {
    let Value::Array(entries) = answer else { return None };
    let number = |v: &Value| match v {
        Value::Int(n) => u16::try_from(*n).ok(),
        _ => None,
    };
    entries
        .iter()
        .map(|entry| match entry {
            Value::Array(fields) if fields.len() >= 2 => {
                let (first, last) = (number(&fields[0])?, number(&fields[1])?);
                (first <= last).then_some(SlotRange { first, last })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_game_goes_through_the_breaker_of_its_slots_range() {
        use crate::config::BreakerConfig;
        let derive: DeriveBreaker = Arc::new(|name: &str| Some(CircuitBreaker::new(name, BreakerConfig::default())));
        let shards = ShardBreakers::new("database", derive);
        let game = GameId::parse("abcdef012345").expect("an id");
        assert!(shards.breaker_for(&game).is_none(), "no ranges known yet: the whole store's breaker");
        let (low, high) = (SlotRange { first: 0, last: 8191 }, SlotRange { first: 8192, last: 16383 });
        assert!(shards.set_ranges(&[low, high]));
        assert!(!shards.set_ranges(&[low, high]), "unchanged");
        let slot = Slot::for_key("{abcdef012345}");
        let expected =
            if (0..8192).any(|n| Slot::new(n) == Some(slot)) { "database:0-8191" } else { "database:8192-16383" };
        assert_eq!(shards.breaker_for(&game).expect("a shard").name(), expected);
        // The same key, as the store writes it, is in the same slot.
        assert_eq!(Slot::for_key("rampart:g:{abcdef012345}:snap"), slot);
    }

    #[test]
    fn the_ranges_are_read_from_cluster_slots() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let answer = Value::Array(vec![
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node(7001), node(7004)]),
            Value::Array(vec![Value::Int(0), Value::Int(5460), node(7000)]),
        ]);
        let ranges = parse_slots(&answer).expect("parsed");
        assert_eq!(ranges, vec![SlotRange { first: 5461, last: 10922 }, SlotRange { first: 0, last: 5460 }]);
        assert_eq!(parse_slots(&Value::Array(vec![Value::Array(vec![Value::Int(9), Value::Int(3)])])), None);
        assert_eq!(parse_slots(&Value::Int(1)), None);
    }
}
