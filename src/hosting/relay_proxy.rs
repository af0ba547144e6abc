//! On the owner, a relayed seat: [`RemoteSession`], a small actor the game sees as an
//! ordinary socket route, publishing the game's frames and closes to the relaying
//! instance through the relay's publisher queue, in order, each numbered in the seat's
//! stream (`relay_wire::Order`) so the relaying instance can keep that order when Pub/Sub
//! does not (`relay_order`).

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::hosting::messages::ToSession;
use crate::hosting::relay_wire::{Order, Wire};
use crate::ids::InstanceId;

/// Stop a proxy.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct StopProxy;

/// On the owner, one relayed seat: the game sees it as a socket route; it publishes the
/// game's frames to the relaying instance.
pub struct RemoteSession {
    /// The relay's publisher queue: frames go straight to it, in order.
    pub(super) out: mpsc::UnboundedSender<(InstanceId, Wire)>,
    pub(super) to: InstanceId,
    pub(super) conn: u64,
    /// This instance (the frames' sender).
    pub(super) me: InstanceId,
    /// The stream's number: the proxy's local connection id (increasing on one instance,
    /// so a seat joined again here starts a newer stream).
    pub(super) stream: u64,
    /// The last number given.
    pub(super) seq: u64,
}

impl RemoteSession {
    fn next(&mut self) -> Option<Order> {
        self.seq += 1;
        Some(Order { from: self.me.clone(), stream: self.stream, seq: self.seq })
    }
}

impl Actor for RemoteSession {
    type Context = Context<Self>;
}

impl Handler<ToSession> for RemoteSession {
    type Result = ();
    fn handle(&mut self, msg: ToSession, ctx: &mut Context<Self>) {
        match msg {
            ToSession::Frame(text) => {
                let order = self.next();
                let wire = Wire::Frame { conn: self.conn, text: text.json().to_owned(), order };
                let _ = self.out.send((self.to.clone(), wire));
            }
            ToSession::Close { code, .. } => {
                let order = self.next();
                let _ = self.out.send((self.to.clone(), Wire::Close { conn: self.conn, code, order, from: None }));
                ctx.stop();
            }
        }
    }
}

impl Handler<StopProxy> for RemoteSession {
    type Result = ();
    fn handle(&mut self, _: StopProxy, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
