//! Stores: each storage concern is a small trait with an embedded implementation (the
//! default, so `make run` needs nothing); the Redis backends come with the admission work.
//! Every store call goes through the "database" circuit breaker ([`GuardedStore`]), so a
//! failing backend is refused fast and the game goes on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::breaker::{BreakerError, CircuitBreaker, Outcome};
use crate::ids::GameId;
use crate::supervision::snapshot::Snapshot;

/// Why a store call did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (connection, timeout, protocol).
    #[error("the store failed: {0}")]
    Backend(String),
    /// The database breaker is open: the call was not attempted.
    #[error("the store is unavailable (database breaker {0})")]
    Unavailable(&'static str),
}

/// Where each game's last good snapshot lives, outside its actor, so a game can be resumed
/// on another arbiter (or, with Redis, another process). Calls never block on the network:
/// a remote backend queues writes.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Records a game's latest good state, replacing the previous one.
    fn save(&self, snapshot: Arc<Snapshot>) -> Result<(), StoreError>;
    /// The latest saved state of a game.
    fn load(&self, id: &GameId) -> Result<Option<Arc<Snapshot>>, StoreError>;
    /// Forgets a game.
    fn remove(&self, id: &GameId) -> Result<(), StoreError>;
}

/// The embedded snapshot store: a map in this process, sharded to keep contention low.
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<GameId, Arc<Snapshot>>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore { shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl MemoryStore {
    fn shard(&self, id: &GameId) -> std::sync::MutexGuard<'_, HashMap<GameId, Arc<Snapshot>>> {
        let idx = id.as_str().bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)))
            % self.shards.len();
        self.shards[idx].lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SnapshotStore for MemoryStore {
    fn save(&self, snapshot: Arc<Snapshot>) -> Result<(), StoreError> {
        self.shard(&snapshot.game_id).insert(snapshot.game_id.clone(), snapshot);
        Ok(())
    }
    fn load(&self, id: &GameId) -> Result<Option<Arc<Snapshot>>, StoreError> {
        Ok(self.shard(id).get(id).cloned())
    }
    fn remove(&self, id: &GameId) -> Result<(), StoreError> {
        self.shard(id).remove(id);
        Ok(())
    }
}

/// A store whose every call goes through a circuit breaker (the "database" one).
pub struct GuardedStore<S> {
    inner: S,
    breaker: CircuitBreaker,
}

impl<S: SnapshotStore> GuardedStore<S> {
    /// Wraps `inner` with `breaker`.
    pub fn new(inner: S, breaker: CircuitBreaker) -> Self {
        GuardedStore { inner, breaker }
    }

    fn guarded<T>(&self, f: impl FnOnce(&S) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let outcome = |r: &Result<T, StoreError>| if r.is_ok() { Outcome::Success } else { Outcome::Failure };
        self.breaker.call_sync(|| f(&self.inner), outcome).map_err(|e| match e {
            BreakerError::Inner(e) => e,
            BreakerError::Rejected { state, .. } => StoreError::Unavailable(state.as_str()),
            BreakerError::Timeout { after_ms } => StoreError::Backend(format!("timed out after {after_ms} ms")),
        })
    }
}

impl<S: SnapshotStore> SnapshotStore for GuardedStore<S> {
    fn save(&self, snapshot: Arc<Snapshot>) -> Result<(), StoreError> {
        self.guarded(|s| s.save(snapshot))
    }
    fn load(&self, id: &GameId) -> Result<Option<Arc<Snapshot>>, StoreError> {
        self.guarded(|s| s.load(id))
    }
    fn remove(&self, id: &GameId) -> Result<(), StoreError> {
        self.guarded(|s| s.remove(id))
    }
}
