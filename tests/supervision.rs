//! End to end: faults injected through the admin API take the same paths as real bugs.
//! A panic restores the last good state; repeated panics close one game while others play
//! on; a hang costs its arbiter's thread and the game is resumed elsewhere; a client that
//! stops reading is closed with 1013 while its game goes on.

mod common;

use common::*;
use rampart::config::{RestartStrategy, Secret};
use serde_json::json;

const ADMIN: &str = "test-admin-token-0123456789";

fn admin_config() -> rampart::config::Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    c
}

/// Plays `n` red moves against the AI in distinct safe columns; answers the last state.
async fn play_some(red: &mut Player, n: u64) -> serde_json::Value {
    let mut game = serde_json::Value::Null;
    for (i, column) in [0, 6, 0, 6].into_iter().take(n as usize).enumerate() {
        red.move_to(column).await;
        game = red.recv_state(|g| g["moves"] == json!(2 * (i as u64 + 1)) && g["turn"] == "red").await;
    }
    game
}

#[actix_rt::test]
async fn a_panic_restores_the_last_good_state_and_players_stay_connected() {
    let server = TestServer::start(admin_config()).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    let before = play_some(&mut red, 2).await;

    assert_eq!(server.fault(&grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    let restarted = red.recv_type("game_restarted").await;
    assert_eq!((restarted["restarts"].as_u64(), restarted["restored_moves"].as_u64()), (Some(1), Some(4)));
    // game_restarted is followed by the restored state, identical to the one before.
    let state = red.recv_type("state").await["game"].clone();
    assert_eq!(state["columns"], before["columns"]);
    assert_eq!(state["moves"], before["moves"]);
    assert_eq!(state["restarts"], 1);
    // The same socket plays on.
    red.move_to(3).await;
    red.recv_state(|g| g["moves"] == 6).await;
    server.wait_metric("rampart_game_restarts_total{kind=\"connect4\",reason=\"panic\"}", 1.0).await;
    server.wait_summary(&grant.game_id, |s| s["restarts"] == 1).await;
}

#[actix_rt::test]
async fn repeated_panics_close_one_game_while_another_plays_on() {
    let mut config = admin_config();
    config.supervision.default.max_restarts = 2;
    config.server.game_arbiters = 1; // both games share one thread
    let server = TestServer::start(config).await;
    let doomed = server.create("ai", "ada").await;
    let healthy = server.create("ai", "bob").await;
    let mut victim = server.player(&doomed).await;
    let mut bystander = server.player(&healthy).await;

    for restarts in 1..=2 {
        assert_eq!(server.fault(&doomed.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
        let r = victim.recv_type("game_restarted").await;
        assert_eq!(r["restarts"], restarts);
    }
    assert_eq!(server.fault(&doomed.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    let failed = victim.recv_type("game_failed").await;
    assert!(failed["reason"].as_str().is_some_and(|r| r.contains("closed")));
    victim.recv_state(|g| g["status"] == "failed").await;
    victim.move_to(3).await;
    assert_eq!(victim.recv_error().await["code"], "GAME_FAILED");
    let path: &'static str = Box::leak(format!("/api/v1/admin/games/{}/fault", doomed.game_id).into_boxed_str());
    let (status, body, _) = server.post_raw(path, r#"{"kind":"panic"}"#, Some(ADMIN)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (410, Some("GAME_FAILED")));
    server.wait_summary(&doomed.game_id, |s| s["status"] == "failed").await;
    server.wait_metric("rampart_games_failed_total{kind=\"connect4\"}", 1.0).await;

    // The other game on the same arbiter never noticed.
    play_some(&mut bystander, 2).await;
    let (_, summary) = server.get(&format!("/api/v1/games/{}", healthy.game_id)).await;
    assert_eq!(summary["restarts"], 0);
}

#[actix_rt::test]
async fn a_long_restart_delay_answers_game_restarting() {
    let mut config = admin_config();
    config.supervision.default.strategy = RestartStrategy::Delayed;
    config.supervision.default.initial_delay_ms = 1500;
    config.supervision.default.max_delay_ms = 1500;
    config.supervision.default.jitter = 0.0;
    config.supervision.default.hold_messages_max_ms = 100;
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    assert_eq!(server.fault(&grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    server.wait_metric("rampart_game_restarts_total{kind=\"connect4\",reason=\"panic\"}", 1.0).await;
    red.move_to(3).await;
    let err = red.recv_error().await;
    assert_eq!(err["code"], "GAME_RESTARTING");
    assert!(err["details"]["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0 && ms <= 1500));
    red.recv_type("game_restarted").await;
    red.move_to(3).await;
    red.recv_state(|g| g["moves"] == 2).await;
}

#[actix_rt::test]
async fn a_short_restart_delay_holds_messages_until_the_game_is_back() {
    let mut config = admin_config();
    config.supervision.default.strategy = RestartStrategy::Delayed;
    config.supervision.default.initial_delay_ms = 200;
    config.supervision.default.jitter = 0.0;
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    assert_eq!(server.fault(&grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    red.move_to(3).await; // waits in the mailbox during the delay, then is played
    red.recv_type("game_restarted").await;
    red.recv_state(|g| g["moves"] == 2).await;
    assert!(!red.seen.iter().any(|f| f["type"] == "error"), "{:?}", red.seen);
}

#[actix_rt::test]
async fn a_hung_game_is_restarted_on_a_fresh_arbiter_and_its_neighbours_move_with_it() {
    let mut config = admin_config();
    config.server.game_arbiters = 1;
    config.supervision.default.hang_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let hung = server.create("ai", "ada").await;
    let neighbour = server.create("ai", "bob").await;
    let mut red = server.player(&hung).await;
    let mut other = server.player(&neighbour).await;
    let before = play_some(&mut red, 1).await;

    assert_eq!(server.fault(&hung.game_id, ADMIN, json!({"kind":"hang","duration_ms":20_000})).await, 202);
    // This move lands in the hung incarnation's mailbox. It is held there, and once the
    // game is restored on a fresh arbiter it is sent again and applied: never lost, never
    // applied twice, and the player hears no error.
    red.move_to(5).await;
    let restarted = red.recv_type("game_restarted").await;
    assert_eq!(restarted["restored_moves"], 2);
    let state = red.recv_type("state").await["game"].clone();
    assert_eq!(state["columns"], before["columns"]);
    let replayed = red.recv_state(|g| g["moves"] == 3).await;
    let column = |g: &serde_json::Value| g["columns"][5].as_array().map(Vec::len);
    assert_eq!(column(&replayed), column(&before).map(|n| n + 1), "the held move landed in column 5");
    red.recv_state(|g| g["moves"] == 4).await;
    server.wait_metric("rampart_commands_replayed_total", 1.0).await;
    assert!(red.seen.iter().all(|f| f["type"] != "error"), "no error for a held move: {:?}", red.seen);
    red.move_to(3).await;
    red.recv_state(|g| g["moves"] == 6).await;
    // The neighbour shared the lost thread: it was moved, not restarted, and plays on.
    play_some(&mut other, 1).await;
    server.wait_metric("rampart_game_restarts_total{kind=\"connect4\",reason=\"hang\"}", 1.0).await;
    server.wait_metric("rampart_arbiters_lost_total", 1.0).await;
    server.wait_metric("rampart_games_moved_total", 1.0).await;
    let (_, summary) = server.get(&format!("/api/v1/games/{}", neighbour.game_id)).await;
    assert_eq!(summary["restarts"], 0);
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("degraded")));
    assert_eq!(health["checks"]["arbiters"]["lost"], 1);
}

/// A fault injected into a game whose thread another game's hang holds is not dropped with
/// the abandoned mailbox: it follows the game to the fresh arbiter and crashes it there,
/// and its player is told (`game_restarted`). (The chaos harness found drills lost this way.)
#[actix_rt::test]
async fn a_fault_sent_to_a_game_on_a_held_thread_follows_it_to_the_fresh_arbiter() {
    let mut config = admin_config();
    config.server.game_arbiters = 1;
    config.supervision.default.hang_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let hung = server.create("ai", "ada").await;
    let neighbour = server.create("ai", "bob").await;
    let mut other = server.player(&neighbour).await;
    let before = play_some(&mut other, 1).await;

    assert_eq!(server.fault(&hung.game_id, ADMIN, json!({"kind":"hang","duration_ms":20_000})).await, 202);
    assert_eq!(server.fault(&neighbour.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    let restarted = other.recv_type("game_restarted").await;
    assert_eq!(restarted["restored_moves"], before["moves"]);
    server.wait_metric("rampart_arbiters_lost_total", 1.0).await;
    server.wait_metric("rampart_game_restarts_total{kind=\"connect4\",reason=\"panic\"}", 1.0).await;
    play_some(&mut other, 1).await;
}

#[actix_rt::test]
async fn a_client_that_stops_reading_is_closed_with_1013_and_its_game_plays_on() {
    let mut config = admin_config();
    config.server.outbound_queue = 4;
    config.server.rate_limit_frames_per_sec = 100_000;
    config.server.rate_limit_burst = 100_000;
    let server = TestServer::start(config).await;
    let grant = server.create("human", "ada").await;
    let (_, body) = server.join_rest(&grant.game_id, "bob").await;
    let yellow_grant = Grant::from(&body);
    let mut yellow = server.player(&yellow_grant).await;

    // Red joins with a raw client that never reads, then keeps pinging: every pong (with a
    // large id) is queued for red alone until its buffers and queue are full.
    let mut slow = RawClient::connect(server.addr, &format!("/ws/games/{}", grant.game_id));
    slow.send_text(&json!({"type":"join","token": grant.token}).to_string()).expect("join");
    yellow.recv_state(|g| g["players"]["red"]["connected"] == true).await;
    let ping = json!({"type":"ping","id":"p".repeat(3000)}).to_string();
    let start = std::time::Instant::now();
    while server.metric("rampart_slow_client_disconnects_total").await < 1.0 {
        assert!(start.elapsed() < DEADLINE, "the slow client was never cut off");
        for _ in 0..100 {
            let _ = slow.send_text(&ping); // fails once the server has cut it off
        }
    }
    yellow.recv_state(|g| g["players"]["red"]["connected"] == false).await;
    // When the slow client finally reads, the last thing it gets is close 1013.
    assert_eq!(slow.read_until_close(), Some(1013));
    // The game was never blocked: red reconnects and the two play on.
    let mut red = server.player(&grant).await;
    red.move_to(3).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
}

#[actix_rt::test]
async fn admin_endpoints_need_the_token_and_do_not_exist_without_one() {
    let server = TestServer::start(admin_config()).await;
    let grant = server.create("ai", "ada").await;
    let path = format!("/api/v1/admin/games/{}/fault", grant.game_id);
    let path: &'static str = Box::leak(path.into_boxed_str());
    let (status, body, _) = server.post_raw(path, r#"{"kind":"panic"}"#, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let (status, _, _) = server.post_raw(path, r#"{"kind":"panic"}"#, Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, body, _) = server.post_raw(path, r#"{"kind":"explode"}"#, Some(ADMIN)).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("kind")));
    let (status, _, _) = server.post_raw("/api/v1/admin/games/nosuch/fault", r#"{"kind":"panic"}"#, Some(ADMIN)).await;
    assert_eq!(status, 404);
    assert_eq!(server.metric("rampart_game_restarts_total{kind=\"connect4\",reason=\"panic\"}").await, 0.0);

    let open = TestServer::start(test_config()).await;
    let grant = open.create("ai", "ada").await;
    let path: &'static str = Box::leak(format!("/api/v1/admin/games/{}/fault", grant.game_id).into_boxed_str());
    let (status, body, _) = open.post_raw(path, r#"{"kind":"panic"}"#, Some(ADMIN)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[actix_rt::test]
async fn a_command_that_crashes_gets_internal_with_an_incident_and_the_game_recovers() {
    let server = TestServer::start(admin_config()).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    let before = play_some(&mut red, 1).await;
    assert_eq!(server.fault(&grant.game_id, ADMIN, json!({"kind":"panic_on_next_command"})).await, 202);
    // The fault is armed once the game has handled it; a ping round trip through the
    // socket does not reach the game, so wait on the lobby summary instead.
    red.move_to(5).await;
    let err = red.recv_error().await;
    assert_eq!(err["code"], "INTERNAL");
    assert!(err["details"]["incident"].as_str().is_some_and(|i| i.len() == 8), "{err}");
    let restarted = red.recv_type("game_restarted").await;
    assert_eq!(restarted["restored_moves"], 2);
    let state = red.recv_type("state").await["game"].clone();
    assert_eq!(state["columns"], before["columns"]);
    red.move_to(5).await;
    red.recv_state(|g| g["moves"] == 4).await;
}
