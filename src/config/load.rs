//! Loading the configuration, every problem at once:
//!
//! 1. The YAML becomes a tree (`serde_json::Value`); a syntax error is one problem.
//! 2. A secret key anywhere in it is a problem (secrets come from the environment).
//! 3. The environment is written into the tree: `RAMPART__A__B=v` sets `a.b` (names are
//!    case-insensitive, values read as YAML scalars), then `RAMPART_BIND` and
//!    `RAMPART_REDIS_URL`. A variable naming no key is a problem.
//! 4. Unknown keys are found by walking the tree against the defaults' own tree (so the
//!    schema is the types themselves), and reported with the keys allowed there.
//! 5. The tree is deserialized; each type error is reported with its path, its key is
//!    dropped (its default stands) and deserialization runs again, until it succeeds.
//! 6. garde checks every range; then the rules that span fields.
//!
//! An error on a key set by the environment names the variable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use garde::Validate as _;
use serde_json::{Map, Value};

use super::{Config, Secret, Secrets, BUILT_IN_BREAKERS};

/// One configuration problem: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// YAML path such as `supervision.default.max_restarts`, `env RAMPART__FOO` for an
    /// environment variable naming no key, or the file for file-level problems.
    pub path: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

/// Every problem found while loading the configuration. Never empty when returned as `Err`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems: file and environment first, then each value.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    /// One problem per line, as `path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Secret names: the key refused anywhere in the YAML, and the variable to use instead.
const SECRET_VARS: &[(&str, &str)] = &[
    ("admin_token", "RAMPART_ADMIN_TOKEN"),
    ("api_key", "RAMPART_LLM_API_KEY"),
    ("password", "RAMPART_REDIS_PASSWORD"),
    ("session_key", "RAMPART_SESSION_KEY"),
];

/// `RAMPART__A__B` sets `a.b`.
const ENV_PATH_PREFIX: &str = "RAMPART__";

/// Variables that set one key each, applied after the `RAMPART__` ones (so they win).
const ENV_SHORTHANDS: &[(&str, &str)] = &[("RAMPART_BIND", "server.bind"), ("RAMPART_REDIS_URL", "redis.url")];

/// The keys of `circuit_breakers` itself; every other key there names a breaker.
const BREAKER_SECTION_KEYS: [&str; 3] = ["enabled", "default_failure_threshold", "default_timeout"];

impl Config {
    /// Parses YAML `text`, applies overrides from `env` (name, value pairs), validates.
    /// Empty text or `{}` gives the defaults. Returns every problem found.
    pub fn from_yaml_str(text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        load(text, "<yaml>", env)
    }

    /// Reads the file at `path` and the process environment, then as
    /// [`Config::from_yaml_str`]. An unreadable file is one problem naming the path.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            errors: vec![ConfigError { path: source.clone(), message: format!("cannot read the config file: {e}") }],
        })?;
        load(&text, &source, &process_env())
    }

    /// The defaults with the process environment's overrides (no file given).
    pub fn from_env_only() -> Result<Config, ConfigErrors> {
        load("", "<defaults>", &process_env())
    }
}

/// The process environment, skipping variables that are not valid UTF-8.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
    }
}

/// A key path as problems show it, `server.workers`: a key that is empty, holds a `.` or
/// starts or ends with whitespace is quoted (`""`, `"server.workers"`), so every path names
/// exactly one place.
fn dotted(path: &[String]) -> String {
    let shown: Vec<String> =
        path.iter()
            .map(|key| {
                if key.is_empty() || key.contains('.') || key.trim() != key {
                    format!("{key:?}")
                } else {
                    key.clone()
                }
            })
            .collect();
    shown.join(".")
}

/// The problems found so far, and which variable set which path.
struct Problems {
    errors: Vec<ConfigError>,
    origins: BTreeMap<String, String>,
    bad: BTreeSet<String>,
}

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let mut path = path.into();
        let mut message = message.into();
        if path.is_empty() {
            // The document itself (its top level is not a mapping): still a place to point at.
            path = "<top level>".to_owned();
        }
        if let Some(var) = self.origins.get(&path) {
            message.push_str(&format!(" (set by env {var})"));
        }
        self.bad.insert(path.clone());
        self.errors.push(ConfigError { path, message });
    }

    /// Whether none of `paths` already has a problem (guards the rules spanning fields).
    fn clean(&self, paths: &[&str]) -> bool {
        paths.iter().all(|p| !self.bad.contains(*p))
    }
}

fn load(text: &str, source: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
    let mut p = Problems { errors: Vec::new(), origins: BTreeMap::new(), bad: BTreeSet::new() };
    let mut tree = match serde_saphyr::from_str_with_options::<Option<Value>>(text, yaml_options()) {
        Ok(None | Some(Value::Null)) => Value::Object(Map::new()),
        Ok(Some(v @ Value::Object(_))) => v,
        Ok(Some(other)) => {
            let message = format!("the top level must be a mapping of sections, got {}", describe(&other));
            p.errors.push(ConfigError { path: source.to_owned(), message });
            Value::Object(Map::new())
        }
        Err(e) => {
            p.errors.push(ConfigError { path: source.to_owned(), message: format!("invalid YAML: {e}") });
            Value::Object(Map::new())
        }
    };
    reject_secrets(&mut tree, &mut Vec::new(), &mut p);
    let schema = serde_json::to_value(Config::default()).unwrap_or_default();
    apply_env(&mut tree, &schema, env, &mut p);
    unknown_keys(&mut tree, &schema, &mut Vec::new(), &mut p);
    move_breakers(&mut tree);
    let mut config = typed(tree, &mut p);
    if let Err(report) = config.validate() {
        let values = serde_json::to_value(&config).unwrap_or_default();
        for (path, error) in report.iter() {
            let mut path = path.to_string();
            if path.starts_with("circuit_breakers.") {
                if let Some((rust, yaml)) =
                    crate::breaker::YAML_NAMES.iter().find(|(r, _)| path.ends_with(&format!(".{r}")))
                {
                    path = format!("{}{yaml}", &path[..path.len() - rust.len()]);
                }
            }
            let got = path
                .split(['.', '[', ']'])
                .filter(|k| !k.is_empty())
                .try_fold(&values, |node, key| match key.parse::<usize>() {
                    Ok(i) if node.is_array() => node.get(i),
                    _ => node.get(key),
                })
                .map(describe);
            let shown = path.replace("circuit_breakers.breakers.", "circuit_breakers.");
            p.add(shown, rule_message(&error.to_string(), got));
        }
    }
    cross_field_rules(&config, &mut p);
    for name in BUILT_IN_BREAKERS {
        if !config.circuit_breakers.breakers.contains_key(name) {
            let built_in = super::CircuitBreakersConfig::default().breakers.remove(name).unwrap_or_default();
            config.circuit_breakers.breakers.insert(name.to_owned(), built_in);
        }
    }
    config.secrets = read_secrets(env);
    if p.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors { errors: p.errors })
    }
}

fn read_secrets(env: &[(String, String)]) -> Secrets {
    let get =
        |name: &str| env.iter().rev().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| Secret::new(v.clone()));
    Secrets {
        admin_token: get("RAMPART_ADMIN_TOKEN"),
        llm_api_key: get("RAMPART_LLM_API_KEY"),
        redis_password: get("RAMPART_REDIS_PASSWORD"),
        session_key: get("RAMPART_SESSION_KEY"),
    }
}

/// Reports (and removes) every secret key in the file; its value is never echoed.
fn reject_secrets(v: &mut Value, path: &mut Vec<String>, p: &mut Problems) {
    if let Value::Object(map) = v {
        map.retain(|k, child| {
            path.push(k.clone());
            let secret = SECRET_VARS.iter().find(|(key, _)| key == k);
            if let Some((_, var)) = secret {
                p.add(dotted(path), format!("secrets are not read from the config file; set {var} in the environment"));
            } else {
                reject_secrets(child, path, p);
            }
            path.pop();
            secret.is_none()
        });
    }
}

/// Writes the environment's overrides into the tree.
fn apply_env(tree: &mut Value, schema: &Value, env: &[(String, String)], p: &mut Problems) {
    let mut overrides: Vec<(&str, Vec<String>, &str)> = Vec::new();
    for (name, value) in env {
        let Some(prefix) = name.get(..ENV_PATH_PREFIX.len()) else { continue };
        if prefix.eq_ignore_ascii_case(ENV_PATH_PREFIX) {
            let path = name[ENV_PATH_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
            overrides.push((name, path, value));
        }
    }
    for (var, key_path) in ENV_SHORTHANDS {
        if let Some((name, value)) = env.iter().rev().find(|(k, _)| k == var) {
            overrides.push((name, key_path.split('.').map(str::to_owned).collect(), value));
        }
    }
    for (name, path, value) in overrides {
        let dotted = dotted(&path);
        let label = format!("env {name}");
        if let Some((_, var)) = path.last().and_then(|last| SECRET_VARS.iter().find(|(k, _)| k == last)) {
            p.errors.push(ConfigError {
                path: label,
                message: format!("unknown key {dotted}; secrets are set with {var}"),
            });
            continue;
        }
        match schema_at(schema, &path) {
            None => p.errors.push(ConfigError { path: label, message: format!("unknown key {dotted}") }),
            Some(Value::Object(_)) => p.errors.push(ConfigError {
                path: label,
                message: format!("{dotted} is a section, not a value; set one of its keys"),
            }),
            Some(node) => {
                let value = if node.is_array() { parse_env_list(value) } else { parse_env_value(value) };
                if insert(tree, &path, value) {
                    p.origins.insert(dotted, name.to_owned());
                }
            }
        }
    }
}

/// The schema node at `path`: map entries (a breaker, a game kind) use the template of an
/// entry, so any name is a key there.
fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = schema;
    for (i, key) in path.iter().enumerate() {
        let parent: Vec<&str> = path[..i].iter().map(String::as_str).collect();
        let section_key = parent == ["circuit_breakers"] && BREAKER_SECTION_KEYS.contains(&key.as_str());
        node = match entry_template(&parent) {
            Some(template) if !section_key => template,
            _ => node.as_object()?.get(key)?,
        };
        if key.is_empty() {
            return None;
        }
    }
    Some(node)
}

/// Where the YAML has a mapping of names to sections, the template of one entry.
fn entry_template(parent: &[&str]) -> Option<&'static Value> {
    static BREAKER: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    static KIND: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    match parent {
        ["circuit_breakers"] => Some(
            BREAKER.get_or_init(|| serde_json::to_value(crate::breaker::BreakerConfig::default()).unwrap_or_default()),
        ),
        ["supervision", "kinds"] => {
            Some(KIND.get_or_init(|| serde_json::to_value(super::PartialRestartPolicy::default()).unwrap_or_default()))
        }
        _ => None,
    }
}

/// Reports (and removes) the keys no type has, and mappings where a value belongs (or the
/// reverse); an empty section (`server:`) stands for the defaults.
fn unknown_keys(v: &mut Value, schema: &Value, path: &mut Vec<String>, p: &mut Problems) {
    let Some(expected) = schema.as_object() else { return };
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(map) = v else {
        p.add(dotted(path), format!("expected a mapping of keys, got {}", describe(v)));
        *v = Value::Object(Map::new());
        return;
    };
    let parent: Vec<String> = path.clone();
    let parent_refs: Vec<&str> = parent.iter().map(String::as_str).collect();
    let template = entry_template(&parent_refs);
    let in_breakers = parent_refs == ["circuit_breakers"];
    map.retain(|key, child| {
        path.push(key.clone());
        let dotted = dotted(path);
        let keep = if in_breakers && BREAKER_SECTION_KEYS.contains(&key.as_str()) {
            true
        } else if let Some(template) = template {
            let (ok, rule) = if in_breakers {
                (
                    breaker_name_ok(key),
                    "breaker names use lowercase letters, digits and _ ([a-z0-9_]+; not \"breakers\")",
                )
            } else {
                (kind_name_ok(key), "game kind names use only lowercase letters, digits and _ ([a-z0-9_]+)")
            };
            if ok {
                unknown_keys(child, template, path, p);
                true
            } else {
                p.add(dotted, rule);
                false
            }
        } else if let Some(sub) = expected.get(key) {
            if sub.is_object() {
                unknown_keys(child, sub, path, p);
            }
            true
        } else {
            let mut allowed: Vec<&str> = expected.keys().map(String::as_str).collect();
            if in_breakers {
                allowed.retain(|k| *k != "breakers");
            }
            p.add(dotted, format!("unknown key; allowed here: {}", allowed.join(", ")));
            false
        };
        path.pop();
        keep
    });
}

fn breaker_name_ok(name: &str) -> bool {
    kind_name_ok(name) && name != "breakers"
}

fn kind_name_ok(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The YAML writes breakers beside the section's own keys; the type keeps them in
/// `breakers`. Keys a breaker leaves out take the section's defaults here.
fn move_breakers(tree: &mut Value) {
    let Some(section) = tree.get_mut("circuit_breakers").and_then(Value::as_object_mut) else { return };
    let defaults = super::CircuitBreakersConfig::default();
    let usable = |v: Option<&Value>, ok: &dyn Fn(f64) -> bool| v.and_then(Value::as_f64).filter(|x| ok(*x));
    let threshold = section
        .get("default_failure_threshold")
        .and_then(Value::as_u64)
        .filter(|x| (1..=1000).contains(x))
        .map_or(Value::from(defaults.default_failure_threshold), Value::from);
    let timeout = usable(section.get("default_timeout"), &|x| (0.1..=3600.0).contains(&x))
        .map_or(Value::from(defaults.default_timeout), Value::from);
    let names: Vec<String> = section.keys().filter(|k| !BREAKER_SECTION_KEYS.contains(&k.as_str())).cloned().collect();
    let mut breakers = Map::new();
    for name in names {
        let Some(mut entry) = section.remove(&name) else { continue };
        if let Value::Object(b) = &mut entry {
            b.entry("failure_threshold").or_insert_with(|| threshold.clone());
            let own_timeout = b.entry("timeout").or_insert_with(|| timeout.clone()).clone();
            b.entry("timeout_max").or_insert(own_timeout);
            if let Some(window) = b.get("failure_rate_window_calls").and_then(Value::as_u64) {
                b.entry("failure_rate_min_calls").or_insert_with(|| Value::from(window.min(10)));
            }
        }
        breakers.insert(name, entry);
    }
    section.insert("breakers".to_owned(), Value::Object(breakers));
}

/// garde's rule messages as sentences with the value found: `greater than 64` is
/// `must be at most 64, got 65`.
fn rule_message(message: &str, got: Option<String>) -> String {
    let got = got.map(|g| format!(", got {g}")).unwrap_or_default();
    if let Some(max) = message.strip_prefix("greater than ") {
        format!("must be at most {max}{got}")
    } else if let Some(min) = message.strip_prefix("lower than ") {
        format!("must be at least {min}{got}")
    } else if message == "length is lower than 1" {
        "must not be empty".to_owned()
    } else if let Some(max) = message.strip_prefix("length is greater than ") {
        format!("must have at most {max} entries or characters")
    } else {
        // Custom rules word their own message and never echo the value (a URL may hold a
        // password).
        message.to_owned()
    }
}

/// serde's type names in words: `expected u32` is `expected a whole number`.
fn plain_types(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, words) in [
        ("u8", "a whole number"),
        ("u16", "a whole number"),
        ("u32", "a whole number"),
        ("u64", "a whole number"),
        ("usize", "a whole number"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ] {
        out = out.replace(&format!("expected {rust}"), &format!("expected {words}"));
    }
    out.replace("floating point `", "number `")
}

/// Deserializes the tree; each type error is reported and its key dropped, until it goes.
fn typed(mut tree: Value, p: &mut Problems) -> Config {
    for _ in 0..200 {
        let attempt: Result<Config, _> = serde_path_to_error::deserialize(tree.clone());
        let error = match attempt {
            Ok(config) => return config,
            Err(e) => e,
        };
        let path: Vec<String> = error.path().iter().map(|s| s.to_string()).filter(|s| s != "?").collect();
        let shown = dotted(&path).replace("circuit_breakers.breakers.", "circuit_breakers.");
        let got = value_at(&tree, &path).map(describe);
        let mut message = plain_types(&error.into_inner().to_string());
        if let Some(got) = got {
            message = format!("{message}; got {got}");
        }
        if shown.ends_with("bind") {
            message.push_str(" (use IP:PORT, such as 127.0.0.1:8080 or [::1]:8080)");
        }
        p.add(shown, message);
        if path.is_empty() || !remove(&mut tree, &path) {
            break;
        }
    }
    Config::default()
}

/// The rules that span fields, each checked only when its fields are fine on their own.
fn cross_field_rules(c: &Config, p: &mut Problems) {
    let s = &c.server;
    if p.clean(&["server.heartbeat_interval_ms", "server.client_timeout_ms"])
        && s.client_timeout_ms <= s.heartbeat_interval_ms
    {
        p.add(
            "server.client_timeout_ms",
            format!(
                "must be greater than heartbeat_interval_ms ({}), got {}",
                s.heartbeat_interval_ms, s.client_timeout_ms
            ),
        );
    }
    let policy_rule = |d: &super::RestartPolicyConfig| {
        (d.max_delay_ms < d.initial_delay_ms).then(|| {
            format!("max_delay_ms ({}) must be at least initial_delay_ms ({})", d.max_delay_ms, d.initial_delay_ms)
        })
    };
    let default_ok = p.clean(&["supervision.default.initial_delay_ms", "supervision.default.max_delay_ms"]);
    if let (true, Some(message)) = (default_ok, policy_rule(&c.supervision.default)) {
        p.add("supervision.default.max_delay_ms", message);
    } else if default_ok {
        for (kind, partial) in &c.supervision.kinds {
            let base = format!("supervision.kinds.{kind}");
            if !p.clean(&[&format!("{base}.initial_delay_ms"), &format!("{base}.max_delay_ms")]) {
                continue;
            }
            if let Some(message) = policy_rule(&partial.apply_to(&c.supervision.default)) {
                p.add(base, format!("after merging with supervision.default: {message}"));
            }
        }
        for (name, partial) in c.supervision.system.each() {
            let base = format!("supervision.system.{name}");
            if !p.clean(&[&format!("{base}.initial_delay_ms"), &format!("{base}.max_delay_ms")]) {
                continue;
            }
            if let Some(message) = policy_rule(&partial.apply_to(&c.supervision.default)) {
                p.add(base, format!("after merging with supervision.default: {message}"));
            }
        }
    }
    for (name, b) in &c.circuit_breakers.breakers {
        let at = |key: &str| format!("circuit_breakers.{name}.{key}");
        if p.clean(&[&at("timeout"), &at("timeout_max")]) && b.open_max_secs < b.open_secs {
            p.add(
                at("timeout_max"),
                format!("must be at least timeout ({} s), got {} s", b.open_secs, b.open_max_secs),
            );
        }
        if p.clean(&[&at("failure_rate_window_calls"), &at("failure_rate_min_calls")])
            && b.failure_rate_min_calls > b.failure_rate_window_calls
        {
            p.add(
                at("failure_rate_min_calls"),
                format!(
                    "must be at most failure_rate_window_calls ({}), got {}",
                    b.failure_rate_window_calls, b.failure_rate_min_calls
                ),
            );
        }
    }
}

/// garde rule: an IP address or network (`server.trusted_proxies`).
pub(super) fn network(text: &str, _: &()) -> garde::Result {
    crate::admission::clients::Net::parse(text).map(|_| ()).map_err(garde::Error::new)
}

/// garde rule: a `redis://` URL without credentials.
pub(super) fn redis_url(url: &str, _: &()) -> garde::Result {
    match url.strip_prefix("redis://") {
        Some(rest) if rest.contains('@') => Err(garde::Error::new(
            "the URL carries credentials; put the password in RAMPART_REDIS_PASSWORD, never in the file",
        )),
        Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => Ok(()),
        _ => Err(garde::Error::new(format!("expected a redis:// URL such as redis://127.0.0.1:6379, got {url:?}"))),
    }
}

/// garde rule: empty, or an http(s) URL without credentials.
pub(super) fn llm_url(url: &str, _: &()) -> garde::Result {
    if url.is_empty() {
        return Ok(());
    }
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if host.contains('@') => {
            Err(garde::Error::new("the URL carries credentials; the key comes only from RAMPART_LLM_API_KEY"))
        }
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(()),
        _ => Err(garde::Error::new(
            "expected an http:// or https:// URL without credentials, such as https://api.openai.com or http://127.0.0.1:8089",
        )),
    }
}

/// garde rule: not only whitespace.
pub(super) fn not_blank(text: &str, _: &()) -> garde::Result {
    if text.trim().is_empty() {
        Err(garde::Error::new("must not be empty"))
    } else {
        Ok(())
    }
}

/// Sets `path` in the tree, creating sections. False when a section on the way is not a
/// mapping (the walk reports that).
fn insert(tree: &mut Value, path: &[String], value: Value) -> bool {
    let mut node = tree;
    for key in path {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return false };
        node = map.entry(key.clone()).or_insert(Value::Null);
    }
    *node = value;
    true
}

fn value_at<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, key| node.get(key))
}

/// Drops the key at `path`; false when there is none.
fn remove(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut node = tree;
    for key in parents {
        let Some(next) = node.get_mut(key) else { return false };
        node = next;
    }
    node.as_object_mut().is_some_and(|map| map.remove(last).is_some())
}

/// An environment value read as a YAML scalar (number, bool, string); anything else,
/// including an empty value, is kept as a string.
fn parse_env_value(value: &str) -> Value {
    match serde_saphyr::from_str_with_options::<Option<Value>>(value, yaml_options()) {
        Ok(Some(v)) if !v.is_object() && !v.is_array() => v,
        _ => Value::String(value.to_owned()),
    }
}

/// An environment value for a list key: a YAML flow list (`["10.0.0.1", "::1"]`) or
/// comma-separated items (`10.0.0.1,::1`; empty for none).
fn parse_env_list(value: &str) -> Value {
    if value.trim_start().starts_with('[') {
        if let Ok(Some(v)) = serde_saphyr::from_str_with_options::<Option<Value>>(value, yaml_options()) {
            return v;
        }
    }
    Value::Array(
        value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(|i| Value::String(i.to_owned())).collect(),
    )
}

/// A short description of a value for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "no value".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.parse::<f64>().is_ok() => format!("the string {s:?} (remove the quotes for a number)"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}
