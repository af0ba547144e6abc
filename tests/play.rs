//! End to end: the real server on port 0, real HTTP and WebSocket clients. Games against
//! the AI and between two humans, every error code reachable over the socket and REST,
//! reconnect and resume, the join deadline.

mod common;

use common::*;
use serde_json::{json, Value};

fn columns(game: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(game["columns"].clone()).expect("columns")
}

/// A column that is not full.
fn legal_column(game: &Value) -> i64 {
    let cols = columns(game);
    // Prefer the centre so games against the AI stay varied but always legal.
    [3usize, 2, 4, 1, 5, 0, 6].into_iter().find(|c| cols[*c].len() < 6).expect("a free column") as i64
}

#[actix_rt::test]
async fn a_full_game_against_the_ai_reaches_its_end() {
    let server = TestServer::start(test_config()).await;
    let grant = server.create("ai", "ada").await;
    assert_eq!(grant.seat, "red");
    let mut red = server.player(&grant).await;
    let mut game = red.last_state.clone();
    while game["status"] == "playing" {
        assert_eq!(game["turn"], "red", "the human moves only on red's turn: {game}");
        let moves = game["moves"].as_u64().expect("moves");
        red.move_to(legal_column(&game)).await;
        // Our move, then the AI's answer (unless our move ended the game).
        game = red
            .recv_state(|g| g["moves"].as_u64() > Some(moves) && (g["turn"] == "red" || g["status"] != "playing"))
            .await;
    }
    assert!(game["status"] == "won" || game["status"] == "draw", "{game}");
    let total: usize = columns(&game).iter().map(Vec::len).sum();
    assert_eq!(total as u64, game["moves"].as_u64().expect("moves"));
    assert_eq!(game["players"]["yellow"]["ai"], true);
    // A finished game refuses moves with GAME_OVER.
    red.move_to(0).await;
    assert_eq!(red.recv_error().await["code"], "GAME_OVER");
    let summary = server.wait_summary(&grant.game_id, |s| s["status"] == game["status"]).await;
    assert_eq!(summary["moves"], game["moves"]);
    assert!(summary.get("player_token").is_none() && !summary.to_string().contains(&grant.token));
}

#[actix_rt::test]
async fn two_humans_play_to_a_vertical_win() {
    let server = TestServer::start(test_config()).await;
    let grant = server.create("human", "ada").await;
    let mut red = server.player(&grant).await;
    let waiting = red.last_state.clone();
    assert_eq!(waiting["status"], "waiting");
    assert!(waiting["players"]["yellow"].is_null());
    // Red cannot move before an opponent joins.
    red.move_to(3).await;
    let err = red.recv_error().await;
    assert_eq!(err["code"], "NOT_YOUR_TURN");
    assert_eq!(err["details"]["reason"], "waiting_for_opponent");

    let (status, body) = server.join_rest(&grant.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    let yellow_grant = Grant::from(&body);
    assert_eq!(yellow_grant.seat, "yellow");
    let (status, body) = server.join_rest(&grant.game_id, "carol").await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("GAME_FULL")));

    let mut yellow = server.player(&yellow_grant).await;
    red.recv_state(|g| g["status"] == "playing" && g["players"]["yellow"]["connected"] == true).await;

    // Yellow may not move first.
    yellow.move_to(0).await;
    assert_eq!(yellow.recv_error().await["code"], "NOT_YOUR_TURN");
    for i in 0..3 {
        red.move_to(0).await;
        yellow.recv_state(|g| g["moves"] == json!(2 * i + 1)).await;
        yellow.move_to(1).await;
        red.recv_state(|g| g["moves"] == json!(2 * i + 2)).await;
    }
    red.move_to(0).await;
    for p in [&mut red, &mut yellow] {
        let end = p.recv_state(|g| g["status"] == "won").await;
        assert_eq!(end["winner"], "red");
        assert_eq!(end["moves"], 7);
        assert_eq!(columns(&end)[0], vec!["red"; 4]);
    }
    // Chat reaches both seats, with the author.
    yellow.send(json!({"type":"chat","text":"well played"})).await;
    for p in [&mut red, &mut yellow] {
        let line = p.recv_type("chat").await;
        assert_eq!((line["from"].as_str(), line["text"].as_str()), (Some("yellow"), Some("well played")));
        assert!(line["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}

#[actix_rt::test]
async fn resign_ends_the_game_for_the_other_seat() {
    let server = TestServer::start(test_config()).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    red.send(json!({"type":"resign"})).await;
    let end = red.recv_state(|g| g["status"] == "won").await;
    assert_eq!((end["winner"].as_str(), end["resigned"].as_str()), (Some("yellow"), Some("red")));
    red.send(json!({"type":"resign"})).await;
    assert_eq!(red.recv_error().await["code"], "GAME_OVER");
}

#[actix_rt::test]
async fn every_bad_frame_gets_its_error_and_the_socket_stays_open() {
    let mut config = test_config();
    config.server.max_frame_bytes = 512;
    let server = TestServer::start(config).await;
    let grant = server.create("human", "ada").await;
    let (_, body) = server.join_rest(&grant.game_id, "bob").await;
    let mut red = server.player(&grant).await;
    let mut yellow = server.player(&Grant::from(&body)).await;

    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("{not json".into(), "BAD_REQUEST", None),
        (r#"{"column":3}"#.into(), "BAD_REQUEST", None),
        (r#"{"type":"teleport"}"#.into(), "UNKNOWN_MESSAGE_TYPE", None),
        (r#"{"type":"move","column":"3"}"#.into(), "BAD_REQUEST", Some("move")),
        (r#"{"type":"move","column":7}"#.into(), "INVALID_MOVE", Some("move")),
        (r#"{"type":"move","column":-1}"#.into(), "INVALID_MOVE", Some("move")),
        (json!({"type":"chat","text":"x".repeat(281)}).to_string(), "VALIDATION_FAILED", Some("chat")),
        (json!({"type":"chat","text":"x".repeat(600)}).to_string(), "PAYLOAD_TOO_LARGE", None),
    ];
    for (frame, code, in_reply_to) in cases {
        red.send_text(frame.clone()).await;
        let reply = red.recv_type("error").await;
        assert_eq!(reply["error"]["code"], code, "frame {frame}");
        assert_eq!(reply["in_reply_to"].as_str(), in_reply_to, "frame {frame}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(reply["error"]["details"].is_object());
    }
    // Still open and still playing: fill column 0 alternately, then it is full.
    for i in 0..6 {
        if i % 2 == 0 {
            red.move_to(0).await
        } else {
            yellow.move_to(0).await
        }
        red.recv_state(|g| g["moves"] == json!(i + 1)).await;
    }
    red.move_to(0).await;
    let err = red.recv_error().await;
    assert_eq!((err["code"].as_str(), err["details"]["column"].as_i64()), (Some("INVALID_MOVE"), Some(0)));
    red.send(json!({"type":"ping","id":42})).await;
    assert_eq!(red.recv_type("pong").await["id"], 42);
    // A frame past the hard limit cannot even be read: the error, then close 1009.
    red.send_text(json!({"type":"chat","text":"x".repeat(70_000)}).to_string()).await;
    let err = red.recv_error().await;
    assert_eq!(err["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(red.recv_close().await, Some(1009));
    // Errors are counted by code.
    server.wait_metric("rampart_ws_errors_sent_total{code=\"UNKNOWN_MESSAGE_TYPE\"}", 1.0).await;
    server.wait_metric("rampart_ws_errors_sent_total{code=\"PAYLOAD_TOO_LARGE\"}", 1.0).await;
}

#[actix_rt::test]
async fn flooding_frames_is_rate_limited() {
    let mut config = test_config();
    config.server.rate_limit_frames_per_sec = 1;
    config.server.rate_limit_burst = 3;
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    for id in 0..6 {
        red.send(json!({"type":"ping","id":id})).await;
    }
    let err = red.recv_error().await;
    assert_eq!(err["code"], "RATE_LIMITED");
    assert!(err["details"]["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1));
}

#[actix_rt::test]
async fn wrong_token_and_missing_join_close_with_4401() {
    let server = TestServer::start(test_config()).await;
    let grant = server.create("ai", "ada").await;
    let mut stranger = server.socket(&grant.game_id).await;
    stranger.send(json!({"type":"join","token":"0".repeat(64)})).await;
    assert_eq!(stranger.recv_error().await["code"], "UNAUTHORIZED");
    assert_eq!(stranger.recv_close().await, Some(4401));

    let mut eager = server.socket(&grant.game_id).await;
    eager.move_to(3).await;
    assert_eq!(eager.recv_error().await["code"], "UNAUTHORIZED");
    assert_eq!(eager.recv_close().await, Some(4401));

    let mut config = test_config();
    config.server.join_timeout_ms = 200;
    let quick = TestServer::start(config).await;
    let grant = quick.create("ai", "ada").await;
    let mut silent = quick.socket(&grant.game_id).await;
    assert_eq!(silent.recv_close().await, Some(4401));

    let (status, body) = server.get("/ws/games/nosuchgame").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("GAME_NOT_FOUND")));
}

#[actix_rt::test]
async fn a_player_reconnects_with_the_same_token_and_resumes_the_seat() {
    let server = TestServer::start(test_config()).await;
    let grant = server.create("ai", "ada").await;
    let mut first = server.player(&grant).await;
    first.move_to(3).await;
    let before = first.recv_state(|g| g["moves"] == 2).await;
    // A second connection with the same token takes the seat over; the first is told.
    let mut second = server.player(&grant).await;
    assert_eq!(first.recv_close().await, Some(4409));
    drop(first);
    let resumed = second.last_state.clone();
    assert_eq!(resumed["moves"], 2);
    assert_eq!(resumed["columns"], before["columns"]);
    second.move_to(3).await;
    second.recv_state(|g| g["moves"] == 4).await;
    // Dropping the socket and reconnecting later works the same way.
    drop(second);
    server.wait_summary(&grant.game_id, |s| s["players"]["red"]["connected"] == false).await;
    let third = server.player(&grant).await;
    let state = third.last_state.clone();
    assert_eq!(state["moves"], 4);
    assert_eq!(state["players"]["red"]["connected"], true);
}

#[actix_rt::test]
async fn rest_rejects_bad_input_with_structured_errors() {
    let mut config = test_config();
    config.server.max_frame_bytes = 256;
    let server = TestServer::start(config).await;
    let code = |v: &Value| v["error"]["code"].as_str().map(str::to_owned);
    let cases: [(&'static str, u16, &str, Option<&str>); 7] = [
        ("{nope", 400, "BAD_REQUEST", None),
        (r#"{"kind":"connect4","opponent":"ai"}"#, 400, "BAD_REQUEST", None),
        (r#"{"kind":"chess","opponent":"ai","player_name":"a"}"#, 422, "VALIDATION_FAILED", Some("kind")),
        (r#"{"kind":"connect4","opponent":"robot","player_name":"a"}"#, 422, "VALIDATION_FAILED", Some("opponent")),
        (r#"{"kind":"connect4","opponent":"ai","player_name":"   "}"#, 422, "VALIDATION_FAILED", Some("player_name")),
        (r#"{"kind":"connect4","opponent":"ai","player_name":"a","extra":1}"#, 400, "BAD_REQUEST", None),
        (r#"[1]"#, 400, "BAD_REQUEST", None),
    ];
    for (body, status, expected, field) in cases {
        let (got, reply, _) = server.post_raw("/api/v1/games", body, None).await;
        assert_eq!((got, code(&reply).as_deref()), (status, Some(expected)), "{body}: {reply}");
        assert_eq!(reply["error"]["details"]["field"].as_str(), field, "{body}");
    }
    let big: &'static str = Box::leak(
        format!(r#"{{"kind":"connect4","opponent":"ai","player_name":"{}"}}"#, "a".repeat(300)).into_boxed_str(),
    );
    let (got, reply, _) = server.post_raw("/api/v1/games", big, None).await;
    assert_eq!((got, code(&reply).as_deref()), (413, Some("PAYLOAD_TOO_LARGE")));
    let (status, reply) = server.get("/api/v1/games/doesnotexist").await;
    assert_eq!((status, code(&reply).as_deref()), (404, Some("GAME_NOT_FOUND")));
    let (status, reply) = server.join_rest("doesnotexist", "bob").await;
    assert_eq!((status, code(&reply).as_deref()), (404, Some("GAME_NOT_FOUND")));
    let grant = server.create("ai", "ada").await;
    let (status, reply) = server.join_rest(&grant.game_id, "bob").await;
    assert_eq!((status, code(&reply).as_deref()), (409, Some("GAME_FULL")));
    for path in ["/api/v1/nope", "/health/nope", "/static/nope.js", "/ws/nope"] {
        let (status, reply) = server.get(path).await;
        assert_eq!((status, code(&reply).as_deref()), (404, Some("NOT_FOUND")), "{path}");
    }
    // A browser path that does not exist: a page with a way back, not JSON.
    let (status, page) = server.get("/no/such/page").await;
    let page = page.as_str().unwrap_or_default();
    assert_eq!(status, 404);
    assert!(page.contains("<html") && page.contains("href=\"/\""), "{page}");
    assert!(server.metric("rampart_http_errors_total{code=\"NOT_FOUND\"}").await >= 5.0);
    let (status, lobby) = server.get("/api/v1/games").await;
    assert_eq!(status, 200);
    assert!(lobby["games"].as_array().is_some_and(|g| g.iter().any(|s| s["game_id"] == grant.game_id.as_str())));
    assert!(!lobby.to_string().contains(&grant.token));
    server.wait_metric("rampart_http_errors_total{code=\"VALIDATION_FAILED\"}", 3.0).await;
}

#[actix_rt::test]
async fn health_metrics_and_the_page_are_served() {
    let server = TestServer::start(test_config()).await;
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("healthy")));
    assert_eq!(health["checks"]["arbiters"]["running"], 2);
    server.create("ai", "ada").await;
    server.wait_metric("rampart_games_started_total{kind=\"connect4\"}", 1.0).await;
    let text = server.metrics().await;
    for name in [
        "rampart_games_active",
        "rampart_game_restarts_total",
        "rampart_games_failed_total",
        "rampart_sockets_open",
        "rampart_slow_client_disconnects_total",
        "rampart_ws_frames_in_total",
        "rampart_ws_errors_sent_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
    let (status, page) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| p.contains("/static/app.js")));
    for asset in ["/static/app.js", "/static/style.css"] {
        assert_eq!(server.get(asset).await.0, 200, "{asset}");
    }
}

#[actix_rt::test]
async fn frames_sent_right_behind_the_join_are_not_lost() {
    let server = TestServer::start(test_config()).await;
    for _ in 0..5 {
        let grant = server.create("ai", "ada").await;
        let mut red = server.socket(&grant.game_id).await;
        red.send(json!({"type":"join","token": grant.token})).await;
        red.move_to(3).await;
        red.recv_state(|g| g["moves"] == 2).await;
        assert!(!red.seen.iter().any(|f| f["type"] == "error"), "{:?}", red.seen);
    }
}

#[actix_rt::test]
async fn a_silent_client_is_dropped_by_the_heartbeat() {
    let mut config = test_config();
    config.server.heartbeat_interval_ms = 100;
    config.server.client_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let grant = server.create("human", "ada").await;
    let (_, body) = server.join_rest(&grant.game_id, "bob").await;
    let mut yellow = server.player(&Grant::from(&body)).await; // answers pings
                                                               // Red never answers the server's pings nor sends anything after joining.
    let mut silent = RawClient::connect(server.addr, &format!("/ws/games/{}", grant.game_id));
    silent.send_text(&json!({"type":"join","token": grant.token}).to_string()).expect("join");
    yellow.recv_state(|g| g["players"]["red"]["connected"] == true).await;
    yellow.recv_state(|g| g["players"]["red"]["connected"] == false).await;
    // Yellow, which answers pings, is still connected and served.
    yellow.send(json!({"type":"ping","id":1})).await;
    assert_eq!(yellow.recv_type("pong").await["id"], 1);
}

#[actix_rt::test]
async fn shutdown_closes_sockets_with_1012() {
    let mut server = TestServer::start(test_config()).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    let mut lobby = server.lobby().await;
    lobby.recv_type("lobby").await;
    server.shutdown();
    assert_eq!(red.recv_close().await, Some(1012));
    assert_eq!(lobby.recv_close().await, Some(1012), "lobby sockets are told too");
}

#[actix_rt::test]
async fn ended_games_nobody_watches_leave_the_lobby_after_their_ttl() {
    let mut config = test_config();
    config.server.finished_game_ttl_secs = 1;
    let server = TestServer::start(config).await;
    let ended = server.create("ai", "ada").await;
    let live = server.create("ai", "bob").await;
    let mut red = server.player(&ended).await;
    red.send(json!({"type":"resign"})).await;
    red.recv_state(|g| g["status"] == "won").await;
    drop(red);
    server.wait_summary(&ended.game_id, |s| s["error"]["code"] == "GAME_NOT_FOUND").await;
    // A game still in play is kept, however old.
    let (status, _) = server.get(&format!("/api/v1/games/{}", live.game_id)).await;
    assert_eq!(status, 200);
    assert_eq!(server.metric("rampart_games_active").await, 1.0);
}
