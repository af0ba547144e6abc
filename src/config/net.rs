//! [`Net`]: an IP network (`10.0.0.0/8`, `::1/128`, or a bare address), as
//! `server.trusted_proxies` lists them: parsed when the configuration is checked, and
//! asked whether an address is in it when a request's client is read.

use std::net::IpAddr;

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address): an entry of
/// `server.trusted_proxies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Result<Net, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network (ADDR or ADDR/PREFIX)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{text:?}: the prefix must be 0..={max}")),
            },
        };
        Ok(Net { addr, prefix })
    }

    /// Whether `addr` is in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> (u128, u8) {
            match a {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((mine, width), (theirs, their_width)) = (bits(self.addr), bits(addr));
        if width != their_width {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        self.prefix == 0 || (mine >> shift) == (theirs >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let net = Net::parse("10.1.0.0/16").expect("net");
        assert!(net.contains("10.1.200.3".parse().expect("ip")));
        assert!(!net.contains("10.2.0.1".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.0.9".parse().expect("mapped")));
        assert!(Net::parse("::1").expect("v6").contains("::1".parse().expect("ip")));
        assert!(Net::parse("0.0.0.0/0").expect("all").contains("8.8.8.8".parse().expect("ip")));
        assert!(!Net::parse("0.0.0.0/0").expect("all").contains("::2".parse().expect("ip")));
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.1/x", "::1/129"] {
            assert!(Net::parse(bad).is_err(), "{bad:?}");
        }
    }
}
