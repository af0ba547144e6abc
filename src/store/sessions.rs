//! Seat sessions (the seed review's item 2): for each seat token, by its keyed hash (never
//! the token), the game, the seat, the player's name and when they were last seen. Any
//! instance can read them, so a reconnect with the same token is recognised wherever it
//! lands.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::game::Seat;
use crate::ids::{monotonic_ms, GameId, TokenHash};
use crate::store::StoreFuture;

/// One seat session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSession {
    /// The game.
    pub game_id: GameId,
    /// The seat the token holds.
    pub seat: Seat,
    /// The player's display name.
    pub name: String,
    /// When a socket last joined or left with this token (RFC 3339).
    pub last_seen: String,
}

/// Seat sessions by token hash.
pub trait SessionStore: Send + Sync + 'static {
    /// Records (or replaces) the session of `hash` for `ttl`.
    fn put<'a>(&'a self, hash: &'a TokenHash, session: &'a SeatSession, ttl: Duration) -> StoreFuture<'a, ()>;
    /// The session of `hash`.
    fn get<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Option<SeatSession>>;
    /// Forgets the session of `hash`.
    fn remove<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()>;
}

/// The embedded session store.
#[derive(Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<TokenHash, (SeatSession, u64)>>,
    puts: std::sync::atomic::AtomicU64,
}

impl SessionStore for MemorySessions {
    fn put<'a>(&'a self, hash: &'a TokenHash, session: &'a SeatSession, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let until = monotonic_ms() + u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            // Expired sessions are swept every 1024 puts, not at each one.
            if self.puts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1024 == 0 {
                let now = monotonic_ms();
                sessions.retain(|_, (_, until)| *until > now);
            }
            sessions.insert(hash.clone(), (session.clone(), until));
            Ok(())
        })
    }

    fn get<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Option<SeatSession>> {
        Box::pin(async move {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            Ok(sessions.get(hash).filter(|(_, until)| *until > monotonic_ms()).map(|(s, _)| s.clone()))
        })
    }

    fn remove<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(hash);
            Ok(())
        })
    }
}
