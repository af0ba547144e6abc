//! How the chaos harness talks to Rampart: JSON over HTTP (`Api`, with the admin token for
//! fault injection) and game WebSockets (`Ws`), whose frames are read as [`Ev`] events
//! (pings answered on the way). Every call has a deadline, so a frozen (SIGSTOP) or dead
//! instance shows up as an error, never as a stuck harness.

use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};

/// HTTP calls with a deadline.
#[derive(Clone)]
pub struct Api {
    client: awc::Client,
    admin: String,
}

/// An HTTP answer: status, JSON body (Null when not JSON).
pub type Answer = Result<(u16, Value), String>;

impl Api {
    /// A client without a connection cap (hundreds of sockets at once), every request cut
    /// after 5 s.
    pub fn new(admin_token: &str) -> Api {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().limit(0).timeout(Duration::from_secs(2)))
            .timeout(Duration::from_secs(5))
            .finish();
        Api { client, admin: admin_token.to_owned() }
    }

    /// The admin bearer token the servers were started with.
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// POST a JSON body.
    pub async fn post(&self, url: &str, body: &Value) -> Answer {
        let request = self.client.post(url);
        let mut resp = request.send_json(body).await.map_err(|e| e.to_string())?;
        let bytes = resp.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
        Ok((resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// POST with the admin token.
    pub async fn admin_post(&self, url: &str, body: &Value) -> Answer {
        let request = self.client.post(url).insert_header(("authorization", format!("Bearer {}", self.admin)));
        let mut resp = request.send_json(body).await.map_err(|e| e.to_string())?;
        let bytes = resp.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
        Ok((resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// GET a JSON body.
    pub async fn get(&self, url: &str) -> Answer {
        let mut resp = self.client.get(url).send().await.map_err(|e| e.to_string())?;
        let bytes = resp.body().limit(1 << 22).await.map_err(|e| e.to_string())?;
        Ok((resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// GET a text body (`/metrics`).
    pub async fn get_text(&self, url: &str) -> Result<(u16, String), String> {
        let mut resp = self.client.get(url).send().await.map_err(|e| e.to_string())?;
        let bytes = resp.body().limit(1 << 22).await.map_err(|e| e.to_string())?;
        Ok((resp.status().as_u16(), String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Opens a game WebSocket (`ws://…/ws/games/ID`) within 3 s.
    pub async fn open(&self, base: &str, game_id: &str) -> Result<Ws, String> {
        let url = format!("{}/ws/games/{game_id}", base.replacen("http", "ws", 1));
        let connect = self.client.ws(url).connect();
        match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok((_, socket))) => Ok(Box::new(socket)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no upgrade within 3 s".to_owned()),
        }
    }
}

/// A game WebSocket as awc frames it.
pub trait WsConn:
    futures_util::Stream<Item = Result<ws::Frame, WsProtocolError>>
    + futures_util::Sink<ws::Message, Error = WsProtocolError>
    + Unpin
{
}
impl<T> WsConn for T where
    T: futures_util::Stream<Item = Result<ws::Frame, WsProtocolError>>
        + futures_util::Sink<ws::Message, Error = WsProtocolError>
        + Unpin
{
}

/// One open game socket.
pub type Ws = Box<dyn WsConn>;

/// What a game socket said.
#[derive(Debug)]
pub enum Ev {
    /// A `state` frame's game.
    State(Value),
    /// An `error` frame.
    Error {
        /// Its code.
        code: String,
        /// The frame type it answers.
        reply_to: Option<String>,
        /// `details.retry_after_ms`, if any.
        retry_ms: Option<u64>,
        /// Its message (for the log).
        message: String,
    },
    /// `game_restarted` (`reason` is `taken_over` after a takeover).
    Restarted(Option<String>),
    /// `game_failed`: the restart limit closed the game.
    Failed,
    /// `game_paused`: the server cannot confirm it owns the game right now (docs/DESIGN.md
    /// D17) and applies nothing until it can.
    Paused,
    /// `game_resumed`: its ownership is confirmed again.
    Resumed,
    /// A chat line.
    Chat {
        /// `red`, `yellow` or `ai`.
        from: String,
        /// Its text.
        text: String,
    },
    /// The socket closed (its close code, if one came) or broke.
    Closed(Option<u16>),
    /// Anything else (pong, unknown frames).
    Other,
}

/// Sends one JSON frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> Result<(), String> {
    ws.send(ws::Message::Text(frame.to_string().into())).await.map_err(|e| e.to_string())
}

/// Sends `join`.
pub async fn join(ws: &mut Ws, token: &str) -> Result<(), String> {
    send(ws, &json!({"type": "join", "token": token})).await
}

/// Reads the next event (answering pings on the way). Cancel-safe: a frame is taken off
/// the socket only when it is returned.
pub async fn next_ev(ws: &mut Ws) -> Ev {
    loop {
        match ws.next().await {
            Some(Ok(ws::Frame::Text(bytes))) => {
                let Ok(v) = serde_json::from_slice::<Value>(&bytes) else { continue };
                return match v["type"].as_str() {
                    Some("state") => Ev::State(v["game"].clone()),
                    Some("error") => Ev::Error {
                        code: v["error"]["code"].as_str().unwrap_or("ERROR").to_owned(),
                        reply_to: v["in_reply_to"].as_str().map(str::to_owned),
                        retry_ms: v["error"]["details"]["retry_after_ms"].as_u64(),
                        message: v["error"]["message"].as_str().unwrap_or("").to_owned(),
                    },
                    Some("game_restarted") => Ev::Restarted(v["reason"].as_str().map(str::to_owned)),
                    Some("game_failed") => Ev::Failed,
                    Some("game_paused") => Ev::Paused,
                    Some("game_resumed") => Ev::Resumed,
                    Some("chat") => Ev::Chat {
                        from: v["from"].as_str().unwrap_or("").to_owned(),
                        text: v["text"].as_str().unwrap_or("").to_owned(),
                    },
                    _ => Ev::Other,
                };
            }
            Some(Ok(ws::Frame::Ping(p))) => {
                let _ = ws.send(ws::Message::Pong(p)).await;
            }
            Some(Ok(ws::Frame::Close(reason))) => return Ev::Closed(reason.map(|r| u16::from(r.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Ev::Closed(None),
        }
    }
}

/// Closes a socket politely (best effort, bounded).
pub async fn close(mut ws: Ws) {
    let bye = ws.send(ws::Message::Close(Some(ws::CloseCode::Normal.into())));
    let _ = tokio::time::timeout(Duration::from_millis(500), bye).await;
}
