//! `loadbench play`: G two-human games with both seats connected, the offered moves per
//! second stepped up until the opponent's p99 passes the stop level. One task per game
//! holds both seats and keeps one move in flight: it sends the mover's move at its next
//! slot (`games / rate` apart, from a random offset), then waits for both seats' `state`.
//! A game that falls behind sends its next move at once, so the achieved rate shows where
//! the server (or this client) saturates. After 42 moves (a draw) the task creates and
//! joins a new game; that work is part of the load (each slot's first game stops after a
//! random number of moves, so the creations spread evenly over time).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::game::{self, Seat};
use crate::wire::Http;
use crate::{cpu_secs, load_average, pct, Opts, DRAW};

/// One move's latencies.
struct Sample {
    at: Instant,
    mover_ms: f32,
    opponent_ms: f32,
}

/// What the game tasks share with the stepper.
struct Shared {
    /// Each game's interval between moves, in ns (0: paused).
    interval_ns: AtomicU64,
    stop: AtomicBool,
    samples: Mutex<Vec<Sample>>,
    errors: Mutex<Vec<String>>,
    games_created: AtomicU64,
}

async fn setup(http: &mut Http, target: SocketAddr, sources: &[IpAddr], i: usize) -> std::io::Result<[Seat; 2]> {
    let g = game::create(http).await?;
    let source = |k: usize| Some(sources[(2 * i + k) % sources.len()]);
    let (red, yellow) = tokio::join!(
        game::join(target, source(0), &g.game_id, &g.tokens[0]),
        game::join(target, source(1), &g.game_id, &g.tokens[1])
    );
    Ok([red?, yellow?])
}

/// One game slot: plays games back to back until told to stop.
async fn slot(target: SocketAddr, shared: Arc<Shared>, sources: Vec<IpAddr>, i: usize) {
    let mut http = Http::new(target);
    let mut next = Instant::now();
    let mut pace = 0;
    // The first game stops after a random number of moves (its seats simply leave), so the
    // games' ends, and the creations after them, spread evenly instead of coming in waves.
    let mut moves = fastrand::usize(1..=DRAW.len());
    while !shared.stop.load(Ordering::Relaxed) {
        let mut seats = match setup(&mut http, target, &sources, i).await {
            Ok(seats) => seats,
            Err(e) => {
                shared.errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("setup: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        shared.games_created.fetch_add(1, Ordering::Relaxed);
        for (k, column) in DRAW.iter().enumerate().take(moves) {
            let mut interval = shared.interval_ns.load(Ordering::Relaxed);
            while interval == 0 {
                // Paused (before the first step): hold this move.
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                next = Instant::now();
                interval = shared.interval_ns.load(Ordering::Relaxed);
            }
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            if interval != pace {
                // A new pace: this game's moves start at a random phase of the interval, so
                // the games' moves spread evenly over time instead of coming in bursts.
                pace = interval;
                next = Instant::now() + Duration::from_nanos(fastrand::u64(..interval));
            } else {
                // The next slot, or now if this game is behind (one move in flight).
                next = (next + Duration::from_nanos(interval)).max(Instant::now());
            }
            tokio::time::sleep_until(next.into()).await;
            let m = k % 2;
            let sent = Instant::now();
            let [a, b] = &mut seats;
            let (mover, other) = if m == 0 { (a, b) } else { (b, a) };
            if let Err(e) = mover.play(*column).await {
                shared.errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("send: {e}"));
                break;
            }
            let want = k as u64 + 1;
            match tokio::join!(mover.until_moves(want), other.until_moves(want)) {
                (Ok(at_mover), Ok(at_other)) => {
                    let ms = |t: Instant| (t.duration_since(sent).as_secs_f64() * 1000.0) as f32;
                    let sample = Sample { at: sent, mover_ms: ms(at_mover), opponent_ms: ms(at_other) };
                    shared.samples.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
                }
                (Err(e), _) | (_, Err(e)) => {
                    shared.errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("move: {e}"));
                    break;
                }
            }
        }
        moves = DRAW.len();
    }
}

/// Runs the scenario: prints one table row per step.
pub async fn run(o: &Opts) {
    let shared = Arc::new(Shared {
        interval_ns: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        samples: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        games_created: AtomicU64::new(0),
    });
    // Spread the games over the targets; each slot's first moves start at a random offset.
    for i in 0..o.games {
        let target = o.targets[i % o.targets.len()];
        let (shared, sources) = (shared.clone(), o.sources.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(fastrand::u64(..500))).await;
            slot(target, shared, sources, i).await;
        });
    }
    // Wait until every game is set up (the first round of creations).
    let ready = Instant::now();
    while (shared.games_created.load(Ordering::Relaxed) as usize) < o.games {
        if ready.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "loadbench: only {} of {} games set up in 120 s",
                shared.games_created.load(Ordering::Relaxed),
                o.games
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup_secs = ready.elapsed().as_secs_f64();
    let pids: Vec<Option<u32>> = o.pids.iter().map(|p| Some(*p)).collect();
    let server_cpu = || pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    for &rate in &o.steps {
        let interval = (o.games as f64 * 1e9 / rate as f64) as u64;
        shared.interval_ns.store(interval, Ordering::Relaxed);
        // One second to reach the new pace, then the measured window.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (start, server0, client0) = (Instant::now(), server_cpu(), cpu_secs(None));
        let created0 = shared.games_created.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(o.step_secs)).await;
        let secs = start.elapsed().as_secs_f64();
        let (server1, client1) = (server_cpu(), cpu_secs(None));
        let created = shared.games_created.load(Ordering::Relaxed) - created0;
        let (mut mover, mut opponent) = (Vec::new(), Vec::new());
        {
            let mut samples = shared.samples.lock().unwrap_or_else(|e| e.into_inner());
            for s in samples.iter().filter(|s| s.at >= start) {
                mover.push(f64::from(s.mover_ms));
                opponent.push(f64::from(s.opponent_ms));
            }
            samples.clear();
        }
        mover.sort_by(f64::total_cmp);
        opponent.sort_by(f64::total_cmp);
        let moves_per_sec = mover.len() as f64 / secs;
        let server_cores = (server1 - server0) / secs;
        let client_cores = (client1 - client0) / secs;
        let errors = std::mem::take(&mut *shared.errors.lock().unwrap_or_else(|e| e.into_inner()));
        println!(
            "| {} | {} | {rate} | {:.0} | {:.0} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} | {} | {:.2} |",
            o.label,
            o.games,
            moves_per_sec,
            moves_per_sec * 2.0,
            pct(&mover, 0.5),
            pct(&mover, 0.99),
            pct(&mover, 0.999),
            pct(&opponent, 0.5),
            pct(&opponent, 0.99),
            pct(&opponent, 0.999),
            server_cores,
            client_cores,
            errors.len(),
            load_average(),
        );
        println!(
            "{}",
            json!({
                "scenario": "play", "label": o.label, "games": o.games, "offered_moves_per_sec": rate,
                "moves_per_sec": moves_per_sec, "frames_out_per_sec": moves_per_sec * 2.0,
                "games_created_per_sec": created as f64 / secs, "setup_secs": setup_secs,
                "mover_ms": {"p50": pct(&mover, 0.5), "p99": pct(&mover, 0.99), "p999": pct(&mover, 0.999)},
                "opponent_ms": {"p50": pct(&opponent, 0.5), "p99": pct(&opponent, 0.99), "p999": pct(&opponent, 0.999)},
                "server_cores": server_cores, "client_cores": client_cores,
                "errors": errors.len(), "first_error": errors.first(), "load_average": load_average(),
            })
        );
        let worst = pct(&opponent, 0.99).max(pct(&mover, 0.99));
        if worst > o.stop_p99_ms || mover.is_empty() {
            break;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
}
