//! A game in play, as one bot sees it: its seats' sockets (each event read, a broken seat
//! rejoined on its instance or another, a frame sent), the bot's own moves (sent, seen by
//! both seats, resent after a disturbance, the AI's answer awaited), the rest between
//! moves (where orders arrive) and chat.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::history::Board;
use super::world::{Sample, World};
use super::{Handle, Order, REJOIN_WITHIN};
use crate::net::{self, Ev, Ws};

/// How long a move may take to reach both seats before the bot looks for them elsewhere.
const MOVE_TIMEOUT: Duration = Duration::from_secs(8);

/// One seat of the game.
pub(super) struct SeatConn {
    pub(super) token: String,
    pub(super) url: usize,
    pub(super) ws: Option<Ws>,
    /// Moves in the last state this seat saw.
    pub(super) moves: usize,
}

/// How play goes on after a step.
pub(super) enum Flow {
    /// Keep playing.
    Go,
    /// The game is over (or unplayable): start another.
    Over,
}

/// A game in play, as the bot sees it.
pub(super) struct Game<'a> {
    pub(super) world: &'a World,
    pub(super) handle: &'a Handle,
    pub(super) id: String,
    pub(super) seats: Vec<SeatConn>,
    /// The board after k moves, and when it was first seen (None: skipped over).
    pub(super) boards: Vec<(Option<Board>, Instant)>,
    pub(super) status: String,
    pub(super) turn: String,
    pub(super) own_moves: u32,
    /// A fault of our own awaits its restart: (moves before it, seats that saw the restart,
    /// seats that saw the restored state).
    pub(super) restore: Option<(usize, Vec<bool>, Vec<bool>)>,
    pub(super) failed_seen: bool,
}

impl<'a> Game<'a> {
    pub(super) fn len(&self) -> usize {
        self.boards.len() - 1
    }

    pub(super) fn base(&self, seat: usize) -> &str {
        &self.world.urls[self.seats[seat].url]
    }

    pub(super) fn err(&self, kind: &str, context: &str) {
        self.world.error(self.handle, &self.id, kind, context);
    }

    pub(super) fn publish_urls(&self) {
        *self.handle.seat_urls.borrow_mut() = self.seats.iter().map(|s| s.url).collect();
    }

    /// The next event from any seat before `deadline` (None: the deadline passed).
    pub(super) async fn next(&mut self, deadline: Instant) -> Option<(usize, Ev)> {
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
    pub(super) fn on_event(&mut self, seat: usize, ev: &Ev) -> bool {
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
            Ev::Paused => {
                let mut t = self.world.tally.borrow_mut();
                t.paused_frames += 1;
                t.paused_games.entry(self.id.clone()).or_insert_with(Instant::now);
                false
            }
            Ev::Resumed => {
                self.world.tally.borrow_mut().resumed_frames += 1;
                false
            }
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
    pub(super) async fn rejoin(&mut self, i: usize, why: &str) -> Result<(), String> {
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
    pub(super) async fn recover_seat(&mut self, i: usize, why: &str) -> bool {
        self.recover_seat_saying(i, why, "the socket broke").await
    }

    /// [`Self::recover_seat`], with what happened.
    pub(super) async fn recover_seat_saying(&mut self, i: usize, why: &str, context: &str) -> bool {
        self.err(why, context);
        match self.rejoin(i, why).await {
            Ok(()) => {
                self.world.tally.borrow_mut().rejoins += 1;
                true
            }
            Err(e) => {
                eprintln!("chaos: game {}: seat {i} could not rejoin: {e}", self.id);
                self.err("REJOIN_FAILED", &e);
                if e.contains("GAME_NOT_FOUND") || e.contains("4404") {
                    self.world.tally.borrow_mut().games_lost.insert(self.id.clone());
                }
                if !self.handle.faulted(Instant::now()) {
                    self.world.broken(format!("game {}: a seat could not rejoin: {e}", self.id));
                }
                false
            }
        }
    }

    /// Sends a frame on seat `i`, rejoining it first when the socket is gone.
    pub(super) async fn send(&mut self, i: usize, frame: &Value) -> bool {
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
    pub(super) async fn own_move(&mut self, rng: &mut fastrand::Rng) -> Flow {
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
                    let context = format!(
                        "seat {s} ({}, on instance {}) did not see move {} within {MOVE_TIMEOUT:?} (it had seen {})",
                        if s == mover { "the mover" } else { "the opponent" },
                        self.seats[s].url + 1,
                        len + 1,
                        self.seats[s].moves,
                    );
                    if !self.recover_seat_saying(s, "TIMEOUT", &context).await {
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
            t.samples.push(Sample {
                at: sent,
                mover_ms: seen[mover].unwrap_or(0.0),
                opponent_ms: opponent,
                bot: self.handle.bot,
                game: self.id.clone(),
            });
        }
        self.own_moves += 1;
        if self.seats.len() == 1 && self.status == "playing" && self.turn == "yellow" {
            return self.await_ai(len + 2).await;
        }
        Flow::Go
    }

    /// After an event: which seats now see the move; resends it when a seat's latest state
    /// shows it was not applied after a disturbance.
    pub(super) async fn check_progress(
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
    pub(super) async fn await_ai(&mut self, target: usize) -> Flow {
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
    pub(super) async fn rest(&mut self, until: Instant, orders: &mut mpsc::UnboundedReceiver<Order>) -> Option<Order> {
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

    /// Chats once (AI games) and waits for the echo to the table.
    pub(super) async fn chat(&mut self) {
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

    pub(super) async fn close(mut self) {
        for seat in &mut self.seats {
            if let Some(ws) = seat.ws.take() {
                net::close(ws).await;
            }
        }
    }
}
