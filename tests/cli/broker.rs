//! `smq serve-broker`: interoperability through real clients (mosquitto_pub/sub, smq pub/sub,
//! MQTT.js over WebSocket) and protocol tests with hand-built packets (`raw`), each naming the
//! normative statement it checks: [MQTT-x.y.z-n] of MQTT 3.1.1 unless marked v5.
//!
//! Every test starts its own broker on ports it picks itself. Absence is checked with a marker
//! message published after the one that must not arrive (per-topic ordering), or where that is
//! impossible with a short bounded window (`-W`).

mod memory;
mod persist;
mod soak;

use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::certs::Certs;
use crate::support::clients::{
    kill_9, line_publisher, mpub_stdin, mqttjs, msub, send_line, smq_pub,
};
use crate::support::mosquitto::Mosquitto;
use crate::support::raw::{
    self, CONNACK, Client, Connect, DISCONNECT, PUBACK, PUBCOMP, PUBREC, Prop, Read, V4, V5, Will,
    hex, hex_all, packet, parse_connack_v5, parse_publish, prop_str, prop_u16, prop_u32, publish,
    publish_raw, subscribe_body, v4_closes, v5_disconnects,
};
use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::smq_sub::SmqSub;
use crate::support::{
    Sub, assert_ok, mosquitto_pub, run_with_timeout, send, text, wait_with_deadline,
};

const SECS: u64 = 30;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fresh connection gets PINGRESP: the broker still serves clients.
fn assert_serving(broker: &mut SmqBroker) {
    assert!(broker.is_running(), "the broker exited\n{}", broker.log());
    Client::connected(broker.port(), V4, "").ping();
}

// ---------------------------------------------------------------------------------------------
// Listeners, signals

#[test]
fn prints_every_listener_and_exits_0_on_sigterm_and_sigint() {
    let mut broker = SmqBroker::start(&[]);
    let urls: Vec<&str> = broker.bound().iter().map(|b| b.url.as_str()).collect();
    assert_eq!(urls.len(), 2, "{}", broker.log());
    assert!(urls[0].starts_with("mqtt://127.0.0.1:"), "{urls:?}");
    assert!(urls[1].starts_with("ws://127.0.0.1:"), "{urls:?}");
    assert_ne!(broker.port(), 0);
    // A connected client doesn't hold up a graceful shutdown.
    let sub = Sub::start(broker.port(), &["-t", "x"]);
    let status = broker.stop();
    assert_eq!(status.code(), Some(0), "SIGTERM\n{}", broker.log());
    drop(sub);

    let mut broker = SmqBroker::start(&[]);
    let status: ExitStatus = broker.signal("INT");
    assert_eq!(status.code(), Some(0), "SIGINT\n{}", broker.log());
}

// ---------------------------------------------------------------------------------------------
// Interoperability

#[test]
fn mosquitto_clients_v311_and_v5_interoperate() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let v311 = Sub::start(port, &["-t", "i/#", "-C", "3", "-v", "-q", "1"]);
    let v5 = Sub::start(port, &["-V", "5", "-t", "i/#", "-C", "3", "-v", "-q", "2"]);
    send(port, &["-t", "i/a", "-m", "from-311", "-q", "1"]);
    send(port, &["-V", "5", "-t", "i/b", "-m", "from-5", "-q", "2"]);
    send(port, &["-V", "5", "-t", "i/c", "-m", "qos0"]);
    for (name, sub) in [("v3.1.1", v311), ("v5", v5)] {
        // Different QoS levels: no order between them is promised (4.6).
        let out = sub.wait(SECS);
        let mut got: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
        got.sort();
        assert_eq!(
            got,
            ["i/a from-311", "i/b from-5", "i/c qos0"],
            "{name} subscriber\n{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn smq_pub_to_smq_sub_over_tcp() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sub = SmqSub::start(port, &["-t", "s/#", "-C", "4", "-v", "-q", "2"]);
    for (topic, msg, qos, version) in [
        ("s/0", "zero", "0", "311"),
        ("s/1", "one", "1", "311"),
        ("s/2", "two", "2", "5"),
        ("s/5", "five", "1", "5"),
    ] {
        let out = smq_pub(port, &["-t", topic, "-m", msg, "-q", qos, "-V", version]);
        assert_ok(&out, &format!("smq pub {topic}"));
    }
    let out = sub.wait(SECS);
    assert_eq!(
        text(&out.stdout),
        "s/0 zero\ns/1 one\ns/2 two\ns/5 five\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn websocket_with_smq_and_mqttjs() {
    let broker = SmqBroker::start(&[]);
    let (port, ws) = (broker.port(), broker.ws_port());
    let expected = "w/smq 1\nw/smq5 2\nw/js 3\nw/js5 4\n";
    let tcp = Sub::start(port, &["-t", "w/#", "-C", "4", "-v"]);
    let over_ws = SmqSub::start(ws, &["--ws", "-t", "w/#", "-C", "4", "-v", "-q", "1"]);
    let ws_s = ws.to_string();
    assert_ok(
        &smq_pub(ws, &["--ws", "-t", "w/smq", "-m", "1", "-q", "1"]),
        "smq pub --ws",
    );
    assert_ok(
        &smq_pub(
            ws,
            &[
                "--ws",
                "--ws-path",
                "/any/path",
                "-t",
                "w/smq5",
                "-m",
                "2",
                "-q",
                "2",
                "-V",
                "5",
            ],
        ),
        "smq pub --ws -V 5",
    );
    let js = mqttjs(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &ws_s,
        "-l",
        "ws",
        "-t",
        "w/js",
        "-m",
        "3",
        "-q",
        "1",
    ]);
    let js5 = mqttjs(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &ws_s,
        "-l",
        "ws",
        "--protocolVersion",
        "5",
        "-t",
        "w/js5",
        "-m",
        "4",
        "-q",
        "1",
    ]);
    let out = tcp.wait(SECS);
    assert_eq!(
        text(&out.stdout),
        expected,
        "MQTT.js said: {} / {}\n--- broker\n{}",
        text(&js.stderr),
        text(&js5.stderr),
        broker.log()
    );
    let out = over_ws.wait(SECS);
    assert_eq!(text(&out.stdout), expected, "{}", text(&out.stderr));
}

#[test]
fn tls_and_websocket_over_tls() {
    let certs = Certs::generate();
    let (cert, key, ca) = (certs.server_cert(), certs.server_key(), certs.ca());
    let ca = ca.to_str().unwrap();
    let broker = SmqBroker::start_with_listeners(
        &[
            "mqtt://127.0.0.1:0",
            "mqtts://127.0.0.1:0",
            "wss://127.0.0.1:0",
        ],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let (tls, wss) = (broker.tls_port(), broker.wss_port());
    let expected = "t/mosq 1\nt/smq 2\nt/smq-wss 3\nt/js-wss 4\n";
    let plain = Sub::start(broker.port(), &["-t", "t/#", "-C", "4", "-v"]);
    let over_tls = Sub::start(tls, &["-t", "t/#", "-C", "4", "-v", "--cafile", ca]);
    send(tls, &["-t", "t/mosq", "-m", "1", "-q", "1", "--cafile", ca]);
    assert_ok(
        &smq_pub(tls, &["-t", "t/smq", "-m", "2", "-q", "1", "--cafile", ca]),
        "smq pub mqtts",
    );
    assert_ok(
        &smq_pub(
            wss,
            &[
                "--ws",
                "-t",
                "t/smq-wss",
                "-m",
                "3",
                "-q",
                "1",
                "--cafile",
                ca,
            ],
        ),
        "smq pub wss",
    );
    let wss_s = wss.to_string();
    let js = mqttjs(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &wss_s,
        "-l",
        "wss",
        "--ca",
        ca,
        "-t",
        "t/js-wss",
        "-m",
        "4",
        "-q",
        "1",
    ]);
    let out = plain.wait(SECS);
    assert_eq!(
        text(&out.stdout),
        expected,
        "MQTT.js said: {}\n--- broker\n{}",
        text(&js.stderr),
        broker.log()
    );
    assert_eq!(text(&over_tls.wait(SECS).stdout), expected);
}

#[test]
fn require_certificate_refuses_tls_clients_without_one() {
    let certs = Certs::generate();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let (cert, key) = (certs.server_cert(), certs.server_key());
    let (ccert, ckey) = (certs.client_cert(), certs.client_key());
    let (ccert, ckey) = (ccert.to_str().unwrap(), ckey.to_str().unwrap());
    let broker = SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0", "mqtts://127.0.0.1:0"],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--cafile",
            ca,
            "--require-certificate",
        ],
    );
    let tls = broker.tls_port();
    let check = Sub::start(broker.port(), &["-t", "rc", "-C", "1"]);
    // Without a client certificate: refused, and nothing is published.
    let out = run_with_timeout(
        mosquitto_pub(tls).args(["-t", "rc", "-m", "no-cert", "-q", "1", "--cafile", ca]),
        None,
        SECS,
    );
    assert!(
        !out.status.success(),
        "mosquitto_pub without a client cert got through"
    );
    let out = smq_pub(
        tls,
        &["-t", "rc", "-m", "no-cert", "-q", "1", "--cafile", ca],
    );
    assert!(
        !out.status.success(),
        "smq pub without a client cert got through"
    );
    // With one signed by --cafile: accepted.
    send(
        tls,
        &[
            "-t",
            "rc",
            "-m",
            "with-cert",
            "-q",
            "1",
            "--cafile",
            ca,
            "--cert",
            ccert,
            "--key",
            ckey,
        ],
    );
    assert_eq!(text(&check.wait(SECS).stdout), "with-cert\n");
    let sub = Sub::start(
        tls,
        &[
            "-t", "rc2", "-C", "1", "--cafile", ca, "--cert", ccert, "--key", ckey,
        ],
    );
    assert_ok(
        &smq_pub(
            tls,
            &[
                "-t", "rc2", "-m", "smq", "--cafile", ca, "--cert", ccert, "--key", ckey,
            ],
        ),
        "smq pub with a client cert",
    );
    assert_eq!(text(&sub.wait(SECS).stdout), "smq\n");
}

// ---------------------------------------------------------------------------------------------
// QoS

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

// ---------------------------------------------------------------------------------------------
// Retained messages

/// [MQTT-3.3.1-5] store, [MQTT-3.3.1-6]/[MQTT-3.3.1-8] sent with RETAIN=1 on subscribe,
/// [MQTT-3.3.1-7] replaced, [MQTT-3.3.1-9] RETAIN=0 on an established subscription,
/// [MQTT-3.3.1-10]/[MQTT-3.3.1-11] cleared by a zero-length retained publish,
/// [MQTT-3.3.1-12] a non-retained publish leaves it alone.
#[test]
fn retained_messages_store_replace_clear() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let fmt = ["-F", "%r %q %p"];
    send(port, &["-t", "r/a", "-m", "one", "-r", "-q", "1"]);
    let s = Sub::start(
        port,
        &[&["-t", "r/a", "-q", "2", "-C", "1"][..], &fmt].concat(),
    );
    assert_eq!(
        text(&s.wait(SECS).stdout),
        "1 1 one\n",
        "stored with its QoS"
    );

    send(port, &["-t", "r/a", "-m", "two", "-r"]);
    let live = Sub::start(
        port,
        &[&["-t", "r/+", "-q", "1", "-C", "2"][..], &fmt].concat(),
    );
    send(port, &["-t", "r/a", "-m", "three", "-r", "-q", "1"]);
    assert_eq!(text(&live.wait(SECS).stdout), "1 0 two\n0 1 three\n");

    // A non-retained message doesn't touch the retained one.
    send(port, &["-t", "r/a", "-m", "transient"]);
    let s = Sub::start(port, &[&["-t", "r/a", "-C", "1"][..], &fmt].concat());
    assert_eq!(text(&s.wait(SECS).stdout), "1 0 three\n");

    // Zero-length retained: forwarded as normal, and clears.
    let live = Sub::start(port, &["-t", "r/a", "-C", "2", "-F", "%r [%p]"]);
    send(port, &["-t", "r/a", "-n", "-r"]);
    assert_eq!(text(&live.wait(SECS).stdout), "1 [three]\n0 []\n");
    let s = Sub::start(port, &[&["-t", "r/#", "-C", "1"][..], &fmt].concat());
    send(port, &["-t", "r/a", "-m", "marker"]);
    assert_eq!(
        text(&s.wait(SECS).stdout),
        "0 0 marker\n",
        "nothing retained"
    );
}

/// v5 [MQTT-3.3.1-11] retain handling 2 sends no retained messages, [MQTT-3.3.1-9] 0 does;
/// [MQTT-3.3.1-12]/[MQTT-3.3.1-13] retain-as-published.
#[test]
fn v5_retain_handling_and_retain_as_published() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    send(port, &["-t", "rh", "-m", "stored", "-r", "-q", "1"]);
    let never = SmqSub::start(
        port,
        &[
            "-V",
            "5",
            "-t",
            "rh",
            "--retain-handling",
            "never",
            "-C",
            "1",
            "-F",
            "%r %p",
        ],
    );
    let always = SmqSub::start(port, &["-V", "5", "-t", "rh", "-C", "2", "-F", "%r %p"]);
    send(port, &["-t", "rh", "-m", "live", "-q", "1"]);
    assert_eq!(
        text(&never.wait(SECS).stdout),
        "0 live\n",
        "retain handling 2"
    );
    assert_eq!(text(&always.wait(SECS).stdout), "1 stored\n0 live\n");

    let rap = SmqSub::start(
        port,
        &[
            "-V",
            "5",
            "-t",
            "rap",
            "--retain-as-published",
            "-C",
            "1",
            "-F",
            "%r %p",
        ],
    );
    let plain = SmqSub::start(port, &["-V", "5", "-t", "rap", "-C", "1", "-F", "%r %p"]);
    send(port, &["-V", "5", "-t", "rap", "-m", "x", "-r"]);
    assert_eq!(text(&rap.wait(SECS).stdout), "1 x\n", "retain as published");
    assert_eq!(text(&plain.wait(SECS).stdout), "0 x\n");
}

/// v5 [MQTT-3.3.1-10]: retain handling 1 sends retained messages only for a new subscription.
#[test]
fn v5_retain_handling_1_only_on_a_new_subscription() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    send(port, &["-t", "rh1", "-m", "stored", "-r"]);
    let mut c = Client::connected(port, V5, "");
    let sub = |pid| packet(0x82, &subscribe_body(V5, pid, &[(b"rh1", 0x10)], &[]));
    c.send(&sub(1));
    let (_, before) = c.expect_kind(raw::SUBACK, "SUBACK");
    assert!(before.is_empty());
    let p = parse_publish(V5, &c.expect("the retained message"));
    assert_eq!((p.retain, &p.payload[..]), (true, &b"stored"[..]));
    // The same subscription again: no retained message this time.
    c.send(&sub(2));
    c.expect_kind(raw::SUBACK, "second SUBACK");
    send(port, &["-t", "rh1", "-m", "marker"]);
    let p = parse_publish(V5, &c.expect("the marker"));
    assert_eq!(
        p.payload, b"marker",
        "retained message re-sent for an existing subscription"
    );
}

// ---------------------------------------------------------------------------------------------
// Wills

/// [MQTT-3.1.2-8]: the will is published when the connection dies;
/// [MQTT-3.1.2-10]: not after a normal DISCONNECT.
#[test]
fn will_on_abnormal_close_and_not_on_disconnect() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let will = Sub::start(port, &["-t", "wl/will", "-C", "1", "-v"]);
    let no_will = Sub::start(port, &["-t", "wl/none", "-C", "1", "-W", "3"]);
    let alive = Sub::start(port, &["-t", "wl/alive", "-C", "2"]);

    let (graceful, mut g_in) = line_publisher(
        port,
        &[
            "-t",
            "wl/alive",
            "--will-topic",
            "wl/none",
            "--will-payload",
            "x",
        ],
    );
    let (mut dying, mut d_in) = line_publisher(
        port,
        &[
            "-t",
            "wl/alive",
            "--will-topic",
            "wl/will",
            "--will-payload",
            "died",
            "--will-qos",
            "1",
        ],
    );
    send_line(&mut g_in, "g");
    send_line(&mut d_in, "d");
    let out = alive.wait(SECS);
    assert_eq!(text(&out.stdout).lines().count(), 2, "both connected");
    // End of input: smq pub sends DISCONNECT and exits.
    drop(g_in);
    let out =
        wait_with_deadline(graceful, Duration::from_secs(SECS)).expect("smq pub exits at EOF");
    assert_ok(&out, "smq pub -l");
    kill_9(&mut dying);
    drop(d_in);
    assert_eq!(text(&will.wait(SECS).stdout), "wl/will died\n");
    let out = no_will.wait(SECS);
    assert_eq!(
        out.status.code(),
        Some(27),
        "will published after DISCONNECT"
    );
    assert_eq!(text(&out.stdout), "");
}

/// v5 [MQTT-3.14.4-3]: DISCONNECT 0x00 discards the will; 0x04 (Disconnect with Will Message)
/// publishes it.
#[test]
fn v5_disconnect_with_will_message_publishes_the_will() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sub = Sub::start(port, &["-t", "w4/#", "-C", "2", "-v"]);
    for (reason, topic) in [(0x00, "w4/normal"), (0x04, "w4/with-will")] {
        let will = Will {
            topic: topic.as_bytes(),
            payload: b"will",
            qos: 1,
            props: Vec::new(),
        };
        let (mut c, _) = Client::connect(port, &Connect::new(V5, "").will(will));
        c.send(&raw::disconnect(V5, reason));
        let got = c.expect_close(raw::REPLY, "DISCONNECT");
        assert!(got.is_empty(), "{}", hex_all(&got));
    }
    send(port, &["-t", "w4/marker", "-m", "m"]);
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "w4/with-will will\nw4/marker m\n"
    );
}

/// v5 [MQTT-3.1.2-8]: with a will delay the will is published after the delay.
#[test]
fn v5_will_delay_publishes_after_the_delay() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let will = Sub::start(port, &["-t", "wd/will", "-C", "1", "-v"]);
    let alive = Sub::start(port, &["-t", "wd/alive", "-C", "1"]);
    let (mut child, mut stdin) = line_publisher(
        port,
        &[
            "-V",
            "5",
            "-c",
            "-x",
            "60",
            "-i",
            "wd-client",
            "-t",
            "wd/alive",
            "--will-topic",
            "wd/will",
            "--will-payload",
            "late",
            "-D",
            "will",
            "will-delay-interval",
            "2",
        ],
    );
    send_line(&mut stdin, "up");
    alive.wait(SECS);
    let killed = Instant::now();
    kill_9(&mut child);
    assert_eq!(text(&will.wait(SECS).stdout), "wd/will late\n");
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "will delay 2 s, but the will came after {waited:?}"
    );
}

/// v5 [MQTT-3.1.3-9]: reconnecting to the session within the will delay cancels the will.
#[test]
fn v5_will_delay_is_cancelled_by_reconnecting() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let will = Sub::start(port, &["-t", "wr/will", "-C", "1", "-W", "5"]);
    let session = [
        "-V",
        "5",
        "-c",
        "-x",
        "60",
        "-i",
        "wr-client",
        "-t",
        "wr/alive",
    ];
    let with_will = [
        "--will-topic",
        "wr/will",
        "--will-payload",
        "x",
        "-D",
        "will",
        "will-delay-interval",
        "2",
    ];
    let alive = Sub::start(port, &["-t", "wr/alive", "-C", "1"]);
    let (mut first, mut first_in) = line_publisher(port, &[&session[..], &with_will].concat());
    send_line(&mut first_in, "first");
    alive.wait(SECS);
    kill_9(&mut first);
    let alive = Sub::start(port, &["-t", "wr/alive", "-C", "1"]);
    let (_second, mut second_in) = line_publisher(port, &session);
    send_line(&mut second_in, "second");
    assert_eq!(text(&alive.wait(SECS).stdout), "second\n");
    let out = will.wait(SECS);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(27), String::new()),
        "the will was published although the session was resumed within the delay"
    );
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// [MQTT-3.1.2-4]/[MQTT-3.1.2-5] (v5 [MQTT-3.1.2-5]/[MQTT-3.1.2-23]): a persistent session
/// keeps its subscriptions and queues QoS 1 messages while the client is offline.
#[test]
fn persistent_session_queues_qos1_while_offline() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    for version in ["311", "5"] {
        let id = format!("keeper-{version}");
        let topic = format!("durable/{version}");
        let out = msub(
            port,
            &[
                "-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic, "-E",
            ],
        );
        assert_ok(&out, "mosquitto_sub -E");
        send(port, &["-t", &topic, "-m", "while away", "-q", "1"]);
        let out = msub(
            port,
            &[
                "-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic, "-C", "1", "-W", "10",
            ],
        );
        assert_eq!(
            text(&out.stdout),
            "while away\n",
            "MQTT {version}: {}",
            text(&out.stderr)
        );
    }
}

/// [MQTT-3.2.2-1], [MQTT-3.2.2-2], [MQTT-3.2.2-3] (v5 [MQTT-3.2.2-2], [MQTT-3.2.2-3]):
/// the session present flag.
#[test]
fn session_present_flag() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sp = |ack: &raw::Packet| ack.body[0];
    // 3.1.1
    let (mut c, ack) = Client::connect(port, &Connect::new(V4, "sp4").clean(false));
    assert_eq!(ack.bytes(), [CONNACK, 2, 0, 0], "no session yet");
    c.subscribe(1, &[("sp", 1)]);
    c.send(&raw::disconnect(V4, 0));
    c.expect_close(raw::REPLY, "DISCONNECT");
    let (mut c, ack) = Client::connect(port, &Connect::new(V4, "sp4").clean(false));
    assert_eq!(ack.bytes(), [CONNACK, 2, 1, 0], "session present");
    c.send(&raw::disconnect(V4, 0));
    c.expect_close(raw::REPLY, "DISCONNECT");
    let (_c, ack) = Client::connect(port, &Connect::new(V4, "sp4").clean(true));
    assert_eq!(ack.bytes(), [CONNACK, 2, 0, 0], "clean session discards");
    // v5: Clean Start 0 with a session expiry.
    let persistent = || {
        Connect::new(V5, "sp5")
            .clean(false)
            .props(prop_u32(0x11, 60))
    };
    let (mut c, ack) = Client::connect(port, &persistent());
    assert_eq!(sp(&ack), 0);
    c.send(&raw::disconnect(V5, 0));
    c.expect_close(raw::REPLY, "DISCONNECT");
    let (mut c, ack) = Client::connect(port, &persistent());
    assert_eq!(sp(&ack), 1, "v5 session present: {}", hex(&ack.bytes()));
    c.send(&raw::disconnect(V5, 0));
    c.expect_close(raw::REPLY, "DISCONNECT");
    let (_c, ack) = Client::connect(port, &persistent().clean(true));
    assert_eq!(sp(&ack), 0, "clean start discards");
    // v5 session expiry 0 (the default): the session ends with the connection.
    let (mut c, _) = Client::connect(port, &Connect::new(V5, "sp5-0").clean(false));
    c.send(&raw::disconnect(V5, 0));
    c.expect_close(raw::REPLY, "DISCONNECT");
    let (_c, ack) = Client::connect(port, &Connect::new(V5, "sp5-0").clean(false));
    assert_eq!(sp(&ack), 0, "session expiry 0 keeps no session");
}

/// [MQTT-3.1.4-2] (v5 [MQTT-3.1.4-3]): a second connection with the same client id closes the
/// first; in v5 the first gets DISCONNECT 0x8E (Session taken over).
#[test]
fn takeover_closes_the_first_connection() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let mut first = Client::connected(port, V4, "twin4");
    let mut second = Client::connected(port, V4, "twin4");
    let got = first.expect_close(raw::REPLY, "takeover (3.1.1)");
    assert!(got.is_empty(), "3.1.1 got {}", hex_all(&got));
    second.ping();

    let mut first = Client::connected(port, V5, "twin5");
    let mut second = Client::connected(port, V5, "twin5");
    let got = first.expect_close(raw::REPLY, "takeover (v5)");
    assert!(
        matches!(&got[..], [p] if p.kind() == DISCONNECT && p.reason() == 0x8E),
        "v5: expected DISCONNECT 0x8E then close, got [{}]",
        hex_all(&got)
    );
    second.ping();
}

/// [MQTT-3.1.2-24] (v5 [MQTT-3.1.2-22]): silence for 1.5 × Keep Alive closes the connection
/// (v5: DISCONNECT 0x8D Keep Alive timeout first); Keep Alive 0 is accepted and never times out.
#[test]
fn keepalive_zero_is_accepted_and_one_second_of_silence_times_out() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let (mut zero, _) = Client::connect(port, &Connect::new(V4, "ka0").keepalive(0));
    let (mut zero5, ack) = Client::connect(port, &Connect::new(V5, "ka0-5").keepalive(0));
    let (_, _, props) = parse_connack_v5(&ack);
    assert!(
        props
            .iter()
            .all(|(id, v)| *id != 0x13 || *v == Prop::U16(0)),
        "keep alive 0 was overridden: {props:?}"
    );
    let (mut one, _) = Client::connect(port, &Connect::new(V4, "ka1").keepalive(1));
    let (mut one5, _) = Client::connect(port, &Connect::new(V5, "ka1-5").keepalive(1));
    let limit = Duration::from_secs(10);
    let got = one.expect_close(limit, "keep alive 1 s (3.1.1)");
    assert!(got.is_empty(), "3.1.1 got {}", hex_all(&got));
    let got = one5.expect_close(limit, "keep alive 1 s (v5)");
    assert!(
        matches!(&got[..], [p] if p.kind() == DISCONNECT && p.reason() == 0x8D),
        "v5: expected DISCONNECT 0x8D then close, got [{}]",
        hex_all(&got)
    );
    // The keep-alive-0 connections saw the same silence and are still served.
    zero.ping();
    zero5.ping();
}

/// v5: the CONNACK advertises the limits: Receive Maximum = --max-inflight, Topic Alias
/// Maximum 10, Maximum Packet Size, Server Keep Alive when the client asked for more than
/// --max-keepalive [MQTT-3.2.2-21], and an Assigned Client Identifier for an empty one
/// [MQTT-3.2.2-16]. 3.1.1: an empty id with Clean Session 0 is refused [MQTT-3.1.3-8].
#[test]
fn connack_advertises_limits_and_assigns_client_ids() {
    let broker = SmqBroker::start(&[
        "--max-inflight",
        "7",
        "--max-packet-size",
        "2048",
        "--max-keepalive",
        "30",
    ]);
    let port = broker.port();
    let (_c, ack) = Client::connect(port, &Connect::new(V5, "").keepalive(60));
    let (sp, reason, props) = parse_connack_v5(&ack);
    assert_eq!((sp, reason), (false, 0));
    let get = |id: u8| props.iter().find(|(i, _)| *i == id).map(|(_, v)| v.clone());
    assert_eq!(get(0x21), Some(Prop::U16(7)), "receive maximum: {props:?}");
    assert_eq!(
        get(0x22),
        Some(Prop::U16(10)),
        "topic alias maximum: {props:?}"
    );
    assert_eq!(
        get(0x27),
        Some(Prop::U32(2048)),
        "maximum packet size: {props:?}"
    );
    assert_eq!(
        get(0x13),
        Some(Prop::U16(30)),
        "server keep alive: {props:?}"
    );
    let Some(Prop::Bin(assigned)) = get(0x12) else {
        panic!("no assigned client identifier: {props:?}");
    };
    assert!(!assigned.is_empty());
    let (_c2, ack) = Client::connect(port, &Connect::new(V5, ""));
    let (_, _, props2) = parse_connack_v5(&ack);
    assert!(
        !props2.contains(&(0x12, Prop::Bin(assigned.clone()))),
        "the same id assigned twice"
    );

    // 3.1.1 [MQTT-3.1.3-6]: empty id with clean session is accepted.
    let _ok = Client::connected(port, V4, "");
    let mut c = Client::open(port);
    c.send(&Connect::new(V4, "").clean(false).bytes());
    let got = c.expect_close(raw::REPLY, "[MQTT-3.1.3-8]");
    assert_eq!(
        got.iter().map(raw::Packet::bytes).collect::<Vec<_>>(),
        [vec![CONNACK, 2, 0, 2]],
        "[MQTT-3.1.3-8] CONNACK 0x02 then close"
    );
}

// ---------------------------------------------------------------------------------------------
// Topics and subscriptions

/// [MQTT-1.5.3-3] (v5 [MQTT-1.5.4-3]): U+FEFF is not skipped or stripped; [MQTT-4.7.3-4 v5]
/// no normalization. Non-ASCII topics work end to end.
#[test]
fn non_ascii_topics_and_a_leading_byte_order_mark() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let topics = ["\u{feff}bom/x", "ü/温度/😀", "a/\u{feff}"];
    let all = Sub::start(port, &["-t", "#", "-C", "4", "-v"]);
    let all5 = SmqSub::start(port, &["-V", "5", "-t", "#", "-C", "4", "-v"]);
    let bom = Sub::start(port, &["-t", "\u{feff}bom/+", "-C", "1", "-v"]);
    let stripped = Sub::start(port, &["-t", "bom/+", "-C", "1", "-v"]);
    let wild = Sub::start(port, &["-t", "+/温度/#", "-C", "1", "-v"]);
    send(port, &["-t", topics[0], "-m", "1", "-q", "1"]);
    assert_ok(
        &smq_pub(port, &["-t", topics[1], "-m", "2", "-q", "1", "-V", "5"]),
        "smq pub",
    );
    send(port, &["-V", "5", "-t", topics[2], "-m", "3"]);
    send(port, &["-t", "bom/marker", "-m", "4"]);
    let want = format!(
        "{} 1\n{} 2\n{} 3\nbom/marker 4\n",
        topics[0], topics[1], topics[2]
    );
    assert_eq!(text(&all.wait(SECS).stdout), want);
    assert_eq!(text(&all5.wait(SECS).stdout), want);
    assert_eq!(text(&bom.wait(SECS).stdout), format!("{} 1\n", topics[0]));
    assert_eq!(text(&stripped.wait(SECS).stdout), "bom/marker 4\n");
    assert_eq!(text(&wild.wait(SECS).stdout), format!("{} 2\n", topics[1]));
}

/// Section 4.7: `+` matches one level (also an empty one), `#` the parent and every level
/// below; [MQTT-4.7.2-1] filters starting with a wildcard don't match `$` topics; `$SYS/broker/
/// uptime` is published.
#[test]
fn wildcards_dollar_topics_and_sys_uptime() {
    let broker = SmqBroker::start(&["--sys-interval", "1"]);
    let port = broker.port();
    let expect = [
        ("#", "a a/b a/b/c a/b/c/d x/b/y /b/c"),
        ("a/#", "a a/b a/b/c a/b/c/d"),
        ("+/b/+", "a/b/c x/b/y /b/c"),
        ("a/+", "a/b"),
        ("+", "a"),
        ("+/+/+", "a/b/c x/b/y /b/c"),
        ("$own/#", "$own/x"),
    ];
    let subs: Vec<(&str, &str, Sub)> = expect
        .iter()
        .map(|(filter, want)| {
            let n = want.split(' ').count().to_string();
            (
                *filter,
                *want,
                Sub::start(port, &["-t", filter, "-C", &n, "-F", "%t"]),
            )
        })
        .collect();
    // A live $SYS message goes by while everyone is subscribed.
    let uptime = Sub::start(port, &["-t", "$SYS/broker/uptime", "-R", "-C", "1", "-v"]);
    let out = uptime.wait(SECS);
    let line = text(&out.stdout);
    assert!(
        line.starts_with("$SYS/broker/uptime ")
            && line.trim_end().len() > "$SYS/broker/uptime ".len(),
        "uptime: {line:?}"
    );
    send(port, &["-t", "$own/x", "-m", "m"]);
    send(port, &["-t", "$own", "-m", "m"]);
    for topic in ["a", "a/b", "a/b/c", "a/b/c/d", "x/b/y", "/b/c"] {
        send(port, &["-t", topic, "-m", "m"]);
    }
    for (filter, want, sub) in subs {
        let got = text(&sub.wait(SECS).stdout);
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(got.join(" "), want, "filter {filter}");
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

/// v5 4.8.2 shared subscriptions: two members of `$share/g/...` split 20 messages.
#[test]
fn shared_subscription_splits_messages_between_members() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let total = Arc::new(AtomicUsize::new(0));
    let members: Vec<_> = ["sh-a", "sh-b"]
        .iter()
        .map(|id| {
            let mut c = Client::connected(port, V5, id);
            assert_eq!(c.subscribe(1, &[("$share/g/sh", 1)]), [1]);
            c
        })
        .collect();
    let normal = Sub::start(port, &["-t", "sh", "-C", "20"]);
    let lines: String = (0..20).map(|i| format!("{i}\n")).collect();
    mpub_stdin(port, &["-t", "sh", "-l", "-q", "1"], lines.as_bytes());
    let readers: Vec<_> = members
        .into_iter()
        .map(|mut c| {
            let total = Arc::clone(&total);
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(15);
                let mut mine = 0;
                while total.load(Ordering::SeqCst) < 20 && Instant::now() < deadline {
                    if let Read::Packet(p) = c.read(Duration::from_millis(100)) {
                        if p.kind() == 0x30 {
                            let msg = parse_publish(V5, &p);
                            if let Some(pid) = msg.pid {
                                c.send(&raw::puback(pid));
                            }
                            mine += 1;
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let counts: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(
        text(&normal.wait(SECS).stdout),
        lines,
        "a normal subscriber gets all"
    );
    assert_eq!(
        counts.iter().sum::<usize>(),
        20,
        "each message once: {counts:?}"
    );
    assert!(
        counts.iter().all(|&n| n > 0),
        "both members get some: {counts:?}"
    );
}

/// v5 [MQTT-3.8.3-3]: No Local — a client doesn't get its own publishes.
#[test]
fn v5_no_local() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let mut c = Client::connected(port, V5, "nl-self");
    assert_eq!(c.subscribe(1, &[("nl", 0x04 | 1)]), [1]);
    c.send(&publish(V5, 1, "nl", 5, b"own"));
    let (ack, before) = c.expect_kind(PUBACK, "PUBACK");
    assert_eq!(&ack.body[..2], &[0, 5]);
    send(port, &["-t", "nl", "-m", "other", "-q", "1"]);
    let (p, _) = c.expect_kind(0x30, "PUBLISH");
    let got = parse_publish(V5, &p);
    assert!(
        before.is_empty(),
        "own message delivered: {}",
        hex_all(&before)
    );
    assert_eq!(got.payload, b"other", "own message delivered");
    // And through smq sub --no-local (its own connection doesn't publish): others still arrive.
    let s = SmqSub::start(port, &["-V", "5", "--no-local", "-t", "nl", "-C", "1"]);
    send(port, &["-t", "nl", "-m", "x"]);
    assert_eq!(text(&s.wait(SECS).stdout), "x\n");
}

/// v5 [MQTT-3.3.4-3]: the subscription identifier comes with each matching message.
#[test]
fn v5_subscription_identifiers() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let s = Sub::start(
        port,
        &[
            "-V",
            "5",
            "-t",
            "sid/#",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
            "-C",
            "1",
            "-F",
            "%S %p",
        ],
    );
    send(port, &["-t", "sid/x", "-m", "hi"]);
    assert_eq!(text(&s.wait(SECS).stdout), "7 hi\n");
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

// ---------------------------------------------------------------------------------------------
// Flow control and packet size (v5)

/// v5 [MQTT-3.3.4-9]: the server sends no more unacknowledged QoS 1 messages than the
/// client's Receive Maximum, and continues as they are acknowledged.
#[test]
fn v5_server_respects_the_client_receive_maximum() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let (mut c, _) = Client::connect(port, &Connect::new(V5, "rm").props(prop_u16(0x21, 2)));
    assert_eq!(c.subscribe(1, &[("rm", 1)]), [1]);
    let lines: String = (0..5).map(|i| format!("{i}\n")).collect();
    mpub_stdin(port, &["-t", "rm", "-l", "-q", "1"], lines.as_bytes());
    let mut pids = Vec::new();
    for _ in 0..2 {
        let p = parse_publish(V5, &c.expect("PUBLISH"));
        pids.push(p.pid.unwrap());
    }
    match c.read(Duration::from_millis(500)) {
        Read::TimedOut => {}
        other => panic!("a third unacknowledged PUBLISH with receive maximum 2: {other:?}"),
    }
    let mut got = 2;
    while got < 5 {
        c.send(&raw::puback(pids.remove(0)));
        let p = parse_publish(V5, &c.expect("PUBLISH after PUBACK"));
        pids.push(p.pid.unwrap());
        got += 1;
    }
}

/// v5: more unacknowledged QoS 2 PUBLISHes than the server's Receive Maximum → DISCONNECT
/// 0x93 (Receive Maximum exceeded).
#[test]
fn v5_client_exceeding_receive_maximum_is_disconnected() {
    let broker = SmqBroker::start(&["--max-inflight", "2"]);
    let port = broker.port();
    let mut c = Client::connected(port, V5, "");
    for pid in 1..=3 {
        c.send(&publish(V5, 2, "rmx", pid, b"x"));
    }
    let got = c.expect_close(raw::REPLY, "receive maximum exceeded");
    let last = got.last().map(|p| (p.kind(), p.reason()));
    assert_eq!(
        last,
        Some((DISCONNECT, 0x93)),
        "expected PUBREC, PUBREC, DISCONNECT 0x93, got [{}]",
        hex_all(&got)
    );
}

/// v5 [MQTT-3.1.2-24]/[MQTT-3.1.2-25]: nothing larger than the client's Maximum Packet Size is
/// sent to it; the message is dropped for that client.
#[test]
fn v5_server_respects_the_client_maximum_packet_size() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let (mut c, _) = Client::connect(port, &Connect::new(V5, "mps").props(prop_u32(0x27, 100)));
    assert_eq!(c.subscribe(1, &[("mps", 0)]), [0]);
    send(port, &["-t", "mps", "-m", &"x".repeat(500)]);
    send(port, &["-t", "mps", "-m", "small"]);
    let p = c.expect("PUBLISH");
    assert!(
        p.bytes().len() <= 100,
        "sent a {}-byte packet",
        p.bytes().len()
    );
    assert_eq!(parse_publish(V5, &p).payload, b"small");
}

/// A packet over --max-packet-size: 3.1.1 closes, v5 DISCONNECT 0x95 (Packet too large).
#[test]
fn packet_larger_than_max_packet_size() {
    let broker = SmqBroker::start(&["--max-packet-size", "1024"]);
    let port = broker.port();
    let big = vec![b'x'; 2000];
    v4_closes(port, &publish(V4, 0, "big", 0, &big), "oversize (3.1.1)");
    v5_disconnects(
        port,
        &publish(V5, 0, "big", 0, &big),
        &[0x95],
        "oversize (v5)",
    );
    // Just under the limit is fine.
    let mut c = Client::connected(port, V4, "");
    c.send(&publish(V4, 1, "ok", 1, &vec![b'x'; 900]));
    assert_eq!(c.expect("PUBACK").first, PUBACK);
}

// ---------------------------------------------------------------------------------------------
// Validation: malformed and forbidden packets

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

/// [MQTT-3.1.0-2]: a second CONNECT is a protocol violation → close (v5: 0x82).
#[test]
fn second_connect() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    v4_closes(port, &Connect::new(V4, "again").bytes(), "[MQTT-3.1.0-2]");
    v5_disconnects(
        port,
        &Connect::new(V5, "again").bytes(),
        &[0x82],
        "[MQTT-3.1.0-2] v5",
    );
}

/// [MQTT-3.1.0-1]: the first packet must be CONNECT; anything else → close, no CONNACK.
#[test]
fn first_packet_not_connect() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    for first in [
        raw::pingreq(),
        publish(V4, 0, "a", 0, b"x"),
        raw::subscribe(V4, 1, &[("a", 0)]),
        raw::disconnect(V4, 0),
    ] {
        let mut c = Client::open(port);
        c.send(&first);
        let got = c.expect_close(raw::REPLY, "[MQTT-3.1.0-1]");
        assert!(
            got.iter()
                .all(|p| p.kind() != CONNACK || p.body.get(1) != Some(&0)),
            "[MQTT-3.1.0-1]: sent {}, got [{}]",
            hex(&first),
            hex_all(&got)
        );
        assert!(
            got.iter()
                .all(|p| p.kind() == CONNACK || p.kind() == DISCONNECT),
            "[MQTT-3.1.0-1]: sent {}, got [{}]",
            hex(&first),
            hex_all(&got)
        );
    }
}

/// [MQTT-3.1.2-2]: an unsupported protocol level (3 with the name "MQTT") → CONNACK 0x01 and
/// close. [MQTT-3.1.2-3]: the reserved connect flag set → close.
#[test]
fn connect_with_unsupported_level_or_reserved_flag() {
    let mut broker = SmqBroker::start(&[]);
    let port = broker.port();
    let mut c = Client::open(port);
    c.send(&Connect::new(3, "lvl3").bytes());
    let got = c.expect_close(raw::REPLY, "[MQTT-3.1.2-2]");
    assert_eq!(
        hex_all(&got),
        "20 02 00 01",
        "[MQTT-3.1.2-2] expected CONNACK 0x01 then close"
    );
    for version in [V4, V5] {
        let mut connect = Connect::new(version, "reserved");
        connect.extra_flags = 0x01;
        let mut c = Client::open(port);
        c.send(&connect.bytes());
        let got = c.expect_close(raw::REPLY, "[MQTT-3.1.2-3]");
        assert!(
            got.iter()
                .all(|p| p.kind() != CONNACK || p.body.get(1) != Some(&0)),
            "[MQTT-3.1.2-3] MQTT {version}: accepted the reserved flag: [{}]",
            hex_all(&got)
        );
    }
    assert_serving(&mut broker);
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

/// MQTT 3.1 ("MQIsdp", level 3), which older phone and board libraries still send, is served
/// as 3.1.1 (Sensor Logger's protocol level is undocumented; SENSORS.md §1.4).
#[test]
fn mqtt_3_1_clients_are_served() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sub = Sub::start(port, &["-V", "mqttv31", "-t", "old/#", "-C", "1", "-v"]);
    let out = run_with_timeout(
        mosquitto_pub(port).args(["-V", "mqttv31", "-t", "old/board", "-m", "hi", "-q", "1"]),
        None,
        30,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&sub.wait(30).stdout), "old/board hi\n");
}
