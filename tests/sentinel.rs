//! Redis Sentinel as a topology (issue 23, item 4): a private primary, one replica and three
//! Sentinels (quorum 2, `down-after-milliseconds 1000`, `failover-timeout 3000`), and a
//! Rampart instance in-process with `redis.sentinels` set and `redis.url` pointing where
//! nothing listens (only its password and database count). (a) The primary is SIGKILLed:
//! once the Sentinels promote the replica, a move made meanwhile is stored in the new
//! primary and shown (D18) within about a second, the relay listens there, and the game
//! goes on.
//! (b) A planned switchover (`SENTINEL FAILOVER`): the instance follows the new primary and
//! does not stay on the demoted node answering `READONLY`, nor on the old primary while it
//! still takes writes before its demotion. (c) The relay's subscription comes back within
//! about 0.1 s of Redis answering again.

mod common;

use std::time::{Duration, Instant};

use common::peek::{redis_cmd, wait_stored};
use common::redis_server::{redis_config, RedisServer, Sentinel};
use common::*;
use rampart::config::Config;
use serde_json::Value;

/// How long after the promotion the store must be in use again (the `database` breaker's
/// open period in the test config, 0.2 s, a lookup through the Sentinels and a write).
const DURABLE_AFTER_PROMOTION: Duration = Duration::from_millis(1000);

/// How long the Sentinels may take to promote the replica after the primary dies (1 s to
/// call it down, then the election and the promotion).
const FAILOVER_DEADLINE: Duration = Duration::from_secs(15);

/// The instance's id: its inbox is `t:inbox:s1`.
const INSTANCE: &str = "s1";

/// A primary, its replica and three Sentinels that all know both and each other.
struct Set {
    nodes: [RedisServer; 2],
    sentinels: Vec<Sentinel>,
}

impl Set {
    /// Starts the set and waits (before any server runs in this thread: blocking is fine)
    /// until the replica is in sync and every Sentinel sees the replica and the two others.
    fn start() -> Set {
        let primary = RedisServer::start();
        let replica = RedisServer::start_replica(&primary);
        let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(primary.port())).collect();
        eventually_blocking(Duration::from_secs(20), "the replica is in sync and the Sentinels see everyone", || {
            let watched = sentinels.iter().all(|s| {
                s.master_field("num-slaves").as_deref() == Some("1")
                    && s.master_field("num-other-sentinels").as_deref() == Some("2")
            });
            if replica.in_sync() && watched {
                Ok(())
            } else {
                let seen: Vec<_> = sentinels
                    .iter()
                    .map(|s| (s.master_field("num-slaves"), s.master_field("num-other-sentinels")))
                    .collect();
                Err(format!("replica in sync: {}, Sentinels (replicas, other Sentinels): {seen:?}", replica.in_sync()))
            }
        });
        Set { nodes: [primary, replica], sentinels }
    }

    /// A Rampart config pointed at the Sentinels; `redis.url` leads nowhere.
    fn config(&self) -> Config {
        let mut c = redis_config(&self.nodes[0], "t", "admin-token");
        c.redis.url = "redis://127.0.0.1:1/0".to_owned();
        c.redis.sentinels = self.sentinels.iter().map(Sentinel::address).collect();
        c.cluster.instance_id = INSTANCE.to_owned();
        c
    }
}

/// The first word of `ROLE` on `port` (`master`, `slave`).
async fn role(port: u16) -> Option<String> {
    let reply: Vec<redis::Value> = redis_cmd(port, &["ROLE"]).await?;
    redis::from_redis_value(reply.first()?.clone()).ok()
}

/// The primary's port as the Sentinel on `port` names it.
async fn named_primary(port: u16) -> Option<u16> {
    let reply: Option<(String, String)> =
        redis_cmd(port, &["SENTINEL", "get-master-addr-by-name", Sentinel::MASTER_NAME]).await?;
    reply?.1.parse().ok()
}

/// Waits until the Redis on `port` is the primary (`ROLE` master) and a Sentinel names it;
/// answers when that was seen.
async fn wait_promoted(set: &Set, port: u16) -> Instant {
    let probe = || async {
        let role = role(port).await;
        let mut named = Vec::new();
        for sentinel in &set.sentinels {
            named.push(named_primary(sentinel.port()).await);
        }
        if role.as_deref() == Some("master") && named.contains(&Some(port)) {
            Ok(Instant::now())
        } else {
            Err(format!("ROLE {role:?}, the Sentinels name {named:?}"))
        }
    };
    eventually(FAILOVER_DEADLINE, &format!("the Sentinels promote the node on {port}"), probe).await
}

/// Plays `column` until the game applies it, then waits for the AI's answer: the game
/// after both, as its player was shown it (once stored: D18).
async fn play_turn(player: &mut Player, column: i64) -> Value {
    let moves = player.last_state["moves"].as_u64().expect("moves");
    let game = player.play_until_applied(column, moves, DEADLINE).await.expect("the move");
    if game["moves"].as_u64() == Some(moves + 1) {
        player.recv_state(|g| g["moves"].as_u64() == Some(moves + 2)).await
    } else {
        game
    }
}

/// How many subscribers the channel has on the Redis on `port`.
async fn subscribers(port: u16, channel: &str) -> Option<i64> {
    let reply: Vec<redis::Value> = redis_cmd(port, &["PUBSUB", "NUMSUB", channel]).await?;
    redis::from_redis_value(reply.get(1)?.clone()).ok()
}

/// The `database` breaker as `/health/circuit-breakers/database` shows it.
async fn database_breaker(api: &TestServer) -> Value {
    let (status, body) = api.get("/health/circuit-breakers/database").await;
    assert_eq!(status, 200, "{body}");
    body
}

#[actix_rt::test]
async fn a_killed_primary_is_followed_to_the_promoted_replica() {
    let mut set = Set::start();
    let (old, new) = (set.nodes[0].port(), set.nodes[1].port());
    let api = TestServer::start(set.config()).await;
    let inbox = format!("t:inbox:{INSTANCE}");
    let probe = || async {
        match subscribers(old, &inbox).await {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the relay listens on the primary", probe).await;
    let grant = api.create("ai", "ada").await;
    let mut red = api.player(&grant).await;
    red.move_to(3).await;
    let game = red.recv_state(|g| g["moves"] == 2).await;
    wait_stored(old, "t", &grant.game_id, &game, DEADLINE).await;

    set.nodes[0].stop();
    let killed = Instant::now();
    // A move right away: the lease is still confirmed, so the game applies it; its snapshot
    // waits in the keeper for a primary, and its player is shown it once it is stored
    // there (D18).
    red.move_to(2).await;
    let promoted = wait_promoted(&set, new).await;
    let failover = promoted - killed;
    let shown = red
        .recv_until("the move made as the primary died", |f| {
            f["type"] == "error" || (f["type"] == "state" && f["game"]["moves"].as_u64() >= Some(3))
        })
        .await;
    // Refused only if the move reached a game whose lease had lapsed: ask again.
    let during = if shown["type"] == "state" {
        shown["game"].clone()
    } else {
        red.play_until_applied(2, 2, DEADLINE).await.expect("red's move")
    };
    let durable_after = promoted.elapsed();
    // The AI's answer, then the board as Redis holds it.
    let mut game = if during["moves"] == 3 { red.recv_state(|g| g["moves"] == 4).await } else { during };
    wait_stored(new, "t", &grant.game_id, &game, DEADLINE).await;
    let probe = || async {
        match subscribers(new, &inbox).await {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the relay listens on the promoted replica", probe).await;
    let listening_after = promoted.elapsed();
    // The game goes on, every move written to the new primary.
    for column in [4, 1] {
        game = play_turn(&mut red, column).await;
        wait_stored(new, "t", &grant.game_id, &game, DEADLINE).await;
    }
    let played_after = promoted.elapsed();
    let db = database_breaker(&api).await;
    eprintln!(
        "primary SIGKILLed: promoted {failover:?} after; after the promotion the move made meanwhile was shown \
         (stored in the new primary) {durable_after:?}, the relay listened there {listening_after:?}, two more moves \
         were written by {played_after:?}; database breaker {} ({} transitions)",
        db["state"], db["transitions"]
    );
    assert!(durable_after < DURABLE_AFTER_PROMOTION, "durable again only {durable_after:?} after the promotion");
    assert!(listening_after < DURABLE_AFTER_PROMOTION, "the relay listened again only {listening_after:?} after");
    assert_eq!(db["state"], "closed", "{db}");
    red.close().await;
}

#[actix_rt::test]
async fn a_planned_switchover_is_followed_and_the_demoted_node_is_left() {
    let set = Set::start();
    let (old, new) = (set.nodes[0].port(), set.nodes[1].port());
    let api = TestServer::start(set.config()).await;
    let grant = api.create("ai", "ada").await;
    let mut red = api.player(&grant).await;
    red.move_to(3).await;
    let game = red.recv_state(|g| g["moves"] == 2).await;
    wait_stored(old, "t", &grant.game_id, &game, DEADLINE).await;

    set.sentinels[0].failover();
    let asked = Instant::now();
    let promoted = wait_promoted(&set, new).await;
    // The old primary stays a master that takes writes until a Sentinel turns it into a
    // replica (about 8 s on). The instance's watch sees the Sentinels name the new one and
    // moves every connection there: the relay's subscription first (the first sign).
    let inbox = format!("t:inbox:{INSTANCE}");
    let probe = || async {
        match subscribers(new, &inbox).await {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the relay listens on the new primary", probe).await;
    let followed_after = promoted.elapsed();
    // A move now is written to the new primary, though the old one still takes writes.
    let game = play_turn(&mut red, 2).await;
    wait_stored(new, "t", &grant.game_id, &game, DEADLINE).await;
    let written_on_new = promoted.elapsed();
    let old_role = role(old).await;
    // The old primary is turned into a replica of the new one once a Sentinel sees it.
    let probe = || async {
        match role(old).await.as_deref() {
            Some("slave") => Ok(Instant::now()),
            other => Err(format!("ROLE {other:?}")),
        }
    };
    let demoted = eventually(FAILOVER_DEADLINE, "the old primary is demoted", probe).await;
    // The game goes on: every move is written to the new primary.
    let game = play_turn(&mut red, 4).await;
    wait_stored(new, "t", &grant.game_id, &game, DEADLINE).await;
    let written_after = demoted.elapsed();
    // Nothing stays on the demoted node: the breaker closes and stays closed while the
    // instance writes its heartbeat (every third of the lease) and a game plays on.
    let probe = || async {
        let db = database_breaker(&api).await;
        if db["state"] == "closed" {
            Ok(db)
        } else {
            Err(db.to_string())
        }
    };
    let closed = eventually(DEADLINE, "the database breaker is closed", probe).await;
    let failures = |b: &Value| b["counters"]["failure"].as_u64().expect("failures");
    let before = failures(&closed);
    let since = Instant::now();
    let beat = format!("t:instance:{INSTANCE}");
    let probe = || async {
        // Two heartbeat rounds (a lease is 3 s, a round every second) on the new primary.
        let ttl: Option<i64> = redis_cmd(new, &["PTTL", &beat]).await;
        match ttl {
            Some(ms) if ms > 0 && since.elapsed() > Duration::from_millis(2100) => Ok(()),
            other => Err(format!("heartbeat PTTL {other:?} after {:?}", since.elapsed())),
        }
    };
    eventually(DEADLINE, "the heartbeat is written to the new primary for two rounds", probe).await;
    let game = play_turn(&mut red, 5).await;
    wait_stored(new, "t", &grant.game_id, &game, DEADLINE).await;
    let after = database_breaker(&api).await;
    eprintln!(
        "SENTINEL FAILOVER: promoted {:?} after it was asked; the instance followed (the relay listened on the new \
         primary) {followed_after:?} after the promotion, a move made then was in the new primary \
         {written_on_new:?} after it (the old one's ROLE then: {old_role:?}); the old primary demoted {:?} \
         after the promotion; moves written to the new primary {written_after:?} after the demotion; database \
         breaker {} failures at closing, {} two heartbeat rounds and a move later",
        promoted - asked,
        demoted - promoted,
        before,
        failures(&after)
    );
    assert!(followed_after < DURABLE_AFTER_PROMOTION, "followed the new primary only {followed_after:?} after");
    assert_eq!(after["state"], "closed", "{after}");
    assert_eq!(failures(&after), before, "no call failed on the demoted node once the breaker closed: {after}");
    red.close().await;
}

/// How long after Redis answers again the relay must be subscribed again: its subscriber
/// tries to connect at most 0.1 s apart while Redis is away, and subscribes at once.
const RESUBSCRIBED_DEADLINE: Duration = Duration::from_millis(300);

/// The relay's subscriber notices a drop at once (the client's `Disconnection` push) and
/// connects again while Redis is away, so it is subscribed again within about 0.1 s of
/// Redis answering (with its keep-alive ping once a second it took up to a second more).
/// One Redis, no Sentinel: the subscriber is the same behind either.
#[actix_rt::test]
async fn the_relay_subscribes_again_as_soon_as_redis_answers() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let mut config = redis_config(&redis, "t", "admin-token");
    config.cluster.instance_id = INSTANCE.to_owned();
    let _api = TestServer::start(config).await;
    let inbox = format!("t:inbox:{INSTANCE}");
    let listening = || async {
        match subscribers(port, &inbox).await {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, "the relay listens", listening).await;
    let mut gaps = Vec::new();
    for outage_ms in [300u64, 700, 1100, 1500, 1900] {
        redis.stop();
        let stopped = Instant::now();
        // The outage lasts a while (part of the scenario, not a wait for something): the
        // subscriber's attempts meanwhile are refused.
        eventually(DEADLINE, "Redis stays down a while", || async {
            let down = stopped.elapsed();
            (down >= Duration::from_millis(outage_ms)).then_some(()).ok_or(format!("down for {down:?}"))
        })
        .await;
        redis.restart();
        let back = Instant::now();
        let probe = || async {
            match subscribers(port, &inbox).await {
                Some(1) => Ok(back.elapsed()),
                other => Err(format!("{other:?}")),
            }
        };
        gaps.push(eventually(DEADLINE, "the relay listens again", probe).await);
    }
    eprintln!("the relay subscribed again after Redis answered (outages of 0.3 to 1.9 s): {gaps:?}");
    for gap in &gaps {
        assert!(*gap < RESUBSCRIBED_DEADLINE, "subscribed again only {gap:?} after Redis answered: {gaps:?}");
    }
}
