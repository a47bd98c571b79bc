//! Getting a phone connected: what to type into Sensor Logger for each address of this machine,
//! printed at start, and the per-device status line on a terminal.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use super::http::{HttpConfig, Ingest};
use super::listener::Scheme;

/// For each LAN address, the app settings that reach each listener bound to all interfaces:
/// `listeners` holds each listener's scheme and its LAN addresses.
pub fn setup_lines(
    listeners: &[(Scheme, Vec<SocketAddr>)],
    http: Option<&HttpConfig>,
) -> Vec<String> {
    let mut hosts: Vec<IpAddr> = Vec::new();
    for addr in listeners.iter().flat_map(|(_, addrs)| addrs) {
        if !hosts.contains(&addr.ip()) {
            hosts.push(addr.ip());
        }
    }
    let mut lines = Vec::new();
    if hosts.is_empty() {
        return lines;
    }
    lines.push(
        "Sensor Logger settings (Settings > Data Streaming), for the phone on the same network:"
            .to_owned(),
    );
    for host in hosts {
        // IPv6 hosts go in brackets in URLs, bare in the app's host field.
        let url_host = SocketAddr::new(host, 0).to_string();
        let url_host = url_host.trim_end_matches(":0");
        for (scheme, addrs) in listeners {
            let Some(addr) = addrs.iter().find(|a| a.ip() == host) else {
                continue;
            };
            let tls = if scheme.is_tls() { "on" } else { "off" };
            let websocket = if scheme.is_websocket() { "on" } else { "off" };
            lines.push(format!(
                "  MQTT: host {host}, port {}, WebSocket {websocket}, TLS {tls}, topic sensor-logger",
                addr.port()
            ));
            if let (Some(http), true) = (http, scheme.is_websocket()) {
                let proto = if scheme.is_tls() { "https" } else { "http" };
                lines.push(format!(
                    "  HTTP Push: URL {proto}://{url_host}:{}{}{}",
                    addr.port(),
                    http.suggested_path(),
                    if http.token.is_some() {
                        ", auth token as given to --http-token"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    lines
}

/// Redraws one status line per device every second on stderr until the broker stops. Only
/// started when stderr is a terminal.
pub async fn status_loop(ingest: Arc<Ingest>, mut stop: watch::Receiver<bool>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let lines = ingest
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines(Instant::now());
        // Devices the counts forgot lose their line too.
        bars.retain(|device, bar| {
            let kept = lines.iter().any(|(d, _)| d == device);
            if !kept {
                bar.finish_and_clear();
                multi.remove(bar);
            }
            kept
        });
        for (device, line) in lines {
            let bar = bars.entry(device).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner());
                if let Ok(style) = ProgressStyle::with_template("smq: {msg}") {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_message(line);
        }
    }
    for bar in bars.values() {
        bar.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::http::TopicTemplate;

    #[test]
    fn tells_what_to_type_for_each_address() {
        let lan = |port: u16| -> Vec<SocketAddr> {
            vec![
                SocketAddr::from(([192, 168, 1, 23], port)),
                SocketAddr::from(([10, 0, 0, 5], port)),
            ]
        };
        let listeners = [(Scheme::Mqtt, lan(1883)), (Scheme::Ws, lan(8000))];
        let http = HttpConfig {
            path: None,
            topic: TopicTemplate::parse("sensor-logger").expect("valid"),
            qos: 0,
            token: None,
            max_body: 1 << 20,
            split: false,
            status_line: false,
        };
        assert_eq!(
            setup_lines(&listeners, Some(&http)),
            [
                "Sensor Logger settings (Settings > Data Streaming), for the phone on the same network:",
                "  MQTT: host 192.168.1.23, port 1883, WebSocket off, TLS off, topic sensor-logger",
                "  MQTT: host 192.168.1.23, port 8000, WebSocket on, TLS off, topic sensor-logger",
                "  HTTP Push: URL http://192.168.1.23:8000/data",
                "  MQTT: host 10.0.0.5, port 1883, WebSocket off, TLS off, topic sensor-logger",
                "  MQTT: host 10.0.0.5, port 8000, WebSocket on, TLS off, topic sensor-logger",
                "  HTTP Push: URL http://10.0.0.5:8000/data",
            ]
        );
        // Without --http there is no push URL; bound to one address there is nothing to say.
        let v6 = [(Scheme::Ws, vec!["[fd00::7]:8000".parse().expect("addr")])];
        assert_eq!(
            setup_lines(&v6, None)[1..],
            ["  MQTT: host fd00::7, port 8000, WebSocket on, TLS off, topic sensor-logger"]
        );
        assert!(setup_lines(&[(Scheme::Ws, Vec::new())], Some(&http)).is_empty());
    }
}
