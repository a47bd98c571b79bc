//! What a mosquitto user trips on when first trying smq (issue 17, item 4): one test each.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::mosquitto::Mosquitto;
use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::{Sub, run_with_timeout, smq, text};

const SECS: u64 = 30;

#[test]
fn repeat_delay_is_not_waited_after_the_last_message() {
    let broker = SmqBroker::start(&[]);
    // One message and a delay of ten minutes: mosquitto_pub exits at once, and so must smq
    // (before the fix it slept the delay after the last message too).
    let out = run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args([
                "-t",
                "rep/t",
                "-m",
                "x",
                "-q",
                "1",
                "--repeat",
                "1",
                "--repeat-delay",
                "600",
            ]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn mqtt_3_1_connects_as_mqisdp() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "v31/t", "-C", "1"]);
    let out = run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args(["-V", "mqttv31", "-t", "v31/t", "-m", "three-one", "-q", "1"]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&sub.wait(SECS).stdout), "three-one\n");
    // Mosquitto logs the protocol: p1 is MQIsdp (3.1), p2 would be 3.1.1. The id is generated,
    // 23 characters at most, as 3.1 wants.
    let ours = |log: &str| {
        log.lines()
            .find(|l| l.contains("New client connected") && !l.contains("smq-test-sub"))
            .map(str::to_owned)
    };
    // The log is read on a thread: wait for the line rather than for a time.
    let line = poll(Duration::from_secs(SECS), Duration::from_millis(20), || {
        ours(&broker.log())
    })
    .unwrap_or_else(|| panic!("{}", broker.log()));
    assert!(line.contains("(p1, c1,"), "{line}");
    let id = line
        .split(" as ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(id.len() <= 23, "{id}");

    // serve-broker takes 3.1 as 3.1.1.
    let ours = SmqBroker::start(&[]);
    let out = run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &ours.port().to_string()])
            .args(["-V", "31", "-t", "v31/t", "-m", "x", "-q", "2"]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run_with_timeout(
        smq().args(["pub", "-V", "31", "-i", "", "-t", "a", "-n"]),
        None,
        SECS,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("MQTT 3.1 needs a client id"));
}

#[test]
fn replay_reads_mosquittos_z_offset_tst_and_smqs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    fs::write(
        &file,
        concat!(
            r#"{"tst":"2026-12-03T13:59:47.126511Z+0000","topic":"tst/mosquitto","qos":0,"retain":0,"payloadlen":1,"payload":"a"}"#,
            "\n",
            r#"{"tst":"2026-12-03T13:59:47.226614+0000","topic":"tst/smq","qos":0,"retain":0,"payloadlen":1,"payload":"b"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = run_with_timeout(smq().arg("replay").arg(&file).arg("--dry-run"), None, SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("tst/mosquitto") && stdout.contains("tst/smq"),
        "{stdout}"
    );
}

#[test]
fn mosquitto_flags_smq_lacks_get_a_sentence() {
    for (args, needle) in [
        (
            &["pub", "--proxy", "socks5h://h", "-t", "a", "-n"][..],
            "tunnel",
        ),
        (
            &["pub", "--proxy=socks5h://h", "-t", "a", "-n"][..],
            "tunnel",
        ),
        (&["sub", "-S", "-t", "a"][..], "SRV"),
        (&["sub", "-w", "-t", "a"][..], "--stats"),
        (&["sub", "--watch", "-t", "a"][..], "--stats"),
        (
            &["pub", "--psk", "00", "--psk-identity", "x", "-t", "a", "-n"][..],
            "certificates",
        ),
    ] {
        let out = run_with_timeout(smq().args(args), None, SECS);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && !err.contains("unexpected argument"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn an_unknown_property_lists_the_valid_ones() {
    let out = run_with_timeout(
        smq().args(["pub", "-t", "a", "-m", "x", "-D", "publish", "bogus", "1"]),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for name in [
        "content-type",
        "message-expiry-interval",
        "user-property",
        "topic-alias",
    ] {
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn help_texts_say_what_they_mean() {
    let out = run_with_timeout(smq().args(["record", "-o", "/dev/null"]), None, SECS);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("-t FILTER") && !err.contains("-U"), "{err}");
    let help = text(&run_with_timeout(smq().args(["record", "--help"]), None, SECS).stdout);
    let layout = help.split("--layout").nth(1).unwrap();
    assert!(
        layout[..layout.find("--format").unwrap()].contains("wide"),
        "{help}"
    );
    for cmd in ["passwd", "generate", "serve-broker"] {
        let help = text(&run_with_timeout(smq().args([cmd, "--help"]), None, SECS).stdout);
        assert!(!help.contains("-h is --host"), "{cmd}: {help}");
    }
    let help = text(&run_with_timeout(smq().args(["pub", "--help"]), None, SECS).stdout);
    assert!(help.contains("-h is --host"), "{help}");
}

#[test]
fn the_example_capture_has_each_message_once() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sensor-logger.jsonl");
    let mut ids = std::collections::HashSet::new();
    let mut readings = std::collections::HashSet::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let msg: serde_json::Value =
            serde_json::from_str(record["payload"].as_str().unwrap()).unwrap();
        let session = msg["sessionId"].as_str().unwrap().to_owned();
        assert!(
            ids.insert((session.clone(), msg["messageId"].to_string())),
            "{line}"
        );
        for r in msg["payload"].as_array().unwrap() {
            let key = (
                session.clone(),
                r["name"].to_string(),
                r["time"].to_string(),
            );
            assert!(readings.insert(key), "a reading repeats: {r}");
        }
    }
    assert_eq!(ids.len(), 12);
}

#[test]
fn man_pages_describe_every_flag_and_the_format_language() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let page = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = page.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            // clap_mangen: `.TP`, the flag, then its description.
            if *l == ".TP" {
                let description = lines.get(i + 2).copied().unwrap_or_default();
                assert!(
                    !description.is_empty() && !description.starts_with('.'),
                    "{}: {} has no description",
                    path.display(),
                    lines[i + 1]
                );
            }
        }
    }
    let sub = fs::read_to_string(dir.join("smq-sub.1")).unwrap();
    for needle in [
        "%j",
        "%J",
        "%U",
        "@N",
        "payload_b64",
        "%P user properties",
        "xargs",
    ] {
        assert!(sub.contains(needle), "smq-sub.1 lacks {needle}");
    }
}
