//! Every TLS failure a user can hit, one test each: the error is one line that names the file
//! or the broker, the cause and the fix, and smq exits 1. Certificates are made at test time
//! (rcgen, and openssl for what rcgen cannot make); brokers are smq's own TLS listeners, or
//! Mosquitto where smq's broker refuses the certificate.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::certs::Certs;
use crate::support::mosquitto::Mosquitto;
use crate::support::smq_broker::SmqBroker;
use crate::support::{assert_fails, run_with_timeout, smq, text};

const SECS: u64 = 30;

/// smq's broker on mqtt, mqtts, ws and wss, serving `cert` and `key` from `certs`.
fn broker(certs: &Certs, cert: &str, key: &str, extra: &[&str]) -> SmqBroker {
    let (cert, key) = (certs.path(cert), certs.path(key));
    let mut args = vec![
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend(extra);
    SmqBroker::start_with_listeners(
        &[
            "mqtt://127.0.0.1:0",
            "mqtts://127.0.0.1:0",
            "ws://127.0.0.1:0",
            "wss://127.0.0.1:0",
        ],
        &args,
    )
}

/// `smq pub -h 127.0.0.1 -p PORT -t t -m x <args>`.
fn publish(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-t", "t", "-m", "x"])
            .args(args),
        None,
        SECS,
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[track_caller]
fn assert_explained(out: &Output, needles: &[&str]) {
    let err = assert_fails(out, 1, "smq: error: ");
    assert!(err.starts_with("smq: error: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Files, read before connecting

#[test]
fn missing_ca_file() {
    let certs = Certs::generate();
    let missing = certs.path("missing.pem");
    let out = publish(crate::support::free_port(), &["--cafile", p(&missing)]);
    assert_explained(
        &out,
        &[
            &format!("reading CA file {}", missing.display()),
            "check the path",
        ],
    );
}

#[test]
fn ca_file_that_is_a_directory() {
    let certs = Certs::generate();
    let out = publish(crate::support::free_port(), &["--cafile", p(certs.dir())]);
    assert_explained(
        &out,
        &[
            &format!("reading CA file {}", certs.dir().display()),
            "pass the PEM file, not its directory",
        ],
    );
}

#[test]
fn ca_file_in_der() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs = Certs::generate();
    let der = certs.path("ca.der");
    let ca = CertificateDer::from_pem_file(certs.ca()).unwrap();
    std::fs::write(&der, ca.as_ref()).unwrap();
    let out = publish(crate::support::free_port(), &["--cafile", p(&der)]);
    assert_explained(
        &out,
        &[&format!(
            "reading CA file {}: it is DER, not PEM: convert it with `openssl x509 -inform der -in {} -out {}`",
            der.display(),
            der.display(),
            certs.path("ca-converted.pem").display()
        )],
    );
}

#[test]
fn ca_file_without_a_certificate() {
    let certs = Certs::generate();
    let out = publish(
        crate::support::free_port(),
        &["--cafile", p(&certs.path("ca.key"))],
    );
    assert_explained(
        &out,
        &["ca.key: no PEM certificate, only a private key: pass the certificate file"],
    );
    let text_file = certs.path("notes.txt");
    std::fs::write(&text_file, "not a certificate\n").unwrap();
    let out = publish(crate::support::free_port(), &["--cafile", p(&text_file)]);
    assert_explained(
        &out,
        &["notes.txt: no PEM certificate: the file needs a -----BEGIN CERTIFICATE----- block"],
    );
}

/// `publish` with more environment (smq() clears SMQ_*).
fn publish_env(port: u16, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = smq();
    cmd.args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "t", "-m", "x"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, None, SECS)
}

#[test]
fn encrypted_client_key_opens_with_its_passphrase() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let ca = certs.ca();
    let b = broker(
        &certs,
        "server.pem",
        "server.key",
        &["--cafile", p(&ca), "--require-certificate"],
    );
    let key = certs.path("client-encrypted.key");
    let cert = certs.client_cert();
    let args = ["--cafile", p(&ca), "--cert", p(&cert), "--key", p(&key)];
    let out = publish_env(b.tls_port(), &args, &[("SMQ_KEY_PASSWORD", "secret")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pw = certs.path("key-pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let out = publish(
        b.tls_port(),
        &[&args[..], &["--key-pw-file", p(&pw)]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = publish_env(b.tls_port(), &args, &[("SMQ_KEY_PASSWORD", "wrong")]);
    assert_explained(
        &out,
        &[&format!(
            "reading client key {}: the passphrase does not decrypt the key: check SMQ_KEY_PASSWORD",
            key.display()
        )],
    );
    // No passphrase given and no terminal to ask on (setsid: no controlling terminal).
    let out = run_with_timeout(
        Command::new("setsid")
            .arg("-w")
            .arg(env!("CARGO_BIN_EXE_smq"))
            .args(["pub", "-h", "127.0.0.1", "-p", &b.tls_port().to_string()])
            .args(["-t", "t", "-m", "x"])
            .args(args)
            .env_remove("SMQ_KEY_PASSWORD")
            .stdin(std::process::Stdio::null()),
        None,
        SECS,
    );
    assert_explained(
        &out,
        &[
            &format!(
                "reading client key {}: the key is encrypted and there is no terminal to ask for its passphrase",
                key.display()
            ),
            "set SMQ_KEY_PASSWORD, or pass --key-pw-file FILE",
        ],
    );
}

/// OpenSSL's old encryption (`Proc-Type: 4,ENCRYPTED`): the message gives the conversion to
/// PKCS#8, and the converted key works.
#[test]
fn legacy_encrypted_key_names_its_conversion() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let ca = certs.ca();
    let b = broker(
        &certs,
        "server.pem",
        "server.key",
        &["--cafile", p(&ca), "--require-certificate"],
    );
    let key = certs.path("client-legacy.key");
    let cert = certs.client_cert();
    let out = publish_env(
        b.tls_port(),
        &["--cafile", p(&ca), "--cert", p(&cert), "--key", p(&key)],
        &[("SMQ_KEY_PASSWORD", "secret")],
    );
    let converted = certs.path("client-legacy-pkcs8.pem");
    let command = format!(
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -in {} -out {}",
        key.display(),
        converted.display()
    );
    assert_explained(
        &out,
        &[
            &format!(
                "reading client key {}: the key is encrypted in OpenSSL's old format (Proc-Type: 4,ENCRYPTED)",
                key.display()
            ),
            &command,
        ],
    );
    let ok = Command::new("sh")
        .args([
            "-c",
            &format!("{command} -passin pass:secret -passout pass:secret"),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = publish_env(
        b.tls_port(),
        &[
            "--cafile",
            p(&ca),
            "--cert",
            p(&cert),
            "--key",
            p(&converted),
        ],
        &[("SMQ_KEY_PASSWORD", "secret")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// What a new user gets from mosquitto-tls(7): version 1 broker and client certificates
/// (`openssl x509 -req` without `-extfile`) and encrypted keys (`genrsa -des3`).
#[test]
fn certificates_made_with_the_mosquitto_tls_recipe() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let dir = certs.mosquitto_recipe();
    let f = |name: &str| dir.join(name);
    let ca = f("ca.pem");
    // Mosquitto serving the version 1 broker certificate: smq says which and why.
    let m = Mosquitto::builder()
        .tls_files(ca.clone(), f("server.crt"), f("server.key"))
        .start();
    let out = publish(m.tls_port(), &["--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=localhost, issued by CN=recipe CA) is X.509 version 1, and rustls accepts only version 3: re-issue it as v3",
        ],
    );
    // smq's broker will not serve it, and says how to re-issue it.
    let out = run_with_timeout(
        smq()
            .args(["serve-broker", "--listen", "mqtts://127.0.0.1:0"])
            .args(["--cert", p(&f("server.crt")), "--key", p(&f("server.key"))]),
        None,
        SECS,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "smq: error: the broker's certificate {} (CN=localhost) is X.509 version 1, and rustls accepts only version 3: re-issue it as v3 with the same key and name (ca.pem and ca.key: the CA that signed it, CN=recipe CA): openssl x509 -x509toreq",
            f("server.crt").display()
        )),
        "{err}"
    );
    // That command works as given (the recipe's CA key wants its passphrase).
    let command = &err[err.find("openssl x509 -x509toreq").unwrap()..].trim_end();
    let command = command.replace("-CAcreateserial", "-CAcreateserial -passin pass:secret");
    let made = Command::new("bash")
        .args(["-c", &command])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{command}: {}", text(&made.stderr));
    let v3 = f("server-v3.pem");
    // Mosquitto (OpenSSL) takes the recipe's version 1 client certificate and its encrypted key.
    let m = Mosquitto::builder()
        .tls_files(ca.clone(), v3.clone(), f("server.key"))
        .require_certificate(true)
        .start();
    let (client_cert, client_key) = (f("client.crt"), f("client.key"));
    let client = [
        "--cafile",
        p(&ca),
        "--servername",
        "localhost",
        "--cert",
        p(&client_cert),
        "--key",
        p(&client_key),
    ];
    let out = publish_env(m.tls_port(), &client, &[("SMQ_KEY_PASSWORD", "secret")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // smq's broker (rustls) refuses that client certificate; the client says why.
    let b = SmqBroker::start_with_listeners(
        &["mqtts://127.0.0.1:0"],
        &[
            "--cert",
            p(&v3),
            "--key",
            p(&f("server.key")),
            "--cafile",
            p(&ca),
            "--require-certificate",
        ],
    );
    let out = publish_env(b.tls_port(), &client, &[("SMQ_KEY_PASSWORD", "secret")]);
    assert_explained(
        &out,
        &[&format!(
            "the broker refused the client certificate (CertificateUnknown alert): the client certificate {} (CN=recipe client) is X.509 version 1, and rustls accepts only version 3",
            f("client.crt").display()
        )],
    );
}

#[test]
fn client_key_file_holding_a_certificate() {
    let certs = Certs::generate();
    let out = publish(
        crate::support::free_port(),
        &[
            "--cafile",
            p(&certs.ca()),
            "--cert",
            p(&certs.client_cert()),
            "--key",
            p(&certs.client_cert()),
        ],
    );
    assert_explained(
        &out,
        &["client.pem: no PEM private key, only a certificate: pass the key file"],
    );
}

#[test]
fn client_certificate_and_key_that_do_not_match() {
    let certs = Certs::generate();
    let (cert, key) = (certs.client_cert(), certs.server_key());
    let out = publish(
        crate::support::free_port(),
        &[
            "--cafile",
            p(&certs.ca()),
            "--cert",
            p(&cert),
            "--key",
            p(&key),
        ],
    );
    assert_explained(
        &out,
        &[
            &format!(
                "client certificate {} and client key {} do not belong together",
                cert.display(),
                key.display()
            ),
            &format!(
                "compare `openssl x509 -noout -pubkey -in {}`",
                cert.display()
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The broker's certificate

#[test]
fn broker_certificate_not_signed_by_the_ca_file() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let other = certs.other_ca();
    let expected = format!(
        "the broker's certificate (CN=smq test server) is not signed by a trusted CA: it was issued by CN=smq test CA, which CA file {} (--cafile) does not hold; it holds CN=smq unrelated CA; pass the certificate of CN=smq test CA with --cafile",
        other.display()
    );
    let out = publish(b.tls_port(), &["--cafile", p(&other)]);
    let broker = format!(
        "TLS handshake with mqtts://127.0.0.1:{} failed",
        b.tls_port()
    );
    assert_explained(&out, &[&broker, &expected]);
    // The same under a WebSocket.
    let out = publish(b.wss_port(), &["--ws", "--cafile", p(&other)]);
    let broker = format!("TLS handshake with wss://127.0.0.1:{} failed", b.wss_port());
    assert_explained(&out, &[&broker, &expected]);
}

#[test]
fn a_ca_of_the_same_name_that_did_not_sign_the_brokers_certificate() {
    // Two labs made by `smq certs`: their CAs share a name, not a key.
    let dir = tempfile::tempdir().unwrap();
    for lab in ["a", "b"] {
        let out = run_with_timeout(
            smq().args(["certs", "--out-dir"]).arg(dir.path().join(lab)),
            None,
            SECS,
        );
        assert!(out.status.success(), "smq certs: {}", text(&out.stderr));
    }
    let (cert, key) = (
        dir.path().join("a/server.pem"),
        dir.path().join("a/server.key"),
    );
    let b = SmqBroker::start_with_listeners(
        &["mqtts://127.0.0.1:0"],
        &["--cert", p(&cert), "--key", p(&key)],
    );
    let other = dir.path().join("b/ca.pem");
    let out = publish(b.tls_port(), &["--cafile", p(&other)]);
    assert_explained(
        &out,
        &[
            "as its issuer, but that CA did not sign it: another CA has the same name",
            &format!("CA file {} (--cafile)", other.display()),
        ],
    );
}

#[test]
fn ca_file_holding_the_brokers_own_certificate() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let server = certs.server_cert();
    let out = publish(b.tls_port(), &["--cafile", p(&server)]);
    assert_explained(
        &out,
        &[&format!(
            "{} holds the broker's own certificate, not the CA that issued it; pass the certificate of CN=smq test CA with --cafile",
            server.display()
        )],
    );
}

/// rustls: `CaUsedAsEndEntity`.
#[test]
fn broker_certificate_that_is_a_ca() {
    let certs = Certs::generate();
    let b = broker(&certs, "self-ca.pem", "self-ca.key", &[]);
    let ca = certs.path("self-ca.pem");
    let out = publish(b.tls_port(), &["--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=localhost) is a CA certificate (basicConstraints CA:TRUE), and rustls refuses a CA as the server's own certificate",
            "openssl req -new -nodes -newkey ec",
            &format!(
                "openssl x509 -req -in server.csr -CA {} -CAkey {} ",
                ca.display(),
                certs.path("self-ca.key").display()
            ),
            "subjectAltName=IP:127.0.0.1",
        ],
    );
}

#[test]
fn broker_certificate_for_another_name() {
    let certs = Certs::generate();
    let b = broker(&certs, "wrong-name.pem", "wrong-name.key", &[]);
    let out = publish(b.tls_port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            "the broker's certificate is for example.invalid but not for '127.0.0.1': connect with -h example.invalid (a name on the certificate), or keep -h and set --servername example.invalid",
            "--insecure skips this check, as a last resort",
        ],
    );
}

#[test]
fn broker_certificate_that_names_no_host() {
    let certs = Certs::generate();
    let b = broker(&certs, "no-name.pem", "no-name.key", &[]);
    let out = publish(b.tls_port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=smq test no-name) names no host (rustls reads only subjectAltName, never the CN)",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
}

#[test]
fn expired_broker_certificate() {
    let certs = Certs::generate();
    let b = broker(&certs, "expired.pem", "expired.key", &[]);
    let out = publish(b.tls_port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=smq test expired) expired on 2021-01-01 00:00 UTC (it is now ",
            "renew it on the broker, or check this computer's clock",
        ],
    );
}

#[test]
fn broker_certificate_not_valid_yet() {
    let certs = Certs::generate();
    let b = broker(&certs, "not-yet.pem", "not-yet.key", &[]);
    let out = publish(b.tls_port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=smq test not-yet) is not valid until 2100-01-01 00:00 UTC (it is now ",
            "check this computer's clock",
        ],
    );
}

/// rustls: `UnsupportedCertVersion`. smq's broker refuses to serve a version 1 certificate,
/// so Mosquitto serves it.
#[test]
fn broker_certificate_of_x509_version_1() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let b = Mosquitto::builder()
        .tls(&certs)
        .server_cert(certs.path("v1-server.pem"), certs.server_key())
        .start();
    let ca = certs.ca();
    let out = publish(b.tls_port(), &["--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=localhost, issued by CN=smq test CA) is X.509 version 1, and rustls accepts only version 3: re-issue it as v3",
            &format!(
                "openssl x509 -req -in server.csr -CA {} -CAkey {} -CAcreateserial -days 365 -out server.pem -extfile <(printf 'basicConstraints=CA:FALSE\\nsubjectAltName=IP:127.0.0.1')",
                ca.display(),
                certs.path("ca.key").display()
            ),
        ],
    );
}

/// A self-signed version 1 certificate is its own (version 1) CA: the fix is a v3 CA.
#[test]
fn broker_certificate_self_signed_x509_version_1() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let v1 = certs.path("v1-self.pem");
    let b = Mosquitto::builder()
        .tls(&certs)
        .server_cert(v1.clone(), certs.server_key())
        .start();
    let out = publish(b.tls_port(), &["--cafile", p(&v1)]);
    assert_explained(
        &out,
        &[
            "the broker's certificate (CN=localhost) is a self-signed X.509 version 1 certificate, and rustls accepts only version 3: make a v3 CA (openssl req -x509 -new",
            "sign the broker's certificate with it",
            "and pass --cafile ca.pem",
        ],
    );
}

/// A version 1 intermediate CA between the trusted CA and the broker's certificate.
#[test]
fn broker_sending_an_x509_version_1_intermediate() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let b = Mosquitto::builder()
        .tls(&certs)
        .server_cert(certs.path("v1-chain.pem"), certs.server_key())
        .start();
    let ca = certs.ca();
    let out = publish(b.tls_port(), &["--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[
            "the intermediate CA certificate CN=smq v1 intermediate (issued by CN=smq test CA) that the broker sends is X.509 version 1, and rustls accepts only version 3",
            &format!(
                "openssl x509 -x509toreq -in intermediate.pem -key intermediate.key -out intermediate.csr && openssl x509 -req -in intermediate.csr -CA {} -CAkey {} ",
                ca.display(),
                certs.path("ca.key").display()
            ),
            "basicConstraints=critical,CA:TRUE",
        ],
    );
}

/// A version 1 root that the broker sends along: trusted only from --cafile.
#[test]
fn broker_sending_its_x509_version_1_root() {
    let certs = Certs::generate();
    if !certs.openssl() {
        return;
    }
    let b = Mosquitto::builder()
        .tls(&certs)
        .server_cert(certs.path("v1-root-chain.pem"), certs.server_key())
        .start();
    let ca = certs.ca();
    let out = publish(b.tls_port(), &["--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[
            &format!(
                "the broker's certificate (CN=localhost) is not signed by a trusted CA: it chains to CN=smq v1 CA, an X.509 version 1 CA that rustls accepts only as a trusted CA, never from the broker, and CA file {} (--cafile) does not hold it; pass the certificate of CN=smq v1 CA with --cafile",
                ca.display()
            ),
            "openssl x509 -in CA.pem -signkey CA.key",
        ],
    );
    // And trusted, it works.
    let out = publish(b.tls_port(), &["--cafile", p(&certs.path("v1-ca.pem"))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// Client certificates

#[test]
fn broker_that_wants_a_client_certificate() {
    let certs = Certs::generate();
    let ca = certs.ca();
    let b = broker(
        &certs,
        "server.pem",
        "server.key",
        &["--cafile", p(&ca), "--require-certificate"],
    );
    let out = publish(b.tls_port(), &["--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[&format!(
            "TLS with mqtts://127.0.0.1:{} failed: the broker wants a client certificate (CertificateRequired alert): pass --cert FILE and --key FILE",
            b.tls_port()
        )],
    );
    let out = publish(b.wss_port(), &["--ws", "--cafile", p(&ca)]);
    assert_explained(
        &out,
        &[&format!(
            "TLS with wss://127.0.0.1:{} failed: the broker wants a client certificate",
            b.wss_port()
        )],
    );
}

#[test]
fn broker_that_refuses_the_client_certificate() {
    let certs = Certs::generate();
    let ca = certs.ca();
    let b = broker(
        &certs,
        "server.pem",
        "server.key",
        &["--cafile", p(&ca), "--require-certificate"],
    );
    let (cert, key) = (
        certs.path("other-client.pem"),
        certs.path("other-client.key"),
    );
    let out = publish(
        b.tls_port(),
        &["--cafile", p(&ca), "--cert", p(&cert), "--key", p(&key)],
    );
    assert_explained(
        &out,
        &[&format!(
            "the broker refused the client certificate {} (UnknownCA alert): it must be a valid client certificate signed by a CA the broker trusts",
            cert.display()
        )],
    );
}

// ---------------------------------------------------------------------------------------------
// TLS and plain ports mixed up

/// The old `tls handshake eof`: a plain MQTT port closes on a TLS ClientHello.
#[test]
fn tls_client_on_a_plain_mqtt_port() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let out = publish(b.port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            &format!(
                "mqtts://127.0.0.1:{0} closed the connection during the TLS handshake (tls handshake eof): either port {0} does not speak TLS",
                b.port()
            ),
            "for plain MQTT drop --cafile, --capath and --tls-use-os-certs, or use mqtt://",
            "or the broker wants a client certificate (pass --cert and --key)",
        ],
    );
    // Mosquitto resets the connection instead: the same words.
    let m = Mosquitto::start();
    let out = publish(m.port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            &format!(
                "mqtts://127.0.0.1:{0} closed the connection during the TLS handshake",
                m.port()
            ),
            "does not speak TLS",
        ],
    );
}

/// rustls: `InvalidContentType` ("received corrupt message"): the port answered, not in TLS.
#[test]
fn tls_client_on_a_plain_websocket_port() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let out = publish(b.ws_port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[&format!(
            "TLS handshake with mqtts://127.0.0.1:{0} failed: the broker did not answer in TLS: port {0} speaks plain MQTT or WebSocket",
            b.ws_port()
        )],
    );
    let out = publish(b.ws_port(), &["--ws", "--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[
            &format!(
                "TLS handshake with wss://127.0.0.1:{} failed: the broker did not answer in TLS",
                b.ws_port()
            ),
            "for plain WebSocket drop --cafile, --capath and --tls-use-os-certs, or use ws://",
        ],
    );
}

#[test]
fn plain_client_on_a_tls_port() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    // -p 8883 would turn TLS on by itself; --no-tls keeps it off, as a forgotten --cafile would.
    let out = publish(b.tls_port(), &["--no-tls"]);
    assert_explained(
        &out,
        &[&format!(
            "mqtt://127.0.0.1:{0} answered in TLS: port {0} wants TLS; add --cafile FILE (the CA that signed the broker's certificate) or --tls-use-os-certs, or use mqtts://",
            b.tls_port()
        )],
    );
    // Mosquitto resets the connection instead.
    let m = Mosquitto::builder().tls(&certs).start();
    let out = publish(m.tls_port(), &["--no-tls"]);
    assert_explained(
        &out,
        &[
            &format!(
                "mqtt://127.0.0.1:{0} reset the connection before CONNACK",
                m.tls_port()
            ),
            "wants TLS, add --cafile FILE",
            "or use mqtts://",
        ],
    );
}

#[test]
fn websocket_client_on_a_wss_port() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let out = publish(b.wss_port(), &["--ws"]);
    assert_explained(
        &out,
        &[
            &format!(
                "ws://127.0.0.1:{0} did not answer the WebSocket upgrade in HTTP: if port {0} wants TLS, add --cafile FILE",
                b.wss_port()
            ),
            "or use wss://",
        ],
    );
}

#[test]
fn wss_client_on_an_mqtts_port() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let out = publish(b.tls_port(), &["--ws", "--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[&format!(
            "wss://127.0.0.1:{0} closed the connection during the WebSocket upgrade: port {0} may speak MQTT over TLS, not WebSocket: drop --ws, or use mqtts://",
            b.tls_port()
        )],
    );
}

#[test]
fn mqtts_client_on_a_wss_port() {
    let certs = Certs::generate();
    let b = broker(&certs, "server.pem", "server.key", &[]);
    let out = publish(b.wss_port(), &["--cafile", p(&certs.ca())]);
    assert_explained(
        &out,
        &[&format!(
            "mqtts://127.0.0.1:{0} answered in HTTP: port {0} speaks MQTT over WebSocket; add --ws, or use wss://",
            b.wss_port()
        )],
    );
}
