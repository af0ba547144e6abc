//! The `rampart` binary: parses arguments, loads and validates the configuration,
//! initialises logging, binds, and hands over to [`rampart::run`].
//!
//! `rampart [--config FILE] [--check]`: serve, or with `--check` validate and exit 0, or
//! print every problem and exit 64 (EX_USAGE).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use rampart::config::Config;

/// jemalloc: it returns freed pages to the OS, and its statistics let the memory vital
/// count what the process holds rather than its RSS (`rampart::health::memory`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: rampart [--config FILE] [--check]\n  --config FILE  the YAML configuration (default: the embedded defaults)\n  --check        validate the configuration and exit";
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let mut config_path: Option<PathBuf> = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(path) => config_path = Some(PathBuf::from(path)),
                None => return usage("--config needs a file"),
            },
            "--check" => check = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let loaded = match &config_path {
        Some(path) => Config::load(path),
        None => Config::from_env_only(),
    };
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            let source =
                config_path.as_ref().map_or_else(|| "the embedded defaults".to_owned(), |p| p.display().to_string());
            eprintln!("rampart: the configuration in {source} has {} problem(s):", errors.errors.len());
            eprintln!("{errors}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    init_logging();
    rampart::health::memory::enable_background_purge();
    let listener = match TcpListener::bind(config.server.bind) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("rampart: cannot listen on {}: {e}", config.server.bind);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "open http://{} in a browser",
        listener.local_addr().map_or_else(|_| config.server.bind.to_string(), |a| a.to_string())
    );
    let system = actix_rt::System::new();
    match system.block_on(rampart::run(listener, config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard output: sentences with `key=value` context, coloured only on a
/// terminal; `RAMPART_LOG_FORMAT=json` writes one JSON object per line instead. The filter
/// is `RAMPART_LOG`, else `RUST_LOG` (same syntax: `info`, `rampart=debug,actix=warn`), else
/// `info`; actix-http's lines (all about what one client did) are left out unless the filter
/// names `actix_http`, and the Redis client's below ERROR unless it names `redis`.
fn init_logging() {
    use std::io::IsTerminal as _;
    let given = std::env::var("RAMPART_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let mut filter = match tracing_subscriber::EnvFilter::try_new(&given) {
        Ok(filter) if !given.trim().is_empty() => filter,
        _ => tracing_subscriber::EnvFilter::new("info"),
    };
    // actix-http logs what any client can cause at will at ERROR: a malformed request or a
    // vanished connection ("stream error: request parse error", "write zero; closing"), a
    // fragmented control frame ("Unfinished fragment Ping"), an upgrade whose client left
    // ("Upgrade handler error"). Each is already answered (400, 431, a close code) or
    // counted, so none of it reaches the log unless the filter names actix_http itself
    // (`RAMPART_LOG=info,actix_http=debug`). tests/hostile.rs counts the lines each attack
    // writes.
    if !given.contains("actix_http") {
        if let Ok(quiet) = "actix_http=off".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    // The Redis client's own recovery (a Redis Cluster's failover: every node it tries,
    // every slot refresh) is hundreds of WARN lines a second; what it means for the games is
    // logged by Rampart (the breakers, the relay, paused games). Shown when the filter names
    // `redis` (`RAMPART_LOG=info,redis=warn`).
    if !given.split(',').any(|d| d.trim().starts_with("redis")) {
        if let Ok(quiet) = "redis=error".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("RAMPART_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_ansi(std::io::stdout().is_terminal()).init();
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("rampart: {problem}\n{USAGE}");
    ExitCode::from(EX_USAGE)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
