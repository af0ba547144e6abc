//! Fuzz target: the lobby socket's client frames (`/ws/lobby`, docs/PROTOCOL.md "Lobby
//! WebSocket") on arbitrary UTF-8, through `LobbyRequest::parse`, the function the lobby
//! session calls. It must never panic; a ping's pong must echo the id exactly, a watched
//! ticket and a page asked for must be the ones sent, and a refusal must be a well-formed
//! error frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::ids::Ticket;
use rampart::protocol::{LobbyFrame, LobbyRequest, ServerFrame};
use serde_json::Value;

fuzz_target!(|text: &str| {
    match LobbyRequest::parse(text) {
        Ok(LobbyRequest::Ping(id)) => {
            let sent: Value = serde_json::from_str(text).expect("a ping is JSON");
            let sent_id = sent.get("id").cloned().unwrap_or(Value::Null);
            assert_eq!(id.clone().unwrap_or(Value::Null), sent_id, "the session holds the id sent");
            let pong: Value = serde_json::from_str(LobbyFrame::Pong { id }.to_frame().json()).expect("a pong is JSON");
            assert_eq!(pong.get("type").and_then(Value::as_str), Some("pong"));
            assert_eq!(pong.get("id").cloned().unwrap_or(Value::Null), sent_id, "the pong echoes the id");
        }
        Ok(LobbyRequest::Watch(ticket)) => {
            let sent: Value = serde_json::from_str(text).expect("a watch is JSON");
            let raw = sent.get("ticket").and_then(Value::as_str).expect("a watch has a ticket");
            assert_eq!(ticket.expose(), raw.to_ascii_lowercase(), "the ticket is the one sent");
            assert!(Ticket::parse(ticket.expose()).is_some_and(|again| again == ticket), "a ticket parses to itself");
            // The session logs tickets by their Display and Debug forms (a prefix only).
            let (shown, debug) = (ticket.to_string(), format!("{ticket:?}"));
            assert!(!shown.contains(ticket.expose()) && debug.contains(&shown), "logs never show the whole ticket");
        }
        Ok(LobbyRequest::Page(page)) => {
            let sent: Value = serde_json::from_str(text).expect("a page request is JSON");
            assert_eq!(sent.get("page").and_then(Value::as_u64), Some(u64::from(page)), "the page is the one sent");
        }
        Err(error) => {
            let frame = ServerFrame::Error { error, in_reply_to: None }.to_frame();
            assert!(serde_json::from_str::<Value>(frame.json()).is_ok(), "an error frame is JSON");
        }
    }
});
