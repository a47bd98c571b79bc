//! Scaling out on a broker that already exists: recorders sharing one `$share` group, and
//! their shards merged back into one replay schedule.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::mosquitto::Mosquitto;
use crate::support::smq_broker::SmqBroker;
use crate::support::{assert_fails, assert_ok, run_with_timeout, smq, text, wait_with_deadline};

const SECS: u64 = 30;
/// Messages published per split test: enough that every member of a group gets some.
const MESSAGES: usize = 60;

/// `smq record --share GROUP` with no -i, returned once its -d trace says SUBACK.
struct Recorder {
    child: Option<Child>,
    file: PathBuf,
}

impl Recorder {
    fn start(port: u16, group: &str, qos: u8, file: PathBuf) -> Recorder {
        let mut child = smq()
            .args(["record", "-d", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["--share", group, "-t", "split/#", "-q", &qos.to_string()])
            .args(["--layout", "messages", "--format", "jsonl", "-o"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning smq record");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let rec = Recorder {
            child: Some(child),
            file,
        };
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("received SUBACK") => break,
                Some(Ok(l)) => seen.push(l),
                _ => panic!("smq record exited before subscribing:\n{}", seen.join("\n")),
            }
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        rec
    }

    /// SIGTERM, as Ctrl-C would: the recorder flushes and exits 0.
    fn stop(mut self) {
        let child = self.child.take().expect("stopped once");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        let out = wait_with_deadline(child, Duration::from_secs(SECS)).expect("record exits");
        assert_ok(&out, "smq record --share");
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The payloads of a JSONL shard (a last line still being written is left out).
fn payloads(file: &Path) -> Vec<String> {
    let body = fs::read_to_string(file).unwrap_or_default();
    body.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `n` recorders on one group, `MESSAGES` published at `qos`: every message is in some shard,
/// each recorder got a part, and at QoS 0 and 2 no message is in two shards.
fn split(port: u16, n: usize, qos: u8) {
    let dir = tempfile::tempdir().unwrap();
    let recorders: Vec<Recorder> = (0..n)
        .map(|i| Recorder::start(port, "rec", qos, dir.path().join(format!("shard{i}.jsonl"))))
        .collect();
    let lines: String = (0..MESSAGES).map(|i| format!("m{i:03}\n")).collect();
    let out = run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-t", "split/x", "-q", &qos.to_string(), "-l"]),
        Some(lines.as_bytes()),
        SECS,
    );
    assert_ok(&out, "smq pub -l");
    let files: Vec<PathBuf> = recorders.iter().map(|r| r.file.clone()).collect();
    // Each row is flushed as it is written: wait until the shards hold every message.
    let deadline = Instant::now() + Duration::from_secs(SECS);
    let mut seen = BTreeMap::new();
    while seen.len() < MESSAGES {
        assert!(
            Instant::now() < deadline,
            "the shards hold {} of {MESSAGES} messages",
            seen.len()
        );
        thread::sleep(Duration::from_millis(50));
        seen = files
            .iter()
            .flat_map(|f| payloads(f))
            .map(|p| (p, ()))
            .collect();
    }
    for r in recorders {
        r.stop();
    }
    let shards: Vec<Vec<String>> = files.iter().map(|f| payloads(f)).collect();
    let mut all: Vec<String> = shards.iter().flatten().cloned().collect();
    all.sort();
    let want: Vec<String> = (0..MESSAGES).map(|i| format!("m{i:03}")).collect();
    if qos == 1 {
        all.dedup();
    }
    assert_eq!(all, want, "union of {n} shards at QoS {qos}");
    for (i, s) in shards.iter().enumerate() {
        assert!(!s.is_empty(), "recorder {i} of {n} recorded nothing");
    }
    // Each sidecar names the group, and each recorder had an id of its own.
    let mut ids = Vec::new();
    for f in &files {
        let meta: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(format!("{}.meta.json", f.display())).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["share_group"], "rec", "{meta}");
        assert_eq!(meta["subscriptions"][0]["filter"], "$share/rec/split/#");
        ids.push(meta["client_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "client ids {ids:?}");
}

#[test]
fn two_shared_recorders_split_qos0_on_serve_broker() {
    let broker = SmqBroker::start(&[]);
    split(broker.port(), 2, 0);
}

#[test]
fn three_shared_recorders_split_qos2_on_serve_broker() {
    let broker = SmqBroker::start(&[]);
    split(broker.port(), 3, 2);
}

#[test]
fn three_shared_recorders_get_everything_at_qos1_on_serve_broker() {
    let broker = SmqBroker::start(&[]);
    split(broker.port(), 3, 1);
}

#[test]
fn two_shared_recorders_split_qos2_on_mosquitto() {
    let broker = Mosquitto::start();
    split(broker.port(), 2, 2);
}

#[test]
fn three_shared_recorders_split_qos0_on_mosquitto() {
    let broker = Mosquitto::start();
    split(broker.port(), 3, 0);
}

#[test]
fn two_shared_recorders_get_everything_at_qos1_on_mosquitto() {
    let broker = Mosquitto::start();
    split(broker.port(), 2, 1);
}

#[test]
fn share_over_mqtt311_warns_and_times_out_as_before() {
    let broker = SmqBroker::start(&[]);
    let out = run_with_timeout(
        smq()
            .args(["sub", "-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args([
                "-V",
                "mqttv311",
                "--share",
                "g",
                "-t",
                "nothing/here",
                "-W",
                "1",
            ]),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(27), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("literal topic and delivers nothing"),
        "{err}"
    );
    assert_eq!(lines[1], "smq: error: Timed out");
}

#[test]
fn share_refused_by_an_mqtt5_connack_is_a_one_line_error() {
    // A broker whose MQTT 5 CONNACK says Shared Subscription Available = 0.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(SECS))).unwrap();
        let mut connect = [0u8; 2];
        s.read_exact(&mut connect).unwrap();
        let mut body = vec![0u8; usize::from(connect[1])];
        s.read_exact(&mut body).unwrap();
        s.write_all(&[0x20, 5, 0, 0, 2, 0x2A, 0]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        rest
    });
    let out = run_with_timeout(
        smq()
            .args(["sub", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-V", "mqttv5", "--share", "g", "-t", "x", "--no-reconnect"]),
        None,
        SECS,
    );
    let err = assert_fails(&out, 1, "Shared Subscription Available = 0");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let rest = broker.join().unwrap();
    assert_ne!(rest.first(), Some(&0x82), "smq subscribed anyway: {rest:?}");
}

/// `-U` with `--share` unsubscribes the shared filter that an earlier run of the group left in
/// its persistent session: the broker's subscription count goes back to 0.
#[test]
fn share_unsubscribes_the_shared_filter() {
    let broker = SmqBroker::start(&["--sys-interval", "1"]);
    let port = broker.port().to_string();
    let sub = |args: &[&str]| {
        let out = run_with_timeout(
            smq()
                .args(["sub", "-h", "127.0.0.1", "-p", &port, "-V", "5"])
                .args(["-c", "-i", "rec1", "--share", "g", "-E"])
                .args(args),
            None,
            SECS,
        );
        assert_ok(&out, &format!("smq sub {args:?}"));
        text(&out.stderr)
    };
    let count = || {
        let out = run_with_timeout(
            smq().args(["sub", "-h", "127.0.0.1", "-p", &port]).args([
                "-t",
                "$SYS/broker/subscriptions/count",
                "-C",
                "1",
                "-W",
                "5",
            ]),
            None,
            SECS,
        );
        text(&out.stdout).trim().to_owned()
    };
    let wait_for = |want: &str| {
        crate::support::smq_broker::poll(
            Duration::from_secs(SECS),
            Duration::from_millis(200),
            || (count() == want).then_some(()),
        )
        .unwrap_or_else(|| panic!("$SYS subscription count never became {want}: {}", count()))
    };
    sub(&["-t", "u/x", "-q", "1"]);
    wait_for("1");
    let trace = sub(&["-U", "u/x", "-d"]);
    assert!(
        trace.contains("UNSUBSCRIBE (Mid: 1, $share/g/u/x)"),
        "{trace}"
    );
    wait_for("0");
}

#[test]
fn share_rejects_a_bad_group_or_an_already_shared_filter() {
    for (args, needle) in [
        (["--share", "a/b", "-t", "x"], "--share 'a/b'"),
        (["--share", "g", "-t", "$share/h/x"], "already shared"),
    ] {
        let out = run_with_timeout(smq().args(["sub", "-p", "1"]).args(args), None, SECS);
        assert_fails(&out, 2, needle);
    }
}

#[test]
fn replay_merges_shards_by_receive_time() {
    let dir = tempfile::tempdir().unwrap();
    let header = "t_rel_ns,recv_time,topic,qos,retain,payload_enc,payload,props\n";
    // Each file's t_rel_ns counts from its own first message; only recv_time interleaves them.
    let a = dir.path().join("a.csv");
    fs::write(
        &a,
        format!(
            "{header}0,2026-01-01T00:00:01Z,t,0,0,utf8,a1,\n2000000000,2026-01-01T00:00:03Z,t,0,0,utf8,a3,\n3000000000,2026-01-01T00:00:04Z,t,0,0,utf8,a4,\n"
        ),
    )
    .unwrap();
    let b = dir.path().join("b.jsonl");
    fs::write(
        &b,
        concat!(
            r#"{"t_rel_ns":0,"recv_time":"2026-01-01T00:00:00.5Z","topic":"t","qos":0,"retain":false,"payload":"b0"}"#,
            "\n",
            r#"{"t_rel_ns":1500000000,"recv_time":"2026-01-01T00:00:02Z","topic":"t","qos":0,"retain":false,"payload":"b2"}"#,
            "\n",
            r#"{"t_rel_ns":3500000000,"recv_time":"2026-01-01T00:00:04Z","topic":"t","qos":0,"retain":false,"payload":"b4"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = run_with_timeout(
        smq().args(["replay", "--dry-run"]).arg(&a).arg(&b),
        None,
        SECS,
    );
    assert_ok(&out, "replay --dry-run a.csv b.jsonl");
    // A tie (a4, b4 at 00:00:04) goes to the file given first.
    assert_eq!(text(&out.stdout), "t b0\nt a1\nt b2\nt a3\nt a4\nt b4\n");
    // --from counts from the merged schedule's first message.
    let out = run_with_timeout(
        smq()
            .args(["replay", "--dry-run", "--from", "1.5"])
            .arg(&a)
            .arg(&b),
        None,
        SECS,
    );
    assert_ok(&out, "replay --dry-run --from 1.5");
    assert_eq!(text(&out.stdout), "t b2\nt a3\nt a4\nt b4\n");
}
