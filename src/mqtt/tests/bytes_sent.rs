//! The bytes of every packet the broker sends, as its encoders before `mqtt/` wrote them
//! (the broker's own for CONNACK, SUBACK, UNSUBACK, acknowledgements, PINGRESP and
//! DISCONNECT; rumqttc's for PUBLISH): a change to any of them is a change on the wire.

use super::*;

/// (what, the packet's bytes as the encoders here write them).
pub(super) fn cases() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut put = |name: String, f: &dyn Fn(&mut BytesMut)| {
        let mut buf = BytesMut::new();
        f(&mut buf);
        out.push((name, buf.to_vec()));
    };
    let typical = ConnAck {
        session_present: false,
        code: ConnAckCode::Success,
        assigned_client_id: Some("smq-00000000000000ff".into()),
        receive_max: Some(20),
        max_packet: Some(1 << 20),
        topic_alias_max: Some(10),
        retain_available: Some(true),
        wildcard_available: Some(true),
        sub_ids_available: Some(true),
        shared_available: Some(true),
        server_keepalive: Some(60),
        ..ConnAck::default()
    };
    let full = ConnAck {
        session_present: true,
        session_expiry: Some(10),
        max_qos: Some(1),
        reason_string: Some("fine".into()),
        response_info: Some("resp/".into()),
        ..typical.clone()
    };
    for proto in [Protocol::V311, Protocol::V5] {
        for (what, ack) in [
            ("typical", typical.clone()),
            ("full", full.clone()),
            (
                "present",
                ConnAck {
                    session_present: true,
                    ..ConnAck::default()
                },
            ),
            (
                "refused present",
                ConnAck {
                    session_present: true,
                    ..ConnAck::refused(ConnAckCode::ClientIdentifierNotValid)
                },
            ),
            ("0x86", ConnAck::refused(ConnAckCode::BadUserNameOrPassword)),
            ("0x87", ConnAck::refused(ConnAckCode::NotAuthorized)),
            (
                "0x8C",
                ConnAck::refused(ConnAckCode::BadAuthenticationMethod),
            ),
            ("0x97", ConnAck::refused(ConnAckCode::QuotaExceeded)),
            (
                "0x84",
                ConnAck::refused(ConnAckCode::UnsupportedProtocolVersion),
            ),
            ("0x81", ConnAck::refused(ConnAckCode::MalformedPacket)),
            (
                "max qos 2",
                ConnAck {
                    max_qos: Some(2),
                    ..ConnAck::refused(ConnAckCode::NotAuthorized)
                },
            ),
        ] {
            put(format!("CONNACK {proto:?} {what}"), &|b| {
                encode_connack(proto, &ack, b)
            });
        }
        let sub = [
            SubAckCode::Success,
            SubAckCode::GrantedQos1,
            SubAckCode::GrantedQos2,
            SubAckCode::TopicFilterInvalid,
            SubAckCode::NotAuthorized,
        ];
        put(format!("SUBACK {proto:?}"), &|b| {
            encode_suback(proto, 5, &sub, b)
        });
        let unsub = [UnsubAckCode::Success, UnsubAckCode::NoSubscriptionExisted];
        put(format!("UNSUBACK {proto:?}"), &|b| {
            encode_unsuback(proto, 6, &unsub, b)
        });
    }
    for (what, code) in [
        ("success", PubAckCode::Success),
        ("0x10", PubAckCode::NoMatchingSubscribers),
        ("0x87", PubAckCode::NotAuthorized),
        ("0x97", PubAckCode::QuotaExceeded),
    ] {
        put(format!("PUBACK {what}"), &|b| {
            encode_puback(0x0102, code, b)
        });
        put(format!("PUBREC {what}"), &|b| {
            encode_pubrec(0x0102, code, b)
        });
    }
    for (what, code) in [
        ("success", PubRelCode::Success),
        ("0x92", PubRelCode::PacketIdentifierNotFound),
    ] {
        put(format!("PUBREL {what}"), &|b| {
            encode_pubrel(0xFFFF, code, b)
        });
        put(format!("PUBCOMP {what}"), &|b| {
            encode_pubcomp(0xFFFF, code, b)
        });
    }
    put("PINGRESP".into(), &|b| encode_pingresp(b));
    for (what, code, reason) in [
        ("normal", ServerDisconnectCode::Success, None),
        ("0x8E", ServerDisconnectCode::SessionTakenOver, None),
        ("0x8B", ServerDisconnectCode::ServerShuttingDown, None),
        (
            "0x82 why",
            ServerDisconnectCode::ProtocolError,
            Some("a second CONNECT"),
        ),
        ("0 why", ServerDisconnectCode::Success, Some("ü")),
    ] {
        put(format!("DISCONNECT {what}"), &|b| {
            encode_disconnect(code, reason, b)
        });
    }
    for (what, msg, pkid, dup) in publishes() {
        for proto in [Protocol::V311, Protocol::V5] {
            put(format!("PUBLISH {proto:?} {what}"), &|b| {
                encode_publish(proto, &msg, pkid, dup, b).unwrap()
            });
        }
    }
    out
}

/// PUBLISHes of every shape the broker sends: (what, message, packet id, dup).
pub(super) fn publishes() -> Vec<(&'static str, Message, u16, bool)> {
    let msg = |topic: &'static str, len: usize, qos: u8, retain: bool, props| Message {
        topic: Bytes::from_static(topic.as_bytes()),
        payload: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>()),
        qos,
        retain,
        props,
    };
    let all = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(300),
        topic_alias: None,
        response_topic: Some("re/ply".into()),
        correlation_data: Some(Bytes::from_static(b"\0\x01")),
        user_properties: vec![("k".into(), "v1".into()), ("k".into(), "ü".into())],
        subscription_identifiers: vec![1, 200, 268_435_455],
        content_type: Some("text/plain".into()),
    };
    let ids = PublishProperties {
        subscription_identifiers: vec![7],
        ..PublishProperties::default()
    };
    vec![
        ("q0", msg("a/b", 10, 0, false, None), 0, false),
        ("q0 retain", msg("a/b", 10, 0, true, None), 0, false),
        ("q1", msg("sensors/ü", 10, 1, false, None), 1, false),
        ("q1 dup", msg("a", 0, 1, false, None), 0x1234, true),
        ("q2 retain dup", msg("a", 3, 2, true, None), 0xFFFF, true),
        ("q0 200 bytes", msg("t", 200, 0, false, None), 0, false),
        ("q1 20000 bytes", msg("t", 20_000, 1, false, None), 9, false),
        (
            "q0 empty props",
            msg("t", 1, 0, false, Some(PublishProperties::default())),
            0,
            false,
        ),
        ("q1 all props", msg("t/p", 5, 1, false, Some(all)), 3, false),
        ("q0 sub id", msg("t", 5, 0, false, Some(ids)), 0, false),
    ]
}

/// (what, length, CRC-32 of the whole packet, its first 48 bytes in hex), written by the
/// encoders before `mqtt/` existed.
const SENT: &[(&str, usize, u32, &str)] = &[
    ("CONNACK V311 typical", 4, 0x82f2a44c, "20020000"),
    ("CONNACK V311 full", 4, 0x9be9950d, "20020100"),
    ("CONNACK V311 present", 4, 0x9be9950d, "20020100"),
    ("CONNACK V311 refused present", 4, 0x6cfcc560, "20020002"),
    ("CONNACK V311 0x86", 4, 0x859f6055, "20020004"),
    ("CONNACK V311 0x87", 4, 0xf29850c3, "20020005"),
    ("CONNACK V311 0x8C", 4, 0xf29850c3, "20020005"),
    ("CONNACK V311 0x97", 4, 0x1bfbf5f6, "20020003"),
    ("CONNACK V311 0x84", 4, 0xf5f594da, "20020001"),
    ("CONNACK V311 0x81", 4, 0x1bfbf5f6, "20020003"),
    ("CONNACK V311 max qos 2", 4, 0xf29850c3, "20020005"),
    ("SUBACK V311", 9, 0x1b97665a, "900700050001028080"),
    ("UNSUBACK V311", 4, 0xd6d1e0dd, "b0020006"),
    (
        "CONNACK V5 typical",
        50,
        0x266e61a5,
        "203000002d21001425012700100000120014736d712d3030303030303030303030303030666622000a280129012a0113",
    ),
    (
        "CONNACK V5 full",
        72,
        0x4745f259,
        "2046010043110000000a210014240125012700100000120014736d712d3030303030303030303030303030666622000a",
    ),
    ("CONNACK V5 present", 5, 0x14941dc0, "2003010000"),
    ("CONNACK V5 refused present", 5, 0x53a21bf9, "2003008500"),
    ("CONNACK V5 0x86", 5, 0x788f483a, "2003008600"),
    ("CONNACK V5 0x87", 5, 0x6194797b, "2003008700"),
    ("CONNACK V5 0x8C", 5, 0x8260a0b0, "2003008c00"),
    ("CONNACK V5 0x97", 5, 0x2b566b2a, "2003009700"),
    ("CONNACK V5 0x84", 5, 0x4ab92ab8, "2003008400"),
    ("CONNACK V5 0x81", 5, 0x37cedefd, "2003008100"),
    ("CONNACK V5 max qos 2", 5, 0x6194797b, "2003008700"),
    ("SUBACK V5", 10, 0xbf3e4c2c, "90080005000001028f87"),
    ("UNSUBACK V5", 7, 0xa20f7e43, "b0050006000011"),
    ("PUBACK success", 4, 0x4ec10322, "40020102"),
    ("PUBREC success", 4, 0x1ed854bd, "50020102"),
    ("PUBACK 0x10", 5, 0xa227186b, "4003010210"),
    ("PUBREC 0x10", 5, 0xc2c78fe9, "5003010210"),
    ("PUBACK 0x87", 5, 0xcc4c1e8c, "4003010287"),
    ("PUBREC 0x87", 5, 0xacac890e, "5003010287"),
    ("PUBACK 0x97", 5, 0xd1fb0ee8, "4003010297"),
    ("PUBREC 0x97", 5, 0xb11b996a, "5003010297"),
    ("PUBREL success", 4, 0x0dc92605, "6202ffff"),
    ("PUBCOMP success", 4, 0xf7d9b911, "7002ffff"),
    ("PUBREL 0x92", 5, 0x04d84729, "6203ffff92"),
    ("PUBCOMP 0x92", 5, 0x1ef883cb, "7003ffff92"),
    ("PINGRESP", 2, 0xc0e1d7e0, "d000"),
    ("DISCONNECT normal", 2, 0x1fa7e113, "e000"),
    ("DISCONNECT 0x8E", 3, 0x45b896d4, "e0018e"),
    ("DISCONNECT 0x8B", 3, 0x35d2625b, "e0018b"),
    (
        "DISCONNECT 0x82 why",
        23,
        0xa51eaf9e,
        "e01582131f001061207365636f6e6420434f4e4e454354",
    ),
    ("DISCONNECT 0 why", 9, 0x4503a2f8, "e00700051f0002c3bc"),
    (
        "PUBLISH V311 q0",
        17,
        0x1508cf40,
        "300f0003612f6200010203040506070809",
    ),
    (
        "PUBLISH V5 q0",
        18,
        0xf5816559,
        "30100003612f620000010203040506070809",
    ),
    (
        "PUBLISH V311 q0 retain",
        17,
        0x92ae0403,
        "310f0003612f6200010203040506070809",
    ),
    (
        "PUBLISH V5 q0 retain",
        18,
        0x1ad3d3b8,
        "31100003612f620000010203040506070809",
    ),
    (
        "PUBLISH V311 q1",
        26,
        0xb897fbf1,
        "3218000a73656e736f72732fc3bc000100010203040506070809",
    ),
    (
        "PUBLISH V5 q1",
        27,
        0x7f847548,
        "3219000a73656e736f72732fc3bc00010000010203040506070809",
    ),
    ("PUBLISH V311 q1 dup", 7, 0x695bf6c5, "3a050001611234"),
    ("PUBLISH V5 q1 dup", 8, 0x088d98d9, "3a06000161123400"),
    (
        "PUBLISH V311 q2 retain dup",
        10,
        0x43f485bd,
        "3d08000161ffff000102",
    ),
    (
        "PUBLISH V5 q2 retain dup",
        11,
        0x4cb2e7df,
        "3d09000161ffff00000102",
    ),
    (
        "PUBLISH V311 q0 200 bytes",
        206,
        0x1e910ca8,
        "30cb01000174000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",
    ),
    (
        "PUBLISH V5 q0 200 bytes",
        207,
        0x31f505a5,
        "30cc0100017400000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728",
    ),
    (
        "PUBLISH V311 q1 20000 bytes",
        20009,
        0x4c620459,
        "32a59c010001740009000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526",
    ),
    (
        "PUBLISH V5 q1 20000 bytes",
        20010,
        0xcba68769,
        "32a69c01000174000900000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425",
    ),
    ("PUBLISH V311 q0 empty props", 6, 0x0aa9d60b, "300400017400"),
    ("PUBLISH V5 q0 empty props", 7, 0x8e864c76, "30050001740000"),
    (
        "PUBLISH V311 q1 all props",
        14,
        0x870d895b,
        "320c0003742f7000030001020304",
    ),
    (
        "PUBLISH V5 q1 all props",
        75,
        0xbacc9735,
        "32490003742f7000033c0101020000012c08000672652f706c7909000200012600016b000276312600016b0002c3bc0b",
    ),
    (
        "PUBLISH V311 q0 sub id",
        10,
        0x911d28e4,
        "30080001740001020304",
    ),
    (
        "PUBLISH V5 q0 sub id",
        13,
        0xf14db1aa,
        "300b000174020b070001020304",
    ),
];

#[test]
fn what_the_broker_sends_is_byte_for_byte_what_it_sent() {
    let cases = cases();
    assert_eq!(cases.len(), SENT.len());
    for ((name, got), &(want_name, len, crc, head)) in cases.iter().zip(SENT) {
        assert_eq!(name, want_name);
        let hex: String = got.iter().take(48).map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, head, "{name}");
        assert_eq!((got.len(), crc32fast::hash(got)), (len, crc), "{name}");
    }
}
