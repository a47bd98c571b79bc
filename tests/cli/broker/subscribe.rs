//! SUBSCRIBE and matching: non-ASCII topics, wildcards and `$` topics, shared subscriptions,
//! No Local and subscription identifiers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::SECS;
use crate::support::clients::{mpub_stdin, smq_pub};
use crate::support::raw::{self, Client, PUBACK, Read, V5, hex_all, parse_publish, publish};
use crate::support::smq_broker::SmqBroker;
use crate::support::smq_sub::SmqSub;
use crate::support::{Sub, assert_ok, send, text};

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
