//! The client's packets, over `crate::mqtt`: the shared types (`Protocol`, `Message`,
//! `PublishProperties`, `Subscription`), the framing, and the PUBLISH and acknowledgement
//! encoders come from there.
//!
//! Still here until the client moves to `mqtt`'s strict decoder: CONNECT, SUBSCRIBE,
//! UNSUBSCRIBE and DISCONNECT are encoded through rumqttc's codec (`mqttbytes`), whose
//! property types `cmd/` and `conn/props.rs` build; PUBLISH is decoded through it, and the
//! other packets by hand, leniently, because the codec folds acknowledgement reason codes into
//! enums that lose the number, and the number is what smq reports.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::{self as v4codec, v4};
use rumqttc::v5::mqttbytes::{self as v5codec, v5};

pub use crate::mqtt::{
    MAX_PACKET, MAX_REMAINING_LENGTH, Message, Protocol, PublishProperties, Subscription,
    encode_pingreq, encode_publish, encode_publish_head, has_whole_packet, packet_size,
    payload_room,
};
pub use v5::{
    ConnectProperties, DisconnectProperties, LastWillProperties, SubscribeProperties,
    UnsubscribeProperties,
};

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
    let framed = crate::mqtt::frame(buf, usize::MAX).map_err(|v| malformed(v.why))?;
    Ok(framed.map(|(header, size)| (byte1, header, size - header)))
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
                    props: p.properties.map(publish_properties),
                },
                p.pkid,
            ),
            _ => return Err(malformed("PUBLISH did not decode as PUBLISH")),
        },
    };
    Ok(Incoming::Publish { msg, pkid })
}

/// rumqttc's PUBLISH properties as smq's: the same fields.
fn publish_properties(p: v5::PublishProperties) -> PublishProperties {
    PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        topic_alias: p.topic_alias,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user_properties: p.user_properties,
        subscription_identifiers: p.subscription_identifiers,
        content_type: p.content_type,
    }
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
    use crate::mqtt::{PubAckCode, PubRelCode};
    match kind {
        4 => crate::mqtt::encode_puback(pkid, PubAckCode::Success, buf),
        5 => crate::mqtt::encode_pubrec(pkid, PubAckCode::Success, buf),
        6 => crate::mqtt::encode_pubrel(pkid, PubRelCode::Success, buf),
        _ => crate::mqtt::encode_pubcomp(pkid, PubRelCode::Success, buf),
    }
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

    use crate::mqtt::{
        self, ClientPacket, ConnAck, ConnAckCode, PubAckCode, PubRelCode, ServerDisconnectCode,
        SubAckCode, UnsubAckCode,
    };

    fn published(p: ClientPacket) -> (Message, u16, bool) {
        match p {
            ClientPacket::Publish { msg, pkid, dup } => (msg, pkid, dup),
            other => panic!("not a PUBLISH: {other:?}"),
        }
    }

    fn subscribed(p: ClientPacket) -> (u16, Vec<mqtt::Filter>, Option<u32>) {
        match p {
            ClientPacket::Subscribe {
                pkid,
                filters,
                sub_id,
            } => (pkid, filters, sub_id),
            other => panic!("not a SUBSCRIBE: {other:?}"),
        }
    }

    #[test]
    fn the_client_encoders_speak_what_the_broker_decodes() {
        use rumqttc::v5::mqttbytes::v5::{ConnectProperties, LastWillProperties};
        for proto in [Protocol::V311, Protocol::V5] {
            let will = Will {
                topic: "w/ü".into(),
                payload: Bytes::from_static(b"bye"),
                qos: 2,
                retain: true,
                props: (proto == Protocol::V5).then(|| LastWillProperties {
                    delay_interval: Some(5),
                    payload_format_indicator: None,
                    message_expiry_interval: Some(7),
                    content_type: None,
                    response_topic: Some("r".into()),
                    correlation_data: None,
                    user_properties: vec![("a".into(), "b".into())],
                }),
            };
            let props = (proto == Protocol::V5).then(|| {
                let mut p = ConnectProperties::new();
                p.session_expiry_interval = Some(99);
                p.receive_maximum = Some(20);
                p
            });
            let c = Connect {
                mqtt31: false,
                client_id: "me",
                keepalive: 0,
                clean: false,
                username: Some("u"),
                password: Some("p"),
                will: Some(&will),
                props,
            };
            let mut buf = BytesMut::new();
            encode_connect(proto, &c, &mut buf).unwrap();
            let got = mqtt::decode_connect(&mut buf, MAX_PACKET).unwrap().unwrap();
            assert!(buf.is_empty());
            assert_eq!(
                (got.proto, got.client_id.as_str(), got.clean, got.keepalive),
                (proto, "me", false, 0)
            );
            assert_eq!(
                (got.username.as_deref(), got.password.as_deref()),
                (Some("u"), Some(&b"p"[..]))
            );
            let w = got.will.unwrap();
            assert_eq!(
                (w.topic.as_str(), &w.payload[..], w.qos, w.retain),
                ("w/ü", &b"bye"[..], 2, true)
            );
            if proto == Protocol::V5 {
                assert_eq!((got.session_expiry, got.receive_max, w.delay), (99, 20, 5));
                let wp = w.props.unwrap();
                assert_eq!(
                    (wp.message_expiry_interval, wp.response_topic.as_deref()),
                    (Some(7), Some("r"))
                );
                assert_eq!(wp.user_properties, [("a".into(), "b".into())]);
            }

            // PUBLISH, with properties in v5.
            let msg = Message {
                topic: Bytes::from_static("\u{feff}t/ü".as_bytes()),
                payload: Bytes::from_static(b"\0\xff"),
                qos: 2,
                retain: true,
                props: (proto == Protocol::V5).then(|| PublishProperties {
                    message_expiry_interval: Some(3),
                    user_properties: vec![("k".into(), "v".into())],
                    correlation_data: Some(Bytes::from_static(b"c")),
                    ..Default::default()
                }),
            };
            encode_publish(proto, &msg, 77, true, &mut buf).unwrap();
            let (got, pkid, dup) = published(
                mqtt::decode_client(proto, &mut buf, MAX_PACKET)
                    .unwrap()
                    .unwrap(),
            );
            assert_eq!(
                (&got.topic, &got.payload, got.qos, got.retain),
                (&msg.topic, &msg.payload, 2, true)
            );
            assert_eq!((pkid, dup, got.props), (77, true, msg.props.clone()));

            // SUBSCRIBE and UNSUBSCRIBE.
            let subs = [Subscription {
                filter: "a/+".into(),
                qos: 1,
                no_local: proto == Protocol::V5,
                retain_as_published: proto == Protocol::V5,
                retain_handling: if proto == Protocol::V5 { 1 } else { 0 },
            }];
            encode_subscribe(proto, 3, &subs, None, &mut buf).unwrap();
            let (pkid, f, _) = subscribed(
                mqtt::decode_client(proto, &mut buf, MAX_PACKET)
                    .unwrap()
                    .unwrap(),
            );
            assert_eq!(pkid, 3);
            let s = &subs[0];
            assert_eq!(
                (
                    f[0].filter.as_str(),
                    f[0].qos,
                    f[0].no_local,
                    f[0].retain_as_published,
                    f[0].retain_handling
                ),
                (
                    s.filter.as_str(),
                    s.qos,
                    s.no_local,
                    s.retain_as_published,
                    s.retain_handling
                )
            );
            encode_unsubscribe(proto, 4, &["a/+".into()], None, &mut buf).unwrap();
            assert!(matches!(
                mqtt::decode_client(proto, &mut buf, MAX_PACKET),
                Ok(Some(ClientPacket::Unsubscribe { pkid: 4, .. }))
            ));

            // Acknowledgements, PINGREQ, DISCONNECT.
            encode_ack(6, 9, &mut buf);
            assert!(matches!(
                mqtt::decode_client(proto, &mut buf, MAX_PACKET),
                Ok(Some(ClientPacket::PubRel {
                    pkid: 9,
                    code: PubRelCode::Success
                }))
            ));
            encode_pingreq(&mut buf);
            assert!(matches!(
                mqtt::decode_client(proto, &mut buf, MAX_PACKET),
                Ok(Some(ClientPacket::PingReq))
            ));
            encode_disconnect(proto, None, &mut buf).unwrap();
            assert!(matches!(
                mqtt::decode_client(proto, &mut buf, MAX_PACKET),
                Ok(Some(ClientPacket::Disconnect(mqtt::Disconnect {
                    code: mqtt::ClientDisconnectCode::Success,
                    ..
                })))
            ));
            assert!(buf.is_empty());
        }
    }

    fn client_reads(proto: Protocol, buf: &mut BytesMut) -> Incoming {
        let got = decode(proto, buf, MAX_PACKET).unwrap().unwrap();
        assert!(buf.is_empty(), "bytes left over: {buf:02x?}");
        got
    }

    #[test]
    fn what_the_broker_sends_decodes_in_the_client() {
        let mut buf = BytesMut::new();
        // 3.1.1 CONNACK: session present only when accepted.
        mqtt::encode_connack(
            Protocol::V311,
            &ConnAck {
                session_present: true,
                ..Default::default()
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0x20, 2, 1, 0]);
        assert!(matches!(
            client_reads(Protocol::V311, &mut buf),
            Incoming::ConnAck {
                session_present: true,
                code: 0,
                ..
            }
        ));
        mqtt::encode_connack(
            Protocol::V311,
            &ConnAck {
                session_present: true,
                code: ConnAckCode::ClientIdentifierNotValid,
                ..Default::default()
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0x20, 2, 0, 2]);
        buf.clear();

        let ack = ConnAck {
            session_present: true,
            code: ConnAckCode::Success,
            assigned_client_id: Some("auto-1".into()),
            session_expiry: Some(10),
            receive_max: Some(100),
            max_qos: Some(1),
            retain_available: Some(false),
            max_packet: Some(1 << 20),
            topic_alias_max: Some(10),
            reason_string: Some("fine".into()),
            wildcard_available: Some(true),
            sub_ids_available: Some(true),
            shared_available: Some(false),
            server_keepalive: Some(30),
            response_info: Some("resp/".into()),
            ..ConnAck::default()
        };
        mqtt::encode_connack(Protocol::V5, &ack, &mut buf);
        match client_reads(Protocol::V5, &mut buf) {
            Incoming::ConnAck {
                session_present,
                code,
                props,
            } => {
                assert_eq!((session_present, code), (true, 0));
                let p = props.unwrap();
                assert_eq!(p.assigned_client_identifier.as_deref(), Some("auto-1"));
                assert_eq!(
                    (p.session_expiry_interval, p.receive_max, p.max_qos),
                    (Some(10), Some(100), Some(1))
                );
                assert_eq!(
                    (p.retain_available, p.max_packet_size, p.topic_alias_max),
                    (Some(0), Some(1 << 20), Some(10))
                );
                assert_eq!(p.reason_string.as_deref(), Some("fine"));
                assert_eq!(
                    (
                        p.wildcard_subscription_available,
                        p.subscription_identifiers_available,
                        p.shared_subscription_available
                    ),
                    (Some(1), Some(1), Some(0))
                );
                assert_eq!(
                    (p.server_keep_alive, p.response_information.as_deref()),
                    (Some(30), Some("resp/"))
                );
            }
            other => panic!("{other:?}"),
        }
        // Maximum QoS 2 is said by leaving it out.
        mqtt::encode_connack(
            Protocol::V5,
            &ConnAck {
                max_qos: Some(2),
                code: ConnAckCode::NotAuthorized,
                ..Default::default()
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0x20, 3, 0, 0x87, 0]);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::ConnAck { code: 0x87, .. }
        ));

        for proto in [Protocol::V311, Protocol::V5] {
            let codes = [
                SubAckCode::Success,
                SubAckCode::GrantedQos1,
                SubAckCode::GrantedQos2,
                SubAckCode::UnspecifiedError,
            ];
            mqtt::encode_suback(proto, 5, &codes, &mut buf);
            match client_reads(proto, &mut buf) {
                Incoming::SubAck { pkid, codes } => {
                    assert_eq!((pkid, codes), (5, vec![0, 1, 2, 0x80]))
                }
                other => panic!("{other:?}"),
            }
            let codes = [UnsubAckCode::Success, UnsubAckCode::NoSubscriptionExisted];
            mqtt::encode_unsuback(proto, 6, &codes, &mut buf);
            if proto == Protocol::V311 {
                assert_eq!(&buf[..], &[0xB0, 2, 0, 6]);
            }
            assert!(matches!(
                client_reads(proto, &mut buf),
                Incoming::UnsubAck { pkid: 6 }
            ));
            for kind in 4..=7 {
                match kind {
                    4 => mqtt::encode_puback(0x0102, PubAckCode::Success, &mut buf),
                    5 => mqtt::encode_pubrec(0x0102, PubAckCode::Success, &mut buf),
                    6 => mqtt::encode_pubrel(0x0102, PubRelCode::Success, &mut buf),
                    _ => mqtt::encode_pubcomp(0x0102, PubRelCode::Success, &mut buf),
                }
                let got = client_reads(proto, &mut buf);
                let pkid = match got {
                    Incoming::PubAck { pkid, code: 0 } if kind == 4 => pkid,
                    Incoming::PubRec { pkid, code: 0 } if kind == 5 => pkid,
                    Incoming::PubRel { pkid } if kind == 6 => pkid,
                    Incoming::PubComp { pkid, code: 0 } if kind == 7 => pkid,
                    other => panic!("{kind}: {other:?}"),
                };
                assert_eq!(pkid, 0x0102);
            }
            mqtt::encode_pingresp(&mut buf);
            assert!(matches!(client_reads(proto, &mut buf), Incoming::PingResp));
        }
        mqtt::encode_puback(1, PubAckCode::NoMatchingSubscribers, &mut buf);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::PubAck {
                pkid: 1,
                code: 0x10
            }
        ));
        mqtt::encode_pubrel(1, PubRelCode::PacketIdentifierNotFound, &mut buf);
        assert_eq!(&buf[..], &[0x62, 3, 0, 1, 0x92]);
        buf.clear();

        mqtt::encode_disconnect(ServerDisconnectCode::Success, None, &mut buf);
        assert_eq!(&buf[..], &[0xE0, 0]);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::Disconnect {
                code: 0,
                reason: None
            }
        ));
        mqtt::encode_disconnect(
            ServerDisconnectCode::SessionTakenOver,
            Some("taken over"),
            &mut buf,
        );
        match client_reads(Protocol::V5, &mut buf) {
            Incoming::Disconnect { code, reason } => {
                assert_eq!((code, reason.as_deref()), (0x8E, Some("taken over")))
            }
            other => panic!("{other:?}"),
        }
        mqtt::encode_disconnect(ServerDisconnectCode::MalformedPacket, None, &mut buf);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::Disconnect { code: 0x81, .. }
        ));
        // An over-long reason string is cut at a character boundary, not mid-character.
        let long = "é".repeat(40_000);
        mqtt::encode_disconnect(ServerDisconnectCode::ProtocolError, Some(&long), &mut buf);
        match client_reads(Protocol::V5, &mut buf) {
            Incoming::Disconnect { reason, .. } => assert_eq!(reason.unwrap().len(), 65534),
            other => panic!("{other:?}"),
        }
    }
}
