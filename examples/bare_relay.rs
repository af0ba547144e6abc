//! The bare transport, the yardstick of `make load` (not part of the server): actix-web and
//! actix-ws with nothing of Rampart's above them — no actors, no supervision, no rules, no
//! snapshots, no admission, no limits beyond actix-ws's own 32-frame channel. It speaks
//! the subset of the wire contract the load tool drives (`POST /api/v1/games`,
//! `POST /api/v1/games/{id}/join`, `/ws/games/{id}` with `join` and `move`), parses each
//! frame as JSON, and answers a move with a `state` frame of the same shape and size as
//! Rampart's (serialised once, sent to both seats). So `loadbench` measures it exactly as
//! it measures Rampart, and the difference is what Rampart's game path costs.
//!
//! ```text
//! cargo run --release --example bare_relay -- 127.0.0.1:9000 [workers]
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::{AggregatedMessage, Session};
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::{json, Value};

/// One room: two seats, the discs dropped so far.
struct Room {
    tokens: [String; 2],
    names: [String; 2],
    seats: [Option<Session>; 2],
    columns: [Vec<&'static str>; 7],
    moves: u32,
    created_at: String,
}

type Rooms = Arc<Mutex<HashMap<String, Room>>>;

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", fastrand::u8(..))).collect()
}

/// The `state` frame, shaped like Rampart's.
fn state(id: &str, room: &Room) -> String {
    let seat = |i: usize| json!({"name": room.names[i], "connected": room.seats[i].is_some(), "ai": false});
    let status = if room.moves >= 42 { "draw" } else { "playing" };
    let turn = if room.moves >= 42 {
        Value::Null
    } else if room.moves % 2 == 0 {
        json!("red")
    } else {
        json!("yellow")
    };
    json!({"type": "state", "game": {
        "game_id": id, "kind": "connect4", "status": status, "turn": turn, "winner": null,
        "columns": room.columns, "moves": room.moves,
        "players": {"red": seat(0), "yellow": seat(1)},
        "restarts": 0, "created_at": room.created_at, "winning_line": null,
    }})
    .to_string()
}

async fn create(rooms: web::Data<Rooms>, body: web::Json<Value>) -> HttpResponse {
    let (id, token) = (random_hex(6), random_hex(32));
    let name = body["player_name"].as_str().unwrap_or("red").to_owned();
    let room = Room {
        tokens: [token.clone(), String::new()],
        names: [name, String::new()],
        seats: [None, None],
        columns: Default::default(),
        moves: 0,
        created_at: "2026-12-04T00:00:00.000Z".to_owned(),
    };
    rooms.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), room);
    HttpResponse::Created().json(json!({"game_id": id, "seat": "red", "player_token": token}))
}

async fn join(rooms: web::Data<Rooms>, path: web::Path<String>, body: web::Json<Value>) -> HttpResponse {
    let token = random_hex(32);
    let mut rooms = rooms.lock().unwrap_or_else(|e| e.into_inner());
    let Some(room) = rooms.get_mut(path.as_str()) else { return HttpResponse::NotFound().finish() };
    room.tokens[1] = token.clone();
    room.names[1] = body["player_name"].as_str().unwrap_or("yellow").to_owned();
    HttpResponse::Ok().json(json!({"game_id": path.as_str(), "seat": "yellow", "player_token": token}))
}

/// Sends `text` to every seat of `room` without waiting: a full channel closes that seat.
fn broadcast(room: &mut Room, text: &str) {
    for seat in room.seats.iter_mut() {
        if let Some(session) = seat {
            if !matches!(session.text(text.to_owned()).now_or_never(), Some(Ok(()))) {
                let _ = session.clone().close(None).now_or_never();
                *seat = None;
            }
        }
    }
}

async fn socket(
    rooms: web::Data<Rooms>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let id = path.into_inner();
    let rooms = rooms.get_ref().clone();
    actix_web::rt::spawn(async move {
        let mut stream = stream.aggregate_continuations().max_continuation_size(4096);
        let mut seat: Option<usize> = None;
        while let Some(Ok(message)) = stream.next().await {
            match message {
                AggregatedMessage::Text(text) => {
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                    let mut all = rooms.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(room) = all.get_mut(&id) else { break };
                    match frame["type"].as_str() {
                        Some("join") => {
                            let Some(s) = room.tokens.iter().position(|t| frame["token"].as_str() == Some(t.as_str()))
                            else {
                                break;
                            };
                            seat = Some(s);
                            room.seats[s] = Some(session.clone());
                            let text = state(&id, room);
                            let _ = session.text(text).now_or_never();
                        }
                        Some("move") if seat.is_some() => {
                            let column = frame["column"].as_u64().unwrap_or(0).min(6) as usize;
                            room.columns[column].push(if room.moves % 2 == 0 { "red" } else { "yellow" });
                            room.moves += 1;
                            let text = state(&id, room);
                            broadcast(room, &text);
                        }
                        _ => {}
                    }
                }
                AggregatedMessage::Ping(bytes) => {
                    let _ = session.pong(&bytes).await;
                }
                AggregatedMessage::Close(_) => break,
                _ => {}
            }
        }
        {
            let mut all = rooms.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(room) = all.get_mut(&id) {
                if let Some(s) = seat {
                    room.seats[s] = None;
                }
                if room.seats.iter().all(Option::is_none) && room.moves > 0 {
                    all.remove(&id);
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let workers = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rooms: Rooms = Arc::default();
    eprintln!("bare_relay: listening on {bind} with {workers} workers");
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(rooms.clone()))
            .route("/api/v1/games", web::post().to(create))
            .route("/api/v1/games/{id}/join", web::post().to(join))
            .route("/ws/games/{id}", web::get().to(socket))
    })
    // As Rampart does: a small frame goes out at once, not after the peer's delayed ACK.
    .on_connect(|conn, _| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    .workers(workers)
    .max_connections(100_000)
    .backlog(4096)
    .bind(bind)?
    .run()
    .await
}
