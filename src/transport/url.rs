//! `-L` URLs: `mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic`. The broker's `--listen`
//! URLs use the same [`Scheme`].
//!
//! Unlike mosquitto, credentials and topic are percent-decoded (`%23` is `#`) and IPv6 hosts
//! in brackets work. The path is the topic, as in mosquitto, so the WebSocket path never comes
//! from here (see `--ws-path`).

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::exit::usage;

/// The transport a URL names; shared by `-L` and the broker's `--listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Mqtt,
    Mqtts,
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Mqtts | Scheme::Wss)
    }

    pub fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }

    /// The four names, exactly (`-L` also takes `tcp` and `ssl`).
    pub fn parse(name: &str) -> Option<Scheme> {
        [Scheme::Mqtt, Scheme::Mqtts, Scheme::Ws, Scheme::Wss]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub scheme: Scheme,
    pub username: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub topic: Option<String>,
}

pub fn parse(url: &str) -> anyhow::Result<BrokerUrl> {
    let bad = |why: &str| usage(format!("bad URL '{url}': {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("it needs a scheme, e.g. mqtt://host/topic"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => Scheme::Mqtt,
        "mqtts" | "ssl" => Scheme::Mqtts,
        "ws" => Scheme::Ws,
        "wss" => Scheme::Wss,
        other => {
            return Err(bad(&format!(
                "unknown scheme '{other}': use mqtt, mqtts, ws or wss"
            )));
        }
    };
    let (authority, topic) = match rest.split_once('/') {
        Some((a, t)) => (a, Some(t)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let decode = |s: &str, what: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad(&format!("the {what} is not UTF-8 once percent-decoded")))
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(decode(user, "username")?),
                Some(decode(pass, "password")?),
            ),
            None => (Some(decode(u, "username")?), None),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 host needs a closing ']'"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':port' after ']'"))?,
                ),
            ),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) if p.contains(':') => {
                return Err(bad(&format!(
                    "write an IPv6 host in brackets, e.g. [{h}:{p}]"
                )));
            }
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is missing"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(&format!("'{p}' is not a port (1-65535)")))
        })
        .transpose()?;
    let topic = topic
        .filter(|t| !t.is_empty())
        .map(|t| decode(t, "topic"))
        .transpose()?;
    Ok(BrokerUrl {
        scheme,
        username,
        password,
        host: host.to_owned(),
        port,
        topic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let u = parse("mqtts://us%40er:p%3Ass@broker.example:8884/a/%23").unwrap();
        assert_eq!(u.scheme, Scheme::Mqtts);
        assert_eq!(u.username.as_deref(), Some("us@er"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(u.host, "broker.example");
        assert_eq!(u.port, Some(8884));
        assert_eq!(u.topic.as_deref(), Some("a/#"));
    }

    #[test]
    fn ipv6_and_defaults() {
        let u = parse("ws://[::1]:8080/t").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Ws, "::1", Some(8080))
        );
        let u = parse("wss://[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.topic), ("::1", None, None));
        let u = parse("mqtt://h/").unwrap();
        assert_eq!(u.topic, None);
    }

    #[test]
    fn errors_name_the_problem() {
        for (url, needle) in [
            ("broker:1883/t", "needs a scheme"),
            ("http://h/t", "unknown scheme 'http'"),
            ("mqtt://h:99999/t", "'99999' is not a port"),
            ("mqtt://::1/t", "IPv6 host in brackets"),
            ("mqtt://[::1/t", "closing ']'"),
            ("mqtt:///t", "host is missing"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }
}
