//! Unit tests of every packet: what each decoder takes and refuses, round trips through the
//! encoders, the bytes the broker has always sent, and random input for both directions.

mod bytes_sent;
mod fuzz;
mod server_packets;

use bytes::{Bytes, BytesMut};

use super::control::Disconnect;
use super::reason::AuthCode;
use super::wire::put_packet;
use super::*;
use crate::topic;

const MALFORMED: ReasonCode = ReasonCode::MalformedPacket;
const PROTOCOL_ERROR: ReasonCode = ReasonCode::ProtocolError;
const UNSUPPORTED_VERSION: ReasonCode = ReasonCode::UnsupportedProtocolVersion;
const CLIENT_ID_INVALID: ReasonCode = ReasonCode::ClientIdentifierNotValid;
const TOPIC_NAME_INVALID: ReasonCode = ReasonCode::TopicNameInvalid;
const PACKET_TOO_LARGE: ReasonCode = ReasonCode::PacketTooLarge;
const PAYLOAD_FORMAT_INVALID: ReasonCode = ReasonCode::PayloadFormatInvalid;

/// The CONNACK byte that answers a refused CONNECT, as the encoder writes it.
fn connack_byte(v: &Violation) -> Option<u8> {
    let (proto, code) = (v.answer?, v.connack_code()?);
    let mut buf = BytesMut::new();
    encode_connack(proto, &ConnAck::refused(code), &mut buf);
    Some(buf[3])
}

/// A packet: first byte, remaining length, body.
fn pkt(byte1: u8, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    put_packet(&mut buf, byte1, body);
    buf.to_vec()
}

/// A length-prefixed string or binary field.
fn s(text: &[u8]) -> Vec<u8> {
    let mut v = (text.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(text);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn dec(proto: Protocol, raw: &[u8]) -> Result<Option<ClientPacket>, Violation> {
    decode_client(proto, &mut BytesMut::from(raw), MAX_PACKET)
}

fn ok(proto: Protocol, raw: &[u8]) -> ClientPacket {
    match dec(proto, raw) {
        Ok(Some(p)) => p,
        other => panic!("{raw:02x?} should decode, got {other:?}"),
    }
}

/// The reason code a packet is refused with, checking the answer that goes with it.
fn err(proto: Protocol, raw: &[u8]) -> ReasonCode {
    match dec(proto, raw) {
        Err(v) => {
            assert_eq!(v.answer, (proto == Protocol::V5).then_some(Protocol::V5));
            v.code
        }
        other => panic!("{raw:02x?} should be refused, got {other:?}"),
    }
}

fn both(raw: &[u8]) -> [ReasonCode; 2] {
    [err(Protocol::V311, raw), err(Protocol::V5, raw)]
}

fn publish(byte1: u8, topic: &[u8], rest: &[u8]) -> Vec<u8> {
    pkt(byte1, &cat(&[&s(topic), rest]))
}

fn published(p: ClientPacket) -> (Message, u16, bool) {
    match p {
        ClientPacket::Publish { msg, pkid, dup } => (msg, pkid, dup),
        other => panic!("not a PUBLISH: {other:?}"),
    }
}

// ---- fixed header ---------------------------------------------------------------------

#[test]
fn fixed_header_flags_must_be_the_listed_values() {
    // [MQTT-2.2.2-1][MQTT-2.2.2-2]: each type with a wrong flag nibble.
    let cases: &[(u8, &[u8])] = &[
        (0x41, &[0, 1]),                // PUBACK
        (0x58, &[0, 1]),                // PUBREC
        (0x60, &[0, 1]),                // PUBREL must be 0010 [MQTT-3.6.1-1]
        (0x63, &[0, 1]),                // PUBREL
        (0x72, &[0, 1]),                // PUBCOMP
        (0x80, &[0, 1, 0, 1, b'a', 0]), // SUBSCRIBE must be 0010 [MQTT-3.8.1-1]
        (0x8A, &[0, 1, 0, 1, b'a', 0]),
        (0xA0, &[0, 1, 0, 1, b'a']), // UNSUBSCRIBE must be 0010 [MQTT-3.10.1-1]
        (0xC4, &[]),                 // PINGREQ
        (0xE1, &[]),                 // DISCONNECT
        (0x11, &[]),                 // a second CONNECT with flags
    ];
    for &(byte1, body) in cases {
        let raw = pkt(byte1, body);
        assert_eq!(both(&raw), [MALFORMED; 2], "{byte1:#04x}");
    }
    assert_eq!(err(Protocol::V5, &pkt(0xF1, &[])), MALFORMED); // AUTH
    // The right flags pass.
    assert!(matches!(
        ok(Protocol::V311, &pkt(0x62, &[0, 1])),
        ClientPacket::PubRel { pkid: 1, .. }
    ));
    assert!(matches!(
        ok(Protocol::V5, &pkt(0xF0, &[])),
        ClientPacket::Auth(AuthCode::Success)
    ));
    assert!(matches!(
        ok(Protocol::V311, &pkt(0x10, &[])),
        ClientPacket::Connect
    ));
}

#[test]
fn refuses_reserved_and_server_only_packet_types_from_the_first_byte() {
    // Only the first byte has arrived: no need to wait for the rest.
    assert_eq!(both(&[0x00]), [MALFORMED; 2]);
    assert_eq!(err(Protocol::V311, &[0xF0]), MALFORMED); // AUTH does not exist in 3.1.1
    for byte1 in [0x20, 0x90, 0xB0, 0xD0] {
        assert_eq!(both(&[byte1]), [PROTOCOL_ERROR; 2], "{byte1:#04x}");
    }
    assert_eq!(both(&[0x36]), [MALFORMED; 2]); // QoS 3 [MQTT-3.3.1-4]
}

#[test]
fn remaining_length_limits() {
    // Five length bytes.
    assert_eq!(both(&[0xC0, 0x80, 0x80, 0x80, 0x80, 0x01]), [MALFORMED; 2]);
    // Larger than allowed: refused from the header alone, before the body arrives.
    let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
    let v = decode_client(Protocol::V5, &mut buf, 1024).unwrap_err();
    assert_eq!(v.code, PACKET_TOO_LARGE);
    // The limit is the whole packet, header included: 2 + 1022 fits in 1024, 2 + 1023 not.
    let mut body = s(b"t");
    body.resize(1022, b'x');
    let mut buf = BytesMut::from(&pkt(0x30, &body)[..]);
    assert_eq!(buf.len(), 1025); // a 2-byte remaining length
    assert_eq!(
        decode_client(Protocol::V311, &mut buf, 1024)
            .unwrap_err()
            .code,
        PACKET_TOO_LARGE
    );
    assert!(
        decode_client(Protocol::V311, &mut buf, 1025)
            .unwrap()
            .is_some()
    );
}

#[test]
fn waits_for_a_whole_packet_and_leaves_the_buffer_alone() {
    let raw = publish(0x32, b"a/b", &[0, 7, b'x']);
    for cut in 0..raw.len() {
        let mut buf = BytesMut::from(&raw[..cut]);
        assert!(
            decode_client(Protocol::V311, &mut buf, MAX_PACKET)
                .unwrap()
                .is_none()
        );
        assert_eq!(&buf[..], &raw[..cut]);
    }
    // Two packets back to back come out one at a time.
    let mut buf = BytesMut::from(&cat(&[&raw, &[0xC0, 0]])[..]);
    assert!(matches!(
        decode_client(Protocol::V311, &mut buf, MAX_PACKET),
        Ok(Some(ClientPacket::Publish { .. }))
    ));
    assert!(matches!(
        decode_client(Protocol::V311, &mut buf, MAX_PACKET),
        Ok(Some(ClientPacket::PingReq))
    ));
    assert!(buf.is_empty());
}

// ---- PUBLISH --------------------------------------------------------------------------

#[test]
fn publish_owns_its_bytes() {
    let raw = publish(0x3B, b"a/b", &[0x12, 0x34, b'h', b'i']); // DUP, QoS 1, retain
    let mut buf = BytesMut::from(&raw[..]);
    let base = buf.as_ptr() as usize;
    let inside = |p: *const u8| (base..base + raw.len()).contains(&(p as usize));
    let (msg, pkid, dup) = published(
        decode_client(Protocol::V311, &mut buf, MAX_PACKET)
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        (&msg.topic[..], &msg.payload[..]),
        (&b"a/b"[..], &b"hi"[..])
    );
    assert_eq!((msg.qos, msg.retain, pkid, dup), (1, true, 0x1234, true));
    assert!(msg.props.is_none());
    // Copies: a queued message must not keep the receive buffer alive.
    assert!(!inside(msg.topic.as_ptr()) && !inside(msg.payload.as_ptr()));
    assert!(buf.is_empty());
    // v5 with an empty property list.
    let (msg, pkid, _) = published(ok(Protocol::V5, &publish(0x30, b"t", &[0, b'p'])));
    assert_eq!(
        (&msg.payload[..], pkid, msg.props.is_none()),
        (&b"p"[..], 0, true)
    );
    // QoS 0 carries no packet id: those two bytes are payload.
    let (msg, ..) = published(ok(Protocol::V311, &publish(0x30, b"t", &[0, 1])));
    assert_eq!(&msg.payload[..], &[0, 1]);
}

#[test]
fn publish_qos_and_dup_rules() {
    assert_eq!(both(&publish(0x36, b"t", &[0, 1])), [MALFORMED; 2]); // [MQTT-3.3.1-4]
    assert_eq!(both(&publish(0x38, b"t", &[])), [MALFORMED; 2]); // [MQTT-3.3.1-2]
    assert_eq!(both(&publish(0x32, b"t", &[0, 0, 0])), [PROTOCOL_ERROR; 2]); // [MQTT-2.3.1-1]
    assert_eq!(both(&publish(0x34, b"t", &[0])), [MALFORMED; 2]); // packet id cut short
    assert!(matches!(
        published(ok(Protocol::V311, &publish(0x3C, b"t", &[0, 1]))),
        (_, 1, true)
    ));
}

#[test]
fn publish_topic_names() {
    for bad in [&b"a/\xff"[..], b"\xed\xa0\x80", b"\xc0\xaf"] {
        // Ill-formed UTF-8, a surrogate, an overlong '/' [MQTT-1.5.3-1].
        assert_eq!(
            both(&publish(0x30, bad, &[0])),
            [MALFORMED; 2],
            "{bad:02x?}"
        );
    }
    assert_eq!(both(&publish(0x30, b"a\0b", &[0])), [MALFORMED; 2]); // [MQTT-1.5.3-2]
    for bad in ["a/+", "#", "a/b#", "+"] {
        // [MQTT-3.3.2-2]
        assert_eq!(
            both(&publish(0x30, bad.as_bytes(), &[0])),
            [TOPIC_NAME_INVALID; 2],
            "{bad}"
        );
    }
    // Empty: 3.1.1 [MQTT-4.7.3-1]; v5 only with a topic alias.
    assert_eq!(both(&publish(0x30, b"", &[0])), [PROTOCOL_ERROR; 2]);
    let (msg, ..) = published(ok(
        Protocol::V5,
        &publish(0x30, b"", &[3, 0x23, 0, 5, b'x']),
    ));
    assert!(msg.topic.is_empty());
    assert_eq!(msg.props.unwrap().topic_alias, Some(5));
    // Non-ASCII topics, a leading byte-order mark included, are valid and kept as sent
    // [MQTT-1.5.3-3].
    for good in ["\u{feff}a/b", "süß/温度", "/", "a//b", "$SYS/x", "😀"] {
        for proto in [Protocol::V311, Protocol::V5] {
            let (msg, ..) = published(ok(proto, &publish(0x30, good.as_bytes(), &[0])));
            assert_eq!(&msg.topic[..], good.as_bytes());
        }
    }
}

#[test]
fn publish_properties() {
    let v5 = Protocol::V5;
    // Every PUBLISH property a client may send.
    let props = cat(&[
        &[0x01, 1, 0x02, 0, 0, 0, 60, 0x23, 0, 7],
        &[0x03],
        &s(b"text/plain"),
        &[0x08],
        &s(b"re/ply"),
        &[0x09],
        &s(b"\x00\xff"),
        &[0x26],
        &s(b"k"),
        &s(b"v1"),
        &[0x26],
        &s(b"k"),
        &s(b"v2"),
    ]);
    let raw = publish(
        0x32,
        b"t",
        &cat(&[&[0, 9, props.len() as u8], &props, "ü".as_bytes()]),
    );
    let (msg, pkid, _) = published(ok(v5, &raw));
    assert_eq!((pkid, &msg.payload[..]), (9, "ü".as_bytes()));
    let p = msg.props.unwrap();
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.message_expiry_interval, Some(60));
    assert_eq!(p.topic_alias, Some(7));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("re/ply"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"\x00\xff"[..]));
    assert_eq!(
        p.user_properties,
        [("k".into(), "v1".into()), ("k".into(), "v2".into())]
    );

    let with = |props: &[u8], payload: &[u8]| {
        publish(0x30, b"t", &cat(&[&[props.len() as u8], props, payload]))
    };
    // A property given twice is a protocol error (the User Property excepted).
    assert_eq!(
        err(v5, &with(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2], b"")),
        PROTOCOL_ERROR
    );
    assert_eq!(err(v5, &with(&[0x01, 0, 0x01, 0], b"")), PROTOCOL_ERROR);
    // A property that belongs to another packet, and unknown identifiers: malformed.
    assert_eq!(err(v5, &with(&[0x11, 0, 0, 0, 1], b"")), MALFORMED);
    assert_eq!(err(v5, &with(&[0x50, 0], b"")), MALFORMED);
    assert_eq!(err(v5, &with(&[0xC1, 0], b"")), MALFORMED);
    assert_eq!(err(v5, &with(&[0x00], b"")), MALFORMED);
    // Topic Alias 0 [MQTT-3.3.2-8]; a Subscription Identifier from a client [MQTT-3.3.4-6].
    assert_eq!(err(v5, &with(&[0x23, 0, 0], b"")), PROTOCOL_ERROR);
    assert_eq!(err(v5, &with(&[0x0B, 1], b"")), PROTOCOL_ERROR);
    // Payload Format Indicator is 0 or 1; a payload declared UTF-8 must be.
    assert_eq!(err(v5, &with(&[0x01, 2], b"")), PROTOCOL_ERROR);
    assert_eq!(err(v5, &with(&[0x01, 1], b"\xff")), PAYLOAD_FORMAT_INVALID);
    assert!(ok(v5, &with(&[0x01, 0], b"\xff")).clone_is_publish());
    // A response topic is a topic name [MQTT-3.3.2-14].
    assert_eq!(
        err(v5, &with(&cat(&[&[0x08], &s(b"a/#")]), b"")),
        PROTOCOL_ERROR
    );
    // Strings inside properties follow the string rules.
    assert_eq!(
        err(v5, &with(&cat(&[&[0x03], &s(b"\xff")]), b"")),
        MALFORMED
    );
    assert_eq!(
        err(v5, &with(&cat(&[&[0x26], &s(b"k"), &s(b"\0")]), b"")),
        MALFORMED
    );
    // A property list longer than the packet, and a property running past its list: the
    // second is what rumqttc's readers, which the client once used, let through.
    assert_eq!(err(v5, &publish(0x30, b"t", &[9, 0x01, 1])), MALFORMED);
    assert_eq!(
        err(v5, &publish(0x30, b"t", &[3, 0x02, 0, 0, 0, 1, b'x'])),
        MALFORMED
    );
    assert_eq!(err(v5, &publish(0x30, b"t", &[])), MALFORMED); // no property length
    assert_eq!(
        err(v5, &publish(0x30, b"t", &[0x80, 0x80, 0x80, 0x80, 1])),
        MALFORMED
    );
}

impl ClientPacket {
    fn clone_is_publish(&self) -> bool {
        matches!(self, ClientPacket::Publish { .. })
    }
}

// ---- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------

fn subscribed(p: ClientPacket) -> (u16, Vec<Filter>, Option<u32>) {
    match p {
        ClientPacket::Subscribe {
            pkid,
            filters,
            sub_id,
        } => (pkid, filters, sub_id),
        other => panic!("not a SUBSCRIBE: {other:?}"),
    }
}

fn sub311(entries: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = vec![0, 1];
    for (f, o) in entries {
        body.extend(s(f));
        body.push(*o);
    }
    pkt(0x82, &body)
}

fn sub5(props: &[u8], entries: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = vec![0, 1, props.len() as u8];
    body.extend_from_slice(props);
    for (f, o) in entries {
        body.extend(s(f));
        body.push(*o);
    }
    pkt(0x82, &body)
}

#[test]
fn subscribe_decodes_options() {
    let (pkid, f, id) = subscribed(ok(Protocol::V311, &sub311(&[(b"a/+", 1), (b"#", 2)])));
    assert_eq!((pkid, id, f.len()), (1, None, 2));
    assert_eq!(
        (f[0].filter.as_str(), f[0].qos, f[0].valid),
        ("a/+", 1, true)
    );
    assert_eq!((f[1].filter.as_str(), f[1].qos), ("#", 2));

    // Options 0b0010_1101: Retain Handling 2, Retain As Published, No Local, QoS 1.
    let raw = sub5(
        &[0x0B, 0x80, 0x01, 0x26, 0, 1, b'k', 0, 0],
        &[(b"x/#", 0b0010_1101), (b"$share/g/y", 2)],
    );
    let (_, f, id) = subscribed(ok(Protocol::V5, &raw));
    assert_eq!(id, Some(128));
    assert_eq!(
        f[0],
        Filter {
            filter: "x/#".into(),
            qos: 1,
            no_local: true,
            retain_as_published: true,
            retain_handling: 2,
            valid: true,
        }
    );
    assert_eq!(
        (f[1].filter.as_str(), f[1].valid, f[1].no_local),
        ("$share/g/y", true, false)
    );
}

#[test]
fn subscribe_packet_rules() {
    let v5 = Protocol::V5;
    // No filters [MQTT-3.8.3-3] (5.0: MQTT-3.8.3-2); packet id 0 [MQTT-2.3.1-1].
    assert_eq!(err(Protocol::V311, &sub311(&[])), PROTOCOL_ERROR);
    assert_eq!(err(v5, &sub5(&[], &[])), PROTOCOL_ERROR);
    assert_eq!(
        both(&pkt(0x82, &cat(&[&[0, 0], &s(b"a"), &[0]])))[0],
        PROTOCOL_ERROR
    );
    // 3.1.1: reserved bits or QoS 3 [MQTT-3.8.3-4].
    for opts in [3, 4, 0x80] {
        assert_eq!(err(Protocol::V311, &sub311(&[(b"a", opts)])), MALFORMED);
    }
    // 5.0: reserved bits [MQTT-3.8.3-5] (malformed), QoS 3 and Retain Handling 3 (protocol errors).
    assert_eq!(err(v5, &sub5(&[], &[(b"a", 0x40)])), MALFORMED);
    assert_eq!(err(v5, &sub5(&[], &[(b"a", 0x80)])), MALFORMED);
    assert_eq!(err(v5, &sub5(&[], &[(b"a", 3)])), PROTOCOL_ERROR);
    assert_eq!(err(v5, &sub5(&[], &[(b"a", 0x30)])), PROTOCOL_ERROR);
    // No Local on a shared subscription (5.0 MQTT-3.8.3-4).
    assert_eq!(err(v5, &sub5(&[], &[(b"$share/g/a", 4)])), PROTOCOL_ERROR);
    // Options byte missing.
    assert_eq!(
        err(v5, &pkt(0x82, &cat(&[&[0, 1, 0], &s(b"a")]))),
        MALFORMED
    );
    // Ill-formed strings close the connection [MQTT-3.8.3-1][MQTT-1.5.3-1/2].
    assert_eq!(err(v5, &sub5(&[], &[(b"a\0", 0)])), MALFORMED);
    assert_eq!(err(Protocol::V311, &sub311(&[(b"\xff", 0)])), MALFORMED);
    // Subscription Identifier: 0 and twice are protocol errors; user property only else.
    assert_eq!(err(v5, &sub5(&[0x0B, 0], &[(b"a", 0)])), PROTOCOL_ERROR);
    assert_eq!(
        err(v5, &sub5(&[0x0B, 1, 0x0B, 2], &[(b"a", 0)])),
        PROTOCOL_ERROR
    );
    assert_eq!(err(v5, &sub5(&[0x01, 1], &[(b"a", 0)])), MALFORMED);
}

#[test]
fn unusable_filters_fail_alone() {
    let bad: &[&[u8]] = &[
        b"",
        b"a/#/b",
        b"a#",
        b"a/b+",
        b"+a",
        b"$share/g",
        b"$share/",
        b"$share//a",
        b"$share/g+/a",
        b"$share/g#/a",
        b"$share/g/",
        b"$share/g/a/#/b",
    ];
    let good: &[&[u8]] = &[
        b"#",
        b"+",
        b"a/+/c",
        b"/",
        b"$SYS/#",
        b"$share/g/a/#",
        b"$share/g/+",
        b"$share",
        b"$shared/x",
        "\u{feff}ü/+".as_bytes(),
    ];
    for proto in [Protocol::V311, Protocol::V5] {
        let entries: Vec<(&[u8], u8)> = bad.iter().chain(good).map(|f| (*f, 0)).collect();
        let raw = match proto {
            Protocol::V311 => sub311(&entries),
            Protocol::V5 => sub5(&[], &entries),
        };
        let (_, filters, _) = subscribed(ok(proto, &raw));
        for (f, raw) in filters.iter().zip(bad.iter().chain(good)) {
            assert_eq!(f.filter.as_bytes(), *raw);
            assert_eq!(f.valid, good.contains(raw), "{:?}", f.filter);
        }
    }
    assert_eq!(topic::shared("$share/g/a/b"), Some(Ok(("g", "a/b"))));
    assert_eq!(topic::shared("a/b"), None);
    assert_eq!(topic::shared("$share/+/a"), Some(Err(())));
    assert_eq!(topic::shared_parts("$share/g/a/b"), Some(("g", "a/b")));
    assert_eq!(topic::shared_parts("$share//a"), None);
}

#[test]
fn unsubscribe_rules() {
    let raw = pkt(0xA2, &cat(&[&[0, 5], &s(b"a/#"), &s(b"$share/g/x")]));
    match ok(Protocol::V311, &raw) {
        ClientPacket::Unsubscribe { pkid, filters } => {
            assert_eq!(
                (pkid, filters),
                (5, vec!["a/#".to_string(), "$share/g/x".into()])
            );
        }
        other => panic!("{other:?}"),
    }
    let raw = pkt(0xA2, &cat(&[&[0, 5, 5, 0x26, 0, 0, 0, 0], &s(b"a")]));
    assert!(matches!(
        ok(Protocol::V5, &raw),
        ClientPacket::Unsubscribe { .. }
    ));
    // No filters [MQTT-3.10.3-2]; packet id 0; a bad string; a property not allowed.
    assert_eq!(err(Protocol::V311, &pkt(0xA2, &[0, 5])), PROTOCOL_ERROR);
    assert_eq!(err(Protocol::V5, &pkt(0xA2, &[0, 5, 0])), PROTOCOL_ERROR);
    assert_eq!(
        err(Protocol::V311, &pkt(0xA2, &cat(&[&[0, 0], &s(b"a")]))),
        PROTOCOL_ERROR
    );
    assert_eq!(
        err(Protocol::V311, &pkt(0xA2, &cat(&[&[0, 1], &s(b"a\0")]))),
        MALFORMED
    );
    assert_eq!(
        err(
            Protocol::V5,
            &pkt(0xA2, &cat(&[&[0, 1, 2, 0x0B, 1], &s(b"a")]))
        ),
        MALFORMED
    );
    // A truncated string.
    assert_eq!(
        err(Protocol::V311, &pkt(0xA2, &[0, 1, 0, 5, b'a'])),
        MALFORMED
    );
}

// ---- acknowledgements, PINGREQ, DISCONNECT, AUTH --------------------------------------

#[test]
fn acknowledgements() {
    for (byte1, kind) in [(0x40, 4), (0x50, 5), (0x62, 6), (0x70, 7)] {
        for proto in [Protocol::V311, Protocol::V5] {
            let got = match ok(proto, &pkt(byte1, &[1, 2])) {
                ClientPacket::PubAck { pkid, code } => (4, pkid, code.number()),
                ClientPacket::PubRec { pkid, code } => (5, pkid, code.number()),
                ClientPacket::PubRel { pkid, code } => (6, pkid, code.number()),
                ClientPacket::PubComp { pkid, code } => (7, pkid, code.number()),
                other => panic!("{other:?}"),
            };
            assert_eq!(got, (kind, 0x0102, 0));
        }
        // 3.1.1: exactly a packet id.
        assert_eq!(err(Protocol::V311, &pkt(byte1, &[1, 2, 0])), MALFORMED);
        assert_eq!(both(&pkt(byte1, &[1])), [MALFORMED; 2]);
        assert_eq!(both(&pkt(byte1, &[0, 0])), [PROTOCOL_ERROR; 2]);
    }
    let v5 = Protocol::V5;
    assert!(matches!(
        ok(v5, &pkt(0x40, &[0, 1, 0x10])),
        ClientPacket::PubAck {
            pkid: 1,
            code: PubAckCode::NoMatchingSubscribers
        }
    ));
    let reason = cat(&[&[0, 1, 0x87, 8, 0x1F], &s(b"nope"), &[0x26, 0, 0, 0, 0]]);
    assert_eq!(err(v5, &pkt(0x40, &reason)), MALFORMED); // property length 8 but 12 follow
    let reason = cat(&[&[0, 1, 0x87, 12, 0x1F], &s(b"nope"), &[0x26, 0, 0, 0, 0]]);
    assert!(matches!(
        ok(v5, &pkt(0x40, &reason)),
        ClientPacket::PubAck {
            code: PubAckCode::NotAuthorized,
            ..
        }
    ));
    assert!(matches!(
        ok(v5, &pkt(0x62, &[0, 1, 0x92, 0])),
        ClientPacket::PubRel {
            code: PubRelCode::PacketIdentifierNotFound,
            ..
        }
    ));
    // Codes not defined for the packet, duplicate reason strings, foreign properties.
    assert_eq!(err(v5, &pkt(0x40, &[0, 1, 0x92])), PROTOCOL_ERROR);
    assert_eq!(err(v5, &pkt(0x62, &[0, 1, 0x10])), PROTOCOL_ERROR);
    // 0x95, which the broker sends as Mosquitto does, is not one a client may send.
    assert_eq!(err(v5, &pkt(0x40, &[0, 1, 0x95])), PROTOCOL_ERROR);
    let twice = cat(&[&[0, 1, 0, 8, 0x1F], &s(b"a"), &[0x1F], &s(b"b")]);
    assert_eq!(err(v5, &pkt(0x70, &twice)), PROTOCOL_ERROR);
    assert_eq!(err(v5, &pkt(0x50, &[0, 1, 0, 2, 0x01, 0])), MALFORMED);
}

#[test]
fn pingreq_and_disconnect() {
    assert!(matches!(
        ok(Protocol::V311, &[0xC0, 0]),
        ClientPacket::PingReq
    ));
    assert_eq!(both(&pkt(0xC0, &[0])), [MALFORMED; 2]);
    assert!(matches!(
        ok(Protocol::V311, &[0xE0, 0]),
        ClientPacket::Disconnect(Disconnect {
            code: ClientDisconnectCode::Success,
            session_expiry: None,
            ..
        })
    ));
    assert_eq!(err(Protocol::V311, &pkt(0xE0, &[0])), MALFORMED);
    let v5 = Protocol::V5;
    assert!(matches!(
        ok(v5, &[0xE0, 0]),
        ClientPacket::Disconnect(Disconnect {
            code: ClientDisconnectCode::Success,
            ..
        })
    ));
    assert!(matches!(
        ok(v5, &[0xE0, 1, 0x04]),
        ClientPacket::Disconnect(Disconnect {
            code: ClientDisconnectCode::DisconnectWithWill,
            ..
        })
    ));
    assert!(matches!(
        ok(v5, &pkt(0xE0, &[0, 5, 0x11, 0, 0, 1, 0])),
        ClientPacket::Disconnect(Disconnect {
            code: ClientDisconnectCode::Success,
            session_expiry: Some(256),
            ..
        })
    ));
    // Server-only codes (0x8E session taken over), duplicates, foreign properties.
    assert_eq!(err(v5, &[0xE0, 1, 0x8E]), PROTOCOL_ERROR);
    assert_eq!(
        err(v5, &pkt(0xE0, &[0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2])),
        PROTOCOL_ERROR
    );
    assert_eq!(err(v5, &pkt(0xE0, &[0, 2, 0x01, 0])), MALFORMED);
    // AUTH.
    assert!(matches!(
        ok(v5, &pkt(0xF0, &[0x18, 0])),
        ClientPacket::Auth(AuthCode::ContinueAuthentication)
    ));
    assert_eq!(err(v5, &pkt(0xF0, &[0x80])), PROTOCOL_ERROR);
    assert_eq!(err(v5, &pkt(0xF0, &[0x18, 2, 0x02, 0])), MALFORMED);
}

// ---- CONNECT --------------------------------------------------------------------------

fn connect_raw(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    pkt(0x10, &cat(&[&s(name), &[level, flags, 0, 60], rest]))
}

fn conn(raw: &[u8]) -> Result<Option<Connect>, Violation> {
    decode_connect(&mut BytesMut::from(raw), MAX_PACKET)
}

fn connected(raw: &[u8]) -> Connect {
    match conn(raw) {
        Ok(Some(c)) => c,
        other => panic!("{raw:02x?} should connect, got {other:?}"),
    }
}

/// (code, answer) for a refused CONNECT.
fn refused(raw: &[u8]) -> (ReasonCode, Option<Protocol>) {
    match conn(raw) {
        Err(v) => (v.code, v.answer),
        other => panic!("{raw:02x?} should be refused, got {other:?}"),
    }
}

#[test]
fn connect_minimal_in_both_versions() {
    let c = connected(&connect_raw(b"MQTT", 4, 0x02, &s(b"id")));
    assert_eq!(
        (c.proto, c.client_id.as_str(), c.clean, c.keepalive),
        (Protocol::V311, "id", true, 60)
    );
    assert_eq!(
        (c.receive_max, c.max_packet, c.request_problem_info),
        (65535, None, true)
    );
    assert!(c.will.is_none() && c.username.is_none() && c.password.is_none());
    let c = connected(&connect_raw(b"MQTT", 5, 0x00, &cat(&[&[0], &s(b"")])));
    assert_eq!(
        (c.proto, c.client_id.as_str(), c.clean),
        (Protocol::V5, "", false)
    );
    // A password alone is fine in 5.0, and it is binary.
    let c = connected(&connect_raw(
        b"MQTT",
        5,
        0x40,
        &cat(&[&[0], &s(b"x"), &s(b"\xff\0")]),
    ));
    assert_eq!(c.password.as_deref(), Some(&b"\xff\0"[..]));
}

#[test]
fn connect_must_come_first_and_be_mqtt() {
    // [MQTT-3.1.0-1]: refused on its first byte, with no answer.
    assert_eq!(refused(&[0x30]), (PROTOCOL_ERROR, None));
    assert_eq!(refused(&[0xC0, 0]), (PROTOCOL_ERROR, None));
    assert_eq!(refused(&[0x12]), (MALFORMED, None));
    // MQTT 3.1 is served as 3.1.1; other levels get CONNACK "unacceptable protocol
    // version" [MQTT-3.1.2-2].
    let c = conn(&connect_raw(b"MQIsdp", 3, 0x02, &s(b"id")))
        .unwrap()
        .unwrap();
    assert_eq!(c.proto, Protocol::V311);
    let v = conn(&connect_raw(b"MQIsdp", 4, 0x02, &s(b"id"))).unwrap_err();
    assert_eq!(
        (v.code, v.answer, connack_byte(&v)),
        (UNSUPPORTED_VERSION, Some(Protocol::V311), Some(1))
    );
    assert_eq!(
        refused(&connect_raw(b"MQTT", 3, 2, &s(b"i"))),
        (UNSUPPORTED_VERSION, Some(Protocol::V311))
    );
    let bridge = connect_raw(b"MQTT", 0x84, 2, &s(b"i"));
    assert_eq!(
        refused(&bridge),
        (UNSUPPORTED_VERSION, Some(Protocol::V311))
    );
    let v = conn(&connect_raw(b"MQTT", 6, 0x02, &s(b"id"))).unwrap_err();
    assert_eq!(
        (v.code, connack_byte(&v)),
        (UNSUPPORTED_VERSION, Some(0x84))
    );
    // Not MQTT: close without a word [MQTT-3.1.2-1].
    assert_eq!(refused(&connect_raw(b"HTTP", 4, 2, &s(b"i"))).1, None);
    assert_eq!(refused(&connect_raw(b"mqtt", 4, 2, &s(b"i"))).1, None);
    // Too large.
    let mut buf = BytesMut::from(&connect_raw(b"MQTT", 4, 2, &s(&[b'x'; 100]))[..]);
    assert_eq!(
        decode_connect(&mut buf, 50).unwrap_err().code,
        PACKET_TOO_LARGE
    );
    // Larger than connect::MAX_CONNECT, whatever the packet size limit: refused from the fixed
    // header, closing without a CONNACK (the protocol is not known yet), as Mosquitto.
    let mut buf = BytesMut::from(&[0x10, 0x80, 0x80, 0x80, 0x64][..]); // 200 MiB
    let v = decode_connect(&mut buf, MAX_PACKET).unwrap_err();
    assert_eq!((v.code, v.answer), (PACKET_TOO_LARGE, None));
    // The largest will payload fits.
    let will = cat(&[&s(b"id"), &s(b"w"), &s(&vec![b'x'; 65_535])]);
    let c = connected(&connect_raw(b"MQTT", 4, 0x06, &will));
    assert_eq!(c.will.map(|w| w.payload.len()), Some(65_535));
    // Incomplete: wait, untouched.
    let raw = connect_raw(b"MQTT", 4, 2, &s(b"id"));
    for cut in 0..raw.len() {
        let mut buf = BytesMut::from(&raw[..cut]);
        assert!(decode_connect(&mut buf, MAX_PACKET).unwrap().is_none());
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn connect_flags() {
    for (level, answer) in [(4, None), (5, Some(Protocol::V5))] {
        let p: &[u8] = if level == 5 { &[0] } else { &[] };
        let id = cat(&[p, &s(b"i")]);
        // Reserved bit [MQTT-3.1.2-3].
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x03, &id)),
            (MALFORMED, answer)
        );
        // Will QoS or Will Retain without a will [MQTT-3.1.2-11/13/15].
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x0A, &id)),
            (MALFORMED, answer)
        );
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x12, &id)),
            (MALFORMED, answer)
        );
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x22, &id)),
            (MALFORMED, answer)
        );
        // Will QoS 3 [MQTT-3.1.2-14].
        let will = cat(&[&id, p, &s(b"w"), &s(b"bye")]);
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x1E, &will)),
            (MALFORMED, answer)
        );
        // Client identifier: ill-formed UTF-8, U+0000 [MQTT-3.1.3-4].
        let bad = cat(&[p, &s(b"\xff")]);
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x02, &bad)),
            (MALFORMED, answer)
        );
        let bad = cat(&[p, &s(b"a\0")]);
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x02, &bad)),
            (MALFORMED, answer)
        );
        // Bytes after the payload; a user name flag with no user name.
        let extra = cat(&[&id, &[0]]);
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x02, &extra)),
            (MALFORMED, answer)
        );
        assert_eq!(
            refused(&connect_raw(b"MQTT", level, 0x82, &id)),
            (MALFORMED, answer)
        );
    }
    // 3.1.1: a password without a user name [MQTT-3.1.2-22].
    let raw = connect_raw(b"MQTT", 4, 0x42, &cat(&[&s(b"i"), &s(b"pw")]));
    assert_eq!(refused(&raw), (MALFORMED, None));
    // 3.1.1: empty client id with clean session 0 → CONNACK 2 [MQTT-3.1.3-8].
    let v = conn(&connect_raw(b"MQTT", 4, 0x00, &s(b""))).unwrap_err();
    assert_eq!((v.code, connack_byte(&v)), (CLIENT_ID_INVALID, Some(2)));
    assert!(conn(&connect_raw(b"MQTT", 4, 0x02, &s(b""))).is_ok());
}

#[test]
fn connect_will_and_login() {
    let raw = connect_raw(
        b"MQTT",
        4,
        0b1110_1110, // user, password, will retain, will QoS 1, will, clean
        &cat(&[
            &s(b"id"),
            &s("\u{feff}w/ü".as_bytes()),
            &s(b"\0bye"),
            &s(b"me"),
            &s(b"pw"),
        ]),
    );
    let c = connected(&raw);
    let w = c.will.unwrap();
    assert_eq!(
        (w.topic.as_str(), &w.payload[..], w.qos, w.retain),
        ("\u{feff}w/ü", &b"\0bye"[..], 1, true)
    );
    assert_eq!(
        (c.username.as_deref(), c.password.as_deref()),
        (Some("me"), Some(&b"pw"[..]))
    );
    // A will topic is a topic name.
    for (topic, code) in [
        (&b"w/#"[..], TOPIC_NAME_INVALID),
        (b"", PROTOCOL_ERROR),
        (b"\xff", MALFORMED),
    ] {
        let raw = connect_raw(
            b"MQTT",
            5,
            0x06,
            &cat(&[&[0], &s(b"id"), &[0], &s(topic), &s(b"x")]),
        );
        assert_eq!(refused(&raw), (code, Some(Protocol::V5)), "{topic:?}");
    }
}

#[test]
fn connect_v5_properties() {
    let props = cat(&[
        &[
            0x11, 0, 0, 0x0E, 0x10, 0x21, 0, 10, 0x27, 0, 1, 0, 0, 0x22, 0, 4, 0x19, 1, 0x17, 0,
        ],
        &[0x26],
        &s(b"k"),
        &s(b"v"),
        &[0x15],
        &s(b"SCRAM"),
        &[0x16],
        &s(b"\x01"),
    ]);
    let will_props = cat(&[
        &[0x18, 0, 0, 0, 30, 0x01, 1, 0x02, 0, 0, 0, 9, 0x03],
        &s(b"ct"),
        &[0x09],
        &s(b"cd"),
    ]);
    let raw = connect_raw(
        b"MQTT",
        5,
        0x06,
        &cat(&[
            &[props.len() as u8],
            &props,
            &s(b"id"),
            &[will_props.len() as u8],
            &will_props,
            &s(b"w"),
            &s(b"bye"),
        ]),
    );
    let c = connected(&raw);
    assert_eq!(
        (
            c.session_expiry,
            c.receive_max,
            c.max_packet,
            c.topic_alias_max
        ),
        (3600, 10, Some(65536), 4)
    );
    assert_eq!(
        (c.request_response_info, c.request_problem_info),
        (true, false)
    );
    assert_eq!(c.user_properties, [("k".into(), "v".into())]);
    assert_eq!(c.auth_method.as_deref(), Some("SCRAM"));
    let w = c.will.unwrap();
    assert_eq!(w.delay, 30);
    let wp = w.props.unwrap();
    assert_eq!(
        (wp.payload_format_indicator, wp.message_expiry_interval),
        (Some(1), Some(9))
    );
    assert_eq!(
        (wp.content_type.as_deref(), wp.correlation_data.as_deref()),
        (Some("ct"), Some(&b"cd"[..]))
    );

    let with = |props: &[u8]| {
        connect_raw(
            b"MQTT",
            5,
            2,
            &cat(&[&[props.len() as u8], props, &s(b"id")]),
        )
    };
    let v5 = Some(Protocol::V5);
    assert_eq!(refused(&with(&[0x21, 0, 0])), (PROTOCOL_ERROR, v5)); // Receive Maximum 0
    assert_eq!(refused(&with(&[0x27, 0, 0, 0, 0])), (PROTOCOL_ERROR, v5)); // Maximum Packet Size 0
    assert_eq!(refused(&with(&[0x17, 2])), (PROTOCOL_ERROR, v5));
    assert_eq!(refused(&with(&[0x19, 2])), (PROTOCOL_ERROR, v5));
    assert_eq!(
        refused(&with(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1])),
        (PROTOCOL_ERROR, v5)
    );
    assert_eq!(
        refused(&with(&cat(&[&[0x16], &s(b"x")]))),
        (PROTOCOL_ERROR, v5)
    ); // data, no method
    assert_eq!(refused(&with(&[0x01, 1])), (MALFORMED, v5)); // a will property in CONNECT
    assert_eq!(refused(&with(&[0x21, 0])), (MALFORMED, v5)); // cut short
    // Will properties: payload declared UTF-8 but not; a CONNECT property in the will.
    let will = |wp: &[u8], payload: &[u8]| {
        connect_raw(
            b"MQTT",
            5,
            6,
            &cat(&[
                &[0],
                &s(b"id"),
                &[wp.len() as u8],
                wp,
                &s(b"w"),
                &s(payload),
            ]),
        )
    };
    assert_eq!(
        refused(&will(&[0x01, 1], b"\xff")),
        (PAYLOAD_FORMAT_INVALID, v5)
    );
    assert_eq!(refused(&will(&[0x11, 0, 0, 0, 1], b"")), (MALFORMED, v5));
    assert_eq!(
        refused(&will(&[0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1], b"")),
        (PROTOCOL_ERROR, v5)
    );
    assert!(connected(&will(&[], b"\xff")).will.unwrap().props.is_none());
}
