//! The supervision tree over the server's own actors and background tasks, end to end: a
//! panic injected into each (through the admin API, on the same path as a real bug) restarts it
//! while games keep playing on the same sockets and the waitlist keeps its order; past its
//! limit a system actor ends the process with a clear log line and a non-zero exit.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::*;
use rampart::config::{Config, Secret};
use serde_json::{json, Value};

const ADMIN: &str = "system-tree-admin-token";

fn config() -> Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    c.health.interval_ms = 50;
    c.health.dwell_ms = 0;
    c.admission.admit_per_sec = 50.0;
    c
}

async fn actor_fault(server: &TestServer, name: &str, body: &'static str) -> (u16, Value) {
    let (code, body, _) = server.post_raw(&format!("/api/v1/admin/actors/{name}/fault"), body, Some(ADMIN)).await;
    (code, body)
}

/// Waits until `/health` counts `restarts` restarts of `name`; answers its view.
async fn wait_restarts(server: &TestServer, name: &str, restarts: u64) -> Value {
    let probe = || async move {
        let (_, health) = server.get("/health").await;
        let actors = health["checks"]["system_actors"]["actors"].as_array().cloned().unwrap_or_default();
        match actors.into_iter().find(|a| a["name"] == name) {
            Some(a) if a["restarts"].as_u64() == Some(restarts) && a["status"] == "ok" => Ok(a),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, &format!("{name} restarted {restarts} times"), probe).await
}

async fn create(server: &TestServer, name: &str) -> (u16, Value) {
    let body = json!({"kind": "connect4", "opponent": "ai", "player_name": name}).to_string();
    let body: &'static str = Box::leak(body.into_boxed_str());
    let (code, body, _) = server.post_raw("/api/v1/games", body, None).await;
    (code, body)
}

#[actix_rt::test]
async fn a_panic_in_each_system_actor_restarts_it_and_games_sockets_and_the_line_are_untouched() {
    let server = TestServer::start(config()).await;
    // A two-human game in play, and a lobby socket open, through every restart.
    let red_grant = server.create("human", "ada").await;
    let (code, joined) = server.join_rest(&red_grant.game_id, "bob").await;
    assert_eq!(code, 200, "{joined}");
    let yellow_grant = Grant::from(&joined);
    let mut red = server.player(&red_grant).await;
    let mut yellow = server.player(&yellow_grant).await;
    let mut lobby = server.lobby().await;

    // Three players waiting in line while the server is (forced) overloaded.
    server.force_health(ADMIN, json!("overloaded")).await;
    let mut tickets = Vec::new();
    for i in 0..3 {
        let (code, body) = create(&server, &format!("w{i}")).await;
        assert_eq!(code, 503, "{body}");
        tickets.push(body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned());
    }

    // The five actors, then the background tasks that run without Redis.
    let parts = ["breakers", "health", "admission", "lobby", "games", "keeper", "events"];
    for (played, name) in parts.into_iter().enumerate() {
        let (code, body) = actor_fault(&server, name, r#"{"kind":"panic"}"#).await;
        assert_eq!((code, body["actor"].as_str(), body["accepted"].as_bool()), (202, Some(name), Some(true)), "{body}");
        let view = wait_restarts(&server, name, 1).await;
        assert_eq!(view["panics"].as_u64(), Some(1), "{view}");
        assert!(view["last_restart_at"].is_string(), "{view}");

        // The game plays on, on the same sockets: the mover's move reaches the opponent.
        let (mover, opponent) = if played % 2 == 0 { (&mut red, &mut yellow) } else { (&mut yellow, &mut red) };
        mover.move_to(played as i64 % 7).await;
        opponent.recv_state(|g| g["moves"] == json!(played + 1)).await;

        // The line is still in order, nobody admitted while overloaded.
        for (i, t) in tickets.iter().enumerate() {
            let (code, status) = server.get(&format!("/api/v1/waitlist/{t}")).await;
            assert_eq!((code, status["position"].as_u64()), (200, Some(i as u64 + 1)), "after {name}: {status}");
        }
        // The restarted actor answers again.
        let (code, health) = server.get("/health").await;
        assert_eq!(code, 503, "still forced overloaded: {health}");
        assert!(server.metrics().await.contains(&format!("rampart_system_actor_restarts_total{{actor=\"{name}\"}} 1")));
    }
    // The lobby socket never closed: it still gets lobby frames (a new game shows up).
    server.force_health(ADMIN, Value::Null).await;
    let admitted = server.wait_admitted_in_order(&tickets).await;
    let first = admitted[0]["game_id"].as_str().expect("admitted game").to_owned();
    lobby.recv_until("the lobby lists an admitted game", |f| f.to_string().contains(&first)).await;
    let (_, health) = server.get("/health").await;
    assert_eq!(health["checks"]["system_actors"]["restarts"].as_u64(), Some(7), "{health}");
    // Without Redis there is no heartbeat task: not listed, and no fault reaches it.
    let listed: Vec<&str> = health["checks"]["system_actors"]["actors"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(listed, parts.to_vec(), "{health}");
    let (code, body) = actor_fault(&server, "heartbeat", r#"{"kind":"panic"}"#).await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    // Creating games works after the supervisor's restart.
    assert_eq!(create(&server, "late").await.0, 201);
}

#[actix_rt::test]
async fn bad_actor_faults_get_structured_errors() {
    let server = TestServer::start(config()).await;
    let (code, body) = actor_fault(&server, "keepr", r#"{"kind":"panic"}"#).await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    assert_eq!(
        body["error"]["details"]["allowed"],
        json!(["breakers", "health", "admission", "lobby", "games", "relay", "keeper", "events", "heartbeat"])
    );
    let (code, body) = actor_fault(&server, "lobby", r#"{"kind":"freeze"}"#).await;
    assert_eq!((code, body["error"]["code"].as_str()), (422, Some("VALIDATION_FAILED")), "{body}");
    let (code, body) = actor_fault(&server, "lobby", r#"{"kind":"hang","duration_ms":0}"#).await;
    assert_eq!((code, body["error"]["details"]["field"].as_str()), (422, Some("duration_ms")), "{body}");
    let (code, body) = actor_fault(&server, "lobby", r#"{"kind":"panic","extra":1}"#).await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("BAD_REQUEST")), "{body}");
    let (code, _, _) = server.post_raw("/api/v1/admin/actors/lobby/fault", r#"{"kind":"panic"}"#, Some("wrong")).await;
    assert_eq!(code, 401);
    // Nothing restarted.
    let (_, health) = server.get("/health").await;
    assert_eq!(health["checks"]["system_actors"]["restarts"].as_u64(), Some(0), "{health}");
}

#[test]
fn a_system_actor_past_its_limit_ends_the_process_with_a_log_line_and_a_non_zero_exit() {
    let mut server = ServerProcess::start(&[
        ("RAMPART_ADMIN_TOKEN", ADMIN),
        ("RAMPART__SUPERVISION__SYSTEM__LOBBY__MAX_RESTARTS", "1"),
        ("RAMPART__SUPERVISION__SYSTEM__LOBBY__STRATEGY", "immediate"),
    ]);
    let fault = || {
        common::process::http_post_auth(server.addr, "/api/v1/admin/actors/lobby/fault", r#"{"kind":"panic"}"#, ADMIN)
    };
    assert_eq!(fault().map(|r| r.0), Some(202));
    eventually_blocking(DEADLINE, "the lobby restarted once", || {
        let (_, body) = common::process::http_get(server.addr, "/health").ok_or("no answer")?;
        if body.contains(r#""name":"lobby","status":"ok","restarts":1"#) {
            Ok(())
        } else {
            Err(body)
        }
    });
    // The second panic within the window is past the limit.
    assert_eq!(fault().map(|r| r.0), Some(202));
    let code = server.wait_exit(Duration::from_secs(20));
    assert!(matches!(code, Some(c) if c != 0), "exit code {code:?}");
    let log = server.log_text();
    assert!(log.contains("system actor lobby crashed past its limit"), "{log}");
    assert!(log.contains("shutdown complete"), "the process drained as on SIGTERM: {log}");
}

#[test]
fn a_system_actor_that_hangs_ends_the_process_with_exit_70() {
    let mut server = ServerProcess::start(&[
        ("RAMPART_ADMIN_TOKEN", ADMIN),
        ("RAMPART__SUPERVISION__SYSTEM__ADMISSION__HANG_TIMEOUT_MS", "300"),
    ]);
    let body = r#"{"kind":"hang","duration_ms":20000}"#;
    let answer = common::process::http_post_auth(server.addr, "/api/v1/admin/actors/admission/fault", body, ADMIN);
    assert_eq!(answer.map(|r| r.0), Some(202));
    // The watchdog thread sees the handler busy past 300 ms and ends the process.
    let code = server.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(70), "exit code");
    let log = server.log_text();
    assert!(log.contains("system actor hung"), "{log}");
}
