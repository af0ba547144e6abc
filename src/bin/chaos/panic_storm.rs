//! panic-storm: one `rampart` (embedded backend) with hundreds of games in play — mostly
//! two-human games whose seats are bots, every tenth against the AI — and, for the storm's
//! length, one injected panic a second in a random game (one in five armed as
//! `panic_on_next_command`, so the crash comes with a move), a hang every 30 s (longer than
//! `hang_timeout_ms`, so the watchdog abandons the thread and moves its other games), and
//! one game crashed past its restart limit. Every faulted game must come back with the
//! board it had before the fault (or be closed per policy); games never faulted must see no
//! error at all — the hang windows included.

use std::time::{Duration, Instant};

use crate::bots::{FaultKind, Order, Spec, World};
use crate::procs::Server;
use crate::report::{self, Report};
use crate::{process_figures, spawn_bots, stop_bots, until, wait_for, Ctx};

/// The restart limit the server is given (and the probe must exceed).
const MAX_RESTARTS: u32 = 5;
/// `hang_timeout_ms`; each injected hang lasts half as long again.
const HANG_TIMEOUT_MS: u64 = 2000;

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Report {
    let mut report = Report::new("panic-storm");
    let secs = ctx.secs(180, 18);
    let games = ctx.games(500, 30);
    let pace = Duration::from_millis(if ctx.smoke { 600 } else { 2000 });
    // Setup goes through the waitlist: more games than the token bucket's burst.
    let burst = if ctx.smoke { (games / 2).max(1) } else { 100 };
    let env = ctx.env(&[
        ("RAMPART__SUPERVISION__DEFAULT__MAX_RESTARTS", MAX_RESTARTS.to_string()),
        ("RAMPART__SUPERVISION__DEFAULT__WITHIN_SECS", "60".to_owned()),
        ("RAMPART__SUPERVISION__DEFAULT__HANG_TIMEOUT_MS", HANG_TIMEOUT_MS.to_string()),
        ("RAMPART__ADMISSION__BURST", burst.to_string()),
        ("RAMPART__ADMISSION__RATE_PER_SEC", "50".to_owned()),
    ]);
    let mut server = match Server::start(&ctx.api, &ctx.rampart, "rampart", &env, &ctx.dir, None).await {
        Ok(s) => s,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let world = World::new(ctx.api.clone(), vec![server.url.clone()]);
    let setup = Instant::now();
    spawn_bots(&world, ctx, games, |i| Spec {
        vs_ai: i % 10 == 9,
        red_url: 0,
        yellow_url: 0,
        pace,
        chat_every: 0,
        idle: false,
        max_games: 0,
    })
    .await;
    let within = Duration::from_secs(if ctx.smoke { 12 } else { 90 });
    let all = wait_for(within, || world.playing() >= games * 95 / 100).await;
    report.field("setup_secs", format!("{:.1}", setup.elapsed().as_secs_f64()));
    if !all {
        report.broke("setup", &format!("only {} of {games} games in play after {within:?}", world.playing()));
    }
    let rss_start = server.rss_kib();
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 2 } else { 10 })).await;

    let mut rng = fastrand::Rng::with_seed(ctx.seed ^ 0x5eed);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let hangs: Vec<Duration> = if ctx.smoke {
        vec![Duration::from_secs(secs / 3), Duration::from_secs(2 * secs / 3)]
    } else {
        (1..).map(|k| Duration::from_secs(30 * k)).take_while(|d| d.as_secs() < secs).collect()
    };
    let probe_at = Duration::from_secs(secs / 2);
    let (mut next_hang, mut probed) = (0, false);
    let mut tick = start;
    while Instant::now() < end {
        tick += Duration::from_secs(1);
        until(tick.min(end)).await;
        let elapsed = start.elapsed();
        let pick = |rng: &mut fastrand::Rng| {
            let handles = world.handles.borrow();
            let ready: Vec<_> = handles.iter().filter(|h| h.playing.get() && !h.in_own_fault.get()).cloned().collect();
            (!ready.is_empty()).then(|| ready[rng.usize(..ready.len())].clone())
        };
        if next_hang < hangs.len() && elapsed >= hangs[next_hang] {
            next_hang += 1;
            if let Some(h) = pick(&mut rng) {
                eprintln!("chaos: panic-storm: hang in game {:?} at {:.0} s", h.game.borrow(), elapsed.as_secs_f64());
                h.order(Order::Fault(FaultKind::Hang(HANG_TIMEOUT_MS * 3 / 2)));
            }
            continue;
        }
        if !probed && elapsed >= probe_at {
            probed = true;
            if let Some(h) = pick(&mut rng) {
                h.order(Order::PolicyProbe(MAX_RESTARTS + 2));
            }
            continue;
        }
        if let Some(h) = pick(&mut rng) {
            h.order(Order::Fault(if rng.u8(..5) == 0 { FaultKind::PanicNext } else { FaultKind::Panic }));
        }
    }
    // Faults ordered in the last second still play out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window = [(start, Instant::now())];
    stop_bots(&world, &mut report).await;
    let mut waitlist = report::final_waitlist(&world, Duration::ZERO).await;
    report::check_started(&mut report, &world, &server, &mut waitlist, &ctx.dir).await;
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &window);
    process_figures(&mut report, &ctx.api, &mut server, rss_start).await;
    report
}
