//! owner-paused: two `rampart` instances (`cluster.lease_ms` 2000) on one plain Redis,
//! bots playing on both, half the games with a seat relayed from the other instance. One
//! instance, chaos-1, owner of half the games, is frozen with SIGSTOP for two and a half
//! leases, so chaos-2 takes over the games whose relayed seats press it (their owner's
//! lease lapsed), then thawed with SIGCONT. A woken owner must apply nothing before it
//! has confirmed its leases (docs/DESIGN.md D17): it gives up every game taken over
//! meanwhile (its log says so) and resumes the others. One lease into the aftermath the
//! taker, chaos-2, is killed with SIGKILL (an instance killed during the fault), so
//! chaos-1 takes its games back. The checks: no board forks (a move the woken owner
//! applied would be a board the other seat was never shown), no move shown is lost (the
//! moves are shown once durable, docs/DESIGN.md D18, so not even the kill may lose one),
//! no game vanishes, every game in play resumes after each fault, every takeover came
//! after the lease, and every game chaos-2 took over was given up by chaos-1.

use std::time::{Duration, Instant};

use crate::checks::{self, Outage, CLAIM_LEASE, LEASE};
use crate::procs::Redis;
use crate::report::{self, Report};
use crate::{process_figures, stop_bots, wait_for, Ctx};

/// How long the owner is frozen: two and a half leases.
const PAUSE: Duration = Duration::from_millis(5000);
/// How long after the thaw the taker is killed.
const KILL_AFTER: Duration = LEASE;
/// How long after a fault every game in play may take to move again.
const RESUME_WITHIN: Duration = Duration::from_secs(20);

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Report {
    let mut report = Report::new("owner-paused");
    let secs = ctx.secs(60, 20);
    let games = ctx.games(30, 10);
    let redis = match Redis::start(&ctx.dir, false) {
        Ok(r) => r,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let Some(mut servers) = checks::two_instances(ctx, &redis.url(), &[], &mut report).await else { return report };
    let (world, rss_start, start) = checks::start_play(ctx, &servers, games, &mut report).await;

    // The pause.
    let pause = Outage { start: Instant::now(), back: Instant::now() + PAUSE, bots: checks::in_play(&world) };
    let stopped_ms = checks::wall_ms();
    checks::touch_all(&world, pause.start + PAUSE + RESUME_WITHIN + Duration::from_secs(30));
    world.up.borrow_mut()[0] = false;
    if !servers[0].pause() {
        report.broke("pause", "SIGSTOP failed");
    }
    eprintln!("chaos: owner-paused: chaos-1 stopped (SIGSTOP) for {PAUSE:?} with {} games in play", pause.bots.len());
    crate::until(pause.back).await;
    if !servers[0].resume() {
        report.broke("pause", "SIGCONT failed");
    }
    let woke = Instant::now();
    let woke_ms = checks::wall_ms();
    world.up.borrow_mut()[0] = true;
    eprintln!("chaos: owner-paused: chaos-1 continued (SIGCONT)");

    // The kill, one lease into the aftermath.
    crate::until(woke + KILL_AFTER).await;
    let kill = Outage { start: Instant::now(), back: Instant::now(), bots: checks::in_play(&world) };
    let killed_ms = checks::wall_ms();
    checks::touch_all(&world, kill.start + LEASE + RESUME_WITHIN + Duration::from_secs(10));
    world.up.borrow_mut()[1] = false;
    servers[1].kill9();
    eprintln!("chaos: owner-paused: chaos-2 killed (SIGKILL) {KILL_AFTER:?} after the thaw");

    let end =
        (start + Duration::from_secs(secs)).max(kill.start + Duration::from_secs(if ctx.smoke { 10 } else { 20 }));
    crate::until(end).await;
    let deadline = kill.start + LEASE + RESUME_WITHIN;
    wait_for(deadline.saturating_duration_since(Instant::now()), || checks::all_resumed(&world, &kill)).await;
    // Errors count as the faults' until every game moved again after the kill (or its
    // deadline); from then on none is allowed.
    let settled = Instant::now();
    for h in world.handles.borrow().iter() {
        h.touched_until.set(Some(settled));
    }
    crate::until(settled + Duration::from_secs(if ctx.smoke { 3 } else { 8 })).await;
    stop_bots(&world, &mut report).await;
    let stopped = Instant::now();
    checks::resume_figures(&mut report, &world, &pause, "pause", kill.start, "the kill");
    checks::resume_figures(&mut report, &world, &kill, "kill", stopped, "the end");
    checks::play_after(&mut report, &world, settled, "moves_after_faults", "play_after_faults", "the faults settled");

    // Owners: what chaos-2 took over while chaos-1 was frozen or waking (before the kill),
    // each given up by chaos-1 after the thaw; no takeover before the owner's lease could
    // have lapsed in the store (its last renewal, at most a third of a lease before the
    // SIGSTOP, plus the lease).
    let owners = checks::owners(&mut report, &servers, "owner-paused");
    let taken: Vec<&checks::Logged> =
        owners.took[1].iter().filter(|l| l.at_ms.is_some_and(|t| t >= stopped_ms && t < killed_ms)).collect();
    let earliest = taken.iter().filter_map(|l| l.at_ms).min().map(|t| t - stopped_ms);
    report.field("pause_takeovers", taken.len());
    report.field("first_takeover_after_ms", earliest.map_or("-".to_owned(), |t| t.to_string()));
    let floor = (LEASE - LEASE / 3).as_millis() as i64;
    report.check(
        earliest.is_none_or(|t| t >= floor),
        "takeover_after_lease",
        &format!(
            "chaos-2 took a game over {earliest:?} ms after the SIGSTOP, before the lease could lapse ({floor} ms)"
        ),
    );
    report.check(
        !taken.is_empty(),
        "pause_takeovers",
        "chaos-2 took no game over while chaos-1 was frozen: the scenario did not test what it is for",
    );
    let kept: Vec<&str> =
        taken.iter().filter(|l| !owners.gave_up_since(0, &l.game, woke_ms - 100)).map(|l| l.game.as_str()).collect();
    report.field("given_up_after_thaw", format!("{}/{}", taken.len() - kept.len(), taken.len()));
    report.check(
        kept.is_empty(),
        "paused_owner_gave_up",
        &format!("chaos-1's log does not say it gave up {kept:?}, taken over by chaos-2 while it was frozen"),
    );
    checks::loss_figures(&mut report, &world);
    let tolerance = CLAIM_LEASE + LEASE + PAUSE + Duration::from_secs(2);
    let waitlist = report::final_waitlist(&world, tolerance).await;
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &[(pause.start, settled)]);
    report.field("alive_chaos-2", "killed");
    process_figures(&mut report, &ctx.api, &mut servers[0], rss_start[0]).await;
    report
}
