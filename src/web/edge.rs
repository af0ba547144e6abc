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
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
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

use crate::admission::clients::{client_addr, ClientKey, Net};
use crate::ids::monotonic_ms;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode};
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

/// Open connections, against the ceiling.
pub struct ConnectionGate {
    open: AtomicUsize,
    /// Of those, upgraded to WebSockets (closing ones included, until their TCP connection is gone).
    upgraded: AtomicUsize,
    ceiling: usize,
    metrics: Arc<Metrics>,
    warnings: Throttle,
}

impl ConnectionGate {
    /// A gate letting `ceiling` connections be served at once.
    pub fn new(ceiling: usize, metrics: Arc<Metrics>) -> Self {
        ConnectionGate {
            open: AtomicUsize::new(0),
            upgraded: AtomicUsize::new(0),
            ceiling,
            metrics,
            warnings: Throttle::new(10_000),
        }
    }

    /// The ceiling in force.
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// WebSocket connections open now, closing ones included.
    pub fn upgraded(&self) -> usize {
        self.upgraded.load(Ordering::Relaxed)
    }

    /// Takes a slot for a new connection; whether it is over the ceiling is decided now.
    pub fn enter(self: &Arc<Self>) -> ConnSlot {
        let n = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.metrics.connection_open(1);
        ConnSlot { gate: self.clone(), over: n > self.ceiling, upgraded: false }
    }

    /// Takes the slot an upgraded connection holds for its life (the request's own slot,
    /// taken when it was accepted, goes with the HTTP dispatcher a moment later).
    pub fn enter_upgraded(self: &Arc<Self>) -> ConnSlot {
        self.upgraded.fetch_add(1, Ordering::AcqRel);
        let mut slot = self.enter();
        slot.upgraded = true;
        slot
    }

    /// Counts a refusal (as [`ConnectionGate::refused`]) and answers the error the refused
    /// request gets: SERVER_BUSY `reason: "connections"`, the same for a route and an upgrade.
    pub fn refusal(&self) -> ErrorBody {
        self.refused();
        ErrorBody::new(
            ErrorCode::ServerBusy,
            format!("the server is holding its maximum of {} connections; retry shortly", self.ceiling),
        )
        .with("reason", "connections")
        .with("retry_after_ms", 1000)
    }

    /// Counts a refusal; logs a warning at most every ten seconds, with the count.
    fn refused(&self) {
        self.metrics.connection_refused();
        if let Some(refused) = self.warnings.hit() {
            tracing::warn!(
                ceiling = self.ceiling,
                open = self.open(),
                refused,
                "refusing requests: the server holds its maximum of connections (server.max_connections)"
            );
        }
    }
}

/// One accepted connection's place; stored in the connection's data and released when it
/// closes.
pub struct ConnSlot {
    gate: Arc<ConnectionGate>,
    over: bool,
    upgraded: bool,
}

impl ConnSlot {
    /// Whether the connection came past the ceiling (its requests are refused).
    pub fn over(&self) -> bool {
        self.over
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        if self.upgraded {
            self.gate.upgraded.fetch_sub(1, Ordering::AcqRel);
        }
        self.gate.metrics.connection_open(-1);
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
    if req.conn_data::<ConnSlot>().is_some_and(|slot| slot.over) {
        let error = state.gate.refusal();
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
