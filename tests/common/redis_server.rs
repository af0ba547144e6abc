//! A private `redis-server` for one test: started on a free loopback port in its own
//! temporary directory, with no persistence (or, from `start_persistent`, an append-only
//! file fsynced on every write), and killed when the handle is dropped. It is never a
//! server someone else left running, and no two tests share one. `stop` and `restart`
//! (same port) let a test kill Redis and bring it back: empty, or with what it persisted.
//! `start_debuggable` allows the `DEBUG` command (Redis 7 refuses it by default), so a test
//! can stall the server with `DEBUG SLEEP`. `start_replica` starts a replica of another
//! test server, and [`Sentinel`] a `redis-server --sentinel` watching one (a primary, its
//! replica and three Sentinels make the set a failover needs). [`RedisCluster`] is six such
//! servers with `--cluster-enabled yes` joined by `redis-cli --cluster create` into a Redis
//! Cluster of three primaries and three replicas.
#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rampart::config::{Config, Secret, StorageBackend};

use super::{eventually_blocking, test_config};

/// A test server's config on `redis` under `prefix`, with `admin` as its admin token, tuned
/// for Redis's faults: short command timeouts and reconnects, a `database` breaker that
/// probes again after 0.2 s, health sampled every 50 ms with no dwell.
pub fn redis_config(redis: &RedisServer, prefix: &str, admin: &str) -> Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(admin.to_owned()));
    c.storage.backend = StorageBackend::Redis;
    c.redis.url = redis.url();
    c.redis.key_prefix = prefix.to_owned();
    c.redis.command_timeout_ms = 1000;
    c.redis.reconnect_max_delay_ms = 100;
    c.health.interval_ms = 50;
    c.health.dwell_ms = 0;
    let db = c.circuit_breakers.breakers.get_mut("database").expect("database breaker");
    db.open_secs = 0.2;
    db.open_max_secs = 0.2;
    db.jitter = 0.0;
    c
}

/// How long a fresh server may take to answer PING.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// The server binary: `RAMPART_REDIS_SERVER` or `redis-server` on the PATH.
fn binary() -> String {
    std::env::var("RAMPART_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    appendonly: bool,
    /// `--enable-debug-command yes`.
    debug: bool,
    /// `--replicaof 127.0.0.1 PORT`.
    replica_of: Option<u16>,
    /// `--cluster-enabled yes` with this cluster bus port (`--cluster-port`: the default,
    /// the port plus 10000, may be taken or past 65535).
    bus_port: Option<u16>,
}

impl RedisServer {
    /// Starts a private server that keeps nothing on disk and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::launch_new(false)
    }

    /// Starts a private server with an append-only file (`appendfsync always`): a restart
    /// brings back everything it acknowledged.
    pub fn start_persistent() -> RedisServer {
        RedisServer::launch_new(true)
    }

    /// Like [`RedisServer::start`], with the `DEBUG` command allowed (`DEBUG SLEEP n`
    /// stalls the whole server for n seconds: it answers nobody, then runs what queued up).
    pub fn start_debuggable() -> RedisServer {
        RedisServer::launch_with(false, true)
    }

    /// Starts a replica of `primary` (no persistence) and waits until it answers PING (not
    /// until it is in sync: see [`RedisServer::in_sync`]).
    pub fn start_replica(primary: &RedisServer) -> RedisServer {
        RedisServer::launch_as(false, false, Some(primary.port))
    }

    fn launch_new(appendonly: bool) -> RedisServer {
        RedisServer::launch_with(appendonly, false)
    }

    fn launch_with(appendonly: bool, debug: bool) -> RedisServer {
        RedisServer::launch_as(appendonly, debug, None)
    }

    fn launch_as(appendonly: bool, debug: bool, replica_of: Option<u16>) -> RedisServer {
        RedisServer::launch_node(appendonly, debug, replica_of, false)
    }

    /// Starts a node of a Redis Cluster (`--cluster-enabled yes`, its bus on another free
    /// port, `cluster-node-timeout` [`RedisCluster::NODE_TIMEOUT_MS`],
    /// `cluster-require-full-coverage no` as OPERATIONS.md recommends), not yet in one.
    fn start_cluster_node() -> RedisServer {
        RedisServer::launch_node(false, false, None, true)
    }

    fn launch_node(appendonly: bool, debug: bool, replica_of: Option<u16>, cluster: bool) -> RedisServer {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rampart-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the redis test directory");
        // A port freed by the OS can be taken by another test before redis binds it: retry
        // with a new one when the server exits at start-up.
        for _ in 0..5 {
            let port = free_port();
            let bus_port = cluster.then(free_port);
            let mut server =
                RedisServer { port, dir: dir.clone(), child: None, appendonly, debug, replica_of, bus_port };
            if server.launch() {
                return server;
            }
            server.dir = PathBuf::new(); // keep the directory for the next attempt
        }
        panic!("redis-server did not start on a free port after 5 attempts; see {}", dir.join("redis.log").display());
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty, unless it persists).
    pub fn restart(&mut self) {
        self.stop();
        // The port is ours until the deadline; a start can only fail if it is not free yet.
        let what = format!("redis-server restarts on port {}", self.port);
        eventually_blocking(READY_DEADLINE, &what, || {
            self.launch().then_some(()).ok_or_else(|| "it exited".to_owned())
        });
    }

    /// Spawns the server and waits for PING. False when it exited at start-up.
    fn launch(&mut self) -> bool {
        let log = self.dir.join("redis.log");
        let spawned = Command::new(binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }, "--appendfsync", "always"])
            .args(if self.debug { &["--enable-debug-command", "yes"][..] } else { &[] })
            .args(
                self.replica_of
                    .map(|p| vec!["--replicaof".to_owned(), "127.0.0.1".to_owned(), p.to_string()])
                    .unwrap_or_default(),
            )
            .args(
                self.bus_port
                    .map(|bus| {
                        let timeout = RedisCluster::NODE_TIMEOUT_MS.to_string();
                        ["--cluster-enabled", "yes", "--cluster-port", &bus.to_string()]
                            .into_iter()
                            .chain(["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", &timeout])
                            .chain(["--cluster-require-full-coverage", "no"])
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            )
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed (looked for `{}`): the Redis tests need it. `make test` installs it \
                 (Debian package redis-server); or run `sudo apt-get install redis-server`, or set \
                 RAMPART_REDIS_SERVER to its path",
                binary()
            ),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        self.child = Some(child);
        let what = format!("redis-server on port {} answers PING", self.port);
        eventually_blocking(READY_DEADLINE, &what, || {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return Ok(false);
                }
            }
            if !ping(self.port) {
                return Err("no answer yet".to_owned());
            }
            // Make sure the server answering is ours, not one that took the port first.
            let ours = self.child.as_ref().map(Child::id);
            if server_pid(self.port) == ours {
                return Ok(true);
            }
            self.stop();
            Ok(false)
        })
    }
}

impl RedisServer {
    /// The first word of `ROLE` (`master`, `slave`), or `None` when it does not answer.
    pub fn role(&self) -> Option<String> {
        let reply: redis::Value = command(self.port, &["ROLE"])?;
        let redis::Value::Array(items) = reply else { return None };
        redis::from_redis_value(items.first()?.clone()).ok()
    }

    /// Whether this replica's link to its primary is up (`master_link_status:up`).
    pub fn in_sync(&self) -> bool {
        let info: Option<String> = command(self.port, &["INFO", "replication"]);
        info.is_some_and(|i| i.contains("master_link_status:up"))
    }
}

/// One command on a fresh connection to the Redis (or Sentinel) on `port`, blocking for at
/// most half a second; `None` when it does not answer or answers an error.
pub fn command<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut con = client.get_connection_with_timeout(Duration::from_millis(500)).ok()?;
    con.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut con).ok()
}

/// [`command`] for async code (a test whose servers run on its thread must not block it):
/// one command on a fresh connection, within half a second.
pub async fn command_async<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let connect = client.get_multiplexed_async_connection();
    let mut con = tokio::time::timeout(Duration::from_millis(500), connect).await.ok()?.ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    tokio::time::timeout(Duration::from_millis(500), cmd.query_async(&mut con)).await.ok()?.ok()
}

/// A private Redis Sentinel (`redis-server FILE --sentinel`) on a free loopback port,
/// watching a test primary under [`Sentinel::MASTER_NAME`] with quorum 2, a node down after
/// 1 s (`down-after-milliseconds 1000`) and `failover-timeout 3000`; killed when dropped.
pub struct Sentinel {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Sentinel {
    /// The name it monitors the primary under (Rampart's default `redis.master_name`).
    pub const MASTER_NAME: &'static str = "mymaster";

    /// Starts a Sentinel watching the primary on `primary`, and waits until it answers.
    pub fn start(primary: u16) -> Sentinel {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rampart-sentinel-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the sentinel test directory");
        for _ in 0..5 {
            let port = free_port();
            let d = dir.display();
            let name = Sentinel::MASTER_NAME;
            let conf = format!(
                "port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/sentinel.log\n\
                 sentinel monitor {name} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 3000\n\
                 sentinel parallel-syncs {name} 1\n"
            );
            let file = dir.join("sentinel.conf");
            std::fs::write(&file, conf).expect("write sentinel.conf");
            let child = Command::new(binary())
                .arg(&file)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server --sentinel");
            let mut sentinel = Sentinel { port, dir: dir.clone(), child: Some(child) };
            let what = format!("redis-sentinel on port {port} answers PING");
            let started = eventually_blocking(READY_DEADLINE, &what, || {
                if let Some(Ok(Some(_))) = sentinel.child.as_mut().map(Child::try_wait) {
                    return Ok(false);
                }
                ping(port).then_some(true).ok_or_else(|| "no answer yet".to_owned())
            });
            if started {
                return sentinel;
            }
            sentinel.child = None;
            sentinel.dir = PathBuf::new(); // keep the directory for the next attempt
        }
        panic!(
            "redis-sentinel did not start on a free port after 5 attempts; see {}",
            dir.join("sentinel.log").display()
        );
    }

    /// `127.0.0.1:PORT`, as `redis.sentinels` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The primary's port as this Sentinel names it now.
    pub fn primary(&self) -> Option<u16> {
        let reply: Option<(String, String)> =
            command(self.port, &["SENTINEL", "get-master-addr-by-name", Sentinel::MASTER_NAME])?;
        reply?.1.parse().ok()
    }

    /// A field of `SENTINEL master NAME` (`num-slaves`, `num-other-sentinels` …).
    pub fn master_field(&self, field: &str) -> Option<String> {
        let reply: std::collections::HashMap<String, String> =
            command(self.port, &["SENTINEL", "master", Sentinel::MASTER_NAME])?;
        reply.get(field).cloned()
    }

    /// Starts a planned switchover (`SENTINEL FAILOVER`): the replica is promoted and the
    /// primary demoted, both alive.
    pub fn failover(&self) {
        let ok: Option<String> = command(self.port, &["SENTINEL", "FAILOVER", Sentinel::MASTER_NAME]);
        assert_eq!(ok.as_deref(), Some("OK"), "SENTINEL FAILOVER");
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A Redis Cluster for one test: six private [`RedisServer`] nodes with
/// `--cluster-enabled yes` (`cluster-node-timeout` [`RedisCluster::NODE_TIMEOUT_MS`]), joined
/// by `redis-cli --cluster create … --cluster-replicas 1` into three primaries, each with a
/// replica. A node stopped (SIGKILL) and restarted keeps its `nodes.conf`, so it rejoins the
/// cluster: a primary whose replica was promoted meanwhile comes back as its replica.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    /// `master` or `slave` (without `myself`), and whether it is flagged `fail`.
    pub primary: bool,
    pub failed: bool,
    /// The id of its primary (a replica's), `-` for a primary.
    pub primary_id: String,
    /// Its slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// How long a node may be unreachable before the others flag it (and its replica is
    /// promoted about a second or two later): `cluster-node-timeout`.
    pub const NODE_TIMEOUT_MS: u64 = 1000;

    /// Starts six nodes, creates the cluster, and waits (blocking: call it before a server
    /// runs in the thread) until every node says `cluster_state:ok` and knows the six, and
    /// every replica is in sync with its primary.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..6).map(|_| RedisServer::start_cluster_node()).collect();
        let cli = std::env::var("RAMPART_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned());
        let output = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("could not run `{cli} --cluster create` (Debian package redis-tools): {e}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        eventually_blocking(Duration::from_secs(20), "the cluster is formed and every replica in sync", || {
            let nodes = || command::<String>(cluster.nodes[0].port, &["CLUSTER", "NODES"]);
            cluster.formed().then_some(()).ok_or_else(|| format!("CLUSTER NODES: {:?}", nodes()))
        });
        cluster
    }

    /// Whether every node says `cluster_state:ok` and sees six nodes, three primaries each
    /// with a replica in sync.
    fn formed(&self) -> bool {
        self.nodes.iter().all(|n| {
            let info: Option<String> = command(n.port, &["CLUSTER", "INFO"]);
            let ok = info.is_some_and(|i| i.contains("cluster_state:ok") && i.contains("cluster_known_nodes:6"));
            let text: Option<String> = command(n.port, &["CLUSTER", "NODES"]);
            let view = parse_cluster_nodes(&text.unwrap_or_default());
            let primaries = view.iter().filter(|v| v.primary && !v.slots.is_empty()).count();
            ok && primaries == 3 && view.len() == 6 && (n.role().as_deref() != Some("slave") || n.in_sync())
        })
    }

    /// `host:port` of every node, as `redis.cluster_nodes` takes them.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect()
    }

    /// The node on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes.iter_mut().find(|n| n.port == port).expect("a node of the cluster")
    }

    /// `CLUSTER NODES` as the node on `port` sees the cluster (`None`: it does not answer).
    pub async fn view(&self, port: u16) -> Option<Vec<ClusterNode>> {
        let text: String = command_async(port, &["CLUSTER", "NODES"]).await?;
        Some(parse_cluster_nodes(&text))
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`, asked of the first node that answers).
    pub async fn slot(&self, key: &str) -> u16 {
        for n in &self.nodes {
            if let Some(slot) = command_async::<i64>(n.port, &["CLUSTER", "KEYSLOT", key]).await {
                return slot as u16;
            }
        }
        panic!("no node answers CLUSTER KEYSLOT");
    }

    /// The port of the primary serving `slot`, not flagged as failed, as every node that
    /// answers (but `except`) sees it; `None` while they do not agree on one.
    pub async fn primary_of(&self, slot: u16, except: Option<u16>) -> Option<u16> {
        let mut seen = None;
        for n in self.nodes.iter().filter(|n| Some(n.port) != except) {
            let Some(view) = self.view(n.port).await else { continue };
            let serving = view
                .iter()
                .find(|v| v.primary && !v.failed && v.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))?
                .port;
            if seen.is_some_and(|p| p != serving) {
                return None;
            }
            seen = Some(serving);
        }
        seen
    }
}

/// The lines of `CLUSTER NODES`.
fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines().filter_map(parse_cluster_node).collect()
}

/// A line of `CLUSTER NODES`: `id ip:port@bus[,host] flags primary ping pong epoch link slots…`.
fn parse_cluster_node(line: &str) -> Option<ClusterNode> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = fields.get(1)?.split('@').next()?.rsplit_once(':')?.1.parse().ok()?;
    let flags: Vec<&str> = fields.get(2)?.split(',').collect();
    let slots = fields
        .iter()
        .skip(8)
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|a| (a, a)),
        })
        .collect();
    Some(ClusterNode {
        id: fields.first()?.to_string(),
        port,
        primary: flags.contains(&"master"),
        failed: flags.contains(&"fail"),
        primary_id: fields.get(3)?.to_string(),
        slots,
    })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// The process id of the Redis on `port` (from `INFO server`).
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("process_id:") || !text[text.find("process_id:")?..].contains("\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let line = &text[text.find("process_id:")? + "process_id:".len()..];
    line[..line.find("\r\n")?].trim().parse().ok()
}

/// True when a Redis on `port` answers PING with PONG.
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
