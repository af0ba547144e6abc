//! redis-failover: Redis as operators run it (procs_ha.rs: a primary and a replica with
//! `appendonly yes` and `min-replicas-to-write 1`, three Sentinels, HAProxy routing to
//! whichever node answers `role:master`) under two `rampart` instances
//! (`cluster.lease_ms` 2000, `redis.min_replicas_acked` 1) that reach it through HAProxy.
//! Bots play on both, half the games with a seat relayed from the other instance. The
//! primary is killed with SIGKILL during play; Sentinel promotes the replica and HAProxy
//! follows; the killed node is started again as a replica of the new primary (what a
//! supervisor that asks the Sentinels first does), and only then does the new primary take
//! writes again (`min-replicas-to-write 1`). In a full run a planned switchover
//! (`SENTINEL FAILOVER`) follows. Every game pauses while its lease cannot be confirmed
//! (docs/DESIGN.md D17), so each fault, from its start to two leases after Redis takes
//! writes again, counts as a fault touching every game. The checks: every board a player
//! was shown is in the game's final board (the bots), one owner per game (a fork is a board
//! the bots were not shown; the instances' logs are read for takeovers and fenced writes),
//! every game in play resumes after each fault, no error outside the faults. Figures: when
//! Sentinel promoted, HAProxy followed and writes were taken again; how long games stalled;
//! moves refused; takeovers.

use std::time::{Duration, Instant};

use crate::bots::World;
use crate::checks::{self, Outage, CLAIM_LEASE, LEASE};
use crate::procs_ha::{ask, info_field, HaProxy, RedisHa, MASTER_NAME};
use crate::report::{self, Report};
use crate::{process_figures, stop_bots, wait_for, Ctx};

/// How long a failover may take before the scenario calls it broken.
const FAILOVER_WITHIN: Duration = Duration::from_secs(60);
/// How long after Redis takes writes again every game in play at a fault may take to move
/// again (the next fault, or the end, waits for it up to then).
const RESUME_WITHIN: Duration = Duration::from_secs(20);

/// The two faults.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL of the primary.
    Kill,
    /// `SENTINEL FAILOVER`: a planned switchover.
    Switchover,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Switchover => "switchover",
        }
    }
}

/// When things happened in one fault, from its start.
struct Timeline {
    start: Instant,
    promoted: Option<Duration>,
    routed: Option<Duration>,
    synced: Option<Duration>,
    writable: Option<Duration>,
    /// The fault's window ends here (two leases after writes were taken again).
    window_end: Instant,
    /// Bots whose game was in play when it began.
    bots: Vec<usize>,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".to_owned(), |d| d.as_millis().to_string())
}

impl Timeline {
    /// The fault as the resume check sees it: over once Redis took writes again.
    fn outage(&self) -> Outage {
        Outage {
            start: self.start,
            back: self.start + self.writable.unwrap_or(FAILOVER_WITHIN),
            bots: self.bots.clone(),
        }
    }
}

/// Breaks Redis (`fault`) and follows the failover until the new primary takes writes
/// through HAProxy and the old one is its replica in sync.
async fn fault(ha: &mut RedisHa, world: &World, fault: Fault, report: &mut Report) -> Timeline {
    let name = fault.name();
    let old = ha.sentinels_primary().and_then(|p| ha.nodes.iter().position(|n| n.port == p)).unwrap_or(0);
    let new = 1 - old;
    let (new_port, new_name) = (ha.nodes[new].port, ha.nodes[new].name.clone());
    let bots = checks::in_play(world);
    let start = Instant::now();
    checks::touch_all(world, start + FAILOVER_WITHIN + Duration::from_secs(30));
    match fault {
        Fault::Kill => ha.nodes[old].kill9(),
        Fault::Switchover => {
            let reply = ask(ha.sentinels[0].port, &["SENTINEL", "FAILOVER", MASTER_NAME]);
            if reply.as_deref() != Ok("OK") {
                report.broke("switchover", &format!("SENTINEL FAILOVER answered {reply:?}"));
            }
        }
    }
    eprintln!("chaos: redis-failover: {name} of the primary {} with {} games in play", ha.nodes[old].name, bots.len());
    let mut t = Timeline { start, promoted: None, routed: None, synced: None, writable: None, window_end: start, bots };
    let mut restarted = fault == Fault::Switchover;
    while start.elapsed() < FAILOVER_WITHIN {
        let now = start.elapsed();
        if t.promoted.is_none() && ha.sentinels_primary() == Some(new_port) {
            t.promoted = Some(now);
            eprintln!("chaos: redis-failover: Sentinel promoted {new_name} at +{} ms", now.as_millis());
        }
        if !restarted && t.promoted.is_some_and(|p| now >= p + Duration::from_secs(1)) {
            restarted = true;
            if let Err(e) = ha.nodes[old].restart_as_replica(new_port) {
                report.broke("restart", &e);
            }
            eprintln!(
                "chaos: redis-failover: {} started again as a replica at +{} ms",
                ha.nodes[old].name,
                now.as_millis()
            );
        }
        if t.routed.is_none() && ha.haproxy.up() == [new_name.as_str()] {
            t.routed = Some(now);
        }
        if restarted && t.synced.is_none() {
            let info = ha.nodes[old].replication().unwrap_or_default();
            let replica = info_field(&info, "role").as_deref() == Some("slave")
                && info_field(&info, "master_port").and_then(|p| p.parse().ok()) == Some(new_port)
                && info_field(&info, "master_link_status").as_deref() == Some("up");
            if replica {
                t.synced = Some(now);
            }
        }
        if t.writable.is_none() && t.promoted.is_some() && ha.writable() {
            t.writable = Some(now);
        }
        if t.promoted.is_some() && t.routed.is_some() && t.synced.is_some() && t.writable.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "chaos: redis-failover: {name}: promoted +{} ms, HAProxy followed +{} ms, old primary a replica in sync +{} ms, \
         writes taken +{} ms",
        ms(t.promoted),
        ms(t.routed),
        ms(t.synced),
        ms(t.writable)
    );
    let writable = match t.writable {
        Some(w) => start + w,
        None => {
            report.broke(
                &format!("{name}_failover"),
                &format!("writes were not taken through HAProxy within {FAILOVER_WITHIN:?} of the {name}"),
            );
            Instant::now()
        }
    };
    t.window_end = writable + 2 * LEASE + Duration::from_secs(1);
    for h in world.handles.borrow().iter() {
        h.touched_until.set(Some(t.window_end));
    }
    t
}

/// Files a fault's figures (moves up to `horizon`: the next fault, or the end) and checks
/// every game in play resumed.
fn fault_figures(report: &mut Report, world: &World, t: &Timeline, name: &str, horizon: Instant, until: &str) {
    report.field(
        &format!("{name}_ms"),
        format!(
            "promoted:{},haproxy:{},writable:{},replica_synced:{}",
            ms(t.promoted),
            ms(t.routed),
            ms(t.writable),
            ms(t.synced)
        ),
    );
    checks::resume_figures(report, world, &t.outage(), name, horizon, until);
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Report {
    let mut report = Report::new("redis-failover");
    if !HaProxy::installed() {
        report.skip("haproxy is not installed (apt-get install haproxy)");
        return report;
    }
    let secs = ctx.secs(75, 20);
    let games = ctx.games(30, 10);
    let mut ha = match RedisHa::start(&ctx.dir) {
        Ok(ha) => ha,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let acked = [("RAMPART__REDIS__MIN_REPLICAS_ACKED", "1".to_owned())];
    let Some(mut servers) = checks::two_instances(ctx, &ha.haproxy.url(), &acked, &mut report).await else {
        return report;
    };
    // Two games in four have their yellow seat on the other instance (relayed).
    let (world, rss_start, start) = checks::start_play(ctx, &servers, games, &mut report).await;
    let mut timelines = vec![(fault(&mut ha, &world, Fault::Kill, &mut report).await, Fault::Kill)];
    if !ctx.smoke {
        // The switchover once every game played again (or RESUME_WITHIN passed), and not
        // inside the kill's window.
        let first = &timelines[0].0;
        let writable = first.start + first.writable.unwrap_or_default();
        let deadline = writable.max(Instant::now()) + RESUME_WITHIN;
        wait_for(deadline.saturating_duration_since(Instant::now()), || checks::all_resumed(&world, &first.outage()))
            .await;
        crate::until(first.window_end.max(Instant::now()) + Duration::from_secs(3)).await;
        timelines.push((fault(&mut ha, &world, Fault::Switchover, &mut report).await, Fault::Switchover));
    }
    let last_end = timelines.last().map_or(start, |(t, _)| t.window_end);
    let end = (start + Duration::from_secs(secs)).max(last_end + Duration::from_secs(if ctx.smoke { 6 } else { 10 }));
    crate::until(end).await;
    let (last, _) = &timelines[timelines.len() - 1];
    let deadline = last.start + last.writable.unwrap_or_default() + RESUME_WITHIN;
    wait_for(deadline.saturating_duration_since(Instant::now()), || checks::all_resumed(&world, &last.outage())).await;
    let windows: Vec<(Instant, Instant)> = timelines.iter().map(|(t, _)| (t.start, t.window_end)).collect();
    stop_bots(&world, &mut report).await;
    let stopped = Instant::now();
    for (i, (t, f)) in timelines.iter().enumerate() {
        let (horizon, until) = match timelines.get(i + 1) {
            Some((next, _)) => (next.start, "the next fault"),
            None => (stopped, "the end"),
        };
        fault_figures(&mut report, &world, t, f.name(), horizon, until);
    }
    {
        let tally = world.tally.borrow();
        let refused = tally.errors_faulted.get("GAME_RESTARTING").copied().unwrap_or(0)
            + tally.errors_unfaulted.get("GAME_RESTARTING").copied().unwrap_or(0);
        report.field("moves_refused", refused);
        let after = tally.samples.iter().filter(|s| s.at >= last_end).count();
        report.field("moves_after_faults", after);
        drop(tally);
        report.check(after > 0, "play_after_faults", "no move was played after the last fault's window");
    }
    checks::owners(&mut report, &servers, "redis-failover");
    checks::loss_figures(&mut report, &world);
    // Claims a paused instance held go back to the front after CLAIM_LEASE: so much may a
    // ticket trail one issued after it.
    let tolerance = CLAIM_LEASE + LEASE + Duration::from_secs(2);
    let waitlist = report::final_waitlist(&world, tolerance).await;
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &windows);
    for (i, server) in servers.iter_mut().enumerate() {
        process_figures(&mut report, &ctx.api, server, rss_start[i]).await;
    }
    report
}
