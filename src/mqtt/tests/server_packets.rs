//! Round trips: what each side encodes, the other side's decoder reads back; and what the
//! client's decoder refuses from a server.

use super::*;

fn reads(proto: Protocol, buf: &mut BytesMut) -> ServerPacket {
    let got = decode_server(proto, buf, MAX_PACKET).unwrap().unwrap();
    assert!(buf.is_empty(), "bytes left over: {buf:02x?}");
    got
}

fn refused_by_client(proto: Protocol, raw: &[u8]) -> ReasonCode {
    match decode_server(proto, &mut BytesMut::from(raw), MAX_PACKET) {
        Err(v) => v.code,
        other => panic!("{raw:02x?} should be refused, got {other:?}"),
    }
}

#[test]
fn connack_round_trips() {
    let mut buf = BytesMut::new();
    // 3.1.1: session present only when accepted.
    let present = ConnAck {
        session_present: true,
        ..ConnAck::default()
    };
    encode_connack(Protocol::V311, &present, &mut buf);
    assert_eq!(&buf[..], &[0x20, 2, 1, 0]);
    assert!(matches!(
        reads(Protocol::V311, &mut buf),
        ServerPacket::ConnAck(ConnAck {
            session_present: true,
            code: ConnAckCode::Success,
            ..
        })
    ));
    let refused = ConnAck {
        session_present: true,
        code: ConnAckCode::ClientIdentifierNotValid,
        ..ConnAck::default()
    };
    encode_connack(Protocol::V311, &refused, &mut buf);
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
        server_reference: Some("other:1883".into()),
        user_properties: vec![("k".into(), "v".into())],
        v311_answer: false,
    };
    encode_connack(Protocol::V5, &ack, &mut buf);
    match reads(Protocol::V5, &mut buf) {
        ServerPacket::ConnAck(got) => assert_eq!(got, ack),
        other => panic!("{other:?}"),
    }
    // Maximum QoS 2 is said by leaving it out.
    let quota = ConnAck {
        max_qos: Some(2),
        code: ConnAckCode::NotAuthorized,
        ..ConnAck::default()
    };
    encode_connack(Protocol::V5, &quota, &mut buf);
    assert_eq!(&buf[..], &[0x20, 3, 0, 0x87, 0]);
    assert!(matches!(
        reads(Protocol::V5, &mut buf),
        ServerPacket::ConnAck(ConnAck {
            code: ConnAckCode::NotAuthorized,
            max_qos: None,
            ..
        })
    ));
    // A 3.1.1-only broker's answer to a v5 CONNECT.
    assert!(matches!(
        reads(Protocol::V5, &mut BytesMut::from(&[0x20, 2, 0, 1][..])),
        ServerPacket::ConnAck(ConnAck {
            code: ConnAckCode::UnsupportedProtocolVersion,
            v311_answer: true,
            ..
        })
    ));
    assert!(matches!(
        reads(Protocol::V311, &mut BytesMut::from(&[0x20, 2, 0, 1][..])),
        ServerPacket::ConnAck(ConnAck {
            v311_answer: false,
            ..
        })
    ));
}

#[test]
fn client_disconnect_carries_user_properties_in_v5_only() {
    let user = [("k".to_string(), "v".to_string())];
    let mut buf = BytesMut::new();
    encode_client_disconnect(
        true,
        ClientDisconnectCode::Success,
        None,
        None,
        &user,
        &mut buf,
    )
    .unwrap();
    // Reason code 0, property length 7: 0x26, "k", "v".
    assert_eq!(&buf[..], &[0xE0, 9, 0, 7, 0x26, 0, 1, b'k', 0, 1, b'v'][..]);
    buf.clear();
    encode_client_disconnect(
        false,
        ClientDisconnectCode::Success,
        None,
        None,
        &user,
        &mut buf,
    )
    .unwrap();
    assert_eq!(&buf[..], &[0xE0, 0][..]);
    buf.clear();
    // Nothing to say: the two-byte form.
    encode_client_disconnect(
        true,
        ClientDisconnectCode::Success,
        None,
        None,
        &[],
        &mut buf,
    )
    .unwrap();
    assert_eq!(&buf[..], &[0xE0, 0][..]);
}

#[test]
fn mqtt31_connect_says_mqisdp_level_3() {
    let mut c = Connect::new(Protocol::V311, "smq-a");
    c.username = Some("u".into());
    c.password = Some(Bytes::from_static(b"p"));
    let mut buf = BytesMut::new();
    encode_connect_mqtt31(&c, &mut buf).unwrap();
    let mut v311 = BytesMut::new();
    encode_connect(&c, &mut v311).unwrap();
    assert_eq!(&buf[2..11], b"\x00\x06MQIsdp\x03");
    assert_eq!(usize::from(buf[1]), buf.len() - 2);
    assert_eq!(buf[1], v311[1] + 2);
    assert_eq!(&buf[11..], &v311[9..]);
}

#[test]
fn the_client_decoder_is_strict_too() {
    let (v311, v5) = (Protocol::V311, Protocol::V5);
    // CONNACK: reserved flag bits, return codes 3.1.1 has not, v5 codes CONNACK may not carry,
    // a session with a refusal, properties a CONNACK may not carry or gives twice.
    assert_eq!(refused_by_client(v311, &[0x20, 2, 2, 0]), MALFORMED);
    assert_eq!(refused_by_client(v311, &[0x20, 2, 0, 6]), PROTOCOL_ERROR);
    assert_eq!(
        refused_by_client(v5, &[0x20, 3, 0, 0x8E, 0]),
        PROTOCOL_ERROR
    );
    assert_eq!(
        refused_by_client(v5, &[0x20, 3, 1, 0x87, 0]),
        PROTOCOL_ERROR
    );
    assert_eq!(
        refused_by_client(v5, &[0x20, 5, 0, 0, 2, 0x01, 1]),
        MALFORMED
    );
    assert_eq!(
        refused_by_client(v5, &[0x20, 7, 0, 0, 4, 0x24, 0, 0x24, 0]),
        PROTOCOL_ERROR
    );
    assert_eq!(
        refused_by_client(v5, &[0x20, 5, 0, 0, 2, 0x24, 2]),
        PROTOCOL_ERROR
    );
    assert_eq!(refused_by_client(v311, &[0x20, 3, 0, 0, 0]), MALFORMED);
    // Packets only a client sends.
    for byte1 in [0x10, 0x82, 0xA2, 0xC0] {
        assert_eq!(
            refused_by_client(v5, &[byte1, 0]),
            PROTOCOL_ERROR,
            "{byte1:#x}"
        );
    }
    // SUBACK: no codes, codes 3.1.1 has not, a PUBACK code.
    assert_eq!(refused_by_client(v311, &[0x90, 2, 0, 1]), PROTOCOL_ERROR);
    assert_eq!(
        refused_by_client(v311, &[0x90, 3, 0, 1, 0x87]),
        PROTOCOL_ERROR
    );
    assert_eq!(
        refused_by_client(v5, &[0x90, 4, 0, 1, 0, 0x10]),
        PROTOCOL_ERROR
    );
    // UNSUBACK: 3.1.1 is the packet id alone.
    assert_eq!(refused_by_client(v311, &[0xB0, 3, 0, 1, 0]), MALFORMED);
    // PUBLISH: Subscription Identifier 0; several are fine from a server.
    let with = |props: &[u8]| publish(0x30, b"t", &cat(&[&[props.len() as u8], props]));
    assert_eq!(refused_by_client(v5, &with(&[0x0B, 0])), PROTOCOL_ERROR);
    match reads(
        v5,
        &mut BytesMut::from(&with(&[0x0B, 1, 0x0B, 0x80, 1])[..]),
    ) {
        ServerPacket::Publish { msg, pkid, dup } => {
            assert_eq!((pkid, dup), (0, false));
            assert_eq!(msg.props.unwrap().subscription_identifiers, [1, 128]);
        }
        other => panic!("{other:?}"),
    }
    // DISCONNECT: a client's code (0x04), a session expiry.
    assert_eq!(refused_by_client(v5, &[0xE0, 1, 0x04]), PROTOCOL_ERROR);
    assert_eq!(
        refused_by_client(v5, &[0xE0, 7, 0, 5, 0x11, 0, 0, 0, 1]),
        PROTOCOL_ERROR
    );
    // Acknowledgements follow the same rules as the broker's decoder.
    assert_eq!(
        refused_by_client(v5, &[0x40, 3, 0, 1, 0x92]),
        PROTOCOL_ERROR
    );
    assert_eq!(refused_by_client(v311, &[0x40, 2, 0, 0]), PROTOCOL_ERROR);
}

#[test]
fn server_packets_round_trip() {
    let mut buf = BytesMut::new();
    for proto in [Protocol::V311, Protocol::V5] {
        let codes = [
            SubAckCode::Success,
            SubAckCode::GrantedQos1,
            SubAckCode::GrantedQos2,
            SubAckCode::NotAuthorized,
        ];
        encode_suback(proto, 5, &codes, &mut buf);
        match reads(proto, &mut buf) {
            ServerPacket::SubAck { pkid, codes: got } => {
                let want = if proto == Protocol::V5 {
                    codes.to_vec()
                } else {
                    // 3.1.1 has one code for every refusal.
                    vec![codes[0], codes[1], codes[2], SubAckCode::UnspecifiedError]
                };
                assert_eq!((pkid, got), (5, want));
            }
            other => panic!("{other:?}"),
        }
        let codes = [UnsubAckCode::Success, UnsubAckCode::NoSubscriptionExisted];
        encode_unsuback(proto, 6, &codes, &mut buf);
        if proto == Protocol::V311 {
            assert_eq!(&buf[..], &[0xB0, 2, 0, 6]);
        }
        match reads(proto, &mut buf) {
            ServerPacket::UnsubAck {
                pkid: 6,
                codes: got,
            } => {
                assert_eq!(got.len(), if proto == Protocol::V5 { 2 } else { 0 });
            }
            other => panic!("{other:?}"),
        }
        encode_puback(0x0102, PubAckCode::Success, &mut buf);
        assert!(matches!(
            reads(proto, &mut buf),
            ServerPacket::PubAck {
                pkid: 0x0102,
                code: PubAckCode::Success
            }
        ));
        encode_pubrec(0x0102, PubAckCode::Success, &mut buf);
        assert!(matches!(
            reads(proto, &mut buf),
            ServerPacket::PubRec {
                pkid: 0x0102,
                code: PubAckCode::Success
            }
        ));
        encode_pubrel(0x0102, PubRelCode::Success, &mut buf);
        assert!(matches!(
            reads(proto, &mut buf),
            ServerPacket::PubRel {
                pkid: 0x0102,
                code: PubRelCode::Success
            }
        ));
        encode_pubcomp(0x0102, PubRelCode::Success, &mut buf);
        assert!(matches!(
            reads(proto, &mut buf),
            ServerPacket::PubComp {
                pkid: 0x0102,
                code: PubRelCode::Success
            }
        ));
        encode_pingresp(&mut buf);
        assert!(matches!(reads(proto, &mut buf), ServerPacket::PingResp));
    }
    encode_puback(1, PubAckCode::NoMatchingSubscribers, &mut buf);
    assert!(matches!(
        reads(Protocol::V5, &mut buf),
        ServerPacket::PubAck {
            pkid: 1,
            code: PubAckCode::NoMatchingSubscribers
        }
    ));
    encode_pubrel(1, PubRelCode::PacketIdentifierNotFound, &mut buf);
    assert_eq!(&buf[..], &[0x62, 3, 0, 1, 0x92]);
    buf.clear();

    encode_disconnect(ServerDisconnectCode::Success, None, &mut buf);
    assert_eq!(&buf[..], &[0xE0, 0]);
    assert!(matches!(
        reads(Protocol::V5, &mut buf),
        ServerPacket::Disconnect(Disconnect {
            code: ServerDisconnectCode::Success,
            reason: None,
            ..
        })
    ));
    encode_disconnect(
        ServerDisconnectCode::SessionTakenOver,
        Some("taken over"),
        &mut buf,
    );
    match reads(Protocol::V5, &mut buf) {
        ServerPacket::Disconnect(d) => {
            assert_eq!(
                (d.code, d.reason.as_deref()),
                (ServerDisconnectCode::SessionTakenOver, Some("taken over"))
            )
        }
        other => panic!("{other:?}"),
    }
    // An over-long reason string is cut at a character boundary, not mid-character.
    let long = "é".repeat(40_000);
    encode_disconnect(ServerDisconnectCode::ProtocolError, Some(&long), &mut buf);
    match reads(Protocol::V5, &mut buf) {
        ServerPacket::Disconnect(d) => assert_eq!(d.reason.unwrap().len(), 65534),
        other => panic!("{other:?}"),
    }
    // AUTH 0x18 with an empty property list: nothing in smq sends one.
    buf.extend_from_slice(&[0xF0, 2, 0x18, 0]);
    assert!(matches!(
        reads(Protocol::V5, &mut buf),
        ServerPacket::Auth(AuthCode::ContinueAuthentication)
    ));
}

#[test]
fn client_packets_round_trip() {
    for proto in [Protocol::V311, Protocol::V5] {
        let v5 = proto == Protocol::V5;
        let mut c = Connect::new(proto, "me");
        c.clean = false;
        c.keepalive = 0;
        c.username = Some("u".into());
        c.password = Some(Bytes::from_static(b"\xffp"));
        c.will = Some(Will {
            topic: "w/ü".into(),
            payload: Bytes::from_static(b"bye"),
            qos: 2,
            retain: true,
            delay: if v5 { 5 } else { 0 },
            props: v5.then(|| PublishProperties {
                message_expiry_interval: Some(7),
                response_topic: Some("r".into()),
                user_properties: vec![("a".into(), "b".into())],
                ..PublishProperties::default()
            }),
        });
        if v5 {
            c.session_expiry = 99;
            c.receive_max = 20;
            c.max_packet = Some(1000);
            c.topic_alias_max = 3;
            c.request_response_info = true;
            c.request_problem_info = false;
            c.user_properties = vec![("x".into(), "y".into())];
            c.auth_method = Some("m".into());
            c.auth_data = Some(Bytes::from_static(b"d"));
        }
        let mut buf = BytesMut::new();
        encode_connect(&c, &mut buf).unwrap();
        let got = decode_connect(&mut buf, MAX_PACKET).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(got, c);

        // PUBLISH, with properties in v5.
        let msg = Message {
            topic: Bytes::from_static("\u{feff}t/ü".as_bytes()),
            payload: Bytes::from_static(b"\0\xff"),
            qos: 2,
            retain: true,
            props: v5.then(|| PublishProperties {
                message_expiry_interval: Some(3),
                user_properties: vec![("k".into(), "v".into())],
                correlation_data: Some(Bytes::from_static(b"c")),
                topic_alias: Some(2),
                ..Default::default()
            }),
        };
        encode_publish(proto, &msg, 77, true, &mut buf).unwrap();
        let (got, pkid, dup) =
            published(decode_client(proto, &mut buf, MAX_PACKET).unwrap().unwrap());
        assert_eq!((got, pkid, dup), (msg, 77, true));

        // SUBSCRIBE and UNSUBSCRIBE.
        let subs = [Subscription {
            filter: "a/+".into(),
            qos: 1,
            no_local: v5,
            retain_as_published: v5,
            retain_handling: if v5 { 1 } else { 0 },
        }];
        let user = [("k".to_string(), "v".to_string())];
        encode_subscribe(proto, 3, &subs, Some(9), &user, &mut buf).unwrap();
        let (pkid, f, id) =
            subscribed(decode_client(proto, &mut buf, MAX_PACKET).unwrap().unwrap());
        assert_eq!((pkid, id), (3, v5.then_some(9)));
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
        encode_unsubscribe(proto, 4, &["a/+".into()], &user, &mut buf).unwrap();
        assert!(matches!(
            decode_client(proto, &mut buf, MAX_PACKET),
            Ok(Some(ClientPacket::Unsubscribe { pkid: 4, .. }))
        ));

        // PINGREQ, DISCONNECT.
        encode_pingreq(&mut buf);
        assert!(matches!(
            decode_client(proto, &mut buf, MAX_PACKET),
            Ok(Some(ClientPacket::PingReq))
        ));
        encode_client_disconnect(
            v5,
            ClientDisconnectCode::DisconnectWithWill,
            Some(30),
            Some("bye"),
            &[("k".into(), "v".into())],
            &mut buf,
        )
        .unwrap();
        match decode_client(proto, &mut buf, MAX_PACKET) {
            Ok(Some(ClientPacket::Disconnect(d))) if v5 => {
                assert_eq!(d.code, ClientDisconnectCode::DisconnectWithWill);
                assert_eq!(
                    (d.session_expiry, d.reason.as_deref()),
                    (Some(30), Some("bye"))
                );
            }
            Ok(Some(ClientPacket::Disconnect(d))) => {
                assert_eq!(d.code, ClientDisconnectCode::Success)
            }
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn encoders_refuse_what_mqtt_cannot_say() {
    let long = "x".repeat(70_000);
    let mut buf = BytesMut::new();
    let mut c = Connect::new(Protocol::V5, "id");
    c.username = Some(long.clone());
    assert!(encode_connect(&c, &mut buf).is_err());
    let subs = [Subscription {
        filter: long.clone(),
        qos: 0,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    }];
    assert!(encode_subscribe(Protocol::V311, 1, &subs, None, &[], &mut buf).is_err());
    assert!(
        encode_unsubscribe(
            Protocol::V311,
            1,
            std::slice::from_ref(&long),
            &[],
            &mut buf
        )
        .is_err()
    );
    let msg = |qos, props| Message {
        topic: Bytes::from_static(b"t"),
        payload: Bytes::new(),
        qos,
        retain: false,
        props,
    };
    assert!(encode_publish(Protocol::V5, &msg(1, None), 0, false, &mut buf).is_err());
    let p = PublishProperties {
        content_type: Some(long),
        ..PublishProperties::default()
    };
    assert!(encode_publish(Protocol::V5, &msg(0, Some(p)), 0, false, &mut buf).is_err());
    let bad = Message {
        topic: Bytes::from_static(b"\xff"),
        ..msg(0, None)
    };
    assert!(encode_publish(Protocol::V311, &bad, 0, false, &mut buf).is_err());
    assert!(buf.is_empty(), "nothing is written when encoding fails");
}

#[test]
fn a_shared_head_makes_the_same_packets() {
    for proto in [Protocol::V311, Protocol::V5] {
        for qos in 0..=2 {
            for len in [0, 100, 200, 20_000] {
                let msg = Message {
                    topic: Bytes::from_static(b"s/t"),
                    payload: Bytes::from(vec![7u8; len]),
                    qos,
                    retain: qos == 1,
                    props: (proto == Protocol::V5).then(|| PublishProperties {
                        user_properties: vec![("k".into(), "v".into())],
                        ..PublishProperties::default()
                    }),
                };
                let head = PublishHead::new(proto, &msg, 1, false).unwrap();
                for pkid in [1, 0x1234, u16::MAX] {
                    let pkid = if qos == 0 { 0 } else { pkid };
                    let mut want = BytesMut::new();
                    encode_publish(proto, &msg, pkid, false, &mut want).unwrap();
                    let mut got = BytesMut::from(&b"before"[..]);
                    head.write(pkid, &msg.payload, &mut got);
                    assert_eq!(&got[6..], &want[..], "{proto:?} q{qos} {len} {pkid}");
                    assert_eq!(head.packet_len(len), want.len());
                }
            }
        }
    }
}
