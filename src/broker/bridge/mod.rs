//! Bridges: this broker as a client of another one (mosquitto.conf's `connection` sections,
//! or `serve-broker --bridge`), carrying topics out, in, or both. `spec.rs` reads what a bridge
//! is told; [`prepare`] turns it into a way to dial each address (over `crate::transport`, TLS
//! included); `link.rs` runs one.

mod link;
mod spec;

#[cfg(test)]
use spec::TopicMap;
pub use spec::{Bridge, from_url, is_bridge_key};

use std::io::{self, Write as _};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::router::Shared;
use crate::exit::usage;
use crate::transport::setup::{Endpoint, TlsSetup, TransportSetup};
use crate::transport::tls;

/// A bridge and how to reach each of its addresses.
#[derive(Debug, Clone)]
pub struct Ready {
    pub bridge: Bridge,
    transports: Vec<TransportSetup>,
}

/// Reads the bridge's TLS files now, so that a missing or unusable one stops the start
/// (exit 2, naming the bridge) instead of failing every connection attempt later.
pub fn prepare(bridge: Bridge) -> anyhow::Result<Ready> {
    let name = bridge.name.clone();
    let in_bridge = |e: anyhow::Error| usage(format!("bridge '{name}': {e:#}"));
    let tls = if bridge.uses_tls() {
        let warn = |w: &str| {
            let _ = writeln!(io::stderr().lock(), "smq: warning: bridge '{name}': {w}");
        };
        Some(tls::client_config(&bridge.tls, &warn).map_err(in_bridge)?)
    } else {
        None
    };
    let transports = bridge
        .addresses
        .iter()
        .map(|(host, port)| {
            let tls = tls
                .as_ref()
                .map(|t| TlsSetup::new(t, host).map_err(in_bridge))
                .transpose()?;
            Ok(TransportSetup {
                endpoint: Endpoint::Tcp {
                    host: host.clone(),
                    port: *port,
                },
                tls,
                ws: None,
                nodelay: true,
                bind: None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Ready { bridge, transports })
}

/// Starts every bridge as a task of the broker; each keeps its remote connection up.
pub fn start(
    bridges: &[Ready],
    shared: &Arc<Shared>,
    queue_bytes: usize,
    stop: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    for b in bridges {
        tasks.spawn(link::run(
            b.clone(),
            shared.clone(),
            queue_bytes,
            stop.clone(),
        ));
    }
}
