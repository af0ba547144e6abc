//! One load game as the client sees it: created over REST (`POST /api/v1/games`, then the
//! second seat's `join`), both seats' sockets joined, and the few things the tool reads
//! from a `state` frame (the move count, whether the game is over) found without parsing
//! the whole frame, so the client stays cheap next to the server it measures.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use serde_json::json;

use crate::wire::{self, Frame, Http, Read, WsReader, WsWriter};

/// One joined seat.
pub struct Seat {
    /// Frames from the server.
    pub reader: WsReader,
    /// Frames to the server.
    pub writer: WsWriter,
}

/// A game's id and its two seats' tokens.
pub struct Grants {
    /// The game.
    pub game_id: String,
    /// Red's token, yellow's token.
    pub tokens: [String; 2],
}

/// Creates a two-human game and takes its second seat.
pub async fn create(http: &mut Http) -> io::Result<Grants> {
    let body = json!({"kind": "connect4", "opponent": "human", "player_name": "red"});
    let (status, red) = http.call("POST", "/api/v1/games", Some(&body)).await?;
    if status != 201 {
        return Err(io::Error::other(format!("create answered HTTP {status}: {red}")));
    }
    let game_id = red["game_id"].as_str().unwrap_or_default().to_owned();
    let body = json!({"player_name": "yellow"});
    let (status, yellow) = http.call("POST", &format!("/api/v1/games/{game_id}/join"), Some(&body)).await?;
    if status != 200 {
        return Err(io::Error::other(format!("join answered HTTP {status}: {yellow}")));
    }
    let token = |v: &serde_json::Value| v["player_token"].as_str().unwrap_or_default().to_owned();
    Ok(Grants { tokens: [token(&red), token(&yellow)], game_id })
}

/// Opens a seat's socket from `source` and joins; answers once its first `state` arrived.
pub async fn join(addr: SocketAddr, source: Option<IpAddr>, game_id: &str, token: &str) -> io::Result<Seat> {
    let (reader, mut writer) = wire::connect(addr, source, &format!("/ws/games/{game_id}")).await?;
    writer.text(format!(r#"{{"type":"join","token":"{token}"}}"#).as_bytes()).await?;
    let mut seat = Seat { reader, writer };
    seat.until(|frame| frame_type(frame) == Some(b"state")).await?;
    Ok(seat)
}

impl Seat {
    /// Reads (answering pings) until a text frame satisfies `want`; answers when it came.
    pub async fn until(&mut self, mut want: impl FnMut(&[u8]) -> bool) -> io::Result<Instant> {
        loop {
            match self.reader.next().await? {
                Read::Frame(Frame::Text(text)) => {
                    if frame_type(&text) == Some(b"error") {
                        return Err(io::Error::other(String::from_utf8_lossy(&text).into_owned()));
                    }
                    if want(&text) {
                        return Ok(Instant::now());
                    }
                }
                Read::Frame(Frame::Close(code)) => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, format!("closed with {code:?}")))
                }
                Read::Ping(payload) => self.writer.pong(&payload).await?,
                Read::Other => {}
            }
        }
    }

    /// Reads until the `state` after the `moves`-th move.
    pub async fn until_moves(&mut self, moves: u64) -> io::Result<Instant> {
        self.until(|f| frame_type(f) == Some(b"state") && number_after(f, b"\"moves\":") == Some(moves)).await
    }

    /// Sends a move.
    pub async fn play(&mut self, column: u8) -> io::Result<()> {
        self.writer.text(format!(r#"{{"type":"move","column":{}}}"#, column - b'0').as_bytes()).await
    }
}

/// The frame's `"type"` value.
fn frame_type(frame: &[u8]) -> Option<&[u8]> {
    let at = find(frame, b"\"type\":\"")? + 8;
    let end = frame[at..].iter().position(|b| *b == b'"')?;
    Some(&frame[at..at + end])
}

/// The unsigned number right after `key`.
fn number_after(frame: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(frame, key)? + key.len();
    let digits = frame[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&frame[at..at + digits]).ok()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_type_and_the_move_count_of_a_state() {
        let frame = br#"{"type":"state","game":{"game_id":"x","moves":17,"status":"playing"}}"#;
        assert_eq!(frame_type(frame), Some(&b"state"[..]));
        assert_eq!(number_after(frame, b"\"moves\":"), Some(17));
        assert_eq!(number_after(b"{}", b"\"moves\":"), None);
    }
}
