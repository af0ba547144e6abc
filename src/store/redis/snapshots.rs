//! Game snapshots in Redis (docs/DESIGN.md D2, D11, D17): one hash per game (`data`,
//! `epoch`, `version`) written by a script that refuses a write whose epoch is older than
//! the game's epoch counter (the fencing token a takeover moves forward), answering who took
//! the newer epochs (the game's tenure: the writer's own instance, after a claim or renewal
//! of its own that ran late, or another one); refuses one of the current epoch that another
//! instance took (a failover lost the writer's claim and handed the same number out again:
//! the token is the epoch and its holder together); refuses one of an epoch the counter has
//! not reached (lost in a failover) so its owner takes a new one; and ignores one whose
//! version is older than the stored one from the same owner. Repeating a write is harmless
//! (one of the stored version is made again, so that a `WAIT` after it covers it: the first
//! may have reached a primary that died before its replicas had it).
//!
//! A batch ([`SnapshotStore::write_all`]) is one pipeline: a script call per snapshot, then,
//! with replicas to wait for (`redis.min_replicas_acked`), one `WAIT` that covers them all,
//! on a connection of the writes' own so that the `WAIT` holds up no other store call.
//! In a Redis Cluster redis-rs sends a pipeline whole to the primary of its first key's
//! slot (and refuses one whose keys span slots), and `WAIT` counts the replicas of the node
//! it runs on: a batch is split by slot, one such pipeline per slot (its `WAIT` on the node
//! that took its writes), all sent at once. Pipelines for one primary share its connection,
//! and a `WAIT` holds that connection until the replicas answer, so a node with k slots in
//! the batch waits for its replicas k times in a row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster_routing::Slot;
use redis::{Script, Value};

use super::directory::{tenure, ReplicaAcks, TENURE_LUA};
use super::{decode, encode, RedisConn};
use crate::ids::{GameId, InstanceId};
use crate::store::snapshot::{Snapshot, SnapshotStore, WriteOutcome};
use crate::store::{StoreError, StoreFuture};

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
if stored[1] and tonumber(stored[1]) == epoch and tonumber(stored[2]) > tonumber(ARGV[3]) then
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
    /// Where batches are written: `conn`, or with replicas to wait for a connection of
    /// their own (a `WAIT` holds its connection until the replicas answer).
    writes: RedisConn,
    acks: ReplicaAcks,
    me: InstanceId,
    write: Script,
}

impl RedisSnapshots {
    /// Snapshots on `conn`, written by instance `me` (the holder the fence checks), each
    /// batch acknowledged by `acks.replicas` replicas.
    pub fn new(conn: RedisConn, me: InstanceId, acks: ReplicaAcks) -> Result<Self, StoreError> {
        let writes = if acks.replicas > 0 {
            conn.dedicated(conn.settings().command_timeout + acks.timeout)?
        } else {
            conn.clone()
        };
        Ok(RedisSnapshots { conn, writes, acks, me, write: Script::new(&format!("{TENURE_LUA}{WRITE}")) })
    }

    /// The script call writing one snapshot.
    fn call(&self, snapshot: &Snapshot, ttl: Option<Duration>) -> Result<redis::Cmd, StoreError> {
        let id = &snapshot.game_id;
        let data = encode("snapshot write", snapshot)?;
        let ttl_ms = ttl.map_or(0, |t| t.as_millis().max(1));
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.write.get_hash()).arg(4);
        for suffix in ["lease", "epoch", "tenure", "snap"] {
            cmd.arg(self.conn.game_key(id, suffix));
        }
        cmd.arg(data).arg(snapshot.epoch).arg(snapshot.version).arg(ttl_ms as u64).arg(self.me.as_str());
        Ok(cmd)
    }
}

/// One write of a batch: the snapshot and its time-to-live.
type Write = (Arc<Snapshot>, Option<Duration>);

impl RedisSnapshots {
    /// In a Redis Cluster, a batch whose games are in several slots split by slot (each
    /// part with the places of its snapshots in the batch); `None` when it is one pipeline.
    fn by_slot(&self, batch: &[Write]) -> Option<Vec<(Vec<usize>, Vec<Write>)>> {
        if !self.writes.sharded() || batch.len() < 2 {
            return None;
        }
        let mut parts: Vec<(Vec<usize>, Vec<Write>)> = Vec::new();
        let mut part_of: HashMap<Slot, usize> = HashMap::new();
        for (i, write) in batch.iter().enumerate() {
            let slot = Slot::for_key(self.conn.game_key(&write.0.game_id, "snap"));
            let at = *part_of.entry(slot).or_insert_with(|| {
                parts.push((Vec::new(), Vec::new()));
                parts.len() - 1
            });
            parts[at].0.push(i);
            parts[at].1.push(write.clone());
        }
        (parts.len() > 1).then_some(parts)
    }
}

/// One script answer: {outcome, epoch in force, tenure instance, tenure since}.
fn outcome(answer: Value) -> Result<WriteOutcome, StoreError> {
    let (outcome, current, instance, since): (String, String, String, String) = redis::from_redis_value(answer)
        .map_err(|e| StoreError::Backend(format!("redis snapshot write: unexpected answer: {e}")))?;
    Ok(match outcome.as_str() {
        "fenced" => {
            WriteOutcome::Fenced { epoch: current.parse().unwrap_or(u64::MAX), tenure: tenure(&instance, &since) }
        }
        "stale" => WriteOutcome::Stale,
        _ => WriteOutcome::Written,
    })
}

impl SnapshotStore for RedisSnapshots {
    fn write<'a>(&'a self, snapshot: &'a Snapshot, ttl: Option<Duration>) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            let batch = [(Arc::new(snapshot.clone()), ttl)];
            let mut outcomes = self.write_all(&batch).await?;
            outcomes.pop().unwrap_or_else(|| Err(StoreError::Backend("redis snapshot write: no answer".to_owned())))
        })
    }

    fn write_all<'a>(
        &'a self,
        batch: &'a [(Arc<Snapshot>, Option<Duration>)],
    ) -> StoreFuture<'a, Vec<Result<WriteOutcome, StoreError>>> {
        Box::pin(async move {
            if let Some(slots) = self.by_slot(batch) {
                // Each slot's part on its own (its primary, its WAIT): a shard that fails
                // fails only its part's writes. Every part failed: the store failed.
                let written = futures_util::future::join_all(slots.iter().map(|(_, part)| self.write_all(part))).await;
                if let Some(Err(first)) =
                    written.iter().find(|w| w.is_err()).filter(|_| written.iter().all(Result::is_err))
                {
                    return Err(first.clone());
                }
                let mut outcomes: Vec<Option<Result<WriteOutcome, StoreError>>> = batch.iter().map(|_| None).collect();
                for ((at, _), part) in slots.iter().zip(written) {
                    match part {
                        Ok(part) => {
                            for (i, outcome) in at.iter().zip(part) {
                                outcomes[*i] = Some(outcome);
                            }
                        }
                        Err(e) => {
                            for i in at {
                                outcomes[*i] = Some(Err(e.clone()));
                            }
                        }
                    }
                }
                return Ok(outcomes
                    .into_iter()
                    .map(|o| {
                        o.unwrap_or_else(|| {
                            Err(StoreError::Backend("redis snapshot write: an answer is missing".into()))
                        })
                    })
                    .collect());
            }
            let mut pipe = redis::pipe();
            for (snapshot, ttl) in batch {
                pipe.add_command(self.call(snapshot, *ttl)?);
            }
            let wanted = self.acks.replicas;
            if wanted > 0 {
                pipe.cmd("WAIT").arg(wanted).arg(self.acks.timeout.as_millis().max(1) as u64);
            }
            let mut con = self.writes.manager();
            let script = &self.write;
            let mut answers: Vec<Value> = self
                .writes
                .timed("snapshot write", async {
                    match pipe.query_async::<Vec<Value>>(&mut con).await {
                        // A node that never ran the script (a fresh one, a promoted replica):
                        // load it and send the batch again (every write in it is repeatable).
                        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                            script.prepare_invoke().load_async(&mut con).await?;
                            pipe.query_async(&mut con).await
                        }
                        other => other,
                    }
                })
                .await?;
            if wanted > 0 {
                let acked: u32 = answers
                    .pop()
                    .map(redis::from_redis_value)
                    .transpose()
                    .map_err(|e| StoreError::Backend(format!("redis snapshot write: unexpected WAIT answer: {e}")))?
                    .unwrap_or(0);
                if acked < wanted {
                    return Err(StoreError::Backend(format!(
                        "redis snapshot write: {acked} of {wanted} replicas acknowledged within {} ms",
                        self.acks.timeout.as_millis()
                    )));
                }
            }
            if answers.len() != batch.len() {
                return Err(StoreError::Backend(format!(
                    "redis snapshot write: {} answers for {} writes",
                    answers.len(),
                    batch.len()
                )));
            }
            Ok(answers.into_iter().map(outcome).collect())
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
