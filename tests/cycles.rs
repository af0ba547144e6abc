//! The real-time game (light cycles) end to end over real sockets: a whole game against the
//! AI; a panic mid-game resumes within one snapshot interval of where it was; a seat that
//! does not read at tick rate is closed with 1013 while the other plays on; bad frames get
//! structured errors.

mod common;

use common::*;
use rampart::config::{Config, Secret};
use serde_json::{json, Value};

const ADMIN: &str = "cycles-admin-token";

fn config(width: u16, height: u16, tick_hz: u32) -> Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    c.realtime.width = width;
    c.realtime.height = height;
    c.realtime.tick_hz = tick_hz;
    c.realtime.snapshot_every_ticks = 10;
    c
}

async fn create(server: &TestServer, opponent: &str) -> Grant {
    let (status, body) =
        server.post("/api/v1/games", json!({"kind": "lightcycle", "opponent": opponent, "player_name": "ada"})).await;
    assert_eq!(status, 201, "{body}");
    let grant = Grant::from(&body);
    // The game answers for itself at once (schemathesis found it missing until the lobby
    // heard of it).
    let (status, summary) = server.get(&format!("/api/v1/games/{}", grant.game_id)).await;
    assert_eq!((status, summary["kind"].as_str()), (200, Some("lightcycle")), "{summary}");
    grant
}

async fn seat(server: &TestServer, grant: &Grant) -> (Player, Value) {
    let mut p = server.socket(&grant.game_id).await;
    p.send(json!({"type": "join", "token": grant.token})).await;
    let full = p.recv_type("arena").await;
    (p, full)
}

async fn next_tick(p: &mut Player) -> Value {
    p.recv_type("tick").await
}

#[actix_rt::test]
async fn a_whole_game_against_the_ai_over_a_real_socket() {
    let server = TestServer::start(config(16, 12, 50)).await;
    let grant = create(&server, "ai").await;
    assert_eq!(grant.seat, "red");
    let (mut red, full) = seat(&server, &grant).await;
    assert_eq!((full["you"].as_str(), full["players"]["yellow"].as_str()), (Some("red"), Some("Rampart AI")));
    assert_eq!(full["game"]["width"], 16);
    red.recv_type("countdown").await;
    // Red drives straight up into the wall: every tick arrives, in order, until the end.
    let mut expected = 1;
    let last = loop {
        let tick = next_tick(&mut red).await;
        assert_eq!(tick["tick"], expected, "ticks arrive one by one, none skipped");
        expected += 1;
        if tick["status"] != "playing" {
            break tick;
        }
    };
    assert!(matches!(last["status"].as_str(), Some("won" | "draw")), "{last}");
    assert_eq!(last["winner"], "yellow", "red drove into the wall: {last}");
    assert!(last["heads"][0]["crashed"].as_bool().unwrap_or(false), "{last}");
    // The lobby lists it, as it lists Connect Four's games, with how it ended.
    let (id, server_ref) = (grant.game_id.clone(), &server);
    let listed = || {
        let (id, server) = (id.clone(), server_ref);
        async move {
            let (_, list) = server.get("/api/v1/games").await;
            let games = list["games"].as_array().cloned().unwrap_or_default();
            match games.into_iter().find(|g| g["game_id"] == id.as_str()) {
                Some(g) if g["status"] == "won" => Ok(g),
                other => Err(format!("{other:?}")),
            }
        }
    };
    let entry = eventually(DEADLINE, "the lobby lists the ended light-cycle game", listed).await;
    assert_eq!((entry["kind"].as_str(), entry["winner"].as_str()), (Some("lightcycle"), Some("yellow")), "{entry}");
    assert_eq!(entry["players"]["yellow"]["ai"], true, "{entry}");
    // The REST view of a lightcycle join: the AI holds the second seat.
    let (status, body) = server.join_rest(&grant.game_id, "late").await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("GAME_FULL")), "{body}");
}

#[actix_rt::test]
async fn a_panic_mid_game_resumes_within_one_snapshot_interval() {
    let server = TestServer::start(config(200, 200, 50)).await;
    let grant = create(&server, "human").await;
    let (status, body) = server.join_rest(&grant.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    let yellow_grant = Grant::from(&body);
    let (mut red, _) = seat(&server, &grant).await;
    let (mut yellow, _) = seat(&server, &yellow_grant).await;
    // Both drive straight on, away from each other: 100 cells to the walls, two seconds at
    // 50 Hz.
    red.recv_until("tick 25", |f| f["type"] == "tick" && f["tick"].as_u64() >= Some(25)).await;
    assert_eq!(server.fault(&grant.game_id, ADMIN, json!({"kind": "panic"})).await, 202);
    let notice = red.recv_type("game_restarted").await;
    let (resumed, lost) = (notice["resumed_at_tick"].as_u64().unwrap(), notice["lost_ticks"].as_u64().unwrap());
    assert!(lost < 10, "resumed within one snapshot interval (10 ticks): {notice}");
    assert_eq!(resumed % 10, 0, "from a snapshot: {notice}");
    let full = red.recv_type("arena").await;
    assert_eq!(full["game"]["tick"].as_u64(), Some(resumed));
    assert_eq!(full["restarts"], 1);
    // Play goes on from there for both seats.
    for p in [&mut red, &mut yellow] {
        p.recv_until("a tick after the restart", |f| f["type"] == "tick" && f["tick"].as_u64() == Some(resumed + 3))
            .await;
    }
    server.wait_metric("rampart_game_restarts_total{kind=\"lightcycle\",reason=\"panic\"}", 1.0).await;
}

#[actix_rt::test]
async fn a_seat_that_does_not_read_is_closed_with_1013_and_the_other_plays_on() {
    let mut c = config(200, 200, 20);
    c.server.outbound_queue = 4;
    c.server.rate_limit_frames_per_sec = 100_000;
    c.server.rate_limit_burst = 100_000;
    let server = TestServer::start(c).await;
    let grant = create(&server, "human").await;
    let (_, body) = server.join_rest(&grant.game_id, "bob").await;
    let yellow_grant = Grant::from(&body);
    let (mut red, _) = seat(&server, &grant).await;
    red.send(json!({"type": "turn", "dir": "up"})).await;
    // Yellow joins with a raw client that never reads (a 4 KiB receive buffer) and pings:
    // its ticks and pongs pile up for it alone. The game has about 99 ticks (5 s) before
    // yellow, driving blind, meets red's trail.
    let mut slow = RawClient::connect(server.addr, &format!("/ws/games/{}", grant.game_id));
    slow.send_text(&json!({"type": "join", "token": yellow_grant.token}).to_string()).expect("join");
    red.recv_type("countdown").await;
    let ping = json!({"type": "ping", "id": "p".repeat(3000)}).to_string();
    let start = std::time::Instant::now();
    while server.metric("rampart_slow_client_disconnects_total").await < 1.0 {
        assert!(start.elapsed() < DEADLINE, "the non-reading seat was never cut off");
        for _ in 0..100 {
            let _ = slow.send_text(&ping); // fails once the server has cut it off
        }
    }
    // Red's ticks keep coming: the game never waited for yellow's socket.
    let before = next_tick(&mut red).await["tick"].as_u64().unwrap();
    red.recv_until("more ticks", |f| f["type"] == "tick" && f["tick"].as_u64() >= Some(before + 5)).await;
    assert_eq!(slow.read_until_close(), Some(1013));
}

#[actix_rt::test]
async fn bad_frames_and_bad_tokens_get_structured_errors() {
    let server = TestServer::start(config(16, 12, 20)).await;
    let grant = create(&server, "human").await;
    let mut p = server.socket(&grant.game_id).await;
    p.send(json!({"type": "turn", "dir": "up"})).await;
    assert_eq!(p.recv_error().await["code"], "BAD_REQUEST");
    p.send(json!({"type": "dance"})).await;
    let e = p.recv_error().await;
    assert_eq!(e["code"], "UNKNOWN_MESSAGE_TYPE", "{e}");
    p.send(json!({"type": "join", "token": grant.token})).await;
    p.recv_type("arena").await;
    p.send(json!({"type": "turn", "dir": "sideways"})).await;
    let e = p.recv_error().await;
    assert_eq!((e["code"].as_str(), e["details"]["field"].as_str()), (Some("VALIDATION_FAILED"), Some("dir")), "{e}");
    let mut wrong = server.socket(&grant.game_id).await;
    wrong.send(json!({"type": "join", "token": "not-a-token"})).await;
    assert_eq!(wrong.recv_error().await["code"], "UNAUTHORIZED");
    assert_eq!(wrong.recv_close().await, Some(4401));
    let (status, body) =
        server.post("/api/v1/games", json!({"kind": "tetris", "opponent": "ai", "player_name": "x"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["allowed"], json!(["connect4", "lightcycle"]));
    // The same table tells clients which page plays each kind.
    let (status, kinds) = server.get("/api/v1/kinds").await;
    assert_eq!(status, 200, "{kinds}");
    assert_eq!(
        kinds["kinds"],
        json!([
            {"name": "connect4", "title": "Connect Four", "page": "/", "realtime": false},
            {"name": "lightcycle", "title": "Light cycles", "page": "/cycles", "realtime": true},
        ])
    );
}

#[actix_rt::test]
async fn at_shutdown_a_light_cycle_seat_is_told_1012() {
    let mut server = TestServer::start(config(64, 44, 20)).await;
    let grant = create(&server, "ai").await;
    let (mut red, _) = seat(&server, &grant).await;
    red.recv_type("countdown").await;
    server.shutdown();
    assert_eq!(red.recv_close().await, Some(1012));
}
