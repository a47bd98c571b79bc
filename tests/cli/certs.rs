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

/// The server certificate is for every LAN address serve-broker tells a phone to use (one
/// listener on all interfaces, IPv6 too), not only the default route's.
#[test]
fn the_server_certificate_names_every_lan_address_the_broker_prints() {
    let banner = run_with_timeout(
        smq().args([
            "sub",
            "--serve",
            "--listen",
            "mqtt://[::]:0",
            "--allow-anonymous",
            "-t",
            "x",
            "-W",
            "1",
        ]),
        None,
        SECS,
    );
    let err = text(&banner.stderr);
    let hosts: Vec<std::net::IpAddr> = err
        .lines()
        .filter_map(|l| {
            l.split_once("MQTT: host ")?
                .1
                .split_once(',')?
                .0
                .parse()
                .ok()
        })
        .collect();
    assert!(!hosts.is_empty(), "no LAN address in the banner: {err}");

    let dir = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        smq().args(["certs", "--out-dir"]).arg(dir.path()),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sans = run_with_timeout(
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(dir.path().join("server.pem")),
        None,
        SECS,
    );
    assert!(sans.status.success(), "{}", text(&sans.stderr));
    // openssl writes `IP Address:192.0.2.2, IP Address:FD00:0:0:0:0:0:0:2`.
    let ips: Vec<std::net::IpAddr> = text(&sans.stdout)
        .split(',')
        .filter_map(|san| san.trim().strip_prefix("IP Address:")?.parse().ok())
        .collect();
    for host in &hosts {
        assert!(
            ips.contains(host),
            "{host} (from {err:?}) is not among {ips:?}"
        );
    }
}
