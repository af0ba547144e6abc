//! The game directory in Redis (docs/DESIGN.md D11): a game's lease is `P:g:{ID}:lease` =
//! `INSTANCE EPOCH` with a time-to-live (`SET … PX`, taken only when absent, inside a
//! script), its epoch counter `P:g:{ID}:epoch` only grows (`INCR` at every takeover), its
//! tenure `P:g:{ID}:tenure` = `INSTANCE SINCE` says who took the recent epochs (set by the
//! same scripts, see [`Tenure`]), and each instance's heartbeat is `P:instance:ID` with a
//! time-to-live.
//!
//! Every script is safe to run late and to repeat: a command the server stopped waiting for
//! (a stalled Redis) still runs when Redis wakes, and the next call must understand what it
//! did. A claim by the holder answers its epoch (no second `INCR`); a renewal that finds a
//! newer epoch its own instance took since answers that epoch instead of "lost".
//!
//! With replicas to wait for (`redis.min_replicas_acked`), one `WAIT` on the lease
//! connection covers every claim and renewal made on it so far ([`GameDirectory::acknowledged`]).
//! In a Redis Cluster the writes of one round land on several primaries, and `WAIT` counts
//! the replicas of the node it runs on only (redis-rs would send a bare `WAIT` to every
//! primary and answer the smallest count, so a shard that lost its replica would hold up
//! every game): there each claim and renewal is one pipeline, the script then `WAIT`, sent
//! whole to the primary of the game's slot (a pipeline the client retries elsewhere is
//! retried whole: the script is safe to repeat), and `acknowledged` has nothing left to do.

use std::time::Duration;

use redis::Script;

use super::RedisConn;
use crate::ids::{GameId, InstanceId};
use crate::store::directory::{Claim, GameDirectory, Lease, Renewal, Tenure};
use crate::store::{StoreError, StoreFuture};

/// Lua shared by the scripts that take epochs or judge them. KEYS[1..3]: lease, epoch
/// counter, tenure. `take(me, ms)` takes the next epoch for `me` with a lease of `ms`;
/// `covers(me, epoch)` says whether `me` took every epoch after `epoch` ([`Tenure::covers`]);
/// `taker()` is the instance that took the current epoch, or `-`.
pub(super) const TENURE_LUA: &str = r#"
local function tenure()
  local t = redis.call('GET', KEYS[3])
  if not t then return nil, nil end
  local inst, since = string.match(t, '^(%S+) (%d+)$')
  return inst, tonumber(since)
end
local function covers(me, epoch)
  local inst, since = tenure()
  return inst == me and since <= tonumber(epoch) + 1
end
local function taker()
  local inst = tenure()
  return inst or '-'
end
local function take(me, ms)
  local ep = redis.call('INCR', KEYS[2])
  if tenure() ~= me then redis.call('SET', KEYS[3], me .. ' ' .. ep) end
  redis.call('SET', KEYS[1], me .. ' ' .. ep, 'PX', ms)
  return ep
end
"#;

/// KEYS: lease, epoch, tenure. ARGV: me, lease ms. Answers {won|held, instance, epoch}.
const CLAIM: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local inst, ep = string.match(v, '^(%S+) (%d+)$')
  if inst == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {'won', inst, ep}
  end
  return {'held', inst, ep}
end
return {'won', ARGV[1], tostring(take(ARGV[1], ARGV[2]))}
"#;

/// KEYS: lease, epoch, tenure. ARGV: me, epoch, lease ms. Answers {renewed, instance,
/// epoch in force} or {lost, instance, epoch}.
const RENEW: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local inst, ep = string.match(v, '^(%S+) (%d+)$')
  if inst == ARGV[1] and (ep == ARGV[2] or (tonumber(ep) > tonumber(ARGV[2]) and covers(ARGV[1], ARGV[2]))) then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {'renewed', inst, ep}
  end
  return {'lost', inst, ep}
end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current > tonumber(ARGV[2]) and not covers(ARGV[1], ARGV[2]) then
  return {'lost', taker(), tostring(current)}
end
if current < tonumber(ARGV[2]) then
  -- The counter is behind the caller's epoch: a failover lost the write that took it.
  -- Take the next epoch above it, so no epoch is handed out twice.
  redis.call('SET', KEYS[2], ARGV[2])
end
return {'renewed', ARGV[1], tostring(take(ARGV[1], ARGV[3]))}
"#;

/// KEYS: lease. ARGV: "me epoch". Deletes the lease only if it is the caller's.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The replicas that must acknowledge every lease claim and renewal
/// (`redis.min_replicas_acked`), and how long to wait for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaAcks {
    /// Replicas; 0: none required.
    pub replicas: u32,
    /// How long `WAIT` waits.
    pub timeout: Duration,
}

/// The directory in Redis.
pub struct RedisDirectory {
    conn: RedisConn,
    /// Where leases are claimed and renewed: `conn`, or with replicas to wait for a
    /// connection of their own, so a `WAIT` (which holds its connection until the replicas
    /// answer) covers exactly the lease writes and holds up no other store call.
    leases: RedisConn,
    acks: ReplicaAcks,
    claim: Script,
    renew: Script,
    release: Script,
}

impl RedisDirectory {
    /// The directory on `conn`, its lease writes acknowledged by `acks.replicas` replicas.
    pub fn new(conn: RedisConn, acks: ReplicaAcks) -> Result<Self, StoreError> {
        let leases = if acks.replicas > 0 {
            conn.dedicated(conn.settings().command_timeout + acks.timeout)?
        } else {
            conn.clone()
        };
        Ok(RedisDirectory {
            conn,
            leases,
            acks,
            claim: Script::new(&format!("{TENURE_LUA}{CLAIM}")),
            renew: Script::new(&format!("{TENURE_LUA}{RENEW}")),
            release: Script::new(RELEASE),
        })
    }

    fn keys(&self, id: &GameId) -> [String; 3] {
        [self.conn.game_key(id, "lease"), self.conn.game_key(id, "epoch"), self.conn.game_key(id, "tenure")]
    }

    /// Whether each lease write waits for its replicas itself (a Redis Cluster with replicas
    /// to wait for) rather than [`GameDirectory::acknowledged`] once for all.
    fn acked_each(&self) -> bool {
        self.acks.replicas > 0 && self.leases.sharded()
    }

    /// Runs a claim or renewal script on the lease connection; in a Redis Cluster with
    /// replicas to wait for, with its own `WAIT` in the same pipeline (to the game's primary).
    async fn lease_write<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        if !self.acked_each() {
            return self.leases.eval(op, script, keys, args).await;
        }
        let wanted = self.acks.replicas;
        let mut pipe = redis::pipe();
        pipe.cmd("EVALSHA").arg(script.get_hash()).arg(keys.len()).arg(keys).arg(args);
        pipe.cmd("WAIT").arg(wanted).arg(self.acks.timeout.as_millis().max(1) as u64);
        let mut con = self.leases.manager();
        let (answer, acked): (redis::Value, u32) = self
            .leases
            .timed(op, async {
                match pipe.query_async::<(redis::Value, u32)>(&mut con).await {
                    // A primary that never ran the script (a promoted replica): load it, again.
                    Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                        script.prepare_invoke().load_async(&mut con).await?;
                        pipe.query_async(&mut con).await
                    }
                    other => other,
                }
            })
            .await?;
        if acked < wanted {
            return Err(StoreError::Backend(format!(
                "redis {op}: {acked} of {wanted} replicas acknowledged within {} ms",
                self.acks.timeout.as_millis()
            )));
        }
        redis::from_redis_value(answer).map_err(|e| StoreError::Backend(format!("redis {op}: unexpected answer: {e}")))
    }
}

fn lease(instance: &str, epoch: &str) -> Result<Lease, StoreError> {
    let instance = InstanceId::parse(instance)
        .ok_or_else(|| StoreError::Backend(format!("redis lease: bad instance id {instance:?}")))?;
    let epoch = epoch.parse().map_err(|_| StoreError::Backend(format!("redis lease: bad epoch {epoch:?}")))?;
    Ok(Lease { instance, epoch })
}

/// A tenure as the scripts answer it: its instance (`-` when unknown) and first epoch.
pub(super) fn tenure(instance: &str, since: &str) -> Option<Tenure> {
    Some(Tenure { instance: InstanceId::parse(instance).filter(|_| instance != "-")?, since: since.parse().ok()? })
}

fn ms(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

impl GameDirectory for RedisDirectory {
    fn claim<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, lease_for: Duration) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let [lease_key, epoch_key, tenure_key] = self.keys(id);
            let keys = [lease_key.as_str(), &epoch_key, &tenure_key];
            let (kind, instance, epoch): (String, String, String) =
                self.lease_write("lease claim", &self.claim, &keys, &[me.as_str(), &ms(lease_for)]).await?;
            let held = lease(&instance, &epoch)?;
            Ok(if kind == "won" { Claim::Won(held) } else { Claim::Held(held) })
        })
    }

    fn renew<'a>(
        &'a self,
        id: &'a GameId,
        me: &'a InstanceId,
        epoch: u64,
        lease_for: Duration,
    ) -> StoreFuture<'a, Renewal> {
        Box::pin(async move {
            let [lease_key, epoch_key, tenure_key] = self.keys(id);
            let keys = [lease_key.as_str(), &epoch_key, &tenure_key];
            let args = [me.as_str(), &epoch.to_string(), &ms(lease_for)];
            let (kind, instance, epoch): (String, String, String) =
                self.lease_write("lease renew", &self.renew, &keys, &args).await?;
            if kind == "renewed" {
                let epoch =
                    epoch.parse().map_err(|_| StoreError::Backend("redis lease renew: bad epoch".to_owned()))?;
                return Ok(Renewal::Renewed(epoch));
            }
            Ok(Renewal::Lost(lease(&instance, &epoch)?))
        })
    }

    fn release<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, epoch: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let [lease_key, ..] = self.keys(id);
            let value = format!("{} {epoch}", me.as_str());
            let _: i64 = self.conn.eval("lease release", &self.release, &[&lease_key], &[&value]).await?;
            Ok(())
        })
    }

    fn owner<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(&self.keys(id)[0]);
            let value: Option<String> = self.conn.query("lease owner", &cmd).await?;
            match value.as_deref().and_then(|v| v.split_once(' ')) {
                Some((instance, epoch)) => Ok(Some(lease(instance, epoch)?)),
                None => Ok(None),
            }
        })
    }

    fn heartbeat<'a>(&'a self, me: &'a InstanceId, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.conn.key(&format!("instance:{}", me.as_str()))).arg(1).arg("PX").arg(ms(ttl));
            let _: String = self.conn.query("instance heartbeat", &cmd).await?;
            Ok(())
        })
    }

    fn alive<'a>(&'a self, instance: &'a InstanceId) -> StoreFuture<'a, bool> {
        // Alive: its heartbeat is live and it listens on its relay inbox. A killed process
        // drops its subscription at once; a paused one keeps it but its heartbeat lapses.
        // Two calls: in a Redis Cluster the heartbeat and the inbox are in two slots.
        Box::pin(async move {
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(self.conn.key(&format!("instance:{}", instance.as_str())));
            let beating: i64 = self.conn.query("instance alive", &cmd).await?;
            if beating != 1 {
                return Ok(false);
            }
            Ok(self.conn.listeners(&self.conn.key(&format!("inbox:{}", instance.as_str()))).await? > 0)
        })
    }

    fn forget<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(&self.keys(id)[..]);
            let _: i64 = self.conn.query("lease forget", &cmd).await?;
            Ok(())
        })
    }

    fn lease_link(&self) -> u64 {
        self.leases.reconnects()
    }

    fn acknowledged_each(&self) -> bool {
        self.acks.replicas == 0 || self.acked_each()
    }

    fn acknowledged(&self, link: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let wanted = self.acks.replicas;
            if wanted == 0 || self.acked_each() {
                return Ok(());
            }
            // `WAIT` counts the replicas that hold this connection's writes: on a connection
            // made again since the lease writes, it would acknowledge none of them.
            let remade = || {
                StoreError::Backend(
                    "redis lease acknowledgement: the lease connection was made again since the writes; they \
                     count once written again"
                        .to_owned(),
                )
            };
            if self.leases.reconnects() != link {
                return Err(remade());
            }
            let mut cmd = redis::cmd("WAIT");
            cmd.arg(wanted).arg(self.acks.timeout.as_millis().max(1).to_string());
            let acked: u32 = self.leases.query("lease acknowledgement", &cmd).await?;
            if self.leases.reconnects() != link {
                return Err(remade());
            }
            if acked < wanted {
                return Err(StoreError::Backend(format!(
                    "redis lease acknowledgement: {acked} of {wanted} replicas acknowledged within {} ms",
                    self.acks.timeout.as_millis()
                )));
            }
            Ok(())
        })
    }
}
