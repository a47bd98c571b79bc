//! `smq replay FILE`: publishes a recording again, each message at its recorded offset.
//!
//! Deadlines are absolute (start + offset / speed), so lateness never accumulates over a long
//! file; a message whose time has passed goes out at once and counts toward the lateness report.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::capture::{self, Record};
use crate::cli::{ReplayArgs, RetainMode};
use crate::conn::{Client, ConnectOptions, Event, Message, Protocol, delivery_reason, props};
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
    // The whole file is read and checked before anything is published.
    let (records, skipped) = capture::read_all(&args.file, args.skip_bad)?;
    let opts = ConnectOptions::from_args(&args.conn, PACKETS)?;
    if skipped > 0 {
        opts.warn(&format!(
            "skipped {skipped} malformed lines of {}",
            args.file.display()
        ));
    }
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
    let mut client = Client::connect(&opts).await?;
    let v311 = opts.proto == Protocol::V311;
    if v311 && selected.iter().any(|r| r.msg.props.is_some()) {
        opts.warn("MQTT 5 properties in the recording are dropped on this MQTT 3.1.1 connection");
    }
    let mut player = Player {
        records: selected,
        speed: if args.no_wait { None } else { Some(args.speed) },
        passes: args.repeat.map_or(Some(1), |n| (n > 0).then_some(n)),
        v311,
        sent: 0,
        refused: 0,
        worst_late: Duration::ZERO,
        total_late: Duration::ZERO,
    };
    let total = player.passes.map(|p| p * player.records.len() as u64);
    let bar = progress::bar(total);
    let result = player.play(&mut client, &opts, &bar).await;
    bar.finish_and_clear();
    let summary = player.summary();
    match result {
        Err(e) => Err(e.context(summary)),
        Ok(interrupted) => {
            client.disconnect(opts.props.disconnect.clone()).await?;
            if !opts.quiet {
                let _ = writeln!(io::stderr().lock(), "smq: {summary}");
            }
            if interrupted {
                return Err(Failure::Interrupted("interrupted".into()).into());
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
    v311: bool,
    sent: u64,
    refused: u64,
    worst_late: Duration,
    total_late: Duration,
}

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

    /// Plays every pass; Ok(true) when interrupted by a signal (what is in flight is abandoned).
    async fn play(
        &mut self,
        client: &mut Client,
        opts: &ConnectOptions,
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<bool> {
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let t0 = self.records[0].t_rel_ns;
        let mut pass = 1u64;
        let mut next = 0usize;
        let mut start = Instant::now();
        let mut qos2 = std::collections::HashSet::new();
        loop {
            let now = Instant::now();
            let mut wake = None;
            while next < self.records.len() && !client.write_backlog() {
                let r = &self.records[next];
                if r.msg.qos > 0 && !client.has_window() {
                    break;
                }
                // A broker passes a QoS 2 message on only once its PUBREL arrives (Mosquitto
                // does), so a lower-QoS message sent meanwhile would overtake it: keep file order.
                if r.msg.qos < 2 && !qos2.is_empty() {
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
                    props: if self.v311 { None } else { r.msg.props.clone() },
                };
                let pkid = client
                    .publish(&msg)
                    .map_err(|e| e.context(format!("message {} of the file", next + 1)))?;
                if msg.qos == 2 {
                    qos2.insert(pkid);
                }
                self.sent += 1;
                next += 1;
                bar.inc(1);
            }
            if next == self.records.len() && self.passes.is_none_or(|p| pass < p) {
                // The next pass starts where this one's schedule ends.
                pass += 1;
                next = 0;
                start = Instant::now();
                continue;
            }
            if next == self.records.len() && client.in_flight() == 0 && !client.unwritten() {
                return Ok(false);
            }
            let far = now + Duration::from_secs(86_400);
            tokio::select! {
                _ = sigint.recv() => return Ok(true),
                _ = sigterm.recv() => return Ok(true),
                ev = client.poll() => {
                    if let Event::Delivered { pkid, code } = ev? {
                        qos2.remove(&pkid);
                        if code >= 0x80 {
                            self.refused += 1;
                            opts.warn(&format!("the broker refused a message: {} (0x{code:02X})", delivery_reason(code)));
                        }
                    }
                }
                _ = sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
            }
        }
    }
}
