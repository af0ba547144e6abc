//! loadgen: the load check (not part of `make test`). Against running servers it plays
//! `--games` two-human games (one client drives both seats, one move per seat every
//! `--move-every-ms`), measures every move's latency for both seats — the mover's (its own
//! `state`) and the opponent's (the frame that crosses to the other player) — for
//! `--baseline-secs`, then floods game creation at `--flood-per-sec` for `--flood-secs`
//! (0: no flood) while the games play on, and finally waits until every waitlisted player
//! has been admitted. It prints one JSON report: both seats' move latency p50/p99/p999 per
//! phase, moves per second, admission decision latency, how many were admitted at once /
//! waitlisted, the waitlist's drain throughput, peak RSS seen on `/health`, and whether
//! every waitlisted player was admitted.
//!
//! With several `--url`s (a cluster) games are created round-robin across them; with
//! `--cross 1` the yellow seat connects to the next instance, so its frames are relayed
//! through Redis (the report then keeps local and relayed games apart).
//!
//! ```text
//! make load     # starts a release server with low limits and runs this against it
//! loadgen --url http://127.0.0.1:8080 --games 200 --flood-per-sec 200 --flood-secs 30
//! loadgen --url http://127.0.0.1:8081,http://127.0.0.1:8082 --cross 1 --flood-secs 0
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::ws;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};

struct Args {
    urls: Vec<String>,
    cross: bool,
    /// `--takeover N --kill-pid PID`: N games on the first URL, then the owner is killed and
    /// each game's red seat reconnects through the second URL.
    takeover: usize,
    kill_pid: u32,
    games: usize,
    move_every_ms: u64,
    baseline_secs: u64,
    flood_per_sec: u64,
    flood_secs: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        urls: vec!["http://127.0.0.1:8080".to_owned()],
        cross: false,
        takeover: 0,
        kill_pid: 0,
        games: 200,
        move_every_ms: 2000,
        baseline_secs: 10,
        flood_per_sec: 200,
        flood_secs: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| die(&format!("{flag} needs a value")));
        let n = || v.parse::<u64>().unwrap_or_else(|_| die(&format!("{flag} takes a number")));
        match flag.as_str() {
            "--url" => a.urls = v.split(',').map(|u| u.trim_end_matches('/').to_owned()).collect(),
            "--cross" => a.cross = n() == 1,
            "--takeover" => a.takeover = n() as usize,
            "--kill-pid" => a.kill_pid = n() as u32,
            "--games" => a.games = n() as usize,
            "--move-every-ms" => a.move_every_ms = n(),
            "--baseline-secs" => a.baseline_secs = n(),
            "--flood-per-sec" => a.flood_per_sec = n(),
            "--flood-secs" => a.flood_secs = n(),
            other => die(&format!("unknown flag {other}")),
        }
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    eprintln!("usage: loadgen [--url URL[,URL…]] [--cross 0|1] [--games N] [--move-every-ms MS] [--baseline-secs S] [--flood-per-sec N] [--flood-secs S]");
    std::process::exit(64);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(samples: &mut [f64]) -> Value {
    samples.sort_by(f64::total_cmp);
    json!({"count": samples.len(), "p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99), "p999_ms": percentile(samples, 0.999), "max_ms": samples.last()})
}

/// Both seats' latencies of one phase.
#[derive(Default)]
struct Seats {
    mover: Vec<f64>,
    opponent: Vec<f64>,
}

impl Seats {
    fn report(&mut self, secs: f64) -> Value {
        let moves = self.mover.len();
        json!({
            "mover": summary(&mut self.mover),
            "opponent": summary(&mut self.opponent),
            "moves_per_sec": if secs > 0.0 { moves as f64 / secs } else { 0.0 },
        })
    }
}

/// The flood's answers.
#[derive(Default)]
struct Decisions {
    /// Each creation request's latency (ms).
    latency_ms: Vec<f64>,
    /// Tickets of the waitlisted.
    tickets: Vec<String>,
    /// Admitted at once.
    admitted: u64,
    /// Refused without a ticket, or failed.
    other: u64,
}

#[derive(Default)]
struct Shared {
    /// Move latencies (ms) by phase (0 baseline, 1 flood, 2 drain) and by whether the
    /// game's yellow seat is relayed (1) or not (0).
    latencies: [[Seats; 2]; 3],
    phase: usize,
    games_finished: usize,
    games_started: usize,
    errors: HashMap<String, u64>,
}

async fn post(client: &awc::Client, url: &str, body: Value) -> Result<(u16, Value), String> {
    let mut resp = client.post(url).send_json(&body).await.map_err(|e| e.to_string())?;
    let bytes = resp.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
    Ok((resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

async fn get(client: &awc::Client, url: &str) -> Result<(u16, Value), String> {
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let bytes = resp.body().limit(1 << 22).await.map_err(|e| e.to_string())?;
    Ok((resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A game socket (awc's framed WebSocket).
trait Socket:
    futures_util::Stream<Item = Result<ws::Frame, awc::error::WsProtocolError>> + futures_util::Sink<ws::Message> + Unpin
{
}
impl<T> Socket for T where
    T: futures_util::Stream<Item = Result<ws::Frame, awc::error::WsProtocolError>>
        + futures_util::Sink<ws::Message>
        + Unpin
{
}

async fn open_seat(client: &awc::Client, ws_base: &str, game_id: &str, token: &str) -> Result<impl Socket, String> {
    let (_, mut socket) =
        client.ws(format!("{ws_base}/ws/games/{game_id}")).connect().await.map_err(|e| e.to_string())?;
    socket
        .send(ws::Message::Text(json!({"type": "join", "token": token}).to_string().into()))
        .await
        .map_err(|_| "could not send the join".to_owned())?;
    Ok(socket)
}

/// Reads frames until a state with `moves >= want` (answers its game) or an error frame.
async fn until_state(socket: &mut impl Socket, want: u64) -> Result<Value, String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .map_err(|_| "no frame within 30 s".to_owned())?;
        match frame {
            Some(Ok(ws::Frame::Text(bytes))) => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if v["type"] == "state" && v["game"]["moves"].as_u64() >= Some(want) {
                    return Ok(v["game"].clone());
                }
                if v["type"] == "error" {
                    return Err(v["error"]["code"].as_str().unwrap_or("ERROR").to_owned());
                }
            }
            Some(Ok(ws::Frame::Ping(p))) => {
                let _ = socket.send(ws::Message::Pong(p)).await;
            }
            Some(Ok(ws::Frame::Close(reason))) => {
                return Err(format!("socket closed by the server ({:?})", reason.map(|r| u16::from(r.code))))
            }
            None => return Err("socket ended".to_owned()),
            Some(Err(e)) => return Err(format!("socket error: {e}")),
            Some(Ok(_)) => {}
        }
    }
}

/// Polls a waitlist ticket until it is admitted (10 minutes at most); answers the grant.
async fn wait_for_seat(client: &awc::Client, base: &str, ticket: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if let Ok((200, v)) = get(client, &format!("{base}/api/v1/waitlist/{ticket}")).await {
            if v["status"] == "admitted" {
                return Some(v);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// One two-human game driven by one task: each seat moves in turn, paced. Red plays on
/// `base`; yellow on `other_base` (the same server, or another instance: relayed).
async fn play(client: awc::Client, base: String, other_base: String, pace: Duration, shared: Rc<RefCell<Shared>>) {
    // A game that ends is followed by a new one: the load stays at `--games` games in play.
    let mut first = true;
    loop {
        if !play_one(&client, &base, &other_base, pace, &shared, first).await {
            return;
        }
        first = false;
    }
}

/// Plays one game to its end; false when it failed (counted in the errors).
async fn play_one(
    client: &awc::Client,
    base: &str,
    other_base: &str,
    pace: Duration,
    shared: &Rc<RefCell<Shared>>,
    first: bool,
) -> bool {
    let (client, base, other_base, shared) = (client.clone(), base.to_owned(), other_base.to_owned(), shared.clone());
    let ws_base = base.replacen("http", "ws", 1);
    let other_ws = other_base.replacen("http", "ws", 1);
    let relayed = usize::from(base != other_base);
    let fail = |shared: &Rc<RefCell<Shared>>, why: String| {
        *shared.borrow_mut().errors.entry(why).or_default() += 1;
        false
    };
    let created = post(
        &client,
        &format!("{base}/api/v1/games"),
        json!({"kind":"connect4","opponent":"human","player_name":"red"}),
    )
    .await;
    // The setup itself may meet the admission limits: then this player waits in line too.
    let red = match created {
        Ok((201, red)) => red,
        Ok((503, body)) if body["error"]["details"]["ticket"].is_string() => {
            let ticket = body["error"]["details"]["ticket"].as_str().unwrap_or_default().to_owned();
            match wait_for_seat(&client, &base, &ticket).await {
                Some(grant) => grant,
                None => return fail(&shared, "setup: never admitted".to_owned()),
            }
        }
        Ok((code, body)) => return fail(&shared, format!("create: HTTP {code} {}", body["error"]["code"])),
        Err(e) => return fail(&shared, format!("create: {e}")),
    };
    let game_id = red["game_id"].as_str().unwrap_or_default().to_owned();
    let joined =
        post(&client, &format!("{other_base}/api/v1/games/{game_id}/join"), json!({"player_name":"yellow"})).await;
    let yellow = match joined {
        Ok((200, yellow)) => yellow,
        Ok((code, body)) => return fail(&shared, format!("join: HTTP {code} {}", body["error"]["code"])),
        Err(e) => return fail(&shared, format!("join: {e}")),
    };
    let token = |v: &Value| v["player_token"].as_str().unwrap_or_default().to_owned();
    let (Ok(mut r), Ok(mut y)) = (
        open_seat(&client, &ws_base, &game_id, &token(&red)).await,
        open_seat(&client, &other_ws, &game_id, &token(&yellow)).await,
    ) else {
        return fail(&shared, "could not open both seats' sockets".to_owned());
    };
    let mut rng = fastrand::Rng::new();
    let mut game = match until_state(&mut r, 0).await {
        Ok(g) => g,
        Err(e) => return fail(&shared, e),
    };
    let _ = until_state(&mut y, 0).await;
    if first {
        shared.borrow_mut().games_started += 1;
    }
    let mut turn_red = true;
    loop {
        tokio::time::sleep(pace).await;
        if game["status"] != "playing" {
            shared.borrow_mut().games_finished += 1;
            return true;
        }
        let moves = game["moves"].as_u64().unwrap_or(0);
        let open: Vec<usize> = (0..7).filter(|c| game["columns"][*c].as_array().map_or(0, Vec::len) < 6).collect();
        let column = open[rng.usize(..open.len())];
        let (mover, other) = if turn_red { (&mut r, &mut y) } else { (&mut y, &mut r) };
        let sent = Instant::now();
        if mover.send(ws::Message::Text(json!({"type":"move","column":column}).to_string().into())).await.is_err() {
            return fail(&shared, "send".to_owned());
        }
        // Both seats at once: the opponent's frame is the one players feel.
        let timed = |socket| async move {
            let state = until_state(socket, moves + 1).await;
            (state, sent.elapsed().as_secs_f64() * 1000.0)
        };
        let ((mine, mover_ms), (theirs, opponent_ms)) = tokio::join!(timed(mover), timed(other));
        match (mine, theirs) {
            (Ok(g), Ok(_)) => {
                let mut s = shared.borrow_mut();
                let phase = s.phase;
                s.latencies[phase][relayed].mover.push(mover_ms);
                s.latencies[phase][relayed].opponent.push(opponent_ms);
                game = g;
            }
            (Err(e), _) | (_, Err(e)) => return fail(&shared, e),
        }
        turn_red = !turn_red;
    }
}

async fn peak_rss(client: &awc::Client, base: &str, peak: &mut f64) {
    if let Ok((_, h)) = get(client, &format!("{base}/health")).await {
        if let Some(rss) = h["checks"]["vitals"]["vitals"]["rss_mb"]["value"].as_f64() {
            *peak = peak.max(rss);
        }
    }
}

/// The takeover scenario: `a.takeover` games with both seats on the first instance, each
/// with a move played; the instance is killed (SIGKILL); every red seat reconnects through
/// the second instance at once. Answers the time from the kill to each player's `state`.
async fn takeover(a: &Args, client: &awc::Client) {
    if a.urls.len() < 2 || a.kill_pid == 0 {
        die("--takeover needs two --url (the owner first) and --kill-pid (the owner's pid)");
    }
    let (owner, other) = (&a.urls[0], &a.urls[1]);
    let mut grants = Vec::new();
    for _ in 0..a.takeover {
        let created = post(
            client,
            &format!("{owner}/api/v1/games"),
            json!({"kind":"connect4","opponent":"human","player_name":"red"}),
        )
        .await;
        let Ok((201, red)) = created else { die("could not create a game on the owner") };
        let id = red["game_id"].as_str().unwrap_or_default().to_owned();
        let Ok((200, yellow)) =
            post(client, &format!("{owner}/api/v1/games/{id}/join"), json!({"player_name":"yellow"})).await
        else {
            die("could not join a game on the owner")
        };
        let ws = owner.replacen("http", "ws", 1);
        let token = |v: &Value| v["player_token"].as_str().unwrap_or_default().to_owned();
        let mut r = open_seat(client, &ws, &id, &token(&red)).await.unwrap_or_else(|e| die(&e));
        let mut y = open_seat(client, &ws, &id, &token(&yellow)).await.unwrap_or_else(|e| die(&e));
        until_state(&mut r, 0).await.unwrap_or_else(|e| die(&e));
        let _ = r.send(ws::Message::Text(json!({"type":"move","column":3}).to_string().into())).await;
        until_state(&mut y, 1).await.unwrap_or_else(|e| die(&e));
        grants.push((id, token(&red)));
    }
    // Let the snapshots reach Redis (they are written behind the games).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    let status = std::process::Command::new("kill").args(["-9", &a.kill_pid.to_string()]).status();
    if !status.is_ok_and(|s| s.success()) {
        die("could not kill the owner");
    }
    let ws = other.replacen("http", "ws", 1);
    let waits = grants.into_iter().map(|(id, token)| {
        let (client, ws) = (client.clone(), ws.clone());
        async move {
            let mut socket = open_seat(&client, &ws, &id, &token).await?;
            let game = until_state(&mut socket, 1).await?;
            Ok::<_, String>((killed.elapsed().as_secs_f64() * 1000.0, game["moves"].as_u64()))
        }
    });
    let results = futures_util::future::join_all(waits).await;
    let mut ms: Vec<f64> = results.iter().filter_map(|r| r.as_ref().ok().map(|(ms, _)| *ms)).collect();
    let same_board = results.iter().filter(|r| matches!(r, Ok((_, Some(1))))).count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = json!({
        "scenario": "takeover",
        "games": a.takeover,
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "kill_to_state": summary(&mut ms),
        "resumed_with_the_same_move_count": same_board,
        "failed": results.iter().filter(|r| r.is_err()).count(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
}

#[actix_rt::main]
async fn main() {
    let a = parse_args();
    if a.takeover > 0 {
        let client =
            awc::Client::builder().connector(awc::Connector::new().limit(0)).timeout(Duration::from_secs(30)).finish();
        return takeover(&a, &client).await;
    }
    // 400 sockets and the flood at once: no cap on connections (awc's default is 100).
    let client =
        awc::Client::builder().connector(awc::Connector::new().limit(0)).timeout(Duration::from_secs(30)).finish();
    let shared = Rc::new(RefCell::new(Shared::default()));
    let pace = Duration::from_millis(a.move_every_ms);
    let mut peak = 0.0f64;
    let url = a.urls[0].clone();
    eprintln!("loadgen: starting {} games against {}", a.games, a.urls.join(", "));
    for i in 0..a.games {
        let base = a.urls[i % a.urls.len()].clone();
        let other = if a.cross { a.urls[(i + 1) % a.urls.len()].clone() } else { base.clone() };
        actix_rt::spawn(play(client.clone(), base, other, pace, shared.clone()));
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every game must be playing (some may have waited in line) before the baseline starts.
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let settled = {
            let s = shared.borrow();
            s.games_started + s.errors.values().sum::<u64>() as usize
        };
        if settled >= a.games || Instant::now() >= setup_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("loadgen: {} games playing; measuring the baseline", shared.borrow().games_started);
    let baseline_start = Instant::now();
    let baseline_end = baseline_start + Duration::from_secs(a.baseline_secs);
    while Instant::now() < baseline_end {
        peak_rss(&client, &url, &mut peak).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let baseline_secs = baseline_start.elapsed().as_secs_f64();

    eprintln!("loadgen: flooding {} creations/s for {} s", a.flood_per_sec, a.flood_secs);
    shared.borrow_mut().phase = 1;
    let decisions: Rc<RefCell<Decisions>> = Rc::default();
    let flood_start = Instant::now();
    let total = a.flood_per_sec * a.flood_secs;
    let gap = Duration::from_secs_f64(1.0 / a.flood_per_sec as f64);
    for i in 0..total {
        let (c, target, decisions) = (client.clone(), a.urls[i as usize % a.urls.len()].clone(), decisions.clone());
        actix_rt::spawn(async move {
            let t = Instant::now();
            let r = post(
                &c,
                &format!("{target}/api/v1/games"),
                json!({"kind":"connect4","opponent":"human","player_name":"flood"}),
            )
            .await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let mut d = decisions.borrow_mut();
            d.latency_ms.push(ms);
            match r {
                Ok((201, _)) => d.admitted += 1,
                Ok((503, body)) => match body["error"]["details"]["ticket"].as_str() {
                    Some(t) => d.tickets.push(t.to_owned()),
                    None => d.other += 1,
                },
                _ => d.other += 1,
            }
        });
        let due = flood_start + gap * (i as u32 + 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        if i % a.flood_per_sec.max(1) == 0 {
            peak_rss(&client, &url, &mut peak).await;
        }
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    if total > 0 {
        tokio::time::sleep(Duration::from_secs(2)).await; // let the last decisions land
    }
    shared.borrow_mut().phase = 2;

    eprintln!("loadgen: waiting for the line to drain");
    let tickets = decisions.borrow().tickets.clone();
    let drain_start = Instant::now();
    let mut pending: Vec<String> = tickets.clone();
    while !pending.is_empty() && drain_start.elapsed() < Duration::from_secs(600) {
        let mut still = Vec::new();
        for t in pending {
            match get(&client, &format!("{url}/api/v1/waitlist/{t}")).await {
                Ok((200, v)) if v["status"] == "admitted" => {}
                _ => still.push(t),
            }
        }
        pending = still;
        peak_rss(&client, &url, &mut peak).await;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let d = decisions.borrow();
    let mut s = shared.borrow_mut();
    let mut decision_ms = d.latency_ms.clone();
    let [baseline, flood, draining] = &mut s.latencies;
    let phase =
        |seats: &mut [Seats; 2], secs: f64| json!({"local": seats[0].report(secs), "relayed": seats[1].report(secs)});
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = json!({
        "games": a.games,
        "instances": a.urls.len(),
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "move_latency_baseline": phase(baseline, baseline_secs),
        "move_latency_during_flood": phase(flood, flood_secs),
        "move_latency_while_draining": phase(draining, drain_secs),
        "flood": {"requests": total, "secs": flood_secs, "admitted_at_once": d.admitted, "waitlisted": d.tickets.len(), "refused_without_ticket_or_failed": d.other},
        "admission_decision_latency": summary(&mut decision_ms),
        "waitlist": {"drain_secs": drain_secs, "throughput_per_sec": d.tickets.len() as f64 / drain_secs.max(0.001), "all_admitted": pending.is_empty(), "not_admitted": pending.len()},
        "peak_rss_mb": peak,
        "games_playing_at_start": s.games_started,
        "games_finished_during_run": s.games_finished,
        "errors": s.errors,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
}
