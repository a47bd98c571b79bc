//! `smq serve-broker`: an MQTT 3.1.1 and 5 broker on tokio, over TCP, TLS and WebSocket.
//! This file starts and stops it: `start` binds and announces the listeners and spawns an
//! accept loop per listener and the `$SYS` loop; `run` serves until SIGINT or SIGTERM, and
//! SIGHUP reloads the password and ACL files.
//!
//! Which file owns what:
//! - `listener/`: `--listen` URLs, binding, TLS, the WebSocket upgrade, LAN addresses
//! - `session/`: one client connection: `open.rs` CONNECT to CONNACK (login, takeover,
//!   resume), `flows.rs` the QoS flows in both directions, `out.rs` output held for the log;
//!   `mod.rs` the connection loop, keep-alive, wills. Packets are read and written by
//!   `crate::mqtt`, bytes carried by `crate::transport` (the client's too)
//! - `state.rs`: the types the others share: a message, a delivery, a session's queue and
//!   state
//! - `router.rs`: who gets which message: sessions, subscriptions, the retained store, the
//!   `$SYS` counters; `subscriptions.rs` and `retained.rs` are its two trees (`trie.rs`)
//! - `restore.rs`: at start, what `persist/` holds back into the router
//! - `auth/`: password file, ACL, anonymous access, the brake on failed logins
//! - `persist/`: `--persist`: retained messages and persistent sessions in a log on disk
//! - `conf.rs`: `-c FILE`, the mosquitto.conf keys smq reads
//! - `log.rs`: the connection log, in Mosquitto's words (`-v`, `log_dest`)
//! - `metrics.rs`: the counters, as `$SYS` topics and as `GET /metrics` (`--metrics`)
//! - `bridge/`: connections to other brokers that carry topics across
//! - `http.rs`: HTTP Push on the WebSocket port; `http_head.rs` reads request heads (for the
//!   WebSocket upgrade too), `push_body.rs` the JSON fields, `push_budget.rs` the bytes
//!   pushes may hold, `push_stats.rs` the per-device counts
//! - `phone.rs`: what to type into Sensor Logger, and the per-device status line

pub mod auth;
pub mod bridge;
pub mod conf;
pub mod http;
mod http_head;
mod keepalive;
pub mod listener;
pub mod log;
mod metrics;
mod persist;
mod phone;
mod push_body;
mod push_budget;
mod push_stats;
mod restore;
mod retained;
mod router;
mod session;
mod state;
mod subscriptions;
mod trie;

use std::io::{self, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use auth::{Auth, AuthConfig};
use http::{HttpConfig, Ingest};
use listener::{ListenSpec, Listener, TlsFiles, Upgraded};
use router::Shared;
use state::Published;
pub use state::QueueLimits;

/// Bytes of messages queued per session by default: Mosquitto's `max_queued_bytes` is
/// unlimited by default, and then one client that stops reading holds a thousand messages of
/// any size (`max_queued_messages`). 64 MiB keeps a thousand typical sensor messages, or
/// sixty-four of 1 MB; a larger message still goes to a session whose queue is empty.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 << 20;

/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<ListenSpec>,
    pub tls: Option<TlsFiles>,
    pub max_connections: usize,
    pub max_packet: usize,
    pub max_inflight: u16,
    pub max_queued: QueueLimits,
    pub max_keepalive: u16,
    pub sys_interval: u64,
    /// None: no authentication at all (the embedded broker of `--serve`).
    pub auth: Option<AuthConfig>,
    /// false: retained PUBLISHes and wills are refused (mosquitto's `retain_available`).
    pub retain_available: bool,
    /// Largest PUBLISH payload taken in (mosquitto's `message_size_limit`).
    pub max_payload: Option<usize>,
    /// HTTP Push on the WebSocket listeners (`--http`).
    pub http: Option<HttpConfig>,
    /// `--persist DIR`: keep retained messages and persistent sessions on disk there.
    pub persist: Option<PathBuf>,
    /// The connection log: quiet unless `-v` or the config file asks.
    pub log: Arc<log::Log>,
    /// `--metrics`: `GET /metrics` on the WebSocket listeners.
    pub metrics: bool,
    /// Connections to other brokers (`connection` sections, `--bridge`).
    pub bridges: Vec<bridge::Ready>,
}

impl Config {
    /// serve-broker's defaults, for `record --serve` and `sub --serve`.
    pub fn with_listeners(listen: Vec<ListenSpec>) -> Config {
        Config {
            listen,
            tls: None,
            max_connections: 100_000,
            max_packet: crate::mqtt::MAX_REMAINING_LENGTH,
            max_inflight: 100,
            max_queued: QueueLimits {
                messages: 1000,
                bytes: DEFAULT_MAX_QUEUED_BYTES,
            },
            max_keepalive: u16::MAX,
            sys_interval: 10,
            auth: None,
            retain_available: true,
            max_payload: None,
            http: None,
            persist: None,
            log: Arc::new(log::Log::quiet()),
            metrics: false,
            bridges: Vec::new(),
        }
    }
}

/// `smq serve-broker`: runs until SIGINT or SIGTERM; SIGHUP reads the password and ACL files
/// again.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Before the listeners are announced: a signal sent as soon as they are must stop us
    // gracefully, not kill us.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let running = start(config).await?;
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => {
                let line = match running.auth.reload() {
                    Ok(Some(what)) => what,
                    Ok(None) => continue,
                    Err(e) => format!("warning: kept the files in force: {e:#}"),
                };
                let _ = writeln!(io::stderr().lock(), "smq: {line}");
            }
        }
    }
    running.stop().await;
    Ok(())
}

/// A broker serving in this process's runtime.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
    shared: Arc<Shared>,
    auth: Arc<Auth>,
    /// Where the first plain mqtt:// listener is, for a client in the same process.
    pub mqtt_addr: Option<std::net::SocketAddr>,
}

/// Binds every listener, announces it on stderr and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    crate::alloc::return_freed_memory_promptly();
    let auth = match &config.auth {
        Some(a) => Auth::load(a, &config.listen)?,
        None => Auth::open(),
    };
    // Before binding: a log we cannot read is an error, not a broker that forgot everything.
    let store = config
        .persist
        .as_deref()
        .map(persist::Store::open)
        .transpose()?;
    if let Some(dir) = config.persist.as_deref() {
        persist::stop_on_panic(dir);
    }
    let tls = config.tls.as_ref().map(listener::server_tls).transpose()?;
    let websocket = config.listen.iter().any(|s| s.scheme.is_websocket());
    if config.metrics && !websocket {
        return Err(crate::exit::usage(
            "--metrics needs a ws:// listener (GET /metrics shares the WebSocket port), e.g. --listen ws://127.0.0.1:8000",
        ));
    }
    if config.http.is_some() && !websocket {
        return Err(crate::exit::usage(
            "--http needs a ws:// listener (HTTP Push shares the WebSocket port), e.g. --listen ws://0.0.0.0:8000",
        ));
    }
    let auth = Arc::new(auth);
    let ingest = match config.http.clone() {
        Some(h) => Some(Arc::new(Ingest::new(h, auth.clone(), config.max_payload)?)),
        None => None,
    };
    let mut listeners = listener::bind(&config.listen, tls).await?;
    if config.http.is_some() || config.metrics {
        listeners.iter_mut().for_each(Listener::serve_http);
    }
    {
        let mut err = io::stderr().lock();
        // Before the listeners: a client that saw them announced can read this already.
        if !auth.summary.is_empty() {
            let _ = writeln!(err, "smq: {}", auth.summary);
        }
        if let Some(ingest) = &ingest {
            let _ = writeln!(err, "smq: {}", ingest.summary());
        }
        // Read once: the interface list comes from /proc.
        let lan: Vec<_> = listeners
            .iter()
            .map(|l| (l.scheme(), l.lan_addrs()))
            .collect();
        for (l, (scheme, addrs)) in listeners.iter().zip(&lan) {
            let _ = writeln!(err, "smq: listening on {}", l.url());
            for addr in addrs {
                let _ = writeln!(
                    err,
                    "smq:   on your network: {}",
                    listener::url(*scheme, *addr)
                );
            }
        }
        for line in phone::setup_lines(&lan, config.http.as_ref()) {
            let _ = writeln!(err, "smq: {line}");
        }
    }
    let mqtt_addr = listeners
        .iter()
        .find(|l| l.scheme() == listener::Scheme::Mqtt)
        .map(Listener::local_addr);
    let config = Arc::new(config);
    let shared = Arc::new(Shared::new());
    if let Some(store) = &store {
        restore::restore(&shared, &config, store);
    }
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        tasks.spawn(accept_loop(
            Arc::new(l),
            shared.clone(),
            config.clone(),
            auth.clone(),
            ingest.clone(),
            stop_rx.clone(),
        ));
    }
    tasks.spawn(keepalive::run(shared.keepalives.clone(), stop_rx.clone()));
    if let Some(ingest) = ingest.filter(|i| i.config.status_line) {
        tasks.spawn(phone::status_loop(ingest, stop_rx.clone()));
    }
    // Each bridge holds at most what one session may queue.
    bridge::start(
        &config.bridges,
        &shared,
        config.max_queued.bytes,
        &stop_rx,
        &mut tasks,
    );
    if config.sys_interval > 0 {
        tasks.spawn(sys_loop(
            shared.clone(),
            config.sys_interval,
            stop_rx.clone(),
        ));
    }
    Ok(Running {
        stop,
        tasks,
        shared,
        auth,
        mqtt_addr,
    })
}

impl Running {
    /// Tells every connection the broker is going away, waits briefly for them to close.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        // Connections are told through their session's inbox, as a takeover tells them (an
        // idle one waits for one signal, not two); one registered after this finds `stopping`
        // set and is stopped at once.
        {
            let mut router = self.shared.lock();
            router.stopping = true;
            for entry in router.sessions.values() {
                entry.mailbox.inbox.stop();
            }
        }
        let grace = Instant::now() + SHUTDOWN_GRACE;
        while self
            .shared
            .counters
            .clients_connected
            .load(Ordering::Relaxed)
            > 0
            && Instant::now() < grace
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.tasks.abort_all();
        let store = self.shared.lock().store.clone();
        if let Some(store) = store {
            store.close().await;
        }
    }
}

async fn accept_loop(
    listener: Arc<Listener>,
    shared: Arc<Shared>,
    config: Arc<Config>,
    auth: Arc<Auth>,
    ingest: Option<Arc<Ingest>>,
    mut stop: watch::Receiver<bool>,
) {
    let tls = listener.scheme().is_tls();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        config
            .log
            .new_connection(peer, listener.local_addr().port());
        let listener = listener.clone();
        let shared = shared.clone();
        let config = config.clone();
        let auth = auth.clone();
        let ingest = ingest.clone();
        let stop = stop.clone();
        let metrics = config.metrics;
        // Two boxed futures, one after the other: the handshake's, freed once it has made the
        // connection's. The task itself holds a pointer, which keeps tokio's task cell at its
        // smallest (128 bytes) for the connection's life; an async block holding the
        // handshake's values would double it.
        #[expect(clippy::async_yields_async, reason = "flattened: the task awaits it")]
        let handshake = async move {
            let upgraded = listener.upgrade(stream).await;
            let served: Served = match (upgraded, ingest) {
                (Ok(Upgraded::Mqtt(a)), _) => {
                    // Boxed: the connection's task keeps room for what it was given for its
                    // whole life, and this is needed only until CONNECT is taken.
                    let client = Box::new(session::Client {
                        auth,
                        addr: peer.ip(),
                        port: peer.port(),
                        tls_cn: tls.then_some(a.cert_cn),
                        gate: a.gate,
                    });
                    Box::pin(session::serve(shared, config, client, a.reader, a.writer))
                }
                (Ok(Upgraded::Http(start)), _)
                    if metrics && metrics::is_metrics(&start.head.target) =>
                {
                    Box::pin(async move { metrics::serve(start, &shared).await })
                }
                (Ok(Upgraded::Http(start)), Some(ingest)) => {
                    Box::pin(http::serve(start, shared, ingest, stop))
                }
                (Ok(Upgraded::Http(start)), None) => Box::pin(metrics::not_found(start)),
                // Nothing to serve: a box of an empty future allocates nothing.
                _ => Box::pin(async {}),
            };
            served
        };
        tokio::spawn(Box::pin(handshake).flatten());
    }
}

/// A connection's life after its handshake.
type Served = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `$SYS/broker/...`, retained, every `interval` seconds.
async fn sys_loop(shared: Arc<Shared>, interval: u64, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(interval));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let values = metrics::Snapshot::take(&shared).sys_topics();
        let mut router = shared.lock();
        for (name, value) in values {
            let msg = Arc::new(Published {
                topic: Bytes::from(format!("$SYS/broker/{name}")),
                payload: Bytes::from(value),
                qos: 0,
                retain: true,
                props: None,
                received: std::time::Instant::now(),
                from: None,
            });
            router.retain(&msg);
            router.route(&msg);
        }
    }
}
