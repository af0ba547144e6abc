//! The lobby (docs/DESIGN.md D7): the games every instance shows, built from the runtime records
//! the health-events stream feeds. Three parts:
//!
//! - [`EventSink`]: where the supervisor and the games publish their runtime events. It
//!   never blocks: events wait in a bounded queue (summary-only `progress` events are
//!   coalesced to the latest per game, at most one a second) and a task publishes them
//!   through the `messaging` breaker.
//! - [`LobbyFeed`], an actor: this instance's consumer in the stream's consumer group. It
//!   applies each event to its game's record (compare and set), announces the record only
//!   when its status or summary really changed (to every instance, over `P:lobby`, with
//!   Redis), and acknowledges it.
//! - [`LobbyView`]: the records as this instance knows them, and the `lobby` frame every
//!   lobby socket is sent, rebuilt at most four times a second and only when it changed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::health::HealthBoard;
use crate::ids::{GameId, InstanceId};
use crate::protocol::{GameSummary, LobbyFrame, SharedFrame};
use crate::store::events::{EventKind, EventStream, RecordStore, RuntimeEvent, RuntimeRecord};
use crate::store::redis::RedisConn;
use crate::store::Guarded;
use crate::supervision::system::{Part, SystemActor, SystemTree};

/// Games listed in a lobby snapshot.
pub const LOBBY_GAMES: usize = 100;

/// How often the lobby frame may be rebuilt.
const REBUILD_EVERY: Duration = Duration::from_millis(250);

/// How often the view is reloaded from the records (heals a missed announcement).
const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// How often coalesced progress events are published.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Lifecycle events kept while the stream is unreachable (the oldest are dropped beyond).
const QUEUE_CAPACITY: usize = 10_000;

/// A record that changed, as announced to every instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LobbyChange {
    /// The game.
    pub game_id: GameId,
    /// Its record, or `None` when it was removed.
    pub record: Option<RuntimeRecord>,
}

/// The lobby as this instance knows it.
pub struct LobbyView {
    records: Mutex<HashMap<GameId, RuntimeRecord>>,
    health: Arc<HealthBoard>,
    dirty: AtomicBool,
    frame: watch::Sender<SharedFrame>,
    last_health: Mutex<&'static str>,
    closing: watch::Sender<bool>,
}

impl LobbyView {
    /// An empty lobby with the server's health.
    pub fn new(health: Arc<HealthBoard>) -> Arc<LobbyView> {
        let (frame, _) = watch::channel(SharedFrame::text(""));
        let view = Arc::new(LobbyView {
            records: Mutex::new(HashMap::new()),
            health,
            dirty: AtomicBool::new(true),
            frame,
            last_health: Mutex::new(""),
            closing: watch::channel(false).0,
        });
        view.rebuild();
        view
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GameId, RuntimeRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies an announced change.
    pub fn apply(&self, change: LobbyChange) {
        let mut records = self.lock();
        match change.record {
            Some(record) => {
                records.insert(change.game_id, record);
            }
            None => {
                records.remove(&change.game_id);
            }
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// Replaces every record (a reload from the store).
    pub fn replace_all(&self, all: Vec<RuntimeRecord>) {
        let fresh: HashMap<GameId, RuntimeRecord> = all.into_iter().map(|r| (r.game_id.clone(), r)).collect();
        let mut records = self.lock();
        if *records != fresh {
            *records = fresh;
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// The lobby's games, newest first, at most `limit`.
    pub fn games(&self, limit: usize) -> Vec<Value> {
        let records = self.lock();
        fn created(r: &RuntimeRecord) -> &str {
            r.summary.get("created_at").and_then(Value::as_str).unwrap_or("")
        }
        // Each key read once; only the newest `limit` are sorted (thousands of games, four
        // rebuilds a second).
        let mut games: Vec<(&str, &RuntimeRecord)> = records.values().map(|r| (created(r), r)).collect();
        let newest_first = |a: &(&str, &RuntimeRecord), b: &(&str, &RuntimeRecord)| {
            b.0.cmp(a.0).then_with(|| a.1.game_id.as_str().cmp(b.1.game_id.as_str()))
        };
        if games.len() > limit && limit > 0 {
            games.select_nth_unstable_by(limit - 1, newest_first);
        }
        games.truncate(limit);
        games.sort_unstable_by(newest_first);
        games.into_iter().map(|(_, r)| r.summary.clone()).collect()
    }

    /// One game's summary, if the lobby knows it.
    pub fn get(&self, id: &GameId) -> Option<Value> {
        self.lock().get(id).map(|r| r.summary.clone())
    }

    /// Tells every lobby socket the server is shutting down (they close with 1012).
    pub fn shut_down(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes true when the server shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The current `lobby` frame, and every later one.
    pub fn subscribe(&self) -> watch::Receiver<SharedFrame> {
        self.frame.subscribe()
    }

    /// The current `lobby` frame.
    pub fn current(&self) -> SharedFrame {
        self.frame.borrow().clone()
    }

    /// Rebuilds the frame if a record or the health changed; sockets hear only a frame
    /// that differs from the last.
    pub fn rebuild(&self) {
        let health = self.health.report().status.as_str();
        let health_changed = {
            let mut last = self.last_health.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *last, health) != health
        };
        if !self.dirty.swap(false, Ordering::AcqRel) && !health_changed {
            return;
        }
        let text = LobbyFrame::Lobby { games: self.games(LOBBY_GAMES), health }.to_frame();
        self.frame.send_if_modified(|current| {
            if *current == text {
                return false;
            }
            *current = text;
            true
        });
    }
}

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

/// Where a changed record is announced: straight to the view (embedded), or to every
/// instance over `P:lobby` (Redis; this instance hears its own announcement too).
#[derive(Clone)]
pub enum Announcer {
    /// This process only.
    Local,
    /// Every instance on the Redis.
    Redis(Box<RedisConn>),
}

/// This instance's consumer of the health-events stream. A system actor (`lobby`): it
/// supervises its consumer task (a panic there is a failure of the lobby); a restart stops
/// that task, starts a new one (events not yet acknowledged are delivered again) and reloads
/// the whole lobby from the records store, where it really lives.
pub struct LobbyFeed {
    parts: FeedParts,
    view: Arc<LobbyView>,
    tree: Arc<SystemTree>,
    consumer: Option<tokio::task::AbortHandle>,
}

#[derive(Clone)]
struct FeedParts {
    me: InstanceId,
    events: Arc<dyn EventStream>,
    records: Arc<dyn RecordStore>,
    database: Guarded,
    messaging: Guarded,
    view: Arc<LobbyView>,
    announcer: Announcer,
}

impl LobbyFeed {
    /// A consumer named `me`.
    pub fn new(
        me: InstanceId,
        stores: &crate::store::Stores,
        database: Guarded,
        messaging: Guarded,
        view: Arc<LobbyView>,
        announcer: Announcer,
        tree: Arc<SystemTree>,
    ) -> Self {
        let parts = FeedParts {
            me,
            events: stores.events.clone(),
            records: stores.records.clone(),
            database,
            messaging,
            view: view.clone(),
            announcer,
        };
        LobbyFeed { parts, view, tree, consumer: None }
    }
}

impl FeedParts {
    /// Reads, applies, announces and acknowledges events, for ever.
    async fn consume(self) {
        let FeedParts { me, events, records, database, messaging, view, announcer } = self;
        loop {
            let batch = match database.call(events.read(&me, 100, Duration::from_millis(1000))).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::debug!("could not read the health-events stream: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut done = Vec::with_capacity(batch.len());
            for (id, event) in batch {
                match database.call(records.apply(&event)).await {
                    Ok(applied) => {
                        if applied.conflict {
                            tracing::debug!(game_id = %event.game_id, kind = event.kind.as_str(), "a runtime transition lost its compare-and-set; only the summary was updated");
                        }
                        if applied.changed {
                            let change = LobbyChange { game_id: event.game_id.clone(), record: applied.record };
                            announce(&announcer, &messaging, &view, change).await;
                        }
                        done.push(id);
                    }
                    // Left unacknowledged: delivered again later.
                    Err(e) => tracing::debug!(game_id = %event.game_id, "could not apply a runtime event: {e}"),
                }
            }
            if let Err(e) = database.call(events.ack(&done)).await {
                tracing::debug!("could not acknowledge runtime events: {e}");
            }
        }
    }
}

async fn announce(announcer: &Announcer, messaging: &Guarded, view: &LobbyView, change: LobbyChange) {
    match announcer {
        Announcer::Local => view.apply(change),
        Announcer::Redis(conn) => {
            let Ok(text) = serde_json::to_string(&change) else { return };
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(conn.key("lobby")).arg(text);
            if let Err(e) = messaging.call(conn.query::<i64>("lobby announce", &cmd)).await {
                // The periodic reload brings it to every instance anyway.
                tracing::debug!(game_id = %change.game_id, "could not announce a lobby change: {e}");
                view.apply(change);
            }
        }
    }
}

impl Actor for LobbyFeed {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let consumer = actix_rt::spawn(self.parts.clone().consume());
        self.consumer = Some(consumer.abort_handle());
        ctx.spawn(consumer.into_actor(self).map(|ended, act, ctx| match ended {
            Err(e) if e.is_panic() => {
                act.tree.failed(Part::Lobby, "the event-stream consumer panicked");
                ctx.stop();
            }
            // Aborted by a restart, or (never) returned.
            _ => {}
        }));
        ctx.run_interval(REBUILD_EVERY, |act, ctx| {
            act.guarded(ctx, |act, _| act.view.rebuild());
        });
        let reload = |act: &mut Self, ctx: &mut Context<Self>| {
            let (records, database) = (act.parts.records.clone(), act.parts.database.clone());
            ctx.spawn(async move { database.call(records.all()).await }.into_actor(act).map(|all, act, ctx| {
                if let Ok(all) = all {
                    act.guarded(ctx, |act, _| act.view.replace_all(all));
                }
            }));
        };
        reload(self, ctx);
        ctx.run_interval(RELOAD_EVERY, reload);
        self.tree.up(Part::Lobby);
    }
}

impl Supervised for LobbyFeed {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        if let Some(consumer) = self.consumer.take() {
            consumer.abort();
        }
        self.tree.restarting(Part::Lobby, ctx);
    }
}

crate::system_actor!(LobbyFeed, Part::Lobby);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::RunStatus;
    use serde_json::json;

    fn record(id: &str, moves: u32) -> RuntimeRecord {
        RuntimeRecord {
            game_id: GameId::parse(id).expect("id"),
            status: RunStatus::Running,
            summary: json!({"game_id": id, "moves": moves, "created_at": format!("2026-01-01T00:00:0{moves}.000Z")}),
            instance: InstanceId::parse("a").expect("id"),
        }
    }

    #[test]
    fn a_frame_is_sent_only_when_the_lobby_really_changed() {
        let view = LobbyView::new(Arc::new(HealthBoard::default()));
        let mut frames = view.subscribe();
        frames.mark_unchanged();
        view.apply(LobbyChange { game_id: GameId::parse("g1").expect("id"), record: Some(record("g1", 1)) });
        view.rebuild();
        assert!(frames.has_changed().expect("open"), "a new game is announced");
        let first = frames.borrow_and_update().clone();
        assert!(first.json().contains("\"g1\""));
        // The same record again, a reload with the same records, a rebuild with nothing new:
        // no new frame.
        view.apply(LobbyChange { game_id: GameId::parse("g1").expect("id"), record: Some(record("g1", 1)) });
        view.rebuild();
        view.replace_all(vec![record("g1", 1)]);
        view.rebuild();
        view.rebuild();
        assert!(!frames.has_changed().expect("open"), "identical snapshots are not re-sent");
        view.apply(LobbyChange { game_id: GameId::parse("g1").expect("id"), record: None });
        view.rebuild();
        assert!(frames.has_changed().expect("open"), "a removal is announced");
        assert!(!frames.borrow_and_update().json().contains("\"g1\""));
    }

    #[test]
    fn the_lobby_lists_newest_first() {
        let view = LobbyView::new(Arc::new(HealthBoard::default()));
        view.replace_all(vec![record("old", 1), record("new", 2)]);
        let games = view.games(10);
        assert_eq!(games[0]["game_id"], "new");
        assert_eq!(view.games(1).len(), 1);
    }
}
