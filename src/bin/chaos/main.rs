//! chaos: the chaos harness (`make chaos`, `scripts/chaos.sh`). Each scenario starts real
//! processes — the `rampart` binary, private `redis-server`s on free ports (alone, or with a
//! replica, three Sentinels and Debian's HAProxy), the bundled `fake_llm`, Debian's
//! `stress-ng` in a memory cgroup, an instance in a network namespace of its own, a Redis
//! Cluster of six nodes — plays
//! games on them with bots over real WebSockets, breaks something on purpose, and checks the promises: no error in a game no fault
//! touched, every faulted game back with its board (or closed per its policy), no waitlist
//! ticket lost, admitted twice or out of order, the process alive. Each prints ONE
//! summary line on stdout (details of anything broken on stderr) and the run exits 1 when a
//! promise broke. Everything is bounded in time and count.
//!
//! ```text
//! chaos [--scenario panic-storm|redis-dies|redis-forgets|instance-dies|memory-pressure|llm-storm|redis-failover|
//!                   cluster-failover|owner-paused|partition|issue-23|all]
//!       [--duration SECS] [--games N] [--seed N] [--smoke] [--allow-skip] [--runs N]
//!       [--bin-dir DIR] [--log-dir DIR] [--keep-logs]
//! ```
//!
//! `--smoke` runs each scenario in about 30 s with fewer games. `issue-23` is the
//! scenarios of issue 23 (redis-failover, cluster-failover, owner-paused, partition). `--runs N` runs each
//! scenario N times (seeds SEED, SEED+100, …) and ends with a table per scenario: runs
//! passed, moves lost, games with two owners (boards forked), games lost (`make
//! chaos-ten`). `--bin-dir` holds `rampart`
//! and `fake_llm` (default: this binary's directory). Logs go to a fresh directory under
//! the temporary directory (printed; kept when a scenario fails or with `--keep-logs`).

mod bots;
mod checks;
mod instance_dies;
mod llm_storm;
mod memory_pressure;
mod net;
mod netns;
mod owner_paused;
mod panic_storm;
mod partition;
mod procs;
mod procs_ha;
mod redis_dies;
mod redis_failover;
mod report;

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bots::{Spec, World};
use net::Api;
use report::Report;

const SCENARIOS: [&str; 10] = [
    "panic-storm",
    "redis-dies",
    "redis-forgets",
    "instance-dies",
    "memory-pressure",
    "llm-storm",
    "redis-failover",
    "cluster-failover",
    "owner-paused",
    "partition",
];

/// The scenarios of issue 23 (the cluster survives its Redis).
const ISSUE_23: [&str; 4] = ["redis-failover", "cluster-failover", "owner-paused", "partition"];

/// The run's options.
struct Opts {
    scenarios: Vec<&'static str>,
    runs: u64,
    duration: Option<u64>,
    games: Option<usize>,
    seed: u64,
    smoke: bool,
    allow_skip: bool,
    bin_dir: PathBuf,
    log_dir: Option<PathBuf>,
    keep_logs: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("chaos: {problem}");
    eprintln!(
        "usage: chaos [--scenario {}|issue-23|all] [--duration SECS] [--games N] [--seed N] [--smoke] \
         [--allow-skip] [--runs N] [--bin-dir DIR] [--log-dir DIR] [--keep-logs]",
        SCENARIOS.join("|")
    );
    std::process::exit(64);
}

fn parse() -> Opts {
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)).unwrap_or_default();
    let mut o = Opts {
        scenarios: SCENARIOS.to_vec(),
        runs: 1,
        duration: None,
        games: None,
        seed: fastrand::u64(..1_000_000),
        smoke: false,
        allow_skip: false,
        bin_dir: here,
        log_dir: None,
        keep_logs: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--scenario" => {
                let v = value();
                o.scenarios = match SCENARIOS.iter().find(|s| **s == v) {
                    Some(s) => vec![*s],
                    None if v == "all" => SCENARIOS.to_vec(),
                    None if v == "issue-23" => ISSUE_23.to_vec(),
                    None => usage(&format!("unknown scenario {v:?}")),
                };
            }
            "--duration" => o.duration = Some(value().parse().unwrap_or_else(|_| usage("--duration takes seconds"))),
            "--games" => o.games = Some(value().parse().unwrap_or_else(|_| usage("--games takes a number"))),
            "--runs" => {
                o.runs = value().parse().ok().filter(|n| *n >= 1).unwrap_or_else(|| usage("--runs takes a number >= 1"))
            }
            "--seed" => o.seed = value().parse().unwrap_or_else(|_| usage("--seed takes a number")),
            "--bin-dir" => o.bin_dir = PathBuf::from(value()),
            "--log-dir" => o.log_dir = Some(PathBuf::from(value())),
            "--smoke" => o.smoke = true,
            "--allow-skip" => o.allow_skip = true,
            "--keep-logs" => o.keep_logs = true,
            "-h" | "--help" => usage("the chaos harness"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    o
}

/// One scenario's sums over `--runs`.
#[derive(Default)]
struct RunSums {
    name: &'static str,
    passed: u64,
    skipped: u64,
    moves_lost: u64,
    forks: u64,
    games_lost: u64,
    /// A figure a run did not report (it ended before its checks).
    unknown: u64,
    failed_seeds: Vec<u64>,
}

impl RunSums {
    fn add(&mut self, report: &Report, allow_skip: bool, seed: u64) {
        if report.skipped() {
            self.skipped += 1;
        } else if !report.failed(allow_skip) {
            self.passed += 1;
        }
        if report.failed(allow_skip) {
            self.failed_seeds.push(seed);
        }
        for (key, sum) in
            [("moves_lost", &mut self.moves_lost), ("forks", &mut self.forks), ("games_lost", &mut self.games_lost)]
        {
            match report.figure(key).and_then(|v| v.parse::<u64>().ok()) {
                Some(v) => *sum += v,
                None if !report.skipped() => self.unknown += 1,
                None => {}
            }
        }
    }

    fn row(&self, runs: u64) -> String {
        let skipped = if self.skipped > 0 { format!(" ({} skipped)", self.skipped) } else { String::new() };
        let unknown = if self.unknown > 0 { format!(" ({} figures missing)", self.unknown) } else { String::new() };
        let seeds: Vec<String> = self.failed_seeds.iter().map(u64::to_string).collect();
        format!(
            "| {} | {}/{runs}{skipped} | {} | {} | {}{unknown} | {} |",
            self.name,
            self.passed,
            self.moves_lost,
            self.forks,
            self.games_lost,
            if seeds.is_empty() { "-".to_owned() } else { seeds.join(", ") }
        )
    }
}

/// What a scenario is given.
pub struct Ctx {
    /// The `rampart` binary.
    pub rampart: PathBuf,
    /// The `fake_llm` binary.
    pub fake_llm: PathBuf,
    /// This scenario's log directory.
    pub dir: PathBuf,
    /// `--smoke`.
    pub smoke: bool,
    duration: Option<u64>,
    games: Option<usize>,
    /// `--seed`.
    pub seed: u64,
    /// HTTP and sockets (with the admin token every server gets).
    pub api: Api,
}

impl Ctx {
    /// The scenario's fault phase in seconds: `--duration`, else its default (full or smoke).
    pub fn secs(&self, full: u64, smoke: u64) -> u64 {
        self.duration.unwrap_or(if self.smoke { smoke } else { full })
    }

    /// Games in play: `--games`, else the scenario's default.
    pub fn games(&self, full: usize, smoke: usize) -> usize {
        self.games.unwrap_or(if self.smoke { smoke } else { full })
    }

    /// The environment every server gets, plus `extra`.
    pub fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("RAMPART_ADMIN_TOKEN".to_owned(), self.api.admin_token().to_owned()),
            ("RAMPART__SERVER__WORKERS".to_owned(), "2".to_owned()),
            // Every bot plays from 127.0.0.1: the per-address abuse limits would take the
            // harness for one abusive client.
            ("RAMPART__ADMISSION__CLIENT_CREATIONS_PER_SEC".to_owned(), "100000".to_owned()),
            ("RAMPART__ADMISSION__CLIENT_CREATION_BURST".to_owned(), "100000".to_owned()),
            ("RAMPART__ADMISSION__MAX_TICKETS_PER_CLIENT".to_owned(), "1000000".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    }
}

/// Starts `n` bots, a few at a time; `spec(i)` says what bot `i` plays.
pub async fn spawn_bots(world: &Rc<World>, ctx: &Ctx, n: usize, spec: impl Fn(usize) -> Spec) {
    let mut rng = fastrand::Rng::with_seed(ctx.seed);
    for i in 0..n {
        world.spawn(spec(i), rng.u64(..));
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `cond` holds (true) or `within` passed (false), asking every 50 ms.
pub async fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sleeps until `t`.
pub async fn until(t: Instant) {
    tokio::time::sleep_until(t.into()).await;
}

/// Tells every bot to stop and waits (30 s at most) until they have.
pub async fn stop_bots(world: &Rc<World>, report: &mut Report) {
    world.stopping.set(true);
    if !wait_for(Duration::from_secs(30), || world.running() == 0).await {
        report.field("bots_not_stopped", world.running());
    }
}

/// `/health`'s overall status (None when it does not answer).
pub async fn health(api: &Api, base: &str) -> Option<serde_json::Value> {
    match api.get(&format!("{base}/health")).await {
        Ok((_, v)) if v["status"].is_string() => Some(v),
        _ => None,
    }
}

/// Files RSS at start and end and whether the process is alive and answering.
pub async fn process_figures(report: &mut Report, api: &Api, server: &mut procs::Server, rss_start: Option<u64>) {
    let rss_end = server.rss_kib();
    let alive = server.alive() && health(api, &server.url).await.is_some();
    let fmt = |v: Option<u64>| v.map_or("-".to_owned(), |k| k.to_string());
    report.field(&format!("rss_kib_{}", server.name), format!("{}->{}", fmt(rss_start), fmt(rss_end)));
    report.field(&format!("alive_{}", server.name), if alive { "yes" } else { "no" });
    report.check(
        alive,
        "alive",
        &format!("{} is not alive or does not answer /health (log {})", server.name, server.log.display()),
    );
}

#[actix_rt::main]
async fn main() {
    let o = parse();
    let root = match &o.log_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rampart-chaos-{}", std::process::id())),
    };
    let rampart = o.bin_dir.join("rampart");
    let fake_llm = o.bin_dir.join("fake_llm");
    for bin in [&rampart, &fake_llm] {
        if !bin.exists() {
            usage(&format!(
                "{} not found: build it (cargo build --release --bin rampart --bin fake_llm) or pass --bin-dir",
                bin.display()
            ));
        }
    }
    eprintln!("chaos: seed {} ({}); logs in {}", o.seed, if o.smoke { "smoke" } else { "full" }, root.display());
    let mut failed = false;
    let mut tables: Vec<RunSums> = o.scenarios.iter().map(|&name| RunSums { name, ..RunSums::default() }).collect();
    for run in 0..o.runs {
        for (n, name) in o.scenarios.iter().enumerate() {
            let dir = if o.runs > 1 { root.join(format!("{name}-{}", run + 1)) } else { root.join(name) };
            if let Err(e) = std::fs::create_dir_all(&dir) {
                usage(&format!("cannot create {}: {e}", dir.display()));
            }
            let token = format!("chaos-admin-{}", fastrand::u64(..));
            let ctx = Ctx {
                rampart: rampart.clone(),
                fake_llm: fake_llm.clone(),
                dir: dir.clone(),
                smoke: o.smoke,
                duration: o.duration,
                games: o.games,
                seed: o.seed.wrapping_add(run * 100).wrapping_add(n as u64),
                api: Api::new(&token),
            };
            eprintln!(
                "chaos: {name}: starting{}",
                if o.runs > 1 { format!(" (run {} of {})", run + 1, o.runs) } else { String::new() }
            );
            let report = match *name {
                "panic-storm" => panic_storm::run(&ctx).await,
                "redis-dies" => redis_dies::run(&ctx, true).await,
                "redis-forgets" => redis_dies::run(&ctx, false).await,
                "instance-dies" => instance_dies::run(&ctx).await,
                "memory-pressure" => memory_pressure::run(&ctx).await,
                "redis-failover" => redis_failover::run(&ctx, redis_failover::Topology::Sentinel).await,
                "cluster-failover" => redis_failover::run(&ctx, redis_failover::Topology::Cluster).await,
                "owner-paused" => owner_paused::run(&ctx).await,
                "partition" => partition::run(&ctx).await,
                _ => llm_storm::run(&ctx).await,
            };
            let mut line = report.line(o.allow_skip);
            line.push_str(&format!(" seed={}", ctx.seed));
            println!("{line}");
            tables[n].add(&report, o.allow_skip, ctx.seed);
            if report.failed(o.allow_skip) {
                failed = true;
                eprintln!("chaos: {name}: logs kept in {}", dir.display());
            } else if !o.keep_logs {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    if o.runs > 1 {
        println!();
        println!("| scenario | runs passed | moves lost | games with two owners (forks) | games lost | failed seeds |");
        println!("|---|---|---|---|---|---|");
        for t in &tables {
            println!("{}", t.row(o.runs));
        }
    }
    if !failed && !o.keep_logs && o.log_dir.is_none() {
        let _ = std::fs::remove_dir(&root);
    }
    std::process::exit(i32::from(failed));
}
