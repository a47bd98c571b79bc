//! PUBLISH: delivered QoS, QoS 1 and 2 flows, topic aliases, message expiry, properties passed
//! through, and client publishes on `$SYS` compared with Mosquitto's.

use std::time::Duration;

use super::SECS;
use crate::support::clients::msub;
use crate::support::mosquitto::Mosquitto;
use crate::support::raw::{
    self, Client, Connect, PUBACK, PUBCOMP, PUBREC, V4, V5, Will, parse_publish, prop_str,
    prop_u16, prop_u32, publish, publish_raw,
};
use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::{Sub, assert_ok, send, text};

/// [MQTT-3.8.4-6] (v5 [MQTT-3.8.4-8]): delivered QoS = min(published, granted), all nine.
#[test]
fn delivered_qos_is_the_minimum_of_published_and_granted() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let subs: Vec<(u8, Sub)> = (0..3u8)
        .map(|granted| {
            let q = granted.to_string();
            (
                granted,
                Sub::start(port, &["-t", "q", "-q", &q, "-C", "3", "-F", "%q"]),
            )
        })
        .collect();
    for published in ["0", "1", "2"] {
        send(port, &["-t", "q", "-m", published, "-q", published]);
    }
    for (granted, sub) in subs {
        let out = sub.wait(SECS);
        let mut got: Vec<u8> = text(&out.stdout)
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        got.sort_unstable();
        let want: Vec<u8> = (0..3u8).map(|p| p.min(granted)).collect();
        assert_eq!(got, want, "granted QoS {granted}, published 0, 1, 2");
    }
}

/// [MQTT-4.3.3-2] (v5 [MQTT-4.3.3-10]): a QoS 2 PUBLISH repeated (DUP) before PUBREL is
/// acknowledged with PUBREC again and delivered once; PUBREL gets PUBCOMP (v5
/// [MQTT-4.3.3-11]); after PUBCOMP the same packet id is a new message (v5 [MQTT-4.3.3-12]).
#[test]
fn qos2_is_delivered_exactly_once_when_the_publish_is_repeated() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    // Everything at QoS 2 on one topic, so the order is fixed and a duplicate would show.
    let sub = Sub::start(port, &["-t", "once", "-C", "4", "-q", "2"]);
    for (version, payloads) in [(V4, &["x4"][..]), (V5, &["x5", "y5"][..])] {
        let mut c = Client::connected(port, version, "");
        for payload in payloads {
            let msg = publish(version, 2, "once", 7, payload.as_bytes());
            c.send(&msg);
            let rec = c.expect("PUBREC");
            assert_eq!((rec.first, &rec.body[..2]), (PUBREC, &[0, 7][..]));
            let mut dup = msg.clone();
            dup[0] |= 0x08;
            c.send(&dup);
            let rec = c.expect("second PUBREC");
            assert_eq!((rec.first, &rec.body[..2]), (PUBREC, &[0, 7][..]));
            c.send(&raw::pubrel(7));
            let comp = c.expect("PUBCOMP");
            assert_eq!((comp.first, &comp.body[..2]), (PUBCOMP, &[0, 7][..]));
        }
        if version == V5 {
            c.send(&publish(version, 2, "once", 8, b"end"));
            assert_eq!(c.expect("PUBREC").first, PUBREC);
            c.send(&raw::pubrel(8));
            assert_eq!(c.expect("PUBCOMP").first, PUBCOMP);
        }
    }
    assert_eq!(text(&sub.wait(SECS).stdout), "x4\nx5\ny5\nend\n");
}

/// [MQTT-4.4.0-1 v5] / 3.1.1 4.4: unacknowledged QoS 1 is resent with DUP=1 and the same
/// packet id when the client resumes its session.
#[test]
fn unacknowledged_qos1_is_redelivered_with_dup_on_reconnect() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    for (version, id) in [(V4, "redeliver4"), (V5, "redeliver5")] {
        let session = |clean| {
            let mut c = Connect::new(version, id).clean(clean);
            // v5: Clean Start 0 alone keeps no session; it needs a session expiry.
            if version == V5 {
                c = c.props(prop_u32(0x11, 60));
            }
            c
        };
        let (mut c, _) = Client::connect(port, &session(false));
        assert_eq!(c.subscribe(1, &[("re", 1)]), [1]);
        send(port, &["-t", "re", "-m", "payload", "-q", "1"]);
        let first = parse_publish(version, &c.expect("PUBLISH"));
        assert!(!first.dup, "first delivery has DUP=0 [MQTT-3.3.1-1]");
        assert_eq!(first.qos, 1);
        c.shutdown();
        let (mut c, ack) = Client::connect(port, &session(false));
        assert_eq!(ack.body[0] & 1, 1, "session present");
        let again = parse_publish(version, &c.expect("the PUBLISH again"));
        assert!(again.dup, "redelivery has DUP=1");
        assert_eq!(again.pid, first.pid, "same packet id");
        assert_eq!(again.payload, b"payload");
        c.send(&raw::puback(again.pid.unwrap()));
        c.ping();
    }
}

/// The topics the `$SYS` probe publishes to: refused by Mosquitto but for the bridge state.
const SYS_TOPICS: [&str; 5] = [
    "$SYS/broker/version",
    "$SYS",
    "$SYSTEM/x",
    "$SYS/broker/connection/bridge/state",
    "probe/end",
];

/// What a broker does with client PUBLISHes and wills on `$SYS` topics, as lines to compare
/// with Mosquitto's: the acknowledgement of each publish (QoS 0, 1, 2, retained), what a
/// subscriber gets live, what a later one gets retained, and which wills are published.
fn sys_probe(port: u16, version: u8) -> Vec<String> {
    let ack_reason = |p: &raw::Packet| p.body.get(2).copied().unwrap_or(0);
    let mut lines = Vec::new();
    let mut watch = Client::connected(port, version, &format!("sys-watch-{version}"));
    let filters: Vec<(&str, u8)> = SYS_TOPICS
        .iter()
        .chain(&["$SYS/will", "$SYS/broker/connection/w/state"])
        .map(|t| (*t, 0))
        .collect();
    watch.subscribe(1, &filters);

    let mut spoof = Client::connected(port, version, &format!("sys-spoof-{version}"));
    let mut pid = 10;
    for topic in SYS_TOPICS {
        for qos in 0..=2u8 {
            pid += 1;
            let props = (version == V5).then_some(&[][..]);
            let payload = format!("spoof {qos}");
            let first = 0x31 | (qos << 1);
            spoof.send(&publish_raw(
                first,
                topic.as_bytes(),
                (qos > 0).then_some(pid),
                props,
                payload.as_bytes(),
            ));
            if qos == 0 {
                continue;
            }
            let ack = spoof.expect("an acknowledgement");
            lines.push(format!(
                "{topic} qos {qos}: ack {:02x} reason {:02x}",
                ack.kind(),
                ack_reason(&ack)
            ));
            // Where the QoS 2 flow goes on (3.1.1 always, v5 unless refused), it completes.
            if qos == 2 && (version == V4 || ack_reason(&ack) < 0x80) {
                spoof.send(&raw::pubrel(pid));
                let done = spoof.expect("PUBCOMP");
                lines.push(format!(
                    "{topic} qos 2: then {:02x} reason {:02x}",
                    done.kind(),
                    ack_reason(&done)
                ));
            }
        }
    }
    // What reached the subscriber before the marker (the last topic, QoS 2); not what was
    // retained before it subscribed.
    let mut live = Vec::new();
    loop {
        let p = parse_publish(version, &watch.expect("the marker"));
        if p.retain {
            continue;
        }
        let (topic, payload) = (text(&p.topic), text(&p.payload));
        if topic == "probe/end" && payload == "spoof 2" {
            break;
        }
        // The broker's own $SYS updates are not the client's.
        if payload.starts_with("spoof") {
            live.push(format!("live {topic} {payload}"));
        }
    }
    live.sort();
    lines.extend(live);

    // What is retained now: sent on subscribing, before a message published after the SUBACK.
    let mut later = Client::connected(port, version, &format!("sys-later-{version}"));
    let mut later_filters = filters.clone();
    later_filters.push(("probe/later", 0));
    later.subscribe(2, &later_filters);
    later.send(&publish(version, 0, "probe/later", 0, b"marker"));
    let mut retained = Vec::new();
    loop {
        let p = parse_publish(version, &later.expect("retained messages, then the marker"));
        let (topic, payload) = (text(&p.topic), text(&p.payload));
        if topic == "probe/later" {
            break;
        }
        if payload.starts_with("spoof") {
            retained.push(format!("retained {topic} {payload}"));
        }
    }
    retained.sort();
    lines.extend(retained);

    // Wills: the connection ends without a DISCONNECT. The refused one goes first; the
    // allowed one is the marker after it.
    for (id, topic) in [
        ("sys-will-1", "$SYS/will"),
        ("sys-will-2", "$SYS/broker/connection/w/state"),
    ] {
        let will = Will {
            topic: topic.as_bytes(),
            payload: b"gone",
            qos: 0,
            props: Vec::new(),
        };
        let (mut c, ack) = Client::connect(port, &Connect::new(version, id).will(will));
        lines.push(format!("will {topic}: CONNACK {:02x}", ack.body[1]));
        c.shutdown();
    }
    loop {
        let p = parse_publish(version, &watch.expect("the allowed will"));
        let (topic, payload) = (text(&p.topic), text(&p.payload));
        if payload == "gone" {
            lines.push(format!("will published on {topic}"));
            if topic == "$SYS/broker/connection/w/state" {
                break;
            }
        }
    }
    lines
}

/// Clients cannot publish (or retain, or leave a will) on `$SYS`: Mosquitto 2.0's rule,
/// checked against a real Mosquitto, bridge state topics included; the broker's own `$SYS`
/// updates go on.
#[test]
fn sys_topics_refuse_client_publishes_as_mosquitto_does() {
    let broker = SmqBroker::start(&["--sys-interval", "1"]);
    let mosquitto = Mosquitto::start();
    for version in [V4, V5] {
        let ours = sys_probe(broker.port(), version);
        assert_eq!(
            ours,
            sys_probe(mosquitto.port(), version),
            "v{version}: smq, then Mosquitto"
        );
        let refused = if version == V5 { "87" } else { "00" };
        for (topic, allowed) in [
            ("$SYS/broker/version", false),
            ("$SYS", false),
            ("$SYSTEM/x", false),
            ("$SYS/broker/connection/bridge/state", true),
        ] {
            let reason = if allowed { "00" } else { refused };
            assert!(
                ours.contains(&format!("{topic} qos 1: ack 40 reason {reason}")),
                "{ours:?}"
            );
            let delivered = ours.contains(&format!("live {topic} spoof 1"));
            let retained = ours.contains(&format!("retained {topic} spoof 2"));
            assert_eq!(
                (delivered, retained),
                (allowed, allowed),
                "{topic}: {ours:?}"
            );
        }
        assert!(
            !ours.contains(&"will published on $SYS/will".to_owned()),
            "{ours:?}"
        );
    }
    // The broker's own version is what $SYS/broker/version holds.
    let version = Sub::start(broker.port(), &["-t", "$SYS/broker/version", "-C", "1"]);
    let version = text(&version.wait(SECS).stdout);
    assert!(version.starts_with("smq "), "{version:?}");
}

/// v5 [MQTT-3.3.2-12]: the server accepts topic aliases 1..=max from the client; the alias
/// with an empty topic stands for the topic it was set with.
#[test]
fn v5_topic_alias_from_the_client() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let s = Sub::start(port, &["-t", "ta/#", "-C", "3", "-v"]);
    let mut c = Client::connected(port, V5, "");
    let alias = |n| prop_u16(0x23, n);
    c.send(&publish_raw(
        0x32,
        b"ta/x",
        Some(1),
        Some(&alias(1)),
        b"one",
    ));
    c.send(&publish_raw(0x32, b"", Some(2), Some(&alias(1)), b"two"));
    // Re-mapped to another topic.
    c.send(&publish_raw(
        0x32,
        b"ta/y",
        Some(3),
        Some(&alias(1)),
        b"three",
    ));
    for pid in 1..=3u8 {
        let (ack, _) = c.expect_kind(PUBACK, "PUBACK");
        assert_eq!(&ack.body[..2], &[0, pid]);
    }
    assert_eq!(
        text(&s.wait(SECS).stdout),
        "ta/x one\nta/x two\nta/y three\n"
    );
}

/// v5 [MQTT-3.3.2-5]: an expired message is not delivered (retained, and queued for an offline
/// session); [MQTT-3.3.2-6] the expiry sent on is decremented.
#[test]
fn v5_message_expiry() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let out = msub(
        port,
        &[
            "-V", "5", "-c", "-i", "exp-sess", "-q", "1", "-t", "expq", "-E",
        ],
    );
    assert_ok(&out, "mosquitto_sub -E");
    let expiry = |secs| ["-D", "publish", "message-expiry-interval", secs];
    send(
        port,
        &[
            &["-V", "5", "-t", "expq", "-m", "short", "-q", "1"][..],
            &expiry("1"),
        ]
        .concat(),
    );
    send(
        port,
        &[
            &["-V", "5", "-t", "expq", "-m", "long", "-q", "1"][..],
            &expiry("300"),
        ]
        .concat(),
    );
    send(
        port,
        &[
            &["-V", "5", "-t", "exp", "-m", "soon", "-r", "-q", "1"][..],
            &expiry("1"),
        ]
        .concat(),
    );
    // Poll until the retained one is gone: each probe subscribes and then publishes a marker.
    let gone = poll(Duration::from_secs(15), Duration::from_millis(200), || {
        let s = Sub::start(port, &["-t", "exp", "-C", "1", "-F", "%r %p"]);
        send(port, &["-t", "exp", "-m", "marker"]);
        let got = text(&s.wait(SECS).stdout);
        match got.as_str() {
            "0 marker\n" => Some(()),
            "1 soon\n" => None,
            other => panic!("unexpected {other:?}"),
        }
    });
    assert!(gone.is_some(), "the retained message never expired");
    let out = msub(
        port,
        &[
            "-V", "5", "-c", "-i", "exp-sess", "-q", "1", "-t", "expq", "-C", "1", "-F", "%p %E",
        ],
    );
    let got = text(&out.stdout);
    let (payload, left) = got
        .trim_end()
        .split_once(' ')
        .unwrap_or((got.trim_end(), ""));
    assert_eq!(
        payload, "long",
        "the expired queued message was delivered: {got:?}"
    );
    let left: u32 = left.parse().unwrap_or_else(|_| panic!("expiry in {got:?}"));
    assert!(
        (280..300).contains(&left),
        "expiry not decremented: {got:?}"
    );
}

/// v5 [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18],
/// [MQTT-3.3.2-20]: properties pass through unaltered, user properties in order.
#[test]
fn v5_properties_pass_through() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let s = Sub::start(
        port,
        &["-V", "5", "-t", "props", "-C", "1", "-F", "%C|%P|%R|%D|%F"],
    );
    let mut c = Client::connected(port, V5, "");
    let mut p = prop_str(0x03, b"text/plain");
    for (k, v) in [("k2", "v2"), ("k1", "v1"), ("k2", "again")] {
        p.push(0x26);
        p.extend(raw::string(k.as_bytes()));
        p.extend(raw::string(v.as_bytes()));
    }
    p.extend(prop_str(0x08, b"resp/t"));
    p.extend(prop_str(0x09, b"corr"));
    p.extend([0x01, 1]);
    c.send(&publish_raw(0x32, b"props", Some(1), Some(&p), b"x"));
    c.expect_kind(PUBACK, "PUBACK");
    let got = text(&s.wait(SECS).stdout);
    let fields: Vec<&str> = got.trim_end().split('|').collect();
    assert_eq!(fields[0], "text/plain", "{got}");
    let users: Vec<&str> = fields[1].split_whitespace().collect();
    assert_eq!(users, ["k2:v2", "k1:v1", "k2:again"], "{got}");
    assert_eq!(&fields[2..], ["resp/t", "corr", "1"], "{got}");
}

/// v5 [MQTT-3.3.2-12], [MQTT-3.1.2-25]: the broker sets up aliases only up to the client's
/// Topic Alias Maximum, and never makes a packet too large with one: a message that fits the
/// client's Maximum Packet Size only without the alias's 3 bytes goes without it.
#[test]
fn v5_topic_aliases_to_the_client_never_push_a_packet_over_its_maximum_size() {
    let broker = SmqBroker::start(&[]);
    let topic = "lab/phone-1/accelerometer";
    // PUBLISH at QoS 0 of a 1-byte payload on it, with no properties: 31 bytes.
    let plain = 1 + 1 + 2 + topic.len() + 1 + 1;
    let mut props = prop_u16(0x22, 10);
    props.extend(prop_u32(0x27, plain as u32));
    let (mut c, _) = Client::connect(broker.port(), &Connect::new(V5, "tight").props(props));
    assert_eq!(c.subscribe(1, &[("lab/#", 0)]), [0]);
    for m in ["a", "b"] {
        send(broker.port(), &["-t", topic, "-m", m]);
        let p = c.expect("a PUBLISH");
        assert_eq!(p.bytes().len(), plain, "{:02x?}", p.bytes());
        let p = parse_publish(V5, &p);
        assert_eq!(
            (&p.topic[..], &p.payload[..]),
            (topic.as_bytes(), m.as_bytes())
        );
        assert!(p.props.is_empty(), "no alias: {:?}", p.props);
    }
}
