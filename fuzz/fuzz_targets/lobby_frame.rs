//! Fuzz target: the lobby socket's client frames (`/ws/lobby`, docs/PROTOCOL.md "Lobby
//! WebSocket") on arbitrary UTF-8. `LobbySession::on_text` (src/web/lobby.rs) parses inline
//! in a private method, so [`parse`] repeats its steps with the same public pieces in the
//! same order: JSON value, the `type` checked against `LOBBY_FRAME_TYPES`, the strict
//! `LobbyClientFrame`, then `Ticket::parse` for a watch, building the same replies. It must
//! never panic; an accepted frame must be what was sent, and a pong must echo the ping's id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::ids::Ticket;
use rampart::protocol::{ErrorBody, ErrorCode, LobbyClientFrame, LobbyFrame, LOBBY_FRAME_TYPES};
use serde_json::Value;

/// What the lobby session does with one text frame.
enum Reply {
    /// A `pong`: the id as the session holds it, and the text it sends.
    Pong(Option<Value>, String),
    /// Watch this ticket.
    Watch(Ticket),
    /// An error frame.
    Error(ErrorBody),
}

/// `LobbySession::on_text`, step for step, minus the socket.
fn parse(text: &str) -> Reply {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return Reply::Error(ErrorBody::new(ErrorCode::BadRequest, "frames are JSON objects")),
    };
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !LOBBY_FRAME_TYPES.contains(&kind.as_str()) {
        return Reply::Error(
            ErrorBody::new(ErrorCode::UnknownMessageType, "the lobby accepts watch and ping")
                .with("type", kind)
                .with("allowed", LOBBY_FRAME_TYPES.to_vec()),
        );
    }
    match serde_json::from_value::<LobbyClientFrame>(value) {
        Ok(LobbyClientFrame::Ping { id }) => {
            let text = LobbyFrame::Pong { id: id.clone() }.to_text().to_string();
            Reply::Pong(id, text)
        }
        Ok(LobbyClientFrame::Watch { ticket }) => match Ticket::parse(&ticket) {
            Some(ticket) => Reply::Watch(ticket),
            None => Reply::Error(ErrorBody::ticket_not_found("it is not a ticket")),
        },
        Err(e) => Reply::Error(ErrorBody::new(ErrorCode::BadRequest, format!("not a valid {kind} frame: {e}"))),
    }
}

fuzz_target!(|text: &str| {
    match parse(text) {
        Reply::Pong(id, pong) => {
            let sent: Value = serde_json::from_str(text).expect("a ping is JSON");
            let sent_id = sent.get("id").cloned().unwrap_or(Value::Null);
            assert_eq!(id.clone().unwrap_or(Value::Null), sent_id, "the session holds the id sent");
            let pong: Value = serde_json::from_str(&pong).expect("a pong is JSON");
            assert_eq!(pong.get("type").and_then(Value::as_str), Some("pong"));
            // serde_json's default float parsing is not always exact, so a float may move by
            // one ulp through a second parse: compare the echo only when the id holds none.
            if !has_float(&sent_id) {
                assert_eq!(pong.get("id").cloned().unwrap_or(Value::Null), sent_id, "the pong echoes the id");
            }
        }
        Reply::Watch(ticket) => {
            let sent: Value = serde_json::from_str(text).expect("a watch is JSON");
            let raw = sent.get("ticket").and_then(Value::as_str).expect("a watch has a ticket");
            assert_eq!(ticket.expose(), raw.to_ascii_lowercase(), "the ticket is the one sent");
            assert!(Ticket::parse(ticket.expose()).is_some_and(|again| again == ticket), "a ticket parses to itself");
            // The session logs tickets by their Display and Debug forms (a prefix only).
            let (shown, debug) = (ticket.to_string(), format!("{ticket:?}"));
            assert!(!shown.contains(ticket.expose()) && debug.contains(&shown), "logs never show the whole ticket");
        }
        Reply::Error(error) => {
            let frame = rampart::protocol::ServerFrame::Error { error, in_reply_to: None }.to_text();
            assert!(serde_json::from_str::<Value>(&frame).is_ok(), "an error frame is JSON");
        }
    }
});

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}
