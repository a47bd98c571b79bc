//! MQTT 3.1.1 and 5 packets as smq sees them: one neutral shape for both versions.
//!
//! PUBLISH, CONNECT, SUBSCRIBE and DISCONNECT go through rumqttc's codec (`mqttbytes`), which
//! knows every v5 property. Acknowledgements are decoded here, because the codec folds their
//! reason codes into enums that lose the number, and the number is what smq reports.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::{self as v4codec, v4};
use rumqttc::v5::mqttbytes::{self as v5codec, v5};

pub use v5::{
    ConnectProperties, DisconnectProperties, LastWillProperties, PublishProperties,
    SubscribeProperties, UnsubscribeProperties,
};

/// MQTT's largest Remaining Length (four varint bytes).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
/// The largest packet MQTT can express: a fixed header of 5 bytes and the largest remaining length.
pub const MAX_PACKET: usize = MAX_REMAINING_LENGTH + 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V311,
    V5,
}

/// An application message, in either direction.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub props: Option<PublishProperties>,
}

#[derive(Debug)]
pub enum Incoming {
    ConnAck {
        session_present: bool,
        code: u8,
        props: Option<v5::ConnAckProperties>,
    },
    Publish {
        msg: Message,
        pkid: u16,
    },
    PubAck {
        pkid: u16,
        code: u8,
    },
    PubRec {
        pkid: u16,
        code: u8,
    },
    PubRel {
        pkid: u16,
    },
    PubComp {
        pkid: u16,
        code: u8,
    },
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    UnsubAck {
        pkid: u16,
    },
    PingResp,
    Disconnect {
        code: u8,
        reason: Option<String>,
    },
    /// A packet a client never receives (CONNECT, SUBSCRIBE, ...): a protocol error.
    Unexpected(&'static str),
}

#[derive(Debug)]
pub enum DecodeError {
    TooLarge { size: usize, max: usize },
    Malformed(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge { size, max } => write!(
                f,
                "the broker sent a {size}-byte packet, larger than the {max} bytes allowed"
            ),
            DecodeError::Malformed(why) => write!(f, "the broker sent a malformed packet: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn malformed(why: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(why.into())
}

/// Reads the fixed header: (first byte, header length, remaining length), or None if incomplete.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, DecodeError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((byte1, 2 + i, len)));
        }
    }
    Err(malformed("remaining length longer than 4 bytes"))
}

/// Takes one whole packet off the front of `buf`, or returns None until one has arrived.
pub fn decode(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Incoming>, DecodeError> {
    let Some((byte1, header_len, remaining)) = fixed_header(buf)? else {
        return Ok(None);
    };
    let size = header_len + remaining;
    if size > max {
        return Err(DecodeError::TooLarge { size, max });
    }
    if buf.len() < size {
        buf.reserve(size - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(size);
    if byte1 >> 4 == 3 {
        return decode_publish(proto, &mut frame).map(Some);
    }
    frame.advance(header_len);
    let mut body = frame.freeze();
    let incoming = match byte1 >> 4 {
        2 => {
            let flags = take_u8(&mut body)?;
            let code = take_u8(&mut body)?;
            // A 3.1.1-only broker answers a v5 CONNECT with a 2-byte CONNACK.
            let props = match proto {
                Protocol::V5 if !body.is_empty() => v5::ConnAckProperties::read(&mut body)
                    .map_err(|e| malformed(format!("CONNACK properties: {e}")))?,
                _ => None,
            };
            Incoming::ConnAck {
                session_present: flags & 1 == 1,
                code,
                props,
            }
        }
        4 => {
            let (pkid, code) = ack(&mut body)?;
            Incoming::PubAck { pkid, code }
        }
        5 => {
            let (pkid, code) = ack(&mut body)?;
            Incoming::PubRec { pkid, code }
        }
        6 => Incoming::PubRel {
            pkid: ack(&mut body)?.0,
        },
        7 => {
            let (pkid, code) = ack(&mut body)?;
            Incoming::PubComp { pkid, code }
        }
        13 => Incoming::PingResp,
        14 => {
            let code = if body.is_empty() {
                0
            } else {
                take_u8(&mut body)?
            };
            let reason = if body.is_empty() {
                None
            } else {
                reason_string(&mut body)
            };
            Incoming::Disconnect { code, reason }
        }
        1 => Incoming::Unexpected("CONNECT"),
        8 => Incoming::Unexpected("SUBSCRIBE"),
        9 => {
            let (pkid, codes) = sub_ack(proto, &mut body)?;
            Incoming::SubAck { pkid, codes }
        }
        10 => Incoming::Unexpected("UNSUBSCRIBE"),
        11 => {
            let (pkid, _codes) = sub_ack(proto, &mut body)?;
            Incoming::UnsubAck { pkid }
        }
        12 => Incoming::Unexpected("PINGREQ"),
        15 => Incoming::Unexpected("AUTH"),
        _ => return Err(malformed("packet type 0")),
    };
    Ok(Some(incoming))
}

fn decode_publish(proto: Protocol, frame: &mut BytesMut) -> Result<Incoming, DecodeError> {
    let err = |e: &dyn std::fmt::Display| malformed(format!("PUBLISH: {e}"));
    let (msg, pkid) = match proto {
        Protocol::V311 => match v4::Packet::read(frame, MAX_PACKET).map_err(|e| err(&e))? {
            v4::Packet::Publish(p) => (
                Message {
                    topic: Bytes::from(p.topic.into_bytes()),
                    payload: p.payload,
                    qos: p.qos as u8,
                    retain: p.retain,
                    props: None,
                },
                p.pkid,
            ),
            _ => return Err(malformed("PUBLISH did not decode as PUBLISH")),
        },
        Protocol::V5 => match v5::Packet::read(frame, None).map_err(|e| err(&e))? {
            v5::Packet::Publish(p) => (
                Message {
                    topic: p.topic,
                    payload: p.payload,
                    qos: p.qos as u8,
                    retain: p.retain,
                    props: p.properties,
                },
                p.pkid,
            ),
            _ => return Err(malformed("PUBLISH did not decode as PUBLISH")),
        },
    };
    Ok(Incoming::Publish { msg, pkid })
}

fn take_u8(body: &mut Bytes) -> Result<u8, DecodeError> {
    if body.is_empty() {
        return Err(malformed("packet ends early"));
    }
    Ok(body.get_u8())
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id, then in v5 an optional reason code.
fn ack(body: &mut Bytes) -> Result<(u16, u8), DecodeError> {
    if body.len() < 2 {
        return Err(malformed("acknowledgement without a packet id"));
    }
    let pkid = body.get_u16();
    let code = if body.is_empty() { 0 } else { body.get_u8() };
    Ok((pkid, code))
}

/// SUBACK and UNSUBACK: a packet id, v5 properties (skipped), then one code per filter
/// (none in a 3.1.1 UNSUBACK).
fn sub_ack(proto: Protocol, body: &mut Bytes) -> Result<(u16, Vec<u8>), DecodeError> {
    if body.len() < 2 {
        return Err(malformed("SUBACK/UNSUBACK without a packet id"));
    }
    let pkid = body.get_u16();
    if proto == Protocol::V5 {
        let len = varint(body).ok_or_else(|| malformed("bad property length"))?;
        if body.len() < len {
            return Err(malformed("properties longer than the packet"));
        }
        body.advance(len);
    }
    Ok((pkid, body.to_vec()))
}

fn varint(body: &mut Bytes) -> Option<usize> {
    let mut len = 0usize;
    for i in 0..4 {
        let b = *body.first()?;
        body.advance(1);
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(len);
        }
    }
    None
}

/// Whether `buf` starts with a whole packet, i.e. decoding will not wait for the network.
pub fn has_whole_packet(buf: &[u8]) -> bool {
    matches!(fixed_header(buf), Ok(Some((_, h, len))) if buf.len() >= h + len)
}

/// The v5 DISCONNECT reason string, if its properties carry one.
fn reason_string(body: &mut Bytes) -> Option<String> {
    // Property length, then (id, value) pairs; only 0x1F (reason string) is wanted.
    let len = varint(body)?;
    let mut props = body.split_to(len.min(body.len()));
    let string = |props: &mut Bytes| -> Option<Bytes> {
        let n = usize::from(props.try_get_u16().ok()?);
        (props.len() >= n).then(|| props.split_to(n))
    };
    while !props.is_empty() {
        match props.get_u8() {
            0x1F => return Some(String::from_utf8_lossy(&string(&mut props)?).into_owned()),
            0x1C => {
                string(&mut props)?;
            }
            0x11 => props.advance(4.min(props.len())),
            0x26 => {
                string(&mut props)?;
                string(&mut props)?;
            }
            _ => return None,
        }
    }
    None
}

/// Everything CONNECT carries.
pub struct Connect<'a> {
    /// MQTT 3.1 rather than 3.1.1 (with `Protocol::V311`).
    pub mqtt31: bool,
    pub client_id: &'a str,
    pub keepalive: u16,
    pub clean: bool,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub will: Option<&'a Will>,
    pub props: Option<ConnectProperties>,
}

#[derive(Debug, Clone)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub props: Option<LastWillProperties>,
}

fn qos4(q: u8) -> v4codec::QoS {
    match q {
        0 => v4codec::QoS::AtMostOnce,
        1 => v4codec::QoS::AtLeastOnce,
        _ => v4codec::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> v5codec::QoS {
    match q {
        0 => v5codec::QoS::AtMostOnce,
        1 => v5codec::QoS::AtLeastOnce,
        _ => v5codec::QoS::ExactlyOnce,
    }
}

/// The codec reports only "too large" or "bad string"; both are our fault, never the broker's.
fn encoded(r: Result<usize, impl std::fmt::Display>) -> anyhow::Result<()> {
    r.map(|_| ())
        .map_err(|e| anyhow::anyhow!("cannot encode packet: {e}"))
}

pub fn encode_connect(proto: Protocol, c: &Connect<'_>, buf: &mut BytesMut) -> anyhow::Result<()> {
    match proto {
        Protocol::V311 => {
            let packet = v4::Connect {
                protocol: v4codec::Protocol::V4,
                keep_alive: c.keepalive,
                client_id: c.client_id.to_owned(),
                clean_session: c.clean,
                last_will: c.will.map(|w| v4::LastWill {
                    topic: w.topic.clone(),
                    message: w.payload.clone(),
                    qos: qos4(w.qos),
                    retain: w.retain,
                }),
                login: c.username.map(|u| v4::Login {
                    username: u.to_owned(),
                    password: c.password.unwrap_or_default().to_owned(),
                }),
            };
            if !c.mqtt31 {
                return encoded(v4::Packet::Connect(packet).write(buf, MAX_PACKET));
            }
            let mut v4 = BytesMut::new();
            encoded(v4::Packet::Connect(packet).write(&mut v4, MAX_PACKET))?;
            as_mqtt31(&v4, buf)
        }
        Protocol::V5 => {
            let packet = v5::Connect {
                keep_alive: c.keepalive,
                client_id: c.client_id.to_owned(),
                clean_start: c.clean,
                properties: c.props.clone(),
            };
            let will = c.will.map(|w| v5::LastWill {
                topic: Bytes::copy_from_slice(w.topic.as_bytes()),
                message: w.payload.clone(),
                qos: qos5(w.qos),
                retain: w.retain,
                properties: w.props.clone(),
            });
            let login = c.username.map(|u| v5::Login {
                username: u.to_owned(),
                password: c.password.unwrap_or_default().to_owned(),
            });
            encoded(v5::Packet::Connect(packet, will, login).write(buf, None))
        }
    }
}

/// Rewrites a 3.1.1 CONNECT as 3.1: protocol name `MQIsdp`, level 3, the rest unchanged.
fn as_mqtt31(connect: &[u8], buf: &mut BytesMut) -> anyhow::Result<()> {
    const V311: &[u8] = b"\x00\x04MQTT\x04";
    let header = fixed_header(connect).ok().flatten();
    let Some((_, header_len, remaining)) = header.filter(|h| connect[h.1..].starts_with(V311))
    else {
        return Err(anyhow::anyhow!("cannot encode packet: not a 3.1.1 CONNECT"));
    };
    buf.put_u8(0x10);
    put_remaining_length(remaining + 2, buf);
    buf.put_slice(b"\x00\x06MQIsdp\x03");
    buf.put_slice(&connect[header_len + V311.len()..]);
    Ok(())
}

fn put_remaining_length(mut n: usize, buf: &mut BytesMut) {
    loop {
        let digit = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            buf.put_u8(digit);
            break;
        }
        buf.put_u8(digit | 0x80);
    }
}

pub fn encode_publish(
    proto: Protocol,
    msg: &Message,
    pkid: u16,
    dup: bool,
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    match proto {
        Protocol::V311 => {
            let topic = std::str::from_utf8(&msg.topic)
                .map_err(|_| anyhow::anyhow!("topic is not UTF-8"))?;
            let packet = v4::Publish {
                dup,
                qos: qos4(msg.qos),
                retain: msg.retain,
                topic: topic.to_owned(),
                pkid,
                payload: msg.payload.clone(),
            };
            encoded(packet.write(buf))
        }
        Protocol::V5 => {
            let packet = v5::Publish {
                dup,
                qos: qos5(msg.qos),
                retain: msg.retain,
                topic: msg.topic.clone(),
                pkid,
                payload: msg.payload.clone(),
                properties: msg.props.clone(),
            };
            encoded(packet.write(buf))
        }
    }
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
    let (byte1, body) = publish_head(proto, msg, pkid, dup)?;
    let remaining = body.len() + msg.payload.len();
    if remaining > MAX_REMAINING_LENGTH {
        return Err(anyhow::anyhow!(
            "cannot encode packet: a remaining length of {remaining} bytes is more than MQTT allows"
        ));
    }
    buf.put_u8(byte1);
    put_remaining_length(remaining, buf);
    buf.put_slice(&body);
    Ok(())
}

/// How many bytes a PUBLISH like `msg` (its payload aside) takes after the fixed header,
/// and the largest payload it can carry in a packet of at most `max_packet` bytes (0 when the
/// topic and properties alone do not fit).
pub fn payload_room(proto: Protocol, msg: &Message, max_packet: usize) -> (usize, usize) {
    // A topic or property the codec refuses fails later, when the message is encoded.
    let head = publish_head(proto, msg, 1, false).map_or(0, |(_, body)| body.len());
    let mut remaining = MAX_REMAINING_LENGTH.min(max_packet.saturating_sub(2));
    while remaining > 0 && packet_size(remaining) > max_packet {
        remaining -= 1;
    }
    (head, remaining.saturating_sub(head))
}

/// The first byte and the variable header (topic, packet id, properties) of a PUBLISH.
fn publish_head(
    proto: Protocol,
    msg: &Message,
    pkid: u16,
    dup: bool,
) -> anyhow::Result<(u8, BytesMut)> {
    let bare = Message {
        topic: msg.topic.clone(),
        payload: Bytes::new(),
        qos: msg.qos,
        retain: msg.retain,
        props: msg.props.clone(),
    };
    let mut packet = BytesMut::new();
    encode_publish(proto, &bare, pkid, dup, &mut packet)?;
    let Ok(Some((byte1, header_len, _))) = fixed_header(&packet) else {
        return Err(anyhow::anyhow!("cannot encode packet: no fixed header"));
    };
    Ok((byte1, packet.split_off(header_len)))
}

/// The size of a whole packet with this remaining length.
pub fn packet_size(remaining: usize) -> usize {
    1 + varint_len(remaining) + remaining
}

fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// One `-t` filter with its subscription options (the v5 ones are ignored in 3.1.1).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 send retained on every subscribe, 1 only on a new one, 2 never.
    pub retain_handling: u8,
}

pub fn encode_subscribe(
    proto: Protocol,
    pkid: u16,
    subs: &[Subscription],
    props: Option<SubscribeProperties>,
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    match proto {
        Protocol::V311 => {
            let packet = v4::Subscribe {
                pkid,
                filters: subs
                    .iter()
                    .map(|s| v4::SubscribeFilter::new(s.filter.clone(), qos4(s.qos)))
                    .collect(),
            };
            encoded(packet.write(buf))
        }
        Protocol::V5 => {
            let packet = v5::Subscribe {
                pkid,
                filters: subs
                    .iter()
                    .map(|s| v5::Filter {
                        path: s.filter.clone(),
                        qos: qos5(s.qos),
                        nolocal: s.no_local,
                        preserve_retain: s.retain_as_published,
                        retain_forward_rule: match s.retain_handling {
                            0 => v5::RetainForwardRule::OnEverySubscribe,
                            1 => v5::RetainForwardRule::OnNewSubscribe,
                            _ => v5::RetainForwardRule::Never,
                        },
                    })
                    .collect(),
                properties: props,
            };
            encoded(packet.write(buf))
        }
    }
}

pub fn encode_unsubscribe(
    proto: Protocol,
    pkid: u16,
    filters: &[String],
    props: Option<UnsubscribeProperties>,
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    match proto {
        Protocol::V311 => encoded(
            v4::Unsubscribe {
                pkid,
                topics: filters.to_vec(),
            }
            .write(buf),
        ),
        Protocol::V5 => encoded(
            v5::Unsubscribe {
                pkid,
                filters: filters.to_vec(),
                properties: props,
            }
            .write(buf),
        ),
    }
}

/// PUBACK (4), PUBREC (5), PUBREL (6) and PUBCOMP (7): success is the short form in both versions.
pub fn encode_ack(kind: u8, pkid: u16, buf: &mut BytesMut) {
    let byte1 = if kind == 6 { 0x62 } else { kind << 4 };
    buf.put_slice(&[byte1, 2]);
    buf.put_u16(pkid);
}

pub fn encode_pingreq(buf: &mut BytesMut) {
    buf.put_slice(&[0xC0, 0]);
}

pub fn encode_disconnect(
    proto: Protocol,
    props: Option<DisconnectProperties>,
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    match (proto, props) {
        (Protocol::V5, Some(props)) => {
            let packet = v5::Disconnect {
                reason_code: v5::DisconnectReasonCode::NormalDisconnection,
                properties: Some(props),
            };
            encoded(packet.write(buf))
        }
        _ => {
            buf.put_slice(&[0xE0, 0]);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_acks_with_and_without_reason_codes() {
        let mut buf = BytesMut::from(&[0x40, 2, 0, 7, 0x50, 3, 0, 8, 0x87][..]);
        assert!(matches!(
            decode(Protocol::V5, &mut buf, MAX_PACKET).unwrap(),
            Some(Incoming::PubAck { pkid: 7, code: 0 })
        ));
        assert!(matches!(
            decode(Protocol::V5, &mut buf, MAX_PACKET).unwrap(),
            Some(Incoming::PubRec {
                pkid: 8,
                code: 0x87
            })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn waits_for_a_whole_packet() {
        let mut buf = BytesMut::from(&[0x40, 2, 0][..]);
        assert!(
            decode(Protocol::V311, &mut buf, MAX_PACKET)
                .unwrap()
                .is_none()
        );
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn rejects_oversized_and_malformed_packets() {
        let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(matches!(
            decode(Protocol::V311, &mut buf, 1024),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(decode(Protocol::V311, &mut buf, MAX_PACKET).is_err());
        let mut buf = BytesMut::from(&[0x40, 1, 0][..]);
        assert!(decode(Protocol::V311, &mut buf, MAX_PACKET).is_err());
    }

    #[test]
    fn publish_round_trips_in_both_versions() {
        for proto in [Protocol::V311, Protocol::V5] {
            let msg = Message {
                topic: Bytes::from_static("a/ü".as_bytes()),
                payload: Bytes::from_static(b"\0\xff"),
                qos: 2,
                retain: true,
                props: None,
            };
            let mut buf = BytesMut::new();
            encode_publish(proto, &msg, 9, false, &mut buf).unwrap();
            match decode(proto, &mut buf, MAX_PACKET).unwrap() {
                Some(Incoming::Publish { msg: got, pkid, .. }) => {
                    assert_eq!(pkid, 9);
                    assert_eq!(got.topic, msg.topic);
                    assert_eq!(got.payload, msg.payload);
                    assert!(got.retain);
                    assert_eq!(got.qos, 2);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn publish_head_and_payload_make_the_whole_packet() {
        for (proto, qos) in [(Protocol::V311, 0), (Protocol::V311, 1), (Protocol::V5, 2)] {
            for len in [0, 127, 128, 16_384, 70_000] {
                let msg = Message {
                    topic: Bytes::from_static(b"t/x"),
                    payload: Bytes::from(vec![7u8; len]),
                    qos,
                    retain: false,
                    props: None,
                };
                let mut whole = BytesMut::new();
                encode_publish(proto, &msg, 3, false, &mut whole).unwrap();
                let mut parts = BytesMut::new();
                encode_publish_head(proto, &msg, 3, false, &mut parts).unwrap();
                parts.extend_from_slice(&msg.payload);
                assert_eq!(parts, whole, "{proto:?} q{qos} {len}");
            }
        }
    }

    #[test]
    fn payload_room_leaves_space_for_the_header() {
        let msg = Message {
            topic: Bytes::from_static(b"abc"),
            payload: Bytes::new(),
            qos: 1,
            retain: false,
            props: None,
        };
        // v3.1.1: 2 + 3 topic + 2 packet id after the fixed header.
        assert_eq!(
            payload_room(Protocol::V311, &msg, MAX_PACKET),
            (7, MAX_REMAINING_LENGTH - 7)
        );
        // v5 adds a property length byte; 1000 bytes = 1 + 2 (remaining length) + 997.
        assert_eq!(payload_room(Protocol::V5, &msg, 1000), (8, 989));
        // 129 bytes: a 1-byte remaining length fits 127, a 2-byte one only 126.
        assert_eq!(payload_room(Protocol::V5, &msg, 129).1, 127 - 8);
        assert_eq!(payload_room(Protocol::V5, &msg, 5).1, 0);
        for max in [129, 130, 131, 1000, 16_386, 16_387] {
            let (_, room) = payload_room(Protocol::V5, &msg, max);
            let fits = Message {
                payload: Bytes::from(vec![0u8; room]),
                ..msg.clone()
            };
            let mut buf = BytesMut::new();
            encode_publish(Protocol::V5, &fits, 1, false, &mut buf).unwrap();
            assert!(buf.len() <= max, "{max}: {}", buf.len());
            let over = Message {
                payload: Bytes::from(vec![0u8; room + 1]),
                ..msg.clone()
            };
            buf.clear();
            encode_publish(Protocol::V5, &over, 1, false, &mut buf).unwrap();
            assert!(buf.len() > max, "{max}: {}", buf.len());
        }
    }

    #[test]
    fn mqtt31_connect_says_mqisdp_level_3() {
        let c = Connect {
            mqtt31: true,
            client_id: "smq-a",
            keepalive: 60,
            clean: true,
            username: Some("u"),
            password: Some("p"),
            will: None,
            props: None,
        };
        let mut buf = BytesMut::new();
        encode_connect(Protocol::V311, &c, &mut buf).unwrap();
        let mut v311 = BytesMut::new();
        encode_connect(Protocol::V311, &Connect { mqtt31: false, ..c }, &mut v311).unwrap();
        assert_eq!(&buf[2..11], b"\x00\x06MQIsdp\x03");
        assert_eq!(usize::from(buf[1]), buf.len() - 2);
        assert_eq!(buf[1], v311[1] + 2);
        assert_eq!(&buf[11..], &v311[9..]);
    }

    #[test]
    fn disconnect_reason_string_is_read() {
        // DISCONNECT 0x8E with reason string "taken over".
        let mut raw = vec![0xE0, 0, 0x8E, 13, 0x1F, 0, 10];
        raw.extend_from_slice(b"taken over");
        raw[1] = (raw.len() - 2) as u8;
        let mut buf = BytesMut::from(&raw[..]);
        match decode(Protocol::V5, &mut buf, MAX_PACKET).unwrap() {
            Some(Incoming::Disconnect { code, reason }) => {
                assert_eq!(code, 0x8E);
                assert_eq!(reason.as_deref(), Some("taken over"));
            }
            other => panic!("{other:?}"),
        }
    }
}
