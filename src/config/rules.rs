//! The rules a range cannot say: the garde rules of single fields (a network, a URL
//! without credentials, text that is not blank) and the rules that span fields, each
//! checked only when its fields are fine on their own.

use super::net::Net;
use super::problems::Problems;
use super::supervision::RestartPolicyConfig;
use super::Config;

/// The rules that span fields, each checked only when its fields are fine on their own.
pub(super) fn cross_field_rules(c: &Config, p: &mut Problems) {
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
    let policy_rule = |d: &RestartPolicyConfig| {
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
    let r = &c.redis;
    if p.clean(&["redis.sentinels", "redis.cluster_nodes"]) && !r.sentinels.is_empty() && !r.cluster_nodes.is_empty() {
        p.add(
            "redis.cluster_nodes",
            "set either redis.sentinels (a primary and its replicas, the primary named by the Sentinels) or \
             redis.cluster_nodes (a Redis Cluster, which fails over by itself), not both",
        );
    }
    if p.clean(&["redis.url", "redis.cluster_nodes"]) && !r.cluster_nodes.is_empty() {
        if let Some(db) = redis_database(&r.url).filter(|db| *db != "0") {
            p.add(
                "redis.url",
                format!("a Redis Cluster has only database 0 (redis.cluster_nodes is set), got database {db:?}"),
            );
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
    Net::parse(text).map(|_| ()).map_err(garde::Error::new)
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

/// The database a `redis://host:port/DB` URL names, if it names one.
fn redis_database(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("redis://")?;
    let path = rest.split(['?', '#']).next()?;
    let (_, db) = path.split_once('/')?;
    (!db.is_empty()).then_some(db)
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
