//! The smaller attacks of issue 21, end to end against the real server: a join to a game
//! whose thread hangs is answered once the watchdog has moved the game (not when the hang
//! ends); names that show nothing, carry bidi controls or stacks of marks, or pass for the
//! AI are refused wherever a name is taken; a chat of invisible characters is refused like
//! an empty one; the light-cycle socket refuses unknown fields and answers a second `join`
//! exactly as the turn-based socket does; the memory gate (the real binary, its real
//! memory) closes at its limit even right after it turned degraded (the `Evaluator`'s own
//! tests in `src/health/mod.rs` drive the same rule with a manual clock).

mod common;

use std::time::{Duration, Instant};

use common::process::{http_get, raise_fd_limit, ServerProcess};
use common::*;
use rampart::config::{Config, Secret};
use serde_json::{json, Value};

const ADMIN: &str = "hostile-small-admin";

fn config() -> Config {
    let mut c = test_config();
    c.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    c.realtime.width = 16;
    c.realtime.height = 12;
    c
}

/// Creates a game of `kind`; answers the creator's grant.
async fn create(server: &TestServer, kind: &str, opponent: &str) -> Grant {
    let (status, body) =
        server.post("/api/v1/games", json!({"kind": kind, "opponent": opponent, "player_name": "ada"})).await;
    assert_eq!(status, 201, "{body}");
    Grant::from(&body)
}

/// The next error frame, whole (`error` and `in_reply_to`).
async fn next_error(p: &mut Player) -> Value {
    p.recv_type("error").await
}

#[actix_rt::test]
async fn a_join_to_a_game_on_a_hung_thread_is_answered_once_the_watchdog_moved_it() {
    let mut config = config();
    config.server.game_arbiters = 1;
    config.supervision.watchdog_interval_ms = 100;
    config.supervision.default.hang_timeout_ms = 1000;
    let hang_ms = 3000;
    let server = TestServer::start(config).await;
    let grant = create(&server, "connect4", "ai").await;
    let fault = json!({"kind": "hang", "duration_ms": hang_ms});
    let hung_at = Instant::now();
    assert_eq!(server.fault(&grant.game_id, ADMIN, fault).await, 202);
    // The join lands in the mailbox of the incarnation whose thread sleeps for 3 s; the
    // watchdog gives that thread up after 1 s (and a watchdog interval) and starts the game
    // again on a fresh one.
    let mut p = server.socket(&grant.game_id).await;
    let sent = Instant::now();
    p.send(json!({"type": "join", "token": grant.token})).await;
    let answer = p.recv_until("the join's answer", |f| f["type"] == "state" || f["type"] == "error").await;
    let answered = sent.elapsed();
    eprintln!(
        "join on a hung thread: answered {answered:?} after the join ({:?} after the hang began; hang {hang_ms} ms, \
         hang_timeout 1000 ms, watchdog 100 ms)",
        hung_at.elapsed()
    );
    assert_eq!(answer["type"], "state", "the join is answered by the moved game: {answer}");
    assert!(
        hung_at.elapsed() < Duration::from_millis(hang_ms - 500),
        "answered {:?} after the hang began: when the hang ended, not when the game moved",
        hung_at.elapsed()
    );
    // The seat is really held: a command is applied.
    p.move_to(3).await;
    p.recv_state(|g| g["moves"].as_u64() >= Some(1)).await;
}

/// Names that show nothing, reorder text, stack marks or pass for the AI.
const BAD_NAMES: [(&str, &str); 12] = [
    ("\u{3164}", "invisible"),
    ("\u{200B}\u{200B}", "invisible"),
    ("\u{2800}\u{2800}\u{2800}", "invisible"),
    ("\u{115F}\u{FFA0}", "invisible"),
    ("Rampart AI", "reserved"),
    ("rampart  ai", "reserved"),
    ("Rampart\u{3000}AI", "reserved"),
    ("Ramp\u{200B}art\u{3164}AI", "reserved"),
    ("Rаmpаrt AI", "reserved"), // Cyrillic а
    ("ada\u{202E}gpj.exe", "bidi_control"),
    ("\u{2067}bob\u{2069}", "bidi_control"),
    ("Z\u{0301}\u{0302}\u{0303}\u{0304}\u{0305}\u{0306}\u{0307}\u{0308}\u{0309}\u{030A}\u{030B}\u{030C}\u{030D}\u{030E}\u{030F}\u{0310}\u{0311}\u{0312}\u{0313}\u{0314}\u{0315}\u{0316}\u{0317}\u{0318}\u{0319}\u{031A}\u{031B}\u{031C}\u{031D}\u{031E}\u{031F}", "stacked_marks"),
];

fn assert_refused(status: u16, body: &Value, name: &str, reason: &str) {
    assert_eq!(status, 422, "{name:?}: {body}");
    let error = &body["error"];
    assert_eq!(
        (error["code"].as_str(), error["details"]["field"].as_str(), error["details"]["reason"].as_str()),
        (Some("VALIDATION_FAILED"), Some("player_name"), Some(reason)),
        "{name:?}: {body}"
    );
}

#[actix_rt::test]
async fn names_that_hide_reorder_stack_or_impersonate_are_refused_wherever_a_name_is_taken() {
    let server = TestServer::start(config()).await;
    let human = create(&server, "connect4", "human").await;
    let cycles = create(&server, "lightcycle", "human").await;
    for (name, reason) in BAD_NAMES {
        for kind in ["connect4", "lightcycle"] {
            let (status, body) =
                server.post("/api/v1/games", json!({"kind": kind, "opponent": "ai", "player_name": name})).await;
            assert_refused(status, &body, name, reason);
        }
        for game in [&human, &cycles] {
            let (status, body) = server.join_rest(&game.game_id, name).await;
            assert_refused(status, &body, name, reason);
        }
    }
    // Nothing was taken by a refused join.
    let (_, summary) = server.get(&format!("/api/v1/games/{}", human.game_id)).await;
    assert_eq!(summary["players"]["yellow"], Value::Null, "{summary}");
    // While new games wait in line, a bad name is refused before it could queue.
    server.force_health(ADMIN, json!("overloaded")).await;
    let (status, body) =
        server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": "Rampart AI"})).await;
    assert_refused(status, &body, "Rampart AI", "reserved");
    let (status, body) =
        server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": "eve"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("SERVER_BUSY")), "{body}");
    server.force_health(ADMIN, Value::Null).await;
    // Real names in other scripts still pass, and the AI keeps its own name.
    for name in ["Nguyễn Thị Ánh", "สมชาย", "محمد", "Zoë ❤️", "R2-D2"] {
        let (status, body) =
            server.post("/api/v1/games", json!({"kind": "connect4", "opponent": "ai", "player_name": name})).await;
        assert_eq!(status, 201, "{name:?}: {body}");
        let (_, summary) = server.get(&format!("/api/v1/games/{}", body["game_id"].as_str().unwrap_or(""))).await;
        assert_eq!(summary["players"]["red"]["name"], name, "{summary}");
        assert_eq!(summary["players"]["yellow"]["name"], "Rampart AI", "{summary}");
    }
}

#[actix_rt::test]
async fn a_chat_of_invisible_characters_is_refused_like_an_empty_one_and_hiders_are_stripped() {
    let server = TestServer::start(config()).await;
    let grant = create(&server, "connect4", "ai").await;
    let mut p = server.player(&grant).await;
    p.send(json!({"type": "chat", "text": "   "})).await;
    let empty = next_error(&mut p).await;
    assert_eq!(empty["error"]["code"], "VALIDATION_FAILED", "{empty}");
    for text in
        ["\u{200B}\u{200B}\u{200B}\u{200B}", "\u{3164}\u{2800}", "\u{202E}\u{2066}", "\u{FEFF}\u{2060} \u{200B}"]
    {
        p.send(json!({"type": "chat", "text": text})).await;
        let refused = next_error(&mut p).await;
        assert_eq!(refused, empty, "{:?} is refused as an empty chat", text.escape_unicode().to_string());
    }
    // What hides is stripped from a line that says something.
    p.send(json!({"type": "chat", "text": "g\u{200B}g\u{202E} wp\u{2066}"})).await;
    let line = p.recv_until("our chat line", |f| f["type"] == "chat" && f["from"] == "red").await;
    assert_eq!(line["text"], "gg wp", "{line}");
}

/// What a socket answers to a sequence of frames: each error's code, `in_reply_to` and
/// `details.seat`, or the type of the frame that answered it.
async fn answer(p: &mut Player, frame: Value, answered_by: &str) -> Value {
    p.send(frame).await;
    let reply = p.recv_until("an answer", |f| f["type"] == "error" || f["type"] == answered_by).await;
    if reply["type"] == "error" {
        json!({"code": reply["error"]["code"], "in_reply_to": reply["in_reply_to"], "seat": reply["error"]["details"]["seat"]})
    } else {
        json!(reply["type"])
    }
}

/// The script of frames that both runtimes must answer alike: unknown fields in `join`,
/// `resign` and `ping`, then a second `join` with the same token, the other seat's token
/// and a token that holds no seat (the socket stays open: a `ping` is answered).
async fn second_join_script(server: &TestServer, kind: &str, full: &str) -> Vec<Value> {
    let red = create(server, kind, "human").await;
    let (status, body) = server.join_rest(&red.game_id, "bob").await;
    assert_eq!(status, 200, "{body}");
    let yellow = Grant::from(&body);
    let mut out = Vec::new();
    let mut p = server.socket(&red.game_id).await;
    out.push(answer(&mut p, json!({"type": "join", "token": red.token, "seat": "yellow"}), full).await);
    out.push(answer(&mut p, json!({"type": "join", "token": red.token}), full).await);
    out.push(answer(&mut p, json!({"type": "ping", "id": 1, "x": true}), "pong").await);
    out.push(answer(&mut p, json!({"type": "resign", "why": "bored"}), full).await);
    out.push(answer(&mut p, json!({"type": "join", "token": red.token}), full).await);
    out.push(answer(&mut p, json!({"type": "join", "token": yellow.token}), full).await);
    out.push(answer(&mut p, json!({"type": "join", "token": "not-a-seat"}), full).await);
    out.push(answer(&mut p, json!({"type": "ping", "id": 2}), "pong").await);
    out
}

#[actix_rt::test]
async fn the_light_cycle_socket_refuses_unknown_fields_and_second_joins_as_the_turn_based_one() {
    let server = TestServer::start(config()).await;
    let expected = vec![
        json!({"code": "BAD_REQUEST", "in_reply_to": "join", "seat": null}),
        json!("FULL"),
        json!({"code": "BAD_REQUEST", "in_reply_to": "ping", "seat": null}),
        json!({"code": "BAD_REQUEST", "in_reply_to": "resign", "seat": null}),
        json!("FULL"),
        json!({"code": "FORBIDDEN", "in_reply_to": "join", "seat": "red"}),
        json!({"code": "UNAUTHORIZED", "in_reply_to": "join", "seat": null}),
        json!("pong"),
    ];
    let normalise = |answers: Vec<Value>, full: &str| -> Vec<Value> {
        answers.into_iter().map(|a| if a == json!(full) { json!("FULL") } else { a }).collect()
    };
    let turns = normalise(second_join_script(&server, "connect4", "state").await, "state");
    assert_eq!(turns, expected, "the turn-based socket: the contract");
    let cycles = normalise(second_join_script(&server, "lightcycle", "arena").await, "arena");
    assert_eq!(cycles, expected, "the light-cycle socket answers as the turn-based one");

    // The kind's own input frame is as strict: an unknown field is BAD_REQUEST, a missing
    // `dir` too; a `dir` that is none of the four is VALIDATION_FAILED with `allowed`.
    let grant = create(&server, "lightcycle", "ai").await;
    let mut p = server.socket(&grant.game_id).await;
    p.send(json!({"type": "join", "token": grant.token})).await;
    p.recv_type("arena").await;
    p.send(json!({"type": "turn", "dir": "up", "boost": 9})).await;
    let e = next_error(&mut p).await;
    assert_eq!((e["error"]["code"].as_str(), e["in_reply_to"].as_str()), (Some("BAD_REQUEST"), Some("turn")), "{e}");
    p.send(json!({"type": "turn"})).await;
    assert_eq!(next_error(&mut p).await["error"]["code"], "BAD_REQUEST");
    p.send(json!({"type": "turn", "dir": "sideways"})).await;
    let e = next_error(&mut p).await;
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["details"]["field"].as_str()),
        (Some("VALIDATION_FAILED"), Some("dir")),
        "{e}"
    );
    assert_eq!(e["error"]["details"]["allowed"], json!(["up", "right", "down", "left"]), "{e}");
    // The same unknown field on the turn-based socket's own input frame.
    let c4 = create(&server, "connect4", "ai").await;
    let mut q = server.player(&c4).await;
    q.send(json!({"type": "move", "column": 3, "boost": 9})).await;
    let e = next_error(&mut q).await;
    assert_eq!((e["error"]["code"].as_str(), e["in_reply_to"].as_str()), (Some("BAD_REQUEST"), Some("move")), "{e}");
}

/// The vital and the status of one `/health` report: (memory held in MB, status).
fn memory(server: &ServerProcess) -> (f64, String) {
    eventually_blocking(DEADLINE, "the memory vital is sampled", || {
        let (_, body) = http_get(server.addr, "/health").ok_or_else(|| "no answer".to_owned())?;
        let health: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        match health["checks"]["vitals"]["vitals"]["memory_mb"]["value"].as_f64() {
            Some(held) => Ok((held, health["status"].as_str().unwrap_or("").to_owned())),
            None => Err(health.to_string()),
        }
    })
}

#[test]
fn the_memory_gate_closes_at_its_limit_even_right_after_turning_degraded() {
    raise_fd_limit();
    let baseline = memory(&ServerProcess::start(&[("RAMPART__HEALTH__INTERVAL_MS", "100")])).0;
    // 8 MB over an idle server: degraded at 0.8 of it, the climb from there to the limit
    // takes well under the 6 s dwell (about 1.5 s measured).
    let limit = (baseline + 8.0).ceil();
    let server = ServerProcess::start(&[
        ("RAMPART__HEALTH__INTERVAL_MS", "100"),
        ("RAMPART__HEALTH__DWELL_MS", "6000"),
        ("RAMPART__HEALTH__MAX_MEMORY_MB", &limit.to_string()),
        ("RAMPART__HEALTH__MAX_MEMORY_USED_PCT", "0"),
        ("RAMPART__SERVER__WORKERS", "1"),
        // One test address opens them all: the per-address limits have their own tests.
        ("RAMPART__SERVER__MAX_LOBBY_SOCKETS_PER_CLIENT", "100000"),
        ("RAMPART__SERVER__MAX_CLIENT_CONNECTIONS_PCT", "100"),
    ]);
    let mut sockets = Vec::new();
    let mut degraded_at = None;
    let mut degraded_since = None;
    let start = Instant::now();
    let overloaded_at = loop {
        let (held, status) = memory(&server);
        // One report: its value and its status. At or over the limit means overloaded.
        assert!(
            held < limit || status == "overloaded",
            "{status} with {held:.1} MB held, limit {limit} MB (degraded at {degraded_at:?} MB)"
        );
        match status.as_str() {
            "overloaded" => break held,
            "degraded" => {
                degraded_at.get_or_insert(held);
                degraded_since.get_or_insert_with(Instant::now);
            }
            _ => {}
        }
        for _ in 0..25 {
            sockets.push(RawClient::connect_plain(server.addr, "/ws/lobby"));
        }
        assert!(sockets.len() < 8000, "8000 lobby sockets never overloaded a {limit} MB limit");
        assert!(start.elapsed() < Duration::from_secs(60), "the spike took too long");
    };
    let climb = degraded_since.map(|since: Instant| since.elapsed());
    eprintln!(
        "memory gate: limit {limit} MB, degraded at {degraded_at:?} MB, overloaded at {overloaded_at:.1} MB \
         {climb:?} later ({} lobby sockets, {:?})",
        sockets.len(),
        start.elapsed()
    );
    // What the test is about happened: the status was degraded first, and the climb from
    // there to the limit took less than the dwell (a gate that waited out the dwell would
    // have reported `degraded` at the limit, which the loop refuses).
    let climb = climb.expect("the status passed through degraded on its way to overloaded");
    assert!(climb < Duration::from_millis(6000), "the climb from degraded took {climb:?}, not within the dwell");
}
