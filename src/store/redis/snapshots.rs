//! Game snapshots in Redis (docs/DESIGN.md D2, D11, D17): one hash per game (`data`,
//! `epoch`, `version`) written by a script that refuses a write whose epoch is older than
//! the game's epoch counter (the fencing token a takeover moves forward), answering who took
//! the newer epochs (the game's tenure: the writer's own instance, after a claim or renewal
//! of its own that ran late, or another one); refuses one of the current epoch that another
//! instance took (a failover lost the writer's claim and handed the same number out again:
//! the token is the epoch and its holder together); refuses one of an epoch the counter has
//! not reached (lost in a failover) so its owner takes a new one; and ignores one whose
//! version is not newer than the stored one from the same owner. Repeating a write is
//! harmless.

use std::time::Duration;

use redis::Script;

use super::directory::{tenure, TENURE_LUA};
use super::{decode, encode, RedisConn};
use crate::ids::{GameId, InstanceId};
use crate::store::snapshot::{Snapshot, SnapshotStore, WriteOutcome};
use crate::store::StoreFuture;

/// KEYS: lease (unused), epoch counter, tenure, snapshot hash. ARGV: data JSON, epoch,
/// version, ttl ms (0: none), writer instance. Answers {outcome, epoch in force, tenure
/// instance (`-`: unknown), tenure since}.
const WRITE: &str = r#"
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local epoch = tonumber(ARGV[2])
local inst, since = tenure()
if epoch < current or (epoch == current and inst and inst ~= ARGV[5]) then
  return {'fenced', tostring(current), inst or '-', tostring(since or 0)}
end
if epoch > current then
  return {'fenced', tostring(current), '-', '0'}
end
local stored = redis.call('HMGET', KEYS[4], 'epoch', 'version')
if stored[1] and tonumber(stored[1]) == epoch and tonumber(stored[2]) >= tonumber(ARGV[3]) then
  return {'stale', tostring(current), '-', '0'}
end
redis.call('HSET', KEYS[4], 'data', ARGV[1], 'epoch', ARGV[2], 'version', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
else
  redis.call('PERSIST', KEYS[4])
end
return {'written', tostring(current), '-', '0'}
"#;

/// Snapshots in Redis, written by one instance.
pub struct RedisSnapshots {
    conn: RedisConn,
    me: InstanceId,
    write: Script,
}

impl RedisSnapshots {
    /// Snapshots on `conn`, written by instance `me` (the holder the fence checks).
    pub fn new(conn: RedisConn, me: InstanceId) -> Self {
        RedisSnapshots { conn, me, write: Script::new(&format!("{TENURE_LUA}{WRITE}")) }
    }
}

impl SnapshotStore for RedisSnapshots {
    fn write<'a>(&'a self, snapshot: &'a Snapshot, ttl: Option<Duration>) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            let id = &snapshot.game_id;
            let keys = ["lease", "epoch", "tenure", "snap"].map(|suffix| self.conn.game_key(id, suffix));
            let keys = keys.each_ref().map(String::as_str);
            let data = encode("snapshot write", snapshot)?;
            let ttl_ms = ttl.map_or(0, |t| t.as_millis().max(1)).to_string();
            let epoch = snapshot.epoch.to_string();
            let args = [data.as_str(), &epoch, &snapshot.version.to_string(), &ttl_ms, self.me.as_str()];
            let (outcome, current, instance, since): (String, String, String, String) =
                self.conn.eval("snapshot write", &self.write, &keys, &args).await?;
            Ok(match outcome.as_str() {
                "fenced" => WriteOutcome::Fenced {
                    epoch: current.parse().unwrap_or(u64::MAX),
                    tenure: tenure(&instance, &since),
                },
                "stale" => WriteOutcome::Stale,
                _ => WriteOutcome::Written,
            })
        })
    }

    fn read<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, Option<Snapshot>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.conn.game_key(id, "snap")).arg("data");
            let data: Option<String> = self.conn.query("snapshot read", &cmd).await?;
            data.map(|d| decode("snapshot read", &d)).transpose()
        })
    }

    fn remove<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.conn.game_key(id, "snap"));
            let _: i64 = self.conn.query("snapshot remove", &cmd).await?;
            Ok(())
        })
    }
}
