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
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Still a bad file (the other problems are reported), but workers is no longer one of them.
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("server.bind"), "{stderr}");
    assert!(!stderr.contains("server.workers"), "the env override fixed workers: {stderr}");
    let out = rampart().args(["--bogus"]).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
    let _ = std::fs::remove_dir_all(dir);
}

/// The first `n` lines the server logs within `secs` (it is killed afterwards, and must
/// still be running then: a server that died logged nothing for another reason).
fn first_log_lines(env: &[(&str, &str)], n: usize, secs: u64) -> Vec<String> {
    use std::io::BufRead as _;
    let mut child = rampart()
        .env("RAMPART_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut lines = Vec::new();
    while lines.len() < n {
        match rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let exited = child.try_wait().expect("the server's status");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "the server exited by itself after logging {lines:?}");
    lines
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal_and_can_be_json() {
    let plain = first_log_lines(&[], 2, 10);
    assert_eq!(plain.len(), 2);
    assert!(plain.iter().all(|l| !l.contains('\u{1b}')), "{plain:?}");
    assert!(plain[0].contains("INFO"), "{plain:?}");
    let json = first_log_lines(&[("RAMPART_LOG_FORMAT", "json")], 2, 10);
    assert_eq!(json.len(), 2, "{json:?}");
    for line in &json {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v["level"], "INFO");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    // RUST_LOG is honoured when RAMPART_LOG is not set: a start logs nothing at `warn`
    // (its info lines come within milliseconds).
    let plain = first_log_lines(&[("RUST_LOG", "warn")], 1, 1);
    assert!(plain.is_empty(), "{plain:?}");
}
