//! loadbench: the capacity scenarios of `make load` (not part of `make test`), run against
//! Rampart or the bare actix-ws relay (`examples/bare_relay.rs`, which speaks the same
//! subset of the wire contract: create, join, a seat's socket, moves and state frames), so
//! every figure has its ratio to what the transport itself costs.
//!
//! ```text
//! loadbench sockets --url http://127.0.0.1:PORT --pid PID --sockets 19800 [--sources 8]
//! loadbench play    --url http://127.0.0.1:PORT[,URL…] --pid PID[,PID…] --games 2000
//!                   [--steps 10000,20000,…] [--step-secs 10] [--stop-p99-ms 50]
//! loadbench restart --url http://127.0.0.1:PORT --admin-token TOKEN [--rounds 20]
//! ```
//!
//! - `sockets`: opens `--sockets` joined, idle seats (two per game), from `--sources`
//!   loopback addresses (127.0.0.1, .2, …) so the ephemeral ports last; reports the connect
//!   rate, the server's RSS per socket (`/proc/PID/status`), then a probe game's latency for
//!   mover and opponent while every socket stays open.
//! - `play`: `--games` two-human games, both seats connected; offered moves per second are
//!   stepped up (each game moves at `games / rate` intervals, one move in flight per game)
//!   until the opponent's p99 passes `--stop-p99-ms`; each step reports moves/s, frames
//!   out/s, p50/p99/p999 for mover and opponent, and the server's and this client's CPU.
//!   Games follow a fixed 42-move draw, then a new game is created: the load includes
//!   creating and joining games, as real play does.
//!
//! - `restart` (Rampart only): a panic injected into each system actor in turn
//!   (`POST /api/v1/admin/actors/{name}/fault`), `--rounds` times each; measures the time
//!   from the fault's answer until `/health` reports the actor restarted and running, and
//!   until the first game created after it answers 201 (a request that crosses the
//!   admission controller and the game supervisor).
//!
//! Latency is measured where players feel it: from sending a move to the mover's own
//! `state`, and to the opponent's (the frame that crosses to the other player). Each
//! scenario prints a table and one JSON line (`{"scenario":…}`) for scripts.

mod game;
mod play;
mod restart;
mod sockets;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Options shared by the scenarios.
pub struct Opts {
    /// The servers (`host:port`), each with its pid when known.
    pub targets: Vec<SocketAddr>,
    /// The servers' pids (for RSS and CPU), one per target or none.
    pub pids: Vec<u32>,
    /// Loopback source addresses to spread client sockets over.
    pub sources: Vec<IpAddr>,
    /// Sockets to open (`sockets`).
    pub sockets: usize,
    /// Games to play (`play`).
    pub games: usize,
    /// Offered moves per second, step by step (`play`).
    pub steps: Vec<u64>,
    /// Length of each step (`play`).
    pub step_secs: u64,
    /// Stop stepping once the opponent's p99 passes this (`play`).
    pub stop_p99_ms: f64,
    /// Moves the probe game plays (`sockets`).
    pub probe_moves: usize,
    /// A name for this target in the table (`rampart`, `relay`…).
    pub label: String,
    /// The admin token (`restart`).
    pub admin_token: String,
    /// Faults per system actor (`restart`).
    pub rounds: usize,
}

fn usage(problem: &str) -> ! {
    eprintln!("loadbench: {problem}");
    eprintln!(
        "usage: loadbench sockets|play --url URL[,URL…] [--pid PID[,PID…]] [--label NAME] [--sockets N] \
         [--sources N] [--probe-moves N] [--games N] [--steps R,R,…] [--step-secs S] [--stop-p99-ms MS] \
         [--admin-token T] [--rounds N]"
    );
    std::process::exit(64);
}

fn parse() -> (String, Opts) {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| usage("which scenario?"));
    let mut o = Opts {
        targets: Vec::new(),
        pids: Vec::new(),
        sources: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        sockets: 1000,
        games: 500,
        steps: vec![5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000],
        step_secs: 10,
        stop_p99_ms: 50.0,
        probe_moves: 200,
        label: "server".to_owned(),
        admin_token: String::new(),
        rounds: 20,
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage(&format!("{flag} takes numbers")));
        match flag.as_str() {
            "--url" => {
                o.targets = value
                    .split(',')
                    .map(|u| {
                        let hostport = u.trim_start_matches("http://").trim_end_matches('/');
                        hostport.parse().unwrap_or_else(|_| usage(&format!("{u} is not http://IP:PORT")))
                    })
                    .collect()
            }
            "--pid" => o.pids = value.split(',').map(|p| number(p) as u32).collect(),
            "--label" => o.label = value,
            "--sockets" => o.sockets = number(&value) as usize,
            "--sources" => {
                let n = number(&value).clamp(1, 250) as u8;
                o.sources = (1..=n).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))).collect();
            }
            "--games" => o.games = number(&value) as usize,
            "--steps" => o.steps = value.split(',').map(number).collect(),
            "--step-secs" => o.step_secs = number(&value),
            "--stop-p99-ms" => o.stop_p99_ms = number(&value) as f64,
            "--probe-moves" => o.probe_moves = number(&value) as usize,
            "--admin-token" => o.admin_token = value,
            "--rounds" => o.rounds = number(&value).max(1) as usize,
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if o.targets.is_empty() {
        usage("--url is required");
    }
    (scenario, o)
}

/// The fixed 42-move game every load game plays: a draw, so every game is as long as a
/// game can be (fewest creations per move).
pub const DRAW: &[u8; 42] = b"333333222222444444011111155555500000666666";

/// `p` (0..=1) of sorted samples, in ms.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// CPU time (user + system) of `pid` (or this process), in seconds.
pub fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; here 0-based after the command: 11, 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Raises this process's open-file limit to its hard limit; answers the new soft limit.
fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

fn main() {
    let (scenario, opts) = parse();
    let nofile = raise_nofile();
    // Two workers, as many as the machine's cores: the client shares them with the server.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    let started = std::time::Instant::now();
    match scenario.as_str() {
        "sockets" => {
            if opts.sockets as u64 + 64 > nofile {
                eprintln!(
                    "loadbench: {} sockets need {} open files; this process may hold {nofile} (raise the hard limit, \
                     e.g. `prlimit --nofile=20000:20000`, or ask for fewer)",
                    opts.sockets,
                    opts.sockets + 64
                );
                std::process::exit(1);
            }
            runtime.block_on(sockets::run(&opts));
        }
        "play" => runtime.block_on(play::run(&opts)),
        "restart" => runtime.block_on(restart::run(&opts)),
        other => usage(&format!("unknown scenario {other:?}")),
    }
    eprintln!("loadbench: {scenario} took {:.1} s", started.elapsed().as_secs_f64());
    runtime.shutdown_timeout(Duration::from_secs(1));
}
