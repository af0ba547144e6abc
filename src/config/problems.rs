//! How a configuration problem is reported: [`ConfigError`] (a YAML path and a sentence),
//! [`ConfigErrors`] (all of them), and the words used: key paths, values, garde's and
//! serde's messages rewritten as sentences.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

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

/// A key path as problems show it, `server.workers`: a key that is empty, holds a `.` or
/// starts or ends with whitespace is quoted (`""`, `"server.workers"`), so every path names
/// exactly one place.
pub(super) fn dotted(path: &[String]) -> String {
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
#[derive(Default)]
pub(super) struct Problems {
    /// The problems, in the order found.
    pub(super) errors: Vec<ConfigError>,
    /// The variable that set each path the environment set.
    pub(super) origins: BTreeMap<String, String>,
    bad: BTreeSet<String>,
}

impl Problems {
    /// Records a problem at `path`, naming the variable that set it if one did.
    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
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
    pub(super) fn clean(&self, paths: &[&str]) -> bool {
        paths.iter().all(|p| !self.bad.contains(*p))
    }
}

/// garde's rule messages as sentences with the value found: `greater than 64` is
/// `must be at most 64, got 65`.
pub(super) fn rule_message(message: &str, got: Option<String>) -> String {
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
pub(super) fn plain_types(message: &str) -> String {
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

/// A short description of a value for error messages.
pub(super) fn describe(v: &Value) -> String {
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
