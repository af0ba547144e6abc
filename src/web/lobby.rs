//! LobbySession is an actor, one per `/ws/lobby` socket. It pushes the lobby frame (the
//! games every instance shows, fed by the health-events stream, and this server's health)
//! whenever [`LobbyView`] has a new one — never an identical one twice — and, after a
//! `{"type":"watch","ticket"}` frame, the ticket's place in line (`waitlist` frames with
//! `position` and `eta_secs`) until it is admitted (`waitlist` with the seat). Watching
//! keeps the ticket alive. It is built on the same [`Socket`] as a game seat (bounded
//! queue, heartbeats, rate and size limits, close handshake); a lobby socket whose client
//! sends no frame of its own for `server.lobby_idle_timeout_ms` is closed with 1001.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::admission::{AdmissionController, WaitlistNotice, Watch};
use crate::ids::Ticket;
use crate::lobby::LobbyView;
use crate::protocol::{ErrorBody, LobbyFrame, LobbyRequest, SharedFrame, WaitlistStatus};
use crate::web::socket::Socket;
use crate::web::ws::{Incoming, ReadError};

/// How often a lobby socket checks that its client is still there.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// One lobby socket.
pub struct LobbySession {
    socket: Socket,
    view: Arc<LobbyView>,
    admission: Addr<AdmissionController>,
    last_snapshot: Option<SharedFrame>,
    watching: Option<Ticket>,
}

/// A new lobby frame from the view.
struct LobbyUpdate(SharedFrame);

/// The server is shutting down.
struct ShuttingDown;

impl StreamHandler<ShuttingDown> for LobbySession {
    fn handle(&mut self, _: ShuttingDown, ctx: &mut Context<Self>) {
        self.socket.close(ctx, 1012, "server restarting");
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<LobbyUpdate> for LobbySession {
    fn handle(&mut self, frame: LobbyUpdate, ctx: &mut Context<Self>) {
        self.snapshot(ctx, frame.0);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl LobbySession {
    /// A session for an upgraded `/ws/lobby` connection.
    pub fn new(socket: Socket, view: Arc<LobbyView>, admission: Addr<AdmissionController>) -> Self {
        LobbySession { socket, view, admission, last_snapshot: None, watching: None }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: &LobbyFrame) {
        self.socket.send_text(ctx, frame.to_frame());
    }

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorBody) {
        self.socket.send_error(ctx, error, None);
    }

    /// Sends a lobby frame unless it is the one last sent.
    fn snapshot(&mut self, ctx: &mut Context<Self>, frame: SharedFrame) {
        if frame.json().is_empty() || self.last_snapshot.as_ref() == Some(&frame) {
            return;
        }
        self.last_snapshot = Some(frame.clone());
        self.socket.send_text(ctx, frame);
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        match LobbyRequest::parse(text) {
            Ok(LobbyRequest::Ping(id)) => self.send(ctx, &LobbyFrame::Pong { id }),
            Ok(LobbyRequest::Watch(ticket)) => {
                let previous = self.watching.replace(ticket.clone()).filter(|p| *p != ticket);
                self.admission.do_send(Watch { ticket, watcher: ctx.address().recipient(), previous });
            }
            Err(error) => self.error(ctx, error),
        }
    }
}

impl Actor for LobbySession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act: &mut Self| &mut act.socket);
        let frames = self.view.subscribe();
        let first = frames.borrow().clone();
        self.snapshot(ctx, first);
        ctx.add_stream(futures_util::stream::unfold(frames, |mut rx| async move {
            rx.changed().await.ok()?;
            let text = rx.borrow_and_update().clone();
            Some((LobbyUpdate(text), rx))
        }));
        let mut closing = self.view.closing();
        let shutdown = async move { closing.wait_for(|closing| *closing).await.is_ok() };
        ctx.add_stream(futures_util::StreamExt::filter_map(
            futures_util::stream::once(shutdown),
            |closing| async move { closing.then_some(ShuttingDown) },
        ));
        ctx.run_interval(IDLE_CHECK, |act, ctx| {
            // A lobby socket must say something now and then (the page pings while it is
            // open): one opened and forgotten does not hold a connection for ever.
            let idle_limit = act.socket.limits().lobby_idle_timeout;
            if act.socket.idle_for() > idle_limit {
                tracing::debug!(
                    conn = act.socket.conn.0,
                    idle_ms = idle_limit.as_millis() as u64,
                    "closing an idle lobby socket"
                );
                act.socket.close(ctx, 1001, "idle: no frame from the client");
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.socket.stopped();
    }
}

impl Handler<WaitlistNotice> for LobbySession {
    type Result = ();

    fn handle(&mut self, msg: WaitlistNotice, ctx: &mut Context<Self>) {
        let frame = match msg {
            WaitlistNotice::Waiting { position, eta_secs } => WaitlistStatus::Waiting { position, eta_secs },
            WaitlistNotice::Admitted(grant) => {
                self.watching = None;
                WaitlistStatus::Admitted(grant)
            }
            WaitlistNotice::Unknown => {
                self.watching = None;
                return self.error(ctx, ErrorBody::ticket_not_found("it left, expired or never existed"));
            }
        };
        self.send(ctx, &LobbyFrame::Waitlist(frame));
    }
}

impl StreamHandler<Result<Incoming, ReadError>> for LobbySession {
    fn handle(&mut self, item: Result<Incoming, ReadError>, ctx: &mut Context<Self>) {
        if let Some(text) = self.socket.receive(ctx, item) {
            self.on_text(ctx, &text);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
