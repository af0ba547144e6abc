//! The OpenAPI schemas written by hand, for the breaker view's `config` and `counters`:
//! `BreakerConfig` lives in the configuration, which knows nothing of the wire, and is
//! served under the YAML's key names; both are served inline. tests/openapi.rs checks that
//! they name exactly the fields served.

use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Schema, SchemaType, Type};

/// An object schema: every property required, as `(name, schema)`.
fn object_of(description: &str, properties: Vec<(&str, Schema)>) -> Object {
    let mut object = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
    for (name, schema) in properties {
        object = object.property(name, schema).required(name);
    }
    object.build()
}

fn typed(kind: Type, description: &str) -> Schema {
    ObjectBuilder::new().schema_type(kind).description(Some(description)).build().into()
}

fn count(description: &str) -> Schema {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).description(Some(description)).build().into()
}

fn or_null(kind: Type, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([kind, Type::Null]))
        .description(Some(description))
        .build()
        .into()
}

/// The schema of [`CallCounts`](super::views::CallCounts), inline in `BreakerView` as served.
pub(super) fn call_counts_schema() -> Object {
    object_of(
        "Calls through the breaker by outcome.",
        vec![
            ("success", count("Calls that succeeded.")),
            ("failure", count("Calls that failed (including slow calls).")),
            ("timeout", count("Calls cut (or overrun) by the call timeout.")),
            ("rejected", count("Calls refused without being made.")),
            ("ignored", count("Calls classified as ignored, or cancelled before they finished.")),
            ("slow", count("Calls slower than `slow_call_ms` (also counted in `failure`).")),
        ],
    )
}

/// The schema of [`BreakerConfig`](crate::config::BreakerConfig) as it is served (the YAML's
/// key names).
pub(super) fn breaker_config_schema() -> Object {
    object_of(
        "The breaker's configuration, with the YAML's key names (`circuit_breakers.<name>`).",
        vec![
            ("enabled", typed(Type::Boolean, "false: a pass-through that counts calls and never refuses one.")),
            ("failure_threshold", count("Consecutive failures that trip it.")),
            ("timeout", typed(Type::Number, "Seconds it stays open after tripping.")),
            ("timeout_max", typed(Type::Number, "The longest open period when it grows, seconds.")),
            ("timeout_multiplier", typed(Type::Number, "Growth of the open period after each failed probe.")),
            ("jitter", typed(Type::Number, "Each open period is scaled by a random factor in 1 ± jitter.")),
            (
                "failure_rate_threshold_pct",
                or_null(Type::Number, "Also trip at this failure % in the window; null: off."),
            ),
            ("failure_rate_window_calls", count("Calls in the failure-rate window.")),
            ("failure_rate_min_calls", count("Calls the window must hold before the rate counts.")),
            ("slow_call_ms", or_null(Type::Integer, "Calls slower than this (ms) count as failures; null: off.")),
            ("call_timeout_ms", count("Every call's timeout, ms.")),
            ("half_open_max_probes", count("Probe calls in flight at once while half-open.")),
            ("half_open_successes", count("Successful probes that close it.")),
            (
                "operations",
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String).description(Some("An operation's name.")))
                    .description(Some("The operations it protects, for operators."))
                    .build()
                    .into(),
            ),
        ],
    )
}
