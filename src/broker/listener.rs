//! The broker's listeners: `--listen` URLs, binding, and turning each accepted TCP connection
//! (plain, TLS, WebSocket or WebSocket over TLS) into the same `Reader`/`Writer` halves the
//! client side uses, so a session never knows which transport it runs on.
//!
//! The WebSocket handshake is done here rather than by tungstenite's `accept_hdr_async`:
//! tungstenite closes a non-upgrade request without any HTTP answer, and the WebSocket port
//! must answer plain HTTP: a clean 4xx, or with `--http` Sensor Logger's HTTP Push
//! (`Upgraded::Http`, served by `broker::http`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::conn::tls::{read_certs, read_key};
use crate::conn::transport::{Io, Reader, Writer, Ws, split_stream, split_ws};
pub use crate::conn::url::Scheme;
use crate::exit::usage;

/// How long a client may take between TCP accept and a usable MQTT byte stream (TLS handshake
/// plus WebSocket upgrade). Without it a client that connects and sends nothing holds a task
/// and a socket forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest MQTT packet: 1 type byte, 4 length bytes, 268,435,455 bytes of body.
const MAX_MQTT_PACKET: usize = crate::mqtt::MAX_PACKET;

/// A WebSocket message may carry a maximum-size packet plus small packets a client coalesced
/// into the same message; the broker's own packet-size limit applies after this.
const MAX_WS_MESSAGE: usize = MAX_MQTT_PACKET + 64 * 1024;

/// An HTTP request head larger than this is refused (431): real clients send well under 2 KiB.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// The WebSocket subprotocols MQTT clients offer: `mqtt` (MQTT 3.1.1 and 5) and `mqttv3.1`
/// (MQTT 3.1, still sent by older Paho clients).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

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

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cafile: Option<PathBuf>,
    pub require_certificate: bool,
}

/// The rustls server configuration for mqtts/wss listeners. With `cafile`, client certificates
/// signed by that CA are checked (and required with `require_certificate`, as in mosquitto).
pub fn server_tls(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    // Explicit provider: the process default panics when two providers end up in the build.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS provider supports neither TLS 1.2 nor 1.3")?;
    let builder = match &files.cafile {
        None if files.require_certificate => {
            return Err(usage(
                "--require-certificate needs --cafile: the CA that signs the client certificates",
            ));
        }
        None => builder.with_no_client_auth(),
        Some(cafile) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(cafile, "CA file")? {
                roots.add(cert).with_context(|| {
                    format!("CA file {} holds an unusable certificate", cafile.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if files.require_certificate {
                verifier
            } else {
                // A client certificate is checked when offered, but clients without one
                // still get in (mosquitto's cafile without require_certificate).
                verifier.allow_unauthenticated()
            };
            let verifier = verifier.build().with_context(|| {
                format!(
                    "CA file {} cannot verify client certificates",
                    cafile.display()
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = read_certs(&files.cert, "certificate")?;
    let key = read_key(&files.key, "key")?;
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        anyhow!(
            "the certificate {} and key {} do not belong together ({e})",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(config))
}

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
        interface_addrs()
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

    /// Same as `self.upgrader().upgrade(stream)`.
    pub async fn upgrade(&self, stream: TcpStream) -> anyhow::Result<Upgraded> {
        self.upgrader.upgrade(stream).await
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
        let (io, cert_cn): (Box<dyn Io>, Option<String>) = match &self.tls {
            None => (Box::new(stream), None),
            Some(acceptor) => {
                let tls = acceptor.accept(stream).await.map_err(tls_error)?;
                let cn = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| subject_cn(cert));
                (Box::new(tls), cn)
            }
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

fn tls_error(err: io::Error) -> anyhow::Error {
    let rustls_error = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::NoCertificatesPresented) => anyhow!(
            "TLS handshake failed: the client sent no certificate, and --require-certificate wants one"
        ),
        Some(e) => anyhow!("TLS handshake failed: {e}"),
        None => anyhow!("TLS handshake failed: {err}"),
    }
}

enum Handshake {
    Ws(Ws, Gate),
    Http(HttpStart),
}

/// What a WebSocket client may send before its CONNECT is in: the largest CONNECT taken, with
/// room for its framing and for packets sent right behind it. tungstenite holds a whole
/// message before handing it over, up to the largest MQTT packet: without this cap an
/// unauthenticated client could make it hold 256 MB.
const WS_BEFORE_CONNECT: u64 = 256 * 1024;

/// Lifts a connection's `WS_BEFORE_CONNECT` cap once its CONNECT is in.
#[derive(Debug, Clone)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    pub fn open(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The stream under tungstenite, counting what it reads while the gate is shut.
struct Capped {
    io: Box<dyn Io>,
    read: u64,
    open: Arc<AtomicBool>,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let open = self.open.load(Ordering::Relaxed);
        if !open && self.read >= WS_BEFORE_CONNECT {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {WS_BEFORE_CONNECT} bytes before CONNECT"),
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if !open {
            self.read += (buf.filled().len() - before) as u64;
        }
        polled
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Reads the HTTP request and answers it: 101 for a WebSocket upgrade on any path; with `http`,
/// any other request goes to the HTTP Push receiver; a 4xx with a one-line reason otherwise.
async fn accept_websocket(mut io: Box<dyn Io>, http: bool) -> anyhow::Result<Handshake> {
    let (head, tail) = match read_head(&mut io, Vec::new()).await {
        Ok(read) => read,
        Err(HeadError::Closed) => {
            bail!("the client closed the connection before a WebSocket request")
        }
        Err(HeadError::Io(e)) => return Err(anyhow!("reading the WebSocket request: {e}")),
        Err(HeadError::Refuse(refusal)) => return Err(refuse(&mut io, refusal).await),
    };
    let request = match HttpHead::parse(&head) {
        Ok(request) => request,
        Err(refusal) => return Err(refuse(&mut io, refusal).await),
    };
    if http && !request.has_token("Upgrade", "websocket") {
        return Ok(Handshake::Http(HttpStart {
            io,
            head: request,
            tail,
        }));
    }
    let response = match websocket_response(&request) {
        Ok(response) => response,
        Err(refusal) => return Err(refuse(&mut io, refusal).await),
    };
    io.write_all(response.as_bytes())
        .await
        .context("answering the WebSocket upgrade")?;
    io.flush()
        .await
        .context("answering the WebSocket upgrade")?;
    // Bytes already read past the head are the client's first frames; tungstenite starts with
    // them.
    let open = Arc::new(AtomicBool::new(false));
    let capped: Box<dyn Io> = Box::new(Capped {
        io,
        read: tail.len() as u64,
        open: open.clone(),
    });
    let ws = WebSocketStream::from_partially_read(capped, tail, Role::Server, Some(ws_config()));
    Ok(Handshake::Ws(ws.await, Gate(open)))
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        // tungstenite allocates the read buffer up front for every connection; its 128 KiB
        // default would make thousands of idle WebSocket clients cost hundreds of MiB.
        .read_buffer_size(8 * 1024)
}

/// An HTTP answer that ends the connection.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: u16,
    /// Extra header lines, each ending in CRLF.
    pub headers: &'static str,
    /// Shown to the client as the body and in the broker's error.
    pub why: String,
}

impl Refusal {
    pub fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            headers: "",
            why: why.into(),
        }
    }
}

pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        // Not in the HTTP registry: Sensor Logger shows the body of a 499 to the phone's user.
        499 => "Rejected",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Sends the refusal, closes, and returns the error for the broker's log.
pub(super) async fn refuse(io: &mut Box<dyn Io>, refusal: Refusal) -> anyhow::Error {
    let body = format!("{}\n", refusal.why);
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{body}",
        refusal.status,
        reason_phrase(refusal.status),
        body.len(),
        refusal.headers,
    );
    // Write errors are ignored: the client may be gone, and the connection ends either way.
    if io.write_all(response.as_bytes()).await.is_ok() && io.shutdown().await.is_ok() {
        // Read what the client still sends (a request body, say): closing a socket with unread
        // data sends a TCP reset, which can destroy the response before the client reads it.
        let mut scratch = [0u8; 4096];
        let mut budget: usize = 64 * 1024;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while budget > 0 {
                match io.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => budget = budget.saturating_sub(n),
                }
            }
        })
        .await;
    }
    anyhow!(
        "refused the HTTP request with {} {}: {}",
        refusal.status,
        reason_phrase(refusal.status),
        refusal.why
    )
}

pub(super) enum HeadError {
    /// Closed before sending anything: port scanners and health checks do this.
    Closed,
    Io(io::Error),
    Refuse(Refusal),
}

/// Reads up to and including the blank line that ends an HTTP request head, starting with
/// `pending` (bytes of it already read); returns the head and whatever was read after it.
pub(super) async fn read_head(
    io: &mut Box<dyn Io>,
    pending: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buf = pending;
    buf.reserve(1024);
    let mut chunk = [0u8; 2048];
    let mut searched = 0;
    loop {
        if buf.is_empty() || buf.len() == searched {
            let n = io.read(&mut chunk).await.map_err(HeadError::Io)?;
            if n == 0 {
                return Err(if buf.is_empty() {
                    HeadError::Closed
                } else {
                    HeadError::Refuse(Refusal::new(400, "the HTTP request ended early"))
                });
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        // Empty lines before a request line are skipped (RFC 9112 §2.2): some clients send
        // a CRLF after a body.
        let blank = buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            buf.drain(..blank);
            searched = 0;
            continue;
        }
        // Fail fast on a client of another protocol instead of waiting for the timeout:
        // every HTTP request starts with an upper-case method name.
        if !buf[0].is_ascii_uppercase() {
            let why = if buf[0] == 0x16 {
                "this is a TLS handshake, but this port speaks plain WebSocket (ws://, not wss://)"
            } else {
                "this port speaks MQTT over WebSocket, not MQTT over TCP: connect with ws://"
            };
            return Err(HeadError::Refuse(Refusal::new(400, why)));
        }
        let from = searched.saturating_sub(3);
        let end = find(&buf[from..], b"\r\n\r\n").map(|i| from + i + 4);
        searched = buf.len();
        if let Some(end) = end.filter(|&end| end <= MAX_HTTP_HEAD) {
            let tail = buf.split_off(end);
            return Ok((buf, tail));
        }
        if buf.len() > MAX_HTTP_HEAD {
            return Err(HeadError::Refuse(Refusal::new(
                431,
                format!("the HTTP request head is larger than {MAX_HTTP_HEAD} bytes"),
            )));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts of an HTTP/1.1 request head the WebSocket handshake (and later the HTTP push)
/// looks at.
#[derive(Debug)]
pub struct HttpHead {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version: String,
    headers: Vec<(String, String)>,
}

impl HttpHead {
    pub(super) fn parse(head: &[u8]) -> Result<HttpHead, Refusal> {
        let bad = |why: &str| Refusal::new(400, why);
        let text = std::str::from_utf8(head)
            .map_err(|_| bad("the HTTP request head is not valid UTF-8"))?;
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the HTTP request line is not 'METHOD TARGET HTTP/1.1'"));
        };
        if !version.starts_with("HTTP/") || method.is_empty() || target.is_empty() {
            return Err(bad("the HTTP request line is not 'METHOD TARGET HTTP/1.1'"));
        }
        let mut headers = Vec::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            // Folded continuation lines are obsolete, and RFC 9112 lets servers refuse them.
            let (name, value) = line
                .split_once(':')
                .filter(|(name, _)| !name.is_empty() && !name.contains([' ', '\t']))
                .ok_or_else(|| bad("an HTTP header line is malformed"))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(HttpHead {
            method: method.to_owned(),
            target: target.to_owned(),
            version: version.to_owned(),
            headers,
        })
    }

    /// Every value of a header, split at commas, for list-valued headers that may also be
    /// repeated (Connection, Sec-WebSocket-Protocol, ...).
    pub(super) fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The 101 answer to a valid WebSocket upgrade (RFC 6455 §4.2), on any path.
fn websocket_response(request: &HttpHead) -> Result<String, Refusal> {
    if !request.has_token("Upgrade", "websocket") {
        return Err(Refusal {
            status: 426,
            headers: "Upgrade: websocket\r\n",
            why: format!(
                "{} {}: this port speaks MQTT over WebSocket; connect with a WebSocket client",
                request.method, request.target
            ),
        });
    }
    if request.method != "GET" {
        return Err(Refusal {
            status: 405,
            headers: "Allow: GET\r\n",
            why: format!("a WebSocket upgrade must be a GET, not {}", request.method),
        });
    }
    if request.version != "HTTP/1.1" {
        return Err(Refusal::new(
            400,
            format!(
                "a WebSocket upgrade needs HTTP/1.1, not {}",
                request.version
            ),
        ));
    }
    if !request.has_token("Connection", "upgrade") {
        return Err(Refusal::new(
            400,
            "a WebSocket upgrade needs 'Connection: Upgrade'",
        ));
    }
    if !request.has_token("Sec-WebSocket-Version", "13") {
        return Err(Refusal {
            status: 426,
            headers: "Sec-WebSocket-Version: 13\r\n",
            why: "only WebSocket version 13 is supported".into(),
        });
    }
    let key = request
        .header("Sec-WebSocket-Key")
        .ok_or_else(|| Refusal::new(400, "the WebSocket upgrade has no Sec-WebSocket-Key"))?;
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(protocol) = subprotocol(request) {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(protocol);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    Ok(response)
}

/// The first MQTT subprotocol the client offers, spelled as offered. Without one the upgrade
/// still succeeds with no subprotocol: some clients offer none, and those that insist on one
/// will refuse the answer themselves.
fn subprotocol(request: &HttpHead) -> Option<&str> {
    request
        .tokens("Sec-WebSocket-Protocol")
        .find(|offered| SUBPROTOCOLS.iter().any(|p| p.eq_ignore_ascii_case(offered)))
}

/// The first common name (OID 2.5.4.3) of a certificate's subject. A small DER walk, since no
/// X.509 parser is among the dependencies: Certificate → tbsCertificate → [version], serial,
/// signature, issuer, validity, subject → RDN sets → (type, value).
fn subject_cn(cert: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let (tag, certificate, _) = der(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = der(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut field = 0;
    let subject = loop {
        let (tag, content, rest) = der(tbs)?;
        tbs = rest;
        // The version is an optional [0] EXPLICIT field before the serial number.
        if tag == 0xA0 {
            continue;
        }
        if field == 4 {
            break content;
        }
        field += 1;
    };
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (tag, mut set, rest) = der(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (_, attribute, rest) = der(set)?;
            set = rest;
            let (tag, oid, value) = der(attribute)?;
            if tag == 0x06 && oid == CN {
                let (tag, value, _) = der(value)?;
                return der_string(tag, value);
            }
        }
    }
    None
}

fn der_string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String
        0x0C | 0x13 | 0x16 => String::from_utf8(value.to_vec()).ok(),
        // BMPString: UTF-16 big-endian
        0x1E if value.len() % 2 == 0 => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // TeletexString: in practice Latin-1
        0x14 => Some(value.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

/// One DER element: (tag, content, what follows). None when truncated or malformed.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// This machine's non-loopback addresses, IPv4 first. Linux: from /proc (no unsafe
/// getifaddrs, no new crate). Elsewhere, or if /proc says nothing: the address of the
/// default route only.
fn interface_addrs() -> Vec<IpAddr> {
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
    use crate::exit::Failure;
    use bytes::BytesMut;
    use futures_util::{SinkExt, StreamExt};
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls::ClientConfig;
    use rustls::pki_types::ServerName;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    fn is_usage(err: &anyhow::Error) -> bool {
        err.chain()
            .any(|e| matches!(e.downcast_ref::<Failure>(), Some(Failure::Usage(_))))
    }

    fn spec(url: &str) -> ListenSpec {
        parse_listen(url).expect("a valid --listen URL")
    }

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

    fn head(text: &str) -> HttpHead {
        HttpHead::parse(text.as_bytes()).expect("a valid request head")
    }

    const UPGRADE: &str = "GET /any/path?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\
        Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn answers_an_upgrade_on_any_path_with_the_offered_subprotocol() {
        let response = websocket_response(&head(&format!("{UPGRADE}\r\n"))).expect("101");
        assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
        // The example of RFC 6455 §1.3.
        assert!(
            response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{response}"
        );
        assert!(!response.contains("Sec-WebSocket-Protocol"), "{response}");
        assert!(response.ends_with("\r\n\r\n"));

        let offers = [
            ("Sec-WebSocket-Protocol: mqtt\r\n", Some("mqtt")),
            ("Sec-WebSocket-Protocol: mqttv3.1\r\n", Some("mqttv3.1")),
            ("Sec-WebSocket-Protocol: chat, MQTT\r\n", Some("MQTT")),
            (
                "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n",
                Some("mqttv3.1"),
            ),
            ("Sec-WebSocket-Protocol: chat\r\n", None),
        ];
        for (header, chosen) in offers {
            let request = head(&format!("{UPGRADE}{header}\r\n"));
            assert_eq!(subprotocol(&request), chosen, "{header}");
        }
    }

    #[test]
    fn refuses_requests_that_are_not_upgrades() {
        let cases = [
            ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 426),
            ("POST /data HTTP/1.1\r\nContent-Length: 2\r\n\r\n", 426),
            (
                "POST / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                405,
            ),
            (
                "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\r\n",
                426,
            ),
            (
                "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
                400,
            ),
        ];
        for (request, status) in cases {
            let refusal = websocket_response(&head(request)).expect_err(request);
            assert_eq!(refusal.status, status, "{request}");
        }
        for bad in [
            "GET /\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET / FTP\r\n\r\n",
            "GET / HTTP/1.1\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nno colon\r\n\r\n",
        ] {
            let refusal = HttpHead::parse(bad.as_bytes()).expect_err(bad);
            assert_eq!(refusal.status, 400, "{bad}");
        }
    }

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

    #[test]
    fn reads_the_subject_common_name() {
        let certs = Certs::new();
        assert_eq!(
            subject_cn(&certs.client_der).as_deref(),
            Some("phone-1 ünïcode")
        );
        let mut params = CertificateParams::new(vec!["x".into()]).expect("SANs");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "no CN here");
        let key = KeyPair::generate().expect("a key");
        let cert = params.self_signed(&key).expect("a cert");
        assert_eq!(subject_cn(cert.der()), None);
        for garbage in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x02\x01\x00",
        ] {
            assert_eq!(subject_cn(garbage), None);
        }
        for cut in 0..certs.client_der.len() {
            // Never a panic on a truncated certificate.
            let _ = subject_cn(&certs.client_der[..cut]);
        }
    }

    /// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM
    /// files in a temp dir.
    struct Certs {
        dir: tempfile::TempDir,
        ca_der: CertificateDer<'static>,
        client_der: CertificateDer<'static>,
        client_key: String,
    }

    impl Certs {
        fn new() -> Certs {
            let dir = tempfile::tempdir().expect("a temp dir");
            let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            ca_params
                .distinguished_name
                .push(DnType::CommonName, "listener test CA");
            let ca_key = KeyPair::generate().expect("a CA key");
            let ca = ca_params.self_signed(&ca_key).expect("a CA cert");

            let leaf = |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
                let mut params = CertificateParams::new(sans).expect("leaf params");
                params.distinguished_name = DistinguishedName::new();
                params.distinguished_name.push(DnType::CommonName, cn);
                params.extended_key_usages = vec![usage];
                let key = KeyPair::generate().expect("a leaf key");
                let cert = params.signed_by(&key, &ca, &ca_key).expect("a leaf cert");
                (cert, key)
            };
            let (server, server_key) = leaf(
                vec!["localhost".into(), "127.0.0.1".into()],
                "localhost",
                ExtendedKeyUsagePurpose::ServerAuth,
            );
            let (client, client_key) = leaf(
                Vec::new(),
                "phone-1 ünïcode",
                ExtendedKeyUsagePurpose::ClientAuth,
            );
            let write = |name: &str, text: &str| {
                std::fs::write(dir.path().join(name), text).expect("writing a test cert");
            };
            write("ca.pem", &ca.pem());
            write("server.pem", &server.pem());
            write("server.key", &server_key.serialize_pem());
            write("client.key", &client_key.serialize_pem());
            Certs {
                ca_der: ca.der().clone(),
                client_der: client.der().clone(),
                client_key: client_key.serialize_pem(),
                dir,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn files(&self, cafile: bool, require_certificate: bool) -> TlsFiles {
            TlsFiles {
                cert: self.path("server.pem"),
                key: self.path("server.key"),
                cafile: cafile.then(|| self.path("ca.pem")),
                require_certificate,
            }
        }

        fn client_config(&self, with_cert: bool) -> Arc<ClientConfig> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_der.clone()).expect("the test CA");
            let builder = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots);
            let config = if with_cert {
                let key = PrivateKeyDer::from_pem_slice(self.client_key.as_bytes())
                    .expect("the client key");
                builder
                    .with_client_auth_cert(vec![self.client_der.clone()], key)
                    .expect("client auth")
            } else {
                builder.with_no_client_auth()
            };
            Arc::new(config)
        }

        async fn connect_tls(
            &self,
            addr: SocketAddr,
            with_cert: bool,
        ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
            let tcp = TcpStream::connect(addr).await?;
            tokio_rustls::TlsConnector::from(self.client_config(with_cert))
                .connect(ServerName::try_from("localhost").expect("a name"), tcp)
                .await
        }
    }

    async fn bind_one(url: &str, tls: Option<Arc<ServerConfig>>) -> Listener {
        let mut listeners = bind(&[spec(url)], tls).await.expect("binding");
        listeners.pop().expect("one listener")
    }

    /// Accepts one connection and upgrades it, as the broker will.
    async fn serve_one(listener: &Listener) -> anyhow::Result<Accepted> {
        let (stream, peer) = listener.accept().await?;
        assert!(peer.ip().is_loopback());
        assert_eq!(stream.nodelay().ok(), Some(true));
        match listener.upgrader().upgrade(stream).await? {
            Upgraded::Mqtt(accepted) => Ok(accepted),
            Upgraded::Http(start) => Err(anyhow!("an HTTP request: {:?}", start.head)),
        }
    }

    /// Bytes from the client arrive through the Reader; bytes given to the Writer reach the
    /// client.
    async fn check_stream<S: AsyncRead + AsyncWrite + Unpin>(
        server: &mut Accepted,
        client: &mut S,
    ) {
        client.write_all(b"\x10hello").await.expect("client write");
        client.flush().await.expect("client flush");
        let mut got = BytesMut::new();
        while got.len() < 6 {
            let n = server.reader.read(&mut got).await.expect("server read");
            assert!(n > 0, "closed early");
        }
        assert_eq!(&got[..], b"\x10hello");
        let mut out = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
        while !out.is_empty() {
            server.writer.write(&mut out).await.expect("server write");
        }
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).await.expect("client read");
        assert_eq!(&reply, b"\x20\x02\x00\x00");
        server.writer.shutdown().await.expect("server shutdown");
        let mut rest = Vec::new();
        // TLS may report the close as an error when the other side did not answer it.
        let _ = client.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
    }

    async fn check_ws<S: AsyncRead + AsyncWrite + Unpin>(
        server: &mut Accepted,
        client: &mut WebSocketStream<S>,
    ) {
        client
            .send(Message::binary(&b"\x10hello"[..]))
            .await
            .expect("client send");
        let mut got = BytesMut::new();
        server.reader.read(&mut got).await.expect("server read");
        assert_eq!(&got[..], b"\x10hello");
        let mut out = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
        server.writer.write(&mut out).await.expect("server write");
        match client.next().await {
            Some(Ok(Message::Binary(data))) => assert_eq!(&data[..], b"\x20\x02\x00\x00"),
            other => panic!("expected a binary frame, got {other:?}"),
        }
        server.writer.shutdown().await.expect("server close");
        assert!(matches!(client.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn mqtt_over_tcp() {
        let listener = bind_one("mqtt://127.0.0.1:0", None).await;
        assert_eq!(listener.scheme(), Scheme::Mqtt);
        assert_ne!(listener.local_addr().port(), 0);
        assert_eq!(
            listener.url(),
            format!("mqtt://127.0.0.1:{}", listener.local_addr().port())
        );
        assert!(listener.lan_urls().is_empty());
        let (server, client) = tokio::join!(
            serve_one(&listener),
            TcpStream::connect(listener.local_addr())
        );
        let (mut server, mut client) = (server.expect("upgrade"), client.expect("connect"));
        assert_eq!(server.cert_cn, None);
        check_stream(&mut server, &mut client).await;
    }

    async fn ws_client<S: AsyncRead + AsyncWrite + Unpin>(
        stream: S,
        url: &str,
        offer: Option<&str>,
    ) -> anyhow::Result<(WebSocketStream<S>, Option<String>)> {
        let mut request = url.into_client_request()?;
        if let Some(offer) = offer {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(offer)?);
        }
        let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((ws, chosen))
    }

    #[tokio::test]
    async fn mqtt_over_websocket_any_path_and_subprotocol() {
        let listener = bind_one("ws://127.0.0.1:0", None).await;
        let addr = listener.local_addr();
        let cases = [
            ("/mqtt", Some("mqtt"), Some("mqtt")),
            ("/", Some("mqttv3.1"), Some("mqttv3.1")),
            ("/some/other/path?x=1", Some("chat, mqtt"), Some("mqtt")),
            ("/", None, None),
        ];
        for (path, offer, chosen) in cases {
            let url = format!("ws://127.0.0.1:{}{path}", addr.port());
            let client = async {
                let tcp = TcpStream::connect(addr).await?;
                ws_client(tcp, &url, offer).await
            };
            let (server, client) = tokio::join!(serve_one(&listener), client);
            let (mut server, (mut client, got)) =
                (server.expect("upgrade"), client.expect("ws connect"));
            assert_eq!(got.as_deref(), chosen, "{path} {offer:?}");
            check_ws(&mut server, &mut client).await;
        }
    }

    /// Sends `request` to a fresh connection and returns the whole answer.
    async fn raw_exchange(listener: &Listener, request: &[u8]) -> (anyhow::Error, String) {
        let client = async {
            let mut tcp = TcpStream::connect(listener.local_addr()).await?;
            tcp.write_all(request).await?;
            let mut answer = Vec::new();
            tcp.read_to_end(&mut answer).await?;
            io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
        };
        let (server, client) = tokio::join!(serve_one(listener), client);
        let Err(err) = server else {
            panic!("the server accepted {request:?}")
        };
        (err, client.expect("the client read the answer"))
    }

    #[tokio::test]
    async fn websocket_port_answers_plain_http_and_garbage() {
        let listener = bind_one("ws://127.0.0.1:0", None).await;
        let (err, answer) = raw_exchange(&listener, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{answer}"
        );
        assert!(answer.contains("Upgrade: websocket\r\n"), "{answer}");
        assert!(
            answer.ends_with("connect with a WebSocket client\n"),
            "{answer}"
        );
        assert!(err.to_string().contains("426"), "{err}");

        // A body the broker never reads must not turn the close into a reset.
        let body = "x".repeat(20_000);
        let post = format!(
            "POST /data HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (_, answer) = raw_exchange(&listener, post.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");

        let (err, answer) = raw_exchange(&listener, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(err.to_string().contains("not MQTT over TCP"), "{err}");

        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(MAX_HTTP_HEAD));
        let (_, answer) = raw_exchange(&listener, huge.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    }

    #[tokio::test]
    async fn frames_sent_with_the_upgrade_request_are_kept() {
        let listener = bind_one("ws://127.0.0.1:0", None).await;
        let mut bytes = format!("{UPGRADE}\r\n").into_bytes();
        // A masked binary frame (RFC 6455 §5.3) in the same write as the request.
        let mask = [1u8, 2, 3, 4];
        bytes.extend_from_slice(&[0x82, 0x80 | 6]);
        bytes.extend_from_slice(&mask);
        bytes.extend(
            b"\x10hello"
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m),
        );
        let client = async {
            let mut tcp = TcpStream::connect(listener.local_addr()).await?;
            tcp.write_all(&bytes).await?;
            io::Result::Ok(tcp)
        };
        let (server, client) = tokio::join!(serve_one(&listener), client);
        let (mut server, _client) = (server.expect("upgrade"), client.expect("connect"));
        let mut got = BytesMut::new();
        server.reader.read(&mut got).await.expect("server read");
        assert_eq!(&got[..], b"\x10hello");
    }

    #[tokio::test]
    async fn with_http_other_requests_are_handed_over_and_upgrades_still_work() {
        let mut listener = bind_one("ws://127.0.0.1:0", None).await;
        listener.serve_http();
        let post = b"POST /data HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let client = async {
            let mut tcp = TcpStream::connect(listener.local_addr()).await?;
            tcp.write_all(post).await?;
            io::Result::Ok(tcp)
        };
        let (server, _client) = tokio::join!(
            async {
                let (stream, _) = listener.accept().await?;
                listener.upgrade(stream).await
            },
            client
        );
        match server.expect("handed over") {
            Upgraded::Http(start) => {
                assert_eq!(
                    (start.head.method.as_str(), start.head.target.as_str()),
                    ("POST", "/data")
                );
                assert_eq!(start.tail, b"{}");
            }
            Upgraded::Mqtt(_) => panic!("a POST became an MQTT connection"),
        }
        let client = async {
            let mut tcp = TcpStream::connect(listener.local_addr()).await?;
            tcp.write_all(format!("{UPGRADE}\r\n").as_bytes()).await?;
            io::Result::Ok(tcp)
        };
        let (server, _client) = tokio::join!(serve_one(&listener), client);
        server.expect("the upgrade still works");
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let mut listener = bind_one("ws://127.0.0.1:0", None).await;
        listener.set_handshake_timeout(Duration::from_millis(200));
        let client = TcpStream::connect(listener.local_addr());
        let (server, client) = tokio::join!(serve_one(&listener), client);
        let err = server.err().expect("a timeout");
        assert!(err.to_string().contains("within 0.2 s"), "{err}");
        let mut rest = Vec::new();
        let n = client
            .expect("connect")
            .read_to_end(&mut rest)
            .await
            .expect("EOF");
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn mqtt_over_tls() {
        let certs = Certs::new();
        let tls = server_tls(&certs.files(false, false)).expect("server TLS");
        let listener = bind_one("mqtts://127.0.0.1:0", Some(tls)).await;
        let (server, client) = tokio::join!(
            serve_one(&listener),
            certs.connect_tls(listener.local_addr(), false)
        );
        let (mut server, mut client) = (server.expect("upgrade"), client.expect("TLS"));
        assert_eq!(server.cert_cn, None);
        check_stream(&mut server, &mut client).await;
    }

    #[tokio::test]
    async fn client_certificates_required() {
        let certs = Certs::new();
        let tls = server_tls(&certs.files(true, true)).expect("server TLS");
        let listener = bind_one("mqtts://127.0.0.1:0", Some(tls)).await;

        let (server, client) = tokio::join!(
            serve_one(&listener),
            certs.connect_tls(listener.local_addr(), true)
        );
        let (mut server, mut client) = (server.expect("upgrade"), client.expect("TLS"));
        assert_eq!(server.cert_cn.as_deref(), Some("phone-1 ünïcode"));
        check_stream(&mut server, &mut client).await;

        let client = async {
            // With TLS 1.3 the client may finish before the server refuses; then the refusal
            // arrives as the first read.
            let mut tls = certs.connect_tls(listener.local_addr(), false).await?;
            let mut byte = [0u8; 1];
            tls.read(&mut byte).await
        };
        let (server, client) = tokio::join!(serve_one(&listener), client);
        let err = server.err().expect("refused without a client certificate");
        assert!(err.to_string().contains("sent no certificate"), "{err}");
        assert!(!matches!(client, Ok(n) if n > 0));
    }

    #[tokio::test]
    async fn client_certificates_optional() {
        let certs = Certs::new();
        let tls = server_tls(&certs.files(true, false)).expect("server TLS");
        let listener = bind_one("mqtts://127.0.0.1:0", Some(tls)).await;
        for (with_cert, cn) in [(true, Some("phone-1 ünïcode")), (false, None)] {
            let (server, client) = tokio::join!(
                serve_one(&listener),
                certs.connect_tls(listener.local_addr(), with_cert)
            );
            let (mut server, mut client) = (server.expect("upgrade"), client.expect("TLS"));
            assert_eq!(server.cert_cn.as_deref(), cn);
            check_stream(&mut server, &mut client).await;
        }
    }

    #[tokio::test]
    async fn mqtt_over_secure_websocket() {
        let certs = Certs::new();
        let tls = server_tls(&certs.files(true, true)).expect("server TLS");
        let listener = bind_one("wss://127.0.0.1:0", Some(tls)).await;
        let url = format!("wss://localhost:{}/mqtt", listener.local_addr().port());
        let client = async {
            let tls = certs.connect_tls(listener.local_addr(), true).await?;
            ws_client(tls, &url, Some("mqtt")).await
        };
        let (server, client) = tokio::join!(serve_one(&listener), client);
        let (mut server, (mut client, chosen)) =
            (server.expect("upgrade"), client.expect("wss connect"));
        assert_eq!(chosen.as_deref(), Some("mqtt"));
        assert_eq!(server.cert_cn.as_deref(), Some("phone-1 ünïcode"));
        check_ws(&mut server, &mut client).await;
    }

    #[tokio::test]
    async fn binding_errors() {
        let err = bind(
            &[spec("mqtt://127.0.0.1:0"), spec("wss://127.0.0.1:0")],
            None,
        )
        .await
        .err()
        .expect("TLS is needed");
        assert!(is_usage(&err));
        assert_eq!(
            err.to_string(),
            "--listen wss://127.0.0.1:0 needs --cert and --key"
        );

        let taken = bind_one("mqtt://127.0.0.1:0", None).await;
        let again = format!("ws://{}", taken.local_addr());
        let err = bind(&[spec(&again)], None)
            .await
            .err()
            .expect("port in use");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("cannot listen on {again}: ")),
            "{msg}"
        );
        assert!(msg.contains("port is taken"), "{msg}");

        let all = bind_one("mqtt://0.0.0.0:0", None).await;
        for url in all.lan_urls() {
            assert!(url.starts_with("mqtt://"), "{url}");
            assert!(
                url.ends_with(&format!(":{}", all.local_addr().port())),
                "{url}"
            );
            assert!(!url.contains("127.0.0.1"), "{url}");
        }
    }

    #[test]
    fn tls_file_errors_name_the_file() {
        let certs = Certs::new();
        let mut files = certs.files(false, false);
        files.cert = certs.path("missing.pem");
        let err = format!("{:#}", server_tls(&files).expect_err("missing cert"));
        assert!(
            err.contains("reading certificate") && err.contains("missing.pem"),
            "{err}"
        );

        let mut files = certs.files(false, false);
        files.key = certs.path("server.pem");
        let err = format!("{:#}", server_tls(&files).expect_err("no key"));
        assert!(
            err.contains("reading key") && err.contains("no PEM private key"),
            "{err}"
        );

        let mut files = certs.files(false, false);
        files.key = certs.path("client.key");
        let err = format!("{:#}", server_tls(&files).expect_err("wrong key"));
        assert!(err.contains("do not belong together"), "{err}");

        let mut files = certs.files(true, false);
        files.cafile = Some(certs.path("server.key"));
        let err = format!("{:#}", server_tls(&files).expect_err("no CA"));
        assert!(
            err.contains("CA file") && err.contains("server.key"),
            "{err}"
        );

        let err = server_tls(&certs.files(false, true)).expect_err("require without CA");
        assert!(is_usage(&err));
        assert!(err.to_string().contains("needs --cafile"), "{err}");
    }
}
