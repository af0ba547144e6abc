//! [`EventSink`]: where a game's runtime events leave this instance for the health-events
//! stream (docs/DESIGN.md D7). Never blocks a game: lifecycle events queue in order (the
//! oldest dropped past a bound while the stream is unreachable), progress is coalesced to
//! the latest summary of each game and published once a second.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::ids::{GameId, InstanceId};
use crate::protocol::GameSummary;
use crate::store::events::{EventKind, EventStream, RuntimeEvent};
use crate::store::Guarded;

/// How often coalesced progress events are published.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Lifecycle events kept while the stream is unreachable (the oldest are dropped beyond).
const QUEUE_CAPACITY: usize = 10_000;

/// Where runtime events are published from. Never blocks.
pub struct EventSink {
    me: InstanceId,
    queue: Mutex<VecDeque<RuntimeEvent>>,
    /// The latest summary of each game that progressed since the last round, kept typed:
    /// it is turned into JSON once per round, not once per move.
    progress: Mutex<HashMap<GameId, GameSummary>>,
    wake: Notify,
    dropped: AtomicU64,
}

impl EventSink {
    /// A sink for instance `me`'s events; start it with [`EventSink::run`].
    pub fn new(me: InstanceId) -> Arc<EventSink> {
        Arc::new(EventSink {
            me,
            queue: Mutex::new(VecDeque::new()),
            progress: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        })
    }

    /// Publishes a game's progress (a move): coalesced, the latest summary of each game is
    /// published once per round.
    pub fn progress(&self, game_id: &GameId, summary: GameSummary) {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).insert(game_id.clone(), summary);
    }

    /// Publishes a lifecycle event (`kind`, not progress: [`EventSink::progress`]) for a
    /// game with its summary after the event.
    pub fn publish(&self, game_id: &GameId, kind: EventKind, summary: Value) {
        debug_assert!(kind != EventKind::Progress, "progress goes through EventSink::progress");
        let event = RuntimeEvent { game_id: game_id.clone(), kind, instance: self.me.clone(), summary };
        // A lifecycle event carries the latest summary: a pending progress is older.
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).remove(game_id);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.push_back(event);
        if queue.len() > QUEUE_CAPACITY {
            queue.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Events dropped because the queue was full (the stream was unreachable too long).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The publisher, for ever: lifecycle events in order as they come, coalesced progress
    /// every second; what fails stays queued and is retried.
    pub async fn run(self: Arc<Self>, stream: Arc<dyn EventStream>, messaging: Guarded) {
        let mut next_progress = tokio::time::Instant::now() + PROGRESS_EVERY;
        loop {
            let _ = tokio::time::timeout_at(next_progress, self.wake.notified()).await;
            loop {
                // An event leaves the queue once published, so a crash of this task publishes
                // it again rather than losing it.
                let Some(event) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).front().cloned() else { break };
                if let Err(e) = messaging.call(stream.publish(&event)).await {
                    tracing::debug!(game_id = %event.game_id, kind = event.kind.as_str(), "could not publish a runtime event; keeping it: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                // Unless a full queue dropped it meanwhile.
                if queue.front() == Some(&event) {
                    queue.pop_front();
                }
            }
            if tokio::time::Instant::now() >= next_progress {
                next_progress = tokio::time::Instant::now() + PROGRESS_EVERY;
                let batch: Vec<RuntimeEvent> = self
                    .progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain()
                    .map(|(game_id, summary)| RuntimeEvent {
                        game_id,
                        kind: EventKind::Progress,
                        instance: self.me.clone(),
                        summary: serde_json::to_value(summary).unwrap_or_default(),
                    })
                    .collect();
                for event in batch {
                    if messaging.call(stream.publish(&event)).await.is_err() {
                        // The next progress of that game carries the newer summary anyway.
                        break;
                    }
                }
            }
        }
    }
}
