//! `smq pub` against real brokers, checked with a subscriber that is not smq (mosquitto_sub).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::certs::Certs;
use crate::support::mosquitto::Mosquitto;
use crate::support::ws_broker::WsBroker;
use crate::support::{Sub, assert_fails, run_with_timeout, smq, text, wait_with_deadline};

const SECS: u64 = 30;

/// `smq pub -h 127.0.0.1 -p PORT -i ID <args>`, run to completion.
fn publish(port: u16, args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_with_timeout(pub_cmd(port).args(args), stdin, SECS)
}

fn pub_cmd(port: u16) -> Command {
    let mut cmd = smq();
    cmd.args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()]);
    cmd
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stderr)
    );
}

#[test]
fn message_arrives_at_every_qos() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "q/#", "-v", "-C", "3", "-q", "2"]);
    for qos in ["0", "1", "2"] {
        let topic = format!("q/{qos}");
        assert_ok(&publish(
            broker.port(),
            &["-t", &topic, "-m", "hi", "-q", qos],
            None,
        ));
    }
    let got = text(&sub.wait(SECS).stdout);
    let mut lines: Vec<_> = got.lines().collect();
    lines.sort();
    assert_eq!(lines, ["q/0 hi", "q/1 hi", "q/2 hi"]);
}

#[test]
fn mosquitto_pub_command_line_works_unchanged() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "a",
            "-m",
            "x",
            "-q",
            "1",
            "-r",
        ]),
        None,
        SECS,
    );
    assert_ok(&out);
    // Retained: a subscriber that arrives later still gets it, flagged retained.
    let sub = Sub::start(broker.port(), &["-t", "a", "-C", "1", "-F", "%t %p %r"]);
    assert_eq!(text(&sub.wait(SECS).stdout), "a x 1\n");
}

#[test]
fn null_message_clears_a_retained_message() {
    let broker = Mosquitto::start();
    assert_ok(&publish(
        broker.port(),
        &["-t", "r", "-m", "old", "-r"],
        None,
    ));
    assert_ok(&publish(broker.port(), &["-t", "r", "-n", "-r"], None));
    assert_ok(&publish(broker.port(), &["-t", "r", "-m", "live"], None));
    // Subscribe after the clear, then publish one live message: it must be the first we see.
    let sub = Sub::start(broker.port(), &["-t", "r", "-C", "1"]);
    assert_ok(&publish(broker.port(), &["-t", "r", "-m", "new"], None));
    assert_eq!(text(&sub.wait(SECS).stdout), "new\n");
}

#[test]
fn file_payload_is_binary_safe() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.bin");
    let mut payload: Vec<u8> = (0..=255u8).collect();
    payload.extend_from_slice(&[0, 0xff, b'\n', b'\r', 0]);
    std::fs::write(&path, &payload).unwrap();
    let sub = Sub::start(broker.port(), &["-t", "bin", "-C", "1", "-F", "%x"]);
    assert_ok(&publish(
        broker.port(),
        &["-t", "bin", "-f", path.to_str().unwrap(), "-q", "1"],
        None,
    ));
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(text(&sub.wait(SECS).stdout), format!("{hex}\n"));
}

#[test]
fn large_file_arrives_whole() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &payload).unwrap();
    let sub = Sub::start(broker.port(), &["-t", "big", "-C", "1", "-F", "%l"]);
    assert_ok(&publish(
        broker.port(),
        &["-t", "big", "-f", path.to_str().unwrap(), "-q", "2"],
        None,
    ));
    assert_eq!(text(&sub.wait(SECS).stdout), "3000000\n");
}

#[test]
fn stdin_file_sends_all_of_stdin_as_one_message() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "s", "-C", "1", "-F", "%x"]);
    assert_ok(&publish(
        broker.port(),
        &["-t", "s", "-s"],
        Some(b"two\nlines\0"),
    ));
    assert_eq!(text(&sub.wait(SECS).stdout), "74776f0a6c696e657300\n");
}

#[test]
fn line_mode_strips_cr_skips_blank_lines_and_sends_the_last_line() {
    let broker = Mosquitto::start();
    let sub = Sub::start(
        broker.port(),
        &["-t", "l", "-C", "4", "-F", "%x", "-q", "1"],
    );
    let long = "z".repeat(100_000);
    let input = format!("one\r\n\n\r\na\0b\n{long}\nlast");
    assert_ok(&publish(
        broker.port(),
        &["-t", "l", "-l", "-q", "1"],
        Some(input.as_bytes()),
    ));
    let hex = |s: &[u8]| s.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let want = [
        hex(b"one"),
        hex(b"a\0b"),
        hex(long.as_bytes()),
        hex(b"last"),
    ];
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        format!("{}\n", want.join("\n"))
    );
}

#[test]
fn send_empty_publishes_blank_lines_as_zero_length_messages() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "e", "-C", "3", "-v"]);
    assert_ok(&publish(
        broker.port(),
        &["-t", "e", "-l", "--send-empty"],
        Some(b"a\n\nb\n"),
    ));
    assert_eq!(text(&sub.wait(SECS).stdout), "e a\ne (null)\ne b\n");
}

#[test]
fn many_lines_at_qos_1_and_2_all_arrive() {
    let broker = Mosquitto::builder().config("max_queued_messages 0").start();
    for qos in ["1", "2"] {
        let topic = format!("many/{qos}");
        let sub = Sub::start(broker.port(), &["-t", &topic, "-C", "3000", "-q", qos]);
        let input: String = (0..3000).map(|i| format!("{i}\n")).collect();
        let out = publish(
            broker.port(),
            &["-t", &topic, "-l", "-q", qos, "-M", "7"],
            Some(input.as_bytes()),
        );
        assert_ok(&out);
        assert_eq!(text(&sub.wait(SECS).stdout), input);
    }
}

#[test]
fn per_line_topics_go_to_their_own_topics() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "t/#", "-C", "3", "-v"]);
    let input = b"t/a\t1\nt/b\t2\twith tab\nno separator\n";
    let out = publish(
        broker.port(),
        &["-t", "t/default", "-l", "--line-topic-sep", "\\t"],
        Some(input),
    );
    assert_ok(&out);
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "t/a 1\nt/b 2\twith tab\nt/default no separator\n"
    );
}

#[test]
fn a_bad_line_topic_stops_with_the_line_number_after_delivering_the_lines_before() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "t/#", "-C", "1", "-v"]);
    let out = publish(
        broker.port(),
        &["-l", "-q", "1", "--line-topic-sep", ":"],
        Some(b"t/ok:1\nt/+:2\n"),
    );
    assert_fails(&out, 1, "stdin line 2: bad topic 't/+'");
    assert_eq!(text(&sub.wait(SECS).stdout), "t/ok 1\n");
}

#[test]
fn repeat_and_rate_send_every_message() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "rep", "-C", "5", "-v"]);
    let out = publish(
        broker.port(),
        &[
            "-t",
            "rep",
            "-m",
            "x",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.05",
            "-q",
            "1",
        ],
        None,
    );
    assert_ok(&out);
    assert_ok(&publish(
        broker.port(),
        &["-t", "rep", "-l", "--rate", "200"],
        Some(b"y\nz\n"),
    ));
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "rep x\nrep x\nrep x\nrep y\nrep z\n"
    );
}

#[test]
fn lines_are_published_as_they_arrive() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "live", "-C", "1"]);
    let mut child = pub_cmd(broker.port())
        .args(["-t", "live", "-l", "-q", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    // The subscriber gets the line while smq's stdin is still open.
    assert_eq!(text(&sub.wait(SECS).stdout), "first\n");
    drop(stdin);
    let out = wait_with_deadline(child, Duration::from_secs(SECS)).expect("smq pub exits at EOF");
    assert_ok(&out);
}

#[test]
fn ctrl_c_disconnects_cleanly_and_exits_130() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "int", "-t", "will", "-C", "1", "-v"]);
    let mut child = pub_cmd(broker.port())
        .args([
            "-t",
            "int",
            "-l",
            "--will-topic",
            "will",
            "--will-payload",
            "died",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"up\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(text(&sub.wait(SECS).stdout), "int up\n");
    let will = Sub::start(broker.port(), &["-t", "will", "-C", "1", "-W", "2"]);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out =
        wait_with_deadline(child, Duration::from_secs(SECS)).expect("smq pub exits on SIGINT");
    assert_fails(&out, 130, "interrupted");
    // A deliberate stop is a normal DISCONNECT: the will is not published.
    assert_eq!(will.wait(SECS).status.code(), Some(27));
    drop(stdin);
}

#[test]
fn will_is_published_when_the_connection_dies() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "w/#", "-C", "3", "-v"]);
    let mut child = pub_cmd(broker.port())
        .args(["-t", "w/alive", "-l", "-q", "1", "-V", "5"])
        .args([
            "--will-topic",
            "w/will",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"yes\n").unwrap();
    stdin.flush().unwrap();
    // Wait until connected (the first line arrived), then kill it without a DISCONNECT.
    let first = Sub::start(broker.port(), &["-t", "w/alive", "-C", "1"]);
    stdin.write_all(b"yes\n").unwrap();
    stdin.flush().unwrap();
    first.wait(SECS);
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "w/alive yes\nw/alive yes\nw/will gone\n"
    );
}

#[test]
fn v5_properties_reach_the_subscriber() {
    let broker = Mosquitto::start();
    let sub = Sub::start(
        broker.port(),
        &["-V", "5", "-t", "p", "-C", "1", "-F", "%C|%P|%E"],
    );
    let out = publish(
        broker.port(),
        &[
            "-t",
            "p",
            "-m",
            "x",
            "-q",
            "1",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "message-expiry-interval",
            "300",
        ],
        None,
    );
    assert_ok(&out);
    let got = text(&sub.wait(SECS).stdout);
    let fields: Vec<&str> = got.trim_end().split('|').collect();
    assert_eq!(fields[0], "text/plain");
    assert_eq!(fields[1], "k:v");
    // Decremented by the broker on delivery, so at most what we sent.
    let expiry: u32 = fields[2].trim().parse().unwrap();
    assert!((299..=300).contains(&expiry), "{got}");
}

#[test]
fn debug_traces_packets_on_stderr() {
    let broker = Mosquitto::start();
    let out = publish(
        broker.port(),
        &["-t", "d", "-m", "x", "-q", "2", "-d", "-i", "tracer"],
        None,
    );
    assert_ok(&out);
    let err = text(&out.stderr);
    for needle in [
        "Client tracer sending CONNECT",
        "Client tracer received CONNACK",
        "Client tracer sending PUBLISH (d0, q2, r0, m1, 'd', ... (1 bytes))",
        "Client tracer received PUBREC",
        "Client tracer sending PUBREL",
        "Client tracer received PUBCOMP",
        "Client tracer sending DISCONNECT",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn keepalive_zero_and_client_ids_are_accepted() {
    let broker = Mosquitto::start();
    assert_ok(&publish(
        broker.port(),
        &["-t", "k", "-m", "x", "-k", "0", "-i", "fixed-id"],
        None,
    ));
    assert_ok(&publish(
        broker.port(),
        &["-t", "k", "-m", "x", "-I", "prefix-", "-V", "5"],
        None,
    ));
    assert_ok(&publish(
        broker.port(),
        &["-t", "k", "-m", "x", "-c", "-i", "persist", "-q", "1"],
        None,
    ));
    assert_ok(&publish(
        broker.port(),
        &["-t", "k", "-m", "x", "-x", "60", "-i", "expiring"],
        None,
    ));
}

#[test]
fn oversized_message_is_refused_before_sending() {
    let broker = Mosquitto::builder().config("max_packet_size 1000").start();
    let big = "b".repeat(2000);
    let out = publish(broker.port(), &["-t", "big", "-m", &big, "-V", "5"], None);
    // 1000 - 1 - 2 (remaining length) - 5 (topic) - 1 (properties) = 991.
    assert_fails(
        &out,
        1,
        "the message (-m) is larger than 991 bytes, the largest message the broker accepts on topic 'big': its MQTT 5 CONNACK sets a Maximum Packet Size of 1000 bytes",
    );
}

#[test]
fn credentials_from_flags_url_env_and_file() {
    let broker = Mosquitto::builder().password("al ice", "s3:cr@t").start();
    let port = broker.port();
    let sub_args = ["-t", "auth", "-C", "4", "-u", "al ice", "-P", "s3:cr@t"];
    let sub = Sub::start(port, &sub_args);
    assert_ok(&publish(
        port,
        &["-t", "auth", "-m", "1", "-u", "al ice", "-P", "s3:cr@t"],
        None,
    ));
    let url = format!("mqtt://al%20ice:s3%3Acr%40t@127.0.0.1:{port}/auth");
    assert_ok(&run_with_timeout(
        smq().args(["pub", "-L", &url, "-m", "2"]),
        None,
        SECS,
    ));
    let env = run_with_timeout(
        pub_cmd(port)
            .args(["-t", "auth", "-m", "3", "-u", "al ice"])
            .env("SMQ_PASSWORD", "s3:cr@t"),
        None,
        SECS,
    );
    assert_ok(&env);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3:cr@t\n").unwrap();
    assert_ok(&publish(
        port,
        &[
            "-t",
            "auth",
            "-m",
            "4",
            "-u",
            "al ice",
            "--pw-file",
            pw.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(text(&sub.wait(SECS).stdout), "1\n2\n3\n4\n");
}

#[test]
fn refused_login_exits_with_the_connack_code() {
    let broker = Mosquitto::builder().password("u", "right").start();
    let port = broker.port();
    let out = publish(
        port,
        &["-t", "a", "-m", "x", "-u", "u", "-P", "wrong"],
        None,
    );
    // -V auto speaks MQTT 5 first, but exits with the 3.1.1 code, as mosquitto_pub (3.1.1 by
    // default) would; the message names the broker's MQTT 5 code.
    let err = assert_fails(&out, 5, "not authorized");
    assert!(err.contains("MQTT 5 reason code 0x87"), "{err}");
    let out = publish(port, &["-t", "a", "-m", "x"], None);
    assert_fails(&out, 5, "refused the connection");
    let out = publish(
        port,
        &["-t", "a", "-m", "x", "-u", "u", "-P", "wrong", "-V", "311"],
        None,
    );
    assert_fails(&out, 5, "not authorised");
    let out = publish(port, &["-t", "a", "-m", "x", "-V", "mqttv311"], None);
    assert_fails(&out, 5, "refused the connection");
    let out = publish(
        port,
        &["-t", "a", "-m", "x", "-u", "u", "-P", "wrong", "-V", "5"],
        None,
    );
    assert_fails(&out, 135, "not authorized");
}

#[test]
fn tls_with_certificates_made_at_test_time() {
    let certs = Certs::generate();
    let broker = Mosquitto::builder().tls(&certs).start();
    let port = broker.tls_port();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let sub = Sub::start(port, &["-t", "tls", "-C", "3", "--cafile", ca]);
    assert_ok(&publish(
        port,
        &["-t", "tls", "-m", "1", "--cafile", ca, "-q", "1"],
        None,
    ));
    // By name: the certificate lists localhost; --servername overrides the name checked.
    let by_name = run_with_timeout(
        smq().args([
            "pub",
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "-t",
            "tls",
            "-m",
            "2",
            "--cafile",
            ca,
        ]),
        None,
        SECS,
    );
    assert_ok(&by_name);
    let url = format!("mqtts://127.0.0.1:{port}/tls");
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-L",
            &url,
            "-m",
            "3",
            "--cafile",
            ca,
            "--servername",
            "localhost",
        ]),
        None,
        SECS,
    );
    assert_ok(&out);
    assert_eq!(text(&sub.wait(SECS).stdout), "1\n2\n3\n");
}

#[test]
fn tls_errors_say_what_is_wrong() {
    let certs = Certs::generate();
    let good = Mosquitto::builder().tls(&certs).start();
    let port = good.tls_port();
    let other = certs.other_ca();
    let out = publish(
        port,
        &["-t", "x", "-m", "x", "--cafile", other.to_str().unwrap()],
        None,
    );
    assert_fails(&out, 1, "not signed by a trusted CA");

    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let wrong = Mosquitto::builder()
        .tls(&certs)
        .server_cert(certs.wrong_name_cert(), certs.wrong_name_key())
        .start();
    let out = publish(
        wrong.tls_port(),
        &["-t", "x", "-m", "x", "--cafile", ca],
        None,
    );
    assert_fails(
        &out,
        1,
        "certificate is for example.invalid but not for '127.0.0.1'",
    );

    let expired = Mosquitto::builder()
        .tls(&certs)
        .server_cert(certs.expired_cert(), certs.expired_key())
        .start();
    let out = publish(
        expired.tls_port(),
        &["-t", "x", "-m", "x", "--cafile", ca],
        None,
    );
    assert_fails(
        &out,
        1,
        "the broker's certificate (CN=smq test expired) expired on 2021-01-01 00:00 UTC",
    );

    let out = publish(
        port,
        &["-t", "x", "-m", "x", "--cafile", "/nonexistent/ca.pem"],
        None,
    );
    assert_fails(&out, 1, "reading CA file /nonexistent/ca.pem");

    // --insecure accepts the unknown CA, and says loudly that it did.
    let out = publish(
        port,
        &[
            "-t",
            "x",
            "-m",
            "x",
            "--cafile",
            other.to_str().unwrap(),
            "--insecure",
        ],
        None,
    );
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("NOT checked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tls_client_certificates() {
    let certs = Certs::generate();
    let broker = Mosquitto::builder()
        .tls(&certs)
        .require_certificate(true)
        .start();
    let port = broker.tls_port();
    let ca = certs.ca();
    let (cert, key) = (certs.client_cert(), certs.client_key());
    let with_cert = [
        "-t",
        "c",
        "-m",
        "x",
        "--cafile",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    assert_ok(&publish(port, &with_cert, None));
    let out = publish(
        port,
        &["-t", "c", "-m", "x", "--cafile", ca.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn websocket_to_a_third_party_broker() {
    let broker = WsBroker::start();
    let sub = Sub::start(broker.tcp_port(), &["-t", "ws/#", "-C", "3", "-v"]);
    let url = format!("ws://127.0.0.1:{}/ws/url", broker.port());
    assert_ok(&run_with_timeout(
        smq().args(["pub", "-L", &url, "-m", "1", "-q", "1"]),
        None,
        SECS,
    ));
    let port = broker.port().to_string();
    let out = run_with_timeout(
        smq()
            .args([
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--ws",
                "--ws-path",
                "/custom",
                "-t",
                "ws/flag",
                "-m",
                "2",
            ])
            .args(["--ws-header", "X-Smq-Test: yes"]),
        None,
        SECS,
    );
    assert_ok(&out);
    let lines = run_with_timeout(
        smq().args(["pub", "-L", &url, "-l", "-q", "2"]),
        Some(b"3\n"),
        SECS,
    );
    assert_ok(&lines);
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "ws/url 1\nws/flag 2\nws/url 3\n"
    );
    let log = broker.log();
    assert!(
        log.contains("/custom"),
        "the broker saw the --ws-path: {log}"
    );
}

#[test]
fn websocket_over_tls() {
    let certs = Certs::generate();
    let broker = WsBroker::start_tls(&certs);
    let sub = Sub::start(broker.tcp_port(), &["-t", "wss/#", "-C", "2", "-v"]);
    let ca = certs.ca();
    let url = format!("wss://localhost:{}/wss/url", broker.wss_port());
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-L",
            &url,
            "-m",
            "1",
            "-q",
            "1",
            "--cafile",
            ca.to_str().unwrap(),
        ]),
        None,
        SECS,
    );
    assert_ok(&out);
    let port = broker.wss_port().to_string();
    let out = run_with_timeout(
        smq()
            .args([
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--ws",
                "-t",
                "wss/flag",
                "-m",
                "2",
            ])
            .args(["--cafile", ca.to_str().unwrap()]),
        None,
        SECS,
    );
    assert_ok(&out);
    assert_eq!(text(&sub.wait(SECS).stdout), "wss/url 1\nwss/flag 2\n");
    // The wrong CA fails the TLS handshake under the WebSocket, with the same plain words.
    let other = certs.other_ca();
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-L",
            &url,
            "-m",
            "x",
            "--cafile",
            other.to_str().unwrap(),
        ]),
        None,
        SECS,
    );
    assert_fails(&out, 1, "not signed by a trusted CA");
}

#[test]
fn os_certificate_store_is_used_and_does_not_trust_the_test_ca() {
    let certs = Certs::generate();
    let broker = Mosquitto::builder().tls(&certs).start();
    let out = publish(
        broker.tls_port(),
        &["-t", "x", "-m", "x", "--tls-use-os-certs"],
        None,
    );
    assert_fails(&out, 1, "not signed by a trusted CA");
    // -p 8883 semantics: a TLS port with no CA option also means the OS store.
    let url = format!("mqtts://127.0.0.1:{}/x", broker.tls_port());
    let out = run_with_timeout(smq().args(["pub", "-L", &url, "-m", "x"]), None, SECS);
    assert_fails(&out, 1, "not signed by a trusted CA");
}

#[test]
fn broker_going_away_mid_stream_fails_and_says_how_many_were_confirmed() {
    let mut broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "gone", "-C", "2", "-q", "1"]);
    let mut child = pub_cmd(broker.port())
        .args(["-t", "gone", "-l", "-q", "1", "--no-reconnect"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\n2\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(text(&sub.wait(SECS).stdout), "1\n2\n");
    broker.stop();
    // Lines written after the broker died must not be reported as sent.
    let _ = stdin.write_all(b"3\n");
    drop(stdin);
    let out = wait_with_deadline(child, Duration::from_secs(SECS)).expect("smq pub exits");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("connection") && err.contains("2 of"), "{err}");
    assert!(err.contains("confirmed by the broker"), "{err}");
}

#[test]
fn connection_errors_name_the_cause() {
    let unused = crate::support::free_port();
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &unused.to_string(),
            "-t",
            "a",
            "-m",
            "x",
        ]),
        None,
        SECS,
    );
    assert_fails(&out, 1, "is the broker running on that port?");
    let out = run_with_timeout(
        smq().args(["pub", "-h", "no-such-host.invalid", "-t", "a", "-m", "x"]),
        None,
        SECS,
    );
    assert_fails(&out, 1, "cannot resolve host 'no-such-host.invalid'");
    let out = run_with_timeout(
        smq().args(["pub", "-t", "a", "-f", "/nonexistent/payload"]),
        None,
        SECS,
    );
    assert_fails(&out, 1, "reading message file /nonexistent/payload");
}

#[test]
fn usage_errors_exit_2_before_connecting() {
    for (args, needle) in [
        (&["-t", "a", "-m", "x", "-q", "3"][..], "3"),
        (&["-t", "a/#", "-m", "x"][..], "bad topic 'a/#'"),
        (&["-m", "x"][..], "a topic is needed"),
        (
            &["-t", "a", "-m", "x", "-V", "mqttv31", "-i", ""][..],
            "MQTT 3.1 needs a client id",
        ),
        (
            &["-t", "a", "-m", "x", "-V", "mqttv31", "-x", "5"][..],
            "drop -V mqttv31",
        ),
        (&["-t", "a", "-m", "x", "-c"][..], "needs a client id"),
        (&["-t", "a", "-m", "x", "-x", "-1"][..], "needs a client id"),
        (
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-V",
                "311",
                "-D",
                "publish",
                "content-type",
                "x",
            ][..],
            "MQTT 5 features",
        ),
        (
            &["-t", "a", "-m", "x", "--psk", "00"][..],
            "not supported by smq (rustls)",
        ),
        (
            &[
                "-t",
                "a",
                "-m",
                "x",
                "--cafile",
                "c",
                "--tls-version",
                "tlsv1.1",
            ][..],
            "tlsv1.1 is not supported",
        ),
        (
            &["-L", "http://h/t", "-m", "x"][..],
            "unknown scheme 'http'",
        ),
        (
            &["-L", "mqtt://h:70000/t", "-m", "x"][..],
            "'70000' is not a port",
        ),
        (
            &["-t", "a", "-m", "x", "-P", "secret"][..],
            "needs a username",
        ),
        (
            &["-t", "a", "-l", "--repeat", "2"][..],
            "--repeat works with",
        ),
        (
            &["-t", "a", "-m", "x", "-D", "publish", "bogus", "1"][..],
            "'bogus' is not allowed on publish",
        ),
        (
            &["-t", "a", "-m", "x", "--ws", "--ws-header", "novalue"][..],
            "must be 'Name: value'",
        ),
    ] {
        // Port 9 (discard) is never an MQTT broker: reaching it would fail differently.
        let out = run_with_timeout(smq().args(["pub", "-p", "9"]).args(args), None, SECS);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn v5_publish_reaches_v5_and_v311_subscribers() {
    let broker = Mosquitto::start();
    let v5 = Sub::start(
        broker.port(),
        &["-V", "5", "-t", "mix", "-C", "1", "-q", "2"],
    );
    let v3 = Sub::start(broker.port(), &["-t", "mix", "-C", "1", "-q", "2"]);
    assert_ok(&publish(
        broker.port(),
        &["-t", "mix", "-m", "ü ✓", "-q", "2", "-V", "5"],
        None,
    ));
    assert_eq!(text(&v5.wait(SECS).stdout), "ü ✓\n");
    assert_eq!(text(&v3.wait(SECS).stdout), "ü ✓\n");
}

#[test]
fn tls_options_capath_version_alpn_ciphers_and_no_tls() {
    let certs = Certs::generate();
    let broker = Mosquitto::builder().tls(&certs).start();
    let port = broker.tls_port();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let capath = tempfile::tempdir().unwrap();
    std::fs::copy(certs.ca(), capath.path().join("ca.pem")).unwrap();
    std::fs::write(capath.path().join("README"), "not a certificate").unwrap();
    let sub = Sub::start(port, &["-t", "opt", "-C", "4", "--cafile", ca]);
    let capath = capath.path().to_str().unwrap();
    assert_ok(&publish(
        port,
        &["-t", "opt", "-m", "capath", "--capath", capath],
        None,
    ));
    assert_ok(&publish(
        port,
        &[
            "-t",
            "opt",
            "-m",
            "v13",
            "--cafile",
            ca,
            "--tls-version",
            "tlsv1.3",
        ],
        None,
    ));
    assert_ok(&publish(
        port,
        &[
            "-t",
            "opt",
            "-m",
            "alpn",
            "--cafile",
            ca,
            "--tls-alpn",
            "mqtt",
        ],
        None,
    ));
    let suite = ["--ciphers", "TLS13_AES_256_GCM_SHA384"];
    assert_ok(&publish(
        port,
        &["-t", "opt", "-m", "cipher", "--cafile", ca]
            .iter()
            .chain(&suite)
            .copied()
            .collect::<Vec<_>>(),
        None,
    ));
    assert_eq!(text(&sub.wait(SECS).stdout), "capath\nv13\nalpn\ncipher\n");
    let out = publish(
        port,
        &["-t", "opt", "-m", "x", "--cafile", ca, "--ciphers", "NOPE"],
        None,
    );
    assert_fails(&out, 2, "unknown suite 'NOPE'");
    // --no-tls cancels the CA option: a plain connection to the plain listener works.
    assert_ok(&publish(
        broker.port(),
        &["-t", "plain", "-m", "x", "--cafile", ca, "--no-tls"],
        None,
    ));
}

#[test]
fn unix_socket_bind_address_and_nodelay() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mqtt.sock");
    let broker = Mosquitto::builder()
        .config(&format!("listener 0 {}", sock.display()))
        .start();
    let sub = Sub::start(broker.port(), &["-t", "sock", "-C", "3"]);
    let out = run_with_timeout(
        smq().args([
            "pub",
            "--unix",
            sock.to_str().unwrap(),
            "-t",
            "sock",
            "-m",
            "unix",
        ]),
        None,
        SECS,
    );
    assert_ok(&out);
    assert_ok(&publish(
        broker.port(),
        &["-t", "sock", "-m", "bound", "-A", "127.0.0.1"],
        None,
    ));
    assert_ok(&publish(
        broker.port(),
        &["-t", "sock", "-m", "nodelay", "--nodelay"],
        None,
    ));
    assert_eq!(text(&sub.wait(SECS).stdout), "unix\nbound\nnodelay\n");
}

#[test]
fn v5_connect_will_and_disconnect_properties_are_accepted() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "props", "-C", "1"]);
    let out = publish(
        broker.port(),
        &[
            "-t",
            "props",
            "-m",
            "x",
            "-i",
            "propertied",
            "-D",
            "connect",
            "user-property",
            "who",
            "test",
            "-D",
            "connect",
            "receive-maximum",
            "10",
            "-D",
            "disconnect",
            "session-expiry-interval",
            "0",
            "--will-topic",
            "props/will",
            "--will-retain",
            "-D",
            "will",
            "will-delay-interval",
            "5",
            "-D",
            "will",
            "content-type",
            "text/plain",
        ],
        None,
    );
    assert_ok(&out);
    assert_eq!(text(&sub.wait(SECS).stdout), "x\n");
}

#[test]
fn quiet_prints_no_error_but_keeps_the_exit_code() {
    let unused = crate::support::free_port();
    let out = run_with_timeout(
        smq().args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &unused.to_string(),
            "-t",
            "a",
            "-m",
            "x",
            "--quiet",
        ]),
        None,
        SECS,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn pw_prompt_without_a_terminal_says_what_to_use_instead() {
    let broker = Mosquitto::builder().password("u", "p").start();
    // setsid: no controlling terminal, whatever runs the tests.
    let mut cmd = Command::new("setsid");
    cmd.arg(env!("CARGO_BIN_EXE_smq"))
        .args(["pub", "-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-t", "a", "-m", "x", "-u", "u", "--pw-prompt"])
        .env_remove("SMQ_PASSWORD")
        .stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, None, SECS);
    assert_fails(&out, 1, "--pw-prompt needs a terminal");
}
