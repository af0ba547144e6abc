//! The Redis waitlist's keys and its Lua scripts, one per operation, each atomic. Every
//! script that reads the line opens with [`CHECK`], which answers `reset` when Redis no
//! longer holds the line this handle follows.
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
//! | `{prefix}:entry:<ticket>`    | string      | the `WaitEntry` as JSON, expiring after `ticket_ttl` |
//! | `{prefix}:admitted:<ticket>` | string      | the `SeatGrant` as JSON, expiring after `ticket_ttl` |
//! | `{prefix}:shown:<ticket>`    | string      | the lowest position the ticket was shown, expiring after `ticket_ttl` |
//! | `{prefix}:fallback:<tag>`    | hash        | one instance's fallback queue: `cleared` (it holds none of its entries up to this sequence), `at` (when it said so, ms, Redis clock); expires after two `ticket_ttl` |

use redis::Script;

use crate::ids::Ticket;

/// How many abandoned tickets one `claim` script drops before it hands control back to
/// Redis (and is run again), so a long run of expired tickets never blocks the server.
pub(super) const CLAIM_DROP_BUDGET: u32 = 256;

/// The check every reading script opens with. KEYS[1]: line id, KEYS[2]: seq. ARGV[1]: the
/// id this handle follows, ARGV[2]: the highest sequence it has seen.
const CHECK: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
  return {'reset'}
end
"#;

/// The position to show a waiting ticket at `rank`: never more than it was shown before
/// (the `shown` key, refreshed for `ttl` ms).
const SHOW: &str = r#"
local function show(key, rank, ttl)
  local before = tonumber(redis.call('GET', key) or '0')
  if before > 0 and before < rank then rank = before end
  redis.call('SET', key, rank, 'PX', ttl)
  return rank
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
/// The position answered is never more than the ticket was shown before, here or (given)
/// by the fallback queue it comes from.
/// KEYS: line, seq, waiting, processing, entry, shown. ARGV: id, seen, ticket, entry JSON,
/// ttl ms, given sequence (0: the next one), position shown before (0: none).
const ENQUEUE: &str = r#"
local score = redis.call('ZSCORE', KEYS[3], ARGV[3])
if score then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {'queued', score, show(KEYS[6], redis.call('ZRANK', KEYS[3], ARGV[3]) + 1, ARGV[5])}
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
if tonumber(ARGV[7]) > 0 then redis.call('SET', KEYS[6], ARGV[7], 'PX', ARGV[5]) end
return {'queued', s, show(KEYS[6], redis.call('ZRANK', KEYS[3], ARGV[3]) + 1, ARGV[5])}
"#;

/// Where a ticket stands: {kind, detail}. Admitted first, then waiting (live only: its
/// position never more than shown before), then processing. A ticket none of these that a
/// fallback queue issued (its sequence given) is `elsewhere` while that queue has not said
/// it no longer holds it, and either the ticket was issued or the queue's instance was
/// heard from within `ttl`; else unknown.
/// KEYS: line, seq, waiting, processing, entry, admitted, shown, fallback record.
/// ARGV: id, seen, ticket, ttl ms, the fallback sequence (0: not a fallback ticket).
const STATUS: &str = r#"
local grant = redis.call('GET', KEYS[6])
if grant then return {'admitted', grant} end
if redis.call('ZSCORE', KEYS[3], ARGV[3]) and redis.call('EXISTS', KEYS[5]) == 1 then
  return {'waiting', show(KEYS[7], redis.call('ZRANK', KEYS[3], ARGV[3]) + 1, ARGV[4])}
end
if redis.call('ZSCORE', KEYS[4], ARGV[3]) then return {'processing', ''} end
local origin = tonumber(ARGV[5])
if origin > 0 and tonumber(redis.call('HGET', KEYS[8], 'cleared') or '0') < origin then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local heard = tonumber(redis.call('HGET', KEYS[8], 'at') or '0')
  local ttl = tonumber(ARGV[4])
  if now < math.floor(origin / 1000) + ttl or now < heard + ttl then return {'elsewhere', ''} end
end
return {'unknown', ''}
"#;

/// One instance's fallback queue says it holds none of its entries up to a sequence (the
/// highest said so far is kept) and that it is alive. KEYS: the fallback record.
/// ARGV: cleared sequence, expiry ms.
const CLEARED: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cleared = math.max(tonumber(redis.call('HGET', KEYS[1], 'cleared') or '0'), tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'cleared', string.format('%.0f', cleared), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
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

/// Leaves the line: only a live waiting ticket. KEYS: line, seq, waiting, entry, shown.
/// ARGV: id, seen, ticket.
const LEAVE: &str = r#"
if redis.call('ZREM', KEYS[3], ARGV[3]) == 0 then return {'ok', 0} end
redis.call('DEL', KEYS[5])
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
/// KEYS: waiting, processing, entry, admitted, claimed, shown. ARGV: ticket, grant JSON, ttl ms.
const COMPLETE: &str = r#"
redis.call('DEL', KEYS[6])
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
pub(super) struct Keys {
    pub(super) line: String,
    pub(super) seq: String,
    pub(super) waiting: String,
    pub(super) processing: String,
    pub(super) claimed: String,
    pub(super) entry_prefix: String,
    pub(super) admitted_prefix: String,
    shown_prefix: String,
    fallback_prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Keys {
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
            shown_prefix: format!("{tag}:shown:"),
            fallback_prefix: format!("{tag}:fallback:"),
        }
    }

    pub(super) fn entry(&self, ticket: &Ticket) -> String {
        format!("{}{}", self.entry_prefix, ticket.expose())
    }

    pub(super) fn admitted(&self, ticket: &Ticket) -> String {
        format!("{}{}", self.admitted_prefix, ticket.expose())
    }

    pub(super) fn shown(&self, ticket: &Ticket) -> String {
        format!("{}{}", self.shown_prefix, ticket.expose())
    }

    /// The record of the fallback queue tagged `tag` (any tag for a ticket no fallback
    /// queue issued: the script reads it only for one that did).
    pub(super) fn fallback(&self, tag: u32) -> String {
        format!("{}{tag:08x}", self.fallback_prefix)
    }
}

/// A script that opens with [`CHECK`].
fn checked(body: &str) -> Script {
    Script::new(&format!("{CHECK}{body}"))
}

pub(super) struct Scripts {
    pub(super) open: Script,
    pub(super) enqueue: Script,
    pub(super) status: Script,
    pub(super) touch: Script,
    pub(super) leave: Script,
    pub(super) claim: Script,
    pub(super) len: Script,
    pub(super) entry: Script,
    pub(super) held: Script,
    pub(super) restore: Script,
    pub(super) complete: Script,
    pub(super) requeue: Script,
    pub(super) expire: Script,
    pub(super) cleared: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            open: Script::new(OPEN),
            enqueue: checked(&format!("{SHOW}{ENQUEUE}")),
            status: checked(&format!("{SHOW}{STATUS}")),
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
            cleared: Script::new(CLEARED),
        }
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
        assert_eq!(keys.shown(&ticket), format!("{{rampart:waitlist}}:shown:{}", ticket.expose()));
        assert_eq!(keys.fallback(0xab), "{rampart:waitlist}:fallback:000000ab");
        assert_eq!(Keys::new("a:{tag}").waiting, "a:{tag}:waiting");
    }
}
