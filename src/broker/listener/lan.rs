//! Which addresses of this machine another device on the LAN (a phone) can reach, for the
//! advice printed when a listener is bound to all interfaces, and for the subjectAltNames
//! `smq certs` puts on a server certificate: read from /proc on Linux.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// This machine's non-loopback addresses, IPv4 first. Linux: from /proc (no unsafe
/// getifaddrs, no new crate). Elsewhere, or if /proc says nothing: the address of the
/// default route only.
pub fn interface_addrs() -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = std::fs::read_to_string("/proc/net/fib_trie")
        .map(|text| parse_fib_trie(&text))
        .unwrap_or_default()
        .into_iter()
        .map(IpAddr::V4)
        .collect();
    if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
        addrs.extend(parse_if_inet6(&text).into_iter().map(IpAddr::V6));
    }
    if addrs.is_empty() {
        addrs.extend(default_route_addr());
    }
    addrs
}

/// The local IPv4 addresses in /proc/net/fib_trie: each leaf line `|-- ADDR` followed by a
/// `/32 host LOCAL` line. Sorted, without duplicates (the file lists the Main and the Local
/// tables) and without loopback.
fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut leaf = None;
    let mut addrs = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(addr) = line.strip_prefix("|-- ") {
            leaf = addr.trim().parse::<Ipv4Addr>().ok();
        } else if line.starts_with("/32 host LOCAL") {
            addrs.extend(leaf.filter(|a| !a.is_loopback()));
        }
    }
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Global IPv6 addresses in /proc/net/if_inet6 (`ADDR IFINDEX PREFIX SCOPE FLAGS NAME`):
/// link-local ones need a scope id no phone app accepts, and temporary, tentative or
/// deprecated ones are about to change.
fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    const UNSTABLE: u32 = 0x01 | 0x08 | 0x20 | 0x40; // temporary, dadfailed, deprecated, tentative
    let mut addrs: Vec<Ipv6Addr> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [addr, _, _, scope, flags, ..] = fields.as_slice() else {
                return None;
            };
            let scope = u32::from_str_radix(scope, 16).ok()?;
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let addr = u128::from_str_radix(addr, 16).ok().map(Ipv6Addr::from)?;
            (scope == 0 && flags & UNSTABLE == 0 && !addr.is_loopback()).then_some(addr)
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// The source address of the default route: connecting a UDP socket sends nothing but makes
/// the OS pick the outgoing interface. 192.0.2.1 is a documentation address (RFC 5737).
fn default_route_addr() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lan_addresses_in_proc_files() {
        let fib_trie = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.168.1.0/24 2 0 2
           |-- 192.168.1.0
              /24 link UNICAST
           |-- 192.168.1.23
              /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
     |-- 10.8.0.2
        /32 host LOCAL
Local:
           |-- 192.168.1.23
              /32 host LOCAL
";
        assert_eq!(
            parse_fib_trie(fib_trie),
            [Ipv4Addr::new(10, 8, 0, 2), Ipv4Addr::new(192, 168, 1, 23)]
        );
        let if_inet6 = "\
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 80     eth0
2a010000000000000000000000000003 04 40 00 01     eth0
20010db8000000000000000000000004 04 40 00 40     eth0
00000000000000000000000000000001 01 80 10 80       lo
garbage
";
        assert_eq!(
            parse_if_inet6(if_inet6),
            ["fd00::2".parse::<Ipv6Addr>().expect("an IPv6 literal")]
        );
    }
}
