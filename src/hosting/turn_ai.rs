//! The turn-based game's AI seat: its search, run off the actor on a blocking thread and
//! applied as an ordinary async result inside the panic boundary, and its voice (the LLM
//! through the `llm` breaker, canned lines when it is off, open or failing). Moves never
//! wait for the voice.

use std::panic;
use std::time::Duration;

use actix::prelude::*;

use crate::game::{SearchBudget, Seat};
use crate::hosting::registry::LEASE_RECHECK;
use crate::hosting::turn::TurnActor;
use crate::ids::now_rfc3339;
use crate::llm::{ChatContext, ChatEvent};
use crate::protocol::{ChatFrom, ServerFrame};
use crate::runtime::panic_hook::GameScope;
use crate::store::snapshot::SeatRecord;

impl TurnActor {
    /// Starts the AI's search off the actor when it is the AI's turn. The result returns as
    /// an ordinary async result, inside the panic boundary; a stale result is ignored.
    pub(super) fn schedule_ai(&mut self, ctx: &mut Context<Self>) {
        if self.failed || self.ai_in_flight || self.restarting_until.is_some() {
            return;
        }
        let Some(turn) = self.state.board.turn() else {
            return;
        };
        if !self.state.seat(turn).is_some_and(SeatRecord::is_ai) {
            return;
        }
        self.ai_in_flight = true;
        let board = self.state.board.clone();
        let expected_moves = board.moves();
        let budget = SearchBudget { max_depth: self.env.ai.search_depth, max_nodes: self.env.ai.max_nodes };
        let seed = self.rng.u64(..);
        let think = Duration::from_millis(self.env.ai.think_delay_ms);
        let game_id = self.cell.id.to_string();
        let search = async move {
            if !think.is_zero() {
                actix::clock::sleep(think).await;
            }
            actix_rt::task::spawn_blocking(move || {
                let _scope = GameScope::enter(&game_id);
                board.ai_move(budget, seed)
            })
            .await
        };
        ctx.spawn(search.into_actor(self).map(move |result, act, ctx| {
            act.ai_in_flight = false;
            if !act.cell.lease_confirmed() {
                // Not ours to play until the lease is confirmed: search again then.
                ctx.run_later(LEASE_RECHECK, |act, ctx| act.schedule_ai(ctx));
                return;
            }
            let _ = act.guarded(ctx, |act, ctx| {
                let column = match result {
                    Ok(column) => column,
                    // A panic in the search is a bug in game code: re-raise it inside the boundary.
                    Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
                    Err(_) => None,
                };
                act.apply_ai_move(ctx, expected_moves, column);
            });
        }));
    }

    /// The AI says something about `event`: through the LLM when one is configured, off the
    /// actor and through the llm breaker, at most one request in flight; when the LLM is
    /// off, open or failing it answers a human with a canned line and otherwise stays
    /// silent. Moves never wait for any of this.
    pub(super) fn ai_chat(&mut self, ctx: &mut Context<Self>, event: ChatEvent) {
        if self.failed || !self.state.vs_ai() {
            return;
        }
        let answer_needed = matches!(event, ChatEvent::HumanSaid { .. });
        let llm = self.env.llm.clone();
        if !llm.enabled() {
            if answer_needed {
                self.say_canned();
            }
            return;
        }
        if self.llm_in_flight {
            // One request per game at a time: a human's words wait for it (the latest
            // wins); the AI's own remarks are simply skipped.
            if answer_needed {
                self.llm_pending = Some(event);
            }
            return;
        }
        self.llm_in_flight = true;
        let context = ChatContext {
            game: crate::game::kinds::by_name(self.state.board.kind()).map_or("a game", |k| k.title),
            board: self.state.board.describe(),
            moves: self.state.board.moves(),
            opponent: self.state.seat(Seat::Red).map_or_else(|| "your opponent".to_owned(), |r| r.name.clone()),
            event,
        };
        let request = async move { llm.chat(&context).await };
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            act.llm_in_flight = false;
            let _ = act.guarded(ctx, |act, _| match result {
                Ok(text) => {
                    act.broadcast(&ServerFrame::Chat { from: ChatFrom::Ai, text, at: now_rfc3339() });
                }
                Err(e) => {
                    tracing::debug!(game_id = %act.cell.id, "the AI's LLM line failed; falling back: {e}");
                    if answer_needed {
                        act.say_canned();
                    }
                }
            });
            if let Some(next) = act.llm_pending.take() {
                act.ai_chat(ctx, next);
            }
        }));
    }

    fn say_canned(&mut self) {
        if let Some(text) = self.env.llm.canned_line(&mut self.rng) {
            self.broadcast(&ServerFrame::Chat { from: ChatFrom::Ai, text, at: now_rfc3339() });
        }
    }

    pub(super) fn apply_ai_move(&mut self, ctx: &mut Context<Self>, expected_moves: u32, column: Option<i64>) {
        if self.failed || self.state.board.moves() != expected_moves {
            return;
        }
        let (Some(column), Some(turn)) = (column, self.state.board.turn()) else {
            return;
        };
        match self.state.board.play(turn, column) {
            Ok(board) => {
                self.state.board = board;
                if !self.commit() {
                    return;
                }
                self.schedule_ai(ctx);
                if self.rng.f64() < self.env.llm.comment_probability() {
                    let what = self.state.board.describe_move(column);
                    self.ai_chat(ctx, ChatEvent::AiMoved { what });
                }
            }
            Err(e) => {
                tracing::error!(game_id = %self.cell.id, column, "the AI chose an illegal move: {e}")
            }
        }
    }
}
