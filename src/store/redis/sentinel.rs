//! Finding the Redis primary through Redis Sentinel (`redis.sentinels`, docs/DESIGN.md D10).
//! [`Sentinels`] is the one resolver every connection to the data nodes goes through when
//! Sentinels are configured: it asks them in turn `SENTINEL get-master-addr-by-name NAME`
//! (starting with the one that answered last), connects to the address named, and keeps the
//! connection only when `ROLE` there says `master`, so a connection made during a failover
//! or a switchover never lands on the demoted node. It holds no connection of its own:
//! each connection is found afresh when it is made (at start and after every failure), and
//! what happens to it afterwards is the caller's (`RedisConn`, the relay's subscriber).
//!
//! A planned switchover leaves the old primary a working master for a while: Sentinel
//! turns it into a replica only once it has reported itself a master for about 8 s after
//! the promotion (measured here: 10.1 s), and every write it takes meanwhile is lost when
//! it resyncs. So a watch ([`Sentinels::watch`]) asks a Sentinel (the one lookups ask
//! first) for the primary every [`WATCH_EVERY`] and publishes its answer
//! ([`Sentinels::named`]): a connection that reached another node is then made again, to
//! the one named (`RedisConn::manager`, the relay's subscriber).
//!
//! The Sentinels are asked without credentials (`requirepass` on the Sentinels themselves
//! is not supported); `redis.url`'s password and database apply to the data nodes.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ProtocolVersion, RedisConnectionInfo, Role};

use crate::config::RedisConfig;

/// The shortest time one Sentinel is given to answer.
const MIN_ASK_TIMEOUT: Duration = Duration::from_millis(20);

/// How often the watch asks a Sentinel which node is the primary.
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// The Sentinels of one primary, and what they said last.
pub struct Sentinels {
    /// `(host, port)` of each Sentinel, in the configured order.
    addrs: Vec<(String, u16)>,
    /// The name the Sentinels monitor the primary under.
    master_name: String,
    /// How to talk to a data node (password, database, protocol); its address is the
    /// Sentinels' answer.
    node: ConnectionInfo,
    /// How long one Sentinel has to answer: a fraction of the command timeout, so a silent
    /// one leaves time to ask the next.
    ask_timeout: Duration,
    /// How long the named primary has to accept the connection and answer `ROLE`.
    node_timeout: Duration,
    state: Mutex<State>,
    /// The primary (`host:port`) the watch's Sentinel named last; `None` before it answered.
    named: tokio::sync::watch::Sender<Option<String>>,
}

/// What the last lookup found.
#[derive(Default)]
struct State {
    /// The Sentinel to ask first: the one that named the primary last.
    first: usize,
    /// The primary found last (`host:port`), to log a change at INFO once.
    primary: Option<String>,
    /// A WARN said that no Sentinel answered; quiet until one does again.
    warned: bool,
}

/// Why a lookup found no primary.
#[derive(Debug)]
pub struct NotFound {
    /// No Sentinel answered at all (rather than naming a node that is down or a replica).
    pub silent: bool,
    /// What each Sentinel (and each node named) said, one clause each.
    pub why: String,
}

impl Sentinels {
    /// The Sentinels at `addresses` (`host:port`; checked by the config), watching
    /// `master_name`; `node` is the data nodes' connection settings (from `redis.url`: its
    /// password and database). `timeout` is the command timeout: a lookup asks each
    /// Sentinel for at most a quarter of it.
    pub fn new(
        addresses: &[String],
        master_name: &str,
        node: &ConnectionInfo,
        timeout: Duration,
    ) -> Result<Sentinels, String> {
        let addrs = addresses.iter().map(|a| RedisConfig::node_address(a)).collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err("no Sentinel address".to_owned());
        }
        Ok(Sentinels {
            addrs,
            master_name: master_name.to_owned(),
            node: node.clone(),
            ask_timeout: (timeout / 4).max(MIN_ASK_TIMEOUT),
            node_timeout: timeout,
            state: Mutex::new(State::default()),
            named: tokio::sync::watch::Sender::new(None),
        })
    }

    /// The primary the Sentinels name now, as the watch heard it last (`None` before its
    /// first answer). A connection to another node is to be made again.
    pub fn named(&self) -> Option<String> {
        self.named.borrow().clone()
    }

    /// Told each time the watch hears another primary named (the relay's subscriber waits
    /// on it).
    pub fn on_named(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.named.subscribe()
    }

    /// Starts the watch (a task on the current Tokio runtime, ended when the last handle on
    /// `sentinels` is dropped): every [`WATCH_EVERY`] it asks the Sentinel that lookups ask
    /// first (the next one when it does not answer, which lookups then ask first too) which
    /// node is the primary, and publishes the answer when it changed.
    pub fn watch(sentinels: &Arc<Sentinels>) {
        let weak: Weak<Sentinels> = Arc::downgrade(sentinels);
        tokio::spawn(async move {
            let mut at = None::<(usize, MultiplexedConnection)>;
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let Some(sentinels) = weak.upgrade() else { return };
                let first = sentinels.lock().first;
                if at.as_ref().is_none_or(|(i, _)| *i != first) {
                    let (host, port) = &sentinels.addrs[first];
                    let made =
                        tokio::time::timeout(sentinels.ask_timeout, sentinels.sentinel_connection(host, *port)).await;
                    at = match made {
                        Ok(Ok(con)) => Some((first, con)),
                        _ => {
                            sentinels.next_first(first);
                            continue;
                        }
                    };
                }
                let Some((_, con)) = at.as_mut() else { continue };
                let named = match tokio::time::timeout(sentinels.ask_timeout, sentinels.ask_on(con)).await {
                    Ok(Ok(Some((ip, port)))) => format!("{ip}:{port}"),
                    Ok(Ok(None)) => continue,
                    // Silent or failed: the next Sentinel is asked next time.
                    _ => {
                        at = None;
                        sentinels.next_first(first);
                        continue;
                    }
                };
                let before = sentinels.named();
                if before.as_deref() == Some(named.as_str()) {
                    continue;
                }
                let reached = sentinels.lock().primary.clone();
                if reached.as_ref().is_some_and(|r| *r != named) {
                    tracing::info!(
                        primary = %named,
                        before = %reached.as_deref().unwrap_or("none"),
                        master_name = %sentinels.master_name,
                        "the Redis Sentinels name another primary (a failover or a switchover): connections to another node are made again to it"
                    );
                }
                sentinels.named.send_replace(Some(named));
            }
        });
    }

    /// The Sentinel after `i` is asked first from now on (unless another one answered since).
    fn next_first(&self, i: usize) {
        let mut state = self.lock();
        if state.first == i {
            state.first = (i + 1) % self.addrs.len();
        }
    }

    /// The database the data connections select.
    pub fn db(&self) -> i64 {
        self.node.redis_settings().db()
    }

    /// The name the primary is monitored under.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// A new connection to the primary the Sentinels name now, made with `config` (RESP3
    /// when `resp3`, for push messages), checked with `ROLE`; with the address it reached.
    /// Each Sentinel is asked in turn until one names a node that answers as a master.
    pub async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        resp3: bool,
    ) -> Result<(MultiplexedConnection, String), NotFound> {
        let first = self.lock().first;
        let mut said = Vec::new();
        let mut answered = false;
        let mut checked: Vec<(String, u16)> = Vec::new();
        for i in (0..self.addrs.len()).map(|k| (first + k) % self.addrs.len()) {
            let (host, port) = &self.addrs[i];
            let sentinel = format!("{host}:{port}");
            let named = match tokio::time::timeout(self.ask_timeout, self.ask(host, *port)).await {
                Ok(Ok(Some(named))) => named,
                Ok(Ok(None)) => {
                    answered = true;
                    said.push(format!("Sentinel {sentinel} does not know {:?}", self.master_name));
                    continue;
                }
                Ok(Err(e)) => {
                    said.push(format!("Sentinel {sentinel}: {e}"));
                    continue;
                }
                Err(_) => {
                    said.push(format!("Sentinel {sentinel}: no answer within {} ms", self.ask_timeout.as_millis()));
                    continue;
                }
            };
            answered = true;
            let primary = format!("{}:{}", named.0, named.1);
            if checked.contains(&named) {
                said.push(format!("Sentinel {sentinel} names {primary} too"));
                continue;
            }
            checked.push(named.clone());
            match tokio::time::timeout(self.node_timeout, self.master_at(&named, config, resp3)).await {
                Ok(Ok(con)) => {
                    self.found(i, &primary, &sentinel);
                    return Ok((con, primary));
                }
                Ok(Err(e)) => said.push(format!("Sentinel {sentinel} names {primary}, {e}")),
                Err(_) => said.push(format!(
                    "Sentinel {sentinel} names {primary}, which did not answer within {} ms",
                    self.node_timeout.as_millis()
                )),
            }
        }
        let why = said.join("; ");
        let mut state = self.lock();
        if !answered && !state.warned {
            state.warned = true;
            tracing::warn!(
                master_name = %self.master_name,
                "no Redis Sentinel answered: the primary cannot be found until one does ({why})"
            );
        }
        Err(NotFound { silent: !answered, why })
    }

    /// Asks one Sentinel for the primary's address (`None`: it does not know the name).
    async fn ask(&self, host: &str, port: u16) -> redis::RedisResult<Option<(String, u16)>> {
        let mut con = self.sentinel_connection(host, port).await?;
        self.ask_on(&mut con).await
    }

    /// A connection to one Sentinel (no credentials).
    async fn sentinel_connection(&self, host: &str, port: u16) -> redis::RedisResult<MultiplexedConnection> {
        let info = self
            .node
            .clone()
            .set_addr(ConnectionAddr::Tcp(host.to_owned(), port))
            .set_redis_settings(RedisConnectionInfo::default());
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.ask_timeout))
            .set_response_timeout(Some(self.ask_timeout));
        redis::Client::open(info)?.get_multiplexed_async_connection_with_config(&config).await
    }

    /// `SENTINEL get-master-addr-by-name` on a Sentinel's connection.
    async fn ask_on(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<Option<(String, u16)>> {
        let answer: Option<(String, String)> =
            redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&self.master_name).query_async(con).await?;
        match answer {
            None => Ok(None),
            Some((ip, port)) => match port.parse() {
                Ok(port) => Ok(Some((ip, port))),
                Err(_) => Err((redis::ErrorKind::UnexpectedReturnType, "a port that is not a number").into()),
            },
        }
    }

    /// A connection to `addr` when it answers `ROLE` as a master; else why not (a clause).
    async fn master_at(
        &self,
        addr: &(String, u16),
        config: &AsyncConnectionConfig,
        resp3: bool,
    ) -> Result<MultiplexedConnection, String> {
        let mut settings = self.node.redis_settings().clone();
        if resp3 {
            settings = settings.set_protocol(ProtocolVersion::RESP3);
        }
        let info = self.node.clone().set_addr(ConnectionAddr::Tcp(addr.0.clone(), addr.1)).set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| format!("which cannot be reached: {:?}", e.kind()))?;
        let mut con = client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map_err(|e| format!("which did not answer: {e}"))?;
        let role: Role =
            redis::cmd("ROLE").query_async(&mut con).await.map_err(|e| format!("whose ROLE failed: {e}"))?;
        match role {
            Role::Primary { .. } => Ok(con),
            Role::Replica { primary_ip, primary_port, .. } => {
                Err(format!("which is a replica (of {primary_ip}:{primary_port})"))
            }
            _ => Err("which is not a data node".to_owned()),
        }
    }

    /// Remembers that Sentinel `i` named `primary` (asked first from now on, by lookups and
    /// the watch; its answer is the one named now); logs a new primary at INFO.
    fn found(&self, i: usize, primary: &str, sentinel: &str) {
        self.named.send_if_modified(|named| {
            let changed = named.as_deref() != Some(primary);
            if changed {
                *named = Some(primary.to_owned());
            }
            changed
        });
        let mut state = self.lock();
        state.first = i;
        state.warned = false;
        if state.primary.as_deref() != Some(primary) {
            let before = state.primary.replace(primary.to_owned());
            tracing::info!(
                primary = %primary,
                before = before.as_deref().unwrap_or("none"),
                sentinel = %sentinel,
                master_name = %self.master_name,
                "the Redis Sentinels name the primary; connections go to it"
            );
        } else {
            tracing::debug!(primary = %primary, sentinel = %sentinel, "connected to the Redis primary again");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_addresses_are_host_and_port() {
        let parse_address = RedisConfig::node_address;
        assert_eq!(parse_address("127.0.0.1:26379"), Ok(("127.0.0.1".to_owned(), 26379)));
        assert_eq!(parse_address("sentinel-1.internal:26379"), Ok(("sentinel-1.internal".to_owned(), 26379)));
        assert_eq!(parse_address("[::1]:26379"), Ok(("::1".to_owned(), 26379)));
        for bad in ["", "host", "host:", ":26379", "host:0", "host:65536", "::1:26379", "redis://host:1", "a b:1"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }
}
