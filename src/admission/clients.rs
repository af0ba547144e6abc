//! Per-client abuse limits (docs/DESIGN.md D6): one client address may create only so many
//! games a second (`admission.client_creations_per_sec`, `client_creation_burst`) and hold
//! only so many tickets in the line (`admission.max_tickets_per_client`), so one address
//! can neither flood creation nor fill the waitlist and lock real players out of it.
//! Pure bookkeeping, owned by the AdmissionController: the caller passes the time and
//! reports tickets that left the line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Net;
use crate::ids::Ticket;
use crate::rate::TokenBucket;

/// The address a client is limited by: its IPv4 address, or the /64 network of its IPv6
/// address (one host usually holds a whole /64, so a finer key would limit nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a client address.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    ClientKey(IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)))
                }
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// The address a request comes from: the peer, unless the peer is a trusted proxy; then
/// the `X-Forwarded-For` hops are read from the right (the nearest first), skipping those
/// that are trusted proxies too, and the first one that is not is the client. Reading from
/// the right means a client cannot choose its address by sending its own header: only
/// hops our proxies appended are believed.
pub fn client_addr(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Net]) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        let hop = hop.trim();
        // `1.2.3.4:5678` and `[::1]:5678` carry a port some proxies add.
        let hop = hop.strip_prefix('[').and_then(|h| h.split_once(']')).map_or(hop, |(h, _)| h);
        let Ok(addr) = hop.parse::<IpAddr>().or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip())) else {
            // A hop we cannot read: the last one we could is as far as we can trust.
            return client;
        };
        client = addr;
        if !is_trusted(addr) {
            return addr;
        }
    }
    client
}

/// Which limit a client passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// Too many creations a second: retry after this long.
    Creations(Duration),
    /// Already holding `max` tickets in the line.
    Tickets {
        /// The limit.
        max: u64,
    },
}

/// What a client at its ticket limit needs before it may get another ticket.
#[derive(Debug, PartialEq, Eq)]
pub enum TicketCheck {
    /// Below the limit: issue it.
    Issue,
    /// At the limit and checked less than a second ago: refuse.
    Refuse(Limited),
    /// At the limit: look these tickets up; those no longer waiting are [`Clients::forget`]ten
    /// and the client may try again.
    LookUp(Vec<Ticket>),
}

struct Client {
    bucket: TokenBucket,
    tickets: Vec<Ticket>,
    checked_at: Option<Instant>,
    seen: Instant,
}

/// The limits' state for every client seen recently.
pub struct Clients {
    rate: f64,
    burst: f64,
    max_tickets: u64,
    clients: HashMap<ClientKey, Client>,
    owners: HashMap<Ticket, ClientKey>,
}

/// A client with no ticket in the line and a full bucket for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(120);
/// At most this many clients are remembered: past it, the idlest half is dropped (a flood
/// of distinct addresses costs memory only up to here).
const MAX_CLIENTS: usize = 200_000;
/// A client at its ticket limit has its tickets looked up at most this often.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

impl Clients {
    /// Limits of `rate` creations a second (bursts of `burst`) and `max_tickets` held tickets.
    pub fn new(rate: f64, burst: f64, max_tickets: u64) -> Self {
        Clients { rate, burst, max_tickets, clients: HashMap::new(), owners: HashMap::new() }
    }

    fn client(&mut self, key: ClientKey, now: Instant) -> &mut Client {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&key) {
            self.sweep(now, true);
        }
        let (rate, burst) = (self.rate, self.burst);
        let client = self.clients.entry(key).or_insert_with(|| Client {
            bucket: TokenBucket::new(rate, burst, now),
            tickets: Vec::new(),
            checked_at: None,
            seen: now,
        });
        client.seen = now;
        client
    }

    /// Counts one creation attempt by `key`.
    pub fn create(&mut self, key: ClientKey, now: Instant) -> Result<(), Limited> {
        self.client(key, now).bucket.take(now).map_err(Limited::Creations)
    }

    /// Whether `key` may get another ticket now.
    pub fn may_queue(&mut self, key: ClientKey, now: Instant) -> TicketCheck {
        let max = self.max_tickets;
        let client = self.client(key, now);
        if (client.tickets.len() as u64) < max {
            return TicketCheck::Issue;
        }
        if client.checked_at.is_some_and(|t| now.saturating_duration_since(t) < RECHECK_EVERY) {
            return TicketCheck::Refuse(Limited::Tickets { max });
        }
        client.checked_at = Some(now);
        TicketCheck::LookUp(client.tickets.clone())
    }

    /// Records a ticket issued to `key`.
    pub fn queued(&mut self, key: ClientKey, ticket: Ticket, now: Instant) {
        self.client(key, now).tickets.push(ticket.clone());
        self.owners.insert(ticket, key);
    }

    /// Tickets that left the line (admitted, cancelled, expired or unknown).
    pub fn forget<'a>(&mut self, tickets: impl IntoIterator<Item = &'a Ticket>) {
        for ticket in tickets {
            let Some(key) = self.owners.remove(ticket) else { continue };
            if let Some(client) = self.clients.get_mut(&key) {
                client.tickets.retain(|t| t != ticket);
                client.checked_at = None;
            }
        }
    }

    /// Drops clients idle for a while with nothing in the line (all of the idler half when
    /// `pressed`).
    pub fn sweep(&mut self, now: Instant, pressed: bool) {
        let idle = |c: &Client| c.tickets.is_empty() && now.saturating_duration_since(c.seen) > FORGET_AFTER;
        self.clients.retain(|_, c| !idle(c));
        if pressed && self.clients.len() >= MAX_CLIENTS {
            let mut seen: Vec<Instant> = self.clients.values().map(|c| c.seen).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            self.clients.retain(|_, c| c.seen > cut);
            let clients = &self.clients;
            self.owners.retain(|_, key| clients.contains_key(key));
        }
    }

    /// Clients remembered now.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8) -> ClientKey {
        ClientKey::of(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_network_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("v6");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("v6");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("v6");
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        assert_eq!(ClientKey::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("mapped");
        assert_eq!(ClientKey::of(mapped), key(1));
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
        let trusted = [Net::parse("127.0.0.1").expect("net"), Net::parse("10.0.0.0/8").expect("net")];
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // An untrusted peer's header is ignored.
        assert_eq!(client_addr(ip("203.0.113.9"), Some("1.1.1.1"), &trusted), ip("203.0.113.9"));
        // Through one trusted proxy.
        assert_eq!(client_addr(ip("127.0.0.1"), Some("198.51.100.7"), &trusted), ip("198.51.100.7"));
        // A spoofed leftmost hop is not believed: the proxy appended the real one.
        assert_eq!(client_addr(ip("127.0.0.1"), Some("6.6.6.6, 198.51.100.7"), &trusted), ip("198.51.100.7"));
        // Through two trusted proxies.
        assert_eq!(client_addr(ip("127.0.0.1"), Some("198.51.100.7, 10.0.0.5"), &trusted), ip("198.51.100.7"));
        // Ports, brackets, garbage.
        assert_eq!(client_addr(ip("127.0.0.1"), Some("[2001:db8::1]:443"), &trusted), ip("2001:db8::1"));
        assert_eq!(client_addr(ip("127.0.0.1"), Some("198.51.100.7:5000"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_addr(ip("127.0.0.1"), Some("junk, 10.0.0.5"), &trusted), ip("10.0.0.5"));
        assert_eq!(client_addr(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(client_addr(ip("127.0.0.1"), Some("1.1.1.1"), &[]), ip("127.0.0.1"), "no proxy trusted");
    }

    #[test]
    fn creations_are_limited_per_client_not_globally() {
        let t0 = Instant::now();
        let mut clients = Clients::new(1.0, 2.0, 3);
        assert!(clients.create(key(1), t0).is_ok() && clients.create(key(1), t0).is_ok());
        assert_eq!(clients.create(key(1), t0), Err(Limited::Creations(Duration::from_secs(1))));
        assert!(clients.create(key(2), t0).is_ok(), "another address has its own bucket");
        assert!(clients.create(key(1), t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn tickets_are_capped_then_looked_up_at_most_once_a_second_and_freed_when_they_leave() {
        let t0 = Instant::now();
        let mut clients = Clients::new(100.0, 100.0, 2);
        let (a, b) = (Ticket::random(), Ticket::random());
        assert_eq!(clients.may_queue(key(1), t0), TicketCheck::Issue);
        clients.queued(key(1), a.clone(), t0);
        clients.queued(key(1), b.clone(), t0);
        assert_eq!(clients.may_queue(key(1), t0), TicketCheck::LookUp(vec![a.clone(), b.clone()]));
        assert_eq!(clients.may_queue(key(1), t0), TicketCheck::Refuse(Limited::Tickets { max: 2 }));
        assert_eq!(clients.may_queue(key(2), t0), TicketCheck::Issue, "another address is not affected");
        let later = t0 + RECHECK_EVERY;
        assert!(matches!(clients.may_queue(key(1), later), TicketCheck::LookUp(_)));
        clients.forget([&a]);
        assert_eq!(clients.may_queue(key(1), later), TicketCheck::Issue);
    }

    #[test]
    fn idle_clients_are_forgotten_but_not_those_with_tickets_waiting() {
        let t0 = Instant::now();
        let mut clients = Clients::new(1.0, 1.0, 1);
        let _ = clients.create(key(1), t0);
        clients.queued(key(2), Ticket::random(), t0);
        clients.sweep(t0 + FORGET_AFTER + Duration::from_secs(1), false);
        assert_eq!(clients.len(), 1);
        assert_eq!(
            clients.may_queue(key(2), t0 + FORGET_AFTER),
            TicketCheck::LookUp(clients_tickets(&clients, key(2)))
        );
    }

    fn clients_tickets(clients: &Clients, key: ClientKey) -> Vec<Ticket> {
        clients.clients.get(&key).map(|c| c.tickets.clone()).unwrap_or_default()
    }
}
