//! serve-broker's bridge: an edge broker carrying topics to and from another broker (smq or
//! Mosquitto), from `--bridge` or mosquitto.conf's `connection` sections.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::certs::Certs;
use crate::support::mosquitto::Mosquitto;
use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::watched::Watched;
use crate::support::{Sub, assert_ok, run_with_timeout, send, smq, text};

const SECS: u64 = 30;

/// Waits until the edge's log says its bridge `name` is connected (the `n`th time).
fn connected(edge: &SmqBroker, name: &str, n: usize) {
    let needle = format!("smq: bridge {name}: connected to");
    let seen = poll(Duration::from_secs(SECS), Duration::from_millis(20), || {
        (edge.log().matches(&needle).count() >= n).then_some(())
    });
    assert!(
        seen.is_some(),
        "bridge {name} never connected\n{}",
        edge.log()
    );
}

/// An edge serve-broker whose config file is `conf` (listener lines are added).
fn edge_with_conf(dir: &tempfile::TempDir, conf: &str) -> SmqBroker {
    let path = dir.path().join("edge.conf");
    fs::write(&path, conf).unwrap();
    SmqBroker::start(&["-c", path.to_str().unwrap()])
}

fn numbered(prefix: &str, n: usize) -> String {
    (1..=n).map(|i| format!("{prefix}{i}\n")).collect()
}

/// A directory with `edge.conf` holding `conf` and a `--persist` store beside it, and the
/// serve-broker arguments that use both.
fn persistent_edge(conf: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.conf");
    fs::write(&path, conf).unwrap();
    let store = dir.path().join("store");
    let args = vec![
        "-c".to_owned(),
        path.display().to_string(),
        "--persist".to_owned(),
        store.display().to_string(),
    ];
    (dir, args)
}

fn publish_lines(port: u16, topic: &str, qos: u8, lines: &str) {
    let out = run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-t", topic, "-q", &qos.to_string(), "-l"]),
        Some(lines.as_bytes()),
        SECS,
    );
    assert_ok(&out, "smq pub -l");
}

#[test]
fn the_command_line_bridge_carries_out_topics_to_another_serve_broker() {
    let remote = SmqBroker::start(&[]);
    let url = format!("mqtt://127.0.0.1:{}", remote.port());
    let edge = SmqBroker::start(&["--bridge", &url, "--bridge-topic", "sensors/# out 1"]);
    connected(&edge, "cli", 1);
    let sub = Sub::start(remote.port(), &["-t", "sensors/#", "-q", "1", "-C", "20"]);
    publish_lines(edge.port(), "sensors/t", 1, &numbered("m", 20));
    let out = sub.wait(SECS);
    assert_eq!(text(&out.stdout), numbered("m", 20));
    // Not an `in` topic: what the remote publishes stays there.
    let local = Sub::start(edge.port(), &["-t", "sensors/#", "-W", "2"]);
    send(remote.port(), &["-t", "sensors/back", "-m", "x"]);
    let out = local.wait(SECS);
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn in_topics_come_back_with_their_prefixes_swapped() {
    let remote = SmqBroker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_with_conf(
        &dir,
        &format!(
            "connection site\naddress 127.0.0.1:{}\ntry_private false\nrestart_timeout 1\ntopic cmd/# in 1 edge/ site1/\n",
            remote.port()
        ),
    );
    connected(&edge, "site", 1);
    let sub = Sub::start(
        edge.port(),
        &["-t", "edge/cmd/#", "-v", "-q", "1", "-C", "1"],
    );
    // "connected" comes once the remote acknowledged the bridge's subscriptions.
    send(
        remote.port(),
        &["-t", "site1/cmd/door", "-m", "open", "-q", "1"],
    );
    let out = sub.wait(SECS);
    assert_eq!(text(&out.stdout), "edge/cmd/door open\n");
}

#[test]
fn try_private_true_falls_back_to_a_plain_connect_and_says_so() {
    // serve-broker refuses Mosquitto's bridge protocol levels.
    let remote = SmqBroker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_with_conf(
        &dir,
        &format!(
            "connection r\naddress 127.0.0.1:{}\ntopic up/# out 1\n",
            remote.port()
        ),
    );
    connected(&edge, "r", 1);
    assert!(
        edge.log().contains("refused a CONNECT with the bridge bit"),
        "{}",
        edge.log()
    );
    let sub = Sub::start(remote.port(), &["-t", "up/#", "-q", "1", "-C", "3"]);
    publish_lines(edge.port(), "up/x", 1, &numbered("u", 3));
    assert_eq!(text(&sub.wait(SECS).stdout), numbered("u", 3));
}

#[test]
fn two_bridged_serve_brokers_do_not_loop() {
    let remote = SmqBroker::start(&[]);
    let url = format!("mqtt://127.0.0.1:{}", remote.port());
    let edge = SmqBroker::start(&["--bridge", &url, "--bridge-topic", "loop/# both 1"]);
    connected(&edge, "cli", 1);
    let at_edge = Sub::start(edge.port(), &["-t", "loop/#", "-q", "1", "-C", "2"]);
    let at_remote = Sub::start(remote.port(), &["-t", "loop/#", "-q", "1", "-C", "2"]);
    // The remote does not know it is a bridge (3.1.1, no bridge bit): it sends "one" back
    // on the same connection, before "fence", which is published there after "one" arrived.
    let first = Sub::start(remote.port(), &["-t", "loop/#", "-q", "1", "-C", "1"]);
    send(edge.port(), &["-t", "loop/a", "-m", "one", "-q", "1"]);
    assert_eq!(text(&first.wait(SECS).stdout), "one\n");
    send(remote.port(), &["-t", "loop/a", "-m", "fence", "-q", "1"]);
    assert_eq!(text(&at_edge.wait(SECS).stdout), "one\nfence\n");
    assert_eq!(text(&at_remote.wait(SECS).stdout), "one\nfence\n");
}

#[test]
fn a_bridge_into_mosquitto_queues_qos1_while_it_is_down() {
    let mut remote = Mosquitto::builder().persistent().start();
    // A persistent subscriber at the remote, away while the messages arrive.
    let sub = Sub::start(
        remote.port(),
        &["-c", "-i", "keeper", "-q", "1", "-t", "sensors/#", "-E"],
    );
    assert_ok(&sub.wait(SECS), "mosquitto_sub -c -E");
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_with_conf(
        &dir,
        &format!(
            "connection m\naddress 127.0.0.1:{}\nrestart_timeout 1\ntopic sensors/# both 1\n",
            remote.port()
        ),
    );
    connected(&edge, "m", 1);
    assert!(
        !edge.log().contains("refused a CONNECT with the bridge bit"),
        "Mosquitto takes the bridge bit\n{}",
        edge.log()
    );
    remote.terminate();
    publish_lines(edge.port(), "sensors/t", 1, &numbered("q", 30));
    remote.restart();
    connected(&edge, "m", 2);
    let sub = Sub::start(
        remote.port(),
        &[
            "-c",
            "-i",
            "keeper",
            "-q",
            "1",
            "-t",
            "sensors/#",
            "-C",
            "30",
        ],
    );
    assert_eq!(text(&sub.wait(SECS).stdout), numbered("q", 30));
    // With the bridge bit, Mosquitto sends nothing back on `both`: the edge saw each once.
    let at_edge = Sub::start(edge.port(), &["-t", "sensors/#", "-q", "1", "-C", "2"]);
    send(edge.port(), &["-t", "sensors/t", "-m", "once", "-q", "1"]);
    send(
        remote.port(),
        &["-t", "sensors/t", "-m", "fence", "-q", "1"],
    );
    assert_eq!(text(&at_edge.wait(SECS).stdout), "once\nfence\n");
}

#[test]
fn bridge_keys_smq_does_not_act_on_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    for (conf, needle) in [
        (
            "connection x\naddress 127.0.0.1:1\ntopic a\nbridge_require_ocsp true\n",
            "'bridge_require_ocsp'",
        ),
        (
            "connection x\naddress 127.0.0.1:1\ntopic a\nbridge_cafile /nonexistent/ca.pem\n",
            "bridge 'x': reading CA file /nonexistent/ca.pem",
        ),
        (
            "connection x\naddress 127.0.0.1:1\ntopic a\nbridge_certfile c.pem\n",
            "add bridge_keyfile",
        ),
        ("address 127.0.0.1:1\n", "after a 'connection NAME' line"),
        ("connection x\ntopic a\n", "has no address"),
        (
            "connection x\naddress h\ntopic a sideways\n",
            "topic 'a sideways'",
        ),
    ] {
        let path = dir.path().join("bad.conf");
        fs::write(&path, conf).unwrap();
        let out = run_with_timeout(
            smq()
                .args(["serve-broker", "--listen", "mqtt://127.0.0.1:0", "-c"])
                .arg(&path),
            None,
            SECS,
        );
        assert_eq!(out.status.code(), Some(2), "{conf}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{conf}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn with_persist_a_killed_edge_loses_no_acknowledged_message() {
    let mut remote = Mosquitto::builder().persistent().start();
    let sub = Sub::start(
        remote.port(),
        &["-c", "-i", "keeper", "-q", "1", "-t", "sensors/#", "-E"],
    );
    assert_ok(&sub.wait(SECS), "mosquitto_sub -c -E");
    remote.terminate();
    let (_dir, args) = persistent_edge(&format!(
        "connection m\naddress 127.0.0.1:{}\nrestart_timeout 1\ntopic sensors/# out 1\n",
        remote.port()
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut edge = SmqBroker::start(&args);
    // Acknowledged by the edge (on disk), while the remote is away.
    publish_lines(edge.port(), "sensors/t", 1, &numbered("k", 30));
    edge.signal("KILL");
    let edge = SmqBroker::start(&args);
    remote.restart();
    connected(&edge, "m", 1);
    let sub = Sub::start(
        remote.port(),
        &[
            "-c",
            "-i",
            "keeper",
            "-q",
            "1",
            "-t",
            "sensors/#",
            "-C",
            "30",
        ],
    );
    assert_eq!(text(&sub.wait(SECS).stdout), numbered("k", 30));
}

/// A serve-broker with a plain listener and a TLS one serving `cert` and `key`.
fn tls_remote(cert: &Path, key: &Path) -> SmqBroker {
    SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0", "mqtts://127.0.0.1:0"],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
}

/// An edge bridged to 127.0.0.1:`port` carrying `tls/#` out at QoS 1, with `tls_lines` added.
fn tls_edge(dir: &tempfile::TempDir, port: u16, tls_lines: &str) -> SmqBroker {
    edge_with_conf(
        dir,
        &format!(
            "connection s\naddress 127.0.0.1:{port}\ntry_private false\nrestart_timeout 1\ntopic tls/# out 1\n{tls_lines}"
        ),
    )
}

/// Waits for the edge's log to say why bridge `s` could not connect, and returns that line.
fn refusal(edge: &SmqBroker) -> String {
    let line = poll(Duration::from_secs(SECS), Duration::from_millis(20), || {
        edge.log()
            .lines()
            .find(|l| l.starts_with("smq: bridge s: cannot connect to"))
            .map(str::to_owned)
    });
    line.unwrap_or_else(|| panic!("no refusal in the edge's log\n{}", edge.log()))
}

/// Once bridge `name` is up, five QoS 1 messages on `tls/x` at the edge reach the remote.
fn carries_over(edge: &SmqBroker, name: &str, remote_port: u16) {
    connected(edge, name, 1);
    let sub = Sub::start(remote_port, &["-t", "tls/#", "-q", "1", "-C", "5"]);
    publish_lines(edge.port(), "tls/x", 1, &numbered("s", 5));
    assert_eq!(text(&sub.wait(SECS).stdout), numbered("s", 5));
}

#[test]
fn a_tls_bridge_checks_the_remote_by_bridge_cafile() {
    let certs = Certs::generate();
    let remote = tls_remote(&certs.server_cert(), &certs.server_key());
    let dir = tempfile::tempdir().unwrap();
    let ca = format!("bridge_cafile {}\n", certs.ca().display());
    let edge = tls_edge(&dir, remote.tls_port(), &ca);
    carries_over(&edge, "s", remote.port());

    // A CA that did not sign the remote's certificate: refused, with the key to fix.
    let other = format!("bridge_cafile {}\n", certs.other_ca().display());
    let edge = tls_edge(&dir, remote.tls_port(), &other);
    let why = refusal(&edge);
    assert!(why.contains("not signed by a trusted CA"), "{why}");
    assert!(why.contains("bridge_cafile"), "{why}");
    assert!(!edge.log().contains("connected to"), "{}", edge.log());
}

#[test]
fn bridge_insecure_skips_the_name_check_but_not_the_chain() {
    let certs = Certs::generate();
    // Signed by the test CA, but for example.invalid only.
    let remote = tls_remote(&certs.wrong_name_cert(), &certs.wrong_name_key());
    let dir = tempfile::tempdir().unwrap();
    let ca = format!("bridge_cafile {}\n", certs.ca().display());
    let edge = tls_edge(&dir, remote.tls_port(), &ca);
    let why = refusal(&edge);
    assert!(why.contains("bridge_insecure true"), "{why}");

    let edge = tls_edge(
        &dir,
        remote.tls_port(),
        &format!("{ca}bridge_insecure true\n"),
    );
    carries_over(&edge, "s", remote.port());

    let other = format!(
        "bridge_cafile {}\nbridge_insecure true\n",
        certs.other_ca().display()
    );
    let edge = tls_edge(&dir, remote.tls_port(), &other);
    let why = refusal(&edge);
    assert!(why.contains("not signed by a trusted CA"), "{why}");
}

#[test]
fn a_tls_bridge_into_mosquitto_presents_bridge_certfile() {
    let certs = Certs::generate();
    let remote = Mosquitto::builder()
        .tls(&certs)
        .require_certificate(true)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let lines = format!(
        "bridge_cafile {}\nbridge_certfile {}\nbridge_keyfile {}\n",
        certs.ca().display(),
        certs.client_cert().display(),
        certs.client_key().display()
    );
    let edge = tls_edge(&dir, remote.tls_port(), &lines);
    carries_over(&edge, "s", remote.port());
}

#[test]
fn the_command_line_bridge_over_mqtts_trusts_bridge_cafile() {
    let certs = Certs::generate();
    let remote = tls_remote(&certs.server_cert(), &certs.server_key());
    let url = format!("mqtts://127.0.0.1:{}", remote.tls_port());
    let ca = certs.ca();
    let edge = SmqBroker::start(&[
        "--bridge",
        &url,
        "--bridge-cafile",
        ca.to_str().unwrap(),
        "--bridge-topic",
        "tls/# out 1",
    ]);
    carries_over(&edge, "cli", remote.port());
}

#[test]
fn with_persist_in_messages_the_edge_acknowledged_survive_its_kill() {
    in_messages_survive_a_kill_of_the_edge(1);
}

#[test]
fn with_persist_qos2_in_messages_arrive_once_across_a_kill_of_the_edge() {
    // The QoS 2 packet ids between PUBREC and PUBREL are in the edge's log: what Mosquitto
    // resends after the restart is recognised, not published a second time.
    in_messages_survive_a_kill_of_the_edge(2);
}

/// Mosquitto keeps the bridge's session while the edge is away and resends what the edge had
/// not acknowledged; what it had must be on the edge's disk.
fn in_messages_survive_a_kill_of_the_edge(qos: u8) {
    let q = qos.to_string();
    let remote = Mosquitto::start();
    let (_dir, args) = persistent_edge(&format!(
        "connection m\naddress 127.0.0.1:{}\nremote_clientid edge-m\nrestart_timeout 1\ntopic cmd/# in {qos}\n",
        remote.port()
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut edge = SmqBroker::start(&args);
    connected(&edge, "m", 1);
    let keeper = ["-c", "-i", "keeper", "-q", &q, "-t", "cmd/#"];
    assert_ok(
        &Sub::start(edge.port(), &[&keeper[..], &["-E"]].concat()).wait(SECS),
        "smq sub -c -E",
    );
    let watcher = Watched::spawn(
        smq()
            .args([
                "sub",
                "-d",
                "-h",
                "127.0.0.1",
                "-p",
                &edge.port().to_string(),
            ])
            .args(["-q", "1", "-t", "cmd/#"]),
    );
    watcher.wait_for("SUBACK", SECS, |_, err| err.contains("received SUBACK"));
    // Mosquitto queues at most 1,000 messages for the bridge's session meanwhile.
    const N: usize = 500;
    let port = remote.port();
    let publisher =
        std::thread::spawn(move || publish_lines(port, "cmd/x", qos, &numbered("k", N)));
    // Killed while the messages cross, some acknowledged to Mosquitto and some not.
    watcher.wait_for("k50", SECS, |out, _| out.lines().any(|l| l == "k50"));
    edge.signal("KILL");
    drop(watcher);
    publisher.join().unwrap();
    let edge = SmqBroker::start(&args);
    connected(&edge, "m", 1);
    send(remote.port(), &["-t", "cmd/x", "-m", "fence", "-q", "1"]);
    let sub = Watched::spawn(
        smq()
            .args(["sub", "-h", "127.0.0.1", "-p", &edge.port().to_string()])
            .args(keeper),
    );
    sub.wait_for("fence", SECS, |out, _| out.lines().any(|l| l == "fence"));
    let lines: Vec<String> = sub.stdout().lines().map(str::to_owned).collect();
    let got: HashSet<String> = lines.iter().cloned().collect();
    let lost: Vec<String> = (1..=N)
        .map(|i| format!("k{i}"))
        .filter(|k| !got.contains(k))
        .collect();
    assert!(lost.is_empty(), "lost {} of {N}: {lost:?}", lost.len());
    if qos == 2 {
        let twice = lines.len() - got.len();
        assert_eq!(twice, 0, "{twice} messages arrived twice at QoS 2");
    }
}
