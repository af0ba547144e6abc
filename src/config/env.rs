//! The environment's part in the configuration: `RAMPART__SECTION__KEY` overrides for any
//! key, the shorthands `RAMPART_BIND` and `RAMPART_REDIS_URL`, and the secrets, which come
//! only from the environment (a secret key in the file is refused, its value never echoed).

use serde_json::Value;

use super::problems::{dotted, ConfigError, Problems};
use super::tree::{insert, schema_at, yaml_options};
use super::{Secret, Secrets};

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

/// The process environment, skipping variables that are not valid UTF-8.
pub(super) fn process_env() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// The secrets in `env`: the last value of each variable, an empty one counting as unset.
pub(super) fn read_secrets(env: &[(String, String)]) -> Secrets {
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
pub(super) fn reject_secrets(v: &mut Value, path: &mut Vec<String>, p: &mut Problems) {
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
pub(super) fn apply_env(tree: &mut Value, schema: &Value, env: &[(String, String)], p: &mut Problems) {
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
