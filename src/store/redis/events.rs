//! The event stream and the runtime records in Redis. Events go to the stream `P:events`
//! (`XADD`, capped near 100 000 entries) and are read through the consumer group `lobby`, one
//! consumer per instance, on a connection of its own (a blocking read would hold up every
//! command queued behind it). Entries a dead consumer left unacknowledged are claimed again
//! after 30 s. A game's runtime record is the hash `P:g:{ID}:record`, changed by a script that
//! applies [`crate::store::events::transition`]'s compare-and-set; the lobby listing every
//! instance reads is the hash `P:lobby` (game id → record JSON).

use std::time::Duration;

use redis::Script;

use super::{decode, encode, RedisConn};
use crate::ids::InstanceId;
use crate::store::events::{Applied, EventStream, RecordStore, Rule, RunStatus, RuntimeEvent, RuntimeRecord};
use crate::store::{StoreError, StoreFuture};

const GROUP: &str = "lobby";

/// Entries a consumer holds unacknowledged this long are delivered to another one.
const RECLAIM_IDLE_MS: u64 = 30_000;

/// KEYS: record. ARGV: from (comma separated; empty: absent or any non-terminal), to
/// (empty: summary only; DELETE), summary JSON, instance. Answers {changed, conflict,
/// status}.
const APPLY: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'status')
if ARGV[2] == 'DELETE' then
  return {redis.call('DEL', KEYS[1]), 0, ''}
end
local before = redis.call('HGET', KEYS[1], 'summary')
local status = cur or 'running'
local conflict = 0
if ARGV[2] ~= '' then
  local allowed
  if ARGV[1] == '' then
    allowed = (not cur) or (cur ~= 'failed' and cur ~= 'finished')
  else
    allowed = cur and string.find(',' .. ARGV[1] .. ',', ',' .. cur .. ',', 1, true) ~= nil
  end
  if allowed then status = ARGV[2] else conflict = 1 end
end
local changed = 0
if cur ~= status or before ~= ARGV[3] then changed = 1 end
redis.call('HSET', KEYS[1], 'status', status, 'summary', ARGV[3], 'instance', ARGV[4])
return {changed, conflict, status}
"#;

/// The event stream in Redis.
pub struct RedisEvents {
    conn: RedisConn,
    /// For the blocking group reads.
    reader: Result<RedisConn, StoreError>,
    stream: String,
}

impl RedisEvents {
    /// The stream on `conn` (reads on a connection of their own).
    pub fn new(conn: RedisConn) -> Self {
        let timeout = conn.settings().command_timeout + Duration::from_secs(2);
        RedisEvents { reader: conn.dedicated(timeout), stream: conn.key("events"), conn }
    }

    fn reader(&self) -> Result<&RedisConn, StoreError> {
        self.reader.as_ref().map_err(Clone::clone)
    }

    async fn ensure_group(&self) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE").arg(&self.stream).arg(GROUP).arg("$").arg("MKSTREAM");
        match self.conn.query::<String>("events group", &cmd).await {
            Ok(_) => Ok(()),
            Err(StoreError::Backend(e)) if e.contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `[[id, [field, value, …]], …]` → `(id, event)` pairs (entries without a `data` field are
/// skipped).
fn entries(value: &redis::Value) -> Vec<(String, RuntimeEvent)> {
    let redis::Value::Array(items) = value else { return Vec::new() };
    let mut out = Vec::new();
    for item in items {
        let redis::Value::Array(parts) = item else { continue };
        let (Some(id), Some(redis::Value::Array(fields))) = (parts.first(), parts.get(1)) else { continue };
        let Ok(id) = redis::from_redis_value::<String>(id.clone()) else { continue };
        let mut data = None;
        for pair in fields.chunks(2) {
            if let [name, value] = pair {
                if redis::from_redis_value::<String>(name.clone()).is_ok_and(|n| n == "data") {
                    data = redis::from_redis_value::<String>(value.clone()).ok();
                }
            }
        }
        if let Some(event) = data.and_then(|d| serde_json::from_str(&d).ok()) {
            out.push((id, event));
        }
    }
    out
}

impl EventStream for RedisEvents {
    fn publish<'a>(&'a self, event: &'a RuntimeEvent) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&self.stream).arg("MAXLEN").arg("~").arg(100_000).arg("*").arg("data").arg(encode("event", event)?);
            let _: String = self.conn.query("event publish", &cmd).await?;
            Ok(())
        })
    }

    fn read<'a>(
        &'a self,
        consumer: &'a InstanceId,
        max: usize,
        block: Duration,
    ) -> StoreFuture<'a, Vec<(String, RuntimeEvent)>> {
        Box::pin(async move {
            let reader = self.reader()?;
            // Entries a dead consumer left behind come first.
            let mut claim = redis::cmd("XAUTOCLAIM");
            claim
                .arg(&self.stream)
                .arg(GROUP)
                .arg(consumer.as_str())
                .arg(RECLAIM_IDLE_MS)
                .arg("0")
                .arg("COUNT")
                .arg(max);
            match self.conn.query::<redis::Value>("events reclaim", &claim).await {
                Ok(redis::Value::Array(reply)) => {
                    let claimed = reply.get(1).map(entries).unwrap_or_default();
                    if !claimed.is_empty() {
                        return Ok(claimed);
                    }
                }
                Ok(_) => {}
                Err(StoreError::Backend(e)) if e.contains("NOGROUP") => self.ensure_group().await?,
                Err(e) => return Err(e),
            }
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg(GROUP).arg(consumer.as_str()).arg("COUNT").arg(max);
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64).arg("STREAMS").arg(&self.stream).arg(">");
            let reply: redis::Value = match reader.query("events read", &cmd).await {
                Ok(reply) => reply,
                Err(StoreError::Backend(e)) if e.contains("NOGROUP") => {
                    self.ensure_group().await?;
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e),
            };
            // {stream: [[id, fields]…]} (RESP2: [[stream, entries]]).
            let streams = match reply {
                redis::Value::Nil => return Ok(Vec::new()),
                redis::Value::Array(streams) => streams,
                redis::Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
                _ => return Ok(Vec::new()),
            };
            let mut out = Vec::new();
            for stream in streams {
                match stream {
                    redis::Value::Array(parts) if parts.len() == 2 => out.extend(entries(&parts[1])),
                    other => out.extend(entries(&other)),
                }
            }
            Ok(out)
        })
    }

    fn ack<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(());
            }
            let mut cmd = redis::cmd("XACK");
            cmd.arg(&self.stream).arg(GROUP).arg(ids);
            let _: i64 = self.conn.query("events ack", &cmd).await?;
            Ok(())
        })
    }
}

/// The runtime records in Redis.
pub struct RedisRecords {
    conn: RedisConn,
    apply: Script,
    lobby: String,
}

impl RedisRecords {
    /// Records on `conn`.
    pub fn new(conn: RedisConn) -> Self {
        RedisRecords { lobby: conn.key("lobby"), conn, apply: Script::new(APPLY) }
    }
}

fn status(text: &str) -> RunStatus {
    match text {
        "restarting" => RunStatus::Restarting,
        "failed" => RunStatus::Failed,
        "finished" => RunStatus::Finished,
        _ => RunStatus::Running,
    }
}

impl RecordStore for RedisRecords {
    fn apply<'a>(&'a self, event: &'a RuntimeEvent) -> StoreFuture<'a, Applied> {
        Box::pin(async move {
            let record_key = self.conn.game_key(&event.game_id, "record");
            let summary = encode("record", &event.summary)?;
            let (from, to) = match crate::store::events::transition(event.kind) {
                Rule::Cas { from, to } => {
                    (from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","), to.as_str().to_owned())
                }
                Rule::SummaryOnly => (String::new(), String::new()),
                Rule::Delete => (String::new(), "DELETE".to_owned()),
            };
            let args = [from.as_str(), &to, &summary, event.instance.as_str()];
            let (changed, conflict, now): (i64, i64, String) =
                self.conn.eval("record apply", &self.apply, &[&record_key], &args).await?;
            if to == "DELETE" {
                let mut cmd = redis::cmd("HDEL");
                cmd.arg(&self.lobby).arg(event.game_id.as_str());
                let _: i64 = self.conn.query("lobby remove", &cmd).await?;
                return Ok(Applied { changed: changed == 1, conflict: false, record: None });
            }
            let record = RuntimeRecord {
                game_id: event.game_id.clone(),
                status: status(&now),
                summary: event.summary.clone(),
                instance: event.instance.clone(),
            };
            // Written even when the record did not change: the record and the lobby entry
            // are two commands, so a redelivered event (the first lobby write failed) heals
            // the entry. Rewriting an unchanged entry is harmless.
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&self.lobby).arg(event.game_id.as_str()).arg(encode("lobby", &record)?);
            let _: i64 = self.conn.query("lobby update", &cmd).await?;
            Ok(Applied { changed: changed == 1, conflict: conflict == 1, record: Some(record) })
        })
    }

    fn all(&self) -> StoreFuture<'_, Vec<RuntimeRecord>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HVALS");
            cmd.arg(&self.lobby);
            let values: Vec<String> = self.conn.query("lobby read", &cmd).await?;
            Ok(values.iter().filter_map(|v| decode::<RuntimeRecord>("lobby read", v).ok()).collect())
        })
    }
}
