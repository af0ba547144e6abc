//! The binary's command line: `--check` validates a configuration file and exits 0, or
//! prints every problem and exits 64.

use std::process::Command;

fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

#[test]
fn the_shipped_config_checks_clean() {
    let out = rampart()
        .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/server_config.yaml"), "--check"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_bad_config_prints_every_problem_and_exits_64() {
    let dir = std::env::temp_dir().join(format!("rampart-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "server:\n  bind: nowhere\n  workers: 0\nsupervision:\n  default:\n    strategy: sometimes\nsurprise: 1\n",
    )
    .expect("write");
    let out = rampart().args(["--config", file.to_str().expect("utf8"), "--check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for path in ["server.bind", "server.workers", "supervision.default.strategy", "surprise"] {
        assert!(stderr.contains(path), "{path} missing from:\n{stderr}");
    }
    let out = rampart()
        .args(["--config", file.to_str().expect("utf8"), "--check"])
        .env("RAMPART__SERVER__WORKERS", "2")
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("server.workers"), "the env override fixed workers");
    let out = rampart().args(["--bogus"]).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
    let _ = std::fs::remove_dir_all(dir);
}
