//! instance-dies: three `rampart` instances on one private Redis (like `scripts/cluster.sh`),
//! games created round-robin across them, half with both seats on one instance and half
//! with the yellow seat relayed from the next one. One instance is killed with `kill -9`;
//! later another is frozen with SIGSTOP past its leases and thawed with SIGCONT. Players
//! keep playing through whichever instance answers: a seat whose socket breaks or goes
//! silent rejoins elsewhere and must find the board it had (a kill -9 may lose only the
//! moves in flight at the kill). Games the faults did not touch (owned by the survivor,
//! seats on the survivor) must see no error at all.

use std::time::{Duration, Instant};

use crate::bots::{Spec, World};
use crate::procs::{Redis, Server};
use crate::report::{self, Report};
use crate::{process_figures, spawn_bots, stop_bots, wait_for, Ctx};

/// Marks the games an instance's fault touches: owned by it (its lease in Redis) or with a
/// seat on it. Answers how many.
fn touch(world: &World, redis: &Redis, victim: usize, name: &str, until: Instant) -> usize {
    let mut touched = 0;
    for h in world.handles.borrow().iter() {
        let Some(id) = h.game.borrow().clone() else { continue };
        let owned = redis.lease_holder(&id).as_deref() == Some(name);
        if owned || h.seat_urls.borrow().contains(&victim) {
            touched += 1;
            h.touched_until.set(Some(h.touched_until.get().map_or(until, |t| t.max(until))));
        }
    }
    touched
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Report {
    let mut report = Report::new("instance-dies");
    let secs = ctx.secs(60, 18);
    let games = ctx.games(60, 18);
    let lease_ms: u64 = if ctx.smoke { 1000 } else { 3000 };
    let claim_lease_ms: u64 = 3000;
    let redis = match Redis::start(&ctx.dir, false) {
        Ok(r) => r,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let mut servers = Vec::new();
    for i in 1..=3 {
        let env = ctx.env(&[
            ("RAMPART__STORAGE__BACKEND", "redis".to_owned()),
            ("RAMPART_REDIS_URL", redis.url()),
            ("RAMPART_SESSION_KEY", "chaos-session-key".to_owned()),
            ("RAMPART__CLUSTER__INSTANCE_ID", format!("chaos-{i}")),
            ("RAMPART__CLUSTER__LEASE_MS", lease_ms.to_string()),
            ("RAMPART__ADMISSION__CLAIM_LEASE_MS", claim_lease_ms.to_string()),
            ("RAMPART__ADMISSION__BURST", (games / 6).max(1).to_string()),
            ("RAMPART__SERVER__WORKERS", "1".to_owned()),
            ("RAMPART__SERVER__GAME_ARBITERS", "1".to_owned()),
        ]);
        match Server::start(&ctx.api, &ctx.rampart, &format!("chaos-{i}"), &env, &ctx.dir, None).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                report.broke("start", &e);
                return report;
            }
        }
    }
    let world = World::new(ctx.api.clone(), servers.iter().map(|s| s.url.clone()).collect());
    spawn_bots(&world, ctx, games, |i| Spec {
        vs_ai: false,
        red_url: i % 3,
        yellow_url: if i % 2 == 0 { i % 3 } else { (i + 1) % 3 },
        pace: Duration::from_millis(if ctx.smoke { 400 } else { 1000 }),
        chat_every: 0,
        idle: false,
        max_games: 0,
    })
    .await;
    if !wait_for(Duration::from_secs(if ctx.smoke { 10 } else { 30 }), || world.playing() >= games).await {
        report.broke("setup", &format!("only {} of {games} games in play", world.playing()));
    }
    let rss_start: Vec<Option<u64>> = servers.iter().map(Server::rss_kib).collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 2 } else { 10 })).await;

    // kill -9 the first instance.
    let settle = Duration::from_millis(lease_ms) + Duration::from_secs(15);
    let killed = Instant::now();
    let touched_kill = touch(&world, &redis, 0, "chaos-1", killed + settle);
    world.up.borrow_mut()[0] = false;
    world.killed_at.set(Some(killed));
    servers[0].kill9();
    eprintln!("chaos: instance-dies: chaos-1 killed (kill -9); {touched_kill} games touched");

    // SIGSTOP the second one past its leases, then SIGCONT.
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 4 } else { 12 })).await;
    let pause = Duration::from_millis(3 * lease_ms) + Duration::from_secs(2);
    let paused = Instant::now();
    let touched_pause = touch(&world, &redis, 1, "chaos-2", paused + pause + settle);
    world.up.borrow_mut()[1] = false;
    if !servers[1].pause() {
        report.broke("pause", "SIGSTOP failed");
    }
    eprintln!("chaos: instance-dies: chaos-2 stopped (SIGSTOP) for {pause:?}; {touched_pause} games touched");
    tokio::time::sleep(pause).await;
    servers[1].resume();
    world.up.borrow_mut()[1] = true;
    let resumed = Instant::now();
    eprintln!("chaos: instance-dies: chaos-2 continued (SIGCONT)");
    let end = (start + Duration::from_secs(secs)).max(resumed + Duration::from_secs(if ctx.smoke { 4 } else { 10 }));
    tokio::time::sleep_until(end.into()).await;
    let window = [(killed, resumed + Duration::from_secs(5))];
    stop_bots(&world, &mut report).await;

    let untouched = world.handles.borrow().iter().filter(|h| h.touched_until.get().is_none()).count();
    report.field("touched", format!("kill:{touched_kill},pause:{touched_pause},untouched:{untouched}"));
    // Claims the victims held go back to the front after claim_lease_ms: so much may a
    // ticket trail one issued after it.
    let tolerance = Duration::from_millis(claim_lease_ms + lease_ms) + Duration::from_secs(2);
    let waitlist = report::final_waitlist(&world, tolerance).await;
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &window);
    report.field("alive_chaos-1", "killed");
    for (i, server) in servers.iter_mut().enumerate().skip(1) {
        process_figures(&mut report, &ctx.api, server, rss_start[i]).await;
    }
    report
}
