//! The configuration loader's tests: defaults, every kind of bad value with its YAML path,
//! the environment overlay and secrets.

use std::net::SocketAddr;
use std::path::Path;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn ok(yaml: &str) -> Config {
    Config::from_yaml_str(yaml, &[]).unwrap_or_else(|e| panic!("expected Ok, got:\n{e}"))
}

fn errs_env(yaml: &str, vars: &[(&str, &str)]) -> ConfigErrors {
    match Config::from_yaml_str(yaml, &env(vars)) {
        Ok(c) => panic!("expected errors for {yaml:?}, got {c:?}"),
        Err(e) => e,
    }
}

fn errs(yaml: &str) -> ConfigErrors {
    errs_env(yaml, &[])
}

/// Asserts that loading `yaml` reports exactly one problem, at `path`; returns its message.
fn only_error_at(yaml: &str, path: &str) -> String {
    let e = errs(yaml);
    assert_eq!(e.errors.len(), 1, "for {yaml:?}:\n{e}");
    assert_eq!(e.errors[0].path, path, "for {yaml:?}:\n{e}");
    e.errors[0].message.clone()
}

#[test]
fn defaults_file_is_default() {
    let c = ok(include_str!("../../server_config.yaml"));
    assert_eq!(c, Config::default());
}

#[test]
fn empty_inputs_are_defaults() {
    for yaml in ["", "{}", "# nothing\n", "~", "server:\nsupervision:\n  kinds:\nai: {}\n"] {
        assert_eq!(ok(yaml), Config::default(), "for {yaml:?}");
    }
}

#[test]
fn values_are_read() {
    let c = ok("server:\n  bind: \"[::1]:9000\"\n  workers: 8\nsupervision:\n  default:\n    strategy: delayed\n    multiplier: 3\nai:\n  search_depth: 12\n");
    assert_eq!(c.server.bind, "[::1]:9000".parse::<SocketAddr>().expect("addr"));
    assert_eq!(c.server.workers, 8);
    assert_eq!(c.supervision.default.strategy, RestartStrategy::Delayed);
    assert_eq!(c.supervision.default.multiplier, 3.0);
    assert_eq!(c.ai.search_depth, 12);
}

#[test]
fn unknown_key_top_level() {
    let m = only_error_at("bogus: 1\n", "bogus");
    assert!(m.contains("unknown key") && m.contains("server") && m.contains("supervision"), "{m}");
}

#[test]
fn unknown_key_nested() {
    let m = only_error_at("server:\n  wrokers: 4\n", "server.wrokers");
    assert!(m.contains("workers"), "{m}");
    only_error_at("supervision:\n  default:\n    bogus: 1\n", "supervision.default.bogus");
    only_error_at("supervision:\n  kinds:\n    connect4:\n      bogus: 1\n", "supervision.kinds.connect4.bogus");
}

#[test]
fn string_where_integer() {
    let m = only_error_at("server:\n  workers: \"4\"\n", "server.workers");
    assert!(m.contains("whole number") && m.contains("\"4\"") && m.contains("remove the quotes"), "{m}");
    only_error_at("server:\n  workers: four\n", "server.workers");
    only_error_at("server:\n  workers: true\n", "server.workers");
    only_error_at("server:\n  workers: 2.5\n", "server.workers");
    only_error_at("server:\n  workers:\n", "server.workers");
}

#[test]
fn negative_values() {
    let m = only_error_at("server:\n  max_frame_bytes: -1\n", "server.max_frame_bytes");
    assert!(m.contains("got -1"), "{m}");
    only_error_at("supervision:\n  default:\n    jitter: -0.1\n", "supervision.default.jitter");
}

#[test]
fn range_bounds() {
    // (section yaml prefix, key, just below, lowest ok, highest ok, just above)
    let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
        ("server", "workers", "0", "1", "64", "65"),
        ("server", "max_frame_bytes", "63", "64", "1048576", "1048577"),
        ("server", "outbound_queue", "0", "1", "65536", "65537"),
        ("server", "join_timeout_ms", "99", "100", "600000", "600001"),
        ("server", "max_chat_chars", "0", "1", "10000", "10001"),
        ("server", "finished_game_ttl_secs", "0", "1", "604800", "604801"),
        ("server", "rate_limit_burst", "0", "1", "100000", "100001"),
        ("server", "abandoned_game_secs", "0", "1", "86400", "86401"),
        ("server", "body_timeout_ms", "99", "100", "600000", "600001"),
        ("server", "max_connections", "15", "16", "1000000", "1000001"),
        ("server", "lobby_idle_timeout_ms", "999", "1000", "86400000", "86400001"),
        ("cluster", "lease_ms", "299", "300", "60000", "60001"),
        ("cluster", "session_ttl_secs", "59", "60", "2592000", "2592001"),
        ("supervision.default", "multiplier", "0.99", "1.0", "10.0", "10.01"),
        ("supervision.default", "jitter", "-0.01", "0.0", "1.0", "1.01"),
        ("supervision.default", "max_restarts", "0", "1", "1000", "1001"),
        ("supervision.default", "within_secs", "0", "1", "86400", "86401"),
        ("supervision.default", "hang_timeout_ms", "49", "50", "600000", "600001"),
        ("supervision", "watchdog_interval_ms", "9", "10", "60000", "60001"),
        ("ai", "search_depth", "0", "1", "12", "13"),
        ("ai", "max_nodes", "999", "1000", "100000000", "100000001"),
    ];
    for (section, key, below, low, high, above) in cases {
        let yaml = |v: &str| {
            let mut out = String::new();
            for (depth, part) in section.split('.').enumerate() {
                out.push_str(&format!("{}{part}:\n", "  ".repeat(depth)));
            }
            let depth = section.split('.').count();
            out.push_str(&format!("{}{key}: {v}\n", "  ".repeat(depth)));
            out
        };
        let path = format!("{section}.{key}");
        ok(&yaml(low));
        ok(&yaml(high));
        only_error_at(&yaml(below), &path);
        let m = only_error_at(&yaml(above), &path);
        assert!(m.contains("at most") && m.contains(&format!("got {above}")), "{path}: {m}");
        let m = only_error_at(&yaml(below), &path);
        assert!(m.contains("at least") && m.contains(&format!("got {below}")), "{path}: {m}");
    }
    // heartbeat_interval_ms: its upper bound needs a longer client_timeout_ms.
    ok("server:\n  heartbeat_interval_ms: 100\n");
    ok("server:\n  heartbeat_interval_ms: 600000\n  client_timeout_ms: 3600000\n");
    only_error_at("server:\n  heartbeat_interval_ms: 99\n", "server.heartbeat_interval_ms");
    only_error_at(
        "server:\n  heartbeat_interval_ms: 600001\n  client_timeout_ms: 3600000\n",
        "server.heartbeat_interval_ms",
    );
    // Upper-bound-only and zero-allowed fields.
    only_error_at("server:\n  game_arbiters: 257\n", "server.game_arbiters");
    only_error_at("server:\n  tcp_user_timeout_ms: 3600001\n", "server.tcp_user_timeout_ms");
    only_error_at("server:\n  shutdown_grace_ms: 600001\n", "server.shutdown_grace_ms");
    only_error_at("ai:\n  think_delay_ms: 10001\n", "ai.think_delay_ms");
    only_error_at(
        "supervision:\n  default:\n    hold_messages_max_ms: 60001\n",
        "supervision.default.hold_messages_max_ms",
    );
    only_error_at("supervision:\n  default:\n    max_delay_ms: 3600001\n", "supervision.default.max_delay_ms");
    only_error_at("server:\n  client_timeout_ms: 3600001\n", "server.client_timeout_ms");
    only_error_at("server:\n  workers: 99999999999999999999999\n", "server.workers");
    ok("server:\n  game_arbiters: 0\n  tcp_user_timeout_ms: 0\n  shutdown_grace_ms: 0\n");
}

#[test]
fn bad_enum() {
    let m = only_error_at("supervision:\n  default:\n    strategy: linear\n", "supervision.default.strategy");
    assert!(m.contains("`immediate`, `delayed`, `exponential`") && m.contains("linear"), "{m}");
    only_error_at(
        "supervision:\n  kinds:\n    connect4:\n      strategy: Exponential\n",
        "supervision.kinds.connect4.strategy",
    );
}

#[test]
fn max_delay_below_initial_delay() {
    let m = only_error_at(
        "supervision:\n  default:\n    initial_delay_ms: 600\n    max_delay_ms: 500\n",
        "supervision.default.max_delay_ms",
    );
    assert!(m.contains("initial_delay_ms (600)"), "{m}");
    // Only after merging with the default (max_delay_ms 5000) is the kind wrong.
    let m = only_error_at(
        "supervision:\n  kinds:\n    connect4:\n      initial_delay_ms: 6000\n",
        "supervision.kinds.connect4",
    );
    assert!(m.contains("merging") && m.contains("5000"), "{m}");
}

#[test]
fn client_timeout_not_above_heartbeat() {
    let m = only_error_at(
        "server:\n  heartbeat_interval_ms: 2000\n  client_timeout_ms: 2000\n",
        "server.client_timeout_ms",
    );
    assert!(m.contains("greater than heartbeat_interval_ms (2000)"), "{m}");
    only_error_at("server:\n  heartbeat_interval_ms: 20000\n", "server.client_timeout_ms");
    ok("server:\n  heartbeat_interval_ms: 2000\n  client_timeout_ms: 2001\n");
}

#[test]
fn bad_bind() {
    let m = only_error_at("server:\n  bind: localhost:8080\n", "server.bind");
    assert!(m.contains("127.0.0.1:8080"), "{m}");
    only_error_at("server:\n  bind: 8080\n", "server.bind");
    only_error_at("server:\n  bind: \"127.0.0.1\"\n", "server.bind");
}

#[test]
fn admin_token_in_yaml_is_rejected() {
    let m = only_error_at("admin_token: hunter2\n", "admin_token");
    assert!(m.contains("RAMPART_ADMIN_TOKEN") && m.contains("environment"), "{m}");
    assert!(!m.contains("hunter2"));
    only_error_at("server:\n  admin_token: hunter2\n", "server.admin_token");
    only_error_at(
        "supervision:\n  kinds:\n    connect4:\n      admin_token: x\n",
        "supervision.kinds.connect4.admin_token",
    );
}

#[test]
fn yaml_syntax_error_is_one_problem() {
    let m = only_error_at("server:\n  workers: [1,\n", "<yaml>");
    assert!(m.contains("line"), "{m}");
    let m = only_error_at("server:\n  workers: 1\n  workers: 2\n", "<yaml>");
    assert!(m.contains("duplicate"), "{m}");
}

#[test]
fn wrong_shapes() {
    only_error_at("- 1\n- 2\n", "<yaml>");
    only_error_at("server: 5\n", "server");
    only_error_at("supervision:\n  kinds: [a]\n", "supervision.kinds");
    only_error_at("supervision:\n  kinds:\n    connect4: 3\n", "supervision.kinds.connect4");
    let m = only_error_at("supervision:\n  kinds:\n    Connect-4: {}\n", "supervision.kinds.Connect-4");
    assert!(m.contains("[a-z0-9_]+"), "{m}");
}

#[test]
fn all_problems_are_reported() {
    let yaml = "\
bogus: 1
server:
  workers: 0
  bind: nowhere
  heartbeat_interval_ms: 1000
  client_timeout_ms: 500
  extra: true
supervision:
  default:
    strategy: sometimes
    jitter: 2
  kinds:
    connect4:
      max_restarts: \"many\"
ai:
  search_depth: 99
  admin_token: x
";
    let e = errs(yaml);
    let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "bogus",
        "server.workers",
        "server.bind",
        "server.client_timeout_ms",
        "server.extra",
        "supervision.default.strategy",
        "supervision.default.jitter",
        "supervision.kinds.connect4.max_restarts",
        "ai.search_depth",
        "ai.admin_token",
    ] {
        assert!(paths.contains(&p), "missing {p} in:\n{e}");
    }
    assert_eq!(e.errors.len(), 10, "{e}");
    // Display: one problem per line.
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), 10);
    assert!(shown.lines().any(|l| l.starts_with("server.workers: must be at least 1, got 0")), "{shown}");
}

#[test]
fn env_bind() {
    let c = Config::from_yaml_str("", &env(&[("RAMPART_BIND", "0.0.0.0:9000")])).expect("ok");
    assert_eq!(c.server.bind, SocketAddr::from(([0, 0, 0, 0], 9000)));
    // RAMPART_BIND wins over the file and over RAMPART__SERVER__BIND.
    let c = Config::from_yaml_str(
        "server:\n  bind: 127.0.0.1:1\n",
        &env(&[("RAMPART_BIND", "0.0.0.0:9000"), ("RAMPART__SERVER__BIND", "0.0.0.0:7")]),
    )
    .expect("ok");
    assert_eq!(c.server.bind.port(), 9000);
    let e = errs_env("", &[("RAMPART_BIND", "nope")]);
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].path, "server.bind");
    assert!(e.errors[0].message.contains("env RAMPART_BIND"), "{e}");
}

#[test]
fn env_admin_token_is_secret() {
    let c = Config::from_yaml_str("", &env(&[("RAMPART_ADMIN_TOKEN", "s3cr3t-token")])).expect("ok");
    let token = c.secrets.admin_token.as_ref().expect("token set");
    assert_eq!(token.expose(), "s3cr3t-token");
    assert_eq!(token.to_string(), "***");
    let debug = format!("{c:?} {c:#?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("***"));
    let c = Config::from_yaml_str("", &env(&[("RAMPART_ADMIN_TOKEN", "")])).expect("ok");
    assert_eq!(c.secrets.admin_token, None);
    assert_eq!(ok("").secrets.admin_token, None);
}

#[test]
fn env_path_override() {
    let vars = env(&[("RAMPART__SUPERVISION__DEFAULT__MAX_RESTARTS", "3")]);
    let c = Config::from_yaml_str("supervision:\n  default:\n    max_restarts: 9\n", &vars).expect("ok");
    assert_eq!(c.supervision.default.max_restarts, 3);
    // Case-insensitive, YAML scalars.
    let c = Config::from_yaml_str(
        "",
        &env(&[
            ("rampart__server__bind", "0.0.0.0:9000"),
            ("Rampart__Supervision__Default__Multiplier", "1.5"),
            ("RAMPART__SUPERVISION__DEFAULT__STRATEGY", "immediate"),
        ]),
    )
    .expect("ok");
    assert_eq!(c.server.bind.port(), 9000);
    assert_eq!(c.supervision.default.multiplier, 1.5);
    assert_eq!(c.supervision.default.strategy, RestartStrategy::Immediate);
}

#[test]
fn env_per_kind_override() {
    let vars = env(&[("RAMPART__SUPERVISION__KINDS__CONNECT4__MAX_RESTARTS", "2")]);
    let c =
        Config::from_yaml_str("supervision:\n  kinds:\n    connect4:\n      strategy: delayed\n", &vars).expect("ok");
    let p = c.supervision.policy_for("connect4");
    assert_eq!(p.max_restarts, 2);
    assert_eq!(p.strategy, RestartStrategy::Delayed);
    assert_eq!(c.supervision.policy_for("chess"), RestartPolicyConfig::default());
    // The kind need not be in the file; names with single underscores work.
    let vars = env(&[("RAMPART__SUPERVISION__KINDS__TIC_TAC_TOE__MAX_RESTARTS", "2")]);
    let c = Config::from_yaml_str("", &vars).expect("ok");
    assert_eq!(c.supervision.policy_for("tic_tac_toe").max_restarts, 2);
}

#[test]
fn env_unknown_path() {
    let e = errs_env("", &[("RAMPART__FOO__BAR", "1")]);
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].path, "env RAMPART__FOO__BAR");
    assert_eq!(e.errors[0].message, "unknown key foo.bar");
    let e = errs_env(
        "",
        &[
            ("RAMPART__SERVER__WROKERS", "1"),
            ("RAMPART__SUPERVISION__KINDS__CONNECT4__BOGUS", "1"),
            ("RAMPART__SERVER", "1"),
            ("RAMPART__SERVER__ADMIN_TOKEN", "x"),
        ],
    );
    let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "env RAMPART__SERVER__WROKERS",
            "env RAMPART__SUPERVISION__KINDS__CONNECT4__BOGUS",
            "env RAMPART__SERVER",
            "env RAMPART__SERVER__ADMIN_TOKEN",
        ],
        "{e}"
    );
    assert!(e.errors[3].message.contains("RAMPART_ADMIN_TOKEN"), "{e}");
}

#[test]
fn env_wrong_type() {
    let e = errs_env("", &[("RAMPART__SERVER__WORKERS", "lots")]);
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].path, "server.workers");
    assert!(e.errors[0].message.contains("env RAMPART__SERVER__WORKERS"), "{e}");
    let e = errs_env("", &[("RAMPART__SUPERVISION__KINDS__CONNECT4__MAX_RESTARTS", "0")]);
    assert_eq!(e.errors[0].path, "supervision.kinds.connect4.max_restarts", "{e}");
}

#[test]
fn other_env_vars_are_ignored() {
    let c = Config::from_yaml_str("", &env(&[("PATH", "/bin"), ("RAMPART_LOG", "debug"), ("XRAMPART__A", "1")]))
        .expect("ok");
    assert_eq!(c, Config::default());
}

#[test]
fn per_kind_merge() {
    let c = ok("supervision:\n  default:\n    max_restarts: 8\n    within_secs: 30\n  kinds:\n    connect4:\n      max_restarts: 2\n      jitter: 0\n    chess:\n");
    let p = c.supervision.policy_for("connect4");
    assert_eq!(p.max_restarts, 2);
    assert_eq!(p.jitter, 0.0);
    assert_eq!(p.within_secs, 30);
    assert_eq!(p.strategy, RestartStrategy::Exponential);
    assert_eq!(c.supervision.kinds["chess"], PartialRestartPolicy::default());
    assert_eq!(c.supervision.policy_for("chess"), c.supervision.default);
    assert_eq!(c.supervision.policy_for("unknown").max_restarts, 8);
}

#[test]
fn load_reads_file_and_reports_unreadable_path() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("server_config.yaml");
    // The process environment may hold RAMPART vars; compare only the file part.
    if std::env::vars().all(|(k, _)| !k.to_ascii_uppercase().starts_with("RAMPART")) {
        assert_eq!(Config::load(&path).expect("loads"), Config::default());
        assert_eq!(Config::from_env_only().expect("defaults"), Config::default());
    }
    let missing = Path::new("/nonexistent/rampart.yaml");
    let e = Config::load(missing).expect_err("missing file");
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].path, "/nonexistent/rampart.yaml");
    assert!(e.errors[0].message.contains("cannot read"), "{e}");
}
#[test]
fn breakers_accept_the_plan_schema_and_our_keys() {
    let c = ok("circuit_breakers:\n  enabled: false\n  default_failure_threshold: 7\n  default_timeout: 12\n  database:\n    failure_threshold: 4\n    operations: [save_player]\n  file_system:\n    timeout: 2.5\n    slow_call_ms: 300\n    failure_rate_threshold_pct: 50\n");
    let cb = &c.circuit_breakers;
    assert!(!cb.enabled);
    assert_eq!(cb.breakers["database"].failure_threshold, 4);
    assert_eq!(cb.breakers["database"].open_secs, 12.0, "missing keys come from the section defaults");
    assert_eq!(cb.breakers["database"].operations, vec!["save_player".to_owned()]);
    assert_eq!(cb.breakers["file_system"].failure_threshold, 7);
    assert_eq!(cb.breakers["file_system"].open_secs, 2.5);
    assert_eq!(cb.breakers["file_system"].slow_call_ms, Some(300));
    assert_eq!(cb.breakers["file_system"].failure_rate_threshold_pct, Some(50.0));
    for name in BUILT_IN_BREAKERS {
        assert!(cb.breakers.contains_key(name), "{name} always exists");
    }
    assert_eq!(cb.breakers["messaging"], CircuitBreakersConfig::default().breakers["messaging"]);
}

#[test]
fn breakers_reject_every_bad_value_with_its_path() {
    let e = errs("circuit_breakers:\n  enabled: maybe\n  default_failure_threshold: 0\n  default_timeout: 0\n  Bad-Name: {}\n  llm:\n    failure_threshold: 0\n    timeout: 5\n    timeout_max: 1\n    timeout_multiplier: 20\n    jitter: 2\n    failure_rate_threshold_pct: 0\n    failure_rate_window_calls: 5\n    failure_rate_min_calls: 9\n    slow_call_ms: 0\n    call_timeout_ms: 0\n    half_open_max_probes: 0\n    half_open_successes: 101\n    operations: [\"\"]\n    surprise: 1\n  database: 3\n");
    let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
    for p in [
        "circuit_breakers.enabled",
        "circuit_breakers.default_failure_threshold",
        "circuit_breakers.default_timeout",
        "circuit_breakers.Bad-Name",
        "circuit_breakers.llm.failure_threshold",
        "circuit_breakers.llm.timeout_max",
        "circuit_breakers.llm.timeout_multiplier",
        "circuit_breakers.llm.jitter",
        "circuit_breakers.llm.failure_rate_threshold_pct",
        "circuit_breakers.llm.failure_rate_min_calls",
        "circuit_breakers.llm.slow_call_ms",
        "circuit_breakers.llm.call_timeout_ms",
        "circuit_breakers.llm.half_open_max_probes",
        "circuit_breakers.llm.half_open_successes",
        "circuit_breakers.llm.operations[0]",
        "circuit_breakers.llm.surprise",
        "circuit_breakers.database",
    ] {
        assert!(paths.contains(&p), "{p} missing from:\n{e}");
    }
    assert_eq!(e.errors.len(), 17, "{e}");
}

#[test]
fn health_admission_storage_and_redis_sections_are_checked() {
    let c = ok("health:\n  interval_ms: 200\n  max_memory_mb: 512\nadmission:\n  max_games: 3\n  rate_per_sec: 0.5\n  burst: 2\nstorage:\n  backend: redis\nredis:\n  url: redis://10.0.0.1:6380/2\n");
    assert_eq!((c.health.interval_ms, c.health.max_memory_mb), (200, 512));
    assert_eq!((c.admission.max_games, c.admission.burst), (3, 2));
    assert_eq!(c.storage.backend, StorageBackend::Redis);
    assert_eq!(c.redis.url, "redis://10.0.0.1:6380/2");
    let e = errs("health:\n  interval_ms: 10\n  max_memory_used_pct: 101\n  degraded_ratio: 0\n  exit_ratio: 0.2\n  max_lag_ms: -1\nadmission:\n  max_games: 0\n  rate_per_sec: 0\n  burst: 0\n  admit_per_sec: 0\n  ticket_ttl_secs: 1\n  max_waitlist: 0\nstorage:\n  backend: disk\nredis:\n  url: \"redis://:hunter2@host:6379\"\n  key_prefix: \"a b\"\n  command_timeout_ms: 0\n  reconnect_max_delay_ms: 0\n");
    let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
    for p in [
        "health.interval_ms",
        "health.max_memory_used_pct",
        "health.degraded_ratio",
        "health.exit_ratio",
        "health.max_lag_ms",
        "admission.max_games",
        "admission.rate_per_sec",
        "admission.burst",
        "admission.admit_per_sec",
        "admission.ticket_ttl_secs",
        "admission.max_waitlist",
        "storage.backend",
        "redis.url",
        "redis.key_prefix",
        "redis.command_timeout_ms",
        "redis.reconnect_max_delay_ms",
    ] {
        assert!(paths.contains(&p), "{p} missing from:\n{e}");
    }
    assert_eq!(e.errors.len(), 16, "{e}");
    assert!(!e.to_string().contains("hunter2"), "a password in the file is never echoed: {e}");
    assert!(errs("redis:\n  url: http://x\n").to_string().contains("redis://"));
}

#[test]
fn llm_section_is_read_and_checked() {
    let c = ok("llm:\n  base_url: http://127.0.0.1:8089\n  model: m\n  timeout_ms: 500\n  canned_lines: [hi]\n");
    assert_eq!(c.llm.base_url, "http://127.0.0.1:8089");
    assert_eq!(c.llm.canned_lines, vec!["hi".to_owned()]);
    let e = errs("llm:\n  base_url: ftp://x\n  model: \"\"\n  timeout_ms: 5\n  max_tokens: 0\n  temperature: 3\n  canned_lines: []\n  comment_probability: 2\n  api_key: sk-123\n");
    let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
    for p in [
        "llm.base_url",
        "llm.model",
        "llm.timeout_ms",
        "llm.max_tokens",
        "llm.temperature",
        "llm.comment_probability",
        "llm.api_key",
    ] {
        assert!(paths.contains(&p), "{p} missing from:\n{e}");
    }
    assert!(!e.to_string().contains("sk-123"), "a secret is never echoed");
    assert_eq!(ok("llm:\n  base_url: https://api.example.com\n").llm.base_url, "https://api.example.com");
    let e = errs("llm:\n  base_url: https://user:sk-in-url@api.example.com\n");
    assert!(e.to_string().contains("RAMPART_LLM_API_KEY") && !e.to_string().contains("sk-in-url"), "{e}");
    assert!(errs("llm:\n  base_url: ftp://x\n").to_string().contains("https://"));
}

#[test]
fn llm_key_and_breaker_overrides_come_from_the_environment() {
    let c = Config::from_yaml_str(
        "",
        &env(&[
            ("RAMPART_LLM_API_KEY", "sk-secret"),
            ("RAMPART__CIRCUIT_BREAKERS__LLM__FAILURE_THRESHOLD", "9"),
            ("RAMPART__CIRCUIT_BREAKERS__ENABLED", "false"),
            ("RAMPART__LLM__BASE_URL", "http://127.0.0.1:9"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.secrets.llm_api_key.as_ref().map(Secret::expose), Some("sk-secret"));
    assert!(!format!("{c:?}").contains("sk-secret"));
    assert_eq!(c.circuit_breakers.breakers["llm"].failure_threshold, 9);
    assert!(!c.circuit_breakers.enabled);
    assert_eq!(c.llm.base_url, "http://127.0.0.1:9");
}

#[test]
fn trusted_proxies_are_networks_from_the_file_or_the_environment() {
    let c = ok("server:\n  trusted_proxies: [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n");
    assert_eq!(c.server.trusted_proxies, ["127.0.0.1", "10.0.0.0/8", "::1"]);
    for value in ["10.0.0.1, ::1", "[\"10.0.0.1\", \"::1\"]"] {
        let c = Config::from_yaml_str("", &env(&[("RAMPART__SERVER__TRUSTED_PROXIES", value)])).expect("ok");
        assert_eq!(c.server.trusted_proxies, ["10.0.0.1", "::1"], "for {value:?}");
    }
    let c = Config::from_yaml_str("", &env(&[("RAMPART__SERVER__TRUSTED_PROXIES", "")])).expect("ok");
    assert!(c.server.trusted_proxies.is_empty());
    let e = errs("server:\n  trusted_proxies: [\"127.0.0.1\", \"proxy.example\", \"10.0.0.0/40\"]\n");
    let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["server.trusted_proxies[1]", "server.trusted_proxies[2]"], "{e}");
    assert!(e.errors[0].message.contains("not an IP address"), "{e}");
}

#[test]
fn per_client_limits_have_ranges() {
    let message = only_error_at("admission:\n  max_tickets_per_client: 0\n", "admission.max_tickets_per_client");
    assert!(message.contains('1'), "{message}");
    only_error_at("admission:\n  client_creations_per_sec: 0\n", "admission.client_creations_per_sec");
}

#[test]
fn every_problem_has_a_path_even_at_the_top_of_the_document() {
    // Found by the config fuzz target: a document whose top level is not a mapping.
    for yaml in ["? !", "? !\n", "[1, 2]", "7", "\"text\""] {
        if let Err(e) = Config::from_yaml_str(yaml, &[]) {
            for problem in &e.errors {
                assert!(!problem.path.trim().is_empty(), "for {yaml:?}: {problem:?}");
            }
        }
    }
}

#[test]
fn cluster_nodes_are_addresses_and_exclude_sentinels() {
    let c = ok("redis:\n  cluster_nodes: [\"10.0.0.1:7000\", \"[::1]:7001\"]\n");
    assert_eq!(c.redis.cluster_nodes, ["10.0.0.1:7000", "[::1]:7001"]);
    let c = Config::from_yaml_str("", &env(&[("RAMPART__REDIS__CLUSTER_NODES", "a:7000,b:7001")])).expect("env");
    assert_eq!(c.redis.cluster_nodes, ["a:7000", "b:7001"]);
    let message = only_error_at("redis:\n  cluster_nodes: [\"redis://a:7000\"]\n", "redis.cluster_nodes[0]");
    assert!(message.contains("host:port"), "{message}");
    let message =
        only_error_at("redis:\n  sentinels: [\"a:26379\"]\n  cluster_nodes: [\"b:7000\"]\n", "redis.cluster_nodes");
    assert!(message.contains("not both"), "{message}");
    let message = only_error_at("redis:\n  url: redis://x:7000/2\n  cluster_nodes: [\"b:7000\"]\n", "redis.url");
    assert!(message.contains("database 0"), "{message}");
    ok("redis:\n  url: redis://x:7000/0\n  cluster_nodes: [\"b:7000\"]\n");
}
