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
//!
//! The parts: the [`World`] every bot shares (creation, the waitlist, the tally) in
//! `world.rs`; a game in play (its seats' sockets, moves and chat) in `game.rs`; the check of
//! every board against the history in `history.rs`; the faults a bot injects in `faults.rs`.
//! This module holds what a scenario gives a bot and the bot's loop.

mod faults;
mod game;
mod history;
mod world;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use game::{Flow, Game, SeatConn};
pub use world::{Tally, World};

/// How long a seat may take to rejoin (a takeover waits for the dead owner's lease).
const REJOIN_WITHIN: Duration = Duration::from_secs(30);

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

/// One bot: game after game (a grant, the second seat, both sockets joined, then play)
/// until the scenario stops or it has played `spec.max_games`.
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
            match world.join_yellow(handle, &id, spec.yellow_url).await {
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
