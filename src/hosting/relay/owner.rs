//! The relay's owner side: relayed joins, commands, resyncs, leaves, seat claims, faults
//! and summary reads for this instance's games, each handed to the game through a
//! [`RemoteSession`] proxy that publishes the game's frames back to the relaying instance.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::answers::Seen;
use super::{Proxy, Relay};
use crate::hosting::messages::{ClaimSeat, Command, CommandOutcome, Join, Leave, Route};
use crate::hosting::registry::deliver;
use crate::hosting::relay_proxy::{RemoteSession, StopProxy};
use crate::hosting::relay_wire::{request_key, Reply, Wire};
use crate::ids::ConnId;
use crate::protocol::{close, ErrorBody};

impl Relay {
    /// Owner side: a relayed message for one of this instance's games.
    pub(super) fn owner_side(&mut self, ctx: &mut Context<Self>, wire: Wire) {
        // A request sent again (its reply was slow, or it or its reply was lost): acted on
        // once, every copy answered.
        if let Some((from, req)) = request_key(&wire) {
            match self.answers.arrived(from, req, Instant::now()) {
                Seen::First => {}
                Seen::Pending => return,
                Seen::Answered(reply) => {
                    let from = from.clone();
                    return self.send(from, Wire::Reply { req, reply });
                }
            }
        }
        match wire {
            Wire::Join { req, from, conn, game, token_hash, holding } => {
                let Some(cell) = self.registry.get(&game) else {
                    return self.reply(from, req, Reply::NotHere);
                };
                let Some(addr) = cell.addr() else { return self.reply(from, req, Reply::NotHere) };
                let kind = Some(cell.kind.to_owned());
                let Some(outbound) = self.outbound.clone() else { return };
                let key = (from.clone(), conn);
                let me = self.cluster.me.clone();
                let proxy = self.proxies.entry(key.clone()).or_insert_with(|| {
                    let local = ConnId::next();
                    let session =
                        RemoteSession { out: outbound.clone(), to: from.clone(), conn, me, stream: local.0, seq: 0 };
                    Proxy {
                        local,
                        game: game.clone(),
                        seat: None,
                        token_hash: token_hash.clone(),
                        resync_wanted: false,
                        addr: session.start(),
                    }
                });
                proxy.token_hash = token_hash.clone();
                let route = Route { conn: proxy.local, to: proxy.addr.clone().recipient() };
                let join = addr.join().send(Join { token_hash, route, holding });
                ctx.spawn(
                    async move { tokio::time::timeout(Duration::from_secs(5), join).await }.into_actor(self).map(
                        move |answer, act, _| {
                            let result = match answer {
                                Ok(Ok(result)) => result,
                                _ => Err(ErrorBody::not_answering()),
                            };
                            let mut resync = false;
                            match (&result, act.proxies.get_mut(&key)) {
                                (Ok(seat), Some(proxy)) => {
                                    proxy.seat = Some(*seat);
                                    resync = std::mem::take(&mut proxy.resync_wanted);
                                }
                                (Err(_), Some(proxy)) if proxy.seat.is_none() => {
                                    proxy.addr.do_send(StopProxy);
                                    act.proxies.remove(&key);
                                }
                                _ => {}
                            }
                            act.reply(from, req, Reply::Joined { result, kind });
                            if let Some(proxy) = act.proxies.get(&key).filter(|_| resync) {
                                let _ = act.resync(proxy);
                            }
                        },
                    ),
                );
            }
            Wire::Command { req, from, conn, game, seat, action, within_ms } => {
                let (Some(cell), Some(proxy)) = (self.registry.get(&game), self.proxies.get(&(from.clone(), conn)))
                else {
                    return self.reply(from, req, Reply::NotHere);
                };
                let command = Command {
                    seat,
                    action,
                    reply: proxy.addr.clone().recipient(),
                    deadline: Instant::now() + Duration::from_millis(within_ms),
                };
                let metrics = self.metrics.clone();
                ctx.spawn(async move { deliver(cell, command, metrics).await }.into_actor(self).map(
                    move |delivered, act, _| {
                        let outcome =
                            if delivered.is_ok() { CommandOutcome::Answered } else { CommandOutcome::Expired };
                        act.reply(from, req, Reply::Command { outcome });
                    },
                ));
            }
            Wire::Resync { from, conn } => {
                let key = (from.clone(), conn);
                // Its join is unanswered: its first frames may have gone into the gap too.
                if let Some(proxy) = self.proxies.get_mut(&key).filter(|p| p.seat.is_none()) {
                    proxy.resync_wanted = true;
                    return;
                }
                // A seat this instance does not know (any more), or whose game left: its
                // close may be what was lost. Closed with 1012, its client reconnects and
                // finds the game.
                if !self.proxies.get(&key).is_some_and(|proxy| self.resync(proxy)) {
                    if let Some(proxy) = self.proxies.remove(&key) {
                        proxy.addr.do_send(StopProxy);
                    }
                    let me = Some(self.cluster.me.clone());
                    self.send(from, Wire::Close { conn, code: close::RESTART, order: None, from: me });
                }
            }
            Wire::Leave { from, conn, game, seat } => {
                if let Some(proxy) = self.proxies.remove(&(from, conn)) {
                    if let Some(addr) = self.registry.get(&game).and_then(|c| c.addr()) {
                        addr.leave().do_send(Leave { seat, conn: proxy.local });
                    }
                    proxy.addr.do_send(StopProxy);
                }
            }
            Wire::ClaimSeat { req, from, game, name, token_hash } => {
                let Some(addr) = self.registry.get(&game).and_then(|c| c.addr()) else {
                    return self.reply(from, req, Reply::NotHere);
                };
                let claim = addr.claim().send(ClaimSeat { name, token_hash });
                ctx.spawn(
                    async move { tokio::time::timeout(Duration::from_secs(2), claim).await }.into_actor(self).map(
                        move |answer, act, _| {
                            let result = match answer {
                                Ok(Ok(result)) => result,
                                _ => Err(ErrorBody::not_answering()),
                            };
                            act.reply(from, req, Reply::Seat { result });
                        },
                    ),
                );
            }
            Wire::Fault { req, from, game, fault } => match self.registry.get(&game) {
                Some(cell) => {
                    tracing::warn!(game_id = %game, ?fault, from = %from, "a relayed admin fault was injected");
                    let injected = crate::hosting::registry::inject(cell, fault, self.metrics.clone());
                    ctx.spawn(injected.into_actor(self).map(move |(), act, _| {
                        act.reply(from, req, Reply::Fault { result: Ok(()) });
                    }));
                }
                None => self.reply(from, req, Reply::NotHere),
            },
            Wire::Summary { req, from, game } => {
                let Some(cell) = self.registry.get(&game) else {
                    return self.reply(from, req, Reply::NotHere);
                };
                ctx.spawn(async move { cell.live_summary().await }.into_actor(self).map(move |summary, act, _| {
                    let result = Ok(serde_json::to_value(summary).unwrap_or_default());
                    act.reply(from, req, Reply::Summary { result });
                }));
            }
            Wire::Reply { .. } | Wire::Frame { .. } | Wire::Close { .. } => {}
        }
    }

    /// Has the game of a seat relayed from another instance send it its current frames:
    /// joined again with the same route, the seat stays attached (no REPLACED) and the game
    /// sends what it sends on any join.
    /// False when the game is not here any more, or the seat's proxy stopped (the game
    /// closed it: its close is on its way or was lost).
    pub(super) fn resync(&self, proxy: &Proxy) -> bool {
        if !proxy.addr.connected() {
            return false;
        }
        let Some(addr) = self.registry.get(&proxy.game).and_then(|c| c.addr()) else { return false };
        if let Some(seat) = proxy.seat {
            let route = Route { conn: proxy.local, to: proxy.addr.clone().recipient() };
            addr.join().do_send(Join { token_hash: proxy.token_hash.clone(), route, holding: Some(seat) });
        }
        true
    }
}
