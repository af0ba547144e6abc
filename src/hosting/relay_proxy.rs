//! On the owner, a relayed seat: [`RemoteSession`], a small actor the game sees as an
//! ordinary socket route, publishing the game's frames and closes to the relaying
//! instance through the relay's publisher queue, in order.

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::hosting::messages::ToSession;
use crate::hosting::relay_wire::Wire;
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
}

impl Actor for RemoteSession {
    type Context = Context<Self>;
}

impl Handler<ToSession> for RemoteSession {
    type Result = ();
    fn handle(&mut self, msg: ToSession, ctx: &mut Context<Self>) {
        match msg {
            ToSession::Frame(text) => {
                let _ = self.out.send((self.to.clone(), Wire::Frame { conn: self.conn, text: text.json().to_owned() }));
            }
            ToSession::Close { code, .. } => {
                let _ = self.out.send((self.to.clone(), Wire::Close { conn: self.conn, code }));
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
