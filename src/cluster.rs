//! One owner per game, fenced; any instance serves any player (docs/DESIGN.md D11). [`Cluster`]
//! is this instance's view of the game directory: its id and heartbeat, the leases it
//! claims, renews and releases, and the seat sessions any instance can read. Every call goes
//! through the `database` breaker (a game's lease calls, in a Redis Cluster, through its
//! shard's: `database:FIRST-LAST`, docs/DESIGN.md D19). The relay (`hosting::relay`) carries a player's commands to the owner of
//! their game and its frames back, through Redis. With the embedded backend there is one
//! instance: it owns every game, and the relay is never used.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::Arc;
use std::time::Duration;

use crate::ids::{monotonic_ms, now_rfc3339, GameId, InstanceId, PlayerToken, SessionKey, TokenHash};
use crate::store::directory::{Claim, Lease, Renewal};
use crate::store::sessions::SeatSession;
use crate::store::{Guarded, StoreError, Stores};

/// This instance in the cluster.
pub struct Cluster {
    /// This instance's id.
    pub me: InstanceId,
    /// Every store.
    pub stores: Stores,
    /// The `database` breaker.
    pub database: Guarded,
    /// The `messaging` breaker (publishing events and relayed messages).
    pub messaging: Guarded,
    /// How long a lease lasts unless renewed.
    pub lease: Duration,
    /// How long a seat session is kept after its last use.
    pub session_ttl: Duration,
    session_key: SessionKey,
    /// `monotonic_ms()` since when this instance's heartbeat has been written without a
    /// failure in between; 0 while its last write failed (or before the first).
    heartbeat_ok_since: AtomicU64,
}

impl Cluster {
    /// The cluster view of instance `me`.
    pub fn new(
        me: InstanceId,
        stores: Stores,
        database: Guarded,
        messaging: Guarded,
        lease: Duration,
        session_ttl: Duration,
        session_key: SessionKey,
    ) -> Arc<Cluster> {
        Arc::new(Cluster {
            me,
            stores,
            database,
            messaging,
            lease,
            session_ttl,
            session_key,
            heartbeat_ok_since: AtomicU64::new(0),
        })
    }

    /// Whether several instances may share the stores (Redis).
    pub fn shared(&self) -> bool {
        self.stores.shared
    }

    /// The keyed hash of a seat token.
    pub fn hash(&self, token: &PlayerToken) -> TokenHash {
        self.session_key.hash(token)
    }

    /// Claims a game for this instance. A claim won counts only once the configured
    /// replicas acknowledge it (`redis.min_replicas_acked`): otherwise it is an error, and a
    /// failover to a replica that never saw it cannot hand the same epoch out again.
    pub async fn claim(&self, id: &GameId) -> Result<Claim, StoreError> {
        let link = self.lease_link();
        let guard = self.database.for_game(id);
        let claim = guard.call(self.stores.directory.claim(id, &self.me, self.lease)).await?;
        if matches!(claim, Claim::Won(_)) {
            guard.call(self.stores.directory.acknowledged(link)).await?;
        }
        Ok(claim)
    }

    /// Which connection lease writes go out on now (read before the writes that
    /// [`Cluster::acknowledged`] is asked about).
    pub fn lease_link(&self) -> u64 {
        self.stores.directory.lease_link()
    }

    /// Waits until the configured replicas hold every lease write made since `link` (at
    /// once without replicas to wait for; an error if the connection was made again).
    pub async fn acknowledged(&self, link: u64) -> Result<(), StoreError> {
        self.database.call(self.stores.directory.acknowledged(link)).await
    }

    /// Whether each lease write stands alone
    /// ([`crate::store::directory::GameDirectory::acknowledged_each`]).
    pub fn acknowledged_each(&self) -> bool {
        self.stores.directory.acknowledged_each()
    }

    /// Renews this instance's lease of `epoch`.
    pub async fn renew(&self, id: &GameId, epoch: u64) -> Result<Renewal, StoreError> {
        self.database.call_for(id, self.stores.directory.renew(id, &self.me, epoch, self.lease)).await
    }

    /// Gives a game up.
    pub async fn release(&self, id: &GameId, epoch: u64) -> Result<(), StoreError> {
        self.database.call_for(id, self.stores.directory.release(id, &self.me, epoch)).await
    }

    /// The live lease of a game.
    pub async fn owner(&self, id: &GameId) -> Result<Option<Lease>, StoreError> {
        self.database.call_for(id, self.stores.directory.owner(id)).await
    }

    /// Whether an instance's heartbeat is live.
    pub async fn alive(&self, instance: &InstanceId) -> Result<bool, StoreError> {
        if *instance == self.me {
            return Ok(true);
        }
        self.database.call(self.stores.directory.alive(instance)).await
    }

    /// Records a seat session (in the background: a failure only costs the session's
    /// last-seen time; the game itself checks tokens against its snapshot).
    pub fn remember_seat(self: &Arc<Self>, hash: TokenHash, game_id: GameId, seat: crate::game::Seat, name: String) {
        let cluster = self.clone();
        actix_rt::spawn(async move {
            let session = SeatSession { game_id, seat, name, last_seen: now_rfc3339() };
            let put = cluster.stores.sessions.put(&hash, &session, cluster.session_ttl);
            if let Err(e) = cluster.database.call(put).await {
                tracing::debug!(game_id = %session.game_id, "could not record a seat session: {e}");
            }
        });
    }

    /// Records that a socket joined or left with the token of `hash` now (in the
    /// background; a session nobody recorded is left alone).
    pub fn seen(self: &Arc<Self>, hash: TokenHash) {
        let cluster = self.clone();
        actix_rt::spawn(async move {
            let update = async {
                let Some(mut session) = cluster.stores.sessions.get(&hash).await? else { return Ok(()) };
                session.last_seen = now_rfc3339();
                cluster.stores.sessions.put(&hash, &session, cluster.session_ttl).await
            };
            if let Err(e) = cluster.database.call(update).await {
                tracing::debug!("could not update a seat session's last-seen time: {e}");
            }
        });
    }

    /// Announces this instance as alive, every third of the lease, for ever.
    pub async fn run_heartbeat(self: Arc<Self>) {
        let every = self.lease / 3;
        loop {
            match self.database.call(self.stores.directory.heartbeat(&self.me, self.lease)).await {
                Ok(()) => {
                    let _ = self.heartbeat_ok_since.compare_exchange(0, monotonic_ms().max(1), AcqRel, Acquire);
                }
                Err(e) => {
                    self.heartbeat_ok_since.store(0, Release);
                    tracing::debug!(instance = %self.me, "could not renew this instance's heartbeat: {e}");
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Whether a peer's missing heartbeat means it died: only once this instance's own
    /// heartbeat has been written without a failure for a whole lease. While the store
    /// refuses writes (down, failing over, a replica), every instance's heartbeat lapses,
    /// and a live peer would be taken for dead until its next renewal.
    pub fn heartbeats_tell(&self) -> bool {
        let since = self.heartbeat_ok_since.load(Acquire);
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        since != 0 && monotonic_ms().saturating_sub(since) >= lease_ms
    }
}

/// The session key: `RAMPART_SESSION_KEY`, else (embedded) a random one, else (Redis) the
/// one kept under `P:session-key`, created by the first instance that asks. Several
/// instances must hash tokens alike, so a process-local key is used with Redis only when
/// Redis cannot be reached at start (with a warning).
pub async fn session_key(
    secret: Option<&crate::config::Secret>,
    conn: Option<&crate::store::redis::RedisConn>,
) -> SessionKey {
    if let Some(secret) = secret {
        return SessionKey::from_bytes(secret.expose().as_bytes());
    }
    let Some(conn) = conn else { return SessionKey::random() };
    let key = conn.key("session-key");
    let fresh = SessionKey::random_hex();
    for attempt in 0..10 {
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&fresh).arg("NX");
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let result: Result<Option<String>, StoreError> = async {
            let _: Option<String> = conn.query("session key", &set).await?;
            conn.query("session key", &get).await
        }
        .await;
        match result {
            Ok(Some(stored)) => {
                tracing::info!("seat tokens are hashed with the key kept in Redis; set RAMPART_SESSION_KEY to keep it out of Redis");
                return SessionKey::from_bytes(stored.as_bytes());
            }
            Ok(None) | Err(_) if attempt < 9 => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => {}
        }
    }
    tracing::warn!("Redis did not answer at start: seat tokens are hashed with a key of this process only, so other instances cannot check them; set RAMPART_SESSION_KEY on every instance");
    SessionKey::random()
}
