//! The game supervisor's watchdog round (every `supervision.watchdog_interval_ms`): a game
//! busy past its kind's `hang_timeout_ms`, or an arbiter that stops answering its ping,
//! costs that arbiter its thread (abandoned, never joined; a fresh arbiter takes its place
//! and its games resume there); games nobody has been connected to for
//! `server.abandoned_game_secs` are asked to close; ended games nobody watches are removed
//! once their time-to-live passes (at once while the server is overloaded).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{GameSupervisor, Slot};
use crate::hosting::messages::{CloseAbandoned, StartMode};
use crate::hosting::registry::{GameCell, RunState};
use crate::ids::monotonic_ms;
use crate::metrics::RestartReason;

impl GameSupervisor {
    /// One watchdog round: arbiters holding a hung game or not answering their ping are
    /// replaced, abandoned games are asked to close, ended ones are reaped.
    pub(super) fn watchdog(&mut self) {
        let now = monotonic_ms();
        // An arbiter that stops answering is lost after the shortest hang timeout of the
        // kinds it may host.
        let hang_timeout_ms = self.env.policies.iter().map(|(_, p)| p.hang_timeout_ms).min().unwrap_or(u64::MAX);
        let interval_ms = self.config.supervision.watchdog_interval_ms;
        let mut lost = BTreeSet::new();
        let cells = self.registry.all();
        for cell in &cells {
            let busy = cell.busy_since_ms.load(Ordering::Acquire);
            if busy != 0 && now.saturating_sub(busy) > self.env.policy(cell.kind).hang_timeout_ms {
                lost.insert(cell.arbiter.load(Ordering::Acquire));
            }
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let silent_ms = now.saturating_sub(slot.last_pong_ms.load(Ordering::Acquire));
            if silent_ms > hang_timeout_ms + interval_ms {
                tracing::error!(arbiter = i, silent_ms, "game arbiter stopped answering the watchdog");
                lost.insert(i);
            } else if !slot.ping_pending.swap(true, Ordering::AcqRel) {
                let (pong, pending) = (slot.last_pong_ms.clone(), slot.ping_pending.clone());
                slot.arbiter.spawn(async move {
                    pong.store(monotonic_ms(), Ordering::Release);
                    pending.store(false, Ordering::Release);
                });
            }
        }
        for slot in lost {
            self.replace_arbiter(slot, &cells, now);
        }
        self.close_abandoned(&cells, now);
        self.reap(&cells, now);
    }

    /// Asks every game nobody has been connected to for `server.abandoned_game_secs` (since
    /// its creation, or since its last player left) to close. The game itself decides: a
    /// player who reconnected in the meantime keeps it.
    fn close_abandoned(&self, cells: &[Arc<GameCell>], now: u64) {
        let limit_ms = self.config.server.abandoned_game_secs.saturating_mul(1000);
        for cell in cells {
            let since = cell.unattended_since_ms.load(Ordering::Acquire);
            if since == 0 || now.saturating_sub(since) <= limit_ms || cell.ended_at_ms.load(Ordering::Acquire) != 0 {
                continue;
            }
            // Ask once per period: a refusal (someone came back) restarts the clock.
            if cell.unattended_since_ms.compare_exchange(since, now, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                if let Some(game) = cell.addr() {
                    game.close_abandoned()
                        .do_send(CloseAbandoned { unattended_secs: now.saturating_sub(since) / 1000 });
                }
            }
        }
    }

    /// Abandons the thread of arbiter `slot` and resumes its games on a fresh one. A game
    /// caught inside a handler is the one holding the thread: it recovers under its restart
    /// policy as hung. The others were only moved.
    fn replace_arbiter(&mut self, slot: usize, cells: &[Arc<GameCell>], now: u64) {
        let old = std::mem::replace(&mut self.slots[slot], Slot::new());
        // Ask the old event loop to stop once its thread is free again; never join it.
        old.arbiter.stop();
        self.metrics.arbiter_lost();
        let (mut moved, mut hung) = (0, 0);
        for cell in cells.iter().filter(|c| c.arbiter.load(Ordering::Acquire) == slot) {
            let busy = cell.busy_since_ms.swap(0, Ordering::AcqRel);
            // From here the old incarnation can neither publish nor speak.
            let Some(snapshot) = cell.begin_move() else {
                tracing::error!(game_id = %cell.id, "a game on a lost arbiter has no snapshot to resume from");
                continue;
            };
            let mode = match cell.run_state() {
                RunState::Failed => StartMode::Tombstone,
                _ if busy != 0 => {
                    hung += 1;
                    tracing::error!(game_id = %cell.id, busy_ms = now.saturating_sub(busy), hang_timeout_ms = self.env.policy(cell.kind).hang_timeout_ms, "game handler is hung");
                    StartMode::Recover(RestartReason::Hang)
                }
                // Crashed while the thread was held: its restart begins here.
                RunState::Crashed => StartMode::Recover(RestartReason::Panic),
                RunState::Restarting => StartMode::Resume,
                RunState::Running => {
                    moved += 1;
                    self.metrics.game_moved();
                    StartMode::Moved
                }
            };
            self.spawn(cell, snapshot, mode, slot);
            // Commands waiting in the old mailbox are sent again to the new incarnation.
            cell.moved();
        }
        tracing::error!(arbiter = slot, moved, hung, "abandoned a hung game arbiter's thread and resumed its games on a fresh one; restart the process when convenient");
    }

    /// Removes ended games that nobody watches once their time-to-live has passed, or at
    /// once while the server is overloaded (their players have had the result; with Redis
    /// the snapshot stays for its own TTL, so a late visitor still sees it).
    pub(super) fn reap(&self, cells: &[Arc<GameCell>], now: u64) {
        let ttl_ms = if self.overloaded { 0 } else { self.config.server.finished_game_ttl_secs.saturating_mul(1000) };
        for cell in cells {
            let ended = cell.ended_at_ms.load(Ordering::Acquire);
            if ended != 0 && now.saturating_sub(ended) >= ttl_ms && !cell.has_routes() {
                tracing::info!(game_id = %cell.id, "removing an ended game nobody is watching");
                self.remove(cell);
            }
        }
    }
}
