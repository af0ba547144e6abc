//! Looking into a private Redis as a test checks what it holds: one command on a connection
//! of the test's own, a game's stored snapshot and board, and a wait until a board a player
//! was shown is stored.
#![allow(dead_code, missing_docs)]

use std::time::Duration;

use serde_json::Value;

use super::eventually;

/// How long one look may take (a Redis being killed or promoted may not answer).
const LOOK: Duration = Duration::from_millis(500);

/// One command (`args[0]` and its arguments) to the Redis on `port`; None when it cannot be
/// reached, fails or does not answer within half a second.
pub async fn redis_cmd<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
    let mut con = tokio::time::timeout(LOOK, client.get_multiplexed_async_connection()).await.ok()?.ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    tokio::time::timeout(LOOK, cmd.query_async(&mut con)).await.ok()?.ok()
}

/// The snapshot the Redis on `port` holds for a game, under the key prefix `prefix`.
pub async fn stored_snapshot(port: u16, prefix: &str, game_id: &str) -> Option<Value> {
    let key = format!("{prefix}:g:{{{game_id}}}:snap");
    let data: Option<String> = redis_cmd(port, &["HGET", &key, "data"]).await?;
    serde_json::from_str(&data?).ok()
}

/// The board of that snapshot.
pub async fn stored_board(port: u16, prefix: &str, game_id: &str) -> Option<Value> {
    Some(stored_snapshot(port, prefix, game_id).await?["board"].clone())
}

/// Waits until the Redis on `port` holds the board of `game` (as a player was shown it).
pub async fn wait_stored(port: u16, prefix: &str, game_id: &str, game: &Value, within: Duration) {
    let columns = &game["columns"];
    let probe = || async move {
        match stored_board(port, prefix, game_id).await {
            Some(board) if board["columns"] == *columns => Ok(()),
            other => Err(format!("{other:?}, the player saw {columns}")),
        }
    };
    eventually(within, &format!("Redis on {port} holds the board of {game_id} as its player saw it"), probe).await;
}
