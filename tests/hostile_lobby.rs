//! The lobby against many games and many lobby sockets (the lobby used to amplify: every
//! lobby socket was sent every game, again each time any of them moved). A lobby frame
//! carries one page of games, a socket hears a frame only when its page changed and at
//! most one a `lobby.push_interval_ms`, asking for pages does not get around that, and the
//! REST list is paged the same way, in the same order.
//!
//! `RAMPART_LOBBY_SOCKETS` and `RAMPART_LOBBY_WINDOW_SECS` scale the first test up for a
//! figure (say 500 sockets for 20 s); the defaults keep it to a few seconds.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// The default `lobby.page_size`.
const PAGE: usize = 25;

/// The default `lobby.push_interval_ms`.
const PUSH_INTERVAL: Duration = Duration::from_millis(1000);

/// The most a summary takes on the wire (two 32-character names, a long kind, big counts).
const SUMMARY_BYTES: usize = 420;

/// The most a `lobby` frame of one page takes on the wire.
const PAGE_FRAME_BYTES: usize = PAGE * SUMMARY_BYTES + 200;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one lobby socket received during a window.
#[derive(Default)]
struct Heard {
    /// `lobby` frames (the snapshot on connect included).
    lobby_frames: usize,
    /// Every byte of every frame, headers included.
    bytes: usize,
    /// The largest `lobby` frame's JSON, in bytes.
    largest: usize,
    /// Whether the socket was still open when the window ended (a socket cut early hears
    /// little, and would pass every bound below).
    open_to_the_end: bool,
}

/// Reads everything `client` is sent for `window` (a blocking reader: run it on a thread).
fn listen(mut client: RawClient, window: Duration) -> Heard {
    let start = Instant::now();
    let mut heard = Heard::default();
    while let Some(left) = window.checked_sub(start.elapsed()) {
        let Some((first, payload)) = client.read_frame(left.max(Duration::from_millis(1))) else {
            // Nothing more: the window ran out (the read timed out at its end), or the
            // connection ended before it.
            heard.open_to_the_end = start.elapsed() >= window;
            return heard;
        };
        let header = match payload.len() {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        heard.bytes += header + payload.len();
        if first & 0x0f == 0x1 {
            let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            if v["type"] == "lobby" {
                heard.lobby_frames += 1;
                heard.largest = heard.largest.max(payload.len());
            }
        }
    }
    heard.open_to_the_end = true;
    heard
}

/// A game against the AI with its creator's socket joined.
async fn ai_game(server: &TestServer, name: &str) -> (Grant, Player) {
    let grant = server.create("ai", name).await;
    let player = server.player(&grant).await;
    (grant, player)
}

/// Red's next move in `player`'s game, and the AI's answer (or the end, or a refusal).
async fn play_a_round(player: &mut Player, column: i64) -> bool {
    player.move_to(column).await;
    let answer = player
        .recv_until("the AI's answer, the end or a refusal", |v| {
            v["type"] == "error"
                || (v["type"] == "state" && (v["game"]["turn"] == "red" || v["game"]["status"] != "playing"))
        })
        .await;
    answer["type"] == "state" && answer["game"]["status"] == "playing"
}

/// Waits until a fresh lobby socket's first frame counts `games` games; answers that frame
/// and its size.
async fn lobby_listing(server: &TestServer, games: usize) -> (Value, usize) {
    eventually(DEADLINE, "the lobby lists every game", || async {
        let mut lobby = server.lobby().await;
        let first = lobby.recv_type("lobby").await;
        // Before paging, the frame had every game and no `total`.
        let listed =
            first["total"].as_u64().map_or_else(|| first["games"].as_array().map_or(0, Vec::len), |t| t as usize);
        if listed >= games {
            let size = first.to_string().len();
            Ok((first, size))
        } else {
            Err(format!("{listed} games listed"))
        }
    })
    .await
}

/// Reads the lobby frames `lobby` is sent until `quiet` passes without one; answers them.
async fn lobby_frames_within(lobby: &mut Player, quiet: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    let start = lobby.seen.len();
    // A ping answered proves every frame sent before it has arrived.
    let deadline = Instant::now() + quiet;
    while Instant::now() < deadline {
        lobby.send(json!({"type":"ping","id":"probe"})).await;
        lobby.recv_until("pong", |v| v["type"] == "pong").await;
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    frames.extend(lobby.seen[start..].iter().filter(|v| v["type"] == "lobby").cloned());
    frames
}

/// Waits until the REST list (every page) shows `games` games, each with its creator
/// connected: after that, nothing changes in the lobby unless the test moves.
async fn settled(server: &TestServer, games: usize) {
    eventually(DEADLINE, "every game listed with its creator connected", || async {
        let mut seen = HashSet::new();
        let mut connected = 0;
        for page in 0..10 {
            let (_, list) = server.get(&format!("/api/v1/games?page={page}")).await;
            let listed = list["games"].as_array().cloned().unwrap_or_default();
            if listed.is_empty() {
                break;
            }
            for g in listed {
                if seen.insert(g["game_id"].to_string()) && g["players"]["red"]["connected"] == true {
                    connected += 1;
                }
            }
        }
        if connected >= games {
            Ok(())
        } else {
            Err(format!("{connected} of {games} games listed with their creator connected"))
        }
    })
    .await;
}

fn ids(frame: &Value) -> Vec<String> {
    frame["games"]
        .as_array()
        .map_or_else(Vec::new, |g| g.iter().filter_map(|g| g["game_id"].as_str()).map(str::to_owned).collect())
}

#[actix_rt::test]
async fn many_games_and_many_lobby_sockets_get_one_page_at_a_bounded_rate() {
    let server = TestServer::start(test_config()).await;
    let (sockets, window) =
        (env_or("RAMPART_LOBBY_SOCKETS", 40) as usize, Duration::from_secs(env_or("RAMPART_LOBBY_WINDOW_SECS", 3)));
    let mut players = Vec::new();
    for i in 0..60 {
        players.push(ai_game(&server, &format!("player{i}")).await);
    }
    let (first, frame_bytes) = lobby_listing(&server, 60).await;

    // Many lobby sockets listen while every game moves (each game's summary changes about
    // once a second, as in a busy hour).
    let listeners: Vec<_> = (0..sockets)
        .map(|_| {
            let client = RawClient::connect_plain(server.addr, "/ws/lobby");
            actix_rt::task::spawn_blocking(move || listen(client, window))
        })
        .collect();
    let started = Instant::now();
    let mut round = 0i64;
    let mut pace = actix_rt::time::interval(Duration::from_millis(300));
    while started.elapsed() < window {
        pace.tick().await;
        let mut next = Vec::with_capacity(players.len());
        for (grant, mut player) in players.drain(..) {
            if play_a_round(&mut player, round % 7).await {
                next.push((grant, player));
                continue;
            }
            // Over: another game takes its place, so the lobby keeps moving (unless the
            // server is too busy to admit one: the flood itself can overload it).
            let body = json!({"kind":"connect4","opponent":"ai","player_name":"next"});
            if let (201, grant) = server.post("/api/v1/games", body).await {
                let grant = Grant::from(&grant);
                let player = server.player(&grant).await;
                next.push((grant, player));
            }
        }
        players = next;
        round += 1;
    }
    let mut heard = Vec::new();
    for listener in listeners {
        heard.push(listener.await.expect("listener"));
    }
    let secs = window.as_secs_f64();
    let per_socket_per_sec: Vec<f64> = heard.iter().map(|h| h.bytes as f64 / secs).collect();
    let mean = per_socket_per_sec.iter().sum::<f64>() / heard.len() as f64;
    let worst = per_socket_per_sec.iter().copied().fold(0.0, f64::max);
    let most_frames = heard.iter().map(|h| h.lobby_frames).max().unwrap_or(0);
    let largest = heard.iter().map(|h| h.largest).max().unwrap_or(0);
    eprintln!(
        "lobby with 60 games: first frame {frame_bytes} B ({} games); {sockets} sockets for {secs} s: \
         {mean:.0} B/s per socket (worst {worst:.0}), {:.1} MB in all, at most {most_frames} lobby frames \
         per socket, the largest {largest} B; {} games still moving at the end",
        first["games"].as_array().map_or(0, Vec::len),
        heard.iter().map(|h| h.bytes).sum::<usize>() as f64 / 1e6,
        players.len(),
    );

    // Every listener was served all along: it heard the snapshot on connect and the lobby
    // moving, and its socket was open at the end.
    for (i, h) in heard.iter().enumerate() {
        assert!(h.open_to_the_end, "lobby socket {i} was closed before the window ended");
        assert!(h.lobby_frames >= 2, "lobby socket {i} heard {} lobby frames while 60 games moved", h.lobby_frames);
    }
    // One page, with the count of the rest.
    assert!(first["games"].as_array().is_some_and(|g| g.len() == PAGE), "one page of {PAGE} games: {first}");
    assert_eq!(first["total"], 60, "{first}");
    assert!(frame_bytes <= PAGE_FRAME_BYTES, "a page frame is {frame_bytes} B, over {PAGE_FRAME_BYTES} B");
    // At most one frame a push interval (the snapshot on connect, then one per interval).
    let allowed_frames = 2 + (window.as_millis() / PUSH_INTERVAL.as_millis()) as usize;
    assert!(most_frames <= allowed_frames, "a socket was sent {most_frames} lobby frames in {secs} s");
    assert!(largest <= PAGE_FRAME_BYTES, "a lobby frame of {largest} B");
    let bound = (allowed_frames * (PAGE_FRAME_BYTES + 10)) as f64 / secs;
    assert!(worst <= bound, "a lobby socket pulled {worst:.0} B/s, over {bound:.0} B/s");
}

#[actix_rt::test]
async fn a_lobby_socket_hears_only_changes_to_its_own_page() {
    let server = TestServer::start(test_config()).await;
    let mut players = Vec::new();
    for i in 0..(PAGE + 5) {
        players.push(ai_game(&server, &format!("p{i}")).await);
    }
    settled(&server, PAGE + 5).await;
    let mut front = server.lobby().await;
    let mut back = server.lobby().await;
    front.recv_type("lobby").await;
    back.recv_type("lobby").await;
    back.send(json!({"type":"page","page":1})).await;
    let second = back.recv_until("page 1", |v| v["type"] == "lobby" && v["page"] == 1).await;
    assert_eq!((second["page"].as_u64(), second["total"].as_u64()), (Some(1), Some(PAGE as u64 + 5)), "{second}");
    let on_second = ids(&second);
    assert_eq!(on_second.len(), 5, "{second}");

    // Nothing changes: nothing is sent again.
    let quiet = lobby_frames_within(&mut front, 2 * PUSH_INTERVAL).await;
    assert!(quiet.is_empty(), "an unchanged lobby was sent again: {quiet:?}");

    // A game on the second page moves: that page's socket hears it, the first page's not.
    let (_, mover) = players.iter_mut().find(|(g, _)| on_second.contains(&g.game_id)).expect("a game of page 1");
    play_a_round(mover, 3).await;
    let moved = back
        .recv_until("the move on page 1", |v| {
            v["type"] == "lobby"
                && v["games"].as_array().is_some_and(|g| g.iter().any(|g| g["moves"].as_u64() >= Some(1)))
        })
        .await;
    assert_eq!(moved["page"], 1, "{moved}");
    let heard = lobby_frames_within(&mut front, 2 * PUSH_INTERVAL).await;
    assert!(heard.is_empty(), "page 0 was sent a frame for a change on page 1: {heard:?}");

    // A move on the first page reaches it.
    let first_page: HashSet<String> =
        ids(&front.seen.iter().rfind(|v| v["type"] == "lobby").cloned().unwrap_or_default()).into_iter().collect();
    let (_, mover) = players.iter_mut().find(|(g, _)| first_page.contains(&g.game_id)).expect("a game of page 0");
    play_a_round(mover, 3).await;
    front
        .recv_until("the move on page 0", |v| {
            v["type"] == "lobby"
                && v["games"].as_array().is_some_and(|g| g.iter().any(|g| g["moves"].as_u64() >= Some(1)))
        })
        .await;
}

#[actix_rt::test]
async fn pages_over_the_socket_and_rest_list_every_game_once_joinable_games_first() {
    let server = TestServer::start(test_config()).await;
    let mut playing = Vec::new();
    for i in 0..(PAGE + 10) {
        playing.push(ai_game(&server, &format!("p{i}")).await);
    }
    // Games a newcomer can join, created after the games in play: still listed first.
    let mut waiting = Vec::new();
    for i in 0..3 {
        let grant = server.create("human", &format!("w{i}")).await;
        waiting.push((server.player(&grant).await, grant));
    }
    let total = PAGE + 13;
    settled(&server, total).await;

    let mut lobby = server.lobby().await;
    let mut over_socket = Vec::new();
    let first = lobby.recv_type("lobby").await;
    assert_eq!((first["page"].as_u64(), first["page_size"].as_u64()), (Some(0), Some(PAGE as u64)), "{first}");
    let statuses: Vec<&str> =
        first["games"].as_array().expect("games").iter().filter_map(|g| g["status"].as_str()).collect();
    assert_eq!(&statuses[..4], ["waiting", "waiting", "waiting", "playing"], "joinable games first: {first}");
    // Newest first within a status.
    let created: Vec<&str> =
        first["games"].as_array().expect("games").iter().filter_map(|g| g["created_at"].as_str()).collect();
    assert!(created[..3].windows(2).all(|w| w[0] >= w[1]) && created[3..].windows(2).all(|w| w[0] >= w[1]), "{first}");
    let joinable: HashSet<String> = waiting.iter().map(|(_, g)| g.game_id.clone()).collect();
    assert_eq!(ids(&first)[..3].iter().cloned().collect::<HashSet<_>>(), joinable, "{first}");
    over_socket.extend(ids(&first));
    lobby.send(json!({"type":"page","page":1})).await;
    let second = lobby.recv_until("page 1", |v| v["type"] == "lobby" && v["page"] == 1).await;
    over_socket.extend(ids(&second));
    assert_eq!(over_socket.len(), total, "{first} {second}");
    assert_eq!(over_socket.iter().collect::<HashSet<_>>().len(), total, "every game once");
    lobby.send(json!({"type":"page","page":9})).await;
    let past = lobby.recv_until("page 9", |v| v["type"] == "lobby" && v["page"] == 9).await;
    assert_eq!((past["games"].clone(), past["total"].as_u64()), (json!([]), Some(total as u64)), "{past}");

    // The REST list: the same pages in the same order.
    let mut over_rest = Vec::new();
    for page in 0..2 {
        let (status, list) = server.get(&format!("/api/v1/games?page={page}")).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!((list["total"].as_u64(), list["page"].as_u64()), (Some(total as u64), Some(page)), "{list}");
        over_rest.extend(ids(&list));
    }
    assert_eq!(over_rest, over_socket);
    let (status, list) = server.get("/api/v1/games").await;
    assert_eq!((status, ids(&list).len()), (200, PAGE), "without `page`, the first page: {list}");
    for bad in ["page=-1", "page=x", "page=1.5", "page=1000001", "page=4294967296"] {
        let (status, body) = server.get(&format!("/api/v1/games?{bad}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("VALIDATION_FAILED")), "{bad}: {body}");
        assert_eq!(body["error"]["details"]["field"], "page", "{body}");
    }

    // Bad page frames get an error and leave the socket open.
    for bad in [
        json!({"type":"page","page":-1}),
        json!({"type":"page","page":"2"}),
        json!({"type":"page"}),
        json!({"type":"page","page":1,"size":500}),
    ] {
        lobby.send(bad.clone()).await;
        assert_eq!(lobby.recv_error().await["code"], "BAD_REQUEST", "{bad}");
    }
    lobby.send(json!({"type":"ping","id":1})).await;
    assert_eq!(lobby.recv_type("pong").await["id"], 1);
}

#[actix_rt::test]
async fn asking_for_pages_cannot_pull_more_than_one_frame_a_push_interval() {
    let server = TestServer::start(test_config()).await;
    for i in 0..(PAGE + 5) {
        server.create("human", &format!("w{i}")).await;
    }
    lobby_listing(&server, PAGE + 5).await;
    let mut lobby = server.lobby().await;
    lobby.recv_type("lobby").await;
    let start = Instant::now();
    for i in 0..30 {
        lobby.send(json!({"type":"page","page": i % 2})).await;
    }
    // The last request is answered, within about one interval.
    let last = lobby.recv_until("page 1", |v| v["type"] == "lobby" && v["page"] == 1).await;
    assert_eq!(ids(&last).len(), 5, "{last}");
    let heard = lobby_frames_within(&mut lobby, 2 * PUSH_INTERVAL).await;
    let frames = lobby.seen.iter().filter(|v| v["type"] == "lobby").count() - 1;
    let elapsed = start.elapsed();
    let allowed = 1 + (elapsed.as_millis() / PUSH_INTERVAL.as_millis()) as usize;
    assert!(frames <= allowed, "30 page requests pulled {frames} lobby frames in {elapsed:?} (then {heard:?})");
}
