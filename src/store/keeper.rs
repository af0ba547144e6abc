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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use crate::breaker::BreakerState;
use crate::ids::GameId;
use crate::store::directory::Tenure;
use crate::store::snapshot::{Snapshot, SnapshotStore, WriteOutcome};
use crate::store::{Guarded, StoreError};

/// Most snapshots written in one batch.
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
}

/// The snapshots of this process's games.
pub struct SnapshotKeeper {
    store: Arc<dyn SnapshotStore>,
    guard: Guarded,
    finished_ttl: Duration,
    state: Mutex<State>,
    wake: Notify,
    fenced: mpsc::UnboundedSender<Fenced>,
}

impl SnapshotKeeper {
    /// A keeper writing to `store` through `guard`; ended games' snapshots expire after
    /// `finished_ttl`. Answers the keeper and the channel of fenced writes. Start its
    /// writer with [`SnapshotKeeper::run`].
    pub fn new(
        store: Arc<dyn SnapshotStore>,
        guard: Guarded,
        finished_ttl: Duration,
    ) -> (Arc<SnapshotKeeper>, mpsc::UnboundedReceiver<Fenced>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let keeper = SnapshotKeeper {
            store,
            guard,
            finished_ttl,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            fenced: tx,
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
            state.pending.insert(id.clone());
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
            state.pending.insert(id.clone());
        }
        self.wake.notify_one();
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
        self.lock().pending.len()
    }

    /// Writes what is pending, in batches, until nothing is or `deadline` passes; answers
    /// how many are still pending (shutdown).
    pub async fn flush(&self, deadline: Duration) -> usize {
        let until = tokio::time::Instant::now() + deadline;
        while self.pending() > 0 && tokio::time::Instant::now() < until {
            if !self.write_batch().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.pending()
    }

    /// The writer: waits for snapshots and writes them. Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        // A run after a crash (under the supervision tree) may have cut a batch short: every
        // game's latest snapshot is pending again (a write the store already holds is stale).
        {
            let mut state = self.lock();
            let ids: Vec<GameId> = state.latest.keys().cloned().collect();
            state.pending.extend(ids);
        }
        loop {
            if self.pending() == 0 {
                let _ = tokio::time::timeout(RETRY_EVERY, self.wake.notified()).await;
                continue;
            }
            if !self.write_batch().await {
                // The store failed or the breaker is open: try again when it would let a
                // probe through (a new snapshot does not wake the writer before that: the
                // call would only be refused).
                let breaker = self.guard.breaker();
                match breaker.open_remaining() {
                    Some(left) => tokio::time::sleep(left + PROBE_SLACK).await,
                    // Every probe slot taken by other callers: one of them may close it soon.
                    None if breaker.state() == BreakerState::HalfOpen => tokio::time::sleep(HALF_OPEN_RETRY).await,
                    None => {
                        let _ = tokio::time::timeout(RETRY_EVERY, self.wake.notified()).await;
                    }
                }
            }
        }
    }

    /// Writes one batch of pending snapshots. False when the store failed.
    async fn write_batch(&self) -> bool {
        let batch: Vec<Arc<Snapshot>> = {
            let mut state = self.lock();
            let ids: Vec<GameId> = state.pending.iter().take(BATCH).cloned().collect();
            let mut batch = Vec::with_capacity(ids.len());
            for id in ids {
                state.pending.remove(&id);
                if let Some(s) = state.latest.get(&id) {
                    batch.push(s.clone());
                }
            }
            batch
        };
        let mut ok = true;
        let mut batch = batch.into_iter();
        while let Some(snapshot) = batch.next() {
            let ttl = snapshot.ended().then_some(self.finished_ttl);
            match self.guard.call(self.store.write(&snapshot, ttl)).await {
                Ok(WriteOutcome::Written | WriteOutcome::Stale) => {}
                Ok(WriteOutcome::Fenced { epoch, tenure }) => {
                    // Not pending again until its owner says under which epoch (or forgets it).
                    tracing::debug!(game_id = %snapshot.game_id, epoch = snapshot.epoch, current = epoch, taker = ?tenure.as_ref().map(|t| t.instance.as_str()), "a snapshot write was fenced by a newer epoch; its owner decides");
                    let _ = self.fenced.send(Fenced {
                        game_id: snapshot.game_id.clone(),
                        epoch: snapshot.epoch,
                        current: epoch,
                        tenure,
                    });
                }
                Err(e) => {
                    ok = false;
                    // Refused by the breaker (open, or its probe slot taken): the rest of the
                    // batch would be refused too; it stays pending with this one.
                    let refused = matches!(e, StoreError::Unavailable(_));
                    let mut state = self.lock();
                    // Still the latest (nothing newer replaced it, the game was not
                    // forgotten): keep it pending.
                    let rest: Vec<Arc<Snapshot>> = if refused { batch.by_ref().collect() } else { Vec::new() };
                    for id in std::iter::once(&snapshot).chain(&rest).map(|s| &s.game_id) {
                        if !state.forgotten.contains(id) {
                            state.pending.insert(id.clone());
                        }
                    }
                    drop(state);
                    tracing::debug!(game_id = %snapshot.game_id, "a snapshot write failed; it stays pending: {e}");
                }
            }
        }
        ok
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
            SnapshotKeeper::new(store.clone(), Guarded::new(breaker.clone()), Duration::from_secs(60));
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

    /// A game created while the store stalled starts under epoch 0; its claim ran later
    /// and took epoch 1. Its write is fenced by this instance's own epoch: the keeper keeps
    /// the snapshot and reports the tenure, and once restamped it is written.
    #[actix_rt::test]
    async fn a_write_behind_its_own_epoch_is_kept_and_written_again_once_restamped() {
        let directory = Arc::new(MemoryDirectory::default());
        let store = Arc::new(MemorySnapshots::new(directory.clone()));
        let breaker = CircuitBreaker::new("database", BreakerConfig { enabled: false, ..BreakerConfig::default() });
        let (keeper, mut fenced) = SnapshotKeeper::new(store.clone(), Guarded::new(breaker), Duration::from_secs(60));
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
