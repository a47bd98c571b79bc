//! Bridges: this broker as a client of another one (mosquitto.conf's `connection` sections,
//! or `serve-broker --bridge`), carrying topics out, in, or both. `spec.rs` reads what a bridge
//! is told; `link.rs` runs one.

mod link;
mod spec;

#[cfg(test)]
use spec::TopicMap;
pub use spec::{Bridge, from_url, is_bridge_key};

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::router::Shared;

/// Starts every bridge as a task of the broker; each keeps its remote connection up.
pub fn start(
    bridges: &[Bridge],
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
