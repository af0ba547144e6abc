//! Metrics: every metric family the server exposes is declared here, once, with its name,
//! help text and type (a [`Metric`] can be made nowhere else), and rendered as Prometheus
//! text through [`Metric::describe`] and [`Metric::sample`]. [`Metrics`] holds the server's
//! own counters and gauges, updated with relaxed atomics on the hot paths; the breakers
//! (`BREAKER_*`) and the system tree (`SYSTEM_ACTOR_*`) keep their own values and render
//! them under the families declared here. Labels are low-cardinality by construction (game
//! kind, restart reason, error code, breaker and actor names).

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::protocol::ErrorCode;

/// Why a game was restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RestartReason {
    /// A panic in game code.
    Panic,
    /// A handler busy past `hang_timeout_ms`.
    Hang,
}

impl RestartReason {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::Panic => "panic",
            RestartReason::Hang => "hang",
        }
    }
}

/// Which kind of socket this is, for logs and gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// `/ws/games/{id}`.
    Game,
    /// `/ws/lobby`.
    Lobby,
    /// `/ws/echo`, only in a conformance build (`--features conformance`).
    Echo,
}

impl SocketKind {
    /// Its name in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Game => "game",
            SocketKind::Lobby => "lobby",
            SocketKind::Echo => "echo",
        }
    }
}

/// What a metric family measures, as its `# TYPE` line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetricType {
    /// A count that only grows.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations in cumulative buckets, with their sum and count.
    Histogram,
}

impl MetricType {
    /// The word in `# TYPE`.
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// One metric family: its name, help text, type and label names. Made only in this file
/// (the constants below); whoever holds the values renders them under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

impl Metric {
    const fn counter(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
        Metric { name, help, kind: MetricType::Counter, labels }
    }
    const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
        Metric { name, help, kind: MetricType::Gauge, labels }
    }
    const fn histogram(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
        Metric { name, help, kind: MetricType::Histogram, labels }
    }

    /// Its `# HELP` and `# TYPE` lines.
    pub fn describe(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", self.name, self.help, self.name, self.kind.as_str());
    }

    /// One sample: `name{label="value",…} sample`, `values` in the order of its label names
    /// (no braces for a family without labels).
    pub fn sample(&self, out: &mut String, values: &[&str], sample: impl Display) {
        self.line(out, "", values, None, sample);
    }

    /// A histogram's samples for one set of label `values`: each cumulative `(upper bound,
    /// count)` bucket, the `+Inf` bucket (`count`), then `_sum` and `_count`.
    pub fn histogram_samples(&self, out: &mut String, values: &[&str], buckets: &[(f64, u64)], count: u64, sum: f64) {
        for (le, n) in buckets {
            self.line(out, "_bucket", values, Some(&le.to_string()), n);
        }
        self.line(out, "_bucket", values, Some("+Inf"), count);
        self.line(out, "_sum", values, None, sum);
        self.line(out, "_count", values, None, count);
    }

    fn line(&self, out: &mut String, suffix: &str, values: &[&str], le: Option<&str>, sample: impl Display) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}: one value per label", self.name);
        out.push_str(self.name);
        out.push_str(suffix);
        let mut labels = self.labels.iter().zip(values).map(|(k, v)| (*k, *v)).chain(le.map(|le| ("le", le)));
        if let Some((key, value)) = labels.next() {
            let _ = write!(out, "{{{key}=\"{value}\"");
            for (key, value) in labels {
                let _ = write!(out, ",{key}=\"{value}\"");
            }
            out.push('}');
        }
        let _ = writeln!(out, " {sample}");
    }
}

// The server's own families: [`Metrics`] holds their values and renders them.

const GAMES_ACTIVE: Metric = Metric::gauge(
    "rampart_games_active",
    "Games waiting or in play on this server (they count against admission.max_games).",
    &[],
);
const GAMES_HOSTED: Metric = Metric::gauge(
    "rampart_games_hosted",
    "Games held by this server, ended ones included until their time-to-live passes.",
    &[],
);
const GAMES_PAUSED: Metric = Metric::gauge(
    "rampart_games_paused",
    "Games paused because this server cannot confirm its ownership lease (docs/DESIGN.md D17).",
    &[],
);
const GAMES_ABANDONED: Metric = Metric::counter(
    "rampart_games_abandoned_total",
    "Games closed because no player was connected for server.abandoned_game_secs.",
    &[],
);
const GAMES_STARTED: Metric = Metric::counter("rampart_games_started_total", "Games started, by kind.", &["kind"]);
const GAME_RESTARTS: Metric = Metric::counter(
    "rampart_game_restarts_total",
    "Game actor restarts, by kind and reason (panic or hang).",
    &["kind", "reason"],
);
const GAMES_FAILED: Metric = Metric::counter(
    "rampart_games_failed_total",
    "Games closed after exceeding their restart limit, by kind.",
    &["kind"],
);
const GAMES_MOVED: Metric = Metric::counter(
    "rampart_games_moved_total",
    "Healthy games moved to a fresh arbiter because theirs stopped answering.",
    &[],
);
const ARBITERS_LOST: Metric = Metric::counter(
    "rampart_arbiters_lost_total",
    "Game arbiters abandoned because a hung handler held their thread.",
    &[],
);
const GAME_PANICS: Metric = Metric::counter("rampart_game_panics_total", "Panics caught in game code.", &[]);
const SNAPSHOTS_UNREADABLE: Metric = Metric::counter(
    "rampart_snapshots_unreadable_total",
    "Stored snapshots that could not be decoded on a takeover; each such game was closed as failed.",
    &[],
);
const GAMES_GIVEN_UP: Metric =
    Metric::counter("rampart_games_given_up_total", "Games this instance stopped hosting because another instance holds their lease (renewal refused or snapshot write fenced); their sockets were closed with 1012.", &[]);
const LEASE_EPOCHS_ADOPTED: Metric =
    Metric::counter("rampart_lease_epochs_adopted_total", "Snapshot writes fenced only by a newer epoch of this instance's own lease (a claim or renewal that ran late in a stalled store): the game went on under it.", &[]);
const RELAY_GAPS: Metric = Metric::counter(
    "rampart_relay_gaps_total",
    "Gaps in a relayed seat's frames that did not fill within 200 ms, or relayed joins whose frames did not come within 500 ms (lost to a Pub/Sub gap or a switchover): the frames after it were delivered and the seat's owner was asked for its current frames.",
    &[],
);
const RELAY_RESENT: Metric = Metric::counter(
    "rampart_relay_resent_total",
    "Relayed requests (joins, commands, seat claims, reads) sent again because no reply came within 300 ms (lost to a Pub/Sub gap or a switchover, or only slow): the owner acts on each once.",
    &[],
);
const ADMIN_REFUSED: Metric = Metric::counter(
    "rampart_admin_refused_total",
    "Admin requests refused for a missing or wrong token (or admin disabled).",
    &[],
);
const WAITLIST_LOST: Metric = Metric::counter(
    "rampart_waitlist_lost_total",
    "Times the waitlist's Redis came back without the line it held (restarted empty or from an older copy).",
    &[],
);
const WAITLIST_RESTORED: Metric = Metric::counter(
    "rampart_waitlist_restored_total",
    "Waitlist entries this instance put back at their own place after Redis lost the line.",
    &[],
);
const CLIENT_LIMITED: Metric =
    Metric::counter("rampart_client_limited_total", "Requests refused with RATE_LIMITED because one client address passed a limit (creations per second, tickets held in the line).", &["limit"]);
const SOCKETS_OPEN: Metric = Metric::gauge("rampart_sockets_open", "Open game WebSocket connections.", &[]);
const SLOW_CLIENT_DISCONNECTS: Metric = Metric::counter(
    "rampart_slow_client_disconnects_total",
    "Connections closed with 1013 because their outbound queue was full.",
    &[],
);
const LOBBY_SOCKETS_OPEN: Metric =
    Metric::gauge("rampart_lobby_sockets_open", "Open /ws/lobby WebSocket connections.", &[]);
const LOBBY_FRAMES_SENT: Metric =
    Metric::counter("rampart_lobby_frames_sent_total", "Lobby pages (`lobby` frames) queued on /ws/lobby sockets: one per socket only when its page changed, at most one per lobby.push_interval_ms.", &[]);
const LOBBY_BYTES_SENT: Metric = Metric::counter(
    "rampart_lobby_bytes_sent_total",
    "Bytes of the lobby pages queued on /ws/lobby sockets, WebSocket headers included.",
    &[],
);
const WS_FRAMES_REFUSED: Metric = Metric::counter(
    "rampart_ws_frames_refused_total",
    "WebSocket frames or messages refused at their header as larger than the hard limit (closed with 1009).",
    &[],
);
const COMMANDS_REPLAYED: Metric = Metric::counter(
    "rampart_commands_replayed_total",
    "Player commands sent again to a game's new incarnation after its arbiter was lost.",
    &[],
);
const CONNECTIONS_OPEN: Metric =
    Metric::gauge("rampart_connections_open", "Open TCP connections (HTTP and WebSocket).", &[]);
const CONNECTIONS_REFUSED: Metric = Metric::counter(
    "rampart_connections_refused_total",
    "Requests refused with 503 because the server held server.max_connections connections.",
    &[],
);
const CLIENT_CONNECTIONS_REFUSED: Metric =
    Metric::counter("rampart_client_connections_refused_total", "Requests and upgrades refused with 503 because one client address held its share of connections (limit=client) or of lobby sockets (limit=lobby).", &["limit"]);
const HTTP_PIPELINE_WAITS: Metric =
    Metric::counter("rampart_http_pipeline_waits_total", "Pipelined requests that waited (nothing more read from their connection) until the client read server.max_pipelined_requests answers.", &[]);
const HTTP_WRITE_TIMEOUTS: Metric = Metric::counter(
    "rampart_http_write_timeouts_total",
    "HTTP connections closed because their client read nothing of a waiting answer for server.client_timeout_ms.",
    &[],
);
const SOCKET_FLOOD_CLOSES: Metric =
    Metric::counter("rampart_socket_flood_closes_total", "WebSockets closed with 1008 because their client kept sending (pings, pongs or refused frames included) past its frame budget, by socket kind.", &["kind"]);
const WS_FRAMES_IN: Metric =
    Metric::counter("rampart_ws_frames_in_total", "WebSocket frames received from clients.", &[]);
const WS_ERRORS_SENT: Metric =
    Metric::counter("rampart_ws_errors_sent_total", "Error frames sent on WebSockets, by code.", &["code"]);
const HTTP_ERRORS: Metric =
    Metric::counter("rampart_http_errors_total", "Error responses sent on REST, by code.", &["code"]);

// The circuit breakers' families: `breaker::registry::Breakers` renders them from each
// breaker's own counters.

/// Each breaker's state, one sample per state (1 for the one it is in).
pub const BREAKER_STATE: Metric = Metric::gauge(
    "rampart_circuit_breaker_state",
    "Current state of each circuit breaker (1 for the state it is in).",
    &["name", "state"],
);
/// Calls through each breaker, by outcome.
pub const BREAKER_CALLS: Metric = Metric::counter(
    "rampart_circuit_breaker_calls_total",
    "Calls through each breaker by outcome.",
    &["name", "outcome"],
);
/// Each breaker's state changes, by the states left and entered.
pub const BREAKER_TRANSITIONS: Metric = Metric::counter(
    "rampart_circuit_breaker_transitions_total",
    "State changes of each breaker.",
    &["name", "from", "to"],
);
/// The durations of calls through each breaker.
pub const BREAKER_CALL_DURATION: Metric = Metric::histogram(
    "rampart_circuit_breaker_call_duration_seconds",
    "Duration of calls through each breaker.",
    &["name"],
);

// The system actors' families: `runtime::system::SystemTree` renders them from its ledger.

/// Restarts of each system actor.
pub const SYSTEM_ACTOR_RESTARTS: Metric =
    Metric::counter("rampart_system_actor_restarts_total", "Restarts of each system actor.", &["actor"]);
/// Whether each system actor runs.
pub const SYSTEM_ACTOR_UP: Metric = Metric::gauge(
    "rampart_system_actor_up",
    "1 while a system actor runs, 0 once it failed past its limit.",
    &["actor"],
);

/// A counter family keyed by a small, fixed set of label values.
#[derive(Default)]
struct Family(Mutex<BTreeMap<Vec<&'static str>, u64>>);

impl Family {
    fn inc(&self, labels: &[&'static str]) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(labels) {
            Some(count) => *count += 1,
            None => {
                map.insert(labels.to_vec(), 1);
            }
        }
    }
    fn get(&self, labels: &[&'static str]) -> u64 {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(labels).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> Vec<(Vec<&'static str>, u64)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// All server metrics. One instance per server, shared by `Arc`.
#[derive(Default)]
pub struct Metrics {
    games_active: AtomicI64,
    games_hosted: AtomicI64,
    games_paused: AtomicI64,
    games_abandoned: AtomicU64,
    lobby_sockets_open: AtomicI64,
    lobby_frames_sent: AtomicU64,
    lobby_bytes_sent: AtomicU64,
    frames_refused: AtomicU64,
    commands_replayed: AtomicU64,
    connections_open: AtomicI64,
    connections_refused: AtomicU64,
    client_connections_refused: Family,
    pipeline_waits: AtomicU64,
    write_timeouts: AtomicU64,
    socket_floods: Family,
    games_started: Family,
    restarts: Family,
    games_failed: Family,
    games_moved: AtomicU64,
    arbiters_lost: AtomicU64,
    sockets_open: AtomicI64,
    slow_client_disconnects: AtomicU64,
    frames_in: AtomicU64,
    errors_sent: [AtomicU64; ErrorCode::ALL.len()],
    http_errors: [AtomicU64; ErrorCode::ALL.len()],
    panics: AtomicU64,
    snapshots_unreadable: AtomicU64,
    games_given_up: AtomicU64,
    epochs_adopted: AtomicU64,
    relay_gaps: AtomicU64,
    relay_resent: AtomicU64,
    admin_refused: AtomicU64,
    client_limited: Family,
    waitlist_lost: AtomicU64,
    waitlist_restored: AtomicU64,
}

impl Metrics {
    /// A game actor started for the first time.
    pub fn game_started(&self, kind: &'static str) {
        self.games_started.inc(&[kind]);
        self.games_active.fetch_add(1, Ordering::Relaxed);
    }
    /// A game ended (won, drawn, resigned, failed, abandoned): its place is free.
    pub fn game_ended(&self) {
        self.games_active.fetch_sub(1, Ordering::Relaxed);
    }
    /// A game was added to (+1) or removed from (-1) this server's registry.
    pub fn game_hosted(&self, delta: i64) {
        self.games_hosted.fetch_add(delta, Ordering::Relaxed);
    }
    /// How many hosted games are paused on an unconfirmed lease now.
    pub fn set_games_paused(&self, games: i64) {
        self.games_paused.store(games, Ordering::Relaxed);
    }
    /// A game was closed because nobody was connected to it.
    pub fn game_abandoned(&self) {
        self.games_abandoned.fetch_add(1, Ordering::Relaxed);
    }
    /// A WebSocket frame (or fragmented message) was refused at its header as too large.
    pub fn frame_refused(&self) {
        self.frames_refused.fetch_add(1, Ordering::Relaxed);
    }
    /// A command was sent again to a game's new incarnation after its arbiter was lost.
    pub fn command_replayed(&self) {
        self.commands_replayed.fetch_add(1, Ordering::Relaxed);
    }
    /// A TCP connection was accepted (+1) or closed (-1).
    pub fn connection_open(&self, delta: i64) {
        self.connections_open.fetch_add(delta, Ordering::Relaxed);
    }
    /// A request was refused because the server holds `server.max_connections` connections.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }
    /// A connection or socket was refused because its client address passed its share
    /// (`limit`: `client` or `lobby`).
    pub fn client_connection_refused(&self, limit: &'static str) {
        self.client_connections_refused.inc(&[limit]);
    }
    /// A pipelined request waited for its client to read the answers before it.
    pub fn pipeline_wait(&self) {
        self.pipeline_waits.fetch_add(1, Ordering::Relaxed);
    }
    /// An HTTP connection was closed because its client read nothing in time.
    pub fn write_timeout(&self) {
        self.write_timeouts.fetch_add(1, Ordering::Relaxed);
    }
    /// A socket was closed with 1008 for sending past its frame budget (`kind`: game or lobby).
    pub fn socket_flood(&self, kind: &'static str) {
        self.socket_floods.inc(&[kind]);
    }
    /// A game restarted.
    pub fn game_restarted(&self, kind: &'static str, reason: RestartReason) {
        self.restarts.inc(&[kind, reason.as_str()]);
    }
    /// A game passed its restart limit.
    pub fn game_failed(&self, kind: &'static str) {
        self.games_failed.inc(&[kind]);
    }
    /// A healthy game was moved off a lost arbiter.
    pub fn game_moved(&self) {
        self.games_moved.fetch_add(1, Ordering::Relaxed);
    }
    /// An arbiter stopped answering and was replaced.
    pub fn arbiter_lost(&self) {
        self.arbiters_lost.fetch_add(1, Ordering::Relaxed);
    }
    /// Arbiters lost so far.
    pub fn arbiters_lost(&self) -> u64 {
        self.arbiters_lost.load(Ordering::Relaxed)
    }
    /// A stored snapshot could not be decoded: its game was closed as failed.
    pub fn snapshot_unreadable(&self) {
        self.snapshots_unreadable.fetch_add(1, Ordering::Relaxed);
    }
    /// A game was given up here: another instance holds its lease now.
    pub fn game_given_up(&self) {
        self.games_given_up.fetch_add(1, Ordering::Relaxed);
    }
    /// A game went on under a newer epoch of this instance's own lease, found by a fenced
    /// write (a claim or renewal that ran late in a stalled store).
    pub fn epoch_adopted(&self) {
        self.epochs_adopted.fetch_add(1, Ordering::Relaxed);
    }
    /// A relayed seat's frames had a gap that did not fill in time (its owner is asked to
    /// resync it).
    pub fn relay_gap(&self) {
        self.relay_gaps.fetch_add(1, Ordering::Relaxed);
    }
    /// A relayed request had no reply in time and was sent again.
    pub fn relay_resent(&self) {
        self.relay_resent.fetch_add(1, Ordering::Relaxed);
    }
    /// An admin request was refused (no or wrong token, or admin disabled).
    pub fn admin_refused(&self) {
        self.admin_refused.fetch_add(1, Ordering::Relaxed);
    }
    /// Admin requests refused so far.
    pub fn admin_refusals(&self) -> u64 {
        self.admin_refused.load(Ordering::Relaxed)
    }
    /// The waitlist's Redis came back without the line it held; `restored` entries were put
    /// back.
    pub fn waitlist_lost(&self, restored: u64) {
        self.waitlist_lost.fetch_add(1, Ordering::Relaxed);
        self.waitlist_restored.fetch_add(restored, Ordering::Relaxed);
    }
    /// A client address passed one of its limits (`creations` or `tickets`).
    pub fn client_limited(&self, limit: &'static str) {
        self.client_limited.inc(&[limit]);
    }
    /// A panic in game code was caught.
    pub fn panic_caught(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }
    /// A WebSocket of `kind` opened (+1) or closed (-1).
    pub fn socket_open(&self, kind: SocketKind, delta: i64) {
        match kind {
            SocketKind::Game => self.sockets_open.fetch_add(delta, Ordering::Relaxed),
            SocketKind::Lobby => self.lobby_sockets_open.fetch_add(delta, Ordering::Relaxed),
            SocketKind::Echo => 0,
        };
    }
    /// A `lobby` frame of `bytes` (on the wire) was queued on a lobby socket.
    pub fn lobby_frame_sent(&self, bytes: usize) {
        self.lobby_frames_sent.fetch_add(1, Ordering::Relaxed);
        self.lobby_bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// A slow client was disconnected with 1013.
    pub fn slow_client(&self) {
        self.slow_client_disconnects.fetch_add(1, Ordering::Relaxed);
    }
    /// A client frame arrived.
    pub fn frame_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }
    /// An error frame was sent on a socket.
    pub fn error_sent(&self, code: ErrorCode) {
        self.errors_sent[code as usize].fetch_add(1, Ordering::Relaxed);
    }
    /// An error was answered on REST.
    pub fn http_error(&self, code: ErrorCode) {
        self.http_errors[code as usize].fetch_add(1, Ordering::Relaxed);
    }
    /// Active games now.
    pub fn games_active(&self) -> i64 {
        self.games_active.load(Ordering::Relaxed)
    }
    /// Restarts for one kind and reason (tests and /health).
    pub fn restarts(&self, kind: &'static str, reason: RestartReason) -> u64 {
        self.restarts.get(&[kind, reason.as_str()])
    }
    /// Open (game, lobby) WebSockets.
    pub fn sockets(&self) -> (i64, i64) {
        (self.sockets_open.load(Ordering::Relaxed), self.lobby_sockets_open.load(Ordering::Relaxed))
    }
    /// Slow-client disconnects so far.
    pub fn slow_clients(&self) -> u64 {
        self.slow_client_disconnects.load(Ordering::Relaxed)
    }

    /// Renders its families in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        scalar(&mut out, &GAMES_ACTIVE, self.games_active());
        scalar(&mut out, &GAMES_HOSTED, self.games_hosted.load(Ordering::Relaxed));
        scalar(&mut out, &GAMES_PAUSED, self.games_paused.load(Ordering::Relaxed));
        scalar(&mut out, &GAMES_ABANDONED, self.games_abandoned.load(Ordering::Relaxed));
        labelled(&mut out, &GAMES_STARTED, self.games_started.snapshot());
        labelled(&mut out, &GAME_RESTARTS, self.restarts.snapshot());
        labelled(&mut out, &GAMES_FAILED, self.games_failed.snapshot());
        scalar(&mut out, &GAMES_MOVED, self.games_moved.load(Ordering::Relaxed));
        scalar(&mut out, &ARBITERS_LOST, self.arbiters_lost());
        scalar(&mut out, &GAME_PANICS, self.panics.load(Ordering::Relaxed));
        scalar(&mut out, &SNAPSHOTS_UNREADABLE, self.snapshots_unreadable.load(Ordering::Relaxed));
        scalar(&mut out, &GAMES_GIVEN_UP, self.games_given_up.load(Ordering::Relaxed));
        scalar(&mut out, &LEASE_EPOCHS_ADOPTED, self.epochs_adopted.load(Ordering::Relaxed));
        scalar(&mut out, &RELAY_GAPS, self.relay_gaps.load(Ordering::Relaxed));
        scalar(&mut out, &RELAY_RESENT, self.relay_resent.load(Ordering::Relaxed));
        scalar(&mut out, &ADMIN_REFUSED, self.admin_refusals());
        scalar(&mut out, &WAITLIST_LOST, self.waitlist_lost.load(Ordering::Relaxed));
        scalar(&mut out, &WAITLIST_RESTORED, self.waitlist_restored.load(Ordering::Relaxed));
        labelled(&mut out, &CLIENT_LIMITED, self.client_limited.snapshot());
        scalar(&mut out, &SOCKETS_OPEN, self.sockets_open.load(Ordering::Relaxed));
        scalar(&mut out, &SLOW_CLIENT_DISCONNECTS, self.slow_clients());
        scalar(&mut out, &LOBBY_SOCKETS_OPEN, self.lobby_sockets_open.load(Ordering::Relaxed));
        scalar(&mut out, &LOBBY_FRAMES_SENT, self.lobby_frames_sent.load(Ordering::Relaxed));
        scalar(&mut out, &LOBBY_BYTES_SENT, self.lobby_bytes_sent.load(Ordering::Relaxed));
        scalar(&mut out, &WS_FRAMES_REFUSED, self.frames_refused.load(Ordering::Relaxed));
        scalar(&mut out, &COMMANDS_REPLAYED, self.commands_replayed.load(Ordering::Relaxed));
        scalar(&mut out, &CONNECTIONS_OPEN, self.connections_open.load(Ordering::Relaxed));
        scalar(&mut out, &CONNECTIONS_REFUSED, self.connections_refused.load(Ordering::Relaxed));
        labelled(&mut out, &CLIENT_CONNECTIONS_REFUSED, self.client_connections_refused.snapshot());
        scalar(&mut out, &HTTP_PIPELINE_WAITS, self.pipeline_waits.load(Ordering::Relaxed));
        scalar(&mut out, &HTTP_WRITE_TIMEOUTS, self.write_timeouts.load(Ordering::Relaxed));
        labelled(&mut out, &SOCKET_FLOOD_CLOSES, self.socket_floods.snapshot());
        scalar(&mut out, &WS_FRAMES_IN, self.frames_in.load(Ordering::Relaxed));
        for (metric, counts) in [(&WS_ERRORS_SENT, &self.errors_sent), (&HTTP_ERRORS, &self.http_errors)] {
            metric.describe(&mut out);
            for code in ErrorCode::ALL {
                metric.sample(&mut out, &[code.as_str()], counts[code as usize].load(Ordering::Relaxed));
            }
        }
        out
    }
}

/// A family with one sample and no labels.
fn scalar(out: &mut String, metric: &Metric, value: impl Display) {
    metric.describe(out);
    metric.sample(out, &[], value);
}

/// A counter family with a sample per set of label values.
fn labelled(out: &mut String, metric: &Metric, rows: Vec<(Vec<&'static str>, u64)>) {
    metric.describe(out);
    for (values, count) in rows {
        metric.sample(out, &values, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_exposition_lines() {
        let m = Metrics::default();
        m.game_started("connect4");
        m.game_restarted("connect4", RestartReason::Panic);
        m.error_sent(ErrorCode::NotYourTurn);
        let text = m.render();
        assert!(text.contains("rampart_game_restarts_total{kind=\"connect4\",reason=\"panic\"} 1"));
        assert!(text.contains("rampart_ws_errors_sent_total{code=\"NOT_YOUR_TURN\"} 1"));
        assert!(text.contains("rampart_games_active 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').expect("sample line");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(name.starts_with("rampart_"), "{line}");
        }
    }
}
