//! Criterion benches for the supervision hot paths: spawning a game actor and answering
//! its first message, a move round trip through the actor, and a panic followed by the
//! restored game answering (immediate policy, snapshot restore included).
//! Run with `make bench`; figures are recorded in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use rampart::breaker::CircuitBreaker;
use rampart::config::{BreakerConfig, Config, RestartStrategy};
use rampart::game::{Connect4, Rules, Seat};
use rampart::hosting::env::GameEnv;
use rampart::hosting::messages::{Action, Command, Fault, InjectFault, Probe, Route, StartMode, ToSession};
use rampart::hosting::registry::{GameCell, GameHandle};
use rampart::hosting::turn::TurnActor;
use rampart::ids::{ConnId, GameId, InstanceId, PlayerToken, SessionKey};
use rampart::llm::LlmClient;
use rampart::metrics::Metrics;
use rampart::protocol::{GameStatus, GameSummary, PlayersView};
use rampart::store::event_sink::EventSink;
use rampart::store::keeper::SnapshotKeeper;
use rampart::store::snapshot::{MemorySnapshots, SeatRecord, Snapshot};
use rampart::store::Guarded;

/// Swallows the frames a game sends, like a socket that reads instantly.
struct Sink;
impl Actor for Sink {
    type Context = Context<Self>;
}
impl Handler<ToSession> for Sink {
    type Result = ();
    fn handle(&mut self, _: ToSession, _: &mut Context<Self>) {}
}

fn env() -> Arc<GameEnv> {
    let mut config = Config::default();
    config.supervision.default.strategy = RestartStrategy::Immediate;
    config.supervision.default.max_restarts = 1000;
    config.supervision.default.within_secs = 1;
    Arc::new(GameEnv::new(
        &config,
        EventSink::new(InstanceId::random()),
        keeper(),
        Arc::new(Metrics::default()),
        Arc::new(LlmClient::new(
            config.llm.clone(),
            None,
            CircuitBreaker::new("llm", BreakerConfig { enabled: false, ..BreakerConfig::default() }),
            280,
        )),
    ))
}

/// The in-memory snapshot keeper every bench game shares (its writer is not started: the
/// benches measure the actor, not the store).
fn keeper() -> Arc<SnapshotKeeper> {
    static KEEPER: std::sync::OnceLock<Arc<SnapshotKeeper>> = std::sync::OnceLock::new();
    KEEPER
        .get_or_init(|| {
            let store = Arc::new(MemorySnapshots::new(Arc::default()));
            let breaker = CircuitBreaker::new("database", BreakerConfig { enabled: false, ..BreakerConfig::default() });
            SnapshotKeeper::new(store, Guarded::new(breaker), Duration::from_secs(60), false).0
        })
        .clone()
}

/// A new two-human game: its cell and first snapshot, not yet running.
fn new_game() -> (Arc<GameCell>, Arc<Snapshot>) {
    let id = GameId::random();
    let key = SessionKey::random();
    let seat =
        |name: &str| Some(SeatRecord { name: name.to_owned(), token_hash: Some(key.hash(&PlayerToken::random())) });
    let snapshot = Arc::new(Snapshot {
        game_id: id.clone(),
        board: rampart::game::Board::new(Connect4::new_game()),
        seats: [seat("a"), seat("b")],
        created_at: String::new(),
        abandoned: false,
        restarts: 0,
        failed: false,
        version: 1,
        epoch: 1,
    });
    let summary = GameSummary {
        game_id: id.to_string(),
        kind: "connect4",
        status: GameStatus::Playing,
        players: PlayersView { red: None, yellow: None },
        moves: 0,
        restarts: 0,
        created_at: String::new(),
        winner: None,
        resigned: None,
    };
    (Arc::new(GameCell::new(id, "connect4", 0, summary, snapshot.clone(), keeper())), snapshot)
}

/// Starts a game actor under actix's Supervisor on the current arbiter.
fn spawn(env: &Arc<GameEnv>, (cell, snapshot): (Arc<GameCell>, Arc<Snapshot>)) -> Addr<TurnActor> {
    let actor = TurnActor::new(cell.clone(), env.clone(), snapshot, StartMode::Fresh);
    let addr = actix::Supervisor::start(move |_| actor);
    cell.set_addr(GameHandle::of(addr.clone()));
    addr
}

fn start_game(env: &Arc<GameEnv>) -> Addr<TurnActor> {
    spawn(env, new_game())
}

/// Bare actix, for the same-run baseline: an actor that answers a ping, and restarts under
/// `actix::Supervisor` after a caught panic (no snapshot, no policy, no notifications).
#[derive(Default)]
struct Bare {
    answered: u32,
}
impl Actor for Bare {
    type Context = Context<Self>;
}
impl actix::Supervised for Bare {}
#[derive(Message)]
#[rtype(result = "u32")]
struct BarePing;
impl Handler<BarePing> for Bare {
    type Result = u32;
    fn handle(&mut self, _: BarePing, _: &mut Context<Self>) -> u32 {
        self.answered += 1;
        self.answered
    }
}
#[derive(Message)]
#[rtype(result = "()")]
struct BarePanic;
impl Handler<BarePanic> for Bare {
    type Result = ();
    fn handle(&mut self, _: BarePanic, ctx: &mut Context<Self>) {
        // Same quiet panic hook as the game actors, so only actix's restart is compared.
        let _scope = rampart::runtime::panic_hook::GameScope::enter("bare");
        if std::panic::catch_unwind(|| panic!("bare")).is_err() {
            ctx.stop();
        }
    }
}

fn in_system<F: std::future::Future<Output = Duration>>(f: impl FnOnce() -> F) -> Duration {
    System::new().block_on(async move { f().await })
}

/// `iters` panics, each followed by the restored game answering a probe.
fn panics(iters: u64, with_socket: bool) -> Duration {
    in_system(|| async move {
        let env = env();
        let sink = Sink.start().recipient();
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            // A fresh game every 500 restarts keeps each inside its restart budget.
            let (cell, snapshot) = new_game();
            if with_socket {
                cell.attach(Seat::Red, Route { conn: ConnId::next(), to: sink.clone() });
            }
            let addr = spawn(&env, (cell, snapshot));
            let _ = addr.send(Probe).await;
            let batch = (iters - done).min(500);
            let start = Instant::now();
            for _ in 0..batch {
                addr.do_send(InjectFault {
                    fault: Fault::Panic,
                    deadline: Instant::now() + Duration::from_secs(60),
                    taken: Arc::default(),
                });
                let answer = addr.send(Probe).await;
                debug_assert!(matches!(answer, Ok(Ok(_))));
            }
            total += start.elapsed();
            done += batch;
        }
        total
    })
}

fn benches(c: &mut Criterion) {
    rampart::runtime::panic_hook::install();
    let mut group = c.benchmark_group("game_actor");
    group.measurement_time(Duration::from_secs(4));

    group.bench_function("bare_actix_spawn_and_first_answer", |b| {
        b.iter_custom(|iters| {
            in_system(|| async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let addr = actix::Supervisor::start(|_| Bare::default());
                    let _ = addr.send(BarePing).await;
                }
                start.elapsed()
            })
        })
    });

    group.bench_function("bare_actix_panic_to_answer", |b| {
        b.iter_custom(|iters| {
            in_system(|| async move {
                let addr = actix::Supervisor::start(|_| Bare::default());
                let start = Instant::now();
                for _ in 0..iters {
                    addr.do_send(BarePanic);
                    let _ = addr.send(BarePing).await;
                }
                start.elapsed()
            })
        })
    });

    group.bench_function("spawn_and_first_answer", |b| {
        b.iter_custom(|iters| {
            in_system(|| async move {
                let env = env();
                // Ids and tokens are drawn before the clock starts: this measures the actor.
                let games: Vec<_> = (0..iters).map(|_| new_game()).collect();
                let start = Instant::now();
                for game in games {
                    let addr = spawn(&env, game);
                    let _ = addr.send(Probe).await;
                }
                start.elapsed()
            })
        })
    });

    group.bench_function("move_round_trip", |b| {
        b.iter_custom(|iters| {
            in_system(|| async move {
                let env = env();
                let sink = Sink.start().recipient();
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let addr = start_game(&env);
                    // Columns 0..6 filled in pairs: 36 moves without a win.
                    let columns = [
                        0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2, 4, 5, 4, 5, 4, 5, 5, 4,
                        5, 4, 5, 4,
                    ];
                    let start = Instant::now();
                    for (i, column) in columns.iter().enumerate().take((iters - done) as usize) {
                        let seat = if i % 2 == 0 { Seat::Red } else { Seat::Yellow };
                        let deadline = std::time::Instant::now() + Duration::from_secs(10);
                        let command = Command { seat, action: Action::Move(*column), reply: sink.clone(), deadline };
                        let _ = addr.send(command).await;
                        done += 1;
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });

    group.bench_function("panic_to_restored_answer", |b| b.iter_custom(|iters| panics(iters, false)));
    // One socket attached: the restart also serialises game_restarted + state.
    group.bench_function("panic_to_restored_answer_with_socket", |b| b.iter_custom(|iters| panics(iters, true)));
    group.finish();
}

criterion_group!(actor_benches, benches);
criterion_main!(actor_benches);
