//! The Redis waitlist backend (docs/DESIGN.md D6): the same FIFO line as [`MemoryWaitlist`], kept
//! in Redis so it survives a server restart and is shared by several instances. It holds
//! the Lua scripts that make every operation atomic, on the shared [`RedisConn`].
//!
//! Key layout, all under one hash tag `{prefix}` so a Redis Cluster keeps them in one slot:
//!
//! | key                          | type        | holds                                          |
//! |------------------------------|-------------|------------------------------------------------|
//! | `{prefix}:seq`               | string      | the monotonic sequence (`INCR`)                |
//! | `{prefix}:waiting`           | sorted set  | waiting tickets, scored by their sequence      |
//! | `{prefix}:processing`        | sorted set  | claimed tickets, with the same scores          |
//! | `{prefix}:claimed`           | sorted set  | claimed tickets, scored by claim time (ms, Redis clock) |
//! | `{prefix}:entry:<ticket>`    | string      | the [`WaitEntry`] as JSON, expiring after `ticket_ttl` |
//! | `{prefix}:admitted:<ticket>` | string      | the [`SeatGrant`] as JSON, expiring after `ticket_ttl` |
//!
//! A waiting ticket is *live* while its entry key exists: `touch` pushes the expiry back,
//! and a ticket whose entry key has expired is abandoned: it answers `Unknown` and cannot
//! be touched back to life, and `expire` or `claim` removes it from the sorted set (until
//! then `len` and the positions behind it still count it, as in the embedded line). A
//! claimed entry does not expire while its game is being created; `requeue_processing`
//! gives it a fresh `ticket_ttl` when it puts it back at the front, so a crash does not
//! lose the player.
//!
//! Every call runs under `command_timeout` and fails with [`StoreError::Backend`]; error
//! messages never carry the Redis password or a full ticket.
//!
//! [`MemoryWaitlist`]: crate::store::waitlist::MemoryWaitlist

use std::time::Duration;

use redis::Script;

use super::{RedisConn, RedisSettings};
use crate::ids::Ticket;
use crate::protocol::SeatGrant;
use crate::store::waitlist::{TicketStatus, WaitEntry, WaitlistStore};
use crate::store::{StoreError, StoreFuture};

/// How many abandoned tickets one `claim` script drops before it hands control back to
/// Redis (and is run again), so a long run of expired tickets never blocks the server.
const CLAIM_DROP_BUDGET: u32 = 256;

/// Enqueue, idempotent per ticket. Answers the 1-based position, or 0 while processing.
/// KEYS: waiting, processing, seq, entry. ARGV: ticket, entry JSON, ttl ms.
const ENQUEUE: &str = r#"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('EXISTS', KEYS[4]) == 1 then
    return redis.call('ZRANK', KEYS[1], ARGV[1]) + 1
  end
  redis.call('ZREM', KEYS[1], ARGV[1])
elseif redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
return redis.call('ZRANK', KEYS[1], ARGV[1]) + 1
"#;

/// Where a ticket stands: {kind, detail}. Admitted first, then waiting (live only), then
/// processing. KEYS: waiting, processing, entry, admitted. ARGV: ticket.
const STATUS: &str = r#"
local grant = redis.call('GET', KEYS[4])
if grant then return {'admitted', grant} end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('EXISTS', KEYS[3]) == 1 then
  return {'waiting', redis.call('ZRANK', KEYS[1], ARGV[1]) + 1}
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {'processing', ''} end
return {'unknown', ''}
"#;

/// Keeps a live waiting ticket for another ttl; a processing ticket answers 1 unchanged.
/// KEYS: waiting, processing, entry. ARGV: ticket, ttl ms.
const TOUCH: &str = r#"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 1 end
return 0
"#;

/// Leaves the line: only a live waiting ticket. KEYS: waiting, entry. ARGV: ticket.
const LEAVE: &str = r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
return redis.call('DEL', KEYS[2])
"#;

/// Pops the first live waiting ticket into processing (same score), records when it was
/// claimed (Redis's clock, so every instance agrees), and answers its entry:
/// {'claimed', json} | {'empty', ''} | {'more', ''} (drop budget spent: call again).
/// KEYS: waiting, processing, claimed. ARGV: entry key prefix, drop budget.
const CLAIM: &str = r#"
local budget = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
while true do
  local head = redis.call('ZPOPMIN', KEYS[1])
  if #head == 0 then return {'empty', ''} end
  local key = ARGV[1] .. head[1]
  local data = redis.call('GET', key)
  if data then
    redis.call('ZADD', KEYS[2], head[2], head[1])
    redis.call('ZADD', KEYS[3], now, head[1])
    redis.call('PERSIST', key)
    return {'claimed', data}
  end
  budget = budget - 1
  if budget <= 0 then return {'more', ''} end
end
"#;

/// Ends a ticket's processing and records its grant.
/// KEYS: waiting, processing, entry, admitted, claimed. ARGV: ticket, grant JSON, ttl ms.
const COMPLETE: &str = r#"
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
return 1
"#;

/// Moves every processing ticket claimed at least `older_than` ms ago (by Redis's clock)
/// back to waiting with its original score (so the front, in order) and gives its entry a
/// fresh ttl. Younger claims belong to a live instance creating the game right now: they
/// stay. KEYS: waiting, processing, claimed. ARGV: entry key prefix, ttl ms, older_than ms.
const REQUEUE: &str = r#"
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])
local claimed = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local moved = 0
for i = 1, #claimed, 2 do
  local at = redis.call('ZSCORE', KEYS[3], claimed[i])
  if (not at) or tonumber(at) <= cutoff then
    redis.call('ZADD', KEYS[1], claimed[i + 1], claimed[i])
    redis.call('PEXPIRE', ARGV[1] .. claimed[i], ARGV[2])
    redis.call('ZREM', KEYS[2], claimed[i])
    redis.call('ZREM', KEYS[3], claimed[i])
    moved = moved + 1
  end
end
return moved
"#;

/// Drops waiting tickets whose entry has expired. KEYS: waiting. ARGV: entry key prefix.
const EXPIRE: &str = r#"
local dropped = 0
for _, ticket in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. ticket) == 0 then
    redis.call('ZREM', KEYS[1], ticket)
    dropped = dropped + 1
  end
end
return dropped
"#;

/// The names of the keys under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Keys {
    seq: String,
    waiting: String,
    processing: String,
    claimed: String,
    entry_prefix: String,
    admitted_prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        // A hash tag keeps every key in one cluster slot, as the scripts need.
        let tag =
            if prefix.contains('{') && prefix.contains('}') { prefix.to_owned() } else { format!("{{{prefix}}}") };
        Keys {
            seq: format!("{tag}:seq"),
            waiting: format!("{tag}:waiting"),
            processing: format!("{tag}:processing"),
            claimed: format!("{tag}:claimed"),
            entry_prefix: format!("{tag}:entry:"),
            admitted_prefix: format!("{tag}:admitted:"),
        }
    }

    fn entry(&self, ticket: &Ticket) -> String {
        format!("{}{}", self.entry_prefix, ticket.expose())
    }

    fn admitted(&self, ticket: &Ticket) -> String {
        format!("{}{}", self.admitted_prefix, ticket.expose())
    }
}

struct Scripts {
    enqueue: Script,
    status: Script,
    touch: Script,
    leave: Script,
    claim: Script,
    complete: Script,
    requeue: Script,
    expire: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            enqueue: Script::new(ENQUEUE),
            status: Script::new(STATUS),
            touch: Script::new(TOUCH),
            leave: Script::new(LEAVE),
            claim: Script::new(CLAIM),
            complete: Script::new(COMPLETE),
            requeue: Script::new(REQUEUE),
            expire: Script::new(EXPIRE),
        }
    }
}

/// The waitlist in Redis. Cheap to share behind an `Arc`; several server instances may use
/// the same Redis and prefix at once (each operation is one atomic script).
pub struct RedisWaitlist {
    conn: RedisConn,
    keys: Keys,
    scripts: Scripts,
    ticket_ttl_ms: u64,
}

impl RedisWaitlist {
    /// The waitlist on `conn`, under `conn`'s key prefix; tickets and grants expire after
    /// `ticket_ttl` without a touch.
    pub fn new(conn: RedisConn, ticket_ttl: Duration) -> RedisWaitlist {
        let keys = Keys::new(conn.prefix());
        RedisWaitlist {
            conn,
            keys,
            scripts: Scripts::new(),
            ticket_ttl_ms: u64::try_from(ticket_ttl.as_millis()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// Connects to the Redis at `url` (its own connection) and checks it answers; keys live
    /// under `key_prefix`.
    pub async fn connect(
        url: &str,
        key_prefix: &str,
        ticket_ttl: Duration,
        command_timeout: Duration,
        reconnect_max_delay: Duration,
    ) -> Result<RedisWaitlist, StoreError> {
        let settings = RedisSettings {
            url: url.to_owned(),
            key_prefix: key_prefix.to_owned(),
            command_timeout,
            reconnect_max_delay,
        };
        Ok(RedisWaitlist::new(RedisConn::connect(&settings).await?, ticket_ttl))
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn.ping().await
    }

    async fn eval<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        self.conn.eval(op, script, keys, args).await
    }
}

impl WaitlistStore for RedisWaitlist {
    fn enqueue(&self, entry: WaitEntry) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let json = serde_json::to_string(&entry).map_err(|e| StoreError::Backend(format!("encode entry: {e}")))?;
            let k = &self.keys;
            let entry_key = k.entry(&entry.ticket);
            let ttl = self.ticket_ttl_ms.to_string();
            let keys = [k.waiting.as_str(), &k.processing, &k.seq, &entry_key];
            self.eval("enqueue", &self.scripts.enqueue, &keys, &[entry.ticket.expose(), &json, &ttl]).await
        })
    }

    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus> {
        Box::pin(async move {
            let k = &self.keys;
            let (entry_key, admitted_key) = (k.entry(ticket), k.admitted(ticket));
            let keys = [k.waiting.as_str(), &k.processing, &entry_key, &admitted_key];
            let (kind, detail): (String, String) =
                self.eval("status", &self.scripts.status, &keys, &[ticket.expose()]).await?;
            match kind.as_str() {
                "admitted" => serde_json::from_str(&detail)
                    .map(TicketStatus::Admitted)
                    .map_err(|e| StoreError::Backend(format!("redis status: undecodable grant: {e}"))),
                "waiting" => detail
                    .parse()
                    .map(|position| TicketStatus::Waiting { position })
                    .map_err(|_| StoreError::Backend("redis status: bad position".to_owned())),
                "processing" => Ok(TicketStatus::Processing),
                _ => Ok(TicketStatus::Unknown),
            }
        })
    }

    fn touch<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let k = &self.keys;
            let entry_key = k.entry(ticket);
            let ttl = self.ticket_ttl_ms.to_string();
            let keys = [k.waiting.as_str(), &k.processing, &entry_key];
            let touched: i64 = self.eval("touch", &self.scripts.touch, &keys, &[ticket.expose(), &ttl]).await?;
            Ok(touched == 1)
        })
    }

    fn leave<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let entry_key = self.keys.entry(ticket);
            let keys = [self.keys.waiting.as_str(), &entry_key];
            let left: i64 = self.eval("leave", &self.scripts.leave, &keys, &[ticket.expose()]).await?;
            Ok(left == 1)
        })
    }

    fn claim(&self) -> StoreFuture<'_, Option<WaitEntry>> {
        Box::pin(async move {
            let k = &self.keys;
            let budget = CLAIM_DROP_BUDGET.to_string();
            loop {
                let keys = [k.waiting.as_str(), &k.processing, &k.claimed];
                let (kind, data): (String, String) =
                    self.eval("claim", &self.scripts.claim, &keys, &[&k.entry_prefix, &budget]).await?;
                match kind.as_str() {
                    "claimed" => {
                        return serde_json::from_str(&data)
                            .map(Some)
                            .map_err(|e| StoreError::Backend(format!("redis claim: undecodable entry: {e}")));
                    }
                    "more" => continue,
                    _ => return Ok(None),
                }
            }
        })
    }

    fn complete<'a>(&'a self, ticket: &'a Ticket, grant: &'a SeatGrant) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(grant).map_err(|e| StoreError::Backend(format!("encode grant: {e}")))?;
            let k = &self.keys;
            let (entry_key, admitted_key) = (k.entry(ticket), k.admitted(ticket));
            let ttl = self.ticket_ttl_ms.to_string();
            let keys = [k.waiting.as_str(), &k.processing, &entry_key, &admitted_key, &k.claimed];
            let _: i64 = self.eval("complete", &self.scripts.complete, &keys, &[ticket.expose(), &json, &ttl]).await?;
            Ok(())
        })
    }

    fn requeue_processing(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let k = &self.keys;
            let ttl = self.ticket_ttl_ms.to_string();
            let older = older_than.as_millis().to_string();
            let keys = [k.waiting.as_str(), &k.processing, &k.claimed];
            self.eval("requeue_processing", &self.scripts.requeue, &keys, &[&k.entry_prefix, &ttl, &older]).await
        })
    }

    fn len(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut cmd = redis::cmd("ZCARD");
            cmd.arg(&self.keys.waiting);
            self.conn.query("len", &cmd).await
        })
    }

    fn expire(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let k = &self.keys;
            self.eval("expire", &self.scripts.expire, &[k.waiting.as_str()], &[&k.entry_prefix]).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("rampart:waitlist");
        assert_eq!(keys.waiting, "{rampart:waitlist}:waiting");
        assert_eq!(keys.processing, "{rampart:waitlist}:processing");
        assert_eq!(keys.seq, "{rampart:waitlist}:seq");
        let ticket = Ticket::random();
        assert_eq!(keys.entry(&ticket), format!("{{rampart:waitlist}}:entry:{}", ticket.expose()));
        assert_eq!(keys.admitted(&ticket), format!("{{rampart:waitlist}}:admitted:{}", ticket.expose()));
        assert_eq!(Keys::new("a:{tag}").waiting, "a:{tag}:waiting");
    }
}
