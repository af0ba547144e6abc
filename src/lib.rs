//! Rampart: a resilient stateful game server on Actix.
//!
//! Layout, one module per part of docs/DESIGN.md, by layer from the top (ARCHITECTURE.md,
//! "Layers": no module imports a higher layer; this file alone knows every part):
//! - web: [`web`], HTTP routes, the WebSocket upgrades and sessions, the browser page.
//! - control: [`admission`], the gate new games pass through; [`health`], the vitals and
//!   the status they add up to; [`lobby`], the lobby every instance shows, from the runtime
//!   events.
//! - hosting: [`hosting`], the games hosted here of every kind: the directory, the turn
//!   and tick actors and the messages both answer, the supervisor (placing, watchdog,
//!   leases, takeover), the relay to the instance that owns a game.
//! - services: [`store`], the storage traits and their backends (embedded and Redis) and the
//!   event sink; [`breaker`], the circuit breakers; [`llm`], the AI's chat client;
//!   [`cluster`], this instance's leases, heartbeat and token hashes.
//! - runtime: [`runtime`], the tree over the server's own actors, restart policies, the
//!   panic hook, the ticker and the health status signal; [`metrics`], every metric family,
//!   rendered for Prometheus.
//! - protocol: [`protocol`], the wire contract of docs/PROTOCOL.md as types.
//! - game rules: [`game`], pure rules (no I/O, no Actix) and the AI's search.
//! - core: [`config`], the typed, validated `server_config.yaml`; [`ids`], ids, secrets and
//!   clocks; [`rate`], the token bucket.
//!
//! [`run`] serves on a listener the caller bound, until the caller's shutdown future
//! resolves: `main` passes a signal, tests pass their own trigger.

pub mod admission;
pub mod breaker;
pub mod cluster;
pub mod config;
pub mod game;
pub mod health;
pub mod hosting;
pub mod ids;
pub mod llm;
pub mod lobby;
pub mod metrics;
pub mod protocol;
pub mod rate;
pub mod runtime;
pub mod store;
pub mod web;

use std::future::Future;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::HttpService;
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _};
use actix_web::dev::AppConfig;
use actix_web::{web as aweb, App};
use tokio::net::TcpStream;

use crate::admission::line::Line;
use crate::admission::{AdmissionController, AdmissionStats, StartDraining};
use crate::breaker::registry::{BreakerRegistry, Breakers};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::config::StorageBackend;
use crate::health::{CreationRate, HealthBoard, HealthMonitor, Subscribe};
use crate::hosting::registry::Registry;
use crate::hosting::relay::Relay;
use crate::hosting::supervisor::{GameSupervisor, ShutdownGames};
use crate::ids::InstanceId;
use crate::llm::LlmClient;
use crate::lobby::{Announcer, LobbyFeed, LobbySettings, LobbyView};
use crate::metrics::Metrics;
use crate::runtime::system::{Part, SystemTree};
use crate::store::event_sink::EventSink;
use crate::store::keeper::SnapshotKeeper;
use crate::store::redis::directory::ReplicaAcks;
use crate::store::redis::{Discovery, RedisConn, RedisSettings, SentinelSettings};
use crate::store::{Guarded, Stores};
use crate::web::session::SessionLimits;
use crate::web::AppState;

/// Socket limits from the configuration.
fn session_limits(config: &Config) -> SessionLimits {
    let s = &config.server;
    let max = s.max_frame_bytes as usize;
    SessionLimits {
        max_frame_bytes: max,
        hard_frame_bytes: (max * 4).max(64 * 1024),
        outbound_queue: s.outbound_queue as usize,
        heartbeat_interval: Duration::from_millis(s.heartbeat_interval_ms),
        client_timeout: Duration::from_millis(s.client_timeout_ms),
        join_timeout: Duration::from_millis(s.join_timeout_ms),
        lobby_idle_timeout: Duration::from_millis(s.lobby_idle_timeout_ms),
        max_chat_chars: s.max_chat_chars as usize,
        command_timeout: Duration::from_millis(
            config.supervision.default.hang_timeout_ms.max(
                config
                    .supervision
                    .kinds
                    .keys()
                    .map(|k| config.supervision.policy_for(k).hang_timeout_ms)
                    .max()
                    .unwrap_or(0),
            ) + config.supervision.default.hold_messages_max_ms
                + config.supervision.watchdog_interval_ms
                + 1000,
        ),
        rate_per_sec: s.rate_limit_frames_per_sec as f64,
        burst: s.rate_limit_burst as f64,
    }
}

/// Serves Rampart on `listener` until `shutdown` resolves, then drains: stops admitting,
/// tells every player (games are already saved), closes sockets with a reason and waits
/// up to `server.shutdown_grace_ms` for connections to finish. Must run inside an actix
/// `System` (`#[actix_web::main]`, `#[actix_rt::test]`).
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    runtime::panic_hook::install();
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(Registry::default());
    // The root of the supervision tree: every system actor below starts under an Actix
    // `Supervisor` and its own policy (src/supervision/system.rs).
    let tree = SystemTree::new(&config.supervision);
    tree.spawn_watchdog(Duration::from_millis(config.supervision.watchdog_interval_ms));
    // Every breaker the server calls through is looked up now: a missing name stops the start.
    let breaker_registry = {
        let tree = tree.clone();
        actix::Supervisor::start(move |_| BreakerRegistry::new(tree))
    };
    tree.attach(Part::Breakers, breaker_registry.clone().recipient());
    let llm_off: &[&str] = if config.llm.base_url.is_empty() { &["llm"] } else { &[] };
    let breakers = Breakers::build(&config.circuit_breakers, llm_off, breaker_registry.recipient());
    let breaker = |name: &str| breakers.get(name).map_err(std::io::Error::other);
    let database = Guarded::new(breaker("database")?);
    let messaging = Guarded::new(breaker("messaging")?);
    let llm = Arc::new(LlmClient::new(
        config.llm.clone(),
        config.secrets.llm_api_key.clone(),
        breaker("llm")?,
        config.server.max_chat_chars as usize,
    ));
    // The stores: embedded, or Redis (games outlive the process, several instances share it).
    let ticket_ttl = Duration::from_secs(config.admission.ticket_ttl_secs);
    let me = match InstanceId::parse(&config.cluster.instance_id) {
        Some(id) => id,
        None => InstanceId::random(),
    };
    let (stores, redis) = open_stores(&config, ticket_ttl, &me)?;
    // In a Redis Cluster a game's store calls go through its shard's breaker
    // (docs/DESIGN.md D19): a shard failing over opens only its own.
    let database = match redis.as_ref().filter(|conn| conn.sharded()) {
        Some(conn) => {
            let registry = breakers.clone();
            let derive: store::redis::shards::DeriveBreaker =
                Arc::new(move |name: &str| registry.derive(name, "database").ok());
            let shards = Arc::new(store::redis::shards::ShardBreakers::new("database", derive));
            actix_rt::spawn(shards.clone().follow(conn.clone()));
            database.with_shards(shards)
        }
        None => database,
    };
    let session_key = cluster::session_key(config.secrets.session_key.as_ref(), redis.as_ref()).await;
    let cluster = Cluster::new(
        me.clone(),
        stores.clone(),
        database.clone(),
        messaging.clone(),
        Duration::from_millis(config.cluster.lease_ms),
        Duration::from_secs(config.cluster.session_ttl_secs),
        session_key,
    );
    if cluster.shared() {
        let cluster = cluster.clone();
        tree.supervise_task(Part::Heartbeat, move || cluster.clone().run_heartbeat());
    }
    let (keeper, fenced) = SnapshotKeeper::new(
        stores.snapshots.clone(),
        database.clone(),
        Duration::from_secs(config.server.finished_game_ttl_secs),
        config.storage.durable_before_shown(),
    );
    let writer = keeper.clone();
    tree.supervise_task(Part::Keeper, move || writer.clone().run());
    let events = EventSink::new(me.clone());
    let (publisher, stream, guard) = (events.clone(), stores.events.clone(), messaging.clone());
    tree.supervise_task(Part::Events, move || publisher.clone().run(stream.clone(), guard.clone()));
    let health = Arc::new(HealthBoard::default());
    let lobby = LobbyView::new(health.clone(), LobbySettings::of(&config.lobby), metrics.clone());
    let announcer = match &redis {
        Some(conn) => Announcer::Redis(Box::new(conn.clone())),
        None => Announcer::Local,
    };
    let feed = LobbyFeed::new(
        me.clone(),
        &stores,
        database.clone(),
        messaging.clone(),
        lobby.clone(),
        announcer,
        tree.clone(),
    );
    let feed = actix::Supervisor::start(move |_| feed);
    tree.attach(Part::Lobby, feed.recipient());
    let relay = redis.as_ref().map(|conn| {
        let view = lobby.clone();
        let listener: hosting::relay::LobbyListener =
            Arc::new(move |change: &str| match serde_json::from_str(change) {
                Ok(change) => view.apply(change),
                Err(e) => tracing::debug!("ignored an undecodable lobby announcement: {e}"),
            });
        let relay =
            Relay::new(cluster.clone(), registry.clone(), metrics.clone(), listener, conn.clone(), tree.clone());
        let relay = actix::Supervisor::start(move |_| relay);
        tree.attach(Part::Relay, relay.clone().recipient());
        relay
    });
    let supervisor = GameSupervisor::new(
        config.clone(),
        registry.clone(),
        keeper.clone(),
        fenced,
        cluster.clone(),
        events,
        metrics.clone(),
        llm,
        tree.clone(),
    );
    let supervisor = actix::Supervisor::start(move |_| supervisor);
    tree.attach(Part::Games, supervisor.clone().recipient());
    let (waitlist, remote) = (stores.waitlist.clone(), stores.shared);
    let lease = Duration::from_millis(config.admission.claim_lease_ms);
    let max_known = usize::try_from(config.admission.max_waitlist).unwrap_or(usize::MAX);
    let line =
        Arc::new(Line::new(waitlist, breaker("database")?, remote, ticket_ttl, lease, max_known, metrics.clone()));
    let admission_stats = Arc::new(AdmissionStats::default());
    let admission = AdmissionController::new(
        supervisor.clone(),
        line.clone(),
        admission_stats.clone(),
        metrics.clone(),
        config.admission.clone(),
        tree.clone(),
    );
    let admission = actix::Supervisor::start(move |_| admission);
    tree.attach(Part::Admission, admission.clone().recipient());
    let creation_rate = Arc::new(CreationRate::default());
    let monitor =
        HealthMonitor::new(config.health.clone(), health.clone(), creation_rate.clone(), metrics.clone(), tree.clone());
    let monitor = actix::Supervisor::start(move |_| monitor);
    tree.attach(Part::Health, monitor.clone().recipient());
    monitor.do_send(Subscribe(admission.clone().recipient()));
    monitor.do_send(Subscribe(supervisor.clone().recipient()));
    let proxies = web::gate::Proxies::from_config(&config.server.trusted_proxies);
    let gate = Arc::new(web::gate::ConnectionGate::new(
        web::gate::connection_ceiling(config.server.max_connections),
        config.server.max_client_connections_pct,
        config.server.max_lobby_sockets_per_client as usize,
        proxies.clone(),
        metrics.clone(),
    ));
    let state = aweb::Data::new(AppState {
        config: config.clone(),
        registry,
        metrics,
        supervisor: supervisor.clone(),
        admission: admission.clone(),
        limits: Arc::new(session_limits(&config)),
        breakers,
        line,
        admission_stats,
        health,
        creation_rate,
        monitor,
        lobby,
        cluster,
        relay,
        keeper,
        gate: gate.clone(),
        tree: tree.clone(),
        draining: AtomicBool::new(false),
        started: Instant::now(),
    });
    let local = listener.local_addr()?;
    let server = serve(listener, &config, state.clone(), proxies, gate)?;
    let handle = server.handle();
    tracing::info!(address = %local, admin = config.secrets.admin_token.is_some(), "rampart is serving");
    let mut server = std::pin::pin!(server);
    // A system actor past its limit ends the process the way SIGTERM does (games saved,
    // players told), then `run` answers an error so the process exits non-zero.
    let fatal = tokio::select! {
        result = &mut server => return result,
        () = shutdown => None,
        reason = tree.fatal() => Some(reason),
    };
    match &fatal {
        None => tracing::info!("shutting down: no new games; telling players; closing sockets"),
        Some(reason) => {
            tracing::error!("shutting down because {reason}: no new games; telling players; closing sockets")
        }
    }
    drain(&state, &admission, &supervisor, &config).await;
    let (_, result) = futures_util::future::join(handle.stop(true), server).await;
    tracing::info!("shutdown complete");
    match fatal {
        Some(reason) => Err(std::io::Error::other(reason)),
        None => result,
    }
}

/// The HTTP server on `listener`: every connection paced (src/web/pipeline.rs), the edge
/// middleware around the routes, upgrades handed to `web::upgrade`, `Expect: 100-continue`
/// past the body limit refused at once.
fn serve(
    listener: TcpListener,
    config: &Config,
    app_state: aweb::Data<AppState>,
    proxies: web::gate::Proxies,
    gate: Arc<web::gate::ConnectionGate>,
) -> std::io::Result<actix_server::Server> {
    let local = listener.local_addr()?;
    let tcp_user_timeout = Duration::from_millis(config.server.tcp_user_timeout_ms);
    let workers = config.server.workers as usize;
    // actix's own accept limit, per worker, a little above our ceiling: past the ceiling we
    // still accept and answer 503, past this the kernel's backlog holds the rest.
    let accept_per_worker = (gate.ceiling() + 64 * workers).div_ceil(workers);
    tracing::info!(max_connections = gate.ceiling(), per_client = gate.per_client(), "connections are capped");
    let pipelined = config.server.max_pipelined_requests as usize;
    let write_timeout = Duration::from_millis(config.server.client_timeout_ms);
    let max_body = config.server.max_frame_bytes;
    let join_timeout = Duration::from_millis(config.server.join_timeout_ms);
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers)
        .max_concurrent_connections(accept_per_worker)
        .disable_signals()
        .shutdown_timeout(config.server.shutdown_grace_ms.div_ceil(1000))
        .listen("rampart", listener, move || {
            let (app_state, proxies, gate, graceful) =
                (app_state.clone(), proxies.clone(), gate.clone(), graceful.clone());
            let (pace_metrics, expect_metrics) = (app_state.metrics.clone(), app_state.metrics.clone());
            let upgrade_state = app_state.clone();
            let app = App::new()
                .app_data(app_state)
                .app_data(proxies)
                .wrap(actix_web::middleware::from_fn(web::edge::limits))
                .configure(web::routes)
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            let service = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                // A request head must arrive within the join deadline, however slowly it
                // dribbles in (after the upgrade, the socket's own join deadline takes over).
                .client_request_timeout(join_timeout)
                .local_addr(local)
                .on_connect_ext(move |io: &web::pipeline::Paced, data: &mut actix_http::Extensions| {
                    data.insert(gate.enter(io.get_ref().peer_addr().ok().map(|a| a.ip())));
                    data.insert(io.pace());
                    if let Err(e) = web::edge::tune_accepted(io.get_ref(), tcp_user_timeout) {
                        tracing::debug!("could not set the options of an accepted socket: {e}");
                    }
                })
                // `Expect: 100-continue` with a declared body over the limit is answered
                // 413 at once, before the client sends it.
                .expect(actix_service::fn_factory(move || {
                    let metrics = expect_metrics.clone();
                    async move {
                        Ok::<_, ()>(actix_service::fn_service(move |req| {
                            web::edge::expect(req, max_body, metrics.clone())
                        }))
                    }
                }))
                // Every request that asks to upgrade its connection goes to our upgrade
                // (src/web/upgrade.rs), with the connection; the rest to the app.
                .upgrade(actix_service::fn_factory(move || {
                    let state = upgrade_state.clone();
                    async move {
                        Ok::<_, ()>(actix_service::fn_service(move |(req, framed)| {
                            web::upgrade::serve(state.clone(), req, framed)
                        }))
                    }
                }))
                .finish(actix_service::map_config(app, |_| AppConfig::default()));
            // Every connection is served paced (src/web/pipeline.rs): bounded pipelining.
            actix_service::fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                let paced = web::pipeline::Paced::new(io, pipelined, write_timeout, pace_metrics.clone());
                async move { Ok::<_, actix_http::error::DispatchError>((paced, actix_http::Protocol::Http1, peer)) }
            })
            .and_then(service)
        })?
        .run();
    Ok(server)
}

/// Drains the server: no new games, every game stopped, written and its lease released,
/// the sockets told and given the rest of the grace to close.
async fn drain(
    state: &aweb::Data<AppState>,
    admission: &actix::Addr<AdmissionController>,
    supervisor: &actix::Addr<GameSupervisor>,
    config: &Config,
) {
    state.draining.store(true, Ordering::Release);
    let _ = admission.send(StartDraining).await;
    state.lobby.shut_down();
    let within = Duration::from_millis(config.server.shutdown_grace_ms / 2);
    match supervisor.send(ShutdownGames { within }).await {
        Ok(report) if config.storage.backend == StorageBackend::Memory => tracing::warn!(
            games = report.games,
            "storage.backend is memory: the games in play end with this process"
        ),
        Ok(report) if report.unwritten == 0 && report.unreleased == 0 => {
            tracing::info!(games = report.games, "every game's snapshot is written to Redis and its lease released")
        }
        Ok(report) => tracing::warn!(
            games = report.games,
            unwritten = report.unwritten,
            unreleased = report.unreleased,
            "shutting down with snapshots not written (their last moves are lost) or leases not released (they lapse after cluster.lease_ms)"
        ),
        Err(e) => tracing::error!("the game supervisor did not answer the shutdown: {e}"),
    }
    // The sockets live outside the HTTP server's count: they were told and are closing;
    // give them the rest of the grace to say goodbye before the workers (and whatever is
    // still open on them) stop.
    let deadline = Instant::now() + Duration::from_millis(config.server.shutdown_grace_ms / 2);
    while state.gate.upgraded() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if state.gate.upgraded() > 0 {
        tracing::warn!(sockets = state.gate.upgraded(), "sockets still open at the end of the grace; cutting them");
    }
}

/// The stores of the configured backend: embedded, or Redis (games outlive the process and
/// several instances share them), with the Redis connection.
fn open_stores(config: &Config, ticket_ttl: Duration, me: &InstanceId) -> std::io::Result<(Stores, Option<RedisConn>)> {
    Ok(match config.storage.backend {
        StorageBackend::Memory => (Stores::memory(ticket_ttl), None),
        StorageBackend::Redis => {
            let r = &config.redis;
            let url = redis_url(&r.url, config.secrets.redis_password.as_ref());
            let settings = RedisSettings {
                url: url.clone(),
                key_prefix: r.key_prefix.clone(),
                command_timeout: Duration::from_millis(r.command_timeout_ms),
                reconnect_max_delay: Duration::from_millis(r.reconnect_max_delay_ms),
            };
            let discovery = if !r.cluster_nodes.is_empty() {
                Discovery::Cluster(r.cluster_nodes.clone())
            } else if !r.sentinels.is_empty() {
                Discovery::Sentinel(SentinelSettings {
                    addresses: r.sentinels.clone(),
                    master_name: r.master_name.clone(),
                })
            } else {
                Discovery::Direct
            };
            let conn = RedisConn::lazy_with(&settings, &discovery).map_err(std::io::Error::other)?;
            match &discovery {
                Discovery::Direct => {
                    tracing::info!(url = %store::redis::redact_url(&url), prefix = %r.key_prefix, "games, sessions, leases, the waitlist and the event stream live in Redis")
                }
                Discovery::Sentinel(s) => {
                    tracing::info!(sentinels = %s.addresses.join(","), master_name = %s.master_name, prefix = %r.key_prefix, "games, sessions, leases, the waitlist and the event stream live in Redis, on the primary the Sentinels name")
                }
                Discovery::Cluster(nodes) => {
                    tracing::info!(cluster_nodes = %nodes.join(","), prefix = %r.key_prefix, "games, sessions, leases, the waitlist and the event stream live in a Redis Cluster (each game in its own slot; the relay on sharded Pub/Sub)")
                }
            }
            actix_rt::spawn(warn_unless_persistent(conn.clone()));
            let acks = ReplicaAcks {
                replicas: r.min_replicas_acked,
                timeout: Duration::from_millis(r.replica_ack_timeout_ms),
            };
            let stores = Stores::redis(conn.clone(), ticket_ttl, me, acks).map_err(std::io::Error::other)?;
            (stores, Some(conn))
        }
    })
}

/// Logs a WARN when the Redis the stores use keeps nothing on disk (`CONFIG GET`, where the
/// server allows it): a restart of it would forget the waiting line and every game.
async fn warn_unless_persistent(conn: RedisConn) {
    match conn.persistence().await {
        Ok(store::redis::Persistence::None) => tracing::warn!(
            "this Redis keeps nothing on disk (appendonly no, no save points): if it restarts, the waiting line \
             and every game's snapshot are gone. Run it with appendonly yes (docs/OPERATIONS.md)"
        ),
        Ok(p) => tracing::info!(persistence = ?p, "Redis persists what it holds"),
        Err(e) => tracing::debug!("could not read Redis's persistence settings (CONFIG may be disabled): {e}"),
    }
}

/// The Redis URL with the password from the environment put in (never logged: use
/// `redact_url` for logs).
fn redis_url(url: &str, password: Option<&crate::config::Secret>) -> String {
    match (password, url.strip_prefix("redis://")) {
        (Some(p), Some(rest)) => format!("redis://:{}@{rest}", p.expose()),
        _ => url.to_owned(),
    }
}
