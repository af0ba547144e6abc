//! The Redis waitlist backend (docs/DESIGN.md D6): the same FIFO line as [`MemoryWaitlist`], kept
//! in Redis so it survives a server restart and is shared by several instances. It holds
//! the Lua scripts that make every operation atomic, on the shared [`RedisConn`].
//!
//! Key layout, all under one hash tag `{prefix}` so a Redis Cluster keeps them in one slot:
//!
//! | key                          | type        | holds                                          |
//! |------------------------------|-------------|------------------------------------------------|
//! | `{prefix}:line`              | string      | the line's id, made once (`SET NX`): a Redis that lost it is not the line we knew |
//! | `{prefix}:seq`               | string      | the highest sequence issued or given           |
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
//! gives it a fresh `ticket_ttl` when it puts it back at its place, so a crash does not
//! lose the player.
//!
//! **A Redis that forgets.** Each handle remembers the line's id and the highest sequence
//! it has seen. Every script that reads the line first checks both: a missing or other id,
//! or a sequence below what was seen, means Redis restarted empty or from an older copy,
//! and the script answers `reset` ([`StoreError::Reset`]) instead of a wrong position or an
//! empty line. The caller puts back the entries it knows ([`WaitlistStore::restore`]: each
//! at its own sequence, the sequence raised past them, the id kept or made anew) and goes
//! on; every other instance notices the same way and puts back its own.
//!
//! Every call runs under `command_timeout` and fails with [`StoreError::Backend`]; error
//! messages never carry the Redis password or a full ticket.
//!
//! [`MemoryWaitlist`]: crate::store::waitlist::MemoryWaitlist

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::Script;

use super::{RedisConn, RedisSettings};
use crate::ids::Ticket;
use crate::protocol::SeatGrant;
use crate::store::waitlist::{Queued, TicketStatus, WaitEntry, WaitlistStore};
use crate::store::{StoreError, StoreFuture};

/// How many abandoned tickets one `claim` script drops before it hands control back to
/// Redis (and is run again), so a long run of expired tickets never blocks the server.
const CLAIM_DROP_BUDGET: u32 = 256;

/// The check every reading script opens with. KEYS[1]: line id, KEYS[2]: seq. ARGV[1]: the
/// id this handle follows, ARGV[2]: the highest sequence it has seen.
const CHECK: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
  return {'reset'}
end
"#;

/// Takes the line as it is: its id (made now if missing) and sequence.
/// KEYS: line, seq. ARGV: a new id.
const OPEN: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) or '0'}
"#;

/// Enqueue, idempotent per ticket: {'queued', seq, position (0 while processing)}. A new
/// sequence is Redis's clock in µs, or one more than the last if that is later: unique,
/// only growing, and close to the time of issue, so entries a fallback queue numbered by
/// its own clock during an outage fall in place beside entries issued elsewhere.
/// KEYS: line, seq, waiting, processing, entry. ARGV: id, seen, ticket, entry JSON, ttl ms,
/// given sequence (0: the next one).
const ENQUEUE: &str = r#"
local score = redis.call('ZSCORE', KEYS[3], ARGV[3])
if score then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {'queued', score, redis.call('ZRANK', KEYS[3], ARGV[3]) + 1}
  end
  redis.call('ZREM', KEYS[3], ARGV[3])
else
  score = redis.call('ZSCORE', KEYS[4], ARGV[3])
  if score then return {'queued', score, 0} end
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local seq = tonumber(ARGV[6])
if seq == 0 then
  local t = redis.call('TIME')
  seq = math.max(last + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
end
local s = string.format('%.0f', seq)
if seq > last then redis.call('SET', KEYS[2], s) end
redis.call('ZADD', KEYS[3], s, ARGV[3])
redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[5])
return {'queued', s, redis.call('ZRANK', KEYS[3], ARGV[3]) + 1}
"#;

/// Where a ticket stands: {kind, detail}. Admitted first, then waiting (live only), then
/// processing. KEYS: line, seq, waiting, processing, entry, admitted. ARGV: id, seen, ticket.
const STATUS: &str = r#"
local grant = redis.call('GET', KEYS[6])
if grant then return {'admitted', grant} end
if redis.call('ZSCORE', KEYS[3], ARGV[3]) and redis.call('EXISTS', KEYS[5]) == 1 then
  return {'waiting', redis.call('ZRANK', KEYS[3], ARGV[3]) + 1}
end
if redis.call('ZSCORE', KEYS[4], ARGV[3]) then return {'processing', ''} end
return {'unknown', ''}
"#;

/// Keeps a live waiting ticket for another ttl; a processing ticket answers 1 unchanged.
/// KEYS: line, seq, waiting, processing, entry. ARGV: id, seen, ticket, ttl ms.
const TOUCH: &str = r#"
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  return {'ok', redis.call('PEXPIRE', KEYS[5], ARGV[4])}
end
if redis.call('ZSCORE', KEYS[4], ARGV[3]) then return {'ok', 1} end
return {'ok', 0}
"#;

/// Leaves the line: only a live waiting ticket. KEYS: line, seq, waiting, entry. ARGV: id,
/// seen, ticket.
const LEAVE: &str = r#"
if redis.call('ZREM', KEYS[3], ARGV[3]) == 0 then return {'ok', 0} end
return {'ok', redis.call('DEL', KEYS[4])}
"#;

/// Pops the first live waiting ticket into processing (same score), records when it was
/// claimed (Redis's clock, so every instance agrees), and answers its entry:
/// {'claimed', json, seq} | {'empty'} | {'more'} (drop budget spent: call again).
/// KEYS: line, seq, waiting, processing, claimed. ARGV: id, seen, entry key prefix, budget.
const CLAIM: &str = r#"
local budget = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
while true do
  local head = redis.call('ZPOPMIN', KEYS[3])
  if #head == 0 then return {'empty'} end
  local key = ARGV[3] .. head[1]
  local data = redis.call('GET', key)
  if data then
    redis.call('ZADD', KEYS[4], head[2], head[1])
    redis.call('ZADD', KEYS[5], now, head[1])
    redis.call('PERSIST', key)
    return {'claimed', data, head[2]}
  end
  budget = budget - 1
  if budget <= 0 then return {'more'} end
end
"#;

/// Players waiting, and the sequence: {'ok', len, seq}. KEYS: line, seq, waiting. ARGV: id, seen.
const LEN: &str = r#"
return {'ok', redis.call('ZCARD', KEYS[3]), redis.call('GET', KEYS[2]) or '0'}
"#;

/// A waiting or processing ticket's entry: {'entry', json, seq} | {'none'}.
/// KEYS: line, seq, waiting, processing, entry. ARGV: id, seen, ticket.
const ENTRY: &str = r#"
local score = redis.call('ZSCORE', KEYS[3], ARGV[3]) or redis.call('ZSCORE', KEYS[4], ARGV[3])
local data = redis.call('GET', KEYS[5])
if score and data then return {'entry', data, score} end
return {'none'}
"#;

/// Whether each ticket is in line: {'ok', 1|0, …}. KEYS: line, seq, waiting, processing.
/// ARGV: id, seen, tickets….
const HELD: &str = r#"
local out = {'ok'}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[3], ARGV[i]) or redis.call('ZSCORE', KEYS[4], ARGV[i]) then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#;

/// Puts back each entry neither in line nor admitted, at its own sequence, raises the
/// sequence past them (and past what the caller saw), and keeps the line's id (made anew
/// when missing): {id, put back, seq}. KEYS: line, seq, waiting, processing. ARGV: a new
/// id, seen, ttl ms, entry key prefix, admitted key prefix, then (ticket, seq, JSON)….
const RESTORE: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local top = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[2]))
local added = 0
for i = 6, #ARGV, 3 do
  local ticket, seq = ARGV[i], tonumber(ARGV[i + 1])
  if not redis.call('ZSCORE', KEYS[3], ticket) and not redis.call('ZSCORE', KEYS[4], ticket)
      and redis.call('EXISTS', ARGV[5] .. ticket) == 0 then
    redis.call('ZADD', KEYS[3], ARGV[i + 1], ticket)
    redis.call('SET', ARGV[4] .. ticket, ARGV[i + 2], 'PX', ARGV[3])
    added = added + 1
  end
  top = math.max(top, seq)
end
local s = string.format('%.0f', top)
redis.call('SET', KEYS[2], s)
return {redis.call('GET', KEYS[1]), added, s}
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
/// back to waiting with its original score (so its own place, in order) and gives its
/// entry a fresh ttl. Younger claims belong to a live instance creating the game right
/// now: they stay. KEYS: waiting, processing, claimed. ARGV: entry key prefix, ttl ms,
/// older_than ms.
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
    line: String,
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
            line: format!("{tag}:line"),
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

/// A script that opens with [`CHECK`].
fn checked(body: &str) -> Script {
    Script::new(&format!("{CHECK}{body}"))
}

struct Scripts {
    open: Script,
    enqueue: Script,
    status: Script,
    touch: Script,
    leave: Script,
    claim: Script,
    len: Script,
    entry: Script,
    held: Script,
    restore: Script,
    complete: Script,
    requeue: Script,
    expire: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            open: Script::new(OPEN),
            enqueue: checked(ENQUEUE),
            status: checked(STATUS),
            touch: checked(TOUCH),
            leave: checked(LEAVE),
            claim: checked(CLAIM),
            len: checked(LEN),
            entry: checked(ENTRY),
            held: checked(HELD),
            restore: Script::new(RESTORE),
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
    /// The line's id this handle follows (`None` until its first call takes the line).
    line: Mutex<Option<String>>,
    /// The highest sequence this handle has seen.
    seen: AtomicU64,
}

fn number(op: &str, text: Option<&String>) -> Result<u64, StoreError> {
    text.and_then(|t| t.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n as u64)
        .ok_or_else(|| StoreError::Backend(format!("redis {op}: the script answered an unexpected shape")))
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
            line: Mutex::new(None),
            seen: AtomicU64::new(0),
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

    fn saw(&self, seq: u64) {
        self.seen.fetch_max(seq, Ordering::Relaxed);
    }

    fn followed(&self) -> Option<String> {
        self.line.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The line's id, taking the line as it is on the first call.
    async fn line_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.followed() {
            return Ok(id);
        }
        let fresh = Ticket::random();
        let keys = [self.keys.line.as_str(), &self.keys.seq];
        let answer: Vec<String> = self.eval("open line", &self.scripts.open, &keys, &[fresh.expose()]).await?;
        let id = answer.first().cloned().ok_or_else(|| StoreError::Backend("redis open line: no id".to_owned()))?;
        self.saw(number("open line", answer.get(1))?);
        *self.line.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
        Ok(id)
    }

    /// Runs a script that opens with [`CHECK`]: `keys` and `args` come after the line's and
    /// the check's own. Answers the script's table after its kind, or [`StoreError::Reset`].
    async fn checked_eval(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<(String, Vec<String>), StoreError> {
        let id = self.line_id().await?;
        let seen = self.seen.load(Ordering::Relaxed).to_string();
        let mut all_keys = vec![self.keys.line.as_str(), &self.keys.seq];
        all_keys.extend_from_slice(keys);
        let mut all_args = vec![id.as_str(), &seen];
        all_args.extend_from_slice(args);
        let mut answer: Vec<String> = self.eval(op, script, &all_keys, &all_args).await?;
        if answer.is_empty() {
            return Err(StoreError::Backend(format!("redis {op}: empty answer")));
        }
        let kind = answer.remove(0);
        if kind == "reset" {
            return Err(StoreError::Reset);
        }
        Ok((kind, answer))
    }

    fn decode_entry(op: &str, json: &str, seq: u64) -> Result<WaitEntry, StoreError> {
        serde_json::from_str::<WaitEntry>(json)
            .map(|e| WaitEntry { seq, ..e })
            .map_err(|e| StoreError::Backend(format!("redis {op}: undecodable entry: {e}")))
    }
}

impl WaitlistStore for RedisWaitlist {
    fn enqueue(&self, entry: WaitEntry) -> StoreFuture<'_, Queued> {
        Box::pin(async move {
            let json = serde_json::to_string(&entry).map_err(|e| StoreError::Backend(format!("encode entry: {e}")))?;
            let k = &self.keys;
            let entry_key = k.entry(&entry.ticket);
            let (ttl, given) = (self.ticket_ttl_ms.to_string(), entry.seq.to_string());
            let keys = [k.waiting.as_str(), &k.processing, &entry_key];
            let (_, out) = self
                .checked_eval("enqueue", &self.scripts.enqueue, &keys, &[entry.ticket.expose(), &json, &ttl, &given])
                .await?;
            let queued = Queued { seq: number("enqueue", out.first())?, position: number("enqueue", out.get(1))? };
            self.saw(queued.seq);
            Ok(queued)
        })
    }

    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus> {
        Box::pin(async move {
            let k = &self.keys;
            let (entry_key, admitted_key) = (k.entry(ticket), k.admitted(ticket));
            let keys = [k.waiting.as_str(), &k.processing, &entry_key, &admitted_key];
            let (kind, out) = self.checked_eval("status", &self.scripts.status, &keys, &[ticket.expose()]).await?;
            match kind.as_str() {
                "admitted" => serde_json::from_str(out.first().map_or("", String::as_str))
                    .map(TicketStatus::Admitted)
                    .map_err(|e| StoreError::Backend(format!("redis status: undecodable grant: {e}"))),
                "waiting" => Ok(TicketStatus::Waiting { position: number("status", out.first())? }),
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
            let (_, out) = self.checked_eval("touch", &self.scripts.touch, &keys, &[ticket.expose(), &ttl]).await?;
            Ok(number("touch", out.first())? == 1)
        })
    }

    fn leave<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let entry_key = self.keys.entry(ticket);
            let keys = [self.keys.waiting.as_str(), &entry_key];
            let (_, out) = self.checked_eval("leave", &self.scripts.leave, &keys, &[ticket.expose()]).await?;
            Ok(number("leave", out.first())? == 1)
        })
    }

    fn claim(&self) -> StoreFuture<'_, Option<WaitEntry>> {
        Box::pin(async move {
            let k = &self.keys;
            let budget = CLAIM_DROP_BUDGET.to_string();
            loop {
                let keys = [k.waiting.as_str(), &k.processing, &k.claimed];
                let (kind, out) =
                    self.checked_eval("claim", &self.scripts.claim, &keys, &[&k.entry_prefix, &budget]).await?;
                match kind.as_str() {
                    "claimed" => {
                        let seq = number("claim", out.get(1))?;
                        return Self::decode_entry("claim", out.first().map_or("", String::as_str), seq).map(Some);
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
            let (_, out) = self.checked_eval("len", &self.scripts.len, &[&self.keys.waiting], &[]).await?;
            self.saw(number("len", out.get(1))?);
            number("len", out.first())
        })
    }

    fn expire(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let k = &self.keys;
            self.eval("expire", &self.scripts.expire, &[k.waiting.as_str()], &[&k.entry_prefix]).await
        })
    }

    fn entry<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, Option<WaitEntry>> {
        Box::pin(async move {
            let k = &self.keys;
            let entry_key = k.entry(ticket);
            let keys = [k.waiting.as_str(), &k.processing, &entry_key];
            let (kind, out) = self.checked_eval("entry", &self.scripts.entry, &keys, &[ticket.expose()]).await?;
            if kind != "entry" {
                return Ok(None);
            }
            let seq = number("entry", out.get(1))?;
            Self::decode_entry("entry", out.first().map_or("", String::as_str), seq).map(Some)
        })
    }

    fn held<'a>(&'a self, tickets: &'a [Ticket]) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            if tickets.is_empty() {
                return Ok(Vec::new());
            }
            let k = &self.keys;
            let args: Vec<&str> = tickets.iter().map(Ticket::expose).collect();
            let (_, out) = self.checked_eval("held", &self.scripts.held, &[&k.waiting, &k.processing], &args).await?;
            if out.len() != tickets.len() {
                return Err(StoreError::Backend("redis held: the script answered an unexpected shape".to_owned()));
            }
            Ok(out.iter().map(|v| v == "1").collect())
        })
    }

    fn restore(&self, entries: Vec<WaitEntry>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let k = &self.keys;
            let mut rows: Vec<(String, String, String)> = Vec::with_capacity(entries.len());
            for entry in entries.iter().filter(|e| e.seq > 0) {
                let json =
                    serde_json::to_string(entry).map_err(|e| StoreError::Backend(format!("encode entry: {e}")))?;
                rows.push((entry.ticket.expose().to_owned(), entry.seq.to_string(), json));
            }
            let fresh = Ticket::random();
            let (seen, ttl) = (self.seen.load(Ordering::Relaxed).to_string(), self.ticket_ttl_ms.to_string());
            let mut args = vec![fresh.expose(), &seen, &ttl, &k.entry_prefix, &k.admitted_prefix];
            for (ticket, seq, json) in &rows {
                args.extend([ticket.as_str(), seq, json]);
            }
            let keys = [k.line.as_str(), &k.seq, &k.waiting, &k.processing];
            let out: Vec<String> = self.eval("restore", &self.scripts.restore, &keys, &args).await?;
            let id = out.first().cloned().ok_or_else(|| StoreError::Backend("redis restore: no id".to_owned()))?;
            let added = number("restore", out.get(1))?;
            self.saw(number("restore", out.get(2))?);
            *self.line.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
            Ok(added)
        })
    }

    fn known_seq(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
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
        assert_eq!(keys.line, "{rampart:waitlist}:line");
        let ticket = Ticket::random();
        assert_eq!(keys.entry(&ticket), format!("{{rampart:waitlist}}:entry:{}", ticket.expose()));
        assert_eq!(keys.admitted(&ticket), format!("{{rampart:waitlist}}:admitted:{}", ticket.expose()));
        assert_eq!(Keys::new("a:{tag}").waiting, "a:{tag}:waiting");
    }
}
