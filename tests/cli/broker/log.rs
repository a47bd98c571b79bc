//! The connection log (`-v`, `log_dest`): the same events against Mosquitto 2.0 and
//! serve-broker, side by side, give the same lines once timestamps and ports are set aside.

use std::process::Stdio;
use std::time::Duration;

use crate::support::mosquitto::Mosquitto;
use crate::support::raw::{Client, Connect, V4, V5};
use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::{READY_TIMEOUT, mosquitto_client, run_with_timeout};

/// A connection-log line without its timestamp and with every port as `P`; None for lines
/// that are not connection messages (Mosquitto's debug lines, smq's own).
fn normalized(line: &str) -> Option<String> {
    let (stamp, rest) = line.split_once(": ")?;
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let connection = [
        "New connection from ",
        "New client connected from ",
        "Client ",
    ];
    if !connection.iter().any(|p| rest.starts_with(p)) {
        return None;
    }
    let ports = regex::Regex::new(r"(:|on port )[0-9]+").unwrap();
    Some(ports.replace_all(rest, "${1}P").into_owned())
}

fn lines(log: &str) -> Vec<String> {
    log.lines().filter_map(normalized).collect()
}

/// Both brokers, and a way to wait until each has logged a line.
struct Pair {
    mosquitto: Mosquitto,
    smq: SmqBroker,
}

impl Pair {
    fn ports(&self) -> [u16; 2] {
        [self.mosquitto.port(), self.smq.port()]
    }

    /// Waits until both logs have `n` connection lines, the last ending with `last`.
    fn wait(&self, n: usize, last: &str) {
        let mosquitto = || self.mosquitto.log();
        let smq = || self.smq.log();
        for (name, log) in [
            ("mosquitto", &mosquitto as &dyn Fn() -> String),
            ("smq", &smq),
        ] {
            let done = poll(READY_TIMEOUT, Duration::from_millis(20), || {
                let l = lines(&log());
                (l.len() >= n && l[n - 1].ends_with(last)).then_some(())
            });
            assert!(
                done.is_some(),
                "{name} did not log line {n} ending {last:?}\n--- log\n{}",
                log()
            );
        }
    }
}

fn pub_once(port: u16, args: &[&str]) {
    let out = run_with_timeout(
        mosquitto_client("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "t",
                "-m",
                "x",
            ])
            .args(args)
            .stdin(Stdio::null()),
        None,
        30,
    );
    // Refused logins fail, as they should: only the log is looked at.
    drop(out);
}

#[test]
fn connection_log_matches_mosquittos_line_for_line() {
    let mosquitto = Mosquitto::builder().password("alice", "pa").start();
    let passwd = mosquitto.dir().join("passwd");
    let smq = SmqBroker::start_args(
        1,
        &["-p", "0", "-v", "--password-file", passwd.to_str().unwrap()],
    );
    assert!(
        smq.bound()[0].url.starts_with("mqtt://127.0.0.1:"),
        "-p listens on loopback: {:?}",
        smq.bound()
    );
    let pair = Pair { mosquitto, smq };
    let mut n = 0;
    let mut step = |pair: &Pair, lines: usize, last: &str| {
        n += lines;
        pair.wait(n, last);
    };

    // A 3.1.1 client with a login that says goodbye, then a v5 one that keeps its session.
    for port in pair.ports() {
        pub_once(
            port,
            &["-i", "sensor-7", "-k", "60", "-u", "alice", "-P", "pa"],
        );
    }
    step(&pair, 3, "Client sensor-7 disconnected.");
    for port in pair.ports() {
        pub_once(
            port,
            &[
                "-i", "v5", "-k", "30", "-V", "5", "-c", "-u", "alice", "-P", "pa",
            ],
        );
    }
    step(&pair, 3, "Client v5 disconnected.");
    // A wrong password.
    for port in pair.ports() {
        pub_once(port, &["-i", "intruder", "-u", "alice", "-P", "nope"]);
    }
    step(&pair, 2, "Client <unknown> disconnected, not authorised.");
    // A client that just closes its socket, and one that takes over its client id.
    for port in pair.ports() {
        let login = Connect::new(V4, "dup").login("alice", "pa");
        let (mut first, _) = Client::connect(port, &login);
        let (mut second, _) = Client::connect(port, &login);
        first.expect_close(READY_TIMEOUT, "the client taken over");
        second.shutdown();
    }
    step(&pair, 6, "Client dup closed its connection.");
    // Garbage instead of CONNECT.
    for port in pair.ports() {
        let mut c = Client::open(port);
        c.send(&[0xff, 0x00]);
        c.expect_close(READY_TIMEOUT, "garbage");
    }
    step(
        &pair,
        2,
        "Client <unknown> disconnected due to protocol error.",
    );
    // Silence past the keep-alive.
    for port in pair.ports() {
        let login = Connect::new(V5, "sleepy").login("alice", "pa").keepalive(1);
        let (mut c, _) = Client::connect(port, &login);
        c.expect_close(Duration::from_secs(30), "keep-alive");
    }
    step(
        &pair,
        3,
        "Client sleepy has exceeded timeout, disconnecting.",
    );

    let theirs = lines(&pair.mosquitto.log());
    let ours = lines(&pair.smq.log());
    assert_eq!(
        ours,
        theirs,
        "--- mosquitto\n{}\n--- smq\n{}",
        pair.mosquitto.log(),
        pair.smq.log()
    );
    assert!(
        ours.contains(
            &"New client connected from 127.0.0.1:P as sensor-7 (p2, c1, k60, u'alice')."
                .to_owned()
        ),
        "{ours:#?}"
    );
}

#[test]
fn quiet_without_v_and_log_dest_file_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = SmqBroker::start_args(1, &["-p", "0"]);
    pub_once(quiet.port(), &["-i", "q"]);
    let file = dir.path().join("broker.log");
    let conf = dir.path().join("m.conf");
    std::fs::write(
        &conf,
        format!(
            "listener 0 127.0.0.1\nallow_anonymous true\nlog_dest file {}\nlog_timestamp false\n",
            file.display()
        ),
    )
    .unwrap();
    let logged = SmqBroker::start_args(1, &["-c", conf.to_str().unwrap()]);
    pub_once(logged.port(), &["-i", "f"]);
    let text = poll(READY_TIMEOUT, Duration::from_millis(20), || {
        let t = std::fs::read_to_string(&file).ok()?;
        t.contains("Client f disconnected.").then_some(t)
    })
    .unwrap_or_else(|| panic!("no log file line\n--- log\n{}", logged.log()));
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("New connection from 127.0.0.1:"),
        "log_timestamp false: no timestamp\n{text}"
    );
    assert!(
        !logged.log().contains("New connection"),
        "the file only: {}",
        logged.log()
    );
    // The quiet broker's client is long gone by now: it said nothing.
    assert!(
        !quiet.log().contains("New connection") && !quiet.log().contains("Client q"),
        "{}",
        quiet.log()
    );
}
