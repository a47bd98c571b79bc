//! Proves the test support itself works, with real clients that are not smq.

use std::process::Command;

use crate::support::certs::Certs;
use crate::support::mosquitto::Mosquitto;
use crate::support::ws_broker::WsBroker;
use crate::support::{Sub, free_port, mosquitto_pub, run_with_timeout, text};

/// mosquitto_pub to `port` with `args`; returns (success, stderr).
fn publish(port: u16, args: &[&str]) -> (bool, String) {
    let out = run_with_timeout(mosquitto_pub(port).args(args), None, 30);
    (out.status.success(), text(&out.stderr))
}

#[test]
fn support_sub_receives_from_mosquitto_pub() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-t", "a/#", "-v", "-C", "2", "-q", "1"]);
    for (topic, payload) in [("a/b", "hello"), ("a/c", "")] {
        let (ok, err) = publish(broker.port(), &["-t", topic, "-m", payload, "-q", "1"]);
        assert!(ok, "mosquitto_pub: {err}\n{}", broker.log());
    }
    let out = sub.wait(10);
    assert!(out.status.success(), "{out:?}");
    // Debug lines went to stderr; stdout is exactly what mosquitto_sub -v prints, which for
    // an empty payload is "(null)".
    assert_eq!(text(&out.stdout), "a/b hello\na/c (null)\n");
    assert!(text(&out.stderr).contains("received SUBACK"), "{out:?}");
}

#[test]
fn support_sub_v5_without_newlines_keeps_stdout_clean() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port(), &["-V", "5", "-t", "n", "-N", "-C", "2"]);
    for payload in ["one", "two"] {
        assert!(publish(broker.port(), &["-t", "n", "-m", payload]).0);
    }
    assert_eq!(text(&sub.wait(10).stdout), "onetwo");
}

#[test]
fn support_tls_listener_trusts_only_the_test_ca() {
    let certs = Certs::generate();
    let broker = Mosquitto::builder().tls(&certs).start();
    let ca = certs.ca();
    let ca = ca.to_str().expect("utf-8 temp path");
    let sub = Sub::start(broker.tls_port(), &["--cafile", ca, "-t", "t", "-C", "1"]);
    for host in ["127.0.0.1", "localhost"] {
        let (ok, err) = publish(
            broker.tls_port(),
            &["--cafile", ca, "-h", host, "-t", "t", "-m", "x"],
        );
        assert!(ok, "TLS to {host}: {err}\n{}", broker.log());
    }
    assert_eq!(text(&sub.wait(10).stdout), "x\n");

    let other = certs.other_ca();
    let (ok, _) = publish(
        broker.tls_port(),
        &["--cafile", other.to_str().unwrap(), "-t", "t", "-m", "x"],
    );
    assert!(!ok, "a CA that signed nothing must not verify the server");
    // The plain listener is still plain.
    assert!(publish(broker.port(), &["-t", "t", "-m", "x"]).0);
}

#[test]
fn support_bad_server_certs_are_rejected_by_mosquitto_pub() {
    let certs = Certs::generate();
    let ca = certs.ca();
    for (cert, key, why) in [
        (
            certs.expired_cert(),
            certs.expired_key(),
            "certificate verify failed",
        ),
        (
            certs.wrong_name_cert(),
            certs.wrong_name_key(),
            "host name verification failed",
        ),
    ] {
        let broker = Mosquitto::builder()
            .tls(&certs)
            .server_cert(cert.clone(), key)
            .start();
        // Only -d makes mosquitto_pub name the OpenSSL reason, and it prints it on stdout.
        let args = ["-d", "--cafile", ca.to_str().unwrap(), "-t", "t", "-m", "x"];
        let out = run_with_timeout(mosquitto_pub(broker.tls_port()).args(args), None, 30);
        let said = text(&out.stdout) + &text(&out.stderr);
        // Exit code 8 or 1 ("Unable to connect"), depending on when the handshake fails.
        assert!(!out.status.success(), "{}: {said}", cert.display());
        assert!(said.contains(why), "{}: {said}", cert.display());
    }
}

#[test]
fn support_require_certificate_wants_the_client_cert() {
    let certs = Certs::generate();
    let broker = Mosquitto::builder()
        .tls(&certs)
        .require_certificate(true)
        .start();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let (ok, _) = publish(broker.tls_port(), &["--cafile", ca, "-t", "t", "-m", "x"]);
    assert!(!ok, "no client cert was accepted");
    let (cert, key) = (certs.client_cert(), certs.client_key());
    let with_cert = [
        "--cafile",
        ca,
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let (ok, err) = publish(
        broker.tls_port(),
        &[&with_cert[..], &["-t", "t", "-m", "x"]].concat(),
    );
    assert!(ok, "client cert refused: {err}\n{}", broker.log());
}

#[test]
fn support_password_broker_refuses_wrong_password() {
    let broker = Mosquitto::builder().password("user", "pass").start();
    let (ok, err) = publish(
        broker.port(),
        &["-u", "user", "-P", "pass", "-t", "t", "-m", "x"],
    );
    assert!(ok, "{err}\n{}", broker.log());
    for creds in [&["-u", "user", "-P", "wrong"][..], &[]] {
        let (ok, err) = publish(broker.port(), &[creds, &["-t", "t", "-m", "x"]].concat());
        assert!(!ok && err.contains("not authorised"), "{creds:?}: {err}");
    }
}

#[test]
fn support_restart_keeps_the_port() {
    let mut broker = Mosquitto::start();
    let port = broker.port();
    broker.stop();
    assert!(
        !publish(port, &["-t", "t", "-m", "x"]).0,
        "stopped broker still answers"
    );
    broker.restart();
    assert_eq!(broker.port(), port);
    let sub = Sub::start(port, &["-t", "t", "-C", "1"]);
    assert!(publish(port, &["-t", "t", "-m", "back"]).0);
    assert_eq!(text(&sub.wait(10).stdout), "back\n");
    assert!(broker.log().contains("--- stopped by the test"));
}

#[test]
fn support_ws_broker_accepts_a_websocket_client() {
    let broker = WsBroker::start();
    let sub = Sub::start(broker.tcp_port(), &["-t", "w/#", "-v", "-C", "1"]);
    // mqtt.js's CLI exits 0 even when it can't connect: what arrives at `sub` is the check.
    let mqtt_js = WsBroker::package_dir().join("node_modules/.bin/mqtt");
    let port = broker.port().to_string();
    let args = [
        "pub",
        "-l",
        "ws",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--path",
        "/mqtt",
    ];
    run_with_timeout(
        Command::new(mqtt_js)
            .args(args)
            .args(["-t", "w/s", "-m", "over ws"]),
        None,
        30,
    );
    assert_eq!(
        text(&sub.wait(10).stdout),
        "w/s over ws\n",
        "{}",
        broker.log()
    );
    assert!(
        broker.log().contains("ws /mqtt protocol=mqtt"),
        "{}",
        broker.log()
    );
}

#[test]
#[should_panic(expected = "still running after 1s, killed")]
fn support_run_with_timeout_kills_a_hung_child() {
    run_with_timeout(Command::new("sleep").arg("10"), None, 1);
}

#[test]
#[should_panic(expected = "got no SUBACK (it exited)")]
fn support_sub_fails_fast_without_a_broker() {
    Sub::start(free_port(), &["-t", "t"]);
}
