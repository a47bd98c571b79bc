//! Where and how the client connects: the endpoint, TLS and WebSocket settings, checked by
//! the options layer before anything dials.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use super::tls;

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

impl TlsSetup {
    /// `tls` for a broker whose certificate must name `server_name`.
    pub fn new(tls: &tls::Tls, server_name: &str) -> anyhow::Result<TlsSetup> {
        Ok(TlsSetup {
            config: tls.config.clone(),
            server_name: tls::server_name(server_name)?,
            context: tls.context.clone(),
        })
    }
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
