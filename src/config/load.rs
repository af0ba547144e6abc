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
//!
//! The steps' parts live beside this file: `tree.rs` (reading the YAML, the unknown-key walk),
//! `env.rs` (the environment and the secrets), `rules.rs` (the rules garde's ranges cannot
//! say) and `problems.rs` (how each problem reads).

use std::path::Path;

use garde::Validate as _;
use serde_json::{Map, Value};

use super::breakers::{CircuitBreakersConfig, BUILT_IN_BREAKERS, YAML_NAMES};
use super::env::{apply_env, process_env, read_secrets, reject_secrets};
use super::problems::{describe, dotted, plain_types, rule_message, ConfigError, ConfigErrors, Problems};
use super::rules::cross_field_rules;
use super::tree::{move_breakers, remove, unknown_keys, value_at, yaml_options};
use super::Config;

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

fn load(text: &str, source: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
    let mut p = Problems::default();
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
                if let Some((rust, yaml)) = YAML_NAMES.iter().find(|(r, _)| path.ends_with(&format!(".{r}"))) {
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
            let built_in = CircuitBreakersConfig::default().breakers.remove(name).unwrap_or_default();
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
