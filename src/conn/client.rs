//! One MQTT connection: CONNECT/CONNACK, packet ids, QoS 1/2 flows, keep-alive, DISCONNECT.
//!
//! Packets are encoded and decoded by `crate::mqtt`, as strictly as the broker does. This
//! engine batches whatever is queued into one write and reports each completed delivery,
//! which is what `pub` needs to exit only when nothing is outstanding.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::anyhow;
use bytes::{Bytes, BytesMut};
use tokio::time::{Instant, sleep_until, timeout};

use super::props::{DisconnectProperties, SubscribeProperties, UnsubscribeProperties};
use super::{ConnectOptions, reason};
use crate::exit::Failure;
use crate::mqtt::{
    self, ClientDisconnectCode, MAX_PACKET, Message, Protocol, PubAckCode, PubRelCode, ReasonCode,
    ServerPacket, Violation,
};
use crate::transport::dial;
use crate::transport::explain;
use crate::transport::setup::TransportSetup;
use crate::transport::{Reader, Writer};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Above this much queued output, callers should let the writer catch up.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Payloads from this size on are written from the caller's buffer rather than copied into
/// the packet; smaller ones are copied, so that many small packets go out in one write.
const SHARED_PAYLOAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Slot {
    #[default]
    Free,
    AwaitPubAck,
    AwaitPubRec,
    AwaitPubComp,
    AwaitSubAck,
    AwaitUnsubAck,
    /// A QoS 1 PUBLISH answered with PUBREC, already reported: the id stays taken until the
    /// PUBCOMP for our PUBREL arrives, so that it cannot complete a later message.
    AwaitStrayComp,
    /// Timed out and reported; a late acknowledgement frees it and means nothing.
    Abandoned,
}

impl Slot {
    fn awaits_ack(self) -> bool {
        !matches!(self, Slot::Free | Slot::AwaitStrayComp | Slot::Abandoned)
    }
}

/// How far an unacknowledged QoS 1/2 PUBLISH got, for sending it again after a lost connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PUBLISH sent; no PUBACK or PUBREC yet.
    Sent,
    /// QoS 2: PUBREC received and PUBREL sent; no PUBCOMP yet.
    Released,
}

/// The broker acknowledged a PUBLISH with another QoS's packet: PUBACK for QoS 2 (RabbitMQ,
/// which has no QoS 2, does), or PUBREC for QoS 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub sent: u8,
    pub answered: u8,
}

impl Mismatch {
    /// The one warning a run prints about it.
    pub fn warning(self, broker: &str) -> String {
        if self.answered < self.sent {
            format!(
                "{broker} answers a QoS {} PUBLISH with PUBACK, the QoS 1 acknowledgement: it does not support QoS {}; messages are counted as delivered at QoS 1",
                self.sent, self.sent
            )
        } else {
            format!(
                "{broker} answers a QoS {} PUBLISH with PUBREC, the QoS 2 acknowledgement: smq completes the QoS 2 exchange it asks for and counts the messages as delivered at QoS {}",
                self.sent, self.sent
            )
        }
    }
}

/// An acknowledgement being waited for, oldest first.
struct Waiting {
    pkid: u16,
    seq: u32,
    /// When the packet had been written out; the timeout runs from then.
    written: Option<Instant>,
}

/// Bytes of topics the broker's aliases may stand for: a bound on what it can make us hold.
const ALIASES_IN_BYTES: usize = 1024 * 1024;

/// State per packet id, grown only as far as the ids in use: an idle connection (`smq bench`
/// holds thousands) keeps none, a busy one at most 64 KiB.
#[derive(Debug, Default)]
struct ById<T>(Vec<T>);

impl<T: Copy + Default> ById<T> {
    /// Every id's state that was ever set, from id 0.
    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    fn get(&self, id: u16) -> T {
        self.0.get(usize::from(id)).copied().unwrap_or_default()
    }

    fn set(&mut self, id: u16, value: T) {
        let i = usize::from(id);
        if i >= self.0.len() {
            self.0.resize(i + 1, T::default());
        }
        self.0[i] = value;
    }
}

/// What the broker allowed in CONNACK.
#[derive(Debug, Clone)]
pub struct Limits {
    pub receive_max: u16,
    /// The largest whole packet the broker takes: its Maximum Packet Size, else MQTT's.
    pub max_packet: usize,
    /// Whether `max_packet` is the broker's own, from its MQTT 5 CONNACK.
    pub max_packet_from_broker: bool,
    pub topic_alias_max: u16,
}

/// A PUBLISH that would be larger than `Limits::max_packet`; nothing was queued.
#[derive(Debug)]
pub struct TooLarge {
    pub size: usize,
    pub max_packet: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {}-byte PUBLISH is larger than the broker accepts ({} bytes)",
            self.size, self.max_packet
        )
    }
}

impl std::error::Error for TooLarge {}

pub enum Event {
    /// A QoS 1/2 publish finished: `code` is 0 (or 0x10, no subscribers) unless refused.
    Delivered {
        pkid: u16,
        code: u8,
        mismatch: Option<Mismatch>,
    },
    /// A QoS 1/2 publish got no acknowledgement within the ack timeout; its id is given up.
    Unacknowledged {
        pkid: u16,
    },
    /// Everything queued so far has been written to the socket.
    Written,
    /// An application message; QoS 2 duplicates are already dropped.
    Message {
        msg: Message,
        mid: u16,
    },
    SubAck {
        codes: Vec<u8>,
    },
    UnsubAck,
}

pub struct Client {
    proto: Protocol,
    /// Which of `ConnectOptions::brokers` this is connected to.
    broker: usize,
    /// CONNACK's Session Present: the broker kept our earlier session.
    session_present: bool,
    /// CONNACK's Shared Subscription Available (absent: available, as MQTT 5 says).
    shared_available: bool,
    ack_timeout: Duration,
    waiting: VecDeque<Waiting>,
    /// Per packet id, the `Waiting::seq` of the flow that holds it.
    slot_seq: ById<u32>,
    next_seq: u32,
    reader: Reader,
    writer: Writer,
    rbuf: BytesMut,
    /// Large payloads, and the packets queued before them, in the order they are written;
    /// all of it goes out before `wbuf`.
    shared: VecDeque<Bytes>,
    wbuf: BytesMut,
    max_in: usize,
    keepalive: Option<Duration>,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    trace: Option<String>,
    slots: ById<Slot>,
    /// Incoming QoS 2 ids between PUBREC and PUBREL: a resent PUBLISH is not delivered twice.
    awaiting_rel: ById<bool>,
    /// The topic aliases the broker set up (v5, when `-D connect topic-alias-maximum` allows).
    aliases_in: HashMap<u16, Bytes>,
    aliases_in_bytes: usize,
    aliases_in_max: u16,
    in_flight: usize,
    max_in_flight: usize,
    /// Whether a SUBSCRIBE was sent: messages may arrive at any time.
    subscribed: bool,
    next_pkid: u16,
    pub limits: Limits,
}

impl Client {
    /// Connects to `opts.brokers[broker]` with `proto`, and waits for CONNACK.
    pub async fn connect(
        opts: &ConnectOptions,
        broker: usize,
        proto: Protocol,
    ) -> anyhow::Result<Client> {
        let target = &opts.brokers[broker];
        let setup = &target.transport;
        let (reader, writer) = timeout(CONNECT_TIMEOUT, dial::open(setup))
            .await
            .map_err(|_| anyhow!("connecting to {} timed out", setup.describe()))??;
        let mut client = Client {
            proto,
            broker,
            session_present: false,
            shared_available: true,
            ack_timeout: opts.ack_timeout,
            waiting: VecDeque::new(),
            slot_seq: ById::default(),
            next_seq: 0,
            reader,
            writer,
            // Small to start: a busy connection grows them (a read reserves up to 64 KiB), an
            // idle one (`smq bench conn` holds thousands) stays small.
            rbuf: BytesMut::with_capacity(4 * 1024),
            shared: VecDeque::new(),
            wbuf: BytesMut::with_capacity(4 * 1024),
            max_in: opts
                .props
                .connect
                .as_ref()
                .and_then(|p| p.max_packet)
                .map_or(MAX_PACKET, |n| n as usize),
            keepalive: (opts.keepalive > 0).then(|| Duration::from_secs(opts.keepalive.into())),
            last_sent: Instant::now(),
            ping_sent: None,
            trace: opts.debug.then(|| opts.client_id.clone()),
            slots: ById::default(),
            awaiting_rel: ById::default(),
            aliases_in: HashMap::new(),
            aliases_in_bytes: 0,
            aliases_in_max: opts
                .props
                .connect
                .as_ref()
                .and_then(|p| p.topic_alias_max)
                .filter(|_| proto == Protocol::V5)
                .unwrap_or(0),
            in_flight: 0,
            subscribed: false,
            max_in_flight: opts.max_inflight.into(),
            next_pkid: 0,
            limits: Limits {
                receive_max: u16::MAX,
                max_packet: MAX_PACKET,
                max_packet_from_broker: false,
                topic_alias_max: 0,
            },
        };
        let connect = opts.connect_packet(proto, target);
        if opts.mqtt31 {
            mqtt::encode_connect_mqtt31(&connect, &mut client.wbuf)?;
        } else {
            mqtt::encode_connect(&connect, &mut client.wbuf)?;
        }
        client.trace_out(format_args!("CONNECT"));
        let connack = timeout(CONNECT_TIMEOUT, client.handshake(setup))
            .await
            .map_err(|_| anyhow!("{} did not answer CONNECT", setup.describe()))??;
        let ServerPacket::ConnAck(ack) = connack else {
            return Err(anyhow!(
                "the broker answered CONNECT with something other than CONNACK"
            ));
        };
        client.session_present = ack.session_present;
        let code = connack_number(proto, &ack);
        if code != 0 {
            let mut why = reason::connack(proto, code).to_owned();
            if let Some(extra) = &ack.reason_string {
                why = format!("{why}: {extra}");
            }
            return Err(Failure::Refused { code, reason: why }.into());
        }
        if let Some(n) = ack.receive_max {
            client.limits.receive_max = n;
        }
        if let Some(n) = ack.max_packet {
            client.limits.max_packet = n as usize;
            client.limits.max_packet_from_broker = true;
        }
        client.limits.topic_alias_max = ack.topic_alias_max.unwrap_or(0);
        client.shared_available = ack.shared_available != Some(false);
        if let Some(k) = ack.server_keepalive {
            client.keepalive = (k > 0).then(|| Duration::from_secs(k.into()));
        }
        client.max_in_flight = client
            .max_in_flight
            .min(client.limits.receive_max.into())
            .max(1);
        Ok(client)
    }

    async fn handshake(&mut self, setup: &TransportSetup) -> anyhow::Result<ServerPacket> {
        self.writer
            .write_all(&mut self.wbuf)
            .await
            .map_err(|e| explain::before_connack(&e, setup))?;
        self.last_sent = Instant::now();
        loop {
            // A broker of another protocol answers in it: say so rather than "malformed".
            if let Some(err) = explain::not_mqtt(&self.rbuf, setup) {
                return Err(err);
            }
            let decoded = if explain::undecided(&self.rbuf) {
                None
            } else {
                self.decode()?
            };
            if let Some(p) = decoded {
                if let ServerPacket::ConnAck(ack) = &p {
                    self.trace_in(format_args!(
                        "CONNACK (session present {}, code {})",
                        u8::from(ack.session_present),
                        connack_number(self.proto, ack)
                    ));
                }
                return Ok(p);
            }
            let read = self.reader.read(&mut self.rbuf).await;
            if read.map_err(|e| explain::before_connack(&e, setup))? == 0 {
                return Err(explain::closed_before_connack(self.proto, setup).into());
            }
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.proto
    }

    /// The index of the broker in `ConnectOptions::brokers`.
    pub fn broker(&self) -> usize {
        self.broker
    }

    /// False when an MQTT 5 broker said it has no `$share` subscriptions.
    pub fn shared_available(&self) -> bool {
        self.shared_available
    }

    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// Whether another QoS 1/2 publish fits in the in-flight window.
    pub fn has_window(&self) -> bool {
        self.in_flight < self.max_in_flight
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether queued output should drain before more is queued.
    pub fn write_backlog(&self) -> bool {
        self.wbuf.len() + self.shared.iter().map(Bytes::len).sum::<usize>() >= WRITE_HIGH_WATER
    }

    pub fn unwritten(&self) -> bool {
        !self.wbuf.is_empty() || !self.shared.is_empty() || self.writer.unflushed()
    }

    /// The largest payload a PUBLISH like `msg` (its payload aside) may carry to this broker,
    /// and how many bytes its topic, packet id and properties take.
    pub fn payload_room(&self, msg: &Message) -> (usize, usize) {
        mqtt::payload_room(self.proto, msg, self.limits.max_packet)
    }

    /// Whether a whole packet is already buffered, so `poll` will not wait for the network.
    pub fn has_buffered_packet(&self) -> bool {
        mqtt::has_whole_packet(&self.rbuf)
    }

    /// Queues one SUBSCRIBE for all `subs`; its SUBACK comes back as an event.
    pub fn subscribe(
        &mut self,
        subs: &[mqtt::Subscription],
        props: Option<SubscribeProperties>,
    ) -> anyhow::Result<u16> {
        let pkid = self.take_pkid();
        self.subscribed = true;
        self.slots.set(pkid, Slot::AwaitSubAck);
        self.wait_for(pkid);
        let props = props.unwrap_or_default();
        mqtt::encode_subscribe(
            self.proto,
            pkid,
            subs,
            props.id,
            &props.user_properties,
            &mut self.wbuf,
        )?;
        if self.trace.is_some() {
            for s in subs {
                self.trace_out(format_args!(
                    "SUBSCRIBE (Mid: {pkid}, Topic: {}, QoS: {})",
                    s.filter, s.qos
                ));
            }
        }
        Ok(pkid)
    }

    pub fn unsubscribe(
        &mut self,
        filters: &[String],
        props: Option<UnsubscribeProperties>,
    ) -> anyhow::Result<u16> {
        let pkid = self.take_pkid();
        self.slots.set(pkid, Slot::AwaitUnsubAck);
        self.wait_for(pkid);
        let user = props.map(|p| p.user_properties).unwrap_or_default();
        mqtt::encode_unsubscribe(self.proto, pkid, filters, &user, &mut self.wbuf)?;
        self.trace_out(format_args!(
            "UNSUBSCRIBE (Mid: {pkid}, {})",
            filters.join(", ")
        ));
        Ok(pkid)
    }

    /// Queues a PUBLISH; returns its packet id (0 at QoS 0). A message larger than the broker
    /// takes fails with `TooLarge`.
    pub fn publish(&mut self, msg: &Message) -> anyhow::Result<u16> {
        self.publish_as(msg, None)
    }

    /// Sends again, on a resumed session, a QoS 1/2 message that the lost connection left
    /// unacknowledged: the PUBLISH with its packet id and DUP set, or, once PUBREC had
    /// arrived, only PUBREL (MQTT 3.1.1 and 5 §4.4).
    pub fn resend(&mut self, msg: &Message, pkid: u16, stage: Stage) -> anyhow::Result<()> {
        if self.slots.get(pkid) != Slot::Free {
            return Err(anyhow!(
                "protocol error: packet id {pkid} is already in use on the resumed session"
            ));
        }
        match stage {
            Stage::Sent => {
                self.publish_as(msg, Some(pkid))?;
            }
            Stage::Released => {
                self.in_flight += 1;
                self.slots.set(pkid, Slot::AwaitPubComp);
                self.wait_for(pkid);
                mqtt::encode_pubrel(pkid, PubRelCode::Success, &mut self.wbuf);
                self.trace_out(format_args!("PUBREL (m{pkid})"));
            }
        }
        Ok(())
    }

    /// The QoS 1/2 publishes still unacknowledged, with how far each got.
    pub fn outstanding(&self) -> Vec<(u16, Stage)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(pkid, slot)| {
                let stage = match slot {
                    Slot::AwaitPubAck | Slot::AwaitPubRec => Stage::Sent,
                    Slot::AwaitPubComp => Stage::Released,
                    _ => return None,
                };
                Some((pkid as u16, stage))
            })
            .collect()
    }

    /// `publish`, or with `again`, a resent PUBLISH with that packet id and DUP set.
    fn publish_as(&mut self, msg: &Message, again: Option<u16>) -> anyhow::Result<u16> {
        let shared = msg.payload.len() >= SHARED_PAYLOAD;
        if shared {
            let (head, room) = self.payload_room(msg);
            if msg.payload.len() > room {
                return Err(self.too_large(mqtt::packet_size(head + msg.payload.len())));
            }
        }
        let pkid = if msg.qos > 0 {
            self.in_flight += 1;
            again.unwrap_or_else(|| self.take_pkid())
        } else {
            0
        };
        let dup = again.is_some();
        let start = self.wbuf.len();
        let encoded = if shared {
            mqtt::encode_publish_head(self.proto, msg, pkid, dup, &mut self.wbuf)
        } else {
            mqtt::encode_publish(self.proto, msg, pkid, dup, &mut self.wbuf)
        };
        let size = self.wbuf.len() - start;
        if let Err(e) = encoded.and_then(|()| {
            if size > self.limits.max_packet {
                Err(self.too_large(size))
            } else {
                Ok(())
            }
        }) {
            self.wbuf.truncate(start);
            if pkid > 0 {
                self.release(pkid);
            }
            return Err(e);
        }
        if shared {
            self.shared.push_back(self.wbuf.split().freeze());
            self.shared.push_back(msg.payload.clone());
        }
        if pkid > 0 {
            let slot = if msg.qos == 1 {
                Slot::AwaitPubAck
            } else {
                Slot::AwaitPubRec
            };
            self.slots.set(pkid, slot);
            self.wait_for(pkid);
        }
        if self.trace.is_some() {
            self.trace_out(format_args!(
                "PUBLISH (d{}, q{}, r{}, m{pkid}, '{}', ... ({} bytes))",
                u8::from(dup),
                msg.qos,
                u8::from(msg.retain),
                String::from_utf8_lossy(&msg.topic),
                msg.payload.len()
            ));
        }
        Ok(pkid)
    }

    /// Starts the acknowledgement timeout of the flow that now holds `pkid`.
    fn wait_for(&mut self, pkid: u16) {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.slot_seq.set(pkid, self.next_seq);
        self.waiting.push_back(Waiting {
            pkid,
            seq: self.next_seq,
            written: None,
        });
    }

    /// Everything queued is written: the timeouts of the packets in it start now.
    fn mark_written(&mut self) {
        let now = Instant::now();
        for w in self.waiting.iter_mut().rev() {
            if w.written.is_some() {
                break;
            }
            w.written = Some(now);
        }
    }

    /// When the oldest acknowledgement still awaited is due, dropping entries already answered.
    fn next_ack_deadline(&mut self) -> Option<Instant> {
        while let Some(w) = self.waiting.front() {
            let slot = self.slots.get(w.pkid);
            if slot.awaits_ack() && self.slot_seq.get(w.pkid) == w.seq {
                return w.written.map(|t| t + self.ack_timeout);
            }
            self.waiting.pop_front();
        }
        None
    }

    /// The oldest awaited acknowledgement is overdue.
    fn ack_overdue(&mut self) -> anyhow::Result<Event> {
        let Some(w) = self.waiting.pop_front() else {
            return Ok(Event::Written);
        };
        let secs = self.ack_timeout.as_secs_f64();
        match self.slots.get(w.pkid) {
            Slot::AwaitSubAck => Err(anyhow!(
                "the broker did not answer SUBSCRIBE within {secs} s (--ack-timeout)"
            )),
            Slot::AwaitUnsubAck => Err(anyhow!(
                "the broker did not answer UNSUBSCRIBE within {secs} s (--ack-timeout)"
            )),
            _ => {
                self.release(w.pkid);
                self.slots.set(w.pkid, Slot::Abandoned);
                Ok(Event::Unacknowledged { pkid: w.pkid })
            }
        }
    }

    fn too_large(&self, size: usize) -> anyhow::Error {
        TooLarge {
            size,
            max_packet: self.limits.max_packet,
        }
        .into()
    }

    fn take_pkid(&mut self) -> u16 {
        // The window is far below 65535, so a free id is always near.
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if self.slots.get(self.next_pkid) == Slot::Free {
                return self.next_pkid;
            }
        }
    }

    fn release(&mut self, pkid: u16) {
        self.slots.set(pkid, Slot::Free);
        self.in_flight -= 1;
    }

    /// Writes what is queued, reads what arrives and keeps the connection alive until there
    /// is something to report. Cancel-safe: nothing is lost if another branch wins a select.
    pub async fn poll(&mut self) -> anyhow::Result<Event> {
        loop {
            while let Some(p) = self.decode()? {
                if let Some(event) = self.handle(p)? {
                    return Ok(event);
                }
            }
            let ping_due = self
                .keepalive
                .map(|k| self.last_sent + k)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400));
            let writing = self.unwritten();
            let ack_due = self.next_ack_deadline();
            tokio::select! {
                r = write_some(&mut self.writer, &mut self.shared, &mut self.wbuf), if writing => {
                    r.map_err(lost)?;
                    self.last_sent = Instant::now();
                    if !self.unwritten() {
                        self.mark_written();
                        return Ok(Event::Written);
                    }
                }
                _ = sleep_until(ack_due.unwrap_or_else(Instant::now)), if ack_due.is_some() => {
                    return self.ack_overdue();
                }
                r = self.reader.read(&mut self.rbuf) => {
                    if r.map_err(lost)? == 0 {
                        return Err(anyhow!("the broker closed the connection"));
                    }
                }
                _ = sleep_until(ping_due), if self.keepalive.is_some() => {
                    if self.ping_sent.is_some() {
                        return Err(anyhow!("the broker stopped answering (no PINGRESP within the keep-alive)"));
                    }
                    mqtt::encode_pingreq(&mut self.wbuf);
                    self.trace_out(format_args!("PINGREQ"));
                    self.ping_sent = Some(Instant::now());
                    self.last_sent = Instant::now();
                }
            }
        }
    }

    /// The next whole packet from the broker, if one has arrived.
    fn decode(&mut self) -> anyhow::Result<Option<ServerPacket>> {
        mqtt::decode_server(self.proto, &mut self.rbuf, self.max_in).map_err(refused)
    }

    fn handle(&mut self, p: ServerPacket) -> anyhow::Result<Option<Event>> {
        match p {
            ServerPacket::PubAck { pkid, code } => {
                let code = code.number();
                self.trace_in(format_args!("PUBACK (Mid: {pkid}, RC:{code})"));
                if self.slots.get(pkid) == Slot::AwaitPubRec {
                    let mismatch = Mismatch {
                        sent: 2,
                        answered: 1,
                    };
                    return Ok(self.complete(pkid, code, Slot::AwaitPubRec, Some(mismatch)));
                }
                Ok(self.complete(pkid, code, Slot::AwaitPubAck, None))
            }
            ServerPacket::PubRec { pkid, code } => {
                let code = code.number();
                self.trace_in(format_args!("PUBREC (Mid: {pkid}, RC:{code})"));
                if code >= 0x80 {
                    return Ok(self.complete(pkid, code, Slot::AwaitPubRec, None));
                }
                let mut event = None;
                match self.slots.get(pkid) {
                    Slot::AwaitPubRec => self.slots.set(pkid, Slot::AwaitPubComp),
                    Slot::AwaitPubAck => {
                        let mismatch = Mismatch {
                            sent: 1,
                            answered: 2,
                        };
                        event = self.complete(pkid, code, Slot::AwaitPubAck, Some(mismatch));
                        self.slots.set(pkid, Slot::AwaitStrayComp);
                    }
                    _ => {}
                }
                // PUBREL is owed even for an id we no longer track (MQTT 5 §4.3.3).
                mqtt::encode_pubrel(pkid, PubRelCode::Success, &mut self.wbuf);
                self.trace_out(format_args!("PUBREL (m{pkid})"));
                Ok(event)
            }
            ServerPacket::PubComp { pkid, code } => {
                let code = code.number();
                self.trace_in(format_args!("PUBCOMP (Mid: {pkid}, RC:{code})"));
                if self.slots.get(pkid) == Slot::AwaitStrayComp {
                    self.slots.set(pkid, Slot::Free);
                    return Ok(None);
                }
                Ok(self.complete(pkid, code, Slot::AwaitPubComp, None))
            }
            ServerPacket::PingResp => {
                self.trace_in(format_args!("PINGRESP"));
                self.ping_sent = None;
                Ok(None)
            }
            ServerPacket::Publish { msg, pkid, dup } => {
                let msg = self.unalias(msg)?;
                if self.trace.is_some() {
                    self.trace_in(format_args!(
                        "PUBLISH (d{}, q{}, r{}, m{pkid}, '{}', ... ({} bytes))",
                        u8::from(dup),
                        msg.qos,
                        u8::from(msg.retain),
                        String::from_utf8_lossy(&msg.topic),
                        msg.payload.len()
                    ));
                }
                match msg.qos {
                    1 => mqtt::encode_puback(pkid, PubAckCode::Success, &mut self.wbuf),
                    2 => {
                        mqtt::encode_pubrec(pkid, PubAckCode::Success, &mut self.wbuf);
                        let seen = self.awaiting_rel.get(pkid);
                        self.awaiting_rel.set(pkid, true);
                        if seen {
                            return Ok(None);
                        }
                    }
                    _ => {}
                }
                Ok(Some(Event::Message { msg, mid: pkid }))
            }
            ServerPacket::PubRel { pkid, .. } => {
                self.trace_in(format_args!("PUBREL (Mid: {pkid})"));
                self.awaiting_rel.set(pkid, false);
                mqtt::encode_pubcomp(pkid, PubRelCode::Success, &mut self.wbuf);
                Ok(None)
            }
            ServerPacket::SubAck { pkid, codes } => {
                let codes: Vec<u8> = codes.into_iter().map(|c| c.number()).collect();
                self.trace_in(format_args!("SUBACK (Mid: {pkid}, codes {codes:?})"));
                if self.slots.get(pkid) != Slot::AwaitSubAck {
                    return Ok(None);
                }
                self.slots.set(pkid, Slot::Free);
                Ok(Some(Event::SubAck { codes }))
            }
            ServerPacket::UnsubAck { pkid, .. } => {
                self.trace_in(format_args!("UNSUBACK (Mid: {pkid})"));
                if self.slots.get(pkid) != Slot::AwaitUnsubAck {
                    return Ok(None);
                }
                self.slots.set(pkid, Slot::Free);
                Ok(Some(Event::UnsubAck))
            }
            ServerPacket::Disconnect(d) => {
                let (code, why) = (d.code.number(), d.reason);
                self.trace_in(format_args!("DISCONNECT ({code})"));
                let mut text = reason::disconnect(code).to_owned();
                if let Some(w) = why {
                    text = format!("{text}: {w}");
                }
                Err(anyhow!("the broker disconnected: {text} (0x{code:02X})"))
            }
            ServerPacket::ConnAck(_) => Err(anyhow!("protocol error: a second CONNACK")),
            ServerPacket::Auth(code) => Err(anyhow!(
                "protocol error: the broker sent AUTH (reason code {:#04x}), which smq never asks for",
                code.number()
            )),
        }
    }

    /// The topic of a PUBLISH that came with a topic alias: set by it, or looked up.
    fn unalias(&mut self, mut msg: Message) -> anyhow::Result<Message> {
        let Some(alias) = msg.props.as_ref().and_then(|p| p.topic_alias) else {
            return Ok(msg);
        };
        if alias == 0 || alias > self.aliases_in_max {
            return Err(anyhow!(
                "protocol error: the broker sent topic alias {alias}, outside the 1 to {} this client allows (-D connect topic-alias-maximum)",
                self.aliases_in_max
            ));
        }
        if msg.topic.is_empty() {
            msg.topic = self.aliases_in.get(&alias).cloned().ok_or_else(|| {
                anyhow!("protocol error: the broker sent topic alias {alias} before setting it")
            })?;
        } else {
            // A topic is a slice of the whole read buffer: the map keeps its own copy.
            let topic = Bytes::copy_from_slice(&msg.topic);
            let old = self.aliases_in.insert(alias, topic).map_or(0, |t| t.len());
            self.aliases_in_bytes = self.aliases_in_bytes + msg.topic.len() - old;
            if self.aliases_in_bytes > ALIASES_IN_BYTES {
                return Err(anyhow!(
                    "protocol error: the broker's topic aliases stand for more than {} KiB of topics",
                    ALIASES_IN_BYTES / 1024
                ));
            }
        }
        Ok(msg)
    }

    fn complete(
        &mut self,
        pkid: u16,
        code: u8,
        expected: Slot,
        mismatch: Option<Mismatch>,
    ) -> Option<Event> {
        match self.slots.get(pkid) {
            s if s == expected => {}
            Slot::Abandoned => {
                // Too late: reported as unacknowledged already; the id is free again.
                self.slots.set(pkid, Slot::Free);
                return None;
            }
            _ => return None,
        }
        self.release(pkid);
        Some(Event::Delivered {
            pkid,
            code,
            mismatch,
        })
    }

    /// Sends DISCONNECT and closes the stream. If the broker may still send us something
    /// (a subscription, an ack or PINGRESP outstanding), waits briefly for it to close its side
    /// first: closing a socket with unread data sends a reset, which can make the broker drop
    /// what it has not read yet, our DISCONNECT included, and publish our will.
    pub async fn disconnect(mut self, props: Option<DisconnectProperties>) -> anyhow::Result<()> {
        let p = props.unwrap_or_default();
        mqtt::encode_client_disconnect(
            self.proto == Protocol::V5,
            ClientDisconnectCode::Success,
            p.session_expiry,
            p.reason.as_deref(),
            &p.user_properties,
            &mut self.wbuf,
        )?;
        self.trace_out(format_args!("DISCONNECT"));
        let close = async {
            while self.unwritten() {
                write_some(&mut self.writer, &mut self.shared, &mut self.wbuf)
                    .await
                    .map_err(lost)?;
            }
            // The broker may already have closed after reading DISCONNECT.
            let _ = self.writer.shutdown().await;
            if self.may_send_more() {
                while self.reader.read(&mut self.rbuf).await.unwrap_or(0) > 0 {
                    self.rbuf.clear();
                }
            }
            anyhow::Ok(())
        };
        match timeout(CLOSE_TIMEOUT, close).await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }

    fn may_send_more(&self) -> bool {
        self.subscribed || self.in_flight > 0 || self.ping_sent.is_some()
    }

    fn trace_out(&self, what: fmt::Arguments<'_>) {
        self.trace("sending", what);
    }

    fn trace_in(&self, what: fmt::Arguments<'_>) {
        self.trace("received", what);
    }

    fn trace(&self, dir: &str, what: fmt::Arguments<'_>) {
        if let Some(id) = &self.trace {
            let _ = writeln!(io::stderr().lock(), "Client {id} {dir} {what}");
        }
    }
}

/// Writes some of what is queued, shared payloads first. Cancel-safe, as the writes are.
async fn write_some(
    writer: &mut Writer,
    shared: &mut VecDeque<Bytes>,
    wbuf: &mut BytesMut,
) -> io::Result<()> {
    match shared.front_mut() {
        Some(chunk) => {
            writer.write_shared(chunk).await?;
            if chunk.is_empty() {
                shared.pop_front();
            }
            Ok(())
        }
        None => writer.write(wbuf).await,
    }
}

/// CONNACK's code as a number in the broker's own protocol: a 3.1.1 return code when it
/// answered the 3.1.1 way, which is how `-V auto` tells a broker that does not speak 5.
fn connack_number(proto: Protocol, ack: &mqtt::ConnAck) -> u8 {
    if proto == Protocol::V311 || ack.v311_answer {
        ReasonCode::from(ack.code).v311_connack()
    } else {
        ack.code.number()
    }
}

/// A packet from the broker that breaks the protocol.
fn refused(v: Violation) -> anyhow::Error {
    match v.code {
        ReasonCode::PacketTooLarge => anyhow!("the broker sent {}", v.why),
        ReasonCode::MalformedPacket => anyhow!("the broker sent a malformed packet: {}", v.why),
        _ => anyhow!("protocol error from the broker: {}", v.why),
    }
}

fn lost(e: io::Error) -> anyhow::Error {
    // Stringified on purpose: an io::Error left in the chain would read as a closed stdout.
    anyhow!("connection lost: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{ConnAck, ConnAckCode};

    #[test]
    fn connack_codes_are_numbered_in_the_brokers_own_protocol() {
        let refused = |code| ConnAck::refused(code);
        let not_authorized = refused(ConnAckCode::NotAuthorized);
        assert_eq!(connack_number(Protocol::V311, &not_authorized), 5);
        assert_eq!(connack_number(Protocol::V5, &not_authorized), 0x87);
        // A broker that answers a v5 CONNECT the 3.1.1 way: its 3.1.1 return code, which is
        // what -V auto falls back on.
        let old = ConnAck {
            v311_answer: true,
            ..refused(ConnAckCode::UnsupportedProtocolVersion)
        };
        assert_eq!(connack_number(Protocol::V5, &old), 1);
        assert_eq!(connack_number(Protocol::V5, &ConnAck::default()), 0);
    }

    #[test]
    fn a_bad_packet_from_the_broker_is_named_for_what_is_wrong() {
        let said = |raw: &[u8], max| {
            let mut buf = BytesMut::from(raw);
            let v = mqtt::decode_server(Protocol::V5, &mut buf, max).unwrap_err();
            refused(v).to_string()
        };
        assert_eq!(
            said(&[0x90, 4, 0, 1, 0, 0x03], MAX_PACKET),
            "protocol error from the broker: SUBACK with reason code 0x03, not one defined for it"
        );
        assert!(
            said(&[0x40, 1, 0], MAX_PACKET).starts_with("the broker sent a malformed packet: "),
            "{}",
            said(&[0x40, 1, 0], MAX_PACKET)
        );
        assert_eq!(
            said(&[0x30, 100], 10),
            "the broker sent a 102-byte packet, larger than the 10 bytes allowed"
        );
    }
}
