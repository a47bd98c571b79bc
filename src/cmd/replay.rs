//! `smq replay FILE`: publishes a recording again, each message at its recorded offset.
//!
//! Deadlines are absolute (start + offset / speed), so lateness never accumulates over a long
//! file; a message whose time has passed goes out at once and counts toward the lateness report.

use std::io::{self, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::capture::{self, Record};
use crate::cli::{ReplayArgs, RetainMode};
use crate::conn::outbox::Outbox;
use crate::conn::{Client, Connector, Event, Message, Protocol, delivery_reason, props};
use crate::exit::{Failure, usage};
use crate::output::Output;
use crate::progress;
use crate::topic;

const PACKETS: &[props::Packet] = &[
    props::Packet::Connect,
    props::Packet::Disconnect,
    props::Packet::Will,
];

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    for f in &args.filter {
        if let Some(why) = topic::filter_error(f) {
            return Err(usage(format!("bad --filter '{f}': {why}")));
        }
    }
    let maps = args
        .topic_map
        .iter()
        .map(|m| {
            m.split_once('=')
                .filter(|(from, to)| !from.is_empty() && topic::name_error(to).is_none())
                .map(|(from, to)| (from.to_owned(), to.to_owned()))
                .ok_or_else(|| {
                    usage(format!(
                        "--topic-map '{m}' must be FROM=TO with a valid topic TO"
                    ))
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(p) = &args.topic_prefix {
        if p.contains(['+', '#', '\0']) {
            return Err(usage(format!(
                "--topic-prefix '{p}' must not contain wildcards or NUL"
            )));
        }
    }
    let from = args
        .from
        .as_deref()
        .map(|t| When::parse("--from", t))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| When::parse("--to", t))
        .transpose()?;
    let mut opts = crate::cmd::connect::options(&args.conn, PACKETS)?;
    // Every file is read and checked before anything is published.
    let mut shards = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let (records, skipped) = capture::read_all(file, args.skip_bad)?;
        if skipped > 0 {
            opts.warn(&format!(
                "skipped {skipped} malformed lines of {}",
                file.display()
            ));
        }
        shards.push(records);
    }
    let records = merge(shards);
    let selected = select(records, &args, &maps, from, to);
    if args.dry_run {
        let mut out = Output::stdout();
        for r in &selected {
            let mut line = r.msg.topic.to_vec();
            line.push(b' ');
            line.extend_from_slice(&r.msg.payload);
            line.push(b'\n');
            out.write(&line)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if selected.is_empty() {
        opts.warn("nothing to replay: no message is left after --filter/--from/--to");
        return Ok(ExitCode::SUCCESS);
    }
    let has_props = selected.iter().any(|r| r.msg.props.is_some());
    if has_props {
        // Asked for 3.1.1, they are dropped with a warning; under -V auto, a broker that
        // speaks only 3.1.1 is an error rather than a silent loss.
        opts.needs_v5
            .push("the MQTT 5 properties in the recording".to_owned());
    }
    let opts = Arc::new(opts);
    let mut connector = Connector::new(opts.clone());
    let client = connector.first().await?;
    if has_props && client.protocol() == Protocol::V311 {
        opts.warn("MQTT 5 properties in the recording are dropped on this MQTT 3.1.1 connection");
    }
    let mut player = Player {
        records: selected,
        speed: if args.no_wait { None } else { Some(args.speed) },
        passes: args.repeat.map_or(Some(1), |n| (n > 0).then_some(n)),
        reconnect: !args.no_reconnect,
        sent: 0,
        refused: 0,
        unacknowledged: 0,
        mismatch_warned: false,
        outbox: Outbox::default(),
        worst_late: Duration::ZERO,
        total_late: Duration::ZERO,
    };
    let total = player.passes.map(|p| p * player.records.len() as u64);
    let bar = progress::bar(total);
    let result = player.play(client, connector, &bar).await;
    bar.finish_and_clear();
    let summary = player.summary();
    match result {
        Err(e) => Err(e.context(summary)),
        Ok((client, interrupted)) => {
            if let Some(client) = client {
                client.disconnect(opts.props.disconnect.clone()).await?;
            }
            if !opts.quiet {
                let _ = writeln!(io::stderr().lock(), "smq: {summary}");
            }
            if interrupted {
                return Err(Failure::Interrupted("interrupted".into()).into());
            }
            if player.unacknowledged > 0 {
                return Err(Failure::TimedOut(format!(
                    "the broker did not acknowledge {} of {} messages within {} s (--ack-timeout)",
                    player.unacknowledged,
                    player.sent,
                    opts.ack_timeout.as_secs_f64()
                ))
                .into());
            }
            if player.refused > 0 {
                return Err(anyhow!(
                    "the broker refused {} of {} messages",
                    player.refused,
                    player.sent
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--from`/`--to`: an offset from the first message, or a recorded wall time.
#[derive(Debug, Clone, Copy)]
enum When {
    Offset(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

impl When {
    fn parse(flag: &str, text: &str) -> anyhow::Result<When> {
        let secs = text.strip_suffix('s').unwrap_or(text);
        if let Ok(s) = secs.parse::<f64>() {
            if s.is_finite() && s >= 0.0 {
                return Ok(When::Offset((s * 1e9) as u64));
            }
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| When::Time(t.to_utc()))
            .map_err(|_| {
                usage(format!(
                    "{flag} '{text}': give seconds from the first message (90, 90s) or an RFC 3339 time"
                ))
            })
    }

    /// Whether `r` (at `at` ns from the first message) is at or after this point.
    fn reached(self, r: &Record, at: u64) -> bool {
        match self {
            When::Offset(ns) => at >= ns,
            When::Time(t) => r.recv_time >= t,
        }
    }

    fn passed(self, r: &Record, at: u64) -> bool {
        match self {
            When::Offset(ns) => at > ns,
            When::Time(t) => r.recv_time > t,
        }
    }
}

/// One schedule from several files. Each file's `t_rel_ns` counts from its own first message,
/// so the files interleave by `recv_time`, the wall clock they share; within a file its own
/// order stands (a clock stepped back mid-file does not reorder it). Ties go to the file given
/// first. One file keeps its monotonic offsets untouched.
fn merge(mut shards: Vec<Vec<Record>>) -> Vec<Record> {
    if shards.len() == 1 {
        return shards.pop().unwrap_or_default();
    }
    let total = shards.iter().map(Vec::len).sum();
    let mut heads: Vec<_> = shards
        .into_iter()
        .map(|s| s.into_iter().peekable())
        .collect();
    let mut merged: Vec<Record> = Vec::with_capacity(total);
    let mut t0 = None;
    loop {
        let next = heads
            .iter_mut()
            .enumerate()
            .filter_map(|(i, h)| h.peek().map(|r| (r.recv_time, i)))
            .min();
        let Some((_, i)) = next else {
            return merged;
        };
        let Some(mut r) = heads[i].next() else {
            return merged;
        };
        let start = *t0.get_or_insert(r.recv_time);
        let at = (r.recv_time - start)
            .num_nanoseconds()
            .map_or(0, |ns| u64::try_from(ns).unwrap_or(0));
        // Offsets never go back: the player's deadlines are in order.
        r.t_rel_ns = merged.last().map_or(at, |p| at.max(p.t_rel_ns));
        merged.push(r);
    }
}

/// --filter, --from/--to and the topic rewrites, in file order.
fn select(
    records: Vec<Record>,
    args: &ReplayArgs,
    maps: &[(String, String)],
    from: Option<When>,
    to: Option<When>,
) -> Vec<Record> {
    let Some(t0) = records.first().map(|r| r.t_rel_ns) else {
        return records;
    };
    records
        .into_iter()
        .filter(|r| {
            let at = r.t_rel_ns.saturating_sub(t0);
            from.is_none_or(|f| f.reached(r, at))
                && to.is_none_or(|t| !t.passed(r, at))
                && (args.filter.is_empty()
                    || args.filter.iter().any(|f| topic::matches(f, &r.msg.topic)))
        })
        .take(args.limit.unwrap_or(usize::MAX))
        .map(|mut r| {
            if let Some(q) = args.qos {
                r.msg.qos = q;
            }
            r.msg.retain = match args.retain {
                RetainMode::Keep => r.msg.retain,
                RetainMode::Strip => false,
                RetainMode::Force => true,
            };
            if let Some((_, to)) = maps
                .iter()
                .find(|(from, _)| from.as_bytes() == &r.msg.topic[..])
            {
                r.msg.topic = Bytes::from(to.clone());
            }
            if let Some(p) = &args.topic_prefix {
                let mut t = p.as_bytes().to_vec();
                t.extend_from_slice(&r.msg.topic);
                r.msg.topic = Bytes::from(t);
            }
            r
        })
        .collect()
}

struct Player {
    records: Vec<Record>,
    /// None: as fast as the broker takes them.
    speed: Option<f64>,
    /// None: forever.
    passes: Option<u64>,
    reconnect: bool,
    sent: u64,
    refused: u64,
    unacknowledged: u64,
    mismatch_warned: bool,
    outbox: Outbox,
    worst_late: Duration,
    total_late: Duration,
}

/// A reconnect under way: it owns the connector until it is done.
type Reconnecting = Pin<Box<dyn Future<Output = (Connector, anyhow::Result<Client>)>>>;

impl Player {
    fn summary(&self) -> String {
        let mean = if self.sent > 0 {
            self.total_late / u32::try_from(self.sent).unwrap_or(u32::MAX)
        } else {
            Duration::ZERO
        };
        format!(
            "replayed {} messages; the latest was {:.3} ms behind schedule (mean {:.3} ms)",
            self.sent,
            self.worst_late.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3
        )
    }

    /// Plays every pass. Returns the client (None if the connection was down at the end) and
    /// whether a signal interrupted the run (what is in flight is then abandoned).
    async fn play(
        &mut self,
        client: Client,
        connector: Connector,
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<(Option<Client>, bool)> {
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let opts = Arc::clone(connector.opts());
        let mut client = Some(client);
        let mut connector = Some(connector);
        let mut reconnecting: Option<Reconnecting> = None;
        let mut up_since = Instant::now();
        let t0 = self.records[0].t_rel_ns;
        let mut pass = 1u64;
        let mut next = 0usize;
        let mut start = Instant::now();
        loop {
            let now = Instant::now();
            let mut wake = None;
            if let Some(c) = client.as_mut() {
                self.outbox
                    .feed(c)
                    .map_err(|e| e.context("sending again what the lost connection left"))?;
                let v311 = c.protocol() == Protocol::V311;
                while next < self.records.len() && !c.write_backlog() && !self.outbox.resending() {
                    let r = &self.records[next];
                    if r.msg.qos > 0 && !c.has_window() {
                        break;
                    }
                    // A broker passes a QoS 2 message on only once its PUBREL arrives (Mosquitto
                    // does), so a lower-QoS message sent meanwhile would overtake it: keep file order.
                    if r.msg.qos < 2 && self.outbox.holds_qos2() {
                        break;
                    }
                    if let Some(speed) = self.speed {
                        let offset = Duration::from_nanos(r.t_rel_ns.saturating_sub(t0));
                        let due = start + offset.div_f64(speed);
                        if due > now {
                            wake = Some(due);
                            break;
                        }
                        let late = now - due;
                        self.worst_late = self.worst_late.max(late);
                        self.total_late += late;
                    }
                    let msg = Message {
                        topic: r.msg.topic.clone(),
                        payload: r.msg.payload.clone(),
                        qos: r.msg.qos,
                        retain: r.msg.retain,
                        props: if v311 { None } else { r.msg.props.clone() },
                    };
                    let pkid = c
                        .publish(&msg)
                        .map_err(|e| e.context(format!("message {} of the file", next + 1)))?;
                    self.sent += 1;
                    if pkid > 0 {
                        self.outbox.sent(pkid, next as u64 + 1, msg);
                    }
                    next += 1;
                    bar.inc(1);
                }
            }
            if next == self.records.len() && self.passes.is_none_or(|p| pass < p) {
                // The next pass starts where this one's schedule ends.
                pass += 1;
                next = 0;
                start = Instant::now();
                continue;
            }
            let done = next == self.records.len() && self.outbox.is_empty();
            if let Some(c) = client.take_if(|c| done && c.in_flight() == 0 && !c.unwritten()) {
                return Ok((Some(c), false));
            }
            let far = now + Duration::from_secs(86_400);
            tokio::select! {
                _ = sigint.recv() => return Ok((client, true)),
                _ = sigterm.recv() => return Ok((client, true)),
                ev = poll(client.as_mut()) => match ev {
                    Ok(Event::Delivered { pkid, code, mismatch }) => {
                        let number = self.outbox.done(pkid).unwrap_or_default();
                        if code >= 0x80 {
                            self.refused += 1;
                            opts.warn(&format!("the broker refused message {number} of the file: {} (0x{code:02X})", delivery_reason(code)));
                        }
                        if let (Some(m), false, Some(c)) = (mismatch, self.mismatch_warned, &client) {
                            self.mismatch_warned = true;
                            opts.warn(&m.warning(&opts.brokers[c.broker()].describe()));
                        }
                    }
                    Ok(Event::Unacknowledged { pkid }) => {
                        let number = self.outbox.done(pkid).unwrap_or_default();
                        self.unacknowledged += 1;
                        opts.warn(&format!(
                            "the broker did not acknowledge message {number} of the file within {} s (--ack-timeout)",
                            opts.ack_timeout.as_secs_f64()
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let Some(c) = client.take() else {
                            return Err(e);
                        };
                        let broker = opts.brokers[c.broker()].describe();
                        if !self.reconnect {
                            return Err(if self.outbox.unanswered() {
                                self.outbox.unanswered_error(&e, &broker)
                            } else {
                                e
                            });
                        }
                        self.outbox.lost(&c, &broker)?;
                        let (from, lived) = (c.broker(), up_since.elapsed());
                        let mut conn = connector.take().expect("the connector is idle while connected");
                        reconnecting = Some(Box::pin(async move {
                            let r = conn.again(from, &e, lived).await;
                            (conn, r)
                        }));
                    }
                },
                (conn, r) = async { reconnecting.as_mut().expect("guarded").await }, if reconnecting.is_some() => {
                    reconnecting = None;
                    connector = Some(conn);
                    let mut c = r?;
                    let resumed = !opts.clean && c.session_present();
                    self.outbox.reconnected(&mut c, resumed)?;
                    up_since = Instant::now();
                    client = Some(c);
                }
                _ = sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
            }
        }
    }
}

/// `client.poll()`, or never while the connection is down.
async fn poll(client: Option<&mut Client>) -> anyhow::Result<Event> {
    match client {
        Some(c) => c.poll().await,
        None => std::future::pending().await,
    }
}
