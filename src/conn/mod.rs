//! The client: validated options in ([`ConnectOptions`], plain data that `cmd/connect.rs`
//! makes from the command line), a connected [`Client`] out. Who owns what:
//!
//! - `client.rs`: one connection: CONNECT/CONNACK, packet ids, QoS 1/2 flows, keep-alive.
//! - `failover.rs`: which broker next, `-V auto`, reconnecting with back-off.
//! - `outbox.rs`: messages waiting for a broker, bounded in bytes.
//! - `props.rs`: `-D COMMAND NAME VALUE`, checked, by packet.
//! - `reason.rs`: reason codes in words, as the client reports them.
//!
//! Packets are `crate::mqtt`'s, in both directions; the bytes travel over `crate::transport`.

mod client;
mod failover;
pub mod outbox;
pub mod props;
mod reason;

use std::io::{self, Write};
use std::time::Duration;

use bytes::Bytes;

pub use crate::mqtt::{Message, Protocol};
pub use client::{Client, Event, TooLarge};
pub use failover::Connector;
pub use reason::{delivery as delivery_reason, subscribe as subscribe_reason};

use crate::mqtt;
use crate::transport::setup::TransportSetup;

/// Which MQTT version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 5, and 3.1.1 with a broker that does not speak 5.
    Auto,
    Only(Protocol),
}

/// One broker to connect to, with the credentials for it.
#[derive(Debug, Clone)]
pub struct Broker {
    pub transport: TransportSetup,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Broker {
    pub fn describe(&self) -> String {
        self.transport.describe()
    }
}

/// Everything needed to connect, checked: nothing here can make the client panic or send an
/// invalid packet.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Tried in this order, at start and after every lost connection.
    pub brokers: Vec<Broker>,
    pub version: Version,
    /// Flags that only MQTT 5 can carry (`-D`, `-x`): under `-V auto`, a broker that speaks
    /// only 3.1.1 is an error that names them, not a silent loss.
    pub needs_v5: Vec<String>,
    /// `-V mqttv31`: CONNECT says MQIsdp, level 3; the version is 3.1.1 for everything else.
    pub mqtt31: bool,
    pub client_id: String,
    pub keepalive: u16,
    pub clean: bool,
    pub will: Option<mqtt::Will>,
    pub props: props::Properties,
    pub max_inflight: u16,
    pub debug: bool,
    pub quiet: bool,
    /// The topic given as the path of the -L URLs.
    pub url_topic: Option<String>,
    /// How long an acknowledgement (PUBACK, PUBCOMP, SUBACK, UNSUBACK) may take.
    pub ack_timeout: Duration,
    /// --connect-retry: how long the first connection keeps trying.
    pub connect_retry: Option<Duration>,
}

impl ConnectOptions {
    /// The CONNECT for `broker`, in `proto` (3.1.1 also for `-V mqttv31`).
    fn connect_packet(&self, proto: Protocol, broker: &Broker) -> mqtt::Connect {
        let mut c = mqtt::Connect::new(proto, self.client_id.clone());
        c.keepalive = self.keepalive;
        c.clean = self.clean;
        c.username = broker.username.clone();
        // An empty password is sent as none, as rumqttc's encoder did.
        c.password = broker
            .password
            .clone()
            .filter(|p| !p.is_empty())
            .map(Bytes::from);
        c.will = self.will.clone();
        if let (Protocol::V5, Some(p)) = (proto, &self.props.connect) {
            c.session_expiry = p.session_expiry.unwrap_or(0);
            c.receive_max = p.receive_max.unwrap_or(u16::MAX);
            c.max_packet = p.max_packet;
            c.topic_alias_max = p.topic_alias_max.unwrap_or(0);
            c.request_response_info = p.request_response_info.unwrap_or(false);
            c.request_problem_info = p.request_problem_info.unwrap_or(true);
            c.user_properties = p.user_properties.clone();
        }
        if proto == Protocol::V311 {
            // 3.1.1 has no will properties.
            if let Some(w) = &mut c.will {
                w.delay = 0;
                w.props = None;
            }
        }
        c
    }

    /// A note on stderr, unless --quiet.
    pub fn warn(&self, msg: &str) {
        warn(self.quiet, msg);
    }

    /// A line about the connection (which broker, which version) on stderr, unless --quiet.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "smq: {msg}");
        }
    }
}

pub fn warn(quiet: bool, msg: &str) {
    if !quiet {
        let _ = writeln!(io::stderr().lock(), "smq: warning: {msg}");
    }
}
