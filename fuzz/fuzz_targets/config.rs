//! Fuzz target: `Config::from_yaml_str` (src/config/load.rs), the loader behind `--config`
//! and `--check`, on arbitrary YAML with a few environment overrides. The input is the YAML
//! up to its first NUL byte (so a plain YAML file is a seed as it is); the bytes after it
//! are read with `arbitrary` as up to four variables, named after real keys of the schema
//! (`RAMPART__SECTION__KEY`, in any case, or with one part changed), the shorthands, the
//! secrets or free text. It must never panic; an `Err` lists at least one problem, each
//! with a path and a message, and never shows a secret's value; an `Ok` round-trips
//! through its own serialised tree and holds exactly the secrets the environment gave.

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rampart::config::{Config, Secret};
use serde_json::Value;

/// The variables that carry secrets, as `src/config/env.rs` reads them.
const SECRETS: [&str; 4] =
    ["RAMPART_ADMIN_TOKEN", "RAMPART_LLM_API_KEY", "RAMPART_REDIS_PASSWORD", "RAMPART_SESSION_KEY"];

/// Most variables one input sets.
const MAX_VARS: usize = 4;

/// The name of one variable.
#[derive(Arbitrary, Debug)]
enum Name<'a> {
    /// `RAMPART__` and a real key's path, upper case or as in the YAML.
    Key { index: u16, upper: bool },
    /// A real key's path with one of its parts replaced.
    Near { index: u16, part: u8, with: &'a str },
    /// `RAMPART_BIND` or `RAMPART_REDIS_URL`.
    Shorthand(bool),
    /// One of the secret variables.
    Secret(u8),
    /// Anything.
    Raw(&'a str),
}

/// The value of one variable.
#[derive(Arbitrary, Debug)]
enum EnvValue<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Arbitrary, Debug)]
struct Var<'a> {
    name: Name<'a>,
    value: EnvValue<'a>,
}

/// Every scalar key of the defaults' tree, as path parts (`server`, `workers`); a breaker's
/// keys are written as the YAML has them (`circuit_breakers.database.timeout`).
fn keys() -> &'static [Vec<String>] {
    static KEYS: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            match v {
                Value::Object(map) => {
                    for (k, child) in map {
                        path.push(k.clone());
                        walk(child, path, out);
                        path.pop();
                    }
                }
                _ => {
                    let yaml_form: Vec<String> = path.iter().filter(|p| *p != "breakers").cloned().collect();
                    out.push(yaml_form);
                }
            }
        }
        let tree = serde_json::to_value(Config::default()).expect("the defaults serialise");
        let mut out = Vec::new();
        walk(&tree, &mut Vec::new(), &mut out);
        out.push(vec!["supervision".into(), "kinds".into(), "connect4".into(), "max_restarts".into()]);
        out
    })
}

fn env_name(name: &Name<'_>) -> String {
    let keys = keys();
    let dotted = |parts: &[String], upper: bool| {
        let joined = parts.join("__");
        format!("RAMPART__{}", if upper { joined.to_ascii_uppercase() } else { joined })
    };
    match name {
        Name::Key { index, upper } => dotted(&keys[usize::from(*index) % keys.len()], *upper),
        Name::Near { index, part, with } => {
            let mut parts = keys[usize::from(*index) % keys.len()].clone();
            let at = usize::from(*part) % parts.len();
            parts[at] = (*with).to_owned();
            dotted(&parts, true)
        }
        Name::Shorthand(bind) => if *bind { "RAMPART_BIND" } else { "RAMPART_REDIS_URL" }.to_owned(),
        Name::Secret(i) => SECRETS[usize::from(*i) % SECRETS.len()].to_owned(),
        Name::Raw(text) => (*text).to_owned(),
    }
}

fn env_value(value: &EnvValue<'_>) -> String {
    match value {
        EnvValue::Text(t) => (*t).to_owned(),
        EnvValue::Int(i) => i.to_string(),
        EnvValue::Float(f) => f.to_string(),
        EnvValue::Bool(b) => b.to_string(),
    }
}

fn split(data: &[u8]) -> (String, Vec<(String, String)>) {
    let (yaml, rest) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let mut u = Unstructured::new(rest);
    let mut env = Vec::new();
    while env.len() < MAX_VARS && !u.is_empty() {
        let Ok(var) = Var::arbitrary(&mut u) else { break };
        env.push((env_name(&var.name), env_value(&var.value)));
    }
    (String::from_utf8_lossy(yaml).into_owned(), env)
}

fuzz_target!(|data: &[u8]| {
    let (yaml, env) = split(data);
    match Config::from_yaml_str(&yaml, &env) {
        Err(problems) => {
            assert!(!problems.errors.is_empty(), "an Err lists at least one problem");
            for e in &problems.errors {
                assert!(!e.path.trim().is_empty(), "every problem has a path: {e:?}");
                assert!(!e.message.trim().is_empty(), "every problem says what is wrong: {e:?}");
            }
            let shown = problems.to_string();
            for (i, (name, value)) in env.iter().enumerate() {
                if SECRETS.contains(&name.as_str()) && value.len() >= 8 && shown.contains(value.as_str()) {
                    // Shown: only fine when it is there without the secret too (the YAML, or
                    // another variable, says the same text).
                    let mut probe = env.clone();
                    probe[i].1 = "\u{1}probe".to_owned();
                    let again = Config::from_yaml_str(&yaml, &probe).err().map(|p| p.to_string()).unwrap_or_default();
                    assert!(again.contains(value.as_str()), "a secret's value is never shown: {name}");
                }
            }
        }
        Ok(config) => {
            // What the server holds is what it would write back.
            let tree = serde_json::to_value(&config).expect("a loaded config serialises");
            let back: Config = serde_json::from_value(tree).expect("a loaded config's tree deserialises");
            assert_eq!(back, Config { secrets: Default::default(), ..config.clone() }, "the tree round-trips");
            // Secrets only from the environment: the last non-empty value of each.
            let from_env = |var: &str| env.iter().rev().find(|(k, v)| k == var && !v.is_empty()).map(|(_, v)| v);
            let s = &config.secrets;
            for (var, got) in SECRETS.iter().zip([&s.admin_token, &s.llm_api_key, &s.redis_password, &s.session_key]) {
                assert_eq!(got.as_ref().map(Secret::expose), from_env(var).map(String::as_str), "{var}");
            }
        }
    }
});
