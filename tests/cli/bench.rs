//! `smq bench conn|pub|sub|latency` against serve-broker and Mosquitto: short runs, counts and
//! the shape of `--json` checked, never timings.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::support::mosquitto::Mosquitto;
use crate::support::smq_broker::SmqBroker;
use crate::support::{
    READY_TIMEOUT, mosquitto_pub, run_with_timeout, smq, text, wait_with_deadline,
};

const SECS: u64 = 60;

fn bench(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        smq()
            .args(["bench"])
            .args(args)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()]),
        None,
        SECS,
    )
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json printed no JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn num(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for key in path.split('.') {
        at = at.get(key).unwrap_or_else(|| panic!("no {path} in {v}"));
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

/// Every key `--json` promises, with its type: null only where the mode has no such thing.
fn check_shape(v: &Value, mode: &str) {
    assert_eq!(v["mode"], mode, "{v}");
    let config = &v["config"];
    for key in [
        "broker",
        "protocol",
        "clients",
        "subscribers",
        "qos",
        "retain",
        "size",
        "rate",
        "interval_ms",
        "topic",
        "filter",
        "count",
        "duration_s",
        "ifaddr",
    ] {
        assert!(config.get(key).is_some(), "config.{key} missing: {v}");
    }
    assert!(
        config["broker"]
            .as_str()
            .unwrap()
            .starts_with("mqtt://127.0.0.1:")
    );
    assert!(config["clients"].is_u64() && config["ifaddr"].is_array());
    assert!(v["elapsed_s"].as_f64().unwrap() > 0.0);
    for key in ["attempted", "connected", "failed", "dropped"] {
        assert!(v["connections"][key].is_u64(), "connections.{key}: {v}");
    }
    assert!(v["connections"]["failures"].is_object());
    for key in ["sent", "acked", "refused", "received", "foreign"] {
        assert!(v["messages"][key].is_u64(), "messages.{key}: {v}");
    }
    for key in [
        "expected",
        "lost",
        "duplicates",
        "reordered",
        "publishers_heard",
    ] {
        let x = &v["messages"][key];
        assert!(x.is_u64() || x.is_null(), "messages.{key}: {v}");
    }
    for key in ["connect_per_s", "sent_per_s", "received_per_s"] {
        let x = &v["rates"][key];
        assert!(x.is_f64() || x.is_u64() || x.is_null(), "rates.{key}: {v}");
    }
    for hist in ["connect_latency_us", "latency_us"] {
        let h = &v[hist];
        if h.is_null() {
            continue;
        }
        for key in ["count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"] {
            assert!(h[key].as_f64().is_some(), "{hist}.{key}: {v}");
        }
        assert!(num(h, "min") <= num(h, "p50") && num(h, "p50") <= num(h, "p99"));
        assert!(num(h, "p99") <= num(h, "max"), "{v}");
    }
}

/// Runs each mode against one broker on `port`.
fn every_mode(port: u16) {
    let out = bench(port, &["conn", "-c", "20", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_of(&out);
    check_shape(&v, "conn");
    assert_eq!(num(&v, "connections.connected"), 20.0);
    assert_eq!(num(&v, "connections.failed"), 0.0);
    assert_eq!(num(&v, "connect_latency_us.count"), 20.0);
    assert!(v["latency_us"].is_null() && v["messages"]["lost"].is_null());

    let out = bench(
        port,
        &[
            "latency",
            "-c",
            "2",
            "--subscribers",
            "2",
            "--rate",
            "200",
            "--count",
            "40",
            "-q",
            "1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_of(&out);
    check_shape(&v, "latency");
    assert_eq!(num(&v, "messages.sent"), 80.0);
    assert_eq!(num(&v, "messages.acked"), 80.0);
    assert_eq!(num(&v, "messages.expected"), 160.0);
    assert_eq!(num(&v, "messages.received"), 160.0);
    assert_eq!(num(&v, "messages.lost"), 0.0);
    assert_eq!(num(&v, "messages.publishers_heard"), 2.0);
    assert_eq!(num(&v, "latency_us.count"), 160.0);
    assert_eq!(v["config"]["filter"], "smq-bench/+");
    assert_eq!(num(&v, "config.subscribers"), 2.0);

    // sub in one process, pub in another: the sub says when it is subscribed.
    let mut sub = smq()
        .args([
            "bench", "sub", "-c", "2", "-q", "1", "--count", "60", "--json",
        ])
        .args([
            "-t",
            "bench-test/#",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = sub.stderr.take().unwrap();
    let lines = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("subscribers subscribed") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(READY_TIMEOUT)
        .expect("bench sub subscribed");
    let out = bench(
        port,
        &[
            "pub",
            "-c",
            "3",
            "--count",
            "20",
            "-q",
            "1",
            "-t",
            "bench-test/%i/%c",
            "-s",
            "64",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_of(&out);
    check_shape(&v, "pub");
    assert_eq!(num(&v, "messages.sent"), 60.0);
    assert_eq!(num(&v, "messages.acked"), 60.0);
    assert_eq!(num(&v, "config.size"), 64.0);
    let out = wait_with_deadline(sub, Duration::from_secs(SECS)).expect("bench sub exited");
    let log = lines.join().unwrap();
    assert!(out.status.success(), "{log}");
    let v = json_of(&out);
    check_shape(&v, "sub");
    assert_eq!(num(&v, "messages.received"), 120.0);
    assert_eq!(num(&v, "messages.lost"), 0.0);
    assert_eq!(num(&v, "messages.duplicates"), 0.0);
    assert_eq!(num(&v, "messages.reordered"), 0.0);
    assert_eq!(num(&v, "messages.publishers_heard"), 3.0);
    assert_eq!(num(&v, "latency_us.count"), 120.0);
}

#[test]
fn every_mode_against_serve_broker() {
    let broker = SmqBroker::start(&[]);
    every_mode(broker.port());
}

#[test]
fn every_mode_against_mosquitto() {
    let broker = Mosquitto::start();
    every_mode(broker.port());
}

#[test]
fn latency_over_websocket_and_mqtt5() {
    let broker = SmqBroker::start(&[]);
    let out = run_with_timeout(
        smq().args([
            "bench",
            "latency",
            "--count",
            "20",
            "--rate",
            "100",
            "-q",
            "2",
            "-V",
            "5",
            "--ws",
            "-h",
            "127.0.0.1",
            "-p",
            &broker.ws_port().to_string(),
            "--json",
        ]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_of(&out);
    assert!(
        v["config"]["broker"].as_str().unwrap().starts_with("ws://"),
        "{v}"
    );
    assert_eq!(v["config"]["protocol"], "5");
    assert_eq!(num(&v, "messages.received"), 20.0);
    assert_eq!(num(&v, "messages.lost"), 0.0);
}

#[test]
fn csv_prints_a_row_per_second_and_the_summary_on_stderr() {
    let broker = SmqBroker::start(&[]);
    let out = bench(
        broker.port(),
        &["latency", "--duration", "2.5", "--rate", "50", "--csv"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "elapsed_s");
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert!(!rows.is_empty(), "{stdout}");
    assert!(rows.iter().all(|r| r.len() == header.len()), "{stdout}");
    assert!(
        text(&out.stderr).contains("smq bench latency:"),
        "{}",
        text(&out.stderr)
    );
}

/// A bench payload header: "smq", flags, run, publisher, sequence number, send time.
fn header(seq: u32) -> Vec<u8> {
    let mut p = b"smq\0".to_vec();
    p.extend(7u32.to_be_bytes());
    p.extend(1u32.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend(0u64.to_be_bytes());
    p
}

#[test]
fn gaps_at_qos_1_are_lost_messages_and_fail_the_run() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let mut sub = smq()
        .args([
            "bench", "sub", "-q", "1", "--count", "3", "--json", "-t", "gap/#",
        ])
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = sub.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("subscribers subscribed") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(READY_TIMEOUT)
        .expect("bench sub subscribed");
    // Sequence numbers 0, 1 and 5: 2, 3 and 4 never came.
    for seq in [0, 1, 5] {
        let file = dir.path().join(format!("m{seq}"));
        std::fs::write(&file, header(seq)).unwrap();
        let out = run_with_timeout(
            mosquitto_pub(port)
                .args(["-t", "gap/x", "-q", "1", "-f"])
                .arg(&file),
            None,
            SECS,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = wait_with_deadline(sub, Duration::from_secs(SECS)).expect("bench sub exited");
    let log = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("3 messages lost at QoS 1"), "{log}");
    let v = json_of(&out);
    assert_eq!(num(&v, "messages.lost"), 3.0);
    assert_eq!(num(&v, "messages.received"), 3.0);
}

#[test]
fn failures_are_counted_by_reason() {
    // A port nothing listens on.
    let port = crate::support::free_port();
    let out = bench(port, &["conn", "-c", "3", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json_of(&out);
    assert_eq!(num(&v, "connections.failed"), 3.0);
    let failures = v["connections"]["failures"].as_object().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    let (why, n) = failures.iter().next().unwrap();
    assert!(why.contains("Connection refused"), "{why}");
    assert_eq!(n, 3);
    assert!(text(&out.stderr).contains("no connection could be made"));
}

#[test]
fn bad_templates_and_sizes_are_usage_errors() {
    for args in [
        &["bench", "pub", "-t", "a/%x"][..],
        &["bench", "pub", "-s", "10"][..],
        &["bench", "sub", "-t", "a/%n"][..],
        &["bench", "conn", "--ifaddr", "nope"][..],
        &["bench", "pub", "-I", "10", "--rate", "5"][..],
    ] {
        let out = run_with_timeout(smq().args(args), None, SECS);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
