//! `smq certs`: the lab CA and certificates work with serve-broker and with Mosquitto
//! (OpenSSL), with client certificates required.

use crate::support::certs::Certs;
use crate::support::mosquitto::Mosquitto;
use crate::support::smq_broker::SmqBroker;
use crate::support::{Sub, mosquitto_pub, run_with_timeout, smq, text};

const SECS: u64 = 30;

#[test]
fn the_certificates_work_with_both_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        smq()
            .args(["certs", "--name", "broker.test", "--out-dir"])
            .arg(dir.path()),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("smq serve-broker --listen mqtts://") && printed.contains("broker.test")
    );
    let path = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let key_mode = std::fs::metadata(path("server.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o077,
        0
    );

    let ours = SmqBroker::start_with_listeners(
        &["mqtts://127.0.0.1:0"],
        &[
            "--cert",
            &path("server.pem"),
            "--key",
            &path("server.key"),
            "--cafile",
            &path("ca.pem"),
            "--require-certificate",
        ],
    );
    for host in ["localhost", "127.0.0.1"] {
        let out = run_with_timeout(
            smq()
                .args(["pub", "-h", host, "-p", &ours.tls_port().to_string()])
                .args([
                    "--cafile",
                    &path("ca.pem"),
                    "--cert",
                    &path("client.pem"),
                    "--key",
                    &path("client.key"),
                    "-t",
                    "certs/t",
                    "-m",
                    "x",
                    "-q",
                    "1",
                ]),
            None,
            SECS,
        );
        assert!(out.status.success(), "{host}: {}", text(&out.stderr));
    }

    let certs = Certs::from_dir(dir);
    let broker = Mosquitto::builder()
        .tls(&certs)
        .require_certificate(true)
        .start();
    let sub = Sub::start(broker.port(), &["-t", "certs/#", "-C", "1"]);
    let out = run_with_timeout(
        mosquitto_pub(broker.tls_port()).args([
            "--cafile",
            &certs.path("ca.pem").to_string_lossy(),
            "--cert",
            &certs.path("client.pem").to_string_lossy(),
            "--key",
            &certs.path("client.key").to_string_lossy(),
            "-t",
            "certs/m",
            "-m",
            "openssl",
        ]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&sub.wait(SECS).stdout), "openssl\n");

    // Files already there are kept unless --force.
    let again = run_with_timeout(
        smq().args(["certs", "--out-dir"]).arg(certs.dir()),
        None,
        SECS,
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("--force"));
    let forced = run_with_timeout(
        smq()
            .args(["certs", "--force", "--out-dir"])
            .arg(certs.dir()),
        None,
        SECS,
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
}
