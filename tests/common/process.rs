//! The real `rampart` binary as a child process, for tests that must measure the process
//! itself (its RSS) or kill it: started on a free loopback port with configuration
//! overrides in its environment, its log kept in a file, and killed when the handle drops.
#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::eventually_blocking;

/// How long the process may take to answer `/health`.
const READY_DEADLINE: Duration = Duration::from_secs(20);

pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Option<Child>,
    pub log: PathBuf,
    env: Vec<(String, String)>,
}

impl ServerProcess {
    /// Starts the binary with these environment variables (`RAMPART__SERVER__WORKERS`,
    /// `RAMPART_REDIS_URL`, …) and waits until `/health` answers.
    pub fn start(env: &[(&str, &str)]) -> ServerProcess {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("rampart-proc-{}-{n}.log", std::process::id()));
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let mut server = ServerProcess { addr, child: None, log: log.clone(), env: env.clone() };
            if server.launch() {
                return server;
            }
        }
        panic!("rampart did not start; see {}", log.display());
    }

    /// Starts the process again on the same port, with the same environment (after
    /// [`ServerProcess::kill`] or [`ServerProcess::terminate`]).
    pub fn restart(&mut self) {
        let what = format!("rampart restarts on {} (see {})", self.addr, self.log.display());
        eventually_blocking(READY_DEADLINE, &what, || {
            self.launch().then_some(()).ok_or_else(|| "it exited".to_owned())
        });
    }

    fn launch(&mut self) -> bool {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rampart"));
        command
            .env("RAMPART_BIND", self.addr.to_string())
            .env("RAMPART_LOG", std::env::var("RAMPART_TEST_LOG").unwrap_or_else(|_| "info".into()))
            // Every test client is 127.0.0.1: the per-client limits have their own tests
            // (which set these again).
            .env("RAMPART__ADMISSION__CLIENT_CREATIONS_PER_SEC", "10000")
            .env("RAMPART__ADMISSION__CLIENT_CREATION_BURST", "10000")
            .env("RAMPART__ADMISSION__MAX_TICKETS_PER_CLIENT", "1000000")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().expect("spawn rampart"));
        self.wait_ready()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// SIGKILL: no goodbye; waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (up to 20 s) for the designed shutdown to end; answers the exit
    /// status code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.signal("-TERM");
        let mut child = self.child.take().expect("running");
        eventually_blocking(READY_DEADLINE, "rampart exits after SIGTERM", || match child.try_wait() {
            Ok(Some(status)) => Ok(status.code()),
            _ => Err("still running".to_owned()),
        })
    }

    /// SIGSTOP: the process freezes (its sockets stay open).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn wait_ready(&mut self) -> bool {
        let what = format!("rampart on {} answers /health (see {})", self.addr, self.log.display());
        eventually_blocking(READY_DEADLINE, &what, || {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().ok().flatten().is_some() {
                    return Ok(false); // exited: most likely the port was taken
                }
            }
            match http_get(self.addr, "/health") {
                Some((200, _)) => Ok(true),
                Some((status, _)) => Err(format!("/health answered {status}")),
                None => Err("no answer yet".to_owned()),
            }
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// The process's resident memory in KiB, from `/proc`.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }

    /// Waits up to `within` for the process to exit by itself; answers its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        eventually_blocking(within, "rampart exits", || match child.try_wait() {
            Ok(Some(status)) => Ok(status.code()),
            _ => Err("still running".to_owned()),
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A blocking `GET` with `Connection: close`; answers (status, body) or None when the
/// server did not answer within 5 s.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// Raises this test process's open-file limit to its hard limit (tests that open
/// thousands of sockets).
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit")
}

/// A blocking JSON `POST` with `Connection: close`; answers (status, body).
pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> Option<(u16, String)> {
    post(addr, path, body, "")
}

/// [`http_post`] with the admin bearer token.
pub fn http_post_auth(addr: SocketAddr, path: &str, body: &str, token: &str) -> Option<(u16, String)> {
    post(addr, path, body, &format!("Authorization: Bearer {token}\r\n"))
}

fn post(addr: SocketAddr, path: &str, body: &str, headers: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}
