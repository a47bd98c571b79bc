//! `smq pub`: mosquitto_pub, streaming, and exiting only once every message is handed over.

use std::collections::VecDeque;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::cli::PubArgs;
use crate::conn::outbox::Outbox;
use crate::conn::{
    Client, ConnectOptions, Connector, Event, Message, TooLarge, delivery_reason, props,
};
use crate::exit::{Failure, usage};
use crate::topic;

mod source;

use source::{Input, Limit, Next, Shape, Source};

const PACKETS: &[props::Packet] = &[
    props::Packet::Connect,
    props::Packet::Publish,
    props::Packet::Disconnect,
    props::Packet::Will,
];
/// After Ctrl-C, how long outstanding acknowledgements may take.
const DRAIN_AFTER_INTERRUPT: Duration = Duration::from_secs(2);

pub async fn run(args: PubArgs) -> anyhow::Result<ExitCode> {
    let opts = Arc::new(crate::cmd::connect::options(&args.conn, PACKETS)?);
    let separator = args
        .line_topic_sep
        .as_deref()
        .map(source::unescape)
        .transpose()?;
    let topic = args.topic.clone().or_else(|| opts.url_topic.clone());
    if let Some(t) = &topic {
        if let Some(why) = topic::name_error(t) {
            return Err(usage(format!("bad topic '{t}': {why}")));
        }
    } else if separator.is_none() {
        return Err(usage(
            "a topic is needed: -t TOPIC, or a -L URL whose path is the topic",
        ));
    }
    if args.repeat.is_some() && args.stdin_line {
        return Err(usage("--repeat works with -m, -f, -s and -n, not with -l"));
    }
    // Input is opened before connecting, so a bad path fails before the broker sees us.
    let input = Input::open(&args).await?;
    let mut connector = Connector::new(opts.clone());
    let client = connector.first().await?;
    let shape = Message {
        // Checked above: only -l may go without a topic.
        topic: topic.clone().map(Bytes::from).unwrap_or_default(),
        payload: Bytes::new(),
        qos: args.qos,
        retain: args.retain,
        props: opts.props.publish.clone(),
    };
    let lines = matches!(input, Input::Lines);
    let mut source = Source::new(
        input,
        &client,
        Shape {
            message: &shape,
            has_topic: topic.is_some(),
            repeat: args.repeat.unwrap_or(1),
            send_empty: args.send_empty,
            separator,
        },
    );
    if let Some(alias) = opts.props.publish.as_ref().and_then(|p| p.topic_alias) {
        let most = client.limits.topic_alias_max;
        if alias > most {
            client.disconnect(None).await?;
            return Err(usage(format!(
                "-D publish topic-alias {alias}: the broker allows aliases up to {most}"
            )));
        }
    }
    let mut run = Publisher {
        qos: args.qos,
        retain: args.retain,
        props: opts.props.publish.clone(),
        repeat_delay: args.repeat_delay.map(Duration::from_secs_f64),
        interval: args.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        // A one-shot message fails on the first error, as in mosquitto; a stream goes on.
        reconnect: !args.no_reconnect && (args.stdin_line || args.repeat.is_some()),
        // Only stdin can be read ahead while the broker is away: the other sources are one
        // message, held already.
        max_buffer: if lines {
            usize::try_from(args.max_buffer).unwrap_or(usize::MAX)
        } else {
            0
        },
        sent: 0,
        confirmed: 0,
        refused: 0,
        unacknowledged: 0,
        mismatch_warned: false,
        outbox: Outbox::default(),
        backlog: VecDeque::new(),
        backlog_bytes: 0,
    };
    let outcome = run.drive(client, connector, &mut source).await;
    match outcome {
        Outcome::Lost(err) => Err(err.context(run.tally())),
        Outcome::Done(client, input_err) => {
            if let Some(client) = client {
                client.disconnect(opts.props.disconnect.clone()).await?;
            }
            if let Some(err) = input_err {
                // Before the first message, a tally would only say "0".
                return Err(if run.sent == 0 {
                    err
                } else {
                    err.context(run.tally())
                });
            }
            run.verdict(&opts)
        }
        Outcome::Interrupted(client) => {
            if let Some(client) = client {
                client.disconnect(opts.props.disconnect.clone()).await?;
            }
            Err(Failure::Interrupted(format!("interrupted; {}", run.tally())).into())
        }
        Outcome::InterruptedTwice => {
            Err(Failure::Interrupted(format!("interrupted twice; {}", run.tally())).into())
        }
    }
}

enum Outcome {
    /// Input ended (or failed, with the error) and every message was handed over; with the
    /// client, unless the connection was down by then.
    Done(Option<Client>, Option<anyhow::Error>),
    Lost(anyhow::Error),
    /// With the client, unless the connection was down at the time.
    Interrupted(Option<Client>),
    InterruptedTwice,
}

/// A reconnect under way: it owns the connector until it is done.
type Reconnecting = Pin<Box<dyn Future<Output = (Connector, anyhow::Result<Client>)>>>;

struct Publisher {
    qos: u8,
    retain: bool,
    props: Option<crate::mqtt::PublishProperties>,
    repeat_delay: Option<Duration>,
    interval: Option<Duration>,
    reconnect: bool,
    /// How many bytes of input may wait while the connection is down.
    max_buffer: usize,
    sent: u64,
    confirmed: u64,
    refused: u64,
    unacknowledged: u64,
    mismatch_warned: bool,
    outbox: Outbox,
    /// Messages read while the connection was down, to send once it is back.
    backlog: VecDeque<(Bytes, Bytes)>,
    backlog_bytes: usize,
}

impl Publisher {
    fn tally(&self) -> String {
        let mut tally = if self.qos == 0 {
            format!("{} messages were written to the connection", self.sent)
        } else {
            format!(
                "{} of {} messages sent were confirmed by the broker",
                self.confirmed, self.sent
            )
        };
        if self.unacknowledged > 0 {
            tally += &format!("; {} were not acknowledged in time", self.unacknowledged);
        }
        tally
    }

    /// The exit code once everything was handed over or given up.
    fn verdict(&self, opts: &ConnectOptions) -> anyhow::Result<ExitCode> {
        if self.unacknowledged > 0 {
            let refused = if self.refused > 0 {
                format!(", and refused {}", self.refused)
            } else {
                String::new()
            };
            return Err(Failure::TimedOut(format!(
                "the broker did not acknowledge {} of {} messages within {} s (--ack-timeout){refused}",
                self.unacknowledged,
                self.sent,
                opts.ack_timeout.as_secs_f64()
            ))
            .into());
        }
        if self.refused > 0 {
            return Err(anyhow!(
                "the broker refused {} of {} messages",
                self.refused,
                self.sent
            ));
        }
        Ok(ExitCode::SUCCESS)
    }

    fn may_read_ahead(&self) -> bool {
        self.backlog_bytes + self.outbox.bytes() < self.max_buffer
    }

    async fn drive(
        &mut self,
        client: Client,
        connector: Connector,
        source: &mut Source,
    ) -> Outcome {
        let mut sigint = match signal(SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => {
                return Outcome::Done(Some(client), Some(anyhow!("cannot watch for Ctrl-C: {e}")));
            }
        };
        let mut sigterm = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                return Outcome::Done(Some(client), Some(anyhow!("cannot watch for SIGTERM: {e}")));
            }
        };
        let opts = Arc::clone(connector.opts());
        let mut client = Some(client);
        let mut connector = Some(connector);
        let mut reconnecting: Option<Reconnecting> = None;
        let mut up_since = Instant::now();
        let start = Instant::now();
        let mut input_done = false;
        let mut input_err = None;
        let mut need_input = false;
        let mut hold_until: Option<Instant> = None;
        let mut interrupted_at: Option<Instant> = None;
        let mut held: Option<(Bytes, Bytes)> = None;
        loop {
            let now = Instant::now();
            let mut wake: Option<Instant> = hold_until.filter(|t| *t > now);
            match client.as_mut() {
                Some(c) => {
                    if let Err(e) = self.outbox.feed(c) {
                        input_err = Some(e.context("sending again what the lost connection left"));
                        input_done = true;
                    }
                    while !self.outbox.resending() && interrupted_at.is_none() {
                        if c.write_backlog() || (self.qos > 0 && !c.has_window()) {
                            break;
                        }
                        // The delay is between messages: none after the last one (as
                        // mosquitto_pub).
                        if held.is_none() && self.backlog.is_empty() && source.exhausted() {
                            input_done = true;
                            break;
                        }
                        if self.repeat_delay.is_some()
                            && (c.in_flight() > 0 || c.unwritten() || wake.is_some())
                        {
                            break;
                        }
                        let (msg_topic, payload) = if let Some(m) = held.take() {
                            m
                        } else if let Some(m) = self.backlog.pop_front() {
                            self.backlog_bytes -= m.0.len() + m.1.len();
                            m
                        } else if input_done || need_input {
                            break;
                        } else {
                            match source.next() {
                                Next::Message(t, p) => (t, p),
                                Next::NeedInput => {
                                    need_input = true;
                                    break;
                                }
                                Next::End => {
                                    input_done = true;
                                    break;
                                }
                                Next::Bad(e) => {
                                    input_err = Some(e);
                                    input_done = true;
                                    break;
                                }
                            }
                        };
                        // Paced: the message waits for its slot, so the end of input is seen at once.
                        if let Some(interval) = self.interval {
                            let due = start + interval.mul_f64(self.sent as f64);
                            if due > now {
                                wake = Some(due);
                                held = Some((msg_topic, payload));
                                break;
                            }
                        }
                        let msg = Message {
                            topic: msg_topic,
                            payload,
                            qos: self.qos,
                            retain: self.retain,
                            props: self.props.clone(),
                        };
                        match c.publish(&msg) {
                            Ok(pkid) => {
                                self.sent += 1;
                                if pkid > 0 {
                                    self.outbox.sent(pkid, self.sent, msg);
                                }
                            }
                            Err(e) => {
                                input_err = Some(if e.is::<TooLarge>() {
                                    Limit::new(c, &msg, true).exceeded(&source.what())
                                } else {
                                    e.context(format!("publishing {}", source.what()))
                                });
                                input_done = true;
                                // What the failed message would have been is not waited for.
                                self.backlog.clear();
                                self.backlog_bytes = 0;
                                held = None;
                            }
                        }
                    }
                }
                None if interrupted_at.is_some() => return Outcome::Interrupted(None),
                None => {
                    // While the broker is away, stdin is read ahead up to --max-buffer, so a
                    // writer such as `tail -f` is not held up by a short outage.
                    while !input_done && !need_input && self.may_read_ahead() {
                        match source.next() {
                            Next::Message(t, p) => {
                                self.backlog_bytes += t.len() + p.len();
                                self.backlog.push_back((t, p));
                            }
                            Next::NeedInput => need_input = true,
                            Next::End => input_done = true,
                            Next::Bad(e) => {
                                input_err = Some(e);
                                input_done = true;
                            }
                        }
                    }
                }
            }
            let stopping = input_done || interrupted_at.is_some();
            let drained = self.outbox.is_empty() && self.backlog.is_empty() && held.is_none();
            if client.is_none() && input_done && drained {
                // Input ended while the broker was away, with nothing left to send: there is
                // nothing to reconnect for.
                return Outcome::Done(None, input_err);
            }
            if let Some(c) = client.take_if(|c| {
                let idle = c.in_flight() == 0 && !c.unwritten();
                idle && (interrupted_at.is_some() || (stopping && drained))
            }) {
                return match interrupted_at {
                    Some(_) => Outcome::Interrupted(Some(c)),
                    None => Outcome::Done(Some(c), input_err),
                };
            }
            let give_up = interrupted_at.map(|t| t + DRAIN_AFTER_INTERRUPT);
            let read = need_input && (client.is_some() || self.may_read_ahead());
            tokio::select! {
                biased;
                _ = sigint.recv() => {
                    if interrupted_at.is_some() {
                        return Outcome::InterruptedTwice;
                    }
                    interrupted_at = Some(Instant::now());
                }
                _ = sigterm.recv() => {
                    if interrupted_at.is_some() {
                        return Outcome::InterruptedTwice;
                    }
                    interrupted_at = Some(Instant::now());
                }
                ev = poll(client.as_mut()) => match ev {
                    Ok(Event::Delivered { pkid, code, mismatch }) => {
                        let number = self.outbox.done(pkid).unwrap_or_default();
                        if code >= 0x80 {
                            self.refused += 1;
                            opts.warn(&format!(
                                "the broker refused message {number}: {} (0x{code:02X})",
                                delivery_reason(code)
                            ));
                        } else {
                            self.confirmed += 1;
                        }
                        if let (Some(m), false, Some(c)) = (mismatch, self.mismatch_warned, &client) {
                            self.mismatch_warned = true;
                            opts.warn(&m.warning(&opts.brokers[c.broker()].describe()));
                        }
                        if let Some(d) = self.repeat_delay {
                            hold_until = Some(Instant::now() + d);
                        }
                    }
                    Ok(Event::Unacknowledged { pkid }) => {
                        let number = self.outbox.done(pkid).unwrap_or_default();
                        self.unacknowledged += 1;
                        opts.warn(&format!(
                            "the broker did not acknowledge message {number} within {} s (--ack-timeout)",
                            opts.ack_timeout.as_secs_f64()
                        ));
                    }
                    Ok(Event::Written) => {
                        if let (0, Some(d)) = (self.qos, self.repeat_delay) {
                            hold_until = Some(Instant::now() + d);
                        }
                    }
                    // A persistent session may still deliver to a publisher: acknowledged, not shown.
                    Ok(Event::Message { .. } | Event::SubAck { .. } | Event::UnsubAck) => {}
                    Err(e) => {
                        let Some(c) = client.take() else {
                            return Outcome::Lost(e);
                        };
                        let broker = opts.brokers[c.broker()].describe();
                        if !self.reconnect || interrupted_at.is_some() {
                            return Outcome::Lost(if self.outbox.unanswered() {
                                self.outbox.unanswered_error(&e, &broker)
                            } else {
                                e
                            });
                        }
                        if let Err(stuck) = self.outbox.lost(&c, &broker) {
                            return Outcome::Lost(stuck);
                        }
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
                    match r {
                        Ok(mut c) => {
                            let resumed = !opts.clean && c.session_present();
                            if let Err(e) = self.outbox.reconnected(&mut c, resumed) {
                                return Outcome::Lost(e);
                            }
                            up_since = Instant::now();
                            client = Some(c);
                        }
                        Err(e) => return Outcome::Lost(e),
                    }
                }
                r = source.fill(), if read => {
                    need_input = false;
                    if let Err(e) = r {
                        input_err = Some(e);
                        input_done = true;
                    }
                }
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                _ = sleep_until(give_up.unwrap_or(now)), if give_up.is_some() => {
                    return Outcome::Interrupted(client.take());
                }
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
