//! What the listeners serve, through real clients: every listener announced, a graceful stop
//! on SIGTERM and SIGINT, MQTT over WebSocket (smq and MQTT.js), TLS and WebSocket over TLS,
//! and client certificates.

use std::process::ExitStatus;

use super::SECS;
use crate::support::certs::Certs;
use crate::support::clients::{mqttjs, smq_pub};
use crate::support::smq_broker::SmqBroker;
use crate::support::smq_sub::SmqSub;
use crate::support::{Sub, assert_ok, mosquitto_pub, run_with_timeout, send, text};

#[test]
fn prints_every_listener_and_exits_0_on_sigterm_and_sigint() {
    let mut broker = SmqBroker::start(&[]);
    let urls: Vec<&str> = broker.bound().iter().map(|b| b.url.as_str()).collect();
    assert_eq!(urls.len(), 2, "{}", broker.log());
    assert!(urls[0].starts_with("mqtt://127.0.0.1:"), "{urls:?}");
    assert!(urls[1].starts_with("ws://127.0.0.1:"), "{urls:?}");
    assert_ne!(broker.port(), 0);
    // A connected client doesn't hold up a graceful shutdown.
    let sub = Sub::start(broker.port(), &["-t", "x"]);
    let status = broker.stop();
    assert_eq!(status.code(), Some(0), "SIGTERM\n{}", broker.log());
    drop(sub);

    let mut broker = SmqBroker::start(&[]);
    let status: ExitStatus = broker.signal("INT");
    assert_eq!(status.code(), Some(0), "SIGINT\n{}", broker.log());
}

#[test]
fn websocket_with_smq_and_mqttjs() {
    let broker = SmqBroker::start(&[]);
    let (port, ws) = (broker.port(), broker.ws_port());
    let expected = "w/smq 1\nw/smq5 2\nw/js 3\nw/js5 4\n";
    let tcp = Sub::start(port, &["-t", "w/#", "-C", "4", "-v"]);
    let over_ws = SmqSub::start(ws, &["--ws", "-t", "w/#", "-C", "4", "-v", "-q", "1"]);
    let ws_s = ws.to_string();
    assert_ok(
        &smq_pub(ws, &["--ws", "-t", "w/smq", "-m", "1", "-q", "1"]),
        "smq pub --ws",
    );
    assert_ok(
        &smq_pub(
            ws,
            &[
                "--ws",
                "--ws-path",
                "/any/path",
                "-t",
                "w/smq5",
                "-m",
                "2",
                "-q",
                "2",
                "-V",
                "5",
            ],
        ),
        "smq pub --ws -V 5",
    );
    let js = mqttjs(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &ws_s,
        "-l",
        "ws",
        "-t",
        "w/js",
        "-m",
        "3",
        "-q",
        "1",
    ]);
    let js5 = mqttjs(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &ws_s,
        "-l",
        "ws",
        "--protocolVersion",
        "5",
        "-t",
        "w/js5",
        "-m",
        "4",
        "-q",
        "1",
    ]);
    let out = tcp.wait(SECS);
    assert_eq!(
        text(&out.stdout),
        expected,
        "MQTT.js said: {} / {}\n--- broker\n{}",
        text(&js.stderr),
        text(&js5.stderr),
        broker.log()
    );
    let out = over_ws.wait(SECS);
    assert_eq!(text(&out.stdout), expected, "{}", text(&out.stderr));
}

#[test]
fn tls_and_websocket_over_tls() {
    let certs = Certs::generate();
    let (cert, key, ca) = (certs.server_cert(), certs.server_key(), certs.ca());
    let ca = ca.to_str().unwrap();
    let broker = SmqBroker::start_with_listeners(
        &[
            "mqtt://127.0.0.1:0",
            "mqtts://127.0.0.1:0",
            "wss://127.0.0.1:0",
        ],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let (tls, wss) = (broker.tls_port(), broker.wss_port());
    let expected = "t/mosq 1\nt/smq 2\nt/smq-wss 3\nt/js-wss 4\n";
    let plain = Sub::start(broker.port(), &["-t", "t/#", "-C", "4", "-v"]);
    let over_tls = Sub::start(tls, &["-t", "t/#", "-C", "4", "-v", "--cafile", ca]);
    send(tls, &["-t", "t/mosq", "-m", "1", "-q", "1", "--cafile", ca]);
    assert_ok(
        &smq_pub(tls, &["-t", "t/smq", "-m", "2", "-q", "1", "--cafile", ca]),
        "smq pub mqtts",
    );
    assert_ok(
        &smq_pub(
            wss,
            &[
                "--ws",
                "-t",
                "t/smq-wss",
                "-m",
                "3",
                "-q",
                "1",
                "--cafile",
                ca,
            ],
        ),
        "smq pub wss",
    );
    let wss_s = wss.to_string();
    let js = mqttjs(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &wss_s,
        "-l",
        "wss",
        "--ca",
        ca,
        "-t",
        "t/js-wss",
        "-m",
        "4",
        "-q",
        "1",
    ]);
    let out = plain.wait(SECS);
    assert_eq!(
        text(&out.stdout),
        expected,
        "MQTT.js said: {}\n--- broker\n{}",
        text(&js.stderr),
        broker.log()
    );
    assert_eq!(text(&over_tls.wait(SECS).stdout), expected);
}

#[test]
fn require_certificate_refuses_tls_clients_without_one() {
    let certs = Certs::generate();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let (cert, key) = (certs.server_cert(), certs.server_key());
    let (ccert, ckey) = (certs.client_cert(), certs.client_key());
    let (ccert, ckey) = (ccert.to_str().unwrap(), ckey.to_str().unwrap());
    let broker = SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0", "mqtts://127.0.0.1:0"],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--cafile",
            ca,
            "--require-certificate",
        ],
    );
    let tls = broker.tls_port();
    let check = Sub::start(broker.port(), &["-t", "rc", "-C", "1"]);
    // Without a client certificate: refused, and nothing is published.
    let out = run_with_timeout(
        mosquitto_pub(tls).args(["-t", "rc", "-m", "no-cert", "-q", "1", "--cafile", ca]),
        None,
        SECS,
    );
    assert!(
        !out.status.success(),
        "mosquitto_pub without a client cert got through"
    );
    let out = smq_pub(
        tls,
        &["-t", "rc", "-m", "no-cert", "-q", "1", "--cafile", ca],
    );
    assert!(
        !out.status.success(),
        "smq pub without a client cert got through"
    );
    // With one signed by --cafile: accepted.
    send(
        tls,
        &[
            "-t",
            "rc",
            "-m",
            "with-cert",
            "-q",
            "1",
            "--cafile",
            ca,
            "--cert",
            ccert,
            "--key",
            ckey,
        ],
    );
    assert_eq!(text(&check.wait(SECS).stdout), "with-cert\n");
    let sub = Sub::start(
        tls,
        &[
            "-t", "rc2", "-C", "1", "--cafile", ca, "--cert", ccert, "--key", ckey,
        ],
    );
    assert_ok(
        &smq_pub(
            tls,
            &[
                "-t", "rc2", "-m", "smq", "--cafile", ca, "--cert", ccert, "--key", ckey,
            ],
        ),
        "smq pub with a client cert",
    );
    assert_eq!(text(&sub.wait(SECS).stdout), "smq\n");
}
