//! The relay's relaying side: a relayed socket's frames and close, put back in the order
//! their owner numbered them ([`Ordered`](crate::hosting::relay_order::Ordered)), a gap
//! given up after [`HOLD`], and delivered to the local session.

use std::time::Instant;

use actix::prelude::*;

use super::{Relay, FIRST_FRAME_WITHIN};
use crate::hosting::messages::ToSession;
use crate::hosting::relay_order::{Item, Taken, HOLD};
use crate::hosting::relay_wire::{Order, Wire};
use crate::ids::InstanceId;
use crate::protocol::{close, SharedFrame};
use crate::runtime::system::SystemActor as _;

impl Relay {
    /// A frame or close for a relayed socket, put in its stream's order ([`Ordered`]).
    /// `from`: the sender of an item without an `Order` (when it says).
    pub(super) fn relayed_item(
        &mut self,
        ctx: &mut Context<Self>,
        conn: u64,
        item: Item,
        order: Option<Order>,
        from: Option<InstanceId>,
    ) {
        let Some(relayed) = self.relayed.get_mut(&conn) else { return };
        // From an instance that is not this socket's owner any more: its game moved.
        if let Some(sender) = order.as_ref().map(|o| &o.from).or(from.as_ref()).filter(|f| **f != relayed.owner) {
            tracing::debug!(conn, from = %sender, owner = %relayed.owner, "dropped a relayed frame from a former owner");
            return;
        }
        let taken = match order {
            Some(order) => relayed.order.take(order.stream, order.seq, item),
            None => Taken { ready: vec![item], ..Taken::default() },
        };
        if taken.late {
            tracing::debug!(conn, "dropped a relayed frame that came after a later one");
        }
        if taken.gap_opened {
            let gap = relayed.order.gap();
            ctx.run_later(HOLD, move |act, ctx| {
                act.guarded(ctx, |act, _| {
                    let Some(relayed) = act.relayed.get_mut(&conn) else { return };
                    if gap.is_some() && relayed.order.gap() == gap {
                        let ready = relayed.order.skip();
                        act.gave_up_gap(conn, ready);
                    }
                });
            });
        }
        if taken.gap_skipped {
            self.gave_up_gap(conn, taken.ready);
        } else {
            self.deliver_relayed(conn, taken.ready);
        }
    }

    /// Frames missing from a relayed socket's stream did not come: what came after them
    /// goes to the socket, and its owner is asked for the seat's current frames.
    /// A socket that what was held closed is not resynced.
    pub(super) fn gave_up_gap(&mut self, conn: u64, ready: Vec<Item>) {
        tracing::debug!(conn, "relayed frames were missing; the owner is asked for the seat's frames again");
        self.metrics.relay_gap();
        self.deliver_relayed(conn, ready);
        if let Some(relayed) = self.relayed.get(&conn) {
            self.send(relayed.owner.clone(), Wire::Resync { from: self.cluster.me.clone(), conn });
        }
    }

    /// A relayed join was answered: the game sent the seat its frames, which come at once.
    /// None delivered since the join was sent (`before`) within [`FIRST_FRAME_WITHIN`]:
    /// they were lost (a switchover's moment, with nothing after them to show a gap), and
    /// the owner is asked for them again; counted as a gap.
    pub(super) fn expect_frames(&mut self, ctx: &mut Context<Self>, conn: u64, owner: InstanceId, before: u64) {
        ctx.run_later(FIRST_FRAME_WITHIN, move |act, ctx| {
            act.guarded(ctx, |act, _| {
                let Some(relayed) = act.relayed.get(&conn) else { return };
                if relayed.owner == owner && relayed.delivered == before {
                    tracing::debug!(conn, owner = %owner, "a relayed join brought no frame; the owner is asked for the seat's frames again");
                    act.metrics.relay_gap();
                    act.send(owner, Wire::Resync { from: act.cluster.me.clone(), conn });
                }
            });
        });
    }

    /// Gaps whose timer was lost (the relay restarted meanwhile) are given up here.
    pub(super) fn give_up_overdue_gaps(&mut self) {
        let now = Instant::now();
        let overdue: Vec<u64> =
            self.relayed.iter().filter(|(_, r)| r.order.overdue(now)).map(|(conn, _)| *conn).collect();
        for conn in overdue {
            if let Some(relayed) = self.relayed.get_mut(&conn) {
                let ready = relayed.order.skip();
                self.gave_up_gap(conn, ready);
            }
        }
    }

    pub(super) fn deliver_relayed(&mut self, conn: u64, items: Vec<Item>) {
        for item in items {
            match item {
                Item::Frame(text) => {
                    if let Some(relayed) = self.relayed.get_mut(&conn) {
                        relayed.delivered += 1;
                        relayed.to.do_send(ToSession::Frame(SharedFrame::text(&text)));
                    }
                }
                Item::Close(code) => {
                    if let Some(relayed) = self.relayed.remove(&conn) {
                        relayed.to.do_send(ToSession::Close { code, reason: close_reason(code) });
                    }
                }
            }
        }
    }
}

/// The reason sent with a close code that crossed from another instance.
fn close_reason(code: u16) -> &'static str {
    match code {
        close::REPLACED => "seat opened on another connection",
        close::RESTART => "server restarting; your game is saved",
        _ => "closed by the server that runs the game",
    }
}
