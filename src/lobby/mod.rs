//! The lobby (docs/DESIGN.md D7): the games every instance shows, built from the runtime records
//! the health-events stream feeds (the games publish their events through
//! `store::event_sink::EventSink`, below hosting). Two parts:
//!
//! - [`LobbyFeed`], an actor: this instance's consumer in the stream's consumer group. It
//!   applies each event to its game's record (compare and set), announces the record only
//!   when its status or summary really changed (to every instance, over `P:lobby`, with
//!   Redis), and acknowledges it.
//! - [`LobbyView`]: the records as this instance knows them, and the `lobby` frame every
//!   lobby socket is sent, rebuilt at most four times a second and only when it changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::health::HealthBoard;
use crate::ids::{GameId, InstanceId};
use crate::metrics::Metrics;
use crate::protocol::{LobbyFrame, SharedFrame};
use crate::runtime::system::{Part, SystemActor, SystemTree};
use crate::store::events::{EventStream, RecordStore, RuntimeRecord};
use crate::store::redis::RedisConn;
use crate::store::Guarded;

/// How often the lobby may be rebuilt.
const REBUILD_EVERY: Duration = Duration::from_millis(250);

/// How often the view is reloaded from the records (heals a missed announcement).
const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// A record that changed, as announced to every instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LobbyChange {
    /// The game.
    pub game_id: GameId,
    /// Its record, or `None` when it was removed.
    pub record: Option<RuntimeRecord>,
}

/// How the lobby is served (`lobby:` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LobbySettings {
    /// Games in one page.
    pub page_size: usize,
    /// Least time between two `lobby` frames to one socket.
    pub push_interval: Duration,
}

impl LobbySettings {
    /// The settings of `config`.
    pub fn of(config: &crate::config::LobbyConfig) -> LobbySettings {
        LobbySettings {
            page_size: config.page_size as usize,
            push_interval: Duration::from_millis(config.push_interval_ms),
        }
    }
}

impl Default for LobbySettings {
    fn default() -> Self {
        LobbySettings::of(&crate::config::LobbyConfig::default())
    }
}

/// One page of the lobby.
#[derive(Clone, Debug, PartialEq)]
pub struct LobbyPage {
    /// The summaries on it, in lobby order.
    pub games: Vec<Value>,
    /// Which page (0-based).
    pub page: u32,
    /// Games in a full page.
    pub page_size: usize,
    /// Games in the whole lobby.
    pub total: usize,
}

/// The lobby as of the last rebuild: its games in lobby order, and the health it showed.
#[derive(Default)]
struct Listing {
    games: Vec<Arc<RuntimeRecord>>,
    health: &'static str,
}

/// The listing and the `lobby` frames built from it so far, by page (most sockets show the
/// first page: it is serialised once per rebuild, and every socket writes the same bytes).
#[derive(Default)]
struct Current {
    listing: Arc<Listing>,
    frames: HashMap<u32, SharedFrame>,
}

/// The lobby as this instance knows it.
pub struct LobbyView {
    records: Mutex<HashMap<GameId, Arc<RuntimeRecord>>>,
    health: Arc<HealthBoard>,
    settings: LobbySettings,
    metrics: Arc<Metrics>,
    dirty: AtomicBool,
    current: Mutex<Current>,
    /// Bumped by each rebuild that changed what the lobby shows; lobby sockets wait on it.
    generation: watch::Sender<u64>,
    last_health: Mutex<&'static str>,
    closing: watch::Sender<bool>,
}

/// Where a game's status puts it in the lobby: games a newcomer can join first, then games
/// in play, then ended ones, then closed ones (failed, abandoned).
fn status_rank(record: &RuntimeRecord) -> u8 {
    match record.summary.get("status").and_then(Value::as_str) {
        Some("waiting") => 0,
        Some("playing") => 1,
        Some("won" | "draw") => 2,
        Some("failed" | "abandoned") => 3,
        _ => 4,
    }
}

fn created_at(record: &RuntimeRecord) -> &str {
    record.summary.get("created_at").and_then(Value::as_str).unwrap_or("")
}

/// A record's place in the lobby order (docs/PROTOCOL.md): by status rank, newest first
/// within a rank, then by id so that the order is total and pages never overlap.
fn lobby_order(a: &(u8, &str, &str), b: &(u8, &str, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)).then_with(|| a.2.cmp(b.2))
}

impl LobbyView {
    /// An empty lobby with the server's health, served as `settings` say.
    pub fn new(health: Arc<HealthBoard>, settings: LobbySettings, metrics: Arc<Metrics>) -> Arc<LobbyView> {
        let view = Arc::new(LobbyView {
            records: Mutex::new(HashMap::new()),
            health,
            settings,
            metrics,
            dirty: AtomicBool::new(true),
            current: Mutex::new(Current::default()),
            generation: watch::channel(0).0,
            last_health: Mutex::new(""),
            closing: watch::channel(false).0,
        });
        view.rebuild();
        view
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GameId, Arc<RuntimeRecord>>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the lobby is served.
    pub fn settings(&self) -> LobbySettings {
        self.settings
    }

    /// Counts a `lobby` frame queued on a socket.
    pub fn sent(&self, frame: &SharedFrame) {
        self.metrics.lobby_frame_sent(frame.wire().len());
    }

    /// Applies an announced change.
    pub fn apply(&self, change: LobbyChange) {
        let mut records = self.lock();
        match change.record {
            Some(record) => {
                records.insert(change.game_id, Arc::new(record));
            }
            None => {
                records.remove(&change.game_id);
            }
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// Replaces every record (a reload from the store).
    pub fn replace_all(&self, all: Vec<RuntimeRecord>) {
        let mut records = self.lock();
        let same = records.len() == all.len()
            && all.iter().all(|r| records.get(&r.game_id).is_some_and(|known| **known == *r));
        if !same {
            *records = all.into_iter().map(|r| (r.game_id.clone(), Arc::new(r))).collect();
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Page `page` (0-based) of the lobby, in lobby order: rebuilt first if a record changed
    /// since the last rebuild (a REST client reads what it just did; the rebuild is done no
    /// more often than the records change, whoever does it).
    pub fn page(&self, page: u32) -> LobbyPage {
        if self.dirty.load(Ordering::Acquire) {
            self.rebuild();
        }
        let listing = self.current().listing.clone();
        LobbyPage {
            games: Self::slice(&listing, page, self.settings.page_size).iter().map(|r| r.summary.clone()).collect(),
            page,
            page_size: self.settings.page_size,
            total: listing.games.len(),
        }
    }

    fn slice(listing: &Listing, page: u32, page_size: usize) -> &[Arc<RuntimeRecord>] {
        let start = (page as usize).saturating_mul(page_size).min(listing.games.len());
        let end = start.saturating_add(page_size).min(listing.games.len());
        &listing.games[start..end]
    }

    /// The `lobby` frame of page `page` as of the last rebuild: built once per rebuild and
    /// page, then shared by every socket that shows that page.
    pub fn page_frame(&self, page: u32) -> SharedFrame {
        let mut current = self.current();
        if let Some(frame) = current.frames.get(&page) {
            return frame.clone();
        }
        let size = self.settings.page_size;
        let listing = current.listing.clone();
        let frame = LobbyFrame::Lobby {
            games: Self::slice(&listing, page, size).iter().map(|r| r.summary.clone()).collect(),
            health: listing.health,
            page,
            page_size: u32::try_from(size).unwrap_or(u32::MAX),
            total: listing.games.len(),
        }
        .to_frame();
        // Pages past the end are all empty: not kept, so asking for many cannot fill memory.
        if (page as usize).saturating_mul(size) < listing.games.len().max(1) {
            current.frames.insert(page, frame.clone());
        }
        frame
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

    /// Changes whenever the lobby does (a rebuild that changed the games or the health).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Rebuilds the listing if a record or the health changed; lobby sockets hear of it only
    /// when the lobby really differs from the last listing.
    pub fn rebuild(&self) {
        let health = self.health.report().status.as_str();
        let health_changed = {
            let mut last = self.last_health.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *last, health) != health
        };
        if !self.dirty.swap(false, Ordering::AcqRel) && !health_changed {
            return;
        }
        let all: Vec<Arc<RuntimeRecord>> = self.lock().values().cloned().collect();
        // Each key read once (thousands of games, up to four rebuilds a second).
        let mut keyed: Vec<((u8, &str, &str), usize)> =
            all.iter().enumerate().map(|(i, r)| ((status_rank(r), created_at(r), r.game_id.as_str()), i)).collect();
        keyed.sort_unstable_by(|a, b| lobby_order(&a.0, &b.0));
        let games: Vec<Arc<RuntimeRecord>> = keyed.iter().map(|&(_, i)| all[i].clone()).collect();
        let mut current = self.current();
        let unchanged = current.listing.health == health
            && current.listing.games.len() == games.len()
            && current.listing.games.iter().zip(&games).all(|(a, b)| Arc::ptr_eq(a, b) || a == b);
        if unchanged {
            return;
        }
        let listing = Listing { games, health };
        current.listing = Arc::new(listing);
        current.frames.clear();
        drop(current);
        self.generation.send_modify(|g| *g += 1);
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
            // PUBLISH, or SPUBLISH in a Redis Cluster (where the relay's subscriber listens).
            let cmd = conn.publish_cmd(&conn.key("lobby"), &text);
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

crate::runtime::system::system_actor!(LobbyFeed, Part::Lobby);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::RunStatus;
    use serde_json::json;

    fn record(id: &str, status: &str, moves: u32) -> RuntimeRecord {
        RuntimeRecord {
            game_id: GameId::parse(id).expect("id"),
            status: RunStatus::Running,
            summary: json!({"game_id": id, "status": status, "moves": moves, "created_at": format!("2026-01-01T00:00:0{moves}.000Z")}),
            instance: InstanceId::parse("a").expect("id"),
        }
    }

    fn view(page_size: usize) -> Arc<LobbyView> {
        let settings = LobbySettings { page_size, push_interval: Duration::from_secs(1) };
        LobbyView::new(Arc::new(HealthBoard::default()), settings, Arc::new(Metrics::default()))
    }

    fn ids(frame: &SharedFrame) -> Vec<String> {
        let v: Value = serde_json::from_str(frame.json()).expect("json");
        v["games"].as_array().expect("games").iter().map(|g| g["game_id"].as_str().unwrap_or("").to_owned()).collect()
    }

    #[test]
    fn the_lobby_changes_only_when_it_really_changed() {
        let view = view(10);
        let mut changes = view.subscribe();
        changes.mark_unchanged();
        view.apply(LobbyChange { game_id: GameId::parse("g1").expect("id"), record: Some(record("g1", "playing", 1)) });
        view.rebuild();
        assert!(changes.has_changed().expect("open"), "a new game is announced");
        changes.mark_unchanged();
        let first = view.page_frame(0);
        assert_eq!(ids(&first), ["g1"]);
        assert!(first.json().contains("\"total\":1"), "{}", first.json());
        // The same record again, a reload with the same records, a rebuild with nothing new:
        // no change, and the same frame (the same bytes, built once).
        view.apply(LobbyChange { game_id: GameId::parse("g1").expect("id"), record: Some(record("g1", "playing", 1)) });
        view.rebuild();
        view.replace_all(vec![record("g1", "playing", 1)]);
        view.rebuild();
        view.rebuild();
        assert!(!changes.has_changed().expect("open"), "an identical lobby is not announced");
        assert_eq!(view.page_frame(0).wire().as_ptr(), first.wire().as_ptr());
        view.apply(LobbyChange { game_id: GameId::parse("g1").expect("id"), record: None });
        view.rebuild();
        assert!(changes.has_changed().expect("open"), "a removal is announced");
        assert!(ids(&view.page_frame(0)).is_empty());
    }

    #[test]
    fn joinable_games_come_first_then_games_in_play_then_ended_ones_newest_first() {
        let view = view(10);
        view.replace_all(vec![
            record("won", "won", 9),
            record("old", "playing", 1),
            record("new", "playing", 2),
            record("open", "waiting", 0),
            record("gone", "abandoned", 8),
        ]);
        view.rebuild();
        assert_eq!(ids(&view.page_frame(0)), ["open", "new", "old", "won", "gone"]);
    }

    #[test]
    fn pages_split_the_lobby_and_past_the_end_is_empty() {
        let view = view(2);
        view.replace_all((1..=5).map(|i| record(&format!("g{i}"), "playing", i)).collect());
        view.rebuild();
        let pages: Vec<Vec<String>> = (0..4).map(|p| ids(&view.page_frame(p))).collect();
        assert_eq!(pages, [vec!["g5", "g4"], vec!["g3", "g2"], vec!["g1"], vec![]]);
        let rest = view.page(1);
        assert_eq!((rest.total, rest.page_size, rest.games.len()), (5, 2, 2));
        assert_eq!(view.page(u32::MAX).games, Vec::<Value>::new());
        // Pages past the end are not kept.
        view.page_frame(1000);
        assert!(view.current().frames.len() <= 3);
    }
}
