//! llm-storm: `rampart` with its AI chatting through the bundled `fake_llm`, AI games played
//! by bots that chat every few moves (each line asks the LLM for an answer, and the AI
//! comments after its own moves), while the fake switches between hanging, answering 500
//! and answering malformed JSON (with short spells of normal answers so the `llm` breaker
//! closes and opens again). Moves must never notice: no error, every chat line echoed to
//! the table, move latency as before.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::bots::{Spec, World};
use crate::procs::{FakeLlm, Server};
use crate::report::{self, Report};
use crate::{process_figures, spawn_bots, stop_bots, wait_for, Ctx};

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Report {
    let mut report = Report::new("llm-storm");
    let secs = ctx.secs(60, 18);
    let games = ctx.games(40, 8);
    let spell = Duration::from_secs(if ctx.smoke { 3 } else { 8 });
    let fake = match FakeLlm::start(&ctx.fake_llm, &ctx.dir) {
        Ok(f) => f,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let env = ctx.env(&[
        ("RAMPART__LLM__BASE_URL", fake.url.clone()),
        ("RAMPART__LLM__TIMEOUT_MS", "1500".to_owned()),
        ("RAMPART__LLM__COMMENT_PROBABILITY", "1.0".to_owned()),
        // A short open period, so the breaker keeps probing the storm.
        ("RAMPART__CIRCUIT_BREAKERS__LLM__TIMEOUT", "1".to_owned()),
        ("RAMPART__CIRCUIT_BREAKERS__LLM__TIMEOUT_MAX", "2".to_owned()),
        // Setup goes through the waitlist too.
        ("RAMPART__ADMISSION__BURST", (games / 2).max(1).to_string()),
    ]);
    let mut server = match Server::start(&ctx.api, &ctx.rampart, "rampart", &env, &ctx.dir, None).await {
        Ok(s) => s,
        Err(e) => {
            report.broke("start", &e);
            return report;
        }
    };
    let world = World::new(ctx.api.clone(), vec![server.url.clone()]);
    spawn_bots(&world, ctx, games, |_| Spec {
        vs_ai: true,
        red_url: 0,
        yellow_url: 0,
        pace: Duration::from_millis(500),
        chat_every: 2,
        idle: false,
        max_games: 0,
    })
    .await;
    if !wait_for(Duration::from_secs(15), || world.playing() >= games).await {
        report.broke("setup", &format!("only {} of {games} games in play", world.playing()));
    }
    let rss_start = server.rss_kib();
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 2 } else { 8 })).await;
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let modes = ["hang", "http500", "ok", "malformed_json", "hang", "ok", "http500", "malformed_json", "ok"];
    let mut switched = 0;
    let control = format!("{}/control", fake.url);
    while Instant::now() < end {
        let mode = modes[switched % modes.len()];
        match ctx.api.post(&control, &json!({"mode": mode})).await {
            Ok((200, _)) => switched += 1,
            other => report.broke("fake_llm_control", &format!("{other:?}")),
        }
        tokio::time::sleep(spell.min(end.saturating_duration_since(Instant::now()))).await;
    }
    let _ = ctx.api.post(&control, &json!({"mode": "ok"})).await;
    let window = [(start, Instant::now())];
    stop_bots(&world, &mut report).await;
    let requests = ctx.api.get(&control).await.ok().and_then(|(_, v)| v["requests"].as_u64()).unwrap_or(0);
    let breaker = ctx.api.get(&format!("{}/health/circuit-breakers/llm", server.url)).await.ok();
    let transitions = breaker.as_ref().and_then(|(_, v)| v["transitions"].as_u64()).unwrap_or(0);
    {
        let t = world.tally.borrow();
        report.field("mode_switches", switched);
        report.field("llm_requests", requests);
        report.field("llm_breaker_transitions", transitions);
        report.field("chats", format!("sent:{},echoed:{}", t.chats_sent, t.chats_echoed));
        report.field("ai_lines", format!("llm:{},canned:{}", t.ai_llm_lines, t.ai_canned_lines));
        report.check(t.chats_sent == t.chats_echoed, "chat_answered", "a chat line was not echoed to the table");
    }
    let mut waitlist = report::final_waitlist(&world, Duration::ZERO).await;
    report::check_started(&mut report, &world, &server, &mut waitlist, &ctx.dir).await;
    report.bots(&world, &waitlist);
    report.latency(&world.tally.borrow(), &window);
    process_figures(&mut report, &ctx.api, &mut server, rss_start).await;
    report
}
