//! `attack`: what a hostile client does to a running Rampart, measured. Each scenario is
//! bounded in time and count, and prints one summary line (`key=value`), so a figure in
//! RELIABILITY.md can be reproduced with the command beside it. Only for servers you own.
//!
//! ```text
//! attack huge-frame --addr 127.0.0.1:8080 --pid PID [--path /ws/lobby|game] [--sockets 2] [--mib 512]
//! attack abandon    --addr 127.0.0.1:8080 [--rate 10] [--secs 150]
//! attack slow-body  --addr 127.0.0.1:8080 --pid PID [--conns 1100] [--secs 60]
//! ```
//!
//! `--pid` lets it read the server's RSS and open descriptors from `/proc`.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(scenario) = args.next() else { return usage() };
    let mut opts = HashMap::new();
    while let Some(key) = args.next() {
        let Some(name) = key.strip_prefix("--") else { return usage() };
        let Some(value) = args.next() else { return usage() };
        opts.insert(name.to_owned(), value);
    }
    let addr: SocketAddr = opts.get("addr").map_or("127.0.0.1:8080", String::as_str).parse().expect("--addr IP:PORT");
    let num = |name: &str, default: u64| opts.get(name).map_or(default, |v| v.parse().expect("a number"));
    let pid = opts.get("pid").map(|p| p.parse::<u32>().expect("--pid"));
    match scenario.as_str() {
        "huge-frame" => huge_frame(
            addr,
            pid,
            opts.get("path").map_or("/ws/lobby", String::as_str),
            num("sockets", 2),
            num("mib", 512),
        ),
        "abandon" => abandon(addr, num("rate", 10), num("secs", 150)),
        "slow-body" => slow_body(addr, pid, num("conns", 1100), num("secs", 60)),
        _ => usage(),
    }
}

fn usage() {
    eprintln!("usage: attack huge-frame|abandon|slow-body --addr IP:PORT [--pid PID] [options]; see the source header");
    std::process::exit(64);
}

/// `(VmRSS KiB, open descriptors)` of a process.
fn proc_figures(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss, fds)
}

/// One HTTP request with `Connection: close` and a deadline: (status, body, elapsed).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, Value, Duration)> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    let mut text = Vec::new();
    stream.read_to_end(&mut text).ok()?;
    let text = String::from_utf8_lossy(&text);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let json = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    Some((status, json, start.elapsed()))
}

/// A WebSocket upgrade on a raw stream.
fn upgrade(addr: SocketAddr, path: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(String::from_utf8_lossy(&head).into_owned()));
    }
    Ok(stream)
}

/// A masked client frame header.
fn header(first: u8, len: u64) -> Vec<u8> {
    let mut h = vec![first];
    match len {
        n if n < 126 => h.push(0x80 | n as u8),
        n if n < 65_536 => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            h.push(0x80 | 127);
            h.extend_from_slice(&n.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]); // a zero mask: the payload goes as it is
    h
}

/// Reads frames until a close frame; answers its code, or 0 when the connection ended.
fn close_code(stream: &mut TcpStream) -> u16 {
    let mut head = [0u8; 2];
    loop {
        if stream.read_exact(&mut head).is_err() {
            return 0;
        }
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            if stream.read_exact(&mut b).is_err() {
                return 0;
            }
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            if stream.read_exact(&mut b).is_err() {
                return 0;
            }
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        if stream.read_exact(&mut payload).is_err() {
            return 0;
        }
        if head[0] & 0x0f == 0x8 {
            return if payload.len() >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 1005 };
        }
    }
}

/// Sockets that each declare a `mib` MiB text frame and stream it as fast as they can.
fn huge_frame(addr: SocketAddr, pid: Option<u32>, path: &str, sockets: u64, mib: u64) {
    let base = pid.map_or(0, |p| proc_figures(p).0);
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                peak.fetch_max(proc_figures(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    });
    let start = Instant::now();
    let workers: Vec<_> = (0..sockets)
        .map(|_| {
            // `--path game`: a game socket of a new game, joined first.
            let (path, join) = if path == "game" {
                let body = r#"{"kind":"connect4","opponent":"ai","player_name":"mallory"}"#;
                let (_, grant, _) =
                    request(addr, "POST", "/api/v1/games", body, Duration::from_secs(5)).expect("create");
                let join = format!(r#"{{"type":"join","token":{}}}"#, grant["player_token"]);
                (format!("/ws/games/{}", grant["game_id"].as_str().expect("game_id")), Some(join))
            } else {
                (path.to_owned(), None)
            };
            std::thread::spawn(move || -> (u64, u16, Duration) {
                let Ok(mut stream) = upgrade(addr, &path) else { return (0, 0, Duration::ZERO) };
                if let Some(join) = join {
                    let mut frame = header(0x81, join.len() as u64);
                    frame.extend_from_slice(join.as_bytes());
                    let _ = stream.write_all(&frame);
                }
                let mut reader = stream.try_clone().expect("clone");
                let closed = Arc::new(AtomicBool::new(false));
                let seen = closed.clone();
                let opened = Instant::now();
                let read = std::thread::spawn(move || {
                    let code = close_code(&mut reader);
                    seen.store(true, Ordering::Release);
                    (code, opened.elapsed())
                });
                let mut sent = 0u64;
                let total = mib << 20;
                let chunk = vec![b'a'; 64 << 10];
                if stream.write_all(&header(0x81, total)).is_ok() {
                    while sent < total && !closed.load(Ordering::Acquire) {
                        if stream.write_all(&chunk).is_err() {
                            break;
                        }
                        sent += chunk.len() as u64;
                    }
                }
                let (code, after) = read.join().unwrap_or((0, Duration::ZERO));
                (sent, code, after)
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap_or((0, 0, Duration::ZERO))).collect();
    done.store(true, Ordering::Release);
    if let Some(s) = sampler {
        let _ = s.join();
    }
    let sent_max = results.iter().map(|r| r.0).max().unwrap_or(0);
    let codes: Vec<String> = results.iter().map(|r| r.1.to_string()).collect();
    let close_ms = results.iter().map(|r| r.2.as_millis()).max().unwrap_or(0);
    println!(
        "huge-frame path={path} sockets={sockets} declared_mib={mib} rss_before_mb={:.1} rss_peak_mb={:.1} max_bytes_written={sent_max} close_codes={} slowest_close_ms={close_ms} elapsed_ms={}",
        base as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        codes.join(","),
        start.elapsed().as_millis()
    );
}

/// Creates games at `rate` a second and never joins them; samples `/health` every 5 s.
fn abandon(addr: SocketAddr, rate: u64, secs: u64) {
    let body = r#"{"kind":"connect4","opponent":"ai","player_name":"ghost"}"#;
    let (mut created, mut busy, mut failed) = (0u64, 0u64, 0u64);
    let (mut max_active, mut first_busy_s) = (0i64, None);
    let start = Instant::now();
    let mut next_sample = Duration::ZERO;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut next = start;
    while start.elapsed() < Duration::from_secs(secs) {
        match request(addr, "POST", "/api/v1/games", body, Duration::from_secs(5)) {
            Some((201, _, _)) => created += 1,
            Some((503, _, _)) => {
                busy += 1;
                first_busy_s.get_or_insert(start.elapsed().as_secs());
            }
            _ => failed += 1,
        }
        if start.elapsed() >= next_sample {
            next_sample += Duration::from_secs(5);
            if let Some((_, health, _)) = request(addr, "GET", "/health", "", Duration::from_secs(5)) {
                let active = health["checks"]["games"]["active"].as_i64().unwrap_or(0);
                max_active = max_active.max(active);
                eprintln!(
                    "t={}s active={active} hosted={} status={}",
                    start.elapsed().as_secs(),
                    health["checks"]["games"]["hosted"],
                    health["status"]
                );
            }
        }
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait); // pacing the attack, not synchronising
        }
    }
    let (_, health, _) = request(addr, "GET", "/health", "", Duration::from_secs(5)).unwrap_or_default();
    println!(
        "abandon rate_per_sec={rate} secs={secs} created={created} server_busy={busy} other_failures={failed} first_busy_at_s={} max_active={max_active} final_active={} final_status={}",
        first_busy_s.map_or_else(|| "never".to_owned(), |s| s.to_string()),
        health["checks"]["games"]["active"],
        health["status"]
    );
}

/// `conns` connections each sending a POST body one byte a second; samples the server's
/// descriptors and the latency of `/health` every second.
fn slow_body(addr: SocketAddr, pid: Option<u32>, conns: u64, secs: u64) {
    let head =
        "POST /api/v1/games HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    let mut streams: Vec<Option<TcpStream>> = Vec::new();
    let mut refused_connect = 0;
    for _ in 0..conns {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.write_all(head.as_bytes());
                let _ = s.set_nonblocking(true);
                streams.push(Some(s));
            }
            Err(_) => refused_connect += 1,
        }
    }
    let (mut answered, mut timeouts_408, mut closed) = (0u64, 0u64, 0u64);
    let (mut max_fds, mut health_fail, mut health_worst_ms) = (0usize, 0u64, 0u128);
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while start.elapsed() < Duration::from_secs(secs) {
        for slot in streams.iter_mut() {
            let Some(stream) = slot.as_mut() else { continue };
            let _ = stream.write_all(b" ");
            match stream.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    *slot = None;
                }
                Ok(n) => {
                    answered += 1;
                    if buf[..n].starts_with(b"HTTP/1.1 408") {
                        timeouts_408 += 1;
                    }
                    closed += 1;
                    *slot = None;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    closed += 1;
                    *slot = None;
                }
            }
        }
        if let Some(pid) = pid {
            max_fds = max_fds.max(proc_figures(pid).1);
        }
        match request(addr, "GET", "/health", "", Duration::from_secs(2)) {
            Some((_, _, took)) => health_worst_ms = health_worst_ms.max(took.as_millis()),
            None => health_fail += 1,
        }
        std::thread::sleep(Duration::from_secs(1)); // the attack's pace: a byte a second
    }
    let still_open = streams.iter().filter(|s| s.is_some()).count();
    println!(
        "slow-body conns={conns} secs={secs} connect_refused={refused_connect} answered={answered} answered_408={timeouts_408} closed_by_server={closed} still_open={still_open} server_max_fds={max_fds} health_failures={health_fail} health_worst_ms={health_worst_ms}"
    );
}
