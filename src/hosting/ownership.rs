//! Ownership of the hosted games, the one owner of leases for every kind (docs/DESIGN.md
//! D11): the supervisor's lease renewal round for every game in the directory (and the
//! claim of a lease still pending), [`Resolve`] (a game here, on another live instance, or
//! taken over here from its stored snapshot once its owner's lease lapsed), the handling of
//! a fenced snapshot write (a newer epoch of this instance's own is adopted; another
//! instance's means the game is given up; an epoch the store lost in a failover pauses the
//! game until its lease is taken again), and the give-up itself (sockets told 1012).
//! A store error never gives a game up, and never extends a lease either: a game whose
//! lease is not confirmed pauses, and its players are told (docs/DESIGN.md D17).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::{FutureExt as _, StreamExt as _};

use crate::cluster::Cluster;
use crate::hosting::messages::{LeaseState, Shutdown, StartMode};
use crate::hosting::registry::{GameCell, RunState, LEASE_RECHECK};
use crate::hosting::supervisor::{restarting, Found, GameSupervisor, Resolve, Resolved};
use crate::ids::{monotonic_ms, GameId};
use crate::protocol::{ErrorBody, ErrorCode};
use crate::runtime::system::SystemActor as _;
use crate::store::directory::{Claim, Renewal};
use crate::store::keeper::{Fenced, SnapshotKeeper};
use crate::store::StoreError;

/// Lease renewals in flight at once.
const RENEW_CONCURRENCY: usize = 64;

impl GameSupervisor {
    pub(super) fn lease_ms(&self) -> u64 {
        u64::try_from(self.cluster.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// How long after a granted claim or renewal was sent this instance counts on its
    /// lease: the lease less a quarter of it (docs/DESIGN.md D17: the store's clock starts
    /// the lease later than ours, but clocks drift and a promoted replica may expire it
    /// early; the margin also covers a command that passed the check just before the end).
    pub(super) fn confirmed_ms(&self) -> u64 {
        let lease = self.lease_ms();
        lease - lease / 4
    }

    /// The lease epoch a new game starts under: the claim's. A game is never started without
    /// its lease: when the store does not answer (or its replicas do not acknowledge the
    /// claim), the creation is refused and the player retries.
    pub(super) fn new_game_epoch(id: &GameId, claim: Result<Claim, StoreError>) -> Result<u64, ErrorBody> {
        match claim {
            Ok(Claim::Won(lease)) => Ok(lease.epoch),
            Ok(Claim::Held(lease)) => {
                tracing::error!(game_id = %id, owner = %lease.instance, "a new game id is already owned; refusing");
                Err(ErrorBody::new(ErrorCode::Internal, "could not create the game; retry"))
            }
            Err(e) => {
                tracing::warn!(game_id = %id, "refused to create a game: its ownership lease could not be taken, and a game that no store knows would be lost with this process: {e}");
                Err(ErrorBody::store_unavailable())
            }
        }
    }

    /// Tells the players of every game whose lease stopped being confirmed that it paused
    /// (once per pause; [`GameSupervisor::renewed`] tells them when it resumes).
    pub(super) fn tell_paused(&self) {
        let (mut paused, mut now_paused) = (0usize, 0i64);
        for cell in self.registry.all() {
            if !cell.lease_confirmed() && !cell.paused.swap(true, Ordering::AcqRel) {
                paused += 1;
                if let Some(game) = cell.addr() {
                    game.lease().do_send(LeaseState { confirmed: false });
                }
            }
            now_paused += i64::from(cell.paused.load(Ordering::Acquire));
        }
        self.metrics.set_games_paused(now_paused);
        if paused > 0 {
            tracing::warn!(games = paused, lease_ms = self.lease_ms(), "games paused: their ownership leases could not be confirmed in time (the store is unreachable or slow, or this process was stalled); they apply nothing until a renewal succeeds");
        }
    }

    /// Stops hosting a game: nothing of its current incarnation is published or said any
    /// more, its sockets are closed with 1012 (`reason`), and its snapshot here is dropped.
    pub(super) fn give_up(&self, cell: &Arc<GameCell>, reason: &'static str) {
        self.metrics.game_given_up();
        self.registry.remove(&cell.id);
        self.metrics.game_hosted(-1);
        if cell.ended_at_ms.load(Ordering::Acquire) == 0 && cell.run_state() != RunState::Failed {
            self.metrics.game_ended();
        }
        let _ = cell.begin_move();
        if let Some(game) = cell.addr() {
            game.shutdown().do_send(Shutdown { reason });
        }
        cell.clear_addr();
        let (keeper, id) = (self.keeper.clone(), cell.id.clone());
        actix_rt::spawn(async move { keeper.forget(&id, false).await });
    }

    /// Renews the lease of every game hosted here (and takes the leases still pending).
    /// Where each renewal stands alone (no replicas to wait for, or each renewal waited for
    /// them itself: [`Cluster::acknowledged_each`]) each answer is applied as it arrives,
    /// so a shard of a Redis Cluster that does not answer holds back only its own games;
    /// otherwise the round's answers count once the replicas acknowledged them all.
    pub(super) fn renew_leases(&mut self, ctx: &mut Context<Self>) {
        if self.renewing || self.draining || !self.cluster.shared() {
            return;
        }
        self.renewing = true;
        let cells = self.registry.all();
        let cluster = self.cluster.clone();
        let round_ms = monotonic_ms();
        let link = cluster.lease_link();
        let each = cluster.acknowledged_each();
        let answers = futures_util::stream::iter(cells)
            .map(move |cell| {
                let cluster = cluster.clone();
                async move {
                    let epoch = cell.epoch.load(Ordering::Acquire);
                    let answer = cluster.renew(&cell.id, epoch).await;
                    (cell, epoch, answer)
                }
            })
            .buffer_unordered(RENEW_CONCURRENCY);
        let parts: futures_util::stream::BoxStream<'static, RenewalPart> = if each {
            answers.map(|answer| (vec![answer], Ok(()))).boxed()
        } else {
            let cluster = self.cluster.clone();
            futures_util::stream::once(async move {
                let answers = answers.collect::<Vec<_>>().await;
                // Granted renewals count only once the configured replicas have them too: a
                // failover to a replica that never saw them would hand the games out again.
                let acked = if answers.iter().any(|(_, _, a)| matches!(a, Ok(Renewal::Renewed(_)))) {
                    cluster.acknowledged(link).await
                } else {
                    Ok(())
                };
                (answers, acked)
            })
            .boxed()
        };
        let round = actix::fut::wrap_stream::<_, Self>(parts).fold(
            RoundTally::default(),
            move |mut tally, (answers, acked), act, ctx| {
                act.guarded(ctx, |act, _| act.renewed(answers, acked, round_ms, &mut tally));
                actix::fut::ready(tally)
            },
        );
        ctx.spawn(round.map(move |tally, act, ctx| {
            act.guarded(ctx, move |act, ctx| {
                act.round_done(tally);
                // A round that failed is tried again soon rather than a third of a lease
                // later: once the store answers again, the paused games resume within a
                // command timeout and this delay, not a whole interval more.
                if act.renew_failing && !act.renew_retry {
                    act.renew_retry = true;
                    ctx.run_later(LEASE_RECHECK, |act, ctx| {
                        act.renew_retry = false;
                        act.guarded(ctx, Self::renew_leases);
                    });
                }
            });
        }));
    }

    /// Renewal answers (all of a round's, or one) and whether the replicas acknowledged
    /// them: a granted renewal (acknowledged where required) confirms the lease until
    /// `round_ms` plus [`Self::confirmed_ms`] and resumes a paused game; a store error
    /// confirms nothing. Counts into `tally` for [`Self::round_done`].
    pub(super) fn renewed(
        &mut self,
        answers: Vec<RenewalAnswer>,
        acked: Result<(), StoreError>,
        round_ms: u64,
        tally: &mut RoundTally,
    ) {
        if self.draining {
            return; // the leases are being released: a round that took one back is moot
        }
        let until = round_ms + self.confirmed_ms();
        if let Err(e) = &acked {
            tally.first_error.get_or_insert_with(|| format!("the replicas did not acknowledge the renewals: {e}"));
        }
        for (cell, epoch, answer) in answers {
            match (&answer, &acked) {
                (Ok(Renewal::Renewed(_)), Ok(())) => {
                    cell.lease_until_ms.store(until, Ordering::Release);
                    if cell.paused.swap(false, Ordering::AcqRel) {
                        tally.resumed += 1;
                        if let Some(game) = cell.addr() {
                            game.lease().do_send(LeaseState { confirmed: true });
                        }
                    }
                }
                (Ok(Renewal::Renewed(_)), Err(_)) => tally.failed += 1,
                (Err(e), _) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert_with(|| e.to_string());
                }
                (Ok(Renewal::Lost(_)), _) => {}
            }
            match answer {
                Ok(Renewal::Renewed(now)) if now != cell.epoch.load(Ordering::Acquire) => {
                    tracing::info!(game_id = %cell.id, from = epoch, to = now, "this instance holds the game's lease again, with a new epoch");
                    // The snapshot is written again under the new epoch.
                    cell.set_epoch(now);
                }
                Ok(Renewal::Renewed(_)) => {}
                Ok(Renewal::Lost(holder)) => {
                    if self.registry.get(&cell.id).is_some() {
                        tracing::warn!(game_id = %cell.id, epoch, owner = %holder.instance, owner_epoch = holder.epoch, "lost the game's lease to another instance; giving the game up");
                        self.give_up(&cell, "the game moved to another server; reconnecting");
                    }
                }
                // Not confirmed: the game pauses once its confirmed time runs out (another
                // instance may take it over once the lease lapses in the store); try again.
                Err(e) => tracing::debug!(game_id = %cell.id, "could not renew the game's lease: {e}"),
            }
        }
    }

    /// The end of a renewal round: whether renewals are failing now (logged when that
    /// changes), and how many paused games it resumed.
    fn round_done(&mut self, tally: RoundTally) {
        self.renewing = false;
        if self.draining {
            return;
        }
        self.renew_failing = match (tally.failed, self.renew_failing) {
            (0, true) => {
                tracing::info!(resumed = tally.resumed, "game leases are renewed again");
                false
            }
            (0, false) => false,
            (n, was) => {
                if !was {
                    let why = tally.first_error.unwrap_or_default();
                    tracing::warn!(games = n, "could not renew game leases; the games pause when their confirmed time runs out ({} ms after the last renewal) unless a renewal succeeds: {why}", self.confirmed_ms());
                }
                true
            }
        };
        if tally.resumed > 0 {
            tracing::info!(games = tally.resumed, "games resumed: their ownership leases are confirmed again");
        }
    }
}

/// One game's renewal: its cell, the epoch renewed, the store's answer.
pub(super) type RenewalAnswer = (Arc<GameCell>, u64, Result<Renewal, StoreError>);

/// Some answers of a round and whether the replicas acknowledged them.
type RenewalPart = (Vec<RenewalAnswer>, Result<(), StoreError>);

/// What a renewal round found, summed over its answers.
#[derive(Default)]
pub(super) struct RoundTally {
    failed: usize,
    resumed: usize,
    first_error: Option<String>,
}

/// Finds the owner of a game this instance does not host: a live owner (relay to it), or,
/// once the owner's lease has lapsed, the snapshot to take over with a new lease. Waits up
/// to `patience` for the lease of an owner that stopped answering to lapse.
async fn find(cluster: Arc<Cluster>, keeper: Arc<SnapshotKeeper>, id: GameId, patience: Duration) -> Found {
    let unavailable = |why: String| {
        Found::Resolved(Resolved::Unavailable(
            ErrorBody::new(ErrorCode::GameRestarting, why).with("retry_after_ms", 500),
        ))
    };
    let until = tokio::time::Instant::now() + patience;
    loop {
        match cluster.owner(&id).await {
            Err(e) => {
                tracing::warn!(game_id = %id, "the game's owner cannot be looked up right now: {e}");
                return unavailable("the game's owner cannot be looked up right now; retry shortly".to_owned());
            }
            Ok(Some(lease)) if lease.instance != cluster.me => match cluster.alive(&lease.instance).await {
                Ok(true) => return Found::Resolved(Resolved::Remote(lease)),
                Ok(false) | Err(_) if tokio::time::Instant::now() >= until => {
                    return unavailable(
                        "the server that runs this game stopped answering; it is being taken over".into(),
                    )
                }
                // Its owner died: its lease lapses within cluster.lease_ms.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Ok(Some(lease)) => {
                // Ours on paper, but not running here (an earlier life of this instance id):
                // release it and take it over properly, with a new epoch.
                let _ = cluster.release(&id, lease.epoch).await;
            }
            Ok(None) => {
                let snapshot = match keeper.read_stored(&id).await {
                    Ok(Some(snapshot)) if snapshot.game_id != id => {
                        return Found::Unreadable(format!("it holds the snapshot of game {}", snapshot.game_id))
                    }
                    Ok(Some(snapshot)) => snapshot,
                    Ok(None) => return Found::Resolved(Resolved::NotFound),
                    Err(StoreError::Corrupt(why)) => return Found::Unreadable(why),
                    Err(e) => {
                        tracing::warn!(game_id = %id, "the game's snapshot cannot be read right now: {e}");
                        return unavailable("the game's snapshot cannot be read right now; retry shortly".to_owned());
                    }
                };
                let claimed_ms = monotonic_ms();
                match cluster.claim(&id).await {
                    Ok(Claim::Won(lease)) => return Found::TakeOver(snapshot, lease, claimed_ms),
                    // Another instance won the race: relay to it.
                    Ok(Claim::Held(_)) => continue,
                    Err(e) => {
                        tracing::warn!(game_id = %id, "the game cannot be taken over right now: {e}");
                        return unavailable("the game cannot be taken over right now; retry shortly".to_owned());
                    }
                }
            }
        }
    }
}

impl StreamHandler<Fenced> for GameSupervisor {
    /// A snapshot write found a newer epoch. Taken by this instance itself (a claim or
    /// renewal of its own that ran in the store after it stopped waiting, with nobody else
    /// in between): the game carries on under it and its snapshot is written again. Taken by
    /// another instance: that one owns the game now, so it is given up.
    fn handle(&mut self, fenced: Fenced, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, _| {
            let id = &fenced.game_id;
            let ours = fenced.tenure.as_ref().is_some_and(|t| t.covers(&act.cluster.me, fenced.epoch));
            if let Some(cell) = act.registry.get(id) {
                if fenced.current < fenced.epoch {
                    // The store never handed out this epoch as far as it knows: a failover
                    // lost the claim or renewal that took it. Unconfirmed until the next
                    // renewal takes a newer epoch (above this one), under which the snapshot
                    // is written again.
                    tracing::warn!(game_id = %id, epoch = fenced.epoch, store_epoch = fenced.current, "the store has lost this game's latest lease epoch (a Redis failover dropped recent writes); pausing it until its lease is taken again");
                    cell.lease_until_ms.store(0, Ordering::Release);
                } else if ours {
                    act.metrics.epoch_adopted();
                    let epoch = cell.epoch.load(Ordering::Acquire).max(fenced.current);
                    tracing::info!(game_id = %id, from = fenced.epoch, to = epoch, "a snapshot write was behind this instance's own newer epoch; the game goes on under it");
                    cell.set_epoch(epoch);
                } else {
                    tracing::warn!(game_id = %id, epoch = fenced.epoch, current = fenced.current, taker = ?fenced.tenure.as_ref().map(|t| t.instance.as_str()), "this instance's snapshot write was refused: another instance owns the game; giving it up");
                    act.give_up(&cell, "the game moved to another server; reconnecting");
                }
            } else {
                // No longer hosted here: nothing will write it again.
                let (keeper, id) = (act.keeper.clone(), id.clone());
                actix_rt::spawn(async move { keeper.forget(&id, false).await });
            }
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Resolve> for GameSupervisor {
    type Result = ResponseActFuture<Self, Resolved>;

    fn handle(&mut self, msg: Resolve, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| act.resolve(msg))
            .unwrap_or_else(|| Box::pin(actix::fut::ready(Resolved::Unavailable(restarting()))))
    }
}

impl GameSupervisor {
    fn resolve(&mut self, msg: Resolve) -> ResponseActFuture<Self, Resolved> {
        if let Some(cell) = self.registry.get(&msg.0) {
            return Box::pin(actix::fut::ready(Resolved::Local(cell)));
        }
        if !self.cluster.shared() {
            return Box::pin(actix::fut::ready(Resolved::NotFound));
        }
        let work = match self.finding.get(&msg.0) {
            Some(in_flight) => in_flight.clone(),
            None => {
                let patience = self.cluster.lease + Duration::from_secs(1);
                let work =
                    find(self.cluster.clone(), self.keeper.clone(), msg.0.clone(), patience).boxed_local().shared();
                self.finding.insert(msg.0.clone(), work.clone());
                work
            }
        };
        let mine = work.clone();
        Box::pin(work.into_actor(self).map(move |found, act, ctx| {
            if act.finding.get(&msg.0).is_some_and(|w| w.ptr_eq(&mine)) {
                act.finding.remove(&msg.0);
            }
            act.guarded(ctx, |act, _| act.found(&msg.0, found)).unwrap_or_else(|| Resolved::Unavailable(restarting()))
        }))
    }
}

impl GameSupervisor {
    /// What a lookup of a game not hosted here comes to.
    fn found(&mut self, id: &GameId, found: Found) -> Resolved {
        match found {
            Found::Resolved(resolved) => resolved,
            Found::Unreadable(why) => {
                if self.unreadable.len() < 10_000 && self.unreadable.insert(id.clone()) {
                    self.metrics.snapshot_unreadable();
                    tracing::error!(game_id = %id, "the game's stored snapshot cannot be read, so it cannot resume; it is closed as failed (the stored value is left for inspection): {why}");
                }
                Resolved::Unavailable(
                    ErrorBody::new(
                        ErrorCode::GameFailed,
                        "this game's saved state is damaged and cannot be resumed; it is closed",
                    )
                    .with("reason", "unreadable"),
                )
            }
            Found::TakeOver(mut snapshot, lease, claimed_ms) => {
                // The requests that shared this lookup: the first one hosts the game.
                if let Some(cell) = self.registry.get(id) {
                    return Resolved::Local(cell);
                }
                tracing::info!(game_id = %id, epoch = lease.epoch, moves = snapshot.board.moves(), "taking over a game whose owner's lease lapsed");
                snapshot.epoch = lease.epoch;
                Resolved::Local(self.host(Arc::new(snapshot), StartMode::TakenOver, claimed_ms))
            }
        }
    }
}
