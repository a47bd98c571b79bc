//! `serve-broker -c FILE`: one mosquitto.conf given to Mosquitto and to smq gives the same
//! answers; bad lines are errors naming the line; unknown keys are warnings; flags win.

use std::fs;

use crate::broker_auth::{temp_dir, write};
use crate::support::mosquitto::Mosquitto;
use crate::support::raw::{
    CONNACK, Client, Connect, Packet, Prop, V4, V5, Will, parse_connack_v5, publish_raw,
};
use crate::support::smq_broker::SmqBroker;
use crate::support::{assert_fails, run_with_timeout, smq};

const SECS: u64 = 30;

/// CONNECT and the CONNACK (code, v5 properties); the connection stays open when accepted.
fn open(port: u16, connect: &Connect) -> (Client, u8, Vec<(u8, Prop)>) {
    let mut c = Client::open(port);
    c.version = connect.version;
    c.send(&connect.bytes());
    let ack = c.expect("CONNACK");
    assert_eq!(ack.first, CONNACK, "{:02x?}", ack.bytes());
    if connect.version == V5 {
        let (_, code, props) = parse_connack_v5(&ack);
        (c, code, props)
    } else {
        (c, ack.body[1], Vec::new())
    }
}

/// What a publish at QoS 1 got: the PUBACK's reason code, or the DISCONNECT / close.
fn publish_outcome(c: &mut Client, pid: u16, topic: &str, payload: &[u8], retain: bool) -> String {
    let props = (c.version == V5).then_some(&[][..]);
    c.send(&publish_raw(
        0x32 | u8::from(retain),
        topic.as_bytes(),
        Some(pid),
        props,
        payload,
    ));
    let got: Vec<Packet> = match c.read(crate::support::raw::REPLY) {
        crate::support::raw::Read::Packet(p) => vec![p],
        crate::support::raw::Read::Closed => return "closed".into(),
        crate::support::raw::Read::TimedOut => return "no answer".into(),
    };
    match got[0].kind() {
        0x40 => format!("puback {:#04x}", got[0].body.get(2).copied().unwrap_or(0)),
        0xE0 => format!("disconnect {:#04x}", got[0].reason()),
        other => format!("packet {other:#04x}"),
    }
}

/// The answers a broker gives to the same sequence of clients.
fn behaviour(port: u16) -> Vec<String> {
    let mut seen = Vec::new();
    let (_, code, _) = open(port, &Connect::new(V4, "anon4"));
    seen.push(format!("anonymous 3.1.1: {code}"));
    let (_, code, _) = open(port, &Connect::new(V5, "anon5"));
    seen.push(format!("anonymous 5: {code:#04x}"));
    let (_, code, _) = open(port, &Connect::new(V5, "wrong").login("alice", "nope"));
    // mosquitto 2.0 answers 0x87 (not authorized) where smq says 0x86 (bad user name or
    // password): both refuse.
    seen.push(format!("wrong password refused: {}", code >= 0x80));

    let login = Connect::new(V5, "alice5")
        .login("alice", "pa")
        .keepalive(300);
    let (mut c, code, props) = open(port, &login);
    seen.push(format!("alice: {code:#04x}"));
    for (id, name) in [
        (0x21, "receive maximum"),
        (0x27, "maximum packet size"),
        (0x25, "retain available"),
        (0x13, "server keep alive"),
    ] {
        let value = props.iter().find(|(i, _)| *i == id).map(|(_, v)| v.clone());
        seen.push(format!("{name}: {value:?}"));
    }
    seen.push(format!(
        "publish a/x: {}",
        publish_outcome(&mut c, 1, "a/x", b"ok", false)
    ));
    seen.push(format!(
        "publish b/x: {}",
        publish_outcome(&mut c, 2, "b/x", b"no", false)
    ));
    let big = vec![b'x'; 2000];
    seen.push(format!(
        "publish 2000 bytes: {}",
        publish_outcome(&mut c, 3, "a/big", &big, false)
    ));
    seen.push(format!(
        "publish retained: {}",
        publish_outcome(&mut c, 4, "a/r", b"r", true)
    ));

    let will = Connect::new(V5, "will5").login("alice", "pa").will(Will {
        topic: b"a/will",
        payload: b"gone",
        qos: 0,
        props: Vec::new(),
    });
    let mut will = will.bytes();
    will[9] |= 0x20; // the will retain flag
    let mut c = Client::open(port);
    c.send(&will);
    let ack = c.expect("CONNACK");
    seen.push(format!("retained will: {:#04x}", parse_connack_v5(&ack).1));

    let (mut c, _, _) = open(port, &Connect::new(V4, "alice4").login("alice", "pa"));
    seen.push(format!(
        "3.1.1 publish b/x: {}",
        publish_outcome(&mut c, 1, "b/x", b"no", false)
    ));
    seen.push(format!(
        "3.1.1 publish retained: {}",
        publish_outcome(&mut c, 2, "a/r", b"r", true)
    ));
    seen
}

#[test]
fn one_mosquitto_conf_same_answers_from_mosquitto_and_smq() {
    let dir = temp_dir();
    let acl = write(dir.path(), "acl", "user alice\ntopic readwrite a/#\n");
    let mosquitto = Mosquitto::builder()
        .password("alice", "pa")
        .config(&format!("acl_file {}", acl.display()))
        .config("max_inflight_messages 20")
        .config("max_queued_messages 100")
        .config("max_keepalive 120")
        .config("max_packet_size 100000")
        .config("message_size_limit 1000")
        .config("retain_available false")
        .config("max_connections 50")
        .config("sys_interval 0")
        .start();
    let conf = fs::read_to_string(mosquitto.dir().join("mosquitto.conf")).unwrap();
    // The same file, but on a port smq picks itself (to mosquitto, `listener 0` would be a
    // Unix socket).
    let mine = conf.replace(
        &format!("listener {} 127.0.0.1", mosquitto.port()),
        "listener 0 127.0.0.1",
    );
    assert_ne!(mine, conf);
    let file = write(dir.path(), "smq.conf", &mine);
    let broker = SmqBroker::start_args(1, &["-c", file.to_str().unwrap()]);

    let theirs = behaviour(mosquitto.port());
    let ours = behaviour(broker.port());
    assert_eq!(
        ours,
        theirs,
        "smq log:\n{}\nmosquitto log:\n{}",
        broker.log(),
        mosquitto.log()
    );
    assert_eq!(
        ours,
        [
            "anonymous 3.1.1: 5",
            "anonymous 5: 0x87",
            "wrong password refused: true",
            "alice: 0x00",
            "receive maximum: Some(U16(20))",
            "maximum packet size: Some(U32(100000))",
            "retain available: Some(Byte(0))",
            "server keep alive: Some(U16(120))",
            "publish a/x: puback 0x10",
            "publish b/x: puback 0x87",
            "publish 2000 bytes: puback 0x95",
            "publish retained: disconnect 0x9a",
            "retained will: 0x9a",
            "3.1.1 publish b/x: puback 0x00",
            "3.1.1 publish retained: closed",
        ]
    );
    // Keys smq has no use for are named, with their line, and skipped.
    assert!(
        broker
            .log()
            .contains(": 'user' is not supported by smq, ignored"),
        "{}",
        broker.log()
    );
}

#[test]
fn config_file_mistakes_name_the_line() {
    let dir = temp_dir();
    for (conf, line, why) in [
        (
            "# ok\nlistener 0 127.0.0.1\nallow_anonymous maybe\n",
            3,
            "'maybe' is not true or false",
        ),
        (
            "per_listener_settings true\n",
            1,
            "per_listener_settings true is not supported",
        ),
        (
            "listener 0 127.0.0.1\nprotocol http\n",
            2,
            "protocol 'http': smq serves mqtt or websockets",
        ),
        (
            "listener 0 127.0.0.1\nauth_plugin /usr/lib/auth.so\n",
            2,
            "'auth_plugin' is not supported by smq; refusing to start without it",
        ),
        (
            "listener 0 127.0.0.1\ncertfile /c.pem\nkeyfile /k.pem\nrequire_certificate true\nlistener 0 127.0.0.1\ncertfile /c.pem\n",
            5,
            "require_certificate false here, but true for the TLS listener at",
        ),
    ] {
        let file = write(dir.path(), "bad.conf", conf);
        let out = run_with_timeout(
            smq().args(["serve-broker", "-c", file.to_str().unwrap()]),
            None,
            SECS,
        );
        let expected = format!("smq: error: config file {}:{line}: {why}", file.display());
        assert_fails(&out, 2, &expected);
    }
    let out = run_with_timeout(
        smq().args(["serve-broker", "-c", "/nonexistent/smq.conf"]),
        None,
        SECS,
    );
    assert_fails(&out, 1, "reading config file /nonexistent/smq.conf");
}

#[test]
fn flags_override_the_config_file() {
    let dir = temp_dir();
    let file = write(
        dir.path(),
        "smq.conf",
        &"\
# listeners from the file
listener 0 127.0.0.1
listener 0 127.0.0.1
protocol websockets
max_inflight_messages 5
max_keepalive 30
allow_anonymous false
persistence true
autosave_interval 60
persistence_location STORE
"
        .replace("STORE", dir.path().join("store").to_str().unwrap()),
    );
    let broker = SmqBroker::start_args(
        2,
        &[
            "-c",
            file.to_str().unwrap(),
            "--max-inflight",
            "7",
            "--allow-anonymous",
        ],
    );
    let schemes: Vec<&str> = broker.bound().iter().map(|b| b.scheme.as_str()).collect();
    assert_eq!(schemes, ["mqtt", "ws"]);
    let log = broker.log();
    assert!(
        log.contains(&format!(
            "smq: warning: config file {}:9: 'autosave_interval' is not supported by smq, ignored",
            file.display()
        )),
        "{log}"
    );
    // `persistence true` with `persistence_location` is --persist DIR.
    assert!(dir.path().join("store/smq.log").exists(), "{log}");
    // --allow-anonymous beats `allow_anonymous false`; --max-inflight beats the file; the
    // file's max_keepalive stands.
    let mut c = Client::open(broker.port());
    c.version = V5;
    c.send(&Connect::new(V5, "anon").keepalive(60).bytes());
    let (_, code, props) = parse_connack_v5(&c.expect("CONNACK"));
    assert_eq!(code, 0, "{log}");
    assert!(props.contains(&(0x21, Prop::U16(7))), "{props:?}");
    assert!(props.contains(&(0x13, Prop::U16(30))), "{props:?}");
}
