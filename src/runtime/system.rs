//! The top of the supervision tree: the server's own actors. Games have their
//! `GameSupervisor`; this is the root above it and beside it, for every actor the server
//! needs to do its work — the breaker registry, the HealthMonitor, the AdmissionController
//! (and its waitlist processor), the lobby feed (and its event-stream consumer), the
//! GameSupervisor itself and, with Redis, the Relay between instances.
//!
//! Each runs under an Actix `Supervisor` (its address, and so every subscription others
//! hold to it, survives a restart) and under its own policy from
//! `supervision.system.<name>` (the strategies, limits and windows of games). Its handlers
//! and timers run inside [`SystemActor::guarded`]: a panic is caught, counted against the
//! policy, and the actor is stopped so the `Supervisor` restarts it; its `restarting` hook
//! rebuilds what it holds from where that state really lives (the stores, the registry,
//! the configuration) and waits out the policy's delay with its mailbox held, so nothing
//! sent to it is lost. Past its limit a system actor ends the process: the server drains
//! as on SIGTERM (games saved, players told 1012) and exits non-zero, so the service
//! manager starts it again. A system actor still inside one handler after its
//! `hang_timeout_ms` has blocked the server's main thread, which nothing in the process
//! can preempt: the tree's watchdog thread logs it and exits the process at once (70).
//!
//! The background tasks that are not actors — the SnapshotKeeper's writer (`keeper`), the
//! runtime-event publisher (`events`) and, with Redis, the instance heartbeat
//! (`heartbeat`) — run under the same tree through [`SystemTree::supervise_task`]: each poll
//! is inside the panic boundary and the hang stamp, a panic counts against the task's
//! policy and a fresh run starts after its delay (rebuilding from the shared state the task
//! works on), and past its limit the process ends the same way.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::FutureExt as _;
use tokio::sync::{mpsc, Notify};

use crate::config::{RestartPolicyConfig, SupervisionConfig};
use crate::ids::{monotonic_ms, now_rfc3339};
use crate::metrics::{SYSTEM_ACTOR_RESTARTS, SYSTEM_ACTOR_UP};
use crate::protocol::views::SystemActorView;
use crate::runtime::policy::{Decision, RestartLedger};

/// Admin faults a supervised task holds before it takes them; more are refused (503).
const TASK_FAULTS: usize = 16;

/// The exit code when a system actor hung (EX_SOFTWARE).
pub const EXIT_HUNG: i32 = 70;

/// A system actor, by the name configuration, `/health`, `/metrics` and the admin API use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The BreakerRegistry (`breakers`).
    Breakers,
    /// The HealthMonitor (`health`).
    Health,
    /// The AdmissionController and its waitlist processor (`admission`).
    Admission,
    /// The lobby feed and its event-stream consumer (`lobby`).
    Lobby,
    /// The GameSupervisor (`games`).
    Games,
    /// The Relay between instances, with Redis (`relay`).
    Relay,
    /// The SnapshotKeeper's writer task (`keeper`).
    Keeper,
    /// The runtime-event publisher task (`events`).
    Events,
    /// This instance's heartbeat task, with Redis (`heartbeat`).
    Heartbeat,
}

impl Part {
    /// Every system actor and task, in the order they are started.
    pub const ALL: [Part; 9] = [
        Part::Breakers,
        Part::Health,
        Part::Admission,
        Part::Lobby,
        Part::Games,
        Part::Relay,
        Part::Keeper,
        Part::Events,
        Part::Heartbeat,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Part::Breakers => "breakers",
            Part::Health => "health",
            Part::Admission => "admission",
            Part::Lobby => "lobby",
            Part::Games => "games",
            Part::Relay => "relay",
            Part::Keeper => "keeper",
            Part::Events => "events",
            Part::Heartbeat => "heartbeat",
        }
    }

    /// The part a name stands for.
    pub fn parse(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A fault for a system actor, through the same path as a real bug (admin fault injection).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub enum SystemFault {
    /// A panic inside its handler.
    Panic,
    /// Its handler blocks its thread (the server's main thread) this long.
    Hang(Duration),
}

#[derive(Default)]
struct Entry {
    policy: RestartPolicyConfig,
    ledger: Mutex<RestartLedger>,
    restarts: AtomicU64,
    panics: AtomicU64,
    last_restart_at: Mutex<Option<String>>,
    /// When the handler running now began (monotonic ms; 0: idle).
    busy_since_ms: AtomicU64,
    /// The delay the next restart waits out, in µs.
    pending_delay_us: AtomicU64,
    /// Stopped past its limit.
    failed: AtomicBool,
    /// Where admin faults go; `None` until it is started (a part that never runs here, such
    /// as the heartbeat without Redis, is not listed).
    faults: Mutex<Option<FaultSink>>,
}

/// Where a part's admin faults go.
#[derive(Clone)]
enum FaultSink {
    /// An actor's mailbox.
    Actor(Recipient<SystemFault>),
    /// A supervised task's fault channel (bounded like an actor's mailbox).
    Task(mpsc::Sender<SystemFault>),
}

impl FaultSink {
    fn send(&self, fault: SystemFault) -> bool {
        match self {
            FaultSink::Actor(r) => r.try_send(fault).is_ok(),
            FaultSink::Task(tx) => tx.try_send(fault).is_ok(),
        }
    }
}

/// The root of the tree: each system actor's policy, ledger and counters.
pub struct SystemTree {
    entries: [Entry; 9],
    fatal: Mutex<Option<String>>,
    fatal_notify: Notify,
}

impl SystemTree {
    /// The tree with each actor's policy: `supervision.system.<name>` over `supervision.default`.
    pub fn new(config: &SupervisionConfig) -> Arc<Self> {
        let entries = Part::ALL.map(|p| Entry { policy: config.system_policy(p.name()), ..Entry::default() });
        Arc::new(SystemTree { entries, fatal: Mutex::new(None), fatal_notify: Notify::new() })
    }

    fn entry(&self, part: Part) -> &Entry {
        &self.entries[part.index()]
    }

    /// Where admin faults for `part` go (set once the actor is started).
    pub fn attach(&self, part: Part, faults: Recipient<SystemFault>) {
        *self.entry(part).faults.lock().unwrap_or_else(|e| e.into_inner()) = Some(FaultSink::Actor(faults));
    }

    /// Whether `part` runs in this process.
    pub fn runs(&self, part: Part) -> bool {
        self.entry(part).faults.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Sends `part` an injected fault; false when it is not running.
    pub fn inject(&self, part: Part, fault: SystemFault) -> bool {
        let faults = self.entry(part).faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match faults {
            Some(sink) if !self.entry(part).failed.load(Ordering::Acquire) => sink.send(fault),
            _ => false,
        }
    }

    /// Restarts of `part` so far.
    pub fn restarts(&self, part: Part) -> u64 {
        self.entry(part).restarts.load(Ordering::Relaxed)
    }

    /// The state of every system actor and task that runs here.
    pub fn describe(&self) -> Vec<SystemActorView> {
        Part::ALL
            .iter()
            .filter(|p| self.runs(**p))
            .map(|&p| {
                let e = self.entry(p);
                let status = if e.failed.load(Ordering::Acquire) {
                    "failed"
                } else if e.pending_delay_us.load(Ordering::Acquire) > 0 {
                    "restarting"
                } else {
                    "ok"
                };
                SystemActorView {
                    name: p.name(),
                    status,
                    restarts: e.restarts.load(Ordering::Relaxed),
                    panics: e.panics.load(Ordering::Relaxed),
                    last_restart_at: e.last_restart_at.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                }
            })
            .collect()
    }

    /// The Prometheus lines, under the families `metrics` declares.
    pub fn render(&self, out: &mut String) {
        SYSTEM_ACTOR_RESTARTS.describe(out);
        for p in Part::ALL.into_iter().filter(|p| self.runs(*p)) {
            SYSTEM_ACTOR_RESTARTS.sample(out, &[p.name()], self.restarts(p));
        }
        SYSTEM_ACTOR_UP.describe(out);
        for p in Part::ALL.into_iter().filter(|p| self.runs(*p)) {
            SYSTEM_ACTOR_UP.sample(out, &[p.name()], u8::from(!self.entry(p).failed.load(Ordering::Acquire)));
        }
    }

    /// Resolves once a system actor failed past its limit, with the reason to log.
    pub async fn fatal(&self) -> String {
        loop {
            let notified = self.fatal_notify.notified();
            if let Some(reason) = self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return reason;
            }
            notified.await;
        }
    }

    /// Runs `f` for `part` inside the panic boundary and the hang stamp. On a panic: count
    /// it, apply the policy, stop the actor (its `Supervisor` restarts it) and answer `None`.
    pub fn guard<A, R>(
        &self,
        part: Part,
        act: &mut A,
        ctx: &mut Context<A>,
        f: impl FnOnce(&mut A, &mut Context<A>) -> R,
    ) -> Option<R>
    where
        A: Actor<Context = Context<A>>,
    {
        let entry = self.entry(part);
        let nested = entry.busy_since_ms.load(Ordering::Acquire) != 0;
        if !nested {
            entry.busy_since_ms.store(monotonic_ms().max(1), Ordering::Release);
        }
        let out = panic::catch_unwind(AssertUnwindSafe(|| f(act, ctx)));
        if !nested {
            entry.busy_since_ms.store(0, Ordering::Release);
        }
        match out {
            Ok(r) => Some(r),
            Err(payload) => {
                if nested {
                    // The outer guard owns this failure.
                    panic::resume_unwind(payload);
                }
                self.failed(part, &panic_message(&*payload));
                ctx.stop();
                None
            }
        }
    }

    /// Counts a failure of `part` (a caught panic, or a task of its that panicked) against
    /// its policy. The caller stops the actor.
    pub fn failed(&self, part: Part, what: &str) {
        let e = self.entry(part);
        e.panics.fetch_add(1, Ordering::Relaxed);
        let decision =
            e.ledger.lock().unwrap_or_else(|e| e.into_inner()).record(&e.policy, monotonic_ms(), fastrand::f64());
        match decision {
            Decision::Restart { attempt, delay } => {
                e.pending_delay_us
                    .store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX).max(1), Ordering::Release);
                tracing::error!(
                    actor = part.name(),
                    attempt,
                    max_restarts = e.policy.max_restarts,
                    within_secs = e.policy.within_secs,
                    delay_ms = delay.as_millis() as u64,
                    "system actor crashed: {what}; restarting it (games and sockets are not touched)"
                );
            }
            Decision::GiveUp { restarts_in_window } => {
                e.failed.store(true, Ordering::Release);
                let reason = format!(
                    "system actor {} crashed past its limit ({restarts_in_window} restarts within {} s; last: {what}): \
                     ending the process so the service manager starts it again",
                    part.name(),
                    e.policy.within_secs
                );
                tracing::error!(actor = part.name(), restarts_in_window, "{reason}");
                let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
                if fatal.is_none() {
                    *fatal = Some(reason);
                }
                self.fatal_notify.notify_waiters();
            }
        }
    }

    /// Called from the actor's `Supervised::restarting`: counts the restart and holds the
    /// mailbox for the policy's delay (messages wait, none is lost).
    pub fn restarting<A>(&self, part: Part, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        let Some(delay) = self.count_restart(part) else { return };
        let clear = move |_: (), _: &mut A, _: &mut Context<A>| {};
        if delay > Duration::from_micros(1) {
            ctx.wait(actix::fut::wrap_future::<_, A>(tokio::time::sleep(delay)).map(clear));
        }
        tracing::info!(actor = part.name(), "system actor restarted; its state rebuilt");
    }

    /// Counts a restart of `part` and answers the delay to wait out first; `None` once it
    /// failed past its limit (the process is ending).
    fn count_restart(&self, part: Part) -> Option<Duration> {
        let e = self.entry(part);
        if e.failed.load(Ordering::Acquire) {
            return None;
        }
        e.restarts.fetch_add(1, Ordering::Relaxed);
        *e.last_restart_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now_rfc3339());
        Some(Duration::from_micros(e.pending_delay_us.load(Ordering::Acquire)))
    }

    /// Runs the background task of `part` under the tree, on the current arbiter: each run of
    /// `task()` is polled inside the panic boundary and the hang stamp, so a panic counts
    /// against the part's policy and, after its delay, a fresh run starts (the task rebuilds
    /// from the shared state it works on), and a poll stuck past `hang_timeout_ms` ends the
    /// process as for an actor. Admin faults reach the task before its next poll. A run
    /// that ends by itself is not restarted.
    pub fn supervise_task<F, Fut>(self: &Arc<Self>, part: Part, task: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (tx, mut faults) = mpsc::channel(TASK_FAULTS);
        *self.entry(part).faults.lock().unwrap_or_else(|e| e.into_inner()) = Some(FaultSink::Task(tx));
        let tree = self.clone();
        actix_rt::spawn(async move {
            loop {
                let run = Stamped { tree: &tree, part, faults: &mut faults, inner: Box::pin(task()) };
                let Err(payload) = AssertUnwindSafe(run).catch_unwind().await else { return };
                tree.failed(part, &panic_message(&*payload));
                let Some(delay) = tree.count_restart(part) else { return };
                // 1 µs stands for "no delay" (the immediate strategy): no timer round.
                if delay > Duration::from_micros(1) {
                    tokio::time::sleep(delay).await;
                }
                tree.up(part);
                tracing::info!(actor = part.name(), "system task restarted; it goes on from the shared state");
            }
        });
    }

    /// Marks `part` as answering again (from its `started`).
    pub fn up(&self, part: Part) {
        self.entry(part).pending_delay_us.store(0, Ordering::Release);
    }

    /// Starts the hang watchdog on its own thread: a system actor inside one handler past
    /// its `hang_timeout_ms` ends the process (exit 70), since its thread cannot be freed.
    pub fn spawn_watchdog(self: &Arc<Self>, interval: Duration) {
        let tree = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("rampart-system-watchdog".into()).spawn(move || loop {
            std::thread::sleep(interval);
            let Some(tree) = tree.upgrade() else { return };
            let now = monotonic_ms();
            for p in Part::ALL {
                let e = tree.entry(p);
                let since = e.busy_since_ms.load(Ordering::Acquire);
                if since != 0 && now.saturating_sub(since) >= e.policy.hang_timeout_ms {
                    tracing::error!(
                        actor = p.name(),
                        busy_ms = now.saturating_sub(since),
                        hang_timeout_ms = e.policy.hang_timeout_ms,
                        "system actor hung: one handler has held the server's main thread past its hang_timeout_ms; \
                         nothing can free that thread, so the process exits (70) for the service manager to restart it"
                    );
                    std::process::exit(EXIT_HUNG);
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!("could not start the system actors' hang watchdog: {e}");
        }
    }
}

/// One run of a supervised task: every poll stamps the part busy (the hang watchdog reads
/// it) and first takes the admin faults sent to it.
struct Stamped<'a> {
    tree: &'a SystemTree,
    part: Part,
    faults: &'a mut mpsc::Receiver<SystemFault>,
    inner: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
}

/// Clears a busy stamp when a poll ends, by returning or by unwinding.
struct Unstamp<'a>(&'a AtomicU64);

impl Drop for Unstamp<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl std::future::Future for Stamped<'_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let busy = &self.tree.entry(self.part).busy_since_ms;
        busy.store(monotonic_ms().max(1), Ordering::Release);
        let _unstamp = Unstamp(busy);
        while let std::task::Poll::Ready(Some(fault)) = self.faults.poll_recv(cx) {
            match fault {
                SystemFault::Panic => panic!("injected fault (admin): panic in the {} task", self.part.name()),
                // Blocks the thread the task runs on, as a stuck loop would.
                SystemFault::Hang(duration) => std::thread::sleep(duration),
            }
        }
        self.inner.as_mut().poll(cx)
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// A supervised system actor.
pub trait SystemActor: Actor<Context = Context<Self>> + Supervised {
    /// Which one.
    const PART: Part;

    /// The tree it reports to.
    fn tree(&self) -> &Arc<SystemTree>;

    /// Runs `f` inside the tree's panic boundary (see [`SystemTree::guard`]).
    fn guarded<R>(&mut self, ctx: &mut Context<Self>, f: impl FnOnce(&mut Self, &mut Context<Self>) -> R) -> Option<R> {
        let tree = self.tree().clone();
        tree.guard(Self::PART, self, ctx, f)
    }
}

/// Makes `$actor` (which keeps its tree in a field named `tree`) the system actor `$part`:
/// implements [`SystemActor`] and the admin fault, a panic or a block inside its guard,
/// exactly where a bug in one of its handlers would be.
macro_rules! system_actor {
    ($actor:ty, $part:expr) => {
        impl $crate::runtime::system::SystemActor for $actor {
            const PART: $crate::runtime::system::Part = $part;
            fn tree(&self) -> &::std::sync::Arc<$crate::runtime::system::SystemTree> {
                &self.tree
            }
        }

        impl ::actix::Handler<$crate::runtime::system::SystemFault> for $actor {
            type Result = ();
            fn handle(&mut self, fault: $crate::runtime::system::SystemFault, ctx: &mut Self::Context) {
                use $crate::runtime::system::SystemActor as _;
                let name = <$actor as $crate::runtime::system::SystemActor>::PART.name();
                self.guarded(ctx, |_, _| match fault {
                    $crate::runtime::system::SystemFault::Panic => {
                        panic!("injected fault: an admin asked the {name} actor to panic")
                    }
                    $crate::runtime::system::SystemFault::Hang(d) => {
                        ::tracing::warn!(
                            actor = name,
                            ms = d.as_millis() as u64,
                            "injected fault: blocking the thread"
                        );
                        ::std::thread::sleep(d)
                    }
                });
            }
        }
    };
}

pub(crate) use system_actor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Part::ALL {
            assert_eq!(Part::parse(p.name()), Some(p));
        }
        assert_eq!(Part::parse("keepr"), None);
    }

    #[test]
    fn past_the_limit_the_tree_turns_fatal() {
        let mut config = SupervisionConfig::default();
        config.default.max_restarts = 2;
        let tree = SystemTree::new(&config);
        let (tx, _rx) = mpsc::channel(1);
        for p in Part::ALL {
            *tree.entry(p).faults.lock().unwrap() = Some(FaultSink::Task(tx.clone()));
        }
        tree.failed(Part::Lobby, "one");
        tree.failed(Part::Lobby, "two");
        assert!(tree.fatal.lock().unwrap().is_none());
        assert_eq!(tree.describe()[3].status, "restarting");
        tree.failed(Part::Lobby, "three");
        let reason = tree.fatal.lock().unwrap().clone().expect("fatal");
        assert!(reason.contains("lobby") && reason.contains("three"), "{reason}");
        assert_eq!(tree.describe()[3].status, "failed");
        assert_eq!(tree.describe()[0].status, "ok");
    }
}
