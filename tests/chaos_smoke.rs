//! The chaos harness (`src/bin/chaos/`) in its smoke mode: one test per scenario runs the
//! `chaos` binary against the debug `rampart` and `fake_llm` binaries cargo built beside
//! it, and asserts that it exits 0 and prints its one PASS line. A smoke run is designed to
//! take about 30 s; one that has not ended after its budget plus slack (process start-up on
//! a loaded 2-core machine) is killed with its whole process group and fails. The runs take
//! turns (each starts real servers, Redis and stress-ng of its own), so the tests do not
//! compete for the two cores. Needs `redis-server`, `haproxy`, `stress-ng` and `ip` (and
//! root for the memory cgroup and the network namespace); `CHAOS_ALLOW_SKIP=1` lets the
//! memory and partition scenarios skip where cgroups, stress-ng or namespaces are missing,
//! instead of failing.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One smoke run at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What a smoke run is designed to take.
const BUDGET: Duration = Duration::from_secs(30);
/// Start-up and teardown of its processes on a busy machine.
const SLACK: Duration = Duration::from_secs(60);

fn smoke(scenario: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rampart")).parent().expect("the binaries' directory");
    assert!(Path::new(env!("CARGO_BIN_EXE_fake_llm")).parent() == Some(bin_dir), "fake_llm beside rampart");
    let mut command = Command::new(env!("CARGO_BIN_EXE_chaos"));
    command.args(["--scenario", scenario, "--smoke", "--bin-dir"]).arg(bin_dir);
    if std::env::var("CHAOS_ALLOW_SKIP").is_ok_and(|v| v == "1") {
        command.arg("--allow-skip");
    }
    // Its own process group: on a timeout the harness and every server it started go at once.
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("run chaos");
    let pid = child.id();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chaos") {
            break Some(status);
        }
        if started.elapsed() > BUDGET + SLACK {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    let tail: Vec<&str> = err.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let context = format!("stdout:\n{out}\nstderr (last lines):\n{}", tail.join("\n"));
    let Some(status) = status else {
        panic!("chaos {scenario} --smoke did not end within {:?}; killed\n{context}", BUDGET + SLACK);
    };
    eprintln!("chaos {scenario} --smoke took {:.1} s: {}", started.elapsed().as_secs_f64(), out.trim());
    assert!(status.success(), "chaos {scenario} --smoke exited with {status}\n{context}");
    let line = out.lines().find(|l| l.starts_with(&format!("chaos {scenario} "))).unwrap_or_default();
    assert!(
        line.starts_with(&format!("chaos {scenario} PASS")) || line.starts_with(&format!("chaos {scenario} SKIP")),
        "one summary line, PASS\n{context}"
    );
}

#[test]
fn panic_storm_smoke() {
    smoke("panic-storm");
}

#[test]
fn redis_dies_smoke() {
    smoke("redis-dies");
}

#[test]
fn redis_forgets_smoke() {
    smoke("redis-forgets");
}

#[test]
fn instance_dies_smoke() {
    smoke("instance-dies");
}

#[test]
fn memory_pressure_smoke() {
    smoke("memory-pressure");
}

#[test]
fn llm_storm_smoke() {
    smoke("llm-storm");
}

/// A Redis primary killed under Sentinel and HAProxy (needs `haproxy`), and an instance
/// killed at the promotion: no move a player was shown is lost (docs/DESIGN.md D18), one
/// owner per game, every game resumes, the killed instance starts again.
#[test]
fn redis_failover_smoke() {
    smoke("redis-failover");
}

/// A primary of a Redis Cluster killed (three primaries, three replicas) and an instance
/// killed at the promotion: no move a player was shown is lost, one owner per game, every
/// game resumes, the killed instance starts again.
#[test]
fn cluster_failover_smoke() {
    smoke("cluster-failover");
}

/// An owner frozen past its lease, then the instance that took its games killed: the woken
/// owner gives up what was taken (docs/DESIGN.md D17), no board forks, no move shown is lost.
#[test]
fn owner_paused_smoke() {
    smoke("owner-paused");
}

/// One instance cut off from Redis in its own network namespace while its players stay
/// connected (needs root for `ip netns`; `CHAOS_ALLOW_SKIP=1` lets it skip elsewhere): its
/// players are told the game paused, one owner, nothing shown lost, durability back within
/// a second of the heal.
#[test]
fn partition_smoke() {
    smoke("partition");
}
