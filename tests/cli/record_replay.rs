//! `smq record` and `smq replay` against a real broker: files, round trips, timing, crashes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::mosquitto::Mosquitto;
use crate::support::{Sub, assert_fails, run_with_timeout, send, smq, text};

const SECS: u64 = 30;

/// `smq record` running until it has subscribed (its -d trace says SUBACK on stderr).
/// A child process killed by PID if the test fails before waiting for it.
pub(crate) struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_record(port: u16, args: &[&str]) -> Running {
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    spawn_record(&all).0
}

/// `smq record -d -i ID <args>`, returned once its -d trace says SUBACK on stderr, with the
/// stderr lines seen until then (the listener lines of `--serve` among them).
pub(crate) fn spawn_record(args: &[&str]) -> (Running, Vec<String>) {
    let mut child = smq()
        .args(["record", "-d", "-i"])
        .arg(format!("rec-{}-{}", std::process::id(), fastrand_id()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|c| Running(Some(c)))
        .expect("spawning smq record");
    let stderr = child.0.as_mut().and_then(|c| c.stderr.take()).unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "smq record never subscribed");
        match lines.next() {
            Some(Ok(l)) if l.contains("received SUBACK") => break,
            Some(Ok(l)) => seen.push(l),
            _ => panic!("smq record exited before subscribing:\n{}", seen.join("\n")),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, seen)
}

/// The port of the `smq: listening on SCHEME://127.0.0.1:PORT` line among what record printed
/// before subscribing.
pub(crate) fn listening_port(seen: &[String], scheme: &str) -> u16 {
    let prefix = format!("smq: listening on {scheme}://127.0.0.1:");
    seen.iter()
        .find_map(|l| l.strip_prefix(&prefix)?.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no {prefix} line in {seen:?}"))
}

fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn wait(mut running: Running) -> Output {
    let child = running.0.take().expect("waited once");
    crate::support::wait_with_deadline(child, Duration::from_secs(SECS)).expect("smq exits")
}

fn replay(port: u16, file: &Path, args: &[&str]) -> Output {
    run_with_timeout(
        smq()
            .args(["replay", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(file)
            .args(args),
        None,
        SECS,
    )
}

#[test]
fn messages_layout_round_trips_through_replay() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "jsonl"] {
        let file = dir.path().join(format!("cap.{format}"));
        let rec = start_record(
            port,
            &[
                "-t",
                "rt/#",
                "--layout",
                "messages",
                "--format",
                format,
                "-C",
                "4",
                "-o",
                file.to_str().unwrap(),
            ],
        );
        let bin = dir.path().join("bin");
        fs::write(&bin, b"a\0b\xff,\"\n").unwrap();
        send(
            port,
            &["-t", "rt/text", "-m", "hello, \"world\"", "-q", "1"],
        );
        send(
            port,
            &["-t", "rt/bin", "-f", bin.to_str().unwrap(), "-q", "2"],
        );
        send(port, &["-t", "rt/empty", "-n"]);
        send(
            port,
            &[
                "-t",
                "rt/ü",
                "-m",
                "x",
                "-V",
                "5",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-q",
                "1",
            ],
        );
        let out = wait(rec);
        assert!(out.status.success(), "{}", text(&out.stderr));
        if format == "csv" {
            let body = fs::read_to_string(&file).unwrap();
            assert!(
                body.starts_with("t_rel_ns,recv_time,topic,qos,retain,payload_enc,payload,props\n"),
                "{body}"
            );
            assert_eq!(body.lines().count(), 5, "{body}");
        }
        // record -> replay -> record: the second capture holds the same messages in order.
        let again = dir.path().join(format!("again-{format}.jsonl"));
        let rec = start_record(
            port,
            &[
                "-t",
                "rt/#",
                "--layout",
                "messages",
                "--format",
                "jsonl",
                "-C",
                "4",
                "-o",
                again.to_str().unwrap(),
            ],
        );
        let out = replay(port, &file, &["--no-wait"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(wait(rec).status.success());
        let first = messages(&file);
        assert_eq!(first.len(), 4, "{first:?}");
        assert_eq!(messages(&again), first, "{format}");
    }
}

/// (topic, payload bytes, qos, retain) of every message in a capture, via `replay --dry-run`
/// for the topics and the JSONL/CSV text for the rest.
fn messages(file: &Path) -> Vec<(String, Vec<u8>, u64, bool)> {
    use base64::Engine;
    let body = fs::read_to_string(file).unwrap();
    if file.extension().is_some_and(|e| e == "jsonl") {
        return body
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let payload = match (&v["payload"], &v["payload_b64"]) {
                    (serde_json::Value::String(s), _) => s.as_bytes().to_vec(),
                    (_, serde_json::Value::String(b)) => {
                        base64::engine::general_purpose::STANDARD.decode(b).unwrap()
                    }
                    _ => Vec::new(),
                };
                let retain = v["retain"].as_bool().unwrap_or(v["retain"] == 1);
                (
                    v["topic"].as_str().unwrap().to_owned(),
                    payload,
                    v["qos"].as_u64().unwrap(),
                    retain,
                )
            })
            .collect();
    }
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let payload = match &r[5] {
                "base64" => base64::engine::general_purpose::STANDARD
                    .decode(&r[6])
                    .unwrap(),
                _ => r[6].as_bytes().to_vec(),
            };
            (
                r[2].to_owned(),
                payload,
                r[3].parse().unwrap(),
                &r[4] == "1",
            )
        })
        .collect()
}

#[test]
fn replay_keeps_the_recorded_timing() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("timed.jsonl");
    let lines: String = [0u64, 400, 800]
        .iter()
        .map(|ms| {
            format!(
                "{{\"t_rel_ns\":{},\"recv_time\":\"2026-01-01T00:00:00.000000000Z\",\"topic\":\"tm\",\"qos\":0,\"retain\":false,\"payload\":\"{ms}\"}}\n",
                ms * 1_000_000
            )
        })
        .collect();
    fs::write(&file, lines).unwrap();
    let sub = Sub::start(port, &["-t", "tm", "-C", "3", "-F", "%U %p"]);
    let out = replay(port, &file, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("replayed 3 messages"),
        "{}",
        text(&out.stderr)
    );
    let got = text(&sub.wait(SECS).stdout);
    let times: Vec<f64> = got
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    // Stated tolerance: each gap is the recorded 400 ms, within -50/+250 ms.
    for gap in times.windows(2).map(|w| (w[1] - w[0]) * 1000.0) {
        assert!((350.0..650.0).contains(&gap), "gap {gap} ms in {got}");
    }
    // --speed 4 plays the same file four times as fast.
    let sub = Sub::start(port, &["-t", "tm", "-C", "3", "-F", "%U"]);
    assert!(replay(port, &file, &["--speed", "4"]).status.success());
    let times: Vec<f64> = text(&sub.wait(SECS).stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    // Stated tolerance: 200 ms scheduled; the first message's own delay shortens what the
    // subscriber sees, so 100-500 ms.
    let span = (times[2] - times[0]) * 1000.0;
    assert!(
        (100.0..500.0).contains(&span),
        "span {span} ms at --speed 4"
    );
}

#[test]
fn a_malformed_line_stops_replay_before_anything_is_published() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    fs::write(
        &file,
        "t_rel_ns,recv_time,topic,qos,retain,payload_enc,payload,props\n\
         0,2026-01-01T00:00:00.000000000Z,bad/a,0,0,utf8,one,\n\
         5,2026-01-01T00:00:00.000000005Z,bad/b,3,0,utf8,two,\n",
    )
    .unwrap();
    let sub = Sub::start(port, &["-t", "bad/#", "-W", "2"]);
    let out = replay(port, &file, &[]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("bad.csv") && err.contains("line 3"), "{err}");
    assert_eq!(sub.wait(SECS).stdout, b"", "nothing was published");
    // --skip-bad plays the good lines and says how many were skipped.
    let sub = Sub::start(port, &["-t", "bad/#", "-C", "1"]);
    let out = replay(port, &file, &["--skip-bad", "--no-wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("skipped 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&sub.wait(SECS).stdout), "one\n");
}

#[test]
fn replay_selects_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sel.jsonl");
    let line = |ms: u64, topic: &str, p: &str| {
        format!(
            "{{\"t_rel_ns\":{},\"recv_time\":\"2026-01-01T00:00:0{}Z\",\"topic\":\"{topic}\",\"qos\":0,\"retain\":0,\"payload\":\"{p}\"}}\n",
            ms * 1_000_000,
            ms / 1000
        )
    };
    fs::write(
        &file,
        [
            line(0, "a/x", "1"),
            line(1000, "a/y", "2"),
            line(2000, "b/z", "3"),
            line(3000, "a/x", "4"),
        ]
        .concat(),
    )
    .unwrap();
    let dry = |args: &[&str]| {
        let out = run_with_timeout(
            smq()
                .args(["replay"])
                .arg(&file)
                .arg("--dry-run")
                .args(args),
            None,
            SECS,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(dry(&[]), "a/x 1\na/y 2\nb/z 3\na/x 4\n");
    assert_eq!(dry(&["--filter", "a/+"]), "a/x 1\na/y 2\na/x 4\n");
    assert_eq!(dry(&["--from", "1", "--to", "2s"]), "a/y 2\nb/z 3\n");
    assert_eq!(dry(&["--from", "2026-01-01T00:00:02Z"]), "b/z 3\na/x 4\n");
    assert_eq!(dry(&["--filter", "a/#", "--limit", "2"]), "a/x 1\na/y 2\n");
    assert_eq!(
        dry(&["--topic-map", "a/x=c/x", "--topic-prefix", "lab/"]),
        "lab/c/x 1\nlab/a/y 2\nlab/b/z 3\nlab/c/x 4\n"
    );
}

#[test]
fn replays_mosquitto_sub_json_lines_and_loops() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("j.txt");
    // What mosquitto_sub -F %j printed for two messages.
    let sub = Sub::start(port, &["-t", "j/#", "-C", "2", "-F", "%j", "-q", "1"]);
    send(port, &["-t", "j/1", "-m", "first", "-q", "1"]);
    send(port, &["-t", "j/2", "-m", "second", "-r"]);
    fs::write(&file, sub.wait(SECS).stdout).unwrap();
    let sub = Sub::start(port, &["-t", "j/#", "-C", "4", "-v", "-R"]);
    let out = replay(port, &file, &["--no-wait", "--loop", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "j/1 first\nj/2 second\nj/1 first\nj/2 second\n"
    );
}

#[test]
fn readings_layout_keeps_sensor_logger_times_to_the_digit() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("phone.csv");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sensorlogger-ios-motion.json"
    );
    let body = fs::read_to_string(fixture).unwrap();
    let rec = start_record(
        port,
        &[
            "-t",
            "sensor-logger",
            "-C",
            "1",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    send(port, &["-t", "sensor-logger", "-f", fixture, "-q", "1"]);
    let out = wait(rec);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = fs::read_to_string(&file).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "recv_time,topic,device_id,session_id,message_id,sensor,time,time_ns,time_src,field,value,value_text"
        )
    );
    // Every `time` in the payload appears as time_ns with exactly the digits sent.
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    for reading in sent["payload"].as_array().unwrap() {
        let digits = reading["time"].to_string();
        assert!(
            csv.contains(&format!(",{digits},device,")),
            "time {digits} missing:\n{csv}"
        );
    }
    assert!(lines.count() >= 4, "{csv}");
    // Appending with the same header writes no second header.
    let rec = start_record(
        port,
        &[
            "-t",
            "sensor-logger",
            "-C",
            "1",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    send(port, &["-t", "sensor-logger", "-m", "21.5"]);
    assert!(wait(rec).status.success());
    let csv = fs::read_to_string(&file).unwrap();
    assert_eq!(csv.matches("recv_time,topic").count(), 1, "{csv}");
    assert!(
        csv.lines().last().unwrap().contains(",value,21.5,"),
        "{csv}"
    );
    // A different layout's header is refused before connecting.
    let out = run_with_timeout(
        smq().args([
            "record",
            "-p",
            "9",
            "-t",
            "x",
            "--layout",
            "messages",
            "-o",
            file.to_str().unwrap(),
        ]),
        None,
        SECS,
    );
    assert_fails(&out, 1, "different header");
}

#[test]
fn a_killed_recorder_leaves_every_flushed_row_readable() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash.csv");
    let rec = start_record(
        port,
        &[
            "-t",
            "crash",
            "--layout",
            "messages",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    for i in 0..20 {
        send(port, &["-t", "crash", "-m", &i.to_string(), "-q", "1"]);
    }
    // Every row is flushed as it arrives: wait until all 20 are on disk, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(SECS);
    while fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .count()
        < 21
    {
        assert!(Instant::now() < deadline, "rows were not flushed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-KILL", &rec.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(rec);
    let out = run_with_timeout(smq().args(["replay", "--dry-run"]).arg(&file), None, SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want: String = (0..20).map(|i| format!("crash {i}\n")).collect();
    assert_eq!(text(&out.stdout), want);
}

#[test]
fn record_serve_runs_the_broker_in_the_same_process() {
    let (child, seen) = spawn_record(&[
        "--serve",
        "--listen",
        "mqtt://127.0.0.1:0",
        "--listen",
        "ws://127.0.0.1:0",
        "-t",
        "sensor-logger",
        "-o",
        "-",
        "-C",
        "2",
    ]);
    let mqtt = listening_port(&seen, "mqtt");
    let ws = listening_port(&seen, "ws");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sensorlogger-android-mixed.json"
    );
    send(mqtt, &["-t", "sensor-logger", "-f", fixture, "-q", "1"]);
    // A phone would use the WebSocket listener: smq pub over ws stands in for it.
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &ws.to_string(),
            "--ws",
            "-t",
            "sensor-logger",
            "-m",
            "21.5",
        ]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = wait(child);
    assert!(out.status.success());
    let csv = text(&out.stdout);
    assert!(csv.starts_with("recv_time,topic,device_id"), "{csv}");
    assert!(
        csv.contains(",totalacceleration,") && csv.contains(",value,21.5,"),
        "{csv}"
    );
}

#[test]
fn wide_layout_writes_one_file_per_sensor_in_export_columns() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let rec = start_record(
        port,
        &[
            "-t",
            "sensor-logger",
            "--layout",
            "wide",
            "--out-dir",
            dir.path().to_str().unwrap(),
            "-C",
            "1",
        ],
    );
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sensorlogger-ios-motion.json"
    );
    send(port, &["-t", "sensor-logger", "-f", fixture, "-q", "1"]);
    let out = wait(rec);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixture).unwrap()).unwrap();
    let session = dir
        .path()
        .join(body["deviceId"].as_str().unwrap())
        .join(body["sessionId"].as_str().unwrap());
    let accel = fs::read_to_string(session.join("Accelerometer.csv")).unwrap();
    let reading = body["payload"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "accelerometer")
        .unwrap();
    // The export's columns: time (digits as sent), seconds_elapsed, then the fields in the
    // order the phone sent them.
    let keys: Vec<&str> = reading["values"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        accel.lines().next().unwrap(),
        format!("time,seconds_elapsed,{}", keys.join(","))
    );
    assert!(
        accel
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{},", reading["time"])),
        "{accel}"
    );
}

#[test]
fn decode_can_be_chosen_per_topic() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dec.csv");
    let rec = start_record(
        port,
        &[
            "-t",
            "d/#",
            "--decode",
            "d/raw/#=raw",
            "-C",
            "2",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    send(port, &["-t", "d/num", "-m", "21.5"]);
    send(port, &["-t", "d/raw/x", "-m", "21.5"]);
    assert!(wait(rec).status.success());
    let csv = fs::read_to_string(&file).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(
        rows[0].contains(",d/num,") && rows[0].ends_with(",value,21.5,"),
        "{csv}"
    );
    assert!(
        rows[1].contains(",d/raw/x,") && rows[1].ends_with(",payload,,21.5"),
        "{csv}"
    );
    let out = run_with_timeout(
        smq().args(["record", "-p", "9", "-t", "x", "--decode", "a/#=nope"]),
        None,
        SECS,
    );
    assert_fails(&out, 2, "--decode 'a/#=nope'");
}

#[test]
fn messages_files_get_a_sidecar_without_the_password() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.csv");
    let url = format!("mqtt://someone:s3cret@127.0.0.1:{port}/meta");
    let (child, _) = spawn_record(&[
        "-L",
        &url,
        "--layout",
        "messages",
        "-o",
        file.to_str().unwrap(),
        "-C",
        "1",
        // The last -i wins, as in mosquitto.
        "-i",
        "meta-rec",
    ]);
    send(port, &["-t", "meta", "-m", "x"]);
    assert!(wait(child).status.success());
    let meta = fs::read_to_string(dir.path().join("m.csv.meta.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(v["broker"], format!("mqtt://127.0.0.1:{port}/meta"));
    assert_eq!(v["client_id"], "meta-rec");
    assert_eq!(v["subscriptions"][0]["qos"], 2);
    assert_eq!(v["retain_as_published"], true);
    assert!(!meta.contains("s3cret"), "{meta}");
}

#[test]
fn replay_can_override_qos_and_retain() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("o.jsonl");
    fs::write(
        &file,
        "{\"t_rel_ns\":0,\"recv_time\":\"2026-01-01T00:00:00Z\",\"topic\":\"ov\",\"qos\":0,\"retain\":false,\"payload\":\"kept\"}\n",
    )
    .unwrap();
    let out = replay(port, &file, &["-q", "1", "--retain", "force", "--no-wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Retained at QoS 1: a later subscriber at QoS 1 gets it with both flags.
    let sub = Sub::start(port, &["-t", "ov", "-q", "1", "-C", "1", "-F", "%q %r %p"]);
    assert_eq!(text(&sub.wait(SECS).stdout), "1 1 kept\n");
}

#[test]
fn rotate_starts_numbered_files_with_their_own_header_and_sidecar() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.csv");
    let raw = dir.path().join("raw.csv");
    let record = |count: &str| {
        start_record(
            port,
            &[
                "-t",
                "rot/#",
                "--layout",
                "messages",
                "-o",
                out.to_str().unwrap(),
                "--raw",
                raw.to_str().unwrap(),
                "--rotate",
                "rows:2",
                "-C",
                count,
            ],
        )
    };
    let child = record("5");
    for i in 1..=5 {
        send(
            port,
            &["-t", &format!("rot/{i}"), "-m", &format!("p{i}"), "-q", "1"],
        );
    }
    let done = wait(child);
    assert!(done.status.success());
    assert!(!out.exists(), "rotation never writes the unnumbered name");
    for stem in ["m", "raw"] {
        let topics: Vec<Vec<String>> = ["0001", "0002", "0003"]
            .iter()
            .map(|n| {
                let file = dir.path().join(format!("{stem}-{n}.csv"));
                assert!(
                    dir.path()
                        .join(format!("{stem}-{n}.csv.meta.json"))
                        .exists(),
                    "{file:?} has a sidecar"
                );
                messages(&file).into_iter().map(|m| m.0).collect()
            })
            .collect();
        assert_eq!(
            topics,
            [
                vec!["rot/1", "rot/2"],
                vec!["rot/3", "rot/4"],
                vec!["rot/5"]
            ],
            "{stem}: two rows a file, in order"
        );
    }
    // A second recording never appends to the first one's numbered files.
    let child = record("1");
    send(port, &["-t", "rot/6", "-m", "p6"]);
    assert!(wait(child).status.success());
    let topics: Vec<String> = messages(&dir.path().join("m-0004.csv"))
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(topics, ["rot/6"]);
    assert_eq!(messages(&dir.path().join("m-0003.csv")).len(), 1);
}

#[test]
fn rotate_needs_a_file_to_rotate() {
    let out = smq()
        .args(["record", "-t", "x", "--rotate", "hourly"])
        .output()
        .unwrap();
    assert_fails(&out, 2, "--rotate rotates -o FILE");
}

#[test]
fn serve_on_the_network_needs_allow_anonymous() {
    let refused = run_with_timeout(
        smq().args([
            "record",
            "--serve",
            "--listen",
            "mqtt://0.0.0.0:0",
            "-t",
            "x",
        ]),
        None,
        SECS,
    );
    let err = assert_fails(&refused, 2, "reachable from your network");
    assert!(err.contains("--allow-anonymous"), "{err}");
    // Let in: the broker says so, and smq's own client connects and subscribes (-W then ends it).
    let allowed = run_with_timeout(
        smq().args([
            "sub",
            "--serve",
            "--listen",
            "mqtt://0.0.0.0:0",
            "--allow-anonymous",
            "-t",
            "x",
            "-W",
            "1",
            "-d",
        ]),
        None,
        SECS,
    );
    let err = text(&allowed.stderr);
    assert_eq!(allowed.status.code(), Some(27), "{err}");
    assert!(
        err.contains("anonymous clients allowed (--allow-anonymous)"),
        "{err}"
    );
    assert!(err.contains("received SUBACK"), "{err}");
}

#[test]
fn a_full_disk_is_a_one_line_error_not_a_hang() {
    // /dev/full reads as endless NULs and refuses every write, as a full disk does.
    for layout in ["messages", "readings"] {
        let out = run_with_timeout(
            smq().args([
                "record",
                "-h",
                "127.0.0.1",
                "-p",
                "1",
                "-t",
                "x",
                "--layout",
                layout,
                "-o",
                "/dev/full",
            ]),
            None,
            SECS,
        );
        assert_eq!(out.status.code(), Some(1), "{layout}");
        assert_eq!(
            text(&out.stderr),
            "smq: error: writing /dev/full: No space left on device (os error 28)\n"
        );
    }
}
