//! `restart`: how long a system actor is gone after a panic. For each actor, `--rounds`
//! faults one after the other: from the admin call's answer until `/health` shows the
//! restart with the actor running again, and until a game created after it answers 201.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::wire::Http;
use crate::{load_average, pct, Opts};

/// The system actors and tasks that run without Redis.
const ACTORS: [&str; 7] = ["breakers", "health", "admission", "lobby", "games", "keeper", "events"];

/// Gives up on one restart after this long.
const DEADLINE: Duration = Duration::from_secs(10);

fn restarts(health: &Value, actor: &str) -> Option<(u64, bool)> {
    let actors = health["checks"]["system_actors"]["actors"].as_array()?;
    let a = actors.iter().find(|a| a["name"] == actor)?;
    Some((a["restarts"].as_u64()?, a["status"] == "ok"))
}

/// Runs the scenario; prints a table and a JSON line.
pub async fn run(o: &Opts) {
    let addr = o.targets[0];
    let mut admin = Http::with_bearer(addr, &o.admin_token);
    let mut http = Http::new(addr);
    println!("| actor | restarts | fault → running p50 / max ms | fault → first game created p50 / max ms | load |");
    println!("|---|---|---|---|---|");
    let mut summary = Vec::new();
    for actor in ACTORS {
        let (mut up, mut answered) = (Vec::new(), Vec::new());
        for _ in 0..o.rounds {
            let Ok((_, health)) = http.call("GET", "/health", None).await else { continue };
            let Some((before, _)) = restarts(&health, actor) else {
                eprintln!("loadbench: /health has no system actor {actor} (not Rampart, or an older one)");
                std::process::exit(1);
            };
            let path = format!("/api/v1/admin/actors/{actor}/fault");
            match admin.call("POST", &path, Some(&json!({"kind": "panic"}))).await {
                Ok((202, _)) => {}
                other => {
                    eprintln!("loadbench: the fault on {actor} was not accepted: {other:?}");
                    std::process::exit(1);
                }
            }
            let t0 = Instant::now();
            loop {
                if let Ok((_, h)) = http.call("GET", "/health", None).await {
                    if restarts(&h, actor).is_some_and(|(n, ok)| n > before && ok) {
                        up.push(t0.elapsed().as_secs_f64() * 1000.0);
                        break;
                    }
                }
                if t0.elapsed() > DEADLINE {
                    eprintln!("loadbench: {actor} did not come back within {DEADLINE:?}");
                    std::process::exit(1);
                }
            }
            let body = json!({"kind": "connect4", "opponent": "ai", "player_name": "bench"});
            loop {
                if let Ok((201, _)) = http.call("POST", "/api/v1/games", Some(&body)).await {
                    answered.push(t0.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if t0.elapsed() > DEADLINE {
                    eprintln!("loadbench: no game could be created within {DEADLINE:?} of {actor}'s restart");
                    std::process::exit(1);
                }
            }
        }
        up.sort_by(f64::total_cmp);
        answered.sort_by(f64::total_cmp);
        let max = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        println!(
            "| {actor} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} |",
            up.len(),
            pct(&up, 0.5),
            max(&up),
            pct(&answered, 0.5),
            max(&answered),
            load_average()
        );
        summary.push(json!({"actor": actor, "restarts": up.len(), "running_p50_ms": pct(&up, 0.5),
            "running_max_ms": max(&up), "first_game_p50_ms": pct(&answered, 0.5), "first_game_max_ms": max(&answered)}));
    }
    println!("{}", json!({"scenario": "restart", "actors": summary}));
}
