//! smq against a real 3-node RabbitMQ 3.10 cluster (its MQTT plugin speaks only 3.1.1 and has
//! no QoS 2): `-V auto` falls back to 3.1.1, QoS 2 answered with PUBACK counts as delivered,
//! and sub and `pub -l` move between nodes when one stops, and back. The cluster is shared
//! (support/rabbitmq.rs); each test takes its turn on it.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use crate::support::rabbitmq::{self, Turn};
use crate::support::watched::Watched;
use crate::support::{run_with_timeout, smq, text};

const SECS: u64 = 60;

fn host(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `smq ARGS`, with `-h 127.0.0.1:PORT` for each port.
fn smq_on(verb: &str, ports: &[u16], args: &[&str]) -> Command {
    let mut cmd = smq();
    cmd.arg(verb);
    for &p in ports {
        cmd.args(["-h", &host(p)]);
    }
    cmd.args(args);
    cmd
}

/// `smq sub -d` on the nodes at `ports`, returned once subscribed.
fn subscriber(ports: &[u16], args: &[&str]) -> Watched {
    let sub = Watched::spawn(&mut smq_on("sub", ports, &[&["-d"], args].concat()));
    sub.wait_for("SUBACK", SECS, |_, err| err.contains("received SUBACK"));
    sub
}

fn publish(port: u16, args: &[&str]) {
    let out = run_with_timeout(&mut smq_on("pub", &[port], args), None, SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn lines(out: &str) -> BTreeSet<String> {
    out.lines().map(str::to_owned).collect()
}

fn numbered(from: u32, to: u32) -> BTreeSet<String> {
    (from..=to).map(|i| format!("line {i}")).collect()
}

fn feed(p: &mut Watched, from: u32, to: u32) {
    let text: String = (from..=to).map(|i| format!("line {i}\n")).collect();
    p.write(text.as_bytes());
}

#[test]
fn record_with_default_flags_on_mqtt_311_only_nodes() {
    let turn = rabbitmq::cluster().lock();
    let (a, b) = (turn.port(0), turn.port(1));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.csv");
    let rec = Watched::spawn(&mut smq_on(
        "record",
        &[a],
        &[
            "-t",
            "rec/#",
            "--layout",
            "messages",
            "-o",
            file.to_str().unwrap(),
            "-C",
            "1",
            "-d",
        ],
    ));
    rec.wait_for("SUBACK", SECS, |_, err| err.contains("received SUBACK"));
    publish(b, &["-t", "rec/x", "-m", "hello", "-q", "1"]);
    let (status, _, err) = rec.wait(SECS);
    assert!(status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "smq: mqtt://127.0.0.1:{a} does not speak MQTT 5 (it closed the connection before CONNACK): connected with MQTT 3.1.1"
        )),
        "{err}"
    );
    assert!(fs::read_to_string(&file).unwrap().contains("hello"));
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("m.csv.meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["mqtt_version"], "3.1.1");
    assert_eq!(meta["broker"], format!("mqtt://127.0.0.1:{a}"));
    assert_eq!(meta["subscriptions"][0]["filter"], "rec/#");
    assert_eq!(meta["subscriptions"][0]["qos"], 2, "asked for");
    assert_eq!(
        meta["subscriptions"][0]["granted_qos"], 1,
        "RabbitMQ has no QoS 2"
    );
    assert_eq!(meta["retain_as_published"], false, "an MQTT 5 option");
}

#[test]
fn pub_qos_2_is_answered_with_puback_and_counts_as_delivered() {
    let turn = rabbitmq::cluster().lock();
    let a = turn.port(0);
    let sub = subscriber(&[a], &["-t", "q2", "-q", "1", "-C", "2", "-V", "mqttv311"]);
    let out = run_with_timeout(
        &mut smq_on("pub", &[a], &["-t", "q2", "-m", "two", "-q", "2"]),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warning = format!(
        "smq: warning: mqtt://127.0.0.1:{a} answers a QoS 2 PUBLISH with PUBACK, the QoS 1 acknowledgement: it does not support QoS 2; messages are counted as delivered at QoS 1"
    );
    assert!(err.contains(&warning), "{err}");
    // Several messages, one warning.
    let out = run_with_timeout(
        &mut smq_on(
            "pub",
            &[a],
            &["-t", "q2", "-m", "again", "-q", "2", "--repeat", "3"],
        ),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("answers a QoS 2 PUBLISH").count(), 1, "{err}");
    let (status, out, err) = sub.wait(SECS);
    assert!(status.success(), "{err}");
    assert_eq!(out, "two\nagain\n");
}

/// Waits for the note that the client is on node `port` now (`n` of `of`), after `seen` such
/// notes in all.
fn moved(p: &Watched, port: u16, n: usize, of: usize, seen: usize) {
    let note = format!("reconnected to mqtt://127.0.0.1:{port} ({n} of {of})");
    p.wait_for(&note, SECS, |_, err| {
        err.contains(&note) && err.matches("reconnected to").count() >= seen
    });
}

#[test]
fn sub_moves_to_the_next_node_and_back() {
    let turn = rabbitmq::cluster().lock();
    let (a, b, c) = (turn.port(0), turn.port(1), turn.port(2));
    let sub = subscriber(&[a, b], &["-t", "mv", "-q", "1", "-C", "2"]);
    turn.stop_app(0);
    moved(&sub, b, 2, 2, 1);
    resubscribed(&sub, 2);
    publish(c, &["-t", "mv", "-m", "on b", "-q", "1"]);
    sub.wait_for("the message on b", SECS, |out, _| out == "on b\n");
    back(&turn, 0, 1);
    moved(&sub, a, 1, 2, 2);
    resubscribed(&sub, 3);
    publish(c, &["-t", "mv", "-m", "on a", "-q", "1"]);
    let (status, out, err) = sub.wait(SECS);
    assert!(status.success(), "{err}");
    assert_eq!(out, "on b\non a\n");
    assert!(
        err.contains(&format!(
            "lost the connection to mqtt://127.0.0.1:{a} (1 of 2)"
        )),
        "{err}"
    );
}

fn resubscribed(sub: &Watched, subacks: usize) {
    sub.wait_for("a new SUBACK", SECS, |_, err| {
        err.matches("received SUBACK").count() >= subacks
    });
}

/// Starts node `up` again and stops node `down`.
fn back(turn: &Turn<'_>, up: usize, down: usize) {
    turn.start_app(up);
    turn.stop_app(down);
}

#[test]
fn pub_lines_move_to_the_next_node_and_back_losing_none() {
    let turn = rabbitmq::cluster().lock();
    let (a, b, c) = (turn.port(0), turn.port(1), turn.port(2));
    let sub = subscriber(&[c], &["-t", "pl", "-q", "1"]);
    let mut p = Watched::spawn(&mut smq_on("pub", &[a, b], &["-t", "pl", "-l", "-q", "1"]));
    feed(&mut p, 1, 20);
    sub.wait_for("lines 1-20", SECS, |out, _| lines(out) == numbered(1, 20));
    turn.stop_app(0);
    // Read while the publisher finds out, reconnects and sends them to the next node.
    feed(&mut p, 21, 40);
    moved(&p, b, 2, 2, 1);
    sub.wait_for("lines 1-40", SECS, |out, _| lines(out) == numbered(1, 40));
    back(&turn, 0, 1);
    feed(&mut p, 41, 60);
    moved(&p, a, 1, 2, 2);
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
    sub.wait_for("lines 1-60", SECS, |out, _| lines(out) == numbered(1, 60));
}

#[test]
fn mqtt_5_features_make_the_fallback_an_error_naming_them() {
    let turn = rabbitmq::cluster().lock();
    let a = turn.port(0);
    let out = run_with_timeout(
        &mut smq_on(
            "pub",
            &[a],
            &[
                "-t",
                "t",
                "-m",
                "x",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-x",
                "60",
            ],
        ),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "smq: error: mqtt://127.0.0.1:{a} does not speak MQTT 5 (it closed the connection before CONNACK), and -D and -x need MQTT 5: drop them, or use a broker that speaks MQTT 5\n"
        )
    );
}

#[test]
fn an_edge_bridge_keeps_qos1_flowing_while_node_1_stops_and_starts() {
    use crate::support::smq_broker::{SmqBroker, poll};
    let turn = rabbitmq::cluster().lock();
    let (a, b, c) = (turn.port(0), turn.port(1), turn.port(2));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("edge.conf");
    // RabbitMQ 3.10 drops a CONNECT with the bridge bit: try_private false.
    fs::write(
        &conf,
        format!(
            "connection cluster\naddresses 127.0.0.1:{a} 127.0.0.1:{b}\nround_robin true\ntry_private false\nrestart_timeout 1\ncleansession true\nremote_clientid smq-edge-{}\ntopic bs/# out 1\ntopic bc/# in 1\n",
            std::process::id()
        ),
    )
    .unwrap();
    let edge = SmqBroker::start(&["-c", conf.to_str().unwrap()]);
    let up = |n: usize| {
        let seen = poll(
            std::time::Duration::from_secs(SECS),
            std::time::Duration::from_millis(50),
            || (edge.log().matches("bridge cluster: connected to").count() >= n).then_some(()),
        );
        assert!(seen.is_some(), "the bridge did not connect\n{}", edge.log());
    };
    up(1);
    let sub = subscriber(&[b], &["-t", "bs/#", "-q", "1"]);
    let mut p = Watched::spawn(&mut smq_on(
        "pub",
        &[edge.port()],
        &["-t", "bs/x", "-l", "-q", "1"],
    ));
    feed(&mut p, 1, 20);
    sub.wait_for("lines 1-20", SECS, |out, _| lines(out) == numbered(1, 20));
    turn.stop_app(0);
    // Queued at the edge while the bridge moves to node 2, then sent there.
    feed(&mut p, 21, 40);
    sub.wait_for("lines 1-40", SECS, |out, _| lines(out) == numbered(1, 40));
    turn.start_app(0);
    feed(&mut p, 41, 60);
    sub.wait_for("lines 1-60", SECS, |out, _| lines(out) == numbered(1, 60));
    let (status, _, err) = p.wait(SECS);
    assert!(status.success(), "{err}");
    assert!(
        edge.log().contains(&format!("lost 127.0.0.1:{a}")),
        "{}",
        edge.log()
    );
    // `in` topics come back from the cluster to a subscriber at the edge.
    let back = subscriber(&[edge.port()], &["-t", "bc/#", "-q", "1", "-C", "1"]);
    publish(c, &["-t", "bc/door", "-m", "open", "-q", "1"]);
    let (status, out, err) = back.wait(SECS);
    assert!(status.success(), "{err}");
    assert_eq!(out, "open\n");
}
