//! The faults a bot injects into its own game while it is at rest, through the admin API:
//! one fault and the check that the game restores the board it had, or crashes in a row
//! until the restart limit closes the game.

use std::time::{Duration, Instant};

use super::game::{Flow, Game};
use super::FaultKind;
use crate::net::Ev;

/// How long an injected fault may take to show its restart.
const RESTORE_WITHIN: Duration = Duration::from_secs(20);

impl Game<'_> {
    /// Injects `kind` into this game (at rest) and checks its restore.
    pub(super) async fn fault(&mut self, kind: FaultKind, rng: &mut fastrand::Rng) -> Flow {
        self.handle.in_own_fault.set(true);
        let flow = self.fault_inner(kind, rng).await;
        self.handle.in_own_fault.set(false);
        flow
    }

    pub(super) async fn fault_inner(&mut self, kind: FaultKind, rng: &mut fastrand::Rng) -> Flow {
        let url = format!("{}/api/v1/admin/games/{}/fault", self.base(0), self.id);
        let mut accepted = false;
        for _ in 0..5 {
            match self.world.api.admin_post(&url, &kind.body()).await {
                Ok((202, _)) => {
                    accepted = true;
                    break;
                }
                Ok((410, _)) => return Flow::Over,
                Ok((503, b)) => {
                    let retry = b["error"]["details"]["retry_after_ms"].as_u64().unwrap_or(250);
                    tokio::time::sleep(Duration::from_millis(retry.clamp(50, 2000))).await;
                }
                Ok((status, b)) => {
                    self.world.broken(format!("game {}: the admin fault answered HTTP {status} {b}", self.id));
                    return Flow::Go;
                }
                Err(e) => {
                    self.err("ADMIN_UNREACHABLE", &e);
                    return Flow::Go;
                }
            }
        }
        if !accepted {
            return Flow::Go;
        }
        *self.world.tally.borrow_mut().faults.entry(kind.name()).or_default() += 1;
        self.restore = Some((self.len(), vec![false; self.seats.len()], vec![false; self.seats.len()]));
        if let FaultKind::PanicNext = kind {
            // The next command crashes the game: play it (INTERNAL, restart, the same board,
            // then the move again).
            if let Flow::Over = self.own_move(rng).await {
                return Flow::Over;
            }
        }
        let deadline = Instant::now() + RESTORE_WITHIN;
        while self.restore.is_some() && self.status != "failed" {
            match self.next(deadline).await {
                None => {
                    self.world.broken(format!(
                        "game {}: no restart within {RESTORE_WITHIN:?} of an injected {}",
                        self.id,
                        kind.name()
                    ));
                    self.restore = None;
                    return Flow::Over;
                }
                Some((i, Ev::Closed(code))) => {
                    let why = format!("CLOSED_{}", code.map_or("NONE".to_owned(), |c| c.to_string()));
                    if !self.recover_seat(i, &why).await {
                        return Flow::Over;
                    }
                }
                Some((i, ev)) => {
                    let _ = self.on_event(i, &ev);
                }
            }
        }
        if self.status == "playing" {
            Flow::Go
        } else {
            Flow::Over
        }
    }

    /// Crashes the game until its restart limit closes it.
    pub(super) async fn policy_probe(&mut self, most: u32, rng: &mut fastrand::Rng) -> Flow {
        *self.world.tally.borrow_mut().faults.entry("policy_probe").or_default() += 1;
        for _ in 0..most {
            if let Flow::Over = self.fault(FaultKind::Panic, rng).await {
                break;
            }
        }
        if !self.failed_seen {
            self.world
                .broken(format!("game {}: {most} panics in a row did not close it per its restart policy", self.id));
        }
        Flow::Over
    }
}
