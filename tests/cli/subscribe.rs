//! `smq sub` against Mosquitto, compared with mosquitto_sub where they should agree.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output};

use crate::support::mosquitto::Mosquitto;
use crate::support::smq_sub::SmqSub;
use crate::support::{Sub, assert_fails, mosquitto_pub, run_with_timeout, send, smq, text};

const SECS: u64 = 30;

fn sub(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        smq()
            .args(["sub", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        None,
        SECS,
    )
}

#[test]
fn default_and_verbose_output_match_mosquitto_sub() {
    let broker = Mosquitto::start();
    let port = broker.port();
    for mode in [&[][..], &["-v"][..], &["-N"][..], &["-v", "-N"][..]] {
        let args: Vec<&str> = ["-t", "o/#", "-C", "3", "-q", "1"]
            .iter()
            .chain(mode)
            .copied()
            .collect();
        let theirs = Sub::start(port, &args);
        let ours = SmqSub::start(port, &args);
        send(port, &["-t", "o/text", "-m", "hello world", "-q", "1"]);
        send(port, &["-t", "o/empty", "-n", "-q", "1"]);
        send(port, &["-t", "o/ü", "-m", "ünï", "-q", "1"]);
        let (ours, theirs) = (ours.wait(SECS), theirs.wait(SECS));
        assert!(ours.status.success(), "{}", text(&ours.stderr));
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "mode {mode:?}");
    }
}

#[test]
fn count_and_timeout_exit_codes() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let out = sub(port, &["-t", "nothing", "-W", "1"]);
    assert_fails(&out, 27, "Timed out");
    // -C before -W: the count wins and the exit is 0.
    let s = SmqSub::start(port, &["-t", "c", "-C", "2", "-W", "20"]);
    send(port, &["-t", "c", "-m", "1"]);
    send(port, &["-t", "c", "-m", "2"]);
    let out = s.wait(SECS);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "1\n2\n");
}

#[test]
fn retained_flags() {
    let broker = Mosquitto::start();
    let port = broker.port();
    send(port, &["-t", "ret/a", "-m", "old-a", "-r"]);
    send(port, &["-t", "ret/b", "-m", "old-b", "-r"]);
    // -R skips the stale ones and prints the live one.
    let s = SmqSub::start(port, &["-t", "ret/#", "-R", "-C", "1", "-v"]);
    send(port, &["-t", "ret/a", "-m", "live"]);
    assert_eq!(text(&s.wait(SECS).stdout), "ret/a live\n");
    // --retained-only prints the retained ones and exits at the first live message.
    let s = SmqSub::start(port, &["-t", "ret/#", "--retained-only", "-v"]);
    send(port, &["-t", "ret/x", "-m", "live"]);
    let out = s.wait(SECS);
    assert!(out.status.success());
    let mut lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["ret/a old-a", "ret/b old-b"]);
    // --remove-retained respects -T: ret/b stays.
    let s = SmqSub::start(
        port,
        &["-t", "ret/#", "--remove-retained", "-T", "ret/b", "-W", "1"],
    );
    assert_eq!(s.wait(SECS).status.code(), Some(27));
    let out = sub(port, &["-t", "ret/#", "-W", "1", "-v"]);
    assert_eq!(text(&out.stdout), "ret/b old-b\n");
}

#[test]
fn filter_out_grep_changed_only_and_random_filter() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let s = SmqSub::start(
        port,
        &[
            "-t",
            "f/#",
            "-T",
            "f/noise/#",
            "--grep",
            "^[0-9]+$",
            "--changed-only",
            "--random-filter",
            "100",
            "-C",
            "3",
            "-v",
        ],
    );
    for (topic, payload) in [
        ("f/a", "1"),
        ("f/noise/x", "2"),
        ("f/a", "1"),
        ("f/a", "text"),
        ("f/b", "1"),
        ("f/a", "3"),
    ] {
        send(port, &["-t", topic, "-m", payload, "-q", "1"]);
    }
    assert_eq!(text(&s.wait(SECS).stdout), "f/a 1\nf/b 1\nf/a 3\n");
}

#[test]
fn json_lines_are_valid_and_binary_safe() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let s = SmqSub::start(
        port,
        &["-t", "j/#", "-C", "2", "--json", "-q", "1", "-V", "5"],
    );
    send(
        port,
        &[
            "-t",
            "j/text",
            "-m",
            "hi",
            "-q",
            "1",
            "-r",
            "-V",
            "5",
            "-D",
            "publish",
            "content-type",
            "text/plain",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::write(&bin, b"a\0\xffb").unwrap();
    send(port, &["-t", "j/bin", "-f", bin.to_str().unwrap()]);
    let out = s.wait(SECS);
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines[0]["topic"], "j/text");
    assert_eq!(lines[0]["payload"], "hi");
    assert_eq!(lines[0]["qos"], 1);
    assert_eq!(lines[0]["retain"], false);
    assert_eq!(lines[0]["properties"]["content-type"], "text/plain");
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["payload_b64"], "YQD/Yg==");
    assert!(lines[1].get("payload").is_none());
}

#[test]
fn persistent_session_with_exit_after_subscribe_and_unsubscribe() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let out = sub(
        port,
        &["-t", "durable", "-c", "-i", "keeper", "-q", "1", "-E"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    send(port, &["-t", "durable", "-m", "while away", "-q", "1"]);
    let out = sub(
        port,
        &["-t", "durable", "-c", "-i", "keeper", "-q", "1", "-C", "1"],
    );
    assert_eq!(text(&out.stdout), "while away\n");
    // -U alone unsubscribes and exits: nothing is queued afterwards.
    let out = sub(port, &["-U", "durable", "-c", "-i", "keeper"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    send(port, &["-t", "durable", "-m", "after", "-q", "1"]);
    let out = sub(port, &["-t", "other", "-c", "-i", "keeper", "-W", "1"]);
    assert_eq!(out.status.code(), Some(27));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn v5_subscription_options() {
    let broker = Mosquitto::start();
    let port = broker.port();
    send(port, &["-t", "o5", "-m", "stale", "-r"]);
    let out = sub(port, &["-t", "o5", "--retain-handling", "never", "-W", "1"]);
    assert_eq!(out.status.code(), Some(27), "no retained message is sent");
    assert_eq!(text(&out.stdout), "");
    // Retain-as-published keeps the flag on a live retained message.
    let s = SmqSub::start(
        port,
        &[
            "-t",
            "o5",
            "--retain-as-published",
            "--retain-handling",
            "never",
            "-C",
            "1",
            "-F",
            "%r %p",
        ],
    );
    send(port, &["-t", "o5", "-m", "fresh", "-r"]);
    assert_eq!(text(&s.wait(SECS).stdout), "1 fresh\n");
    let out = sub(port, &["-t", "o5", "--no-local", "-V", "311"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stats_prints_a_summary_table() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let s = SmqSub::start(port, &["-t", "st/#", "--stats", "-C", "4"]);
    for (t, v) in [
        ("st/temp", "20"),
        ("st/temp", "22"),
        ("st/temp", "21"),
        ("st/door", "open"),
    ] {
        send(port, &["-t", t, "-m", v, "-q", "1"]);
    }
    let out = s.wait(SECS);
    let table = text(&out.stdout);
    let temp: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("st/temp"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(temp[1], "3");
    assert_eq!(&temp[3..], ["21", "20", "21", "22"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("st/door") && l.contains("open")),
        "{table}"
    );
}

#[test]
fn idle_timeout_ends_quietly() {
    let broker = Mosquitto::start();
    let out = sub(broker.port(), &["-t", "idle", "--idle-timeout", "0.5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn reconnects_and_resubscribes_after_a_broker_restart() {
    let mut broker = Mosquitto::start();
    let port = broker.port();
    let s = SmqSub::start(port, &["-t", "re", "-C", "2", "-q", "1"]);
    send(port, &["-t", "re", "-m", "before", "-q", "1"]);
    broker.restart();
    // The second SUBACK in smq's trace says the subscription is back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(SECS);
    while s.stderr().matches("received SUBACK").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no resubscribe:\n{}",
            s.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    send(port, &["-t", "re", "-m", "after", "-q", "1"]);
    let out = s.wait(SECS);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "before\nafter\n");
    assert!(
        text(&out.stderr).contains("reconnecting in"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("reconnected to"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_reconnect_exits_when_the_broker_goes_away() {
    let mut broker = Mosquitto::start();
    let s = SmqSub::start(broker.port(), &["-t", "x", "--no-reconnect"]);
    broker.stop();
    let out = s.wait(SECS);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("smq: error:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_closed_pipe_exits_0_quietly_and_output_is_live() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let mut s = SmqSub::start_piped(port, &["-t", "pipe"]);
    let mut reader = BufReader::new(s.stdout());
    send(port, &["-t", "pipe", "-m", "first"]);
    // Read while smq is still running: each message is flushed as it arrives.
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    drop(reader);
    for _ in 0..3 {
        send(port, &["-t", "pipe", "-m", "more"]);
    }
    let out = s.wait(SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("error"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ctrl_c_exits_0_after_a_clean_disconnect() {
    let broker = Mosquitto::start();
    let s = SmqSub::start(broker.port(), &["-t", "int"]);
    let status = Command::new("kill")
        .args(["-INT", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = s.wait(SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sending DISCONNECT"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sub_usage_errors_exit_2_before_connecting() {
    for (args, needle) in [
        (&[][..], "a topic filter is needed"),
        (&["-t", "a/#/b"][..], "bad topic filter 'a/#/b'"),
        (&["-t", "a", "-T", "x+"][..], "bad topic filter 'x+'"),
        (
            &["-t", "a", "--grep", "("][..],
            "--grep: bad regular expression",
        ),
        (&["-t", "a", "-F", "%Z"][..], "'Z'"),
        (
            &["-t", "a", "--no-local", "-V", "mqttv311"][..],
            "MQTT 5 options",
        ),
        (
            &["-t", "a", "-D", "publish", "content-type", "x"][..],
            "sends no PUBLISH",
        ),
    ] {
        let out = run_with_timeout(smq().args(["sub", "-p", "9"]).args(args), None, SECS);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn random_filter_prints_about_that_share() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let s = SmqSub::start(port, &["-t", "rnd", "--random-filter", "50", "-W", "3"]);
    let lines: String = (0..400).map(|i| format!("{i}\n")).collect();
    let out = run_with_timeout(
        mosquitto_pub(port).args(["-t", "rnd", "-l", "-q", "1"]),
        Some(lines.as_bytes()),
        SECS,
    );
    assert!(out.status.success());
    let out = s.wait(SECS);
    assert_eq!(out.status.code(), Some(27));
    // Binomial(400, 0.5): outside 100..=300 has a probability far below 1e-20.
    let printed = text(&out.stdout).lines().count();
    assert!((100..=300).contains(&printed), "{printed} of 400");
}

/// With `-D connect topic-alias-maximum`, serve-broker sends repeated topics as aliases; smq
/// sub prints the topic each alias stands for.
#[test]
fn topic_aliases_from_the_broker_are_resolved() {
    let broker = crate::support::smq_broker::SmqBroker::start(&[]);
    let port = broker.port();
    let args = [
        "-V",
        "5",
        "-D",
        "connect",
        "topic-alias-maximum",
        "4",
        "-t",
        "lab/#",
        "-v",
        "-C",
        "5",
    ];
    let s = SmqSub::start(port, &args);
    for (topic, m) in [
        ("lab/phone-1/accelerometer", "1"),
        ("lab/phone-1/accelerometer", "2"),
        ("lab/phone-1/gyroscope", "3"),
        ("lab/phone-1/accelerometer", "4"),
        ("lab/phone-1/gyroscope", "5"),
    ] {
        send(port, &["-t", topic, "-m", m, "-q", "1"]);
    }
    let out = s.wait(SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "lab/phone-1/accelerometer 1\nlab/phone-1/accelerometer 2\nlab/phone-1/gyroscope 3\n\
         lab/phone-1/accelerometer 4\nlab/phone-1/gyroscope 5\n"
    );
}
