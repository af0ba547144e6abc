//! `/ws/echo`, only in a conformance build (`cargo build --features conformance`): a
//! WebSocket that sends every text and binary message back, built on the same upgrade
//! (with its frame guard) and the same [`Socket`] skeleton as the game and lobby sockets,
//! so the Autobahn cases that `make conformance` runs with kosoku exercise the stack
//! players use: framing, pings, fragmentation, UTF-8 checks and the close handshake. A
//! release build has no such route.

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, ProtocolError};

use crate::web::socket::{Data, Socket, SocketKind};
use crate::web::{upgrade, Answer, State};

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

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for EchoSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        match self.socket.receive_data(ctx, item) {
            Some(Data::Text(text)) => self.socket.send_text(ctx, text.into()),
            Some(Data::Binary(bytes)) => self.socket.send_binary(ctx, bytes),
            None => {}
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// `GET /ws/echo`.
async fn echo_socket(state: State, req: HttpRequest, body: web::Payload) -> Answer<HttpResponse> {
    let (response, ws, stream, limits) = upgrade(&state, &req, body).await?;
    let metrics = state.metrics.clone();
    EchoSession::create(move |ctx| {
        ctx.add_stream(stream);
        EchoSession { socket: Socket::new(SocketKind::Echo, ws, limits, metrics) }
    });
    Ok(response)
}

/// Registers `/ws/echo`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/echo", web::get().to(echo_socket));
}
