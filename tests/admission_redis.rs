//! Admission with the Redis waitlist, end to end, each test on its own private
//! redis-server: a real overload (the creation-rate vital set low) and recovery in order;
//! the line surviving a server restart (and a crash that left a player half-admitted); and
//! Redis killed while players queue — they wait in the embedded fallback and are flushed to
//! Redis in order when it returns.

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{redis_config, RedisServer};
use common::{eventually, TestServer, DEADLINE};
use rampart::config::Config;
use rampart::ids::{now_rfc3339, Ticket};
use rampart::protocol::Opponent;
use rampart::store::redis::waitlist::RedisWaitlist;
use rampart::store::waitlist::{TicketStatus, WaitEntry, WaitRequest, WaitlistStore};
use serde_json::{json, Value};

const ADMIN: &str = "redis-admission-admin";

fn config(redis: &RedisServer, prefix: &str) -> Config {
    let mut c = redis_config(redis, prefix, ADMIN);
    c.admission.admit_per_sec = 50.0;
    c.admission.claim_lease_ms = 300;
    c
}

async fn create(server: &TestServer, name: &str) -> (u16, Value) {
    server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": name})).await
}

async fn ticket_status(server: &TestServer, ticket: &str) -> Value {
    server.get(&format!("/api/v1/waitlist/{ticket}")).await.1
}

async fn store(redis: &RedisServer, prefix: &str) -> RedisWaitlist {
    RedisWaitlist::connect(
        &redis.url(),
        prefix,
        Duration::from_secs(120),
        Duration::from_secs(1),
        Duration::from_millis(100),
    )
    .await
    .expect("connect")
}

#[actix_rt::test]
async fn a_creation_flood_waitlists_players_in_redis_and_recovery_admits_them_in_order() {
    let redis = RedisServer::start();
    let mut c = config(&redis, "flood");
    c.health.max_create_rate_per_sec = 20.0;
    // Only the health vital may refuse here, not the token bucket.
    c.admission.rate_per_sec = 100_000.0;
    c.admission.burst = 100_000;
    let server = TestServer::start(c).await;
    let running = server.create("ai", "early").await;
    let mut player = server.player(&running).await;

    // Flood until the measured creation rate trips the monitor and new games must wait.
    let mut tickets = Vec::new();
    let start = Instant::now();
    while tickets.len() < 5 {
        let (code, body) = create(&server, "flood").await;
        if code == 503 {
            assert_eq!(body["error"]["code"], "SERVER_BUSY");
            assert!(body["error"]["message"].as_str().expect("message").contains("overloaded"), "{body}");
            tickets.push(body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned());
        } else {
            assert_eq!(code, 201, "{body}");
        }
        assert!(start.elapsed() < DEADLINE, "the flood never overloaded the server");
    }
    let (_, health) = server.get("/health").await;
    let rate = &health["checks"]["vitals"]["vitals"]["create_rate_per_sec"];
    assert_eq!(rate["limit"].as_f64(), Some(20.0), "{health}");
    // The line is in Redis, in order: each ticket waits no further back than its place in
    // issue order, or has already left it for its game (the line may move as it is read).
    let line = store(&redis, "flood").await;
    for (i, t) in tickets.iter().enumerate() {
        match line.status(&Ticket::parse(t).expect("ticket")).await.expect("status") {
            TicketStatus::Waiting { position } => assert!(position as usize <= i + 1, "{t}: {position}"),
            TicketStatus::Processing | TicketStatus::Admitted(_) => {}
            TicketStatus::Unknown | TicketStatus::Elsewhere => panic!("ticket {i} ({t}) is not in Redis's line"),
        }
    }
    // The running game plays on during the overload.
    player.move_to(0).await;
    player.recv_state(|g| g["moves"].as_u64() == Some(2)).await;
    // The flood stops; the rate falls, health returns, the line is admitted in order.
    server.wait_admitted_in_order(&tickets).await;
    player.move_to(0).await;
    player.recv_state(|g| g["moves"].as_u64() == Some(4)).await;
}

#[actix_rt::test]
async fn the_line_survives_a_server_restart_and_a_half_admitted_player_goes_first() {
    let redis = RedisServer::start();
    let mut first = TestServer::start(config(&redis, "restart")).await;
    first.force_health(ADMIN, json!("overloaded")).await;
    let mut tickets = Vec::new();
    for i in 0..3 {
        let (code, body) = create(&first, &format!("p{i}")).await;
        assert_eq!(code, 503, "{body}");
        tickets.push(body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned());
    }
    first.shutdown();
    // A crash between claim and game creation: the first player is left in processing.
    let line = store(&redis, "restart").await;
    let claimed = line.claim().await.expect("claim").expect("an entry");
    assert_eq!(claimed.ticket.expose(), tickets[0]);
    drop(first);
    // The scenario, not a synchronisation: the crashed instance's claim outlives its lease
    // (claim_lease_ms = 300) before the next instance starts. A younger claim could still be
    // a live instance creating the game, so it would not be taken from it.
    actix_rt::time::sleep(Duration::from_millis(400)).await;

    // A new server on the same Redis recovers the half-admitted player to the front and
    // admits everyone in their original order.
    let second = TestServer::start(config(&redis, "restart")).await;
    second.wait_admitted_in_order(&tickets).await;
    let admitted = ticket_status(&second, &tickets[0]).await;
    let grant = common::Grant::from(&admitted);
    second.player(&grant).await;
}

#[actix_rt::test]
async fn players_queued_while_redis_is_down_are_flushed_to_it_in_order() {
    let mut redis = RedisServer::start();
    let server = TestServer::start(config(&redis, "outage")).await;
    server.force_health(ADMIN, json!("overloaded")).await;
    let (code, body) = create(&server, "before").await;
    assert_eq!(code, 503, "{body}");
    let mut tickets = vec![body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned()];

    redis.stop();
    for i in 0..3 {
        let (code, body) = create(&server, &format!("during{i}")).await;
        assert_eq!(code, 503, "queued in the fallback, not refused: {body}");
        let details = &body["error"]["details"];
        assert_eq!(details["position"].as_u64(), Some(i + 2), "positions continue after Redis's line: {body}");
        tickets.push(details["ticket"].as_str().expect("ticket").to_owned());
    }
    for t in &tickets[1..] {
        assert_eq!(ticket_status(&server, t).await["status"], "waiting", "the fallback answers for its tickets");
    }

    redis.restart(); // empty: Redis lost its data too; the process kept the fallback queue
    let line = store(&redis, "outage").await;
    let probe = || async {
        match line.len().await {
            Ok(4) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    // The ticket Redis forgot is put back at its place, the fallback is flushed behind it.
    eventually(DEADLINE, "the lost entry is restored and the fallback flushed", probe).await;
    for (i, t) in tickets.iter().enumerate() {
        let status = line.status(&Ticket::parse(t).expect("ticket")).await.expect("status");
        assert_eq!(status, TicketStatus::Waiting { position: i as u64 + 1 }, "in issue order");
    }
    // The loss is reported: metric, /health.
    assert_eq!(server.metric("rampart_waitlist_lost_total").await, 1.0);
    assert_eq!(
        server.metric("rampart_waitlist_restored_total").await,
        1.0,
        "the one Redis held; the fallback is flushed"
    );
    let (_, health) = server.get("/health").await;
    let lost = &health["checks"]["admission"]["line_lost"];
    assert_eq!(lost["count"].as_u64(), Some(1), "{health}");
    assert!(lost["last_at"].is_string(), "{health}");
    server.force_health(ADMIN, Value::Null).await;
    server.wait_admitted_in_order(&tickets).await;
}

#[actix_rt::test]
async fn two_servers_share_one_line() {
    let redis = RedisServer::start();
    // A slow pace, so the watcher sees its place improve before its turn comes.
    let mut c = config(&redis, "shared");
    c.admission.admit_per_sec = 4.0;
    let a = TestServer::start(c.clone()).await;
    let b = TestServer::start(c).await;
    a.force_health(ADMIN, json!("overloaded")).await;
    b.force_health(ADMIN, json!("overloaded")).await;
    let mut tickets = Vec::new();
    for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (code, body) = create(server, &format!("p{i}")).await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["error"]["details"]["position"].as_u64(), Some(i as u64 + 1), "one line: {body}");
        tickets.push(body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned());
    }
    // Either server answers for any ticket, and a lobby socket on either watches it live.
    assert_eq!(ticket_status(&b, &tickets[0]).await["position"].as_u64(), Some(1));
    let mut lobby = a.lobby().await;
    lobby.send(json!({"type": "watch", "ticket": tickets[3]})).await;
    let waiting = lobby.recv_type("waitlist").await;
    assert_eq!((waiting["status"].as_str(), waiting["position"].as_u64()), (Some("waiting"), Some(4)), "{waiting}");
    assert!(waiting["eta_secs"].is_u64());
    let entry = WaitEntry {
        ticket: Ticket::random(),
        request: WaitRequest { kind: Default::default(), opponent: Opponent::Ai, player_name: "direct".to_owned() },
        enqueued_at: now_rfc3339(),
        seq: 0,
        shown: 0,
    };
    assert_eq!(store(&redis, "shared").await.enqueue(entry).await.expect("enqueue").position, 5);
    b.force_health(ADMIN, Value::Null).await;
    a.wait_admitted_in_order(&tickets).await;
    // The watcher saw its place improve, then its seat (whichever server admitted it).
    let admitted = lobby.recv_until("admitted", |v| v["type"] == "waitlist" && v["status"] == "admitted").await;
    assert!(admitted["player_token"].is_string());
    assert!(
        lobby.seen.iter().any(|v| v["type"] == "waitlist" && v["position"].as_u64().is_some_and(|p| p < 4)),
        "positions were pushed as the line moved: {:?}",
        lobby.seen
    );
}
