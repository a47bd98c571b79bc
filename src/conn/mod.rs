//! The connection layer shared by every client subcommand: validated options in, a connected
//! `Client` out. Nothing outside `conn` touches rumqttc's types.

mod client;
mod explain;
mod failover;
pub mod outbox;
pub mod packet;
mod password;
mod pem;
pub mod props;
mod reason;
pub mod tls;
pub mod transport;
pub mod url;

use std::io::{self, Write};
use std::time::Duration;

use bytes::Bytes;

pub use client::{Client, Event, TooLarge};
pub use failover::Connector;
pub use packet::{Message, Protocol};
pub use reason::{delivery as delivery_reason, subscribe as subscribe_reason};
use transport::{Endpoint, TlsSetup, TransportSetup, WsSetup};

use crate::cli::{BrokerArg, ConnectArgs, ProtocolVersion};
use crate::exit::usage;
use crate::topic;
use crate::x509;

/// Session expiry meaning "never" (MQTT 5 §3.1.2.11.2).
const NEVER: u32 = u32::MAX;

/// Which MQTT version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 5, and 3.1.1 with a broker that does not speak 5.
    Auto,
    Only(Protocol),
}

/// One broker to connect to, with the credentials for it.
#[derive(Debug, Clone)]
pub struct Broker {
    pub transport: TransportSetup,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Broker {
    pub fn describe(&self) -> String {
        self.transport.describe()
    }
}

/// Everything needed to connect, checked: nothing here can make the client panic or send an
/// invalid packet.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Tried in this order, at start and after every lost connection.
    pub brokers: Vec<Broker>,
    pub version: Version,
    /// Flags that only MQTT 5 can carry (`-D`, `-x`): under `-V auto`, a broker that speaks
    /// only 3.1.1 is an error that names them, not a silent loss.
    pub needs_v5: Vec<String>,
    /// `-V mqttv31`: CONNECT says MQIsdp, level 3; the version is 3.1.1 for everything else.
    pub mqtt31: bool,
    pub client_id: String,
    pub keepalive: u16,
    pub clean: bool,
    pub will: Option<packet::Will>,
    pub props: props::Properties,
    pub max_inflight: u16,
    pub debug: bool,
    pub quiet: bool,
    /// The topic given as the path of the -L URLs.
    pub url_topic: Option<String>,
    /// How long an acknowledgement (PUBACK, PUBCOMP, SUBACK, UNSUBACK) may take.
    pub ack_timeout: Duration,
    /// --connect-retry: how long the first connection keeps trying.
    pub connect_retry: Option<Duration>,
}

impl ConnectOptions {
    pub fn from_args(args: &ConnectArgs, allowed: &[props::Packet]) -> anyhow::Result<Self> {
        let mut props = props::parse(&args.property, allowed)?;
        let mut needs_v5 = Vec::new();
        if !props.is_empty() {
            needs_v5.push("-D".to_owned());
        }
        if args.session_expiry.is_some() {
            needs_v5.push("-x".to_owned());
        }

        let mqtt31 = args.protocol_version == Some(ProtocolVersion::V31);
        let version = match args.protocol_version {
            Some(v @ (ProtocolVersion::V31 | ProtocolVersion::V311)) if !needs_v5.is_empty() => {
                let flag = if v == ProtocolVersion::V31 {
                    "mqttv31"
                } else {
                    "mqttv311"
                };
                return Err(usage(format!(
                    "-D and -x are MQTT 5 features: drop -V {flag} or use -V mqttv5"
                )));
            }
            // 3.1 differs from 3.1.1 only in CONNECT (protocol name MQIsdp, level 3) and in
            // wanting a client id: every other packet is the same on the wire.
            Some(ProtocolVersion::V31 | ProtocolVersion::V311) => Version::Only(Protocol::V311),
            Some(ProtocolVersion::V5) => Version::Only(Protocol::V5),
            Some(ProtocolVersion::Auto) | None => Version::Auto,
        };

        let client_id = match (&args.id, &args.id_prefix) {
            (Some(id), _) if id.is_empty() && mqtt31 => {
                return Err(usage(
                    "MQTT 3.1 needs a client id: give -i ID (1-23 characters), or leave -i out for a generated one",
                ));
            }
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            // A 3.1 broker cannot assign an id; mosquitto_pub makes one the same way.
            (None, None) if mqtt31 => {
                let tail: String = std::iter::repeat_with(fastrand::alphanumeric)
                    .take(19)
                    .collect();
                format!("smq-{tail}")
            }
            (None, None) => String::new(),
        };
        if client_id.len() > 65535 {
            return Err(usage("the client id (-i) is longer than 65535 bytes"));
        }
        let expiry = args
            .session_expiry
            .as_deref()
            .map(parse_expiry)
            .transpose()?
            .or(args.disable_clean_session.then_some(NEVER));
        if client_id.is_empty() && (args.disable_clean_session || expiry == Some(NEVER)) {
            return Err(usage(
                "a persistent session (-c, or -x -1) needs a client id: add -i ID",
            ));
        }
        if let Some(expiry) = expiry {
            // Only an MQTT 5 CONNECT carries it; under 3.1.1, -c alone keeps the session.
            props
                .connect
                .get_or_insert_with(packet::ConnectProperties::new)
                .session_expiry_interval = Some(expiry);
        }

        let will = match &args.will_topic {
            None => None,
            Some(t) => {
                if let Some(why) = topic::name_error(t) {
                    return Err(usage(format!("bad --will-topic '{t}': {why}")));
                }
                Some(packet::Will {
                    topic: t.clone(),
                    payload: Bytes::from(args.will_payload.clone().unwrap_or_default()),
                    qos: args.will_qos,
                    retain: args.will_retain,
                    props: props.will.clone(),
                })
            }
        };
        if will.is_none() && props.will.is_some() {
            return Err(usage("-D will ... needs --will-topic"));
        }

        let quiet = args.quiet;
        let (brokers, url_topic) = brokers(args, quiet)?;
        Ok(ConnectOptions {
            brokers,
            version,
            needs_v5,
            mqtt31,
            client_id,
            keepalive: args.keepalive,
            clean: !args.disable_clean_session,
            will,
            props,
            max_inflight: args.max_inflight,
            debug: args.debug,
            quiet,
            url_topic,
            ack_timeout: Duration::from_secs_f64(args.ack_timeout),
            connect_retry: args.connect_retry.map(Duration::from_secs_f64),
        })
    }

    fn connect_packet<'a>(&'a self, broker: &'a Broker) -> packet::Connect<'a> {
        packet::Connect {
            mqtt31: self.mqtt31,
            client_id: &self.client_id,
            keepalive: self.keepalive,
            clean: self.clean,
            username: broker.username.as_deref(),
            password: broker.password.as_deref(),
            will: self.will.as_ref(),
            props: self.props.connect.clone(),
        }
    }

    /// A note on stderr, unless --quiet.
    pub fn warn(&self, msg: &str) {
        warn(self.quiet, msg);
    }

    /// A line about the connection (which broker, which version) on stderr, unless --quiet.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "smq: {msg}");
        }
    }
}

fn warn(quiet: bool, msg: &str) {
    if !quiet {
        let _ = writeln!(io::stderr().lock(), "smq: warning: {msg}");
    }
}

fn parse_expiry(s: &str) -> anyhow::Result<u32> {
    match s {
        "-1" | "∞" => Ok(NEVER),
        _ => s.parse::<u32>().map_err(|_| {
            usage(format!(
                "-x: '{s}' is not a session expiry: use 0-4294967294 seconds, or -1 for never"
            ))
        }),
    }
}

/// The brokers of -h, -L and --unix, in the order given, and the topic their URLs name.
fn brokers(args: &ConnectArgs, quiet: bool) -> anyhow::Result<(Vec<Broker>, Option<String>)> {
    tls::reject_unsupported(&args.tls)?;
    let named = if !args.brokers.is_empty() {
        args.brokers.clone()
    } else {
        // Built by hand (record, sub --serve) rather than parsed: hosts, then URLs.
        args.host
            .iter()
            .cloned()
            .map(BrokerArg::Host)
            .chain(args.url.iter().cloned().map(BrokerArg::Url))
            .collect()
    };
    let mut url_topic: Option<String> = None;
    let mut wanted = Vec::new();
    for named in &named {
        let w = match named {
            BrokerArg::Host(h) => {
                let (host, port) = host_port(h)?;
                Wanted {
                    host,
                    port: port.or(args.port),
                    scheme: None,
                    username: None,
                    password: None,
                    // -p 8883, or -h HOST:8883, turns TLS on, as in mosquitto.
                    tls_port: port.or(args.port),
                }
            }
            BrokerArg::Url(u) => {
                let u = url::parse(u)?;
                if let Some(t) = u.topic {
                    match &url_topic {
                        Some(other) if *other != t => {
                            return Err(usage(format!(
                                "the -L URLs name different topics ('{other}' and '{t}'): give the topic once, with -t"
                            )));
                        }
                        _ => url_topic = Some(t),
                    }
                }
                Wanted {
                    host: u.host,
                    port: u.port.or(args.port),
                    scheme: Some(u.scheme),
                    username: u.username,
                    password: u.password,
                    tls_port: args.port,
                }
            }
        };
        wanted.push(w);
    }
    if wanted.is_empty() {
        wanted.push(Wanted {
            host: "localhost".to_owned(),
            port: args.port,
            scheme: None,
            username: None,
            password: None,
            tls_port: args.port,
        });
    }
    if args.unix.is_some() && wanted.len() > 1 {
        return Err(usage(
            "--unix connects to one broker: drop the other -h and -L brokers",
        ));
    }
    let use_tls = |w: &Wanted| {
        tls::wanted(
            &args.tls,
            w.scheme.is_some_and(url::Scheme::is_tls),
            w.tls_port,
        )
    };
    if args.tls.cert.is_some() && !wanted.iter().any(use_tls) {
        return Err(usage(
            "--cert needs TLS: add --cafile, --capath or --tls-use-os-certs, or use mqtts://",
        ));
    }
    // One TLS setup for every broker: the files are read, and a passphrase asked for, once.
    let tls = if wanted.iter().any(use_tls) {
        Some(tls::client_config(&args.tls, &|m| warn(quiet, m))?)
    } else {
        None
    };
    let password = password::resolve(args)?;
    let uses_ws = |w: &Wanted| args.ws || w.scheme.is_some_and(url::Scheme::is_websocket);
    let ws = if wanted.iter().any(uses_ws) {
        Some(ws_setup(args)?)
    } else {
        None
    };
    let bind = args
        .bind_address
        .as_deref()
        .map(|a| {
            a.parse()
                .map_err(|_| usage(format!("-A '{a}' is not an IP address")))
        })
        .transpose()?;
    let mut brokers = Vec::new();
    for w in wanted {
        let use_tls = use_tls(&w);
        let use_ws = uses_ws(&w);
        let port = w.port.unwrap_or(match (use_ws, use_tls) {
            (false, false) => 1883,
            (false, true) => 8883,
            (true, false) => 80,
            (true, true) => 443,
        });
        if port == 0 {
            return Err(usage("-p 0 is not a port: use 1-65535"));
        }
        let endpoint = match &args.unix {
            Some(path) if use_tls || use_ws => {
                return Err(usage(format!(
                    "--unix {} connects without TLS or WebSocket; drop those options",
                    path.display()
                )));
            }
            Some(path) => Endpoint::Unix(path.clone()),
            None => Endpoint::Tcp {
                host: w.host.clone(),
                port,
            },
        };
        let tls = match (&tls, use_tls) {
            (Some(tls), true) => {
                let name = args
                    .tls
                    .servername
                    .clone()
                    .unwrap_or_else(|| w.host.clone());
                Some(TlsSetup {
                    config: tls.config.clone(),
                    server_name: tls::server_name(&name)?,
                    context: tls.context.clone(),
                })
            }
            _ => None,
        };
        let username = args.username.clone().or(w.username);
        let password = password.clone().or(w.password);
        if password.is_some() && username.is_none() {
            return Err(usage("a password needs a username: add -u USER"));
        }
        brokers.push(Broker {
            transport: TransportSetup {
                endpoint,
                tls,
                ws: if use_ws { ws.clone() } else { None },
                nodelay: args.nodelay,
                bind,
            },
            username,
            password,
        });
    }
    Ok((brokers, url_topic))
}

/// A broker as -h or -L named it, before defaults.
struct Wanted {
    host: String,
    port: Option<u16>,
    scheme: Option<url::Scheme>,
    username: Option<String>,
    password: Option<String>,
    /// The port that decides whether TLS is implied (mosquitto's `-p 8883`).
    tls_port: Option<u16>,
}

/// `-h HOST`, `-h HOST:PORT`, `-h [::1]:1883`; a bare IPv6 address (`-h ::1`) has no port.
fn host_port(h: &str) -> anyhow::Result<(String, Option<u16>)> {
    let bad = |why: String| usage(format!("-h '{h}': {why}"));
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad(format!("'{p}' is not a port (1-65535)")))
    };
    let (host, port) = if let Some(v6) = h.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 host needs a closing ']'".into()))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(port(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':PORT' after ']'".into()))?,
                )?),
            ),
        }
    } else {
        match h.split_once(':') {
            Some((host, p)) if !p.contains(':') => (host, Some(port(p)?)),
            _ => (h, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is missing".into()));
    }
    Ok((host.to_owned(), port))
}

fn ws_setup(args: &ConnectArgs) -> anyhow::Result<WsSetup> {
    if !args.ws_path.starts_with('/') {
        return Err(usage(format!(
            "--ws-path '{}' must start with '/'",
            args.ws_path
        )));
    }
    let headers = args
        .ws_header
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| usage(format!("--ws-header '{h}' must be 'Name: value'")))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(WsSetup {
        path: args.ws_path.clone(),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_ports() {
        let ok = |h: &str| host_port(h).unwrap();
        assert_eq!(ok("broker"), ("broker".into(), None));
        assert_eq!(ok("broker:1884"), ("broker".into(), Some(1884)));
        assert_eq!(ok("::1"), ("::1".into(), None));
        assert_eq!(ok("[::1]"), ("::1".into(), None));
        assert_eq!(ok("[::1]:1883"), ("::1".into(), Some(1883)));
        for (h, needle) in [
            ("b:0", "'0' is not a port"),
            ("b:x", "'x' is not a port"),
            ("[::1", "closing ']'"),
            ("[::1]1883", "expected ':PORT'"),
            (":1883", "host is missing"),
        ] {
            let err = host_port(h).unwrap_err().to_string();
            assert!(err.contains(needle), "{h}: {err}");
        }
    }
}
