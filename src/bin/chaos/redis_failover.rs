//! redis-failover and cluster-failover: Redis as operators run it (procs_ha.rs) under two
//! `rampart` instances (`cluster.lease_ms` 2000, `redis.min_replicas_acked` 1). With
//! `redis-failover`, a primary and a replica (`appendonly yes`, `min-replicas-to-write 1`),
//! three Sentinels and HAProxy routing to whichever node answers `role:master`, the
//! instances reaching Redis through HAProxy. With `cluster-failover`, a Redis Cluster of
//! three primaries and three replicas with the same settings, the instances on
//! `redis.cluster_nodes`; the faults hit one shard. Bots play on both instances, half the
//! games with a seat relayed from the other instance. The primary is killed with SIGKILL
//! during play; Sentinel (or the cluster) promotes the replica and HAProxy follows (or every
//! node agrees); the killed node is started again as a replica of the new primary (what a
//! supervisor that asks the Sentinels first does; a cluster node rejoins as the new
//! primary's replica by itself), and only then does the new primary take writes again
//! (`min-replicas-to-write 1`). The instance chaos-2 is killed with SIGKILL at the
//! promotion, while Redis takes no writes (an instance killed during the fault): chaos-1
//! takes its games over once their leases lapse and Redis takes writes again. Once every
//! game played again chaos-2 is started again. In a full run a planned switchover follows
//! (`SENTINEL FAILOVER`, or `CLUSTER FAILOVER` on the replica). Every game pauses while its
//! lease cannot be confirmed (docs/DESIGN.md D17), so each fault, from its start to two
//! leases after Redis takes writes again, counts as a fault touching every game. The checks:
//! every board a player was shown is in the game's final board (the bots), one owner per
//! game (a fork is a board the bots were not shown; the instances' logs are read for
//! takeovers and fenced writes), every game in play resumes after each fault, no error
//! outside the faults. Figures: when the replica was promoted, the route followed and writes
//! were taken again; how long games stalled; moves refused; takeovers.

use std::time::{Duration, Instant};

use crate::bots::World;
use crate::checks::{self, Outage, CLAIM_LEASE, LEASE};
use crate::procs::Server;
use crate::procs_ha::{ask, HaProxy, Node, RedisCluster, RedisHa, MASTER_NAME};
use crate::report::{self, Report};
use crate::{process_figures, stop_bots, wait_for, Ctx};

/// How long a failover may take before the scenario calls it broken.
const FAILOVER_WITHIN: Duration = Duration::from_secs(60);
/// How long after Redis takes writes again every game in play at a fault may take to move
/// again (the next fault, or the end, waits for it up to then).
const RESUME_WITHIN: Duration = Duration::from_secs(20);

/// How Redis is run.
#[derive(Clone, Copy, PartialEq)]
pub enum Topology {
    /// A primary, a replica, three Sentinels, HAProxy in front.
    Sentinel,
    /// A Redis Cluster of three primaries and three replicas.
    Cluster,
}

/// The running Redis of either topology, seen through the faulted primary and its replica.
enum Ha {
    Sentinel(RedisHa),
    Cluster(RedisCluster),
}

impl Ha {
    fn nodes(&self) -> &[Node] {
        match self {
            Ha::Sentinel(ha) => &ha.nodes,
            Ha::Cluster(c) => &c.nodes,
        }
    }

    fn nodes_mut(&mut self) -> &mut [Node] {
        match self {
            Ha::Sentinel(ha) => &mut ha.nodes,
            Ha::Cluster(c) => &mut c.nodes,
        }
    }

    /// The node the faulted primary's replica is (its partner in the pair).
    fn partner(&self, i: usize) -> usize {
        match self {
            Ha::Sentinel(_) => 1 - i,
            Ha::Cluster(c) => c.pair[usize::from(c.pair[0] == i)],
        }
    }

    /// The faulted shard's primary now (Sentinel's word; or the node that says it serves
    /// the shard).
    fn primary(&self) -> usize {
        match self {
            Ha::Sentinel(ha) => {
                ha.sentinels_primary().and_then(|p| ha.nodes.iter().position(|n| n.port == p)).unwrap_or(0)
            }
            Ha::Cluster(c) => c
                .pair
                .iter()
                .copied()
                .find(|&i| c.serving(c.nodes[i].port) == Some(c.nodes[i].port))
                .unwrap_or(c.pair[0]),
        }
    }

    /// Whether `new` has been promoted.
    fn promoted(&self, new: usize) -> bool {
        let port = self.nodes()[new].port;
        match self {
            Ha::Sentinel(ha) => ha.sentinels_primary() == Some(port),
            Ha::Cluster(c) => c.serving(port) == Some(port),
        }
    }

    /// Whether the route to Redis follows: HAProxy holds `new` alone up, or every node but
    /// `old` sees `new` serve the shard.
    fn routed(&self, old: usize, new: usize) -> bool {
        match self {
            Ha::Sentinel(ha) => ha.haproxy.up() == [ha.nodes[new].name.as_str()],
            Ha::Cluster(c) => c.agreed(c.nodes[new].port, old),
        }
    }

    /// The name of [`Ha::routed`]'s figure.
    fn route_label(&self) -> &'static str {
        match self {
            Ha::Sentinel(_) => "haproxy",
            Ha::Cluster(_) => "agreed",
        }
    }

    /// Whether a write the instances would make is taken now: through HAProxy, or to a key
    /// of the shard on `new` (`+OK`: a primary with a replica in reach).
    fn writable(&self, new: usize) -> bool {
        match self {
            Ha::Sentinel(ha) => ha.writable(),
            Ha::Cluster(c) => ask(c.nodes[new].port, &["SET", &c.probe, "1"]).is_ok_and(|r| r == "OK"),
        }
    }

    /// Starts the killed `old` again as `new`'s replica.
    fn restart_old(&mut self, old: usize, new: usize) -> Result<(), String> {
        let primary = match self {
            Ha::Sentinel(_) => Some(self.nodes()[new].port),
            Ha::Cluster(_) => None,
        };
        self.nodes_mut()[old].restart_as_replica(primary)
    }

    /// A planned switchover to `new`: `SENTINEL FAILOVER`, or `CLUSTER FAILOVER` on `new`.
    fn switchover(&self, new: usize) -> Result<(), String> {
        let reply = match self {
            Ha::Sentinel(ha) => ask(ha.sentinels[0].port, &["SENTINEL", "FAILOVER", MASTER_NAME]),
            Ha::Cluster(c) => ask(c.nodes[new].port, &["CLUSTER", "FAILOVER"]),
        };
        match reply {
            Ok(r) if r == "OK" => Ok(()),
            other => Err(format!("the switchover was answered {other:?}")),
        }
    }

    /// The instances' Redis: HAProxy's address; or the cluster's nodes (the URL is then
    /// only read for a password and a database).
    fn instance_env(&self) -> (String, Vec<(&'static str, String)>) {
        let acked = ("RAMPART__REDIS__MIN_REPLICAS_ACKED", "1".to_owned());
        match self {
            Ha::Sentinel(ha) => (ha.haproxy.url(), vec![acked]),
            Ha::Cluster(c) => {
                ("redis://127.0.0.1:1/0".to_owned(), vec![acked, ("RAMPART__REDIS__CLUSTER_NODES", c.seeds())])
            }
        }
    }
}

/// The two faults.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL of the primary (and of chaos-2 at the promotion).
    Kill,
    /// A planned switchover.
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
    /// When chaos-2 was killed (the kill only).
    instance_killed: Option<Duration>,
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

/// Breaks Redis (`fault`) and follows the failover until the new primary takes writes and
/// the old one is its replica in sync. At a kill's promotion chaos-2 (`servers[1]`) is
/// killed too.
async fn fault(ha: &mut Ha, servers: &mut [Server], world: &World, fault: Fault, report: &mut Report) -> Timeline {
    let (scenario, name) = (report.scenario(), fault.name());
    let old = ha.primary();
    let new = ha.partner(old);
    let (new_port, new_name, old_name) =
        (ha.nodes()[new].port, ha.nodes()[new].name.clone(), ha.nodes()[old].name.clone());
    let bots = checks::in_play(world);
    let start = Instant::now();
    checks::touch_all(world, start + FAILOVER_WITHIN + Duration::from_secs(30));
    match fault {
        Fault::Kill => ha.nodes_mut()[old].kill9(),
        Fault::Switchover => {
            if let Err(e) = ha.switchover(new) {
                report.broke("switchover", &e);
            }
        }
    }
    eprintln!("chaos: {scenario}: {name} of the primary {old_name} with {} games in play", bots.len());
    let mut t = Timeline {
        start,
        promoted: None,
        routed: None,
        synced: None,
        writable: None,
        instance_killed: None,
        window_end: start,
        bots,
    };
    let mut restarted = fault == Fault::Switchover;
    while start.elapsed() < FAILOVER_WITHIN {
        let now = start.elapsed();
        if t.promoted.is_none() && ha.promoted(new) {
            t.promoted = Some(now);
            eprintln!("chaos: {scenario}: {new_name} promoted at +{} ms", now.as_millis());
            if fault == Fault::Kill {
                world.up.borrow_mut()[1] = false;
                servers[1].kill9();
                t.instance_killed = Some(start.elapsed());
                eprintln!("chaos: {scenario}: chaos-2 killed (SIGKILL) at the promotion");
            }
        }
        if !restarted && t.promoted.is_some_and(|p| now >= p + Duration::from_secs(1)) {
            restarted = true;
            if let Err(e) = ha.restart_old(old, new) {
                report.broke("restart", &e);
            }
            eprintln!("chaos: {scenario}: {old_name} started again as a replica at +{} ms", now.as_millis());
        }
        if t.routed.is_none() && ha.routed(old, new) {
            t.routed = Some(now);
        }
        if restarted && t.synced.is_none() && ha.nodes()[old].replica_in_sync_of(new_port) {
            t.synced = Some(now);
        }
        if t.writable.is_none() && t.promoted.is_some() && ha.writable(new) {
            t.writable = Some(now);
        }
        if t.promoted.is_some() && t.routed.is_some() && t.synced.is_some() && t.writable.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "chaos: {scenario}: {name}: promoted +{} ms, route followed ({}) +{} ms, old primary a replica in sync +{} ms, \
         writes taken +{} ms",
        ms(t.promoted),
        ha.route_label(),
        ms(t.routed),
        ms(t.synced),
        ms(t.writable)
    );
    let writable = match t.writable {
        Some(w) => start + w,
        None => {
            report.broke(
                &format!("{name}_failover"),
                &format!("writes were not taken within {FAILOVER_WITHIN:?} of the {name}"),
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
fn fault_figures(
    report: &mut Report,
    world: &World,
    t: &Timeline,
    route: &str,
    name: &str,
    horizon: Instant,
    until: &str,
) {
    let killed = t.instance_killed.map_or(String::new(), |k| format!(",chaos-2_killed:{}", k.as_millis()));
    report.field(
        &format!("{name}_ms"),
        format!(
            "promoted:{},{route}:{},writable:{},replica_synced:{}{killed}",
            ms(t.promoted),
            ms(t.routed),
            ms(t.writable),
            ms(t.synced)
        ),
    );
    checks::resume_figures(report, world, &t.outage(), name, horizon, until);
}

/// Runs the scenario on `topology`.
pub async fn run(ctx: &Ctx, topology: Topology) -> Report {
    let scenario = match topology {
        Topology::Sentinel => "redis-failover",
        Topology::Cluster => "cluster-failover",
    };
    let mut report = Report::new(scenario);
    if topology == Topology::Sentinel && !HaProxy::installed() {
        report.skip("haproxy is not installed (apt-get install haproxy)");
        return report;
    }
    let secs = ctx.secs(75, 20);
    let games = ctx.games(30, 10);
    let started = match topology {
        Topology::Sentinel => RedisHa::start(&ctx.dir).map(Ha::Sentinel),
        Topology::Cluster => RedisCluster::start(&ctx.dir).map(Ha::Cluster),
    };
    let mut ha = match started {
        Ok(ha) => ha,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let (url, extra) = ha.instance_env();
    let Some(mut servers) = checks::two_instances(ctx, &url, &extra, &mut report).await else {
        return report;
    };
    // Two games in four have their yellow seat on the other instance (relayed).
    let (world, rss_start, start) = checks::start_play(ctx, &servers, games, &mut report).await;
    // In a Redis Cluster: the games chaos-1 owns (red seat there), in the faulted shard
    // and in the others, to see whether a shard failing over holds back only its games.
    let split = match &ha {
        Ha::Cluster(c) => {
            // The failed shard's games, the other shards', and those of the other shards with
            // both seats on chaos-1 (untouched by chaos-2's death).
            let mut split: (Vec<usize>, Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new(), Vec::new());
            for h in
                world.handles.borrow().iter().filter(|h| h.playing.get() && h.seat_urls.borrow().first() == Some(&0))
            {
                let Some(game) = h.game.borrow().clone() else { continue };
                match c.in_shard(&format!("rampart:g:{{{game}}}:snap")) {
                    Some(true) => split.0.push(h.bot),
                    Some(false) => {
                        split.1.push(h.bot);
                        if h.seat_urls.borrow().iter().all(|u| *u == 0) {
                            split.2.push(h.bot);
                        }
                    }
                    None => {}
                }
            }
            Some(split)
        }
        Ha::Sentinel(_) => None,
    };
    let kill = fault(&mut ha, &mut servers, &world, Fault::Kill, &mut report).await;
    // chaos-2 started again once every game played again (or RESUME_WITHIN passed).
    let deadline = kill.start + kill.writable.unwrap_or_default() + RESUME_WITHIN;
    wait_for(deadline.saturating_duration_since(Instant::now()), || checks::all_resumed(&world, &kill.outage())).await;
    let restarted_at = Instant::now();
    match servers[1].restart(&ctx.api).await {
        Ok(()) => {
            world.up.borrow_mut()[1] = true;
            eprintln!("chaos: {scenario}: chaos-2 started again at +{} ms", kill.start.elapsed().as_millis());
        }
        Err(e) => report.broke("instance_restart", &e),
    }
    let mut timelines = vec![(kill, Fault::Kill)];
    if !ctx.smoke {
        // The switchover once the kill's window is over.
        crate::until(timelines[0].0.window_end.max(Instant::now()) + Duration::from_secs(3)).await;
        timelines.push((fault(&mut ha, &mut servers, &world, Fault::Switchover, &mut report).await, Fault::Switchover));
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
        fault_figures(&mut report, &world, t, ha.route_label(), f.name(), horizon, until);
    }
    if let Some((shard, others, local)) = &split {
        // Stalls of chaos-1's games (no takeover in them) by shard, up to chaos-2's restart.
        let (t, _) = &timelines[0];
        for (name, bots) in [("kill_shard", shard), ("kill_other_shards", others), ("kill_other_shards_local", local)] {
            let o = Outage { start: t.start, back: t.start, bots: bots.clone() };
            let mut gaps: Vec<u128> =
                checks::stalls(&world, &o, restarted_at).iter().flatten().map(|(g, _)| g.as_millis()).collect();
            gaps.sort_unstable();
            let q = |f: f64| {
                gaps.get(((gaps.len().max(1) - 1) as f64 * f).round() as usize).map_or("-".to_owned(), u128::to_string)
            };
            report.field(
                &format!("{name}_chaos-1_stall_ms"),
                format!("games:{},p50:{},max:{}", bots.len(), q(0.5), q(1.0)),
            );
        }
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
    let owners = checks::owners(&mut report, &servers, scenario);
    // What chaos-1 took over after chaos-2 died (chaos-2's games, once their leases lapsed
    // and Redis took writes).
    let killed_ms = checks::wall_ms() - timelines[0].0.start.elapsed().as_millis() as i64
        + timelines[0].0.instance_killed.map_or(0, |k| k.as_millis() as i64);
    report.field(
        "taken_over_after_kill",
        owners.took[0].iter().filter(|l| l.at_ms.is_some_and(|t| t >= killed_ms)).count(),
    );
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
