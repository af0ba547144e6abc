//! partition: one instance cut off from Redis while its players stay connected to it. Two
//! `rampart` instances (`cluster.lease_ms` 2000) on one plain Redis: chaos-1 on the host,
//! chaos-2 in a network namespace of its own (netns.rs) that it reaches Redis from through
//! one veth link and its players reach it through another. Bots play on both, half the
//! games with a seat relayed from the other instance. The host's end of the Redis link is
//! set down for four leases (three in the smoke), then up again. The checks: chaos-2 pauses
//! the games it owns (their players are told `game_paused`, docs/DESIGN.md D17); chaos-1
//! takes over the ones its relayed seats press, and only once the lease could have lapsed;
//! after the heal chaos-2 gives every one of those up (its log says so) and renews the rest
//! within a second (durability back). Then chaos-1, which took games over, is killed, and
//! chaos-2 takes them back. No board forks (one owner), no move shown is lost, no game
//! vanishes, every game in play moves again after the heal and after the kill. Where the namespace cannot be made
//! (not root, no `ip`, no namespaces) the scenario is skipped with the reason.

use std::time::{Duration, Instant};

use crate::checks::{self, Outage, CLAIM_LEASE, LEASE};
use crate::netns::Netns;
use crate::procs::{Redis, Server};
use crate::report::{self, rfc3339_ms, Report};
use crate::{process_figures, stop_bots, wait_for, Ctx};

/// How long after the heal every game in play may take to move again.
const RESUME_WITHIN: Duration = Duration::from_secs(20);
/// How soon after the heal the cut-off instance must have renewed its leases (issue 23:
/// durability returns within 1 s of the store answering again).
const DURABLE_WITHIN: Duration = Duration::from_millis(1000);
/// The cut-off instance's log lines that say its leases were renewed after failing.
const RENEWED: [&str; 2] =
    ["game leases are renewed again", "games resumed: their ownership leases are confirmed again"];

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Report {
    let mut report = Report::new("partition");
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            report.skip(&format!("cannot make a network namespace here: {e}"));
            return report;
        }
    };
    let secs = ctx.secs(60, 20);
    let games = ctx.games(30, 10);
    let hold = LEASE * if ctx.smoke { 3 } else { 4 };
    let redis = match Redis::start_on(&ctx.dir, false, &[ns.redis_ip]) {
        Ok(r) => r,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let mut servers = Vec::new();
    let env = checks::cluster_env(ctx, 1, &redis.url(), &[]);
    match Server::start(&ctx.api, &ctx.rampart, "chaos-1", &env, &ctx.dir, None).await {
        Ok(s) => servers.push(s),
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    }
    let env = checks::cluster_env(ctx, 2, &redis.url_on(ns.redis_ip), &[]);
    match Server::start_in_netns(&ctx.api, &ctx.rampart, "chaos-2", &env, &ctx.dir, &ns.name, ns.instance_ip).await {
        Ok(s) => servers.push(s),
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    }
    eprintln!("chaos: partition: chaos-2 runs in the network namespace {} at {}", ns.name, servers[1].url);
    let (world, rss_start, start) = checks::start_play(ctx, &servers, games, &mut report).await;

    // The games chaos-2 owns as the link goes down.
    let owned: Vec<String> = world
        .handles
        .borrow()
        .iter()
        .filter_map(|h| h.game.borrow().clone())
        .filter(|id| redis.lease_holder(id).as_deref() == Some("chaos-2"))
        .collect();
    let owned_bots: Vec<(usize, String)> = world
        .handles
        .borrow()
        .iter()
        .filter_map(|h| h.game.borrow().clone().filter(|g| owned.contains(g)).map(|g| (h.bot, g)))
        .collect();
    let cut = Outage { start: Instant::now(), back: Instant::now() + hold, bots: checks::in_play(&world) };
    let cut_ms = checks::wall_ms();
    checks::touch_all(&world, cut.start + hold + RESUME_WITHIN + Duration::from_secs(30));
    if let Err(e) = ns.cut() {
        report.broke("cut", &e);
        return report;
    }
    eprintln!(
        "chaos: partition: chaos-2 cut off from Redis for {hold:?} ({} games in play, {} owned by chaos-2)",
        cut.bots.len(),
        owned.len()
    );
    // A lease into the cut: the games chaos-2 owns that are still in play with a seat on
    // it; their players must have been told the game paused.
    crate::until(cut.start + LEASE).await;
    let pressed: Vec<String> = world
        .handles
        .borrow()
        .iter()
        .filter(|h| h.playing.get() && h.seat_urls.borrow().contains(&1))
        .filter_map(|h| h.game.borrow().clone())
        .filter(|id| owned.contains(id))
        .collect();
    crate::until(cut.back).await;
    if let Err(e) = ns.heal() {
        report.broke("heal", &e);
    }
    let healed = Instant::now();
    let healed_ms = checks::wall_ms();
    eprintln!("chaos: partition: the link to Redis is up again");

    let deadline = healed + RESUME_WITHIN;
    wait_for(deadline.saturating_duration_since(Instant::now()), || checks::all_resumed(&world, &cut)).await;

    // An instance killed in the aftermath: chaos-1, which took games over during the cut;
    // chaos-2 takes every one of them back once their leases lapse.
    let kill = Outage { start: Instant::now(), back: Instant::now(), bots: checks::in_play(&world) };
    checks::touch_all(&world, kill.start + LEASE + RESUME_WITHIN + Duration::from_secs(10));
    world.up.borrow_mut()[0] = false;
    servers[0].kill9();
    eprintln!("chaos: partition: chaos-1 killed (SIGKILL) after the heal");
    let deadline = kill.start + LEASE + RESUME_WITHIN;
    wait_for(deadline.saturating_duration_since(Instant::now()), || checks::all_resumed(&world, &kill)).await;
    let settled = Instant::now();
    for h in world.handles.borrow().iter() {
        h.touched_until.set(Some(settled));
    }
    let end = (start + Duration::from_secs(secs)).max(settled + Duration::from_secs(if ctx.smoke { 3 } else { 8 }));
    crate::until(end).await;
    stop_bots(&world, &mut report).await;
    let stopped = Instant::now();
    checks::resume_figures(&mut report, &world, &cut, "cut", kill.start, "the kill");
    checks::resume_figures(&mut report, &world, &kill, "kill", stopped, "the end");

    // Paused, and told.
    let told: Vec<&String> = {
        let t = world.tally.borrow();
        pressed.iter().filter(|g| t.paused_games.get(*g).is_some_and(|at| *at >= cut.start && *at <= healed)).collect()
    };
    report.field("owned_by_cut_off", owned.len());
    report.field("paused_told", format!("{}/{}", told.len(), pressed.len()));
    let untold: Vec<String> = {
        let t = world.tally.borrow();
        pressed
            .iter()
            .filter(|g| !told.contains(g))
            .map(|g| match t.paused_games.get(g) {
                Some(at) => {
                    format!("{g} (told {} ms after the cut)", at.saturating_duration_since(cut.start).as_millis())
                }
                None => g.clone(),
            })
            .collect()
    };
    report.check(
        untold.is_empty(),
        "paused_told",
        &format!("the players of {untold:?} (owned by the cut-off chaos-2) were not told game_paused during the cut"),
    );
    checks::play_after(&mut report, &world, settled, "moves_after_heal", "play_after_heal", "the heal");

    // Owners: chaos-1 takes over only after the lease, chaos-2 gives each of those up.
    let owners = checks::owners(&mut report, &servers, "partition");
    let taken: Vec<&checks::Logged> =
        owners.took[0].iter().filter(|l| l.at_ms.is_some_and(|t| t >= cut_ms && t <= healed_ms)).collect();
    let earliest = taken.iter().filter_map(|l| l.at_ms).min().map(|t| t - cut_ms);
    report.field("cut_takeovers", taken.len());
    report.field("first_takeover_after_ms", earliest.map_or("-".to_owned(), |t| t.to_string()));
    let floor = (LEASE - LEASE / 3).as_millis() as i64;
    report.check(
        earliest.is_none_or(|t| t >= floor),
        "takeover_after_lease",
        &format!("chaos-1 took a game over {earliest:?} ms after the cut, before the lease could lapse ({floor} ms)"),
    );
    let kept: Vec<&str> =
        taken.iter().filter(|l| !owners.gave_up_since(1, &l.game, cut_ms)).map(|l| l.game.as_str()).collect();
    report.field("given_up_after_heal", format!("{}/{}", taken.len() - kept.len(), taken.len()));
    report.check(
        kept.is_empty(),
        "cut_off_gave_up",
        &format!("chaos-2's log does not say it gave up {kept:?}, taken over by chaos-1 during the cut"),
    );

    // Durability back: chaos-2's first renewal after the heal.
    let log = std::fs::read_to_string(&servers[1].log).unwrap_or_default();
    let renewed = log
        .lines()
        .filter(|l| RENEWED.iter().any(|p| l.contains(p)))
        .filter_map(|l| l.split_whitespace().next().and_then(rfc3339_ms))
        .find(|&t| t >= healed_ms)
        .map(|t| t - healed_ms);
    report.field("renewed_after_heal_ms", renewed.map_or("-".to_owned(), |t| t.to_string()));
    let within = DURABLE_WITHIN.as_millis() as i64;
    // And as the players see it: the first move shown after the heal in a game chaos-2
    // owned at the cut and kept (shown only once durable, docs/DESIGN.md D18).
    let kept_bots: Vec<usize> =
        owned_bots.iter().filter(|(_, g)| !taken.iter().any(|l| l.game == *g)).map(|(b, _)| *b).collect();
    let first_move = world
        .tally
        .borrow()
        .samples
        .iter()
        .filter(|s| kept_bots.contains(&s.bot))
        .map(|s| s.at + Duration::from_secs_f64(s.mover_ms.max(s.opponent_ms.unwrap_or(0.0)) / 1000.0))
        .filter(|&shown| shown >= healed)
        .min()
        .map(|shown| (shown - healed).as_millis());
    report.field("first_move_after_heal_ms", first_move.map_or("-".to_owned(), |t| t.to_string()));

    // Durability back as the players see it: a move shown in a game chaos-2 kept (it is
    // shown only once stored, under a confirmed lease); the log's renewal line when no such
    // move was played. (Measured: the log line 0.24 or 0.86 s after the heal, run to run,
    // the first move 0.20-0.25 s; why the line comes late in some runs is not known.)
    let durable = first_move.map(|t| t as i64).or(renewed);
    report.check(
        durable.is_some_and(|t| t <= within),
        "durable_after_heal",
        &format!(
            "durability came back {durable:?} ms after the heal (at most {within} ms): first move shown {first_move:?} ms, \
             leases renewed {renewed:?} ms"
        ),
    );
    checks::loss_figures(&mut report, &world);
    let tolerance = CLAIM_LEASE + LEASE + hold + Duration::from_secs(2);
    let waitlist = report::final_waitlist(&world, tolerance).await;
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &[(cut.start, settled)]);
    report.field("alive_chaos-1", "killed");
    process_figures(&mut report, &ctx.api, &mut servers[1], rss_start[1]).await;
    report
}
