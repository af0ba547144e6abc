//! A game's snapshot: everything needed to resume it after a crash, on another arbiter,
//! after a restart of the server or on another instance. Serialisable and validated on
//! load (the board checks itself). Seats hold the keyed hash of their token, never the
//! token. [`SnapshotStore`] is where snapshots live outside the process: every write is
//! fenced by the owner's lease epoch.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::game::{Connect4, Rules as _, Seat};
use crate::ids::{GameId, TokenHash};
use crate::store::StoreFuture;

/// One occupied seat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeatRecord {
    /// Display name.
    pub name: String,
    /// The keyed hash of the seat's token; `None` for the AI.
    pub token_hash: Option<TokenHash>,
}

impl SeatRecord {
    /// Whether the AI plays this seat.
    pub fn is_ai(&self) -> bool {
        self.token_hash.is_none()
    }
}

/// The state a game resumes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Game id.
    pub game_id: GameId,
    /// The board (validated when deserialised).
    pub board: Connect4,
    /// Red seat, then yellow; `None` while free.
    pub seats: [Option<SeatRecord>; 2],
    /// When the game was created (RFC 3339).
    pub created_at: String,
    /// Closed because nobody was connected for `server.abandoned_game_secs`.
    #[serde(default)]
    pub abandoned: bool,
    /// Restarts so far (after panics and hangs; a takeover is not one).
    #[serde(default)]
    pub restarts: u32,
    /// Closed after passing its restart limit.
    #[serde(default)]
    pub failed: bool,
    /// Bumped by every committed change: a store keeps the highest it was given.
    #[serde(default)]
    pub version: u64,
    /// The lease epoch of the owner that wrote it (the fencing token, docs/DESIGN.md D11).
    #[serde(default)]
    pub epoch: u64,
}

impl Snapshot {
    /// The record of one seat.
    pub fn seat(&self, seat: Seat) -> Option<&SeatRecord> {
        self.seats[seat_index(seat)].as_ref()
    }
    /// Whether the AI plays one of the seats.
    pub fn vs_ai(&self) -> bool {
        self.seats.iter().flatten().any(SeatRecord::is_ai)
    }
    /// The seat whose token hashes to `hash`.
    pub fn seat_of(&self, hash: &TokenHash) -> Option<Seat> {
        Seat::ALL
            .into_iter()
            .find(|s| self.seat(*s).and_then(|r| r.token_hash.as_ref()).is_some_and(|h| h.matches(hash)))
    }
    /// Whether the game is over (won, drawn, abandoned): its snapshot is kept only for
    /// `finished_game_ttl_secs`.
    pub fn ended(&self) -> bool {
        self.abandoned || self.failed || self.board.outcome() != crate::game::Outcome::InProgress
    }
}

/// Index of a seat in two-element arrays (red 0, yellow 1).
pub fn seat_index(seat: Seat) -> usize {
    match seat {
        Seat::Red => 0,
        Seat::Yellow => 1,
    }
}

/// What became of a fenced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored.
    Written,
    /// The store already holds this version or a newer one from the same owner: nothing
    /// to do.
    Stale,
    /// A newer owner holds the game (its epoch is higher than the write's): refused. The
    /// writer must stop the game at once.
    Fenced {
        /// The epoch in force.
        epoch: u64,
    },
}

/// Where snapshots live outside the process. Each write is fenced: refused when the game's
/// epoch (see [`crate::store::directory::GameDirectory`]) has moved past the snapshot's.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Stores `snapshot` unless it is fenced or stale; `ttl` (for ended games) makes the
    /// store forget it after that long.
    fn write<'a>(&'a self, snapshot: &'a Snapshot, ttl: Option<Duration>) -> StoreFuture<'a, WriteOutcome>;
    /// The stored snapshot of a game.
    fn read<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, Option<Snapshot>>;
    /// Forgets a game.
    fn remove<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, ()>;
}

/// The embedded snapshot store: a map in this process, fenced by the embedded directory's
/// epochs.
pub struct MemorySnapshots {
    directory: std::sync::Arc<crate::store::directory::MemoryDirectory>,
    games: std::sync::Mutex<std::collections::HashMap<GameId, (Snapshot, Option<u64>)>>,
}

impl MemorySnapshots {
    /// A store fenced by `directory`.
    pub fn new(directory: std::sync::Arc<crate::store::directory::MemoryDirectory>) -> Self {
        MemorySnapshots { directory, games: std::sync::Mutex::default() }
    }
}

impl SnapshotStore for MemorySnapshots {
    fn write<'a>(&'a self, snapshot: &'a Snapshot, ttl: Option<Duration>) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            let epoch = self.directory.epoch_now(&snapshot.game_id);
            if snapshot.epoch < epoch {
                return Ok(WriteOutcome::Fenced { epoch });
            }
            let mut games = self.games.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((stored, _)) = games.get(&snapshot.game_id) {
                if stored.epoch == snapshot.epoch && stored.version >= snapshot.version {
                    return Ok(WriteOutcome::Stale);
                }
            }
            let expires = ttl.map(|t| crate::ids::monotonic_ms() + u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
            games.insert(snapshot.game_id.clone(), (snapshot.clone(), expires));
            Ok(WriteOutcome::Written)
        })
    }

    fn read<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, Option<Snapshot>> {
        Box::pin(async move {
            let mut games = self.games.lock().unwrap_or_else(|e| e.into_inner());
            let expired = games.get(id).is_some_and(|(_, e)| e.is_some_and(|at| at <= crate::ids::monotonic_ms()));
            if expired {
                games.remove(id);
            }
            Ok(games.get(id).map(|(s, _)| s.clone()))
        })
    }

    fn remove<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.games.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            Ok(())
        })
    }
}
