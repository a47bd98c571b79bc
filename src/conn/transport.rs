//! The byte pipe under MQTT: TCP or a Unix socket, optionally TLS, optionally WebSocket.
//!
//! Each connection is split into a reader and a writer so the client can read acks while a
//! large write is still going out.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::{explain, tls};

/// The most of a shared payload one WebSocket frame carries.
const WS_FRAME: usize = 1024 * 1024;

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

#[derive(Debug, Clone)]
pub struct WsSetup {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub context: Arc<tls::Context>,
}

#[derive(Debug, Clone)]
pub struct TransportSetup {
    pub endpoint: Endpoint,
    pub tls: Option<TlsSetup>,
    pub ws: Option<WsSetup>,
    pub nodelay: bool,
    pub bind: Option<std::net::IpAddr>,
}

impl TransportSetup {
    /// How the broker is named in messages: `mqtts://host:port`.
    pub fn describe(&self) -> String {
        let scheme = match (self.ws.is_some(), self.tls.is_some()) {
            (false, false) => "mqtt",
            (false, true) => "mqtts",
            (true, false) => "ws",
            (true, true) => "wss",
        };
        match &self.endpoint {
            Endpoint::Tcp { host, port } if host.contains(':') => {
                format!("{scheme}://[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => format!("{scheme}://{host}:{port}"),
            Endpoint::Unix(path) => format!("unix:{}", path.display()),
        }
    }
}

pub enum Reader {
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    Ws(SplitStream<Ws>),
}

pub enum Writer {
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    Ws(SplitSink<Ws, WsMessage>),
}

pub async fn open(setup: &TransportSetup) -> anyhow::Result<(Reader, Writer)> {
    let stream: Box<dyn Io> = match &setup.endpoint {
        Endpoint::Tcp { host, port } => Box::new(tcp(host, *port, setup).await?),
        Endpoint::Unix(path) => Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .with_context(|| format!("connecting to Unix socket {}", path.display()))?,
        ),
    };
    let stream: Box<dyn Io> = match &setup.tls {
        None => stream,
        Some(t) => {
            let connector = tokio_rustls::TlsConnector::from(t.config.clone());
            let tls = connector
                .connect(t.server_name.clone(), stream)
                .await
                .map_err(|e| explain::tls_handshake(&e, setup))?;
            Box::new(tls)
        }
    };
    match &setup.ws {
        None => Ok(split_stream(stream)),
        Some(ws) => Ok(split_ws(websocket(stream, ws, setup).await?)),
    }
}

/// Reader and writer halves of a byte stream (TCP, TLS, Unix).
pub fn split_stream(stream: Box<dyn Io>) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(stream);
    (Reader::Stream(Box::new(r)), Writer::Stream(Box::new(w)))
}

/// Reader and writer halves of a WebSocket carrying MQTT in binary frames.
pub fn split_ws(ws: Ws) -> (Reader, Writer) {
    let (sink, source) = ws.split();
    (Reader::Ws(source), Writer::Ws(sink))
}

async fn tcp(host: &str, port: u16, setup: &TransportSetup) -> anyhow::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| anyhow!("cannot resolve host '{host}': {e}"))?
        .collect();
    let mut last = None;
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .context("creating a socket")?;
        if let Some(ip) = setup.bind {
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("binding to local address {ip} (-A)"))?;
        }
        match socket.connect(addr).await {
            Ok(s) => {
                s.set_nodelay(setup.nodelay)
                    .context("setting TCP_NODELAY")?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let hint = match last.as_ref().map(io::Error::kind) {
        Some(io::ErrorKind::ConnectionRefused) => ": is the broker running on that port?",
        _ => "",
    };
    Err(match last {
        Some(e) => anyhow!("cannot connect to {host}:{port}: {e}{hint}"),
        None => anyhow!("cannot resolve host '{host}': no addresses"),
    })
}

async fn websocket(
    stream: Box<dyn Io>,
    ws: &WsSetup,
    setup: &TransportSetup,
) -> anyhow::Result<Ws> {
    let authority = match &setup.endpoint {
        Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
        Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        Endpoint::Unix(_) => "localhost".to_owned(),
    };
    let scheme = if setup.tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{authority}{}", ws.path);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| anyhow!("bad WebSocket URL {url}: {e}"))?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    for (name, value) in &ws.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| anyhow!("--ws-header: '{name}' is not a valid header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| anyhow!("--ws-header: the value of {name} is not valid"))?;
        headers.append(name, value);
    }
    let (ws, _response) = tokio_tungstenite::client_async_with_config(request, stream, None)
        .await
        .map_err(|e| explain::websocket(&e, &url, setup))?;
    Ok(ws)
}

impl Reader {
    /// Appends what arrives to `buf`; 0 means the broker closed the connection.
    /// Cancel-safe: a cancelled call has read nothing.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Reader::Stream(r) => {
                // Grow with the traffic: a busy stream reads in 64 KiB chunks, an idle broker
                // connection keeps a small buffer.
                if buf.capacity() - buf.len() < 512 {
                    buf.reserve(buf.capacity().clamp(1024, 64 * 1024));
                }
                r.read_buf(buf).await
            }
            Reader::Ws(source) => loop {
                match source.next().await {
                    Some(Ok(WsMessage::Binary(data))) => {
                        buf.extend_from_slice(&data);
                        return Ok(data.len());
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return Ok(0),
                    Some(Ok(WsMessage::Text(_))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a WebSocket text frame arrived; MQTT uses binary frames",
                        ));
                    }
                    // Pings are answered by tungstenite itself.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }
}

impl Writer {
    /// Writes some of `buf` and removes what was written; cancel-safe in the same way.
    pub async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
            Writer::Stream(w) => {
                w.write_buf(buf).await?;
                if buf.is_empty() {
                    w.flush().await?;
                }
                Ok(())
            }
            Writer::Ws(sink) => {
                let frame = buf.split().freeze();
                sink.send(WsMessage::Binary(frame))
                    .await
                    .map_err(io::Error::other)
            }
        }
    }

    /// Writes some of `chunk`, a payload shared with the caller, and advances it past what was
    /// written; cancel-safe in the same way. Over WebSocket a frame carries at most
    /// `WS_FRAME` bytes of it, so the frame buffer never holds a second copy of a large
    /// payload; MQTT packets may span frames (MQTT 5 §6.0).
    pub async fn write_shared(&mut self, chunk: &mut Bytes) -> io::Result<()> {
        match self {
            Writer::Stream(w) => {
                w.write_buf(chunk).await?;
                if chunk.is_empty() {
                    w.flush().await?;
                }
                Ok(())
            }
            Writer::Ws(sink) => {
                let frame = chunk.split_to(chunk.len().min(WS_FRAME));
                sink.send(WsMessage::Binary(frame))
                    .await
                    .map_err(io::Error::other)
            }
        }
    }

    /// Ends the stream: TLS close_notify, WebSocket close frame, TCP FIN.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Writer::Stream(w) => w.shutdown().await,
            Writer::Ws(sink) => sink.close().await.map_err(io::Error::other),
        }
    }
}
