//! `--listen` URLs: what a listener is (`ListenSpec`: scheme and address), parsing one with
//! an error that names the fix, the defaults without `--listen`, and the URL printed for each.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::exit::usage;
pub use crate::transport::url::Scheme;

#[derive(Debug, Clone)]
pub struct ListenSpec {
    pub scheme: Scheme,
    pub addr: SocketAddr,
}

impl ListenSpec {
    /// `mqtt://127.0.0.1:1883`; IPv6 in brackets.
    pub fn url(&self) -> String {
        url(self.scheme, self.addr)
    }
}

pub fn url(scheme: Scheme, addr: SocketAddr) -> String {
    // SocketAddr's Display already brackets IPv6 and drops a zero scope id.
    format!("{scheme}://{addr}")
}

/// Parses `mqtt://ADDR:PORT`, `mqtts://…`, `ws://…`, `wss://…`. ADDR is an IP literal (IPv6
/// in brackets) or `localhost`; the port is required and 0 lets the OS pick one.
pub fn parse_listen(text: &str) -> anyhow::Result<ListenSpec> {
    let bad = |why: &str| usage(format!("--listen '{text}': {why}"));
    let example = "e.g. mqtt://0.0.0.0:1883 or ws://127.0.0.1:8000";
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad(&format!("expected a URL, {example}")))?;
    let scheme = Scheme::parse(scheme).ok_or_else(|| {
        bad(&format!(
            "unknown scheme '{scheme}': use mqtt, mqtts, ws or wss"
        ))
    })?;
    // The WebSocket listener answers on every path, so a path would only suggest otherwise.
    let authority = match rest.find(['/', '?', '#']) {
        Some(i) if &rest[i..] == "/" => &rest[..i],
        Some(i) => {
            return Err(bad(&format!(
                "remove '{}': a listener takes no path (WebSocket clients may use any path)",
                &rest[i..]
            )));
        }
        None => rest,
    };
    if authority.contains('@') {
        return Err(bad(
            "a listener takes no user name; set credentials with the broker's options",
        ));
    }
    let need_port = || {
        bad(&format!(
            "add a port, e.g. {scheme}://{}:{} (0 picks a free port)",
            if authority.is_empty() {
                "0.0.0.0"
            } else {
                authority.trim_end_matches(':')
            },
            default_port(scheme)
        ))
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address needs a closing ']', e.g. mqtt://[::1]:1883"))?;
        let port = after.strip_prefix(':').ok_or_else(need_port)?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| bad(&format!("'{ip}' is not an IPv6 address")))?;
        (IpAddr::V6(ip), port)
    } else {
        let (host, port) = authority.rsplit_once(':').ok_or_else(need_port)?;
        if host.contains(':') {
            return Err(bad(&format!(
                "put an IPv6 address in brackets: {scheme}://[{host}]:{port}"
            )));
        }
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else if host.is_empty() {
            return Err(bad(&format!(
                "add an address: {scheme}://0.0.0.0:{port} (all interfaces) or {scheme}://127.0.0.1:{port} (this machine only)"
            )));
        } else {
            host.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
                bad(&format!(
                    "'{host}' is not an IP address: use an address of this machine, 0.0.0.0 (all interfaces) or localhost"
                ))
            })?
        };
        (ip, port)
    };
    if port.is_empty() {
        return Err(need_port());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad(&format!("'{port}' is not a port number (0-65535)")))?;
    Ok(ListenSpec {
        scheme,
        addr: SocketAddr::new(host, port),
    })
}

/// The usual port of each scheme, only used to suggest one in error messages.
fn default_port(scheme: Scheme) -> u16 {
    match scheme {
        Scheme::Mqtt => 1883,
        Scheme::Mqtts => 8883,
        Scheme::Ws => 8000,
        Scheme::Wss => 8081,
    }
}

/// The first listener other machines can reach, if any: where anonymous access stops being
/// the default.
pub fn first_exposed(specs: &[ListenSpec]) -> Option<&ListenSpec> {
    specs.iter().find(|s| !s.addr.ip().is_loopback())
}

/// What `smq serve-broker` listens on without `--listen`: this machine only, so starting a
/// broker never exposes it to the network by accident.
pub fn default_specs() -> Vec<ListenSpec> {
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    vec![
        ListenSpec {
            scheme: Scheme::Mqtt,
            addr: SocketAddr::new(local, 1883),
        },
        ListenSpec {
            scheme: Scheme::Ws,
            addr: SocketAddr::new(local, 8000),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::listener::tests::{is_usage, spec};

    #[test]
    fn parses_every_form() {
        let cases = [
            ("mqtt://127.0.0.1:1883", Scheme::Mqtt, "127.0.0.1:1883"),
            ("mqtts://0.0.0.0:8883", Scheme::Mqtts, "0.0.0.0:8883"),
            ("ws://[::1]:8000", Scheme::Ws, "[::1]:8000"),
            ("wss://[::]:0", Scheme::Wss, "[::]:0"),
            ("ws://localhost:8000", Scheme::Ws, "127.0.0.1:8000"),
            ("MQTT://LocalHost:1883/", Scheme::Mqtt, "127.0.0.1:1883"),
            (
                "mqtt://192.168.1.20:65535",
                Scheme::Mqtt,
                "192.168.1.20:65535",
            ),
        ];
        for (url, scheme, addr) in cases {
            let parsed = spec(url);
            assert_eq!(parsed.scheme, scheme, "{url}");
            assert_eq!(parsed.addr.to_string(), addr, "{url}");
        }
        assert_eq!(spec("ws://[::1]:8000").url(), "ws://[::1]:8000");
    }

    #[test]
    fn refuses_bad_urls_naming_the_url_and_the_fix() {
        let cases = [
            ("127.0.0.1:1883", "expected a URL"),
            ("tcp://127.0.0.1:1883", "use mqtt, mqtts, ws or wss"),
            ("http://127.0.0.1:80", "unknown scheme 'http'"),
            ("mqtt://127.0.0.1", "add a port, e.g. mqtt://127.0.0.1:1883"),
            ("mqtt://127.0.0.1:", "add a port"),
            ("ws://[::1]", "add a port"),
            ("mqtt://0.0.0.0:70000", "'70000' is not a port"),
            ("mqtt://0.0.0.0:x", "'x' is not a port"),
            (
                "mqtt://example.com:1883",
                "'example.com' is not an IP address",
            ),
            ("mqtt://:1883", "add an address"),
            ("ws://0.0.0.0:8000/mqtt", "remove '/mqtt'"),
            ("mqtt://0.0.0.0:1883?x", "remove '?x'"),
            ("mqtt://u:p@0.0.0.0:1883", "no user name"),
            ("mqtt://::1:1883", "in brackets: mqtt://[::1]:1883"),
            ("mqtt://[::1:1883", "closing ']'"),
            ("mqtt://[nope]:1883", "not an IPv6 address"),
            ("mqtt://", "add"),
        ];
        for (url, expected) in cases {
            let err = parse_listen(url).expect_err(url);
            let msg = err.to_string();
            assert!(is_usage(&err), "{url}: not a usage error");
            assert!(msg.contains(&format!("'{url}'")), "{url}: {msg}");
            assert!(msg.contains(expected), "{url}: {msg}");
            assert!(!msg.contains('\n'), "{url}: {msg}");
        }
    }

    #[test]
    fn defaults_are_local_mqtt_and_websocket() {
        let urls: Vec<String> = default_specs().iter().map(ListenSpec::url).collect();
        assert_eq!(urls, ["mqtt://127.0.0.1:1883", "ws://127.0.0.1:8000"]);
    }
}
