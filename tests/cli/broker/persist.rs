//! `serve-broker --persist DIR`: what the broker acknowledged survives SIGTERM and kill -9.
//! Each restart binds new ports; the directory carries the state across.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::support::raw::{
    Client, Connect, PUBACK, PUBCOMP, PUBREC, Packet, Read, V4, V5, Will, disconnect, packet,
    parse_connack_v5, parse_publish, prop_u32, puback, publish_raw, pubrel,
};
use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::{assert_fails, run_with_timeout, smq};

/// Crash-and-restart rounds in the durability loop.
const ROUNDS: usize = 12;
/// QoS 1/2 messages the loop's publisher keeps in flight.
const WINDOW: usize = 20;

fn broker(dir: &Path) -> SmqBroker {
    let dir = dir.to_str().expect("a UTF-8 temp dir");
    SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0"],
        &["--persist", dir, "--sys-interval", "0"],
    )
}

fn pid_of(p: &Packet) -> u16 {
    u16::from_be_bytes([p.body[0], p.body[1]])
}

/// Publishes one message from a clean session and completes its QoS flow.
fn publish_acked(port: u16, qos: u8, retain: bool, topic: &str, payload: &str) {
    let mut c = Client::connected(port, V4, "persist-publisher");
    let first = 0x30 | (qos << 1) | u8::from(retain);
    c.send(&publish_raw(
        first,
        topic.as_bytes(),
        (qos > 0).then_some(1),
        None,
        payload.as_bytes(),
    ));
    match qos {
        1 => assert_eq!(c.expect("PUBACK").kind(), PUBACK),
        2 => {
            assert_eq!(c.expect("PUBREC").kind(), PUBREC);
            c.send(&pubrel(1));
            assert_eq!(c.expect("PUBCOMP").kind(), PUBCOMP);
        }
        // A round trip: the broker has handled the PUBLISH before the next connection with
        // this client id takes the session over.
        _ => c.ping(),
    }
    c.send(&disconnect(V4, 0));
}

/// The retained messages under `r/#`, as `topic=payload`, sorted: read up to a plain
/// message published after the SUBACK, which comes after the retained ones.
fn retained(port: u16) -> Vec<String> {
    let mut c = Client::connected(port, V4, "persist-reader");
    c.subscribe(1, &[("r/#", 1)]);
    publish_acked(port, 1, false, "r/~", "marker");
    let mut got = Vec::new();
    loop {
        let p = parse_publish(V4, &c.expect("a retained message"));
        if let Some(pid) = p.pid {
            c.send(&puback(pid));
        }
        let topic = String::from_utf8(p.topic).unwrap();
        if topic == "r/~" {
            break;
        }
        got.push(format!("{topic}={}", String::from_utf8_lossy(&p.payload)));
    }
    c.send(&disconnect(V4, 0));
    got.sort();
    got
}

#[test]
fn retained_messages_survive_sigterm_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    publish_acked(b.port(), 1, true, "r/a", "first");
    publish_acked(b.port(), 2, true, "r/b", "kept");
    publish_acked(b.port(), 0, true, "r/c", "cleared");
    publish_acked(b.port(), 1, true, "r/c", "");
    publish_acked(b.port(), 1, true, "r/a", "replaced");
    b.stop();

    let mut b = broker(dir.path());
    assert_eq!(retained(b.port()), ["r/a=replaced", "r/b=kept"]);
    publish_acked(b.port(), 1, true, "r/d", "acked just before the crash");
    b.signal("KILL");

    let b = broker(dir.path());
    assert_eq!(
        retained(b.port()),
        [
            "r/a=replaced",
            "r/b=kept",
            "r/d=acked just before the crash"
        ]
    );
}

#[test]
fn a_bit_flipped_in_a_compacted_log_is_refused_and_the_file_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    publish_acked(b.port(), 1, true, "r/a", "kept");
    publish_acked(b.port(), 1, true, "r/b", "kept too");
    b.stop();
    // Every start compacts the log: this one leaves nothing but the compacted records.
    broker(dir.path()).stop();
    let log = dir.path().join("smq.log");
    let mut data = std::fs::read(&log).unwrap();
    let at = data
        .windows(8)
        .position(|w| w == b"kept too")
        .expect("the retained payload in the log");
    data[at + 2] ^= 0x04;
    std::fs::write(&log, &data).unwrap();
    let out = run_with_timeout(
        smq()
            .args([
                "serve-broker",
                "--listen",
                "mqtt://127.0.0.1:0",
                "--persist",
            ])
            .arg(dir.path()),
        None,
        10,
    );
    let err = assert_fails(&out, 1, "smq.log: damaged at byte ");
    assert!(err.contains("move the file aside"), "{err}");
    assert!(!err.contains("listening"), "refused before binding: {err}");
    assert_eq!(std::fs::read(&log).unwrap(), data, "left as it was");
}

/// A subscriber as a real client behaves: it remembers the QoS 2 packet ids it answered
/// PUBREC to until PUBREL, across reconnects, so a resent QoS 2 message is not delivered twice.
#[derive(Default)]
struct Receiver {
    awaiting_rel: HashSet<u16>,
    /// Payloads handed to the application, in order.
    delivered: Vec<String>,
}

impl Receiver {
    fn handle(&mut self, c: &mut Client, p: &Packet) {
        match p.kind() {
            0x30 => {
                let m = parse_publish(c.version, p);
                let payload = String::from_utf8(m.payload).unwrap();
                match (m.qos, m.pid) {
                    (1, Some(pid)) => c.send(&puback(pid)),
                    (2, Some(pid)) => {
                        c.send(&packet(PUBREC, &pid.to_be_bytes()));
                        if !self.awaiting_rel.insert(pid) {
                            return;
                        }
                    }
                    _ => {}
                }
                self.delivered.push(payload);
            }
            0x60 => {
                let pid = pid_of(p);
                self.awaiting_rel.remove(&pid);
                c.send(&packet(PUBCOMP, &pid.to_be_bytes()));
            }
            _ => {}
        }
    }

    /// Reads until the broker goes away.
    fn until_closed(mut self, mut c: Client) -> Receiver {
        loop {
            match c.read(Duration::from_millis(200)) {
                Read::Packet(p) => self.handle(&mut c, &p),
                Read::Closed => return self,
                Read::TimedOut => {}
            }
        }
    }
}

/// Publishes `m<seq>` (even seq: QoS 1, odd: QoS 2) with `WINDOW` in flight until the broker
/// goes away; every seq the broker acknowledged (PUBACK, PUBREC) goes into `acked`. Returns
/// the next seq.
fn publish_until_closed(port: u16, mut seq: u64, acked: &Mutex<Vec<u64>>) -> u64 {
    let mut c = Client::connected(port, V4, "crash-publisher");
    let mut inflight: HashMap<u16, u64> = HashMap::new();
    loop {
        while inflight.len() < WINDOW {
            let qos = if seq % 2 == 0 { 1 } else { 2 };
            let pid = (seq % 60_000 + 1) as u16;
            let p = publish_raw(
                0x30 | (qos << 1),
                b"d/x",
                Some(pid),
                None,
                format!("m{seq}").as_bytes(),
            );
            if c.try_send(&p).is_err() {
                return seq;
            }
            inflight.insert(pid, seq);
            seq += 1;
        }
        match c.read(Duration::from_millis(200)) {
            Read::Packet(p) => {
                let pid = pid_of(&p);
                if matches!(p.kind(), PUBACK | PUBREC) {
                    if let Some(s) = inflight.remove(&pid) {
                        acked.lock().unwrap().push(s);
                    }
                }
                if p.kind() == PUBREC {
                    c.send(&pubrel(pid));
                }
            }
            Read::Closed => return seq,
            Read::TimedOut => {}
        }
    }
}

#[test]
fn acknowledged_messages_survive_kill_9_at_random_points() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    publish_acked(b.port(), 1, true, "r/keep", "retained");
    let (mut c, _) = Client::connect(b.port(), &Connect::new(V4, "durable-sub").clean(false));
    c.subscribe(1, &[("d/#", 2)]);
    c.send(&disconnect(V4, 0));
    drop(b);

    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut rx = Receiver::default();
    let mut seq = 0;
    for round in 0..ROUNDS {
        let mut b = broker(dir.path());
        let port = b.port();
        // Every other round the subscriber is connected through the crash, with deliveries
        // and QoS 2 flows in flight; otherwise messages pile up in its queue.
        let sub = if round % 2 == 1 {
            let c = resume(port, "durable-sub");
            let r = std::mem::take(&mut rx);
            Some(thread::spawn(move || r.until_closed(c)))
        } else {
            None
        };
        // Crash after a random number of acknowledgements (sometimes none: right after start).
        let target = acked.lock().unwrap().len() + fastrand::usize(0..150);
        let publisher = (target > acked.lock().unwrap().len()).then(|| {
            let acked = acked.clone();
            thread::spawn(move || publish_until_closed(port, seq, &acked))
        });
        let reached = poll(Duration::from_secs(10), Duration::from_millis(1), || {
            (acked.lock().unwrap().len() >= target).then_some(())
        });
        b.signal("KILL");
        assert!(
            reached.is_some(),
            "round {round}: publishing stalled\n{}",
            b.log()
        );
        if let Some(p) = publisher {
            seq = p.join().expect("the publisher thread");
        }
        if let Some(s) = sub {
            rx = s.join().expect("the subscriber thread");
        }
    }

    let b = broker(dir.path());
    // Queued behind everything restored, so its arrival means the queue has been drained.
    publish_acked(b.port(), 1, false, "d/x", "end");
    let mut c = resume(b.port(), "durable-sub");
    while rx.delivered.last().map(String::as_str) != Some("end") {
        let p = c.expect("the rest of the queue, then the end marker");
        rx.handle(&mut c, &p);
    }
    c.send(&disconnect(V4, 0));

    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > ROUNDS,
        "too few acknowledged to test anything"
    );
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for p in &rx.delivered {
        *seen.entry(p.as_str()).or_default() += 1;
    }
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|s| !seen.contains_key(format!("m{s}").as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but never delivered: {lost:?}"
    );
    let twice: Vec<(&str, usize)> = seen
        .iter()
        .filter(|(p, n)| **n > 1 && p[1..].parse::<u64>().is_ok_and(|s| s % 2 == 1))
        .map(|(p, n)| (*p, *n))
        .collect();
    assert!(
        twice.is_empty(),
        "QoS 2 messages delivered more than once: {twice:?}"
    );
    assert_eq!(retained(b.port()), ["r/keep=retained"]);
}

#[test]
fn session_expiry_and_subscriptions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    // v5 sessions: one that outlives the restart, one that expires while the broker is down.
    for (id, expiry) in [("long", 600), ("short", 1)] {
        let connect = Connect::new(V5, id)
            .clean(true)
            .props(prop_u32(0x11, expiry));
        let (mut c, _) = Client::connect(b.port(), &connect);
        // No local, retain as published, subscription id 7.
        c.send(&packet(
            0x82,
            &crate::support::raw::subscribe_body(
                V5,
                1,
                &[(b"s/#", 0x02 | 0x04 | 0x08)],
                &[0x0B, 7],
            ),
        ));
        assert_eq!(c.expect("SUBACK").kind(), 0x90);
        c.send(&disconnect(V5, 0));
        assert!(matches!(c.read(Duration::from_secs(5)), Read::Closed));
    }
    publish_acked(b.port(), 1, true, "s/x", "queued while offline");
    b.stop();
    // Past the short session's expiry, counted in whole seconds from its disconnect.
    thread::sleep(Duration::from_millis(2100));

    let b = broker(dir.path());
    let (_c, ack) = Client::connect(b.port(), &Connect::new(V5, "short").clean(false));
    assert!(
        !parse_connack_v5(&ack).0,
        "the 1 s session expired while the broker was down"
    );
    let (mut c, ack) = Client::connect(b.port(), &Connect::new(V5, "long").clean(false));
    assert!(parse_connack_v5(&ack).0, "the 600 s session is present");
    let m = parse_publish(V5, &c.expect("the queued message"));
    assert_eq!(m.payload, b"queued while offline");
    assert!(m.retain, "retain as published survived");
    assert!(
        m.props
            .iter()
            .any(|(id, v)| *id == 0x0B && format!("{v:?}").contains('7')),
        "subscription id survived: {:?}",
        m.props
    );
    c.send(&puback(m.pid.unwrap()));
}

#[test]
fn a_delayed_will_pending_at_a_crash_is_published_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    // A persistent watcher: a will due when the broker restarts is published while the log is
    // read back, before any client could subscribe, and is queued for it.
    let (mut w, _) = Client::connect(b.port(), &Connect::new(V4, "will-watcher").clean(false));
    w.subscribe(1, &[("will/#", 1)]);
    w.send(&disconnect(V4, 0));
    let will = Will {
        topic: b"will/crash-test",
        payload: b"gone",
        qos: 1,
        props: prop_u32(0x18, 3),
    };
    let connect = Connect::new(V5, "mortal")
        .props(prop_u32(0x11, 60))
        .will(will);
    let (mut c, _) = Client::connect(b.port(), &connect);
    // Dropped without DISCONNECT: the will is owed, after its 3 s delay.
    c.shutdown();
    let log = dir.path().join("smq.log");
    let written = poll(Duration::from_secs(5), Duration::from_millis(5), || {
        let data = std::fs::read(&log).ok()?;
        data.windows(15)
            .any(|w| w == b"will/crash-test")
            .then_some(())
    });
    assert!(written.is_some(), "the pending will never reached the log");
    b.signal("KILL");

    let b = broker(dir.path());
    let mut w = resume(b.port(), "will-watcher");
    let m = match w.read(Duration::from_secs(10)) {
        Read::Packet(p) => parse_publish(V4, &p),
        other => panic!("waiting for the will, after its delay: {other:?}"),
    };
    assert_eq!(
        (m.topic.as_slice(), m.payload.as_slice()),
        (&b"will/crash-test"[..], &b"gone"[..])
    );
}

#[test]
fn a_directory_holding_someone_elses_smq_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smq.log"), b"not ours\n").unwrap();
    let out = run_with_timeout(
        smq()
            .args([
                "serve-broker",
                "--listen",
                "mqtt://127.0.0.1:0",
                "--persist",
            ])
            .arg(dir.path()),
        None,
        10,
    );
    let err = assert_fails(
        &out,
        1,
        "smq.log: not an smq persistence log; give --persist a directory of its own",
    );
    assert!(err.starts_with("smq: error: "), "{err}");
    assert!(!err.contains("listening"), "refused before binding: {err}");
    assert_eq!(
        std::fs::read(dir.path().join("smq.log")).unwrap(),
        b"not ours\n"
    );
}

/// Reads packets until one of `kind` for packet id `pid`; returns the PUBLISHes seen meanwhile.
fn until(c: &mut Client, kind: u8, pid: u16, what: &str) -> Vec<crate::support::raw::Publish> {
    let mut seen = Vec::new();
    loop {
        let p = c.expect(what);
        if p.kind() == kind && pid_of(&p) == pid {
            return seen;
        }
        assert_eq!(p.kind(), 0x30, "{what}: unexpected {:02x?}", p.bytes());
        seen.push(parse_publish(c.version, &p));
    }
}

/// Both directions of QoS 2, stopped by kill -9 halfway: the publisher's packet ids answered
/// with PUBREC, the subscriber's delivery sent but not acknowledged, and one whose PUBREC came
/// back. After the restart each flow resumes where it was, and nothing is delivered twice.
#[test]
fn qos2_flows_resume_after_kill_9_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    let (mut s, _) = Client::connect(b.port(), &Connect::new(V4, "q2-sub").clean(false));
    s.subscribe(1, &[("q2/#", 2)]);
    let (mut p, _) = Client::connect(b.port(), &Connect::new(V4, "q2-pub").clean(false));
    for (pid, topic) in [(7, "q2/one"), (8, "q2/two")] {
        p.send(&publish_raw(0x34, topic.as_bytes(), Some(pid), None, b"x"));
        let ack = p.expect("PUBREC");
        assert_eq!((ack.kind(), pid_of(&ack)), (PUBREC, pid));
    }
    let first = parse_publish(V4, &s.expect("the first delivery"));
    assert_eq!(first.topic, b"q2/one");
    let (one, two) = (first.pid.unwrap(), one_more(&mut s, b"q2/two"));
    s.send(&packet(PUBREC, &one.to_be_bytes()));
    let before_rel = until(&mut s, 0x60, one, "PUBREL for the first delivery");
    assert!(before_rel.is_empty(), "{before_rel:?}");
    b.signal("KILL");

    let b = broker(dir.path());
    // The subscriber is owed PUBREL for the first message and the second one again.
    let mut s = resume(b.port(), "q2-sub");
    let rel = s.expect("PUBREL resent");
    assert_eq!((rel.kind(), pid_of(&rel)), (0x60, one));
    let again = parse_publish(V4, &s.expect("the unacknowledged delivery resent"));
    assert_eq!(
        (again.topic.as_slice(), again.pid, again.dup),
        (&b"q2/two"[..], Some(two), true)
    );
    s.send(&packet(PUBCOMP, &one.to_be_bytes()));
    s.send(&packet(PUBREC, &two.to_be_bytes()));
    assert!(until(&mut s, 0x60, two, "PUBREL").is_empty());
    s.send(&packet(PUBCOMP, &two.to_be_bytes()));
    // The publisher resends its first message (it never saw our PUBCOMP): acknowledged again,
    // not delivered again.
    let mut p = resume(b.port(), "q2-pub");
    p.send(&publish_raw(0x3C, b"q2/one", Some(7), None, b"x"));
    let ack = p.expect("PUBREC for the resent message");
    assert_eq!((ack.kind(), pid_of(&ack)), (PUBREC, 7));
    for pid in [7, 8] {
        p.send(&pubrel(pid));
        let comp = p.expect("PUBCOMP");
        assert_eq!(
            (comp.kind(), pid_of(&comp)),
            (PUBCOMP, pid),
            "{:02x?}",
            comp.bytes()
        );
    }
    publish_acked(b.port(), 1, false, "q2/end", "end");
    let end = parse_publish(V4, &s.expect("the end marker, and nothing before it"));
    assert_eq!(end.topic, b"q2/end");
}

fn one_more(c: &mut Client, topic: &[u8]) -> u16 {
    let m = parse_publish(V4, &c.expect("the second delivery"));
    assert_eq!(m.topic, topic);
    m.pid.unwrap()
}

/// Connects `id` (3.1.1, clean session 0); its session must be there.
fn resume(port: u16, id: &str) -> Client {
    let (c, ack) = Client::connect(port, &Connect::new(V4, id).clean(false));
    assert_eq!(
        ack.body[0] & 1,
        1,
        "{id}: session present after the restart"
    );
    c
}

#[test]
fn a_directory_in_use_by_a_running_broker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _running = broker(dir.path());
    let out = run_with_timeout(
        smq()
            .args([
                "serve-broker",
                "--listen",
                "mqtt://127.0.0.1:0",
                "--persist",
            ])
            .arg(dir.path()),
        None,
        10,
    );
    assert_fails(
        &out,
        1,
        "is in use by another smq serve-broker; give each broker a directory of its own",
    );
}

#[test]
fn a_temporary_session_taken_over_as_a_persistent_one_keeps_its_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    // v5, clean start 0 but session expiry 0: a session that is not written to the log.
    let (mut temporary, _) = Client::connect(b.port(), &Connect::new(V5, "adopt").clean(false));
    temporary.send(&packet(
        0x82,
        &crate::support::raw::subscribe_body(V5, 1, &[(b"ad/#", 1)], &[]),
    ));
    assert_eq!(temporary.expect("SUBACK").kind(), 0x90);
    // Taken over with an expiry: the same session, now persistent [MQTT-3.1.2-4].
    let connect = Connect::new(V5, "adopt")
        .clean(false)
        .props(prop_u32(0x11, 600));
    let (mut c, ack) = Client::connect(b.port(), &connect);
    assert!(parse_connack_v5(&ack).0, "the session is resumed");
    c.send(&disconnect(V5, 0));
    assert!(matches!(c.read(Duration::from_secs(5)), Read::Closed));
    b.signal("KILL");

    let b = broker(dir.path());
    let (mut c, ack) = Client::connect(b.port(), &connect);
    assert!(parse_connack_v5(&ack).0, "present after the restart");
    publish_acked(b.port(), 1, false, "ad/x", "still subscribed");
    let m = parse_publish(V5, &c.expect("a message on the adopted subscription"));
    assert_eq!(m.payload, b"still subscribed");
    c.send(&puback(m.pid.unwrap()));
}

#[test]
fn a_retained_message_sent_on_subscribe_is_owed_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    publish_acked(b.port(), 1, true, "rs/x", "retained");
    let (mut c, _) = Client::connect(b.port(), &Connect::new(V4, "rs-sub").clean(false));
    c.subscribe(1, &[("rs/#", 1)]);
    let m = parse_publish(V4, &c.expect("the retained message"));
    assert_eq!(m.payload, b"retained");
    // Not acknowledged before the crash.
    b.signal("KILL");

    let b = broker(dir.path());
    let mut c = resume(b.port(), "rs-sub");
    let again = parse_publish(V4, &c.expect("the retained message, owed still"));
    assert_eq!(
        (again.topic, again.payload),
        (b"rs/x".to_vec(), b"retained".to_vec())
    );
    c.send(&puback(again.pid.unwrap()));
}
