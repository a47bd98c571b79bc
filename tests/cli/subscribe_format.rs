//! `smq sub` output (`-F`, `-v`, default, `-N`, `--pretty`) against mosquitto_sub 2.0 byte for
//! byte, on the same messages from one broker, plus the deliberate differences of
//! MOSQUITTO.md §d (#6–#11).
//!
//! Every subscriber of a test listens on one topic and receives one set of published
//! messages, so the two tools see the same topic, payloads, QoS, retain flags and mids.

use std::process::Output;

use serde_json::Value;

use crate::support::mosquitto::Mosquitto;
use crate::support::smq_sub::SmqSub;
use crate::support::{Sub, assert_fails, mosquitto_pub, run_with_timeout, smq, text};

const SECS: u64 = 30;

/// A binary payload with a NUL and a byte that is never UTF-8.
const BINARY: &[u8] = b"a\0b\xffc";

/// Bytes as an escaped string, so NUL, 0xFF and control characters show in failures.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// One message for `publish_set`: mosquitto_pub args (after `-t`) and stdin for `-s`.
struct Msg {
    args: &'static [&'static str],
    stdin: Option<&'static [u8]>,
}

const RETAINED: Msg = Msg {
    args: &["-m", "ret", "-r", "-q", "1"],
    stdin: None,
};

/// The live messages: text, empty, long, v5 properties and (optionally) binary, at every QoS.
///
/// The QoS 2 ones come last: mosquitto_sub hands a QoS 2 message over only at PUBREL, so a
/// QoS 0/1 message published after it may be printed before it.
fn live_messages(v5: bool, binary: bool) -> Vec<Msg> {
    let mut set = vec![
        Msg {
            args: &["-m", "hello world", "-q", "0"],
            stdin: None,
        },
        Msg {
            args: &["-n", "-q", "1"],
            stdin: None,
        },
    ];
    if v5 {
        set.push(Msg {
            args: &[
                "-m",
                "props",
                "-q",
                "1",
                "-V",
                "5",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "response-topic",
                "re/sp",
                "-D",
                "publish",
                "correlation-data",
                "c0rr",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
                "-D",
                "publish",
                "user-property",
                "k1",
                "v1",
                "-D",
                "publish",
                "user-property",
                "k2",
                "v2",
            ],
            stdin: None,
        });
    }
    set.push(Msg {
        args: &["-m", "abcdefghijklmnop", "-q", "2"],
        stdin: None,
    });
    if binary {
        set.push(Msg {
            args: &["-s", "-q", "2"],
            stdin: Some(BINARY),
        });
    }
    set
}

fn publish(port: u16, topic: &str, msg: &Msg) {
    let out = run_with_timeout(
        mosquitto_pub(port).args(["-t", topic]).args(msg.args),
        msg.stdin,
        SECS,
    );
    assert!(
        out.status.success(),
        "mosquitto_pub {:?} failed: {}",
        msg.args,
        text(&out.stderr)
    );
}

/// Subscribes one mosquitto_sub and one smq sub per row (each with `-t topic -C count
/// -q 2 <row args>`), publishes the set once, and returns each row's two outputs.
fn run_rows(
    broker: &Mosquitto,
    topic: &str,
    v5: bool,
    binary: bool,
    rows: &[Vec<&str>],
) -> Vec<(Output, Output)> {
    let port = broker.port();
    publish(port, topic, &RETAINED);
    let live = live_messages(v5, binary);
    let count = (live.len() + 1).to_string();
    let mut subs = Vec::new();
    for row in rows {
        let mut args = vec!["-t", topic, "-C", &count, "-q", "2"];
        if v5 {
            args.extend(["-V", "5"]);
        }
        args.extend(row.iter().copied());
        subs.push((Sub::start(port, &args), SmqSub::start(port, &args)));
    }
    for msg in &live {
        publish(port, topic, msg);
    }
    subs.into_iter()
        .map(|(theirs, ours)| (theirs.wait(SECS), ours.wait(SECS)))
        .collect()
}

#[track_caller]
fn assert_same_bytes(rows: &[Vec<&str>], outputs: &[(Output, Output)]) {
    let mut failures = Vec::new();
    for (row, (theirs, ours)) in rows.iter().zip(outputs) {
        assert!(
            ours.status.success(),
            "smq sub {row:?}: {}",
            text(&ours.stderr)
        );
        if theirs.stdout != ours.stdout {
            failures.push(format!(
                "{row:?}\n  mosquitto_sub: {}\n  smq sub:       {}",
                shown(&theirs.stdout),
                shown(&ours.stdout)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "output differs:\n{}",
        failures.join("\n")
    );
}

fn f(args: &[&'static str]) -> Vec<&'static str> {
    args.to_vec()
}

/// Everything 2.0.11 prints the way smq decided to, on text, empty, binary, retained and
/// QoS 0/1/2 messages.
#[test]
fn formats_match_mosquitto_sub_byte_for_byte() {
    let broker = Mosquitto::start();
    let rows = vec![
        f(&[]),
        f(&["-v"]),
        f(&["-v", "-N"]),
        f(&["-N"]),
        f(&["-F", "%t|%p|%l|%q|%r|%m|%%|%5%"]),
        f(&["-F", "%x|%X"]),
        f(&[
            "-F",
            "[%20t][%-20t][%.3t][%10.3t][%-10.3t][%020t][%.0t][%.t]",
        ]),
        f(&["-F", "[%5l][%05l][%-5l][%-05l][%5m][%05m][%-5m][%5q][%5r]"]),
        // Payloads are at most 16 bytes: a width of 20 only pads, in both.
        f(&["-F", "[%20p][%-20p][%020p][%-020p]"]),
        f(&["-F", "%p\\n%t\\0\\t\\r\\v\\a\\e\\\\|@@|literal ü"]),
        f(&["-F", "%t:%p,", "-N"]),
        f(&["-F", ""]),
        // v5 fields on v3 messages: all absent.
        f(&[
            "-F",
            "[%A][%C][%D][%E][%F][%P][%R][%S][%5A][%-5C][%5E][%5F][%5S][%.3R]",
        ]),
    ];
    let outputs = run_rows(&broker, "fmt/v3", false, true, &rows);
    assert_same_bytes(&rows, &outputs);
}

#[test]
fn v5_property_formats_match_mosquitto_sub_byte_for_byte() {
    let broker = Mosquitto::start();
    let rows = vec![
        f(&["-F", "[%A][%C][%D][%F][%P][%R][%S]"]),
        f(&[
            "-F",
            "[%20C][%-20C][%.3C][%10.3C][%-10.3C][%.2R][%5F][%-5F][%5A][%5S]",
        ]),
        f(&["-F", "%t %p %q %m %l"]),
        f(&["-v"]),
    ];
    let outputs = run_rows(&broker, "fmt/v5", true, true, &rows);
    assert_same_bytes(&rows, &outputs);
}

#[test]
fn subscription_identifier_matches_mosquitto_sub() {
    let broker = Mosquitto::start();
    let rows = vec![f(&[
        "-D",
        "subscribe",
        "subscription-identifier",
        "42",
        "-F",
        "[%S][%5S][%-5S][%05S]",
    ])];
    let outputs = run_rows(&broker, "fmt/subid", true, false, &rows);
    assert_same_bytes(&rows, &outputs);
    assert!(
        text(&outputs[0].1.stdout).starts_with("[42][   42][42   ][00042]\n"),
        "{}",
        shown(&outputs[0].1.stdout)
    );
}

/// The remaining expiry is computed by the broker per delivery, so the two may differ by a
/// second: compare it as a number.
#[test]
fn message_expiry_interval_is_the_remaining_lifetime() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let args = [
        "-t",
        "fmt/exp",
        "-C",
        "1",
        "-V",
        "5",
        "-F",
        "[%E][%8E][%-8E][%08E]",
    ];
    let theirs = Sub::start(port, &args);
    let ours = SmqSub::start(port, &args);
    publish(
        port,
        "fmt/exp",
        &Msg {
            args: &[
                "-m",
                "x",
                "-D",
                "publish",
                "message-expiry-interval",
                "3600",
            ],
            stdin: None,
        },
    );
    let (theirs, ours) = (
        text(&theirs.wait(SECS).stdout),
        text(&ours.wait(SECS).stdout),
    );
    for got in [&theirs, &ours] {
        let value: u32 = got[1..got.find(']').unwrap_or(1)].parse().unwrap_or(0);
        assert!((3590..=3600).contains(&value), "{got:?}");
        let v = value.to_string();
        assert_eq!(*got, format!("[{v}][{v:>8}][{v:<8}][{v:0>8}]\n"));
    }
}

/// `%I`, `%U` and `@` fields differ by the arrival time; compare their shapes, and check that
/// smq's fields share one clock reading.
#[test]
fn time_fields_have_mosquittos_shapes() {
    let broker = Mosquitto::start();
    let rows = vec![f(&["-F", "%I|%U|@s|@N|@@|@Y-@m-@dT@H:@M:@S@z"])];
    let outputs = run_rows(&broker, "fmt/time", false, false, &rows);
    let (theirs, ours) = &outputs[0];
    for (who, out) in [("mosquitto_sub", theirs), ("smq sub", ours)] {
        let got = text(&out.stdout);
        assert_eq!(got.lines().count(), 4, "{who}: {got}");
        for line in got.lines() {
            let fields: Vec<&str> = line.split('|').collect();
            assert_eq!(fields.len(), 6, "{who}: {line}");
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            // 2025-03-14T09:30:00+0000
            assert_eq!(fields[0].len(), 24, "{who} %I: {line}");
            assert_eq!(&fields[0][10..11], "T", "{who} %I: {line}");
            let (secs, nanos) = fields[1].split_once('.').expect("%U has a dot");
            assert!(
                digits(secs) && digits(nanos) && nanos.len() == 9,
                "{who} %U: {line}"
            );
            assert!(
                digits(fields[2]) && digits(fields[3]) && fields[3].len() == 9,
                "{who}: {line}"
            );
            assert_eq!(fields[4], "@", "{who}: {line}");
            if who == "smq sub" {
                // mosquitto reads the clock again for %I and %U; smq once per message.
                assert_eq!(
                    (secs, nanos),
                    (fields[2], fields[3]),
                    "one clock reading: {line}"
                );
                assert_eq!(fields[0], fields[5], "one clock reading: {line}");
            }
        }
    }
}

/// `%j` with the time removed and 2.0's user-properties object turned into 2.1's array.
fn normalise_j(line: &str, who: &str) -> Value {
    let mut value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{who} %j is not JSON ({e}): {line}"));
    let obj = value.as_object_mut().expect("an object");
    let tst = obj.remove("tst").expect("tst");
    let tst = tst.as_str().expect("tst is a string").to_owned();
    if who == "smq sub" {
        // 2025-03-14T09:30:00.130482+0000: no `Z` before the offset (mosquitto #2353).
        let b = tst.as_bytes();
        assert!(
            b.len() == 31 && b[19] == b'.' && (b[26] == b'+' || b[26] == b'-'),
            "tst {tst:?}"
        );
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        if let Some(Value::Array(pairs)) = props.get("user-properties") {
            let mut merged = serde_json::Map::new();
            for pair in pairs {
                if let Value::Object(pair) = pair {
                    merged.extend(pair.clone());
                }
            }
            props.insert("user-properties".into(), Value::Object(merged));
        }
    }
    value
}

#[test]
fn j_and_big_j_match_mosquitto_sub_apart_from_time() {
    let broker = Mosquitto::start();
    // Binary payloads are a deliberate difference, tested below; %J has its own test.
    let rows = vec![f(&["-F", "%j"])];
    let outputs = run_rows(&broker, "fmt/j", true, false, &rows);
    let (theirs, ours) = &outputs[0];
    let (theirs, ours) = (text(&theirs.stdout), text(&ours.stdout));
    assert_eq!(
        theirs.lines().count(),
        ours.lines().count(),
        "{theirs}\n{ours}"
    );
    for (t, o) in theirs.lines().zip(ours.lines()) {
        assert_eq!(normalise_j(t, "mosquitto_sub"), normalise_j(o, "smq sub"));
    }
}

/// `%J` on JSON payloads: the same bytes after `tst`, compact and `--pretty`.
#[test]
fn big_j_on_json_payloads_matches_mosquitto_sub_after_tst() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let payloads: [&str; 4] = [
        r#"{"a": 1, "b": [true, null, "x y"], "c": {}, "d": []}"#,
        r#"[{"x": 1}, {}, [2, 3]]"#,
        "42",
        r#""just a string""#,
    ];
    let count = payloads.len().to_string();
    let rows = [vec!["-F", "%J"], vec!["-F", "%J", "--pretty"]];
    let mut subs = Vec::new();
    for row in &rows {
        let mut args = vec!["-t", "fmt/json", "-C", &count, "-q", "1"];
        args.extend(row.iter().copied());
        subs.push((Sub::start(port, &args), SmqSub::start(port, &args)));
    }
    for payload in payloads {
        let out = run_with_timeout(
            mosquitto_pub(port).args(["-t", "fmt/json", "-q", "1", "-m", payload]),
            None,
            SECS,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for (row, (theirs, ours)) in rows.iter().zip(subs) {
        let (theirs, ours) = (theirs.wait(SECS), ours.wait(SECS));
        assert_eq!(text(&ours.stderr).matches("not valid JSON").count(), 0);
        let after_tst = |bytes: &[u8]| -> Vec<String> {
            // Each message starts with `{`, then the tst member; keep what follows it.
            text(bytes)
                .split("\"tst\":")
                .skip(1)
                .map(|rest| rest.split_once(',').map_or("", |(_, r)| r).to_owned())
                .collect()
        };
        assert_eq!(
            after_tst(&theirs.stdout),
            after_tst(&ours.stdout),
            "{row:?}\n--- mosquitto_sub\n{}\n--- smq sub\n{}",
            text(&theirs.stdout),
            text(&ours.stdout)
        );
    }
}

// ---- deliberate differences (MOSQUITTO.md §d) ----

/// d#6: `%j` is valid JSON for any payload; bytes that are not UTF-8 go out as base64.
#[test]
fn j_of_a_binary_payload_is_valid_json_with_payload_b64() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let ours = SmqSub::start(port, &["-t", "fmt/bin", "-C", "2", "-F", "%j"]);
    for msg in [
        Msg {
            args: &["-s"],
            stdin: Some(BINARY),
        },
        Msg {
            args: &["-s"],
            stdin: Some(b"a\0b"),
        },
    ] {
        publish(port, "fmt/bin", &msg);
    }
    let out = ours.wait(SECS);
    let got = text(&out.stdout);
    let lines: Vec<Value> = got
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert_eq!(lines[0]["payload_b64"], "YQBi/2M=");
    assert_eq!(lines[0].get("payload"), None);
    assert_eq!(lines[0]["payloadlen"], 5);
    // Valid UTF-8 with a NUL: kept whole (mosquitto stops at the NUL).
    assert_eq!(lines[1]["payload"], "a\u{0}b");
}

/// d#9: a width pads `%p` and `%x` but never cuts them (mosquitto prints `abcde` for `%5p`).
#[test]
fn width_on_payload_and_hex_only_pads() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let fmt = "[%5p][%.5p][%-10p][%20x][%5x]";
    let theirs = Sub::start(port, &["-t", "fmt/w", "-C", "1", "-F", fmt]);
    // 2.0 refuses the 2.1 separator syntax.
    let ours_fmt = format!("{fmt}[%.2:x]");
    let ours = SmqSub::start(port, &["-t", "fmt/w", "-C", "1", "-F", &ours_fmt]);
    publish(
        port,
        "fmt/w",
        &Msg {
            args: &["-m", "abcdefgh"],
            stdin: None,
        },
    );
    assert_eq!(
        text(&ours.wait(SECS).stdout),
        "[abcdefgh][abcde][abcdefgh  ][    6162636465666768][6162636465666768][61:62:63:64:65:66:67:68]\n"
    );
    // What 2.0.11 does instead, for the record (the `.N` hex grouping is 2.1).
    assert_eq!(
        text(&theirs.wait(SECS).stdout),
        "[abcde][abcdefgh][abcdefgh  ][            61626364][ 6162]\n"
    );
}

/// d#7: `%J` on a payload that is not JSON keeps the message, printed as `%j` would, and says
/// so on stderr.
#[test]
fn big_j_on_a_non_json_payload_prints_it_as_j_and_warns() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let ours = SmqSub::start(port, &["-t", "fmt/nj", "-C", "1", "-F", "A%JB"]);
    publish(
        port,
        "fmt/nj",
        &Msg {
            args: &["-m", "not json"],
            stdin: None,
        },
    );
    let out = ours.wait(SECS);
    let got = text(&out.stdout);
    let inner = got
        .strip_prefix('A')
        .and_then(|s| s.strip_suffix("B\n"))
        .unwrap_or_else(|| panic!("{got:?}"));
    let value: Value = serde_json::from_str(inner).expect("the %j object");
    assert_eq!(value["payload"], "not json");
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.contains("not valid JSON on topic fmt/nj")),
        "{err}"
    );
}

/// d#8: a bad -F string fails before connecting (nothing listens on the port), naming the
/// character and its position. Exit 2, smq's usage-error code (§c; mosquitto exits 1).
#[test]
fn bad_format_is_refused_before_connecting() {
    let port = crate::support::free_port().to_string();
    for (spec, needle) in [
        ("ab%Z", "invalid format specifier 'Z' at position 4"),
        ("%-5", "incomplete format specifier at position 1"),
        ("x\\q", "invalid escape specifier 'q' at position 3"),
        ("@", "incomplete format specifier at position 1"),
    ] {
        let out = run_with_timeout(
            smq().args(["sub", "-h", "127.0.0.1", "-p", &port, "-t", "t", "-F", spec]),
            None,
            SECS,
        );
        let err = assert_fails(&out, 2, needle);
        assert!(
            !err.contains("refused"),
            "{spec:?} got as far as connecting: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}
