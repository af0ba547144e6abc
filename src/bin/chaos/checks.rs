//! The checks the cluster scenarios share (redis-failover, owner-paused, partition): a
//! fault that touches every game for a window, which games moved again once the fault was
//! over (and how long they stalled), and what the instances' logs say about owners —
//! takeovers, games given up, writes fenced — with when each happened.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::rc::Rc;

use crate::bots::{Spec, World};
use crate::procs::Server;
use crate::report::{rfc3339_ms, Report};
use crate::{spawn_bots, Ctx};

/// The ownership lease the cluster scenarios run with.
pub const LEASE: Duration = Duration::from_millis(2000);
/// How long an instance holds a waitlist entry it claimed before it goes back.
pub const CLAIM_LEASE: Duration = Duration::from_millis(3000);

/// The environment of cluster instance `chaos-{i}` on the Redis at `url`: [`LEASE`],
/// [`CLAIM_LEASE`], and store breakers that probe a Redis that does not answer on a short
/// schedule (as redis-dies does), plus `extra`.
pub fn cluster_env(ctx: &Ctx, i: usize, url: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("RAMPART__STORAGE__BACKEND", "redis".to_owned()),
        ("RAMPART_REDIS_URL", url.to_owned()),
        ("RAMPART_SESSION_KEY", "chaos-session-key".to_owned()),
        ("RAMPART__CLUSTER__INSTANCE_ID", format!("chaos-{i}")),
        ("RAMPART__CLUSTER__LEASE_MS", LEASE.as_millis().to_string()),
        ("RAMPART__ADMISSION__CLAIM_LEASE_MS", CLAIM_LEASE.as_millis().to_string()),
        ("RAMPART__CIRCUIT_BREAKERS__DATABASE__TIMEOUT", "0.2".to_owned()),
        ("RAMPART__CIRCUIT_BREAKERS__DATABASE__TIMEOUT_MAX", "0.5".to_owned()),
        ("RAMPART__CIRCUIT_BREAKERS__MESSAGING__TIMEOUT", "0.2".to_owned()),
        ("RAMPART__CIRCUIT_BREAKERS__MESSAGING__TIMEOUT_MAX", "0.5".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    ctx.env(&env)
}

/// `games` bots playing two-human games at one move per 0.5 s on two instances, red
/// created on either in turn; two games in four have their yellow seat on the other
/// instance (relayed).
pub async fn spawn_pairs(world: &Rc<World>, ctx: &Ctx, games: usize) {
    spawn_bots(world, ctx, games, |i| Spec {
        vs_ai: false,
        red_url: i % 2,
        yellow_url: (i + i / 2) % 2,
        pace: Duration::from_millis(500),
        chat_every: 0,
        idle: false,
        max_games: 0,
    })
    .await;
}

/// Two cluster instances (`chaos-1`, `chaos-2`) on the Redis at `url`, with `extra` in
/// their environment; None (and `start` broken) when one does not start.
pub async fn two_instances(ctx: &Ctx, url: &str, extra: &[(&str, String)], report: &mut Report) -> Option<Vec<Server>> {
    let mut servers = Vec::new();
    for i in 1..=2 {
        let env = cluster_env(ctx, i, url, extra);
        match Server::start(&ctx.api, &ctx.rampart, &format!("chaos-{i}"), &env, &ctx.dir, None).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                report.broke("start", &e);
                return None;
            }
        }
    }
    Some(servers)
}

/// Play as the cluster scenarios start it: the bots of `games` two-human games across
/// `servers` ([`spawn_pairs`]), all in play (else `setup` breaks), then a warm-up. Answers
/// the world, each server's RSS at the start, and when play started.
pub async fn start_play(
    ctx: &Ctx,
    servers: &[Server],
    games: usize,
    report: &mut Report,
) -> (Rc<World>, Vec<Option<u64>>, Instant) {
    let world = World::new(ctx.api.clone(), servers.iter().map(|s| s.url.clone()).collect());
    spawn_pairs(&world, ctx, games).await;
    if !crate::wait_for(Duration::from_secs(30), || world.playing() >= games).await {
        report.broke("setup", &format!("only {} of {games} games in play", world.playing()));
    }
    let rss_start: Vec<Option<u64>> = servers.iter().map(Server::rss_kib).collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 3 } else { 8 })).await;
    (world, rss_start, start)
}

/// The moves played once the faults settled (`field`), and the check (`check`) that some
/// were (else "no move was played after `when`"); with the `game_paused` frames the players
/// got.
pub fn play_after(report: &mut Report, world: &World, settled: Instant, field: &str, check: &str, when: &str) {
    let t = world.tally.borrow();
    let after = t.samples.iter().filter(|s| s.at >= settled).count();
    report.field("paused_frames", t.paused_frames);
    report.field(field, after);
    drop(t);
    report.check(after > 0, check, &format!("no move was played after {when}"));
}

/// The targets (issue 23): `moves_lost` (shown, then gone), `forks` (boards that
/// diverged: two owners), `games_lost` (vanished under their players) and
/// `seats_given_up` (a seat whose rejoin was refused for good), each checked to be 0. The
/// bots file the details.
pub fn loss_figures(report: &mut Report, world: &World) {
    let t = world.tally.borrow();
    let (lost, forks, games) = (t.moves_lost, t.forks, t.games_lost.len());
    let abandoned = t.errors_faulted.get("REJOIN_FAILED").copied().unwrap_or(0)
        + t.errors_unfaulted.get("REJOIN_FAILED").copied().unwrap_or(0);
    drop(t);
    report.field("moves_lost", lost);
    report.field("forks", forks);
    report.field("games_lost", games);
    // A seat that could not rejoin ends the game for its bot: its players lost it, even
    // if the store still holds it (a close that told them to give up, 4401 or 4404).
    report.field("seats_given_up", abandoned);
    report.check(abandoned == 0, "seats_rejoined", &format!("{abandoned} seats could not rejoin their game"));
    report.check(lost == 0, "moves_lost", &format!("{lost} moves a player was shown were lost"));
    report.check(forks == 0, "one_owner", &format!("{forks} boards forked (two owners)"));
    report.check(games == 0, "games_lost", &format!("{games} games vanished under their players"));
}

/// The log line of a takeover (src/hosting/ownership.rs).
pub const TOOK_OVER: &str = "taking over a game whose owner's lease lapsed";
/// The log line of a game given up at a renewal that found another owner.
pub const GAVE_UP: &str = "lost the game's lease to another instance";
/// The log line of a snapshot write fenced because another instance owns the game.
pub const FENCED: &str = "snapshot write was refused";

/// One fault as the resume check sees it.
pub struct Outage {
    /// When it began.
    pub start: Instant,
    /// When what it broke answered again (Redis took writes, the process woke, the link
    /// came back): a game has resumed once it moved after this.
    pub back: Instant,
    /// The bots whose game was in play when it began.
    pub bots: Vec<usize>,
}

/// The bots whose game is in play now.
pub fn in_play(world: &World) -> Vec<usize> {
    world.handles.borrow().iter().filter(|h| h.playing.get()).map(|h| h.bot).collect()
}

/// Marks every game as touched by a fault until `until` (never shortening a window).
pub fn touch_all(world: &World, until: Instant) {
    for h in world.handles.borrow().iter() {
        h.touched_until.set(Some(h.touched_until.get().map_or(until, |t| t.max(until))));
    }
}

/// Each bot's longest stall around a fault (the gap between two moves shown to its
/// players, from the last before the fault, up to `horizon`) and when it ended, from the
/// fault's start; None for a bot that did not move again once the fault was over.
pub fn stalls(world: &World, o: &Outage, horizon: Instant) -> Vec<Option<(Duration, Duration)>> {
    stall_details(world, o, horizon).into_iter().map(|s| s.map(|s| (s.gap, s.ended_after))).collect()
}

/// One bot's longest stall around a fault.
pub struct Stall {
    /// The gap between the two moves shown.
    pub gap: Duration,
    /// When it ended, from the fault's start.
    pub ended_after: Duration,
    /// When it began.
    pub began: Instant,
    /// The game of the move that ended it (a stall may span a game's end and the next
    /// game's first move).
    pub game: String,
}

/// [`stalls`] with when each began and the game that moved again.
pub fn stall_details(world: &World, o: &Outage, horizon: Instant) -> Vec<Option<Stall>> {
    let tally = world.tally.borrow();
    o.bots
        .iter()
        .map(|&bot| {
            let mut shown: Vec<(Instant, &str)> = tally
                .samples
                .iter()
                .filter(|s| s.bot == bot)
                .map(|s| {
                    let at = s.at + Duration::from_secs_f64(s.mover_ms.max(s.opponent_ms.unwrap_or(0.0)) / 1000.0);
                    (at, s.game.as_str())
                })
                .collect();
            shown.sort();
            let before = shown.iter().rev().find(|c| c.0 <= o.start).copied().unwrap_or((o.start, ""));
            let mut points = vec![before];
            points.extend(shown.iter().filter(|c| c.0 > o.start && c.0 <= horizon));
            if !points.iter().any(|c| c.0 >= o.back) {
                return None;
            }
            points
                .windows(2)
                .map(|w| Stall {
                    gap: w[1].0 - w[0].0,
                    ended_after: w[1].0.saturating_duration_since(o.start),
                    began: w[0].0,
                    game: w[1].1.to_owned(),
                })
                .max_by_key(|s| s.gap)
        })
        .collect()
}

/// Whether every bot in play at the fault has moved since it was over.
pub fn all_resumed(world: &World, o: &Outage) -> bool {
    stalls(world, o, Instant::now()).iter().all(Option::is_some)
}

/// Files `{name}_resumed`, `{name}_stall_ms` and `{name}_back_after_ms` (moves up to
/// `horizon`: the next fault, or the end) and checks every game in play resumed.
pub fn resume_figures(report: &mut Report, world: &World, o: &Outage, name: &str, horizon: Instant, until: &str) {
    let s = stalls(world, o, horizon);
    let resumed: Vec<(Duration, Duration)> = s.iter().flatten().copied().collect();
    let mut stall: Vec<u128> = resumed.iter().map(|(g, _)| g.as_millis()).collect();
    let mut back: Vec<u128> = resumed.iter().map(|(_, e)| e.as_millis()).collect();
    stall.sort_unstable();
    back.sort_unstable();
    let q = |v: &[u128], f: f64| {
        v.get(((v.len().max(1) - 1) as f64 * f).round() as usize).map_or("-".to_owned(), u128::to_string)
    };
    report.field(&format!("{name}_resumed"), format!("{}/{}", resumed.len(), o.bots.len()));
    report.field(&format!("{name}_stall_ms"), format!("p50:{},max:{}", q(&stall, 0.5), q(&stall, 1.0)));
    report.field(&format!("{name}_back_after_ms"), format!("p50:{},max:{}", q(&back, 0.5), q(&back, 1.0)));
    if let Some(w) = stall_details(world, o, horizon).into_iter().flatten().max_by_key(|s| s.gap) {
        // Where to look in the instances' logs for the longest stall.
        let began_ms = wall_ms() - w.began.elapsed().as_millis() as i64;
        report.field(
            &format!("{name}_longest_stall"),
            format!("game:{},gap_ms:{},began_wall_ms:{began_ms}", w.game, w.gap.as_millis()),
        );
    }
    let stuck: Vec<usize> = o.bots.iter().zip(&s).filter(|(_, s)| s.is_none()).map(|(b, _)| *b).collect();
    report.check(
        stuck.is_empty(),
        &format!("{name}_resumed"),
        &format!("bots {stuck:?} did not move again between the fault's end and {until}"),
    );
}

/// Now, in ms since the epoch (to compare with the instances' log timestamps).
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One log line of interest: its game and when it was written (ms since the epoch).
#[derive(Clone, Debug)]
pub struct Logged {
    /// `game_id=`.
    pub game: String,
    /// The line's timestamp.
    pub at_ms: Option<i64>,
}

/// The log lines of `log` that contain `phrase`: their game ids and timestamps.
pub fn logged(log: &str, phrase: &str) -> Vec<Logged> {
    log.lines()
        .filter(|l| l.contains(phrase))
        .filter_map(|l| {
            let game = l.split("game_id=").nth(1)?.split([' ', ',', '}']).next()?.trim_matches('"').to_owned();
            Some(Logged { game, at_ms: l.split_whitespace().next().and_then(rfc3339_ms) })
        })
        .collect()
}

/// What each instance's log says about owners, in the servers' order.
pub struct Owners {
    /// Takeovers.
    pub took: Vec<Vec<Logged>>,
    /// Games given up at a renewal that found another owner.
    pub gave_up: Vec<Vec<Logged>>,
    /// Snapshot writes fenced.
    pub fenced: Vec<Vec<Logged>>,
}

impl Owners {
    /// Whether instance `i` gave `game` up (at a renewal, or on a fenced write) at or after
    /// `since_ms`.
    pub fn gave_up_since(&self, i: usize, game: &str, since_ms: i64) -> bool {
        self.gave_up[i].iter().chain(&self.fenced[i]).any(|l| l.game == game && l.at_ms.is_some_and(|t| t >= since_ms))
    }
}

/// Reads the instances' logs (two of them): takeovers, games given up on finding another
/// owner's lease, and writes refused because the other instance owned the game (a game
/// taken over by one while the other still wrote it). Files the counts; `scenario` names
/// the detail lines.
pub fn owners(report: &mut Report, servers: &[Server], scenario: &str) -> Owners {
    let logs: Vec<String> = servers.iter().map(|s| std::fs::read_to_string(&s.log).unwrap_or_default()).collect();
    let o = Owners {
        took: logs.iter().map(|l| logged(l, TOOK_OVER)).collect(),
        gave_up: logs.iter().map(|l| logged(l, GAVE_UP)).collect(),
        fenced: logs.iter().map(|l| logged(l, FENCED)).collect(),
    };
    let count = |v: &[Vec<Logged>]| {
        servers.iter().zip(v).map(|(s, g)| format!("{}:{}", s.name, g.len())).collect::<Vec<_>>().join(",")
    };
    report.field("log_takeovers", count(&o.took));
    report.field("log_fenced_writes", count(&o.fenced));
    report.field("log_gave_up", count(&o.gave_up));
    for (i, s) in servers.iter().enumerate() {
        let other = &o.fenced[(i + 1) % servers.len()];
        let games: Vec<&String> = o.took[i].iter().map(|l| &l.game).collect();
        let both: Vec<&String> = games.iter().copied().filter(|g| other.iter().any(|f| f.game == **g)).collect();
        if !games.is_empty() {
            eprintln!("chaos: {scenario}: {} took over {games:?}", s.name);
        }
        if !both.is_empty() {
            eprintln!(
                "chaos: {scenario}: {} took over {both:?} while {} still wrote them (its writes were refused)",
                s.name,
                servers[(i + 1) % servers.len()].name
            );
        }
    }
    o
}
