//! `smq serve-broker`: `-c` config file, then flags over it, then defaults → `broker::Config`.
//! The `--http*` options → `HttpConfig` are here too, for the embedded broker of `--serve`.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::broker::auth::AuthConfig;
use crate::broker::conf::ConfFile;
use crate::broker::http::{HttpConfig, TopicTemplate};
use crate::broker::listener::{ListenSpec, Scheme};
use crate::broker::{self, Config, QueueLimits, listener};
use crate::cli::{HttpArgs, ServeBrokerArgs};
use crate::exit::usage;

pub async fn run(args: ServeBrokerArgs) -> anyhow::Result<ExitCode> {
    broker::run(config(args)?).await?;
    Ok(ExitCode::SUCCESS)
}

fn config(args: ServeBrokerArgs) -> anyhow::Result<Config> {
    let mut file = match &args.config {
        Some(path) => ConfFile::read(path)?,
        None => ConfFile::default(),
    };
    {
        let mut err = std::io::stderr().lock();
        for w in &file.warnings {
            let _ = writeln!(err, "smq: warning: {w}");
        }
    }
    let persist = persist(args.persist, &file);
    let mut bridges = std::mem::take(&mut file.bridges);
    if let Some(url) = &args.bridge {
        let mut b = broker::bridge::from_url(url, &args.bridge_topic, args.bridge_cafile.clone())
            .map_err(usage)?;
        // The command line's bridge is for any broker: RabbitMQ drops the bridge bit.
        b.try_private = false;
        b.round_robin = true;
        bridges.push(b);
    }
    let bridges = bridges
        .into_iter()
        .map(broker::bridge::prepare)
        .collect::<anyhow::Result<_>>()?;
    let defaults = Config::with_listeners(Vec::new());
    let log = file.log(args.verbose).open()?;
    let mut listen: Vec<ListenSpec> = if !args.listen.is_empty() {
        args.listen
            .iter()
            .map(|u| listener::parse_listen(u))
            .collect::<anyhow::Result<_>>()?
    } else {
        file.listeners
    };
    // `-p`, as Mosquitto 2.0: loopback only without a config file (its local-only mode),
    // every interface with one.
    let port_ip = if args.config.is_some() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    listen.extend(args.port.iter().map(|&p| ListenSpec {
        scheme: Scheme::Mqtt,
        addr: SocketAddr::new(port_ip, p),
    }));
    if listen.is_empty() {
        listen = listener::default_specs();
    }
    let cert = args.cert.or(file.certfile);
    let key = args.key.or(file.keyfile);
    let cafile = args.cafile.or(file.cafile);
    let require_certificate = args.require_certificate || file.require_certificate == Some(true);
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(listener::TlsFiles {
            cert,
            key,
            cafile,
            require_certificate,
        }),
        (Some(_), None) => return Err(usage("--cert needs --key (keyfile): the server's key")),
        (None, Some(_)) => {
            return Err(usage(
                "--key needs --cert (certfile): the server's certificate",
            ));
        }
        (None, None) if cafile.is_some() || require_certificate => {
            return Err(usage(
                "--cafile and --require-certificate need --cert and --key: client certificates are only asked for over TLS",
            ));
        }
        (None, None) => None,
    };
    Ok(Config {
        listen,
        tls,
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections),
        max_packet: args
            .max_packet_size
            .or(file.max_packet_size)
            .map_or(defaults.max_packet, |v| v as usize),
        max_inflight: args
            .max_inflight
            .or(file.max_inflight)
            .unwrap_or(defaults.max_inflight),
        max_queued: QueueLimits {
            messages: args
                .max_queued
                // 0: no limit, as `max_queued_messages 0`.
                .map(|v| if v == 0 { usize::MAX } else { v as usize })
                .or(file.max_queued)
                .unwrap_or(defaults.max_queued.messages),
            bytes: args
                .max_queued_bytes
                .map(|v| match usize::try_from(v) {
                    Ok(0) | Err(_) => usize::MAX,
                    Ok(v) => v,
                })
                .or(file.max_queued_bytes)
                .unwrap_or(defaults.max_queued.bytes),
        },
        max_keepalive: args
            .max_keepalive
            .or(file.max_keepalive)
            .unwrap_or(defaults.max_keepalive),
        sys_interval: args
            .sys_interval
            .or(file.sys_interval)
            .unwrap_or(defaults.sys_interval),
        auth: Some(AuthConfig {
            password_file: args.password_file.or(file.password_file),
            acl_file: args.acl_file.or(file.acl_file),
            allow_anonymous: args.allow_anonymous.or(file.allow_anonymous),
            use_identity_as_username: args.use_identity_as_username
                || file.use_identity_as_username == Some(true),
        }),
        retain_available: file.retain_available.unwrap_or(defaults.retain_available),
        max_payload: file.message_size_limit.flatten(),
        http: http_config(&args.http, std::io::stderr().is_terminal())?,
        persist,
        log: Arc::new(log),
        metrics: args.metrics,
        bridges,
    })
}

/// `--persist DIR`, else mosquitto's `persistence true` with `persistence_location` (the
/// current directory without one, as in mosquitto). smq writes `smq.log` there, never touching a
/// `mosquitto.db` beside it.
fn persist(flag: Option<PathBuf>, file: &ConfFile) -> Option<PathBuf> {
    flag.or_else(|| {
        (file.persistence == Some(true)).then(|| {
            file.persistence_location
                .clone()
                .unwrap_or_else(|| ".".into())
        })
    })
}

/// `--http` and its `--http-*` options, checked; None without `--http`. `status_line`: keep
/// per-device counts for a status line on stderr.
pub(super) fn http_config(
    args: &HttpArgs,
    status_line: bool,
) -> anyhow::Result<Option<HttpConfig>> {
    if !args.http {
        return Ok(None);
    }
    let path = match &args.http_path {
        None => None,
        Some(p) if p.starts_with('/') && !p.contains(['?', '#', ' ']) => Some(p.clone()),
        Some(p) => {
            return Err(usage(format!(
                "--http-path '{p}': give a path starting with '/', e.g. /data"
            )));
        }
    };
    let max_body = usize::try_from(args.http_max_body)
        .map_err(|_| usage("--http-max-body is larger than this machine can hold"))?;
    Ok(Some(HttpConfig {
        path,
        topic: TopicTemplate::parse(&args.http_topic)?,
        qos: args.http_qos,
        token: args.http_token.clone(),
        max_body,
        split: args.split,
        status_line,
    }))
}
