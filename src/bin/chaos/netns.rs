//! A network namespace for the partition scenario, made with iproute2's `ip` (we run as
//! root): a `rampart` instance runs inside it and is reached through two veth links of its
//! own, one for its players and one for Redis, so that setting the Redis link down on the
//! host's side cuts the instance off from Redis while its players stay connected to it.
//!
//! ```text
//!  host                                   namespace rchaos-PID
//!  bots ── PREFIX.1 ─ rcpNh ═══ rcpNn ─ PREFIX.2  rampart (listens here)
//!  redis ─ PREFIX.5 ─ rcrNh ═══ rcrNn ─ PREFIX.6  (its Redis connections)
//! ```
//!
//! Everything made here is removed when the value drops (deleting the namespace removes
//! the veth ends inside it, and with them their peers); namespaces left by a run that was
//! killed (their pid gone) are removed at the next start.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The namespace, its two links and their addresses.
pub struct Netns {
    /// The namespace's name (`rchaos-PID`).
    pub name: String,
    /// The host's end of the players' link.
    players_host: String,
    /// The host's end of Redis's link (set down to cut the instance off).
    redis_host: String,
    /// The instance's address (inside; the bots reach it through the players' link).
    pub instance_ip: Ipv4Addr,
    /// Redis's address on the host's end of its link.
    pub redis_ip: Ipv4Addr,
}

/// Runs `ip ARGS`; Err with what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run ip (Debian package iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs `ip ARGS` inside namespace `ns`.
fn ip_in(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

impl Netns {
    /// Makes the namespace and its links; Err says why it cannot be made here (not root, no
    /// `ip`, no namespace support), and nothing is left behind.
    pub fn create() -> Result<Netns, String> {
        let own = std::process::id();
        Netns::sweep();
        let n = own % 10_000;
        // A /24 per run (pid-derived), two /30s in it.
        let prefix = format!("10.213.{}", own % 250 + 1);
        let at = |last: u8| -> Ipv4Addr { format!("{prefix}.{last}").parse().unwrap_or(Ipv4Addr::UNSPECIFIED) };
        let ns = Netns {
            name: format!("rchaos-{own}"),
            players_host: format!("rcp{n}h"),
            redis_host: format!("rcr{n}h"),
            instance_ip: at(2),
            redis_ip: at(5),
        };
        ns.build(&prefix).map(|()| ns)
    }

    fn build(&self, prefix: &str) -> Result<(), String> {
        let ns = self.name.as_str();
        ip(&["netns", "add", ns])?;
        ip_in(ns, &["link", "set", "lo", "up"])?;
        for (host, inner, first) in [(&self.players_host, "rcpn", 1), (&self.redis_host, "rcrn", 5)] {
            let inner = format!("{inner}{}", &host[3..host.len() - 1]);
            ip(&["link", "add", host, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", ns])?;
            ip(&["addr", "add", &format!("{prefix}.{first}/30"), "dev", host])?;
            ip(&["link", "set", host, "up"])?;
            ip_in(ns, &["addr", "add", &format!("{prefix}.{}/30", first + 1), "dev", &inner])?;
            ip_in(ns, &["link", "set", &inner, "up"])?;
        }
        Ok(())
    }

    /// Cuts the instance off from Redis: the host's end of Redis's link goes down (the
    /// players' link stays up).
    pub fn cut(&self) -> Result<(), String> {
        ip(&["link", "set", &self.redis_host, "down"])
    }

    /// Heals the cut.
    pub fn heal(&self) -> Result<(), String> {
        ip(&["link", "set", &self.redis_host, "up"])
    }

    /// Removes namespaces named `rchaos-PID` whose process is gone (a run that was killed).
    fn sweep() {
        let Ok(entries) = std::fs::read_dir("/run/netns") else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("rchaos-").and_then(|p| p.parse::<u32>().ok()) else { continue };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = ip(&["netns", "del", &name]);
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The host ends go with their peers when the namespace goes; deleting them first
        // also covers a namespace some process still holds open.
        let _ = ip(&["link", "del", &self.players_host]);
        let _ = ip(&["link", "del", &self.redis_host]);
        if !std::path::Path::new("/run/netns").join(&self.name).exists() {
            return; // never made (the start failed at `ip netns add`)
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("chaos: could not remove the network namespace {}: {e}", self.name);
        }
    }
}
