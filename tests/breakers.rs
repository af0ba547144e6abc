//! The breaker endpoints and admin action (docs/PROTOCOL.md), Prometheus output, and the
//! database breaker around the store: a dead store never stops a game.

mod common;

use common::{eventually, test_config, TestServer, DEADLINE};
use rampart::config::Secret;
use serde_json::{json, Value};

const ADMIN: &str = "breaker-admin-token";

fn config() -> rampart::config::Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    c
}

async fn act(server: &TestServer, name: &str, body: &'static str, token: Option<&str>) -> (u16, Value) {
    let (status, body, _) = server.post_raw(&format!("/api/v1/admin/breakers/{name}"), body, token).await;
    (status, body)
}

#[actix_rt::test]
async fn every_breaker_is_listed_with_state_counters_and_config() {
    let server = TestServer::start(config()).await;
    let (status, body) = server.get("/health/circuit-breakers").await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        body["breakers"].as_array().expect("list").iter().filter_map(|b| b["name"].as_str()).collect();
    assert_eq!(names, ["database", "llm", "messaging"]);
    let (status, llm) = server.get("/health/circuit-breakers/llm").await;
    assert_eq!(status, 200);
    assert_eq!(llm["enabled"], false, "no base_url: the llm breaker is a disabled pass-through");
    assert_eq!(llm["state"], "closed");
    let (_, db) = server.get("/health/circuit-breakers/database").await;
    assert_eq!(db["enabled"], true);
    assert_eq!(db["config"]["failure_threshold"].as_u64(), Some(3));
    for key in ["success", "failure", "timeout", "rejected", "ignored", "slow"] {
        assert!(db["counters"][key].is_u64(), "{key} in {db}");
    }
    let (status, err) = server.get("/health/circuit-breakers/nope").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "NOT_FOUND");
    let (status, metrics) = server.get("/metrics/circuit-breakers").await;
    assert_eq!(status, 200);
    let db = &metrics["breakers"][0];
    assert_eq!(db["name"], "database");
    assert!(db["duration_seconds"]["buckets"].as_array().is_some_and(|b| !b.is_empty()));
    let (_, health) = server.get("/health").await;
    assert_eq!(health["checks"]["circuit_breakers"]["breakers"]["llm"]["enabled"], false);
}

#[actix_rt::test]
async fn the_admin_action_is_authorised_validated_and_changes_health() {
    let server = TestServer::start(config()).await;
    assert_eq!(act(&server, "messaging", r#"{"action":"force_open"}"#, None).await.0, 401);
    assert_eq!(act(&server, "messaging", r#"{"action":"force_open"}"#, Some("wrong")).await.0, 401);
    let (status, err) = act(&server, "messaging", r#"{"action":"explode"}"#, Some(ADMIN)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("VALIDATION_FAILED")));
    assert_eq!(err["error"]["details"]["field"], "action");
    let (status, err) = act(&server, "messaging", r#"{"action":"reset","extra":1}"#, Some(ADMIN)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BAD_REQUEST")));
    let (status, err) = act(&server, "messaging", "not json", Some(ADMIN)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BAD_REQUEST")));
    let (status, err) = act(&server, "nope", r#"{"action":"force_open"}"#, Some(ADMIN)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    let (_, health) = server.get("/health").await;
    assert_eq!(health["status"], "healthy", "refused actions change nothing");

    let (status, b) = act(&server, "messaging", r#"{"action":"force_open"}"#, Some(ADMIN)).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!((b["state"].as_str(), b["forced"].as_str()), (Some("open"), Some("open")));
    let (status, health) = server.get("/health").await;
    assert_eq!(status, 200, "degraded is not down");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["circuit_breakers"]["open"], json!(["messaging"]));
    let metrics = server.metrics().await;
    assert!(metrics.contains("rampart_circuit_breaker_state{name=\"messaging\",state=\"open\"} 1"));
    assert!(
        metrics.contains("rampart_circuit_breaker_transitions_total{name=\"messaging\",from=\"closed\",to=\"open\"} 1")
    );

    let (_, b) = act(&server, "messaging", r#"{"action":"force_closed"}"#, Some(ADMIN)).await;
    assert_eq!((b["state"].as_str(), b["forced"].as_str()), (Some("closed"), Some("closed")));
    let (_, b) = act(&server, "messaging", r#"{"action":"reset"}"#, Some(ADMIN)).await;
    assert_eq!((b["state"].as_str(), b["forced"].as_str()), (Some("closed"), None));
    let (_, health) = server.get("/health").await;
    assert_eq!(health["status"], "healthy");
}

#[actix_rt::test]
async fn admin_breaker_actions_are_off_without_a_token() {
    let server = TestServer::start(test_config()).await;
    let (status, err) = act(&server, "database", r#"{"action":"force_open"}"#, Some("anything")).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[actix_rt::test]
async fn games_play_on_while_the_database_breaker_is_open() {
    let server = TestServer::start(config()).await;
    let grant = server.create("human", "ada").await;
    let (_, joined) = server.join_rest(&grant.game_id, "bob").await;
    let mut red = server.player(&grant).await;
    let mut yellow = server.player(&common::Grant::from(&joined)).await;
    let saves_before = server.get("/health/circuit-breakers/database").await.1["counters"]["success"].as_u64();
    assert!(saves_before >= Some(1), "creating a game saved its snapshot through the breaker");

    act(&server, "database", r#"{"action":"force_open"}"#, Some(ADMIN)).await;
    for i in 0..4u64 {
        let player = if i % 2 == 0 { &mut red } else { &mut yellow };
        player.move_to(i as i64 % 2).await;
        player.recv_state(|g| g["moves"].as_u64() == Some(i + 1)).await;
    }
    // Saves are written behind the game: wait for the writer to have tried (and been
    // refused fast) at least once per move.
    let probe = || async {
        let db = server.get("/health/circuit-breakers/database").await.1;
        if db["counters"]["rejected"].as_u64() >= Some(4) {
            Ok(())
        } else {
            Err(db.to_string())
        }
    };
    eventually(DEADLINE, "each save was refused fast", probe).await;
    // A crash now restores from the in-memory last good state, not the unreachable store.
    assert_eq!(server.fault(&grant.game_id, ADMIN, json!({"kind": "panic"})).await, 202);
    let restored = red.recv_state(|g| g["restarts"].as_u64() == Some(1)).await;
    assert_eq!(restored["moves"], 4);
    act(&server, "database", r#"{"action":"reset"}"#, Some(ADMIN)).await;
    red.move_to(0).await;
    red.recv_state(|g| g["moves"].as_u64() == Some(5)).await;
    let db = server.get("/health/circuit-breakers/database").await.1;
    assert!(db["counters"]["success"].as_u64() > saves_before, "saves resume once it closes");
}
