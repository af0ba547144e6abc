//! The storage contract, run against both backends (the embedded one and a private
//! redis-server per test): fenced snapshot writes, leases with growing epochs and exactly one
//! winner among racing claimants, instance heartbeats, seat sessions by token hash, and the
//! event stream with its compare-and-set runtime records.

mod common;

use std::time::Duration;

use common::stores::{both, both_with_redis, me, WRITER};
use common::{eventually, DEADLINE};
use rampart::game::{Connect4, Rules as _, Seat};
use rampart::ids::{GameId, PlayerToken, SessionKey};
use rampart::store::directory::{Claim, Renewal, Tenure};
use rampart::store::events::{EventKind, RunStatus, RuntimeEvent};
use rampart::store::sessions::SeatSession;
use rampart::store::snapshot::{SeatRecord, Snapshot, WriteOutcome};
use serde_json::json;

fn snapshot(id: &GameId, version: u64, epoch: u64) -> Snapshot {
    let hash = SessionKey::from_bytes(b"k").hash(&PlayerToken::random());
    Snapshot {
        game_id: id.clone(),
        board: rampart::game::Board::new(Connect4::new_game()),
        seats: [Some(SeatRecord { name: "ada".into(), token_hash: Some(hash) }), None],
        created_at: "2026-01-01T00:00:00.000Z".into(),
        abandoned: false,
        restarts: 0,
        failed: false,
        version,
        epoch,
    }
}

const LEASE: Duration = Duration::from_millis(400);

#[actix_rt::test]
async fn snapshot_writes_are_fenced_by_the_epoch_and_ignore_stale_versions() {
    both(|stores| async move {
        let id = GameId::random();
        let Claim::Won(first) = stores.directory.claim(&id, &me("a"), LEASE).await.expect("claim") else {
            panic!("a free game is won")
        };
        let write = |v, e| {
            let s = snapshot(&id, v, e);
            let stores = stores.clone();
            async move { stores.snapshots.write(&s, None).await.expect("write") }
        };
        assert_eq!(write(1, first.epoch).await, WriteOutcome::Written);
        assert_eq!(write(2, first.epoch).await, WriteOutcome::Written);
        assert_eq!(write(2, first.epoch).await, WriteOutcome::Written, "the same version is made again");
        assert_eq!(write(1, first.epoch).await, WriteOutcome::Stale, "an older version");
        // The lease lapses and b takes the game over: a's writes are refused from now on.
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        let Claim::Won(second) = stores.directory.claim(&id, &me("b"), LEASE).await.expect("claim") else {
            panic!("a lapsed lease is won")
        };
        assert!(second.epoch > first.epoch, "epochs only grow");
        let tenure = Some(Tenure { instance: me("b"), since: second.epoch });
        assert_eq!(write(9, first.epoch).await, WriteOutcome::Fenced { epoch: second.epoch, tenure });
        // b lets it lapse and a (the stores' writer) takes it back with a newer epoch.
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        let Claim::Won(third) = stores.directory.claim(&id, &me(WRITER), LEASE).await.expect("claim") else {
            panic!("a lapsed lease is won")
        };
        assert!(third.epoch > second.epoch, "epochs only grow");
        assert_eq!(write(3, third.epoch).await, WriteOutcome::Written);
        let stored = stores.snapshots.read(&id).await.expect("read").expect("stored");
        assert_eq!((stored.version, stored.epoch), (3, third.epoch));
        assert_eq!(stored.seats[0].as_ref().map(|s| s.name.as_str()), Some("ada"));
        // A finished game's snapshot expires.
        let mut ended = snapshot(&id, 4, third.epoch);
        ended.abandoned = true;
        stores.snapshots.write(&ended, Some(Duration::from_millis(200))).await.expect("write");
        let expired =
            || async { stores.snapshots.read(&id).await.expect("read").map_or(Ok(()), |s| Err(format!("{s:?}"))) };
        eventually(DEADLINE, "the ended game's snapshot expires", expired).await;
    })
    .await;
}

#[actix_rt::test]
async fn racing_claims_have_exactly_one_winner_and_leases_renew_lapse_and_release() {
    both(|stores| async move {
        for _ in 0..20 {
            let id = GameId::random();
            let claims = futures_util::future::join_all(
                ["a", "b", "c", "d"].map(|name| {
                    let (stores, id) = (stores.clone(), id.clone());
                    async move { stores.directory.claim(&id, &me(name), LEASE).await.expect("claim") }
                }),
            )
            .await;
            let winners: Vec<_> = claims.iter().filter(|c| matches!(c, Claim::Won(_))).collect();
            assert_eq!(winners.len(), 1, "{claims:?}");
        }
        let id = GameId::random();
        let Claim::Won(lease) = stores.directory.claim(&id, &me("a"), LEASE).await.expect("claim") else { panic!() };
        assert_eq!(stores.directory.renew(&id, &me("a"), lease.epoch, LEASE).await.expect("renew"), Renewal::Renewed(lease.epoch));
        let Renewal::Lost(holder) = stores.directory.renew(&id, &me("b"), lease.epoch, LEASE).await.expect("renew") else {
            panic!("b does not hold it")
        };
        assert_eq!(holder.instance, me("a"));
        // Lapsed, nobody took it: the owner takes it back with a new epoch.
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        let Renewal::Renewed(again) = stores.directory.renew(&id, &me("a"), lease.epoch, LEASE).await.expect("renew")
        else {
            panic!("taken back")
        };
        assert!(again > lease.epoch);
        // Lapsed and taken by b: a has lost it.
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        assert!(matches!(stores.directory.claim(&id, &me("b"), LEASE).await.expect("claim"), Claim::Won(_)));
        assert!(matches!(stores.directory.renew(&id, &me("a"), again, LEASE).await.expect("renew"), Renewal::Lost(_)));
        // A release frees it at once, only for its holder.
        let owner = stores.directory.owner(&id).await.expect("owner").expect("held");
        stores.directory.release(&id, &me("a"), owner.epoch).await.expect("release");
        assert!(stores.directory.owner(&id).await.expect("owner").is_some(), "a cannot release b's lease");
        stores.directory.release(&id, &me("b"), owner.epoch).await.expect("release");
        assert!(stores.directory.owner(&id).await.expect("owner").is_none());
        assert!(matches!(stores.directory.claim(&id, &me("c"), LEASE).await.expect("claim"), Claim::Won(l) if l.epoch > owner.epoch));
    })
    .await;
}

#[actix_rt::test]
async fn seat_sessions_are_kept_by_token_hash_and_expire() {
    both(|stores| async move {
        let key = SessionKey::from_bytes(b"shared");
        let token = PlayerToken::random();
        let hash = key.hash(&token);
        let session = SeatSession {
            game_id: GameId::random(),
            seat: Seat::Yellow,
            name: "bob".into(),
            last_seen: "2026-01-01T00:00:00.000Z".into(),
        };
        stores.sessions.put(&hash, &session, Duration::from_millis(300)).await.expect("put");
        assert_eq!(stores.sessions.get(&hash).await.expect("get"), Some(session.clone()));
        // Another instance with the same key finds it by the same hash.
        assert_eq!(
            stores.sessions.get(&SessionKey::from_bytes(b"shared").hash(&token)).await.expect("get"),
            Some(session)
        );
        assert!(stores.sessions.get(&SessionKey::from_bytes(b"other").hash(&token)).await.expect("get").is_none());
        let expired =
            || async { stores.sessions.get(&hash).await.expect("get").map_or(Ok(()), |s| Err(format!("{s:?}"))) };
        eventually(DEADLINE, "the seat session expires", expired).await;
    })
    .await;
}

#[actix_rt::test]
async fn events_are_read_once_in_order_and_applied_with_compare_and_set() {
    both(|stores| async move {
        let consumer = me("a");
        // A consumer group starts at the end of the stream: create it first.
        let _ = stores.events.read(&consumer, 10, Duration::from_millis(10)).await;
        let id = GameId::random();
        let event = |kind, moves: u32| RuntimeEvent {
            game_id: id.clone(),
            kind,
            instance: me("a"),
            summary: json!({"game_id": id.to_string(), "moves": moves}),
        };
        for e in [
            event(EventKind::Started, 0),
            event(EventKind::Crashed, 1),
            event(EventKind::RestartLimitExceeded, 1),
            event(EventKind::Recovered, 2),
        ] {
            stores.events.publish(&e).await.expect("publish");
        }
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let batch = stores.events.read(&consumer, 10, Duration::from_millis(200)).await.expect("read");
            assert!(!batch.is_empty(), "events went missing: {seen:?}");
            for (eid, e) in batch {
                let applied = stores.records.apply(&e).await.expect("apply");
                seen.push((e.kind, applied.changed, applied.conflict, applied.record.map(|r| r.status)));
                stores.events.ack(&[eid]).await.expect("ack");
            }
        }
        assert_eq!(
            seen,
            vec![
                (EventKind::Started, true, false, Some(RunStatus::Running)),
                (EventKind::Crashed, true, false, Some(RunStatus::Restarting)),
                (EventKind::RestartLimitExceeded, true, false, Some(RunStatus::Failed)),
                // Recovered after failed: the CAS loses, only the summary changes.
                (EventKind::Recovered, true, true, Some(RunStatus::Failed)),
            ]
        );
        assert!(
            stores.events.read(&consumer, 10, Duration::from_millis(50)).await.expect("read").is_empty(),
            "read once"
        );
        // An identical event changes nothing (nothing to announce).
        let applied = stores.records.apply(&event(EventKind::Progress, 2)).await.expect("apply");
        assert!(!applied.changed);
        let all = stores.records.all().await.expect("all");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].summary["moves"], 2);
        stores.records.apply(&event(EventKind::Removed, 2)).await.expect("apply");
        assert!(stores.records.all().await.expect("all").is_empty());
    })
    .await;
}

/// Subscribes to `channel` on the Redis at `addr` (as an instance's relay listens on its
/// inbox); the subscription lasts while the connection it answers is open.
fn subscribe(addr: &str, channel: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut con = std::net::TcpStream::connect(addr).expect("connect to redis");
    con.set_read_timeout(Some(DEADLINE)).expect("timeout");
    con.write_all(format!("SUBSCRIBE {channel}\r\n").as_bytes()).expect("SUBSCRIBE");
    // The confirmation: ["subscribe", channel, 1].
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b":1\r\n") {
        con.read_exact(&mut byte).expect("the subscription is confirmed");
        reply.push(byte[0]);
    }
    con
}

#[actix_rt::test]
async fn instance_heartbeats_lapse() {
    both_with_redis(|stores, redis| async move {
        stores.directory.heartbeat(&me("a"), Duration::from_millis(1000)).await.expect("heartbeat");
        // Redis counts an instance alive only while it also listens on its relay inbox (a
        // killed process drops that at once): there a heartbeat alone is not enough.
        let _inbox = match redis {
            Some(addr) => {
                assert!(!stores.directory.alive(&me("a")).await.expect("alive"), "alive with nobody on its inbox");
                Some(subscribe(&addr, "t:inbox:a"))
            }
            None => None,
        };
        assert!(stores.directory.alive(&me("a")).await.expect("alive"), "alive while its heartbeat lasts");
        // The heartbeat lapses (the listener stays, as a paused process's does).
        let gone = || async {
            match stores.directory.alive(&me("a")).await.expect("alive") {
                false => Ok(()),
                true => Err("still alive".to_owned()),
            }
        };
        eventually(DEADLINE, "the instance's heartbeat lapses", gone).await;
    })
    .await;
}
