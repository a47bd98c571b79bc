//! `smq pub` input larger than the broker takes: -s, -f and -l stop reading one byte past the
//! largest message (the broker's MQTT 5 Maximum Packet Size, else MQTT's own 256 MiB), hold
//! one copy of it, and fail with one line naming the input, the limit and where it comes from.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use crate::support::smq_broker::SmqBroker;
use crate::support::ws_broker::WsBroker;
use crate::support::{Sub, assert_fails, run_with_timeout, smq, text, wait_with_deadline};

const SECS: u64 = 60;
/// A broker whose CONNACK says 100000 bytes; on topic `big` a v5 PUBLISH then carries at most
/// 100000 - 1 (type) - 3 (remaining length) - 2 - 3 (topic) - 1 (no properties) = 99990.
const MAX_PACKET: &str = "100000";
const MAX_PAYLOAD: usize = 99_990;

fn pub_cmd(port: u16) -> Command {
    let mut cmd = smq();
    cmd.args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()]);
    cmd
}

#[track_caller]
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let err = assert_fails(out, 1, "smq: error: ");
    assert!(err.starts_with("smq: error: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
}

/// Runs `cmd` with `prefix` and then `fill` bytes without end on stdin, as `yes | cmd` would.
/// The feeding thread ends when `cmd` closes its stdin (EPIPE).
fn run_with_endless_stdin(cmd: &mut Command, prefix: &'static [u8], fill: u8) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().expect("piped stdin");
    let feeder = thread::spawn(move || {
        let chunk = vec![fill; 64 * 1024];
        if pipe.write_all(prefix).is_ok() {
            while pipe.write_all(&chunk).is_ok() {}
        }
    });
    let out = wait_with_deadline(child, Duration::from_secs(SECS)).unwrap_or_else(|out| {
        panic!(
            "{cmd:?} still reading endless stdin after {SECS}s, killed\n--- stderr\n{}",
            text(&out.stderr)
        )
    });
    let _ = feeder.join();
    out
}

/// `cmd` under GNU time: its output, and its peak resident memory in KiB.
fn run_measured(cmd: &Command, dir: &Path) -> (Output, u64) {
    let report = dir.join("time");
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(&report);
    timed.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    let out = run_with_timeout(timed.stdin(Stdio::null()), None, SECS);
    let report = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!("GNU time (/usr/bin/time, the `time` package) wrote no report: {e}")
    });
    // "Command exited with non-zero status 1" comes first when it did.
    let kib = report
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time -f %M printed {report:?}"));
    (out, kib)
}

#[test]
fn endless_file_stops_at_mqtt_limit_with_one_copy_in_memory() {
    let broker = SmqBroker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // MQTT 3.1.1 has no Maximum Packet Size: the limit is MQTT's, 268435455 bytes after the
    // fixed header, less 2 + 1 for the topic "a".
    let mut cmd = pub_cmd(broker.port());
    cmd.args(["-t", "a", "-f", "/dev/zero", "-V", "mqttv311"]);
    let (out, kib) = run_measured(&cmd, dir.path());
    assert_one_line_error(
        &out,
        &[
            "message file /dev/zero (-f) is larger than 268435452 bytes (256.0 MiB), the largest message MQTT can carry on topic 'a'",
            "an MQTT packet holds at most 268435455 bytes after its fixed header",
        ],
    );
    // 256 MiB read, and nothing copied: a second copy would need 512 MiB.
    assert!(kib < 384 * 1024, "peak RSS {kib} KiB for a 256 MiB input");
}

#[test]
fn endless_stdin_stops_at_the_brokers_maximum_packet_size() {
    let broker = SmqBroker::start(&["--max-packet-size", MAX_PACKET]);
    let out = run_with_endless_stdin(
        pub_cmd(broker.port()).args(["-t", "big", "-s", "-V", "mqttv5"]),
        b"",
        b'y',
    );
    assert_one_line_error(
        &out,
        &[
            &format!(
                "stdin (-s) is larger than {MAX_PAYLOAD} bytes (97.6 KiB), the largest message the broker accepts on topic 'big'"
            ),
            "its MQTT 5 CONNACK sets a Maximum Packet Size of 100000 bytes, less 10 for the topic and headers",
            "raise the broker's maximum packet size",
        ],
    );
}

#[test]
fn a_message_of_exactly_the_limit_is_sent_and_one_byte_more_is_not() {
    let broker = SmqBroker::start(&["--max-packet-size", MAX_PACKET]);
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let fits = dir.path().join("fits");
    std::fs::write(&fits, vec![b'f'; MAX_PAYLOAD]).unwrap();
    let over = dir.path().join("over");
    std::fs::write(&over, vec![b'o'; MAX_PAYLOAD + 1]).unwrap();
    let sub = Sub::start(port, &["-t", "big", "-C", "3", "-V", "5"]);
    let stdin = vec![b's'; MAX_PAYLOAD];
    let message = "m".repeat(MAX_PAYLOAD);
    for (args, input) in [
        (&["-f", fits.to_str().unwrap()][..], None),
        (&["-s"][..], Some(&stdin[..])),
        (&["-m", &message][..], None),
    ] {
        let out = run_with_timeout(
            pub_cmd(port).args(["-t", "big", "-V", "5"]).args(args),
            input,
            SECS,
        );
        assert!(out.status.success(), "{}: {}", args[0], text(&out.stderr));
    }
    let got = sub.wait(SECS).stdout;
    let expected = [b'f', b's', b'm']
        .map(|b| vec![b; MAX_PAYLOAD])
        .join(&b'\n');
    assert!(
        got == [expected, vec![b'\n']].concat(),
        "{} bytes arrived",
        got.len()
    );

    let out = run_with_timeout(
        pub_cmd(port).args(["-t", "big", "-V", "5", "-f", over.to_str().unwrap()]),
        None,
        SECS,
    );
    let over_name = format!(
        "message file {} (-f) is larger than {MAX_PAYLOAD} bytes",
        over.display()
    );
    assert_one_line_error(&out, &[&over_name]);
    let stdin = vec![b's'; MAX_PAYLOAD + 1];
    let out = run_with_timeout(
        pub_cmd(port).args(["-t", "big", "-V", "5", "-s"]),
        Some(&stdin),
        SECS,
    );
    assert_one_line_error(
        &out,
        &[&format!("stdin (-s) is larger than {MAX_PAYLOAD} bytes")],
    );
}

#[test]
fn a_line_without_end_fails_naming_its_number() {
    let broker = SmqBroker::start(&["--max-packet-size", MAX_PACKET]);
    let sub = Sub::start(broker.port(), &["-t", "big", "-C", "2", "-q", "1"]);
    // `printf 'one\ntwo\n'; yes | tr -d '\n'`
    let out = run_with_endless_stdin(
        pub_cmd(broker.port()).args(["-t", "big", "-l", "-V", "5", "-q", "1"]),
        b"one\ntwo\n",
        b'y',
    );
    assert_one_line_error(
        &out,
        &[
            "2 of 2 messages sent were confirmed by the broker",
            // At QoS 1 the packet id takes 2 bytes more.
            &format!("stdin line 3 (-l) is larger than {} bytes", MAX_PAYLOAD - 2),
            "Maximum Packet Size of 100000 bytes",
        ],
    );
    assert_eq!(text(&sub.wait(SECS).stdout), "one\ntwo\n");
}

#[test]
fn per_line_topics_are_bounded_too() {
    let broker = SmqBroker::start(&["--max-packet-size", MAX_PACKET]);
    let out = run_with_endless_stdin(
        pub_cmd(broker.port()).args(["--line-topic-sep", "\\t", "-l", "-V", "5"]),
        b"big\t",
        b'y',
    );
    // The topic is part of the line: the limit is the one for an empty topic plus the separator.
    assert_one_line_error(
        &out,
        &[
            "stdin line 1 (-l) is larger than 99993 bytes (97.6 KiB), the largest message the broker accepts:",
        ],
    );
}

#[test]
fn a_line_just_over_the_limit_names_its_topic_and_number() {
    let broker = SmqBroker::start(&["--max-packet-size", MAX_PACKET]);
    let mut input = b"big\tsmall\n".to_vec();
    input.extend_from_slice(b"big\t");
    input.extend(vec![b'x'; MAX_PAYLOAD + 1]);
    input.push(b'\n');
    let out = run_with_timeout(
        pub_cmd(broker.port()).args(["--line-topic-sep", "\\t", "-l", "-V", "5"]),
        Some(&input),
        SECS,
    );
    assert_one_line_error(
        &out,
        &[&format!(
            "stdin line 2 (-l) is larger than {MAX_PAYLOAD} bytes (97.6 KiB), the largest message the broker accepts on topic 'big'"
        )],
    );
}

/// Payloads of 64 KiB and more are written from the input buffer, not copied into the packet;
/// over WebSocket they span several frames. Every byte must still arrive, at every QoS.
#[test]
fn large_payloads_arrive_whole_over_tcp_and_websocket() {
    let payload: Vec<u8> = (0..3 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload");
    std::fs::write(&file, &payload).unwrap();
    let file = file.to_str().unwrap();
    let ours = SmqBroker::start(&[]);
    let aedes = WsBroker::start();
    for (name, sub_port, pub_args) in [
        (
            "smq mqtt",
            ours.port(),
            vec!["-p".to_owned(), ours.port().to_string()],
        ),
        (
            "smq ws",
            ours.port(),
            vec![
                "--ws".to_owned(),
                "-p".to_owned(),
                ours.ws_port().to_string(),
            ],
        ),
        (
            "aedes ws",
            aedes.tcp_port(),
            vec!["--ws".to_owned(), "-p".to_owned(), aedes.port().to_string()],
        ),
    ] {
        let sub = Sub::start(sub_port, &["-t", "large", "-C", "3", "-q", "2", "-N"]);
        for qos in ["0", "1", "2"] {
            let out = run_with_timeout(
                smq()
                    .args([
                        "pub",
                        "-h",
                        "127.0.0.1",
                        "-t",
                        "large",
                        "-f",
                        file,
                        "-q",
                        qos,
                    ])
                    .args(&pub_args),
                None,
                SECS,
            );
            assert!(out.status.success(), "{name} q{qos}: {}", text(&out.stderr));
        }
        let got = sub.wait(SECS).stdout;
        assert_eq!(got.len(), 3 * payload.len(), "{name}");
        assert!(
            got.chunks(payload.len()).all(|c| c == payload),
            "{name}: bytes differ"
        );
    }
}
