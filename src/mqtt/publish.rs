//! PUBLISH (3.1.1 §3.3, 5.0 §3.3), in both directions: the application message it carries,
//! the decoder (a client's PUBLISH to the broker, the broker's to a client), topic name
//! checks on the wire, and the encoder, whose head (everything before the payload) can be
//! made once and shared by many packets.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::props::{self, PublishProperties, id, int};
use super::protocol::Protocol;
use super::reason::ReasonCode;
use super::violation::Violation;
use super::wire::{MAX_REMAINING_LENGTH, Reader, packet_size, put_binary, put_varint, varint_len};

/// An application message, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub props: Option<PublishProperties>,
}

/// Who sent the PUBLISH: a client may not give Subscription Identifiers [MQTT-3.3.4-6]; a
/// server gives one per matching subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    Client,
    Server,
}

/// Why `topic` cannot be a PUBLISH topic name, with the reason code, if it cannot.
/// `alias` says whether a topic alias stands in for an empty name.
pub(super) fn topic_name_error(topic: &[u8], alias: bool) -> Option<(ReasonCode, &'static str)> {
    // Every PUBLISH comes through here: settle the common case (ASCII) without a UTF-8 pass.
    if plain_ascii(topic) && (alias || !topic.is_empty()) {
        return None;
    }
    if let Some(&b) = topic.iter().find(|&&b| matches!(b, 0 | b'+' | b'#')) {
        return Some(if b == 0 {
            (
                ReasonCode::MalformedPacket,
                "it contains U+0000 [MQTT-1.5.3-2]",
            )
        } else {
            (
                ReasonCode::TopicNameInvalid,
                "wildcards are not allowed in a topic name [MQTT-3.3.2-2]",
            )
        });
    }
    if std::str::from_utf8(topic).is_err() {
        return Some((
            ReasonCode::MalformedPacket,
            "it is not well-formed UTF-8 [MQTT-1.5.3-1]",
        ));
    }
    if topic.is_empty() && !alias {
        // 3.1.1 [MQTT-4.7.3-1]; 5.0 §3.3.2.1: empty without a Topic Alias is a protocol error.
        return Some((
            ReasonCode::ProtocolError,
            "an empty topic name without a topic alias [MQTT-4.7.3-1]",
        ));
    }
    None
}

/// Whether `t` is ASCII without NUL, `+` or `#`, checked eight bytes at a time rather than
/// one (topics are typically 20-40 bytes).
fn plain_ascii(t: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of x is zero (the classic "haszero" bit trick).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = t.chunks_exact(8);
    for chunk in &mut chunks {
        // A chunk is always 8 bytes; HIGH (treated as "not plain") can never be needed.
        let x = chunk.try_into().map_or(HIGH, u64::from_le_bytes);
        let bad = (x & HIGH)
            | zero_byte(x)
            | zero_byte(x ^ (ONES * u64::from(b'+')))
            | zero_byte(x ^ (ONES * u64::from(b'#')));
        if bad != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b.is_ascii() && !matches!(b, 0 | b'+' | b'#'))
}

/// The fixed header's flag rules for PUBLISH: QoS 3 and DUP at QoS 0 are malformed.
pub(super) fn check_flags(byte1: u8) -> Result<(), Violation> {
    let qos = (byte1 >> 1) & 0x03;
    if qos == 3 {
        return Err(Violation::malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]"));
    }
    if qos == 0 && byte1 & 0x08 != 0 {
        return Err(Violation::malformed(
            "PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]",
        ));
    }
    Ok(())
}

/// Decodes the whole PUBLISH at the front of `buf` (`header` and `size` from the fixed
/// header) and takes it off: (message, packet id, dup).
pub(super) fn decode(
    proto: Protocol,
    from: Sender,
    byte1: u8,
    header: usize,
    size: usize,
    buf: &mut BytesMut,
) -> Result<(Message, u16, bool), Violation> {
    let qos = (byte1 >> 1) & 0x03;
    let dup = byte1 & 0x08 != 0;
    let retain = byte1 & 0x01 != 0;
    let body = buf.get(header..size).unwrap_or_default();
    let mut r = Reader::new(body, "PUBLISH");
    let topic = r.binary()?;
    let topic_len = topic.len();
    let pkid = if qos > 0 {
        let pkid = r.u16()?;
        if pkid == 0 {
            return Err(Violation::protocol(
                "PUBLISH at QoS > 0 with packet identifier 0 [MQTT-2.3.1-1]",
            ));
        }
        pkid
    } else {
        0
    };
    let props = if proto == Protocol::V5 {
        properties(&mut r, from)?
    } else {
        None
    };
    let alias = props.as_ref().is_some_and(|p| p.topic_alias.is_some());
    if let Some((code, why)) = topic_name_error(topic, alias) {
        return Err(Violation::new(code, format!("PUBLISH topic: {why}")));
    }
    // 5.0 §3.3.2.3.2: a receiver may check a payload declared UTF-8, and answer PUBACK,
    // PUBREC or DISCONNECT 0x99. Checking here keeps invalid text away from every subscriber.
    if props
        .as_ref()
        .is_some_and(|p| p.payload_format_indicator == Some(1))
        && std::str::from_utf8(r.b).is_err()
    {
        return Err(Violation::new(
            ReasonCode::PayloadFormatInvalid,
            "PUBLISH payload is declared UTF-8 but is not (5.0 §3.3.2.3.2)",
        ));
    }
    // One allocation for topic and payload (and the few bytes between them).
    let payload_start = size - r.len();
    let owned = Bytes::copy_from_slice(buf.get(header + 2..size).unwrap_or_default());
    let topic = owned.slice(..topic_len);
    let payload = owned.slice(payload_start - header - 2..);
    buf.advance(size);
    let msg = Message {
        topic,
        payload,
        qos,
        retain,
        props,
    };
    Ok((msg, pkid, dup))
}

fn properties(r: &mut Reader<'_>, from: Sender) -> Result<Option<PublishProperties>, Violation> {
    // Most PUBLISHes have none: skip building anything.
    if r.b.first() == Some(&0) {
        r.u8()?;
        return Ok(None);
    }
    let mut props = PublishProperties::default();
    let repeatable = match from {
        Sender::Client => props::REPEAT_USER,
        Sender::Server => props::REPEAT_USER | props::id::set(&[id::SUBSCRIPTION_ID]),
    };
    props::read_repeating(r, props::PUBLISH, repeatable, |id, v| match id {
        id::TOPIC_ALIAS => {
            let alias = u16::try_from(int(&v)).unwrap_or(0);
            if alias == 0 {
                return Err(Violation::protocol("PUBLISH: Topic Alias 0 [MQTT-3.3.2-8]"));
            }
            props.topic_alias = Some(alias);
            Ok(())
        }
        id::SUBSCRIPTION_ID if from == Sender::Client => Err(Violation::protocol(
            "PUBLISH from a client with a Subscription Identifier [MQTT-3.3.4-6]",
        )),
        id::SUBSCRIPTION_ID => {
            // 5.0 §3.3.2.3.8: 1 to 268,435,455.
            if int(&v) == 0 {
                return Err(Violation::protocol("PUBLISH: Subscription Identifier 0"));
            }
            props.subscription_identifiers.push(int(&v) as usize);
            Ok(())
        }
        _ => props::message_property("PUBLISH", &mut props, id, v),
    })?;
    Ok(Some(props))
}

/// The first byte and the variable header (topic, packet id, properties) of a PUBLISH, and
/// where in the variable header the packet id is.
fn head(
    proto: Protocol,
    msg: &Message,
    pkid: u16,
    dup: bool,
) -> anyhow::Result<(u8, BytesMut, Option<usize>)> {
    if msg.topic.len() > usize::from(u16::MAX) {
        anyhow::bail!("cannot encode packet: a topic longer than 65535 bytes");
    }
    if proto == Protocol::V311 && std::str::from_utf8(&msg.topic).is_err() {
        anyhow::bail!("topic is not UTF-8");
    }
    if msg.qos > 0 && pkid == 0 {
        anyhow::bail!(
            "cannot encode packet: QoS {} with packet identifier 0",
            msg.qos
        );
    }
    let props = match proto {
        Protocol::V5 => msg.props.as_ref(),
        Protocol::V311 => None,
    };
    if let Some(n) = props.and_then(|p| props::too_long(&p.strings())) {
        anyhow::bail!("cannot encode packet: a {n}-byte property, longer than MQTT allows");
    }
    let byte1 = 0x30 | u8::from(msg.retain) | (msg.qos.min(2) << 1) | (u8::from(dup) << 3);
    let props_len = props.map_or(0, PublishProperties::len);
    let mut body = BytesMut::with_capacity(2 + msg.topic.len() + 2 + 4 + props_len);
    put_binary(&mut body, &msg.topic);
    let pkid_at = (msg.qos > 0).then(|| {
        let at = body.len();
        body.put_u16(pkid);
        at
    });
    if proto == Protocol::V5 {
        match props {
            Some(p) => p.write(&mut body),
            None => put_varint(&mut body, 0),
        }
    }
    Ok((byte1, body, pkid_at))
}

/// Encodes a whole PUBLISH.
pub fn encode_publish(
    proto: Protocol,
    msg: &Message,
    pkid: u16,
    dup: bool,
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    let h = PublishHead::new(proto, msg, pkid, dup)?;
    h.write(pkid, &msg.payload, buf);
    Ok(())
}

/// The PUBLISH for `msg` up to its payload, with a remaining length that counts
/// `msg.payload`: the caller sends the payload after it as it is, so a large one is never
/// copied into the packet.
pub fn encode_publish_head(
    proto: Protocol,
    msg: &Message,
    pkid: u16,
    dup: bool,
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    let h = PublishHead::new(proto, msg, pkid, dup)?;
    buf.put_slice(&h.bytes);
    Ok(())
}

/// How many bytes a PUBLISH like `msg` (its payload aside) takes after the fixed header,
/// and the largest payload it can carry in a packet of at most `max_packet` bytes (0 when the
/// topic and properties alone do not fit).
pub fn payload_room(proto: Protocol, msg: &Message, max_packet: usize) -> (usize, usize) {
    // A topic or property that cannot be encoded fails later, when the message is encoded.
    let head = head(proto, msg, 1, false).map_or(0, |(_, body, _)| body.len());
    let mut remaining = MAX_REMAINING_LENGTH.min(max_packet.saturating_sub(2));
    while remaining > 0 && packet_size(remaining) > max_packet {
        remaining -= 1;
    }
    (head, remaining.saturating_sub(head))
}

const NO_PKID: u32 = u32::MAX;

/// A PUBLISH encoded up to its payload, once, for every packet of the same shape (protocol,
/// QoS, retain, DUP, properties, payload length): each copy gets its own packet id.
#[derive(Debug, Clone)]
pub struct PublishHead {
    /// Fixed header and variable header; its remaining length counts the payload.
    bytes: Bytes,
    /// Where the packet id is in `bytes`, at QoS 1 and 2 (at QoS 0: `NO_PKID`). A u32 keeps
    /// the head small: one is held for every routed message that many sessions share.
    pkid_at: u32,
}

impl PublishHead {
    /// At QoS 1 and 2 `pkid` must not be 0; [`PublishHead::write`] puts each packet's own.
    pub fn new(
        proto: Protocol,
        msg: &Message,
        pkid: u16,
        dup: bool,
    ) -> anyhow::Result<PublishHead> {
        let (byte1, body, pkid_at) = head(proto, msg, pkid, dup)?;
        let remaining = body.len() + msg.payload.len();
        if remaining > MAX_REMAINING_LENGTH {
            anyhow::bail!(
                "cannot encode packet: a remaining length of {remaining} bytes is more than MQTT allows"
            );
        }
        let mut bytes = BytesMut::with_capacity(1 + varint_len(remaining) + body.len());
        bytes.put_u8(byte1);
        put_varint(&mut bytes, remaining);
        let fixed = bytes.len();
        bytes.put_slice(&body);
        Ok(PublishHead {
            bytes: bytes.freeze(),
            // At most 5 + 2 + 65535: a u32 holds it.
            pkid_at: pkid_at.map_or(NO_PKID, |at| (fixed + at) as u32),
        })
    }

    /// The whole packet's size with its payload.
    pub fn packet_len(&self, payload: usize) -> usize {
        self.bytes.len() + payload
    }

    /// Appends the packet: this head with `pkid` in it, then `payload` (which must be the
    /// length the head was made for).
    pub fn write(&self, pkid: u16, payload: &[u8], buf: &mut BytesMut) {
        buf.reserve(self.bytes.len() + payload.len());
        let start = buf.len();
        buf.put_slice(&self.bytes);
        if self.pkid_at != NO_PKID {
            let at = start + self.pkid_at as usize;
            buf[at..at + 2].copy_from_slice(&pkid.to_be_bytes());
        }
        buf.put_slice(payload);
    }
}
