//! The command line's connection flags (`cli::ConnectArgs`) checked and turned into
//! `conn::ConnectOptions`, plain data the client layer takes: which brokers, in which order,
//! over which transport, with which credentials, MQTT version and properties. Every error is
//! a usage error that names the flag.

use std::fs;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;

use crate::cli::{BrokerArg, ConnectArgs, ProtocolVersion, TlsArgs};
use crate::conn::{self, Broker, ConnectOptions, Protocol, Version, props};
use crate::exit::usage;
use crate::mqtt::{self, SESSION_NEVER};
use crate::topic;
use crate::transport::setup::{Endpoint, TlsSetup, TransportSetup, WsSetup};
use crate::transport::tls::{self, TlsOptions};
use crate::transport::url;

pub fn options(args: &ConnectArgs, allowed: &[props::Packet]) -> anyhow::Result<ConnectOptions> {
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
        .or(args.disable_clean_session.then_some(SESSION_NEVER));
    if client_id.is_empty() && (args.disable_clean_session || expiry == Some(SESSION_NEVER)) {
        return Err(usage(
            "a persistent session (-c, or -x -1) needs a client id: add -i ID",
        ));
    }
    if let Some(expiry) = expiry {
        // Only an MQTT 5 CONNECT carries it; under 3.1.1, -c alone keeps the session.
        props
            .connect
            .get_or_insert_with(Default::default)
            .session_expiry = Some(expiry);
    }

    let will = match &args.will_topic {
        None => None,
        Some(t) => {
            if let Some(why) = topic::name_error(t) {
                return Err(usage(format!("bad --will-topic '{t}': {why}")));
            }
            Some(mqtt::Will {
                topic: t.clone(),
                payload: Bytes::from(args.will_payload.clone().unwrap_or_default()),
                qos: args.will_qos,
                retain: args.will_retain,
                delay: props.will.as_ref().map_or(0, |w| w.delay),
                props: props.will.as_ref().map(|w| w.message.clone()),
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

fn parse_expiry(s: &str) -> anyhow::Result<u32> {
    match s {
        "-1" | "∞" => Ok(SESSION_NEVER),
        _ => s.parse::<u32>().map_err(|_| {
            usage(format!(
                "-x: '{s}' is not a session expiry: use 0-4294967294 seconds, or -1 for never"
            ))
        }),
    }
}

/// The brokers of -h, -L and --unix, in the order given, and the topic their URLs name.
fn brokers(args: &ConnectArgs, quiet: bool) -> anyhow::Result<(Vec<Broker>, Option<String>)> {
    reject_unsupported_tls(&args.tls)?;
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
        tls_wanted(
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
        Some(tls::client_config(&tls_options(&args.tls), &|m| {
            conn::warn(quiet, m)
        })?)
    } else {
        None
    };
    let password = password(args)?;
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
                Some(TlsSetup::new(tls, &name)?)
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

/// One password from --pw-file, --pw-prompt, -P or SMQ_PASSWORD (clap fills -P from it), in
/// that order, so it need not appear in `ps`; a broker's -L URL is the fallback. Never logged.
/// The file and the prompt win over -P because an exported SMQ_PASSWORD should not block an
/// explicit choice.
fn password(args: &ConnectArgs) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.pw_file {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading password file {}", path.display()))?;
        let line = text.lines().next().unwrap_or_default();
        return Ok(Some(line.to_owned()));
    }
    if args.pw_prompt {
        let prompt = match &args.username {
            Some(user) => format!("Password for {user}: "),
            None => "Password: ".to_owned(),
        };
        return rpassword::prompt_password(prompt).map(Some).map_err(|e| {
            anyhow!("--pw-prompt needs a terminal ({e}): use --pw-file or SMQ_PASSWORD instead")
        });
    }
    Ok(args.password.clone())
}

/// Whether TLS is on: mosquitto turns it on with any CA option, and smq also with mqtts/wss.
fn tls_wanted(args: &TlsArgs, scheme_tls: bool, port: Option<u16>) -> bool {
    !args.no_tls
        && (scheme_tls
            || args.cafile.is_some()
            || args.capath.is_some()
            || args.tls_use_os_certs
            || port == Some(8883))
}

fn reject_unsupported_tls(args: &TlsArgs) -> anyhow::Result<()> {
    let openssl_only = [
        ("--keyform", args.keyform.is_some()),
        ("--tls-engine", args.tls_engine.is_some()),
        (
            "--tls-engine-kpass-sha1",
            args.tls_engine_kpass_sha1.is_some(),
        ),
        ("--psk", args.psk.is_some()),
        ("--psk-identity", args.psk_identity.is_some()),
    ];
    if let Some((flag, _)) = openssl_only.iter().find(|(_, set)| *set) {
        return Err(usage(format!(
            "{flag} is not supported by smq (rustls): use certificates (--cafile, --cert, --key)"
        )));
    }
    Ok(())
}

fn tls_options(args: &TlsArgs) -> TlsOptions {
    TlsOptions {
        cafile: args.cafile.clone(),
        capath: args.capath.clone(),
        tls_use_os_certs: args.tls_use_os_certs,
        cert: args.cert.clone(),
        key: args.key.clone(),
        key_pw_file: args.key_pw_file.clone(),
        insecure: args.insecure,
        any_name: false,
        tls_version: args.tls_version.clone(),
        tls_alpn: args.tls_alpn.clone(),
        ciphers: args.ciphers.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::conn::Connector;
    use std::sync::Arc;

    fn connector(line: &str) -> Connector {
        let cli = Cli::parse_from_args(line.split_whitespace()).unwrap();
        let Command::Pub(args) = cli.command else {
            panic!("not pub")
        };
        Connector::new(Arc::new(options(&args.conn, &[]).unwrap()))
    }

    #[test]
    fn brokers_are_named_with_their_place_when_there_are_several() {
        let c = connector("smq pub -t t -m x -h a -L mqtts://b:8884/t -h [::1]:1");
        assert_eq!(c.describe(0), "mqtt://a:1883 (1 of 3)");
        assert_eq!(c.describe(1), "mqtts://b:8884 (2 of 3)");
        assert_eq!(c.describe(2), "mqtt://[::1]:1 (3 of 3)");
        assert_eq!(
            connector("smq pub -t t -m x -h a:2").describe(0),
            "mqtt://a:2"
        );
    }

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
