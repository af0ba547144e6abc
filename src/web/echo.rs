//! `/ws/echo`, only in a conformance build (`cargo build --features conformance`): a
//! WebSocket that sends every text and binary message back, built on the same upgrade
//! (`src/web/upgrade.rs`), the same connection (`src/web/ws.rs`) and the same [`Socket`]
//! skeleton as the game and lobby sockets, so the Autobahn cases that `make conformance`
//! runs with kosoku exercise the stack players use: framing, pings, fragmentation, UTF-8
//! checks and the close handshake. A release build has no such path.

use std::sync::Arc;

use actix::prelude::*;

use crate::metrics::{Metrics, SocketKind};
use crate::web::socket::{Data, SessionLimits, Socket, Upgraded};
use crate::web::ws::{Incoming, ReadError};

/// One echo socket.
struct EchoSession {
    socket: Socket,
}

impl Actor for EchoSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.socket.start(ctx, |act| &mut act.socket);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.socket.stopped();
    }
}

impl StreamHandler<Result<Incoming, ReadError>> for EchoSession {
    fn handle(&mut self, item: Result<Incoming, ReadError>, ctx: &mut Context<Self>) {
        match self.socket.receive_data(ctx, item) {
            Some(Data::Text(text)) => self.socket.send_data(ctx, text.as_bytes(), true),
            Some(Data::Binary(bytes)) => self.socket.send_data(ctx, &bytes, false),
            None => {}
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Starts the echo on an upgraded connection.
pub fn start(upgraded: Upgraded, limits: Arc<SessionLimits>, metrics: Arc<Metrics>) {
    EchoSession::create(move |ctx| {
        let (socket, connection) = Socket::new(SocketKind::Echo, upgraded, limits, metrics);
        ctx.add_stream(connection);
        EchoSession { socket }
    });
}
