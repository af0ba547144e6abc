//! The players: one task per bot plays game after game over real WebSockets, random legal
//! moves for both seats of a two-human game (or the red seat against the AI), and checks
//! every board it is shown against the history of the boards it saw before, so a restored,
//! moved or taken-over game must come back with the same board (or, after a kill -9, lose
//! at most the moves in flight at the kill). Games are created one at a time through the
//! [`World`]'s creation lock, so the order of waitlist tickets is the order they were
//! issued; a waitlisted bot follows its ticket until it is admitted. A bot takes orders
//! (inject a fault into its own game at rest, probe the restart limit, chat, release its
//! game) from the scenario that drives it, and files everything it sees in the
//! [`Tally`]: moves and both seats' latencies, and every error, split by whether it
//! happened inside a fault of its own game or not.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::net::{self, Api, Ev, Ws};

/// How long a move may take to reach both seats before the bot looks for them elsewhere.
const MOVE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a seat may take to rejoin (a takeover waits for the dead owner's lease).
const REJOIN_WITHIN: Duration = Duration::from_secs(30);
/// How long an injected fault may take to show its restart.
const RESTORE_WITHIN: Duration = Duration::from_secs(20);
/// Moves whose state arrived this close before a kill -9 may be lost (write-behind).
const IN_FLIGHT: Duration = Duration::from_millis(300);
/// At most this many detailed lines of each kind are printed.
const DETAIL_LINES: usize = 25;

/// The fault a bot injects into its own game while it is at rest.
#[derive(Clone, Copy, Debug)]
pub enum FaultKind {
    /// `{"kind":"panic"}`.
    Panic,
    /// `{"kind":"panic_on_next_command"}`: the next move crashes the game.
    PanicNext,
    /// `{"kind":"hang","duration_ms":…}`.
    Hang(u64),
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::Panic => "panic",
            FaultKind::PanicNext => "panic_next",
            FaultKind::Hang(_) => "hang",
        }
    }
    fn body(self) -> Value {
        match self {
            FaultKind::Panic => json!({"kind": "panic"}),
            FaultKind::PanicNext => json!({"kind": "panic_on_next_command"}),
            FaultKind::Hang(ms) => json!({"kind": "hang", "duration_ms": ms}),
        }
    }
}

/// What a scenario tells a bot.
#[derive(Debug)]
pub enum Order {
    /// Inject this fault into the current game, at rest, and check the restore.
    Fault(FaultKind),
    /// Crash the game until its restart limit closes it (at most this many panics).
    PolicyProbe(u32),
    /// Resign and leave (an idle bot's game is over).
    Release,
}

/// What a bot plays.
#[derive(Clone)]
pub struct Spec {
    /// Against the AI (one seat) or two humans (both seats are this bot).
    pub vs_ai: bool,
    /// The instance red creates and connects on (index into the world's urls).
    pub red_url: usize,
    /// The instance yellow joins and connects on.
    pub yellow_url: usize,
    /// The pause between moves.
    pub pace: Duration,
    /// Chat every this many own moves (0: never).
    pub chat_every: u32,
    /// Joins and then sits (answering pings) until released: memory filler.
    pub idle: bool,
    /// Games to play before the bot stops (0: until the scenario stops).
    pub max_games: u32,
}

/// A latency sample: both seats of one move.
pub struct Sample {
    /// When the move was sent.
    pub at: Instant,
    /// Until the mover saw its state.
    pub mover_ms: f64,
    /// Until the opponent saw it (two-human games).
    pub opponent_ms: Option<f64>,
}

/// One waitlist ticket as issued.
pub struct TicketRec {
    /// The ticket.
    pub ticket: String,
    /// When it was issued.
    pub issued: Instant,
    /// The admitted game, once seen.
    pub game_id: Option<String>,
    /// The server answered TICKET_NOT_FOUND while it was being followed.
    pub lost: bool,
}

/// Everything the bots saw.
#[derive(Default)]
pub struct Tally {
    /// Distinct games that reached play.
    pub games: u64,
    /// Games that ended (won, drawn, resigned, closed).
    pub games_finished: u64,
    /// Moves applied (own moves; the AI's are not counted).
    pub moves: u64,
    /// Latency samples.
    pub samples: Vec<Sample>,
    /// Errors outside any fault of their own game, by kind.
    pub errors_unfaulted: BTreeMap<String, u64>,
    /// Errors inside a fault of their own game, by kind.
    pub errors_faulted: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Restarts whose restored board was the one before the fault.
    pub restored_identical: u64,
    /// Games closed by the restart limit after faults (per policy).
    pub closed_per_policy: u64,
    /// Moves lost by a kill -9 while in flight (allowed by the contract).
    pub rolled_back_in_flight: u64,
    /// Seats that rejoined a game after their socket broke.
    pub rejoins: u64,
    /// `game_restarted` with `reason: taken_over` seen.
    pub takeovers_seen: u64,
    /// Every game id handed out (201 or admitted), to find one handed out twice.
    pub grant_ids: Vec<String>,
    /// Broken promises, one line each (what, which game).
    pub broken: Vec<String>,
    /// Creation answers retried (SERVER_BUSY without a ticket, DRAINING, no answer).
    pub create_retries: u64,
    /// REST joins answered GAME_RESTARTING and retried.
    pub join_retries: u64,
    /// Chat lines sent and echoed to the table.
    pub chats_sent: u64,
    /// Chats echoed.
    pub chats_echoed: u64,
    /// The AI's lines that came from the LLM.
    pub ai_llm_lines: u64,
    /// The AI's canned lines.
    pub ai_canned_lines: u64,
    /// Direct grants (201) and admitted tickets.
    pub grants: u64,
}

/// One bot as the scenario sees it.
pub struct Handle {
    /// The bot's number.
    pub bot: usize,
    /// Its game now.
    pub game: RefCell<Option<String>>,
    /// Its game is in play and the bot takes orders.
    pub playing: Cell<bool>,
    /// A fault of its own is being handled.
    pub in_own_fault: Cell<bool>,
    /// Errors before this instant belong to a fault that touched the game (an instance
    /// killed or paused under it).
    pub touched_until: Cell<Option<Instant>>,
    /// The instances its seats are on now.
    pub seat_urls: RefCell<Vec<usize>>,
    /// Against the AI.
    pub vs_ai: bool,
    orders: mpsc::UnboundedSender<Order>,
}

impl Handle {
    /// Sends an order (ignored once the bot is gone).
    pub fn order(&self, order: Order) {
        let _ = self.orders.send(order);
    }
    fn faulted(&self, now: Instant) -> bool {
        self.in_own_fault.get() || self.touched_until.get().is_some_and(|t| now < t)
    }
}

/// Shared by every bot of a scenario (one thread: `Rc` and `RefCell`).
pub struct World {
    /// HTTP and sockets.
    pub api: Api,
    /// The instances' base URLs.
    pub urls: Vec<String>,
    /// Instances believed up (for choosing where to reconnect).
    pub up: RefCell<Vec<bool>>,
    /// What the bots saw.
    pub tally: RefCell<Tally>,
    /// Every ticket issued, in issue order.
    pub tickets: RefCell<Vec<TicketRec>>,
    /// The bots.
    pub handles: RefCell<Vec<Rc<Handle>>>,
    /// Set when the scenario ends: bots finish their move and stop.
    pub stopping: Cell<bool>,
    /// The last kill -9 of an instance (moves seen just before it may be lost).
    pub killed_at: Cell<Option<Instant>>,
    /// Creation is one request at a time, so ticket order is issue order.
    create_lock: tokio::sync::Mutex<()>,
    created: Cell<u64>,
    running: Cell<usize>,
    printed: RefCell<HashMap<&'static str, usize>>,
}

impl World {
    /// A world over these instances.
    pub fn new(api: Api, urls: Vec<String>) -> Rc<World> {
        let n = urls.len();
        Rc::new(World {
            api,
            urls,
            up: RefCell::new(vec![true; n]),
            tally: RefCell::default(),
            tickets: RefCell::default(),
            handles: RefCell::default(),
            stopping: Cell::new(false),
            killed_at: Cell::new(None),
            create_lock: tokio::sync::Mutex::new(()),
            created: Cell::new(0),
            running: Cell::new(0),
            printed: RefCell::default(),
        })
    }

    /// Starts a bot; answers its handle.
    pub fn spawn(self: &Rc<Self>, spec: Spec, seed: u64) -> Rc<Handle> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = Rc::new(Handle {
            bot: self.handles.borrow().len(),
            game: RefCell::new(None),
            playing: Cell::new(false),
            in_own_fault: Cell::new(false),
            touched_until: Cell::new(None),
            seat_urls: RefCell::new(vec![spec.red_url, spec.yellow_url]),
            vs_ai: spec.vs_ai,
            orders: tx,
        });
        self.handles.borrow_mut().push(handle.clone());
        self.running.set(self.running.get() + 1);
        let (world, h) = (self.clone(), handle.clone());
        actix_rt::spawn(async move {
            run_bot(&world, &h, spec, rx, seed).await;
            h.playing.set(false);
            world.running.set(world.running.get() - 1);
        });
        handle
    }

    /// Bots still running.
    pub fn running(&self) -> usize {
        self.running.get()
    }

    /// Bots whose game is in play.
    pub fn playing(&self) -> usize {
        self.handles.borrow().iter().filter(|h| h.playing.get()).count()
    }

    /// Prints one detail line to stderr (at most [`DETAIL_LINES`] of each kind).
    pub fn detail(&self, kind: &'static str, line: &str) {
        let mut printed = self.printed.borrow_mut();
        let n = printed.entry(kind).or_default();
        *n += 1;
        if *n <= DETAIL_LINES {
            eprintln!("chaos: {kind}: {line}");
        } else if *n == DETAIL_LINES + 1 {
            eprintln!("chaos: {kind}: (more not shown)");
        }
    }

    /// Files a broken promise.
    pub fn broken(&self, line: String) {
        self.detail("BROKEN", &line);
        self.tally.borrow_mut().broken.push(line);
    }

    fn error(&self, handle: &Handle, game: &str, kind: &str, context: &str) {
        let now = Instant::now();
        let mut t = self.tally.borrow_mut();
        if handle.faulted(now) {
            *t.errors_faulted.entry(kind.to_owned()).or_default() += 1;
        } else {
            *t.errors_unfaulted.entry(kind.to_owned()).or_default() += 1;
            drop(t);
            self.detail("error in a game not faulted", &format!("game {game} (bot {}): {kind} {context}", handle.bot));
        }
    }

    fn granted(&self, grant: &Value) {
        let id = grant["game_id"].as_str().unwrap_or_default().to_owned();
        let mut t = self.tally.borrow_mut();
        t.grants += 1;
        if t.grant_ids.contains(&id) {
            drop(t);
            self.broken(format!("waitlist: game {id} was handed out twice"));
            self.tally.borrow_mut().grant_ids.push(id);
        } else {
            t.grant_ids.push(id);
        }
    }

    /// The next instance after `from` believed up (or simply the next one).
    fn next_url(&self, from: usize) -> usize {
        let n = self.urls.len();
        let up = self.up.borrow();
        (1..=n).map(|i| (from + i) % n).find(|&i| up[i]).unwrap_or((from + 1) % n)
    }

    /// A new game's red seat: created at once (201) or through the waitlist (the ticket is
    /// followed until admitted). None when the scenario stops first.
    async fn obtain(&self, url: &mut usize, vs_ai: bool) -> Option<Value> {
        let opponent = if vs_ai { "ai" } else { "human" };
        while !self.stopping.get() {
            let lock = self.create_lock.lock().await;
            if self.stopping.get() {
                return None;
            }
            let n = self.created.get();
            self.created.set(n + 1);
            let body = json!({"kind": "connect4", "opponent": opponent, "player_name": format!("p{n}")});
            let answer = self.api.post(&format!("{}/api/v1/games", self.urls[*url]), &body).await;
            match answer {
                Ok((201, grant)) => {
                    self.granted(&grant);
                    return Some(grant);
                }
                Ok((503, body)) if body["error"]["details"]["ticket"].is_string() => {
                    let ticket = body["error"]["details"]["ticket"].as_str().unwrap_or_default().to_owned();
                    let index = {
                        let mut tickets = self.tickets.borrow_mut();
                        tickets.push(TicketRec {
                            ticket: ticket.clone(),
                            issued: Instant::now(),
                            game_id: None,
                            lost: false,
                        });
                        tickets.len() - 1
                    };
                    drop(lock);
                    return self.follow(index, url).await;
                }
                Ok((status, body)) => {
                    drop(lock);
                    self.tally.borrow_mut().create_retries += 1;
                    let code = body["error"]["code"].as_str().unwrap_or("?").to_owned();
                    if !matches!(code.as_str(), "SERVER_BUSY" | "DRAINING" | "RATE_LIMITED") {
                        self.detail("creation refused", &format!("HTTP {status} {code}"));
                    }
                    let retry = body["error"]["details"]["retry_after_ms"].as_u64().unwrap_or(1000);
                    tokio::time::sleep(Duration::from_millis(retry.clamp(200, 5000))).await;
                }
                Err(_) => {
                    drop(lock);
                    self.tally.borrow_mut().create_retries += 1;
                    *url = self.next_url(*url);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        None
    }

    /// Polls ticket `index` until admitted (its grant), lost, or the scenario stops.
    async fn follow(&self, index: usize, url: &mut usize) -> Option<Value> {
        let ticket = self.tickets.borrow()[index].ticket.clone();
        let mut wait = Duration::from_millis(500);
        while !self.stopping.get() {
            tokio::time::sleep(wait).await;
            match self.api.get(&format!("{}/api/v1/waitlist/{ticket}", self.urls[*url])).await {
                Ok((200, v)) if v["status"] == "admitted" => {
                    let game_id = v["game_id"].as_str().unwrap_or_default().to_owned();
                    let duplicate = self.tickets.borrow().iter().any(|t| t.game_id.as_deref() == Some(&game_id));
                    if duplicate {
                        self.broken(format!("waitlist: game {game_id} was granted to two tickets"));
                    }
                    self.tickets.borrow_mut()[index].game_id = Some(game_id);
                    self.granted(&v);
                    return Some(v);
                }
                Ok((200, v)) => {
                    let eta = v["eta_secs"].as_u64().unwrap_or(1);
                    wait = Duration::from_millis((eta * 500).clamp(300, 3000));
                }
                Ok((404, _)) => {
                    self.tickets.borrow_mut()[index].lost = true;
                    self.broken(format!("waitlist: ticket #{index} answered TICKET_NOT_FOUND while it was followed"));
                    return None;
                }
                Ok(_) => wait = Duration::from_secs(1),
                Err(_) => {
                    *url = self.next_url(*url);
                    wait = Duration::from_millis(300);
                }
            }
        }
        None
    }
}

type Board = Vec<Vec<u8>>;

fn board_of(game: &Value) -> Option<Board> {
    let columns = game["columns"].as_array()?;
    columns
        .iter()
        .map(|c| c.as_array().map(|c| c.iter().map(|s| u8::from(s.as_str() == Some("yellow"))).collect()))
        .collect()
}

/// `after` is `before` with `added` discs dropped on top (a plausible continuation).
fn extends(before: &Board, after: &Board, added: usize) -> bool {
    before.len() == after.len()
        && before.iter().zip(after).all(|(b, a)| a.starts_with(b))
        && after.iter().map(Vec::len).sum::<usize>() == before.iter().map(Vec::len).sum::<usize>() + added
}

/// One seat of the game.
struct SeatConn {
    token: String,
    url: usize,
    ws: Option<Ws>,
    /// Moves in the last state this seat saw.
    moves: usize,
}

/// How play goes on after a step.
enum Flow {
    /// Keep playing.
    Go,
    /// The game is over (or unplayable): start another.
    Over,
}

/// A game in play, as the bot sees it.
struct Game<'a> {
    world: &'a World,
    handle: &'a Handle,
    id: String,
    seats: Vec<SeatConn>,
    /// The board after k moves, and when it was first seen (None: skipped over).
    boards: Vec<(Option<Board>, Instant)>,
    status: String,
    turn: String,
    own_moves: u32,
    /// A fault of our own awaits its restart: (moves before it, seats that saw the restart,
    /// seats that saw the restored state).
    restore: Option<(usize, Vec<bool>, Vec<bool>)>,
    failed_seen: bool,
}

impl<'a> Game<'a> {
    fn len(&self) -> usize {
        self.boards.len() - 1
    }

    fn base(&self, seat: usize) -> &str {
        &self.world.urls[self.seats[seat].url]
    }

    fn err(&self, kind: &str, context: &str) {
        self.world.error(self.handle, &self.id, kind, context);
    }

    fn publish_urls(&self) {
        *self.handle.seat_urls.borrow_mut() = self.seats.iter().map(|s| s.url).collect();
    }

    /// Files what a state says; checks it against the history.
    fn accept(&mut self, seat: usize, game: &Value) {
        let Some(board) = board_of(game) else { return };
        let m = game["moves"].as_u64().unwrap_or(0) as usize;
        let len = self.len();
        let now = Instant::now();
        let previous = self.seats[seat].moves;
        self.seats[seat].moves = m;
        // Seats are read in turn: one may still hold frames older than what the other
        // already showed. Only a seat that goes back behind what it saw itself is a rollback.
        let stale = m < len && m >= previous;
        let rolled_back = m < previous;
        if !stale {
            self.status = game["status"].as_str().unwrap_or("").to_owned();
            self.turn = game["turn"].as_str().unwrap_or("").to_owned();
        }
        if let Some((before, seen, verified)) = self.restore.as_mut() {
            if m == *before && self.boards[m].0.as_ref() == Some(&board) {
                // Only a state after this seat's game_restarted is the restore (a game moved
                // off a lost thread re-sends its state before its fault reaches it). A seat
                // never told fails the wait for the restore (RESTORE_WITHIN).
                if seen[seat] {
                    verified[seat] = true;
                }
                if verified.iter().all(|v| *v) {
                    self.world.tally.borrow_mut().restored_identical += 1;
                    self.restore = None;
                }
            } else if game["status"] != "failed" {
                let before = *before;
                self.restore = None;
                self.world.broken(format!(
                    "game {}: restored with {m} moves {board:?}, but before the fault it had {before} moves {:?}",
                    self.id,
                    self.boards[before.min(len)].0
                ));
            }
        }
        if !stale && self.status == "failed" && !self.failed_seen {
            self.failed_seen = true;
            if self.handle.in_own_fault.get() || self.restore.is_some() {
                self.world.tally.borrow_mut().closed_per_policy += 1;
                self.restore = None;
            } else {
                self.world.broken(format!("game {}: closed as failed without a fault of its own", self.id));
            }
        }
        if !stale && self.status == "abandoned" {
            self.world.broken(format!("game {}: closed as abandoned while its players were connected", self.id));
        }
        if m <= len {
            match &self.boards[m].0 {
                Some(known) if *known == board => {
                    if rolled_back && m < len {
                        let lost_since = self.boards[m + 1].1;
                        // Only moves whose state came just before the kill may be lost.
                        let allowed =
                            self.world.killed_at.get().is_some_and(|k| lost_since + IN_FLIGHT >= k && lost_since <= k);
                        if allowed {
                            self.world.tally.borrow_mut().rolled_back_in_flight += (len - m) as u64;
                            let kill = self.world.killed_at.get().unwrap_or(now);
                            let before = kill.saturating_duration_since(lost_since).as_millis();
                            let after = lost_since.saturating_duration_since(kill).as_millis();
                            self.world.detail(
                                "lost in flight",
                                &format!(
                                    "game {}: {} move(s) seen {before} ms before / {after} ms after the kill were lost",
                                    self.id,
                                    len - m
                                ),
                            );
                        } else {
                            let kill = match self.world.killed_at.get() {
                                Some(k) if lost_since > k => {
                                    format!(", {} ms after the kill", (lost_since - k).as_millis())
                                }
                                _ => String::new(),
                            };
                            self.world.broken(format!(
                                "game {}: came back with {m} moves, {} fewer than its players had seen (the first lost one {} ms ago{kill})",
                                self.id,
                                len - m,
                                lost_since.elapsed().as_millis()
                            ));
                        }
                        self.boards.truncate(m + 1);
                        // The other seat has not seen it yet; its next state is a rollback of
                        // the same moves, not a second one.
                        for other in &mut self.seats {
                            other.moves = other.moves.min(m);
                        }
                    }
                }
                Some(known) => {
                    self.world
                        .broken(format!("game {}: board after {m} moves is {board:?}, it was {known:?}", self.id));
                    self.boards[m] = (Some(board), now);
                    self.boards.truncate(m + 1);
                }
                None => {
                    self.boards[m] = (Some(board), now);
                    if rolled_back {
                        self.boards.truncate(m + 1);
                    }
                }
            }
        } else {
            let last = self.boards[len].0.clone();
            if last.as_ref().is_some_and(|b| !extends(b, &board, m - len)) {
                self.world
                    .broken(format!("game {}: {m} moves {board:?} do not continue {len} moves {last:?}", self.id));
            }
            while self.boards.len() < m {
                self.boards.push((None, now));
            }
            self.boards.push((Some(board), now));
        }
    }

    /// The next event from any seat before `deadline` (None: the deadline passed).
    async fn next(&mut self, deadline: Instant) -> Option<(usize, Ev)> {
        let futures: Vec<_> = self
            .seats
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.ws.as_mut().map(|ws| Box::pin(async move { (i, net::next_ev(ws).await) })))
            .collect();
        if futures.is_empty() {
            tokio::time::sleep_until(deadline.into()).await;
            return None;
        }
        let any = futures_util::future::select_all(futures);
        match tokio::time::timeout_at(deadline.into(), any).await {
            Ok(((i, ev), _, _)) => Some((i, ev)),
            Err(_) => None,
        }
    }

    /// Handles an event that needs no answer from the caller; answers true when the event
    /// was a state (already accepted).
    fn on_event(&mut self, seat: usize, ev: &Ev) -> bool {
        match ev {
            Ev::State(g) => {
                self.accept(seat, g);
                true
            }
            Ev::Restarted(reason) => {
                if reason.as_deref() == Some("taken_over") {
                    self.world.tally.borrow_mut().takeovers_seen += 1;
                    if !self.handle.faulted(Instant::now()) {
                        self.err("TAKEN_OVER", "a takeover in a game no fault touched");
                    }
                } else if let Some((_, seen, _)) = self.restore.as_mut() {
                    seen[seat] = true;
                } else {
                    self.err("UNEXPECTED_RESTART", "game_restarted without a fault of its own");
                }
                false
            }
            Ev::Failed => false,
            Ev::Chat { from, text } => {
                if from == "ai" {
                    let mut t = self.world.tally.borrow_mut();
                    if text.starts_with("Fake LLM") {
                        t.ai_llm_lines += 1;
                    } else {
                        t.ai_canned_lines += 1;
                    }
                }
                false
            }
            Ev::Error { code, reply_to, message, .. } => {
                self.err(code, &format!("unsolicited (in reply to {reply_to:?}): {message}"));
                false
            }
            Ev::Closed(_) | Ev::Other => false,
        }
    }

    /// Opens seat `i` again (on its instance or the next ones) and joins; its join state is
    /// accepted (and so checked). Err when it cannot within [`REJOIN_WITHIN`].
    async fn rejoin(&mut self, i: usize, why: &str) -> Result<(), String> {
        if let Some(old) = self.seats[i].ws.take() {
            drop(old);
        }
        let deadline = Instant::now() + REJOIN_WITHIN;
        let mut last = why.to_owned();
        let mut url = self.seats[i].url;
        let mut tries = 0u32;
        while Instant::now() < deadline {
            if tries > 0 && (tries % 2 == 0 || !self.world.up.borrow()[url]) {
                url = self.world.next_url(url);
            }
            tries += 1;
            let mut ws = match self.world.api.open(&self.world.urls[url], &self.id).await {
                Ok(ws) => ws,
                Err(e) => {
                    last = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if net::join(&mut ws, &self.seats[i].token).await.is_err() {
                continue;
            }
            let join_deadline = Instant::now() + Duration::from_secs(6);
            loop {
                let ev = match tokio::time::timeout_at(join_deadline.into(), net::next_ev(&mut ws)).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        last = "no state within 6 s of the join".to_owned();
                        break;
                    }
                };
                match ev {
                    Ev::State(g) => {
                        self.seats[i].ws = Some(ws);
                        self.seats[i].url = url;
                        self.publish_urls();
                        self.accept(i, &g);
                        return Ok(());
                    }
                    Ev::Error { code, retry_ms, .. } if code == "GAME_RESTARTING" => {
                        tokio::time::sleep(Duration::from_millis(retry_ms.unwrap_or(250).clamp(50, 2000))).await;
                        if net::join(&mut ws, &self.seats[i].token).await.is_err() {
                            break;
                        }
                    }
                    Ev::Error { code, message, .. } => return Err(format!("join answered {code}: {message}")),
                    Ev::Closed(Some(code @ (4401 | 4404))) => return Err(format!("join closed with {code}")),
                    Ev::Closed(code) => {
                        last = format!("closed with {code:?} during the join");
                        break;
                    }
                    other => {
                        let _ = self.on_event(i, &other);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("could not rejoin within {REJOIN_WITHIN:?}: {last}"))
    }

    /// Rejoins seat `i` and counts it; a failure is an error and ends the game for the bot.
    async fn recover_seat(&mut self, i: usize, why: &str) -> bool {
        self.err(why, "the socket broke");
        match self.rejoin(i, why).await {
            Ok(()) => {
                self.world.tally.borrow_mut().rejoins += 1;
                true
            }
            Err(e) => {
                self.err("REJOIN_FAILED", &e);
                if !self.handle.faulted(Instant::now()) {
                    self.world.broken(format!("game {}: a seat could not rejoin: {e}", self.id));
                }
                false
            }
        }
    }

    /// Sends a frame on seat `i`, rejoining it first when the socket is gone.
    async fn send(&mut self, i: usize, frame: &Value) -> bool {
        for _ in 0..2 {
            if let Some(ws) = self.seats[i].ws.as_mut() {
                if net::send(ws, frame).await.is_ok() {
                    return true;
                }
            }
            if !self.recover_seat(i, "SEND_FAILED").await {
                return false;
            }
        }
        false
    }

    /// Plays one own move (the mover is the seat whose turn it is) and waits until every
    /// seat has seen it; on an AI game then waits for the AI's answer too.
    async fn own_move(&mut self, rng: &mut fastrand::Rng) -> Flow {
        let len = self.len();
        let Some(board) = self.boards[len].0.clone() else { return Flow::Over };
        let open: Vec<usize> = (0..board.len()).filter(|&c| board[c].len() < 6).collect();
        if open.is_empty() {
            return Flow::Over;
        }
        let column = open[rng.usize(..open.len())];
        let mover = if self.seats.len() == 1 || self.turn == "red" { 0 } else { 1 };
        let frame = json!({"type": "move", "column": column});
        let sent = Instant::now();
        if !self.send(mover, &frame).await {
            return Flow::Over;
        }
        let mut seen: Vec<Option<f64>> = vec![None; self.seats.len()];
        let mut deadline = sent + MOVE_TIMEOUT;
        let mut resend = false;
        while seen.iter().any(Option::is_none) {
            if self.world.stopping.get() && Instant::now() > sent + Duration::from_secs(20) {
                return Flow::Over;
            }
            let Some((i, ev)) = self.next(deadline).await else {
                // Nothing within the deadline: look for the game where it lives now.
                let missing: Vec<usize> = (0..seen.len()).filter(|&s| seen[s].is_none()).collect();
                for s in missing {
                    if !self.recover_seat(s, "TIMEOUT").await {
                        return Flow::Over;
                    }
                }
                resend = true;
                deadline = Instant::now() + MOVE_TIMEOUT;
                self.check_progress(&mut seen, len, sent, &mut resend, mover, &frame).await;
                continue;
            };
            match ev {
                Ev::Error { code, reply_to, retry_ms, message }
                    if i == mover && reply_to.as_deref() == Some("move") =>
                {
                    match code.as_str() {
                        "GAME_RESTARTING" => {
                            self.err(&code, &message);
                            tokio::time::sleep(Duration::from_millis(retry_ms.unwrap_or(250).clamp(20, 3000))).await;
                            if !self.send(mover, &frame).await {
                                return Flow::Over;
                            }
                            deadline = Instant::now() + MOVE_TIMEOUT;
                        }
                        // The game crashed on the move (ours, or an armed fault): it restores and
                        // says so; the move was not applied and goes again after the state.
                        "INTERNAL" => {
                            self.err(&code, &message);
                            resend = true;
                            deadline = Instant::now() + MOVE_TIMEOUT;
                        }
                        "GAME_OVER" | "GAME_FAILED" => {
                            if self.status == "playing" && !self.failed_seen {
                                self.err(&code, &message);
                            }
                            return Flow::Over;
                        }
                        _ => {
                            self.err(&code, &message);
                            return Flow::Go; // resynchronised by the next state
                        }
                    }
                }
                Ev::Closed(code) => {
                    let why = format!("CLOSED_{}", code.map_or("NONE".to_owned(), |c| c.to_string()));
                    if !self.recover_seat(i, &why).await {
                        return Flow::Over;
                    }
                    if i == mover {
                        resend = true;
                    }
                    self.check_progress(&mut seen, len, sent, &mut resend, mover, &frame).await;
                }
                ev => {
                    if self.on_event(i, &ev) {
                        self.check_progress(&mut seen, len, sent, &mut resend, mover, &frame).await;
                    } else if matches!(ev, Ev::Restarted(_)) && i == mover {
                        resend = true;
                    }
                }
            }
            if self.status != "playing" && self.len() <= len {
                return Flow::Over;
            }
            if self.len() < len {
                return Flow::Go; // rolled back (already judged): plan the next move afresh
            }
        }
        {
            let mut t = self.world.tally.borrow_mut();
            t.moves += 1;
            let opponent = if self.seats.len() == 2 { seen[1 - mover] } else { None };
            t.samples.push(Sample { at: sent, mover_ms: seen[mover].unwrap_or(0.0), opponent_ms: opponent });
        }
        self.own_moves += 1;
        if self.seats.len() == 1 && self.status == "playing" && self.turn == "yellow" {
            return self.await_ai(len + 2).await;
        }
        Flow::Go
    }

    /// After an event: which seats now see the move; resends it when a seat's latest state
    /// shows it was not applied after a disturbance.
    async fn check_progress(
        &mut self,
        seen: &mut [Option<f64>],
        len: usize,
        sent: Instant,
        resend: &mut bool,
        mover: usize,
        frame: &Value,
    ) {
        let now_len = self.len();
        for (s, seat) in seen.iter_mut().zip(&self.seats) {
            if s.is_none() && seat.moves > len {
                *s = Some(sent.elapsed().as_secs_f64() * 1000.0);
            }
        }
        if now_len > len {
            return; // applied: the other seat's state is still awaited (or the deadline)
        }
        if *resend && now_len == len && self.status == "playing" && self.restore.is_none() {
            *resend = false;
            let _ = self.send(mover, frame).await;
        }
    }

    /// Waits for the AI's move (a state with `target` moves).
    async fn await_ai(&mut self, target: usize) -> Flow {
        let mut deadline = Instant::now() + Duration::from_secs(15);
        while self.len() < target && self.status == "playing" {
            match self.next(deadline).await {
                None => {
                    if !self.recover_seat(0, "AI_TIMEOUT").await {
                        return Flow::Over;
                    }
                    deadline = Instant::now() + Duration::from_secs(15);
                }
                Some((i, Ev::Closed(code))) => {
                    let why = format!("CLOSED_{}", code.map_or("NONE".to_owned(), |c| c.to_string()));
                    if !self.recover_seat(i, &why).await {
                        return Flow::Over;
                    }
                }
                Some((i, ev)) => {
                    let _ = self.on_event(i, &ev);
                }
            }
            if self.turn == "red" {
                break; // restored to a board where it is our move again
            }
        }
        Flow::Go
    }

    /// Reads what comes while at rest, until `until` or an order.
    async fn rest(&mut self, until: Instant, orders: &mut mpsc::UnboundedReceiver<Order>) -> Option<Order> {
        loop {
            if self.world.stopping.get() {
                return None;
            }
            tokio::select! {
                order = orders.recv() => return order,
                event = self.next(until) => match event {
                    None => return None,
                    Some((i, Ev::Closed(code))) => {
                        let why = format!("CLOSED_{}", code.map_or("NONE".to_owned(), |c| c.to_string()));
                        if !self.recover_seat(i, &why).await {
                            self.status = "unplayable".to_owned();
                            return None;
                        }
                    }
                    Some((i, ev)) => {
                        let _ = self.on_event(i, &ev);
                    }
                },
            }
        }
    }

    /// Injects `kind` into this game (at rest) and checks its restore.
    async fn fault(&mut self, kind: FaultKind, rng: &mut fastrand::Rng) -> Flow {
        self.handle.in_own_fault.set(true);
        let flow = self.fault_inner(kind, rng).await;
        self.handle.in_own_fault.set(false);
        flow
    }

    async fn fault_inner(&mut self, kind: FaultKind, rng: &mut fastrand::Rng) -> Flow {
        let url = format!("{}/api/v1/admin/games/{}/fault", self.base(0), self.id);
        let mut accepted = false;
        for _ in 0..5 {
            match self.world.api.admin_post(&url, &kind.body()).await {
                Ok((202, _)) => {
                    accepted = true;
                    break;
                }
                Ok((410, _)) => return Flow::Over,
                Ok((503, b)) => {
                    let retry = b["error"]["details"]["retry_after_ms"].as_u64().unwrap_or(250);
                    tokio::time::sleep(Duration::from_millis(retry.clamp(50, 2000))).await;
                }
                Ok((status, b)) => {
                    self.world.broken(format!("game {}: the admin fault answered HTTP {status} {b}", self.id));
                    return Flow::Go;
                }
                Err(e) => {
                    self.err("ADMIN_UNREACHABLE", &e);
                    return Flow::Go;
                }
            }
        }
        if !accepted {
            return Flow::Go;
        }
        *self.world.tally.borrow_mut().faults.entry(kind.name()).or_default() += 1;
        self.restore = Some((self.len(), vec![false; self.seats.len()], vec![false; self.seats.len()]));
        if let FaultKind::PanicNext = kind {
            // The next command crashes the game: play it (INTERNAL, restart, the same board,
            // then the move again).
            if let Flow::Over = self.own_move(rng).await {
                return Flow::Over;
            }
        }
        let deadline = Instant::now() + RESTORE_WITHIN;
        while self.restore.is_some() && self.status != "failed" {
            match self.next(deadline).await {
                None => {
                    self.world.broken(format!(
                        "game {}: no restart within {RESTORE_WITHIN:?} of an injected {}",
                        self.id,
                        kind.name()
                    ));
                    self.restore = None;
                    return Flow::Over;
                }
                Some((i, Ev::Closed(code))) => {
                    let why = format!("CLOSED_{}", code.map_or("NONE".to_owned(), |c| c.to_string()));
                    if !self.recover_seat(i, &why).await {
                        return Flow::Over;
                    }
                }
                Some((i, ev)) => {
                    let _ = self.on_event(i, &ev);
                }
            }
        }
        if self.status == "playing" {
            Flow::Go
        } else {
            Flow::Over
        }
    }

    /// Crashes the game until its restart limit closes it.
    async fn policy_probe(&mut self, most: u32, rng: &mut fastrand::Rng) -> Flow {
        *self.world.tally.borrow_mut().faults.entry("policy_probe").or_default() += 1;
        for _ in 0..most {
            if let Flow::Over = self.fault(FaultKind::Panic, rng).await {
                break;
            }
        }
        if !self.failed_seen {
            self.world
                .broken(format!("game {}: {most} panics in a row did not close it per its restart policy", self.id));
        }
        Flow::Over
    }

    /// Chats once (AI games) and waits for the echo to the table.
    async fn chat(&mut self) {
        if !self.send(0, &json!({"type": "chat", "text": format!("move {} - your turn!", self.len())})).await {
            return;
        }
        self.world.tally.borrow_mut().chats_sent += 1;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.next(deadline).await {
                None => {
                    self.err("CHAT_UNANSWERED", "no echo of a chat line within 5 s");
                    return;
                }
                Some((_, Ev::Chat { from, .. })) if from == "red" => {
                    self.world.tally.borrow_mut().chats_echoed += 1;
                    return;
                }
                Some((_, Ev::Error { code, message, reply_to, .. })) if reply_to.as_deref() == Some("chat") => {
                    self.err(&code, &format!("chat: {message}"));
                    return;
                }
                Some((i, Ev::Closed(code))) => {
                    let why = format!("CLOSED_{}", code.map_or("NONE".to_owned(), |c| c.to_string()));
                    let _ = self.recover_seat(i, &why).await;
                    return;
                }
                Some((i, ev)) => {
                    let _ = self.on_event(i, &ev);
                }
            }
        }
    }

    /// At the end: the game as REST shows it must have the moves its players saw.
    async fn verify_rest(&mut self) {
        let len = self.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let base = self.world.urls[self.world.next_url(self.seats[0].url + self.world.urls.len() - 1)].clone();
            if let Ok((200, summary)) = self.world.api.get(&format!("{base}/api/v1/games/{}", self.id)).await {
                if summary["moves"].as_u64() == Some(len) {
                    return;
                }
                last = summary;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.world.broken(format!(
            "game {}: its players saw {len} moves, REST says {} (status {})",
            self.id, last["moves"], last["status"]
        ));
    }

    async fn close(mut self) {
        for seat in &mut self.seats {
            if let Some(ws) = seat.ws.take() {
                net::close(ws).await;
            }
        }
    }
}

async fn run_bot(
    world: &Rc<World>,
    handle: &Rc<Handle>,
    spec: Spec,
    mut orders: mpsc::UnboundedReceiver<Order>,
    seed: u64,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut played = 0u32;
    let mut red_url = spec.red_url;
    while !world.stopping.get() && (spec.max_games == 0 || played < spec.max_games) {
        let Some(grant) = world.obtain(&mut red_url, spec.vs_ai).await else { break };
        played += 1;
        let id = grant["game_id"].as_str().unwrap_or_default().to_owned();
        let token = |v: &Value| v["player_token"].as_str().unwrap_or_default().to_owned();
        let mut seats = vec![SeatConn { token: token(&grant), url: red_url, ws: None, moves: 0 }];
        if !spec.vs_ai {
            match join_yellow(world, handle, &id, spec.yellow_url).await {
                Some((url, grant)) => seats.push(SeatConn { token: token(&grant), url, ws: None, moves: 0 }),
                None => continue,
            }
        }
        let mut game = Game {
            world,
            handle,
            id: id.clone(),
            seats,
            boards: vec![(Some(vec![Vec::new(); 7]), Instant::now())],
            status: String::new(),
            turn: String::new(),
            own_moves: 0,
            restore: None,
            failed_seen: false,
        };
        *handle.game.borrow_mut() = Some(id.clone());
        game.publish_urls();
        let mut ready = true;
        for i in 0..game.seats.len() {
            if let Err(e) = game.rejoin(i, "join").await {
                game.err("JOIN_FAILED", &e);
                ready = false;
                break;
            }
        }
        if !ready {
            game.close().await;
            continue;
        }
        world.tally.borrow_mut().games += 1;
        let over = play(&mut game, &spec, &mut orders, &mut rng).await;
        handle.playing.set(false);
        if world.stopping.get() && !over && !spec.idle {
            game.verify_rest().await;
        }
        if over {
            world.tally.borrow_mut().games_finished += 1;
        }
        game.close().await;
    }
    // Orders that came too late are dropped with the receiver.
}

/// Plays until the game is over (true) or the scenario stops (false).
async fn play(
    game: &mut Game<'_>,
    spec: &Spec,
    orders: &mut mpsc::UnboundedReceiver<Order>,
    rng: &mut fastrand::Rng,
) -> bool {
    loop {
        let playable = game.status == "playing" || (spec.idle && game.status == "waiting");
        game.handle.playing.set(playable);
        if !playable {
            return true;
        }
        let until = Instant::now() + if spec.idle { Duration::from_secs(1) } else { spec.pace };
        let order = game.rest(until, orders).await;
        if game.world.stopping.get() {
            return false;
        }
        let flow = match order {
            Some(Order::Fault(kind)) => game.fault(kind, rng).await,
            Some(Order::PolicyProbe(most)) => game.policy_probe(most, rng).await,
            Some(Order::Release) => {
                let _ = game.send(0, &json!({"type": "resign"})).await;
                let deadline = Instant::now() + Duration::from_secs(3);
                while game.status == "playing" {
                    match game.next(deadline).await {
                        Some((i, ev)) => {
                            let _ = game.on_event(i, &ev);
                        }
                        None => break,
                    }
                }
                return true;
            }
            None if spec.idle => continue,
            None if game.status != "playing" => continue,
            None => {
                let flow = game.own_move(rng).await;
                if spec.chat_every > 0 && game.own_moves % spec.chat_every == 0 && game.status == "playing" {
                    game.chat().await;
                }
                flow
            }
        };
        if let Flow::Over = flow {
            game.handle.playing.set(false);
            return true;
        }
    }
}

/// Takes the yellow seat through REST (GAME_RESTARTING is retried, another instance tried
/// when one does not answer).
async fn join_yellow(world: &World, handle: &Handle, id: &str, mut url: usize) -> Option<(usize, Value)> {
    let deadline = Instant::now() + REJOIN_WITHIN;
    let body = json!({"player_name": "yellow"});
    let mut last = String::new();
    while Instant::now() < deadline {
        match world.api.post(&format!("{}/api/v1/games/{id}/join", world.urls[url]), &body).await {
            Ok((200, grant)) => return Some((url, grant)),
            Ok((503, b)) => {
                world.tally.borrow_mut().join_retries += 1;
                let retry = b["error"]["details"]["retry_after_ms"].as_u64().unwrap_or(500);
                tokio::time::sleep(Duration::from_millis(retry.clamp(50, 2000))).await;
                last = format!("503 {}", b["error"]["code"]);
            }
            Ok((status, b)) => {
                last = format!("HTTP {status} {}", b["error"]["code"]);
                break;
            }
            Err(e) => {
                last = e;
                url = world.next_url(url);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    world.error(handle, id, "JOIN_REST_FAILED", &last);
    None
}
