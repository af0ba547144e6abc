//! Stores: each storage concern is a small trait with an embedded implementation (the
//! default, so `make run` needs nothing); the Redis backends come with the admission work.
//! For now the one concern is game snapshots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ids::GameId;
use crate::supervision::snapshot::Snapshot;

/// Where each game's last good snapshot lives, outside its actor, so a game can be resumed
/// on another arbiter (or, with Redis, another process). Calls never block on the network:
/// a remote backend queues writes.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Records a game's latest good state, replacing the previous one.
    fn save(&self, snapshot: Arc<Snapshot>);
    /// The latest saved state of a game.
    fn load(&self, id: &GameId) -> Option<Arc<Snapshot>>;
    /// Forgets a game.
    fn remove(&self, id: &GameId);
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
    fn save(&self, snapshot: Arc<Snapshot>) {
        self.shard(&snapshot.game_id).insert(snapshot.game_id.clone(), snapshot);
    }
    fn load(&self, id: &GameId) -> Option<Arc<Snapshot>> {
        self.shard(id).get(id).cloned()
    }
    fn remove(&self, id: &GameId) {
        self.shard(id).remove(id);
    }
}
