//! `--metrics`: `GET /metrics` on the WebSocket port, read by Prometheus' own text parser
//! (Python's prometheus_client, in the venv .ci/run makes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::raw::{Client, Connect, PUBACK, V4, publish};
use crate::support::smq_broker::SmqBroker;
use crate::support::{run_with_timeout, text};

/// Python with prometheus_client: $SMQ_TEST_PYTHON, else target/test-venv. Missing is a
/// broken setup, so the test fails saying how to make it.
fn python() -> Command {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python3");
    let program = std::env::var_os("SMQ_TEST_PYTHON").map_or(venv, PathBuf::from);
    let check = Command::new(&program)
        .args(["-c", "import prometheus_client"])
        .stdin(Stdio::null())
        .output();
    match check {
        Ok(out) if out.status.success() => {}
        other => panic!(
            "{} with prometheus_client is needed (.ci/run installs it: target/test-venv/bin/pip install prometheus-client==0.21.1; or set SMQ_TEST_PYTHON): {:?}",
            program.display(),
            other.map(|o| text(&o.stderr))
        ),
    }
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    cmd
}

/// Fetches http://127.0.0.1:PORT/metrics and parses it with prometheus_client: every sample
/// by name (with its labels), or the HTTP status when it is not 200.
const SCRAPE: &str = r#"
import json, sys, urllib.request, urllib.error
from prometheus_client.parser import text_string_to_metric_families
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=20) as r:
        body = r.read().decode()
        ctype = r.headers["Content-Type"]
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code}))
    sys.exit(0)
families = {}
for f in text_string_to_metric_families(body):
    families[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps({"status": 200, "ctype": ctype, "families": families}))
"#;

fn scrape(port: u16) -> serde_json::Value {
    let out = run_with_timeout(python().args(["-c", SCRAPE, &port.to_string()]), None, 60);
    assert!(out.status.success(), "scrape failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the scrape's JSON")
}

/// name → value of every sample without labels; `name{le=...}` for histogram buckets.
fn samples(v: &serde_json::Value) -> HashMap<String, f64> {
    let mut all = HashMap::new();
    for f in v["families"].as_object().expect("families").values() {
        for s in f["samples"].as_array().unwrap() {
            let mut name = s[0].as_str().unwrap().to_owned();
            if let Some(le) = s[1].get("le") {
                name = format!("{name}{{le={}}}", le.as_str().unwrap());
            }
            all.insert(name, s[2].as_f64().unwrap());
        }
    }
    all
}

fn acked(c: &mut Client, n: usize) {
    for _ in 0..n {
        c.expect_kind(PUBACK, "PUBACK");
    }
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let broker = SmqBroker::start(&[
        "--metrics",
        "--sys-interval",
        "0",
        "--persist",
        dir.path().to_str().unwrap(),
    ]);
    let port = broker.port();
    // One session parked with a subscription, one online with another.
    let (mut away, _) = Client::connect(port, &Connect::new(V4, "away").clean(false));
    away.subscribe(1, &[("q", 1)]);
    away.send(&[0xE0, 0]);
    away.expect_close(Duration::from_secs(10), "DISCONNECT");
    let (mut here, _) = Client::connect(port, &Connect::new(V4, "here"));
    here.subscribe(1, &[("elsewhere/#", 0)]);
    let (mut publisher, _) = Client::connect(port, &Connect::new(V4, "pub"));
    let mut retained = publish(V4, 1, "r", 1, b"kept");
    retained[0] |= 0x01;
    publisher.send(&retained);
    publisher.send(&publish(V4, 1, "q", 2, b"one"));
    publisher.send(&publish(V4, 1, "q", 3, b"two"));
    acked(&mut publisher, 3);
    publisher.send(&publish(V4, 0, "elsewhere/x", 0, b"seen"));
    here.expect("the one delivery");

    let got = scrape(broker.ws_port());
    assert_eq!(got["status"], 200, "{got}");
    assert!(
        got["ctype"]
            .as_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{got}"
    );
    assert_eq!(
        got["families"]["smq_messages_received"]["type"], "counter",
        "{got}"
    );
    assert_eq!(
        got["families"]["smq_persist_fsync_seconds"]["type"],
        "histogram"
    );
    let s = samples(&got);
    let want = [
        ("smq_clients_connected", 2.0),
        ("smq_messages_received_total", 4.0),
        ("smq_messages_sent_total", 1.0),
        ("smq_messages_queued", 2.0),
        ("smq_retained_messages", 1.0),
        ("smq_subscriptions", 2.0),
        ("smq_messages_dropped_total", 0.0),
    ];
    for (name, value) in want {
        assert_eq!(s.get(name), Some(&value), "{name}\n{got:#}");
    }
    assert!(s["smq_bytes_received_total"] > 0.0 && s["smq_bytes_sent_total"] > 0.0);
    assert!(s["smq_persist_log_bytes"] > 0.0, "{got:#}");
    let fsyncs = s["smq_persist_fsync_seconds_count"];
    assert!(
        fsyncs >= 1.0,
        "the acknowledged messages were fsync'd: {got:#}"
    );
    assert_eq!(s["smq_persist_fsync_seconds_bucket{le=+Inf}"], fsyncs);

    // Without --metrics the WebSocket port serves no /metrics.
    let plain = SmqBroker::start(&[]);
    assert_ne!(scrape_status(plain.ws_port()), 200);
}

/// The status only: a refused upgrade may not be HTTP the parser takes.
fn scrape_status(port: u16) -> u64 {
    let out = run_with_timeout(
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ])
            .arg(format!("http://127.0.0.1:{port}/metrics"))
            .stdin(Stdio::null()),
        None,
        60,
    );
    text(&out.stdout).trim().parse().unwrap_or(0)
}
