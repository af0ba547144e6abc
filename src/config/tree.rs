//! The YAML as a tree (`serde_json::Value`) before it is typed: how it is read, the walk
//! against the defaults' own tree that finds unknown keys (so the schema is the types
//! themselves), the breakers moved from beside the section's keys into `breakers`, and the
//! small edits the loader makes.

use serde_json::{Map, Value};

use super::breakers::{BreakerConfig, CircuitBreakersConfig};
use super::problems::{describe, dotted, Problems};
use super::supervision::PartialRestartPolicy;

/// The keys of `circuit_breakers` itself; every other key there names a breaker.
const BREAKER_SECTION_KEYS: [&str; 3] = ["enabled", "default_failure_threshold", "default_timeout"];

/// How YAML is read, the file's and each environment value alike: only `true` and `false`
/// are booleans, errors carry no snippet of the text, and `.inf` or `.nan` is read as a
/// string (so it fails as a number, with its path).
pub(super) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
    }
}

/// The schema node at `path`: map entries (a breaker, a game kind) use the template of an
/// entry, so any name is a key there.
pub(super) fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
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
        ["circuit_breakers"] => {
            Some(BREAKER.get_or_init(|| serde_json::to_value(BreakerConfig::default()).unwrap_or_default()))
        }
        ["supervision", "kinds"] => {
            Some(KIND.get_or_init(|| serde_json::to_value(PartialRestartPolicy::default()).unwrap_or_default()))
        }
        _ => None,
    }
}

/// Reports (and removes) the keys no type has, and mappings where a value belongs (or the
/// reverse); an empty section (`server:`) stands for the defaults.
pub(super) fn unknown_keys(v: &mut Value, schema: &Value, path: &mut Vec<String>, p: &mut Problems) {
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
pub(super) fn move_breakers(tree: &mut Value) {
    let Some(section) = tree.get_mut("circuit_breakers").and_then(Value::as_object_mut) else { return };
    let defaults = CircuitBreakersConfig::default();
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

/// Sets `path` in the tree, creating sections. False when a section on the way is not a
/// mapping (the walk reports that).
pub(super) fn insert(tree: &mut Value, path: &[String], value: Value) -> bool {
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

/// The value at `path`, if there is one.
pub(super) fn value_at<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, key| node.get(key))
}

/// Drops the key at `path`; false when there is none.
pub(super) fn remove(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut node = tree;
    for key in parents {
        let Some(next) = node.get_mut(key) else { return false };
        node = next;
    }
    node.as_object_mut().is_some_and(|map| map.remove(last).is_some())
}
