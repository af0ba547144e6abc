//! What every bot of a scenario shares: the [`World`] (the instances, which are up, the
//! bots' handles) and the [`Tally`] of everything they saw. New games are created here one
//! at a time (so the order of waitlist tickets is the order they were issued), a waitlisted
//! ticket is followed until it is admitted, and a second seat is taken through REST.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{run_bot, Handle, Spec, REJOIN_WITHIN};
use crate::net::Api;

/// At most this many detailed lines of each kind are printed.
const DETAIL_LINES: usize = 25;

/// A latency sample: both seats of one move.
pub struct Sample {
    /// When the move was sent.
    pub at: Instant,
    /// Until the mover saw its state.
    pub mover_ms: f64,
    /// Until the opponent saw it (two-human games).
    pub opponent_ms: Option<f64>,
    /// The bot that played it.
    pub bot: usize,
    /// The game it was played in.
    pub game: String,
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
    /// `game_paused` frames seen (a lease not confirmed: docs/DESIGN.md D17).
    pub paused_frames: u64,
    /// `game_resumed` frames seen.
    pub resumed_frames: u64,
    /// Each game that was said to pause, and when a seat was first told.
    pub paused_games: BTreeMap<String, Instant>,
    /// Moves a player was shown that the game later came back without (outside the kill -9
    /// allowance of write-behind).
    pub moves_lost: u64,
    /// Boards that forked: a state that does not continue the boards shown before (two
    /// owners, or a lost move played differently).
    pub forks: u64,
    /// Games that vanished under their players (a rejoin answered `GAME_NOT_FOUND` or
    /// closed 4404).
    pub games_lost: std::collections::BTreeSet<String>,
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

    pub(super) fn error(&self, handle: &Handle, game: &str, kind: &str, context: &str) {
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
    pub(super) fn next_url(&self, from: usize) -> usize {
        let n = self.urls.len();
        let up = self.up.borrow();
        (1..=n).map(|i| (from + i) % n).find(|&i| up[i]).unwrap_or((from + 1) % n)
    }

    /// A new game's red seat: created at once (201) or through the waitlist (the ticket is
    /// followed until admitted). None when the scenario stops first.
    pub(super) async fn obtain(&self, url: &mut usize, vs_ai: bool) -> Option<Value> {
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

    /// Takes the yellow seat through REST (GAME_RESTARTING is retried, another instance tried
    /// when one does not answer).
    pub(super) async fn join_yellow(&self, handle: &Handle, id: &str, mut url: usize) -> Option<(usize, Value)> {
        let deadline = Instant::now() + REJOIN_WITHIN;
        let body = json!({"player_name": "yellow"});
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.api.post(&format!("{}/api/v1/games/{id}/join", self.urls[url]), &body).await {
                Ok((200, grant)) => return Some((url, grant)),
                Ok((503, b)) => {
                    self.tally.borrow_mut().join_retries += 1;
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
                    url = self.next_url(url);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        self.error(handle, id, "JOIN_REST_FAILED", &last);
        None
    }
}
