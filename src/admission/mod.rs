//! AdmissionController is an actor. It is the one gate for new games: every creation
//! request passes through it. It admits a game while the server is not overloaded, fewer
//! than `admission.max_games` run, nobody is already waiting (first come, first served) and
//! its token bucket (`rate_per_sec`, `burst`) has a token; otherwise the caller gets a
//! ticket in the waitlist ([`line::Line`]) and SERVER_BUSY. Its processor admits waiting
//! players in FIFO order at `admit_per_sec` whenever health allows, records each result
//! against the ticket and tells whoever watches it. Running games are never touched by any
//! of this; joining the free seat of an existing game is not a new game and bypasses it.

pub mod clients;
pub mod line;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::config::AdmissionConfig;
use crate::hosting::supervisor::{CreateGame, GameSupervisor};
use crate::ids::{now_rfc3339, Ticket};
use crate::metrics::Metrics;
use crate::protocol::views::WatchLinks;
use crate::protocol::{ErrorBody, ErrorCode, SeatGrant};
use crate::rate::TokenBucket;
use crate::runtime::status::{HealthChanged, Status};
use crate::runtime::system::{Part, SystemActor, SystemTree};
use crate::store::waitlist::{TicketStatus, WaitEntry, WaitRequest};
use clients::{ClientKey, Clients, Limited, TicketCheck};
use line::Line;

/// Ask for a new game.
#[derive(Message)]
#[rtype(result = "Result<SeatGrant, ErrorBody>")]
pub struct Admit {
    /// The game asked for.
    pub create: CreateGame,
    /// The address it came from, for the per-client limits ([`clients`]); `None` for
    /// callers inside the server.
    pub client: Option<ClientKey>,
}

/// Shared admission figures: the players waiting and the measured admission rate, for
/// positions' ETAs and `/health`.
#[derive(Default)]
pub struct AdmissionStats {
    waiting: AtomicU64,
    /// Admissions a second from the waitlist, ×1000 (0: none measured yet).
    rate_milli: AtomicU64,
    admitted_from_line: AtomicU64,
    refused: AtomicU64,
}

impl AdmissionStats {
    /// Players waiting at the last count.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
    /// A player left the line.
    pub fn left(&self) {
        let _ = self.waiting.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(1)));
    }
    /// Players admitted from the line so far.
    pub fn admitted_from_line(&self) -> u64 {
        self.admitted_from_line.load(Ordering::Relaxed)
    }
    /// Creation requests answered SERVER_BUSY so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    /// The measured admission rate (per second), if any.
    pub fn rate_per_sec(&self) -> Option<f64> {
        match self.rate_milli.load(Ordering::Relaxed) {
            0 => None,
            m => Some(m as f64 / 1000.0),
        }
    }
    /// Seconds until `position` is admitted: position ÷ the measured admission rate (the
    /// configured pace until one is measured), rounded up.
    pub fn eta_secs(&self, position: u64, configured_rate: f64) -> u64 {
        let rate = self.rate_per_sec().unwrap_or(configured_rate).max(0.001);
        (position as f64 / rate).ceil() as u64
    }
}

/// A change for whoever watches a ticket (`/ws/lobby`).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum WaitlistNotice {
    /// Still waiting, at this position.
    Waiting {
        /// 1-based position.
        position: u64,
        /// Estimated seconds until admitted.
        eta_secs: u64,
    },
    /// Admitted: the seat to take.
    Admitted(SeatGrant),
    /// The ticket is not (or no longer) in line.
    Unknown,
}

/// Watch a ticket: the watcher gets its status now, then each change (checked every
/// `MAINTAIN_EVERY`). Watching keeps the ticket alive. A watcher watches one ticket at a
/// time: `previous` is the one it stops watching.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    /// The ticket.
    pub ticket: Ticket,
    /// Who to tell.
    pub watcher: Recipient<WaitlistNotice>,
    /// The ticket this watcher watched until now, if any.
    pub previous: Option<Ticket>,
}

/// How often the line is maintained (expiry, recovery, flush) and watchers hear of their
/// new positions.
const MAINTAIN_EVERY: Duration = Duration::from_millis(500);

/// The gate for new games.
pub struct AdmissionController {
    supervisor: Addr<GameSupervisor>,
    line: Arc<Line>,
    stats: Arc<AdmissionStats>,
    metrics: Arc<Metrics>,
    config: AdmissionConfig,
    health: Status,
    bucket: TokenBucket,
    draining: bool,
    /// An admission from the line is in flight.
    admitting: bool,
    /// A round of watcher lookups is in flight (rounds never overlap).
    notifying: bool,
    /// The last admissions from the line, to measure the rate.
    recent: VecDeque<Instant>,
    watchers: HashMap<Ticket, (Vec<Recipient<WaitlistNotice>>, Option<u64>)>,
    /// The per-client limits.
    clients: Clients,
    tree: Arc<SystemTree>,
}

impl AdmissionController {
    /// A controller that hands admitted games to `supervisor` and queues the rest in `line`.
    pub fn new(
        supervisor: Addr<GameSupervisor>,
        line: Arc<Line>,
        stats: Arc<AdmissionStats>,
        metrics: Arc<Metrics>,
        config: AdmissionConfig,
        tree: Arc<SystemTree>,
    ) -> Self {
        let bucket = TokenBucket::new(config.rate_per_sec, f64::from(config.burst), Instant::now());
        let clients = Clients::new(
            config.client_creations_per_sec,
            f64::from(config.client_creation_burst),
            config.max_tickets_per_client,
        );
        AdmissionController {
            supervisor,
            line,
            stats,
            metrics,
            config,
            health: Status::Healthy,
            bucket,
            draining: false,
            admitting: false,
            notifying: false,
            recent: VecDeque::new(),
            watchers: HashMap::new(),
            clients,
            tree,
        }
    }

    /// Whether a game may start now, ignoring the line.
    fn capacity(&self) -> bool {
        self.health != Status::Overloaded && (self.metrics.games_active().max(0) as u64) < self.config.max_games
    }

    /// Admits the first waiting player, if health and the caps allow.
    fn process(&mut self, ctx: &mut Context<Self>) {
        if self.admitting || self.draining || !self.capacity() || self.stats.waiting() == 0 {
            return;
        }
        self.admitting = true;
        let line = self.line.clone();
        let supervisor = self.supervisor.clone();
        let work = async move {
            let entry = match line.claim().await {
                Ok(Some(claimed)) => claimed,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!("could not claim from the waitlist: {e}");
                    return None;
                }
            };
            let request = CreateGame {
                kind: entry.request.kind,
                opponent: entry.request.opponent,
                player_name: entry.request.player_name.clone(),
            };
            match supervisor.send(request).await {
                Ok(Ok(grant)) => {
                    if let Err(e) = line.complete(&entry.ticket, &grant).await {
                        tracing::warn!(ticket = %entry.ticket, "admitted a waiting player but could not record it: {e}");
                    }
                    Some((entry.ticket, grant))
                }
                other => {
                    // Left in processing: start-up recovery puts it back at the front.
                    tracing::error!(ticket = %entry.ticket, "could not create a waiting player's game: {other:?}");
                    None
                }
            }
        };
        ctx.spawn(work.into_actor(self).map(|admitted, act, ctx| {
            act.guarded(ctx, |act, _| act.admitted(admitted));
        }));
    }

    fn admitted(&mut self, admitted: Option<(Ticket, SeatGrant)>) {
        self.admitting = false;
        if let Some((ticket, grant)) = admitted {
            let now = Instant::now();
            self.recent.push_back(now);
            while self.recent.len() > 20 {
                self.recent.pop_front();
            }
            if let (Some(first), n) = (self.recent.front(), self.recent.len()) {
                let span = now.duration_since(*first).as_secs_f64();
                if n >= 2 && span > 0.0 {
                    self.stats.rate_milli.store(((n - 1) as f64 / span * 1000.0) as u64, Ordering::Relaxed);
                }
            }
            self.stats.admitted_from_line.fetch_add(1, Ordering::Relaxed);
            self.stats.left();
            tracing::info!(%ticket, game_id = %grant.game_id, "admitted a waiting player");
            self.clients.forget([&ticket]);
            if let Some((watchers, _)) = self.watchers.remove(&ticket) {
                for w in watchers {
                    w.do_send(WaitlistNotice::Admitted(grant.clone()));
                }
            }
        }
    }

    /// Sends each watcher its position when it changed: one lookup per watched ticket, one
    /// round at a time.
    fn notify_positions(&mut self, ctx: &mut Context<Self>) {
        self.watchers.retain(|_, (w, _)| {
            w.retain(Recipient::connected);
            !w.is_empty()
        });
        if self.notifying || self.watchers.is_empty() {
            return;
        }
        self.notifying = true;
        let tickets: Vec<Ticket> = self.watchers.keys().cloned().collect();
        self.notify(ctx, tickets, true);
    }

    /// Looks `tickets` up and tells their watchers what changed; `round` marks the periodic
    /// round over every watched ticket.
    fn notify(&mut self, ctx: &mut Context<Self>, tickets: Vec<Ticket>, round: bool) {
        let line = self.line.clone();
        let lookups = async move {
            let mut out = Vec::with_capacity(tickets.len());
            for t in tickets {
                let status = line.status(&t).await;
                out.push((t, status));
            }
            out
        };
        ctx.spawn(lookups.into_actor(self).map(move |statuses, act, ctx| {
            act.guarded(ctx, |act, _| act.notified(statuses, round));
        }));
    }

    fn notified(&mut self, statuses: Vec<(Ticket, Result<TicketStatus, crate::store::StoreError>)>, round: bool) {
        if round {
            self.notifying = false;
        }
        for (ticket, status) in statuses {
            let Some((watchers, last)) = self.watchers.get_mut(&ticket) else { continue };
            let notice = match status {
                Ok(TicketStatus::Waiting { position }) => {
                    if *last == Some(position) {
                        continue;
                    }
                    *last = Some(position);
                    WaitlistNotice::Waiting {
                        position,
                        eta_secs: self.stats.eta_secs(position, self.config.admit_per_sec),
                    }
                }
                Ok(TicketStatus::Processing | TicketStatus::Elsewhere) | Err(_) => continue,
                Ok(TicketStatus::Admitted(grant)) => WaitlistNotice::Admitted(grant),
                Ok(TicketStatus::Unknown) => WaitlistNotice::Unknown,
            };
            for w in watchers.iter() {
                w.do_send(notice.clone());
            }
            if !matches!(notice, WaitlistNotice::Waiting { .. }) {
                self.watchers.remove(&ticket);
            }
        }
    }

    fn maintain(&mut self, ctx: &mut Context<Self>) {
        let line = self.line.clone();
        ctx.spawn(async move { line.maintain().await }.into_actor(self).map(|waiting, act, ctx| {
            act.guarded(ctx, |act, ctx| {
                act.stats.waiting.store(waiting, Ordering::Relaxed);
                act.clients.sweep(Instant::now(), false);
                act.notify_positions(ctx);
            });
        }));
    }
}

impl Actor for AdmissionController {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A crash may have left claimed entries whose games were never created.
        let line = self.line.clone();
        ctx.wait(async move { line.requeue_processing().await }.into_actor(self).map(|requeued, act, ctx| {
            match requeued {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(requeued = n, "put waitlist entries a crash left half-admitted back at the front")
                }
                Err(e) => tracing::warn!("could not recover the waitlist's processing entries: {e}"),
            }
            act.maintain(ctx);
        }));
        let pace = Duration::from_secs_f64((1.0 / self.config.admit_per_sec).max(0.005));
        ctx.run_interval(pace, |act, ctx| {
            act.guarded(ctx, Self::process);
        });
        ctx.run_interval(MAINTAIN_EVERY, |act, ctx| {
            act.guarded(ctx, Self::maintain);
        });
        self.tree.up(Part::Admission);
    }
}

/// A restart keeps what others gave it (the watchers' addresses, the health status the
/// monitor sent, draining) and the per-client limits; what was in flight is dropped with
/// the old context and rebuilt: `started` runs again, putting any entry claimed but never
/// admitted back at the front of the line (the line itself lives in the store, in order)
/// and recounting it.
impl Supervised for AdmissionController {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.admitting = false;
        self.notifying = false;
        self.watchers.retain(|_, (w, last)| {
            w.retain(Recipient::connected);
            *last = None;
            !w.is_empty()
        });
        self.tree.restarting(Part::Admission, ctx);
    }
}

crate::runtime::system::system_actor!(AdmissionController, Part::Admission);

/// Stop admitting: the server is shutting down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartDraining;

impl Handler<StartDraining> for AdmissionController {
    type Result = ();
    fn handle(&mut self, _: StartDraining, _: &mut Context<Self>) {
        self.draining = true;
    }
}

impl Handler<HealthChanged> for AdmissionController {
    type Result = ();
    fn handle(&mut self, msg: HealthChanged, ctx: &mut Context<Self>) {
        let before = self.health;
        self.health = msg.0;
        if before == Status::Overloaded && msg.0 != Status::Overloaded {
            tracing::info!(
                waiting = self.stats.waiting(),
                "health allows admissions again; draining the waitlist in order"
            );
            self.guarded(ctx, Self::process);
        }
    }
}

impl Handler<Watch> for AdmissionController {
    type Result = ();
    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| act.watch(msg, ctx));
    }
}

impl AdmissionController {
    fn watch(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        if let Some((watchers, _)) = msg.previous.as_ref().and_then(|p| self.watchers.get_mut(p)) {
            watchers.retain(|w| *w != msg.watcher);
        }
        let entry = self.watchers.entry(msg.ticket.clone()).or_insert_with(|| (Vec::new(), None));
        if !entry.0.contains(&msg.watcher) {
            entry.0.push(msg.watcher);
        }
        entry.1 = None; // so the new watcher hears the current position
        let (line, ticket) = (self.line.clone(), msg.ticket.clone());
        ctx.spawn(async move { line.watch(&ticket).await }.into_actor(self));
        self.notify(ctx, vec![msg.ticket], false);
    }
}

impl AdmissionController {
    /// A client address past one of its limits: RATE_LIMITED with when to retry.
    fn limited(&self, client: ClientKey, limited: Limited) -> ErrorBody {
        let (limit, error) = match limited {
            Limited::Creations(wait) => (
                "creations",
                ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!(
                        "this address is creating games faster than {} a second; retry shortly",
                        self.config.client_creations_per_sec
                    ),
                )
                .with("limit", "creations")
                .with("retry_after_ms", (wait.as_millis() as u64).clamp(100, 60_000)),
            ),
            Limited::Tickets { max } => (
                "tickets",
                ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!(
                        "this address already holds {max} tickets in the line; wait with one of them, or leave one"
                    ),
                )
                .with("limit", "tickets")
                .with("retry_after_ms", 5000),
            ),
        };
        self.metrics.client_limited(limit);
        tracing::debug!(%client, limit, "a client address passed its limit");
        error
    }

    /// Puts the request in the line: SERVER_BUSY with its ticket and position.
    fn queue(&mut self, msg: Admit, why: &'static str, now: Instant) -> ResponseActFuture<Self, AdmitResult> {
        let (original, client) = (Ticket::random(), msg.client);
        if let Some(client) = client {
            self.clients.queued(client, original.clone(), now);
        }
        let request =
            WaitRequest { kind: msg.create.kind, opponent: msg.create.opponent, player_name: msg.create.player_name };
        let entry = WaitEntry { ticket: original.clone(), request, enqueued_at: now_rfc3339(), seq: 0, shown: 0 };
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        let (line, stats, pace) = (self.line.clone(), self.stats.clone(), self.config.admit_per_sec);
        let work = async move {
            let (ticket, position) = match line.enqueue(entry).await {
                Ok(queued) => queued,
                Err(e) => {
                    tracing::error!("could not put a player in the waitlist: {e}");
                    let busy = "the server is busy and could not queue you; retry shortly";
                    return (None, Err(ErrorBody::new(ErrorCode::ServerBusy, busy).with("retry_after_ms", 2000)));
                }
            };
            let eta_secs = stats.eta_secs(position, pace);
            tracing::info!(%ticket, position, reason = why, "a new game must wait");
            let busy = ErrorBody::new(ErrorCode::ServerBusy, format!("{why}; you are number {position} in line"))
                .with("ticket", ticket.expose())
                .with("position", position)
                .with("eta_secs", eta_secs)
                .with("retry_after_ms", (eta_secs * 1000).clamp(1000, 60_000))
                .with("watch", WatchLinks::for_ticket(&ticket).to_value());
            (Some(ticket), Err(busy))
        };
        Box::pin(work.into_actor(self).map(move |(issued, answer), act, _| {
            // The fallback queue issues a ticket of its own: the client holds that one.
            if let (Some(client), Some(issued)) = (client, issued.filter(|t| *t != original)) {
                act.clients.forget([&original]);
                act.clients.queued(client, issued, Instant::now());
            }
            answer
        }))
    }
}

type AdmitResult = Result<SeatGrant, ErrorBody>;

impl Handler<Admit> for AdmissionController {
    type Result = ResponseActFuture<Self, AdmitResult>;

    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(ctx, |act, _| act.admit(msg)).unwrap_or_else(|| {
            Box::pin(actix::fut::ready(Err(ErrorBody::new(
                ErrorCode::Internal,
                "the admission controller hit a bug and is restarting; retry shortly",
            )
            .with("retry_after_ms", 500))))
        })
    }
}

impl AdmissionController {
    fn admit(&mut self, msg: Admit) -> ResponseActFuture<Self, AdmitResult> {
        let ready = |r: AdmitResult| -> ResponseActFuture<Self, AdmitResult> { Box::pin(actix::fut::ready(r)) };
        if self.draining {
            return ready(Err(ErrorBody::draining()));
        }
        let now = Instant::now();
        if let Some(client) = msg.client {
            if let Err(limited) = self.clients.create(client, now) {
                return ready(Err(self.limited(client, limited)));
            }
        }
        let why = if self.health == Status::Overloaded {
            Some("the server is overloaded")
        } else if !self.capacity() {
            Some("the server is running as many games as it may")
        } else if self.stats.waiting() > 0 {
            Some("players are already waiting")
        } else if self.bucket.take(now).is_err() {
            Some("new games are arriving faster than the server admits them")
        } else {
            None
        };
        let Some(why) = why else {
            let supervisor = self.supervisor.clone();
            return Box::pin(
                async move {
                    supervisor.send(msg.create).await.unwrap_or_else(|_| {
                        Err(ErrorBody::new(ErrorCode::Internal, "the game supervisor is unavailable"))
                    })
                }
                .into_actor(self),
            );
        };
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        if self.stats.waiting() >= self.config.max_waitlist {
            return ready(Err(ErrorBody::new(
                ErrorCode::ServerBusy,
                "the server is busy and its waitlist is full; retry later",
            )
            .with("retry_after_ms", 5000)));
        }
        let Some(client) = msg.client else { return self.queue(msg, why, now) };
        match self.clients.may_queue(client, now) {
            TicketCheck::Issue => self.queue(msg, why, now),
            TicketCheck::Refuse(limited) => ready(Err(self.limited(client, limited))),
            TicketCheck::LookUp(tickets) => {
                // At its limit: the tickets that have left the line since (admitted
                // elsewhere, cancelled, expired) no longer count.
                let line = self.line.clone();
                let look = async move {
                    let mut gone = Vec::new();
                    for ticket in tickets {
                        match line.status(&ticket).await {
                            Ok(TicketStatus::Waiting { .. } | TicketStatus::Processing | TicketStatus::Elsewhere) => {}
                            Ok(_) => gone.push(ticket),
                            // The line cannot say: count it as still held.
                            Err(_) => {}
                        }
                    }
                    gone
                };
                Box::pin(look.into_actor(self).then(move |gone, act, _| {
                    act.clients.forget(&gone);
                    match act.clients.may_queue(client, Instant::now()) {
                        TicketCheck::Issue => act.queue(msg, why, Instant::now()),
                        _ => Box::pin(actix::fut::ready(Err(
                            act.limited(client, Limited::Tickets { max: act.config.max_tickets_per_client })
                        ))),
                    }
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_divides_the_position_by_the_measured_rate() {
        let s = AdmissionStats::default();
        assert_eq!(s.eta_secs(10, 2.0), 5, "configured pace until measured");
        s.rate_milli.store(4000, Ordering::Relaxed);
        assert_eq!(s.eta_secs(10, 2.0), 3);
        assert_eq!(s.eta_secs(0, 2.0), 0);
    }
}
