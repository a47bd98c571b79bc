//! `smq serve-broker`: interoperability through real clients (mosquitto_pub/sub, smq pub/sub,
//! MQTT.js over WebSocket) and protocol tests with hand-built packets (`support::raw`), each
//! naming the normative statement it checks: [MQTT-x.y.z-n] of MQTT 3.1.1 unless marked v5.
//!
//! Every test starts its own broker on ports it picks itself. Absence is checked with a marker
//! message published after the one that must not arrive (per-topic ordering), or where that is
//! impossible with a short bounded window (`-W`).
//!
//! One file per concern:
//! - `listeners.rs`: listeners and signals, WebSocket, TLS, client certificates
//! - `interop.rs`: other implementations' clients
//! - `connect.rs`: CONNECT, sessions, keep-alive, CONNACK
//! - `publish.rs`: QoS flows, topic aliases, expiry, properties, `$SYS`
//! - `retained.rs`: retained messages and the retain options
//! - `subscribe.rs`: matching, shared subscriptions, subscription options
//! - `will.rs`: wills and will delay
//! - `limits.rs`: Receive Maximum and packet sizes
//! - `malformed.rs`: forbidden packets and garbage
//! - `memory.rs`: what the broker holds in memory
//! - `log.rs`: the connection log, side by side with Mosquitto's
//! - `metrics.rs`: `GET /metrics` (`--metrics`) through a Prometheus parser
//! - `persist.rs`, `soak.rs`: `--persist` across restarts and crashes, and under load

mod connect;
mod interop;
mod limits;
mod listeners;
mod log;
mod malformed;
mod memory;
mod metrics;
mod persist;
mod publish;
mod retained;
mod soak;
mod subscribe;
mod will;

use crate::support::raw::{Client, V4};
use crate::support::smq_broker::SmqBroker;

const SECS: u64 = 30;

/// A fresh connection gets PINGRESP: the broker still serves clients.
fn assert_serving(broker: &mut SmqBroker) {
    assert!(broker.is_running(), "the broker exited\n{}", broker.log());
    Client::connected(broker.port(), V4, "").ping();
}
