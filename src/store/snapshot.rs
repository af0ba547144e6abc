//! A game's snapshot: everything needed to resume it after a crash, on another arbiter,
//! after a restart of the server or on another instance. Serialisable and validated on
//! load: the stored `kind` names the game kind (absent in snapshots written before kinds
//! existed: Connect Four), whose own decoder checks the board. Seats hold the keyed hash of their token, never the
//! token. [`SnapshotStore`] is where snapshots live outside the process: every write is
//! fenced by the owner's lease epoch.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::game::{Board, Seat};
use crate::ids::{GameId, TokenHash};
use crate::store::directory::Tenure;
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
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "Stored")]
pub struct Snapshot {
    /// Game id.
    pub game_id: GameId,
    /// The game's state, of its kind (validated by the kind when deserialised).
    pub board: Board,
    /// Red seat, then yellow; `None` while free.
    pub seats: [Option<SeatRecord>; 2],
    /// When the game was created (RFC 3339).
    pub created_at: String,
    /// Closed because nobody was connected for `server.abandoned_game_secs`.
    pub abandoned: bool,
    /// Restarts so far (after panics and hangs; a takeover is not one).
    pub restarts: u32,
    /// Closed after passing its restart limit.
    pub failed: bool,
    /// Bumped by every committed change: a store keeps the highest it was given.
    pub version: u64,
    /// The lease epoch of the owner that wrote it (the fencing token, docs/DESIGN.md D11).
    pub epoch: u64,
}

/// A snapshot as stored, before its board is read by its kind.
#[derive(Deserialize)]
struct Stored {
    game_id: GameId,
    #[serde(default = "first_kind")]
    kind: String,
    board: serde_json::Value,
    seats: [Option<SeatRecord>; 2],
    created_at: String,
    #[serde(default)]
    abandoned: bool,
    #[serde(default)]
    restarts: u32,
    #[serde(default)]
    failed: bool,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    epoch: u64,
}

/// Snapshots written before kinds existed are Connect Four's.
fn first_kind() -> String {
    "connect4".to_owned()
}

impl TryFrom<Stored> for Snapshot {
    type Error = String;

    fn try_from(s: Stored) -> Result<Self, String> {
        Ok(Snapshot {
            board: Board::decode(&s.kind, s.board)?,
            game_id: s.game_id,
            seats: s.seats,
            created_at: s.created_at,
            abandoned: s.abandoned,
            restarts: s.restarts,
            failed: s.failed,
            version: s.version,
            epoch: s.epoch,
        })
    }
}

impl Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("Snapshot", 10)?;
        out.serialize_field("game_id", &self.game_id)?;
        out.serialize_field("kind", self.board.kind())?;
        out.serialize_field("board", &self.board)?;
        out.serialize_field("seats", &self.seats)?;
        out.serialize_field("created_at", &self.created_at)?;
        out.serialize_field("abandoned", &self.abandoned)?;
        out.serialize_field("restarts", &self.restarts)?;
        out.serialize_field("failed", &self.failed)?;
        out.serialize_field("version", &self.version)?;
        out.serialize_field("epoch", &self.epoch)?;
        out.end()
    }
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored.
    Written,
    /// The store already holds a newer version from the same owner: nothing to do. (The
    /// same version again is written again: a replica's acknowledgement then covers it.)
    Stale,
    /// The game's epoch is higher than the write's: refused. When `tenure` covers the
    /// writer and the write's epoch ([`Tenure::covers`]), the newer epoch is the writer's
    /// own (a claim or renewal it stopped waiting for ran in the store later): it writes
    /// again under that epoch. Otherwise another instance holds the game and the writer
    /// must stop it at once.
    Fenced {
        /// The epoch in force.
        epoch: u64,
        /// Who took the recent epochs, if the store knows.
        tenure: Option<Tenure>,
    },
}

/// Where snapshots live outside the process. Each write is fenced: refused when the game's
/// epoch (see [`crate::store::directory::GameDirectory`]) has moved past the snapshot's.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Stores `snapshot` unless it is fenced or stale; `ttl` (for ended games) makes the
    /// store forget it after that long.
    fn write<'a>(&'a self, snapshot: &'a Snapshot, ttl: Option<Duration>) -> StoreFuture<'a, WriteOutcome>;
    /// Writes a batch (each with its `ttl`) and answers each one's outcome, in order. A
    /// store with replicas counts a write only once they acknowledge it. When the store
    /// fails as a whole (or, on one node, the replicas do not acknowledge the batch) the
    /// answer is an error and nothing in the batch counts as durable; a store of shards
    /// (Redis Cluster) answers a failed shard's writes each with its error, so a shard that
    /// fails holds back only its own games. Stores that can send it in one round trip do;
    /// this default writes one after another and stops at the first error.
    fn write_all<'a>(
        &'a self,
        batch: &'a [(std::sync::Arc<Snapshot>, Option<Duration>)],
    ) -> StoreFuture<'a, Vec<Result<WriteOutcome, crate::store::StoreError>>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(batch.len());
            for (snapshot, ttl) in batch {
                outcomes.push(Ok(self.write(snapshot, *ttl).await?));
            }
            Ok(outcomes)
        })
    }
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
            let (epoch, tenure) = self.directory.epoch_now(&snapshot.game_id);
            if snapshot.epoch < epoch {
                return Ok(WriteOutcome::Fenced { epoch, tenure });
            }
            let mut games = self.games.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((stored, _)) = games.get(&snapshot.game_id) {
                if stored.epoch == snapshot.epoch && stored.version > snapshot.version {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEATS: &str = r#"[{"name":"ada","token_hash":null},null]"#;

    fn stored(kind: Option<&str>, board: &str) -> String {
        let kind = kind.map_or(String::new(), |k| format!(r#""kind":"{k}","#));
        format!(
            r#"{{"game_id":"0123456789ab",{kind}"board":{board},"seats":{SEATS},"created_at":"2026-01-01T00:00:00Z"}}"#
        )
    }

    #[test]
    fn a_snapshot_without_a_kind_is_connect_four_and_is_written_with_it() {
        let board = r#"{"columns":[["red"],[],[],[],[],[],[]],"resigned":null}"#;
        let snapshot: Snapshot = serde_json::from_str(&stored(None, board)).unwrap();
        assert_eq!(snapshot.board.kind(), "connect4");
        assert_eq!(snapshot.board.moves(), 1);
        let written = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(written["kind"], "connect4");
        let again: Snapshot = serde_json::from_value(written).unwrap();
        assert_eq!(again.board, snapshot.board);
    }

    #[test]
    fn a_board_is_read_by_its_own_kind_or_refused() {
        let board = r#"{"columns":[["red"],[],[],[],[],[],[]],"resigned":null}"#;
        assert!(serde_json::from_str::<Snapshot>(&stored(Some("connect4"), board)).is_ok());
        for (kind, board, why) in [
            ("chess", board, "a kind this server does not play"),
            ("lightcycle", board, "a Connect Four board is not a light-cycle arena"),
            ("connect4", r#"{"columns":[["yellow"],[],[],[],[],[],[]],"resigned":null}"#, "yellow cannot move first"),
        ] {
            let error = serde_json::from_str::<Snapshot>(&stored(Some(kind), board)).map(|_| ()).unwrap_err();
            assert!(!error.to_string().is_empty(), "{why}");
        }
    }
}
