//! A third-party broker that speaks MQTT over WebSocket, since Debian's mosquitto is built
//! without WebSocket listeners: aedes on node (tests/ws-broker/broker.mjs). It speaks MQTT
//! 3.1.1 only (a v5 CONNECT gets CONNACK 0x84), accepts WebSocket upgrades on any path and
//! picks the `mqtt` subprotocol; a second, plain TCP listener lets mosquitto_sub verify.
//! Install once with `npm ci --prefix tests/ws-broker`.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::certs::Certs;
use super::{READY_TIMEOUT, kill_and_reap, read_log, tail_lines};

/// A running aedes, killed by PID on Drop (it also exits by itself when our end of its stdin
/// closes, so it can't outlive a test process that was killed outright).
pub struct WsBroker {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    tcp_port: u16,
    wss_port: Option<u16>,
    log: Arc<Mutex<String>>,
}

impl WsBroker {
    pub fn start() -> WsBroker {
        Self::spawn(&[])
    }

    /// Also serves WebSocket over TLS (`wss_port()`) with the test CA's server certificate.
    pub fn start_tls(certs: &Certs) -> WsBroker {
        let (cert, key) = (certs.server_cert(), certs.server_key());
        Self::spawn(&[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
    }

    fn spawn(args: &[&str]) -> WsBroker {
        let dir = Self::package_dir();
        assert!(
            dir.join("node_modules/aedes").is_dir(),
            "the WebSocket test broker is not installed: run `npm ci --prefix tests/ws-broker`"
        );
        let mut child = Command::new("node")
            .arg("broker.mjs")
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning node for tests/ws-broker: {e}"));
        let log = Arc::default();
        let (ready, _) = tail_lines(child.stdout.take().expect("piped"), &log);
        let _ = tail_lines(child.stderr.take().expect("piped"), &log);
        let stdin = child.stdin.take().expect("piped");

        // The only stdout line: "ws=PORT tcp=PORT [wss=PORT]".
        let line = ready.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        let port_of = |name: &str| {
            line.split(' ').find_map(|kv| {
                kv.strip_prefix(name)?
                    .strip_prefix('=')?
                    .parse::<u16>()
                    .ok()
            })
        };
        let (Some(port), Some(tcp_port)) = (port_of("ws"), port_of("tcp")) else {
            kill_and_reap(&mut child);
            panic!(
                "tests/ws-broker did not report its ports\n--- output\n{}",
                read_log(&log)
            );
        };
        let wss_port = port_of("wss");
        WsBroker {
            child,
            _stdin: stdin,
            port,
            tcp_port,
            wss_port,
            log,
        }
    }

    /// The WebSocket port (any path works).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket-over-TLS port, with `start_tls`.
    pub fn wss_port(&self) -> u16 {
        self.wss_port.expect("wss_port() needs WsBroker::start_tls")
    }

    /// The plain MQTT-over-TCP port of the same broker.
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// `ws://127.0.0.1:PORT/mqtt`
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/mqtt", self.port)
    }

    /// Connections (with WebSocket path and subprotocol), subscriptions and publishes so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// tests/ws-broker: its node_modules/.bin/mqtt is mqtt.js's CLI, a WebSocket MQTT client.
    pub fn package_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ws-broker")
    }
}

impl Drop for WsBroker {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
