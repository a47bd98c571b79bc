//! What a bridge is told: mosquitto.conf's `connection` section keys, and the command-line
//! form (`--bridge URL --bridge-topic SPEC`). Parsing only; `link.rs` runs it.

use std::path::PathBuf;
use std::time::Duration;

use crate::mqtt::Protocol;
use crate::topic;
use crate::transport::tls::TlsOptions;

/// One `connection NAME` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Bridge {
    pub name: String,
    /// `address`/`addresses`: host and port, tried in order (or in turn with `round_robin`).
    pub addresses: Vec<(String, u16)>,
    pub round_robin: bool,
    pub topics: Vec<TopicMap>,
    pub remote_clientid: Option<String>,
    pub remote_username: Option<String>,
    pub remote_password: Option<String>,
    pub cleansession: bool,
    pub protocol: Protocol,
    /// Mosquitto's bridge bit in CONNECT's protocol level (0x84): a Mosquitto remote then
    /// sends the bridge nothing it published itself.
    pub try_private: bool,
    pub keepalive: u16,
    /// `restart_timeout BASE [CAP]`: the wait before the next attempt; with CAP it grows
    /// from BASE towards CAP while attempts fail (Mosquitto's backoff).
    pub restart_timeout: Duration,
    pub restart_cap: Option<Duration>,
    /// `bridge_cafile` and the other `bridge_` TLS keys; TLS is on when a CA is named
    /// (`bridge_cafile` or `bridge_capath`), as in Mosquitto.
    pub tls: TlsOptions,
    pub notifications: bool,
    pub notification_topic: Option<String>,
}

impl Bridge {
    /// Mosquitto's defaults.
    pub fn new(name: &str) -> Bridge {
        Bridge {
            name: name.to_owned(),
            addresses: Vec::new(),
            round_robin: false,
            topics: Vec::new(),
            remote_clientid: None,
            remote_username: None,
            remote_password: None,
            cleansession: false,
            protocol: Protocol::V311,
            try_private: true,
            keepalive: 60,
            restart_timeout: Duration::from_secs(5),
            restart_cap: None,
            tls: TlsOptions::default(),
            notifications: true,
            notification_topic: None,
        }
    }

    /// The client id at the remote: mosquitto's `HOSTNAME.NAME` unless `remote_clientid`.
    pub fn client_id(&self) -> String {
        self.remote_clientid.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "smq".to_owned());
            format!("{host}.{}", self.name)
        })
    }

    /// Where the connection's state (1 up, 0 down) is published, retained.
    pub fn notification_topic(&self) -> String {
        self.notification_topic
            .clone()
            .unwrap_or_else(|| format!("$SYS/broker/connection/{}/state", self.client_id()))
    }

    /// A section that says where to connect and what to carry.
    pub fn check(&self) -> Result<(), String> {
        if self.addresses.is_empty() {
            return Err(format!(
                "bridge '{}' has no address: add address HOST[:PORT]",
                self.name
            ));
        }
        if self.topics.is_empty() {
            return Err(format!(
                "bridge '{}' carries no topic: add topic PATTERN [in|out|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]",
                self.name
            ));
        }
        let t = &self.tls;
        if t.cert.is_some() != t.key.is_some() {
            let missing = if t.cert.is_some() {
                "bridge_keyfile"
            } else {
                "bridge_certfile"
            };
            return Err(format!(
                "bridge '{}': bridge_certfile and bridge_keyfile go together: add {missing}",
                self.name
            ));
        }
        if !self.uses_tls() {
            let tls_only = [
                ("bridge_certfile", t.cert.is_some()),
                ("bridge_insecure", t.any_name),
                ("bridge_tls_version", t.tls_version.is_some()),
                ("bridge_alpn", !t.tls_alpn.is_empty()),
            ];
            if let Some((key, _)) = tls_only.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "bridge '{}': {key} needs TLS, which is on only with bridge_cafile or bridge_capath (as in Mosquitto): add bridge_cafile FILE, the CA that signed the remote's certificate",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// TLS to the remote: a CA to check it by was named (or the OS store, by `mqtts://`).
    pub fn uses_tls(&self) -> bool {
        self.tls.cafile.is_some() || self.tls.capath.is_some() || self.tls.tls_use_os_certs
    }

    /// One key of a `connection` section; Ok(false) when `key` is not a bridge key at all.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let need = || {
            if value.is_empty() {
                Err(format!("{key} needs a value"))
            } else {
                Ok(value)
            }
        };
        match key {
            "address" | "addresses" => {
                for a in need()?.split([' ', ',']).filter(|a| !a.is_empty()) {
                    self.addresses.push(address(a)?);
                }
            }
            "round_robin" => self.round_robin = boolean(key, value)?,
            "topic" => self.topics.push(TopicMap::parse(need()?)?),
            "remote_clientid" => self.remote_clientid = Some(need()?.to_owned()),
            "remote_username" => self.remote_username = Some(need()?.to_owned()),
            "remote_password" => self.remote_password = Some(need()?.to_owned()),
            "cleansession" => self.cleansession = boolean(key, value)?,
            "bridge_protocol_version" => {
                self.protocol = match need()? {
                    "mqttv311" => Protocol::V311,
                    "mqttv50" => Protocol::V5,
                    other => {
                        return Err(format!(
                            "bridge_protocol_version '{other}': smq bridges speak mqttv311 or mqttv50"
                        ));
                    }
                }
            }
            "try_private" => self.try_private = boolean(key, value)?,
            "keepalive_interval" => {
                self.keepalive = need()?
                    .parse()
                    .ok()
                    .filter(|&k: &u16| k >= 5)
                    .ok_or_else(|| format!("keepalive_interval '{value}': 5 to 65535 seconds"))?;
            }
            "restart_timeout" => {
                let bad = || {
                    format!(
                        "restart_timeout '{value}': BASE [CAP], seconds, 1 or more, CAP not below BASE"
                    )
                };
                let secs: Vec<u64> = need()?
                    .split_whitespace()
                    .map(|w| w.parse().ok().filter(|&s| s >= 1).ok_or_else(bad))
                    .collect::<Result<_, _>>()?;
                match secs[..] {
                    [base] => {
                        self.restart_timeout = Duration::from_secs(base);
                        self.restart_cap = None;
                    }
                    [base, cap] if cap >= base => {
                        self.restart_timeout = Duration::from_secs(base);
                        self.restart_cap = Some(Duration::from_secs(cap));
                    }
                    _ => return Err(bad()),
                }
            }
            "bridge_cafile" => self.tls.cafile = Some(PathBuf::from(need()?)),
            "bridge_capath" => self.tls.capath = Some(PathBuf::from(need()?)),
            "bridge_certfile" => self.tls.cert = Some(PathBuf::from(need()?)),
            "bridge_keyfile" => self.tls.key = Some(PathBuf::from(need()?)),
            "bridge_insecure" => self.tls.any_name = boolean(key, value)?,
            "bridge_tls_version" => {
                self.tls.tls_version = Some(match need()? {
                    v @ ("tlsv1.2" | "tlsv1.3") => v.to_owned(),
                    other => {
                        return Err(format!(
                            "bridge_tls_version '{other}': smq (rustls) speaks tlsv1.2 or tlsv1.3"
                        ));
                    }
                });
            }
            "bridge_alpn" => self.tls.tls_alpn = vec![need()?.to_owned()],
            "bridge_identity" | "bridge_psk" => {
                return Err(format!(
                    "'{key}' in bridge '{}': TLS-PSK is not supported by smq (rustls): use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)",
                    self.name
                ));
            }
            "notifications" => self.notifications = boolean(key, value)?,
            "notification_topic" => {
                let t = need()?;
                if let Some(why) = topic::name_error(t) {
                    return Err(format!("notification_topic '{t}': {why}"));
                }
                self.notification_topic = Some(t.to_owned());
            }
            // `automatic` is what smq does; the others need a trigger smq does not have.
            "start_type" if value == "automatic" => {}
            _ if is_bridge_key(key) => {
                return Err(format!(
                    "'{key}' in bridge '{}' is not supported by smq's bridge yet; remove it, or use Mosquitto for this bridge",
                    self.name
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Mosquitto's bridge keys (mosquitto.conf(5), "Configuring Bridges"): one smq does not act
/// on must stop the start rather than be ignored, or the bridge would do something else.
pub fn is_bridge_key(key: &str) -> bool {
    key.starts_with("bridge_")
        || matches!(
            key,
            "address"
                | "addresses"
                | "cleansession"
                | "keepalive_interval"
                | "notification_topic"
                | "notifications"
                | "remote_clientid"
                | "remote_password"
                | "remote_username"
                | "restart_timeout"
                | "round_robin"
                | "topic"
                | "try_private"
                | "local_cleansession"
                | "idle_timeout"
                | "local_clientid"
                | "local_password"
                | "local_username"
                | "notifications_local_only"
                | "start_type"
                | "threshold"
        )
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key} '{value}': use true or false")),
    }
}

/// `HOST[:PORT]`, port 1883 by default; `[v6]:PORT` for an IPv6 address.
fn address(text: &str) -> Result<(String, u16), String> {
    address_or(text, 1883)
}

fn address_or(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("address '{text}': use HOST or HOST:PORT");
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            (h.trim_matches(['[', ']']), p.parse().map_err(|_| bad())?)
        }
        _ => (text, default_port),
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    Both,
}

impl Direction {
    pub fn outbound(self) -> bool {
        self != Direction::In
    }

    pub fn inbound(self) -> bool {
        self != Direction::Out
    }
}

/// `topic PATTERN [in|out|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]`; `""` is an empty
/// prefix, as in mosquitto.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMap {
    pub pattern: String,
    pub direction: Direction,
    pub qos: u8,
    pub local_prefix: String,
    pub remote_prefix: String,
}

impl TopicMap {
    pub fn parse(spec: &str) -> Result<TopicMap, String> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        let usage = || {
            format!(
                "topic '{spec}': use PATTERN [in|out|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]"
            )
        };
        if words.is_empty() || words.len() > 5 {
            return Err(usage());
        }
        let unquote = |w: &str| {
            if w == "\"\"" {
                String::new()
            } else {
                w.to_owned()
            }
        };
        let direction = match words.get(1).copied() {
            None | Some("out") => Direction::Out,
            Some("in") => Direction::In,
            Some("both") => Direction::Both,
            Some(_) => return Err(usage()),
        };
        let qos = match words.get(2) {
            None => 0,
            Some(q) => q.parse().ok().filter(|&q: &u8| q <= 2).ok_or_else(usage)?,
        };
        let map = TopicMap {
            pattern: unquote(words[0]),
            direction,
            qos,
            local_prefix: words.get(3).map(|w| unquote(w)).unwrap_or_default(),
            remote_prefix: words.get(4).map(|w| unquote(w)).unwrap_or_default(),
        };
        for (what, filter) in [("local", map.local()), ("remote", map.remote())] {
            if let Some(why) = topic::filter_error(&filter) {
                return Err(format!(
                    "topic '{spec}': bad {what} filter '{filter}': {why}"
                ));
            }
        }
        Ok(map)
    }

    /// The filter on this broker.
    pub fn local(&self) -> String {
        format!("{}{}", self.local_prefix, self.pattern)
    }

    /// The filter at the remote.
    pub fn remote(&self) -> String {
        format!("{}{}", self.remote_prefix, self.pattern)
    }
}

/// `--bridge mqtt[s]://[USER[:PASS]@]HOST[:PORT][,HOST[:PORT]...]`: a bridge named `cli`;
/// over `mqtts://` the remote is checked by `cafile`, else by the OS certificate store.
pub fn from_url(url: &str, topics: &[String], cafile: Option<PathBuf>) -> Result<Bridge, String> {
    let (rest, tls) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
        (Some(rest), _) => (rest, false),
        (_, Some(rest)) => (rest, true),
        _ => {
            return Err(format!(
                "--bridge '{url}': use mqtt://[USER[:PASS]@]HOST[:PORT][,HOST[:PORT]...] or mqtts://..."
            ));
        }
    };
    let mut b = Bridge::new("cli");
    if tls {
        b.tls.tls_use_os_certs = cafile.is_none();
        b.tls.cafile = cafile;
    } else if cafile.is_some() {
        return Err("--bridge-cafile is for an mqtts:// --bridge: use mqtts://".into());
    }
    let hosts = match rest.rsplit_once('@') {
        Some((user, hosts)) => {
            let (u, p) = user.split_once(':').unwrap_or((user, ""));
            b.remote_username = Some(u.to_owned());
            b.remote_password = (!p.is_empty()).then(|| p.to_owned());
            hosts
        }
        None => rest,
    };
    for a in hosts.trim_end_matches('/').split(',') {
        b.addresses.push(
            address_or(a, if tls { 8883 } else { 1883 }).map_err(|e| format!("--bridge: {e}"))?,
        );
    }
    for t in topics {
        b.topics
            .push(TopicMap::parse(t).map_err(|e| format!("--bridge-topic: {e}"))?);
    }
    if b.topics.is_empty() {
        return Err("--bridge needs --bridge-topic 'PATTERN [in|out|both [QOS]]'".into());
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_lines_as_mosquitto_reads_them() {
        let t = TopicMap::parse("sensors/# out 1 \"\" edge1/").unwrap();
        assert_eq!(
            (t.direction, t.qos, t.local(), t.remote()),
            (
                Direction::Out,
                1,
                "sensors/#".into(),
                "edge1/sensors/#".into()
            )
        );
        let t = TopicMap::parse("cmd/+").unwrap();
        assert_eq!((t.direction, t.qos), (Direction::Out, 0));
        assert!(TopicMap::parse("a sideways 1").is_err());
        assert!(TopicMap::parse("a in 3").is_err());
        assert!(TopicMap::parse("a/#/b both").is_err());
    }

    #[test]
    fn keys_set_fields_and_unsupported_ones_are_named() {
        let mut b = Bridge::new("edge");
        assert!(b.apply("addresses", "n1:1884 n2").unwrap());
        assert_eq!(b.addresses, [("n1".into(), 1884), ("n2".into(), 1883)]);
        assert!(b.apply("try_private", "false").unwrap());
        assert!(!b.try_private);
        assert!(!b.apply("listener", "1883").unwrap());
        let e = b.apply("bridge_require_ocsp", "true").unwrap_err();
        assert!(e.contains("'bridge_require_ocsp'"), "{e}");
        let e = b.apply("bridge_psk", "ab12").unwrap_err();
        assert!(e.contains("TLS-PSK"), "{e}");
        assert!(b.apply("keepalive_interval", "2").is_err());
        assert!(b.apply("restart_timeout", "10 120").unwrap());
        assert_eq!(
            (b.restart_timeout, b.restart_cap),
            (Duration::from_secs(10), Some(Duration::from_secs(120)))
        );
        assert!(b.apply("restart_timeout", "120 10").is_err());
        assert!(b.apply("restart_timeout", "1 2 3").is_err());
    }

    #[test]
    fn tls_keys_hang_together_as_in_mosquitto() {
        let mut b = Bridge::new("t");
        b.apply("address", "h:8883").unwrap();
        b.apply("topic", "a").unwrap();
        b.apply("bridge_certfile", "c.pem").unwrap();
        let e = b.check().unwrap_err();
        assert!(e.contains("add bridge_keyfile"), "{e}");
        b.apply("bridge_keyfile", "c.key").unwrap();
        let e = b.check().unwrap_err();
        assert!(e.contains("bridge_certfile needs TLS"), "{e}");
        assert!(!b.uses_tls());
        b.apply("bridge_cafile", "ca.pem").unwrap();
        assert!(b.uses_tls());
        b.check().unwrap();
        assert!(b.apply("bridge_tls_version", "tlsv1.1").is_err());
    }

    #[test]
    fn the_command_line_form() {
        let b = from_url("mqtt://u:p@a:1,b", &["x/# both 2".into()], None).unwrap();
        assert_eq!(b.addresses, [("a".into(), 1), ("b".into(), 1883)]);
        assert!(!b.uses_tls());
        assert_eq!(
            (b.remote_username.as_deref(), b.remote_password.as_deref()),
            (Some("u"), Some("p"))
        );
        let b = from_url("mqtts://a", &["x".into()], None).unwrap();
        assert_eq!(b.addresses, [("a".into(), 8883)]);
        assert!(b.uses_tls() && b.tls.tls_use_os_certs);
        let b = from_url("mqtts://a:1", &["x".into()], Some("ca.pem".into())).unwrap();
        assert!(b.uses_tls() && !b.tls.tls_use_os_certs);
        assert!(from_url("mqtt://a", &["x".into()], Some("ca.pem".into())).is_err());
        assert!(from_url("ws://a", &["x".into()], None).is_err());
        assert!(from_url("mqtt://a", &[], None).is_err());
    }
}
