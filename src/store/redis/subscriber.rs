//! The relay's subscription connection ([`RedisConn::subscriber`], [`Subscriber`]): Pub/Sub
//! on a RESP3 connection of its own, classic on one node, sharded in a Redis Cluster.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterConfig;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncConnectionConfig, ErrorKind, ProtocolVersion, RedisError, RedisResult};

use super::{RedisConn, Topology};
use crate::store::StoreError;

impl RedisConn {
    /// A RESP3 connection of its own for the relay's subscription, its push messages
    /// (subscribed messages, and `Disconnection` when a connection drops) sent to `push`: to
    /// the primary (found through the Sentinels when configured: with the node it reached,
    /// `host:port`), or in a Redis Cluster a cluster connection whose channels are sharded
    /// ([`Subscriber`]). It is never made again by its owner's [`RedisConn`]: its owner
    /// makes another.
    pub async fn subscriber(
        &self,
        push: impl redis::aio::AsyncPushSender,
    ) -> Result<(Subscriber, Option<String>), StoreError> {
        let timeout = self.settings.command_timeout;
        let node_config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
        let node = |con| Subscriber { con: Subscribed::Node(con), timeout };
        match &self.topology {
            Topology::Direct(client) => {
                let info = client.get_connection_info().clone();
                let resp3 = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
                let client = redis::Client::open(info.set_redis_settings(resp3))
                    .map_err(|e| StoreError::Backend(format!("invalid Redis URL: {:?}", e.kind())))?;
                match client.get_multiplexed_async_connection_with_config(&node_config.set_push_sender(push)).await {
                    Ok(con) => Ok((node(con), None)),
                    Err(e) => Err(StoreError::Backend(self.scrub(&format!("redis subscribe: could not connect: {e}")))),
                }
            }
            Topology::Sentinel(sentinels) => match sentinels.connect(&node_config.set_push_sender(push), true).await {
                Ok((con, reached)) => Ok((node(con), Some(reached))),
                Err(missing) => Err(StoreError::Backend(
                    self.scrub(&format!("redis subscribe: no primary found through Sentinel: {}", missing.why)),
                )),
            },
            Topology::Cluster(clients) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout)
                    .set_push_sender(push);
                match clients.subscriber.get_async_connection_with_config(config).await {
                    Ok(con) => Ok((Subscriber { con: Subscribed::Cluster(con), timeout }, None)),
                    Err(e) => Err(StoreError::Backend(
                        self.scrub(&format!("redis subscribe: could not reach the Redis Cluster: {e}")),
                    )),
                }
            }
        }
    }
}

/// The relay's subscription connection ([`RedisConn::subscriber`]): one node's RESP3
/// connection (classic Pub/Sub), or in a Redis Cluster a RESP3 cluster connection (sharded
/// Pub/Sub: each channel subscribed on the primary of its slot, and subscribed again there
/// by the client when the slot moves or the node's connection is made again).
pub struct Subscriber {
    con: Subscribed,
    timeout: Duration,
}

enum Subscribed {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Subscriber {
    /// Whether its channels are sharded (a Redis Cluster): messages arrive as `smessage`
    /// pushes, and a channel's slot moving away ends its subscription (`sunsubscribe`).
    pub fn sharded(&self) -> bool {
        matches!(self.con, Subscribed::Cluster(_))
    }

    /// Subscribes to `channels`: `SUBSCRIBE`, or in a Redis Cluster `SSUBSCRIBE` for each
    /// channel on its own (two channels are in two slots, perhaps on two primaries).
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match &mut self.con {
            Subscribed::Node(con) => con.subscribe(channels).await,
            Subscribed::Cluster(con) => {
                for channel in channels {
                    con.ssubscribe(channel).await?;
                }
                Ok(())
            }
        }
    }

    /// A keep-alive, within the command timeout: `PING` on the node; in a Redis Cluster,
    /// `PUBSUB SHARDNUMSUB` of each channel on the primary of its slot, which must count a
    /// subscriber (a `PING` proves nothing there: the client answers a command for a slot
    /// whose primary it lost from another node, and does not always subscribe again on the
    /// replica promoted in its place). An error when it does not answer, or a channel has
    /// no subscriber where it lives.
    pub async fn ping(&mut self, channels: &[String]) -> RedisResult<()> {
        let timed_out = || RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        match &mut self.con {
            Subscribed::Node(con) => {
                let cmd = redis::cmd("PING");
                let ping = cmd.query_async::<String>(con);
                tokio::time::timeout(self.timeout, ping).await.map_err(|_| timed_out())?.map(drop)
            }
            Subscribed::Cluster(con) => {
                let checks = async {
                    for channel in channels {
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                            channel.as_bytes(),
                            SlotAddr::Master,
                        )));
                        let mut cmd = redis::cmd("PUBSUB");
                        cmd.arg("SHARDNUMSUB").arg(channel);
                        let (_, listeners): (String, i64) =
                            redis::from_redis_value(con.route_command(cmd, route).await?)?;
                        if listeners == 0 {
                            return Err(RedisError::from((
                                ErrorKind::Client,
                                "not subscribed",
                                format!("{channel} has no subscriber on the primary of its slot"),
                            )));
                        }
                    }
                    Ok(())
                };
                tokio::time::timeout(self.timeout, checks).await.map_err(|_| timed_out())?
            }
        }
    }
}
