//! HealthMonitor is an actor (docs/DESIGN.md D5). Every `health.interval_ms` it samples the
//! memory the process holds ([`memory`]: RSS from sysinfo minus the allocator's free pages)
//! and the system's available memory (sysinfo, refreshing only those), how late its own tick fired (event-loop lag), the games running, and the rate of
//! game-creation requests counted where they arrive ([`CreationRate`]). The pure
//! [`Evaluator`] turns the vitals into `healthy | degraded | overloaded` with hysteresis and
//! a dwell time; each change is sent to the subscribers (the AdmissionController) and the
//! latest report is kept in a [`HealthBoard`] that `/health` reads without a mailbox trip.

pub mod memory;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;

use crate::config::HealthConfig;
use crate::metrics::Metrics;
use crate::runtime::status::{HealthChanged, Status};
use crate::runtime::system::{Part, SystemActor, SystemTree};

/// One sampled vital with its limit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Vital {
    /// Its name, e.g. `rss_mb`.
    pub name: &'static str,
    /// The sampled value.
    pub value: f64,
    /// The limit at which the server is overloaded (0 = this vital is off).
    pub limit: f64,
    /// Its level after hysteresis.
    pub status: Status,
}

/// Turns samples into a status. Pure: the caller supplies the time.
#[derive(Debug, Clone)]
pub struct Evaluator {
    degraded_ratio: f64,
    exit_ratio: f64,
    dwell: Duration,
    levels: Vec<(&'static str, Status)>,
    status: Status,
    /// The first sample.
    first: Option<Instant>,
    /// The last change of status.
    changed: Option<Instant>,
}

impl Evaluator {
    /// An evaluator with the configured ratios and dwell time, starting healthy.
    pub fn new(config: &HealthConfig) -> Self {
        Evaluator {
            degraded_ratio: config.degraded_ratio,
            exit_ratio: config.exit_ratio,
            dwell: Duration::from_millis(config.dwell_ms),
            levels: Vec::new(),
            status: Status::Healthy,
            first: None,
            changed: None,
        }
    }

    /// Carries on from `status`, published before a restart, as if it had just been
    /// entered at `now` (so a restart cannot make the status flap faster than `dwell`).
    pub fn resume(&mut self, status: Status, now: Instant) {
        self.status = status;
        self.changed = Some(now);
        self.first = Some(now);
    }

    /// The status in force.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The level of one vital given its previous level: entering a level at its threshold,
    /// leaving it only below `exit_ratio` of that threshold.
    fn level(&self, previous: Status, value: f64, limit: f64) -> Status {
        if limit <= 0.0 {
            return Status::Healthy;
        }
        let over = limit;
        let degraded = limit * self.degraded_ratio;
        if value >= over || (previous == Status::Overloaded && value >= over * self.exit_ratio) {
            Status::Overloaded
        } else if value >= degraded || (previous >= Status::Degraded && value >= degraded * self.exit_ratio) {
            Status::Degraded
        } else {
            Status::Healthy
        }
    }

    /// Takes one sample of every vital (`(name, value, limit)`) at `now`; answers the vitals
    /// with their levels and, when the status changed, the new status. A worse status takes
    /// effect at once, always: the gate closes at its limit, however recently the status
    /// last changed (a spike that climbs through `degraded` into the limit within one dwell
    /// is overloaded at the limit, not a dwell later). A better one only after `dwell` in
    /// the current status. So the status improves at most once per `dwell` and a load
    /// balancer never sees it flap faster than that, whatever the vitals do.
    pub fn sample(&mut self, now: Instant, samples: &[(&'static str, f64, f64)]) -> (Vec<Vital>, Option<Status>) {
        let mut vitals = Vec::with_capacity(samples.len());
        for &(name, value, limit) in samples {
            let previous = self.levels.iter().find(|(n, _)| *n == name).map_or(Status::Healthy, |(_, s)| *s);
            let status = self.level(previous, value, limit);
            match self.levels.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = status,
                None => self.levels.push((name, status)),
            }
            vitals.push(Vital { name, value, limit, status });
        }
        let wanted = vitals.iter().map(|v| v.status).max().unwrap_or(Status::Healthy);
        let first = *self.first.get_or_insert(now);
        let settled = |since: Instant| now.duration_since(since) >= self.dwell;
        let may = match wanted.cmp(&self.status) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => settled(self.changed.unwrap_or(first)),
            std::cmp::Ordering::Equal => false,
        };
        let change = if may {
            self.status = wanted;
            self.changed = Some(now);
            Some(wanted)
        } else {
            None
        };
        (vitals, change)
    }
}

/// Counts game-creation requests where they arrive (the HTTP handler), so the monitor
/// measures the rate instead of guessing it.
#[derive(Default)]
pub struct CreationRate {
    requests: AtomicU64,
}

impl CreationRate {
    /// One more creation request arrived.
    pub fn hit(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    /// Requests so far.
    pub fn total(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The latest health report, shared with `/health` and the AdmissionController.
#[derive(Clone, Debug, Serialize)]
pub struct HealthReport {
    /// The status in force.
    pub status: Status,
    /// Every vital, with its value, limit and level.
    pub vitals: Vec<Vital>,
    /// Samples taken so far.
    pub samples: u64,
}

/// Where the latest report is published.
pub struct HealthBoard {
    report: Mutex<Arc<HealthReport>>,
    /// An admin override for tests and drills (`None`: the measured status).
    forced: Mutex<Option<Status>>,
}

impl Default for HealthBoard {
    fn default() -> Self {
        HealthBoard {
            report: Mutex::new(Arc::new(HealthReport { status: Status::Healthy, vitals: Vec::new(), samples: 0 })),
            forced: Mutex::new(None),
        }
    }
}

impl HealthBoard {
    /// The latest report.
    pub fn report(&self) -> Arc<HealthReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// The status an admin forced, if any.
    pub fn forced(&self) -> Option<Status> {
        *self.forced.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn publish(&self, report: HealthReport) {
        *self.report.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(report);
    }
}

/// Subscribes a recipient to status changes; it gets the current status at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<HealthChanged>);

/// Samples the vitals and broadcasts status changes.
pub struct HealthMonitor {
    config: HealthConfig,
    evaluator: Evaluator,
    board: Arc<HealthBoard>,
    rate: Arc<CreationRate>,
    metrics: Arc<Metrics>,
    subscribers: Vec<Recipient<HealthChanged>>,
    system: Option<sysinfo::System>,
    pid: Option<sysinfo::Pid>,
    last_tick: Instant,
    last_requests: u64,
    samples: u64,
    tree: Arc<SystemTree>,
}

impl HealthMonitor {
    /// A monitor publishing to `board`, measuring creation requests counted in `rate`.
    pub fn new(
        config: HealthConfig,
        board: Arc<HealthBoard>,
        rate: Arc<CreationRate>,
        metrics: Arc<Metrics>,
        tree: Arc<SystemTree>,
    ) -> Self {
        let system = sysinfo::System::new().ok();
        if system.is_none() {
            tracing::warn!("memory vitals are unavailable on this system; health uses lag, rate and games only");
        }
        HealthMonitor {
            evaluator: Evaluator::new(&config),
            config,
            board,
            rate,
            metrics,
            subscribers: Vec::new(),
            system,
            pid: sysinfo::get_current_pid().ok(),
            last_tick: Instant::now(),
            last_requests: 0,
            samples: 0,
            tree,
        }
    }

    /// (RSS MB, system memory used %), refreshing only memory and this process.
    fn memory(&mut self) -> (f64, f64) {
        let Some(system) = self.system.as_mut() else { return (0.0, 0.0) };
        system.refresh_memory();
        let mut rss = 0.0;
        if let Some(pid) = self.pid {
            system.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::Some(&[pid]),
                false,
                sysinfo::ProcessRefreshKind::nothing().with_memory(),
            );
            rss = system.process(pid).map_or(0.0, |p| p.memory() as f64 / 1_048_576.0);
        }
        let total = system.total_memory() as f64;
        let used_pct = if total > 0.0 { 100.0 * (1.0 - system.available_memory() as f64 / total) } else { 0.0 };
        (rss, used_pct)
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let interval = Duration::from_millis(self.config.interval_ms);
        let elapsed = now.duration_since(self.last_tick);
        let lag_ms = elapsed.saturating_sub(interval).as_secs_f64() * 1000.0;
        let requests = self.rate.total();
        let rate = (requests - self.last_requests) as f64 / elapsed.as_secs_f64().max(0.001);
        self.last_tick = now;
        self.last_requests = requests;
        let (rss_mb, used_pct) = self.memory();
        let memory = memory::sample(rss_mb);
        let c = &self.config;
        let samples = [
            ("memory_mb", memory.held_mb, c.max_memory_mb as f64),
            // Reported, never judged: RSS counts the freed pages the allocator still keeps.
            ("rss_mb", rss_mb, 0.0),
            ("allocator_free_mb", memory.allocator_free_mb, 0.0),
            ("memory_used_pct", used_pct, c.max_memory_used_pct),
            ("event_loop_lag_ms", lag_ms, c.max_lag_ms as f64),
            ("create_rate_per_sec", rate, c.max_create_rate_per_sec),
            // Reported, not judged: the cap itself is enforced by admission, game by game,
            // and a game that ends frees its place at once (no dwell, no hysteresis).
            ("active_games", self.metrics.games_active() as f64, 0.0),
        ];
        // The evaluator's own change is folded into `status` below (an admin override wins).
        let (vitals, _) = self.evaluator.sample(now, &samples);
        self.samples += 1;
        let forced = *self.board.forced.lock().unwrap_or_else(|e| e.into_inner());
        let status = forced.unwrap_or(self.evaluator.status());
        let previous = self.board.report().status;
        self.board.publish(HealthReport { status, vitals: vitals.clone(), samples: self.samples });
        if status != previous {
            let worst: Vec<String> = vitals
                .iter()
                .filter(|v| v.status != Status::Healthy)
                .map(|v| format!("{}={:.1} (limit {})", v.name, v.value, v.limit))
                .collect();
            tracing::warn!(from = previous.as_str(), to = status.as_str(), vitals = %worst.join(", "), "server health changed");
            for s in &self.subscribers {
                s.do_send(HealthChanged(status));
            }
        }
    }
}

impl Actor for HealthMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.last_tick = Instant::now();
        self.last_requests = self.rate.total();
        ctx.run_interval(Duration::from_millis(self.config.interval_ms), |act, ctx| {
            act.guarded(ctx, |act, _| act.tick());
        });
        self.tree.up(Part::Health);
    }
}

/// A restart rebuilds the evaluator from the configuration and the last published report
/// (the board is where the status really lives), keeps the subscribers (their addresses
/// are theirs) and reopens the system handle; the next tick measures afresh.
impl Supervised for HealthMonitor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.evaluator = Evaluator::new(&self.config);
        self.evaluator.resume(self.board.report().status, Instant::now());
        self.system = sysinfo::System::new().ok();
        self.subscribers.retain(Recipient::connected);
        self.tree.restarting(Part::Health, ctx);
    }
}

crate::runtime::system::system_actor!(HealthMonitor, Part::Health);

impl Handler<Subscribe> for HealthMonitor {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, _| {
            msg.0.do_send(HealthChanged(act.board.report().status));
            act.subscribers.push(msg.0);
        });
    }
}

/// Overrides the measured status (`None` returns to measuring). For drills and tests;
/// exposed to admins only.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForceStatus(pub Option<Status>);

impl Handler<ForceStatus> for HealthMonitor {
    type Result = ();
    fn handle(&mut self, msg: ForceStatus, ctx: &mut Context<Self>) {
        *self.board.forced.lock().unwrap_or_else(|e| e.into_inner()) = msg.0;
        tracing::warn!(forced = ?msg.0.map(Status::as_str), "an admin overrode the health status");
        self.guarded(ctx, |act, _| act.tick());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluator(dwell_ms: u64) -> Evaluator {
        Evaluator::new(&HealthConfig { degraded_ratio: 0.8, exit_ratio: 0.9, dwell_ms, ..HealthConfig::default() })
    }

    #[test]
    fn levels_enter_at_their_threshold_and_leave_below_the_exit_level() {
        let mut e = evaluator(0);
        let t = Instant::now();
        let at = |e: &mut Evaluator, v: f64| e.sample(t, &[("rss_mb", v, 100.0)]).0[0].status;
        assert_eq!(at(&mut e, 79.0), Status::Healthy);
        assert_eq!(at(&mut e, 80.0), Status::Degraded);
        assert_eq!(at(&mut e, 100.0), Status::Overloaded);
        assert_eq!(at(&mut e, 95.0), Status::Overloaded, "above 90% of the overload threshold: stays");
        assert_eq!(at(&mut e, 89.0), Status::Degraded);
        assert_eq!(at(&mut e, 73.0), Status::Degraded, "above 90% of the degraded threshold (72): stays");
        assert_eq!(at(&mut e, 71.0), Status::Healthy);
        assert_eq!(at(&mut e, 1e9), Status::Overloaded);
    }

    #[test]
    fn a_vital_with_limit_zero_is_off() {
        let mut e = evaluator(0);
        let (vitals, change) = e.sample(Instant::now(), &[("rss_mb", 1e12, 0.0)]);
        assert_eq!((vitals[0].status, change), (Status::Healthy, None));
    }

    #[test]
    fn worse_is_immediate_better_waits_for_the_dwell_time() {
        let mut e = evaluator(3000);
        let t0 = Instant::now();
        let s = |v: f64| [("lag", v, 100.0)];
        assert_eq!(e.sample(t0, &s(10.0)).1, None);
        assert_eq!(e.sample(t0 + Duration::from_millis(100), &s(150.0)).1, Some(Status::Overloaded));
        assert_eq!(e.sample(t0 + Duration::from_millis(200), &s(0.0)).1, None, "too soon to improve");
        assert_eq!(e.status(), Status::Overloaded);
        assert_eq!(e.sample(t0 + Duration::from_millis(3099), &s(0.0)).1, None);
        assert_eq!(e.sample(t0 + Duration::from_millis(3100), &s(0.0)).1, Some(Status::Healthy));
        assert_eq!(e.sample(t0 + Duration::from_millis(3200), &s(85.0)).1, Some(Status::Degraded), "worse: at once");
        assert_eq!(e.sample(t0 + Duration::from_millis(3300), &s(0.0)).1, None, "better: after the dwell");
        assert_eq!(e.sample(t0 + Duration::from_millis(6200), &s(0.0)).1, Some(Status::Healthy));
    }

    #[test]
    fn the_worst_vital_decides() {
        let mut e = evaluator(0);
        let (vitals, change) = e.sample(Instant::now(), &[("a", 10.0, 100.0), ("b", 85.0, 100.0), ("c", 0.0, 0.0)]);
        assert_eq!(change, Some(Status::Degraded));
        assert_eq!(
            vitals.iter().map(|v| v.status).collect::<Vec<_>>(),
            [Status::Healthy, Status::Degraded, Status::Healthy]
        );
    }

    #[test]
    fn flapping_input_around_a_threshold_does_not_flap_the_status() {
        let mut e = evaluator(1000);
        let t0 = Instant::now();
        let mut changes = 0;
        for i in 0..100u64 {
            let v = if i % 2 == 0 { 101.0 } else { 99.0 };
            if e.sample(t0 + Duration::from_millis(i * 10), &[("x", v, 100.0)]).1.is_some() {
                changes += 1;
            }
        }
        assert_eq!(changes, 1, "one change to overloaded, then it holds");
    }

    #[test]
    fn a_worse_status_right_after_an_improvement_takes_effect_at_once() {
        let mut e = evaluator(1000);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let s = |v: f64| [("lag", v, 100.0)];
        assert_eq!(e.sample(at(0), &s(150.0)).1, Some(Status::Overloaded), "the first change is immediate");
        assert_eq!(e.sample(at(1000), &s(0.0)).1, Some(Status::Healthy));
        assert_eq!(e.sample(at(1100), &s(150.0)).1, Some(Status::Overloaded), "the gate closes at its limit");
        assert_eq!(e.sample(at(1200), &s(0.0)).1, None, "and reopens only a dwell later");
        assert_eq!(e.sample(at(2100), &s(0.0)).1, Some(Status::Healthy));
    }

    /// The attack of issue 21: memory climbing through the degraded level into the limit
    /// within one dwell. The gate closes at the first sample at the limit, not a dwell later
    /// (it used to wait: degraded at 19.8 MB, overloaded only at 32.4 MB of a 24 MB limit).
    #[test]
    fn the_gate_steps_up_at_its_limit_even_right_after_degrading() {
        let mut e = evaluator(3000);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let memory = |mb: f64| [("memory_mb", mb, 24.0)];
        assert_eq!(e.sample(at(0), &memory(12.0)).1, None);
        assert_eq!(e.sample(at(1000), &memory(19.8)).1, Some(Status::Degraded), "0.8 of the limit: degraded");
        assert_eq!(e.sample(at(1100), &memory(24.0)).1, Some(Status::Overloaded), "at the limit: closed at once");
        assert_eq!(e.sample(at(1200), &memory(32.4)).1, None, "and it stays closed");
        assert_eq!(e.sample(at(2000), &memory(10.0)).1, None, "the step down waits out the dwell");
        assert_eq!(e.sample(at(4100), &memory(10.0)).1, Some(Status::Healthy));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the vitals do: the status never improves within the dwell of its last
        /// change, and a vital at or over its limit shows as overloaded in the same sample.
        #[test]
        fn the_status_never_improves_within_the_dwell_and_closes_at_the_limit(
            dwell_ms in 0u64..5_000,
            steps in proptest::collection::vec((1u64..2_000, 0.0f64..150.0, 0.0f64..150.0), 1..200),
        ) {
            let mut e = evaluator(dwell_ms);
            let dwell = Duration::from_millis(dwell_ms);
            let mut now = Instant::now();
            let mut last_change: Option<Instant> = None;
            let mut status = Status::Healthy;
            for (step_ms, a, b) in steps {
                now += Duration::from_millis(step_ms);
                let (_, change) = e.sample(now, &[("a", a, 100.0), ("b", b, 100.0)]);
                if let Some(next) = change {
                    if let (Some(before), true) = (last_change, next < status) {
                        proptest::prop_assert!(now.duration_since(before) >= dwell, "improved {:?} after a change", now.duration_since(before));
                    }
                    last_change = Some(now);
                    status = next;
                }
                if a >= 100.0 || b >= 100.0 {
                    proptest::prop_assert_eq!(e.status(), Status::Overloaded);
                }
            }
        }
    }

    #[actix_rt::test]
    async fn the_monitor_samples_real_memory_and_broadcasts_changes() {
        struct Sink(tokio::sync::mpsc::UnboundedSender<Status>);
        impl Actor for Sink {
            type Context = Context<Self>;
        }
        impl Handler<HealthChanged> for Sink {
            type Result = ();
            fn handle(&mut self, msg: HealthChanged, _: &mut Context<Self>) {
                let _ = self.0.send(msg.0);
            }
        }
        let board = Arc::new(HealthBoard::default());
        let rate = Arc::new(CreationRate::default());
        // An RSS limit of 1 MB: any real process is over it.
        let config = HealthConfig { interval_ms: 50, max_memory_mb: 1, dwell_ms: 0, ..HealthConfig::default() };
        let monitor =
            HealthMonitor::new(config, board.clone(), rate, Arc::default(), SystemTree::new(&Default::default()))
                .start();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        monitor.send(Subscribe(Sink(tx).start().recipient())).await.expect("subscribe");
        let first =
            tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("current status").expect("open");
        assert_eq!(first, Status::Healthy);
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a change").expect("open");
        assert_eq!(next, Status::Overloaded);
        let report = board.report();
        let rss = report.vitals.iter().find(|v| v.name == "rss_mb").expect("rss");
        assert!(rss.value > 1.0, "{rss:?}");
        monitor.send(ForceStatus(Some(Status::Healthy))).await.expect("force");
        assert_eq!(board.report().status, Status::Healthy);
    }
}
