//! Metrics: every counter and gauge the server exposes, declared once here with its help
//! text, updated with relaxed atomics on the hot paths and rendered as Prometheus text.
//! Labels are low-cardinality by construction (game kind, restart reason, error code).

use std::collections::BTreeMap;
use std::fmt::Write as _;
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

    /// Renders the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let family = |out: &mut String, name: &str, help: &str, keys: &[&str], rows: Vec<(Vec<&'static str>, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (values, v) in rows {
                let labels: Vec<String> = keys.iter().zip(values).map(|(k, val)| format!("{k}=\"{val}\"")).collect();
                let _ = writeln!(out, "{name}{{{}}} {v}", labels.join(","));
            }
        };
        gauge(
            &mut out,
            "rampart_games_active",
            "Games waiting or in play on this server (they count against admission.max_games).",
            self.games_active(),
        );
        gauge(
            &mut out,
            "rampart_games_hosted",
            "Games held by this server, ended ones included until their time-to-live passes.",
            self.games_hosted.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_games_abandoned_total",
            "Games closed because no player was connected for server.abandoned_game_secs.",
            self.games_abandoned.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "rampart_games_started_total",
            "Games started, by kind.",
            &["kind"],
            self.games_started.snapshot(),
        );
        family(
            &mut out,
            "rampart_game_restarts_total",
            "Game actor restarts, by kind and reason (panic or hang).",
            &["kind", "reason"],
            self.restarts.snapshot(),
        );
        family(
            &mut out,
            "rampart_games_failed_total",
            "Games closed after exceeding their restart limit, by kind.",
            &["kind"],
            self.games_failed.snapshot(),
        );
        counter(
            &mut out,
            "rampart_games_moved_total",
            "Healthy games moved to a fresh arbiter because theirs stopped answering.",
            self.games_moved.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_arbiters_lost_total",
            "Game arbiters abandoned because a hung handler held their thread.",
            self.arbiters_lost(),
        );
        counter(
            &mut out,
            "rampart_game_panics_total",
            "Panics caught in game code.",
            self.panics.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_snapshots_unreadable_total",
            "Stored snapshots that could not be decoded on a takeover; each such game was closed as failed.",
            self.snapshots_unreadable.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_games_given_up_total",
            "Games this instance stopped hosting because another instance holds their lease (renewal refused or snapshot write fenced); their sockets were closed with 1012.",
            self.games_given_up.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_lease_epochs_adopted_total",
            "Snapshot writes fenced only by a newer epoch of this instance's own lease (a claim or renewal that ran late in a stalled store): the game went on under it.",
            self.epochs_adopted.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_admin_refused_total",
            "Admin requests refused for a missing or wrong token (or admin disabled).",
            self.admin_refusals(),
        );
        counter(
            &mut out,
            "rampart_waitlist_lost_total",
            "Times the waitlist's Redis came back without the line it held (restarted empty or from an older copy).",
            self.waitlist_lost.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_waitlist_restored_total",
            "Waitlist entries this instance put back at their own place after Redis lost the line.",
            self.waitlist_restored.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "rampart_client_limited_total",
            "Requests refused with RATE_LIMITED because one client address passed a limit (creations per second, tickets held in the line).",
            &["limit"],
            self.client_limited.snapshot(),
        );
        gauge(
            &mut out,
            "rampart_sockets_open",
            "Open game WebSocket connections.",
            self.sockets_open.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_slow_client_disconnects_total",
            "Connections closed with 1013 because their outbound queue was full.",
            self.slow_clients(),
        );
        gauge(
            &mut out,
            "rampart_lobby_sockets_open",
            "Open /ws/lobby WebSocket connections.",
            self.lobby_sockets_open.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_lobby_frames_sent_total",
            "Lobby pages (`lobby` frames) queued on /ws/lobby sockets: one per socket only when its page changed, at most one per lobby.push_interval_ms.",
            self.lobby_frames_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_lobby_bytes_sent_total",
            "Bytes of the lobby pages queued on /ws/lobby sockets, WebSocket headers included.",
            self.lobby_bytes_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_ws_frames_refused_total",
            "WebSocket frames or messages refused at their header as larger than the hard limit (closed with 1009).",
            self.frames_refused.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_commands_replayed_total",
            "Player commands sent again to a game's new incarnation after its arbiter was lost.",
            self.commands_replayed.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "rampart_connections_open",
            "Open TCP connections (HTTP and WebSocket).",
            self.connections_open.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_connections_refused_total",
            "Requests refused with 503 because the server held server.max_connections connections.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "rampart_client_connections_refused_total",
            "Requests and upgrades refused with 503 because one client address held its share of connections (limit=client) or of lobby sockets (limit=lobby).",
            &["limit"],
            self.client_connections_refused.snapshot(),
        );
        counter(
            &mut out,
            "rampart_http_pipeline_waits_total",
            "Pipelined requests that waited (nothing more read from their connection) until the client read server.max_pipelined_requests answers.",
            self.pipeline_waits.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "rampart_http_write_timeouts_total",
            "HTTP connections closed because their client read nothing of a waiting answer for server.client_timeout_ms.",
            self.write_timeouts.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "rampart_socket_flood_closes_total",
            "WebSockets closed with 1008 because their client kept sending (pings, pongs or refused frames included) past its frame budget, by socket kind.",
            &["kind"],
            self.socket_floods.snapshot(),
        );
        counter(
            &mut out,
            "rampart_ws_frames_in_total",
            "WebSocket frames received from clients.",
            self.frames_in.load(Ordering::Relaxed),
        );
        for (name, help, arr) in [
            ("rampart_ws_errors_sent_total", "Error frames sent on WebSockets, by code.", &self.errors_sent),
            ("rampart_http_errors_total", "Error responses sent on REST, by code.", &self.http_errors),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for code in ErrorCode::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{code=\"{}\"}} {}",
                    code.as_str(),
                    arr[code as usize].load(Ordering::Relaxed)
                );
            }
        }
        out
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
