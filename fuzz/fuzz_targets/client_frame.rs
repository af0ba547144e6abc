//! Fuzz target: `ClientFrame::parse`, the one validation of every game-socket text frame
//! (docs/PROTOCOL.md "Client frames"), on arbitrary UTF-8. It must never panic, and a frame
//! it accepts must be sane: a chat line non-empty, free of control characters and within
//! the limit; a tighter limit accepts only what the looser one does; and the accepted
//! frame, written back as JSON, parses to itself (validation is idempotent). The same text
//! on a real-time game's socket (`ClientFrame::parse_for`) never panics either, and what it
//! accepts is one of that socket's frame types.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::game::kinds;
use rampart::protocol::{tick_input_frames, ClientFrame, TICK_FRAME_TYPES};
use serde_json::{json, Value};

/// The shipped `server.max_chat_chars`, and a tight limit so long lines are refused often.
const LIMITS: [usize; 2] = [280, 4];

fuzz_target!(|text: &str| {
    let wide = ClientFrame::parse(text, LIMITS[0]);
    let tight = ClientFrame::parse(text, LIMITS[1]);
    if let Ok(frame) = &tight {
        assert_eq!(wide.as_ref().ok(), Some(frame), "a frame within the tight limit is within the wide one");
    }
    match (&wide, &tight) {
        (Err(w), Err(t)) => assert_eq!(w.in_reply_to, t.in_reply_to, "the limit never changes the frame type"),
        (Err(_), Ok(_)) => unreachable!("checked above"),
        _ => {}
    }
    if let Err(e) = &wide {
        assert!(!e.error.message.is_empty(), "every refusal says why");
    }
    for (frame, max) in [(wide, LIMITS[0]), (tight, LIMITS[1])] {
        let Ok(frame) = frame else { continue };
        check_accepted(text, &frame, max);
    }
    let cycles = kinds::by_name("lightcycle").expect("light cycles are a kind");
    match ClientFrame::parse_for(text, LIMITS[0], cycles) {
        Ok(frame) => {
            let name = frame.type_name();
            let allowed = TICK_FRAME_TYPES.iter().chain(tick_input_frames(cycles.name));
            assert!(allowed.into_iter().any(|t| *t == name), "a real-time socket accepted a {name} frame");
        }
        Err(e) => assert!(!e.error.message.is_empty(), "every refusal says why"),
    }
});

/// What must hold of a frame `parse(text, max)` accepted.
fn check_accepted(text: &str, frame: &ClientFrame, max: usize) {
    let input: Value = serde_json::from_str(text).expect("an accepted frame is JSON");
    assert_eq!(input.get("type").and_then(Value::as_str), Some(frame.type_name()), "the type is the one sent");
    let again = match frame {
        ClientFrame::Join { token } => json!({ "type": "join", "token": token }),
        ClientFrame::Move { column } => json!({ "type": "move", "column": column }),
        ClientFrame::Chat { text } => {
            assert!(!text.trim().is_empty(), "an accepted chat line is not empty: {text:?}");
            assert!(!text.chars().any(char::is_control), "control characters are removed: {text:?}");
            assert!(text.chars().count() <= max, "an accepted chat line is within the limit");
            json!({ "type": "chat", "text": text })
        }
        ClientFrame::Resign => json!({ "type": "resign" }),
        ClientFrame::Ping { id } => {
            assert_eq!(id, input.get("id").unwrap_or(&Value::Null), "the ping id is echoed as sent (null when absent)");
            // serde_json's default float parsing is not always exact, so a float may move by
            // one ulp through a second round trip: compare ids only when they hold none.
            if has_float(id) {
                return;
            }
            json!({ "type": "ping", "id": id })
        }
        // Only a real-time kind's socket reads input frames (`ClientFrame::parse_for`).
        ClientFrame::Input { .. } => panic!("parse read a real-time input frame: {text}"),
    };
    let reparsed = ClientFrame::parse(&again.to_string(), max);
    assert_eq!(reparsed.as_ref(), Ok(frame), "an accepted frame written back parses to itself: {again}");
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}
