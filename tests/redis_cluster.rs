//! Redis Cluster as a topology (issue 23, item 4): three primaries and three replicas
//! (`cluster-node-timeout 1000`), and two Rampart instances in-process with
//! `redis.cluster_nodes` set (`redis.url` points where nothing listens: only its password and
//! database count) and `redis.min_replicas_acked` 1. Players wait in line through both
//! instances and are admitted in order; a game between two humans is owned by one instance
//! while its second seat is relayed through the other (sharded Pub/Sub); then the primary of
//! the game's slot is SIGKILLed. A move made right then is shown only once it is stored and
//! acknowledged by a replica: after the cluster promoted the replica and the old primary came
//! back as the new one's replica. The game's slot is chosen on the primary of the owner's
//! inbox, so the relay's subscription follows the failover too. The game goes on, and every
//! board either player was ever shown is a prefix of the final one (no move lost that a
//! player was shown). Beside it, the stores on the cluster directly: a batch of snapshots
//! for games in many slots (one pipeline and `WAIT` per slot), claims and renewals each
//! acknowledged by a replica, and an instance alive through its sharded inbox.

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{command_async, redis_config, RedisCluster};
use common::stores::{me, snapshot};
use common::*;
use rampart::config::Config;
use rampart::ids::GameId;
use rampart::store::directory::{Claim, GameDirectory, Renewal};
use rampart::store::redis::directory::{RedisDirectory, ReplicaAcks};
use rampart::store::redis::snapshots::RedisSnapshots;
use rampart::store::redis::{Discovery, RedisConn, RedisSettings};
use rampart::store::snapshot::{SnapshotStore, WriteOutcome};
use serde_json::{json, Value};

const ADMIN: &str = "redis-cluster-admin";

/// How long the cluster may take to promote a replica after its primary dies
/// (`cluster-node-timeout` to flag it, then the election).
const FAILOVER_DEADLINE: Duration = Duration::from_secs(15);

/// How soon after the promotion the relay must listen on the promoted replica: its
/// subscriber checks its channels once a second, and subscribes again at most 0.1 s apart.
const RELAY_AFTER_PROMOTION: Duration = Duration::from_millis(1500);

/// The lease: longer than the failover and the old primary's return, so the owner keeps
/// its game (it pauses while no replica can acknowledge its writes, and resumes).
const LEASE_MS: u64 = 6000;

/// The moves, alternately red's (owner's instance) and yellow's (relayed): no four in a row.
const MOVES: [i64; 14] = [0, 2, 1, 3, 4, 6, 5, 0, 2, 1, 3, 4, 6, 5];

/// The moves played before the primary is killed.
const BEFORE: usize = 6;

fn config(cluster: &RedisCluster, instance: &str) -> Config {
    let mut c = redis_config(&cluster.nodes[0], "t", ADMIN);
    c.redis.url = "redis://127.0.0.1:1/0".to_owned();
    c.redis.cluster_nodes = cluster.seeds();
    c.redis.min_replicas_acked = 1;
    c.cluster.instance_id = instance.to_owned();
    c.cluster.lease_ms = LEASE_MS;
    c.admission.admit_per_sec = 20.0;
    c
}

/// How many subscribers a sharded channel has on the primary of its slot.
async fn listeners(cluster: &RedisCluster, channel: &str) -> Result<i64, String> {
    let slot = cluster.slot(channel).await;
    let primary = cluster.primary_of(slot, None).await.ok_or("no agreed primary")?;
    let reply: Vec<redis::Value> = command_async(primary, &["PUBSUB", "SHARDNUMSUB", channel])
        .await
        .ok_or_else(|| format!("no SHARDNUMSUB answer on {primary}"))?;
    redis::from_redis_value(reply.get(1).cloned().ok_or("short answer")?).map_err(|e| e.to_string())
}

/// The board the node on `port` holds for a game.
async fn stored_columns(port: u16, game_id: &str) -> Option<Value> {
    let data: Option<String> = command_async(port, &["HGET", &format!("t:g:{{{game_id}}}:snap"), "data"]).await?;
    let snapshot: Value = serde_json::from_str(&data?).ok()?;
    Some(snapshot["board"]["columns"].clone())
}

/// Waits until the node on `port` holds the board as its players were shown it.
async fn wait_stored(port: u16, game_id: &str, game: &Value) {
    let columns = &game["columns"];
    let probe = || async move {
        match stored_columns(port, game_id).await {
            Some(stored) if stored == *columns => Ok(()),
            other => Err(format!("{other:?}, the players saw {columns}")),
        }
    };
    eventually(DEADLINE, &format!("the node on {port} holds the board of {game_id}"), probe).await;
}

/// Asks for a game while the instance is overloaded: answers the waitlist ticket.
async fn queue(server: &TestServer, name: &str) -> String {
    let (code, body) =
        server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": name})).await;
    assert_eq!(code, 503, "{body}");
    body["error"]["details"]["ticket"].as_str().expect("ticket").to_owned()
}

/// Plays `column` until the game applies it (asking again while it is refused with
/// `GAME_RESTARTING`, as a client following PROTOCOL.md does), then waits until the other
/// seat is shown it too: the game as both were shown it.
async fn play(mover: &mut Player, watcher: &mut Player, column: i64) -> Value {
    let moves = mover.last_state["moves"].as_u64().expect("moves");
    let start = Instant::now();
    let game = loop {
        mover.move_to(column).await;
        let answer = mover
            .recv_until("the move's outcome", |f| {
                f["type"] == "error" || (f["type"] == "state" && f["game"]["moves"].as_u64() > Some(moves))
            })
            .await;
        if answer["type"] == "state" {
            break answer["game"].clone();
        }
        assert_eq!(answer["error"]["code"], "GAME_RESTARTING", "{answer}");
        assert!(start.elapsed() < DEADLINE, "move {column} still refused after {DEADLINE:?}: {answer}");
        // Paced, not synchronised: the next attempt is the condition.
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(game["moves"].as_u64(), Some(moves + 1), "{game}");
    watcher.recv_state(|g| g["moves"].as_u64() == Some(moves + 1)).await;
    game
}

/// Every board `player` was shown is a prefix of `last` (each column bottom to top): no
/// move it was shown is missing from the final board.
fn every_board_shown_is_in(player: &Player, last: &Value, who: &str) -> usize {
    let mut boards = 0;
    for frame in player.seen.iter().filter(|f| f["type"] == "state") {
        let shown = frame["game"]["columns"].as_array().expect("columns");
        let kept = last["columns"].as_array().expect("columns");
        for (column, (s, k)) in shown.iter().zip(kept).enumerate() {
            let (s, k) = (s.as_array().expect("column"), k.as_array().expect("column"));
            assert!(
                s.len() <= k.len() && s[..] == k[..s.len()],
                "{who} was shown column {column} as {s:?}, the game now has {k:?}: a move shown was lost"
            );
        }
        boards += 1;
    }
    boards
}

#[actix_rt::test]
async fn two_instances_play_and_queue_on_a_cluster_through_a_primary_failover() {
    let mut cluster = RedisCluster::start();
    let a = TestServer::start(config(&cluster, "a")).await;
    let b = TestServer::start(config(&cluster, "b")).await;
    for inbox in ["t:inbox:a", "t:inbox:b"] {
        let probe = || async {
            match listeners(&cluster, inbox).await {
                Ok(1) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        };
        eventually(DEADLINE, &format!("the relay listens on {inbox} (SSUBSCRIBE)"), probe).await;
    }

    // The line: tickets through both instances, admitted once each, in the order issued.
    a.force_health(ADMIN, json!("overloaded")).await;
    b.force_health(ADMIN, json!("overloaded")).await;
    let mut tickets = Vec::new();
    for i in 0..4 {
        tickets.push(queue(if i % 2 == 0 { &a } else { &b }, &format!("waiting{i}")).await);
    }
    for t in &tickets {
        let (code, body) = b.get(&format!("/api/v1/waitlist/{t}")).await;
        assert_eq!((code, &body["status"]), (200, &json!("waiting")), "{body}");
    }
    a.force_health(ADMIN, Value::Null).await;
    b.force_health(ADMIN, Value::Null).await;
    let admitted = a.wait_admitted_in_order(&tickets).await;
    let games: std::collections::HashSet<&str> = admitted.iter().filter_map(|s| s["game_id"].as_str()).collect();
    assert_eq!(games.len(), tickets.len(), "one game per ticket: {admitted:?}");

    // Red on a, the owner; yellow on b, relayed (b publishes to a's inbox, a to b's). The
    // game is one whose slot is on the same primary as a's inbox, so the kill below takes
    // the relay's subscription with it too.
    let inbox_slot = cluster.slot("t:inbox:a").await;
    let inbox_primary = cluster.primary_of(inbox_slot, None).await.expect("a's inbox has a primary");
    let mut red_grant = a.create("human", "ada").await;
    for _ in 0..30 {
        let slot = cluster.slot(&format!("t:g:{{{}}}:snap", red_grant.game_id)).await;
        if cluster.primary_of(slot, None).await == Some(inbox_primary) {
            break;
        }
        red_grant = a.create("human", "ada").await;
    }
    let (status, body) = b.join_rest(&red_grant.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    let yellow_grant = Grant::from(&body);
    let mut red = a.player(&red_grant).await;
    let mut yellow = b.player(&yellow_grant).await;
    red.recv_state(|g| g["players"]["yellow"]["connected"] == true).await;
    let mut game = Value::Null;
    for (i, column) in MOVES[..BEFORE].iter().enumerate() {
        game = if i % 2 == 0 {
            play(&mut red, &mut yellow, *column).await
        } else {
            play(&mut yellow, &mut red, *column).await
        };
    }
    let game_id = red_grant.game_id.clone();
    let slot = cluster.slot(&format!("t:g:{{{game_id}}}:snap")).await;
    let old = cluster.primary_of(slot, None).await.expect("the game's slot has a primary");
    assert_eq!(old, inbox_primary, "no game of 30 had its slot on the primary of a's inbox");
    wait_stored(old, &game_id, &game).await;

    cluster.node(old).stop(); // SIGKILL
    let killed = Instant::now();
    // Red moves at once: the lease is still confirmed, so the game applies it; it is shown
    // once stored and acknowledged by a replica, which the shard has again only once the
    // old primary is back as the promoted one's replica (D18).
    red.move_to(MOVES[BEFORE]).await;
    let probe = || async {
        match cluster.primary_of(slot, Some(old)).await {
            Some(new) if new != old => Ok((new, Instant::now())),
            other => Err(format!("slot {slot} served by {other:?}")),
        }
    };
    let (new, promoted) = eventually(FAILOVER_DEADLINE, "the cluster promotes the replica", probe).await;
    // a's relay subscribes again on the promoted replica (its inbox's slot moved there).
    let probe = || async {
        let reply: Option<Vec<redis::Value>> = command_async(new, &["PUBSUB", "SHARDNUMSUB", "t:inbox:a"]).await;
        match reply.and_then(|r| r.get(1).cloned()).map(redis::from_redis_value::<i64>) {
            Some(Ok(1)) => Ok(promoted.elapsed()),
            other => Err(format!("{other:?}")),
        }
    };
    let listening_after = eventually(DEADLINE, "a's relay listens on the promoted replica", probe).await;
    cluster.node(old).restart();
    let probe = || async {
        let role: Option<Vec<redis::Value>> = command_async(old, &["ROLE"]).await;
        let info: Option<String> = command_async(old, &["INFO", "replication"]).await;
        let first = role.and_then(|r| r.first().cloned()).and_then(|v| redis::from_redis_value::<String>(v).ok());
        match (first.as_deref(), info) {
            (Some("slave"), Some(i)) if i.contains("master_link_status:up") => Ok(Instant::now()),
            (role, _) => Err(format!("ROLE {role:?}")),
        }
    };
    let replica_back = eventually(FAILOVER_DEADLINE, "the old primary is back as a replica, in sync", probe).await;
    let shown = red
        .recv_until("the move made as the primary died", |f| {
            f["type"] == "error" || (f["type"] == "state" && f["game"]["moves"].as_u64() > Some(BEFORE as u64))
        })
        .await;
    let shown_after = replica_back.elapsed();
    game = if shown["type"] == "state" {
        yellow.recv_state(|g| g["moves"].as_u64() == Some(BEFORE as u64 + 1)).await;
        shown["game"].clone()
    } else {
        // Refused only if it reached a game whose lease could not be confirmed: ask again.
        assert_eq!(shown["error"]["code"], "GAME_RESTARTING", "{shown}");
        play(&mut red, &mut yellow, MOVES[BEFORE]).await
    };
    wait_stored(new, &game_id, &game).await;

    // The game goes on, through the relay, every move stored on the new primary.
    for (i, column) in MOVES.iter().enumerate().skip(BEFORE + 1) {
        game = if i % 2 == 0 {
            play(&mut red, &mut yellow, *column).await
        } else {
            play(&mut yellow, &mut red, *column).await
        };
    }
    wait_stored(new, &game_id, &game).await;
    let played_after = replica_back.elapsed();
    assert_eq!(game["moves"].as_u64(), Some(MOVES.len() as u64), "{game}");
    let boards = every_board_shown_is_in(&red, &game, "red") + every_board_shown_is_in(&yellow, &game, "yellow");
    eprintln!(
        "Redis Cluster: the primary of slot {slot} (port {old}) SIGKILLed; its replica (port {new}) promoted \
         {:?} after; a's relay listening there {listening_after:?} after the promotion; the old primary back as \
         its replica {:?} after the promotion; the move made as the \
         primary died shown {shown_after:?} after that, the {} moves after it played by {played_after:?}; \
         {boards} boards shown to the two seats, every one in the final board",
        promoted - killed,
        replica_back - promoted,
        MOVES.len() - BEFORE - 1,
    );
    assert!(listening_after < RELAY_AFTER_PROMOTION, "a's relay listened again only {listening_after:?} after");
    red.close().await;
    yellow.close().await;
}

/// A connection to the cluster (prefix `t`), the replica acknowledgement the stores wait
/// for (one replica, 0.5 s), and the lease directory on them.
fn stores_on(cluster: &RedisCluster) -> (RedisConn, ReplicaAcks, RedisDirectory) {
    let settings = RedisSettings {
        url: "redis://127.0.0.1:1/0".to_owned(),
        key_prefix: "t".to_owned(),
        command_timeout: Duration::from_secs(2),
        reconnect_max_delay: Duration::from_millis(100),
    };
    let conn = RedisConn::lazy_with(&settings, &Discovery::Cluster(cluster.seeds())).expect("cluster connection");
    let acks = ReplicaAcks { replicas: 1, timeout: Duration::from_millis(500) };
    let directory = RedisDirectory::new(conn.clone(), acks).expect("directory");
    (conn, acks, directory)
}

#[actix_rt::test]
async fn the_stores_split_what_spans_slots_and_wait_for_each_primarys_replica() {
    let mut cluster = RedisCluster::start();
    let (conn, acks, directory) = stores_on(&cluster);
    assert!(conn.sharded());
    let store = RedisSnapshots::new(conn.clone(), me("a"), acks).expect("store");

    // 24 games: their keys spread over the slots of all three primaries.
    let ids: Vec<GameId> = (0..24).map(|_| GameId::random()).collect();
    let mut slots = std::collections::HashSet::new();
    let mut epochs = Vec::new();
    for id in &ids {
        slots.insert(cluster.slot(&conn.game_key(id, "snap")).await);
        let Claim::Won(lease) = directory.claim(id, &me("a"), Duration::from_secs(30)).await.expect("claim") else {
            panic!("a fresh game is free")
        };
        directory
            .acknowledged(directory.lease_link())
            .await
            .expect("nothing left to wait for: each claim waited for its replica");
        epochs.push(lease.epoch);
    }
    assert!(slots.len() > 3, "the games are in {} slots", slots.len());
    let batch: Vec<_> =
        ids.iter().zip(&epochs).map(|(id, epoch)| (std::sync::Arc::new(snapshot(id, 1, *epoch)), None)).collect();
    let started = Instant::now();
    let outcomes = store.write_all(&batch).await.expect("a batch across slots is written");
    let took = started.elapsed();
    assert_eq!(outcomes, vec![Ok(WriteOutcome::Written); ids.len()]);
    for (id, epoch) in ids.iter().zip(&epochs) {
        let read = store.read(id).await.expect("read").expect("stored");
        assert_eq!((read.version, read.epoch), (1, *epoch));
        let renewal = directory.renew(id, &me("a"), *epoch, Duration::from_secs(30)).await.expect("renew");
        assert_eq!(renewal, Renewal::Renewed(*epoch));
    }

    // Alive: its heartbeat, and a subscriber on its sharded inbox.
    let (mut subscriber, _) = conn.subscriber(|_: redis::PushInfo| Ok::<(), ()>(())).await.expect("subscriber");
    assert!(subscriber.sharded());
    subscriber.subscribe(&[conn.key("inbox:a"), conn.key("lobby")]).await.expect("SSUBSCRIBE");
    subscriber.ping(&[conn.key("inbox:a"), conn.key("lobby")]).await.expect("subscribed on their primaries");
    directory.heartbeat(&me("a"), Duration::from_secs(30)).await.expect("heartbeat");
    assert!(directory.alive(&me("a")).await.expect("alive"), "heartbeat and a subscriber on its inbox");
    assert!(!directory.alive(&me("b")).await.expect("alive"), "no heartbeat, no subscriber");

    // One shard fails (its primary's replica gone: its WAIT answers 0): a batch across the
    // slots answers that shard's writes each with an error, and writes the others'.
    let view = cluster.view(cluster.nodes[0].port()).await.expect("CLUSTER NODES");
    let primary = view.iter().find(|v| v.primary && !v.slots.is_empty()).expect("a primary").clone();
    let replica = view.iter().find(|v| v.primary_id == primary.id).expect("its replica").port;
    cluster.node(replica).stop();
    let in_shard = |slot: u16| primary.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot));
    let mut shard = Vec::new();
    for id in &ids {
        shard.push(in_shard(cluster.slot(&conn.game_key(id, "snap")).await));
    }
    assert!(shard.iter().any(|s| *s) && shard.iter().any(|s| !*s), "games in and out of the failing shard");
    let batch: Vec<_> =
        ids.iter().zip(&epochs).map(|(id, epoch)| (std::sync::Arc::new(snapshot(id, 2, *epoch)), None)).collect();
    let outcomes = store.write_all(&batch).await.expect("a batch with one shard failing is answered write by write");
    for ((outcome, in_shard), id) in outcomes.iter().zip(&shard).zip(&ids) {
        if *in_shard {
            assert!(outcome.is_err(), "{id}, in the failing shard, answered {outcome:?}");
        } else {
            assert_eq!(outcome, &Ok(WriteOutcome::Written), "{id}, in a healthy shard");
            assert_eq!(store.read(id).await.expect("read").expect("stored").version, 2);
        }
    }
    eprintln!(
        "Redis Cluster stores: a batch of {} snapshots in {} slots written, one pipeline and WAIT 1 per slot, in \
         {took:?}; with one shard's replica gone, its {} writes failed and the {} others were written",
        ids.len(),
        slots.len(),
        shard.iter().filter(|s| **s).count(),
        shard.iter().filter(|s| !**s).count()
    );
}

/// A planned switchover (`CLUSTER FAILOVER`) of the shard that holds an instance's inbox,
/// with the instance's subscription landing on the demoted node (its subscriber's slot map
/// still named it; Redis takes `SSUBSCRIBE` on a replica of the slot, and the shard's
/// messages reach it there): the instance is still seen alive, though the primary counts no
/// subscriber. Read as dead, its relayed seats were released every few seconds for a minute
/// (chaos cluster-failover, RELIABILITY.md §18).
#[actix_rt::test]
async fn an_instance_subscribed_on_its_shards_replica_is_alive() {
    let cluster = RedisCluster::start();
    let (conn, _, directory) = stores_on(&cluster);
    let inbox = conn.key("inbox:a");
    directory.heartbeat(&me("a"), Duration::from_secs(60)).await.expect("heartbeat");
    assert!(!directory.alive(&me("a")).await.expect("alive"), "beating, but no one listens");

    let slot = cluster.slot(&inbox).await;
    let old = cluster.primary_of(slot, None).await.expect("the inbox's primary");
    let view = cluster.view(old).await.expect("CLUSTER NODES");
    let old_id = view.iter().find(|v| v.port == old).expect("the primary in its own view").id.clone();
    let replica = view.iter().find(|v| v.primary_id == old_id).expect("its replica").port;
    let answer: Option<String> = command_async(replica, &["CLUSTER", "FAILOVER"]).await;
    assert_eq!(answer.as_deref(), Some("OK"));
    eventually(Duration::from_secs(15), "the replica serves the inbox's slot", || async {
        (cluster.primary_of(slot, None).await == Some(replica)).then_some(()).ok_or_else(|| "not yet".to_owned())
    })
    .await;
    // The subscription lands on the old primary, a replica now.
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", old)).expect("connect to the demoted node");
    socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let frame = format!("*2\r\n$10\r\nSSUBSCRIBE\r\n${}\r\n{inbox}\r\n", inbox.len());
    std::io::Write::write_all(&mut socket, frame.as_bytes()).expect("SSUBSCRIBE");
    let mut reply = [0u8; 256];
    let n = std::io::Read::read(&mut socket, &mut reply).expect("its answer");
    let reply = String::from_utf8_lossy(&reply[..n]).to_string();
    assert!(reply.contains("ssubscribe"), "the replica took the subscription: {reply:?}");
    let on_primary: Option<Vec<redis::Value>> = command_async(replica, &["PUBSUB", "SHARDNUMSUB", &inbox]).await;
    assert_eq!(on_primary.and_then(|v| v.get(1).cloned()), Some(redis::Value::Int(0)), "none on the primary");
    // Seen alive once the new primary names the demoted node among its replicas (`ROLE`):
    // under load that took a moment in one `make test` run (the assertion made at once
    // failed once; alone it passed 5 of 5).
    eventually(Duration::from_secs(5), "alive: its subscription hears the shard", || async {
        directory.alive(&me("a")).await.expect("alive").then_some(()).ok_or_else(|| "seen dead".to_owned())
    })
    .await;
}

/// The breakers of the instance's store, by name: (state, transitions so far).
async fn breakers(server: &TestServer) -> std::collections::HashMap<String, (String, u64)> {
    let (code, body) = server.get("/health/circuit-breakers").await;
    assert_eq!(code, 200, "{body}");
    body["breakers"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|b| {
            let name = b["name"].as_str().unwrap_or_default().to_owned();
            (name, (b["state"].as_str().unwrap_or_default().to_owned(), b["transitions"].as_u64().unwrap_or(0)))
        })
        .collect()
}

/// A game's store calls go through the breaker of its shard (docs/DESIGN.md D19): a shard
/// whose primary dies opens its own breaker, and a game on another shard goes on, every
/// move shown, never paused, while the failed shard cannot take a write acknowledged by a
/// replica (the killed primary is not started again).
#[actix_rt::test]
async fn a_shard_that_fails_opens_its_own_breaker_and_the_other_shards_games_go_on() {
    let mut cluster = RedisCluster::start();
    let a = TestServer::start(config(&cluster, "a")).await;
    let expected: Vec<String> = {
        let probe = || async {
            let names: Vec<String> = breakers(&a).await.into_keys().filter(|n| n.starts_with("database:")).collect();
            if names.len() == 3 {
                Ok(names)
            } else {
                Err(format!("{names:?}"))
            }
        };
        eventually(DEADLINE, "a breaker per shard", probe).await
    };
    // The shard to kill holds neither the instance's heartbeat nor its inbox.
    let mut kept = Vec::new();
    for key in ["t:instance:a", "t:inbox:a"] {
        let slot = cluster.slot(key).await;
        kept.push(cluster.primary_of(slot, None).await.expect("a primary"));
    }
    let primary_of_game = |id: String| {
        let cluster = &cluster;
        async move {
            let slot = cluster.slot(&format!("t:g:{{{id}}}:snap")).await;
            (slot, cluster.primary_of(slot, None).await.expect("the game's slot has a primary"))
        }
    };
    let (mut doomed, mut spared) = (None, None);
    for _ in 0..60 {
        let red = a.create("human", "ada").await;
        let (slot, primary) = primary_of_game(red.game_id.to_string()).await;
        if kept.contains(&primary) {
            spared = spared.or(Some((red, slot, primary)));
        } else {
            doomed = doomed.or(Some((red, slot, primary)));
        }
        if doomed.is_some() && spared.is_some() {
            break;
        }
    }
    let ((doomed, doomed_slot, killed), (spared, spared_slot, _)) =
        (doomed.expect("a game on the third shard"), spared.expect("a game on a kept shard"));
    let seated = |grant: Grant| {
        let a = &a;
        async move {
            let (status, body) = a.join_rest(&grant.game_id, "bob").await;
            assert_eq!(status, 200, "{body}");
            let mut red = a.player(&grant).await;
            let yellow = a.player(&Grant::from(&body)).await;
            red.recv_state(|g| g["players"]["yellow"]["connected"] == true).await;
            (red, yellow)
        }
    };
    let (mut doomed_red, mut doomed_yellow) = seated(doomed).await;
    let (mut red, mut yellow) = seated(spared).await;
    play(&mut doomed_red, &mut doomed_yellow, 0).await;
    play(&mut red, &mut yellow, 0).await;
    let range_of = |slot: u16| {
        expected
            .iter()
            .find(|name| {
                let (first, last) = name["database:".len()..].split_once('-').expect("FIRST-LAST");
                (first.parse::<u16>().expect("first")..=last.parse().expect("last")).contains(&slot)
            })
            .cloned()
            .expect("a breaker covers the slot")
    };
    let (failing, healthy) = (range_of(doomed_slot), range_of(spared_slot));
    assert_ne!(failing, healthy);

    cluster.node(killed).stop(); // SIGKILL, and not started again
    let killed_at = Instant::now();
    // The doomed game's next move cannot be stored with a replica's acknowledgement: its
    // writes (retried every 200 ms) and renewals fail, and its shard's breaker opens.
    doomed_yellow.move_to(1).await;
    let probe = || async {
        match breakers(&a).await.get(&failing) {
            Some((state, transitions)) if *transitions > 0 => Ok(state.clone()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the failing shard's breaker opens", probe).await;
    let opened_after = killed_at.elapsed();
    // Meanwhile, and from then on, the other shard's game plays on.
    let mut columns = [1, 1, 2, 2, 3, 4, 5, 6].into_iter();
    let mut slowest = Duration::ZERO;
    let mut moves = 0;
    while killed_at.elapsed() < opened_after + Duration::from_secs(3) {
        let Some(column) = columns.next() else { break };
        let started = Instant::now();
        if moves % 2 == 0 {
            play(&mut yellow, &mut red, column).await;
        } else {
            play(&mut red, &mut yellow, column).await;
        }
        slowest = slowest.max(started.elapsed());
        moves += 1;
    }
    let now = breakers(&a).await;
    eprintln!(
        "Redis Cluster: the primary on port {killed} SIGKILLed; {failing} opened {opened_after:?} after; {moves} \
         moves of a game on {healthy} played meanwhile, the slowest shown after {slowest:?}; breakers now {now:?}"
    );
    assert!(moves >= 4, "only {moves} moves played");
    for (name, (state, transitions)) in &now {
        // The whole store's `database` breaker guards the calls of no one game (the lobby's
        // event stream, seat sessions), some of them in the failed shard's slots.
        if name.starts_with("database:") && *name != failing {
            assert_eq!((state.as_str(), *transitions), ("closed", 0), "{name} moved with the failing shard: {now:?}");
        }
    }
    let paused = |p: &Player| p.seen.iter().any(|f| f["type"] == "game_paused" || f["type"] == "error");
    assert!(!paused(&red) && !paused(&yellow), "the other shard's game paused: {:?} {:?}", red.seen, yellow.seen);
}
