//! CONNECT and the session it opens or resumes: persistent sessions, the session present
//! flag, takeover, keep-alive, what CONNACK advertises, and the CONNECTs the broker refuses.

use std::time::Duration;

use super::assert_serving;
use crate::support::clients::msub;
use crate::support::raw::{
    self, CONNACK, Client, Connect, DISCONNECT, Prop, V4, V5, hex, hex_all, parse_connack_v5,
    prop_u32, publish, v4_closes, v5_disconnects,
};
use crate::support::smq_broker::SmqBroker;
use crate::support::{assert_ok, send, text};

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
    first.expect_silent_close(raw::REPLY, "takeover (3.1.1)");
    second.ping();

    let mut first = Client::connected(port, V5, "twin5");
    let mut second = Client::connected(port, V5, "twin5");
    first.expect_disconnect(0x8E, raw::REPLY, "takeover (v5)");
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
    one.expect_silent_close(limit, "keep alive 1 s (3.1.1)");
    one5.expect_disconnect(0x8D, limit, "keep alive 1 s (v5)");
    // The keep-alive-0 connections saw the same silence and are still served.
    zero.ping();
    zero5.ping();
}

/// Each packet restarts the keep-alive timer: a client that pings well within 1.5 × Keep
/// Alive stays connected for several times that, and is closed once it falls silent.
#[test]
fn packets_within_the_keepalive_keep_the_connection_open() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let (mut v4, _) = Client::connect(port, &Connect::new(V4, "ka-busy").keepalive(1));
    let (mut v5, _) = Client::connect(port, &Connect::new(V5, "ka-busy-5").keepalive(1));
    // 8 × 0.4 s: twice the 1.5 s a connection may be silent. The waits are the test: time
    // has to pass for a keep-alive to run out.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(400));
        v4.ping();
        v5.ping();
    }
    let limit = Duration::from_secs(10);
    v4.expect_silent_close(limit, "silent after pings (3.1.1)");
    v5.expect_disconnect(0x8D, limit, "silent after pings (v5)");
}

/// Shutdown (SIGTERM) closes every connection itself, before the grace period runs out: a v5
/// client is told why (DISCONNECT 0x8B Server shutting down), a 3.1.1 client just sees the
/// close; one that is connected, and one that has just taken over a session, alike.
#[test]
fn shutdown_closes_every_connection_saying_why() {
    let mut broker = SmqBroker::start(&[]);
    let port = broker.port();
    let (mut v4, _) = Client::connect(port, &Connect::new(V4, "bye-4"));
    let (mut v5, _) = Client::connect(port, &Connect::new(V5, "bye-5"));
    let (mut old, _) = Client::connect(port, &Connect::new(V5, "bye-taken"));
    let (mut new, _) = Client::connect(port, &Connect::new(V5, "bye-taken"));
    let limit = Duration::from_secs(10);
    old.expect_disconnect(0x8E, limit, "taken over");
    v4.ping();
    v5.ping();
    new.ping();
    assert!(broker.stop().success(), "{}", broker.log());
    v4.expect_silent_close(limit, "shutdown (3.1.1)");
    for (c, who) in [(&mut v5, "connected"), (&mut new, "took over")] {
        c.expect_disconnect(0x8B, limit, who);
    }
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
