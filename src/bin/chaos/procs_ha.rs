//! Redis as operators run it for high availability, for the failover scenarios: a
//! primary and a replica (`appendonly yes`, `min-replicas-to-write 1`,
//! `min-replicas-max-lag 10`), three Sentinels watching them (quorum 2,
//! `down-after-milliseconds 1000`, `failover-timeout 3000`), and Debian's HAProxy in front
//! routing to whichever node answers `role:master` ([`RedisHa`]); or a Redis Cluster of
//! three primaries and three replicas with the same settings (`cluster-node-timeout 1000`,
//! `cluster-require-full-coverage no`),
//! joined by `redis-cli --cluster create` ([`RedisCluster`]). Every process is started here
//! on a free loopback port with its files in the run's directory, killed by its own pid and
//! reaped when its handle drops. A small RESP client asks them questions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procs::free_port;

/// The Sentinels' name for the primary.
pub const MASTER_NAME: &str = "rampart";

/// One reply, flattened: an error starts with `-`, an array's items are joined by `\n`.
fn read_reply(reader: &mut impl BufRead, out: &mut Vec<String>) -> Result<(), String> {
    let mut head = String::new();
    reader.read_line(&mut head).map_err(|e| format!("read: {e}"))?;
    let head = head.trim_end();
    let (kind, rest) = head.split_at(head.len().min(1));
    match kind {
        "+" | ":" => out.push(rest.to_owned()),
        "-" => out.push(head.to_owned()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| format!("bad bulk length {rest:?}"))?;
            if len >= 0 {
                let mut body = vec![0u8; len as usize + 2];
                reader.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
                body.truncate(len as usize);
                out.push(String::from_utf8_lossy(&body).into_owned());
            }
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| format!("bad array length {rest:?}"))?;
            for _ in 0..n.max(0) {
                read_reply(reader, out)?;
            }
        }
        _ => return Err(format!("unexpected reply {head:?}")),
    }
    Ok(())
}

/// Sends one command to `127.0.0.1:port` on a fresh connection and answers its reply,
/// flattened (an error reply is `Ok("-ERR …")`; `Err` is a connection that failed).
pub fn ask(port: u16, args: &[&str]) -> Result<String, String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_millis(500))).map_err(|e| e.to_string())?;
    let mut frame = format!("*{}\r\n", args.len());
    for a in args {
        frame.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(frame.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    read_reply(&mut BufReader::new(stream), &mut out)?;
    Ok(out.join("\n"))
}

/// A field of an `INFO` reply (`role`, `master_link_status`, `tcp_port` …).
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_owned()))
}

/// Runs `program` with its output in `log`.
fn spawn(program: &str, args: &[&str], log: &Path) -> Result<Child, String> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| format!("log: {e}"))?;
    let err = file.try_clone().map_err(|e| format!("log: {e}"))?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("could not run {program}: {e}"))
}

/// Waits (up to 10 s, blocking: start-up only) until `ready`, or the child exits.
fn wait_ready(child: &mut Child, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited at start ({status}; port taken?)"));
        }
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("not ready within 10 s".to_owned())
}

fn reap(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One Redis node (primary or replica), from a config file of its own that Sentinel may
/// rewrite; or a node of a Redis Cluster (its bus on a port of its own).
pub struct Node {
    /// `node-1`, `node-2` …
    pub name: String,
    /// Its port.
    pub port: u16,
    /// Its cluster bus port (`cluster-port`), for a node of a Redis Cluster.
    bus: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts a node (a replica of `replica_of` when given) and waits for its PONG.
    pub fn start(dir: &Path, name: &str, replica_of: Option<u16>) -> Result<Node, String> {
        Node::start_as(dir, name, replica_of, false)
    }

    /// Starts a node of a Redis Cluster (`cluster-enabled yes`, `cluster-node-timeout`
    /// [`RedisCluster::NODE_TIMEOUT_MS`]), not yet in one, and waits for its PONG.
    pub fn start_cluster(dir: &Path, name: &str) -> Result<Node, String> {
        Node::start_as(dir, name, None, true)
    }

    fn start_as(dir: &Path, name: &str, replica_of: Option<u16>, cluster: bool) -> Result<Node, String> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{name} dir: {e}"))?;
        let mut last = String::new();
        for _ in 0..5 {
            let bus = cluster.then(free_port);
            let mut node = Node { name: name.to_owned(), port: free_port(), bus, dir: dir.clone(), child: None };
            match node.launch(replica_of) {
                Ok(()) => return Ok(node),
                Err(e) => last = e,
            }
        }
        Err(format!("{name} (redis-server) did not start: {last}"))
    }

    fn launch(&mut self, replica_of: Option<u16>) -> Result<(), String> {
        let d = self.dir.display();
        let mut conf = format!(
            "port {}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/redis.log\nsave \"\"\nappendonly yes\n\
             appendfsync everysec\nmin-replicas-to-write 1\nmin-replicas-max-lag 10\n",
            self.port
        );
        if let Some(p) = replica_of {
            conf.push_str(&format!("replicaof 127.0.0.1 {p}\n"));
        }
        if let Some(bus) = self.bus {
            // nodes.conf keeps its identity and its view: started again, it rejoins the
            // cluster (as its new primary's replica when its own was promoted meanwhile).
            // The other shards go on answering while one has no primary (OPERATIONS.md).
            conf.push_str(&format!(
                "cluster-enabled yes\ncluster-port {bus}\ncluster-config-file nodes.conf\n\
                 cluster-node-timeout {}\ncluster-require-full-coverage no\n",
                RedisCluster::NODE_TIMEOUT_MS
            ));
        }
        let file = self.dir.join("redis.conf");
        std::fs::write(&file, conf).map_err(|e| format!("redis.conf: {e}"))?;
        let server = std::env::var("RAMPART_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let mut child = spawn(&server, &[&file.to_string_lossy()], &self.dir.join("stdout.log"))?;
        let port = self.port;
        let ready = wait_ready(&mut child, || ask(port, &["PING"]).is_ok_and(|r| r == "PONG"));
        self.child = Some(child);
        if ready.is_err() {
            reap(&mut self.child);
        }
        ready
    }

    /// SIGKILL: no goodbye to its clients, replicas or Sentinels.
    pub fn kill9(&mut self) {
        reap(&mut self.child);
    }

    /// Starts it again on its port from its append-only file, as a replica of `primary`
    /// (what a supervisor that asks the Sentinels for the primary before starting a node
    /// does: a node that came back never answers `role:master` beside the real one). A
    /// cluster node is started as it was (`primary` None): the cluster makes it a replica.
    pub fn restart_as_replica(&mut self, primary: Option<u16>) -> Result<(), String> {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch(primary) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `INFO replication` (None: it does not answer).
    pub fn replication(&self) -> Option<String> {
        ask(self.port, &["INFO", "replication"]).ok()
    }

    /// Whether it is a replica of the node on `primary` with its link up.
    pub fn replica_in_sync_of(&self, primary: u16) -> bool {
        let info = self.replication().unwrap_or_default();
        info_field(&info, "role").as_deref() == Some("slave")
            && info_field(&info, "master_port").and_then(|p| p.parse().ok()) == Some(primary)
            && info_field(&info, "master_link_status").as_deref() == Some("up")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One Sentinel (`redis-server FILE --sentinel`).
pub struct Sentinel {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl Sentinel {
    /// Starts Sentinel `n` watching the primary on `primary`.
    pub fn start(dir: &Path, n: usize, primary: u16) -> Result<Sentinel, String> {
        let dir = dir.join(format!("sentinel-{n}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("sentinel dir: {e}"))?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let d = dir.display();
            let conf = format!(
                "port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/sentinel.log\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n"
            );
            let file = dir.join("sentinel.conf");
            std::fs::write(&file, conf).map_err(|e| format!("sentinel.conf: {e}"))?;
            let server = std::env::var("RAMPART_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
            let mut child = spawn(&server, &[&file.to_string_lossy(), "--sentinel"], &dir.join("stdout.log"))?;
            match wait_ready(&mut child, || ask(port, &["PING"]).is_ok_and(|r| r == "PONG")) {
                Ok(()) => return Ok(Sentinel { port, child: Some(child) }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        Err(format!("sentinel {n} did not start: {last}"))
    }

    /// The primary's port as this Sentinel knows it.
    pub fn primary(&self) -> Option<u16> {
        let reply = ask(self.port, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).ok()?;
        reply.lines().nth(1)?.parse().ok()
    }

    /// A field of `SENTINEL master NAME` (`num-slaves`, `num-other-sentinels` …).
    pub fn master_field(&self, field: &str) -> Option<String> {
        let reply = ask(self.port, &["SENTINEL", "master", MASTER_NAME]).ok()?;
        let items: Vec<&str> = reply.lines().collect();
        items.chunks(2).find(|kv| kv[0] == field).and_then(|kv| kv.get(1)).map(|v| (*v).to_owned())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// Debian's HAProxy in TCP mode before the nodes, each checked every 500 ms for
/// `role:master`; a server marked down has its sessions shut.
pub struct HaProxy {
    /// The port Rampart connects to.
    pub port: u16,
    socket: PathBuf,
    child: Option<Child>,
}

impl HaProxy {
    /// Whether `haproxy` is on the PATH.
    pub fn installed() -> bool {
        Command::new("haproxy")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts it before `nodes` (name, port).
    pub fn start(dir: &Path, nodes: &[(&str, u16)]) -> Result<HaProxy, String> {
        let dir = dir.join("haproxy");
        std::fs::create_dir_all(&dir).map_err(|e| format!("haproxy dir: {e}"))?;
        let socket = dir.join("admin.sock");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut conf = format!(
                "global\n  log stdout format iso local0 info\n  stats socket {} mode 600 level admin\n\
                 defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  timeout client 1h\n  timeout server 1h\n\
                 frontend redis\n  bind 127.0.0.1:{port}\n  default_backend redis\n\
                 backend redis\n  option tcp-check\n  tcp-check connect\n  tcp-check send PING\\r\\n\n\
                 \x20 tcp-check expect string +PONG\n  tcp-check send info\\ replication\\r\\n\n\
                 \x20 tcp-check expect string role:master\n  tcp-check send QUIT\\r\\n\n  tcp-check expect string +OK\n",
                socket.display()
            );
            for (name, p) in nodes {
                conf.push_str(&format!(
                    "  server {name} 127.0.0.1:{p} check inter 500ms on-marked-down shutdown-sessions\n"
                ));
            }
            let file = dir.join("haproxy.cfg");
            std::fs::write(&file, conf).map_err(|e| format!("haproxy.cfg: {e}"))?;
            let mut child = spawn("haproxy", &["-db", "-f", &file.to_string_lossy()], &dir.join("haproxy.log"))?;
            let sock = socket.clone();
            match wait_ready(&mut child, || UnixStream::connect(&sock).is_ok()) {
                Ok(()) => return Ok(HaProxy { port, socket, child: Some(child) }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        Err(format!("haproxy did not start: {last} (Debian package haproxy)"))
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The servers HAProxy holds up now (from `show stat` on its admin socket).
    pub fn up(&self) -> Vec<String> {
        let Ok(mut s) = UnixStream::connect(&self.socket) else { return Vec::new() };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"show stat\n").is_err() {
            return Vec::new();
        }
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(sv), Some(st)) = (col("svname"), col("status")) else { return Vec::new() };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > st && f[st] == "UP" && f[sv] != "FRONTEND" && f[sv] != "BACKEND")
            .map(|f| f[sv].to_owned())
            .collect()
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// The whole set: two nodes, three Sentinels, HAProxy.
pub struct RedisHa {
    /// `node-1` (the first primary) and `node-2` (its replica).
    pub nodes: Vec<Node>,
    /// The three Sentinels.
    pub sentinels: Vec<Sentinel>,
    /// HAProxy before the nodes.
    pub haproxy: HaProxy,
}

impl RedisHa {
    /// Starts everything and waits (blocking, 30 s at most) until the replica is in sync,
    /// every Sentinel knows the replica and the two other Sentinels, and HAProxy routes to
    /// the primary alone (it holds every server up until its first checks say otherwise).
    pub fn start(dir: &Path) -> Result<RedisHa, String> {
        let primary = Node::start(dir, "node-1", None)?;
        let replica = Node::start(dir, "node-2", Some(primary.port))?;
        let mut sentinels = Vec::new();
        for n in 1..=3 {
            sentinels.push(Sentinel::start(dir, n, primary.port)?);
        }
        let haproxy = HaProxy::start(dir, &[("node-1", primary.port), ("node-2", replica.port)])?;
        let ha = RedisHa { nodes: vec![primary, replica], sentinels, haproxy };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = ha.nodes[1]
                .replication()
                .is_some_and(|i| info_field(&i, "master_link_status").as_deref() == Some("up"));
            let watched = ha.sentinels.iter().all(|s| {
                s.master_field("num-slaves").as_deref() == Some("1")
                    && s.master_field("num-other-sentinels").as_deref() == Some("2")
            });
            let routed = ha.haproxy.up() == ["node-1"];
            if synced && watched && routed {
                return Ok(ha);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the HA set was not ready within 30 s (replica in sync: {synced}, Sentinels see each other \
                     and the replica: {watched}, HAProxy routes to the primary alone: {routed})"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The primary's port as the first Sentinel that answers knows it.
    pub fn sentinels_primary(&self) -> Option<u16> {
        self.sentinels.iter().find_map(Sentinel::primary)
    }

    /// Whether a write through HAProxy is taken now (`+OK`: a primary with a replica in
    /// reach; `-NOREPLICAS`, `-READONLY` or no connection: not).
    pub fn writable(&self) -> bool {
        ask(self.haproxy.port, &["SET", "chaos:probe", "1"]).is_ok_and(|r| r == "OK")
    }
}

/// One line of `CLUSTER NODES`: a node's port, whether it is a primary (and not flagged
/// failed), whether it is this node, its primary's id and its slot ranges.
#[derive(Clone, Debug)]
pub struct ClusterView {
    /// The node's id.
    pub id: String,
    /// Its port.
    pub port: u16,
    /// `master` and not `fail`.
    pub serving: bool,
    /// `myself`.
    pub myself: bool,
    /// Its primary's id (a replica's; `-` for a primary).
    pub primary_id: String,
    /// Its slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
}

/// Parses a `CLUSTER NODES` reply.
fn parse_cluster_nodes(text: &str) -> Vec<ClusterView> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.split(['@', ',']).next()?.rsplit(':').next()?.parse().ok()?;
            let flags: Vec<&str> = f.get(2)?.split(',').collect();
            let slots = f
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(ClusterView {
                id: (*f.first()?).to_owned(),
                port,
                serving: flags.contains(&"master") && !flags.iter().any(|x| x.starts_with("fail")),
                myself: flags.contains(&"myself"),
                primary_id: (*f.get(3)?).to_owned(),
                slots,
            })
        })
        .collect()
}

/// A Redis Cluster as operators run one: six [`Node`]s (`appendonly yes`,
/// `min-replicas-to-write 1`, `cluster-node-timeout` [`RedisCluster::NODE_TIMEOUT_MS`]) joined
/// by `redis-cli --cluster create … --cluster-replicas 1` into three primaries, each with a
/// replica. The scenario faults one shard: the one `nodes[pair[0]]` served at the start,
/// with `nodes[pair[1]]` its replica; `probe` is a key in its slots.
pub struct RedisCluster {
    /// `node-1` … `node-6`.
    pub nodes: Vec<Node>,
    /// The faulted shard's two nodes (its primary at the start first).
    pub pair: [usize; 2],
    /// A slot of the faulted shard.
    pub slot: u16,
    /// The faulted shard's slot ranges, inclusive.
    pub ranges: Vec<(u16, u16)>,
    /// A key in that slot's shard (a write of it says whether the shard takes writes).
    pub probe: String,
}

impl RedisCluster {
    /// How long a node may be unreachable before the others flag it (and its replica is
    /// promoted about a second or two later): `cluster-node-timeout`.
    pub const NODE_TIMEOUT_MS: u64 = 1000;

    /// Starts six nodes, creates the cluster, and waits (blocking, 30 s at most) until every
    /// node says `cluster_state:ok` and knows the six, three primaries each with a replica
    /// in sync.
    pub fn start(dir: &Path) -> Result<RedisCluster, String> {
        let mut nodes = Vec::new();
        for n in 1..=6 {
            nodes.push(Node::start_cluster(dir, &format!("node-{n}"))?);
        }
        let cli = std::env::var("RAMPART_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned());
        let out = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run `{cli} --cluster create` (Debian package redis-tools): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut cluster = RedisCluster { nodes, pair: [0, 0], slot: 0, ranges: Vec::new(), probe: String::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.formed() {
            if Instant::now() > deadline {
                let view = ask(cluster.nodes[0].port, &["CLUSTER", "NODES"]);
                return Err(format!("the cluster was not formed within 30 s: CLUSTER NODES {view:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The faulted shard: the first node's, if it is a primary, else the first primary's.
        let view = cluster.view(cluster.nodes[0].port).unwrap_or_default();
        let primary = view.iter().find(|v| v.serving && !v.slots.is_empty()).ok_or("no primary in CLUSTER NODES")?;
        let replica = view.iter().find(|v| v.primary_id == primary.id).ok_or("the primary has no replica")?;
        let index = |port: u16| cluster.nodes.iter().position(|n| n.port == port);
        cluster.pair = [index(primary.port).ok_or("unknown primary")?, index(replica.port).ok_or("unknown replica")?];
        cluster.slot = primary.slots[0].0;
        cluster.ranges = primary.slots.clone();
        let slot = cluster.slot.to_string();
        cluster.probe = (0..100_000)
            .map(|n| format!("chaos:probe:{n}"))
            .find(|k| ask(primary.port, &["CLUSTER", "KEYSLOT", k]).is_ok_and(|s| s == slot))
            .ok_or("no probe key found for the shard")?;
        Ok(cluster)
    }

    /// Whether every node says `cluster_state:ok`, knows six nodes, three of them serving
    /// primaries, and (a replica) is in sync.
    fn formed(&self) -> bool {
        self.nodes.iter().all(|n| {
            let info = ask(n.port, &["CLUSTER", "INFO"]).unwrap_or_default();
            let ok = info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6");
            let view = self.view(n.port).unwrap_or_default();
            let primaries = view.iter().filter(|v| v.serving && !v.slots.is_empty()).count();
            let me = view.iter().find(|v| v.myself);
            let synced = match me {
                Some(me) if !me.serving => {
                    let primary = view.iter().find(|v| v.id == me.primary_id).map(|v| v.port);
                    primary.is_some_and(|p| n.replica_in_sync_of(p))
                }
                Some(_) => true,
                None => false,
            };
            ok && view.len() == 6 && primaries == 3 && synced
        })
    }

    /// `CLUSTER NODES` as the node on `port` sees the cluster (None: it does not answer).
    pub fn view(&self, port: u16) -> Option<Vec<ClusterView>> {
        let text = ask(port, &["CLUSTER", "NODES"]).ok().filter(|t| !t.starts_with('-'))?;
        Some(parse_cluster_nodes(&text))
    }

    /// The port serving the faulted shard's slot as the node on `asker` sees it.
    pub fn serving(&self, asker: u16) -> Option<u16> {
        self.view(asker)?
            .into_iter()
            .find(|v| v.serving && v.slots.iter().any(|(a, b)| (*a..=*b).contains(&self.slot)))
            .map(|v| v.port)
    }

    /// Whether every node that answers, but `except`, sees `port` serving the shard.
    pub fn agreed(&self, port: u16, except: usize) -> bool {
        let answers: Vec<Option<u16>> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != except)
            .filter_map(|(_, n)| self.view(n.port).map(|_| self.serving(n.port)))
            .collect();
        !answers.is_empty() && answers.iter().all(|s| *s == Some(port))
    }

    /// Whether `key` is in the faulted shard (`CLUSTER KEYSLOT`, asked of a node that
    /// answers; None when none does).
    pub fn in_shard(&self, key: &str) -> Option<bool> {
        let slot: u16 = self.nodes.iter().find_map(|n| ask(n.port, &["CLUSTER", "KEYSLOT", key]).ok()?.parse().ok())?;
        Some(self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
    }

    /// `host:port` of every node, comma-separated, as `RAMPART__REDIS__CLUSTER_NODES` takes them.
    pub fn seeds(&self) -> String {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }
}
