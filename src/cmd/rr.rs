//! `smq rr`: mosquitto_rr. Subscribe to the response topic, publish one request (in MQTT 5,
//! the default, carrying that topic as its response topic and any `-D publish
//! correlation-data`), print the response as `sub` would, and exit. `-C N` waits for N.
//!
//! Unlike mosquitto_rr, a response whose correlation data differs from the request's is
//! someone else's answer on a shared response topic: it is skipped.

use std::io::{self, Read};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::cli::{ProtocolVersion, RrArgs};
use crate::conn::{
    Client, ConnectOptions, Connector, Event, Message, Protocol, props, subscribe_reason,
};
use crate::exit::{Failure, usage};
use crate::format::{self, Format, Received};
use crate::mqtt::{MAX_REMAINING_LENGTH, PublishProperties, Subscription};
use crate::output::Output;
use crate::topic;

const PACKETS: &[props::Packet] = &[
    props::Packet::Connect,
    props::Packet::Publish,
    props::Packet::Subscribe,
    props::Packet::Disconnect,
    props::Packet::Will,
];

pub async fn run(mut args: RrArgs) -> anyhow::Result<ExitCode> {
    let format = args
        .format
        .as_deref()
        .map(|f| Format::parse(f).map_err(usage))
        .transpose()?;
    // As mosquitto_rr: MQTT 5 unless told otherwise, for the request-response properties.
    if args.conn.protocol_version.is_none() {
        args.conn.protocol_version = Some(ProtocolVersion::V5);
    }
    let opts = crate::cmd::connect::options(&args.conn, PACKETS)?;
    let request_topic = args
        .topic
        .clone()
        .or_else(|| opts.url_topic.clone())
        .ok_or_else(|| {
            usage("a request topic is needed: -t TOPIC, or a -L URL whose path is the topic")
        })?;
    for (flag, t) in [("-t", &request_topic), ("-e", &args.response_topic)] {
        if let Some(why) = topic::name_error(t) {
            return Err(usage(format!("bad {flag} topic '{t}': {why}")));
        }
    }
    let mut props = opts.props.publish.clone();
    if props.as_ref().is_some_and(|p| p.response_topic.is_some()) {
        return Err(usage(
            "-e is the response topic: drop -D publish response-topic",
        ));
    }
    let correlation = props.as_ref().and_then(|p| p.correlation_data.clone());
    let payload = request(&args)?;
    let mut client = Connector::new(Arc::new(opts.clone())).first().await?;
    // A 3.1.1 broker (after -V auto fell back) cannot carry it: the responder must know -e.
    if client.protocol() == Protocol::V5 {
        props
            .get_or_insert_with(PublishProperties::default)
            .response_topic = Some(args.response_topic.clone());
    }

    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let result = exchange(
        &mut client,
        &args,
        &opts,
        request_topic,
        payload,
        props,
        correlation,
        format.as_ref(),
        deadline,
    )
    .await;
    // The connection may be gone already; what was printed is printed either way.
    let _ = client.disconnect(opts.props.disconnect.clone()).await;
    result.map(|()| ExitCode::SUCCESS)
}

/// The request payload, read before connecting so a bad file fails first.
fn request(args: &RrArgs) -> anyhow::Result<Bytes> {
    let limit = MAX_REMAINING_LENGTH as u64;
    let read_all = |what: &str, r: &mut dyn Read| -> anyhow::Result<Bytes> {
        let mut buf = Vec::new();
        r.take(limit + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {what}"))?;
        if buf.len() as u64 > limit {
            return Err(anyhow!("{what} is larger than an MQTT packet can carry"));
        }
        Ok(Bytes::from(buf))
    };
    Ok(if let Some(m) = &args.message {
        Bytes::from(m.clone().into_encoded_bytes())
    } else if let Some(path) = &args.file {
        let what = format!("request file {}", path.display());
        let mut file = std::fs::File::open(path).with_context(|| format!("reading {what}"))?;
        read_all(&what, &mut file)?
    } else if args.stdin_file {
        read_all("stdin (-s)", &mut io::stdin().lock())?
    } else {
        Bytes::new()
    })
}

#[allow(clippy::too_many_arguments)]
async fn exchange(
    client: &mut Client,
    args: &RrArgs,
    opts: &ConnectOptions,
    request_topic: String,
    payload: Bytes,
    props: Option<PublishProperties>,
    correlation: Option<Bytes>,
    format: Option<&Format>,
    deadline: Option<Instant>,
) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let sub = Subscription {
        filter: args.response_topic.clone(),
        qos: args.qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: if args.no_retained { 2 } else { 0 },
    };
    client.subscribe(&[sub], opts.props.subscribe.clone())?;
    let mut out = Output::stdout();
    let mut buf = Vec::with_capacity(1024);
    let mut requested = false;
    let mut printed = 0;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        let event = tokio::select! {
            biased;
            _ = sigint.recv() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
            _ = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                return Err(Failure::TimedOut("Timed out".into()).into());
            }
            ev = client.poll() => ev?,
        };
        match event {
            Event::SubAck { codes } if !requested => {
                if let Some(&code) = codes.first().filter(|&&c| c >= 0x80) {
                    return Err(anyhow!(
                        "the broker refused the subscription to '{}': {} (0x{code:02X})",
                        args.response_topic,
                        subscribe_reason(code)
                    ));
                }
                // Subscribed first, so a quick responder's answer cannot be missed.
                client.publish(&Message {
                    topic: Bytes::from(request_topic.clone()),
                    payload: payload.clone(),
                    qos: args.qos,
                    retain: false,
                    props: props.clone(),
                })?;
                requested = true;
            }
            Event::Message { msg, mid } => {
                if msg.topic != args.response_topic.as_bytes() || (args.no_retained && msg.retain) {
                    continue;
                }
                let theirs = msg.props.as_ref().and_then(|p| p.correlation_data.as_ref());
                if let (Some(ours), Some(theirs)) = (&correlation, theirs) {
                    if ours != theirs {
                        continue;
                    }
                }
                print(&msg, mid, args, format, opts, &mut buf);
                out.write(&buf)?;
                out.flush()?;
                printed += 1;
                if printed >= args.count {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}

fn print(
    msg: &Message,
    mid: u16,
    args: &RrArgs,
    format: Option<&Format>,
    opts: &ConnectOptions,
    buf: &mut Vec<u8>,
) {
    buf.clear();
    let received = Received {
        topic: &msg.topic,
        payload: &msg.payload,
        qos: msg.qos,
        retain: msg.retain,
        mid,
        props: msg.props.as_ref(),
        time: SystemTime::now(),
    };
    let line = match format {
        Some(f) => {
            if let Some(w) = f.render(&received, args.pretty, buf) {
                opts.warn(&w.to_string());
            }
            true
        }
        // mosquitto prints `topic (null)` only as a whole line: with -N, nothing.
        None if args.no_newline && msg.payload.is_empty() => false,
        None => format::render_plain(&received, args.verbose, buf),
    };
    if line && !args.no_newline {
        buf.push(b'\n');
    }
}
