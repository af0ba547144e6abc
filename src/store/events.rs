//! The health-events stream (docs/DESIGN.md D7): the supervisor publishes every game
//! runtime event to a stream; a consumer (one per instance, in one consumer group, so each
//! event is applied once across instances) applies it to the game's runtime record with a
//! compare-and-set transition, and the lobby every instance shows is built from those
//! records. [`transition`] is the rule, pure; [`EventStream`] and [`RecordStore`] are the
//! two storage concerns, with embedded twins here and Redis backends in `redis/events.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{GameId, InstanceId};
use crate::store::StoreFuture;

/// What happened to a game.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new game's actor started.
    Started,
    /// Game code panicked.
    Crashed,
    /// A handler was busy past `hang_timeout_ms`.
    HangDetected,
    /// The game was restored from its last good state after a failure.
    Restarted,
    /// The restored game answers again (after a restart delay).
    Recovered,
    /// The game passed its restart limit and was closed.
    RestartLimitExceeded,
    /// A healthy game was moved to a fresh arbiter.
    Moved,
    /// Another instance took the game over after its owner's lease lapsed.
    TakenOver,
    /// The game ended: won, drawn, resigned or abandoned.
    Finished,
    /// The game's summary changed (moves, players); coalesced, at most one a second per game.
    Progress,
    /// The ended game was removed after its time-to-live.
    Removed,
}

impl EventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Crashed => "crashed",
            EventKind::HangDetected => "hang_detected",
            EventKind::Restarted => "restarted",
            EventKind::Recovered => "recovered",
            EventKind::RestartLimitExceeded => "restart_limit_exceeded",
            EventKind::Moved => "moved",
            EventKind::TakenOver => "taken_over",
            EventKind::Finished => "finished",
            EventKind::Progress => "progress",
            EventKind::Removed => "removed",
        }
    }
}

/// One runtime event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeEvent {
    /// The game.
    pub game_id: GameId,
    /// What happened.
    pub kind: EventKind,
    /// The instance that owns the game (and published the event).
    pub instance: InstanceId,
    /// The game's lobby summary after the event.
    pub summary: Value,
}

/// A game's runtime status as the lobby records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Answering.
    Running,
    /// Between a failure and the restored game answering.
    Restarting,
    /// Closed after its restart limit (terminal).
    Failed,
    /// Ended (terminal).
    Finished,
}

impl RunStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Restarting => "restarting",
            RunStatus::Failed => "failed",
            RunStatus::Finished => "finished",
        }
    }
    /// Whether no transition leaves it.
    pub fn terminal(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::Finished)
    }
}

/// A game's runtime record: what the lobby shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    /// The game.
    pub game_id: GameId,
    /// Its runtime status.
    pub status: RunStatus,
    /// Its lobby summary (the docs/PROTOCOL.md game summary).
    pub summary: Value,
    /// The instance that last reported it.
    pub instance: InstanceId,
}

/// What an event does to a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Compare and set: when the status is one of `from` (an empty `from`: absent or any
    /// non-terminal status), set `to`; otherwise only the summary is updated.
    Cas {
        /// The statuses the transition may start from.
        from: Vec<RunStatus>,
        /// The status it sets.
        to: RunStatus,
    },
    /// Only the summary changes.
    SummaryOnly,
    /// The record is deleted.
    Delete,
}

/// The transition table (`running → restarting → running`, `→ failed` and `→ finished`
/// terminal).
pub fn transition(kind: EventKind) -> Rule {
    use RunStatus::*;
    match kind {
        EventKind::Started => Rule::Cas { from: vec![], to: Running },
        EventKind::Crashed | EventKind::HangDetected => Rule::Cas { from: vec![Running], to: Restarting },
        EventKind::Restarted | EventKind::Recovered => Rule::Cas { from: vec![Restarting], to: Running },
        EventKind::RestartLimitExceeded => Rule::Cas { from: vec![], to: Failed },
        EventKind::Finished => Rule::Cas { from: vec![], to: Finished },
        EventKind::Moved | EventKind::TakenOver | EventKind::Progress => Rule::SummaryOnly,
        EventKind::Removed => Rule::Delete,
    }
}

/// The result of applying an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// Whether the status or the summary really changed (only then is the lobby told).
    pub changed: bool,
    /// Whether the status transition lost its compare-and-set (the summary was still
    /// updated: a late event still refreshes what the lobby shows).
    pub conflict: bool,
    /// The record after the event (`None`: deleted, or never created).
    pub record: Option<RuntimeRecord>,
}

/// Applies `event` to `current` under [`transition`]: the pure core both backends follow
/// (the Redis backend runs the same rule in one script).
pub fn apply(current: Option<&RuntimeRecord>, event: &RuntimeEvent) -> Applied {
    match transition(event.kind) {
        Rule::Delete => Applied { changed: current.is_some(), conflict: false, record: None },
        rule => {
            let status_now = current.map(|r| r.status);
            let (status, conflict) = match rule {
                Rule::Cas { from, to } => {
                    let allowed = if from.is_empty() {
                        status_now.is_none_or(|s| !s.terminal())
                    } else {
                        status_now.is_some_and(|s| from.contains(&s))
                    };
                    if allowed {
                        (to, false)
                    } else {
                        (status_now.unwrap_or(RunStatus::Running), true)
                    }
                }
                _ => (status_now.unwrap_or(RunStatus::Running), false),
            };
            let record = RuntimeRecord {
                game_id: event.game_id.clone(),
                status,
                summary: event.summary.clone(),
                instance: event.instance.clone(),
            };
            let changed = current.is_none_or(|c| c.status != record.status || c.summary != record.summary);
            Applied { changed, conflict, record: Some(record) }
        }
    }
}

/// The stream of runtime events, read through one consumer group.
pub trait EventStream: Send + Sync + 'static {
    /// Appends an event.
    fn publish<'a>(&'a self, event: &'a RuntimeEvent) -> StoreFuture<'a, ()>;
    /// Up to `max` events not yet delivered to the group (waiting up to `block` for the
    /// first), each with its id for [`EventStream::ack`]. Events delivered to a consumer
    /// that died unacknowledged are delivered again after a while.
    fn read<'a>(
        &'a self,
        consumer: &'a InstanceId,
        max: usize,
        block: Duration,
    ) -> StoreFuture<'a, Vec<(String, RuntimeEvent)>>;
    /// Marks events as applied.
    fn ack<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, ()>;
}

/// The runtime records.
pub trait RecordStore: Send + Sync + 'static {
    /// Applies an event to its game's record atomically (see [`apply`]).
    fn apply<'a>(&'a self, event: &'a RuntimeEvent) -> StoreFuture<'a, Applied>;
    /// Every record.
    fn all(&self) -> StoreFuture<'_, Vec<RuntimeRecord>>;
}

/// The embedded event stream: a bounded queue in this process with one consumer group.
pub struct MemoryEvents {
    queue: Mutex<VecDeque<(u64, RuntimeEvent)>>,
    next: Mutex<u64>,
    arrived: tokio::sync::Notify,
    capacity: usize,
}

impl MemoryEvents {
    /// A stream keeping at most `capacity` unread events (the oldest are dropped).
    pub fn new(capacity: usize) -> Self {
        MemoryEvents {
            queue: Mutex::new(VecDeque::new()),
            next: Mutex::new(1),
            arrived: tokio::sync::Notify::new(),
            capacity,
        }
    }
}

impl EventStream for MemoryEvents {
    fn publish<'a>(&'a self, event: &'a RuntimeEvent) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let id = {
                let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                *next += 1;
                *next
            };
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push_back((id, event.clone()));
            while queue.len() > self.capacity {
                queue.pop_front();
            }
            drop(queue);
            self.arrived.notify_one();
            Ok(())
        })
    }

    fn read<'a>(
        &'a self,
        _consumer: &'a InstanceId,
        max: usize,
        block: Duration,
    ) -> StoreFuture<'a, Vec<(String, RuntimeEvent)>> {
        Box::pin(async move {
            let take = |queue: &mut VecDeque<(u64, RuntimeEvent)>| -> Vec<(String, RuntimeEvent)> {
                let n = queue.len().min(max);
                queue.drain(..n).map(|(id, e)| (id.to_string(), e)).collect()
            };
            let arrived = self.arrived.notified();
            {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if !queue.is_empty() {
                    return Ok(take(&mut queue));
                }
            }
            let _ = tokio::time::timeout(block, arrived).await;
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            Ok(take(&mut queue))
        })
    }

    fn ack<'a>(&'a self, _ids: &'a [String]) -> StoreFuture<'a, ()> {
        // Delivered events have already left the queue: one consumer, in this process.
        Box::pin(async { Ok(()) })
    }
}

/// The embedded runtime records.
#[derive(Default)]
pub struct MemoryRecords {
    records: Mutex<HashMap<GameId, RuntimeRecord>>,
}

impl RecordStore for MemoryRecords {
    fn apply<'a>(&'a self, event: &'a RuntimeEvent) -> StoreFuture<'a, Applied> {
        Box::pin(async move {
            let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            let applied = apply(records.get(&event.game_id), event);
            match &applied.record {
                Some(record) => {
                    records.insert(event.game_id.clone(), record.clone());
                }
                None => {
                    records.remove(&event.game_id);
                }
            }
            Ok(applied)
        })
    }

    fn all(&self) -> StoreFuture<'_, Vec<RuntimeRecord>> {
        Box::pin(async move { Ok(self.records.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: EventKind, moves: u32) -> RuntimeEvent {
        RuntimeEvent {
            game_id: GameId::parse("g1").expect("id"),
            kind,
            instance: InstanceId::parse("a").expect("id"),
            summary: json!({"moves": moves}),
        }
    }

    fn run(events: &[RuntimeEvent]) -> (Option<RuntimeRecord>, Vec<Applied>) {
        let mut record = None;
        let mut out = Vec::new();
        for e in events {
            let applied = apply(record.as_ref(), e);
            record = applied.record.clone();
            out.push(applied);
        }
        (record, out)
    }

    #[test]
    fn running_restarting_running_and_terminal_states() {
        use EventKind::*;
        let (record, applied) = run(&[event(Started, 0), event(Crashed, 0), event(Restarted, 0)]);
        assert_eq!(record.expect("record").status, RunStatus::Running);
        assert!(applied.iter().all(|a| !a.conflict));
        let (record, _) = run(&[event(Started, 0), event(RestartLimitExceeded, 1), event(Started, 1)]);
        assert_eq!(record.expect("record").status, RunStatus::Failed, "failed is terminal");
        let (record, _) = run(&[event(Started, 0), event(Finished, 5), event(Recovered, 5)]);
        assert_eq!(record.expect("record").status, RunStatus::Finished, "finished is terminal");
    }

    #[test]
    fn a_conflicting_transition_updates_the_summary_only() {
        use EventKind::*;
        // A late "recovered" after the game failed: the CAS (restarting -> running) loses,
        // the status stays failed, the summary is refreshed.
        let (record, applied) = run(&[event(Started, 0), event(RestartLimitExceeded, 3), event(Recovered, 4)]);
        let record = record.expect("record");
        assert_eq!(record.status, RunStatus::Failed);
        assert_eq!(record.summary, json!({"moves": 4}));
        let last = applied.last().expect("applied");
        assert!(last.conflict && last.changed, "{last:?}");
        // A crash reported for a game that is not running: summary only.
        let (record, applied) = run(&[event(Started, 0), event(Crashed, 0), event(HangDetected, 1)]);
        assert_eq!(record.expect("record").status, RunStatus::Restarting);
        assert!(applied[2].conflict);
    }

    #[test]
    fn an_identical_event_changes_nothing_and_is_not_announced() {
        use EventKind::*;
        let (_, applied) = run(&[event(Started, 0), event(Progress, 2), event(Progress, 2), event(Moved, 2)]);
        assert!(applied[1].changed);
        assert!(!applied[2].changed, "identical summary and status: nothing to publish");
        assert!(!applied[3].changed);
        let (record, applied) = run(&[event(Started, 0), event(Removed, 0)]);
        assert!(record.is_none() && applied[1].changed);
    }

    #[actix_rt::test]
    async fn the_embedded_stream_delivers_each_event_once_in_order() {
        let stream = MemoryEvents::new(10);
        let me = InstanceId::parse("a").expect("id");
        for m in 0..3 {
            stream.publish(&event(EventKind::Progress, m)).await.expect("publish");
        }
        let got = stream.read(&me, 2, Duration::from_millis(10)).await.expect("read");
        assert_eq!(got.iter().map(|(_, e)| e.summary["moves"].clone()).collect::<Vec<_>>(), [json!(0), json!(1)]);
        let got = stream.read(&me, 10, Duration::from_millis(10)).await.expect("read");
        assert_eq!(got.len(), 1);
        assert!(stream.read(&me, 10, Duration::from_millis(10)).await.expect("read").is_empty());
    }
}
