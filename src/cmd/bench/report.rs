//! What a bench run prints: a live line on stderr each second (an indicatif bar when stderr
//! is a terminal), optional CSV rows on stdout, and at the end a summary on stdout or, with
//! `--json`, one JSON object instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::meter::{Meter, Percentiles, Snapshot};
use crate::output::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Conn,
    Pub,
    Sub,
    Latency,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Conn => "conn",
            Mode::Pub => "pub",
            Mode::Sub => "sub",
            Mode::Latency => "latency",
        }
    }
}

/// The run as asked for; printed with the results so a JSON file says what it measured.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub broker: String,
    pub protocol: &'static str,
    pub clients: u32,
    pub subscribers: Option<u32>,
    pub qos: Option<u8>,
    pub retain: bool,
    pub size: Option<u32>,
    /// Connections per second (conn) or messages per second per publisher.
    pub rate: Option<f64>,
    pub interval_ms: Option<f64>,
    pub topic: Option<String>,
    pub filter: Option<String>,
    pub count: Option<u64>,
    pub duration_s: Option<f64>,
    pub ifaddr: Vec<String>,
}

/// Everything measured, at the end of the run.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub elapsed: Duration,
    pub counts: Snapshot,
    pub foreign: u64,
    pub failures: BTreeMap<String, u64>,
    pub connect: Percentiles,
    pub connect_rate: Option<f64>,
    pub latency: Percentiles,
    pub send_rate: Option<f64>,
    pub receive_rate: Option<f64>,
    /// Deliveries owed to the subscribers (latency only: every publisher's count is known).
    pub expected: Option<u64>,
    pub lost: Option<u64>,
    pub duplicates: Option<u64>,
    pub reordered: Option<u64>,
    pub publishers_heard: Option<u64>,
}

fn pct(p: &Percentiles) -> Value {
    if p.count == 0 {
        return Value::Null;
    }
    let r = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "count": p.count,
        "min": r(p.min),
        "mean": r(p.mean),
        "p50": r(p.p50),
        "p90": r(p.p90),
        "p99": r(p.p99),
        "p99_9": r(p.p999),
        "max": r(p.max),
    })
}

fn rate(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| json!((v * 10.0).round() / 10.0))
}

pub fn json(config: &Config, r: &Results) -> Value {
    let c = &r.counts;
    json!({
        "mode": config.mode.name(),
        "config": {
            "broker": config.broker,
            "protocol": config.protocol,
            "clients": config.clients,
            "subscribers": config.subscribers,
            "qos": config.qos,
            "retain": config.retain,
            "size": config.size,
            "rate": config.rate,
            "interval_ms": config.interval_ms,
            "topic": config.topic,
            "filter": config.filter,
            "count": config.count,
            "duration_s": config.duration_s,
            "ifaddr": config.ifaddr,
        },
        "elapsed_s": (r.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "connections": {
            "attempted": c.attempted,
            "connected": c.connected,
            "failed": c.failed,
            "dropped": c.dropped,
            "failures": r.failures,
        },
        "messages": {
            "sent": c.sent,
            "acked": c.acked,
            "refused": c.refused,
            "received": c.received,
            "foreign": r.foreign,
            "expected": r.expected,
            "lost": r.lost,
            "duplicates": r.duplicates,
            "reordered": r.reordered,
            "publishers_heard": r.publishers_heard,
        },
        "rates": {
            "connect_per_s": rate(r.connect_rate),
            "sent_per_s": rate(r.send_rate),
            "received_per_s": rate(r.receive_rate),
        },
        "connect_latency_us": pct(&r.connect),
        "latency_us": pct(&r.latency),
    })
}

fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.1} µs")
    }
}

fn per_s(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}/s"))
}

fn percentiles_line(p: &Percentiles) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
        us(p.p50),
        us(p.p90),
        us(p.p99),
        us(p.p999),
        us(p.max),
        p.count
    )
}

/// The human summary: a few aligned lines.
pub fn text(config: &Config, r: &Results) -> String {
    let c = &r.counts;
    let mut out = String::new();
    let mut head = format!(
        "smq bench {}: {}, MQTT {}, {} {}",
        config.mode.name(),
        config.broker,
        config.protocol,
        config.clients,
        match config.mode {
            Mode::Conn => "connections",
            Mode::Sub => "subscriber(s)",
            Mode::Pub | Mode::Latency => "publisher(s)",
        }
    );
    if let Some(s) = config.subscribers {
        let _ = write!(head, " -> {s} subscriber(s)");
    }
    if let Some(q) = config.qos {
        let _ = write!(head, ", QoS {q}");
    }
    if let Some(s) = config.size {
        let _ = write!(head, ", {s}-byte payloads");
    }
    if let Some(rate) = config.rate {
        let unit = if config.mode == Mode::Conn {
            "connections/s"
        } else {
            "msg/s each"
        };
        let _ = write!(head, ", {rate} {unit}");
    }
    let _ = writeln!(out, "{head}, {:.1} s", r.elapsed.as_secs_f64());
    let _ = writeln!(
        out,
        "connections  {} connected, {} failed, {} dropped; {} {}",
        c.connected,
        c.failed,
        c.dropped,
        per_s(r.connect_rate),
        if r.connect.count > 0 {
            format!("connect {}", percentiles_line(&r.connect))
        } else {
            String::new()
        }
    );
    for (why, n) in &r.failures {
        let _ = writeln!(out, "  {n} x {why}");
    }
    if config.mode != Mode::Conn {
        let mut line = String::from("messages    ");
        if config.mode != Mode::Sub {
            let _ = write!(line, " {} sent ({})", c.sent, per_s(r.send_rate));
            if config.qos.unwrap_or(0) > 0 {
                let _ = write!(line, ", {} acked, {} refused", c.acked, c.refused);
            }
        }
        if config.mode != Mode::Pub {
            if config.mode == Mode::Latency {
                line.push(',');
            }
            let _ = write!(line, " {} received ({})", c.received, per_s(r.receive_rate));
            if let Some(e) = r.expected {
                let _ = write!(line, " of {e} expected");
            }
            let _ = write!(
                line,
                ", {} lost, {} duplicates, {} reordered",
                r.lost.unwrap_or(0),
                r.duplicates.unwrap_or(0),
                r.reordered.unwrap_or(0)
            );
            if r.foreign > 0 {
                let _ = write!(line, ", {} without a bench header", r.foreign);
            }
        }
        let _ = writeln!(out, "{line}");
    }
    if r.latency.count > 0 {
        let _ = writeln!(
            out,
            "latency      {} from the scheduled send time",
            percentiles_line(&r.latency)
        );
    }
    out
}

/// The line each second: on a terminal an indicatif bar, else a plain line on stderr; and a
/// CSV row on stdout with `--csv`.
pub struct Live {
    mode: Mode,
    qos: u8,
    clients: u64,
    subscribers: u64,
    bar: Option<ProgressBar>,
    plain: bool,
    csv: Option<Output>,
    start: Instant,
    last: Snapshot,
    last_at: Instant,
}

pub const CSV_HEADER: &str = "elapsed_s,connected,failed,sent,acked,received,sent_per_s,received_per_s,in_flight,p50_us,p99_us,max_us\n";

impl Live {
    /// `total`: the run's known length (a duration in ms, or a number of messages), for the bar.
    pub fn new(config: &Config, quiet: bool, csv: bool, total: Option<u64>) -> io::Result<Live> {
        let terminal = io::stderr().is_terminal() && !quiet;
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{bar:20} {elapsed_precise} {msg}"
            } else {
                "{spinner} {elapsed_precise} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mut out = csv.then(Output::stdout);
        if let Some(o) = &mut out {
            o.write(CSV_HEADER.as_bytes())?;
            o.flush()?;
        }
        Ok(Live {
            mode: config.mode,
            qos: config.qos.unwrap_or(0),
            clients: config.clients.into(),
            subscribers: config.subscribers.unwrap_or(0).into(),
            bar,
            plain: !terminal && !quiet,
            csv: out,
            start: Instant::now(),
            last: Snapshot::default(),
            last_at: Instant::now(),
        })
    }

    fn in_flight(&self, s: &Snapshot, ready_subs: u64) -> u64 {
        match self.mode {
            Mode::Conn => s.attempted.saturating_sub(s.connected + s.failed),
            Mode::Pub if self.qos > 0 => s.sent.saturating_sub(s.acked + s.refused),
            Mode::Pub | Mode::Sub => 0,
            Mode::Latency => (s.sent * ready_subs).saturating_sub(s.received),
        }
    }

    /// `progress`: where the bar stands (ms or messages, matching `total`).
    pub fn tick(&mut self, meter: &Meter, progress: u64) -> io::Result<()> {
        let now = Instant::now();
        let s = meter.snapshot();
        let ready = meter.ready.load(std::sync::atomic::Ordering::Relaxed);
        let dt = now
            .saturating_duration_since(self.last_at)
            .as_secs_f64()
            .max(1e-9);
        let sent_rate = (s.sent - self.last.sent) as f64 / dt;
        let recv_rate = (s.received - self.last.received) as f64 / dt;
        let conn_rate = (s.connected - self.last.connected) as f64 / dt;
        let in_flight = self.in_flight(&s, ready);
        let (recent, all) = meter.take_recent();
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let p99 = match self.mode {
            Mode::Conn => meter.connect_latency().p99,
            _ => all.p99,
        };
        let p99 = if p99 > 0.0 { us(p99) } else { "-".to_owned() };
        let msg = match self.mode {
            Mode::Conn => format!(
                "connected {}/{}  {conn_rate:.0}/s  failed {}  handshaking {in_flight}  connect p99 {p99}",
                s.connected, self.clients, s.failed
            ),
            Mode::Pub => format!(
                "publishers {}/{}  sent {sent_rate:.0}/s ({} in all)  in flight {in_flight}",
                s.connected, self.clients, s.sent
            ),
            Mode::Sub => format!(
                "subscribers {ready}/{}  received {recv_rate:.0}/s ({} in all)  p99 {p99}",
                self.clients, s.received
            ),
            Mode::Latency => format!(
                "subscribers {ready}/{}  sent {sent_rate:.0}/s  received {recv_rate:.0}/s  in flight {in_flight}  p99 {p99}",
                self.subscribers
            ),
        };
        if let Some(bar) = &self.bar {
            bar.set_position(progress);
            bar.set_message(msg);
        } else if self.plain {
            let _ = writeln!(io::stderr().lock(), "smq bench: {elapsed:.0}s  {msg}");
        }
        if let Some(out) = &mut self.csv {
            let row = format!(
                "{elapsed:.3},{},{},{},{},{},{sent_rate:.1},{recv_rate:.1},{in_flight},{:.1},{:.1},{:.1}\n",
                s.connected,
                s.failed,
                s.sent,
                s.acked,
                s.received,
                recent.p50,
                recent.p99,
                recent.max
            );
            out.write(row.as_bytes())?;
            out.flush()?;
        }
        self.last = s;
        self.last_at = now;
        Ok(())
    }

    /// Whether stdout holds CSV rows.
    pub fn csv(&self) -> bool {
        self.csv.is_some()
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
