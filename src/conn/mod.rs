//! The connection layer shared by every client subcommand: validated options in, a connected
//! `Client` out. Nothing outside `conn` touches rumqttc's types.

mod client;
mod explain;
pub mod packet;
mod password;
mod pem;
pub mod props;
mod reason;
pub mod tls;
pub mod transport;
pub mod url;

use std::io::{self, Write};

use bytes::Bytes;

pub use client::{Client, Event, TooLarge};
pub use packet::{Message, Protocol};
pub use reason::{delivery as delivery_reason, subscribe as subscribe_reason};
use transport::{Endpoint, TlsSetup, TransportSetup, WsSetup};

use crate::cli::{ConnectArgs, ProtocolVersion};
use crate::exit::usage;
use crate::topic;
use crate::x509;

/// Session expiry meaning "never" (MQTT 5 §3.1.2.11.2).
const NEVER: u32 = u32::MAX;

/// Everything needed to connect, checked: nothing here can make the client panic or send an
/// invalid packet.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub transport: TransportSetup,
    pub proto: Protocol,
    /// `-V mqttv31`: CONNECT says MQIsdp, level 3; `proto` is V311 for everything else.
    pub mqtt31: bool,
    pub client_id: String,
    pub keepalive: u16,
    pub clean: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub will: Option<packet::Will>,
    pub props: props::Properties,
    pub max_inflight: u16,
    pub debug: bool,
    pub quiet: bool,
    /// The topic given as the path of a -L URL.
    pub url_topic: Option<String>,
}

impl ConnectOptions {
    pub fn from_args(args: &ConnectArgs, allowed: &[props::Packet]) -> anyhow::Result<Self> {
        let url = args.url.as_deref().map(url::parse).transpose()?;
        let mut props = props::parse(&args.property, allowed)?;

        let mqtt31 = args.protocol_version == Some(ProtocolVersion::V31);
        let proto = match args.protocol_version {
            Some(v @ (ProtocolVersion::V31 | ProtocolVersion::V311))
                if !props.is_empty() || args.session_expiry.is_some() =>
            {
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
            Some(ProtocolVersion::V31 | ProtocolVersion::V311) => Protocol::V311,
            Some(ProtocolVersion::V5) => Protocol::V5,
            None if !props.is_empty() || args.session_expiry.is_some() => Protocol::V5,
            None => Protocol::V311,
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
        if let (Protocol::V5, Some(expiry)) = (proto, expiry) {
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

        let username = args
            .username
            .clone()
            .or_else(|| url.as_ref().and_then(|u| u.username.clone()));
        let password = password::resolve(args, url.as_ref().and_then(|u| u.password.as_deref()))?;
        if password.is_some() && username.is_none() {
            return Err(usage("a password needs a username: add -u USER"));
        }

        let quiet = args.quiet;
        let transport = transport_setup(args, url.as_ref(), quiet)?;
        Ok(ConnectOptions {
            transport,
            proto,
            mqtt31,
            client_id,
            keepalive: args.keepalive,
            clean: !args.disable_clean_session,
            username,
            password,
            will,
            props,
            max_inflight: args.max_inflight,
            debug: args.debug,
            quiet,
            url_topic: url.and_then(|u| u.topic),
        })
    }

    fn connect_packet(&self) -> packet::Connect<'_> {
        packet::Connect {
            mqtt31: self.mqtt31,
            client_id: &self.client_id,
            keepalive: self.keepalive,
            clean: self.clean,
            username: self.username.as_deref(),
            password: self.password.as_deref(),
            will: self.will.as_ref(),
            props: self.props.connect.clone(),
        }
    }

    /// A note on stderr, unless --quiet.
    pub fn warn(&self, msg: &str) {
        warn(self.quiet, msg);
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

fn transport_setup(
    args: &ConnectArgs,
    url: Option<&url::BrokerUrl>,
    quiet: bool,
) -> anyhow::Result<TransportSetup> {
    tls::reject_unsupported(&args.tls)?;
    let scheme = url.map(|u| u.scheme);
    let use_tls = tls::wanted(
        &args.tls,
        scheme.is_some_and(url::Scheme::is_tls),
        args.port,
    );
    let use_ws = args.ws || scheme.is_some_and(url::Scheme::is_websocket);
    if !use_tls && args.tls.cert.is_some() {
        return Err(usage(
            "--cert needs TLS: add --cafile, --capath or --tls-use-os-certs, or use mqtts://",
        ));
    }
    let host = args
        .host
        .clone()
        .or_else(|| url.map(|u| u.host.clone()))
        .unwrap_or_else(|| "localhost".to_owned());
    let port = args
        .port
        .or_else(|| url.and_then(|u| u.port))
        .unwrap_or(match (use_ws, use_tls) {
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
            host: host.clone(),
            port,
        },
    };
    let tls = if use_tls {
        let name = args.tls.servername.clone().unwrap_or_else(|| host.clone());
        let tls = tls::client_config(&args.tls, &|m| warn(quiet, m))?;
        Some(TlsSetup {
            config: tls.config,
            server_name: tls::server_name(&name)?,
            context: tls.context,
        })
    } else {
        None
    };
    let ws = if use_ws {
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
        Some(WsSetup {
            path: args.ws_path.clone(),
            headers,
        })
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
    Ok(TransportSetup {
        endpoint,
        tls,
        ws,
        nodelay: args.nodelay,
        bind,
    })
}
