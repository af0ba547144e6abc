//! The real processes a chaos scenario runs and breaks: `rampart` instances (on the host's
//! loopback, or in a network namespace: netns.rs), a private `redis-server` (optionally with
//! an append-only file, restartable on its port, listening on extra addresses), the
//! bundled `fake_llm`, Debian's `stress-ng`, and a memory cgroup to put them in. Every
//! child is started by this module, killed by its own pid (SIGKILL, SIGSTOP and SIGCONT
//! go through `kill PID`) and reaped when its handle drops; its output goes to a log file
//! in the run's directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::Api;

/// A free loopback port (the OS's choice; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(0, |a| a.port())
}

/// `VmRSS` of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Sends `signal` (`-KILL`, `-STOP`, `-CONT`, `-TERM`) to one process we started.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill").args([signal, &pid.to_string()]).status().is_ok_and(|s| s.success())
}

/// Opens (appending) a log file for a child's output.
fn log_file(path: &Path) -> std::io::Result<(Stdio, Stdio)> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// A command that joins `cgroup` (its `cgroup.procs` file) before it becomes `program`:
/// `sh -c 'echo $$ > PROCS && exec "$@"'`, so every byte it allocates is charged there.
fn command_in(program: &Path, cgroup: Option<&Path>) -> Command {
    match cgroup {
        None => Command::new(program),
        Some(procs) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg("echo $$ > \"$0\" && exec \"$@\"").arg(procs).arg(program);
            c
        }
    }
}

/// One `rampart` process.
pub struct Server {
    /// `chaos-1`…: its cluster instance id and log name.
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    bin: PathBuf,
    env: Vec<(String, String)>,
    cgroup: Option<PathBuf>,
    /// The network namespace it runs in (`ip netns exec`), if not the host's.
    netns: Option<String>,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
    child: Option<Child>,
    pid: u32,
}

impl Server {
    /// Starts `bin` on a free port with `env` (plus `RAMPART_BIND`) and waits until `/health`
    /// answers (200 or 503: an overloaded server is up). Retries with a new port when the
    /// process exits at start (a port taken meanwhile).
    pub async fn start(
        api: &Api,
        bin: &Path,
        name: &str,
        env: &[(String, String)],
        dir: &Path,
        cgroup: Option<&Path>,
    ) -> Result<Server, String> {
        Server::start_at(api, bin, name, env, dir, cgroup, None).await
    }

    /// Starts `bin` inside the network namespace `netns` (`ip netns exec`, which execs it:
    /// the pid is rampart's), listening on `ip` there (reached through the namespace's
    /// link), as [`Server::start`] does.
    pub async fn start_in_netns(
        api: &Api,
        bin: &Path,
        name: &str,
        env: &[(String, String)],
        dir: &Path,
        netns: &str,
        ip: Ipv4Addr,
    ) -> Result<Server, String> {
        Server::start_at(api, bin, name, env, dir, None, Some((netns, ip))).await
    }

    async fn start_at(
        api: &Api,
        bin: &Path,
        name: &str,
        env: &[(String, String)],
        dir: &Path,
        cgroup: Option<&Path>,
        netns: Option<(&str, Ipv4Addr)>,
    ) -> Result<Server, String> {
        let log = dir.join(format!("{name}.log"));
        let mut last = String::new();
        for _ in 0..5 {
            let ip = netns.map_or(Ipv4Addr::LOCALHOST, |(_, ip)| ip);
            let addr: SocketAddr = (ip, free_port()).into();
            let mut server = Server {
                name: name.to_owned(),
                url: format!("http://{addr}"),
                addr,
                bin: bin.to_owned(),
                env: env.to_vec(),
                cgroup: cgroup.map(Path::to_owned),
                netns: netns.map(|(ns, _)| ns.to_owned()),
                log: log.clone(),
                child: None,
                pid: 0,
            };
            match server.launch(api).await {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(format!("{name} did not start: {last} (log {})", log.display()))
    }

    async fn launch(&mut self, api: &Api) -> Result<(), String> {
        let (out, err) = log_file(&self.log).map_err(|e| format!("log file: {e}"))?;
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.bin);
                c
            }
            None => command_in(&self.bin, self.cgroup.as_deref()),
        };
        command
            .env("RAMPART_BIND", self.addr.to_string())
            .env("RAMPART_LOG", std::env::var("CHAOS_SERVER_LOG").unwrap_or_else(|_| "info".to_owned()))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command.spawn().map_err(|e| format!("could not run {}: {e}", self.bin.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.alive() {
                return Err("it exited at start".to_owned());
            }
            if let Ok((200 | 503, _)) = api.get(&format!("{}/health", self.url)).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("/health did not answer within 30 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running (reaps it if not).
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// RSS in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// SIGKILL, then reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (after [`Server::kill9`]) on its address with its environment, as a
    /// supervisor restarting a dead instance does, and waits for `/health`.
    pub async fn restart(&mut self, api: &Api) -> Result<(), String> {
        self.kill9();
        self.launch(api)
            .await
            .map_err(|e| format!("{} did not start again: {e} (log {})", self.name, self.log.display()))
    }

    /// SIGSTOP: frozen, its sockets open.
    pub fn pause(&self) -> bool {
        signal(self.pid, "-STOP")
    }

    /// SIGCONT.
    pub fn resume(&self) -> bool {
        signal(self.pid, "-CONT")
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = signal(child.id(), "-CONT"); // a stopped process must be able to die
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A private `redis-server` on a free loopback port, in the run's directory.
pub struct Redis {
    port: u16,
    dir: PathBuf,
    appendonly: bool,
    /// Addresses it listens on besides 127.0.0.1.
    also: Vec<Ipv4Addr>,
    child: Option<Child>,
}

impl Redis {
    /// Starts one; with `appendonly` every write is fsynced to its AOF (`appendfsync always`),
    /// so a SIGKILL loses nothing it acknowledged and a restart on the same port finds it.
    pub fn start(dir: &Path, appendonly: bool) -> Result<Redis, String> {
        Redis::start_on(dir, appendonly, &[])
    }

    /// Starts one that also listens on `also` (addresses of this host, e.g. a veth link's
    /// end, for an instance in a network namespace), with protected mode off so that
    /// clients there are served.
    pub fn start_on(dir: &Path, appendonly: bool, also: &[Ipv4Addr]) -> Result<Redis, String> {
        let dir = dir.join("redis");
        std::fs::create_dir_all(&dir).map_err(|e| format!("redis dir: {e}"))?;
        let mut last = String::new();
        for _ in 0..5 {
            let mut redis = Redis { port: free_port(), dir: dir.clone(), appendonly, also: also.to_vec(), child: None };
            match redis.launch() {
                Ok(()) => return Ok(redis),
                Err(e) => last = e,
            }
        }
        Err(format!("redis-server did not start: {last}"))
    }

    fn launch(&mut self) -> Result<(), String> {
        let aof = if self.appendonly { "yes" } else { "no" };
        let child = Command::new(std::env::var("RAMPART_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned()))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(self.also.iter().map(Ipv4Addr::to_string))
            .args(["--protected-mode", if self.also.is_empty() { "yes" } else { "no" }])
            .args(["--save", "", "--daemonize", "no"])
            .args(["--appendonly", aof, "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not run redis-server (Debian package redis-server): {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return Err("it exited at start (port taken?)".to_owned());
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("no PONG within 10 s".to_owned())
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis://IP:PORT/0`, for one of the addresses given to [`Redis::start_on`].
    pub fn url_on(&self, ip: Ipv4Addr) -> String {
        format!("redis://{ip}:{}/0", self.port)
    }

    /// SIGKILL: no goodbye to its clients.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (its AOF, if any, is loaded).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The instance holding `game`'s ownership lease (its `rampart:g:{ID}:lease` key,
    /// `INSTANCE EPOCH`), if any.
    pub fn lease_holder(&self, game: &str) -> Option<String> {
        let lease = self.get(&format!("rampart:g:{{{game}}}:lease"))?;
        lease.split(' ').next().map(str::to_owned)
    }

    /// `GET key` over a raw connection (None: absent, or Redis did not answer).
    pub fn get(&self, key: &str) -> Option<String> {
        let mut stream =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(300)).ok()?;
        stream.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        write!(stream, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        reader.read_line(&mut head).ok()?;
        let len: i64 = head.trim().strip_prefix('$')?.parse().ok()?;
        if len < 0 {
            return None;
        }
        let mut body = vec![0u8; len as usize];
        reader.read_exact(&mut body).ok()?;
        String::from_utf8(body).ok()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// True when a Redis on `port` answers PING.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// The bundled fake LLM (`fake_llm --listen 127.0.0.1:0`).
pub struct FakeLlm {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Option<Child>,
}

impl FakeLlm {
    /// Starts it and reads the address it prints once bound.
    pub fn start(bin: &Path, dir: &Path) -> Result<FakeLlm, String> {
        let (_, err) = log_file(&dir.join("fake_llm.log")).map_err(|e| format!("log file: {e}"))?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads to the end so the fake never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "fake_llm printed no address".to_owned())?;
        let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
        if !url.starts_with("http://") {
            let _ = child.kill();
            return Err(format!("unexpected first line from fake_llm: {line:?}"));
        }
        Ok(FakeLlm { url, child: Some(child) })
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `stress-ng` memory hogs, in a cgroup.
pub struct StressNg {
    child: Option<Child>,
}

impl StressNg {
    /// `stress-ng --vm WORKERS --vm-bytes MB --vm-keep --timeout SECS`: workers that keep
    /// `mb` MiB resident between them (stress-ng shares `--vm-bytes` among its workers) and
    /// keep touching it; stress-ng starts a worker again when the OOM killer takes one.
    pub fn start(workers: u32, mb: u64, secs: u64, dir: &Path, cgroup: Option<&Path>) -> Result<StressNg, String> {
        let (out, err) = log_file(&dir.join("stress-ng.log")).map_err(|e| format!("log file: {e}"))?;
        let child = command_in(Path::new("stress-ng"), cgroup)
            .args(["--vm", &workers.to_string(), "--vm-bytes", &format!("{mb}M"), "--vm-keep"])
            .args(["--timeout", &format!("{secs}s"), "--metrics-brief"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("could not run stress-ng (Debian package stress-ng): {e}"))?;
        Ok(StressNg { child: Some(child) })
    }

    /// Whether `stress-ng` is on the PATH.
    pub fn installed() -> bool {
        Command::new("stress-ng")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops it: SIGTERM to its parent (which ends its workers), then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = signal(child.id(), "-TERM");
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for StressNg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A memory cgroup of our own (v1 `memory` controller, or v2 `memory.max`), removed when
/// dropped (after its processes are gone).
pub struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// Creates `NAME` below this process's own memory cgroup with `limit_mb`. Answers why
    /// it cannot when cgroups are not usable here.
    pub fn create(name: &str, limit_mb: u64) -> Result<Cgroup, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let v1_root = Path::new("/sys/fs/cgroup/memory");
        let (base, v2) = if v1_root.join("memory.limit_in_bytes").exists() {
            let path = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers.split(',').any(|c| c == "memory").then(|| path.to_owned())
            });
            (v1_root.join(path.unwrap_or_default().trim_start_matches('/')), false)
        } else if std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("memory")) {
            let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/");
            (Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')), true)
        } else {
            return Err("no memory cgroup controller is mounted (neither /sys/fs/cgroup/memory nor a cgroup2 \
                        hierarchy with the memory controller)"
                .to_owned());
        };
        // Leftovers of an earlier run that was killed: empty groups can be removed.
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("rampart-chaos-") {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create the cgroup {}: {e}", dir.display()))?;
        let group = Cgroup { dir, v2 };
        let bytes = (limit_mb << 20).to_string();
        let (file, why) = if v2 { ("memory.max", "v2") } else { ("memory.limit_in_bytes", "v1") };
        std::fs::write(group.dir.join(file), &bytes)
            .map_err(|e| format!("cannot set the {why} memory limit in {}: {e}", group.dir.display()))?;
        if v2 {
            let _ = std::fs::write(group.dir.join("memory.swap.max"), "0");
        }
        Ok(group)
    }

    /// Its `cgroup.procs` (a process that writes its pid there joins it).
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// OOM kills inside it so far.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 { "memory.events" } else { "memory.oom_control" };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())))
            .unwrap_or(0)
    }

    /// Usage now in MiB.
    pub fn usage_mb(&self) -> u64 {
        let file = if self.v2 { "memory.current" } else { "memory.usage_in_bytes" };
        std::fs::read_to_string(self.dir.join(file)).ok().and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0) >> 20
    }

    /// Peak usage in MiB (v1 `max_usage_in_bytes`, v2 `memory.peak` where the kernel has it).
    pub fn peak_mb(&self) -> u64 {
        let file = if self.v2 { "memory.peak" } else { "memory.max_usage_in_bytes" };
        std::fs::read_to_string(self.dir.join(file)).ok().and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0) >> 20
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("chaos: could not remove the cgroup {}", self.dir.display());
    }
}
