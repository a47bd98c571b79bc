//! The broker's listeners: binding each `--listen` URL, accepting connections, and turning
//! each one (plain, TLS, WebSocket or WebSocket over TLS) into the same `Reader`/`Writer`
//! halves the client side uses, so a session never knows which transport it runs on. A
//! request on a WebSocket port that is not an upgrade is handed over as `Upgraded::Http`.
//!
//! - `spec.rs`: `--listen` URLs (`ListenSpec`) and the defaults
//! - `tls.rs`: the TLS server configuration and handshake, the client certificate's CN
//! - `websocket.rs`: the WebSocket upgrade and the cap before CONNECT (`Gate`)
//! - `lan.rs`: this machine's LAN addresses, for the advice printed at start
//!
//! The HTTP request head reader both this and HTTP Push use is `broker::http_head`.

pub mod lan;
mod spec;
#[cfg(test)]
mod tests;
mod tls;
mod websocket;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::broker::http_head::HttpHead;
use crate::exit::usage;
use crate::transport::{Io, Reader, Writer, split_stream, split_tcp, split_ws};
pub use spec::{ListenSpec, Scheme, default_specs, first_exposed, parse_listen, url};
pub use tls::{TlsFiles, server_tls};
pub use websocket::Gate;
use websocket::{Handshake, accept_websocket};

/// How long a client may take between TCP accept and a usable MQTT byte stream (TLS handshake
/// plus WebSocket upgrade). Without it a client that connects and sends nothing holds a task
/// and a socket forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One bound socket. `accept` takes connections; `upgrade` (or an `Upgrader` moved into the
/// connection's task) finishes them.
pub struct Listener {
    tcp: TcpListener,
    local_addr: SocketAddr,
    upgrader: Upgrader,
}

/// Binds every spec, in order. mqtts/wss specs need `tls`; that is checked for all specs before
/// anything is bound.
pub async fn bind(
    specs: &[ListenSpec],
    tls: Option<Arc<ServerConfig>>,
) -> anyhow::Result<Vec<Listener>> {
    if tls.is_none() {
        if let Some(spec) = specs.iter().find(|s| s.scheme.is_tls()) {
            return Err(usage(format!(
                "--listen {} needs --cert and --key",
                spec.url()
            )));
        }
    }
    let mut listeners = Vec::with_capacity(specs.len());
    for spec in specs {
        let tcp = TcpListener::bind(spec.addr)
            .await
            .map_err(|e| bind_error(spec, &e))?;
        let local_addr = tcp
            .local_addr()
            .with_context(|| format!("reading the bound address of {}", spec.url()))?;
        let tls = match (spec.scheme.is_tls(), &tls) {
            (true, Some(config)) => Some(TlsAcceptor::from(config.clone())),
            _ => None,
        };
        listeners.push(Listener {
            tcp,
            local_addr,
            upgrader: Upgrader {
                scheme: spec.scheme,
                tls,
                timeout: HANDSHAKE_TIMEOUT,
                http: false,
            },
        });
    }
    Ok(listeners)
}

fn bind_error(spec: &ListenSpec, err: &io::Error) -> anyhow::Error {
    let hint = match err.kind() {
        io::ErrorKind::AddrInUse => {
            ": the port is taken (another broker, or the same port in two --listen options); choose another port, or 0 for a free one"
        }
        io::ErrorKind::PermissionDenied => {
            ": ports below 1024 need privileges; choose a port above 1023"
        }
        io::ErrorKind::AddrNotAvailable => {
            ": that address is not on this machine; use one of its addresses, 0.0.0.0 or 127.0.0.1"
        }
        _ => "",
    };
    anyhow!("cannot listen on {}: {err}{hint}", spec.url())
}

impl Listener {
    pub fn scheme(&self) -> Scheme {
        self.upgrader.scheme
    }

    /// The address actually bound (the real port when the spec said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `mqtt://127.0.0.1:1883`: what is printed at start.
    pub fn url(&self) -> String {
        url(self.scheme(), self.local_addr)
    }

    /// [`Listener::lan_addrs`] as URLs.
    #[cfg(test)]
    pub fn lan_urls(&self) -> Vec<String> {
        self.lan_addrs()
            .into_iter()
            .map(|a| url(self.scheme(), a))
            .collect()
    }

    /// When bound to all interfaces, the addresses another device on the LAN (a phone) should
    /// use, one per non-loopback address of this machine; empty otherwise, or when the
    /// addresses cannot be found (this is advice, so it never fails).
    pub fn lan_addrs(&self) -> Vec<SocketAddr> {
        let ip = self.local_addr.ip();
        if !ip.is_unspecified() {
            return Vec::new();
        }
        // On Linux (and by default elsewhere) `[::]` also accepts IPv4; `0.0.0.0` never IPv6.
        let want_v6 = ip.is_ipv6();
        lan::interface_addrs()
            .into_iter()
            .filter(|a| a.is_ipv4() || want_v6)
            .map(|a| SocketAddr::new(a, self.local_addr.port()))
            .collect()
    }

    /// On a ws:// or wss:// listener, hand requests that are not WebSocket upgrades to the
    /// HTTP Push receiver instead of refusing them.
    pub fn serve_http(&mut self) {
        self.upgrader.http = self.scheme().is_websocket();
    }

    /// Overrides [`HANDSHAKE_TIMEOUT`] for connections upgraded after this call.
    #[cfg(test)]
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.upgrader.timeout = timeout;
    }

    /// Accepts the next TCP connection, with TCP_NODELAY set (MQTT packets are small and
    /// latency matters more than segment count). Cancel-safe. Errors that concern only the one
    /// connection (reset before accept) are skipped; the ones returned concern the listener,
    /// typically too many open files: the caller should wait a little and call again, not stop.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    // Failing only costs latency, and the peer may already be gone.
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, peer));
                }
                Err(e) if per_connection(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A handle that finishes connections of this listener; move it into the connection's task
    /// so a slow handshake never holds up `accept`.
    #[cfg(test)]
    pub fn upgrader(&self) -> Upgrader {
        self.upgrader.clone()
    }

    /// Same as `self.upgrader().upgrade(stream)`, boxed, and made outside any async fn: the
    /// TLS and WebSocket handshakes are large futures, and a future built inside an async fn
    /// keeps its room in the connection's task for the connection's life, even when boxed.
    pub fn upgrade(
        &self,
        stream: TcpStream,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Upgraded>> + Send + '_>> {
        Box::pin(self.upgrader.upgrade(stream))
    }
}

fn per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// A connection ready for MQTT.
pub struct Accepted {
    pub reader: Reader,
    pub writer: Writer,
    /// WebSocket: caps what the client may send until its CONNECT is in (`Gate::open`).
    pub gate: Option<Gate>,
    /// The subject common name of the client's certificate, when it sent one (mqtts/wss with
    /// `--cafile`): for mosquitto's `use_identity_as_username`.
    pub cert_cn: Option<String>,
}

/// What an accepted connection turned out to be.
pub enum Upgraded {
    Mqtt(Accepted),
    /// A plain HTTP request on a WebSocket port that serves HTTP Push.
    Http(HttpStart),
}

/// The first request of an HTTP connection: its head, the bytes read past it, and the stream.
pub struct HttpStart {
    pub io: Box<dyn Io>,
    pub head: HttpHead,
    pub tail: Vec<u8>,
}

/// Finishes connections for one listener: TLS handshake and/or WebSocket upgrade.
#[derive(Clone)]
pub struct Upgrader {
    scheme: Scheme,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
    http: bool,
}

impl Upgrader {
    /// TLS handshake (mqtts, wss) and WebSocket upgrade (ws, wss) within the handshake timeout.
    /// An error means the connection is already closed; it says why, for a log line.
    pub async fn upgrade(&self, stream: TcpStream) -> anyhow::Result<Upgraded> {
        match tokio::time::timeout(self.timeout, self.handshake(stream)).await {
            Ok(result) => result,
            Err(_) => {
                let what = match self.scheme {
                    Scheme::Mqtt => "connection",
                    Scheme::Mqtts => "TLS handshake",
                    Scheme::Ws => "WebSocket upgrade",
                    Scheme::Wss => "TLS handshake and WebSocket upgrade",
                };
                Err(anyhow!(
                    "the {what} did not finish within {} s",
                    self.timeout.as_secs_f32()
                ))
            }
        }
    }

    async fn handshake(&self, stream: TcpStream) -> anyhow::Result<Upgraded> {
        // Plain MQTT keeps the socket's own halves, the smallest an idle connection can hold.
        if self.tls.is_none() && !self.scheme.is_websocket() {
            let (reader, writer) = split_tcp(stream);
            return Ok(Upgraded::Mqtt(Accepted {
                reader,
                writer,
                gate: None,
                cert_cn: None,
            }));
        }
        let (io, cert_cn): (Box<dyn Io>, Option<String>) = match &self.tls {
            None => (Box::new(stream), None),
            Some(acceptor) => tls::accept(acceptor, stream).await?,
        };
        let (reader, writer, gate) = if self.scheme.is_websocket() {
            match accept_websocket(io, self.http).await? {
                Handshake::Ws(ws, gate) => {
                    let (reader, writer) = split_ws(ws);
                    (reader, writer, Some(gate))
                }
                Handshake::Http(start) => return Ok(Upgraded::Http(start)),
            }
        } else {
            let (reader, writer) = split_stream(io);
            (reader, writer, None)
        };
        Ok(Upgraded::Mqtt(Accepted {
            reader,
            writer,
            gate,
            cert_cn,
        }))
    }
}
