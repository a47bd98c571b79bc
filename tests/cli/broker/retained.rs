//! Retained messages: stored, replaced and cleared, and sent on subscribe as the v5 retain
//! handling and retain-as-published options say.

use super::SECS;
use crate::support::raw::{self, Client, V5, packet, parse_publish, subscribe_body};
use crate::support::smq_broker::SmqBroker;
use crate::support::smq_sub::SmqSub;
use crate::support::{Sub, send, text};

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
