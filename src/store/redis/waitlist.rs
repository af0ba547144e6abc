//! The Redis waitlist backend (docs/DESIGN.md D6): the same FIFO line as [`MemoryWaitlist`], kept
//! in Redis so it survives a server restart and is shared by several instances. Every
//! operation is one atomic Lua script on the shared [`RedisConn`]; the scripts and the key
//! layout (sorted sets scored by sequence, all keys under one hash tag `{prefix}` so a
//! Redis Cluster keeps them in one slot) are in `waitlist/scripts.rs`. Each entry (the
//! [`WaitEntry`] as JSON) and each grant (the [`SeatGrant`]) expires after `ticket_ttl`.
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
//! **Tickets held elsewhere.** A ticket a fallback queue issued carries that queue's tag and
//! its sequence ([`Ticket::fallback_origin`]); each instance records in
//! `{prefix}:fallback:<tag>` how far its queue is cleared ([`WaitlistStore::fallback_cleared`]).
//! `status` answers such a ticket that Redis does not hold [`TicketStatus::Elsewhere`] until
//! its queue says it is cleared past it (or neither the ticket nor its instance was heard of
//! for `ticket_ttl`), never `Unknown` (docs/DESIGN.md D6). Positions never go back: the
//! lowest shown is kept under `{prefix}:shown:<ticket>`.
//!
//! Every call runs under `command_timeout` and fails with [`StoreError::Backend`]; error
//! messages never carry the Redis password or a full ticket.
//!
//! [`MemoryWaitlist`]: crate::store::waitlist::MemoryWaitlist

mod scripts;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::Script;

use self::scripts::{Keys, Scripts, CLAIM_DROP_BUDGET};
use super::{RedisConn, RedisSettings};
use crate::ids::Ticket;
use crate::protocol::SeatGrant;
use crate::store::waitlist::{Queued, TicketStatus, WaitEntry, WaitlistStore};
use crate::store::{StoreError, StoreFuture};

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
            let (entry_key, shown_key) = (k.entry(&entry.ticket), k.shown(&entry.ticket));
            let (ttl, given, shown) = (self.ticket_ttl_ms.to_string(), entry.seq.to_string(), entry.shown.to_string());
            let keys = [k.waiting.as_str(), &k.processing, &entry_key, &shown_key];
            let args = [entry.ticket.expose(), &json, &ttl, &given, &shown];
            let (_, out) = self.checked_eval("enqueue", &self.scripts.enqueue, &keys, &args).await?;
            let queued = Queued { seq: number("enqueue", out.first())?, position: number("enqueue", out.get(1))? };
            self.saw(queued.seq);
            Ok(queued)
        })
    }

    fn status<'a>(&'a self, ticket: &'a Ticket) -> StoreFuture<'a, TicketStatus> {
        Box::pin(async move {
            let k = &self.keys;
            let (entry_key, admitted_key, shown_key) = (k.entry(ticket), k.admitted(ticket), k.shown(ticket));
            let (tag, origin) = ticket.fallback_origin().unwrap_or((0, 0));
            let fallback_key = k.fallback(tag);
            let keys = [k.waiting.as_str(), &k.processing, &entry_key, &admitted_key, &shown_key, &fallback_key];
            let (ttl, origin) = (self.ticket_ttl_ms.to_string(), origin.to_string());
            let args = [ticket.expose(), &ttl, &origin];
            let (kind, out) = self.checked_eval("status", &self.scripts.status, &keys, &args).await?;
            match kind.as_str() {
                "admitted" => serde_json::from_str(out.first().map_or("", String::as_str))
                    .map(TicketStatus::Admitted)
                    .map_err(|e| StoreError::Backend(format!("redis status: undecodable grant: {e}"))),
                "waiting" => Ok(TicketStatus::Waiting { position: number("status", out.first())? }),
                "processing" => Ok(TicketStatus::Processing),
                "elsewhere" => Ok(TicketStatus::Elsewhere),
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
            let (entry_key, shown_key) = (self.keys.entry(ticket), self.keys.shown(ticket));
            let keys = [self.keys.waiting.as_str(), &entry_key, &shown_key];
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
            let shown_key = k.shown(ticket);
            let keys = [k.waiting.as_str(), &k.processing, &entry_key, &admitted_key, &k.claimed, &shown_key];
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

    fn fallback_cleared(&self, tag: u32, cleared: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let key = self.keys.fallback(tag);
            let (cleared, expiry) = (cleared.to_string(), self.ticket_ttl_ms.saturating_mul(2).to_string());
            let _: i64 = self.eval("fallback cleared", &self.scripts.cleared, &[&key], &[&cleared, &expiry]).await?;
            Ok(())
        })
    }
}
