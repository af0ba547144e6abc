//! Tick lateness of real-time games (issue 12's benchmark): `--games` light-cycle games,
//! each an actor on one of `--arbiters` threads (as game arbiters are), each ticking at
//! `--hz` on `supervision::ticker::Ticker` with `run_later` — the loop the real-time game
//! actor is built on. The game is the light-cycle kind taken from the kinds table and played
//! through the object-safe `TickGame`, as the runtime plays it: every tick the AI gives both
//! seats' inputs, the rules step, and the tick's frame (the kind's fields, tick, status) is
//! serialised as it would be sent; every 20th tick the state is wrapped in a `Snapshot` as
//! it is handed to the keeper (the write itself is not part of the tick). A game that ends
//! starts again. After `--secs`, prints lateness p50 / p99 / p999 / max, late
//! ticks (> 1 ms) and resyncs, ticks/s and the process's CPU.
//!
//! ```text
//! cargo run --release --example tick_bench -- --games 1000 [--hz 20] [--secs 20] [--arbiters 2]
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rampart::game::kinds::TickKind;
use rampart::game::{Arena, Board, Outcome, Seat};
use rampart::runtime::ticker::Ticker;
use rampart::store::snapshot::Snapshot;
use serde_json::json;

/// Every this many ticks the state is handed over as a snapshot (`realtime.snapshot_every_ticks`).
const SNAPSHOT_EVERY: u32 = 20;

struct Samples {
    late_us: Vec<u32>,
    late: u64,
    resyncs: u64,
    bytes: u64,
}

struct Game {
    kind: &'static TickKind,
    rules: Arena,
    kept: u64,
    ticker: Ticker,
    samples: Arc<Mutex<Samples>>,
    until: Instant,
}

impl Game {
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let wait = self.ticker.wait(Instant::now());
        ctx.run_later(wait, |game, ctx| game.tick(ctx));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if now >= self.until {
            ctx.stop();
            return;
        }
        let tick = self.ticker.fire(now);
        let inputs = [Some(self.rules.ai_input(Seat::Red)), Some(self.rules.ai_input(Seat::Yellow))];
        self.rules = self.rules.step(inputs);
        let mut view = self.rules.tick_view();
        view.insert("type".to_owned(), json!("tick"));
        view.insert("tick".to_owned(), json!(self.rules.tick()));
        view.insert("status".to_owned(), json!(self.rules.outcome() != Outcome::InProgress));
        let frame = serde_json::to_vec(&serde_json::Value::Object(view)).unwrap_or_default();
        if self.rules.tick() % SNAPSHOT_EVERY == 0 {
            let snapshot = Snapshot {
                game_id: rampart::ids::GameId::random(),
                board: Board::ticked(self.rules.clone()),
                seats: [None, None],
                created_at: String::new(),
                abandoned: false,
                restarts: 0,
                failed: false,
                version: self.kept,
                epoch: 1,
            };
            self.kept += u64::from(std::hint::black_box(std::sync::Arc::new(snapshot)).version > 0);
        }
        if self.rules.outcome() != Outcome::InProgress {
            self.rules = (self.kind.new_game)(64, 44);
        }
        {
            let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            s.late_us.push(u32::try_from(tick.late.as_micros()).unwrap_or(u32::MAX));
            s.late += u64::from(tick.late > Duration::from_millis(1));
            s.resyncs += u64::from(tick.resynced);
            s.bytes += frame.len() as u64;
        }
        self.schedule(ctx);
    }
}

impl Actor for Game {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.schedule(ctx);
    }
}

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut games, mut hz, mut secs, mut arbiters) = (1000usize, 20u64, 20u64, 2usize);
    while let Some(flag) = args.next() {
        let v: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("usage: tick_bench [--games N] [--hz N] [--secs N] [--arbiters N]");
            std::process::exit(64)
        });
        match flag.as_str() {
            "--games" => games = v as usize,
            "--hz" => hz = v.max(1),
            "--secs" => secs = v.max(2),
            "--arbiters" => arbiters = (v as usize).max(1),
            other => {
                eprintln!("tick_bench: unknown flag {other}");
                std::process::exit(64)
            }
        }
    }
    let samples = Arc::new(Mutex::new(Samples { late_us: Vec::new(), late: 0, resyncs: 0, bytes: 0 }));
    let Some(kind) = rampart::game::kinds::by_name("lightcycle").and_then(|k| k.ticks()) else {
        eprintln!("tick_bench: no real-time kind named lightcycle");
        std::process::exit(70)
    };
    let system = System::new();
    let period = Duration::from_micros(1_000_000 / hz);
    let threads: Vec<Arbiter> = (0..arbiters).map(|_| Arbiter::new()).collect();
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    // One second to start every game (their ticks spread over the period), then `secs`.
    let until = t0 + Duration::from_secs(secs + 1);
    for i in 0..games {
        let samples = samples.clone();
        // Spread the games' phases over one period, as games started at random times are.
        let start = t0 + period.mul_f64(i as f64 / games as f64);
        Game::start_in_arbiter(&threads[i % arbiters].handle(), move |_| Game {
            kind,
            rules: (kind.new_game)(64, 44),
            kept: 1,
            ticker: Ticker::new(period, start, Duration::from_millis(1)),
            samples,
            until,
        });
    }
    system.block_on(async {
        // The first second (start-up) is left out of the figures.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cpu1, t1) = (cpu_secs(), Instant::now());
        {
            let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
            s.late_us.clear();
            s.late = 0;
            s.resyncs = 0;
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu2, t2) = (cpu_secs(), Instant::now());
        let s = samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut late: Vec<u32> = s.late_us.clone();
        late.sort_unstable();
        let pct = |p: f64| {
            late.get(((late.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0) as f64 / 1000.0
        };
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "| {games} | {hz} | {arbiters} | {:.0} | {:.2} / {:.2} / {:.2} / {:.2} | {} | {} | {:.2} | {} |",
            late.len() as f64 / t2.duration_since(t1).as_secs_f64(),
            pct(0.5),
            pct(0.99),
            pct(0.999),
            late.last().copied().unwrap_or(0) as f64 / 1000.0,
            s.late,
            s.resyncs,
            (cpu2 - cpu1) / t2.duration_since(t1).as_secs_f64(),
            load.split_whitespace().next().unwrap_or("?"),
        );
        let _ = (cpu0, s.bytes);
        System::current().stop();
    });
    for a in threads {
        a.stop();
    }
}
