//! Seat sessions in Redis: `P:session:{HASH}` holds the session as JSON and expires after
//! the session's time-to-live. The key is the token's keyed hash; the token never reaches
//! Redis.

use std::time::Duration;

use super::{decode, encode, RedisConn};
use crate::ids::TokenHash;
use crate::store::sessions::{SeatSession, SessionStore};
use crate::store::StoreFuture;

/// Seat sessions in Redis.
pub struct RedisSessions {
    conn: RedisConn,
}

impl RedisSessions {
    /// Sessions on `conn`.
    pub fn new(conn: RedisConn) -> Self {
        RedisSessions { conn }
    }

    fn key(&self, hash: &TokenHash) -> String {
        self.conn.key(&format!("session:{{{}}}", hash.as_str()))
    }
}

impl SessionStore for RedisSessions {
    fn put<'a>(&'a self, hash: &'a TokenHash, session: &'a SeatSession, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(hash)).arg(encode("session put", session)?).arg("PX").arg(ttl.as_millis().max(1) as u64);
            let _: String = self.conn.query("session put", &cmd).await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Option<SeatSession>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(hash));
            let data: Option<String> = self.conn.query("session get", &cmd).await?;
            data.map(|d| decode("session get", &d)).transpose()
        })
    }

    fn remove<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.key(hash));
            let _: i64 = self.conn.query("session remove", &cmd).await?;
            Ok(())
        })
    }
}
