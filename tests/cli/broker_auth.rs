//! `serve-broker --password-file/--acl-file/--allow-anonymous/--use-identity-as-username` and
//! `smq passwd`, against real clients, real mosquitto_passwd files and a real Mosquitto.
//!
//! Failed logins slow down later logins from the same source address, so every login attempt
//! that is meant to fail comes from its own address in 127.0.0.0/8 (`-A`): which also shows
//! that one address's failures do not slow the others.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use tempfile::TempDir;

use crate::support::certs::Certs;
use crate::support::mosquitto::Mosquitto;
use crate::support::raw::{
    CONNACK, Client, Connect, PINGRESP, PUBACK, Packet, REPLY, Read, V4, V5, Will, packet,
    parse_publish, publish_raw,
};
use crate::support::smq_broker::SmqBroker;
use crate::support::{Sub, assert_fails, mosquitto_pub, run_with_timeout, smq, text};

const SECS: u64 = 30;

/// A fresh loopback source address for each login that may fail.
fn source() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("127.0.{}.{}", 1 + (n / 250) % 250, 2 + n % 250)
}

pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("smq-auth-")
        .tempdir()
        .expect("creating a temp dir")
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// `mosquitto_passwd -b [-c] FILE USER PASS`: a file written by Mosquitto's own tool.
pub fn mosquitto_passwd(file: &Path, create: bool, user: &str, pass: &str) {
    let mut cmd = Command::new("mosquitto_passwd");
    cmd.arg("-b");
    if create {
        cmd.arg("-c");
    }
    let out = run_with_timeout(
        cmd.arg(file).args([user, pass]).stdin(Stdio::null()),
        None,
        SECS,
    );
    assert!(out.status.success(), "mosquitto_passwd: {out:?}");
}

fn smq_passwd(args: &[&str]) -> Output {
    run_with_timeout(smq().arg("passwd").args(args), None, SECS)
}

/// `smq pub` from a fresh source address; returns its exit code, which is the CONNACK code
/// when the broker refuses.
fn login(port: u16, transport: &[&str], version: &str, user: Option<(&str, &str)>) -> i32 {
    let mut cmd = smq();
    cmd.args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-A",
            &source(),
            "-V",
            version,
            "-t",
            "auth/probe",
            "-m",
            "x",
        ])
        .args(transport);
    if let Some((u, p)) = user {
        cmd.args(["-u", u, "-P", p]);
    }
    let out = run_with_timeout(&mut cmd, None, SECS);
    out.status.code().unwrap_or(-1)
}

/// The CONNACK code (3.1.1 return code, v5 reason code) for a raw CONNECT.
fn connack(port: u16, connect: &Connect) -> u8 {
    let mut c = Client::open(port);
    c.version = connect.version;
    c.send(&connect.bytes());
    let ack = c.expect("CONNACK");
    assert_eq!(ack.first, CONNACK, "expected CONNACK: {:02x?}", ack.bytes());
    ack.body[1]
}

#[test]
fn logins_over_tcp_tls_and_websocket_in_both_versions() {
    let certs = Certs::generate();
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    mosquitto_passwd(&passwd, true, "alice", "s3cret pass");
    mosquitto_passwd(&passwd, false, "bob", "other");
    let (cert, key, ca) = (certs.server_cert(), certs.server_key(), certs.ca());
    let ca = ca.to_str().unwrap();
    let broker = SmqBroker::start_with_listeners(
        &[
            "mqtt://127.0.0.1:0",
            "mqtts://127.0.0.1:0",
            "ws://127.0.0.1:0",
        ],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--password-file",
            passwd.to_str().unwrap(),
        ],
    );
    assert!(
        broker
            .log()
            .contains("anonymous clients refused: a password file is set"),
        "{}",
        broker.log()
    );
    let transports: [(&str, u16, &[&str]); 3] = [
        ("tcp", broker.port(), &[]),
        ("tls", broker.tls_port(), &["--cafile", ca]),
        ("websocket", broker.ws_port(), &["--ws"]),
    ];
    for (name, port, transport) in transports {
        // (version, bad user name or password, not authorized)
        for (version, bad, denied) in [("mqttv311", 4, 5), ("mqttv5", 0x86, 0x87)] {
            let what = format!("{name} {version}");
            let code = |user| login(port, transport, version, user);
            assert_eq!(
                code(Some(("alice", "s3cret pass"))),
                0,
                "{what}: right password"
            );
            assert_eq!(code(Some(("bob", "other"))), 0, "{what}: second user");
            assert_eq!(
                code(Some(("alice", "s3cret"))),
                bad,
                "{what}: wrong password"
            );
            assert_eq!(code(Some(("alice", ""))), bad, "{what}: empty password");
            assert_eq!(code(Some(("carol", "x"))), bad, "{what}: unknown user");
            assert_eq!(code(None), denied, "{what}: anonymous");
        }
    }
}

#[test]
fn anonymous_clients_follow_the_listeners_and_the_flags() {
    // Reachable from the network, no password file, no --allow-anonymous: nobody gets in,
    // and the broker says why at start.
    let exposed = SmqBroker::start_with_listeners(&["mqtt://0.0.0.0:0"], &[]);
    let log = exposed.log();
    assert!(
        log.contains("anonymous clients refused: mqtt://0.0.0.0:")
            && log.contains("add --password-file, or --allow-anonymous"),
        "{log}"
    );
    let port = exposed.port();
    assert_eq!(login(port, &[], "mqttv311", None), 5);
    assert_eq!(login(port, &[], "mqttv5", None), 0x87);
    assert_eq!(
        login(port, &[], "mqttv5", Some(("anyone", "x"))),
        0x87,
        "a user name without a password file proves nothing"
    );
    drop(exposed);

    // Loopback only: anonymous clients are welcome by default.
    let local = SmqBroker::start(&[]);
    assert!(
        local
            .log()
            .contains("anonymous clients allowed: every listener is on this machine only"),
        "{}",
        local.log()
    );
    assert_eq!(login(local.port(), &[], "mqttv5", None), 0);
    drop(local);

    // A password file plus --allow-anonymous: anonymous clients in, passwords still checked.
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    mosquitto_passwd(&passwd, true, "alice", "pw");
    let both = SmqBroker::start(&[
        "--password-file",
        passwd.to_str().unwrap(),
        "--allow-anonymous",
    ]);
    assert_eq!(login(both.port(), &[], "mqttv311", None), 0);
    assert_eq!(
        login(both.port(), &[], "mqttv311", Some(("alice", "no"))),
        4
    );
    assert_eq!(
        login(both.port(), &[], "mqttv311", Some(("alice", "pw"))),
        0
    );
    // `--allow-anonymous false` says no even on loopback.
    let closed = SmqBroker::start(&["--allow-anonymous", "false"]);
    assert_eq!(connack(closed.port(), &Connect::new(V4, "anon")), 5);
}

/// The CONNACK code for a raw CONNECT that may wait its turn (up to 5 s) at the login brake.
fn braked_connack(port: u16, connect: &Connect) -> u8 {
    let mut c = Client::open(port);
    c.version = connect.version;
    c.send(&connect.bytes());
    match c.read(std::time::Duration::from_secs(SECS)) {
        Read::Packet(ack) if ack.first == CONNACK => ack.body[1],
        other => panic!("expected CONNACK: {other:?}"),
    }
}

#[test]
fn a_client_that_logged_in_before_gets_in_while_its_address_guesses() {
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    mosquitto_passwd(&passwd, true, "alice", "right");
    let broker = SmqBroker::start(&["--password-file", passwd.to_str().unwrap()]);
    let port = broker.port();
    // Alice's phone logged in from 127.0.0.1 before the guessing began.
    let phone = Connect::new(V4, "alice-phone").login("alice", "right");
    let (mut c, _) = Client::connect(port, &phone);
    c.send(&crate::support::raw::disconnect(V4, 0));
    c.expect_close(std::time::Duration::from_secs(SECS), "DISCONNECT");

    // Guesses from the same address, for alice and for a user who does not exist, from eight
    // connections at once, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (codes, got) = std::sync::mpsc::channel();
    let guessers: Vec<_> = (0..8)
        .map(|i| {
            let (codes, stop) = (codes.clone(), stop.clone());
            std::thread::spawn(move || {
                let user = if i % 4 == 0 { "nobody" } else { "alice" };
                let id = format!("guess-{i}");
                while !stop.load(Ordering::Relaxed) {
                    let code = braked_connack(port, &Connect::new(V4, &id).login(user, "wrong"));
                    if codes.send(code).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(codes);
    // Until one is refused unchecked: the address's turns are taken for more than 5 s.
    let mut seen = Vec::new();
    while !seen.contains(&5) {
        let code = got
            .recv_timeout(std::time::Duration::from_secs(SECS))
            .unwrap_or_else(|e| panic!("no guess was refused unchecked ({e}); seen {seen:?}"));
        seen.push(code);
    }
    // The phone's turns are its own: it gets in now, while the guessing goes on (before, it
    // was refused unchecked as the guesses were).
    let phone_code = braked_connack(port, &phone);
    stop.store(true, Ordering::Relaxed);
    for guesser in guessers {
        guesser.join().expect("a guesser");
    }
    assert_eq!(phone_code, 0, "alice's phone");
    seen.extend(got.iter());
    assert!(
        seen.iter().all(|&code| code == 4 || code == 5),
        "every guess refused: {seen:?}"
    );
}

#[test]
fn a_burst_of_guesses_before_the_first_failure_is_braked_too() {
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    mosquitto_passwd(&passwd, true, "alice", "right");
    let broker = SmqBroker::start(&["--password-file", passwd.to_str().unwrap()]);
    // Every connection open first, then every guess sent at once: none has failed yet when
    // the broker reads them.
    let mut clients: Vec<Client> = (0..60).map(|_| Client::open(broker.port())).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(
            &Connect::new(V4, &format!("burst-{i}"))
                .login("alice", "wrong")
                .bytes(),
        );
    }
    let codes: Vec<u8> = clients
        .iter_mut()
        .map(|c| match c.read(std::time::Duration::from_secs(SECS)) {
            Read::Packet(ack) if ack.first == CONNACK => ack.body[1],
            other => panic!("expected CONNACK: {other:?}"),
        })
        .collect();
    let checked = codes.iter().filter(|&&c| c == 4).count();
    assert!(codes.iter().all(|&c| c == 4 || c == 5), "{codes:?}");
    // A few at a time until the first failures, then the brake's turns for 5 s (before, all
    // 60 were checked at once).
    assert!(checked <= 12, "{checked} of 60 guesses checked: {codes:?}");
}

#[test]
fn smq_passwd_writes_files_mosquitto_accepts() {
    let dir = temp_dir();
    let file = dir.path().join("passwd");
    let f = file.to_str().unwrap();
    for args in [
        &["-c", "-b", f, "alice", "s3cret"][..],
        &["-b", f, "bob", "first"],
        &["-b", f, "carol", "gone"],
        &["-D", f, "carol"],
        &["-b", f, "bob", "second"],
    ] {
        let out = smq_passwd(args);
        assert!(out.status.success(), "smq passwd {args:?}: {out:?}");
    }
    let written = fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 2, "{written}");
    assert!(lines[0].starts_with("alice:$7$101$"), "{written}");
    assert!(lines[1].starts_with("bob:$7$101$"), "{written}");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a password file is for its owner only");

    let mosquitto = Mosquitto::builder()
        .config(&format!("password_file {f}"))
        .start();
    let attempt = |user: &str, pass: &str| {
        run_with_timeout(
            mosquitto_pub(mosquitto.port()).args(["-t", "t", "-m", "x", "-u", user, "-P", pass]),
            None,
            SECS,
        )
        .status
        .success()
    };
    assert!(attempt("alice", "s3cret"), "{}", mosquitto.log());
    assert!(attempt("bob", "second"), "{}", mosquitto.log());
    assert!(!attempt("alice", "wrong"));
    assert!(!attempt("bob", "first"), "the old password was replaced");
    assert!(!attempt("carol", "gone"), "carol was deleted");

    // And smq reads it back.
    let broker = SmqBroker::start(&["--password-file", f]);
    assert_eq!(
        login(broker.port(), &[], "mqttv5", Some(("alice", "s3cret"))),
        0
    );
    assert_eq!(
        login(broker.port(), &[], "mqttv5", Some(("bob", "first"))),
        0x86
    );
}

#[test]
fn smq_passwd_refuses_bad_requests() {
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let out = smq_passwd(&["-b", missing.to_str().unwrap(), "alice", "pw"]);
    assert_fails(&out, 2, "add -c to create it");
    assert!(!missing.exists());

    let file = write(dir.path(), "passwd", "");
    let f = file.to_str().unwrap();
    let out = smq_passwd(&["-b", f, "a:b", "pw"]);
    assert_fails(&out, 2, "':'");
    for (user, why) in [
        (
            "#x\nmallory",
            "user name \"#x\\nmallory\": it must not contain control characters",
        ),
        ("#x", "must not start with '#'"),
        (" x", "white space"),
    ] {
        let out = smq_passwd(&["-b", f, user, "pw"]);
        assert_fails(&out, 2, why);
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "", "nothing written");
    let out = smq_passwd(&["-D", f, "nobody"]);
    assert_fails(&out, 1, "user 'nobody' is not in");

    let plain = write(dir.path(), "plain", "alice:clear-text\n");
    let out = smq_passwd(&["-b", plain.to_str().unwrap(), "bob", "pw"]);
    assert_fails(&out, 2, ":1: user 'alice': the password is not hashed");
    assert_eq!(fs::read_to_string(&plain).unwrap(), "alice:clear-text\n");
}

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic write public/#

user bob
topic read alice/+/status
topic deny alice/secret/status

pattern readwrite clients/%c/#
pattern read inbox/%u
";

/// A broker with users alice (pa) and bob (pb), the ACL above, anonymous clients allowed.
fn acl_broker(dir: &Path) -> SmqBroker {
    let passwd = dir.join("passwd");
    let p = passwd.to_str().unwrap();
    for (i, (user, pass)) in [("alice", "pa"), ("bob", "pb")].into_iter().enumerate() {
        let mut args = vec!["-b", p, user, pass];
        if i == 0 {
            args.insert(0, "-c");
        }
        assert!(smq_passwd(&args).status.success());
    }
    let acl = write(dir, "acl", ACL);
    SmqBroker::start(&[
        "--password-file",
        p,
        "--acl-file",
        acl.to_str().unwrap(),
        "--allow-anonymous",
    ])
}

fn client(port: u16, version: u8, id: &str, user: Option<(&str, &str)>) -> Client {
    let mut connect = Connect::new(version, id);
    if let Some((u, p)) = user {
        connect = connect.login(u, p);
    }
    Client::connect(port, &connect).0
}

/// PUBLISH at QoS 1 (retained if asked) and the PUBACK's reason code (0 in 3.1.1).
fn publish_qos1(c: &mut Client, pid: u16, topic: &str, payload: &str, retain: bool) -> u8 {
    let first = 0x32 | u8::from(retain);
    let props = (c.version == V5).then_some(&[][..]);
    c.send(&publish_raw(
        first,
        topic.as_bytes(),
        Some(pid),
        props,
        payload.as_bytes(),
    ));
    let (ack, _) = c.expect_kind(PUBACK, "PUBACK");
    assert_eq!(ack.body[..2], pid.to_be_bytes());
    ack.body.get(2).copied().unwrap_or(0)
}

/// Every PUBLISH (topic payload) that arrives before the PINGRESP to a PINGREQ sent now.
fn drain(c: &mut Client) -> Vec<String> {
    c.send(&[0xC0, 0]);
    let (_, before) = c.expect_kind(PINGRESP, "PINGRESP");
    let version = c.version;
    before
        .iter()
        .filter(|p| p.kind() == 0x30)
        .map(|p| {
            let m = parse_publish(version, p);
            if m.qos > 0 {
                c.send(&packet(PUBACK, &m.pid.unwrap().to_be_bytes()));
            }
            format!("{} {}", text(&m.topic), text(&m.payload))
        })
        .collect()
}

/// Reads PUBLISHes until `count` arrived, acknowledging QoS 1 ones.
fn receive(c: &mut Client, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < count {
        let p: Packet = match c.read(REPLY) {
            Read::Packet(p) => p,
            other => panic!(
                "waiting for message {} of {count}: {other:?}; got {got:?}",
                got.len() + 1
            ),
        };
        if p.kind() != 0x30 {
            continue;
        }
        let m = parse_publish(c.version, &p);
        if m.qos > 0 {
            c.send(&packet(PUBACK, &m.pid.unwrap().to_be_bytes()));
        }
        got.push(format!("{} {}", text(&m.topic), text(&m.payload)));
    }
    got
}

#[test]
fn acl_governs_publish_subscribe_and_delivery_including_retained() {
    let dir = temp_dir();
    let broker = acl_broker(dir.path());
    let port = broker.port();
    for version in [V4, V5] {
        let v = if version == V5 { "v5" } else { "v311" };
        let refused_sub = if version == V5 { 0x87 } else { 0x80 };
        // A denied publish: v5 says 0x87; 3.1.1 acknowledges and drops it.
        let denied_ack = if version == V5 { 0x87 } else { 0 };

        let mut alice = client(port, version, &format!("alice-{v}"), Some(("alice", "pa")));
        let status = format!("alice/{v}/status");
        let secret = "alice/secret/status";
        assert!(
            publish_qos1(&mut alice, 1, &status, "A", true) < 0x80,
            "{v}"
        );
        assert!(publish_qos1(&mut alice, 2, secret, "S", true) < 0x80, "{v}");
        assert_eq!(
            publish_qos1(&mut alice, 3, "bob/x", "no", false),
            denied_ack,
            "{v}"
        );

        // Anonymous: may read public/#, write nothing but its own clients/ID/#.
        let mut anon = client(port, version, &format!("anon-{v}"), None);
        assert_eq!(
            publish_qos1(&mut anon, 1, &format!("public/{v}"), "anon", true),
            denied_ack,
            "{v}: anonymous may not write public/#"
        );
        assert!(publish_qos1(&mut alice, 4, &format!("public/{v}"), "alice", true) < 0x80);
        assert!(
            publish_qos1(
                &mut anon,
                2,
                &format!("clients/anon-{v}/state"),
                "up",
                false
            ) < 0x80,
            "{v}: pattern %c"
        );
        assert_eq!(
            publish_qos1(&mut anon, 3, "clients/someone-else/state", "x", false),
            denied_ack,
            "{v}"
        );
        let codes = anon.subscribe(1, &[("public/#", 1), ("alice/#", 1), ("#", 0), ("+/x", 0)]);
        assert_eq!(codes, [1, refused_sub, refused_sub, refused_sub], "{v}");
        // The retained public/VERSION is alice's: the anonymous publish was dropped.
        let got = drain(&mut anon);
        assert!(got.contains(&format!("public/{v} alice")), "{v}: {got:?}");
        assert!(!got.iter().any(|m| m.ends_with(" anon")), "{v}: {got:?}");

        // bob reads alice/+/status except alice/secret/status: refused to subscribe to it
        // alone, and left out of the wider subscription, retained or live.
        let mut bob = client(port, version, &format!("bob-{v}"), Some(("bob", "pb")));
        let codes = bob.subscribe(
            1,
            &[
                ("alice/+/status", 1),
                (secret, 1),
                ("alice/#", 1),
                ("inbox/bob", 0),
                ("inbox/alice", 0),
            ],
        );
        assert_eq!(codes, [1, refused_sub, refused_sub, 0, refused_sub], "{v}");
        let retained = drain(&mut bob);
        assert!(
            retained.contains(&format!("{status} A")),
            "{v}: {retained:?}"
        );
        assert!(
            !retained.iter().any(|m| m.starts_with(secret)),
            "{v}: retained delivery is checked too: {retained:?}"
        );
        assert!(publish_qos1(&mut alice, 5, &format!("alice/{v}-b/status"), "B", false) < 0x80);
        assert!(publish_qos1(&mut alice, 6, secret, "S2", false) < 0x80);
        assert!(publish_qos1(&mut alice, 7, &format!("alice/{v}-c/status"), "C", false) < 0x80);
        assert_eq!(
            receive(&mut bob, 2),
            [
                format!("alice/{v}-b/status B"),
                format!("alice/{v}-c/status C")
            ],
            "{v}: the secret one, routed between them, was not delivered"
        );

        // A will the client could not publish itself refuses the connection.
        let will_id = format!("will-{v}");
        let will = Connect::new(version, &will_id).will(Will {
            topic: b"alice/will",
            payload: b"gone",
            qos: 0,
            props: Vec::new(),
        });
        assert_eq!(connack(port, &will), if version == V5 { 0x87 } else { 5 });
    }
    // Shared subscriptions are checked on their topic filter.
    let mut anon = client(port, V5, "anon-shared", None);
    let codes = anon.subscribe(1, &[("$share/g/public/#", 0), ("$share/g/alice/#", 0)]);
    assert_eq!(codes, [0, 0x87]);
}

#[test]
fn certificate_subject_is_the_user_name() {
    let certs = Certs::generate();
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    mosquitto_passwd(&passwd, true, "alice", "pa");
    // The client certificate's CN is "smq test client".
    let acl = write(
        dir.path(),
        "acl",
        "user smq test client\ntopic readwrite dev/#\nuser alice\ntopic read #\n",
    );
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let (cert, key) = (certs.server_cert(), certs.server_key());
    let broker = SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0", "mqtts://127.0.0.1:0"],
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--cafile",
            ca,
            "--use-identity-as-username",
            "--password-file",
            passwd.to_str().unwrap(),
            "--acl-file",
            acl.to_str().unwrap(),
        ],
    );
    let tls = broker.tls_port();
    let sub = Sub::start(
        broker.port(),
        &["-u", "alice", "-P", "pa", "-t", "#", "-C", "1", "-v"],
    );
    let (ccert, ckey) = (certs.client_cert(), certs.client_key());
    let with_cert = |topic: &str, payload: &str| {
        run_with_timeout(
            mosquitto_pub(tls).args([
                "--cafile",
                ca,
                "--cert",
                ccert.to_str().unwrap(),
                "--key",
                ckey.to_str().unwrap(),
                "-t",
                topic,
                "-m",
                payload,
                "-q",
                "1",
            ]),
            None,
            SECS,
        )
    };
    // As user "smq test client": other/x is not its to write (dropped), dev/x is.
    assert!(with_cert("other/x", "no").status.success());
    assert!(with_cert("dev/x", "yes").status.success());
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "dev/x yes\n",
        "{}",
        broker.log()
    );
    // On TLS without a certificate there is no user name to take: refused.
    assert_eq!(login(tls, &["--cafile", ca], "mqttv5", None), 0x87);
    assert_eq!(
        login(tls, &["--cafile", ca], "mqttv311", Some(("alice", "pa"))),
        5,
        "the certificate, not a password, names the user on TLS"
    );
}

#[test]
fn sighup_reads_the_password_and_acl_files_again() {
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    let p = passwd.to_str().unwrap();
    assert!(smq_passwd(&["-c", "-b", p, "alice", "pa"]).status.success());
    let acl = write(dir.path(), "acl", "user alice\ntopic readwrite a/#\n");
    let mut broker = SmqBroker::start(&["--password-file", p, "--acl-file", acl.to_str().unwrap()]);
    let port = broker.port();
    assert_eq!(login(port, &[], "mqttv5", Some(("bob", "pb"))), 0x86);

    assert!(smq_passwd(&["-b", p, "bob", "pb"]).status.success());
    write(
        dir.path(),
        "acl",
        "user alice\ntopic readwrite a/#\nuser bob\ntopic read a/#\n",
    );
    let reloaded = |broker: &SmqBroker, n: usize| {
        crate::support::smq_broker::poll(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
            || (broker.log().matches("smq: reloaded password file").count() >= n).then_some(()),
        )
        .is_some()
    };
    hup(&broker);
    assert!(reloaded(&broker, 1), "{}", broker.log());
    assert_eq!(login(port, &[], "mqttv5", Some(("bob", "pb"))), 0);
    let mut bob = client(port, V5, "bob", Some(("bob", "pb")));
    assert_eq!(bob.subscribe(1, &[("a/#", 0), ("b/#", 0)]), [0, 0x87]);

    // A broken file is reported and the files in force stay.
    write(dir.path(), "acl", "user bob\nallow everything\n");
    hup(&broker);
    let warned = crate::support::smq_broker::poll(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(20),
        || {
            broker
                .log()
                .contains("kept the files in force")
                .then_some(())
        },
    );
    assert!(warned.is_some(), "{}", broker.log());
    assert!(
        broker.log().contains(":2: unknown keyword 'allow'"),
        "{}",
        broker.log()
    );
    assert_eq!(login(port, &[], "mqttv5", Some(("bob", "pb"))), 0);
    assert!(broker.is_running());
}

fn hup(broker: &SmqBroker) {
    let sent = Command::new("kill")
        .args(["-HUP", &broker.pid().to_string()])
        .stdin(Stdio::null())
        .status()
        .expect("running kill");
    assert!(sent.success());
}

/// alice subscribes with a persistent session and leaves a QoS 1 message unacknowledged.
fn leave_unacknowledged(port: u16, id: &str) {
    let (mut alice, _) = Client::connect(
        port,
        &Connect::new(V4, id).login("alice", "pa").clean(false),
    );
    assert_eq!(alice.subscribe(1, &[("secret/#", 1)]), [1]);
    let mut publisher = client(port, V4, "alice-pub", Some(("alice", "pa")));
    assert!(publish_qos1(&mut publisher, 1, "secret/plan", "TOPSECRET", false) < 0x80);
    let p = match alice.read(REPLY) {
        Read::Packet(p) => p,
        other => panic!("waiting for the message: {other:?}"),
    };
    assert_eq!(text(&parse_publish(V4, &p).payload), "TOPSECRET");
    alice.shutdown();
}

/// A 3.1.1 CONNECT (clean session 0) and whether the session was present.
fn resume(port: u16, id: &str, user: (&str, &str)) -> (Client, bool) {
    let (c, ack) = Client::connect(
        port,
        &Connect::new(V4, id).login(user.0, user.1).clean(false),
    );
    (c, ack.body[0] & 1 == 1)
}

#[test]
fn another_user_taking_a_client_id_starts_afresh() {
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    let p = passwd.to_str().unwrap();
    assert!(smq_passwd(&["-c", "-b", p, "alice", "pa"]).status.success());
    assert!(smq_passwd(&["-b", p, "bob", "pb"]).status.success());
    let acl = write(
        dir.path(),
        "acl",
        "user alice\ntopic readwrite secret/#\nuser bob\ntopic read bob/#\n",
    );
    let store = dir.path().join("store");
    let broker = SmqBroker::start(&[
        "--password-file",
        p,
        "--acl-file",
        acl.to_str().unwrap(),
        "--persist",
        store.to_str().unwrap(),
    ]);
    let port = broker.port();

    leave_unacknowledged(port, "X");
    let (mut alice, present) = resume(port, "X", ("alice", "pa"));
    assert!(present, "the owner resumes her session");
    let resent = match alice.read(REPLY) {
        Read::Packet(p) => parse_publish(V4, &p),
        other => panic!("waiting for the resent message: {other:?}"),
    };
    assert!(resent.dup && text(&resent.payload) == "TOPSECRET");
    alice.shutdown();

    let (mut bob, present) = resume(port, "X", ("bob", "pb"));
    assert!(!present, "bob does not get alice's session");
    assert_eq!(drain(&mut bob), Vec::<String>::new());
    bob.shutdown();
    let (mut alice, present) = resume(port, "X", ("alice", "pa"));
    assert!(!present, "bob's clean start replaced it");
    assert_eq!(drain(&mut alice), Vec::<String>::new());
}

#[test]
fn messages_the_acl_no_longer_allows_are_not_sent_again() {
    let dir = temp_dir();
    let passwd = dir.path().join("passwd");
    let p = passwd.to_str().unwrap();
    assert!(smq_passwd(&["-c", "-b", p, "alice", "pa"]).status.success());
    let acl = write(dir.path(), "acl", "user alice\ntopic readwrite secret/#\n");
    let broker = SmqBroker::start(&["--password-file", p, "--acl-file", acl.to_str().unwrap()]);
    let port = broker.port();
    leave_unacknowledged(port, "Y");
    write(dir.path(), "acl", "user alice\ntopic readwrite public/#\n");
    hup(&broker);
    let reloaded = crate::support::smq_broker::poll(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(20),
        || broker.log().contains("smq: reloaded").then_some(()),
    );
    assert!(reloaded.is_some(), "{}", broker.log());
    let (mut alice, present) = resume(port, "Y", ("alice", "pa"));
    assert!(present);
    assert_eq!(drain(&mut alice), Vec::<String>::new());
}

#[test]
fn patterns_name_the_client_id_the_broker_assigned() {
    let dir = temp_dir();
    let acl = write(dir.path(), "acl", "pattern readwrite clients/%c/#\n");
    let broker = SmqBroker::start(&["--acl-file", acl.to_str().unwrap()]);
    let (mut c, ack) = Client::connect(broker.port(), &Connect::new(V5, ""));
    let (_, _, props) = crate::support::raw::parse_connack_v5(&ack);
    let id = props
        .iter()
        .find_map(|(k, v)| match (k, v) {
            (0x12, crate::support::raw::Prop::Bin(id)) => Some(text(id)),
            _ => None,
        })
        .expect("an assigned client id");
    assert_eq!(
        c.subscribe(1, &[("clients//#", 0), (&format!("clients/{id}/#"), 0)]),
        [0x87, 0]
    );
}

#[test]
fn messages_the_acl_hides_are_not_kept_in_the_persistence_log() {
    use crate::support::raw::{disconnect, puback, publish};
    let dir = temp_dir();
    let store = dir.path().join("store");
    let acl = write(
        dir.path(),
        "acl",
        "pattern readwrite a/#\npattern deny a/%c\n",
    );
    let args = [
        "--acl-file",
        acl.to_str().unwrap(),
        "--persist",
        store.to_str().unwrap(),
        "--sys-interval",
        "0",
    ];
    let mut broker = SmqBroker::start(&args);
    let port = broker.port();
    let connect = Connect::new(V4, "hidden").clean(false);
    let (mut sub, _) = Client::connect(port, &connect);
    assert_eq!(sub.subscribe(1, &[("a/#", 1)]), [1]);
    sub.send(&disconnect(V4, 0));
    // Queued for the offline session, then refused at delivery: a/hidden is denied to it.
    let big = vec![b'x'; 100_000];
    let mut publisher = Client::connected(port, V4, "writer");
    for pid in 1..=5 {
        publisher.send(&publish(V4, 1, "a/hidden", pid, &big));
        assert_eq!(publisher.expect("PUBACK").kind(), PUBACK);
    }
    publisher.send(&publish(V4, 1, "a/open", 6, b"marker"));
    assert_eq!(publisher.expect("PUBACK").kind(), PUBACK);
    // The queue is in order: once the marker arrives the five were dropped.
    let (mut sub, _) = Client::connect(port, &connect);
    let p = parse_publish(V4, &sub.expect("the marker"));
    assert_eq!(p.topic, b"a/open");
    sub.send(&puback(p.pid.unwrap()));
    sub.send(&disconnect(V4, 0));
    assert!(broker.stop().success());
    // A restart compacts the log to what is live: no 100 KB payloads are.
    let mut broker = SmqBroker::start(&args);
    let (mut sub, _) = Client::connect(broker.port(), &connect);
    sub.send(&disconnect(V4, 0));
    assert!(broker.stop().success());
    let size = fs::metadata(store.join("smq.log")).unwrap().len();
    assert!(size < 100_000, "smq.log is {size} bytes");
}
