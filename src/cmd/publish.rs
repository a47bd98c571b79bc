//! `smq pub`: mosquitto_pub, streaming, and exiting only once every message is handed over.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::cli::PubArgs;
use crate::conn::{Client, ConnectOptions, Event, Message, delivery_reason, props};
use crate::exit::{Failure, usage};
use crate::topic;

const PACKETS: &[props::Packet] = &[
    props::Packet::Connect,
    props::Packet::Publish,
    props::Packet::Disconnect,
    props::Packet::Will,
];
/// After Ctrl-C, how long outstanding acknowledgements may take.
const DRAIN_AFTER_INTERRUPT: Duration = Duration::from_secs(2);
const STDIN_CHUNK: usize = 256 * 1024;

pub async fn run(args: PubArgs) -> anyhow::Result<ExitCode> {
    let opts = ConnectOptions::from_args(&args.conn, PACKETS)?;
    let separator = args.line_topic_sep.as_deref().map(unescape).transpose()?;
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
    let mut source = Source::open(&args, topic.map(Bytes::from), separator).await?;
    let mut client = Client::connect(&opts).await?;
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
                return Err(err.context(run.tally()));
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
                        input_err = Some(e.context(source.position()));
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
                        input_err = Some(anyhow::Error::new(e).context("reading stdin"));
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

enum Next {
    Message(Bytes, Bytes),
    NeedInput,
    End,
    Bad(anyhow::Error),
}

enum Source {
    Single {
        topic: Bytes,
        payload: Bytes,
        left: u64,
    },
    Lines(Lines),
}

impl Source {
    async fn open(
        args: &PubArgs,
        topic: Option<Bytes>,
        separator: Option<Vec<u8>>,
    ) -> anyhow::Result<Source> {
        let payload = if let Some(m) = &args.message {
            Bytes::from(m.clone().into_encoded_bytes())
        } else if let Some(path) = &args.file {
            Bytes::from(
                tokio::fs::read(path)
                    .await
                    .with_context(|| format!("reading message file {}", path.display()))?,
            )
        } else if args.stdin_file {
            let mut all = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut all)
                .await
                .context("reading stdin")?;
            Bytes::from(all)
        } else if args.null_message {
            Bytes::new()
        } else {
            return Ok(Source::Lines(Lines {
                input: Box::new(tokio::io::stdin()),
                buf: BytesMut::with_capacity(STDIN_CHUNK),
                scanned: 0,
                eof: false,
                line: 0,
                send_empty: args.send_empty,
                topic,
                separator,
            }));
        };
        Ok(Source::Single {
            // Checked by the caller: only -l may go without a topic.
            topic: topic.unwrap_or_default(),
            payload,
            left: args.repeat.unwrap_or(1),
        })
    }

    fn next(&mut self) -> Next {
        match self {
            Source::Single {
                topic,
                payload,
                left,
            } => {
                if *left == 0 {
                    return Next::End;
                }
                *left -= 1;
                Next::Message(topic.clone(), payload.clone())
            }
            Source::Lines(lines) => lines.next(),
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        match self {
            Source::Single { .. } => Ok(()),
            Source::Lines(lines) => lines.fill().await,
        }
    }

    fn position(&self) -> String {
        match self {
            Source::Single { .. } => "publishing the message".to_owned(),
            Source::Lines(lines) => format!("stdin line {}", lines.line),
        }
    }
}

/// `-l`: lines as byte strings of any length, read in large chunks as they arrive.
struct Lines {
    input: Box<dyn AsyncRead + Unpin + Send>,
    buf: BytesMut,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    eof: bool,
    line: u64,
    send_empty: bool,
    topic: Option<Bytes>,
    separator: Option<Vec<u8>>,
}

impl Lines {
    fn next(&mut self) -> Next {
        loop {
            let mut line = match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = self.buf.split_to(self.scanned + i + 1);
                    line.truncate(line.len() - 1);
                    line
                }
                None if self.eof && !self.buf.is_empty() => self.buf.split(),
                None if self.eof => return Next::End,
                None => {
                    self.scanned = self.buf.len();
                    return Next::NeedInput;
                }
            };
            self.scanned = 0;
            self.line += 1;
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            if line.is_empty() && !self.send_empty {
                continue;
            }
            return self.split_topic(line.freeze());
        }
    }

    fn split_topic(&self, line: Bytes) -> Next {
        let Some(sep) = &self.separator else {
            return Next::Message(self.topic.clone().unwrap_or_default(), line);
        };
        let at = line.windows(sep.len()).position(|w| w == sep.as_slice());
        let (topic, payload) = match (at, &self.topic) {
            (Some(i), _) => (line.slice(..i), line.slice(i + sep.len()..)),
            (None, Some(t)) => (t.clone(), line),
            (None, None) => {
                return Next::Bad(anyhow!(
                    "stdin line {} has no topic separator (and there is no -t to fall back on)",
                    self.line
                ));
            }
        };
        match std::str::from_utf8(&topic) {
            Ok(t) => match topic::name_error(t) {
                None => Next::Message(topic, payload),
                Some(why) => Next::Bad(anyhow!("stdin line {}: bad topic '{t}': {why}", self.line)),
            },
            Err(_) => Next::Bad(anyhow!("stdin line {}: the topic is not UTF-8", self.line)),
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        self.buf.reserve(STDIN_CHUNK);
        if self.input.read_buf(&mut self.buf).await? == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

/// `--line-topic-sep '\t'`: backslash escapes, so a tab can be typed in any shell.
fn unescape(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        out.push(match chars.next() {
            Some('t') => b'\t',
            Some('0') => 0,
            Some('\\') => b'\\',
            Some(other) => {
                return Err(usage(format!(
                    "--line-topic-sep: unknown escape '\\{other}': use \\t, \\0 or \\\\"
                )));
            }
            None => return Err(usage("--line-topic-sep ends with a lone '\\'")),
        });
    }
    if out.is_empty() {
        return Err(usage("--line-topic-sep must not be empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(
        input: &[u8],
        send_empty: bool,
        sep: Option<&str>,
        topic: Option<&str>,
    ) -> Vec<String> {
        let mut l = Lines {
            input: Box::new(tokio::io::empty()),
            buf: BytesMut::from(input),
            scanned: 0,
            eof: true,
            line: 0,
            send_empty,
            topic: topic.map(|t| Bytes::copy_from_slice(t.as_bytes())),
            separator: sep.map(|s| unescape(s).unwrap()),
        };
        let mut out = Vec::new();
        loop {
            match l.next() {
                Next::Message(t, p) => out.push(format!(
                    "{}|{}",
                    String::from_utf8_lossy(&t),
                    String::from_utf8_lossy(&p)
                )),
                Next::End => return out,
                Next::Bad(e) => {
                    out.push(format!("ERR {e}"));
                    return out;
                }
                Next::NeedInput => panic!("input is at EOF"),
            }
        }
    }

    #[test]
    fn line_mode_strips_cr_skips_blank_and_sends_last_line() {
        assert_eq!(
            lines(b"a\r\n\nb\r\n\r\nc", false, None, Some("t")),
            ["t|a", "t|b", "t|c"]
        );
        assert_eq!(lines(b"a\n\n", true, None, Some("t")), ["t|a", "t|"]);
    }

    #[test]
    fn line_mode_keeps_nul_bytes() {
        assert_eq!(lines(b"a\0b\n", false, None, Some("t")), ["t|a\0b"]);
    }

    #[test]
    fn per_line_topics() {
        assert_eq!(
            lines(b"x/y\t1\tz\nplain\n", false, Some("\\t"), Some("dflt")),
            ["x/y|1\tz", "dflt|plain"]
        );
        let out = lines(b"a/+\tv\n", false, Some("\\t"), None);
        assert!(out[0].contains("line 1: bad topic 'a/+'"), "{out:?}");
        let out = lines(b"novalue\n", false, Some("\\t"), None);
        assert!(out[0].contains("no topic separator"), "{out:?}");
    }

    #[test]
    fn separator_escapes() {
        assert_eq!(unescape("\\t").unwrap(), b"\t");
        assert_eq!(unescape("::").unwrap(), b"::");
        assert!(unescape("\\q").is_err());
        assert!(unescape("").is_err());
    }
}
