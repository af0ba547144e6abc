//! The connection the stores share, whatever the topology ([`Connection`]): a connection
//! manager behind one address, a connection to the primary the Sentinels name, or
//! redis-rs's cluster connection; how each is made ([`fresh`]) and what a failed call says
//! about it ([`verdict`]: sound, broken, or on a node that cannot take writes).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, ProtocolVersion, RedisError,
    RedisFuture, RedisResult, ServerErrorKind, Value,
};
use tokio::sync::OnceCell;

use super::sentinel::Sentinels;
use super::RedisSettings;

/// Connection attempts after the first, per reconnect. Few: while Redis is down a call
/// fails as soon as they are spent instead of waiting out its whole timeout, and the next
/// call starts a new reconnect, so reconnecting is driven by use (and the breaker).
const RECONNECT_RETRIES: usize = 1;

/// The delay before the first reconnect attempt after the connection drops.
pub(super) const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);

/// How a connection finds the primary.
#[derive(Clone)]
pub(super) enum Topology {
    /// At the URL's address (a single node, or HAProxy or a DNS name in front).
    Direct(redis::Client),
    /// Wherever the Sentinels say when the connection is made (one resolver, shared by
    /// every connection made from the same settings).
    Sentinel(Arc<Sentinels>),
    /// A Redis Cluster: the client for the stores (RESP2) and the one for the relay's
    /// subscriber (RESP3, for its push messages), on the same seed nodes.
    Cluster(Arc<Clients>),
}

/// The two cluster clients of one set of seed nodes.
pub(super) struct Clients {
    pub(super) stores: ClusterClient,
    pub(super) subscriber: ClusterClient,
}

/// One connection to the primary, as the stores use it (`query_async`, pipelines,
/// scripts): a clone shares it. Behind one address, a connection manager that reconnects
/// to that address by itself; through Sentinel, one connection to the primary they name,
/// found on its first call (calls made meanwhile wait for the same lookup) and never made
/// again by itself: once it fails, [`RedisConn`] replaces it and the next call asks the
/// Sentinels again. In a Redis Cluster, redis-rs's cluster connection: a connection to
/// every node, each command sent to the primary of its key's slot (a pipeline whole to the
/// node of its first key), redirections and a failover followed by the client.
#[derive(Clone)]
pub struct Connection(pub(super) Inner);

#[derive(Clone)]
pub(super) enum Inner {
    Managed(ConnectionManager),
    Found(Arc<Found>),
    Cluster(ClusterConnection),
}

/// A connection the Sentinels will name (or named) the node of.
pub(super) struct Found {
    sentinels: Arc<Sentinels>,
    config: AsyncConnectionConfig,
    /// The connection and the node (`host:port`) it reached.
    con: OnceCell<(MultiplexedConnection, String)>,
}

impl Found {
    /// The connection, found on the first call; a failed lookup is an I/O error (the
    /// connection is made again, and the Sentinels asked again, on the next call).
    async fn get(&self) -> RedisResult<MultiplexedConnection> {
        let found = self.con.get_or_try_init(|| async {
            match self.sentinels.connect(&self.config, false).await {
                Ok(found) => Ok(found),
                Err(missing) => Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    format!(
                        "no Redis primary found through Sentinel {:?}: {}",
                        self.sentinels.master_name(),
                        missing.why
                    ),
                ))),
            }
        });
        found.await.map(|(con, _)| con.clone())
    }

    /// Whether it reached another node than the one the Sentinels name now.
    pub(super) fn stale(&self) -> bool {
        match (self.con.get(), self.sentinels.named()) {
            (Some((_, reached)), Some(named)) => *reached != named,
            _ => false,
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Managed(manager) => manager.req_packed_command(cmd),
            Inner::Found(found) => Box::pin(async move { found.get().await?.req_packed_command(cmd).await }),
            Inner::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Managed(manager) => manager.req_packed_commands(pipeline, offset, count),
            Inner::Found(found) => {
                Box::pin(async move { found.get().await?.req_packed_commands(pipeline, offset, count).await })
            }
            Inner::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Managed(manager) => manager.get_db(),
            Inner::Found(found) => found.sentinels.db(),
            Inner::Cluster(cluster) => cluster.get_db(),
        }
    }
}

/// What a failed call says about the connection it ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The server answered with an error of the command's own: the connection is fine.
    Sound,
    /// Dropped, refused, broken or silent past the command timeout: make a new one.
    Broken,
    /// The node cannot take writes (a replica, loading, its primary down; the code it
    /// answered): make a new one, and the call fails as [`StoreError::NotWritable`].
    NotWritable(&'static str),
}

/// The Redis error codes that mean "this node cannot take writes now".
const NOT_WRITABLE_CODES: [&str; 3] = ["READONLY", "LOADING", "MASTERDOWN"];

/// A connection that connects on its first call.
pub(super) fn fresh(topology: &Topology, settings: &RedisSettings) -> RedisResult<Connection> {
    Ok(Connection(match topology {
        Topology::Direct(client) => {
            Inner::Managed(ConnectionManager::new_lazy_with_config(client.clone(), manager_config(settings))?)
        }
        Topology::Sentinel(sentinels) => {
            let timeout = Some(settings.command_timeout);
            Inner::Found(Arc::new(Found {
                sentinels: sentinels.clone(),
                config: AsyncConnectionConfig::new().set_connection_timeout(timeout).set_response_timeout(timeout),
                con: OnceCell::new(),
            }))
        }
        // Connects in the background: a call made before it is up waits for it (or fails
        // when no seed node answers, and the next call's fresh connection tries again).
        Topology::Cluster(clients) => Inner::Cluster(
            clients.stores.get_pending_async_connection_with_config(
                ClusterConfig::new()
                    .set_connection_timeout(settings.command_timeout)
                    .set_response_timeout(settings.command_timeout),
            ),
        ),
    }))
}

impl Clients {
    /// The clients of the seed nodes `nodes` (`host:port`), each node reached with `node`'s
    /// settings (the password from `redis.url`). Retries (a redirection, a node that is down
    /// or failing over) wait from [`RECONNECT_MIN_DELAY`] up to `reconnect_max_delay`; the
    /// command timeout bounds every call as a whole ([`RedisConn::timed`]).
    pub(super) fn new(nodes: &[String], node: &ConnectionInfo, settings: &RedisSettings) -> RedisResult<Clients> {
        let seeds = nodes
            .iter()
            .map(|text| {
                let (host, port) = crate::config::RedisConfig::node_address(text)
                    .map_err(|why| RedisError::from((ErrorKind::InvalidClientConfig, "bad seed node", why)))?;
                Ok(node.clone().set_addr(ConnectionAddr::Tcp(host, port)))
            })
            .collect::<RedisResult<Vec<ConnectionInfo>>>()?;
        let max_wait = settings.reconnect_max_delay.max(RECONNECT_MIN_DELAY).as_millis() as u64;
        let builder = |protocol| {
            ClusterClientBuilder::new(seeds.clone())
                .use_protocol(protocol)
                .min_retry_wait(RECONNECT_MIN_DELAY.as_millis() as u64)
                .max_retry_wait(max_wait)
                .build()
        };
        Ok(Clients { stores: builder(ProtocolVersion::RESP2)?, subscriber: builder(ProtocolVersion::RESP3)? })
    }
}

/// The connection manager's settings: capped backoff, one retry, timeouts.
pub fn manager_config(settings: &RedisSettings) -> ConnectionManagerConfig {
    let max_delay = settings.reconnect_max_delay.max(Duration::from_millis(1));
    ConnectionManagerConfig::new()
        .set_min_delay(RECONNECT_MIN_DELAY.min(max_delay))
        .set_max_delay(max_delay)
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_connection_timeout(Some(settings.command_timeout))
        .set_response_timeout(Some(settings.command_timeout))
}

/// What `e` says about the connection it came from. A server's error reply leaves the
/// connection sound, except one of [`NOT_WRITABLE_CODES`] (also when a script or a
/// transaction passes it on); anything else (I/O, a dropped or refused connection, a reply
/// that does not parse) means the connection cannot be trusted.
pub(super) fn verdict(e: &RedisError) -> Verdict {
    match e.kind() {
        ErrorKind::Server(ServerErrorKind::ReadOnly) => Verdict::NotWritable("READONLY"),
        ErrorKind::Server(ServerErrorKind::BusyLoading) => Verdict::NotWritable("LOADING"),
        ErrorKind::Server(ServerErrorKind::MasterDown) => Verdict::NotWritable("MASTERDOWN"),
        ErrorKind::Server(_) | ErrorKind::Extension => {
            // Passed on by a script or a pipeline: find the code in the words of the reply.
            let text = e.to_string();
            let named = |word: &str| NOT_WRITABLE_CODES.iter().copied().find(|code| *code == word);
            match e.code().and_then(named).or_else(|| text.split(|c: char| !c.is_ascii_alphanumeric()).find_map(named))
            {
                Some(code) => Verdict::NotWritable(code),
                None => Verdict::Sound,
            }
        }
        ErrorKind::UnexpectedReturnType | ErrorKind::Client | ErrorKind::InvalidClientConfig => Verdict::Sound,
        _ if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout() => {
            Verdict::Broken
        }
        _ => Verdict::Sound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_cannot_take_writes_or_a_broken_connection_has_the_connection_made_again() {
        let server = |kind| RedisError::from((ErrorKind::Server(kind), "the node says so"));
        assert_eq!(verdict(&server(ServerErrorKind::ReadOnly)), Verdict::NotWritable("READONLY"));
        assert_eq!(verdict(&server(ServerErrorKind::BusyLoading)), Verdict::NotWritable("LOADING"));
        assert_eq!(verdict(&server(ServerErrorKind::MasterDown)), Verdict::NotWritable("MASTERDOWN"));
        let passed_on = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "script failed",
            "@user_script:1: -READONLY You can't write against a read only replica.".to_owned(),
        ));
        assert_eq!(verdict(&passed_on), Verdict::NotWritable("READONLY"));
        let own = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "WRONGTYPE", "reading".into()));
        assert_eq!(verdict(&own), Verdict::Sound, "the command's own error leaves the connection be");
        assert_eq!(verdict(&RedisError::from((ErrorKind::UnexpectedReturnType, "not a number"))), Verdict::Sound);
        for kind in
            [std::io::ErrorKind::ConnectionRefused, std::io::ErrorKind::BrokenPipe, std::io::ErrorKind::TimedOut]
        {
            assert_eq!(verdict(&RedisError::from(std::io::Error::from(kind))), Verdict::Broken, "{kind:?}");
        }
    }
}
