//! The broker's counters, read once into a `Snapshot` that becomes both the retained
//! `$SYS/broker/...` topics and, with `--metrics`, `GET /metrics` in Prometheus' text format
//! (version 0.0.4) on the WebSocket port, so a scrape and `$SYS` never disagree on a name.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;

use super::listener::HttpStart;
use super::persist::FSYNC_BUCKETS_US;
use super::router::Shared;

/// The path Prometheus scrapes by default.
pub const PATH: &str = "/metrics";

/// The counters at one moment.
pub struct Snapshot {
    uptime: u64,
    connected: u64,
    received: u64,
    sent: u64,
    bytes_in: u64,
    bytes_out: u64,
    dropped: u64,
    queued: usize,
    retained: usize,
    subscriptions: usize,
    persist: Option<Persist>,
}

struct Persist {
    log_bytes: u64,
    /// Cumulative, one per bucket of `FSYNC_BUCKETS_US` and then +Inf.
    buckets: Vec<u64>,
    micros: u64,
    fsyncs: u64,
}

impl Snapshot {
    /// Reads every counter; walks the sessions and subscriptions once, under the router lock.
    pub fn take(shared: &Shared) -> Snapshot {
        let c = &shared.counters;
        let (retained, subscriptions, queued, store) = {
            let r = shared.lock();
            (
                r.retained_count(),
                r.subscription_count(),
                r.queued_count(),
                r.store.clone(),
            )
        };
        let persist = store.map(|s| {
            let st = &s.stats;
            let mut sum = 0;
            let buckets = st
                .fsync_buckets
                .iter()
                .map(|b| {
                    sum += b.load(Ordering::Relaxed);
                    sum
                })
                .collect();
            Persist {
                log_bytes: st.log_bytes.load(Ordering::Relaxed),
                buckets,
                micros: st.fsync_micros.load(Ordering::Relaxed),
                fsyncs: st.fsyncs.load(Ordering::Relaxed),
            }
        });
        Snapshot {
            uptime: shared.started.elapsed().as_secs(),
            connected: c.clients_connected.load(Ordering::Relaxed),
            received: c.messages_received.load(Ordering::Relaxed),
            sent: c.messages_sent.load(Ordering::Relaxed),
            bytes_in: c.bytes_received.load(Ordering::Relaxed),
            bytes_out: c.bytes_sent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            queued,
            retained,
            subscriptions,
            persist,
        }
    }

    /// `$SYS/broker/NAME` and its value, in Mosquitto's names.
    pub fn sys_topics(&self) -> Vec<(&'static str, String)> {
        vec![
            ("version", format!("smq {}", env!("CARGO_PKG_VERSION"))),
            ("uptime", format!("{} seconds", self.uptime)),
            ("clients/connected", self.connected.to_string()),
            ("messages/received", self.received.to_string()),
            ("messages/sent", self.sent.to_string()),
            ("messages/dropped", self.dropped.to_string()),
            ("bytes/received", self.bytes_in.to_string()),
            ("bytes/sent", self.bytes_out.to_string()),
            ("retained messages/count", self.retained.to_string()),
            ("subscriptions/count", self.subscriptions.to_string()),
            ("store/messages/count", self.queued.to_string()),
        ]
    }

    /// The Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        one(
            "smq_uptime_seconds",
            "gauge",
            "Seconds since the broker started.",
            &self.uptime,
        );
        one(
            "smq_clients_connected",
            "gauge",
            "Clients connected now.",
            &self.connected,
        );
        one(
            "smq_messages_received_total",
            "counter",
            "PUBLISH packets received from clients.",
            &self.received,
        );
        one(
            "smq_messages_sent_total",
            "counter",
            "PUBLISH packets sent to clients.",
            &self.sent,
        );
        one(
            "smq_bytes_received_total",
            "counter",
            "Bytes read from client connections.",
            &self.bytes_in,
        );
        one(
            "smq_bytes_sent_total",
            "counter",
            "Bytes written to client connections.",
            &self.bytes_out,
        );
        one(
            "smq_messages_dropped_total",
            "counter",
            "Messages dropped because a session's queue was full.",
            &self.dropped,
        );
        one(
            "smq_messages_queued",
            "gauge",
            "Messages waiting in session queues, online or offline.",
            &self.queued,
        );
        one(
            "smq_retained_messages",
            "gauge",
            "Retained messages held.",
            &self.retained,
        );
        one(
            "smq_subscriptions",
            "gauge",
            "Subscriptions held, one per client and filter.",
            &self.subscriptions,
        );
        if let Some(p) = &self.persist {
            one(
                "smq_persist_log_bytes",
                "gauge",
                "Size of the --persist log file.",
                &p.log_bytes,
            );
            let name = "smq_persist_fsync_seconds";
            let _ = write!(
                out,
                "# HELP {name} How long each fsync of the --persist log took.\n# TYPE {name} histogram\n"
            );
            for (i, count) in p.buckets.iter().enumerate() {
                match FSYNC_BUCKETS_US.get(i) {
                    Some(&us) => {
                        let le = us as f64 / 1e6;
                        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {count}");
                    }
                    None => {
                        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
                    }
                }
            }
            let _ = writeln!(out, "{name}_sum {}", p.micros as f64 / 1e6);
            let _ = writeln!(out, "{name}_count {}", p.fsyncs);
        }
        out
    }
}

/// Answers `GET /metrics` and closes: a scraper opens a connection per scrape at most every
/// few seconds, so keep-alive would save nothing worth the idle task.
pub async fn serve(start: HttpStart, shared: &Shared) {
    let HttpStart { mut io, head, .. } = start;
    let (status, ctype, body) = if head.method == "GET" || head.method == "HEAD" {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            Snapshot::take(shared).prometheus(),
        )
    } else {
        (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics\n".to_owned(),
        )
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if head.method != "HEAD" {
        reply.push_str(&body);
    }
    let write = async {
        let _ = io.write_all(reply.as_bytes()).await;
        let _ = io.shutdown().await;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), write).await;
}

/// Any other request where HTTP is served only for `/metrics`.
pub async fn not_found(start: HttpStart) {
    let mut io = start.io;
    let body = "smq serves GET /metrics here; MQTT over WebSocket on any path\n";
    let reply = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        let _ = io.write_all(reply.as_bytes()).await;
        let _ = io.shutdown().await;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), write).await;
}

/// Whether a request is for `/metrics` (a query string is allowed, as Prometheus may add one).
pub fn is_metrics(target: &str) -> bool {
    target.split('?').next() == Some(PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_once() {
        let shared = Shared::new();
        shared.counters.bytes_received.store(42, Ordering::Relaxed);
        let text = Snapshot::take(&shared).prometheus();
        assert!(text.contains("\nsmq_bytes_received_total 42\n"), "{text}");
        assert_eq!(text.matches("# TYPE ").count(), 10, "{text}");
        assert!(
            !text.contains("persist"),
            "no --persist: no persistence families"
        );
        assert!(is_metrics("/metrics") && is_metrics("/metrics?x=1"));
        assert!(!is_metrics("/metricsx") && !is_metrics("/"));
    }
}
