//! `smq pub`: mosquitto_pub, streaming, and exiting only once every message is handed over.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::cli::PubArgs;
use crate::conn::{Client, ConnectOptions, Event, Message, TooLarge, delivery_reason, props};
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
    let opts = ConnectOptions::from_args(&args.conn, PACKETS)?;
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
    let mut client = Client::connect(&opts).await?;
    let shape = Message {
        // Checked above: only -l may go without a topic.
        topic: topic.clone().map(Bytes::from).unwrap_or_default(),
        payload: Bytes::new(),
        qos: args.qos,
        retain: args.retain,
        props: opts.props.publish.clone(),
    };
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
    let mut run = Publisher {
        qos: args.qos,
        retain: args.retain,
        props: opts.props.publish.clone(),
        topic_alias_max: client.limits.topic_alias_max,
        repeat_delay: args.repeat_delay.map(Duration::from_secs_f64),
        interval: args.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        sent: 0,
        confirmed: 0,
        refused: 0,
        numbers: vec![0; 65536],
    };
    if let Some(alias) = run.props.as_ref().and_then(|p| p.topic_alias) {
        if alias > run.topic_alias_max {
            client.disconnect(None).await?;
            return Err(usage(format!(
                "-D publish topic-alias {alias}: the broker allows aliases up to {}",
                run.topic_alias_max
            )));
        }
    }
    let outcome = run.drive(&mut client, &mut source, &opts).await;
    match outcome {
        Outcome::Lost(err) => Err(err.context(run.tally())),
        Outcome::Done(input_err) => {
            client.disconnect(opts.props.disconnect.clone()).await?;
            if let Some(err) = input_err {
                // Before the first message, a tally would only say "0".
                return Err(if run.sent == 0 {
                    err
                } else {
                    err.context(run.tally())
                });
            }
            if run.refused > 0 {
                return Err(anyhow!(
                    "the broker refused {} of {} messages",
                    run.refused,
                    run.sent
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted => {
            client.disconnect(opts.props.disconnect.clone()).await?;
            Err(Failure::Interrupted(format!("interrupted; {}", run.tally())).into())
        }
        Outcome::InterruptedTwice => {
            Err(Failure::Interrupted(format!("interrupted twice; {}", run.tally())).into())
        }
    }
}

enum Outcome {
    /// Input ended (or failed, with the error) and every message was handed over.
    Done(Option<anyhow::Error>),
    Lost(anyhow::Error),
    Interrupted,
    InterruptedTwice,
}

struct Publisher {
    qos: u8,
    retain: bool,
    props: Option<crate::conn::packet::PublishProperties>,
    topic_alias_max: u16,
    repeat_delay: Option<Duration>,
    interval: Option<Duration>,
    sent: u64,
    confirmed: u64,
    refused: u64,
    /// Message number by packet id, to name a refused message.
    numbers: Vec<u64>,
}

impl Publisher {
    fn tally(&self) -> String {
        if self.qos == 0 {
            format!("{} messages were written to the connection", self.sent)
        } else {
            format!(
                "{} of {} messages sent were confirmed by the broker",
                self.confirmed, self.sent
            )
        }
    }

    async fn drive(
        &mut self,
        client: &mut Client,
        source: &mut Source,
        opts: &ConnectOptions,
    ) -> Outcome {
        let mut sigint = match signal(SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => return Outcome::Done(Some(anyhow!("cannot watch for Ctrl-C: {e}"))),
        };
        let mut sigterm = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => return Outcome::Done(Some(anyhow!("cannot watch for SIGTERM: {e}"))),
        };
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
            while !input_done && interrupted_at.is_none() && !need_input {
                if client.write_backlog() || (self.qos > 0 && !client.has_window()) {
                    break;
                }
                // The delay is between messages: none after the last one (as mosquitto_pub).
                if held.is_none() && source.exhausted() {
                    input_done = true;
                    break;
                }
                if self.repeat_delay.is_some()
                    && (client.in_flight() > 0 || client.unwritten() || wake.is_some())
                {
                    break;
                }
                let (msg_topic, payload) = match held.take() {
                    Some(m) => m,
                    None => match source.next() {
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
                    },
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
                match client.publish(&msg) {
                    Ok(pkid) => {
                        self.sent += 1;
                        self.numbers[usize::from(pkid)] = self.sent;
                    }
                    Err(e) => {
                        input_err = Some(if e.is::<TooLarge>() {
                            Limit::new(client, &msg, true).exceeded(&source.what())
                        } else {
                            e.context(format!("publishing {}", source.what()))
                        });
                        input_done = true;
                    }
                }
            }
            let finished = input_done || interrupted_at.is_some();
            if finished && client.in_flight() == 0 && !client.unwritten() {
                return match interrupted_at {
                    Some(_) => Outcome::Interrupted,
                    None => Outcome::Done(input_err),
                };
            }
            let give_up = interrupted_at.map(|t| t + DRAIN_AFTER_INTERRUPT);
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
                ev = client.poll() => match ev {
                    Ok(Event::Delivered { pkid, code }) => {
                        if code >= 0x80 {
                            self.refused += 1;
                            opts.warn(&format!(
                                "the broker refused message {}: {} (0x{code:02X})",
                                self.numbers[usize::from(pkid)],
                                delivery_reason(code)
                            ));
                        } else {
                            self.confirmed += 1;
                        }
                        if let Some(d) = self.repeat_delay {
                            hold_until = Some(Instant::now() + d);
                        }
                    }
                    Ok(Event::Written) => {
                        if let (0, Some(d)) = (self.qos, self.repeat_delay) {
                            hold_until = Some(Instant::now() + d);
                        }
                    }
                    // A persistent session may still deliver to a publisher: acknowledged, not shown.
                    Ok(Event::Message { .. } | Event::SubAck { .. } | Event::UnsubAck) => {}
                    Err(e) => return Outcome::Lost(e),
                },
                r = source.fill(), if need_input => {
                    need_input = false;
                    if let Err(e) = r {
                        input_err = Some(e);
                        input_done = true;
                    }
                }
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                _ = sleep_until(give_up.unwrap_or(now)), if give_up.is_some() => {
                    return Outcome::Interrupted;
                }
            }
        }
    }
}
