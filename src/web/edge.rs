//! The HTTP edge's own limits, applied to every request before any handler runs:
//!
//! - **A connection ceiling.** Every accepted connection takes a [`ConnSlot`] (released
//!   when the connection closes). Past `server.max_connections` (capped by the open-file
//!   limit) a request is answered 503 SERVER_BUSY with `Retry-After` and the connection is
//!   closed at once, so the process never runs out of file descriptors: the connections
//!   under the ceiling (a load balancer's `/health` probe among them) are served as usual.
//!   actix's own per-worker limit sits a little above it as the last stop.
//! - **A body deadline.** A request body must arrive within `server.body_timeout_ms` of the
//!   request: a client trickling a body byte by byte gets 408 REQUEST_TIMEOUT and its
//!   connection is closed. A response sent before its request's body was read closes the
//!   connection too, so nothing is left draining a slow body.
//! - **Error counts.** Every error a handler returns ([`ErrorBody`]) is counted by code in
//!   `rampart_http_errors_total`.
//!
//! Also here: who a request comes from ([`client_of`]: the peer, or the client a trusted
//! proxy forwarded, for the per-client limits), and [`Throttle`], so a client cannot flood
//! the log (refused connections and refused admin requests are logged at most once per
//! interval, with the count since).

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{header, ConnectionType};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, Error};
use futures_util::Stream;

use crate::admission::clients::{client_addr, ClientKey};
use crate::config::Net;
use crate::ids::monotonic_ms;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::web::pipeline::Pace;
use crate::web::AppState;

/// A log line that is written at most once per interval, with the number of events since
/// the last one written: anything a client can cause many times a second is logged so.
pub struct Throttle {
    every_ms: u64,
    last_ms: AtomicU64,
    since: AtomicU64,
}

impl Throttle {
    /// A throttle writing at most once every `every_ms`.
    pub const fn new(every_ms: u64) -> Self {
        Throttle { every_ms, last_ms: AtomicU64::new(0), since: AtomicU64::new(0) }
    }

    /// Counts one event; `Some(count)` (events since the last line, this one included)
    /// when a line should be written now.
    pub fn hit(&self) -> Option<u64> {
        let count = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = monotonic_ms().max(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= self.every_ms)
            && self.last_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.since.fetch_sub(count, Ordering::Relaxed);
            Some(count)
        } else {
            None
        }
    }
}

/// Refused admin requests: counted, and logged at most once a second.
static ADMIN_REFUSALS: Throttle = Throttle::new(1000);

/// Counts an admin request refused for its token (`rampart_admin_refused_total`) and logs
/// it at most once a second with the count, so nobody can flood the log with them.
pub fn admin_refused(metrics: &Metrics, path: &str) {
    metrics.admin_refused();
    if let Some(refused) = ADMIN_REFUSALS.hit() {
        tracing::warn!(
            path,
            refused,
            "refused admin requests without the right bearer token (count since the last such line)"
        );
    }
}

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

/// Counts the error a response carries, if any, by its code.
fn count_error<B>(state: &AppState, response: &ServiceResponse<B>) {
    if let Some(error) = response.response().error().and_then(|e| e.as_error::<ErrorBody>()) {
        state.metrics.http_error(error.code);
    }
}

/// The edge middleware (`middleware::from_fn`): the ceiling, then the body deadline, then
/// the error count.
pub async fn limits<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    // Bounded pipelining: this request starts once its client has read enough of the
    // answers before it, and says how many bytes it took (src/web/pipeline.rs). Its place
    // is held until the answer is produced.
    let _turn = match req.conn_data::<Rc<Pace>>().cloned() {
        Some(pace) => {
            let (head, body, chunked) = wire_size(req.head());
            Some(pace.turn(head, body, chunked).await)
        }
        None => None,
    };
    if let Some(over) = req.conn_data::<ConnSlot>().and_then(ConnSlot::over) {
        let error = state.gate.refusal(over);
        state.metrics.http_error(error.code);
        let mut response = actix_web::ResponseError::error_response(&error);
        response.head_mut().set_connection_type(ConnectionType::Close);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0);
    if !has_body {
        let response = next.call(req).await?;
        count_error(&state, &response);
        return Ok(response.map_into_left_body());
    }
    let finished = Rc::new(Cell::new(false));
    let deadline = Duration::from_millis(state.config.server.body_timeout_ms);
    let inner = req.parts_mut().1.take();
    req.set_payload(Payload::Stream { payload: Box::pin(Deadline::new(inner, deadline, finished.clone())) });
    let mut response = next.call(req).await?;
    count_error(&state, &response);
    if !finished.get() {
        // Answered before the body was read (or cut at the deadline): close the connection
        // instead of draining whatever is still coming.
        response.response_mut().head_mut().set_connection_type(ConnectionType::Close);
    }
    Ok(response.map_into_left_body())
}

/// An `Expect: 100-continue` request refused before its body is sent.
pub struct ExpectRefused(ErrorBody);

impl From<ExpectRefused> for actix_http::Response<actix_web::body::BoxBody> {
    fn from(refused: ExpectRefused) -> Self {
        let mut response = actix_web::ResponseError::error_response(&refused.0);
        response.head_mut().set_connection_type(ConnectionType::Close);
        response.into()
    }
}

/// The answer to `Expect: 100-continue` (actix-http's expect service): a request whose
/// declared body is over `max_body` bytes gets 413 PAYLOAD_TOO_LARGE at once and its
/// connection is closed, instead of `100 Continue` and a body that would only be refused
/// once read. Anything else continues as usual.
pub async fn expect(
    req: actix_http::Request,
    max_body: u64,
    metrics: Arc<Metrics>,
) -> Result<actix_http::Request, ExpectRefused> {
    use actix_http::HttpMessage as _;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len > max_body => {
            let error = ErrorBody::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is {len} bytes; the limit is {max_body}"),
            )
            .with("max_bytes", max_body);
            metrics.http_error(error.code);
            Err(ExpectRefused(error))
        }
        _ => Ok(req),
    }
}

/// A request's size on the wire as its head says: the head's bytes as sent (exact for the
/// usual `Name: value` spacing), the declared body, and whether the body is chunked (its
/// length unknown).
fn wire_size(head: &actix_web::dev::RequestHead) -> (u64, u64, bool) {
    let target = head.uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    // "METHOD target HTTP/1.1\r\n", each "name: value\r\n", the blank line.
    let mut bytes = head.method.as_str().len() + 1 + target + 1 + 8 + 2 + 2;
    for (name, value) in head.headers().iter() {
        bytes += name.as_str().len() + 2 + value.len() + 2;
    }
    let body = head
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let chunked = head
        .headers()
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    (bytes as u64, body, chunked)
}

/// A request body with a deadline: after it, the stream ends with a `TimedOut` error.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    finished: Rc<Cell<bool>>,
    expired: bool,
}

impl Deadline {
    fn new(inner: Payload, after: Duration, finished: Rc<Cell<bool>>) -> Self {
        Deadline { inner, sleep: Box::pin(tokio::time::sleep(after)), finished, expired: false }
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.finished.set(true);
                Poll::Ready(None)
            }
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Whether a payload error is the body deadline.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// Sets the options every accepted socket needs: `TCP_NODELAY`, so a small frame (a
/// `state`) leaves at once instead of waiting for the peer's delayed ACK (measured: the
/// opponent's p50 went from 40.7 ms to under 1 ms), and `TCP_USER_TIMEOUT`, so a dead peer
/// is dropped (docs/DESIGN.md D10; zero keeps the OS default).
pub fn tune_accepted(stream: &tokio::net::TcpStream, user_timeout: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if !user_timeout.is_zero() {
        socket2::SockRef::from(stream).set_tcp_user_timeout(Some(user_timeout))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_writes_the_first_line_then_at_most_one_per_interval_with_the_count() {
        let throttle = Throttle::new(60_000);
        assert_eq!(throttle.hit(), Some(1));
        assert!((0..100).all(|_| throttle.hit().is_none()));
        // The count carried to the next line is everything since the last one.
        throttle.last_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.hit(), Some(101));
    }

    #[tokio::test]
    async fn accepted_sockets_send_small_frames_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr);
        let ((accepted, _), _client) = tokio::join!(async { listener.accept().await.expect("accept") }, client);
        assert!(!accepted.nodelay().expect("read"), "the default is Nagle's algorithm on");
        tune_accepted(&accepted, Duration::from_secs(30)).expect("tune");
        assert!(accepted.nodelay().expect("read"), "TCP_NODELAY on the accepted socket");
        let timeout = socket2::SockRef::from(&accepted).tcp_user_timeout().expect("read");
        assert_eq!(timeout, Some(Duration::from_secs(30)));
    }
}
