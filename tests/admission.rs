//! Admission control end to end with the embedded waitlist: overload puts new players in
//! line with a ticket and a live position, running games keep playing, and recovery admits
//! everyone in order.

mod common;

use common::{eventually, test_config, TestServer, DEADLINE};
use rampart::config::{Config, Secret};
use serde_json::{json, Value};

const ADMIN: &str = "admission-admin-token";

fn config() -> Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    c.health.interval_ms = 50;
    c.health.dwell_ms = 0;
    c.admission.admit_per_sec = 50.0;
    c
}

async fn create(server: &TestServer, name: &str) -> (u16, Value, Option<String>) {
    let body = json!({"kind": "connect4", "opponent": "ai", "player_name": name}).to_string();
    let body: &'static str = Box::leak(body.into_boxed_str());
    server.post_raw("/api/v1/games", body, None).await
}

async fn wait_health(server: &TestServer, status: &str) {
    let probe = || async move {
        let (_, h) = server.get("/health").await;
        if h["status"] == status {
            Ok(())
        } else {
            Err(h.to_string())
        }
    };
    eventually(DEADLINE, &format!("health becomes {status}"), probe).await;
}

#[actix_rt::test]
async fn overload_waitlists_new_players_and_recovery_admits_them_in_order_while_games_play_on() {
    let server = TestServer::start(config()).await;
    // A game already running before the overload.
    let running = server.create("ai", "early").await;
    let mut player = server.player(&running).await;

    server.force_health(ADMIN, json!("overloaded")).await;
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (503, Some("overloaded")));

    let mut tickets = Vec::new();
    for i in 0..5 {
        let (code, body, retry_after) = create(&server, &format!("p{i}")).await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["error"]["code"], "SERVER_BUSY");
        let details = &body["error"]["details"];
        assert_eq!(details["position"].as_u64(), Some(i + 1), "{body}");
        assert!(details["eta_secs"].is_u64());
        assert!(retry_after.is_some(), "Retry-After is set");
        tickets.push(details["ticket"].as_str().expect("ticket").to_owned());
    }
    let (code, third) = server.get(&format!("/api/v1/waitlist/{}", tickets[2])).await;
    assert_eq!((code, third["status"].as_str(), third["position"].as_u64()), (200, Some("waiting"), Some(3)));

    // The running game is untouched by the overload.
    player.move_to(0).await;
    player.recv_state(|g| g["moves"].as_u64() == Some(2)).await;

    // One player leaves; the ones behind move up.
    let resp =
        server.client.delete(server.url(&format!("/api/v1/waitlist/{}", tickets[1]))).send().await.expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    let (code, gone) = server.get(&format!("/api/v1/waitlist/{}", tickets[1])).await;
    assert_eq!((code, gone["error"]["code"].as_str()), (404, Some("TICKET_NOT_FOUND")));
    let (_, third) = server.get(&format!("/api/v1/waitlist/{}", tickets[2])).await;
    assert_eq!(third["position"].as_u64(), Some(2));
    let waiting: Vec<String> = tickets.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, t)| t.clone()).collect();

    // Recovery: everyone still in line is admitted, in order.
    server.force_health(ADMIN, Value::Null).await;
    let grants = server.wait_admitted_in_order(&waiting).await;
    // Each admitted player can take the seat they were given.
    let grant = common::Grant::from(&grants[0]);
    server.player(&grant).await;
    player.move_to(0).await;
    player.recv_state(|g| g["moves"].as_u64() == Some(4)).await;
    let probe = || async {
        let (_, health) = server.get("/health").await;
        let admission = &health["checks"]["admission"];
        if admission["admitted_from_line"].as_u64() == Some(4) && admission["waiting"].as_u64() == Some(0) {
            Ok(())
        } else {
            Err(admission.to_string())
        }
    };
    eventually(DEADLINE, "the admission counts settle", probe).await;
}

#[actix_rt::test]
async fn the_max_games_cap_and_the_token_bucket_send_new_games_to_the_line() {
    let mut c = config();
    c.admission.max_games = 2;
    let server = TestServer::start(c.clone()).await;
    assert_eq!(create(&server, "a").await.0, 201);
    assert_eq!(create(&server, "b").await.0, 201);
    let (code, body, _) = create(&server, "c").await;
    assert_eq!(code, 503, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("as many games"), "{body}");
    let (code, _) =
        server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "human", "player_name": "d"})).await;
    assert_eq!(code, 503, "a new human game waits too");

    let mut c = config();
    c.admission.rate_per_sec = 0.1;
    c.admission.burst = 2;
    let server = TestServer::start(c).await;
    assert_eq!(create(&server, "a").await.0, 201);
    assert_eq!(create(&server, "b").await.0, 201);
    let (code, body, _) = create(&server, "c").await;
    assert_eq!(code, 503);
    assert!(body["error"]["message"].as_str().expect("message").contains("faster"), "{body}");
}

#[actix_rt::test]
async fn joining_a_free_seat_bypasses_the_line() {
    let server = TestServer::start(config()).await;
    let grant = server.create("human", "host").await;
    server.force_health(ADMIN, json!("overloaded")).await;
    wait_health(&server, "overloaded").await;
    let (code, body) = server.join_rest(&grant.game_id, "guest").await;
    assert_eq!(code, 200, "{body}");
}

#[actix_rt::test]
async fn bad_tickets_get_structured_errors() {
    let server = TestServer::start(config()).await;
    for path in ["/api/v1/waitlist/nope", "/api/v1/waitlist/0123456789abcdef0123456789abcdef"] {
        let (code, body) = server.get(path).await;
        assert_eq!((code, body["error"]["code"].as_str()), (404, Some("TICKET_NOT_FOUND")), "{path}");
        let resp = server.client.delete(server.url(path)).send().await.expect("delete");
        assert_eq!(resp.status().as_u16(), 404);
    }
    let (code, body, _) = server.post_raw("/api/v1/admin/health", r#"{"status":"sideways"}"#, Some(ADMIN)).await;
    assert_eq!((code, body["error"]["code"].as_str()), (422, Some("VALIDATION_FAILED")));
    assert_eq!(server.post_raw("/api/v1/admin/health", r#"{"status":null}"#, Some("wrong")).await.0, 401);
}

#[actix_rt::test]
async fn the_lobby_socket_pushes_snapshots_positions_and_the_admission() {
    let server = TestServer::start(config()).await;
    let mut lobby = server.lobby().await;
    let first = lobby.recv_type("lobby").await;
    assert_eq!(first["games"], json!([]));
    assert_eq!(first["health"], "healthy");
    let grant = server.create("ai", "ada").await;
    let next = lobby.recv_type("lobby").await;
    assert_eq!(next["games"][0]["game_id"], grant.game_id.as_str(), "{next}");

    server.force_health(ADMIN, json!("overloaded")).await;
    let (_, busy, _) = create(&server, "bo").await;
    let ticket = busy["error"]["details"]["ticket"].as_str().expect("ticket").to_owned();
    lobby.send(json!({"type": "watch", "ticket": ticket})).await;
    let waiting = lobby.recv_type("waitlist").await;
    assert_eq!((waiting["status"].as_str(), waiting["position"].as_u64()), (Some("waiting"), Some(1)), "{waiting}");
    assert!(waiting["eta_secs"].is_u64());
    server.force_health(ADMIN, Value::Null).await;
    let admitted = lobby.recv_until("admitted", |v| v["type"] == "waitlist" && v["status"] == "admitted").await;
    let seat = common::Grant::from(&admitted);
    server.player(&seat).await;

    // Bad frames get structured errors and the socket stays open.
    lobby.send_text("not json".to_owned()).await;
    assert_eq!(lobby.recv_error().await["code"], "BAD_REQUEST");
    lobby.send(json!({"type": "move", "column": 1})).await;
    assert_eq!(lobby.recv_error().await["code"], "UNKNOWN_MESSAGE_TYPE");
    lobby.send(json!({"type": "watch", "ticket": "nope"})).await;
    assert_eq!(lobby.recv_error().await["code"], "TICKET_NOT_FOUND");
    lobby.send(json!({"type": "watch", "ticket": "0123456789abcdef0123456789abcdef"})).await;
    assert_eq!(lobby.recv_error().await["code"], "TICKET_NOT_FOUND");
    lobby.send(json!({"type": "ping", "id": 7})).await;
    assert_eq!(lobby.recv_type("pong").await["id"], 7);
    // The lobby socket has the game socket's frame rate limit.
    for i in 0..200 {
        lobby.send(json!({"type": "ping", "id": i})).await;
    }
    let limited = lobby.recv_until("RATE_LIMITED", |v| v["type"] == "error").await;
    assert_eq!(limited["error"]["code"], "RATE_LIMITED", "{limited}");
    assert!(limited["error"]["details"]["retry_after_ms"].is_u64());
}

#[actix_rt::test]
async fn overload_sheds_ended_games_nobody_watches_and_keeps_the_watched_ones() {
    let server = TestServer::start(config()).await;
    // Two games resigned at once; one player leaves, the other keeps watching the result.
    let left = server.create("ai", "leaver").await;
    let watched = server.create("ai", "watcher").await;
    let mut leaver = server.player(&left).await;
    let mut watcher = server.player(&watched).await;
    for player in [&mut leaver, &mut watcher] {
        player.send(json!({"type": "resign"})).await;
        player.recv_state(|g| g["status"] != "playing").await;
    }
    drop(leaver);
    let game = |id: &str| format!("/api/v1/games/{id}");
    let (code, _) = server.get(&game(&left.game_id)).await;
    assert_eq!(code, 200, "an ended game is kept for finished_game_ttl_secs while the server is healthy");

    server.force_health(ADMIN, json!("overloaded")).await;
    let probe = || async {
        match server.get(&game(&left.game_id)).await {
            (404, _) => Ok(()),
            (code, body) => Err(format!("{code} {body}")),
        }
    };
    eventually(DEADLINE, "the unwatched ended game is shed", probe).await;
    let (code, body) = server.get(&game(&watched.game_id)).await;
    assert_eq!(code, 200, "a game someone still watches stays: {body}");
    watcher.send(json!({"type": "ping", "id": 1})).await;
    watcher.recv_type("pong").await;
}
