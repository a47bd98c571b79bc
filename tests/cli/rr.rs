//! `smq rr` against a responder on Mosquitto, beside mosquitto_rr where they should agree.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use crate::http_push::python;
use crate::support::mosquitto::Mosquitto;
use crate::support::{
    READY_TIMEOUT, mosquitto_client, run_with_timeout, smq, text, wait_with_deadline,
};

const SECS: u64 = 30;

/// Answers each request on its response topic (or FALLBACK, for 3.1.1), copying its
/// correlation data; with DECOY it first answers with other correlation data. Prints
/// `ready` once subscribed; exits after REQUESTS requests.
const RESPONDER: &str = r##"
import sys
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
port, topic, requests, decoy, fallback, replies = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5], int(sys.argv[6])
v5 = fallback == "-"
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
seen, pending = [0], [0]
def done():
    if seen[0] == requests and pending[0] == 0:
        c.disconnect()
def on_publish(c, u, mid, rc, p):
    pending[0] -= 1
    done()
def on_connect(c, u, f, rc, p):
    c.subscribe(topic, qos=1)
def on_subscribe(c, u, mid, rcs, p):
    print("ready", flush=True)
def on_message(c, u, m):
    props = m.properties if v5 else None
    rt = getattr(props, "ResponseTopic", None) or fallback
    corr = getattr(props, "CorrelationData", None)
    def reply(payload, cd):
        p = None
        if v5 and cd is not None:
            p = Properties(PacketTypes.PUBLISH)
            p.CorrelationData = cd
        pending[0] += 1
        c.publish(rt, payload, qos=1, properties=p)
    if decoy:
        reply(b"decoy", b"someone-else")
    for i in range(replies):
        reply(b"re:" + m.payload + (b"" if i == 0 else b"#%d" % i), corr)
    seen[0] += 1
    done()
c.on_connect, c.on_subscribe, c.on_message, c.on_publish = on_connect, on_subscribe, on_message, on_publish
c.connect("127.0.0.1", port)
c.loop_forever()
"##;

struct Responder(Child);

impl Responder {
    fn start(port: u16, requests: u32, decoy: bool, fallback: &str, replies: u32) -> Responder {
        let mut child = python()
            .args([
                "-c",
                RESPONDER,
                &port.to_string(),
                "req/t",
                &requests.to_string(),
            ])
            .args([
                if decoy { "1" } else { "0" },
                fallback,
                &replies.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the responder");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let got = rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        assert_eq!(got.trim(), "ready", "responder did not subscribe");
        Responder(child)
    }

    fn finish(self) {
        let out = wait_with_deadline(self.0, Duration::from_secs(SECS)).expect("responder exits");
        assert!(out.status.success(), "responder: {}", text(&out.stderr));
    }
}

fn smq_rr(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        smq()
            .args(["rr", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        None,
        SECS,
    )
}

fn mosquitto_rr(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        mosquitto_client("mosquitto_rr")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        None,
        SECS,
    )
}

#[test]
fn a_request_gets_its_response_as_with_mosquitto_rr() {
    let broker = Mosquitto::start();
    let port = broker.port();
    for args in [
        &["-t", "req/t", "-e", "resp/a", "-m", "hello"][..],
        &[
            "-t", "req/t", "-e", "resp/a", "-m", "hello", "-v", "-q", "1",
        ][..],
        &[
            "-t", "req/t", "-e", "resp/a", "-m", "hello", "-F", "%t|%p|%q",
        ][..],
    ] {
        let responder = Responder::start(port, 2, false, "-", 1);
        let ours = smq_rr(port, args);
        let theirs = mosquitto_rr(port, args);
        responder.finish();
        assert!(ours.status.success(), "{}", text(&ours.stderr));
        assert!(theirs.status.success(), "{}", text(&theirs.stderr));
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
    }
}

#[test]
fn correlation_data_picks_our_response() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let args = [
        "-t",
        "req/t",
        "-e",
        "resp/c",
        "-m",
        "hi",
        "-D",
        "publish",
        "correlation-data",
        "abc",
        "-F",
        "%D %p",
    ];
    let responder = Responder::start(port, 2, true, "-", 1);
    let ours = smq_rr(port, &args);
    let theirs = mosquitto_rr(port, &args);
    responder.finish();
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    // smq skips the answer meant for someone else; mosquitto_rr prints the first message.
    assert_eq!(text(&ours.stdout), "abc re:hi\n");
    assert_eq!(text(&theirs.stdout), "someone-else decoy\n");
}

#[test]
fn c_waits_for_n_responses() {
    let broker = Mosquitto::start();
    let responder = Responder::start(broker.port(), 1, false, "-", 3);
    let out = smq_rr(
        broker.port(),
        &["-t", "req/t", "-e", "resp/n", "-n", "-C", "3", "-q", "1"],
    );
    responder.finish();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "re:\nre:#1\nre:#2\n");
}

#[test]
fn mqtt_3_1_1_needs_the_responder_to_know_the_topic() {
    let broker = Mosquitto::start();
    let responder = Responder::start(broker.port(), 1, false, "resp/v3", 1);
    let out = smq_rr(
        broker.port(),
        &["-V", "311", "-t", "req/t", "-e", "resp/v3", "-m", "x"],
    );
    responder.finish();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "re:x\n");
}

#[test]
fn no_response_times_out_with_27_as_mosquitto_rr() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let args = ["-t", "nobody/home", "-e", "resp/none", "-m", "x", "-W", "1"];
    let ours = smq_rr(port, &args);
    let theirs = mosquitto_rr(port, &args);
    assert_eq!(ours.status.code(), Some(27), "{}", text(&ours.stderr));
    assert_eq!(theirs.status.code(), Some(27));
    assert!(text(&ours.stderr).contains("Timed out"));
    // Usage errors before connecting.
    for bad in [
        &["rr", "-t", "a", "-m", "x"][..],
        &["rr", "-e", "r", "-m", "x"][..],
        &["rr", "-t", "a", "-e", "r/#", "-m", "x"][..],
        &[
            "rr",
            "-t",
            "a",
            "-e",
            "r",
            "-m",
            "x",
            "-D",
            "publish",
            "response-topic",
            "o",
        ][..],
    ] {
        let out = run_with_timeout(smq().args(bad), None, SECS);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
}
