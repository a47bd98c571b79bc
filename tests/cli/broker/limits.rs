//! Flow control and packet size: the client's and the broker's Receive Maximum, the client's
//! Maximum Packet Size and `--max-packet-size`.

use std::time::Duration;

use crate::support::clients::mpub_stdin;
use crate::support::raw::{
    self, Client, Connect, DISCONNECT, PUBACK, Read, V4, V5, hex_all, parse_publish, prop_u16,
    prop_u32, publish, v4_closes, v5_disconnects,
};
use crate::support::send;
use crate::support::smq_broker::SmqBroker;

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
