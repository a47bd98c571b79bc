//! `smq sub`: mosquitto_sub, plus binary-safe JSON, payload filters, stats and reconnects.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use bytes::Bytes;
use regex::bytes::Regex;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use super::serve_broker::http_config;
use crate::broker::auth::AuthConfig;
use crate::broker::{self, listener};
use crate::cli::{ConnectArgs, RetainHandling, ServeArgs, SubArgs};
use crate::conn::{
    Client, ConnectOptions, Connector, Event, Message, Protocol, Version, props, subscribe_reason,
};
use crate::exit::{Failure, is_broken_pipe, pipe_closed, usage};
use crate::format::{self, Format, Received};
use crate::mqtt::Subscription;
use crate::output::Output;
use crate::stats::{self, Stats};
use crate::topic;

const PACKETS: &[props::Packet] = &[
    props::Packet::Connect,
    props::Packet::Subscribe,
    props::Packet::Unsubscribe,
    props::Packet::Disconnect,
    props::Packet::Will,
];
/// Stands in for "no deadline" in a select branch that is disabled anyway.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// What the subscribe engine runs on: all of `sub`'s flags but the output choice, or the
/// few that `record` sets (see [`SubscribeOptions::new`] for the rest).
pub struct SubscribeOptions {
    pub topics: Vec<String>,
    /// `--share GROUP`: every filter as `$share/GROUP/FILTER`.
    pub share: Option<String>,
    pub filter_out: Vec<String>,
    pub unsubscribe: Vec<String>,
    pub qos: u8,
    pub count: Option<u64>,
    pub timeout: Option<u64>,
    pub exit_after_subscribe: bool,
    pub no_retained: bool,
    pub retained_only: bool,
    pub remove_retained: bool,
    pub verbose: bool,
    pub no_newline: bool,
    pub pretty: bool,
    pub random_filter: Option<f64>,
    pub retain_as_published: bool,
    /// Retain-As-Published when the broker speaks MQTT 5, without needing it (`record`).
    pub retain_as_published_if_v5: bool,
    pub retain_handling: Option<RetainHandling>,
    pub no_local: bool,
    pub idle_timeout: Option<f64>,
    pub grep: Option<String>,
    pub changed_only: bool,
    pub no_reconnect: bool,
    /// Stop (exit 0) after this long (`record --duration`).
    pub duration: Option<Duration>,
    pub embedded: ServeArgs,
    pub conn: ConnectArgs,
}

impl SubscribeOptions {
    /// Subscribing with `conn` and every other option off.
    pub fn new(conn: ConnectArgs) -> SubscribeOptions {
        SubscribeOptions {
            topics: Vec::new(),
            share: None,
            filter_out: Vec::new(),
            unsubscribe: Vec::new(),
            qos: 0,
            count: None,
            timeout: None,
            exit_after_subscribe: false,
            no_retained: false,
            retained_only: false,
            remove_retained: false,
            verbose: false,
            no_newline: false,
            pretty: false,
            random_filter: None,
            retain_as_published: false,
            retain_as_published_if_v5: false,
            retain_handling: None,
            no_local: false,
            idle_timeout: None,
            grep: None,
            changed_only: false,
            no_reconnect: false,
            duration: None,
            embedded: ServeArgs::default(),
            conn,
        }
    }
}

impl From<SubArgs> for SubscribeOptions {
    fn from(mut a: SubArgs) -> SubscribeOptions {
        share_client_id(&mut a.conn, a.share.as_deref());
        SubscribeOptions {
            topics: a.topics,
            share: a.share,
            filter_out: a.filter_out,
            unsubscribe: a.unsubscribe,
            qos: a.qos,
            count: a.count,
            timeout: a.timeout,
            exit_after_subscribe: a.exit_after_subscribe,
            no_retained: a.no_retained,
            retained_only: a.retained_only,
            remove_retained: a.remove_retained,
            verbose: a.verbose,
            no_newline: a.no_newline,
            pretty: a.pretty,
            random_filter: a.random_filter,
            retain_as_published: a.retain_as_published,
            retain_as_published_if_v5: false,
            retain_handling: a.retain_handling,
            no_local: a.no_local,
            idle_timeout: a.idle_timeout,
            grep: a.grep,
            changed_only: a.changed_only,
            no_reconnect: a.no_reconnect,
            duration: None,
            embedded: a.embedded,
            conn: a.conn,
        }
    }
}

pub async fn run(args: SubArgs) -> anyhow::Result<ExitCode> {
    // Parsed before connecting: a bad -F is a usage error, as in mosquitto.
    let printer = if args.stats {
        Printer::Stats(Stats::new())
    } else if args.json {
        Printer::Json
    } else if let Some(spec) = &args.format {
        Printer::Format(Format::parse(spec).map_err(usage)?)
    } else {
        Printer::Plain
    };
    run_with(args.into(), printer).await
}

/// What a SUBACK granted, for `record`'s sidecar.
pub struct Subscribed<'a> {
    pub protocol: Protocol,
    /// The broker, as `mqtt://host:port`.
    pub broker: String,
    /// Every broker given, in order.
    pub brokers: Vec<String>,
    /// Each filter with the QoS asked for and the broker's return code.
    pub granted: Vec<(&'a str, u8, u8)>,
}

/// Where `record` sends messages instead of printing them.
pub trait Sink {
    /// Each SUBACK, before the messages it lets in.
    fn subscribed(&mut self, sub: &Subscribed<'_>) -> anyhow::Result<()>;
    fn message(&mut self, msg: &Message, time: SystemTime) -> anyhow::Result<()>;
    /// After the last message: flush, and say what was written.
    fn finish(&mut self) -> anyhow::Result<()>;
}

/// `smq sub`'s engine (subscribing, reconnecting, -C/-W, signals) feeding a `Sink`.
pub async fn run_sink(args: SubscribeOptions, sink: Box<dyn Sink>) -> anyhow::Result<ExitCode> {
    run_with(args, Printer::Sink(sink)).await
}

async fn run_with(mut args: SubscribeOptions, printer: Printer) -> anyhow::Result<ExitCode> {
    if args.embedded.http.http && !args.embedded.serve {
        return Err(usage(
            "--http runs on the embedded broker: add --serve (or use smq serve-broker --http)",
        ));
    }
    let broker = if args.embedded.serve {
        Some(serve(&mut args).await?)
    } else {
        None
    };
    let result = subscribe(args, printer).await;
    if let Some(b) = broker {
        b.stop().await;
    }
    result
}

/// `--serve`: the embedded broker in this process; the subscription connects to it unless
/// -h/-p/-L say otherwise.
async fn serve(args: &mut SubscribeOptions) -> anyhow::Result<broker::Running> {
    let specs = if args.embedded.listen.is_empty() {
        listener::default_specs()
    } else {
        args.embedded
            .listen
            .iter()
            .map(|u| listener::parse_listen(u))
            .collect::<anyhow::Result<_>>()?
    };
    // As serve-broker: anonymous clients only on this machine unless explicitly let in. The
    // embedded broker has no password file, so refusing them would shut out smq's own client.
    let exposed = listener::first_exposed(&specs);
    if let (Some(spec), false) = (exposed, args.embedded.allow_anonymous) {
        return Err(usage(format!(
            "--listen {} is reachable from your network and the embedded broker has no passwords: add --allow-anonymous to let anyone on it publish, or run smq serve-broker --password-file",
            spec.url()
        )));
    }
    // No status line: record and sub draw their own progress on stderr.
    let http = http_config(&args.embedded.http, false)?;
    let running = broker::start(broker::Config {
        http,
        auth: exposed.map(|_| AuthConfig {
            allow_anonymous: Some(true),
            ..AuthConfig::default()
        }),
        ..broker::Config::with_listeners(specs)
    })
    .await?;
    let addr = running
        .mqtt_addr
        .ok_or_else(|| usage("--serve needs an mqtt:// --listen for smq itself to connect to"))?;
    if args.conn.host.is_empty() && args.conn.url.is_empty() {
        let ip = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        args.conn.host = vec![ip];
        args.conn.port = Some(addr.port());
    }
    Ok(running)
}

async fn subscribe(mut args: SubscribeOptions, printer: Printer) -> anyhow::Result<ExitCode> {
    let mut opts = crate::cmd::connect::options(&args.conn, PACKETS)?;
    let v5_only: Vec<String> = [
        ("--retain-as-published", args.retain_as_published),
        ("--retain-handling", args.retain_handling.is_some()),
        ("--no-local", args.no_local),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(flag, _)| flag.to_owned())
    .collect();
    if !v5_only.is_empty() && opts.version == Version::Only(Protocol::V311) {
        return Err(usage(
            "--retain-as-published, --retain-handling and --no-local are MQTT 5 options: drop -V mqttv311",
        ));
    }
    opts.needs_v5.extend(v5_only);
    let opts = Arc::new(opts);
    let mut filters = args.topics.clone();
    if let Some(t) = &opts.url_topic {
        filters.insert(0, t.clone());
    }
    if filters.is_empty() && args.unsubscribe.is_empty() {
        // `record` has no -U: its hint must not offer unsubscribing as a way to record.
        return Err(usage(if matches!(printer, Printer::Sink(_)) {
            "a topic filter to record is needed: -t FILTER, or a -L URL whose path is the filter"
        } else {
            "a topic filter is needed: -t FILTER, a -L URL whose path is the filter, or -U FILTER (only to unsubscribe)"
        }));
    }
    for f in filters
        .iter()
        .chain(&args.filter_out)
        .chain(&args.unsubscribe)
    {
        if let Some(why) = topic::filter_error(f) {
            return Err(usage(format!("bad topic filter '{f}': {why}")));
        }
    }
    if let Some(group) = &args.share {
        filters = shared(group, &filters)?;
        // What an earlier run of this group left in a persistent session is the shared filter.
        args.unsubscribe = args
            .unsubscribe
            .iter()
            .map(|f| match f.starts_with("$share/") {
                true => Ok(f.clone()),
                false => shared(group, std::slice::from_ref(f)).map(|mut v| v.remove(0)),
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let grep = args
        .grep
        .as_deref()
        .map(|r| Regex::new(r).map_err(|e| usage(format!("--grep: bad regular expression: {e}"))))
        .transpose()?;
    let retain_handling = match args.retain_handling {
        Some(RetainHandling::Always) => 0,
        Some(RetainHandling::New) => 1,
        Some(RetainHandling::Never) => 2,
        // mosquitto: -R also asks an MQTT 5 broker not to send retained messages at all.
        None if args.no_retained => 2,
        None => 0,
    };
    let subs = filters
        .iter()
        .map(|f| Subscription {
            filter: f.clone(),
            qos: args.qos,
            no_local: args.no_local,
            retain_as_published: args.retain_as_published || args.retain_as_published_if_v5,
            retain_handling,
        })
        .collect();
    let mut sub = Subscriber {
        args,
        opts,
        subs,
        printer,
        grep,
        out: Output::stdout(),
        buf: Vec::with_capacity(4096),
        count: 0,
        last_payload: HashMap::new(),
        pending_acks: 0,
        started: Instant::now(),
        share_warned: false,
    };
    let result = sub.run().await;
    sub.finish(result)
}

enum Printer {
    Plain,
    Format(Format),
    Json,
    Stats(Stats),
    Sink(Box<dyn Sink>),
}

struct Subscriber {
    args: SubscribeOptions,
    opts: Arc<ConnectOptions>,
    subs: Vec<Subscription>,
    printer: Printer,
    grep: Option<Regex>,
    out: Output,
    buf: Vec<u8>,
    count: u64,
    last_payload: HashMap<Bytes, Bytes>,
    /// SUBACK/UNSUBACK still to come in this connection.
    pending_acks: usize,
    /// For `--duration`, which spans reconnects.
    started: Instant,
    /// The --share warning for MQTT 3.1.1 was printed.
    share_warned: bool,
}

/// Why a connection's session ended.
enum End {
    /// A normal end: -C, -E, --retained-only, idle timeout, Ctrl-C, or stdout closed.
    Done,
    TimedOut,
    Lost(anyhow::Error),
    Failed(anyhow::Error),
}

enum Flow {
    Continue,
    Stop,
}

impl Subscriber {
    async fn run(&mut self) -> anyhow::Result<()> {
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let deadline = self
            .args
            .timeout
            .map(|s| Instant::now() + Duration::from_secs(s));
        let mut connector = Connector::new(self.opts.clone());
        let interrupted = || Failure::Interrupted("interrupted before connecting".into()).into();
        let mut client = tokio::select! {
            _ = sigint.recv() => return Err(interrupted()),
            _ = sigterm.recv() => return Err(interrupted()),
            r = connector.first() => r?,
        };
        loop {
            self.start(&mut client)?;
            let since = Instant::now();
            let end = self
                .session(&mut client, deadline, &mut sigint, &mut sigterm)
                .await;
            let err = match end {
                End::Done => return self.close(client).await,
                End::TimedOut => {
                    self.close(client).await?;
                    return Err(Failure::TimedOut("Timed out".into()).into());
                }
                End::Failed(e) => {
                    self.close(client).await?;
                    return Err(e);
                }
                End::Lost(e) => e,
            };
            self.flush()?;
            if self.args.no_reconnect {
                return Err(err);
            }
            let from = client.broker();
            drop(client);
            let far = Instant::now() + FAR;
            client = tokio::select! {
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
                _ = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    return Err(Failure::TimedOut("Timed out".into()).into());
                }
                r = connector.again(from, &err, since.elapsed()) => r?,
            };
        }
    }

    /// Queues SUBSCRIBE and UNSUBSCRIBE for a new connection (mosquitto_sub resubscribes on
    /// every reconnect, too).
    fn start(&mut self, client: &mut Client) -> anyhow::Result<()> {
        self.pending_acks = 0;
        self.check_share(client)?;
        if !self.subs.is_empty() {
            client.subscribe(&self.subs, self.opts.props.subscribe.clone())?;
            self.pending_acks += 1;
        }
        if !self.args.unsubscribe.is_empty() {
            client.unsubscribe(&self.args.unsubscribe, self.opts.props.unsubscribe.clone())?;
            self.pending_acks += 1;
        }
        Ok(())
    }

    /// `--share` on a broker that said (MQTT 5) or may silently have (3.1.1) no `$share`.
    fn check_share(&mut self, client: &Client) -> anyhow::Result<()> {
        let Some(group) = &self.args.share else {
            return Ok(());
        };
        match client.protocol() {
            Protocol::V5 if !client.shared_available() => Err(Failure::Unsupported(format!(
                "--share {group}: the broker has no shared subscriptions (its CONNACK says Shared Subscription Available = 0): drop --share"
            ))
            .into()),
            Protocol::V5 => Ok(()),
            Protocol::V311 => {
                if !self.share_warned {
                    self.share_warned = true;
                    self.opts.warn(&format!(
                        "--share {group} over MQTT 3.1.1: a broker without $share (RabbitMQ 3.10, NATS 2.9) takes $share/{group}/... as a literal topic and delivers nothing"
                    ));
                }
                Ok(())
            }
        }
    }

    async fn session(
        &mut self,
        client: &mut Client,
        deadline: Option<Instant>,
        sigint: &mut Signal,
        sigterm: &mut Signal,
    ) -> End {
        let idle = self.args.idle_timeout.map(Duration::from_secs_f64);
        let stop_at = self.args.duration.map(|d| self.started + d);
        let mut idle_deadline = idle.map(|d| Instant::now() + d);
        let live_stats = matches!(&self.printer, Printer::Stats(s) if s.live());
        let mut redraw = tokio::time::interval(stats::REDRAW_EVERY);
        loop {
            let far = Instant::now() + FAR;
            let event = tokio::select! {
                biased;
                _ = sigint.recv() => return End::Done,
                _ = sigterm.recv() => return End::Done,
                _ = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => return End::TimedOut,
                _ = sleep_until(idle_deadline.unwrap_or(far)), if idle_deadline.is_some() => return End::Done,
                _ = sleep_until(stop_at.unwrap_or(far)), if stop_at.is_some() => return End::Done,
                _ = redraw.tick(), if live_stats => {
                    if let Printer::Stats(s) = &mut self.printer {
                        s.redraw();
                    }
                    continue;
                }
                ev = client.poll() => ev,
            };
            match event {
                Err(e) => return End::Lost(e),
                Ok(Event::Message { msg, mid }) => {
                    idle_deadline = idle.map(|d| Instant::now() + d);
                    let flow = match self.on_message(client, msg, mid) {
                        Ok(flow) => flow,
                        Err(e) if is_broken_pipe(&e) => return End::Done,
                        Err(e) => return End::Failed(e),
                    };
                    // Flush per message while live; while a backlog drains, flush per batch.
                    if !client.has_buffered_packet() {
                        if let Err(e) = self.out.flush() {
                            return if pipe_closed(&e) {
                                End::Done
                            } else {
                                End::Failed(anyhow!("writing to stdout: {e}"))
                            };
                        }
                    }
                    if let Flow::Stop = flow {
                        return End::Done;
                    }
                }
                Ok(Event::SubAck { codes, .. }) => {
                    if let Err(e) = self.check_suback(client, &codes) {
                        return End::Failed(e);
                    }
                    if self.acked() {
                        return End::Done;
                    }
                }
                Ok(Event::UnsubAck) => {
                    if self.acked() {
                        return End::Done;
                    }
                }
                Ok(Event::Delivered { .. } | Event::Unacknowledged { .. } | Event::Written) => {}
            }
        }
    }

    /// Counts one acknowledgement; true when the command is finished once all have arrived.
    fn acked(&mut self) -> bool {
        self.pending_acks = self.pending_acks.saturating_sub(1);
        self.pending_acks == 0 && (self.args.exit_after_subscribe || self.subs.is_empty())
    }

    fn check_suback(&mut self, client: &Client, codes: &[u8]) -> anyhow::Result<()> {
        if let Printer::Sink(sink) = &mut self.printer {
            sink.subscribed(&Subscribed {
                protocol: client.protocol(),
                broker: self.opts.brokers[client.broker()].describe(),
                brokers: self.opts.brokers.iter().map(|b| b.describe()).collect(),
                granted: self
                    .subs
                    .iter()
                    .zip(codes)
                    .map(|(s, &code)| (s.filter.as_str(), s.qos, code))
                    .collect(),
            })?;
        }
        let mut refused = 0;
        for (sub, &code) in self.subs.iter().zip(codes) {
            if code >= 0x80 {
                refused += 1;
                self.opts.warn(&format!(
                    "the broker refused the subscription to '{}': {} (0x{code:02X})",
                    sub.filter,
                    subscribe_reason(code)
                ));
            }
        }
        if refused == self.subs.len() {
            return Err(anyhow!("the broker refused every subscription"));
        }
        Ok(())
    }

    fn on_message(&mut self, client: &mut Client, msg: Message, mid: u16) -> anyhow::Result<Flow> {
        let time = SystemTime::now();
        if self.args.retained_only && !msg.retain {
            return Ok(Flow::Stop);
        }
        if self.args.no_retained && msg.retain {
            return Ok(Flow::Continue);
        }
        if self
            .args
            .filter_out
            .iter()
            .any(|f| topic::matches(f, &msg.topic))
        {
            return Ok(Flow::Continue);
        }
        if self.args.remove_retained && msg.retain && !msg.payload.is_empty() {
            client.publish(&Message {
                topic: msg.topic.clone(),
                payload: Bytes::new(),
                qos: 0,
                retain: true,
                props: None,
            })?;
        }
        if let Some(pct) = self.args.random_filter {
            if fastrand::f64() * 100.0 >= pct {
                return Ok(Flow::Continue);
            }
        }
        if let Some(re) = &self.grep {
            if !re.is_match(&msg.payload) {
                return Ok(Flow::Continue);
            }
        }
        if self.args.changed_only {
            let previous = self
                .last_payload
                .insert(msg.topic.clone(), msg.payload.clone());
            if previous.as_ref() == Some(&msg.payload) {
                return Ok(Flow::Continue);
            }
        }
        self.count += 1;
        let received = Received {
            topic: &msg.topic,
            payload: &msg.payload,
            qos: msg.qos,
            retain: msg.retain,
            mid,
            props: msg.props.as_ref(),
            time,
        };
        self.buf.clear();
        let print = match &mut self.printer {
            Printer::Stats(stats) => {
                stats.record(&msg.topic, &msg.payload);
                false
            }
            Printer::Sink(sink) => {
                sink.message(&msg, time)?;
                false
            }
            // mosquitto prints `topic (null)` only as a whole line: with -N, nothing.
            Printer::Plain if self.args.no_newline && msg.payload.is_empty() => false,
            Printer::Plain => format::render_plain(&received, self.args.verbose, &mut self.buf),
            Printer::Json => {
                format::render_json_line(&received, &mut self.buf);
                true
            }
            Printer::Format(f) => {
                if let Some(warning) = f.render(&received, self.args.pretty, &mut self.buf) {
                    self.opts.warn(&warning.to_string());
                }
                true
            }
        };
        if print {
            if !self.args.no_newline {
                self.buf.push(b'\n');
            }
            self.out.write(&self.buf)?;
        }
        Ok(match self.args.count {
            Some(n) if self.count >= n => Flow::Stop,
            _ => Flow::Continue,
        })
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self.out.flush() {
            Ok(()) => Ok(()),
            Err(e) if pipe_closed(&e) => Ok(()),
            Err(e) => Err(anyhow!("writing to stdout: {e}")),
        }
    }

    /// Flushes what was printed and says goodbye with a normal DISCONNECT (no will).
    async fn close(&mut self, client: Client) -> anyhow::Result<()> {
        self.flush()?;
        // The connection may already be gone; what was printed is printed either way.
        let _ = client.disconnect(self.opts.props.disconnect.clone()).await;
        Ok(())
    }

    fn finish(&mut self, result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
        if let Printer::Sink(sink) = &mut self.printer {
            // Whatever ended the run, what was recorded is flushed and summed up.
            sink.finish()?;
        }
        if let Printer::Stats(stats) = &self.printer {
            let summary = stats.summary();
            match self
                .out
                .write(summary.as_bytes())
                .and_then(|()| self.out.flush())
            {
                Err(e) if !pipe_closed(&e) => {
                    return Err(anyhow!("writing to stdout: {e}"));
                }
                _ => {}
            }
        }
        result.map(|()| ExitCode::SUCCESS)
    }
}

/// `--share GROUP`: every filter as `$share/GROUP/FILTER`.
fn shared(group: &str, filters: &[String]) -> anyhow::Result<Vec<String>> {
    if group.is_empty() || group.contains(['/', '+', '#']) {
        return Err(usage(format!(
            "--share '{group}': a group name is one or more characters without /, + or #"
        )));
    }
    filters
        .iter()
        .map(|f| {
            if f.starts_with("$share/") {
                return Err(usage(format!(
                    "-t '{f}' is already shared: drop --share, or give the plain filter"
                )));
            }
            Ok(format!("$share/{group}/{f}"))
        })
        .collect()
}

/// With `--share` and no -i/-I, an id of this process's own, picked once where the options are
/// built (record names it in the sidecar before connecting): the recorders of one group are
/// told apart in the broker's log and in each sidecar, and never take over each other's session.
pub fn share_client_id(conn: &mut crate::cli::ConnectArgs, share: Option<&str>) {
    if share.is_some() && conn.id.is_none() && conn.id_prefix.is_none() {
        let tail: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(6)
            .collect();
        conn.id = Some(format!("smq-{}-{tail}", std::process::id()));
    }
}
