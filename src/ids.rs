//! Domain identifiers and clocks: newtypes for game ids, player tokens and connection ids,
//! so they cannot be swapped, plus the monotonic and wall clocks the server uses.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Fills a buffer from the operating system's secure random source.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all; a server cannot run then.
    getrandom::fill(&mut bytes).expect("the operating system random source is unavailable");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// A game's id: 12 random hex characters, safe to show in links and the lobby.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GameId(String);

impl GameId {
    /// A fresh random id.
    pub fn random() -> Self {
        GameId(hex(&random_bytes::<6>()))
    }
    /// Parses an id from a URL path; `None` when it cannot be one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| GameId(text.to_owned()))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GameId({})", self.0)
    }
}

/// A waitlist ticket: 16 random bytes as hex (32 characters). A ticket issued by an
/// instance's fallback queue (the store unreachable) says so: the random part, then the
/// queue's tag (8 hex) and the entry's sequence (16 hex), 56 characters, so that another
/// instance can tell it may be held there (docs/DESIGN.md D6). It lets its holder collect
/// the seat it is admitted to, so it is a secret: `Debug` and `Display` show only its
/// first 6 characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticket(String);

impl Ticket {
    /// A fresh random ticket.
    pub fn random() -> Self {
        Ticket(hex(&random_bytes::<16>()))
    }
    /// A fresh ticket of the fallback queue tagged `tag`, for its entry at `seq`.
    pub fn fallback(tag: u32, seq: u64) -> Self {
        Ticket(format!("{}{tag:08x}{seq:016x}", hex(&random_bytes::<16>())))
    }
    /// For a ticket a fallback queue issued: that queue's tag and the entry's sequence.
    pub fn fallback_origin(&self) -> Option<(u32, u64)> {
        if self.0.len() != 56 {
            return None;
        }
        let tag = u32::from_str_radix(&self.0[32..40], 16).ok()?;
        let seq = u64::from_str_radix(&self.0[40..], 16).ok()?;
        Some((tag, seq))
    }
    /// Parses a ticket from a client; `None` when it cannot be one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (text.len() == 32 || text.len() == 56) && text.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Ticket(text.to_ascii_lowercase()))
    }
    /// The full ticket, for its owner and the store only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.0[..6.min(self.0.len())])
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticket({self})")
    }
}

/// A seat's secret: 32 random bytes as hex. Never logged (Debug prints `***`), compared in
/// constant time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlayerToken(String);

impl PlayerToken {
    /// A fresh random token.
    pub fn random() -> Self {
        PlayerToken(hex(&random_bytes::<32>()))
    }
    /// Wraps a token received from a client.
    pub fn from_client(text: &str) -> Self {
        PlayerToken(text.to_owned())
    }
    /// The secret itself, for the one response that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison.
    pub fn matches(&self, other: &PlayerToken) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for PlayerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlayerToken(***)")
    }
}

/// The keyed hash of a player token: what stores keep (and what crosses Redis) instead of
/// the token itself. Hex HMAC-SHA256 under the [`SessionKey`]; compared in constant time.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// The hash as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.0.get(..8).unwrap_or(""))
    }
}

/// The key of [`TokenHash`]es. Every instance sharing a Redis must use the same key (from
/// `RAMPART_SESSION_KEY`, or one kept in Redis); the embedded backend makes its own.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl SessionKey {
    /// A fresh random key.
    pub fn random() -> Self {
        SessionKey(random_bytes::<32>().to_vec())
    }
    /// A key from secret material (at least one byte).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SessionKey(bytes.to_vec())
    }
    /// A fresh key as hex, for storing.
    pub fn random_hex() -> String {
        hex(&random_bytes::<32>())
    }
    /// The keyed hash of `token`.
    pub fn hash(&self, token: &PlayerToken) -> TokenHash {
        use hmac::Mac as _;
        // HMAC takes a key of any length.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(token.expose().as_bytes());
        TokenHash(hex(&mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

/// One server instance's id: random per process start (several instances share a Redis),
/// or set with `cluster.instance_id` (`RAMPART__CLUSTER__INSTANCE_ID`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// A fresh random id.
    pub fn random() -> Self {
        InstanceId(hex(&random_bytes::<4>()))
    }
    /// An id from configuration: 1–64 characters of `[A-Za-z0-9_-]`.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| InstanceId(text.to_owned()))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({})", self.0)
    }
}

/// Identifies one WebSocket connection for the lifetime of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

impl ConnId {
    /// The next connection id.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A short random id tying a client-visible INTERNAL error to its log line. Not a secret,
/// so it comes from the fast generator rather than a system call.
pub fn incident_id() -> String {
    hex(&fastrand::u32(..).to_be_bytes())
}

/// Milliseconds on a monotonic clock since the process started; never 0, so 0 can mean "unset".
pub fn monotonic_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// Microseconds since the Unix epoch on the wall clock (a waitlist sequence issued while
/// Redis is unreachable, comparable with the ones Redis issues from its own clock).
pub fn unix_micros() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// The current wall-clock time as an RFC 3339 UTC string with millisecond precision.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (civil-from-days, H. Hinnant).
fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_ticket_says_where_it_was_issued() {
        let t = Ticket::fallback(0xdead_beef, 1_733_000_000_123_456);
        assert_eq!(t.fallback_origin(), Some((0xdead_beef, 1_733_000_000_123_456)));
        assert_eq!(Ticket::parse(t.expose()), Some(t.clone()), "a client's copy parses");
        assert_eq!(Ticket::random().fallback_origin(), None);
        assert!(Ticket::parse(&"a".repeat(40)).is_none());
        assert_eq!(t.to_string().len(), "123456…".len(), "Display shows only the random part's start");
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_000_000, 999), "2026-11-18T11:06:40.999Z");
    }

    #[test]
    fn token_hashes_are_keyed_and_hide_the_token() {
        let token = PlayerToken::random();
        let key = SessionKey::from_bytes(b"k1");
        let h = key.hash(&token);
        assert_eq!(h.as_str().len(), 64);
        assert!(h.matches(&key.hash(&token)));
        assert!(!h.matches(&SessionKey::from_bytes(b"k2").hash(&token)), "another key, another hash");
        assert!(!h.as_str().contains(token.expose()));
        assert!(!format!("{h:?}").contains(h.as_str()), "Debug shows only a prefix");
    }

    #[test]
    fn tokens_compare_and_hide() {
        let a = PlayerToken::random();
        assert_eq!(a.expose().len(), 64);
        assert!(a.matches(&PlayerToken::from_client(a.expose())));
        assert!(!a.matches(&PlayerToken::random()));
        assert!(!a.matches(&PlayerToken::from_client("short")));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn game_ids_parse_only_safe_text() {
        let id = GameId::random();
        assert_eq!(GameId::parse(id.as_str()), Some(id));
        assert_eq!(GameId::parse(""), None);
        assert_eq!(GameId::parse("../etc"), None);
    }
}
