//! `loadbench sockets`: N joined, idle seats (two per game), then a probe game's latency
//! while they stay open. Reports the connect rate, the server's resident memory per socket
//! (RSS after minus RSS before, over N) and the probe's p50/p99/p999 for mover and opponent.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use crate::game::{self, Seat};
use crate::wire::{Frame, Http, Read};
use crate::{load_average, pct, rss_kib, Opts, DRAW};

/// Sockets being opened at once.
const CONNECTING: usize = 256;
/// HTTP connections creating games at once.
const CREATING: usize = 16;

/// Keeps an idle seat alive: answers pings, drops everything else, ends with the socket.
fn idle(mut seat: Seat, closed: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        loop {
            match seat.reader.next().await {
                Ok(Read::Ping(payload)) => {
                    if seat.writer.pong(&payload).await.is_err() {
                        break;
                    }
                }
                Ok(Read::Frame(Frame::Close(_))) | Err(_) => break,
                Ok(_) => {}
            }
        }
        closed.fetch_add(1, Ordering::Relaxed);
    });
}

/// Runs the scenario and prints its table row.
pub async fn run(o: &Opts) {
    let target = o.targets[0];
    let pid = o.pids.first().copied();
    let games = o.sockets.div_ceil(2);
    let rss_before = pid.and_then(rss_kib);

    // The games, over a few keep-alive connections.
    let created = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let next = Arc::new(AtomicUsize::new(0));
    for _ in 0..CREATING {
        let (tx, next) = (tx.clone(), next.clone());
        tokio::spawn(async move {
            let mut http = Http::new(target);
            while next.fetch_add(1, Ordering::Relaxed) < games {
                let _ = tx.send(game::create(&mut http).await);
            }
        });
    }
    drop(tx);
    let mut grants = Vec::with_capacity(games);
    while let Some(made) = rx.recv().await {
        match made {
            Ok(g) => grants.push(g),
            Err(e) => {
                eprintln!("loadbench: could not create a game: {e}");
                std::process::exit(1);
            }
        }
    }
    let create_secs = created.elapsed().as_secs_f64();

    // Every seat's socket, a few hundred at a time, spread over the source addresses.
    let closed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let connecting = Instant::now();
    let mut joins = tokio::task::JoinSet::new();
    let mut n = 0usize;
    for g in &grants {
        for token in &g.tokens {
            if n == o.sockets {
                break;
            }
            let source: IpAddr = o.sources[n % o.sources.len()];
            n += 1;
            let (gate, closed, id, token) = (gate.clone(), closed.clone(), g.game_id.clone(), token.clone());
            joins.spawn(async move {
                let _permit = gate.acquire_owned().await.expect("the gate");
                let seat = game::join(target, Some(source), &id, &token).await?;
                idle(seat, closed);
                Ok::<(), std::io::Error>(())
            });
        }
    }
    let mut failed = 0;
    while let Some(joined) = joins.join_next().await {
        if !matches!(joined, Ok(Ok(()))) {
            failed += 1;
            if failed <= 3 {
                eprintln!("loadbench: a seat did not join: {joined:?}");
            }
        }
    }
    let connect_secs = connecting.elapsed().as_secs_f64();
    let open = n - failed;

    // Let the server settle (every first state sent, buffers released), then weigh it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = pid.and_then(rss_kib);
    let per_socket_kb = match (rss_before, rss_after) {
        (Some(b), Some(a)) if open > 0 => Some((a.saturating_sub(b)) as f64 * 1.024 / open as f64),
        _ => None,
    };

    // The probe: one game at a time, a move every 20 ms, while every socket stays open.
    let (mut mover, mut opponent) = (Vec::new(), Vec::new());
    let mut http = Http::new(target);
    let source = o.sources.first().copied();
    'probe: while mover.len() < o.probe_moves {
        let g = match game::create(&mut http).await {
            Ok(g) => g,
            Err(e) => {
                eprintln!("loadbench: the probe game could not be created: {e}");
                break;
            }
        };
        let (red, yellow) = tokio::join!(
            game::join(target, source, &g.game_id, &g.tokens[0]),
            game::join(target, source, &g.game_id, &g.tokens[1])
        );
        let (Ok(red), Ok(yellow)) = (red, yellow) else {
            eprintln!("loadbench: the probe game's seats did not join");
            break;
        };
        let mut seats = [red, yellow];
        for (i, column) in DRAW.iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let m = i % 2;
            let sent = Instant::now();
            if seats[m].play(*column).await.is_err() {
                break 'probe;
            }
            let want = i as u64 + 1;
            let [a, b] = &mut seats;
            let (first, second) = if m == 0 { (a, b) } else { (b, a) };
            let (at_mover, at_other) = tokio::join!(first.until_moves(want), second.until_moves(want));
            let (Ok(at_mover), Ok(at_other)) = (at_mover, at_other) else { break 'probe };
            mover.push(at_mover.duration_since(sent).as_secs_f64() * 1000.0);
            opponent.push(at_other.duration_since(sent).as_secs_f64() * 1000.0);
            if mover.len() == o.probe_moves {
                break;
            }
        }
    }
    mover.sort_by(f64::total_cmp);
    opponent.sort_by(f64::total_cmp);
    let still_open = open - closed.load(Ordering::Relaxed);
    let ms = |v: f64| format!("{v:.2}");
    println!(
        "| {} | {open} of {} | {:.1} s ({:.0}/s) | {} → {} MB | {} | {} / {} / {} | {} / {} / {} | {} | {:.2} |",
        o.label,
        o.sockets,
        connect_secs,
        open as f64 / connect_secs,
        rss_before.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        rss_after.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        per_socket_kb.map_or("-".into(), |k| format!("{k:.1} KB")),
        ms(pct(&mover, 0.5)),
        ms(pct(&mover, 0.99)),
        ms(pct(&mover, 0.999)),
        ms(pct(&opponent, 0.5)),
        ms(pct(&opponent, 0.99)),
        ms(pct(&opponent, 0.999)),
        still_open,
        load_average(),
    );
    println!(
        "{}",
        json!({
            "scenario": "sockets", "label": o.label, "asked": o.sockets, "open": open, "failed": failed,
            "create_secs": create_secs, "connect_secs": connect_secs, "connect_per_sec": open as f64 / connect_secs,
            "rss_kib_before": rss_before, "rss_kib_after": rss_after, "kb_per_socket": per_socket_kb,
            "probe_moves": mover.len(),
            "mover_ms": {"p50": pct(&mover, 0.5), "p99": pct(&mover, 0.99), "p999": pct(&mover, 0.999)},
            "opponent_ms": {"p50": pct(&opponent, 0.5), "p99": pct(&opponent, 0.99), "p999": pct(&opponent, 0.999)},
            "still_open_after_probe": still_open, "load_average": load_average(),
        })
    );
}
