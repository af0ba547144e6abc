//! LobbySession is an actor, one per `/ws/lobby` socket. It shows one page of the lobby
//! (the games every instance shows, fed by the health-events stream, and this server's
//! health): the first page on connect, another after `{"type":"page","page":N}`. A page
//! goes out only when what it shows changed since the last one this socket was sent, and
//! at most once per `lobby.push_interval_ms` — changes in between wait and go together, and
//! asking for pages does not get around it — so a socket's output is bounded however many
//! games move. After a `{"type":"watch","ticket"}` frame it also sends the ticket's place
//! in line (`waitlist` frames with `position` and `eta_secs`) until it is admitted
//! (`waitlist` with the seat). Watching keeps the ticket alive. It is built on the same
//! [`Socket`] as a game seat (bounded queue, heartbeats, rate and size limits, close
//! handshake); a lobby socket whose client sends no frame of its own for
//! `server.lobby_idle_timeout_ms` is closed with 1001.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::admission::{AdmissionController, WaitlistNotice, Watch};
use crate::ids::Ticket;
use crate::lobby::LobbyView;
use crate::protocol::{close, ErrorBody, LobbyFrame, LobbyRequest, SharedFrame, WaitlistStatus};
use crate::web::socket::Socket;
use crate::web::ws::{Incoming, ReadError};

/// How often a lobby socket checks that its client is still there.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// One lobby socket.
pub struct LobbySession {
    socket: Socket,
    view: Arc<LobbyView>,
    admission: Addr<AdmissionController>,
    /// The page this socket shows.
    page: u32,
    /// The last `lobby` frame sent.
    last_sent: Option<SharedFrame>,
    /// The client asked for a page: it is sent even if it is the one last sent.
    asked: bool,
    /// When the next `lobby` frame may go.
    next_push: Instant,
    /// A push is scheduled for `next_push`.
    push_scheduled: bool,
    watching: Option<Ticket>,
}

/// The lobby changed.
struct LobbyChanged;

/// The server is shutting down.
struct ShuttingDown;

impl StreamHandler<ShuttingDown> for LobbySession {
    fn handle(&mut self, _: ShuttingDown, ctx: &mut Context<Self>) {
        self.socket.close(ctx, close::RESTART, "server restarting");
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<LobbyChanged> for LobbySession {
    fn handle(&mut self, _: LobbyChanged, ctx: &mut Context<Self>) {
        self.push_soon(ctx);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl LobbySession {
    /// A session for an upgraded `/ws/lobby` connection.
    pub fn new(socket: Socket, view: Arc<LobbyView>, admission: Addr<AdmissionController>) -> Self {
        LobbySession {
            socket,
            view,
            admission,
            page: 0,
            last_sent: None,
            asked: false,
            next_push: Instant::now(),
            push_scheduled: false,
            watching: None,
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: &LobbyFrame) {
        self.socket.send_text(ctx, frame.to_frame());
    }

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorBody) {
        self.socket.send_error(ctx, error, None);
    }

    /// Sends this socket's page now if the push interval allows, else once it does (one
    /// push is scheduled at a time, and it sends the page as it is then).
    fn push_soon(&mut self, ctx: &mut Context<Self>) {
        if self.push_scheduled {
            return;
        }
        let wait = self.next_push.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return self.push(ctx);
        }
        self.push_scheduled = true;
        ctx.run_later(wait, |act, ctx| {
            act.push_scheduled = false;
            act.push(ctx);
        });
    }

    /// Sends this socket's page unless it is the one last sent (and was not asked for).
    fn push(&mut self, ctx: &mut Context<Self>) {
        let frame = self.view.page_frame(self.page);
        // Most often the very frame last sent (shared, built once per rebuild and page).
        let same =
            self.last_sent.as_ref().is_some_and(|last| last.wire().as_ptr() == frame.wire().as_ptr() || *last == frame);
        if same && !std::mem::take(&mut self.asked) {
            return;
        }
        self.asked = false;
        self.view.sent(&frame);
        self.last_sent = Some(frame.clone());
        self.next_push = Instant::now() + self.view.settings().push_interval;
        self.socket.send_text(ctx, frame);
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        match LobbyRequest::parse(text) {
            Ok(LobbyRequest::Ping(id)) => self.send(ctx, &LobbyFrame::Pong { id }),
            Ok(LobbyRequest::Watch(ticket)) => {
                let previous = self.watching.replace(ticket.clone()).filter(|p| *p != ticket);
                self.admission.do_send(Watch { ticket, watcher: ctx.address().recipient(), previous });
            }
            Ok(LobbyRequest::Page(page)) => {
                self.page = page;
                self.asked = true;
                self.push_soon(ctx);
            }
            Err(error) => self.error(ctx, error),
        }
    }
}

impl Actor for LobbySession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act: &mut Self| &mut act.socket);
        let mut changes = self.view.subscribe();
        changes.mark_unchanged();
        self.push(ctx);
        ctx.add_stream(futures_util::stream::unfold(changes, |mut rx| async move {
            rx.changed().await.ok()?;
            Some((LobbyChanged, rx))
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
                act.socket.close(ctx, close::GOING_AWAY, "idle: no frame from the client");
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
