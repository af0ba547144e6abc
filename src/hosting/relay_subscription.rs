//! The relay's subscription (docs/DESIGN.md D11): this instance's inbox and the lobby
//! channel kept subscribed for as long as the relay lives, on a connection of their own,
//! made again at once when it drops; every gap is reported to the relay
//! (`on_gap`), which has the relayed seats resynced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::store::redis::RedisConn;

/// How often the subscriber pings its connection: a peer that vanished without a reset
/// (a dead host) is noticed by a ping that fails, one that reset by the `Disconnection` the
/// client pushes at once.
const SUBSCRIBER_PING: Duration = Duration::from_secs(1);

/// The first wait before the subscriber connects again after an attempt failed; it doubles
/// up to [`SUBSCRIBER_RETRY_MAX`] (and never past `redis.reconnect_max_delay_ms`). Short: an
/// attempt while Redis is down is a refused connection, and the wait is the gap between
/// Redis answering again and the relay hearing its inbox.
const SUBSCRIBER_RETRY_MIN: Duration = Duration::from_millis(25);

/// The longest wait between the subscriber's connection attempts.
const SUBSCRIBER_RETRY_MAX: Duration = Duration::from_millis(100);

/// Keeps `channels` subscribed for as long as the relay lives, their messages (and the
/// subscription confirmations) sent to `tx`. Each round makes a connection of its own to
/// the primary ([`RedisConn::subscriber`]: the Sentinels are asked again each time),
/// subscribes, and waits for the connection to drop (the client's `Disconnection` push), a
/// ping to fail, or the Sentinels to name another primary; then it starts the next round at
/// once. Messages published between the drop and the new subscription are lost (Pub/Sub
/// keeps nothing): the relay's requests time out and are retried.
///
/// In a Redis Cluster the connection reaches every node, and a `Disconnection` may be any
/// node's: it only has the keep-alive run at once, which asks the primary of each channel's
/// slot whether the channel has a subscriber there (the client makes a dropped node's
/// connection again and subscribes there again, but after a failover it does not always
/// subscribe on the promoted replica). The round ends when that check fails or the cluster
/// unsubscribes a channel itself (`sunsubscribe`: its slot moved away).
pub(super) async fn keep_subscribed(
    conn: RedisConn,
    channels: [String; 2],
    tx: mpsc::UnboundedSender<redis::PushInfo>,
    on_gap: impl Fn(),
) {
    let retry_max = SUBSCRIBER_RETRY_MAX.min(conn.settings().reconnect_max_delay).max(SUBSCRIBER_RETRY_MIN);
    let mut retry = SUBSCRIBER_RETRY_MIN;
    let mut rounds = 0u64;
    let mut down_since: Option<Instant> = None;
    loop {
        // Through Sentinel: the primary they name, to compare with the node reached.
        let mut named = conn.primary_named();
        let dropped = Arc::new(tokio::sync::Notify::new());
        let unsubscribed = Arc::new(tokio::sync::Notify::new());
        let push = {
            let (tx, dropped, unsubscribed) = (tx.clone(), dropped.clone(), unsubscribed.clone());
            move |info: redis::PushInfo| -> Result<(), ()> {
                match info.kind {
                    // A permit is kept if nobody waits yet: a drop is never missed.
                    redis::PushKind::Disconnection => dropped.notify_one(),
                    // Never asked for: the cluster took the channel's slot elsewhere.
                    redis::PushKind::SUnsubscribe => unsubscribed.notify_one(),
                    _ => return tx.send(info).map_err(|_| ()),
                }
                Ok(())
            }
        };
        let subscribed = match conn.subscriber(push).await {
            Ok((mut con, reached)) => match con.subscribe(&channels).await {
                // In a Redis Cluster, checked at once: while a channel's primary is down
                // the client may confirm a subscription made on another node.
                Ok(()) if con.sharded() => match con.ping(&channels).await {
                    Ok(()) => Ok((con, reached)),
                    Err(e) => Err(conn.scrub(&format!("redis subscribe: {e}"))),
                },
                Ok(()) => Ok((con, reached)),
                Err(e) => Err(conn.scrub(&format!("redis subscribe failed: {e}"))),
            },
            Err(e) => Err(e.to_string()),
        };
        let (mut con, reached) = match subscribed {
            Ok(con) => con,
            Err(e) => {
                down_since.get_or_insert_with(Instant::now);
                tracing::debug!(
                    retry_ms = retry.as_millis() as u64,
                    "the relay's subscription is waiting for Redis: {e}"
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(retry_max);
                continue;
            }
        };
        retry = SUBSCRIBER_RETRY_MIN;
        rounds += 1;
        let sharded = con.sharded();
        match down_since.take() {
            None if rounds == 1 => tracing::info!(channel = %channels[0], sharded, "the relay is listening"),
            Some(since) => tracing::info!(
                channel = %channels[0],
                unsubscribed_ms = since.elapsed().as_millis() as u64,
                "the relay is listening again (messages published to it meanwhile are lost)"
            ),
            None => tracing::info!(channel = %channels[0], "the relay is listening again"),
        }
        if rounds > 1 {
            on_gap();
        }
        // In a Redis Cluster a node's connection dropped and the client subscribed there
        // again by itself: once the check below finds the subscription, it was a gap too.
        let mut gap = false;
        let why = loop {
            tokio::select! {
                () = dropped.notified() => {
                    if !sharded {
                        break Some("its connection dropped".to_owned());
                    }
                    gap = true;
                }
                () = unsubscribed.notified() => break Some("the cluster moved a channel's slot to another node".to_owned()),
                () = moved(&mut named, reached.as_deref()) => {
                    tracing::info!(channel = %channels[0], "the Sentinels name another primary: the relay subscribes there");
                    break None;
                }
                () = tokio::time::sleep(SUBSCRIBER_PING) => {}
            }
            if let Err(e) = con.ping(&channels).await {
                break Some(if e.is_timeout() {
                    "its keep-alive ping got no answer".to_owned()
                } else {
                    conn.scrub(&format!("its keep-alive check failed: {e}"))
                });
            }
            if std::mem::take(&mut gap) {
                on_gap();
            }
        };
        down_since = Some(Instant::now());
        if let Some(why) = why {
            tracing::warn!(channel = %channels[0], "the relay's subscription was lost ({why}); subscribing again");
        }
    }
}

/// Completes when the Sentinels name another primary than `reached`, the node the
/// subscription is on (never behind one address).
async fn moved(named: &mut Option<tokio::sync::watch::Receiver<Option<String>>>, reached: Option<&str>) {
    if let (Some(rx), Some(reached)) = (named.as_mut(), reached) {
        if rx.wait_for(|n| n.as_deref().is_some_and(|n| n != reached)).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await;
}
