//! Stores (docs/DESIGN.md "Stores"): each storage concern is a small async trait with an
//! embedded implementation (the default, so `make run` needs nothing) and a Redis one (for
//! games that outlive their process and several instances on one Redis):
//!
//! | concern | trait | embedded | Redis |
//! |---|---|---|---|
//! | game snapshots, fenced by epoch | [`snapshot::SnapshotStore`] | [`snapshot::MemorySnapshots`] | [`redis::snapshots`] |
//! | seat sessions | [`sessions::SessionStore`] | [`sessions::MemorySessions`] | [`redis::sessions`] |
//! | the game directory: leases, instances | [`directory::GameDirectory`] | [`directory::MemoryDirectory`] | [`redis::directory`] |
//! | the waitlist | [`waitlist::WaitlistStore`] | [`waitlist::MemoryWaitlist`] | [`redis::waitlist`] |
//! | the event stream and runtime records | [`events::EventStream`], [`events::RecordStore`] | [`events::MemoryEvents`], [`events::MemoryRecords`] | [`redis::events`] |
//!
//! One error type, [`StoreError`]. Backends only talk to their storage; the callers put
//! every call through a breaker ([`Guarded`]): `database` for everything, `messaging` for
//! publishing events. [`keeper::SnapshotKeeper`] is the one owner of each game's snapshot
//! in the process: it holds the latest, writes it behind the game, and keeps only the
//! latest pending while the store is down. Nothing here knows about actors.

pub mod directory;
pub mod event_sink;
pub mod events;
pub mod keeper;
pub mod redis;
pub mod sessions;
pub mod snapshot;
pub mod waitlist;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::breaker::{BreakerError, CircuitBreaker, Outcome};
use crate::ids::GameId;

/// Why a store call did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (connection, timeout, protocol).
    #[error("the store failed: {0}")]
    Backend(String),
    /// The breaker is open: the call was not attempted.
    #[error("the store is unavailable (breaker {0})")]
    Unavailable(&'static str),
    /// The store answered, but the value it holds cannot be decoded or fails validation
    /// (written by a broken or foreign writer, or damaged): retrying cannot help.
    #[error("the stored value is unreadable: {0}")]
    Corrupt(String),
    /// The store node answered that it cannot take writes now (Redis `READONLY`: a replica;
    /// `LOADING`; `MASTERDOWN`): the call was not applied, and the connection is made again
    /// so that it reaches whichever node is the primary behind the configured address.
    #[error("the store node cannot take writes now (the connection is made again): {0}")]
    NotWritable(String),
    /// The store answered, but no longer holds what it held: it restarted empty or from an
    /// older copy (the waitlist notices by its line id and sequence). The caller puts back
    /// what it knows (`WaitlistStore::restore`) before it goes on.
    #[error("the store lost what it held (restarted empty or from an older copy)")]
    Reset,
}

/// A boxed future answered by a store.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The breakers of a store's parts that fail on their own (a Redis Cluster's shards).
pub trait ShardGuards: Send + Sync {
    /// The breaker of the part that holds `game` (None: not known, the whole store's).
    fn breaker_for(&self, game: &GameId) -> Option<CircuitBreaker>;
}

/// A breaker every call of one kind goes through (in a Redis Cluster, a game's calls
/// through its shard's: [`Guarded::for_game`]).
#[derive(Clone)]
pub struct Guarded {
    breaker: CircuitBreaker,
    shards: Option<Arc<dyn ShardGuards>>,
}

impl Guarded {
    /// Calls through `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Guarded { breaker, shards: None }
    }

    /// Calls for a game go through the breaker of its shard where `shards` knows it.
    pub fn with_shards(mut self, shards: Arc<dyn ShardGuards>) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The guard of `game`'s calls: its shard's breaker, or this one.
    pub fn for_game(&self, game: &GameId) -> Guarded {
        match self.shards.as_ref().and_then(|s| s.breaker_for(game)) {
            Some(breaker) => Guarded { breaker, shards: None },
            None => Guarded { breaker: self.breaker.clone(), shards: None },
        }
    }

    /// Runs a call for `game` through [`Guarded::for_game`].
    pub async fn call_for<T>(
        &self,
        game: &GameId,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.for_game(game).call(call).await
    }

    /// Whether a game's calls may go through a breaker of its own shard's.
    pub fn sharded(&self) -> bool {
        self.shards.is_some()
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Runs `call` through the breaker: refused at once while it is open, cut at its call
    /// timeout, and counted.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        // A value that does not decode, or a store that forgot, came from a store that
        // answered: not a store failure.
        let classify = |r: &Result<T, StoreError>| match r {
            Ok(_) => Outcome::Success,
            Err(StoreError::Corrupt(_) | StoreError::Reset) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        };
        self.breaker.call_described(call, classify).await.map_err(store_error)
    }
}

/// A breaker's refusal as a store error.
pub fn store_error(e: BreakerError<StoreError>) -> StoreError {
    match e {
        BreakerError::Inner(e) => e,
        BreakerError::Rejected { state, .. } => StoreError::Unavailable(state.as_str()),
        BreakerError::Timeout { after_ms } => StoreError::Backend(format!("timed out after {after_ms} ms")),
    }
}

/// Every store of one backend.
#[derive(Clone)]
pub struct Stores {
    /// Game snapshots.
    pub snapshots: Arc<dyn snapshot::SnapshotStore>,
    /// Seat sessions.
    pub sessions: Arc<dyn sessions::SessionStore>,
    /// Leases and instances.
    pub directory: Arc<dyn directory::GameDirectory>,
    /// The waitlist.
    pub waitlist: Arc<dyn waitlist::WaitlistStore>,
    /// Runtime events.
    pub events: Arc<dyn events::EventStream>,
    /// Runtime records.
    pub records: Arc<dyn events::RecordStore>,
    /// Whether they live outside this process (Redis): several instances may share them.
    pub shared: bool,
}

impl Stores {
    /// The embedded stores.
    pub fn memory(ticket_ttl: std::time::Duration) -> Stores {
        let directory = Arc::new(directory::MemoryDirectory::default());
        Stores {
            snapshots: Arc::new(snapshot::MemorySnapshots::new(directory.clone())),
            sessions: Arc::new(sessions::MemorySessions::default()),
            directory,
            waitlist: Arc::new(waitlist::MemoryWaitlist::new(ticket_ttl)),
            events: Arc::new(events::MemoryEvents::new(100_000)),
            records: Arc::new(events::MemoryRecords::default()),
            shared: false,
        }
    }

    /// The Redis stores on one connection, for instance `me`; lease and snapshot writes
    /// acknowledged by `acks.replicas` replicas.
    pub fn redis(
        conn: redis::RedisConn,
        ticket_ttl: std::time::Duration,
        me: &crate::ids::InstanceId,
        acks: redis::directory::ReplicaAcks,
    ) -> Result<Stores, StoreError> {
        Ok(Stores {
            snapshots: Arc::new(redis::snapshots::RedisSnapshots::new(conn.clone(), me.clone(), acks)?),
            sessions: Arc::new(redis::sessions::RedisSessions::new(conn.clone())),
            directory: Arc::new(redis::directory::RedisDirectory::new(conn.clone(), acks)?),
            waitlist: Arc::new(redis::waitlist::RedisWaitlist::new(conn.clone(), ticket_ttl)),
            events: Arc::new(redis::events::RedisEvents::new(conn.clone())),
            records: Arc::new(redis::events::RedisRecords::new(conn)),
            shared: true,
        })
    }
}
