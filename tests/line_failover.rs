//! The waiting line through a Redis failover (issue 23, item 5), end to end: two instances
//! on one private redis-server (with its append-only file, as a caught-up replica would
//! be), which is SIGKILLed and started again. Every ticket is polled through both
//! instances at every step, and every answer is checked as it comes: no ticket is ever
//! answered 404 TICKET_NOT_FOUND, its displayed position never goes up, and in the end
//! every ticket is admitted exactly once, in issue order. While the store is down, the
//! fallback queue never passes older tickets that wait in Redis, admits its own in order
//! when none do, and once Redis is back a peer answers their grants.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::redis_server::{redis_config, RedisServer};
use common::{TestServer, DEADLINE};
use rampart::config::Config;
use serde_json::{json, Value};

const ADMIN: &str = "line-failover-admin";

fn config(redis: &RedisServer, prefix: &str) -> Config {
    let mut c = redis_config(redis, prefix, ADMIN);
    c.admission.admit_per_sec = 20.0;
    c
}

/// Asks for a game that must wait; answers its ticket.
async fn queue(server: &TestServer, name: &str) -> String {
    let (code, body) =
        server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": name})).await;
    assert_eq!(code, 503, "{body}");
    body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned()
}

/// What a poll of a ticket answered.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Waiting(u64),
    Admitted(String),
    /// 503: the store cannot answer, or (`elsewhere`) another instance may hold the ticket.
    Busy(Option<String>),
}

/// Every answer every ticket got, checked as it comes: never TICKET_NOT_FOUND, a position
/// never above one shown before (through either instance), one grant per ticket.
#[derive(Default)]
struct Followers {
    shown: HashMap<String, u64>,
    granted: HashMap<String, String>,
    elsewhere: u64,
    polls: u64,
}

impl Followers {
    async fn poll(&mut self, server: &TestServer, via: &str, ticket: &str) -> Seen {
        let (code, body) = server.get(&format!("/api/v1/waitlist/{ticket}")).await;
        self.polls += 1;
        let seen = match code {
            200 if body["status"] == "waiting" => Seen::Waiting(body["position"].as_u64().expect("position")),
            200 if body["status"] == "admitted" => Seen::Admitted(body["game_id"].as_str().expect("game").to_owned()),
            503 => {
                assert_eq!(body["error"]["code"], "SERVER_BUSY", "{body}");
                assert!(body["error"]["details"]["retry_after_ms"].is_u64(), "retryable: {body}");
                Seen::Busy(body["error"]["details"]["reason"].as_str().map(str::to_owned))
            }
            _ => panic!("ticket {}… through {via}: {code} {body}", &ticket[..6]),
        };
        match &seen {
            Seen::Waiting(position) => {
                let before = self.shown.insert(ticket.to_owned(), *position);
                if let Some(before) = before {
                    assert!(
                        *position <= before,
                        "ticket {}… through {via}: shown {before}, then {position}",
                        &ticket[..6]
                    );
                }
            }
            Seen::Admitted(game) => {
                let before = self.granted.insert(ticket.to_owned(), game.clone());
                assert!(before.is_none_or(|g| g == *game), "ticket {}… granted two games", &ticket[..6]);
            }
            Seen::Busy(Some(reason)) if reason == "elsewhere" => self.elsewhere += 1,
            Seen::Busy(_) => {}
        }
        seen
    }

    /// Polls every ticket through both instances once.
    async fn round(&mut self, a: &TestServer, b: &TestServer, tickets: &[String]) {
        for t in tickets {
            self.poll(a, "a", t).await;
            self.poll(b, "b", t).await;
        }
    }
}

/// Waits until every ticket answers `pred` through `server`, polling every ticket through
/// both instances meanwhile.
async fn until_all(
    followers: &mut Followers,
    (a, b): (&TestServer, &TestServer),
    server: &TestServer,
    tickets: &[String],
    what: &str,
    pred: impl Fn(&Seen) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        followers.round(a, b, tickets).await;
        let mut pending = 0;
        for t in tickets {
            if !pred(&followers.poll(server, "the checking instance", t).await) {
                pending += 1;
            }
        }
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {pending} of {} tickets not yet", tickets.len());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The games' `created_at`, in the tickets' order: each one later than the one before.
async fn created_in_order(server: &TestServer, games: &[String]) {
    let mut created = Vec::new();
    for id in games {
        let (_, summary) = server.get(&format!("/api/v1/games/{id}")).await;
        created.push(summary["created_at"].as_str().expect("created_at").to_owned());
    }
    let inversions = created.windows(2).filter(|w| w[0] >= w[1]).count();
    assert_eq!(inversions, 0, "admitted out of issue order: {created:?}");
}

async fn breaker(server: &TestServer, action: &'static str) {
    let body = match action {
        "force_open" => r#"{"action":"force_open"}"#,
        _ => r#"{"action":"reset"}"#,
    };
    let (code, answer, _) = server.post_raw("/api/v1/admin/breakers/database", body, Some(ADMIN)).await;
    assert_eq!(code, 200, "{answer}");
}

/// Six tickets in Redis, then Redis killed and six more in the two fallback queues, issued
/// alternately. Redis comes back while `a` cannot reach it (its breaker forced open), so
/// `b` flushes first and must answer a's fallback tickets "elsewhere", never 404. Then a
/// flushes too: the two queues merge into Redis's line, positions never go up; only a
/// admits, and every ticket is admitted once, in the order it was issued.
#[actix_rt::test]
async fn a_failover_loses_no_ticket_to_a_false_404_and_no_place_goes_backwards() {
    let mut redis = RedisServer::start_persistent();
    let a = TestServer::start(config(&redis, "failover")).await;
    let b = TestServer::start(config(&redis, "failover")).await;
    a.force_health(ADMIN, json!("overloaded")).await;
    b.force_health(ADMIN, json!("overloaded")).await;
    let mut followers = Followers::default();

    let mut tickets = Vec::new();
    for i in 0..6 {
        tickets.push(queue(if i % 2 == 0 { &a } else { &b }, &format!("before{i}")).await);
    }
    followers.round(&a, &b, &tickets).await;

    redis.stop(); // SIGKILL
    let mut held_by_a = Vec::new();
    for i in 0..6 {
        let (server, name) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let ticket = queue(server, &format!("during{i}")).await;
        assert_eq!(ticket.len(), 56, "a fallback ticket names its queue");
        match followers.poll(server, name, &ticket).await {
            Seen::Waiting(position) => assert!(position > 6, "behind Redis's line, as {name} last saw it: {position}"),
            other => panic!("a fallback ticket through its own instance: {other:?}"),
        }
        if name == "a" {
            held_by_a.push(ticket.clone());
        }
        tickets.push(ticket);
    }
    followers.round(&a, &b, &tickets).await;
    followers.round(&a, &b, &tickets).await;

    // Redis is back, but a cannot reach it yet: its fallback tickets are only in a.
    breaker(&a, "force_open").await;
    redis.restart();
    let b_tickets: Vec<String> = tickets.iter().filter(|t| !held_by_a.contains(t)).cloned().collect();
    until_all(&mut followers, (&a, &b), &b, &b_tickets, "b has flushed its queue", |s| matches!(s, Seen::Waiting(_)))
        .await;
    for t in &held_by_a {
        let seen = followers.poll(&b, "b", t).await;
        assert_eq!(seen, Seen::Busy(Some("elsewhere".to_owned())), "a's fallback ticket through b");
    }

    breaker(&a, "reset").await;
    until_all(&mut followers, (&a, &b), &b, &tickets, "every ticket waits in Redis", |s| matches!(s, Seen::Waiting(_)))
        .await;

    // Only a admits: one at a time, in the line's order.
    a.force_health(ADMIN, Value::Null).await;
    until_all(&mut followers, (&a, &b), &b, &tickets, "every ticket is admitted", |s| matches!(s, Seen::Admitted(_)))
        .await;
    let games: Vec<String> = tickets.iter().map(|t| followers.granted[t].clone()).collect();
    assert_eq!(games.iter().collect::<HashSet<_>>().len(), tickets.len(), "one game per ticket");
    created_in_order(&a, &games).await;
    assert!(followers.elsewhere >= held_by_a.len() as u64);
    eprintln!(
        "line failover: {} tickets, {} polls, {} answered elsewhere, 0 not found, 0 places back",
        tickets.len(),
        followers.polls,
        followers.elsewhere
    );
}

/// Redis dies with two tickets waiting in it; a's fallback queue issues three more while it
/// is down. Nobody passes the older two while Redis cannot say whether they were admitted:
/// a admits none of its own meanwhile. Back, the whole line is admitted in issue order,
/// and b answers every grant.
#[actix_rt::test]
async fn while_the_store_is_down_the_fallback_never_passes_older_tickets() {
    let mut redis = RedisServer::start_persistent();
    let a = TestServer::start(config(&redis, "older")).await;
    let b = TestServer::start(config(&redis, "older")).await;
    a.force_health(ADMIN, json!("overloaded")).await;
    b.force_health(ADMIN, json!("overloaded")).await;
    let mut followers = Followers::default();
    let mut tickets = vec![queue(&a, "older0").await, queue(&b, "older1").await];

    redis.stop();
    for i in 0..3 {
        tickets.push(queue(&a, &format!("own{i}")).await);
    }
    a.force_health(ADMIN, Value::Null).await;
    // 30 admission rounds at 20 a second: none of a's own goes first.
    let down = Instant::now();
    while down.elapsed() < Duration::from_millis(1500) {
        followers.round(&a, &b, &tickets).await;
        assert!(followers.granted.is_empty(), "admitted while older tickets wait in Redis: {:?}", followers.granted);
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }

    redis.restart();
    until_all(&mut followers, (&a, &b), &b, &tickets, "every ticket is admitted", |s| matches!(s, Seen::Admitted(_)))
        .await;
    let games: Vec<String> = tickets.iter().map(|t| followers.granted[t].clone()).collect();
    created_in_order(&a, &games).await;
}

/// Redis dies with nobody waiting in it: a's fallback queue holds its own tickets, since
/// no game can start without its lease in the store (docs/DESIGN.md D17), while b answers
/// them 503 (busy, or `elsewhere`), never 404, and no place goes up. Back, they are admitted in issue
/// order and b answers their grants.
#[actix_rt::test]
async fn while_the_store_is_down_the_fallback_holds_its_own_and_a_peer_never_denies_them() {
    let mut redis = RedisServer::start_persistent();
    let a = TestServer::start(config(&redis, "own")).await;
    let b = TestServer::start(config(&redis, "own")).await;
    a.force_health(ADMIN, json!("overloaded")).await;
    b.force_health(ADMIN, json!("overloaded")).await;
    let mut followers = Followers::default();

    redis.stop();
    let mut own = Vec::new();
    for i in 0..3 {
        own.push(queue(&a, &format!("own{i}")).await);
    }
    a.force_health(ADMIN, Value::Null).await;
    let down = Instant::now();
    while down.elapsed() < Duration::from_millis(1500) {
        followers.round(&a, &b, &own).await;
        assert!(followers.granted.is_empty(), "admitted while no game can start: {:?}", followers.granted);
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }

    redis.restart();
    until_all(&mut followers, (&a, &b), &b, &own, "b answers every grant", |s| matches!(s, Seen::Admitted(_))).await;
    let games: Vec<String> = own.iter().map(|t| followers.granted[t].clone()).collect();
    created_in_order(&a, &games).await;
}
