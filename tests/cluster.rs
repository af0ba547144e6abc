//! Games that outlive their process (docs/DESIGN.md D2, D11): real `rampart` processes on one
//! private `redis-server` each test. A game comes back after its server's SIGTERM and after
//! its kill -9; a player of a killed instance reconnects through another and finds the same
//! board; a socket on an instance that does not own the game plays through the relay, and
//! REST works from every instance; racing takeovers leave one owner; a paused owner is
//! fenced and never overwrites the new owner's board.

mod common;
use common::process;

use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::*;
use process::ServerProcess;
use serde_json::{json, Value};

const ADMIN: &str = "cluster-admin";
const LEASE_MS: u64 = 1000;

fn env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("RAMPART__STORAGE__BACKEND", "redis".to_owned()),
        ("RAMPART_REDIS_URL", redis.url()),
        ("RAMPART_SESSION_KEY", "test-session-key".to_owned()),
        ("RAMPART_ADMIN_TOKEN", ADMIN.to_owned()),
        ("RAMPART__CLUSTER__LEASE_MS", LEASE_MS.to_string()),
        ("RAMPART__SERVER__WORKERS", "1".to_owned()),
        ("RAMPART__SERVER__GAME_ARBITERS", "1".to_owned()),
        ("RAMPART__SUPERVISION__DEFAULT__STRATEGY", "immediate".to_owned()),
        ("RAMPART__SERVER__HEARTBEAT_INTERVAL_MS", "60000".to_owned()),
        ("RAMPART__SERVER__CLIENT_TIMEOUT_MS", "120000".to_owned()),
    ]
}

fn instance(redis: &RedisServer) -> ServerProcess {
    let vars = env(redis);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&refs)
}

/// [`instance`] with the id `id` (`cluster.instance_id`).
fn named_instance(redis: &RedisServer, id: &str) -> ServerProcess {
    let mut vars = env(redis);
    vars.push(("RAMPART__CLUSTER__INSTANCE_ID", id.to_owned()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&refs)
}

/// [`named_instance`] whose leases last `lease_ms`.
fn named_instance_leasing(redis: &RedisServer, id: &str, lease_ms: u64) -> ServerProcess {
    let mut vars = env(redis);
    vars.retain(|(k, _)| *k != "RAMPART__CLUSTER__LEASE_MS");
    vars.push(("RAMPART__CLUSTER__LEASE_MS", lease_ms.to_string()));
    vars.push(("RAMPART__CLUSTER__INSTANCE_ID", id.to_owned()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&refs)
}

/// A human game on `api`'s instance with both seats taken: (red, yellow) grants.
async fn human_game(api: &TestServer) -> (Grant, Grant) {
    let red = api.create("human", "ada").await;
    let (status, body) = api.join_rest(&red.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    (red, Grant::from(&body))
}

/// A human game created on `a`, its second seat taken through `b` (a relayed REST join),
/// both players joined: red on `a`, the owner; yellow on `b`, relayed.
async fn relayed_game(a: &TestServer, b: &TestServer) -> (Grant, Grant, Player, Player) {
    let red_grant = a.create("human", "ada").await;
    let (status, body) = b.join_rest(&red_grant.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    let yellow_grant = Grant::from(&body);
    let mut red = a.player(&red_grant).await;
    let yellow = b.player(&yellow_grant).await;
    red.recv_state(|g| g["players"]["yellow"]["connected"] == true).await;
    (red_grant, yellow_grant, red, yellow)
}

/// What must survive: the board, the move count, whose turn, the players, the restarts.
fn essence(game: &Value) -> Value {
    json!({
        "columns": game["columns"],
        "moves": game["moves"],
        "turn": game["turn"],
        "status": game["status"],
        "red": game["players"]["red"]["name"],
        "yellow": game["players"]["yellow"]["name"],
        "restarts": game["restarts"],
    })
}

/// Waits until Redis holds the game's snapshot at `version` or later (it is written behind
/// the game).
async fn wait_snapshot(redis: &RedisServer, game_id: &str, version: u64) {
    let probe = || async move {
        match redis_snapshot(redis, game_id).await {
            Some(s) if s["version"].as_u64() >= Some(version) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(DEADLINE, &format!("Redis holds version {version} of {game_id}"), probe).await;
}

/// Waits until Redis holds a snapshot of the game with `moves` discs on the board.
async fn wait_moves_written(redis: &RedisServer, game_id: &str, moves: usize) {
    let probe = || async move {
        let snapshot = redis_snapshot(redis, game_id).await;
        let discs = snapshot
            .as_ref()
            .and_then(|s| s["board"]["columns"].as_array())
            .map(|columns| columns.iter().map(|c| c.as_array().map_or(0, Vec::len)).sum::<usize>());
        if discs == Some(moves) {
            Ok(())
        } else {
            Err(format!("{discs:?} discs in {snapshot:?}"))
        }
    };
    eventually(DEADLINE, &format!("Redis holds {moves} moves of {game_id}"), probe).await;
}

async fn redis_snapshot(redis: &RedisServer, game_id: &str) -> Option<Value> {
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connection");
    let data: Option<String> = redis::cmd("HGET")
        .arg(format!("rampart:g:{{{game_id}}}:snap"))
        .arg("data")
        .query_async(&mut con)
        .await
        .expect("HGET");
    data.map(|d| serde_json::from_str(&d).expect("snapshot JSON"))
}

async fn lease_owner(redis: &RedisServer, game_id: &str) -> Option<String> {
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connection");
    redis::cmd("GET").arg(format!("rampart:g:{{{game_id}}}:lease")).query_async(&mut con).await.expect("GET")
}

#[actix_rt::test]
async fn a_game_comes_back_after_its_server_is_terminated_or_killed() {
    let redis = RedisServer::start();
    let mut server = instance(&redis);
    let api = TestServer::at(server.addr);
    let (red_grant, yellow_grant) = human_game(&api).await;
    let mut red = api.player(&red_grant).await;
    let mut yellow = api.player(&yellow_grant).await;
    red.move_to(0).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
    yellow.move_to(1).await;
    red.recv_state(|g| g["moves"] == 2).await;
    red.move_to(0).await;
    yellow.recv_state(|g| g["moves"] == 3).await;
    // A crash before the restart: the restart count must survive too.
    assert_eq!(api.fault(&red_grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    let before = red.recv_state(|g| g["restarts"] == 1).await;

    // SIGTERM: players are told (1012), every snapshot is written, the lease released.
    let code = actix_rt::task::spawn_blocking(move || {
        let code = server.terminate();
        (server, code)
    })
    .await
    .expect("terminate");
    let (mut server, code) = code;
    assert_eq!(code, Some(0), "a designed shutdown exits 0");
    assert_eq!(red.recv_close().await, Some(1012));
    assert_eq!(yellow.recv_close().await, Some(1012));
    server.restart();
    let mut red = api.player(&red_grant).await;
    assert_eq!(essence(&red.last_state), essence(&before), "the same game after a restart");
    assert!(red.seen.iter().any(|f| f["type"] == "game_restarted" && f["reason"] == "taken_over"), "{:?}", red.seen);
    let mut yellow = api.player(&yellow_grant).await;
    yellow.move_to(1).await;
    let after = red.recv_state(|g| g["moves"] == 4).await;
    // The snapshot is written behind the game: kill only once Redis holds the fourth move.
    wait_moves_written(&redis, &red_grant.game_id, 4).await;

    // kill -9: nothing is said; the last snapshot written is the one that comes back.
    server.kill();
    server.restart();
    let started = Instant::now();
    let red = api.player(&red_grant).await;
    assert_eq!(essence(&red.last_state), essence(&after), "the same game after kill -9");
    assert!(started.elapsed() < Duration::from_millis(LEASE_MS + 1000), "resumed after {:?}", started.elapsed());
}

/// A join answered GAME_RESTARTING for longer than the join timeout (the game's instance is
/// dead and Redis is down, so no one can look the game up or take it over) is closed with
/// 1013 (try again later), never 4401 (which tells the client to give its seat up); the
/// player who reconnects once Redis is back gets the same board.
#[actix_rt::test]
async fn a_join_still_restarting_at_the_join_timeout_is_told_to_reconnect_not_to_give_up() {
    let mut redis = RedisServer::start_persistent();
    let mut a = instance(&redis);
    let mut vars = env(&redis);
    vars.push(("RAMPART__SERVER__JOIN_TIMEOUT_MS", "1000".to_owned()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let b = ServerProcess::start(&refs);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (red_grant, yellow_grant) = human_game(&api_a).await;
    let mut red = api_a.player(&red_grant).await;
    let mut yellow = api_a.player(&yellow_grant).await;
    red.move_to(3).await;
    let before = yellow.recv_state(|g| g["moves"] == 1).await;
    wait_moves_written(&redis, &red_grant.game_id, 1).await;

    a.kill();
    redis.stop();
    let mut red = api_b.socket(&red_grant.game_id).await;
    red.send(json!({"type":"join","token": red_grant.token})).await;
    let error = red.recv_error().await;
    assert_eq!(error["code"], "GAME_RESTARTING", "{error}");
    assert!(error["details"]["retry_after_ms"].as_u64().is_some(), "{error}");
    // The client waits for Redis (it does not join again): the join timeout passes.
    assert_eq!(red.recv_close().await, Some(1013), "reconnect and join again, not 4401");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let red = loop {
        let mut p = api_b.socket(&red_grant.game_id).await;
        p.send(json!({"type":"join","token": red_grant.token})).await;
        match p.next().await {
            Received::Json(v) if v["type"] == "state" => break p,
            other => {
                assert!(Instant::now() < deadline, "no state within 15 s of Redis's return: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(essence(&red.last_state), essence(&before), "the same board after the outage");
}

#[actix_rt::test]
async fn a_player_of_a_killed_instance_finds_the_same_board_through_another() {
    let redis = RedisServer::start();
    let mut a = instance(&redis);
    let b = instance(&redis);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (red_grant, yellow_grant) = human_game(&api_a).await;
    let mut red = api_a.player(&red_grant).await;
    let mut yellow = api_a.player(&yellow_grant).await;
    red.move_to(3).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
    yellow.move_to(3).await;
    let before = red.recv_state(|g| g["moves"] == 2).await;
    // Let the snapshot writer catch up (it writes behind the game).
    // Versions: 1 at creation, 2 with the second seat, then one per move.
    wait_snapshot(&redis, &red_grant.game_id, 4).await;

    a.kill();
    let killed = Instant::now();
    let mut red = api_b.player(&red_grant).await;
    let took = killed.elapsed();
    assert_eq!(essence(&red.last_state), essence(&before));
    assert!(took < Duration::from_millis(LEASE_MS + 1000), "the player saw the board after {took:?}");
    let mut yellow = api_b.player(&yellow_grant).await;
    red.move_to(2).await;
    yellow.recv_state(|g| g["moves"] == 3).await;
    assert_eq!(lease_owner(&redis, &red_grant.game_id).await.map(|o| o.contains(' ')), Some(true));
    eprintln!("takeover: kill -9 to the player's state through another instance in {took:?} (lease {LEASE_MS} ms)");
}

/// The seats of a killed instance's games come back through one other instance at the
/// same moment: each game is taken over once, with one epoch, and the move played on it
/// survives the next takeover. (Lookups of one game racing used to take it twice: the
/// second saw the first one's fresh lease as stale, released it and claimed a newer
/// epoch, fencing the first owner out of a move it had already shown both players.)
#[actix_rt::test]
async fn seats_rejoining_at_once_cause_one_takeover_per_game_and_keep_every_move() {
    const GAMES: usize = 4;
    let redis = RedisServer::start();
    let mut a = instance(&redis);
    let mut b = instance(&redis);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let mut grants = Vec::new();
    for _ in 0..GAMES {
        let (red_grant, yellow_grant) = human_game(&api_a).await;
        let mut red = api_a.player(&red_grant).await;
        red.move_to(3).await;
        red.recv_state(|g| g["moves"] == 1).await;
        wait_snapshot(&redis, &red_grant.game_id, 3).await;
        grants.push((red_grant, yellow_grant));
    }

    // Every player comes back through b while a's leases have yet to lapse: each game's
    // yellow 50 ms after its red, so their lookups poll for the lapse out of step (the
    // scenario, not a synchronisation: the second lookup then finds the first's new lease).
    a.kill();
    let joins = grants.iter().map(|(red, yellow)| async {
        let late_yellow = async {
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            api_b.player(yellow).await
        };
        let (red_player, yellow_player) = futures_util::join!(api_b.player(red), late_yellow);
        (red.clone(), red_player, yellow_player)
    });
    let mut games = futures_util::future::join_all(joins).await;
    for (grant, red, yellow) in &mut games {
        yellow.move_to(4).await;
        red.recv_state(|g| g["moves"] == 2).await;
        let id = grant.game_id.clone();
        let probe = || async {
            match redis_snapshot(&redis, &id).await {
                Some(s) if s["board"]["columns"][4].as_array().is_some_and(|c| !c.is_empty()) => Ok(s),
                other => Err(format!("{other:?}")),
            }
        };
        let stored = eventually(DEADLINE, "the move played after the takeover is stored", probe).await;
        let lease = lease_owner(&redis, &id).await.expect("a lease");
        let epoch = lease.rsplit(' ').next().and_then(|e| e.parse::<u64>().ok());
        assert_eq!(epoch, stored["epoch"].as_u64(), "one takeover, one epoch: {lease} vs {stored}");
    }
    let grants: Vec<Grant> = games.into_iter().map(|(grant, _, _)| grant).collect();

    b.kill();
    a.restart();
    for grant in &grants {
        let red = api_a.player(grant).await;
        assert_eq!(red.last_state["moves"], 2, "the move played on the first takeover survived the second");
    }
}

#[actix_rt::test]
async fn a_socket_on_another_instance_plays_through_the_relay_and_rest_works_everywhere() {
    let redis = RedisServer::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (red_grant, _, mut red, mut yellow) = relayed_game(&api_a, &api_b).await;
    for round in 0..3u64 {
        red.move_to(0).await;
        yellow.recv_state(|g| g["moves"] == json!(2 * round + 1)).await;
        yellow.move_to(1).await;
        red.recv_state(|g| g["moves"] == json!(2 * round + 2)).await;
    }
    // A panic in either relay (under the supervision tree) restarts it and keeps the
    // relayed seat: play goes on through it.
    for (api, moves) in [(&api_b, 7u64), (&api_a, 8)] {
        let (code, body, _) =
            api.post_raw("/api/v1/admin/actors/relay/fault", r#"{"kind":"panic"}"#, Some(ADMIN)).await;
        assert_eq!(code, 202, "{body}");
        api.wait_metric("rampart_system_actor_restarts_total{actor=\"relay\"}", 1.0).await;
        if moves % 2 == 1 {
            red.move_to(2).await;
            yellow.recv_state(|g| g["moves"] == json!(moves)).await;
        } else {
            yellow.move_to(2).await;
            red.recv_state(|g| g["moves"] == json!(moves)).await;
        }
    }
    yellow.send(json!({"type":"chat","text":"relayed hello"})).await;
    red.recv_until("the relayed chat", |f| f["type"] == "chat" && f["text"] == "relayed hello").await;
    // A relayed command's error comes back too.
    yellow.move_to(1).await;
    assert_eq!(yellow.recv_error().await["code"], "NOT_YOUR_TURN");
    // REST from the instance that does not own the game: GET (the shared lobby), the admin
    // fault (relayed), the lobby list.
    let summary = api_b.wait_summary(&red_grant.game_id, |s| s["moves"] == 8).await;
    assert_eq!(summary["players"]["yellow"]["name"], "bob");
    assert_eq!(api_b.fault(&red_grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    red.recv_type("game_restarted").await;
    yellow.recv_type("game_restarted").await;
    let (_, lobby) = api_b.get("/api/v1/games").await;
    assert!(lobby["games"].as_array().is_some_and(|g| g.iter().any(|g| g["game_id"] == red_grant.game_id.as_str())));
    // The lobby socket of b shows a game created on a, fed by the event stream.
    let mut lobby = api_b.lobby().await;
    let other = api_a.create("ai", "cy").await;
    lobby
        .recv_until("the new game in b's lobby", |f| {
            f["type"] == "lobby"
                && f["games"].as_array().is_some_and(|g| g.iter().any(|g| g["game_id"] == other.game_id.as_str()))
        })
        .await;
    // The relayed seat leaves: its owner sees it gone.
    drop(yellow);
    red.recv_state(|g| g["players"]["yellow"]["connected"] == false).await;
}

/// Pub/Sub keeps nothing for a subscriber that is away: a frame the owner publishes while
/// the relaying instance subscribes again (a failover, a dropped connection) is gone. After
/// every gap the relaying instance asks the owners of its relayed seats for their current
/// frames, and the seat stays attached.
#[actix_rt::test]
async fn a_relayed_seat_gets_its_game_again_after_its_instance_subscribes_again() {
    let redis = RedisServer::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (_, _, mut red, mut yellow) = relayed_game(&api_a, &api_b).await;
    red.move_to(0).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
    yellow.move_to(1).await;
    red.recv_state(|g| g["moves"] == 2).await;
    yellow.recv_state(|g| g["moves"] == 2).await;
    // The game is at rest: nothing more is on its way to yellow. Every subscription goes.
    let killed: Option<i64> =
        common::redis_server::command_async(redis.port(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    assert!(killed.is_some_and(|n| n >= 2), "the instances' subscriptions: {killed:?}");
    let again = yellow.recv_state(|g| g["moves"] == 2).await;
    assert_eq!(again["players"]["yellow"]["connected"], true);
    // Still attached and relayed both ways.
    red.move_to(0).await;
    yellow.recv_state(|g| g["moves"] == 3).await;
    yellow.move_to(1).await;
    red.recv_state(|g| g["moves"] == 4).await;
    assert!(!red.seen.iter().chain(&yellow.seen).any(|f| f["type"] == "error"), "{:?} {:?}", red.seen, yellow.seen);
}

/// A relayed seat whose owner no longer knows it (its close was what a gap lost) is closed
/// with 1012 at the next resync, and its player reconnects and plays on.
#[actix_rt::test]
async fn a_relayed_seat_its_owner_forgot_is_told_to_reconnect_after_a_gap() {
    let redis = RedisServer::start();
    let (a, b) = (named_instance(&redis, "owner-a"), named_instance(&redis, "relay-b"));
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (red_grant, yellow_grant, mut red, mut yellow) = relayed_game(&api_a, &api_b).await;
    // The owner forgets the relayed seat as if b had said it left (b's socket ids are small
    // numbers; a leave for a socket the owner does not relay is ignored).
    for conn in 0..64u64 {
        let leave = json!({"t":"leave","from":"relay-b","conn":conn,"game":red_grant.game_id,"seat":"yellow"});
        let _: Option<i64> = common::redis_server::command_async(
            redis.port(),
            &["PUBLISH", "rampart:inbox:owner-a", &leave.to_string()],
        )
        .await;
    }
    red.recv_state(|g| g["players"]["yellow"]["connected"] == false).await;
    let killed: Option<i64> =
        common::redis_server::command_async(redis.port(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    assert!(killed.is_some_and(|n| n >= 2), "the instances' subscriptions: {killed:?}");
    assert_eq!(yellow.recv_close().await, Some(1012), "{:?}", yellow.seen);
    let mut yellow = api_b.player(&yellow_grant).await;
    red.recv_state(|g| g["players"]["yellow"]["connected"] == true).await;
    red.move_to(3).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
}

/// Every message published to an inbox, as the test heard it (the JSON of each `Wire`).
async fn listen(redis: &RedisServer, channel: &str) -> std::sync::Arc<std::sync::Mutex<Vec<Value>>> {
    use futures_util::StreamExt as _;
    let client = redis::Client::open(redis.url()).expect("client");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
    pubsub.subscribe(channel).await.expect("subscribe");
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = heard.clone();
    actix_rt::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            if let Ok(v) = serde_json::from_str::<Value>(&msg.get_payload::<String>().unwrap_or_default()) {
                into.lock().expect("heard").push(v);
            }
        }
    });
    heard
}

/// The relayed frames (and their order) that carried a `state` with `moves` moves.
fn relayed_state(heard: &[Value], moves: u64) -> Option<Value> {
    heard
        .iter()
        .find(|w| {
            w["t"] == "frame"
                && serde_json::from_str::<Value>(w["text"].as_str().unwrap_or(""))
                    .is_ok_and(|f| f["game"]["moves"] == moves)
        })
        .cloned()
}

/// A relayed seat's frames reach its socket in the order its owner sent them, whatever
/// order Pub/Sub brings them in (a Redis Cluster switchover opens a second route, measured
/// in RELIABILITY.md section 18): a frame that comes after a later one is dropped, a frame
/// ahead of a missing one waits for it, and a gap that does not fill is given up after a
/// moment (the frames after it delivered, counted, the owner asked to resync the seat).
/// The frames out of order are the test's own, published with the owner's numbering.
#[actix_rt::test]
async fn a_relayed_seat_gets_its_frames_in_the_order_its_owner_sent_them() {
    let redis = RedisServer::start();
    let (a, b) = (named_instance(&redis, "owner-a"), named_instance(&redis, "relay-b"));
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let heard = listen(&redis, "rampart:inbox:relay-b").await;
    let (_, _, mut red, mut yellow) = relayed_game(&api_a, &api_b).await;
    red.move_to(0).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
    yellow.move_to(1).await;
    yellow.recv_state(|g| g["moves"] == 2).await;
    red.recv_state(|g| g["moves"] == 2).await;
    let after_two = yellow.seen.len();
    let (first, second) = eventually(DEADLINE, "the test heard both states relayed", || async {
        let heard = heard.lock().expect("heard");
        match (relayed_state(&heard, 1), relayed_state(&heard, 2)) {
            (Some(first), Some(second)) => Ok((first, second)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let order = &second["order"];
    assert_eq!(order["from"], "owner-a", "{second}");
    assert_eq!(first["order"]["stream"], order["stream"], "one stream: {first} {second}");
    assert!(first["order"]["seq"].as_u64() < order["seq"].as_u64(), "{first} {second}");
    // The last number the owner gave yellow's stream so far (the game is at rest).
    let last = heard
        .lock()
        .expect("heard")
        .iter()
        .filter(|w| w["t"] == "frame" && w["conn"] == second["conn"])
        .filter_map(|w| w["order"]["seq"].as_u64())
        .max()
        .expect("numbered");
    // Published in one pipeline on one connection: relay-b hears them in this order, at once.
    let client = redis::Client::open(redis.url()).expect("client");
    let con = client.get_multiplexed_async_connection().await.expect("connection");
    let publish = |wires: Vec<Value>| {
        let mut pipe = redis::pipe();
        for wire in &wires {
            pipe.cmd("PUBLISH").arg("rampart:inbox:relay-b").arg(wire.to_string());
        }
        let mut con = con.clone();
        async move {
            let sent: Vec<i64> = pipe.query_async(&mut con).await.expect("published");
            assert!(sent.iter().all(|n| *n >= 2), "relay-b and the test listen: {sent:?}");
        }
    };
    let chat = |text: &str, seq: u64| {
        let frame = json!({"type": "chat", "from": "red", "text": text, "at": "2026-12-07T00:00:00Z"});
        json!({"t": "frame", "conn": second["conn"], "text": frame.to_string(),
               "order": {"from": "owner-a", "stream": order["stream"], "seq": seq}})
    };
    // The first state again, as a second route would bring it late: dropped. Then two
    // frames published out of their order: the later one waits for the earlier.
    publish(vec![first.clone(), chat("second", last + 2), chat("first", last + 1)]).await;
    yellow.recv_until("the chat held for its turn", |f| f["type"] == "chat" && f["text"] == "second").await;
    let since: Vec<&Value> = yellow.seen[after_two..].iter().collect();
    let chats: Vec<&Value> = since.iter().filter(|f| f["type"] == "chat").map(|f| &f["text"]).collect();
    assert_eq!(chats, [&json!("first"), &json!("second")], "{since:?}");
    assert!(!since.iter().any(|f| f["type"] == "state"), "an older board came back: {since:?}");
    // A gap nothing fills is given up: the frame after it arrives, and the gap is counted.
    assert_eq!(api_b.metric("rampart_relay_gaps_total").await, 0.0);
    publish(vec![chat("after a gap", last + 6)]).await;
    yellow.recv_until("the frame after the gap", |f| f["type"] == "chat" && f["text"] == "after a gap").await;
    assert_eq!(api_b.metric("rampart_relay_gaps_total").await, 1.0);
}

/// A relayed request that gets no reply in time (here its owner is paused; in a switchover
/// the request or its reply is lost) is sent again until it is answered, and the owner acts
/// on it once: the chat sent once is shown once.
#[actix_rt::test]
async fn a_relayed_request_without_a_reply_is_sent_again_and_acted_on_once() {
    let redis = RedisServer::start();
    // Leases long enough that the owner, paused, keeps its game (nothing is taken over).
    let a = named_instance_leasing(&redis, "owner-a", 10_000);
    let b = named_instance_leasing(&redis, "relay-b", 10_000);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let heard = listen(&redis, "rampart:inbox:owner-a").await;
    let (_, _, mut red, mut yellow) = relayed_game(&api_a, &api_b).await;
    assert_eq!(api_b.metric("rampart_relay_resent_total").await, 0.0);
    let commands = |heard: &[Value]| -> Vec<Value> { heard.iter().filter(|w| w["t"] == "command").cloned().collect() };
    assert!(commands(&heard.lock().expect("heard")).is_empty());
    a.pause();
    yellow.send(json!({"type": "chat", "text": "once"})).await;
    let copies = eventually(Duration::from_secs(6), "relay-b sent the unanswered chat again", || async {
        let copies = commands(&heard.lock().expect("heard"));
        if copies.len() >= 2 {
            Ok(copies)
        } else {
            Err(format!("{copies:?}"))
        }
    })
    .await;
    a.resume();
    assert!(copies.iter().all(|c| c["req"] == copies[0]["req"] && c["req"] != 0), "one numbered request: {copies:?}");
    // The owner acts on it once: the next chat comes right after it, on both seats.
    red.recv_until("the chat", |f| f["type"] == "chat" && f["text"] == "once").await;
    yellow.send(json!({"type": "chat", "text": "after"})).await;
    for player in [&mut red, &mut yellow] {
        player.recv_until("the second chat", |f| f["type"] == "chat" && f["text"] == "after").await;
        let chats: Vec<&Value> = player.seen.iter().filter(|f| f["type"] == "chat").map(|f| &f["text"]).collect();
        assert_eq!(chats, [&json!("once"), &json!("after")], "{:?}", player.seen);
        assert!(!player.seen.iter().any(|f| f["type"] == "error"), "{:?}", player.seen);
    }
    assert!(api_b.metric("rampart_relay_resent_total").await >= 1.0);
}

/// A relayed join that is answered but whose seat's frames never come (lost in a
/// switchover's moment, with no later frame to show the gap) has the owner asked for them
/// again. The test plays the owner, `ghost`: it answers the join and sends no frame.
#[actix_rt::test]
async fn a_relayed_join_whose_frames_never_come_is_resynced() {
    let redis = RedisServer::start();
    let b = named_instance(&redis, "relay-b");
    let api_b = TestServer::at(b.addr);
    let game = "0123456789ab";
    let heard = listen(&redis, "rampart:inbox:ghost").await;
    let lease = format!("rampart:g:{{{game}}}:lease");
    for (key, value) in [(lease.as_str(), "ghost 1"), ("rampart:instance:ghost", "1")] {
        let done: Option<String> = peek::redis_cmd(redis.port(), &["SET", key, value, "PX", "60000"]).await;
        assert_eq!(done.as_deref(), Some("OK"));
    }
    let mut yellow = api_b.socket(game).await;
    yellow.send(json!({"type": "join", "token": "a-seat-token"})).await;
    let join = eventually(DEADLINE, "relay-b relayed the join to ghost", || async {
        heard.lock().expect("heard").iter().find(|w| w["t"] == "join").cloned().ok_or_else(|| "no join yet".to_owned())
    })
    .await;
    assert_eq!(api_b.metric("rampart_relay_gaps_total").await, 0.0);
    let reply = json!({"t": "reply", "req": join["req"], "reply": {"r": "joined", "result": {"Ok": "yellow"}, "kind": "connect4"}});
    let published: Option<i64> =
        peek::redis_cmd(redis.port(), &["PUBLISH", "rampart:inbox:relay-b", &reply.to_string()]).await;
    assert_eq!(published, Some(1), "relay-b listens");
    let resync = eventually(DEADLINE, "relay-b asked ghost for the seat's frames", || async {
        heard
            .lock()
            .expect("heard")
            .iter()
            .find(|w| w["t"] == "resync")
            .cloned()
            .ok_or_else(|| "no resync yet".to_owned())
    })
    .await;
    assert_eq!((&resync["conn"], &resync["from"]), (&join["conn"], &json!("relay-b")), "{resync}");
    assert_eq!(api_b.metric("rampart_relay_gaps_total").await, 1.0);
}

#[actix_rt::test]
async fn fifty_racing_takeovers_leave_one_owner_each_and_lose_no_move() {
    let redis = RedisServer::start();
    let mut a = instance(&redis);
    let b = instance(&redis);
    let c = instance(&redis);
    let (api_a, api_b, api_c) = (TestServer::at(a.addr), TestServer::at(b.addr), TestServer::at(c.addr));
    let mut games = Vec::new();
    for _ in 0..50 {
        games.push(human_game(&api_a).await);
    }
    // Every game's first snapshot must be in Redis before its owner dies.
    for (red, _) in &games {
        wait_snapshot(&redis, &red.game_id, 1).await;
    }
    a.kill();
    for (i, (red_grant, yellow_grant)) in games.iter().enumerate() {
        // Red through b, yellow through c, at the same moment: both resolve the game, both
        // try to take it over; one wins, the other relays to it.
        let (mut red, mut yellow) = futures_util::join!(api_b.player(red_grant), api_c.player(yellow_grant));
        assert_eq!(essence(&red.last_state), essence(&yellow.last_state), "race {i}");
        red.move_to(4).await;
        yellow.recv_state(|g| g["moves"] == 1).await;
        yellow.move_to(4).await;
        red.recv_state(|g| g["moves"] == 2).await;
        let owner = lease_owner(&redis, &red_grant.game_id).await.expect("an owner");
        assert!(!owner.is_empty(), "race {i}");
    }
    let hosted = api_b.metric("rampart_games_hosted").await + api_c.metric("rampart_games_hosted").await;
    assert_eq!(hosted, 50.0, "each game is hosted by exactly one of the two instances");
}

#[actix_rt::test]
async fn a_paused_owner_is_fenced_and_never_overwrites_the_new_owners_board() {
    let redis = RedisServer::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (red_grant, yellow_grant) = human_game(&api_a).await;
    let mut red = api_a.player(&red_grant).await;
    red.move_to(0).await;
    red.recv_state(|g| g["moves"] == 1).await;
    wait_snapshot(&redis, &red_grant.game_id, 3).await;
    a.pause();
    // Yellow reconnects through b: once a's lease lapses, b takes the game over.
    let mut yellow = api_b.player(&yellow_grant).await;
    assert_eq!(yellow.last_state["moves"], 1);
    yellow.move_to(6).await;
    yellow.recv_state(|g| g["moves"] == 2).await;
    // Red's socket still points at the paused a: its move waits in a's buffers.
    red.move_to(5).await;
    a.resume();
    // a wakes, finds its lease passed: applies nothing, learns it lost the game, gives it up.
    let probe = || async {
        match api_a.metric("rampart_games_hosted").await {
            0.0 => Ok(()),
            hosted => Err(format!("{hosted} games hosted")),
        }
    };
    eventually(DEADLINE, "the paused owner gives the game up", probe).await;
    loop {
        match red.next().await {
            Received::Json(f) => {
                assert!(
                    !(f["type"] == "state" && f["game"]["columns"][5].as_array().is_some_and(|c| !c.is_empty())),
                    "the paused owner applied a move: {f}"
                );
            }
            Received::Closed(code) => {
                assert_eq!(code, Some(1012), "the paused owner closes its sockets so players reconnect");
                break;
            }
        }
    }
    // b's board is the one in Redis, and stays so.
    let snapshot = redis_snapshot(&redis, &red_grant.game_id).await.expect("snapshot");
    let columns = api_b.wait_summary(&red_grant.game_id, |s| s["moves"] == 2).await;
    assert_eq!(columns["moves"], 2);
    assert!(snapshot["epoch"].as_u64() >= Some(2), "written by the new owner: {snapshot}");
    // Red reconnects (to whichever instance) and plays on b's board.
    let mut red = api_a.player(&red_grant).await;
    assert_eq!(red.last_state["moves"], 2);
    assert!(red.last_state["columns"][6].as_array().is_some_and(|c| c.len() == 1));
    red.move_to(5).await;
    yellow.recv_state(|g| g["moves"] == 3).await;
}

/// The background tasks run under the supervision tree with Redis too: a panic in the
/// snapshot writer or the heartbeat restarts it, and the moves played around it still
/// reach Redis (the writer writes every game's latest snapshot again when it restarts).
#[actix_rt::test]
async fn the_snapshot_writer_and_the_heartbeat_restart_and_moves_still_reach_redis() {
    let redis = RedisServer::start();
    let server = instance(&redis);
    let api = TestServer::at(server.addr);
    let (red_grant, yellow_grant) = human_game(&api).await;
    let mut red = api.player(&red_grant).await;
    let mut yellow = api.player(&yellow_grant).await;
    for (moves, task) in [(1, "keeper"), (2, "heartbeat"), (3, "events")] {
        let path = format!("/api/v1/admin/actors/{task}/fault");
        let (code, body, _) = api.post_raw(&path, r#"{"kind":"panic"}"#, Some(ADMIN)).await;
        assert_eq!(code, 202, "{body}");
        let (mover, opponent) = if moves % 2 == 1 { (&mut red, &mut yellow) } else { (&mut yellow, &mut red) };
        mover.move_to(moves as i64).await;
        opponent.recv_state(|g| g["moves"] == json!(moves)).await;
        wait_moves_written(&redis, &red_grant.game_id, moves).await;
        api.wait_metric(&format!("rampart_system_actor_restarts_total{{actor=\"{task}\"}}"), 1.0).await;
    }
    let (_, health) = api.get("/health").await;
    let tasks: Vec<_> = health["checks"]["system_actors"]["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .filter(|a| ["keeper", "events", "heartbeat"].contains(&a["name"].as_str().unwrap_or_default()))
        .map(|a| (a["name"].clone(), a["status"].clone(), a["restarts"].clone()))
        .collect();
    assert_eq!(tasks.len(), 3, "{health}");
    assert!(tasks.iter().all(|(_, status, restarts)| status == "ok" && restarts == 1), "{tasks:?}");
    drop(server);
}

/// A real-time game outlives its instance too: its snapshot (every
/// `realtime.snapshot_every_ticks`) is in Redis under its lease, and when its instance is
/// killed, its seat reconnecting to another instance takes it over from that snapshot,
/// hears it was taken over, and plays on from that tick after a countdown.
#[actix_rt::test]
async fn a_light_cycle_game_of_a_killed_instance_resumes_from_its_snapshot_on_another() {
    let redis = RedisServer::start();
    let mut vars = env(&redis);
    // A big arena: red, who never steers here, heads up from the middle for 100 ticks.
    vars.extend([
        ("RAMPART__REALTIME__WIDTH", "200".to_owned()),
        ("RAMPART__REALTIME__HEIGHT", "200".to_owned()),
        ("RAMPART__REALTIME__SNAPSHOT_EVERY_TICKS", "10".to_owned()),
    ]);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = ServerProcess::start(&refs);
    let b = ServerProcess::start(&refs);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (status, body) =
        api_a.post("/api/v1/games", json!({"kind": "lightcycle", "opponent": "ai", "player_name": "ada"})).await;
    assert_eq!(status, 201, "{body}");
    let grant = Grant::from(&body);
    let mut red = api_a.socket(&grant.game_id).await;
    red.send(json!({"type": "join", "token": grant.token})).await;
    red.recv_type("arena").await;
    red.recv_until("tick 25", |f| f["type"] == "tick" && f["tick"].as_u64() >= Some(25)).await;
    // The snapshot is written behind the game, under a's lease; b's lobby knows the game.
    let probe = || async {
        match redis_snapshot(&redis, &grant.game_id).await {
            Some(s) if s["kind"] == "lightcycle" && s["board"]["tick"].as_u64() >= Some(20) => Ok(s),
            other => Err(format!("{other:?}")),
        }
    };
    let stored = eventually(DEADLINE, "Redis holds the light-cycle snapshot at tick 20", probe).await;
    let stored_tick = stored["board"]["tick"].as_u64().expect("tick");
    let probe = || async {
        let (_, body) = api_b.get(&format!("/api/v1/games/{}", grant.game_id)).await;
        if body["kind"] == "lightcycle" {
            Ok(())
        } else {
            Err(body.to_string())
        }
    };
    eventually(DEADLINE, "b's lobby lists the game", probe).await;

    a.kill();
    let killed = Instant::now();
    // The page reconnects on its own: refused while b still sees a alive (until a's
    // heartbeat lapses), then b takes the game over and the seat hears so first.
    let probe = || async {
        let mut red = api_b.try_socket(&grant.game_id).await?;
        red.send(json!({"type": "join", "token": grant.token})).await;
        let first =
            red.recv_until("taken over, or an error", |f| f["type"] == "game_restarted" || f["type"] == "error").await;
        match first["reason"].as_str() {
            Some("taken_over") => Ok(red),
            _ => Err(first.to_string()),
        }
    };
    let mut red = eventually(DEADLINE, "b takes the light-cycle game over", probe).await;
    let full = red.recv_type("arena").await;
    let resumed = full["game"]["tick"].as_u64().expect("tick");
    assert!(resumed >= stored_tick, "resumed at {resumed}, Redis had {stored_tick}");
    assert_eq!(full["status"], "playing", "{full}");
    red.recv_type("countdown").await;
    let next = red.recv_type("tick").await;
    assert_eq!(next["tick"].as_u64(), Some(resumed + 1), "{next}");
    eprintln!("real-time takeover: kill -9 to the resumed arena in {:?} (lease {LEASE_MS} ms)", killed.elapsed());
    // A crash on b restarts the game there, and b keeps renewing its lease afterwards (the
    // renewal timer goes with the crashed context and is set up again).
    red.send(json!({"type": "turn", "dir": "right"})).await;
    assert_eq!(api_b.fault(&grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    let notice = red.recv_type("game_restarted").await;
    assert_eq!(notice["reason"], "panic", "{notice}");
    let after = notice["resumed_at_tick"].as_u64().expect("tick");
    // Three and a half leases later, by the game's own clock.
    red.recv_until("70 ticks after the restart", |f| {
        f["type"] == "tick" && (f["tick"].as_u64() >= Some(after + 70) || f["status"] != "playing")
    })
    .await;
    assert!(lease_owner(&redis, &grant.game_id).await.is_some(), "b still holds the game's lease");
    drop(b);
}

/// One hosting layer (issue 22): a real-time game with its seats on two instances. The
/// second seat is taken and played through the instance that does not own the game — its
/// turns reach the owner's ticks through the relay, the owner's frames come back at tick
/// rate — and a read of the game from either instance answers the owner's current state,
/// at once (not the lobby's record, which lags), for a real-time and a turn-based game.
#[actix_rt::test]
async fn a_light_cycle_game_is_played_with_its_seats_on_two_instances() {
    let redis = RedisServer::start();
    let mut vars = env(&redis);
    // A big arena: nobody crashes into a wall before the end (red heads up from the middle).
    vars.extend([("RAMPART__REALTIME__WIDTH", "200".to_owned()), ("RAMPART__REALTIME__HEIGHT", "200".to_owned())]);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = ServerProcess::start(&refs);
    let b = ServerProcess::start(&refs);
    let (api_a, api_b) = (TestServer::at(a.addr), TestServer::at(b.addr));
    let (status, body) =
        api_a.post("/api/v1/games", json!({"kind": "lightcycle", "opponent": "human", "player_name": "ada"})).await;
    assert_eq!(status, 201, "{body}");
    let red_grant = Grant::from(&body);
    let (status, body) = api_b.join_rest(&red_grant.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    let yellow_grant = Grant::from(&body);
    assert!(lease_owner(&redis, &red_grant.game_id).await.is_some(), "a holds the game's lease");

    let mut red = api_a.socket(&red_grant.game_id).await;
    red.send(json!({"type": "join", "token": red_grant.token})).await;
    assert_eq!(red.recv_type("arena").await["you"], "red");
    // Yellow's socket is on b, which does not own the game: relayed, not refused.
    let mut yellow = api_b.socket(&red_grant.game_id).await;
    yellow.send(json!({"type": "join", "token": yellow_grant.token})).await;
    let arena = yellow.recv_type("arena").await;
    assert_eq!((arena["you"].as_str(), arena["kind"].as_str()), (Some("yellow"), Some("lightcycle")), "{arena}");
    yellow.recv_type("countdown").await;
    red.recv_type("countdown").await;
    // A relayed turn reaches the owner's next ticks: both seats see yellow's head turn.
    yellow.recv_until("tick 3", |f| f["type"] == "tick" && f["tick"].as_u64() >= Some(3)).await;
    yellow.send(json!({"type": "turn", "dir": "left"})).await;
    let heads_left = |f: &Value| f["type"] == "tick" && f["heads"][1]["dir"] == "left";
    let seen_by_yellow = yellow.recv_until("yellow's turn, on b", heads_left).await;
    let seen_by_red = red.recv_until("yellow's turn, on a", heads_left).await;
    assert!(seen_by_yellow["tick"].as_u64() >= Some(4), "{seen_by_yellow}");
    assert!(seen_by_red["tick"].as_u64() >= Some(4), "{seen_by_red}");
    // A read from b is the owner's own answer: the live tick, both seats connected.
    let (status, summary) = api_b.get(&format!("/api/v1/games/{}", red_grant.game_id)).await;
    assert_eq!(status, 200, "{summary}");
    let now = red.recv_type("tick").await["tick"].as_u64().expect("tick");
    assert!(summary["moves"].as_u64() >= Some(now.saturating_sub(10)), "b read {summary}; red is at tick {now}");
    assert_eq!(summary["players"]["yellow"]["connected"], true, "{summary}");
    assert_eq!(summary["players"]["red"]["connected"], true, "{summary}");
    // An admin fault through b reaches the game on a; both seats are told, and play goes on.
    assert_eq!(api_b.fault(&red_grant.game_id, ADMIN, json!({"kind":"panic"})).await, 202);
    assert_eq!(yellow.recv_type("game_restarted").await["reason"], "panic");
    assert_eq!(red.recv_type("game_restarted").await["reason"], "panic");
    yellow.recv_type("arena").await;
    // Yellow resigns through the relay: red wins, on both sockets.
    yellow.send(json!({"type": "resign"})).await;
    let over = |f: &Value| f["type"] == "tick" && f["status"] == "won";
    assert_eq!(red.recv_until("red wins", over).await["winner"], "red");
    assert_eq!(yellow.recv_until("red wins, on b", over).await["winner"], "red");

    // The same read of a turn-based game, right after a move: the owner's board, not a
    // lobby record that still says 0 moves and nobody connected.
    let (red_grant, yellow_grant) = human_game(&api_a).await;
    let mut red = api_a.player(&red_grant).await;
    let mut yellow = api_b.player(&yellow_grant).await;
    red.recv_state(|g| g["players"]["yellow"]["connected"] == true).await;
    red.move_to(3).await;
    yellow.recv_state(|g| g["moves"] == 1).await;
    yellow.move_to(4).await;
    red.recv_state(|g| g["moves"] == 2).await;
    for api in [&api_a, &api_b] {
        let (status, summary) = api.get(&format!("/api/v1/games/{}", red_grant.game_id)).await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["moves"], 2, "{summary}");
        assert_eq!(
            (summary["players"]["red"]["connected"].as_bool(), summary["players"]["yellow"]["connected"].as_bool()),
            (Some(true), Some(true)),
            "{summary}"
        );
    }
}
