//! The connection gate: who a connection or a request comes from, and how many connections
//! each may hold.
//!
//! Every accepted connection takes a [`ConnSlot`] from the [`ConnectionGate`] (released
//! when the connection closes). Past `server.max_connections` (capped by the open-file
//! limit, [`connection_ceiling`]) a request is answered 503 SERVER_BUSY with `Retry-After`
//! and the connection is closed at once, so the process never runs out of file
//! descriptors: the connections under the ceiling (a load balancer's `/health` probe among
//! them) are served as usual. One client address may hold only its share of the ceiling,
//! and a few lobby sockets; a trusted proxy's connections are charged to the clients it
//! forwards ([`Proxies`], [`client_of`]). actix's own per-worker limit sits a little above
//! the ceiling as the last stop. The edge middleware ([`super::edge`]) answers the refusals.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::admission::clients::{client_addr, ClientKey};
use crate::config::Net;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::web::throttle::Throttle;

/// The proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`), as app data.
#[derive(Clone, Debug, Default)]
pub struct Proxies(pub Arc<Vec<Net>>);

impl Proxies {
    /// From the configuration (already validated).
    pub fn from_config(entries: &[String]) -> Self {
        Proxies(Arc::new(entries.iter().filter_map(|e| Net::parse(e).ok()).collect()))
    }

    /// Whether `peer` is one of them.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(peer))
    }
}

/// The client a request comes from, for the per-client limits: its peer address, or, when
/// the peer is a trusted proxy, the client that proxy forwarded
/// ([`client_addr`](crate::admission::clients::client_addr)).
pub fn client_of(req: &actix_web::HttpRequest) -> Option<ClientKey> {
    let peer = req.peer_addr()?.ip();
    let trusted = req.app_data::<Proxies>().map(|p| p.0.as_slice()).unwrap_or(&[]);
    let forwarded: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    Some(ClientKey::of(client_addr(peer, forwarded.as_deref(), trusted)))
}

/// Which limit a connection or socket came past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// `server.max_connections`, the whole server's ceiling.
    Server,
    /// One client address's share of it (`server.max_client_connections_pct`).
    Client,
    /// One client address's lobby sockets (`server.max_lobby_sockets_per_client`).
    Lobby,
}

impl Over {
    fn as_str(self) -> &'static str {
        match self {
            Over::Server => "server",
            Over::Client => "client",
            Over::Lobby => "lobby",
        }
    }
}

/// What one client address holds now.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    connections: usize,
    lobby_sockets: usize,
}

/// Open connections, against the ceiling and each client address's share of it.
pub struct ConnectionGate {
    open: AtomicUsize,
    /// Of those, upgraded to WebSockets (closing ones included, until their TCP connection is gone).
    upgraded: AtomicUsize,
    ceiling: usize,
    /// Connections one client address may hold (a share of the ceiling, at least one).
    per_client: usize,
    /// Lobby sockets one client address may hold.
    lobby_per_client: usize,
    /// Proxies whose connections are charged to the clients they forward, not to themselves.
    proxies: Proxies,
    /// What each client address holds; an address holding nothing has no entry.
    held: Mutex<HashMap<ClientKey, Held>>,
    metrics: Arc<Metrics>,
    warnings: Throttle,
    client_warnings: Throttle,
}

impl ConnectionGate {
    /// A gate letting `ceiling` connections be served at once, at most `client_pct` percent
    /// of them (and `lobby_per_client` lobby sockets) by one client address; connections
    /// from `proxies` are charged to the client each forwards when it upgrades.
    pub fn new(
        ceiling: usize,
        client_pct: u64,
        lobby_per_client: usize,
        proxies: Proxies,
        metrics: Arc<Metrics>,
    ) -> Self {
        let per_client = ((ceiling as u64).saturating_mul(client_pct) / 100).max(1) as usize;
        ConnectionGate {
            open: AtomicUsize::new(0),
            upgraded: AtomicUsize::new(0),
            ceiling,
            per_client,
            lobby_per_client: lobby_per_client.max(1),
            proxies,
            held: Mutex::new(HashMap::new()),
            metrics,
            warnings: Throttle::new(10_000),
            client_warnings: Throttle::new(10_000),
        }
    }

    /// The ceiling in force.
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// Connections one client address may hold.
    pub fn per_client(&self) -> usize {
        self.per_client
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// WebSocket connections open now, closing ones included.
    pub fn upgraded(&self) -> usize {
        self.upgraded.load(Ordering::Relaxed)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a connection accepted from `peer`; whether it is over the ceiling,
    /// or over its address's share, is decided now. A trusted proxy's connection is not
    /// charged to the proxy (its sockets are charged to the clients it forwards).
    pub fn enter(self: &Arc<Self>, peer: Option<IpAddr>) -> ConnSlot {
        let n = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.metrics.connection_open(1);
        let client = peer.filter(|ip| !self.proxies.trusts(*ip)).map(ClientKey::of);
        let mut over = (n > self.ceiling).then_some(Over::Server);
        if let Some(key) = client {
            let mut held = self.held();
            let entry = held.entry(key).or_default();
            entry.connections += 1;
            if over.is_none() && entry.connections > self.per_client {
                over = Some(Over::Client);
            }
        }
        ConnSlot { gate: self.clone(), over, upgraded: false, client, lobby: false }
    }

    /// Takes the slot an upgraded connection holds for its life (the request's own slot,
    /// taken when it was accepted, goes with the HTTP dispatcher a moment later), or
    /// refuses the upgrade: a lobby socket past its address's lobby cap, or a socket a
    /// trusted proxy forwards for a client past its share (a direct client's share was
    /// checked when its connection was accepted).
    pub fn enter_upgraded(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
        lobby: bool,
    ) -> Result<ConnSlot, ErrorBody> {
        let (client, proxied) = match peer {
            Some(ip) if self.proxies.trusts(ip) => {
                (Some(ClientKey::of(client_addr(ip, forwarded_for, &self.proxies.0))), true)
            }
            Some(ip) => (Some(ClientKey::of(ip)), false),
            None => (None, false),
        };
        if let Some(key) = client {
            let mut held = self.held();
            let entry = held.entry(key).or_default();
            let refused = if proxied && entry.connections >= self.per_client {
                Some(Over::Client)
            } else if lobby && entry.lobby_sockets >= self.lobby_per_client {
                Some(Over::Lobby)
            } else {
                None
            };
            if let Some(over) = refused {
                if entry.connections == 0 && entry.lobby_sockets == 0 {
                    held.remove(&key);
                }
                drop(held);
                return Err(self.refusal(over));
            }
            entry.connections += 1;
            entry.lobby_sockets += usize::from(lobby);
        }
        self.upgraded.fetch_add(1, Ordering::AcqRel);
        self.open.fetch_add(1, Ordering::AcqRel);
        self.metrics.connection_open(1);
        Ok(ConnSlot { gate: self.clone(), over: None, upgraded: true, client, lobby })
    }

    /// Counts a refusal (as [`ConnectionGate::refused`]) and answers the error the refused
    /// request gets: SERVER_BUSY `reason: "connections"` with the limit passed, the same
    /// for a route and an upgrade.
    pub fn refusal(&self, over: Over) -> ErrorBody {
        self.refused(over);
        let message = match over {
            Over::Server => {
                format!("the server is holding its maximum of {} connections; retry shortly", self.ceiling)
            }
            Over::Client => format!(
                "your address holds {} connections, the most one client may hold on this server; close some or retry shortly",
                self.per_client
            ),
            Over::Lobby => format!(
                "your address holds {} lobby sockets, the most one client may hold; close one or retry shortly",
                self.lobby_per_client
            ),
        };
        ErrorBody::new(ErrorCode::ServerBusy, message)
            .with("reason", "connections")
            .with("limit", over.as_str())
            .with("retry_after_ms", 1000)
    }

    /// Counts a refusal; logs a warning at most every ten seconds (per kind of limit), with
    /// the count.
    fn refused(&self, over: Over) {
        if over == Over::Server {
            self.metrics.connection_refused();
            if let Some(refused) = self.warnings.hit() {
                tracing::warn!(
                    ceiling = self.ceiling,
                    open = self.open(),
                    refused,
                    "refusing requests: the server holds its maximum of connections (server.max_connections)"
                );
            }
            return;
        }
        self.metrics.client_connection_refused(over.as_str());
        if let Some(refused) = self.client_warnings.hit() {
            tracing::warn!(
                per_client = self.per_client,
                lobby_per_client = self.lobby_per_client,
                refused,
                "refusing connections from addresses past their share (server.max_client_connections_pct, server.max_lobby_sockets_per_client); everyone else is served"
            );
        }
    }

    fn leave(&self, slot: &ConnSlot) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        if slot.upgraded {
            self.upgraded.fetch_sub(1, Ordering::AcqRel);
        }
        self.metrics.connection_open(-1);
        if let Some(key) = slot.client {
            let mut held = self.held();
            if let Some(entry) = held.get_mut(&key) {
                entry.connections = entry.connections.saturating_sub(1);
                entry.lobby_sockets = entry.lobby_sockets.saturating_sub(usize::from(slot.lobby));
                if entry.connections == 0 && entry.lobby_sockets == 0 {
                    held.remove(&key);
                }
            }
        }
    }
}

/// One accepted connection's place; stored in the connection's data and released when it
/// closes.
pub struct ConnSlot {
    gate: Arc<ConnectionGate>,
    over: Option<Over>,
    upgraded: bool,
    /// The address charged for it (none for a trusted proxy's HTTP connection).
    client: Option<ClientKey>,
    /// Whether it is a lobby socket.
    lobby: bool,
}

impl ConnSlot {
    /// The limit the connection came past, if any (its requests are refused).
    pub fn over(&self) -> Option<Over> {
        self.over
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.gate.leave(self);
    }
}

/// Raises this process's open-file limit to its hard limit, and answers the connection
/// ceiling: `configured`, but never more than the open-file limit leaves room for (a
/// reserve of descriptors stays for Redis, the LLM, logs and the process itself).
pub fn connection_ceiling(configured: u64) -> usize {
    const RESERVE: u64 = 128;
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("could not read or raise the open-file limit: {e}");
            return configured as usize;
        }
    };
    let room = limit.saturating_sub(RESERVE).max(16);
    if configured > room {
        tracing::warn!(
            configured,
            open_file_limit = limit,
            ceiling = room,
            "server.max_connections is above what the open-file limit allows; serving at most {room} connections (raise `ulimit -n` for more)"
        );
        room as usize
    } else {
        configured as usize
    }
}
