//! A scenario's verdict: the promises checked after a run (errors in games never faulted,
//! boards restored, the waitlist exactly-once and in order, the process alive, and each
//! scenario's own), the figures, and the one summary line
//! `chaos NAME PASS|FAIL|SKIP key=value …` that a scenario prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::bots::{Tally, World};
use crate::procs::Server;

/// The verdict and figures of one scenario.
pub struct Report {
    name: &'static str,
    started: Instant,
    fields: Vec<(String, String)>,
    broken: Vec<String>,
    skipped: Option<String>,
}

impl Report {
    /// An empty report for scenario `name`.
    pub fn new(name: &'static str) -> Report {
        Report { name, started: Instant::now(), fields: Vec::new(), broken: Vec::new(), skipped: None }
    }

    /// The scenario's name.
    pub fn scenario(&self) -> &'static str {
        self.name
    }

    /// Adds a figure.
    pub fn field(&mut self, key: &str, value: impl std::fmt::Display) {
        self.fields.push((key.to_owned(), value.to_string()));
    }

    /// Files a broken promise (short name for the summary; details go to stderr).
    pub fn broke(&mut self, promise: &str, detail: &str) {
        eprintln!("chaos: {}: BROKEN {promise}: {detail}", self.name);
        if !self.broken.iter().any(|b| b == promise) {
            self.broken.push(promise.to_owned());
        }
    }

    /// Checks a promise.
    pub fn check(&mut self, ok: bool, promise: &str, detail: &str) {
        if !ok {
            self.broke(promise, detail);
        }
    }

    /// The scenario could not run here (and says why).
    pub fn skip(&mut self, why: &str) {
        self.skipped = Some(why.to_owned());
    }

    /// Whether the scenario was skipped.
    pub fn skipped(&self) -> bool {
        self.skipped.is_some()
    }

    /// A figure filed under `key`, if any.
    pub fn figure(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether a promise broke (a skip counts as a failure unless skips are allowed).
    pub fn failed(&self, allow_skip: bool) -> bool {
        !self.broken.is_empty() || (self.skipped.is_some() && !allow_skip)
    }

    /// The summary line.
    pub fn line(&self, allow_skip: bool) -> String {
        let mut out = format!("chaos {} ", self.name);
        match (&self.skipped, self.broken.is_empty()) {
            (Some(why), _) if allow_skip => {
                let _ = write!(out, "SKIP reason=\"{why}\"");
            }
            (Some(why), _) => {
                let _ = write!(out, "FAIL reason=\"cannot run here: {why}\" (pass --allow-skip to skip)");
            }
            (None, true) => out.push_str("PASS"),
            (None, false) => {
                let _ = write!(out, "FAIL broken={}", self.broken.join(","));
            }
        }
        let _ = write!(out, " secs={:.0}", self.started.elapsed().as_secs_f64());
        for (k, v) in &self.fields {
            let _ = write!(out, " {k}={v}");
        }
        out
    }

    /// The figures every scenario shares, and their promises: games and moves, errors in
    /// games never faulted, restores, rollbacks, other broken promises the bots filed, and
    /// the waitlist (after [`final_waitlist`]).
    pub fn bots(&mut self, world: &World, waitlist: &Waitlist) {
        let t = world.tally.borrow();
        self.field("games", t.games);
        self.field("moves", t.moves);
        if !t.faults.is_empty() {
            self.field("faults", join_map(&t.faults));
            let injected: u64 = t.faults.iter().filter(|(k, _)| **k != "policy_probe").map(|(_, v)| v).sum();
            self.field("restored_identical", format!("{}/{injected}", t.restored_identical));
            self.field("closed_per_policy", t.closed_per_policy);
        }
        let unfaulted: u64 = t.errors_unfaulted.values().sum();
        self.field("errors_unfaulted", format!("{unfaulted}{}", breakdown(&t.errors_unfaulted)));
        let faulted: u64 = t.errors_faulted.values().sum();
        self.field("errors_in_faults", format!("{faulted}{}", breakdown(&t.errors_faulted)));
        if t.rejoins > 0 || t.takeovers_seen > 0 || t.rolled_back_in_flight > 0 {
            self.field("rejoins", t.rejoins);
            self.field("takeovers_seen", t.takeovers_seen);
            self.field("rolled_back_in_flight", t.rolled_back_in_flight);
        }
        self.check(unfaulted == 0, "errors_unfaulted", &format!("{unfaulted} errors in games no fault touched"));
        if !t.broken.is_empty() {
            let boards = t.broken.iter().filter(|b| b.starts_with("game ")).count();
            let line = t.broken.iter().filter(|b| b.starts_with("waitlist")).count();
            if boards > 0 {
                self.broke("games", &format!("{boards} game promises broken (see the lines above)"));
            }
            if line > 0 {
                self.broke("waitlist", &format!("{line} waitlist promises broken"));
            }
        }
        self.field(
            "waitlist",
            format!(
                "issued:{},admitted:{},waiting:{},lost:{},dup:{},order:{}",
                waitlist.issued,
                waitlist.admitted,
                waitlist.waiting,
                waitlist.lost,
                waitlist.duplicated,
                waitlist.out_of_order
            ),
        );
        self.check(waitlist.lost == 0, "waitlist_lost", &format!("{} tickets lost", waitlist.lost));
        self.check(
            waitlist.duplicated == 0,
            "waitlist_duplicated",
            &format!("{} tickets admitted twice", waitlist.duplicated),
        );
        self.check(
            waitlist.out_of_order == 0,
            "waitlist_order",
            &format!("{} tickets admitted out of order", waitlist.out_of_order),
        );
    }

    /// `p99_ms=mover:…,opponent:…` over the samples inside `windows`, and the baseline (the
    /// samples before the first window).
    pub fn latency(&mut self, tally: &Tally, windows: &[(Instant, Instant)]) {
        let inside = |at: Instant| windows.iter().any(|(a, b)| at >= *a && at <= *b);
        let first = windows.first().map(|w| w.0);
        let (mut m, mut o, mut bm, mut bo) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for s in &tally.samples {
            if inside(s.at) {
                m.push(s.mover_ms);
                o.extend(s.opponent_ms);
            } else if first.is_some_and(|f| s.at < f) {
                bm.push(s.mover_ms);
                bo.extend(s.opponent_ms);
            }
        }
        self.field("p99_ms_during_fault", format!("mover:{},opponent:{}", p(&mut m, 0.99), p(&mut o, 0.99)));
        self.field("max_ms_during_fault", format!("mover:{},opponent:{}", p(&mut m, 1.0), p(&mut o, 1.0)));
        self.field("p99_ms_baseline", format!("mover:{},opponent:{}", p(&mut bm, 0.99), p(&mut bo, 0.99)));
    }
}

fn p(samples: &mut [f64], q: f64) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    samples.sort_by(f64::total_cmp);
    format!("{:.1}", samples[((samples.len() - 1) as f64 * q).round() as usize])
}

fn join_map<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
    m.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
}

fn breakdown(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!("({})", join_map(m))
    }
}

/// The waitlist's figures at the end.
#[derive(Default)]
pub struct Waitlist {
    /// Tickets issued.
    pub issued: usize,
    /// Admitted exactly once.
    pub admitted: usize,
    /// Still waiting (or being created) at the end.
    pub waiting: usize,
    /// Lost: TICKET_NOT_FOUND while followed, or at the end.
    pub lost: usize,
    /// Admitted twice: two tickets one game, a ticket whose grant changed, or more games
    /// started than grants handed out.
    pub duplicated: usize,
    /// Admitted after a ticket issued later, by more than the tolerance.
    pub out_of_order: usize,
}

/// Looks at every ticket once more after the bots stopped: still waiting, admitted (the
/// same grant as before), or lost; then checks the admission order by each admitted game's
/// `created_at` (`tolerance`: how far an earlier ticket may trail a later one, 0 on one
/// instance).
pub async fn final_waitlist(world: &Rc<World>, tolerance: Duration) -> Waitlist {
    let mut w = Waitlist { issued: world.tickets.borrow().len(), ..Waitlist::default() };
    let count = w.issued;
    let mut created: Vec<(usize, i64)> = Vec::new();
    for index in 0..count {
        let (ticket, known, lost, age) = {
            let t = &world.tickets.borrow()[index];
            (t.ticket.clone(), t.game_id.clone(), t.lost, t.issued.elapsed())
        };
        if lost {
            w.lost += 1;
            continue;
        }
        let status = ask(world, &format!("/api/v1/waitlist/{ticket}")).await;
        let game_id = match (&known, status) {
            (Some(known), Some((200, v))) if v["status"] == "admitted" => {
                if v["game_id"].as_str() != Some(known) {
                    w.duplicated += 1;
                    world.broken(format!(
                        "waitlist: ticket #{index} was admitted to {known}, now says {}",
                        v["game_id"]
                    ));
                }
                Some(known.clone())
            }
            (Some(known), _) => Some(known.clone()), // its grant may have expired (ticket_ttl_secs)
            (None, Some((200, v))) if v["status"] == "admitted" => v["game_id"].as_str().map(str::to_owned),
            (None, Some((200, _))) => {
                w.waiting += 1;
                None
            }
            (None, Some((404, _))) => {
                let ttl_passed = age > Duration::from_secs(110);
                w.lost += 1;
                world.broken(format!(
                    "waitlist: ticket #{index} answered TICKET_NOT_FOUND at the end{}",
                    if ttl_passed { " (it was followed until the bots stopped)" } else { "" }
                ));
                None
            }
            (None, other) => {
                // The store did not answer: count it as waiting, and say so.
                world.detail("waitlist", &format!("ticket #{index} unreadable at the end: {other:?}"));
                w.waiting += 1;
                None
            }
        };
        if let Some(id) = game_id {
            w.admitted += 1;
            if let Some(ms) = created_at_ms(world, &id).await {
                created.push((index, ms));
            } else {
                world.detail("waitlist", &format!("no created_at for ticket #{index}'s game {id}"));
            }
        }
    }
    let tolerance_ms = tolerance.as_millis() as i64;
    let mut latest: Option<(usize, i64)> = None;
    for (index, ms) in created {
        if let Some((before, latest_ms)) = latest {
            if ms + tolerance_ms < latest_ms {
                w.out_of_order += 1;
                world.detail(
                    "waitlist order",
                    &format!(
                        "ticket #{index} was admitted {} ms before ticket #{before}, issued earlier",
                        latest_ms - ms
                    ),
                );
            }
        }
        if latest.is_none_or(|(_, l)| ms > l) {
            latest = Some((index, ms));
        }
    }
    w
}

/// GET on any instance that answers.
async fn ask(world: &World, path: &str) -> Option<(u16, serde_json::Value)> {
    for _ in 0..3 {
        for (i, base) in world.urls.iter().enumerate() {
            if !world.up.borrow()[i] {
                continue;
            }
            if let Ok((status, v)) = world.api.get(&format!("{base}{path}")).await {
                if status != 503 {
                    return Some((status, v));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

/// A game's `created_at` in ms (from its summary; the lobby may lag a little).
async fn created_at_ms(world: &World, game_id: &str) -> Option<i64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some((200, v)) = ask(world, &format!("/api/v1/games/{game_id}")).await {
            if let Some(ms) = v["created_at"].as_str().and_then(rfc3339_ms) {
                return Some(ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// `2026-12-02T04:33:09.391Z` in ms since the epoch.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<i64>().ok());
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = num(20..23).unwrap_or(0);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

/// `rampart_games_started_total` summed over its kinds, from `/metrics`.
pub async fn games_started(world: &World, base: &str) -> Option<u64> {
    let (_, text) = world.api.get_text(&format!("{base}/metrics")).await.ok()?;
    let total = text
        .lines()
        .filter(|l| l.starts_with("rampart_games_started_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    Some(total as u64)
}

/// On one instance that never restarted: every game it started was handed to a player
/// (a game started for a ticket that already had one is a duplicate admission). Its own
/// takeovers (`took the game over` in its log) count as starts too and are taken off.
pub async fn check_started(report: &mut Report, world: &World, server: &Server, waitlist: &mut Waitlist, dir: &Path) {
    let grants = world.tally.borrow().grants;
    // Every game id handed out, one a line, to compare with the server log's `game started`.
    let _ = std::fs::write(dir.join("grants.txt"), world.tally.borrow().grant_ids.join("\n") + "\n");
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let takeovers = log.matches("took the game over from its last snapshot").count() as u64;
    match games_started(world, &server.url).await {
        Some(started) => {
            report.field("games_started_vs_grants", format!("{started}/{grants}"));
            if takeovers > 0 {
                report.field("self_takeovers", takeovers);
            }
            let fresh = started.saturating_sub(takeovers);
            // A ticket being created right now may have its game and no grant yet.
            if fresh > grants + waitlist.waiting.min(2) as u64 {
                waitlist.duplicated += (fresh - grants) as usize;
                report.broke(
                    "waitlist_duplicated",
                    &format!("the server started {fresh} new games but handed out {grants} seats"),
                );
            }
        }
        None => report.field("games_started_vs_grants", "unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_read_to_the_millisecond() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(rfc3339_ms("2000-03-01T00:00:01.250Z"), Some(951_868_801_250));
    }
}
