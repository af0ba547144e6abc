//! A stalled store never costs a game on a single instance: the real binary on its own
//! private redis-server, which the test stalls with `DEBUG SLEEP` of 1, 3 and 6 s while
//! Connect Four and light-cycle games play and a new game is asked for. The server's
//! commands time out meanwhile, yet still run in Redis when it wakes (a claim, a renewal or
//! a snapshot write the server gave up on may have happened). The new game is refused
//! (no game starts without its lease, docs/DESIGN.md D17) and created once Redis answers.
//! Afterwards no game was given up (no socket closed with 1012, no `lost the game's lease`
//! or `snapshot write was refused` in the log), Redis holds every board as its players last
//! saw it, and after a restart of the instance every game comes back as it was. Beneath it, the store's own contract on both backends: a claim,
//! renewal or write repeated after one that ran late is answered as the first was, and a
//! write behind its own instance's newer epoch says so, while another instance's newer
//! epoch still fences.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::redis_server::RedisServer;
use common::stores::{both, me, snapshot};
use common::*;
use rampart::ids::{GameId, InstanceId};
use rampart::store::directory::{Claim, Renewal};
use rampart::store::snapshot::WriteOutcome;
use serde_json::{json, Value};

/// A lease expires this long after its last renewal: a stall of a second or more outlives
/// it in Redis.
const LEASE_MS: u64 = 1000;

/// Moves that fill a Connect Four board without four in a row for anyone (red first).
const MOVES: [i64; 36] =
    [2, 1, 3, 5, 0, 0, 6, 4, 0, 2, 4, 0, 4, 1, 0, 0, 4, 5, 1, 2, 1, 6, 5, 1, 6, 1, 2, 2, 5, 6, 2, 4, 4, 5, 6, 6];

/// How long the games keep playing once Redis answers again: three leases, so that the
/// renewals, claims and writes that ran late in Redis are all met by the next round.
const AFTER_STALL: Duration = Duration::from_millis(3 * LEASE_MS + 500);

fn env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("RAMPART__STORAGE__BACKEND", "redis".to_owned()),
        ("RAMPART_REDIS_URL", redis.url()),
        ("RAMPART_SESSION_KEY", "stall-session-key".to_owned()),
        ("RAMPART__CLUSTER__LEASE_MS", LEASE_MS.to_string()),
        ("RAMPART__REDIS__COMMAND_TIMEOUT_MS", "300".to_owned()),
        // The breaker opens on the stall's timeouts; it probes again after a second (0.1 s
        // growing to 0.5 s in production) so the test sees what comes after within seconds.
        ("RAMPART__CIRCUIT_BREAKERS__DATABASE__TIMEOUT", "1".to_owned()),
        ("RAMPART__CIRCUIT_BREAKERS__DATABASE__TIMEOUT_MAX", "1".to_owned()),
        ("RAMPART__CIRCUIT_BREAKERS__DATABASE__JITTER", "0".to_owned()),
        ("RAMPART__SERVER__WORKERS", "1".to_owned()),
        ("RAMPART__SERVER__GAME_ARBITERS", "1".to_owned()),
        ("RAMPART__SERVER__HEARTBEAT_INTERVAL_MS", "60000".to_owned()),
        ("RAMPART__SERVER__CLIENT_TIMEOUT_MS", "120000".to_owned()),
        ("RAMPART__AI__THINK_DELAY_MS", "0".to_owned()),
        // A light-cycle game that lasts: red heads up from the middle of a 200-cell arena
        // at 4 ticks a second (25 s to the wall), its snapshot kept every 4 ticks.
        ("RAMPART__REALTIME__WIDTH", "200".to_owned()),
        ("RAMPART__REALTIME__HEIGHT", "200".to_owned()),
        ("RAMPART__REALTIME__TICK_HZ", "4".to_owned()),
        ("RAMPART__REALTIME__SNAPSHOT_EVERY_TICKS", "4".to_owned()),
    ]
}

fn instance(redis: &RedisServer) -> ServerProcess {
    let vars = env(redis);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&refs)
}

/// Stalls Redis for `secs` seconds from a connection of its own (`DEBUG SLEEP` blocks it
/// too) on a thread; answers once the stall has begun (a PING on another connection gets
/// no answer). The thread ends when Redis answers again.
fn stall(redis: &RedisServer, secs: u64) -> std::thread::JoinHandle<()> {
    let port = redis.port();
    let sleeper = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
        stream.write_all(format!("DEBUG SLEEP {secs}\r\n").as_bytes()).expect("DEBUG SLEEP");
        stream.set_read_timeout(Some(Duration::from_secs(secs + 30))).expect("timeout");
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).expect("DEBUG SLEEP answers");
        assert_eq!(&reply, b"+OK\r\n", "DEBUG SLEEP is allowed");
    });
    // Stalled means a PING that is taken but not answered: a refused connection or a closed
    // one is Redis gone, not asleep.
    eventually_blocking(Duration::from_secs(5), "Redis stalls", || {
        let mut ping = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("cannot connect: {e}"))?;
        ping.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        ping.write_all(b"PING\r\n").map_err(|e| format!("cannot send PING: {e}"))?;
        let mut reply = [0u8; 7];
        match ping.read_exact(&mut reply) {
            Ok(()) => Err("Redis still answers".to_owned()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Ok(()),
            Err(e) => Err(format!("PING failed instead of waiting: {e}")),
        }
    });
    sleeper
}

/// What became of a move.
enum Played {
    Applied(Value),
    Refused(Value),
    Closed(Option<u16>),
}

/// Reads `p` until the state with `moves` moves, an error frame, or the close.
async fn answer(p: &mut Player, moves: usize) -> Played {
    loop {
        match p.next().await {
            Received::Json(f) if f["type"] == "state" && f["game"]["moves"] == json!(moves) => {
                return Played::Applied(f["game"].clone())
            }
            Received::Json(f) if f["type"] == "error" => return Played::Refused(f["error"].clone()),
            Received::Json(_) => {}
            Received::Closed(code) => return Played::Closed(code),
        }
    }
}

/// One Connect Four game between two human seats, played from [`MOVES`].
struct Table {
    red_grant: Grant,
    yellow_grant: Grant,
    red: Player,
    yellow: Player,
    /// The game as its players last saw it.
    last: Value,
    moves: usize,
    /// The close code, once the server closed the game's sockets.
    given_up: Option<Option<u16>>,
    /// Moves refused while the server confirmed its lease (tried again).
    refused: usize,
}

impl Table {
    async fn open(api: &TestServer) -> Table {
        let red_grant = api.create("human", "ada").await;
        let (status, body) = api.join_rest(&red_grant.game_id, "bob").await;
        assert_eq!(status, 200, "{body}");
        let yellow_grant = Grant::from(&body);
        let red = api.player(&red_grant).await;
        let yellow = api.player(&yellow_grant).await;
        let last = yellow.last_state.clone();
        Table { red_grant, yellow_grant, red, yellow, last, moves: 0, given_up: None, refused: 0 }
    }

    fn id(&self) -> &str {
        &self.red_grant.game_id
    }

    /// Plays the next move, unless the game was given up.
    async fn play(&mut self) {
        if self.given_up.is_some() || self.moves >= MOVES.len() {
            return;
        }
        let mover = if self.moves % 2 == 0 { &mut self.red } else { &mut self.yellow };
        mover.move_to(MOVES[self.moves]).await;
        match answer(mover, self.moves + 1).await {
            Played::Applied(game) => {
                self.moves += 1;
                self.last = game;
            }
            Played::Refused(error) if error["code"] == "GAME_RESTARTING" => self.refused += 1,
            Played::Refused(error) => panic!("move {} of {} refused: {error}", self.moves + 1, self.id()),
            Played::Closed(code) => self.given_up = Some(code),
        }
    }
}

/// A light-cycle game against the AI, its seat read by a task of its own.
struct Cycle {
    grant: Grant,
    /// The last tick its seat saw, and whether it was the game's last.
    last_tick: Rc<Cell<(u64, bool)>>,
    /// The close code, if the server closed the seat before the test shut it down.
    given_up: Rc<RefCell<Option<Option<u16>>>>,
    /// Set just before the test shuts the server down (its 1012 is expected then).
    shutting_down: Rc<Cell<bool>>,
}

impl Cycle {
    async fn open(api: &TestServer) -> Cycle {
        let (status, body) =
            api.post("/api/v1/games", json!({"kind": "lightcycle", "opponent": "ai", "player_name": "ada"})).await;
        assert_eq!(status, 201, "{body}");
        let grant = Grant::from(&body);
        let mut seat = api.socket(&grant.game_id).await;
        seat.send(json!({"type": "join", "token": grant.token})).await;
        seat.recv_type("arena").await;
        let last_tick: Rc<Cell<(u64, bool)>> = Rc::default();
        let given_up: Rc<RefCell<Option<Option<u16>>>> = Rc::default();
        let shutting_down: Rc<Cell<bool>> = Rc::default();
        let (tick, closed, down) = (Rc::clone(&last_tick), Rc::clone(&given_up), Rc::clone(&shutting_down));
        actix_rt::spawn(async move {
            loop {
                match seat.next().await {
                    Received::Json(f) if f["type"] == "tick" => {
                        let ended = f["status"] != "playing";
                        tick.set((f["tick"].as_u64().expect("tick"), ended));
                        if ended {
                            return;
                        }
                    }
                    Received::Json(_) => {}
                    Received::Closed(code) => {
                        if !down.get() {
                            *closed.borrow_mut() = Some(code);
                        }
                        return;
                    }
                }
            }
        });
        Cycle { grant, last_tick, given_up, shutting_down }
    }
}

/// A game's board in Redis: (discs, columns).
async fn stored_board(redis: &RedisServer, game_id: &str) -> Option<Value> {
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    let data: Option<String> =
        redis::cmd("HGET").arg(format!("rampart:g:{{{game_id}}}:snap")).arg("data").query_async(&mut con).await.ok()?;
    let snapshot: Value = serde_json::from_str(&data?).ok()?;
    Some(snapshot["board"].clone())
}

/// Waits until Redis holds the board a table's players last saw.
async fn wait_written(redis: &RedisServer, table: &Table) {
    let (id, columns) = (table.id(), &table.last["columns"]);
    let probe = || async move {
        match stored_board(redis, id).await {
            Some(board) if board["columns"] == *columns => Ok(()),
            other => Err(format!("{other:?}, the players saw {columns}")),
        }
    };
    eventually(DEADLINE, &format!("Redis holds the board of {id} as its players saw it"), probe).await;
}

/// A game's lease in Redis: its value and the milliseconds it has left.
async fn lease(redis: &RedisServer, game_id: &str) -> (Option<String>, i64) {
    let client = redis::Client::open(redis.url()).expect("client");
    let Ok(mut con) = client.get_multiplexed_async_connection().await else { return (None, -2) };
    let key = format!("rampart:g:{{{game_id}}}:lease");
    let value = redis::cmd("GET").arg(&key).query_async(&mut con).await.ok().flatten();
    let ttl = redis::cmd("PTTL").arg(&key).query_async(&mut con).await.unwrap_or(-2);
    (value, ttl)
}

/// Waits until the server has renewed a game's lease at least once (its time-to-live went
/// up): the stall then meets renewals as in production, not only first claims.
async fn wait_renewed(redis: &RedisServer, game_id: &str) {
    // A lease to start from: without one, any lease that appears would pass for a renewal.
    let (Some(_), before) = lease(redis, game_id).await else { panic!("{game_id} holds no lease in Redis") };
    // Renewed: its time-to-live went up again after it was seen lower (reading the full
    // lease again right after a renewal would need the read to land within a millisecond).
    let lowest = Cell::new(before);
    let lowest = &lowest;
    let probe = || async move {
        match lease(redis, game_id).await {
            (Some(_), ttl) if ttl > lowest.get() + 20 => Ok(()),
            other => {
                lowest.set(lowest.get().min(other.1.max(0)));
                Err(format!("{other:?}, {before} ms left at first, {} ms the lowest seen", lowest.get()))
            }
        }
    };
    eventually(DEADLINE, &format!("the lease of {game_id} is renewed"), probe).await;
}

/// Joins a game again (after a restart): its state, or what came instead.
async fn rejoin(api: &TestServer, grant: &Grant) -> Result<Value, String> {
    let mut p = api.try_socket(&grant.game_id).await?;
    p.send(json!({"type": "join", "token": grant.token})).await;
    loop {
        match p.next().await {
            Received::Json(f) if f["type"] == "state" => return Ok(f["game"].clone()),
            Received::Json(f) if f["type"] == "error" => return Err(f["error"].to_string()),
            Received::Json(_) => {}
            Received::Closed(code) => return Err(format!("closed with {code:?}")),
        }
    }
}

/// Lines of the server's log that contain `text`.
fn log_lines(server: &ServerProcess, text: &str) -> usize {
    std::fs::read_to_string(&server.log).unwrap_or_default().lines().filter(|l| l.contains(text)).count()
}

/// The whole scenario with a stall of `secs` seconds.
async fn games_survive_a_stall_of(secs: u64) {
    let redis = RedisServer::start_debuggable();
    let mut server = instance(&redis);
    let api = TestServer::at(server.addr);
    let mut tables = Vec::new();
    for _ in 0..3 {
        tables.push(Table::open(&api).await);
    }
    let mut cycles = vec![Cycle::open(&api).await];
    for table in &mut tables {
        for _ in 0..4 {
            table.play().await;
        }
        assert_eq!(table.moves, 4, "{} plays before the stall", table.id());
        wait_written(&redis, table).await;
        wait_renewed(&redis, table.id()).await;
    }
    wait_renewed(&redis, &cycles[0].grant.game_id).await;

    let sleeper = stall(&redis, secs);
    // While Redis sleeps no game starts without its lease (docs/DESIGN.md D17): a creation
    // is refused, and the player retries. The games go on until their confirmed time runs
    // out, then pause (a move is refused and tried again).
    let (status, body) =
        api.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": "eve"})).await;
    let refused_in_stall = !sleeper.is_finished()
        && status == 503
        && body["error"]["details"]["reason"] == "store_unavailable"
        && body["error"]["details"].get("ticket").is_none();
    for table in &mut tables {
        table.play().await;
        table.play().await;
    }
    eventually(Duration::from_secs(secs + 30), "Redis answers again", || async {
        if sleeper.is_finished() {
            Ok(())
        } else {
            Err("still asleep".to_owned())
        }
    })
    .await;
    // New games start once Redis answers (a creation retried, as `Retry-After` says), and play.
    let api_ref = &api;
    eventually(DEADLINE, "a game can be created again", || async move {
        let (status, body) =
            api_ref.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": "eve"})).await;
        (status == 201).then_some(()).ok_or(body.to_string())
    })
    .await;
    let (mut born, cycle) = futures_util::future::join(Table::open(&api), Cycle::open(&api)).await;
    cycles.push(cycle);
    born.play().await;
    born.play().await;
    tables.push(born);
    // Play on while the late commands meet the next renewals and writes.
    let woke = Instant::now();
    while woke.elapsed() < AFTER_STALL {
        for table in &mut tables {
            table.play().await;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }

    // The figures, before anything is asserted.
    let lease_lost = log_lines(&server, "lease to another instance");
    let refused_writes = log_lines(&server, "snapshot write was refused");
    let mut given_up: Vec<String> =
        tables.iter().filter(|t| t.given_up.is_some()).map(|t| format!("{} ({:?})", t.id(), t.given_up)).collect();
    for cycle in &cycles {
        if let Some(code) = *cycle.given_up.borrow() {
            given_up.push(format!("light cycle {} ({code:?})", cycle.grant.game_id));
        }
    }
    // Every board the players saw reaches Redis, unless its game was given up.
    for table in tables.iter().filter(|t| t.given_up.is_none()) {
        wait_written(&redis, table).await;
    }

    let counted_given_up = api.metric("rampart_games_given_up_total").await;
    let adopted = api.metric("rampart_lease_epochs_adopted_total").await;

    // A restart of the instance brings every game back as its players last saw it.
    for cycle in &cycles {
        cycle.shutting_down.set(true);
    }
    assert_eq!(server.terminate(), Some(0), "a clean shutdown");
    server.restart();
    let api = TestServer::at(server.addr);
    let mut moves_lost = 0;
    let mut problems = Vec::new();
    for table in &tables {
        let seen = table.last["moves"].as_u64().expect("moves");
        match rejoin(&api, &table.red_grant).await {
            Ok(game) if game["columns"] == table.last["columns"] => {}
            Ok(game) => {
                moves_lost += seen.saturating_sub(game["moves"].as_u64().expect("moves"));
                problems.push(format!("{} came back at {} moves, its players saw {seen}", table.id(), game["moves"]));
            }
            Err(why) => {
                moves_lost += seen;
                problems.push(format!("{} did not come back: {why}", table.id()));
            }
        }
        let _ = &table.yellow_grant;
    }
    for cycle in &cycles {
        let (seen, ended) = cycle.last_tick.get();
        // The first socket takes the game over after the restart and may be asked to
        // reconnect (GAME_RESTARTING, reason realtime), as the page does.
        let (api, grant) = (&api, &cycle.grant);
        let probe = || async move {
            let mut seat = api.try_socket(&grant.game_id).await?;
            seat.send(json!({"type": "join", "token": grant.token})).await;
            let first =
                seat.recv_until("the arena or an error", |f| f["type"] == "arena" || f["type"] == "error").await;
            match first["error"]["code"].as_str() {
                Some("GAME_RESTARTING") => Err(first.to_string()),
                _ => Ok(first),
            }
        };
        let first = eventually(DEADLINE, "the light-cycle seat joins again", probe).await;
        match first["game"]["tick"].as_u64() {
            Some(resumed) if resumed >= seen || ended => {}
            Some(resumed) => problems
                .push(format!("light cycle {} came back at tick {resumed}, its seat saw {seen}", cycle.grant.game_id)),
            None => problems.push(format!("light cycle {} did not come back: {first}", cycle.grant.game_id)),
        }
    }

    let refused: usize = tables.iter().map(|t| t.refused).sum();
    eprintln!(
        "DEBUG SLEEP {secs}: games given up {} (counted {counted_given_up}), moves lost {moves_lost}, log lines \
         `lost the game's lease` {lease_lost}, `snapshot write was refused` {refused_writes}, moves refused while \
         the lease was confirmed {refused}, own newer epochs adopted {adopted}, creation refused during the \
         stall: {refused_in_stall}",
        given_up.len()
    );
    assert!(refused_in_stall, "a game created while Redis slept is refused, not started without its lease");
    assert!(given_up.is_empty(), "games given up after a {secs} s stall: {given_up:?}");
    assert_eq!(counted_given_up, 0.0, "rampart_games_given_up_total");
    assert!(problems.is_empty(), "after a {secs} s stall and a restart: {problems:?}");
    assert_eq!((lease_lost, refused_writes), (0, 0), "no lease lost, no write refused; see {}", server.log.display());
}

#[actix_rt::test]
async fn a_one_second_stall_costs_no_game() {
    games_survive_a_stall_of(1).await;
}

#[actix_rt::test]
async fn a_three_second_stall_costs_no_game() {
    games_survive_a_stall_of(3).await;
}

#[actix_rt::test]
async fn a_six_second_stall_costs_no_game() {
    games_survive_a_stall_of(6).await;
}

const LEASE: Duration = Duration::from_millis(300);

/// Lets a lease lapse: the store's clock, not a wait for something to happen.
async fn lapse() {
    actix_rt::time::sleep(LEASE + Duration::from_millis(100)).await;
}

/// Whether a write was fenced by `me`'s own newer epoch `current`.
fn behind_own(outcome: &WriteOutcome, me: &InstanceId, epoch: u64, current: u64) -> bool {
    matches!(outcome, WriteOutcome::Fenced { epoch: e, tenure: Some(t) } if *e == current && t.covers(me, epoch))
}

/// Each step stands for a command the server stopped waiting for that ran in the store
/// later, then the server's next call, which must understand what the first one did.
#[actix_rt::test]
async fn repeated_claims_renewals_and_writes_are_answered_as_the_first_and_only_others_fence() {
    both(|stores| async move {
        let (dir, a, b) = (stores.directory.clone(), me("a"), me("b"));
        let write = |v, e, id: GameId| {
            let stores = stores.clone();
            async move { stores.snapshots.write(&snapshot(&id, v, e), None).await.expect("write") }
        };
        let id = GameId::random();
        // A new game whose claim timed out: the game starts under epoch 0, the claim ran.
        let Claim::Won(first) = dir.claim(&id, &a, LEASE).await.expect("claim") else { panic!("a free game") };
        assert!(behind_own(&write(1, 0, id.clone()).await, &a, 0, first.epoch), "epoch 0 is behind a's own claim");
        // The claim again: the same epoch, none taken twice.
        assert_eq!(dir.claim(&id, &a, LEASE).await.expect("claim"), Claim::Won(first.clone()));
        assert_eq!(write(1, first.epoch, id.clone()).await, WriteOutcome::Written);
        // The lease lapses in a stall; a renewal that ran late takes it back with a new
        // epoch, and the next renewal of the old one is answered with that epoch.
        lapse().await;
        let Renewal::Renewed(second) = dir.renew(&id, &a, first.epoch, LEASE).await.expect("renew") else {
            panic!("taken back")
        };
        assert!(second > first.epoch);
        assert_eq!(dir.renew(&id, &a, first.epoch, LEASE).await.expect("renew"), Renewal::Renewed(second));
        assert_eq!(
            dir.claim(&id, &a, LEASE).await.expect("claim"),
            Claim::Won(rampart::store::directory::Lease { instance: a.clone(), epoch: second })
        );
        // A write of the old epoch is behind a's own: not another owner.
        assert!(behind_own(&write(2, first.epoch, id.clone()).await, &a, first.epoch, second));
        assert_eq!(write(2, second, id.clone()).await, WriteOutcome::Written);
        // Lapsed again with a's epoch not heard of: renewing the oldest takes a third.
        lapse().await;
        let Renewal::Renewed(third) = dir.renew(&id, &a, second, LEASE).await.expect("renew") else { panic!() };
        lapse().await;
        let Renewal::Renewed(fourth) = dir.renew(&id, &a, first.epoch, LEASE).await.expect("renew") else {
            panic!("every epoch since the first is a's")
        };
        assert!(fourth > third && third > second);
        // Another instance takes the game: a is fenced and has lost it, however it asks.
        lapse().await;
        let Claim::Won(other) = dir.claim(&id, &b, LEASE).await.expect("claim") else { panic!("lapsed") };
        let fenced = write(3, fourth, id.clone()).await;
        assert!(!behind_own(&fenced, &a, fourth, other.epoch), "{fenced:?}");
        assert!(matches!(fenced, WriteOutcome::Fenced { epoch, .. } if epoch == other.epoch), "{fenced:?}");
        assert!(matches!(dir.renew(&id, &a, fourth, LEASE).await.expect("renew"), Renewal::Lost(l) if l.instance == b));
        assert!(matches!(dir.claim(&id, &a, LEASE).await.expect("claim"), Claim::Held(l) if l.instance == b));
        // Even once b's lease lapses, a's late renewal does not take the game back over b's
        // epoch: b may have written a newer board.
        lapse().await;
        assert!(matches!(dir.renew(&id, &a, fourth, LEASE).await.expect("renew"), Renewal::Lost(l) if l.instance == b));
        assert!(!behind_own(&write(4, fourth, id.clone()).await, &a, fourth, other.epoch));
        // A fresh claim by a, over a lapsed lease, starts a's new run.
        let Claim::Won(again) = dir.claim(&id, &a, LEASE).await.expect("claim") else { panic!("lapsed") };
        assert!(again.epoch > other.epoch);
        assert!(!behind_own(&write(5, fourth, id.clone()).await, &a, fourth, again.epoch), "b's epoch lies between");
        assert!(behind_own(&write(5, other.epoch, id.clone()).await, &a, other.epoch, again.epoch));
    })
    .await;
}
