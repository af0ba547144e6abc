//! SnapshotKeeper: the one owner, in this process, of every game's latest snapshot (docs/DESIGN.md
//! D2). A game publishes its snapshot after each accepted change; the keeper holds it as the
//! latest and writes it to the [`SnapshotStore`] behind the game, through the `database`
//! breaker, batching what is pending. While the store is down only the latest snapshot of
//! each game stays pending; the writer retries when the open breaker lets a probe through,
//! so its retry is the probe, and writes the rest as soon as the probe closes it. A
//! game resumes from the keeper's latest (an arbiter move, a restart after a panic) or, when
//! the process does not hold the game (a restart of the server, a takeover), from the store.
//! A write refused by the fence (a newer epoch holds the game) is reported on the channel
//! [`SnapshotKeeper::new`] hands back, with who took the newer epochs: the game's owner
//! stops the game at once when another instance did, or, when the newer epoch is its own (a
//! claim or renewal it stopped waiting for ran in the store later), carries on under it and
//! has the latest snapshot written again ([`SnapshotKeeper::restamp`]). The keeper keeps
//! that snapshot meanwhile: only the owner decides to drop it.
//!
//! The keeper also says which version of each game is durable (written, and acknowledged
//! by the replicas the store waits for): [`SnapshotKeeper::durable_watch`]. A game that
//! shows a change only once it is durable (docs/DESIGN.md D18) holds its frames until
//! then. Writes of many games go out as one batch ([`SnapshotStore::write_all`]: one round
//! trip, one `WAIT`), and what is published while a batch is in flight forms the next one,
//! so the cost of durability is a round trip per batch, not per move. When some writes of a
//! batch fail and others do not (a Redis Cluster with one shard failing over), the games
//! whose writes failed move to a retry lane of their own, tried every [`RETRY_EVERY`]: a
//! batch never waits on a failing shard, so the other shards' games go on at full speed.
//! Each part goes through its shard's breaker ([`Guarded::for_game`], docs/DESIGN.md D19):
//! a part its open breaker refuses goes to the retry lane too, which is then its probe.
//! Each shard's part is in flight on its own: a shard whose write hangs until the command
//! timeout (its primary was just killed) delays its own games' next writes only.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::{mpsc, watch, Notify};

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::ids::GameId;
use crate::store::directory::Tenure;
use crate::store::snapshot::{Snapshot, SnapshotStore, WriteOutcome};
use crate::store::{Guarded, StoreError};

/// Most snapshots written in one part of a batch (one shard's).
const BATCH: usize = 256;

/// How often pending snapshots are retried while the store fails and the breaker lets
/// calls through (closed, or half-open with its probe slot taken).
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// While the breaker is open the writer sleeps until it lets a probe through, plus this
/// much: its retry is then the probe (docs/DESIGN.md, the store breakers' schedule).
const PROBE_SLACK: Duration = Duration::from_millis(5);

/// How soon the writer tries again when the breaker is half-open with every probe slot
/// taken by other callers.
const HALF_OPEN_RETRY: Duration = Duration::from_millis(20);

/// Snapshots written in one call, through one breaker (a shard's, or the whole store's).
struct Part {
    guard: Guarded,
    batch: Vec<(Arc<Snapshot>, Option<Duration>)>,
}

/// The part in `parts` whose breaker is `guard`'s, added when there is none.
fn part_of(parts: &mut Vec<Part>, guard: Guarded) -> &mut Part {
    let at = match parts.iter().position(|p| p.guard.breaker().name() == guard.breaker().name()) {
        Some(at) => at,
        None => {
            parts.push(Part { guard, batch: Vec::new() });
            parts.len() - 1
        }
    };
    &mut parts[at]
}

/// How long a part whose whole-store call failed waits before the next: until the breaker
/// lets a probe through (its retry is then the probe), a moment when every probe slot is
/// taken, else [`RETRY_EVERY`].
fn rest(breaker: &CircuitBreaker) -> Duration {
    match breaker.open_remaining() {
        Some(left) => left + PROBE_SLACK,
        None if breaker.state() == BreakerState::HalfOpen => HALF_OPEN_RETRY,
        None => RETRY_EVERY,
    }
}

/// A write refused by the fence: the game's epoch moved past the snapshot's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fenced {
    /// The game.
    pub game_id: GameId,
    /// The refused snapshot's epoch.
    pub epoch: u64,
    /// The epoch in force.
    pub current: u64,
    /// Who took the epochs after the snapshot's, if the store knows
    /// ([`Tenure::covers`]: this instance itself, or another one).
    pub tenure: Option<Tenure>,
}

#[derive(Default)]
struct State {
    latest: HashMap<GameId, Arc<Snapshot>>,
    pending: HashSet<GameId>,
    /// Games forgotten while a write of theirs was in flight.
    forgotten: HashSet<GameId>,
    /// Games whose write failed in a batch where others succeeded: the retry lane writes
    /// their latest snapshot, not the batches.
    retrying: HashSet<GameId>,
    /// Each held game's highest durable version.
    durable: HashMap<GameId, watch::Sender<u64>>,
}

/// The snapshots of this process's games.
pub struct SnapshotKeeper {
    store: Arc<dyn SnapshotStore>,
    guard: Guarded,
    finished_ttl: Duration,
    state: Mutex<State>,
    wake: Notify,
    fenced: mpsc::UnboundedSender<Fenced>,
    /// Whether each game's durable version is followed (games show a change only once it
    /// is durable; else no game asks, and nothing is kept for it).
    tracks_durability: bool,
}

impl SnapshotKeeper {
    /// A keeper writing to `store` through `guard`; ended games' snapshots expire after
    /// `finished_ttl`; each game's durable version followed when `tracks_durability`.
    /// Answers the keeper and the channel of fenced writes. Start its writer with
    /// [`SnapshotKeeper::run`].
    pub fn new(
        store: Arc<dyn SnapshotStore>,
        guard: Guarded,
        finished_ttl: Duration,
        tracks_durability: bool,
    ) -> (Arc<SnapshotKeeper>, mpsc::UnboundedReceiver<Fenced>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let keeper = SnapshotKeeper {
            store,
            guard,
            finished_ttl,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            fenced: tx,
            tracks_durability,
        };
        (Arc::new(keeper), rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `snapshot` as its game's latest and schedules its write. Never blocks.
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        {
            let mut state = self.lock();
            let id = snapshot.game_id.clone();
            state.forgotten.remove(&id);
            if !state.retrying.contains(&id) {
                state.pending.insert(id.clone());
            }
            if self.tracks_durability {
                // From the first publish: a write may be done before its game first asks.
                state.durable.entry(id.clone()).or_insert_with(|| watch::Sender::new(0));
            }
            state.latest.insert(id, snapshot);
        }
        self.wake.notify_one();
    }

    /// Stamps the latest snapshot of a game with `epoch` (the lease epoch its owner holds
    /// now) and writes it again. Nothing else changes: the same version, a newer epoch.
    pub fn restamp(&self, id: &GameId, epoch: u64) {
        {
            let mut state = self.lock();
            let Some(latest) = state.latest.get(id) else { return };
            if latest.epoch == epoch {
                return;
            }
            let mut fresh = (**latest).clone();
            fresh.epoch = epoch;
            state.latest.insert(id.clone(), Arc::new(fresh));
            if !state.retrying.contains(id) {
                state.pending.insert(id.clone());
            }
        }
        self.wake.notify_one();
    }

    /// The highest version of a game known to be durable (0: none yet), as it changes. The
    /// sender goes when the game is forgotten: the receiver's `changed` then fails.
    pub fn durable_watch(&self, id: &GameId) -> watch::Receiver<u64> {
        self.lock().durable.entry(id.clone()).or_insert_with(|| watch::Sender::new(0)).subscribe()
    }

    /// Waits until `version` of a game is durable (true), or the game is forgotten
    /// (false).
    pub async fn when_durable(&self, id: &GameId, version: u64) -> bool {
        let mut rx = self.durable_watch(id);
        let durable = rx.wait_for(|durable| *durable >= version).await.is_ok();
        durable
    }

    /// The latest snapshot of a game this process holds.
    pub fn latest(&self, id: &GameId) -> Option<Arc<Snapshot>> {
        self.lock().latest.get(id).cloned()
    }

    /// The snapshot to resume a game from: the latest this process holds, else the store's.
    pub async fn load(&self, id: &GameId) -> Result<Option<Arc<Snapshot>>, StoreError> {
        if let Some(latest) = self.latest(id) {
            return Ok(Some(latest));
        }
        Ok(self.guard.call(self.store.read(id)).await?.map(Arc::new))
    }

    /// Reads the store's copy, ignoring what this process holds (a takeover).
    pub async fn read_stored(&self, id: &GameId) -> Result<Option<Snapshot>, StoreError> {
        self.guard.call(self.store.read(id)).await
    }

    /// Drops a game this process no longer holds (removed, or taken over elsewhere); the
    /// store's copy stays unless `remove_stored`.
    pub async fn forget(&self, id: &GameId, remove_stored: bool) {
        {
            let mut state = self.lock();
            state.latest.remove(id);
            state.pending.remove(id);
            state.retrying.remove(id);
            state.durable.remove(id);
            state.forgotten.insert(id.clone());
        }
        if remove_stored {
            if let Err(e) = self.guard.call(self.store.remove(id)).await {
                tracing::debug!(game_id = %id, "could not remove a snapshot from the store: {e}");
            }
        }
    }

    /// Games whose latest snapshot is not written yet.
    pub fn pending(&self) -> usize {
        let state = self.lock();
        state.pending.len() + state.retrying.len()
    }

    /// Writes what is pending, in batches, until nothing is or `deadline` passes; answers
    /// how many are still pending (shutdown).
    pub async fn flush(&self, deadline: Duration) -> usize {
        let until = tokio::time::Instant::now() + deadline;
        while self.pending() > 0 && tokio::time::Instant::now() < until {
            // Here the retry lane's games go in the batches too.
            let failing = {
                let mut state = self.lock();
                let retrying: Vec<GameId> = state.retrying.drain().collect();
                let failing = !retrying.is_empty();
                state.pending.extend(retrying);
                failing
            };
            if !self.write_batch().await || failing {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.pending()
    }

    /// The writer: waits for snapshots and writes them, and beside it the retry lane.
    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        // A run after a crash (under the supervision tree) may have cut a batch short: every
        // game's latest snapshot is pending again (a write the store already holds is stale).
        {
            let mut state = self.lock();
            let ids: Vec<GameId> = state.latest.keys().filter(|id| !state.retrying.contains(*id)).cloned().collect();
            state.pending.extend(ids);
        }
        tokio::join!(self.clone().write_pending(), self.retry_failed());
    }

    /// The retry lane: every [`RETRY_EVERY`], the latest snapshots of the games whose
    /// writes failed while others' succeeded, in one batch. A game written leaves the lane
    /// (a newer snapshot published meanwhile goes to the batches).
    async fn retry_failed(&self) {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            let batch: Vec<(Arc<Snapshot>, Option<Duration>)> = {
                let state = self.lock();
                state
                    .retrying
                    .iter()
                    .take(BATCH)
                    .filter_map(|id| state.latest.get(id))
                    .map(|s| (s.clone(), s.ended().then_some(self.finished_ttl)))
                    .collect()
            };
            if batch.is_empty() {
                continue;
            }
            let mut parts: Vec<Part> = Vec::new();
            for (snapshot, ttl) in batch {
                part_of(&mut parts, self.guard.for_game(&snapshot.game_id)).batch.push((snapshot, ttl));
            }
            let written = futures_util::future::join_all(parts.iter().map(|part| self.call_part(part))).await;
            let outcomes = parts.iter().zip(written).flat_map(|(part, outcomes)| part.batch.iter().zip(outcomes));
            for ((snapshot, _), outcome) in outcomes {
                let Ok(outcome) = outcome else { continue };
                {
                    let mut state = self.lock();
                    state.retrying.remove(&snapshot.game_id);
                    let newer = state.latest.get(&snapshot.game_id).is_some_and(|l| !Arc::ptr_eq(l, snapshot));
                    if newer {
                        state.pending.insert(snapshot.game_id.clone());
                    }
                }
                self.written(snapshot, outcome);
            }
            self.wake.notify_one();
        }
    }

    /// The batches: what is pending, in one part per shard (its breaker; the whole store's
    /// outside a Redis Cluster), each shard with one part in flight at a time and the
    /// shards' parts in flight together: a shard whose write hangs until its command
    /// timeout (its primary just died) holds back its own games only, and the other
    /// shards' next writes go out as soon as their own last one is answered.
    async fn write_pending(self: Arc<Self>) {
        let mut writing = FuturesUnordered::new();
        // Shards with a part in flight, and shards resting after their call failed: until
        // their breaker lets a probe through (a new snapshot does not end the rest: the
        // call would only be refused).
        let mut busy: HashSet<String> = HashSet::new();
        let mut resting: HashMap<String, tokio::time::Instant> = HashMap::new();
        loop {
            let now = tokio::time::Instant::now();
            resting.retain(|_, until| *until > now);
            let skip: HashSet<String> = busy.iter().chain(resting.keys()).cloned().collect();
            for part in self.take_parts(&skip) {
                let name = part.guard.breaker().name().to_owned();
                busy.insert(name.clone());
                let keeper = &self;
                writing.push(async move {
                    let written = keeper.write_part(&part).await;
                    (name, part.guard, written)
                });
            }
            let wake_at = resting.values().min().copied().unwrap_or(now + RETRY_EVERY);
            tokio::select! {
                Some((name, guard, written)) = writing.next(), if !writing.is_empty() => {
                    busy.remove(&name);
                    if !written {
                        resting.insert(name, tokio::time::Instant::now() + rest(guard.breaker()));
                    }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// Takes what is pending into parts, one per shard, at most [`BATCH`] snapshots each;
    /// the games of the shards in `skip` stay pending.
    fn take_parts(&self, skip: &HashSet<String>) -> Vec<Part> {
        if !skip.is_empty() && !self.guard.sharded() {
            return Vec::new(); // the one part is in flight or resting: nothing to look at
        }
        let mut state = self.lock();
        let mut parts: Vec<Part> = Vec::new();
        let mut taken = Vec::new();
        for id in &state.pending {
            let guard = self.guard.for_game(id);
            if skip.contains(guard.breaker().name()) {
                continue;
            }
            let Some(snapshot) = state.latest.get(id) else {
                taken.push(id.clone()); // forgotten: nothing to write
                continue;
            };
            let part = part_of(&mut parts, guard);
            if part.batch.len() < BATCH {
                part.batch.push((snapshot.clone(), snapshot.ended().then_some(self.finished_ttl)));
                taken.push(id.clone());
            }
        }
        for id in taken {
            state.pending.remove(&id);
        }
        parts.retain(|p| !p.batch.is_empty());
        parts
    }

    /// Writes what is pending once, every shard's part at once (shutdown's flush, and the
    /// tests). False when the whole store failed.
    async fn write_batch(&self) -> bool {
        let parts = self.take_parts(&HashSet::new());
        let written = futures_util::future::join_all(parts.iter().map(|part| self.write_part(part))).await;
        written.into_iter().all(|w| w)
    }

    /// Writes one shard's part in one call to the store. False when the whole store failed
    /// (every snapshot of it not forgotten meanwhile is pending again); a shard's failed
    /// writes go to the retry lane.
    async fn write_part(&self, part: &Part) -> bool {
        let whole_store = part.guard.breaker().name() == self.guard.breaker().name();
        let outcomes = self.call_part(part).await;
        if whole_store && outcomes.iter().all(Result::is_err) {
            // Refused by the breaker, failed, or not acknowledged by the replicas: none of
            // it counts as durable; whatever is still the latest stays pending.
            let mut state = self.lock();
            for (snapshot, _) in &part.batch {
                if !state.forgotten.contains(&snapshot.game_id) {
                    state.pending.insert(snapshot.game_id.clone());
                }
            }
            drop(state);
            if let Some(Err(e)) = outcomes.first() {
                tracing::debug!(
                    snapshots = part.batch.len(),
                    "a batch of snapshot writes failed; they stay pending: {e}"
                );
            }
            return false;
        }
        let mut failed = Vec::new();
        for ((snapshot, _), outcome) in part.batch.iter().zip(outcomes) {
            match outcome {
                Ok(outcome) => self.written(snapshot, outcome),
                Err(e) => failed.push((snapshot.game_id.clone(), e)),
            }
        }
        if let Some((_, e)) = failed.first() {
            tracing::debug!(
                snapshots = failed.len(),
                "snapshot writes failed while others succeeded; they are retried on their own: {e}"
            );
            let mut state = self.lock();
            for (id, _) in failed {
                if !state.forgotten.contains(&id) {
                    state.pending.remove(&id);
                    state.retrying.insert(id);
                }
            }
        }
        true
    }

    /// One part's call through its shard's breaker: each snapshot's outcome, in order.
    async fn call_part(&self, part: &Part) -> Vec<Result<WriteOutcome, StoreError>> {
        match part.guard.call(self.store.write_all(&part.batch)).await {
            Ok(mut outcomes) => {
                outcomes.resize_with(part.batch.len(), || {
                    Err(StoreError::Backend("the store answered fewer writes than it was given".to_owned()))
                });
                outcomes
            }
            Err(e) => part.batch.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Records one write's outcome: durable (written, or the store already holds it or a
    /// newer one of this owner's), or fenced (reported to the owner).
    fn written(&self, snapshot: &Snapshot, outcome: WriteOutcome) {
        match outcome {
            WriteOutcome::Written | WriteOutcome::Stale => {
                let state = self.lock();
                if let Some(durable) = state.durable.get(&snapshot.game_id) {
                    durable.send_if_modified(|v| {
                        let newer = snapshot.version > *v;
                        if newer {
                            *v = snapshot.version;
                        }
                        newer
                    });
                }
            }
            WriteOutcome::Fenced { epoch, tenure } => {
                // Not pending again until its owner says under which epoch (or forgets it).
                tracing::debug!(game_id = %snapshot.game_id, epoch = snapshot.epoch, current = epoch, taker = ?tenure.as_ref().map(|t| t.instance.as_str()), "a snapshot write was fenced by a newer epoch; its owner decides");
                let _ = self.fenced.send(Fenced {
                    game_id: snapshot.game_id.clone(),
                    epoch: snapshot.epoch,
                    current: epoch,
                    tenure,
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::breaker::CircuitBreaker;
    use crate::config::BreakerConfig;
    use crate::game::{Board, Connect4, Rules as _};
    use crate::ids::InstanceId;
    use crate::store::directory::{GameDirectory as _, MemoryDirectory};
    use crate::store::snapshot::MemorySnapshots;

    fn snapshot(id: &GameId, version: u64, epoch: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            game_id: id.clone(),
            board: Board::new(Connect4::new_game()),
            seats: [None, None],
            created_at: "2026-01-01T00:00:00.000Z".into(),
            abandoned: false,
            restarts: 0,
            failed: false,
            version,
            epoch,
        })
    }

    /// A store that fails every call while `down`, counting the writes it was asked for.
    struct Flaky {
        inner: MemorySnapshots,
        down: std::sync::atomic::AtomicBool,
        writes: std::sync::atomic::AtomicU32,
    }

    impl SnapshotStore for Flaky {
        fn write<'a>(
            &'a self,
            snapshot: &'a Snapshot,
            ttl: Option<Duration>,
        ) -> crate::store::StoreFuture<'a, WriteOutcome> {
            Box::pin(async move {
                // Counted when the call is made, not when the breaker refuses it unmade.
                self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(StoreError::Backend("connection refused".into()));
                }
                self.inner.write(snapshot, ttl).await
            })
        }
        fn read<'a>(&'a self, id: &'a GameId) -> crate::store::StoreFuture<'a, Option<Snapshot>> {
            self.inner.read(id)
        }
        fn remove<'a>(&'a self, id: &'a GameId) -> crate::store::StoreFuture<'a, ()> {
            self.inner.remove(id)
        }
    }

    /// While the breaker is open the writer makes one call per open period (its probe), not
    /// one per pending game; once the store answers, everything pending is written within
    /// an open period and a probe.
    #[actix_rt::test]
    async fn the_writers_retries_are_the_breakers_probes() {
        use std::sync::atomic::Ordering::SeqCst;
        let store = Arc::new(Flaky {
            inner: MemorySnapshots::new(Arc::new(MemoryDirectory::default())),
            down: true.into(),
            writes: 0.into(),
        });
        let config = BreakerConfig {
            failure_threshold: 1,
            open_secs: 0.1,
            open_max_secs: 0.1,
            jitter: 0.0,
            ..Default::default()
        };
        let breaker = CircuitBreaker::new("database", config);
        let (keeper, _fenced) =
            SnapshotKeeper::new(store.clone(), Guarded::new(breaker.clone()), Duration::from_secs(60), true);
        actix_rt::spawn(keeper.clone().run());
        let ids: Vec<GameId> = (0..3).map(|_| GameId::random()).collect();
        for id in &ids {
            keeper.publish(snapshot(id, 1, 0));
        }
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(550) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (writes, rejected) = (store.writes.load(SeqCst), breaker.metrics().calls.rejected);
        // 1 call at once, then one probe per 0.1 s period: about 6, never 3 per period.
        assert!((3..=8).contains(&writes), "{writes} writes in 0.55 s");
        assert!(rejected <= u64::from(writes) + 1, "{rejected} calls refused for {writes} made");
        assert_eq!(keeper.pending(), 3);
        store.down.store(false, SeqCst);
        let back = std::time::Instant::now();
        while keeper.pending() > 0 {
            assert!(back.elapsed() < Duration::from_secs(1), "still {} pending", keeper.pending());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(back.elapsed() < Duration::from_millis(300), "written {:?} after the store answered", back.elapsed());
        for id in &ids {
            assert!(store.read(id).await.unwrap().is_some());
        }
        assert_eq!(breaker.state(), crate::breaker::BreakerState::Closed);
    }

    /// A store of shards with one shard failing: the games in it fail write by write,
    /// the others are written; every batch it was asked for is recorded.
    struct Sharded {
        inner: MemorySnapshots,
        failing: Mutex<HashSet<GameId>>,
        batches: Mutex<Vec<Vec<GameId>>>,
    }

    impl SnapshotStore for Sharded {
        fn write<'a>(
            &'a self,
            snapshot: &'a Snapshot,
            ttl: Option<Duration>,
        ) -> crate::store::StoreFuture<'a, WriteOutcome> {
            self.inner.write(snapshot, ttl)
        }
        fn write_all<'a>(
            &'a self,
            batch: &'a [(Arc<Snapshot>, Option<Duration>)],
        ) -> crate::store::StoreFuture<'a, Vec<Result<WriteOutcome, StoreError>>> {
            Box::pin(async move {
                self.batches.lock().unwrap().push(batch.iter().map(|(s, _)| s.game_id.clone()).collect());
                let mut outcomes = Vec::new();
                for (snapshot, ttl) in batch {
                    if self.failing.lock().unwrap().contains(&snapshot.game_id) {
                        outcomes.push(Err(StoreError::Backend("the shard's primary is down".into())));
                    } else {
                        outcomes.push(self.inner.write(snapshot, *ttl).await);
                    }
                }
                Ok(outcomes)
            })
        }
        fn read<'a>(&'a self, id: &'a GameId) -> crate::store::StoreFuture<'a, Option<Snapshot>> {
            self.inner.read(id)
        }
        fn remove<'a>(&'a self, id: &'a GameId) -> crate::store::StoreFuture<'a, ()> {
            self.inner.remove(id)
        }
    }

    /// A game whose shard fails goes to the retry lane: the batches carry on without it
    /// (the other games' versions are durable as fast as before), its latest snapshot is
    /// retried on its own, and it is durable once its shard answers again.
    #[actix_rt::test]
    async fn a_failing_shard_holds_back_only_its_own_games() {
        let store = Arc::new(Sharded {
            inner: MemorySnapshots::new(Arc::new(MemoryDirectory::default())),
            failing: Mutex::default(),
            batches: Mutex::default(),
        });
        let breaker = CircuitBreaker::new("database", BreakerConfig::default());
        let (keeper, _fenced) =
            SnapshotKeeper::new(store.clone(), Guarded::new(breaker), Duration::from_secs(60), true);
        let (sick, well) = (GameId::random(), GameId::random());
        store.failing.lock().unwrap().insert(sick.clone());
        keeper.publish(snapshot(&sick, 1, 0));
        keeper.publish(snapshot(&well, 1, 0));
        assert!(keeper.write_batch().await, "a batch with some writes done is not a failed store");
        assert_eq!(*keeper.durable_watch(&well).borrow(), 1);
        assert_eq!(*keeper.durable_watch(&sick).borrow(), 0);
        // The sick game moves on; neither its move nor the well game's next waits on it.
        keeper.publish(snapshot(&sick, 2, 0));
        keeper.publish(snapshot(&well, 2, 0));
        assert!(keeper.write_batch().await);
        assert_eq!(store.batches.lock().unwrap().last().unwrap(), &vec![well.clone()]);
        assert_eq!(*keeper.durable_watch(&well).borrow(), 2);
        assert_eq!(keeper.pending(), 1, "the sick game waits in the retry lane");
        // The writer retries it on its own, and writes its latest once the shard answers.
        actix_rt::spawn(keeper.clone().run());
        let started = std::time::Instant::now();
        while store.batches.lock().unwrap().len() < 4 {
            assert!(started.elapsed() < Duration::from_secs(5), "the retry lane never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.failing.lock().unwrap().clear();
        assert!(tokio::time::timeout(Duration::from_secs(5), keeper.when_durable(&sick, 2)).await.unwrap());
        let batches = store.batches.lock().unwrap().clone();
        for batch in &batches[1..] {
            assert!(
                !(batch.contains(&sick) && batch.contains(&well)),
                "a batch waited on the failing shard: {batches:?}"
            );
        }
        assert_eq!(store.read(&sick).await.unwrap().unwrap().version, 2);
        assert_eq!(keeper.pending(), 0);
    }

    /// A store of two shards whose writes to the first hang until `release` (its primary
    /// died: the call waits for the command timeout).
    struct Hanging {
        inner: MemorySnapshots,
        in_first: HashSet<GameId>,
        release: Notify,
    }

    impl SnapshotStore for Hanging {
        fn write<'a>(
            &'a self,
            snapshot: &'a Snapshot,
            ttl: Option<Duration>,
        ) -> crate::store::StoreFuture<'a, WriteOutcome> {
            self.inner.write(snapshot, ttl)
        }
        fn write_all<'a>(
            &'a self,
            batch: &'a [(Arc<Snapshot>, Option<Duration>)],
        ) -> crate::store::StoreFuture<'a, Vec<Result<WriteOutcome, StoreError>>> {
            Box::pin(async move {
                if batch.iter().any(|(s, _)| self.in_first.contains(&s.game_id)) {
                    self.release.notified().await;
                }
                let mut outcomes = Vec::new();
                for (snapshot, ttl) in batch {
                    outcomes.push(self.inner.write(snapshot, *ttl).await);
                }
                Ok(outcomes)
            })
        }
        fn read<'a>(&'a self, id: &'a GameId) -> crate::store::StoreFuture<'a, Option<Snapshot>> {
            self.inner.read(id)
        }
        fn remove<'a>(&'a self, id: &'a GameId) -> crate::store::StoreFuture<'a, ()> {
            self.inner.remove(id)
        }
    }

    /// Each game's shard breaker: `first` for the games in it, `second` for the others.
    struct TwoShards {
        first: CircuitBreaker,
        second: CircuitBreaker,
        in_first: HashSet<GameId>,
    }

    impl crate::store::ShardGuards for TwoShards {
        fn breaker_for(&self, game: &GameId) -> Option<CircuitBreaker> {
            Some(if self.in_first.contains(game) { self.first.clone() } else { self.second.clone() })
        }
    }

    /// A shard whose write hangs holds back only its own games: the other shard's games
    /// are written, move after move, while it hangs; its own is written once it answers.
    #[actix_rt::test]
    async fn a_shard_whose_write_hangs_holds_back_only_its_own_games() {
        let (stuck, well) = (GameId::random(), GameId::random());
        let in_first: HashSet<GameId> = [stuck.clone()].into();
        let store = Arc::new(Hanging {
            inner: MemorySnapshots::new(Arc::new(MemoryDirectory::default())),
            in_first: in_first.clone(),
            release: Notify::new(),
        });
        // The hung write is not cut by the breaker within the test.
        let config = BreakerConfig { call_timeout_ms: 60_000, ..BreakerConfig::default() };
        let shards = TwoShards {
            first: CircuitBreaker::new("database:0-8191", config.clone()),
            second: CircuitBreaker::new("database:8192-16383", config),
            in_first,
        };
        let guard =
            Guarded::new(CircuitBreaker::new("database", BreakerConfig::default())).with_shards(Arc::new(shards));
        let (keeper, _fenced) = SnapshotKeeper::new(store.clone(), guard, Duration::from_secs(60), true);
        actix_rt::spawn(keeper.clone().run());
        keeper.publish(snapshot(&stuck, 1, 0));
        for version in 1..=3 {
            keeper.publish(snapshot(&well, version, 0));
            let durable = tokio::time::timeout(Duration::from_secs(5), keeper.when_durable(&well, version)).await;
            assert_eq!(durable.ok(), Some(true), "version {version} of the well shard's game waited on the hung shard");
        }
        assert_eq!(*keeper.durable_watch(&stuck).borrow(), 0, "the hung shard's write has not returned");
        store.release.notify_one();
        assert!(tokio::time::timeout(Duration::from_secs(5), keeper.when_durable(&stuck, 1)).await.unwrap());
    }

    /// A game created while the store stalled starts under epoch 0; its claim ran later
    /// and took epoch 1. Its write is fenced by this instance's own epoch: the keeper keeps
    /// the snapshot and reports the tenure, and once restamped it is written.
    #[actix_rt::test]
    async fn a_write_behind_its_own_epoch_is_kept_and_written_again_once_restamped() {
        let directory = Arc::new(MemoryDirectory::default());
        let store = Arc::new(MemorySnapshots::new(directory.clone()));
        let breaker = CircuitBreaker::new("database", BreakerConfig { enabled: false, ..BreakerConfig::default() });
        let (keeper, mut fenced) =
            SnapshotKeeper::new(store.clone(), Guarded::new(breaker), Duration::from_secs(60), true);
        let (id, me) = (GameId::random(), InstanceId::parse("a").unwrap());
        directory.claim(&id, &me, Duration::from_secs(60)).await.unwrap();
        keeper.publish(snapshot(&id, 3, 0));
        assert!(keeper.write_batch().await);
        let report = fenced.try_recv().unwrap();
        assert_eq!((report.epoch, report.current), (0, 1));
        assert!(report.tenure.unwrap().covers(&me, 0), "the newer epoch is a's own");
        assert_eq!(keeper.latest(&id).map(|s| s.version), Some(3), "kept for its owner to decide");
        assert_eq!(keeper.pending(), 0, "not written again under the refused epoch");
        keeper.restamp(&id, 1);
        assert_eq!(keeper.pending(), 1);
        assert!(keeper.write_batch().await);
        let stored = store.read(&id).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.epoch), (3, 1));
        assert!(fenced.try_recv().is_err(), "written, not fenced again");
    }
}
