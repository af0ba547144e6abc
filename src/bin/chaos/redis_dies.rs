//! redis-dies: one `rampart` on the Redis backend with a low `admission.max_games`, more
//! bots than that (so creation goes past the cap and players queue in the waitlist, and
//! short games keep the line moving), then `redis-server` is killed with SIGKILL during
//! play and creation, stays down 20 s, and is started again on the same port from its
//! append-only file. Games pause once their ownership leases can no longer be confirmed
//! (docs/DESIGN.md D17: a move meanwhile answers GAME_RESTARTING and is not applied, so the
//! outage and five seconds after it count as a fault that touched every game) and must play
//! on once Redis is back, with no error outside that window; tickets issued before, during
//! (the fallback queue) and after the outage must each be admitted once, in order, and the
//! server must have started exactly as many games as it handed out.
//!
//! redis-forgets: the same with a Redis that keeps nothing on disk, so it comes back
//! empty. The server must notice (`rampart_waitlist_lost_total`), put back every ticket it
//! knew at its place, and keep every promise above.

use std::time::{Duration, Instant};

use crate::bots::{Spec, World};
use crate::procs::{Redis, Server};
use crate::report::{self, Report};
use crate::{health, process_figures, spawn_bots, stop_bots, wait_for, Ctx};

/// Runs the scenario: `persistent` is redis-dies, otherwise redis-forgets.
pub async fn run(ctx: &Ctx, persistent: bool) -> Report {
    let name = if persistent { "redis-dies" } else { "redis-forgets" };
    let mut report = Report::new(name);
    let secs = ctx.secs(60, 16);
    let cap = ctx.games(40, 10);
    let down = Duration::from_secs(if ctx.smoke { 6 } else { 20 });
    let mut redis = match Redis::start(&ctx.dir, persistent) {
        Ok(r) => r,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let env = ctx.env(&[
        ("RAMPART__STORAGE__BACKEND", "redis".to_owned()),
        ("RAMPART_REDIS_URL", redis.url()),
        ("RAMPART_SESSION_KEY", "chaos-session-key".to_owned()),
        ("RAMPART__ADMISSION__MAX_GAMES", cap.to_string()),
        ("RAMPART__ADMISSION__CLAIM_LEASE_MS", "5000".to_owned()),
    ]);
    let mut server = match Server::start(&ctx.api, &ctx.rampart, "rampart", &env, &ctx.dir, None).await {
        Ok(s) => s,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let world = World::new(ctx.api.clone(), vec![server.url.clone()]);
    let bots = cap * 3 / 2;
    spawn_bots(&world, ctx, bots, |_| Spec {
        vs_ai: false,
        red_url: 0,
        yellow_url: 0,
        pace: Duration::from_millis(250),
        chat_every: 0,
        idle: false,
        max_games: 0,
    })
    .await;
    if !wait_for(Duration::from_secs(20), || world.playing() >= cap).await {
        report.broke("setup", &format!("only {} of {cap} games in play", world.playing()));
    }
    let rss_start = server.rss_kib();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 3 } else { 10 })).await;
    let tickets_before = world.tickets.borrow().len();
    let killed = Instant::now();
    // Every game pauses while Redis is down: its errors until it is back belong to the fault.
    for h in world.handles.borrow().iter() {
        h.touched_until.set(Some(killed + down + Duration::from_secs(60)));
    }
    redis.kill9();
    eprintln!("chaos: {name}: redis-server killed (SIGKILL) with {tickets_before} tickets issued");
    tokio::time::sleep(down).await;
    let tickets_during = world.tickets.borrow().len() - tickets_before;
    let moves_during = world.tally.borrow().samples.iter().filter(|s| s.at >= killed).count();
    if let Err(e) = redis.restart() {
        report.broke("redis_restart", &e);
    }
    let back = Instant::now();
    for h in world.handles.borrow().iter() {
        h.touched_until.set(Some(back + Duration::from_secs(5)));
    }
    eprintln!("chaos: {name}: redis-server back on its port after {down:?}{}", if persistent { "" } else { ", empty" });
    let end = start + Duration::from_secs(secs).max(back - start + Duration::from_secs(5));
    tokio::time::sleep_until(end.into()).await;
    let window = [(killed, back + Duration::from_secs(5))];
    stop_bots(&world, &mut report).await;
    report.field("down_secs", down.as_secs());
    report.field("moves_while_down", moves_during);
    report.field("tickets_issued_while_down", tickets_during);
    let mut waitlist = report::final_waitlist(&world, Duration::ZERO).await;
    report::check_started(&mut report, &world, &server, &mut waitlist, &ctx.dir).await;
    let moves_after = world.tally.borrow().samples.iter().filter(|s| s.at >= back + Duration::from_secs(5)).count();
    report.field("moves_after_back", moves_after);
    report.check(moves_after > 0, "play_after_back", "no move was played once Redis was back");
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &window);
    if let Some(h) = health(&ctx.api, &server.url).await {
        let state = h["checks"]["circuit_breakers"]["breakers"]["database"]["state"].as_str().unwrap_or("?").to_owned();
        report.field("database_breaker_at_end", state);
        let lost = &h["checks"]["admission"]["line_lost"];
        let (count, restored) = (lost["count"].as_u64().unwrap_or(0), lost["restored"].as_u64().unwrap_or(0));
        report.field("line_lost", format!("{count}(restored:{restored})"));
        if persistent {
            report.check(count == 0, "line_kept", "a Redis that persists was taken for one that forgot");
        } else {
            report.check(count >= 1, "line_loss_reported", "Redis came back empty and nothing said the line was lost");
        }
    }
    process_figures(&mut report, &ctx.api, &mut server, rss_start).await;
    report
}
