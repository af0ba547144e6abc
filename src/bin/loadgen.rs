//! loadgen: the admission load check (not part of `make test`). Against a running server
//! it plays `--games` two-human games (one client drives both seats, one move per seat every
//! `--move-every-ms`), measures their move latency for `--baseline-secs`, then floods game
//! creation at `--flood-per-sec` for `--flood-secs` while the games play on, and finally
//! waits until every waitlisted player has been admitted. It prints one JSON report: move
//! latency p50/p99 before and during the flood, admission decision latency, how many were
//! admitted at once / waitlisted, the waitlist's drain throughput, peak RSS seen on
//! `/health`, and whether every waitlisted player was admitted.
//!
//! ```text
//! make load     # starts a release server with low limits and runs this against it
//! loadgen --url http://127.0.0.1:8080 --games 200 --flood-per-sec 200 --flood-secs 30
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::ws;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};

struct Args {
    url: String,
    games: usize,
    move_every_ms: u64,
    baseline_secs: u64,
    flood_per_sec: u64,
    flood_secs: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".to_owned(),
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
            "--url" => a.url = v.trim_end_matches('/').to_owned(),
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
    eprintln!("usage: loadgen [--url URL] [--games N] [--move-every-ms MS] [--baseline-secs S] [--flood-per-sec N] [--flood-secs S]");
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
    json!({"count": samples.len(), "p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99), "max_ms": samples.last()})
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
    /// Move latencies (ms) by phase: 0 baseline, 1 flood, 2 drain.
    latencies: [Vec<f64>; 3],
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

/// One two-human game driven by one task: each seat moves in turn, paced.
async fn play(client: awc::Client, base: String, ws_base: String, pace: Duration, shared: Rc<RefCell<Shared>>) {
    let fail = |shared: &Rc<RefCell<Shared>>, why: String| *shared.borrow_mut().errors.entry(why).or_default() += 1;
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
    let joined = post(&client, &format!("{base}/api/v1/games/{game_id}/join"), json!({"player_name":"yellow"})).await;
    let yellow = match joined {
        Ok((200, yellow)) => yellow,
        Ok((code, body)) => return fail(&shared, format!("join: HTTP {code} {}", body["error"]["code"])),
        Err(e) => return fail(&shared, format!("join: {e}")),
    };
    let token = |v: &Value| v["player_token"].as_str().unwrap_or_default().to_owned();
    let (Ok(mut r), Ok(mut y)) = (
        open_seat(&client, &ws_base, &game_id, &token(&red)).await,
        open_seat(&client, &ws_base, &game_id, &token(&yellow)).await,
    ) else {
        return fail(&shared, "could not open both seats' sockets".to_owned());
    };
    let mut rng = fastrand::Rng::new();
    let mut game = match until_state(&mut r, 0).await {
        Ok(g) => g,
        Err(e) => return fail(&shared, e),
    };
    let _ = until_state(&mut y, 0).await;
    shared.borrow_mut().games_started += 1;
    let mut turn_red = true;
    loop {
        tokio::time::sleep(pace).await;
        if game["status"] != "playing" {
            shared.borrow_mut().games_finished += 1;
            return;
        }
        let moves = game["moves"].as_u64().unwrap_or(0);
        let open: Vec<usize> = (0..7).filter(|c| game["columns"][*c].as_array().map_or(0, Vec::len) < 6).collect();
        let column = open[rng.usize(..open.len())];
        let (mover, other) = if turn_red { (&mut r, &mut y) } else { (&mut y, &mut r) };
        let sent = Instant::now();
        if mover.send(ws::Message::Text(json!({"type":"move","column":column}).to_string().into())).await.is_err() {
            return fail(&shared, "send".to_owned());
        }
        match until_state(mover, moves + 1).await {
            Ok(g) => {
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                let mut s = shared.borrow_mut();
                let phase = s.phase;
                s.latencies[phase].push(ms);
                game = g;
            }
            Err(e) => return fail(&shared, e),
        }
        let _ = until_state(other, moves + 1).await;
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

#[actix_rt::main]
async fn main() {
    let a = parse_args();
    // 400 sockets and the flood at once: no cap on connections (awc's default is 100).
    let client =
        awc::Client::builder().connector(awc::Connector::new().limit(0)).timeout(Duration::from_secs(30)).finish();
    let ws_base = a.url.replacen("http", "ws", 1);
    let shared = Rc::new(RefCell::new(Shared::default()));
    let pace = Duration::from_millis(a.move_every_ms);
    let mut peak = 0.0f64;
    eprintln!("loadgen: starting {} games against {}", a.games, a.url);
    for i in 0..a.games {
        actix_rt::spawn(play(client.clone(), a.url.clone(), ws_base.clone(), pace, shared.clone()));
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
    let baseline_end = Instant::now() + Duration::from_secs(a.baseline_secs);
    while Instant::now() < baseline_end {
        peak_rss(&client, &a.url, &mut peak).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    eprintln!("loadgen: flooding {} creations/s for {} s", a.flood_per_sec, a.flood_secs);
    shared.borrow_mut().phase = 1;
    let decisions: Rc<RefCell<Decisions>> = Rc::default();
    let flood_start = Instant::now();
    let total = a.flood_per_sec * a.flood_secs;
    let gap = Duration::from_secs_f64(1.0 / a.flood_per_sec as f64);
    for i in 0..total {
        let (c, url, decisions) = (client.clone(), a.url.clone(), decisions.clone());
        actix_rt::spawn(async move {
            let t = Instant::now();
            let r = post(
                &c,
                &format!("{url}/api/v1/games"),
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
        if i % a.flood_per_sec == 0 {
            peak_rss(&client, &a.url, &mut peak).await;
        }
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the last decisions land
    shared.borrow_mut().phase = 2;

    eprintln!("loadgen: waiting for the line to drain");
    let tickets = decisions.borrow().tickets.clone();
    let drain_start = Instant::now();
    let mut pending: Vec<String> = tickets.clone();
    while !pending.is_empty() && drain_start.elapsed() < Duration::from_secs(600) {
        let mut still = Vec::new();
        for t in pending {
            match get(&client, &format!("{}/api/v1/waitlist/{t}", a.url)).await {
                Ok((200, v)) if v["status"] == "admitted" => {}
                _ => still.push(t),
            }
        }
        pending = still;
        peak_rss(&client, &a.url, &mut peak).await;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let d = decisions.borrow();
    let mut s = shared.borrow_mut();
    let mut decision_ms = d.latency_ms.clone();
    let report = json!({
        "games": a.games,
        "move_latency_baseline": summary(&mut s.latencies[0]),
        "move_latency_during_flood": summary(&mut s.latencies[1]),
        "move_latency_while_draining": summary(&mut s.latencies[2]),
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
