//! The relay's requests (a join, a command, a seat claim, a fault, a summary read) and their
//! replies, on the relaying side: each numbered, waiting for its reply, and sent again while
//! unanswered ([`Pending`]), the owner acting on each once (`answers.rs`).

use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{Relay, Request};
use crate::hosting::relay_wire::{request_id, set_request_id, Reply, Wire};
use crate::ids::InstanceId;
use crate::protocol::{ErrorBody, ErrorCode};

/// A request waiting for its reply. Pub/Sub may lose the request or its reply (a gap in a
/// subscription, a switchover), so a request not answered within [`RESEND_FIRST`] is sent
/// again, the wait doubling up to [`RESEND_MAX`], until its deadline; the owner acts on it
/// once and answers every copy ([`answers::Answers`]).
pub(super) struct Pending {
    pub(super) tx: oneshot::Sender<Reply>,
    pub(super) to: InstanceId,
    pub(super) wire: Wire,
    /// When it is sent again if still unanswered.
    pub(super) resend_at: Instant,
    /// The wait before that.
    pub(super) wait: Duration,
    /// Its deadline: not sent again after it.
    pub(super) until: Instant,
    /// A join: how many frames its socket had been delivered when it was sent.
    pub(super) frames_before: Option<u64>,
}

/// How long a request waits for its reply before it is sent again (a relayed move is
/// answered in milliseconds; a game that is busy answers the copies when it answers).
const RESEND_FIRST: Duration = Duration::from_millis(300);

/// The longest wait between two copies of a request.
const RESEND_MAX: Duration = Duration::from_secs(2);

/// How often the unanswered requests are looked at.
pub(super) const RESEND_CHECK: Duration = Duration::from_millis(100);

/// How long after a relayed join's answer its seat's first frame may take before the
/// owner is asked for the seat's frames again (the game sends its state on every join;
/// lost in a switchover's moment with nothing after it, no gap would ever show).
pub(super) const FIRST_FRAME_WITHIN: Duration = Duration::from_millis(500);

/// The first request number of this process: its start time in microseconds since the
/// epoch (a process cannot send a request a microsecond, so a restart's numbers are new).
pub(super) fn first_request_number() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_micros() as u64).max(1)
}

impl Relay {
    pub(super) fn request(&mut self, msg: Request) -> ResponseFuture<Result<Reply, ErrorBody>> {
        let req = self.next_req;
        self.next_req += 1;
        let mut wire = msg.wire;
        set_request_id(&mut wire, req);
        let (tx, rx) = oneshot::channel();
        let (now, within) = (Instant::now(), msg.within);
        let frames_before = match &wire {
            Wire::Join { conn, .. } => Some(self.relayed.get(conn).map_or(0, |r| r.delivered)),
            _ => None,
        };
        let pending = Pending {
            frames_before,
            tx,
            to: msg.to.clone(),
            wire: wire.clone(),
            resend_at: now + RESEND_FIRST,
            wait: RESEND_FIRST,
            until: now + within,
        };
        self.pending.insert(req, pending);
        self.send(msg.to, wire);
        Box::pin(async move {
            match tokio::time::timeout(within, rx).await {
                Ok(Ok(reply)) => Ok(reply),
                _ => Err(ErrorBody::new(
                    ErrorCode::GameRestarting,
                    "the server that runs this game did not answer; it is being recovered, retry shortly",
                )
                .with("retry_after_ms", 500)),
            }
        })
    }

    /// Sends again the requests that have had no reply for a while and are not yet due
    /// ([`Pending`]).
    pub(super) fn resend_unanswered(&mut self) {
        let now = Instant::now();
        let mut again = Vec::new();
        for pending in self.pending.values_mut() {
            if now >= pending.resend_at && now < pending.until {
                pending.wait = (pending.wait * 2).min(RESEND_MAX);
                pending.resend_at = now + pending.wait;
                again.push((pending.to.clone(), pending.wire.clone()));
            }
        }
        for (to, wire) in again {
            self.metrics.relay_resent();
            tracing::debug!(to = %to, req = request_id(&wire), "a relayed request had no reply yet; it is sent again");
            self.send(to, wire);
        }
    }
}
