//! Several brokers, lost connections and acknowledgements that do not come: the first broker
//! that answers is used, `pub -l`, `pub --repeat` and `replay` reconnect and lose nothing
//! acknowledged-or-pending at QoS 1, and every acknowledgement has a timeout. Brokers are
//! Mosquitto, and for acknowledgements no real broker gets wrong, a scripted one.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread::{self, JoinHandle};

use crate::support::mosquitto::Mosquitto;
use crate::support::watched::Watched;
use crate::support::{free_port, run_with_timeout, smq, text};

const SECS: u64 = 30;

fn on(verb: &str, hosts: &[String], args: &[&str]) -> Command {
    let mut cmd = smq();
    cmd.arg(verb);
    for h in hosts {
        cmd.args(["-h", h]);
    }
    cmd.args(args);
    cmd
}

fn host(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn numbered(from: u32, to: u32) -> BTreeSet<String> {
    (from..=to).map(|i| format!("line {i}")).collect()
}

fn lines(out: &str) -> BTreeSet<String> {
    out.lines().map(str::to_owned).collect()
}

fn feed(p: &mut Watched, from: u32, to: u32) {
    let text: String = (from..=to).map(|i| format!("line {i}\n")).collect();
    p.write(text.as_bytes());
}

/// A subscriber with a persistent session, so that what is published while it reconnects
/// after a broker restart waits for it.
fn durable_sub(port: u16, topic: &str) -> Watched {
    let id = format!("durable-{}-{topic}", std::process::id());
    let sub = Watched::spawn(&mut on(
        "sub",
        &[host(port)],
        &["-t", topic, "-q", "1", "-c", "-i", &id, "-d"],
    ));
    sub.wait_for("SUBACK", SECS, |_, err| err.contains("received SUBACK"));
    sub
}

#[test]
fn the_next_broker_is_used_when_the_first_does_not_answer() {
    let broker = Mosquitto::start();
    let down = free_port();
    let out = run_with_timeout(
        &mut on(
            "pub",
            &[host(down), host(broker.port())],
            &["-t", "t", "-m", "x", "-q", "1"],
        ),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err,
        format!(
            "smq: connected to mqtt://127.0.0.1:{} (2 of 2)\n",
            broker.port()
        )
    );
    // None answers: one line that names each.
    let other = free_port();
    let out = run_with_timeout(
        &mut on("pub", &[host(down), host(other)], &["-t", "t", "-m", "x"]),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("smq: error: none of the 2 brokers took the connection: "),
        "{err}"
    );
    for port in [down, other] {
        assert!(
            err.contains(&format!("mqtt://127.0.0.1:{port}: cannot connect")),
            "{err}"
        );
    }
}

#[test]
fn pub_lines_survive_a_broker_restart_losing_none_at_qos_1() {
    let mut broker = Mosquitto::builder().persistent().start();
    let port = broker.port();
    let sub = durable_sub(port, "rs");
    let mut p = Watched::spawn(&mut on(
        "pub",
        &[host(port)],
        &["-t", "rs", "-l", "-q", "1"],
    ));
    feed(&mut p, 1, 20);
    sub.wait_for("lines 1-20", SECS, |out, _| lines(out) == numbered(1, 20));
    broker.terminate();
    // Read while the broker is away, and sent once it is back.
    feed(&mut p, 21, 40);
    p.wait_for("the lost connection", SECS, |_, err| {
        err.contains("reconnecting in")
    });
    broker.restart();
    p.wait_for("the reconnect", SECS, |_, err| {
        err.contains(&format!("reconnected to mqtt://127.0.0.1:{port}"))
    });
    feed(&mut p, 41, 50);
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
    sub.wait_for("lines 1-50", SECS, |out, _| lines(out) == numbered(1, 50));
}

#[test]
fn no_reconnect_keeps_failing_on_the_first_lost_connection() {
    let mut broker = Mosquitto::start();
    let mut p = Watched::spawn(&mut on(
        "pub",
        &[host(broker.port())],
        &["-t", "nr", "-l", "-q", "1", "--no-reconnect", "-d"],
    ));
    feed(&mut p, 1, 1);
    p.wait_for("PUBACK", SECS, |_, err| err.contains("received PUBACK"));
    broker.stop();
    let (status, _, err) = p.wait(SECS);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(!err.contains("reconnecting"), "{err}");
}

#[test]
fn pub_repeat_survives_a_broker_restart() {
    let mut broker = Mosquitto::builder().persistent().start();
    let port = broker.port();
    let sub = durable_sub(port, "rp");
    let p = Watched::spawn(&mut on(
        "pub",
        &[host(port)],
        &[
            "-t",
            "rp",
            "-m",
            "again",
            "-q",
            "1",
            "--repeat",
            "6",
            "--repeat-delay",
            "0.3",
        ],
    ));
    sub.wait_for("the first two", SECS, |out, _| out.lines().count() >= 2);
    broker.terminate();
    p.wait_for("the lost connection", SECS, |_, err| {
        err.contains("reconnecting in")
    });
    broker.restart();
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
    // At least once: a message in flight at the restart may come twice.
    sub.wait_for("six", SECS, |out, _| out.lines().count() >= 6);
    assert!(
        sub.stdout().lines().all(|l| l == "again"),
        "{}",
        sub.stdout()
    );
}

#[test]
fn replay_survives_a_broker_restart() {
    let mut broker = Mosquitto::builder().persistent().start();
    let port = broker.port();
    let sub = durable_sub(port, "rr");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.jsonl");
    let rows: String = (1..=30)
        .map(|i| {
            format!(
                "{{\"t_rel_ns\":{},\"recv_time\":\"2026-01-01T00:00:00Z\",\"topic\":\"rr\",\"qos\":1,\"retain\":false,\"payload\":\"line {i}\"}}\n",
                i * 100_000_000u64
            )
        })
        .collect();
    fs::write(&file, rows).unwrap();
    let p = Watched::spawn(&mut on("replay", &[host(port)], &[file.to_str().unwrap()]));
    sub.wait_for("the first five", SECS, |out, _| out.lines().count() >= 5);
    broker.terminate();
    p.wait_for("the lost connection", SECS, |_, err| {
        err.contains("reconnecting in")
    });
    broker.restart();
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
    sub.wait_for("all 30", SECS, |out, _| lines(out) == numbered(1, 30));
}

/// How the scripted broker answers a PUBLISH.
#[derive(Clone, Copy)]
enum Answer {
    /// Never: no PUBACK, no PUBREC.
    Nothing,
    /// PUBREC (and PUBCOMP for the PUBREL), whatever the QoS.
    AsQos2,
}

/// A broker on one connection that answers CONNECT with a 3.1.1 CONNACK and PUBLISH as told.
fn scripted(answer: Answer) -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut seen = Vec::new();
        while let Some((kind, body)) = packet(&mut s) {
            seen.push(kind);
            let reply: &[u8] = match kind >> 4 {
                1 => &[0x20, 2, 0, 0],
                3 if matches!(answer, Answer::AsQos2) => {
                    let topic = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    let id = [body[2 + topic], body[3 + topic]];
                    let _ = s.write_all(&[0x50, 2, id[0], id[1]]);
                    &[]
                }
                6 => {
                    let _ = s.write_all(&[0x70, 2, body[0], body[1]]);
                    &[]
                }
                14 => break,
                _ => &[],
            };
            let _ = s.write_all(reply);
        }
        seen
    });
    (port, handle)
}

/// One packet's first byte and body; None at EOF.
fn packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).ok()?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut d = [0u8; 1];
        s.read_exact(&mut d).ok()?;
        len |= usize::from(d[0] & 0x7F) << shift;
        shift += 7;
        if d[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    Some((b[0], body))
}

#[test]
fn an_acknowledgement_that_never_comes_times_out_with_exit_27() {
    let (port, broker) = scripted(Answer::Nothing);
    let out = run_with_timeout(
        &mut on(
            "pub",
            &[host(port)],
            &["-t", "t", "-m", "x", "-q", "1", "--ack-timeout", "1"],
        ),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(27), "{err}");
    assert!(
        err.contains(
            "smq: warning: the broker did not acknowledge message 1 within 1 s (--ack-timeout)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "smq: error: the broker did not acknowledge 1 of 1 messages within 1 s (--ack-timeout)"
        ),
        "{err}"
    );
    // It still said goodbye.
    assert_eq!(broker.join().unwrap().last(), Some(&0xE0));
}

#[test]
fn qos_1_answered_with_pubrec_completes_and_warns_once() {
    let (port, broker) = scripted(Answer::AsQos2);
    let out = run_with_timeout(
        &mut on(
            "pub",
            &[host(port)],
            &["-t", "t", "-m", "x", "-q", "1", "--repeat", "3"],
        ),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("answers a QoS 1 PUBLISH with PUBREC").count(),
        1,
        "{err}"
    );
    let seen = broker.join().unwrap();
    assert_eq!(
        seen.iter().filter(|&&k| k == 0x62).count(),
        3,
        "a PUBREL for each PUBREC: {seen:x?}"
    );
}

#[test]
fn connect_retry_waits_for_a_broker_that_is_not_up_yet() {
    let port = free_port();
    let p = Watched::spawn(&mut on(
        "pub",
        &[host(port)],
        &["-t", "late", "-m", "x", "-q", "1", "--connect-retry", "60"],
    ));
    // Without --connect-retry the same command gives up at once.
    let out = run_with_timeout(
        &mut on("pub", &[host(port)], &["-t", "late", "-m", "x"]),
        None,
        SECS,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let _broker = crate::support::smq_broker::SmqBroker::start_with_listeners(
        &[&format!("mqtt://127.0.0.1:{port}")],
        &[],
    );
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
}

/// One connection's packets: (first byte, packet id).
type Packets = Vec<(u8, u16)>;

/// A broker for two connections in turn. The first takes one PUBLISH (answering a QoS 2 one
/// with PUBREC, and waiting for its PUBREL) and then drops the connection unanswered; the
/// second says whether the session is present, and acknowledges what comes. Returns each
/// connection's packets as (first byte, packet id).
fn dropping_once(session_present: bool) -> (u16, JoinHandle<Vec<Packets>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut all = Vec::new();
        for round in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            while let Some((kind, body)) = packet(&mut s) {
                let id = match kind >> 4 {
                    3 => {
                        let topic = usize::from(u16::from_be_bytes([body[0], body[1]]));
                        u16::from_be_bytes([body[2 + topic], body[3 + topic]])
                    }
                    6 => u16::from_be_bytes([body[0], body[1]]),
                    _ => 0,
                };
                seen.push((kind, id));
                let [hi, lo] = id.to_be_bytes();
                let present = u8::from(round == 1 && session_present);
                match (round, kind >> 4) {
                    (_, 1) => drop(s.write_all(&[0x20, 2, present, 0])),
                    (0, 3) if kind & 0x06 == 0x04 => drop(s.write_all(&[0x50, 2, hi, lo])),
                    (0, 3 | 6) => break,
                    (1, 3) if kind & 0x06 == 0x04 => drop(s.write_all(&[0x50, 2, hi, lo])),
                    (1, 3) => drop(s.write_all(&[0x40, 2, hi, lo])),
                    (1, 6) => drop(s.write_all(&[0x70, 2, hi, lo])),
                    (_, 14) => break,
                    _ => {}
                }
            }
            all.push(seen);
        }
        all
    });
    (port, handle)
}

/// What the second connection carried, without CONNECT and DISCONNECT.
fn resent(all: &[Packets]) -> Packets {
    all[1][1..]
        .iter()
        .copied()
        .filter(|&(k, _)| k != 0xE0)
        .collect()
}

fn publish_once_through_a_drop(
    session_present: bool,
    qos: &str,
    extra: &[&str],
) -> Vec<Vec<(u8, u16)>> {
    let (port, broker) = dropping_once(session_present);
    let out = run_with_timeout(
        &mut on(
            "pub",
            &[host(port)],
            &[&["-t", "t", "-l", "-q", qos, "-V", "mqttv311"][..], extra].concat(),
        ),
        Some(b"one\n"),
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    broker.join().unwrap()
}

#[test]
fn a_resumed_session_gets_the_publish_again_with_dup_and_its_packet_id() {
    let all = publish_once_through_a_drop(true, "1", &["-c", "-i", "resume-1"]);
    let (first, id) = all[0][1];
    assert_eq!(first, 0x32, "QoS 1 PUBLISH, DUP clear: {all:x?}");
    assert_eq!(resent(&all), [(0x3A, id)], "DUP set, same id: {all:x?}");
}

#[test]
fn a_resumed_qos_2_session_gets_only_the_pubrel_again() {
    let all = publish_once_through_a_drop(true, "2", &["-c", "-i", "resume-2"]);
    let id = all[0][1].1;
    assert_eq!(all[0][2], (0x62, id), "PUBREL after PUBREC: {all:x?}");
    assert_eq!(
        resent(&all),
        [(0x62, id)],
        "exactly once: no second PUBLISH: {all:x?}"
    );
}

#[test]
fn a_new_session_gets_the_message_as_a_new_publish() {
    let all = publish_once_through_a_drop(false, "1", &[]);
    assert_eq!(resent(&all).len(), 1, "{all:x?}");
    assert_eq!(
        resent(&all)[0].0,
        0x32,
        "a new PUBLISH, DUP clear: {all:x?}"
    );
}

/// Everything was acknowledged before the broker went away, and stdin ends while it is away:
/// there is nothing to reconnect for.
#[test]
fn input_ending_while_the_broker_is_away_with_nothing_pending_exits_0() {
    let mut broker = Mosquitto::start();
    let mut p = Watched::spawn(&mut on(
        "pub",
        &[host(broker.port())],
        &["-t", "end", "-l", "-q", "1", "-d"],
    ));
    feed(&mut p, 1, 1);
    p.wait_for("PUBACK", SECS, |_, err| err.contains("received PUBACK"));
    broker.stop();
    p.wait_for("the lost connection", SECS, |_, err| {
        err.contains("reconnecting in")
    });
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
}
