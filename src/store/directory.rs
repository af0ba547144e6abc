//! The game directory (docs/DESIGN.md D11): who owns each game. Owning a game is a lease that
//! expires after `cluster.lease_ms` unless its owner renews it, and carries an epoch that
//! only grows: every takeover takes a new one, and every snapshot write is fenced by it.
//! Instances announce themselves with a heartbeat that expires the same way. The embedded
//! [`MemoryDirectory`] has one instance, this process, which owns every game.
//!
//! A call that timed out on the caller's side may still have happened in the store (a
//! stalled Redis runs what queued up when it wakes), so every call is safe to repeat and
//! the store remembers each game's [`Tenure`]: who took its recent epochs. A renewal or a
//! snapshot write that finds a newer epoch taken by its own instance, with nobody else in
//! between, is behind only itself: the renewal answers the newer epoch, the write tells
//! so, and the owner carries on under it instead of giving its own game up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::ids::{monotonic_ms, GameId, InstanceId};
use crate::store::StoreFuture;

/// An owner and its epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The owning instance.
    pub instance: InstanceId,
    /// Its fencing token.
    pub epoch: u64,
}

/// Who took a game's recent epochs: `instance` took every epoch from `since` to the current
/// one, nobody else having taken one in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenure {
    /// The instance that took the current epoch.
    pub instance: InstanceId,
    /// The first epoch of its unbroken run.
    pub since: u64,
}

impl Tenure {
    /// Whether every epoch after `epoch` was taken by `me`: a renewal or write of `epoch`
    /// by `me` is then behind only `me`'s own newer epoch (a claim or renewal of its own
    /// that ran in the store after it stopped waiting for the answer), and nobody else can
    /// have written the game since.
    pub fn covers(&self, me: &InstanceId, epoch: u64) -> bool {
        self.instance == *me && self.since <= epoch.saturating_add(1)
    }
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The caller owns the game now, with this lease (a new epoch when it was free).
    Won(Lease),
    /// Another live lease holds it.
    Held(Lease),
}

/// The answer to a renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still the owner; the epoch in force: a newer one when the lease had lapsed and was
    /// taken back, or when a claim or renewal of the caller's own that it stopped waiting
    /// for took a newer epoch (nobody else having taken one meanwhile, see [`Tenure`]).
    Renewed(u64),
    /// Another instance holds the game now: the caller must stop it at once.
    Lost(Lease),
}

/// Who owns which game, and which instances are alive.
pub trait GameDirectory: Send + Sync + 'static {
    /// Takes the game for `me` if no live lease holds it (a new epoch, above every earlier
    /// one), renews it if `me` holds it (answering its epoch, so a repeated claim takes no
    /// second one), or answers the holder. Exactly one of several racing claimants wins.
    fn claim<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, lease: Duration) -> StoreFuture<'a, Claim>;
    /// Extends `me`'s lease of `epoch`, or of the newer epoch `me` took since (see
    /// [`Renewal::Renewed`]); takes it back if it lapsed and nobody else took the game.
    fn renew<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, epoch: u64, lease: Duration)
        -> StoreFuture<'a, Renewal>;
    /// Gives the game up (at shutdown), so another instance can take it over at once.
    fn release<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, epoch: u64) -> StoreFuture<'a, ()>;
    /// The live lease of a game, if any.
    fn owner<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, Option<Lease>>;
    /// Announces `me` as alive for `ttl`.
    fn heartbeat<'a>(&'a self, me: &'a InstanceId, ttl: Duration) -> StoreFuture<'a, ()>;
    /// Whether `instance`'s heartbeat is live.
    fn alive<'a>(&'a self, instance: &'a InstanceId) -> StoreFuture<'a, bool>;
    /// Forgets everything about a game (its epoch counter included).
    fn forget<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, ()>;
    /// Which connection lease writes go out on now: read it before the claims or renewals
    /// that [`GameDirectory::acknowledged`] is then asked about (0 for the embedded
    /// directory, which has one).
    fn lease_link(&self) -> u64 {
        0
    }
    /// Waits until the replicas the directory requires hold every claim and renewal made
    /// since `link` ([`GameDirectory::lease_link`]); an error when they do not acknowledge
    /// them in time, or when the connection was made again since (a `WAIT` on a new
    /// connection covers none of the old one's writes). Ok at once when none are required
    /// (and for the embedded directory, which has none).
    fn acknowledged(&self, link: u64) -> StoreFuture<'_, ()> {
        let _ = link;
        Box::pin(async { Ok(()) })
    }
    /// Whether [`GameDirectory::acknowledged`] has nothing to wait for: no replicas are
    /// required, or each claim and renewal waited for them itself (a Redis Cluster, where
    /// each game's writes go to its own shard). A renewal's answer then stands alone, and
    /// a round applies each as it arrives: a shard that does not answer holds back only its
    /// own games.
    fn acknowledged_each(&self) -> bool {
        true
    }
}

#[derive(Default)]
struct Entry {
    holder: Option<(InstanceId, u64)>,
    expires_ms: u64,
    epoch: u64,
    tenure: Option<Tenure>,
}

impl Entry {
    /// Takes a new epoch for `me` with a lease until `expires_ms`.
    fn take(&mut self, me: &InstanceId, expires_ms: u64) -> u64 {
        self.epoch += 1;
        if self.tenure.as_ref().is_none_or(|t| t.instance != *me) {
            self.tenure = Some(Tenure { instance: me.clone(), since: self.epoch });
        }
        self.holder = Some((me.clone(), self.epoch));
        self.expires_ms = expires_ms;
        self.epoch
    }

    fn covers(&self, me: &InstanceId, epoch: u64) -> bool {
        self.tenure.as_ref().is_some_and(|t| t.covers(me, epoch))
    }
}

/// The embedded directory: in this process, with the same rules as Redis's.
#[derive(Default)]
pub struct MemoryDirectory {
    games: Mutex<HashMap<GameId, Entry>>,
    instances: Mutex<HashMap<InstanceId, u64>>,
}

impl MemoryDirectory {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GameId, Entry>> {
        self.games.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The epoch counter of a game and its tenure, for the embedded snapshot store's fence.
    pub fn epoch_now(&self, id: &GameId) -> (u64, Option<Tenure>) {
        self.lock().get(id).map_or((0, None), |e| (e.epoch, e.tenure.clone()))
    }

    fn live(entry: &Entry, now: u64) -> Option<Lease> {
        entry
            .holder
            .as_ref()
            .filter(|_| entry.expires_ms > now)
            .map(|(instance, epoch)| Lease { instance: instance.clone(), epoch: *epoch })
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl GameDirectory for MemoryDirectory {
    fn claim<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, lease: Duration) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let now = monotonic_ms();
            let mut games = self.lock();
            let entry = games.entry(id.clone()).or_default();
            match MemoryDirectory::live(entry, now) {
                Some(held) if held.instance != *me => Ok(Claim::Held(held)),
                Some(mine) => {
                    entry.expires_ms = now + ms(lease);
                    Ok(Claim::Won(mine))
                }
                None => {
                    let epoch = entry.take(me, now + ms(lease));
                    Ok(Claim::Won(Lease { instance: me.clone(), epoch }))
                }
            }
        })
    }

    fn renew<'a>(
        &'a self,
        id: &'a GameId,
        me: &'a InstanceId,
        epoch: u64,
        lease: Duration,
    ) -> StoreFuture<'a, Renewal> {
        Box::pin(async move {
            let now = monotonic_ms();
            let mut games = self.lock();
            let entry = games.entry(id.clone()).or_default();
            match MemoryDirectory::live(entry, now) {
                // Ours: this epoch, or a newer one only we took since.
                Some(held)
                    if held.instance == *me
                        && (held.epoch == epoch || (held.epoch > epoch && entry.covers(me, epoch))) =>
                {
                    entry.expires_ms = now + ms(lease);
                    Ok(Renewal::Renewed(held.epoch))
                }
                Some(held) => Ok(Renewal::Lost(held)),
                None if entry.epoch > epoch && !entry.covers(me, epoch) => {
                    // Lapsed and taken by someone since (who let it lapse too).
                    let instance = entry.tenure.as_ref().map_or_else(|| me.clone(), |t| t.instance.clone());
                    Ok(Renewal::Lost(Lease { instance, epoch: entry.epoch }))
                }
                None => Ok(Renewal::Renewed(entry.take(me, now + ms(lease)))),
            }
        })
    }

    fn release<'a>(&'a self, id: &'a GameId, me: &'a InstanceId, epoch: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if let Some(entry) = self.lock().get_mut(id) {
                if entry.holder.as_ref().is_some_and(|(i, e)| i == me && *e == epoch) {
                    entry.holder = None;
                    entry.expires_ms = 0;
                }
            }
            Ok(())
        })
    }

    fn owner<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move { Ok(self.lock().get(id).and_then(|e| MemoryDirectory::live(e, monotonic_ms()))) })
    }

    fn heartbeat<'a>(&'a self, me: &'a InstanceId, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.instances.lock().unwrap_or_else(|e| e.into_inner()).insert(me.clone(), monotonic_ms() + ms(ttl));
            Ok(())
        })
    }

    fn alive<'a>(&'a self, instance: &'a InstanceId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
            Ok(instances.get(instance).is_some_and(|until| *until > monotonic_ms()))
        })
    }

    fn forget<'a>(&'a self, id: &'a GameId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.lock().remove(id);
            Ok(())
        })
    }
}
