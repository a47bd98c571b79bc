//! The client's connect: TCP (or a Unix socket), then TLS, then the WebSocket upgrade; each
//! failure in words (`explain.rs`).

use std::io;
use std::net::SocketAddr;

use anyhow::{Context, anyhow};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::explain;
use super::setup::{Endpoint, TransportSetup, WsSetup};
use super::{Io, Reader, Writer, Ws, split_stream, split_ws};

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
