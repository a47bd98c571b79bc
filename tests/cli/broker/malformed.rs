//! Malformed and forbidden packets, each refused as the specification says (3.1.1: the
//! connection closed; v5: DISCONNECT with a reason code first), and garbage from many
//! connections at once, which must not disturb the other clients.

use std::thread;
use std::time::Duration;

use super::{SECS, assert_serving};
use crate::support::raw::{
    self, Client, Connect, V4, V5, Will, packet, parse_publish, prop_str, prop_u16, prop_u32,
    publish, publish_raw, subscribe_body, v4_closes, v5_disconnects,
};
use crate::support::smq_broker::SmqBroker;
use crate::support::{Sub, send, text};

/// [MQTT-3.8.1-1] (v5 [MQTT-3.8.1-1]): SUBSCRIBE with fixed-header flags other than 0010 is
/// malformed → close (v5: DISCONNECT 0x81).
#[test]
fn subscribe_with_bad_fixed_header_flags() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    for first in [0x80, 0x83, 0x8A] {
        let bad4 = packet(first, &subscribe_body(V4, 1, &[(b"a", 0)], &[]));
        v4_closes(port, &bad4, "[MQTT-3.8.1-1]");
        let bad5 = packet(first, &subscribe_body(V5, 1, &[(b"a", 0)], &[]));
        v5_disconnects(port, &bad5, &[0x81], "[MQTT-3.8.1-1] v5");
    }
    // Likewise UNSUBSCRIBE [MQTT-3.10.1-1] and PUBREL [MQTT-3.6.1-1 v5].
    let unsub = |v| {
        let mut body = vec![0, 1];
        if v == V5 {
            body.push(0);
        }
        body.extend(raw::string(b"a"));
        packet(0xA0, &body)
    };
    v4_closes(port, &unsub(V4), "[MQTT-3.10.1-1]");
    v5_disconnects(port, &unsub(V5), &[0x81], "[MQTT-3.10.1-1] v5");
    v4_closes(port, &packet(0x60, &[0, 1]), "PUBREL flags");
    v5_disconnects(port, &packet(0x60, &[0, 1]), &[0x81], "[MQTT-3.6.1-1] v5");
}

/// [MQTT-3.3.1-4]: a PUBLISH with QoS 3 → close (v5: Malformed Packet 0x81).
#[test]
fn publish_with_qos_3() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    v4_closes(
        port,
        &publish_raw(0x36, b"a", Some(1), None, b"x"),
        "[MQTT-3.3.1-4]",
    );
    v5_disconnects(
        port,
        &publish_raw(0x36, b"a", Some(1), Some(&[]), b"x"),
        &[0x81],
        "[MQTT-3.3.1-4] v5",
    );
}

/// [MQTT-3.3.1-2]: DUP=1 on a QoS 0 PUBLISH → close (v5: 0x81 or 0x82).
#[test]
fn publish_qos0_with_dup() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    v4_closes(
        port,
        &publish_raw(0x38, b"a", None, None, b"x"),
        "[MQTT-3.3.1-2]",
    );
    v5_disconnects(
        port,
        &publish_raw(0x38, b"a", None, Some(&[]), b"x"),
        &[0x81, 0x82],
        "[MQTT-3.3.1-2] v5",
    );
}

/// [MQTT-3.3.2-2] / [MQTT-4.7.0-1 v5]: no wildcards in a PUBLISH topic → close
/// (v5: DISCONNECT 0x81, 0x82 or 0x90 Topic Name invalid).
#[test]
fn publish_topic_with_wildcards() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    for topic in ["a/+", "a/#", "+", "#", "a+b"] {
        v4_closes(port, &publish(V4, 0, topic, 0, b"x"), "[MQTT-3.3.2-2]");
        v5_disconnects(
            port,
            &publish(V5, 1, topic, 1, b"x"),
            &[0x81, 0x82, 0x90],
            "[MQTT-3.3.2-2] v5",
        );
    }
}

/// [MQTT-4.7.3-1]: an empty topic name → close (v5 without a topic alias: Protocol Error 0x82).
#[test]
fn publish_with_an_empty_topic() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    v4_closes(port, &publish(V4, 0, "", 0, b"x"), "[MQTT-4.7.3-1]");
    v5_disconnects(
        port,
        &publish(V5, 0, "", 0, b"x"),
        &[0x82],
        "[MQTT-4.7.3-1] v5",
    );
}

/// v5 [MQTT-3.3.2-8]/[MQTT-3.3.2-9]: topic alias 0 or above the maximum → 0x94 (Topic Alias
/// invalid); an empty topic with an alias never set → Protocol Error.
#[test]
fn v5_invalid_topic_aliases() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let with_alias =
        |topic: &[u8], n| publish_raw(0x30, topic, None, Some(&prop_u16(0x23, n)), b"x");
    v5_disconnects(
        port,
        &with_alias(b"t", 0),
        &[0x82, 0x94],
        "[MQTT-3.3.2-8] alias 0",
    );
    v5_disconnects(
        port,
        &with_alias(b"t", 11),
        &[0x94],
        "[MQTT-3.3.2-9] alias 11 > 10",
    );
    v5_disconnects(port, &with_alias(b"", 3), &[0x82, 0x94], "unknown alias");
}

/// [MQTT-1.5.3-1] (v5 [MQTT-1.5.4-1]): ill-formed UTF-8 (also an encoded surrogate) in a topic
/// → close (v5: 0x81); [MQTT-1.5.3-2] (v5 [MQTT-1.5.4-2]) U+0000 likewise.
#[test]
fn topic_with_invalid_utf8_or_nul() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    for topic in [&b"a/\xc3\x28"[..], b"\xff", b"a/\xed\xa0\x80", b"a\x00b"] {
        v4_closes(
            port,
            &publish_raw(0x30, topic, None, None, b"x"),
            "[MQTT-1.5.3-1/2]",
        );
        v5_disconnects(
            port,
            &publish_raw(0x30, topic, None, Some(&[]), b"x"),
            &[0x81],
            "[MQTT-1.5.4-1/2] v5",
        );
        let filter = [(topic, 0u8)];
        v4_closes(
            port,
            &packet(0x82, &subscribe_body(V4, 1, &filter, &[])),
            "[MQTT-1.5.3-1/2] in a filter",
        );
        v5_disconnects(
            port,
            &packet(0x82, &subscribe_body(V5, 1, &filter, &[])),
            &[0x81],
            "[MQTT-1.5.4-1/2] in a filter (v5)",
        );
    }
}

/// [MQTT-3.8.3-3] (v5 [MQTT-3.8.3-2]): a SUBSCRIBE without topic filters → close (v5: 0x82);
/// [MQTT-3-8.3-4] (v5 [MQTT-3.8.3-5]) QoS 3 or reserved option bits → close (v5: 0x81);
/// v5 [MQTT-3.8.3-4] No Local on a shared subscription → 0x82.
#[test]
fn subscribe_payload_violations() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    v4_closes(
        port,
        &packet(0x82, &subscribe_body(V4, 1, &[], &[])),
        "[MQTT-3.8.3-3]",
    );
    v5_disconnects(
        port,
        &packet(0x82, &subscribe_body(V5, 1, &[], &[])),
        &[0x82],
        "[MQTT-3.8.3-2] v5",
    );
    v4_closes(
        port,
        &raw::subscribe(V4, 1, &[("a", 3)]),
        "[MQTT-3-8.3-4] QoS 3",
    );
    v4_closes(
        port,
        &raw::subscribe(V4, 1, &[("a", 0x04)]),
        "[MQTT-3-8.3-4] reserved bit",
    );
    v5_disconnects(
        port,
        &raw::subscribe(V5, 1, &[("a", 3)]),
        &[0x81, 0x82],
        "v5 QoS 3",
    );
    v5_disconnects(
        port,
        &raw::subscribe(V5, 1, &[("a", 0x40)]),
        &[0x81],
        "[MQTT-3.8.3-5] v5 reserved bits",
    );
    v5_disconnects(
        port,
        &raw::subscribe(V5, 1, &[("a", 0x30)]),
        &[0x81, 0x82],
        "v5 retain handling 3",
    );
    v5_disconnects(
        port,
        &raw::subscribe(V5, 1, &[("$share/g/a", 0x04)]),
        &[0x82],
        "[MQTT-3.8.3-4] v5 no local on a shared subscription",
    );
}

/// [MQTT-4.7.1-1]/[MQTT-4.7.1-2] (3.1.1: [MQTT-4.7.1-2]/[MQTT-4.7.1-3]): invalid filters get
/// SUBACK 0x80 (v5: 0x8F Topic Filter invalid) each, the others are granted, and the
/// connection stays usable.
#[test]
fn invalid_topic_filters_are_refused_in_the_suback() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let filters = [
        ("a/#/b", 1),
        ("sport+", 1),
        ("ok/#", 1),
        ("a/b#", 0),
        ("+x/y", 2),
    ];
    for (version, bad) in [(V4, 0x80), (V5, 0x8F)] {
        let mut c = Client::connected(port, version, "");
        let codes = c.subscribe(1, &filters);
        assert_eq!(
            codes,
            [bad, bad, 1, bad, bad],
            "MQTT {version}: SUBACK codes"
        );
        c.ping();
        send(port, &["-t", "ok/x", "-m", "still works"]);
        let p = parse_publish(version, &c.expect("PUBLISH"));
        assert_eq!(p.payload, b"still works");
    }
}

/// v5: a property given twice where the specification allows one (Payload Format Indicator,
/// Content Type) is a Protocol Error → DISCONNECT 0x82.
#[test]
fn v5_duplicate_properties() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let twice_pfi = [0x01, 0, 0x01, 0];
    v5_disconnects(
        port,
        &publish_raw(0x30, b"d", None, Some(&twice_pfi), b"x"),
        &[0x82],
        "duplicate payload format indicator",
    );
    let mut twice_ct = prop_str(0x03, b"a");
    twice_ct.extend(prop_str(0x03, b"b"));
    v5_disconnects(
        port,
        &publish_raw(0x30, b"d", None, Some(&twice_ct), b"x"),
        &[0x82],
        "duplicate content type",
    );
    // [MQTT-3.3.4-6]: a client must not send a subscription identifier.
    v5_disconnects(
        port,
        &publish_raw(0x30, b"d", None, Some(&[0x0B, 1]), b"x"),
        &[0x82],
        "[MQTT-3.3.4-6] subscription identifier from a client",
    );
}

/// [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]): a QoS 1 PUBLISH or a SUBSCRIBE with packet id 0 →
/// close (v5: 0x81 or 0x82).
#[test]
fn packet_identifier_zero() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    v4_closes(
        port,
        &publish(V4, 1, "a", 0, b"x"),
        "[MQTT-2.3.1-1] PUBLISH",
    );
    v5_disconnects(
        port,
        &publish(V5, 1, "a", 0, b"x"),
        &[0x81, 0x82],
        "PUBLISH v5",
    );
    v4_closes(
        port,
        &raw::subscribe(V4, 0, &[("a", 0)]),
        "[MQTT-2.3.1-1] SUBSCRIBE",
    );
    v5_disconnects(
        port,
        &raw::subscribe(V5, 0, &[("a", 0)]),
        &[0x81, 0x82],
        "SUBSCRIBE v5",
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness

/// xorshift64*, so the byte stream is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// 1..=max random bytes.
    fn noise(&mut self, max: usize) -> Vec<u8> {
        let n = 1 + self.below(max);
        self.bytes(n)
    }
}

/// Valid packets to truncate and mutate: a CONNECT and what may follow it.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for version in [V4, V5] {
        let will = Will {
            topic: b"fz/will",
            payload: b"w",
            qos: 1,
            props: if version == V5 {
                prop_u32(0x18, 1)
            } else {
                Vec::new()
            },
        };
        let connect = Connect::new(version, "fz").will(will).bytes();
        let mut session = connect.clone();
        session.extend(raw::subscribe(
            version,
            1,
            &[("fz/#", 2), ("$share/g/fz", 1)],
        ));
        session.extend(publish(version, 2, "fz/a", 2, b"payload"));
        session.extend(raw::pubrel(2));
        session.extend(publish(version, 1, "fz/ü", 3, b"p"));
        session.extend(raw::pingreq());
        session.extend(raw::disconnect(version, 0));
        out.push(connect);
        out.push(session);
    }
    let mut v5_props = prop_u16(0x23, 1);
    v5_props.extend(prop_str(0x03, b"ct"));
    let mut with_props = Connect::new(V5, "fzp").bytes();
    with_props.extend(publish_raw(0x33, b"fz/p", Some(4), Some(&v5_props), b"x"));
    with_props.extend(publish_raw(
        0x33,
        b"",
        Some(5),
        Some(&prop_u16(0x23, 1)),
        b"y",
    ));
    out.push(with_props);
    out
}

/// Random bytes, truncated and mutated packets from 300 connections (some left hanging open)
/// must not crash the broker or stop it serving others ("never crashed by any client").
#[test]
fn garbage_from_many_connections_does_not_disturb_other_clients() {
    let mut broker = SmqBroker::start(&[]);
    let port = broker.port();
    let watcher = Sub::start(port, &["-t", "fz/#", "-q", "1"]);
    let corpus = corpus();
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let corpus = corpus.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1).wrapping_mul(0x1234_5678_9ABC));
                let mut hanging = Vec::new();
                for i in 0..75 {
                    let mut c = Client::open(port);
                    let bytes = match i % 5 {
                        // Pure noise, sometimes after a valid CONNECT.
                        0 => rng.noise(300),
                        1 => {
                            let mut b = corpus[rng.below(corpus.len())].clone();
                            b.extend(rng.noise(64));
                            b
                        }
                        // Truncated.
                        2 => {
                            let b = &corpus[rng.below(corpus.len())];
                            b[..rng.below(b.len())].to_vec()
                        }
                        // Mutated: a few bytes changed.
                        3 => {
                            let mut b = corpus[rng.below(corpus.len())].clone();
                            for _ in 0..1 + rng.below(4) {
                                let at = rng.below(b.len());
                                b[at] = rng.next() as u8;
                            }
                            b
                        }
                        // Huge or overlong remaining lengths.
                        _ => match rng.below(3) {
                            0 => vec![0x10, 0xFF, 0xFF, 0xFF, 0x7F, 0, 4],
                            1 => vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
                            _ => {
                                let mut b = Connect::new(V5, "").bytes();
                                b.extend([0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
                                b.extend(rng.bytes(100));
                                b
                            }
                        },
                    };
                    // Sometimes in small pieces.
                    if rng.below(4) == 0 {
                        for chunk in bytes.chunks(1 + rng.below(7)) {
                            if c.try_send(chunk).is_err() {
                                break;
                            }
                        }
                    } else {
                        c.send(&bytes);
                    }
                    // Drain whatever comes back, briefly; keep some connections open.
                    let _ = c.read(Duration::from_millis(10));
                    if i % 7 == 0 {
                        hanging.push(c);
                    }
                }
                hanging
            })
        })
        .collect();
    let hanging: Vec<Vec<Client>> = workers
        .into_iter()
        .map(|w| w.join().expect("fuzz worker"))
        .collect();
    assert!(broker.is_running(), "the broker died\n{}", broker.log());
    // With the hanging connections still open, others are served.
    let sub = Sub::start(port, &["-t", "after/fuzz", "-C", "1", "-q", "1"]);
    send(port, &["-t", "after/fuzz", "-m", "still here", "-q", "1"]);
    assert_eq!(text(&sub.wait(SECS).stdout), "still here\n");
    let sub5 = Sub::start(port, &["-V", "5", "-t", "after/fuzz5", "-C", "1"]);
    send(
        port,
        &["-V", "5", "-t", "after/fuzz5", "-m", "v5 too", "-q", "2"],
    );
    assert_eq!(text(&sub5.wait(SECS).stdout), "v5 too\n");
    drop(hanging);
    drop(watcher);
    assert_serving(&mut broker);
    let log = broker.log();
    assert!(!log.contains("panicked"), "the broker panicked:\n{log}");
    let status = broker.stop();
    assert_eq!(status.code(), Some(0), "{}", broker.log());
}
